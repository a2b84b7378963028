/*
 * fuzz_ctl_conf.c - libFuzzer target: referralctl's configuration parser
 * (ctl/ctl_conf.c, compiled into this target).
 *
 * Owns: nothing between inputs. Must never: print the input.
 * Invariants: a refusal leaves a non-empty message that never contains a
 * value of the input's token key; an accepted file has an https url and a
 * token_file, and a timeout in range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ctl/ctl_conf.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_conf c;
	char err[512];

	err[0] = '\0';
	if (ctl_conf_parse("fuzz.conf", (const char *)data, size, &c, err, sizeof(err)) < 0) {
		if (err[0] == '\0' || strncmp(err, "fuzz.conf", 9) != 0)
			abort();
		return 0;
	}
	if (!c.url || strncmp(c.url, "https://", 8) != 0 || !c.token_file || c.timeout_s < 1 ||
	    c.timeout_s > 3600 || (!c.client_cert != !c.client_key))
		abort();
	ctl_conf_free(&c);
	return 0;
}
