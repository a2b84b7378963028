/*
 * request.c - one HTTP request from arrival to its single reply.
 *
 * Owns: struct req (allocated in req_new, freed by the one req_reply_*()),
 * the request id, the copy of the body, the peer certificate identity, the
 * security headers of every reply, the access-log line and the metrics
 * observation.
 * Must never: log a body, a header value, a token or the query string; reply
 * twice; touch the evhttp request after evhttp has freed it (see
 * req_on_close).
 *
 * Request ids are always generated here (16 random bytes, hex) and never
 * taken from the client: an incoming X-Request-Id could carry anything a
 * careless integrator puts in it (a client's UIC fits [A-Za-z0-9-]) and it
 * would end up in logs and audit records. The id is echoed as X-Request-Id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "app.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "request.h"
#include "tls.h"

/*
 * The connection closed while the request was ours. Two cases:
 * - evhttp detached the request from the connection first (the peer went
 *   away): the request is now ours alone and the reply must still be sent,
 *   which frees it;
 * - the connection is being freed with the request still queued on it
 *   (server shutdown): evhttp frees the request right after this callback,
 *   so we must forget it.
 */
static void req_on_close(struct evhttp_connection *evcon, void *arg)
{
	struct req *r = arg;

	(void)evcon;
	r->gone = 1;
	if (r->ev != NULL && evhttp_request_get_connection(r->ev) != NULL)
		r->ev = NULL;
	r->conn = NULL;
}

/* Decode the path; NULL when it is absent, holds an encoded NUL or an encoded
 * '/' (which would make segment matching ambiguous). */
static char *req_decode_path(const char *raw)
{
	size_t len = 0;
	char *p;

	if (raw == NULL || raw[0] != '/')
		return NULL;
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
	free(r->body);
	r->body = NULL;
	if (r->auth_hash[0]) {
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

struct req *req_new(struct app *app, struct evhttp_request *ev)
{
	struct req *r;
	const struct evhttp_uri *uri;
	struct evbuffer *in;
	struct bufferevent *bev;
	unsigned char rnd[16];
	static const char hex[] = "0123456789abcdef";
	size_t i;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->start_ns = clock_mono_ns();
	r->app = app;
	r->ev = ev;
	r->conn = evhttp_request_get_connection(ev);
	r->method = (int)evhttp_request_get_command(ev);

	if (req_id_random(rnd, sizeof(rnd)) != 0)
		goto fail;
	for (i = 0; i < sizeof(rnd); i++) {
		r->id[2 * i] = hex[rnd[i] >> 4];
		r->id[2 * i + 1] = hex[rnd[i] & 15];
	}
	r->id[32] = '\0';

	/* r->path stays NULL for an unusable target: http_server.c answers
	 * 400 before any routing. */
	uri = evhttp_request_get_evhttp_uri(ev);
	if (uri != NULL) {
		const char *q = evhttp_uri_get_query(uri);
		r->path = req_decode_path(evhttp_uri_get_path(uri));
		if (q != NULL && (r->query = strdup(q)) == NULL)
			goto fail;
	}

	in = evhttp_request_get_input_buffer(ev);
	r->body_len = in ? evbuffer_get_length(in) : 0;
	r->body = malloc(r->body_len + 1);
	if (r->body == NULL)
		goto fail;
	if (r->body_len > 0 &&
	    evbuffer_copyout(in, r->body, r->body_len) != (ev_ssize_t)r->body_len)
		goto fail;
	r->body[r->body_len] = '\0';

	if (r->conn != NULL) {
		bev = evhttp_connection_get_bufferevent(r->conn);
		tls_peer_identity(bev ? bufferevent_openssl_get_ssl(bev) : NULL, &r->cert);
		evhttp_connection_set_closecb(r->conn, req_on_close, r);
		ratelimit_addr_key(evhttp_connection_get_addr(r->conn), r->peer_key);
	}
	return r;
fail:
	free(r->path);
	free(r->query);
	req_wipe_body(r);
	free(r);
	return NULL;
}

const char *req_header(const struct req *r, const char *name)
{
	if (r->ev == NULL)
		return NULL;
	return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
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

void req_add_header(struct req *r, const char *name, const char *value)
{
	if (r->ev == NULL)
		return;
	/* evhttp_add_header refuses CR/LF in values (header injection). */
	evhttp_add_header(evhttp_request_get_output_headers(r->ev), name, value);
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

/*
 * evhttp queues the head and the body as separate buffer chains, and
 * bufferevent_openssl turns every chain into its own TLS record and write(2).
 * Nothing is written before the loop runs again, so joining a small reply
 * into one chain here halves the records and syscalls per request.
 *
 * bufferevent_openssl on a socket also writes only once the loop has polled
 * the socket writable: each reply cost an epoll_ctl to watch for writing, a
 * loop turn, the write, and an epoll_ctl to stop watching. A small reply is
 * written here at once instead, as the one SSL_write libevent would make
 * (same bytes, same buffer), and the bufferevent's write callback is run
 * deferred, as after its own write, so evhttp finishes the request in this
 * loop turn and the watch for writing is never armed (the changelist folds
 * the add and the delete). Whatever is not written (the socket is full, the
 * peer is gone, TLS wants to read) stays in the buffer for libevent, whose
 * retry passes the same bytes again, as OpenSSL requires.
 */
static void req_coalesce(struct req *r)
{
	struct bufferevent *bev;
	struct evbuffer *out;
	SSL *ssl;
	size_t len;
	unsigned char *p;
	int n;

	if (r->conn == NULL || r->gone)
		return;
	bev = evhttp_connection_get_bufferevent(r->conn);
	out = bev ? bufferevent_get_output(bev) : NULL;
	len = out ? evbuffer_get_length(out) : 0;
	if (len == 0 || len > 16384)
		return;
	p = evbuffer_pullup(out, -1);
	ssl = bufferevent_openssl_get_ssl(bev);
	if (p == NULL || ssl == NULL || !SSL_is_init_finished(ssl) ||
	    SSL_want(ssl) != SSL_NOTHING)
		return;
	ERR_clear_error();
	n = SSL_write(ssl, p, (int)len);
	if (n <= 0) {
		/* libevent's own write meets the same condition and reports it. */
		ERR_clear_error();
		return;
	}
	evbuffer_drain(out, (size_t)n);
	if (evbuffer_get_length(out) == 0)
		bufferevent_trigger(bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* The one exit: headers, send (or free the detached request), log, count,
 * release. body may be NULL; it is drained by evhttp. */
static void req_finish(struct req *r, int status, const char *ctype, struct evbuffer *body)
{
	struct evkeyvalq *h;
	size_t nbytes = body ? evbuffer_get_length(body) : 0;
	uint64_t dur_us;
	const char *route = r->route_name ? r->route_name : "unmatched";
	const struct req_hooks *hooks = r->hooks;

	r->replied = 1;
	/* Clear first: once the reply is out, evhttp may close the
	 * connection, and the callback must not find a freed req. */
	if (r->conn != NULL)
		evhttp_connection_set_closecb(r->conn, NULL, NULL);
	if (r->ev != NULL) {
		h = evhttp_request_get_output_headers(r->ev);
		if (ctype != NULL)
			evhttp_add_header(h, "Content-Type", ctype);
		/* Only the web pages' static files (ui.c) choose their own. */
		if (evhttp_find_header(h, "Cache-Control") == NULL)
			evhttp_add_header(h, "Cache-Control", "no-store");
		evhttp_add_header(h, "Strict-Transport-Security", "max-age=63072000");
		evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
		evhttp_add_header(h, "X-Request-Id", r->id);
		/* While draining, let keep-alive clients go. */
		if (r->app != NULL && r->app->draining && evhttp_find_header(h, "Connection") == NULL)
			evhttp_add_header(h, "Connection", "close");
		if (hooks != NULL && !r->gone)
			hooks->reply_starts(hooks->arg, r->conn);
		/* For a detached request (client gone) this only frees it. */
		evhttp_send_reply(r->ev, status, NULL, body);
		r->ev = NULL;
		req_coalesce(r);
	}

	dur_us = (clock_mono_ns() - r->start_ns) / 1000u;
	log_event(LOG_INFO, r->id, "access",
		  "method=%s route=%s status=%d bytes=%zu duration_ms=%.3f cert=%s role=%s%s",
		  req_method_str(r->method), route, status, nbytes, (double)dur_us / 1000.0,
		  r->cert.present ? "yes" : "no", role_to_str(r->who.role),
		  r->gone ? " client_gone=1" : "");
	if (r->app != NULL)
		metrics_observe_request(r->app->metrics, route, status, dur_us);

	free(r->path);
	free(r->query);
	req_wipe_body(r);
	free(r);
	if (hooks != NULL)
		hooks->done(hooks->arg);
}

void req_reply_raw(struct req *r, int status, const char *content_type, const void *data,
		   size_t len)
{
	struct evbuffer *b = evbuffer_new();

	/* Without a buffer the reply still goes out, with an empty body. */
	if (b != NULL && len > 0 && evbuffer_add(b, data, len) != 0) {
		evbuffer_free(b);
		b = NULL;
		status = 500;
	}
	req_finish(r, status, content_type, b);
	if (b != NULL)
		evbuffer_free(b);
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
