/*
 * http_limits.h - pure checks on HTTP/1.1 request framing.
 * What it owns and must never do: http_limits.c.
 */
#ifndef REFD_HTTP_LIMITS_H
#define REFD_HTTP_LIMITS_H

#include <stddef.h>
#include <stdint.h>

/* "GET,POST" -> mask of EVHTTP_REQ_* bits. 0 on success, -1 on an unknown or
 * empty name. */
int http_methods_parse(const char *list, unsigned *mask);

/* Content-Length value: 1..18 ASCII digits, nothing else (no sign, space,
 * comma list). 0 on success, -1 otherwise. */
int http_content_length_parse(const char *v, uint64_t *out);

/* Header-list checks, fed one parsed header at a time. */
struct http_hdr_check {
	int content_length;     /* Content-Length headers seen */
	int transfer_encoding;  /* Transfer-Encoding headers seen */
	uint64_t length;        /* the Content-Length value, once one is seen */
	const char *bad;        /* first reason, NULL while acceptable */
};
/* 1 when c may be part of a token (a method, a field name). */
int http_tchar(unsigned char c);
void http_hdr_check_init(struct http_hdr_check *c);
/* Returns 0 while acceptable, -1 once a reason is recorded in c->bad. */
int http_hdr_check_one(struct http_hdr_check *c, const char *name, const char *value);
/* Rules that need the whole list (Content-Length with Transfer-Encoding). */
int http_hdr_check_end(struct http_hdr_check *c);

/*
 * Raw scan of the bytes of a request head (request line + header lines),
 * before the HTTP parser normalises them away: NUL and other control bytes,
 * bare CR, bare LF, and obs-fold (a header line starting with space or tab)
 * are refused. Leading empty lines before the request line are tolerated.
 */
enum http_scan_state { HS_HEAD = 0, HS_DONE, HS_BAD };
struct http_head_scan {
	enum http_scan_state state;
	unsigned prev_cr : 1;
	unsigned line_start : 1;
	unsigned first_line : 1;    /* still in (or before) the request line */
	size_t line_len;
	const char *bad;            /* reason once HS_BAD */
};
void http_head_scan_reset(struct http_head_scan *s);
/* Feed n bytes. Returns the state reached; bytes after the end of the head
 * are not looked at (*used says how many were consumed). */
enum http_scan_state http_head_scan(struct http_head_scan *s, const unsigned char *p, size_t n,
				    size_t *used);

#endif
