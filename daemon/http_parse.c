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
#include <stddef.h>
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

/* m[0..n) is a token. */
static int hp_method(const char *m, size_t n)
{
	static const struct {
		const char *name;
		size_t len;
		int bit;
	} known[] = {
		{ "GET", 3, EVHTTP_REQ_GET },     { "HEAD", 4, EVHTTP_REQ_HEAD },
		{ "POST", 4, EVHTTP_REQ_POST },   { "PUT", 3, EVHTTP_REQ_PUT },
		{ "PATCH", 5, EVHTTP_REQ_PATCH }, { "DELETE", 6, EVHTTP_REQ_DELETE },
		{ "OPTIONS", 7, EVHTTP_REQ_OPTIONS },
	};
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (known[i].len == n && memcmp(known[i].name, m, n) == 0)
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
	size_t i = *pos;
	char *line = buf + *pos, *cr;

	while (i + 1 < len && (cr = memchr(buf + i, '\r', len - 1 - i)) != NULL) {
		i = (size_t)(cr - buf);
		if (buf[i + 1] == '\n') {
			buf[i] = '\0';
			*pos = i + 2;
			return line;
		}
		i++;
	}
	return NULL;
}

int hp_parse_head(char *buf, size_t len, struct hp_request *rq)
{
	struct http_hdr_check hc;
	size_t pos = 0;
	char *line, *sp1, *sp2, *p;
	const char *v;
	int conn = -1, expect = -1;

	hp_request_clear(rq);
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
		if (!http_tchar((unsigned char)*p))
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
	rq->method = hp_method(line, (size_t)(sp1 - line));

	http_hdr_check_init(&hc);
	for (;;) {
		char *colon, *end;
		size_t nlen;

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
		nlen = (size_t)(colon - line);
		p = colon + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		end = p + strlen(p);
		while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (http_hdr_check_one(&hc, line, p) != 0)
			return hp_bad(rq, hc.bad);
		/* Connection and Expect, by their length first: the first one,
		 * as hp_header_get (the framing headers: http_hdr_check). */
		if (nlen == 10 && conn < 0 && strcasecmp(line, "Connection") == 0)
			conn = rq->nh;
		else if (nlen == 6 && expect < 0 && strcasecmp(line, "Expect") == 0)
			expect = rq->nh;
		rq->h[rq->nh].name = line;
		rq->h[rq->nh].value = p;
		rq->h[rq->nh].name_len = nlen;
		rq->nh++;
	}
	if (pos != len)
		return hp_bad(rq, "data_after_head");
	if (http_hdr_check_end(&hc) != 0)
		return hp_bad(rq, hc.bad);

	/* http_hdr_check parsed the one Content-Length and allows only one
	 * Transfer-Encoding, "chunked". */
	rq->content_length = hc.content_length ? hc.length : 0;
	rq->chunked = hc.transfer_encoding > 0;
	v = conn >= 0 ? rq->h[conn].value : NULL;
	if (rq->minor == 1)
		rq->keep_alive = !(v != NULL && hp_list_has(v, "close"));
	else
		rq->keep_alive = v != NULL && hp_list_has(v, "keep-alive") && !hp_list_has(v, "close");
	v = expect >= 0 ? rq->h[expect].value : NULL;
	if (v != NULL) {
		if (rq->minor == 1 && strcasecmp(v, "100-continue") == 0)
			rq->expect_continue = 1;
		else if (rq->minor == 1)
			rq->bad_expect = 1;
	}
	return 0;
}

void hp_request_clear(struct hp_request *rq)
{
	memset(rq, 0, offsetof(struct hp_request, h));
}

const char *hp_header_get(const struct hp_request *rq, const char *name)
{
	size_t n = strlen(name);
	int i;

	for (i = 0; i < rq->nh; i++)
		if (rq->h[i].name_len == n && strcasecmp(rq->h[i].name, name) == 0)
			return rq->h[i].value;
	return NULL;
}
