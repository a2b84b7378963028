/*
 * sign_in_code.h - the alphabet and canonical form of a one-time sign-in code.
 * What it owns and must never do: sign_in_code.c.
 */
#ifndef REFD_SIGN_IN_CODE_H
#define REFD_SIGN_IN_CODE_H

#include <stddef.h>

/* What a person typed -> 8 characters of Crockford's base32 + NUL in out
 * (lower case folded, O read as 0, I and L as 1, spaces and dashes dropped);
 * -1 when it cannot be a code. */
int sign_in_code_normalise(const char *in, size_t len, char out[9]);
/* 0 when the text reads as a code (a jsonv validator), else -1. */
int sign_in_code_is_text(const char *s, size_t len);

extern const char sign_in_code_alphabet[33];  /* Crockford's base32 */

#endif
