/*
 * ctl_csv.c - the CSV reader of `referralctl worker import`.
 *
 * Owns: splitting a buffer into records and fields (RFC 4180 quoting, LF or
 * CRLF line ends, a final line with or without its end), the strings of the
 * current row (freed on the next record or by csv_row_free).
 * Must never: read past the buffer; accept a quote in the middle of an
 * unquoted field or text after a closing quote (a malformed line is reported
 * with its number, never guessed at); print field contents in an error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#define CSV_MAX_FIELDS 256
#define CSV_MAX_FIELD 65536

void csv_init(struct csv *c, const char *buf, size_t len)
{
	c->p = buf;
	c->end = buf + len;
	c->line = 0;
	c->next_line = 1;
	/* A UTF-8 byte order mark, as spreadsheets write it. */
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		c->p += 3;
}

static void row_clear(struct csv_row *row)
{
	for (size_t i = 0; i < row->n; i++)
		free(row->field[i]);
	row->n = 0;
}

void csv_row_free(struct csv_row *row)
{
	row_clear(row);
	free(row->field);
	row->field = NULL;
	row->cap = 0;
}

static int row_push(struct csv_row *row, const char *s, size_t len)
{
	char *dup;

	if (row->n == row->cap) {
		size_t cap = row->cap ? row->cap * 2 : 8;
		char **nf = realloc(row->field, cap * sizeof(*nf));

		if (!nf)
			return -1;
		row->field = nf;
		row->cap = cap;
	}
	dup = malloc(len + 1);
	if (!dup)
		return -1;
	memcpy(dup, s, len);
	dup[len] = '\0';
	row->field[row->n++] = dup;
	return 0;
}

int csv_next(struct csv *c, struct csv_row *row, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t blen = 0, bcap = 0;
	int rc = -1;

	row_clear(row);
	if (c->p >= c->end)
		return 0;
	c->line = c->next_line;
	for (;;) {
		int quoted = 0;

		blen = 0;
		if (c->p < c->end && *c->p == '"') {
			quoted = 1;
			c->p++;
		}
		for (;;) {
			char ch;

			if (c->p >= c->end) {
				if (quoted) {
					snprintf(err, errlen, "line %d: unterminated quoted field", c->line);
					goto out;
				}
				break;
			}
			ch = *c->p;
			if (quoted) {
				if (ch == '"') {
					if (c->p + 1 < c->end && c->p[1] == '"') {
						c->p += 2;
					} else {
						c->p++;
						quoted = 0;
						if (c->p < c->end && *c->p != ',' && *c->p != '\n' &&
						    !(*c->p == '\r' && c->p + 1 < c->end && c->p[1] == '\n')) {
							snprintf(err, errlen, "line %d: text after a closing "
								 "quote", c->next_line);
							goto out;
						}
						break;
					}
				} else {
					if (ch == '\n')
						c->next_line++;
					c->p++;
				}
			} else {
				if (ch == ',' || ch == '\n' ||
				    (ch == '\r' && c->p + 1 < c->end && c->p[1] == '\n'))
					break;
				if (ch == '"') {
					snprintf(err, errlen, "line %d: a quote inside an unquoted field",
						 c->line);
					goto out;
				}
				c->p++;
			}
			if (blen + 1 > CSV_MAX_FIELD) {
				snprintf(err, errlen, "line %d: field too long", c->line);
				goto out;
			}
			if (blen + 1 >= bcap) {
				size_t cap = bcap ? bcap * 2 : 64;
				char *nb = realloc(buf, cap);

				if (!nb)
					goto oom;
				buf = nb;
				bcap = cap;
			}
			buf[blen++] = quoted && ch == '"' ? '"' : ch;
		}
		if (row->n >= CSV_MAX_FIELDS) {
			snprintf(err, errlen, "line %d: more than %d fields", c->line, CSV_MAX_FIELDS);
			goto out;
		}
		if (row_push(row, buf ? buf : "", blen) < 0)
			goto oom;
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		/* End of the record: a line end or the end of the input. */
		if (c->p < c->end && *c->p == '\r')
			c->p++;
		if (c->p < c->end && *c->p == '\n')
			c->p++;
		c->next_line++;
		break;
	}
	rc = 1;
	goto out;
oom:
	snprintf(err, errlen, "line %d: out of memory", c->line);
out:
	free(buf);
	if (rc < 0)
		row_clear(row);
	return rc;
}
