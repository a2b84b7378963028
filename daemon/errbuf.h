/*
 * errbuf.h - formatting an error message into a caller's buffer.
 * What it owns and must never do: errbuf.c.
 */
#ifndef REFD_ERRBUF_H
#define REFD_ERRBUF_H

#include <stddef.h>

/* printf into err (errlen bytes, always terminated); err NULL or errlen 0:
 * nothing. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
