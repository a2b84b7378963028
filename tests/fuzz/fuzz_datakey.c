/*
 * fuzz_datakey.c - libFuzzer target for the sealed-value label parser of
 * datakey.h (which referral's data key a stored value names) and the
 * opening of hostile sealed text under a data key.
 *
 * Owns: nothing but the fuzz harness. Must never: print the input or write
 * files; every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants:
 * - a label that parses names a lowercase uuid, and sealing anything under
 *   that referral gives a value whose label parses to the same id;
 * - the input never opens under a key it was not sealed with (a fixed key),
 *   nor under any binding, and opening never crashes;
 * - a value sealed under the key opens back to the same bytes.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "datakey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char key[DATAKEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	char *text, rid[DATAKEY_ID_LEN + 1], rid2[DATAKEY_ID_LEN + 1], *sealed, *plain;
	struct seal_bind b = { "referrals", "contact", "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d" };
	size_t len = 0;

	if (size > 4096 || memchr(data, '\0', size))
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (datakey_sealed_referral(text, rid) == 0) {
		for (size_t i = 0; i < DATAKEY_ID_LEN; i++)
			if (isupper((unsigned char)rid[i]))
				abort();
		sealed = datakey_seal(key, rid, &b, text, size);
		if (!sealed || datakey_sealed_referral(sealed, rid2) != 0 || strcmp(rid, rid2) != 0)
			abort();
		plain = datakey_open(key, sealed, &b, &len);
		if (!plain || len != size || memcmp(plain, text, size) != 0)
			abort();
		free(plain);
		free(sealed);
	}
	/* Random text is never a value sealed under this key. */
	plain = datakey_open(key, text, &b, &len);
	if (plain)
		abort();
	free(plain);
	free(text);
	return 0;
}
