/*
 * ctl_import.c - `referralctl worker import FILE.csv [--apply]`.
 *
 * Owns: reading the CSV (header row naming organisation_id, kind, handle,
 * regions, languages, capacity; one worker a line), checking each line
 * before anything is sent, one POST /v1/workers per valid line with --apply
 * (dry run without), the report of every line's result, and the progress
 * bar (on a terminal only; piped output gets plain lines).
 * Must never: send a line that failed the local check; write anything in a
 * dry run; stop at the first refused line (every line gets its result).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#include <openssl/crypto.h>

#include "ctl.h"

/* ------------------------------------------------------------ import */

static const char *const import_cols[] = { "organisation_id", "kind", "handle", "regions",
					   "languages", "capacity", NULL };
#define NCOLS 6

struct import_rec {
	int line;
	char *f[NCOLS];
	long capacity;
	char why[256];   /* empty = valid */
};

static int is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? s[i] != '-' : !strchr("0123456789abcdefABCDEF", s[i]))
			return 0;
	}
	return 1;
}

static int is_handle(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					     "0123456789._-") == n;
}

static int list_empty(const char *s)
{
	json_t *l = ctl_str_list(s);
	int empty = json_array_size(l) == 0;

	json_decref(l);
	return empty;
}

/* The daemon validates again; this catches what is plainly wrong before
 * anything is sent, so a dry run says which lines would fail. */
static void import_check(struct import_rec *r, struct import_rec *all, size_t n)
{
	char *end;

	if (!is_uuid(r->f[0]))
		snprintf(r->why, sizeof(r->why), "organisation_id is not a UUID");
	else if (strcmp(r->f[1], "harm_reduction") != 0 && strcmp(r->f[1], "legal_support") != 0)
		snprintf(r->why, sizeof(r->why), "kind must be harm_reduction or legal_support");
	else if (!is_handle(r->f[2]))
		snprintf(r->why, sizeof(r->why), "handle must be 1-64 of A-Z a-z 0-9 . _ -");
	else if (list_empty(r->f[3]))
		snprintf(r->why, sizeof(r->why), "regions is empty");
	else if (list_empty(r->f[4]))
		snprintf(r->why, sizeof(r->why), "languages is empty");
	else if (!*r->f[5] || (r->capacity = strtol(r->f[5], &end, 10), *end) || r->capacity < 0 ||
		 r->capacity > 1000)
		snprintf(r->why, sizeof(r->why), "capacity must be an integer 0..1000");
	if (r->why[0])
		return;
	for (struct import_rec *o = all; o < r && o < all + n; o++) {
		if (!o->why[0] && strcmp(o->f[0], r->f[0]) == 0 && strcmp(o->f[2], r->f[2]) == 0) {
			snprintf(r->why, sizeof(r->why), "handle repeats line %d", o->line);
			return;
		}
	}
}

struct progress {
	int on;          /* stdout is a terminal */
	size_t total, done;
};

static void progress_draw(const struct progress *p)
{
	int width = 30, fill;

	if (!p->on || p->total == 0)
		return;
	fill = (int)(p->done * (size_t)width / p->total);
	printf("\r\033[K[");
	for (int i = 0; i < width; i++)
		putchar(i < fill ? '#' : '.');
	printf("] %zu/%zu", p->done, p->total);
	fflush(stdout);
}

/* One record's result: above the bar on a terminal, a plain line otherwise. */
static void progress_line(struct progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress_line(struct progress *p, const char *fmt, ...)
{
	va_list ap;

	if (p->on)
		printf("\r\033[K");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	p->done++;
	progress_draw(p);
	if (!p->on)
		fflush(stdout);
}

int ctl_worker_import(struct ctx *c, const char *file, int apply)
{
	struct import_rec *recs = NULL;
	struct progress pg = { c->tty_out, 0, 0 };
	struct csv_row row = { 0 };
	struct csv csv;
	size_t len = 0, n = 0, cap = 0, ok = 0, bad = 0;
	char err[200], *text = ctl_read_file(file, &len, 0);
	int map[NCOLS], rc;

	if (!text)
		ctl_die("%s: %s", file, strerror(errno));
	csv_init(&csv, text, len);
	if (csv_next(&csv, &row, err, sizeof(err)) != 1)
		ctl_die("%s: no header row", file);
	for (int k = 0; k < NCOLS; k++) {
		map[k] = -1;
		for (size_t j = 0; j < row.n; j++)
			if (strcmp(row.field[j], import_cols[k]) == 0)
				map[k] = (int)j;
		if (map[k] < 0)
			ctl_die("%s: header lacks column %s (needs organisation_id,kind,handle,"
				  "regions,languages,capacity)", file, import_cols[k]);
	}
	if (row.n != NCOLS)
		ctl_die("%s: header has %zu columns, expected the %d known ones", file, row.n, NCOLS);
	for (;;) {
		struct import_rec *r;
		int got = csv_next(&csv, &row, err, sizeof(err));

		if (got == 0)
			break;
		if (n == cap) {
			struct import_rec *nr = realloc(recs, (cap = cap ? cap * 2 : 64) * sizeof(*nr));

			if (!nr)
				ctl_die("out of memory");
			recs = nr;
		}
		r = &recs[n++];
		memset(r, 0, sizeof(*r));
		r->line = csv.line;
		if (got < 0) {
			/* A malformed line cannot be resynchronised: stop here. */
			snprintf(r->why, sizeof(r->why), "%s", err);
			for (int k = 0; k < NCOLS; k++)
				r->f[k] = strdup("");
			break;
		}
		if (row.n == 1 && row.field[0][0] == '\0') {
			n--;  /* a blank line */
			continue;
		}
		for (int k = 0; k < NCOLS; k++)
			r->f[k] = strdup(row.n == NCOLS ? row.field[map[k]] : "");
		if (row.n != NCOLS)
			snprintf(r->why, sizeof(r->why), "%zu fields, expected %d", row.n, NCOLS);
		else
			import_check(r, recs, n);
	}
	csv_row_free(&row);
	OPENSSL_cleanse(text, len);
	free(text);

	pg.total = n;
	progress_draw(&pg);
	for (size_t k = 0; k < n; k++) {
		struct import_rec *r = &recs[k];
		struct reply rep;
		char why[512];

		if (r->why[0]) {
			bad++;
			progress_line(&pg, "line %d: invalid: %s", r->line, r->why);
			continue;
		}
		if (!apply) {
			ok++;
			progress_line(&pg, "line %d: ok: would create worker %s", r->line, r->f[2]);
			continue;
		}
		json_t *body = ctl_worker_body(r->f[0], r->f[1], r->f[2], r->f[3], r->f[4], r->capacity);
		int hr = ctl_http(c, "POST", "/v1/workers", body, &rep);

		json_decref(body);
		if (hr < 0) {
			bad++;
			progress_line(&pg, "line %d: failed: no answer from the daemon", r->line);
			continue;
		}
		if (rep.status == 201 || rep.status == 200) {
			json_t *j = json_loads(rep.body ? rep.body : "", 0, NULL);
			const char *id = json_string_value(json_object_get(j, "id"));

			ok++;
			progress_line(&pg, "line %d: created worker %s id=%s", r->line, r->f[2],
				      id ? id : "?");
			json_decref(j);
		} else {
			bad++;
			ctl_describe_error(&rep, "POST", "/v1/workers", why, sizeof(why));
			progress_line(&pg, "line %d: failed: %s", r->line, why);
		}
		free(rep.body);
	}
	if (pg.on)
		printf("\r\033[K");
	if (apply)
		printf("import: %zu records: %zu created, %zu failed\n", n, ok, bad);
	else
		printf("import: %zu records: %zu valid, %zu invalid (dry run: nothing was written; "
		       "--apply writes)\n", n, ok, bad);
	rc = bad ? EXIT_API : 0;
	for (size_t k = 0; k < n; k++)
		for (int j = 0; j < NCOLS; j++)
			free(recs[k].f[j]);
	free(recs);
	return rc;
}

