/*
 * errbuf.c - the "char *err, size_t errlen" convention of the start-up code
 * (config, keys, migrations): one message for the caller to print.
 *
 * Owns: filling such a buffer.
 * Must never: allocate, or log (the caller decides where the message goes).
 */
#include "errbuf.h"

#include <stdarg.h>
#include <stdio.h>

void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
