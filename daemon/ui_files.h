/*
 * ui_files.h - the web pages compiled into the binary (build/ui_files.c,
 * written by daemon/gen_ui.sh from ui/). Served by ui.c.
 */
#ifndef REFD_UI_FILES_H
#define REFD_UI_FILES_H

#include <stddef.h>

struct ui_file {
	const char *path;          /* "/ui/app.js" */
	const char *content_type;
	const unsigned char *data; /* as written in ui/ */
	size_t len;
	const unsigned char *gz;   /* gzip -9 -n of data */
	size_t gzlen;
	const char *etag;          /* 32 hex digits of the SHA-256 of data, unquoted */
};

extern const struct ui_file refd_ui_files[];
extern const int refd_ui_files_count;
extern const char refd_ui_version[];  /* hash over every file */

/* ui.c: whether an Accept-Encoding value admits gzip (exposed for tests). */
int ui_accepts_gzip(const char *accept_encoding);

#endif
