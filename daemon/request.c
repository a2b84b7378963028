/*
 * request.c - one HTTP request from arrival to its single reply.
 *
 * Owns: struct req (allocated in req_new, released by the one
 * req_reply_*(): wiped and kept for the next request, a few at most), the
 * request id, the copy of the body, the reply's bytes (status line, headers
 * with the security headers of every reply, body: built here in one buffer
 * that is reused from reply to reply, lent to the listener for the one send
 * call and wiped after it), the access-log line and the metrics observation.
 * Must never: log a body, a header value, a token or the query string; reply
 * twice; read the listener's parsed head after req_detach.
 *
 * Request ids are always generated here (16 random bytes, hex) and never
 * taken from the client: an incoming X-Request-Id could carry anything a
 * careless integrator puts in it (a client's UIC fits [A-Za-z0-9-]) and it
 * would end up in logs and audit records. The id is echoed as X-Request-Id.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "app.h"
#include "clock.h"
#include "http_parse.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "request.h"

#if defined(__SANITIZE_ADDRESS__)
#define REQ_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REQ_ASAN 1
#endif
#endif
#ifdef REQ_ASAN
#include <sanitizer/asan_interface.h>
/* A request kept for reuse stays poisoned until req_new hands it out again,
 * so a use after the reply is still caught. */
#define REQ_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define REQ_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define REQ_POISON(p, n) ((void)(p), (void)(n))
#define REQ_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Decode the path (raw[0..n)); NULL when it is absent, holds an encoded NUL
 * or an encoded '/' (which would make segment matching ambiguous). A short
 * path without any escape is the common case: it is copied into buf (of
 * REQ_PATH_INLINE bytes) as it is, which is what decoding would give. */
static char *req_decode_path(const char *target, size_t n, char *buf)
{
	size_t len = 0;
	char raw[8192], *p;

	if (n == 0 || target[0] != '/' || n >= sizeof(raw))
		return NULL;
	if (n < REQ_PATH_INLINE && memchr(target, '%', n) == NULL) {
		memcpy(buf, target, n);
		buf[n] = '\0';
		return buf;
	}
	memcpy(raw, target, n);
	raw[n] = '\0';
	if (strstr(raw, "%2f") || strstr(raw, "%2F"))
		return NULL;
	p = evhttp_uridecode(raw, 0, &len);
	if (p == NULL)
		return NULL;
	if (strlen(p) != len) {
		free(p);
		return NULL;
	}
	return p;
}

/* The body may hold a client's contact, note or UIC: wiped, then freed. */
static void req_wipe_body(struct req *r)
{
	if (r->body != NULL)
		OPENSSL_cleanse(r->body, r->body_len + 1);
	if (r->body != r->body_empty)
		free(r->body);
	r->body = NULL;
	if (r->auth_hash[0] || r->auth_expect[0]) {
		OPENSSL_cleanse(r->auth_hash, sizeof(r->auth_hash));
		OPENSSL_cleanse(r->auth_expect, sizeof(r->auth_expect));
	}
}

/*
 * Request ids come from the CSPRNG 4 KiB at a time: RAND_bytes per request
 * costs a DRBG call, its locking and a getpid() (fork check) each time, one
 * of the few system calls a keep-alive request makes. The bytes are used
 * once each and wiped as they are handed out. The daemon never forks
 * (the pool would otherwise be duplicated into the child). Touched only
 * from the event loop thread.
 */
#define REQ_ID_POOL 4096
static unsigned char req_id_pool[REQ_ID_POOL];
static size_t req_id_used = REQ_ID_POOL;

static int req_id_random(unsigned char *out, size_t n)
{
	if (req_id_used + n > REQ_ID_POOL) {
		if (RAND_bytes(req_id_pool, sizeof(req_id_pool)) != 1)
			return -1;
		req_id_used = 0;
	}
	memcpy(out, req_id_pool + req_id_used, n);
	OPENSSL_cleanse(req_id_pool + req_id_used, n);
	req_id_used += n;
	return 0;
}

/*
 * Requests that have replied, wiped (every byte zero), for the next ones: a
 * struct req is larger than what malloc keeps in its per-thread cache, and a
 * keep-alive client sends one request after another. Touched only from the
 * event loop thread; a few at most are kept, the rest are freed.
 */
#define REQ_SPARE_MAX 16
static struct req *req_spare;
static int req_nspare;

/*
 * The reply's bytes, built in one buffer kept from reply to reply (loop
 * thread only): the listener borrows it for the send call and copies what
 * the socket does not take at once; it is wiped when the call returns. One
 * that grew for a large reply is given back rather than kept.
 */
#define REQ_OUT_KEEP (64u * 1024u)
static char *req_out;
static size_t req_out_cap;

static struct req *req_alloc(void)
{
	struct req *r = req_spare;

	if (r == NULL)
		return calloc(1, sizeof(*r));
	REQ_UNPOISON(r, sizeof(*r));
	req_spare = r->spare_next;
	req_nspare--;
	r->spare_next = NULL;
	return r;
}

/* Everything r owns goes; r itself is kept as a spare or freed. */
static void req_release(struct req *r)
{
	if (r->path != r->path_buf)
		free(r->path);
	free(r->query);
	free(r->oh);
	req_wipe_body(r);
	if (req_nspare >= REQ_SPARE_MAX) {
		free(r);
		return;
	}
	/* Nothing of this request (principal, certificate, parameters) is
	 * left for the next one to read; req_wipe_body wiped auth_expect. */
	explicit_bzero(r, offsetof(struct req, auth_expect));
	r->spare_next = req_spare;
	req_spare = r;
	req_nspare++;
	REQ_POISON(r, sizeof(*r));
}

struct req *req_new(struct app *app, const struct req_in *in)
{
	struct req *r;
	unsigned char rnd[16];
	static const char hex[] = "0123456789abcdef";
	const char *t = in->head->target, *q;
	size_t i;

	r = req_alloc();
	if (r == NULL)
		return NULL;
	r->start_ns = clock_mono_ns();
	r->app = app;
	r->in = in->head;
	r->conn = in->conn;
	r->hooks = in->hooks;
	r->close = in->close;
	r->method = in->head->method;

	if (req_id_random(rnd, sizeof(rnd)) != 0)
		goto fail;
	for (i = 0; i < sizeof(rnd); i++) {
		r->id[2 * i] = hex[rnd[i] >> 4];
		r->id[2 * i + 1] = hex[rnd[i] & 15];
	}
	r->id[32] = '\0';

	/* r->path stays NULL for an unusable target (not origin-form, a
	 * fragment, a bad escape): http_server.c answers 400 before any
	 * routing. */
	q = strchr(t, '?');
	if (strchr(t, '#') == NULL) {
		r->path = req_decode_path(t, q ? (size_t)(q - t) : strlen(t), r->path_buf);
		if (q != NULL && (r->query = strdup(q + 1)) == NULL)
			goto fail;
	}

	r->body_len = in->body_len;
	r->body = r->body_len == 0 ? r->body_empty : malloc(r->body_len + 1);
	if (r->body == NULL)
		goto fail;
	if (r->body_len > 0)
		memcpy(r->body, in->body, r->body_len);
	r->body[r->body_len] = '\0';

	/* Without a verified certificate the connection's is all zero, as r
	 * is already. */
	if (in->cert != NULL && in->cert->present)
		r->cert = *in->cert;
	if (in->peer_key != NULL)
		memcpy(r->peer_key, in->peer_key, sizeof(r->peer_key));
	return r;
fail:
	req_release(r);
	return NULL;
}

void req_spares_free(void)
{
	struct req *r;

	while ((r = req_spare) != NULL) {
		REQ_UNPOISON(r, sizeof(*r));
		req_spare = r->spare_next;
		free(r);
	}
	req_nspare = 0;
	free(req_out);
	req_out = NULL;
	req_out_cap = 0;
}

void req_detach(struct req *r)
{
	r->gone = 1;
	r->in = NULL;
	r->conn = NULL;
}

const char *req_header(const struct req *r, const char *name)
{
	if (r->in == NULL)
		return NULL;
	return hp_header_get(r->in, name);
}

const char *req_query_param(const struct req *r, const char *name, char *buf, size_t buflen)
{
	struct evkeyvalq q;
	const char *v;
	const char *ret = NULL;

	if (r->query == NULL || buflen == 0)
		return NULL;
	/* evhttp_parse_query_str initialises q first, also when it fails. */
	if (evhttp_parse_query_str(r->query, &q) != 0)
		goto done;
	v = evhttp_find_header(&q, name);
	/* A value that does not fit is not cut (a cut cursor or id would
	 * silently mean something else): it reads as absent. */
	if (v != NULL && strlen(v) < buflen) {
		memcpy(buf, v, strlen(v) + 1);
		ret = buf;
	}
done:
	evhttp_clear_headers(&q);
	return ret;
}

/* Append "name: value\r\n" to the reply's headers; 0, or -1 when it cannot. */
static int req_oh_add(struct req *r, const char *name, const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), need = nl + vl + 4;

	if (r->oh_len + need > r->oh_cap) {
		size_t cap = r->oh_cap ? r->oh_cap : 512;
		char *p;

		while (cap < r->oh_len + need)
			cap *= 2;
		p = realloc(r->oh, cap);
		if (p == NULL)
			return -1;
		r->oh = p;
		r->oh_cap = cap;
	}
	memcpy(r->oh + r->oh_len, name, nl);
	r->oh[r->oh_len + nl] = ':';
	r->oh[r->oh_len + nl + 1] = ' ';
	memcpy(r->oh + r->oh_len + nl + 2, value, vl);
	r->oh[r->oh_len + nl + 2 + vl] = '\r';
	r->oh[r->oh_len + nl + 3 + vl] = '\n';
	r->oh_len += need;
	return 0;
}

void req_add_header(struct req *r, const char *name, const char *value)
{
	const char *p;

	if (r->replied || name == NULL || value == NULL)
		return;
	/* No CR or LF in a name or value (header injection), nor a name
	 * that is not a token: such a header is dropped, as evhttp did. */
	for (p = name; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == ':')
			return;
	if (*name == '\0' || strpbrk(value, "\r\n") != NULL)
		return;
	if (strcasecmp(name, "Connection") == 0 && strcasecmp(value, "close") == 0) {
		r->close = 1;
		return;         /* written once, by req_finish */
	}
	if (req_oh_add(r, name, value) == 0 && strcasecmp(name, "Cache-Control") == 0)
		r->oh_cache_control = 1;
}

static const char *req_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
	}
}

/* "Date: ..." for this second, formatted once a second; the second is the
 * loop's cached time when there is a loop (no clock read per reply). Loop
 * thread only. Returns the length. */
static size_t req_date(const struct app *app, const char **out)
{
	static char buf[64];
	static size_t len;
	static time_t last = (time_t)-1;
	struct timeval tv;
	time_t now;
	struct tm tm;

	if (app != NULL && app->base != NULL && event_base_gettimeofday_cached(app->base, &tv) == 0)
		now = tv.tv_sec;
	else
		now = time(NULL);
	if (now != last && gmtime_r(&now, &tm) != NULL) {
		len = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		last = now;
	}
	*out = buf;
	return len;
}

static const char *req_method_str(int m)
{
	switch (m) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER";
	}
}

static char *req_out_reserve(size_t need)
{
	size_t cap = req_out_cap ? req_out_cap : 1024;
	char *p;

	if (need <= req_out_cap)
		return req_out;
	while (cap < need)
		cap *= 2;
	p = malloc(cap);
	if (p == NULL)
		return NULL;
	free(req_out);          /* empty: wiped after each reply */
	req_out = p;
	req_out_cap = cap;
	return p;
}

static void req_out_done(size_t len)
{
	explicit_bzero(req_out, len);
	if (req_out_cap > REQ_OUT_KEEP) {
		free(req_out);
		req_out = NULL;
		req_out_cap = 0;
	}
}

static char *req_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define REQ_PUT(p, lit) req_put((p), (lit), sizeof(lit) - 1)

static char *req_put_uint(char *p, uint64_t v)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* Status line, the handler's headers, the headers of every reply, framing
 * and body, into req_out; the length, or 0 when out of memory. */
static size_t req_build(struct req *r, int status, const char *ctype, const void *body,
			size_t nbytes)
{
	static const char fixed[] = "Strict-Transport-Security: max-age=63072000\r\n"
				    "X-Content-Type-Options: nosniff\r\n";
	int head = r->method == EVHTTP_REQ_HEAD;
	int with_body = !head && status >= 200 && status != 204 && status != 304;
	int no_length = (status >= 100 && status < 200) || status == 204 || status == 304;
	const char *reason = req_reason(status), *date, *conn = NULL;
	size_t reason_len = strlen(reason), ctype_len = ctype ? strlen(ctype) : 0;
	size_t date_len = req_date(r->app, &date), need;
	char *out, *p;

	if (r->close)
		conn = "Connection: close\r\n";
	else if (r->in->minor == 0)
		conn = "Connection: keep-alive\r\n";
	need = sizeof("HTTP/1.1 \r\n") + 24 + reason_len + r->oh_len +
	       sizeof("Content-Type: \r\n") + ctype_len + sizeof("Cache-Control: no-store\r\n") +
	       sizeof(fixed) + sizeof("X-Request-Id: \r\n") + sizeof(r->id) +
	       sizeof("Date: \r\n") + date_len + sizeof("Connection: keep-alive\r\n") +
	       sizeof("Content-Length: \r\n\r\n") + 24 + (with_body ? nbytes : 0);
	out = req_out_reserve(need);
	if (out == NULL)
		return 0;
	p = REQ_PUT(out, "HTTP/1.1 ");
	if (status >= 0)
		p = req_put_uint(p, (uint64_t)status);
	else
		p += snprintf(p, 24, "%d", status);
	*p++ = ' ';
	p = req_put(p, reason, reason_len);
	p = REQ_PUT(p, "\r\n");
	if (r->oh_len > 0)
		p = req_put(p, r->oh, r->oh_len);
	if (ctype != NULL) {
		p = REQ_PUT(p, "Content-Type: ");
		p = req_put(p, ctype, ctype_len);
		p = REQ_PUT(p, "\r\n");
	}
	/* Only the web pages' static files (ui.c) choose their own. */
	if (!r->oh_cache_control)
		p = REQ_PUT(p, "Cache-Control: no-store\r\n");
	p = REQ_PUT(p, fixed);
	p = REQ_PUT(p, "X-Request-Id: ");
	p = req_put(p, r->id, strlen(r->id));
	p = REQ_PUT(p, "\r\nDate: ");
	p = req_put(p, date, date_len);
	p = REQ_PUT(p, "\r\n");
	if (conn != NULL)
		p = req_put(p, conn, strlen(conn));
	if (!no_length) {
		p = REQ_PUT(p, "Content-Length: ");
		p = req_put_uint(p, nbytes);
		p = REQ_PUT(p, "\r\n");
	}
	p = REQ_PUT(p, "\r\n");
	if (with_body && nbytes > 0)
		p = req_put(p, body, nbytes);
	return (size_t)(p - out);
}

/* The one exit: headers, the reply's bytes to the listener (or nothing, for
 * a detached request), log, count, release. */
static void req_finish(struct req *r, int status, const char *ctype, const void *body,
		       size_t nbytes)
{
	uint64_t dur_us;
	const char *route = r->route_name ? r->route_name : "unmatched";
	const struct req_hooks *hooks = r->hooks;

	if (r->conn != NULL && hooks != NULL && hooks->send != NULL) {
		size_t len;

		/* While draining, let keep-alive clients go; HTTP/1.0 ones stay
		 * only when they asked to. */
		if (r->app != NULL && r->app->draining)
			r->close = 1;
		if (r->in == NULL || !r->in->keep_alive)
			r->close = 1;
		len = req_build(r, status, ctype, body, nbytes);
		if (len == 0) {
			/* Out of memory: the connection cannot be answered
			 * sensibly; the listener closes it. */
			hooks->send(hooks->arg, r->conn, NULL, 0, 1);
		} else {
			hooks->send(hooks->arg, r->conn, req_out, len, r->close);
			/* The reply may carry an opened contact or note. */
			req_out_done(len);
		}
	}
	r->replied = 1;

	dur_us = (clock_mono_ns() - r->start_ns) / 1000u;
	log_event(LOG_INFO, r->id, "access",
		  "method=%s route=%s status=%d bytes=%zu duration_ms=%.3f cert=%s role=%s%s",
		  req_method_str(r->method), route, status, nbytes, (double)dur_us / 1000.0,
		  r->cert.present ? "yes" : "no", role_to_str(r->who.role),
		  r->gone ? " client_gone=1" : "");
	if (r->app != NULL)
		metrics_observe_request(r->app->metrics, route, status, dur_us);

	req_release(r);
	if (hooks != NULL)
		hooks->done(hooks->arg);
}

void req_reply_raw(struct req *r, int status, const char *content_type, const void *data,
		   size_t len)
{
	req_finish(r, status, content_type, data, len);
}

void req_reply_json(struct req *r, int status, json_t *body)
{
	char *text = NULL;
	size_t len;

	if (body != NULL) {
		/* 15 significant digits: 0.076 stays 0.076, not 0.0759999... */
		text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
		json_decref(body);
		if (text == NULL) {
			static const char oom[] = "{\"error\":{\"code\":\"internal_error\","
						  "\"message\":\"internal error\"}}";
			req_reply_raw(r, 500, "application/json; charset=utf-8", oom,
				      sizeof(oom) - 1);
			return;
		}
	}
	len = text ? strlen(text) : 0;
	req_reply_raw(r, status, "application/json; charset=utf-8", text ? text : "", len);
	/* The reply may carry an opened contact or note. */
	if (text)
		OPENSSL_cleanse(text, len);
	free(text);
}

void req_reply_error(struct req *r, int status, const char *code, const char *message,
		     const char *field)
{
	json_t *err = json_object();
	json_t *body = json_object();

	if (err != NULL && body != NULL) {
		json_object_set_new(err, "code", json_string(code));
		json_object_set_new(err, "message", json_string(message));
		if (field != NULL)
			json_object_set_new(err, "field", json_string(field));
		json_object_set_new(body, "error", err);
		err = NULL;
	} else {
		json_decref(body);
		body = NULL;
	}
	json_decref(err);
	req_reply_json(r, status, body);
}

void req_reply_unavailable(struct req *r, int retry_after_s)
{
	char v[16];

	snprintf(v, sizeof(v), "%d", retry_after_s > 0 ? retry_after_s : 1);
	req_add_header(r, "Retry-After", v);
	req_reply_error(r, 503, "unavailable", "service temporarily unavailable", NULL);
}
