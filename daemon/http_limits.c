/*
 * http_limits.c - pure checks on HTTP/1.1 request framing.
 *
 * Owns: the rules that make a request unambiguous (one decimal
 * Content-Length, no Content-Length beside Transfer-Encoding, only "chunked"
 * as transfer coding, no control characters in header values, no obs-fold,
 * no bare CR or LF in the header block) and the method list parser.
 * libevent 2.1's parser
 * accepts duplicate or signed Content-Length values, NUL bytes, obs-fold and
 * bare LF; a proxy in front of us may read such a request differently than
 * we do (request smuggling), so anything ambiguous is refused outright.
 * Must never: do I/O, allocate, or copy a header value into a reason.
 */
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "http_limits.h"

int http_methods_parse(const char *list, unsigned *mask)
{
	static const struct {
		const char *name;
		unsigned bit;
	} known[] = {
		{ "GET", EVHTTP_REQ_GET },     { "HEAD", EVHTTP_REQ_HEAD },
		{ "POST", EVHTTP_REQ_POST },   { "PUT", EVHTTP_REQ_PUT },
		{ "PATCH", EVHTTP_REQ_PATCH }, { "DELETE", EVHTTP_REQ_DELETE },
		{ "OPTIONS", EVHTTP_REQ_OPTIONS },
	};
	const char *p = list;
	unsigned m = 0;

	if (p == NULL || *p == '\0')
		return -1;
	for (;;) {
		size_t n = strcspn(p, ",");
		size_t i;
		int found = 0;

		for (i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
			if (strlen(known[i].name) == n && strncmp(known[i].name, p, n) == 0) {
				m |= known[i].bit;
				found = 1;
			}
		}
		if (!found)
			return -1;
		p += n;
		if (*p == '\0')
			break;
		p++;    /* the comma; a trailing one leaves an empty name: refused */
	}
	*mask = m;
	return 0;
}

int http_content_length_parse(const char *v, uint64_t *out)
{
	uint64_t n = 0;
	size_t i;

	if (v == NULL || v[0] == '\0')
		return -1;
	for (i = 0; v[i]; i++) {
		if (v[i] < '0' || v[i] > '9' || i >= 18)
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return 0;
}

/* RFC 9110 tchar: visible ASCII but the separators. */
static const unsigned char http_tchars[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1,
	['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,
	['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,
	['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

int http_tchar(unsigned char c)
{
	return http_tchars[c];
}

void http_hdr_check_init(struct http_hdr_check *c)
{
	memset(c, 0, sizeof(*c));
}

static int http_hdr_bad(struct http_hdr_check *c, const char *why)
{
	if (c->bad == NULL)
		c->bad = why;
	return -1;
}

int http_hdr_check_one(struct http_hdr_check *c, const char *name, const char *value)
{
	const unsigned char *p;
	size_t nlen;

	if (c->bad)
		return -1;
	if (name == NULL || name[0] == '\0')
		return http_hdr_bad(c, "empty_header_name");
	/* Field names are tokens: no space, separator or control byte. A
	 * "Content-Length " with a space must never count as another header. */
	for (p = (const unsigned char *)name; *p; p++) {
		if (!http_tchars[*p])
			return http_hdr_bad(c, "bad_header_name");
	}
	nlen = (size_t)(p - (const unsigned char *)name);
	/* Values: visible ASCII, space, tab and obs-text only. */
	for (p = (const unsigned char *)value; p && *p; p++) {
		if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			return http_hdr_bad(c, "control_char_in_header");
	}
	/* The length first: most names are neither. */
	if (nlen == sizeof("Content-Length") - 1 && strcasecmp(name, "Content-Length") == 0) {
		if (++c->content_length > 1)
			return http_hdr_bad(c, "duplicate_content_length");
		if (http_content_length_parse(value, &c->length) != 0)
			return http_hdr_bad(c, "bad_content_length");
	} else if (nlen == sizeof("Transfer-Encoding") - 1 &&
		   strcasecmp(name, "Transfer-Encoding") == 0) {
		if (++c->transfer_encoding > 1)
			return http_hdr_bad(c, "duplicate_transfer_encoding");
		/* libevent only decodes exactly "chunked"; any other coding
		 * or list would be framed differently by us and by a proxy. */
		if (value == NULL || strcasecmp(value, "chunked") != 0)
			return http_hdr_bad(c, "bad_transfer_encoding");
	}
	return 0;
}

int http_hdr_check_end(struct http_hdr_check *c)
{
	if (c->bad)
		return -1;
	if (c->content_length && c->transfer_encoding)
		return http_hdr_bad(c, "content_length_with_transfer_encoding");
	return 0;
}

void http_head_scan_reset(struct http_head_scan *s)
{
	memset(s, 0, sizeof(*s));
	s->state = HS_HEAD;
	s->line_start = 1;
	s->first_line = 1;
}

static enum http_scan_state http_scan_bad(struct http_head_scan *s, const char *why)
{
	s->state = HS_BAD;
	s->bad = why;
	return HS_BAD;
}

enum http_scan_state http_head_scan(struct http_head_scan *s, const unsigned char *p, size_t n,
				    size_t *used)
{
	size_t i;

	for (i = 0; i < n && s->state == HS_HEAD; i++) {
		unsigned char c = p[i];

		if (s->prev_cr) {
			s->prev_cr = 0;
			if (c != '\n') {
				i++;
				*used = i;
				return http_scan_bad(s, "bare_cr");
			}
			if (s->line_len == 0 && !s->first_line) {
				s->state = HS_DONE;     /* the empty line ends the head */
			} else if (s->line_len > 0) {
				s->first_line = 0;
			}
			s->line_start = 1;
			s->line_len = 0;
			continue;
		}
		if (c == '\r') {
			s->prev_cr = 1;
			continue;
		}
		if (c == '\n') {
			*used = i + 1;
			return http_scan_bad(s, "bare_lf");
		}
		if (s->line_start && !s->first_line && (c == ' ' || c == '\t')) {
			*used = i + 1;
			return http_scan_bad(s, "obs_fold");
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*used = i + 1;
			return http_scan_bad(s, c == 0 ? "nul_in_head" : "control_char_in_head");
		}
		s->line_start = 0;
		s->line_len++;
		/* The rest of an ordinary line at once: bytes that none of the
		 * rules above would stop at (no CR, LF, control byte or DEL). */
		while (i + 1 < n && (p[i + 1] >= 0x20 ? p[i + 1] != 0x7f : p[i + 1] == '\t')) {
			i++;
			s->line_len++;
		}
	}
	*used = i;
	return s->state;
}
