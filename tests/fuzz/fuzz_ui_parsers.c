/*
 * fuzz_ui_parsers.c - libFuzzer target for the web pages' two parsers of
 * input from the network: a typed sign-in code (sign_in_code_normalise) and
 * the Accept-Encoding header (ui_accepts_gzip).
 *
 * Owns: nothing but the fuzz harness. Must never: print the input or write
 * files; every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants:
 * - a code that normalises is 8 characters of Crockford's base32, and
 *   normalising it again gives it back (the canonical form is a fixed point);
 * - an input with a byte outside [0-9A-Za-z -] never normalises;
 * - Accept-Encoding answers 0 or 1, and a value without "gzip" (in any case)
 *   and without "*" never admits gzip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sign_in_code.h"
#include "ui_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[9], again[9];
	char *s;
	int plain = 1, rc;

	if (size > 4096)
		return 0;
	for (size_t i = 0; i < size; i++) {
		unsigned char c = data[i];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      c == ' ' || c == '-'))
			plain = 0;
	}
	if (sign_in_code_normalise((const char *)data, size, out) == 0) {
		if (!plain || strlen(out) != 8 || strspn(out, alphabet) != 8)
			abort();
		if (sign_in_code_normalise(out, 8, again) != 0 || strcmp(out, again) != 0)
			abort();
	}

	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	rc = ui_accepts_gzip(s);
	if (rc != 0 && rc != 1)
		abort();
	if (rc == 1 && !strcasestr(s, "gzip") && !strchr(s, '*'))
		abort();
	free(s);
	return 0;
}
