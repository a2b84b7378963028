/*
 * http_parse.c - the HTTP/1.1 request head, split in place.
 *
 * Owns: the request line (method, target, version), the header lines as
 * name/value pairs, and what the transport needs from them (body framing,
 * keep-alive, Expect). Every framing rule of http_limits.c applies to each
 * header (one decimal Content-Length, only "chunked", no control bytes),
 * so a request means the same here as in a proxy in front of us.
 * Must never: do I/O, allocate, read outside buf[0..len), or copy input into
 * a reason.
 */
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "http_limits.h"
#include "http_parse.h"

static int hp_bad(struct hp_request *rq, const char *why)
{
	rq->bad = why;
	return -1;
}

static int hp_tchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static int hp_method(const char *m)
{
	static const struct {
		const char *name;
		int bit;
	} known[] = {
		{ "GET", EVHTTP_REQ_GET },     { "HEAD", EVHTTP_REQ_HEAD },
		{ "POST", EVHTTP_REQ_POST },   { "PUT", EVHTTP_REQ_PUT },
		{ "PATCH", EVHTTP_REQ_PATCH }, { "DELETE", EVHTTP_REQ_DELETE },
		{ "OPTIONS", EVHTTP_REQ_OPTIONS },
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i].name, m) == 0)
			return known[i].bit;
	return 0;
}

/* Does the comma-separated token list v hold tok (case-insensitive)? */
static int hp_list_has(const char *v, const char *tok)
{
	size_t n = strlen(tok);

	while (*v) {
		size_t len;

		while (*v == ' ' || *v == '\t' || *v == ',')
			v++;
		len = strcspn(v, ",");
		while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(v, tok, n) == 0)
			return 1;
		v += strcspn(v, ",");
	}
	return 0;
}

/* The next CRLF-terminated line of buf[*pos..len): NUL-terminated in place.
 * NULL when no CRLF is left. */
static char *hp_line(char *buf, size_t len, size_t *pos)
{
	size_t i;
	char *line = buf + *pos;

	for (i = *pos; i + 1 < len; i++) {
		if (buf[i] == '\r' && buf[i + 1] == '\n') {
			buf[i] = '\0';
			*pos = i + 2;
			return line;
		}
	}
	return NULL;
}

int hp_parse_head(char *buf, size_t len, struct hp_request *rq)
{
	struct http_hdr_check hc;
	size_t pos = 0;
	char *line, *sp1, *sp2, *p;
	const char *v;
	int i;

	memset(rq, 0, sizeof(*rq));
	/* Empty lines before the request line are tolerated (RFC 9112 2.2). */
	do {
		line = hp_line(buf, len, &pos);
		if (line == NULL)
			return hp_bad(rq, "incomplete_head");
	} while (*line == '\0');

	sp1 = strchr(line, ' ');
	if (sp1 == NULL || sp1 == line)
		return hp_bad(rq, "bad_request_line");
	*sp1 = '\0';
	for (p = line; *p; p++)
		if (!hp_tchar((unsigned char)*p))
			return hp_bad(rq, "bad_method");
	sp2 = strchr(sp1 + 1, ' ');
	if (sp2 == NULL || sp2 == sp1 + 1)
		return hp_bad(rq, "bad_request_line");
	*sp2 = '\0';
	rq->target = sp1 + 1;
	for (p = sp1 + 1; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return hp_bad(rq, "bad_request_target");
	if (strcmp(sp2 + 1, "HTTP/1.1") == 0)
		rq->minor = 1;
	else if (strcmp(sp2 + 1, "HTTP/1.0") == 0)
		rq->minor = 0;
	else
		return hp_bad(rq, "bad_http_version");
	rq->method = hp_method(line);

	http_hdr_check_init(&hc);
	for (;;) {
		char *colon, *end;

		line = hp_line(buf, len, &pos);
		if (line == NULL)
			return hp_bad(rq, "incomplete_head");
		if (*line == '\0')
			break;
		if (rq->nh == HP_MAX_HEADERS)
			return hp_bad(rq, "too_many_headers");
		colon = strchr(line, ':');
		if (colon == NULL)
			return hp_bad(rq, "header_without_colon");
		*colon = '\0';
		p = colon + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (http_hdr_check_one(&hc, line, p) != 0)
			return hp_bad(rq, hc.bad);
		rq->h[rq->nh].name = line;
		rq->h[rq->nh].value = p;
		rq->nh++;
	}
	if (pos != len)
		return hp_bad(rq, "data_after_head");
	if (http_hdr_check_end(&hc) != 0)
		return hp_bad(rq, hc.bad);

	for (i = 0; i < rq->nh; i++) {
		const char *n = rq->h[i].name;

		v = rq->h[i].value;
		if (strcasecmp(n, "Content-Length") == 0) {
			if (http_content_length_parse(v, &rq->content_length) != 0)
				return hp_bad(rq, "bad_content_length");
		} else if (strcasecmp(n, "Transfer-Encoding") == 0) {
			rq->chunked = 1;        /* http_hdr_check allows only "chunked" */
		}
	}
	v = hp_header_get(rq, "Connection");
	if (rq->minor == 1)
		rq->keep_alive = !(v != NULL && hp_list_has(v, "close"));
	else
		rq->keep_alive = v != NULL && hp_list_has(v, "keep-alive") && !hp_list_has(v, "close");
	v = hp_header_get(rq, "Expect");
	if (v != NULL) {
		if (rq->minor == 1 && strcasecmp(v, "100-continue") == 0)
			rq->expect_continue = 1;
		else if (rq->minor == 1)
			rq->bad_expect = 1;
	}
	return 0;
}

const char *hp_header_get(const struct hp_request *rq, const char *name)
{
	int i;

	for (i = 0; i < rq->nh; i++)
		if (strcasecmp(rq->h[i].name, name) == 0)
			return rq->h[i].value;
	return NULL;
}
