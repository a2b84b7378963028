/*
 * ui.c - the web pages under /ui/, served from the table gen_ui.sh compiled
 * into the binary (issue 14).
 *
 * Owns: mapping /ui, /ui/ and /ui/<file> onto that table, the headers of a
 * page (strict Content-Security-Policy, nosniff, no referrer, no framing),
 * caching (strong ETags, 304 on If-None-Match; the HTML revalidates every
 * time, an asset URL carrying the current version is immutable), and the
 * gzip representation when the client accepts it.
 * Must never: read the file system at run time, serve anything outside the
 * table, or serve a page that can run a script or a style that is not one of
 * these files (no inline script or style, no other origin).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

#include "api.h"
#include "request.h"
#include "ui_files.h"

/* connect-src 'self' is what the pages' fetch() to /v1 needs; nothing may
 * come from anywhere else, and no page may be framed or post elsewhere. */
static const char ui_csp[] =
	"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
	"form-action 'self'; frame-ancestors 'none'";

static const struct ui_file *ui_find(const char *path)
{
	for (int i = 0; i < refd_ui_files_count; i++)
		if (strcmp(refd_ui_files[i].path, path) == 0)
			return &refd_ui_files[i];
	return NULL;
}

/* Does Accept-Encoding allow gzip? Tokens separated by commas, each maybe
 * with ";q=..."; q=0 refuses. */
int ui_accepts_gzip(const char *ae)
{
	const char *p = ae;

	if (!ae)
		return 0;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *t = p, *semi;
		size_t tn;

		while (n > 0 && (*t == ' ' || *t == '\t')) {
			t++;
			n--;
		}
		semi = memchr(t, ';', n);
		tn = semi ? (size_t)(semi - t) : n;
		while (tn > 0 && (t[tn - 1] == ' ' || t[tn - 1] == '\t'))
			tn--;
		if ((tn == 4 && strncasecmp(t, "gzip", 4) == 0) || (tn == 1 && t[0] == '*')) {
			const char *q = semi ? semi + 1 : NULL;
			int refused = 0;

			while (q && q < t + n && (*q == ' ' || *q == '\t'))
				q++;
			if (q && q + 2 <= t + n && (q[0] == 'q' || q[0] == 'Q') && q[1] == '=') {
				/* q=0, q=0.0, q=0.000 refuse; anything else accepts. */
				const char *d = q + 2;
				refused = 1;
				while (d < t + n && *d != ' ' && *d != '\t') {
					if (*d != '0' && *d != '.')
						refused = 0;
					d++;
				}
			}
			if (!refused)
				return 1;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* If-None-Match lists the ETag we would send (either representation's): 304.
 * "*" matches too. W/ prefixes are ignored (weak comparison, RFC 9110). */
static int ui_not_modified(const char *inm, const char *etag)
{
	const char *p = inm;
	size_t el = strlen(etag);

	if (!inm)
		return 0;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		if (*p != '"')
			return 0;
		p++;
		if (strncmp(p, etag, el) == 0 && (p[el] == '"' || strncmp(p + el, "-gz\"", 4) == 0))
			return 1;
		p = strchr(p, '"');
		if (!p)
			return 0;
		p++;
	}
	return 0;
}

/* "v=<current version>" and nothing else: the URL names these exact bytes. */
static int ui_versioned(const char *query)
{
	size_t vl = strlen(refd_ui_version);

	return query && strncmp(query, "v=", 2) == 0 && strlen(query) == vl + 2 &&
	       strcmp(query + 2, refd_ui_version) == 0;
}

static void ui_headers(struct req *r)
{
	req_add_header(r, "Content-Security-Policy", ui_csp);
	req_add_header(r, "Referrer-Policy", "no-referrer");
	req_add_header(r, "X-Frame-Options", "DENY");
	req_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	req_add_header(r, "Cross-Origin-Resource-Policy", "same-origin");
	req_add_header(r, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
}

void ui_serve(struct req *r)
{
	const struct ui_file *f;
	const char *path = r->path;
	char etag[48];
	int gz, html;

	ui_headers(r);
	if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
		req_add_header(r, "Allow", "GET, HEAD");
		req_reply_error(r, 405, "method_not_allowed", "method not allowed on this path", NULL);
		return;
	}
	if (strcmp(path, "/ui") == 0) {
		req_add_header(r, "Location", "/ui/");
		req_reply_raw(r, 301, "text/plain; charset=utf-8", "/ui/\n", 5);
		return;
	}
	f = ui_find(strcmp(path, "/ui/") == 0 ? "/ui/index.html" : path);
	if (!f) {
		req_reply_error(r, 404, "not_found", "no such resource", NULL);
		return;
	}
	html = strstr(f->content_type, "text/html") != NULL;
	gz = ui_accepts_gzip(req_header(r, "Accept-Encoding"));
	snprintf(etag, sizeof(etag), "\"%s%s\"", f->etag, gz ? "-gz" : "");
	req_add_header(r, "ETag", etag);
	req_add_header(r, "Vary", "Accept-Encoding");
	req_add_header(r, "Cache-Control", !html && ui_versioned(r->query) ?
					 "public, max-age=31536000, immutable" : "no-cache");
	if (ui_not_modified(req_header(r, "If-None-Match"), f->etag)) {
		req_reply_raw(r, 304, NULL, NULL, 0);
		return;
	}
	if (gz) {
		req_add_header(r, "Content-Encoding", "gzip");
		req_reply_raw(r, 200, f->content_type, f->gz, f->gzlen);
	} else {
		req_reply_raw(r, 200, f->content_type, f->data, f->len);
	}
}
