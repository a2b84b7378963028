/*
 * fuzz_http_parse.c - libFuzzer target for the request head parser
 * (http_parse.h) as the transport drives it: the raw head scan of
 * http_limits.h finds the end of the head, fed in two pieces split where the
 * input says (the socket delivers whatever it has), then hp_parse_head
 * splits that head in place. hp_parse_head also gets the raw input as it is,
 * unscanned, in a buffer of exactly its size (so a read past it is a report).
 *
 * Owns: nothing but the fuzz harness. Must never: print the input or write
 * files; every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants of an accepted head:
 * - every name and value, and the target, lie inside the buffer;
 * - names are non-empty tokens; values hold no CR, LF or NUL and no space or
 *   tab at either end; the target is non-empty visible ASCII;
 * - the version is 1.0 or 1.1; the method is 0 or one known bit;
 * - never both chunked and a Content-Length; content_length is what the
 *   Content-Length header says;
 * - parsing the same bytes again gives the same result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "http_limits.h"
#include "http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_in(const char *p, const char *buf, size_t len)
{
	if (p < buf || p >= buf + len)
		abort();
	if (p + strlen(p) >= buf + len)
		abort();
}

static void check_accepted(const struct hp_request *rq, const char *buf, size_t len)
{
	static const int bits = EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
				EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE |
				EVHTTP_REQ_OPTIONS;
	const unsigned char *p;
	const char *cl;
	uint64_t n;
	int i;

	if (rq->bad != NULL || rq->minor < 0 || rq->minor > 1)
		abort();
	if (rq->method != 0 && ((rq->method & ~bits) != 0 || (rq->method & (rq->method - 1)) != 0))
		abort();
	check_in(rq->target, buf, len);
	if (rq->target[0] == '\0')
		abort();
	for (p = (const unsigned char *)rq->target; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			abort();
	if (rq->nh < 0 || rq->nh > HP_MAX_HEADERS)
		abort();
	for (i = 0; i < rq->nh; i++) {
		const char *nm = rq->h[i].name, *v = rq->h[i].value;
		size_t vl;

		check_in(nm, buf, len);
		check_in(v, buf, len);
		if (nm[0] == '\0' || strchr(nm, ':') != NULL)
			abort();
		for (p = (const unsigned char *)nm; *p; p++)
			if (*p <= 0x20 || *p >= 0x7f)
				abort();
		if (strpbrk(v, "\r\n") != NULL)
			abort();
		vl = strlen(v);
		if (vl > 0 && (v[0] == ' ' || v[0] == '\t' || v[vl - 1] == ' ' || v[vl - 1] == '\t'))
			abort();
	}
	cl = hp_header_get(rq, "Content-Length");
	if (cl != NULL) {
		if (rq->chunked)
			abort();
		if (http_content_length_parse(cl, &n) != 0 || n != rq->content_length)
			abort();
	} else if (rq->content_length != 0) {
		abort();
	}
	if (rq->chunked && hp_header_get(rq, "Transfer-Encoding") == NULL)
		abort();
}

static void parse_twice(const uint8_t *p, size_t n)
{
	char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
	struct hp_request *ra = malloc(sizeof(*ra)), *rb = malloc(sizeof(*rb));
	int x, y, i;

	if (a == NULL || b == NULL || ra == NULL || rb == NULL)
		abort();
	memcpy(a, p, n);
	memcpy(b, p, n);
	x = hp_parse_head(a, n, ra);
	y = hp_parse_head(b, n, rb);
	if (x != y || (x != 0) != (ra->bad != NULL))
		abort();
	if (x == 0) {
		check_accepted(ra, a, n);
		if (ra->nh != rb->nh || ra->method != rb->method || ra->minor != rb->minor ||
		    strcmp(ra->target, rb->target) != 0 || ra->keep_alive != rb->keep_alive ||
		    ra->content_length != rb->content_length || ra->chunked != rb->chunked ||
		    ra->expect_continue != rb->expect_continue)
			abort();
		for (i = 0; i < ra->nh; i++)
			if (strcmp(ra->h[i].name, rb->h[i].name) != 0 ||
			    strcmp(ra->h[i].value, rb->h[i].value) != 0)
				abort();
	} else if (strcmp(ra->bad, rb->bad) != 0) {
		abort();
	}
	free(a);
	free(b);
	free(ra);
	free(rb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head_scan s;
	size_t split, used1 = 0, used2 = 0, head;
	enum http_scan_state st;

	if (size < 1)
		return 0;
	split = data[0] % (size);
	data++;
	size--;
	if (split > size)
		split = size;

	/* Unscanned: the parser alone must stay inside the buffer. */
	parse_twice(data, size);

	/* As the transport does it. */
	http_head_scan_reset(&s);
	st = http_head_scan(&s, data, split, &used1);
	head = used1;
	if (st == HS_HEAD) {
		if (used1 != split)
			abort();
		st = http_head_scan(&s, data + split, size - split, &used2);
		head += used2;
	}
	if (st == HS_DONE)
		parse_twice(data, head);
	return 0;
}
