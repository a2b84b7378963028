/*
 * sign_in_code.h - the canonical form of a one-time sign-in code (see
 * api_sign_in.c, which owns it). Exposed for the unit and fuzz tests.
 */
#ifndef REFD_SIGN_IN_CODE_H
#define REFD_SIGN_IN_CODE_H

#include <stddef.h>

/* What a person typed -> 8 characters of Crockford's base32 + NUL in out
 * (lower case folded, O read as 0, I and L as 1, spaces and dashes dropped);
 * -1 when it cannot be a code. */
int sign_in_code_normalise(const char *in, size_t len, char out[9]);

#endif
