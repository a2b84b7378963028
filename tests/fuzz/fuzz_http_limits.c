/*
 * fuzz_http_limits.c - libFuzzer target for the request-framing checks of
 * http_limits.h: the raw head scan, the per-header checks, Content-Length
 * and the allowed-methods list.
 *
 * Owns: nothing but the fuzz harness. Must never: print the input or write
 * files; every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants (differential, so a logic slip shows up, not only memory bugs):
 * - the head scan reaches the same state, reason and consumed count whether
 *   the bytes arrive at once, one by one, or split at a point the input picks
 *   (the daemon feeds it whatever the socket delivered);
 * - a head the scan accepts splits into "name: value" lines, and the header
 *   checks then see only values free of control bytes other than tab;
 * - Content-Length accepts exactly 1..18 ASCII digits and returns their value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_limits.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static enum http_scan_state fuzz_scan_chunks(const uint8_t *p, size_t n, size_t step,
					     const char **bad, size_t *used_total)
{
	struct http_head_scan s;
	size_t off = 0;
	enum http_scan_state st = HS_HEAD;

	http_head_scan_reset(&s);
	while (off < n) {
		size_t len = n - off < step ? n - off : step;
		size_t used = (size_t)-1;

		st = http_head_scan(&s, p + off, len, &used);
		if (used > len)
			abort();
		off += used;
		if (st != HS_HEAD)
			break;
		if (used != len)
			abort();        /* still in the head: everything must be consumed */
	}
	*bad = s.bad;
	*used_total = off;
	if ((st == HS_BAD) != (s.bad != NULL))
		abort();
	return st;
}

/* The header lines of an accepted head through http_hdr_check_*. */
static void fuzz_headers(const uint8_t *p, size_t n)
{
	struct http_hdr_check c;
	char *head = malloc(n + 1), *line, *save = NULL;
	int first = 1;

	if (head == NULL)
		return;
	memcpy(head, p, n);
	head[n] = '\0';
	http_hdr_check_init(&c);
	for (line = strtok_r(head, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char *colon, *val;

		if (first) {            /* the request line */
			first = 0;
			continue;
		}
		colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		val = colon + 1;
		while (*val == ' ' || *val == '\t')
			val++;
		if (http_hdr_check_one(&c, line, val) == 0) {
			for (const unsigned char *v = (const unsigned char *)val; *v; v++)
				if ((*v < 0x20 && *v != '\t') || *v == 0x7f)
					abort();
		} else if (c.bad == NULL) {
			abort();
		}
	}
	if (http_hdr_check_end(&c) != 0 && c.bad == NULL)
		abort();
	if (c.content_length > 1 && c.bad == NULL)
		abort();
	free(head);
}

static void fuzz_content_length(const uint8_t *p, size_t n)
{
	char buf[32];
	uint64_t v = 0, want = 0;
	size_t i, len;
	int digits;

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	/* The parser sees a C string: an embedded NUL ends it. */
	len = strlen(buf);
	digits = len >= 1 && len <= 18;
	for (i = 0; i < len; i++) {
		if (buf[i] < '0' || buf[i] > '9')
			digits = 0;
		else
			want = want * 10 + (uint64_t)(buf[i] - '0');
	}
	if (http_content_length_parse(buf, &v) == 0) {
		if (!digits || v != want)
			abort();
	} else if (digits) {
		abort();
	}
}

static void fuzz_methods(const uint8_t *p, size_t n)
{
	char buf[128];
	unsigned mask = 0;

	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (http_methods_parse(buf, &mask) == 0 && mask == 0)
		abort();        /* an accepted list names at least one method */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum http_scan_state a, b, c;
	const char *ra, *rb, *rc;
	size_t ua, ub, uc, split;

	if (size < 1 || size > 16384)
		return 0;
	/* First byte: where to split the stream for the chunked scan. */
	split = (size_t)data[0] + 1;
	data++;
	size--;

	a = fuzz_scan_chunks(data, size, size ? size : 1, &ra, &ua);
	b = fuzz_scan_chunks(data, size, 1, &rb, &ub);
	c = fuzz_scan_chunks(data, size, split, &rc, &uc);
	if (a != b || a != c || ua != ub || ua != uc)
		abort();
	if ((ra == NULL) != (rb == NULL) || (ra && (strcmp(ra, rb) != 0 || strcmp(ra, rc) != 0)))
		abort();
	if (a == HS_DONE)
		fuzz_headers(data, ua);

	fuzz_content_length(data, size);
	fuzz_methods(data, size);
	return 0;
}
