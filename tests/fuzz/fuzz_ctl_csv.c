/*
 * fuzz_ctl_csv.c - libFuzzer target: referralctl's CSV reader (ctl/ctl_csv.c,
 * compiled into this target: it is not one of the daemon's objects).
 *
 * Owns: nothing between inputs. Must never: print the input.
 * Invariants: every record ends with a result (1, 0 or -1), the reader never
 * goes past the buffer, a refusal leaves a message naming a line, the fields
 * of a record together are never longer than the input, and the reader ends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ctl/ctl_csv.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csv c;
	struct csv_row row = { 0 };
	char err[200];
	size_t records = 0;

	csv_init(&c, (const char *)data, size);
	for (;;) {
		size_t total = 0;
		int r;

		err[0] = '\0';
		r = csv_next(&c, &row, err, sizeof(err));
		if (r == 0)
			break;
		if (r < 0) {
			if (strncmp(err, "line ", 5) != 0)
				abort();
			break;
		}
		if (row.n == 0)
			abort();
		for (size_t i = 0; i < row.n; i++)
			total += strlen(row.field[i]);
		if (total > size)
			abort();
		if (c.p > c.end || ++records > size + 1)
			abort();
	}
	csv_row_free(&row);
	return 0;
}
