/*
 * http_parse.h - the HTTP/1.1 request head, split in place.
 * What it owns and must never do: http_parse.c.
 */
#ifndef REFD_HTTP_PARSE_H
#define REFD_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HP_MAX_HEADERS 100

struct hp_header {
	const char *name;
	const char *value;
	size_t name_len;            /* strlen(name) */
};

struct hp_request {
	int method;                 /* EVHTTP_REQ_* bit, 0 for a method we do not serve */
	const char *target;         /* request-target as sent (NUL-terminated in the buffer) */
	int minor;                  /* HTTP/1.minor: 0 or 1 */
	int nh;
	uint64_t content_length;    /* 0 without a Content-Length */
	unsigned chunked : 1;       /* Transfer-Encoding: chunked */
	unsigned keep_alive : 1;    /* the client may send another request after this one */
	unsigned expect_continue : 1;
	unsigned bad_expect : 1;    /* an Expect other than 100-continue */
	const char *bad;            /* reason when refused (a fixed string, never input) */
	struct hp_header h[HP_MAX_HEADERS];     /* last: only h[0..nh) is ever read */
};

/*
 * Parse a complete head: buf[0..len) ends with the empty line and has passed
 * http_head_scan (no NUL, bare CR or LF, control byte or obs-fold in it).
 * CR LF pairs become NULs, and ':' and the spaces around values too, so the
 * pointers in rq point into buf. Returns 0, or -1 with rq->bad set (the
 * request must be refused with 400 and its connection closed).
 */
int hp_parse_head(char *buf, size_t len, struct hp_request *rq);

/* Empty rq (no target, no headers), without clearing every header slot. */
void hp_request_clear(struct hp_request *rq);

/* Case-insensitive header lookup; NULL if absent (the first one wins). */
const char *hp_header_get(const struct hp_request *rq, const char *name);

#endif
