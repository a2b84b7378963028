/*
 * sign_in_code.c - the alphabet and canonical form of a one-time sign-in
 * code (issue 14).
 *
 * Owns: Crockford's base32 (no I, L, O or U) and reading what a person typed:
 * lower case folded, O read as 0, I and L as 1, spaces and dashes dropped.
 * Must never: keep or log what it reads; accept anything but exactly eight
 * symbols of the alphabet after that.
 */
#include <string.h>

#include "sign_in_code.h"

const char sign_in_code_alphabet[33] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int sign_in_code_normalise(const char *in, size_t len, char out[9])
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (c == ' ' || c == '-')
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c == 'O')
			c = '0';
		else if (c == 'I' || c == 'L')
			c = '1';
		if (c == '\0' || !strchr(sign_in_code_alphabet, c) || n >= 8)
			return -1;
		out[n++] = c;
	}
	if (n != 8)
		return -1;
	out[n] = '\0';
	return 0;
}

int sign_in_code_is_text(const char *s, size_t len)
{
	char scratch[9];
	int rc = sign_in_code_normalise(s, len, scratch);

	memset(scratch, 0, sizeof(scratch));
	return rc;
}
