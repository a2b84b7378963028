/*
 * ctl.h - referralctl's parts: its configuration file and the CSV reader of
 * `worker import`. (referralctl.c owns the commands and the HTTP client.)
 */
#ifndef REFCTL_CTL_H
#define REFCTL_CTL_H

#include <stddef.h>

#define CTL_NAME "referralctl"

struct ctl_conf {
	char *url;         /* https://host:port of the daemon's API listener */
	char *ca_file;     /* CA that signed the daemon's certificate (PEM) */
	char *token_file;  /* holds the bearer token; mode 0600 */
	char *client_cert; /* optional client certificate and key (PEM) */
	char *client_key;
	long timeout_s;    /* whole request, default 30 */
};

/* Parse "key = value" lines (# comments). Returns 0, or -1 with
 * "FILE:LINE: reason" in err. Values are never echoed in errors. */
int ctl_conf_parse(const char *path, const char *text, size_t len, struct ctl_conf *out,
		   char *err, size_t errlen);
void ctl_conf_free(struct ctl_conf *c);

/* CSV (RFC 4180: comma separated, "quoted" fields with "" inside, CRLF or
 * LF). One record at a time from a buffer. */
struct csv {
	const char *p, *end;
	int line;          /* line where the record returned last started */
	int next_line;
};
struct csv_row {
	char **field;
	size_t n, cap;
};
void csv_init(struct csv *c, const char *buf, size_t len);
/* 1 = a record in row, 0 = end of input, -1 = malformed (reason in err). */
int csv_next(struct csv *c, struct csv_row *row, char *err, size_t errlen);
void csv_row_free(struct csv_row *row);

/* ---- shared by referralctl.c (commands, HTTP) and ctl_import.c */

#include <jansson.h>

#define EXIT_API 1     /* the daemon refused (or a line of an import failed) */
#define EXIT_USAGE 2
#define EXIT_SETUP 3   /* configuration, token file, transport */
#define MAX_FILE (4 * 1024 * 1024)

struct ctx {
	struct ctl_conf conf;
	char token[600];
	void *curl;        /* CURL * */
	int tty_out;       /* stdout is a terminal: indented JSON, progress bar */
};

struct reply {
	long status;
	char *body;
	size_t len;
};

void ctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* A regular file's contents (NUL-terminated); secret: refuse one that group
 * or others can read, and never follow a symbolic link. NULL + errno. */
char *ctl_read_file(const char *path, size_t *len, int secret);
/* "a,b;c" -> ["a","b","c"] */
json_t *ctl_str_list(const char *s);
json_t *ctl_worker_body(const char *org, const char *kind, const char *handle,
			const char *regions, const char *languages, long capacity);
/* One request (body not consumed); 0 with r filled, -1 transport failure. */
int ctl_http(struct ctx *c, const char *method, const char *path, json_t *body,
	     struct reply *r);
void ctl_describe_error(const struct reply *r, const char *method, const char *path, char *buf,
			size_t n);
int ctl_worker_import(struct ctx *c, const char *file, int apply);

#endif
