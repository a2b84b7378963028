/*
 * http_server.c - the listeners: TLS and HTTP/1.1 keep-alive on the event
 * loop, straight on the socket (SSL_read and SSL_write, no evhttp).
 *
 * Owns: the listening socket (created here: SO_REUSEADDR, TCP_NODELAY, and
 * SO_REUSEPORT when [server] reuse_port is on), the accepted connections
 * (struct hs_conn: the socket, its SSL and when its buffers are given back,
 * the decrypted input and what is left of the reply being written), their
 * state (handshake, head, body, being handled, writing, lingering close),
 * the limits (header and body size, the request,
 * write and idle timeouts, methods, connection count and per address, spare
 * descriptors), the refusal of ambiguous requests (http_limits.c's rules,
 * applied by http_parse.c), pipelining (one request at a time, the next one
 * read from what is buffered once the reply is out), and handing each request
 * to the router (which knows which routes each listener serves), with the
 * reply hook request.c calls back through.
 * Must never: serve anything but TLS on a listener; let EMFILE spin the loop;
 * pass a request whose framing is ambiguous to a handler; read a request's
 * body past max_body_size or its head past max_header_size; free a
 * connection whose request a handler still holds without detaching it.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "http_limits.h"
#include "http_parse.h"
#include "auth_limits.h"
#include "http_server.h"
#include "ratelimit.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "router.h"
#include "tls.h"

#define HS_MAX_SPARE 1024
#define HS_BACKLOG 511
#define HS_IN_MIN 4096                  /* input buffer of a connection, at first */
#define HS_LINGER_MS 2000               /* reading and dropping after a refusal */
#define HS_BUFFERS_IDLE_MS 1000         /* idle keep-alive: OpenSSL's buffers go */

enum hs_state {
	C_HANDSHAKE = 0,
	C_HEAD,         /* waiting for (the rest of) a request head */
	C_BODY,         /* the head is parsed, its body is being read */
	C_HANDLING,     /* a handler holds the request */
	C_WRITING,      /* the reply (or a 100 Continue) is being written */
	C_LINGER,       /* refused and shut for writing: input is read and dropped */
};

struct http_server;

/* One accepted connection. */
struct hs_conn {
	struct http_server *s;          /* NULL once the server is gone */
	LIST_ENTRY(hs_conn) link;       /* in s->conn_list */
	evutil_socket_t fd;
	SSL *ssl;
	struct event *rd, *wr, *timer;
	enum hs_state state;
	unsigned rd_on : 1, wr_on : 1, timer_on : 1;
	unsigned in_process : 1;        /* inside hs_process: free only at its end */
	unsigned dead : 1;              /* to be freed when hs_process returns */
	unsigned read_wants_write : 1;  /* SSL_read asked for the socket to be writable */
	unsigned close_after : 1;       /* end the connection once out is written */
	unsigned linger : 1;            /* ... by a lingering close */
	unsigned continue_sent : 1;     /* out is a 100 Continue: then read the body */
	unsigned addr_counted : 1;      /* counted against its address (auth_limits.c) */
	unsigned cert_done : 1;
	unsigned bufs_freed : 1;        /* OpenSSL's buffers given back since the last read */
	uint64_t t_idle;                /* last request done (ns, monotonic) */
	uint64_t t_first;               /* first byte of the current request */
	uint64_t t_write;               /* the socket first refused the reply */
	uint64_t timer_at;
	unsigned char *in;              /* decrypted input */
	size_t in_len, in_cap;
	size_t scanned;                 /* bytes of in fed to scan */
	struct http_head_scan scan;
	size_t head_len, body_len;      /* of the current request, once its head is parsed */
	struct hp_request rq;
	const char *wbuf;               /* what is being written: out, or a reply lent
	                                 * by request.c during hs_send, or a constant */
	char *out;                      /* the rest of a reply the socket refused; owned */
	size_t out_len, out_off;        /* of wbuf */
	struct req *r;                  /* the request a handler holds */
	size_t max_head, max_body;      /* limits, from the configuration at accept */
	long read_ms, write_ms, idle_ms;
	struct peer_cert cert;
	unsigned char addr_key[16];     /* the peer's address as a limit key */
};

struct http_server {
	struct app *app;
	enum listener_kind kind;
	int require_cert;
	struct evconnlistener *lev;
	struct event *resume_ev;        /* re-enable accepting after a pause */
	int conns;
	int in_flight;
	int stopped;                    /* drain: never accept again */
	int paused_full;                /* max_connections reached */
	int paused_err;                 /* accept failed without spare fds */
	int listening;                  /* current state of the listener */
	int freed;                      /* http_server_free ran; waiting for in_flight */
	LIST_HEAD(, hs_conn) conn_list;
	unsigned methods;               /* allowed methods (EVHTTP_REQ_* mask) */
	int spare[HS_MAX_SPARE];
	int nspare;
	int want_spare;
	struct req_hooks hooks;         /* handed to each request (request.c) */
};

static void hs_send(void *arg, void *conn, const char *reply, size_t len, int close);
static void hs_request_done(void *arg);
static void hs_process(struct hs_conn *c);
static int hs_write(struct hs_conn *c);

static void hs_update_listener(struct http_server *s)
{
	int want;

	if (s->lev == NULL)
		return;
	want = !s->stopped && !s->freed && !s->paused_full && !s->paused_err;
	if (want == s->listening)
		return;
	if (want)
		evconnlistener_enable(s->lev);
	else
		evconnlistener_disable(s->lev);
	s->listening = want;
}

/*
 * max_connections counts the API listeners together (public and mTLS). The
 * ops listener has a budget of the same size of its own, so a flood on the
 * public port never blinds monitoring and load-balancer probes.
 */
static void hs_balance(struct http_server *self)
{
	struct http_server *all[3] = { self, NULL, NULL };
	int total = 0, i, full, was = 0;
	int max = self->app->cfg ? self->app->cfg->max_connections : 0;

	if (self->kind == LISTENER_API) {
		if (self->app->api != self && self->app->api && self->app->api->kind == LISTENER_API)
			all[1] = self->app->api;
		if (self->app->mtls != self && self->app->mtls &&
		    self->app->mtls->kind == LISTENER_API)
			all[2] = self->app->mtls;
	}
	for (i = 0; i < 3; i++)
		if (all[i] != NULL)
			total += all[i]->conns;
	full = max > 0 && total >= max;
	for (i = 0; i < 3; i++) {
		if (all[i] == NULL || all[i]->freed)
			continue;
		was |= all[i]->paused_full;
		all[i]->paused_full = full;
		hs_update_listener(all[i]);
	}
	if (full && !was)
		log_warn("accept_paused", "reason=max_connections listener=%s connections=%d",
			 self->kind == LISTENER_OPS ? "ops" : "api", total);
	else if (!full && was)
		log_info("accept_resumed", "listener=%s connections=%d",
			 self->kind == LISTENER_OPS ? "ops" : "api", total);
}

static void hs_spare_fill(struct http_server *s)
{
	while (s->nspare < s->want_spare) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			break;
		s->spare[s->nspare++] = fd;
	}
}

static void hs_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_server *s = arg;

	(void)fd;
	(void)what;
	hs_spare_fill(s);
	s->paused_err = 0;
	hs_update_listener(s);
}

/*
 * accept() failed. Out of descriptors, the listener would stay readable and
 * the loop would spin: give one spare back, accept the waiting connection
 * and close it at once (the client sees a clean close rather than a hang),
 * then take the spare again. Without a spare, or on other errors, pause
 * accepting briefly.
 */
static void hs_accept_error(struct evconnlistener *lev, void *arg)
{
	struct http_server *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, 100 * 1000 };

	if (s == NULL) {
		/* Unknown listener (cannot happen): at least do not spin. */
		evconnlistener_disable(lev);
		return;
	}
	if ((err == EMFILE || err == ENFILE) && s->nspare > 0) {
		int fd;

		close(s->spare[--s->nspare]);
		fd = accept(evconnlistener_get_fd(lev), NULL, NULL);
		if (fd >= 0)
			close(fd);
		hs_spare_fill(s);
		metrics_add(s->app->metrics, M_ACCEPT_REFUSED, 1);
		return;
	}
	log_warn("accept_failed", "errno=%d spare=%d", err, s->nspare);
	s->paused_err = 1;
	hs_update_listener(s);
	evtimer_add(s->resume_ev, &tv);
}

/* Limits are reloadable: they are read again at every accepted connection,
 * so a SIGHUP that replaced app->cfg takes effect for the connections that
 * follow. */
static void hs_apply_limits(struct http_server *s, struct hs_conn *c)
{
	const struct config *cfg = s->app->cfg;
	unsigned methods = EVHTTP_REQ_GET;

	if (c != NULL) {
		c->max_head = cfg ? cfg->max_header_size : 8192;
		c->max_body = cfg ? cfg->max_body_size : 65536;
		c->idle_ms = cfg && cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms : 60000;
		c->read_ms = cfg && cfg->read_timeout_ms > 0 ? cfg->read_timeout_ms : 10000;
		c->write_ms = cfg && cfg->write_timeout_ms > 0 ? cfg->write_timeout_ms : 10000;
	}
	if (cfg == NULL)
		return;
	if (s->kind == LISTENER_API) {
		if (http_methods_parse(cfg->allowed_methods, &methods) != 0)
			methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				  EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE;
	}
	s->methods = methods;
}

/* OpenSSL's error queue must be empty before an I/O call for SSL_get_error
 * to be right about it; it nearly always is, and emptying it costs more than
 * looking. */
static void hs_err_clear(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

static const char *hs_name(const struct hs_conn *c)
{
	return c->s && c->s->kind == LISTENER_OPS ? "ops" : "api";
}

/* ---- events: each change only when the wanted state differs ---------------- */

static void hs_rd(struct hs_conn *c, int on)
{
	if (on && !c->rd_on)
		event_add(c->rd, NULL);
	else if (!on && c->rd_on)
		event_del(c->rd);
	c->rd_on = on ? 1 : 0;
}

static void hs_wr(struct hs_conn *c, int on)
{
	if (on && !c->wr_on)
		event_add(c->wr, NULL);
	else if (!on && c->wr_on)
		event_del(c->wr);
	c->wr_on = on ? 1 : 0;
}

/* The moment the current state must end by, or 0 for none. */
static uint64_t hs_deadline(const struct hs_conn *c)
{
	switch (c->state) {
	case C_HANDSHAKE:
		return c->t_idle + (uint64_t)c->idle_ms * 1000000u;
	case C_HEAD:
		if (c->in_len == 0)
			return c->t_idle + (uint64_t)c->idle_ms * 1000000u;
		return c->t_first + (uint64_t)c->read_ms * 1000000u;
	case C_BODY:
		return c->t_first + (uint64_t)c->read_ms * 1000000u;
	case C_WRITING:
		return c->t_write ? c->t_write + (uint64_t)c->write_ms * 1000000u : 0;
	case C_LINGER:
		return c->t_first + (uint64_t)HS_LINGER_MS * 1000000u;
	case C_HANDLING:
	default:
		return 0;
	}
}

/*
 * OpenSSL's read and write buffers (about 17 KiB each) stay with a busy
 * connection: released after every record, as SSL_MODE_RELEASE_BUFFERS
 * does, each request would allocate and free them again. A keep-alive
 * connection idle for HS_BUFFERS_IDLE_MS gives them back. When that is due,
 * or 0.
 */
static uint64_t hs_buffers_at(const struct hs_conn *c)
{
	if (c->state != C_HEAD || c->in_len > 0 || c->bufs_freed)
		return 0;
	return c->t_idle + (uint64_t)HS_BUFFERS_IDLE_MS * 1000000u;
}

/* One timer per connection, armed for the earliest deadline it may have; it
 * checks the real one when it fires (so a request costs no timer call). */
static void hs_arm(struct hs_conn *c)
{
	uint64_t d = hs_deadline(c), b = hs_buffers_at(c), now;
	struct timeval tv;

	if (b != 0 && (d == 0 || b < d))
		d = b;
	if (d == 0 || (c->timer_on && c->timer_at <= d))
		return;
	now = clock_mono_ns();
	d = d > now ? d - now : 0;
	tv.tv_sec = (time_t)(d / 1000000000u);
	tv.tv_usec = (suseconds_t)((d % 1000000000u) / 1000u) + 1;
	evtimer_add(c->timer, &tv);
	c->timer_at = now + d;
	c->timer_on = 1;
}

/* ---- the end of a connection ---------------------------------------------- */

static void hs_wipe_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

static void hs_conn_free(struct hs_conn *c)
{
	struct http_server *s = c->s;

	if (c->r != NULL) {
		/* A handler still holds the request: its reply only frees it. */
		req_detach(c->r);
		c->r = NULL;
	}
	event_free(c->rd);
	event_free(c->wr);
	event_free(c->timer);
	SSL_free(c->ssl);
	ERR_clear_error();
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	hs_wipe_free(c->in, c->in_cap);
	hs_wipe_free(c->out, c->out_len);
	if (s != NULL) {
		if (c->addr_counted)
			limits_conn_close(s->app->limits, c->addr_key);
		LIST_REMOVE(c, link);
		s->conns--;
		if (!s->freed)
			hs_balance(s);
	}
	free(c);
}

/* Free now, or at the end of hs_process when inside it. */
static void hs_kill(struct hs_conn *c)
{
	if (c->in_process)
		c->dead = 1;
	else
		hs_conn_free(c);
}

/* The reply is out and the connection ends: close_notify, then either close
 * or (input may still be coming: a refused body) shut our side and read and
 * drop what the client still sends for a while, so it reads our answer
 * rather than a reset. -1 when c is freed already. */
static int hs_close(struct hs_conn *c)
{
	if (SSL_is_init_finished(c->ssl))
		SSL_shutdown(c->ssl);
	ERR_clear_error();
	if (!c->linger) {
		int freed = !c->in_process;

		hs_kill(c);
		return freed ? -1 : 0;
	}
	shutdown(c->fd, SHUT_WR);
	c->state = C_LINGER;
	c->t_first = clock_mono_ns();
	hs_wr(c, 0);
	hs_rd(c, 1);
	hs_arm(c);
	return 0;
}

static void hs_linger_read(struct hs_conn *c)
{
	char buf[16384];
	ssize_t n;
	int i;

	/* A bounded share of the loop per wakeup, however fast it comes. */
	for (i = 0; i < 64; i++) {
		n = read(c->fd, buf, sizeof(buf));
		if (n > 0)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		hs_kill(c);     /* EOF or error: done */
		return;
	}
}

static void hs_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hs_conn *c = arg;
	uint64_t now = clock_mono_ns(), d, b = hs_buffers_at(c);

	(void)fd;
	(void)what;
	c->timer_on = 0;
	if (b != 0 && now >= b) {
		/* OpenSSL refuses while a record is partly buffered; either
		 * way, not again before the next read. */
		(void)SSL_free_buffers(c->ssl);
		c->bufs_freed = 1;
	}
	d = hs_deadline(c);
	if (d == 0 || now < d) {
		hs_arm(c);
		return;
	}
	if (c->state == C_WRITING) {
		log_info("write_timeout", "listener=%s", hs_name(c));
		if (c->s != NULL)
			metrics_add(c->s->app->metrics, M_WRITE_TIMEOUTS, 1);
	} else if ((c->state == C_HEAD && c->in_len > 0) || c->state == C_BODY) {
		/* The whole request must arrive within read_timeout, however
		 * slowly it trickles in (slowloris): the connection ends,
		 * with no answer. */
		log_info("request_timeout", "listener=%s", hs_name(c));
		if (c->s != NULL)
			metrics_add(c->s->app->metrics, M_REQUEST_TIMEOUTS, 1);
	}
	/* Idle, handshake, linger: end quietly. */
	hs_conn_free(c);
}

/* ---- replies of the transport's own (before any handler) ------------------- */

/* Answer a request that never reaches a handler, in the protocol's error
 * shape, and end the connection after it. */
static void hs_refuse(struct hs_conn *c, int status, const char *code, const char *message,
		      const char *reason, int linger)
{
	struct req_in ri;
	struct req *r;

	if (reason != NULL)
		log_warn("request_rejected", "reason=%s listener=%s", reason, hs_name(c));
	c->close_after = 1;
	c->linger = linger ? 1 : 0;
	/* A head that did not parse has no headers to speak of. */
	if (c->rq.target == NULL) {
		memset(&c->rq, 0, sizeof(c->rq));
		c->rq.target = "/";
	}
	memset(&ri, 0, sizeof(ri));
	ri.head = &c->rq;
	ri.cert = c->cert_done ? &c->cert : NULL;
	ri.peer_key = c->addr_key;
	ri.conn = c;
	ri.hooks = &c->s->hooks;
	ri.close = 1;
	c->state = C_HANDLING;
	r = req_new(c->s->app, &ri);
	if (r == NULL) {
		hs_kill(c);
		return;
	}
	c->r = r;
	c->s->in_flight++;
	req_reply_error(r, status, code, message, NULL);
}

/* ---- reading ---------------------------------------------------------------- */

static int hs_grow(struct hs_conn *c, size_t want)
{
	unsigned char *p;
	size_t cap = c->in_cap ? c->in_cap : HS_IN_MIN;

	if (want <= c->in_cap)
		return 0;
	while (cap < want)
		cap *= 2;
	p = malloc(cap);
	if (p == NULL)
		return -1;
	if (c->in_len > 0)
		memcpy(p, c->in, c->in_len);
	hs_wipe_free(c->in, c->in_cap);
	c->in = p;
	c->in_cap = cap;
	return 0;
}

/* How much input may be buffered in the current state. */
static size_t hs_in_limit(const struct hs_conn *c)
{
	if (c->state == C_BODY)
		return c->head_len + c->body_len;
	return c->max_head + 1;         /* one more: a head over the limit shows */
}

/* Read what the socket (and OpenSSL's buffer) holds, then act on it. */
static void hs_read(struct hs_conn *c)
{
	for (;;) {
		size_t limit = hs_in_limit(c), room;
		int n, err;

		/* Enough to act on (a head over the limit, a whole body, or
		 * pipelined requests already here). */
		if (c->in_len >= limit)
			break;
		if (c->in_cap < c->in_len + 1 && hs_grow(c, c->in_len + 1) != 0) {
			hs_kill(c);
			return;
		}
		room = c->in_cap - c->in_len;
		if (room > limit - c->in_len)
			room = limit - c->in_len;
		if (room > INT_MAX)
			room = INT_MAX;
		hs_err_clear();
		c->bufs_freed = 0;      /* SSL_read takes its buffer again */
		n = SSL_read(c->ssl, c->in + c->in_len, (int)room);
		if (n > 0) {
			if (c->in_len == 0 && c->state == C_HEAD)
				c->t_first = clock_mono_ns();
			c->in_len += (size_t)n;
			if (SSL_has_pending(c->ssl))
				continue;
			break;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_READ)
			break;
		if (err == SSL_ERROR_WANT_WRITE) {
			c->read_wants_write = 1;
			hs_wr(c, 1);
			break;
		}
		/* EOF (with or without close_notify) or an error. */
		ERR_clear_error();
		hs_kill(c);
		return;
	}
	hs_process(c);
}

/* Dispatch the complete request in c->in[0..head_len+body_len). */
static void hs_dispatch(struct hs_conn *c)
{
	struct http_server *s = c->s;
	struct req_in ri;
	struct req *r;

	if (!c->cert_done) {
		/* Renegotiation is off: the peer's certificate is the same
		 * for every request of the connection. */
		tls_peer_identity(c->ssl, &c->cert);
		c->cert_done = 1;
	}
	memset(&ri, 0, sizeof(ri));
	ri.head = &c->rq;
	ri.body = c->in + c->head_len;
	ri.body_len = c->body_len;
	ri.cert = &c->cert;
	ri.peer_key = c->addr_key;
	ri.conn = c;
	ri.hooks = &s->hooks;
	ri.close = !c->rq.keep_alive;
	c->state = C_HANDLING;
	r = req_new(s->app, &ri);
	if (r == NULL) {
		static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
					   "Content-Length: 0\r\nConnection: close\r\n\r\n";

		hs_send(s, c, busy, sizeof(busy) - 1, 1);
		return;
	}
	c->r = r;
	s->in_flight++;
	if (r->path == NULL) {
		req_reply_error(r, 400, "bad_request", "invalid request target", NULL);
		return;
	}
	if (!(s->methods & (unsigned)r->method)) {
		req_reply_error(r, 405, "method_not_allowed", "method not allowed", NULL);
		return;
	}
	router_dispatch(r, s->kind == LISTENER_OPS ? ROUTE_OPS : ROUTE_API);
}

/* A complete head is at c->in[0..head_len): parse and check it. 0 to go on
 * reading its body, -1 when it was refused. */
static int hs_head(struct hs_conn *c)
{
	if (hp_parse_head((char *)c->in, c->head_len, &c->rq) != 0) {
		const char *why = c->rq.bad;

		memset(&c->rq, 0, sizeof(c->rq));
		hs_refuse(c, 400, "bad_request", "malformed or ambiguous request", why, 1);
		return -1;
	}
	if (c->rq.chunked) {
		hs_refuse(c, 411, "length_required", "a body needs a Content-Length",
			  "chunked_body", 1);
		return -1;
	}
	if (c->rq.bad_expect) {
		hs_refuse(c, 417, "expectation_failed", "only 100-continue is understood", NULL, 1);
		return -1;
	}
	if (c->rq.content_length > c->max_body) {
		hs_refuse(c, 413, "payload_too_large", "request body too large", NULL, 1);
		return -1;
	}
	c->body_len = (size_t)c->rq.content_length;
	c->state = C_BODY;
	if (c->rq.expect_continue && c->body_len > 0 && c->in_len < c->head_len + c->body_len) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

		c->wbuf = cont;
		c->out_len = sizeof(cont) - 1;
		c->out_off = 0;
		c->continue_sent = 1;
		c->state = C_WRITING;
		c->t_write = 0;
		if (hs_write(c) != 0)
			return -1;
	}
	return 0;
}

/* Act on buffered input: as many requests as are complete, one at a time. */
static void hs_process(struct hs_conn *c)
{
	c->in_process = 1;
	while (!c->dead) {
		if (c->state == C_HEAD) {
			size_t used = 0;

			if (c->in_len == 0)
				break;
			if (c->scan.state == HS_HEAD && c->scanned < c->in_len) {
				http_head_scan(&c->scan, c->in + c->scanned, c->in_len - c->scanned,
					       &used);
				c->scanned += used;
			}
			if (c->scan.state == HS_BAD) {
				hs_refuse(c, 400, "bad_request", "malformed or ambiguous request",
					  c->scan.bad, 1);
				continue;
			}
			if (c->scan.state != HS_DONE) {
				if (c->in_len > c->max_head)
					hs_refuse(c, 431, "headers_too_large",
						  "request headers too large", "head_too_large", 1);
				else
					break;          /* more to come */
				continue;
			}
			c->head_len = c->scanned;
			if (c->head_len > c->max_head) {
				hs_refuse(c, 431, "headers_too_large", "request headers too large",
					  "head_too_large", 1);
				continue;
			}
			if (hs_head(c) != 0)
				continue;
			continue;
		}
		if (c->state == C_BODY) {
			if (c->in_len < c->head_len + c->body_len) {
				if (hs_grow(c, c->head_len + c->body_len) != 0) {
					c->dead = 1;
					break;
				}
				break;
			}
			hs_dispatch(c);
			continue;
		}
		break;  /* handling, writing, lingering */
	}
	c->in_process = 0;
	if (c->dead) {
		hs_conn_free(c);
		return;
	}
	switch (c->state) {
	case C_HANDLING:
		/* A handler answers later (the database): no reading meanwhile,
		 * as evhttp did; what the client pipelines waits in the socket. */
		hs_rd(c, 0);
		break;
	case C_HEAD:
	case C_BODY:
		hs_rd(c, !c->read_wants_write);
		hs_arm(c);
		/* Records OpenSSL read ahead and holds: the socket will not
		 * say so. */
		if (!c->read_wants_write && SSL_has_pending(c->ssl) &&
		    c->in_len < hs_in_limit(c))
			event_active(c->rd, EV_READ, 1);
		break;
	default:
		break;
	}
}

/* ---- writing ---------------------------------------------------------------- */

/* The request in c->in is answered: drop it, keep what was pipelined. */
static void hs_next(struct hs_conn *c)
{
	size_t used = c->head_len + c->body_len;

	if (used > c->in_len)
		used = c->in_len;
	explicit_bzero(c->in, used);
	if (c->in_len > used)
		memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
	if (c->in_len == 0 && c->in_cap > HS_IN_MIN) {
		/* An idle keep-alive connection keeps no large buffer. */
		hs_wipe_free(c->in, c->in_cap);
		c->in = NULL;
		c->in_cap = 0;
	}
	c->head_len = c->body_len = 0;
	c->scanned = 0;
	http_head_scan_reset(&c->scan);
	hp_request_clear(&c->rq);
	c->state = C_HEAD;
	c->t_idle = clock_mono_ns();
	if (c->in_len > 0)
		c->t_first = c->t_idle;         /* pipelined: its clock starts now */
}

/* Write what is left of c->wbuf. 0 when done or waiting for the socket, -1
 * when c was killed. */
static int hs_write(struct hs_conn *c)
{
	while (c->out_off < c->out_len) {
		size_t left = c->out_len - c->out_off;
		int n, err;

		hs_err_clear();
		n = SSL_write(c->ssl, c->wbuf + c->out_off, left > (1u << 30) ? 1 << 30 : (int)left);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		err = SSL_get_error(c->ssl, n);
		if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
			/* The reply must be out within write_timeout. */
			if (c->t_write == 0)
				c->t_write = clock_mono_ns();
			hs_wr(c, err == SSL_ERROR_WANT_WRITE);
			hs_rd(c, err == SSL_ERROR_WANT_READ);
			hs_arm(c);
			return 0;
		}
		ERR_clear_error();
		hs_kill(c);
		return -1;
	}
	hs_wipe_free(c->out, c->out_len);
	c->out = NULL;
	c->wbuf = NULL;
	c->out_len = c->out_off = 0;
	c->t_write = 0;
	hs_wr(c, 0);
	if (c->continue_sent) {
		c->continue_sent = 0;
		c->state = C_BODY;
		if (!c->in_process) {
			/* The body may be here already (a client need not wait
			 * for the 100): look at it on the next loop turn. */
			hs_rd(c, 1);
			event_active(c->rd, EV_READ, 1);
			hs_arm(c);
		}
		return 0;
	}
	if (c->close_after)
		return hs_close(c) != 0 || c->dead ? -1 : 0;
	hs_next(c);
	if (!c->in_process) {
		/* Answered later than it arrived: go on with what is buffered
		 * (here or in OpenSSL) on the next loop turn, never from
		 * within the reply. */
		hs_rd(c, 1);
		if (c->in_len > 0 || SSL_has_pending(c->ssl))
			event_active(c->rd, EV_READ, 1);
		hs_arm(c);
	}
	return 0;
}

/* request.c's hook: the reply of c's request, lent for this call. Mostly
 * the socket takes it whole at once; what it does not is copied and written
 * from the copy as the socket allows. */
static void hs_send(void *arg, void *conn, const char *reply, size_t len, int close)
{
	struct hs_conn *c = conn;
	size_t rest;

	(void)arg;
	c->r = NULL;
	if (reply == NULL) {
		c->close_after = 1;
		hs_kill(c);
		return;
	}
	c->wbuf = reply;
	c->out_len = len;
	c->out_off = 0;
	c->t_write = 0;
	if (close)
		c->close_after = 1;
	if (c->s != NULL && c->s->app->draining)
		c->close_after = 1;
	c->state = C_WRITING;
	/* Killed (c may be freed), or written whole: nothing is left to keep. */
	if (hs_write(c) != 0 || c->state != C_WRITING || c->wbuf != reply)
		return;
	rest = c->out_len - c->out_off;
	c->out = malloc(rest);
	if (c->out == NULL) {
		hs_kill(c);
		return;
	}
	memcpy(c->out, reply + c->out_off, rest);
	c->wbuf = c->out;
	c->out_len = rest;
	c->out_off = 0;
}

/* ---- the handshake and the socket's events ------------------------------------ */

static void hs_handshake(struct hs_conn *c)
{
	int n, err;

	ERR_clear_error();
	n = SSL_do_handshake(c->ssl);
	if (n == 1) {
		c->state = C_HEAD;
		c->t_idle = clock_mono_ns();
		hs_wr(c, 0);
		hs_rd(c, 1);
		/* A client may send its request right behind its Finished. */
		hs_read(c);
		return;
	}
	err = SSL_get_error(c->ssl, n);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		hs_rd(c, err == SSL_ERROR_WANT_READ);
		hs_wr(c, err == SSL_ERROR_WANT_WRITE);
		return;
	}
	/* Plaintext, a refused or missing certificate, a bad protocol: the
	 * connection ends with no HTTP answer. */
	ERR_clear_error();
	hs_conn_free(c);
}

static void hs_rd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hs_conn *c = arg;

	(void)fd;
	(void)what;
	switch (c->state) {
	case C_HANDSHAKE:
		hs_handshake(c);
		break;
	case C_LINGER:
		hs_linger_read(c);
		break;
	case C_WRITING:
		hs_write(c);
		break;
	case C_HANDLING:
		hs_rd(c, 0);
		break;
	default:
		hs_read(c);
		break;
	}
}

static void hs_wr_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hs_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->state == C_HANDSHAKE) {
		hs_handshake(c);
	} else if (c->state == C_WRITING) {
		hs_write(c);
	} else if (c->read_wants_write) {
		c->read_wants_write = 0;
		hs_wr(c, 0);
		hs_read(c);
	} else {
		hs_wr(c, 0);
	}
}

static void hs_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
			 int salen, void *arg)
{
	struct http_server *s = arg;
	struct event_base *base = evconnlistener_get_base(lev);
	struct hs_conn *c;
	int one = 1;

	(void)salen;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->fd = fd;
	hs_apply_limits(s, c);
	ratelimit_addr_key(sa, c->addr_key);
	/* [limits] connections_per_address: idle connections from one place
	 * can never fill max_connections and pause every listener. */
	if (s->kind == LISTENER_API) {
		if (limits_conn_open(s->app->limits, s->app->cfg, c->addr_key) != 0) {
			log_info("connection_refused", "reason=connections_per_address listener=%s",
				 s->kind == LISTENER_OPS ? "ops" : "api");
			if (s->app->metrics != NULL)
				metrics_add(s->app->metrics, M_REFUSED_PER_ADDRESS, 1);
			evutil_closesocket(fd);
			free(c);
			return;
		}
		c->addr_counted = 1;
	}
	/* Inherited from the listener on Linux; set anyway. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ssl = tls_server_new_ssl(s->app->tls, s->require_cert);
	c->rd = event_new(base, fd, EV_READ | EV_PERSIST, hs_rd_cb, c);
	c->wr = event_new(base, fd, EV_WRITE | EV_PERSIST, hs_wr_cb, c);
	c->timer = evtimer_new(base, hs_timer_cb, c);
	c->s = s;
	LIST_INSERT_HEAD(&s->conn_list, c, link);
	s->conns++;
	if (c->ssl == NULL || c->rd == NULL || c->wr == NULL || c->timer == NULL ||
	    SSL_set_fd(c->ssl, fd) != 1) {
		log_warn("tls_setup_failed", "listener=%s", s->kind == LISTENER_OPS ? "ops" : "api");
		hs_conn_free(c);
		return;
	}
	SSL_set_accept_state(c->ssl);
	/* Partial writes: a large reply goes out record by record, and the
	 * retry after "would block" passes the rest, from the same buffer. */
	SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One read(2) per request rather than one for the record's header and
	 * one for its body. */
	SSL_set_read_ahead(c->ssl, 1);
	http_head_scan_reset(&c->scan);
	c->state = C_HANDSHAKE;
	c->t_idle = clock_mono_ns();
	hs_balance(s);
	hs_rd(c, 1);
	hs_arm(c);
}

/* Socket of our own: options set before listen() so accepted sockets
 * inherit them (TCP_NODELAY above all: without it Nagle and delayed ACKs
 * stall every reply, which bufferevent_openssl writes as several records). */
static int hs_listen_socket(const char *hostport, int reuse_port, char *err, unsigned long errlen)
{
	struct sockaddr_storage ss;
	int sslen = (int)sizeof(ss);
	int fd, one = 1;

	memset(&ss, 0, sizeof(ss));
	if (hostport == NULL ||
	    evutil_parse_sockaddr_port(hostport, (struct sockaddr *)&ss, &sslen) != 0) {
		snprintf(err, errlen, "listen: bad address");
		return -1;
	}
	if (((struct sockaddr_in *)&ss)->sin_port == 0) {
		snprintf(err, errlen, "listen: %s: a port is required", hostport);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "listen: %s: socket: %s", hostport, strerror(errno));
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0) {
		snprintf(err, errlen, "listen: %s: setsockopt: %s", hostport, strerror(errno));
		goto fail;
	}
	if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
		snprintf(err, errlen, "listen: %s: SO_REUSEPORT: %s", hostport, strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0) {
		snprintf(err, errlen, "listen: %s: bind: %s", hostport, strerror(errno));
		goto fail;
	}
	if (listen(fd, HS_BACKLOG) != 0) {
		snprintf(err, errlen, "listen: %s: listen: %s", hostport, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

struct http_server *http_server_new(struct app *app, const char *hostport,
				    enum listener_kind kind, int require_cert, char *err,
				    unsigned long errlen)
{
	struct http_server *s;
	int fd = -1;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "listen: out of memory");
		return NULL;
	}
	s->app = app;
	s->hooks.send = hs_send;
	s->hooks.done = hs_request_done;
	s->hooks.arg = s;
	s->kind = kind;
	s->require_cert = require_cert;
	LIST_INIT(&s->conn_list);
	s->want_spare = app->cfg ? app->cfg->spare_fds : 0;
	if (s->want_spare > HS_MAX_SPARE)
		s->want_spare = HS_MAX_SPARE;
	hs_spare_fill(s);
	if (s->nspare < s->want_spare) {
		snprintf(err, errlen, "listen: cannot reserve %d spare descriptors", s->want_spare);
		goto fail;
	}
	s->resume_ev = evtimer_new(app->base, hs_resume_cb, s);
	if (s->resume_ev == NULL) {
		snprintf(err, errlen, "listen: out of memory");
		goto fail;
	}
	hs_apply_limits(s, NULL);

	fd = hs_listen_socket(hostport, app->cfg->reuse_port, err, errlen);
	if (fd < 0)
		goto fail;
	s->lev = evconnlistener_new(app->base, hs_accept_cb, s, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (s->lev == NULL) {
		close(fd);
		snprintf(err, errlen, "listen: %s: cannot watch the socket", hostport);
		goto fail;
	}
	evconnlistener_set_error_cb(s->lev, hs_accept_error);
	s->listening = 1;
	return s;
fail:
	if (s->resume_ev)
		event_free(s->resume_ev);
	while (s->nspare > 0)
		close(s->spare[--s->nspare]);
	free(s);
	return NULL;
}

void http_server_stop_accepting(struct http_server *s)
{
	if (s == NULL)
		return;
	s->stopped = 1;
	hs_update_listener(s);
}

int http_server_in_flight(const struct http_server *s)
{
	return s ? s->in_flight : 0;
}

int http_server_connections(const struct http_server *s)
{
	return s ? s->conns : 0;
}

/* Called by request.c, through the hooks, exactly once per request. */
static void hs_request_done(void *arg)
{
	struct http_server *s = arg;

	s->in_flight--;
	if (s->freed && s->in_flight <= 0)
		free(s);
}

void http_server_free(struct http_server *s)
{
	struct hs_conn *c;

	if (s == NULL)
		return;
	s->freed = 1;
	/* Every connection ends now; requests still being handled are
	 * detached (their replies only free them). */
	while ((c = LIST_FIRST(&s->conn_list)) != NULL)
		hs_conn_free(c);
	s->conns = 0;
	if (s->lev != NULL)
		evconnlistener_free(s->lev);
	s->lev = NULL;
	event_free(s->resume_ev);
	while (s->nspare > 0)
		close(s->spare[--s->nspare]);
	if (s->in_flight <= 0)
		free(s);
}
