/*
 * http_server.c - evhttp listeners wired to TLS through evhttp_set_bevcb.
 *
 * Owns: the listening socket (created here: SO_REUSEADDR, TCP_NODELAY, and
 * SO_REUSEPORT when [server] reuse_port is on), the per-connection record (tracked through SSL ex_data, so it dies exactly
 * when the connection's SSL does), the TLS bufferevent of each connection,
 * the limits (header and body size, timeout, methods, connection count,
 * spare descriptors), the refusal of ambiguous requests, and handing each
 * request to the router (which knows which routes each listener serves),
 * with the reply hooks request.c calls back through.
 * Must never: return NULL from the bevcb (evhttp 2.1 would then speak
 * plaintext on the TLS port); let EMFILE spin the loop; pass a request whose
 * framing is ambiguous to a handler.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "http_limits.h"
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

struct http_server;

/* One accepted connection. Owned by its SSL (freed in hs_conn_free_cb when
 * the SSL is freed), so it can never outlive or predecease the connection. */
struct hs_conn {
	struct http_server *s;          /* NULL once the server is gone */
	LIST_ENTRY(hs_conn) link;       /* in s->conn_list */
	struct http_head_scan scan;     /* raw check of the current request head */
	struct bufferevent *bev;        /* the connection's TLS bufferevent */
	struct event *deadline;         /* whole-request read deadline (slowloris), or
					   the reply's write deadline (write_deadline) */
	struct event *admit;            /* once, just after accept: the per-address cap */
	unsigned char addr_key[16];     /* the peer's address as a limit key */
	unsigned nodelay_set : 1;
	unsigned write_deadline : 1;    /* deadline is armed for the reply being sent */
	unsigned addr_counted : 1;      /* counted against its address (auth_limits.c) */
};

struct http_server {
	struct app *app;
	enum listener_kind kind;
	int require_cert;
	struct evhttp *http;
	struct evconnlistener *lev;     /* owned by evhttp's bound socket */
	struct event *resume_ev;        /* re-enable accepting after a pause */
	int ssl_idx;                    /* SSL ex_data index of struct hs_conn */
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

static void hs_reply_starts(void *arg, struct evhttp_connection *evcon);
static void hs_request_done(void *arg);

/*
 * The one piece of process-wide state here. libevent 2.1 calls a listener's
 * error callback with the listener's callback argument, which
 * evhttp_bind_listener replaced with the evhttp itself; so the EMFILE
 * handler finds its server by evhttp pointer in this short table. Touched
 * only from the event loop thread.
 */
#define HS_REGISTRY 8
static struct http_server *hs_registry[HS_REGISTRY];

static void hs_registry_set(struct http_server *s, int add)
{
	int i;

	for (i = 0; i < HS_REGISTRY; i++) {
		if (add && hs_registry[i] == NULL) {
			hs_registry[i] = s;
			return;
		}
		if (!add && hs_registry[i] == s) {
			hs_registry[i] = NULL;
			return;
		}
	}
}

static struct http_server *hs_registry_find(const void *http)
{
	int i;

	for (i = 0; i < HS_REGISTRY; i++)
		if (hs_registry[i] != NULL && (const void *)hs_registry[i]->http == http)
			return hs_registry[i];
	return NULL;
}

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
	struct http_server *s = hs_registry_find(arg);
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

/* Limits are reloadable: they are applied again at every accepted
 * connection (a few field stores, next to a TLS handshake), so a SIGHUP that
 * replaced app->cfg takes effect for the connections that follow. */
static void hs_apply_limits(struct http_server *s)
{
	const struct config *cfg = s->app->cfg;
	struct timeval tv;
	unsigned methods = EVHTTP_REQ_GET;
	long ms;

	if (cfg == NULL)
		return;
	evhttp_set_max_headers_size(s->http, (ev_ssize_t)cfg->max_header_size);
	evhttp_set_max_body_size(s->http, (ev_ssize_t)cfg->max_body_size);
	/* libevent 2.1 has one inactivity timeout per connection, for reading,
	 * writing and waiting between keep-alive requests alike: that is the
	 * idle timeout. The read timeout is a deadline for a whole request
	 * (head and body) of our own, see hs_deadline_cb; a stalled write is
	 * bounded by the idle timeout. */
	ms = cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms : 60000;
	tv = clock_tv(ms);
	evhttp_set_timeout_tv(s->http, &tv);
	if (s->kind == LISTENER_API) {
		if (http_methods_parse(cfg->allowed_methods, &methods) != 0)
			methods = EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
				  EVHTTP_REQ_PATCH | EVHTTP_REQ_DELETE;
	}
	s->methods = methods;
}

/* SSL ex_data destructor: the connection is gone. */
static void hs_conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
			    void *argp)
{
	struct hs_conn *c = ptr;
	struct http_server *s;

	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (c == NULL)
		return;
	/* The server frees the timers of its connections itself while the
	 * event base is alive; here only for connections closing before. */
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->admit != NULL)
		event_free(c->admit);
	s = c->s;
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

/* Scan newly decrypted bytes of a request head for what the parser would
 * silently normalise. Runs when data is added to the connection's input,
 * before evhttp parses it. */
static void hs_scan_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct hs_conn *c = arg;
	struct evbuffer_ptr pos;
	struct evbuffer_iovec vec[8];
	size_t len = evbuffer_get_length(buf), start, used;
	int n, i;

	if (info->n_added == 0)
		return;
	/* New bytes of a request: from the first one, the whole request must
	 * arrive within the read timeout, however slowly it trickles in. */
	if (c->deadline != NULL && c->write_deadline) {
		/* The next request has begun: the previous reply went out. */
		evtimer_del(c->deadline);
		c->write_deadline = 0;
	}
	if (c->deadline != NULL && c->s != NULL && c->s->app->cfg != NULL &&
	    !evtimer_pending(c->deadline, NULL)) {
		long ms = c->s->app->cfg->read_timeout_ms;
		struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
		evtimer_add(c->deadline, &tv);
	}
	if (c->scan.state != HS_HEAD)
		return;
	start = info->n_added > len ? 0 : len - info->n_added;
	if (evbuffer_ptr_set(buf, &pos, start, EVBUFFER_PTR_SET) != 0)
		return;
	while (c->scan.state == HS_HEAD) {
		/* peek returns how many chunks the rest needs, fills up to 8 */
		n = evbuffer_peek(buf, -1, &pos, vec, 8);
		if (n <= 0)
			break;
		for (i = 0; i < n && i < 8 && c->scan.state == HS_HEAD; i++) {
			http_head_scan(&c->scan, vec[i].iov_base, vec[i].iov_len, &used);
			if (evbuffer_ptr_set(buf, &pos, used, EVBUFFER_PTR_ADD) != 0)
				return;
		}
		if (n <= 8)
			break;
	}
}

/* The previous request is complete; what is still buffered belongs to the
 * next one. */
static void hs_scan_rearm(struct hs_conn *c, struct bufferevent *bev)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_cb_info info;
	struct event *deadline = c->deadline;

	http_head_scan_reset(&c->scan);
	info.orig_size = 0;
	info.n_added = evbuffer_get_length(in);
	info.n_deleted = 0;
	/* Bytes a client pipelined while the previous request was read are
	 * scanned now, but the deadline starts only with fresh data: evhttp
	 * reads nothing more while a request is being answered, so a slow
	 * handler must not count against the client. */
	c->deadline = NULL;
	if (info.n_added > 0)
		hs_scan_cb(in, &info, c);
	c->deadline = deadline;
}

/* The request did not arrive in time: end the connection as evhttp does on
 * its own timeouts (it sends nothing, frees the connection). */
static void hs_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hs_conn *c = arg;
	int writing;

	(void)fd;
	(void)what;
	writing = c->write_deadline;
	c->write_deadline = 0;
	/* Written out in time (the buffer drained): nothing to do. */
	if (writing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		return;
	log_info(writing ? "write_timeout" : "request_timeout", "listener=%s",
		 c->s && c->s->kind == LISTENER_OPS ? "ops" : "api");
	if (c->s != NULL)
		metrics_add(c->s->app->metrics, writing ? M_WRITE_TIMEOUTS : M_REQUEST_TIMEOUTS, 1);
	bufferevent_trigger_event(c->bev, (writing ? BEV_EVENT_WRITING : BEV_EVENT_READING) |
					  BEV_EVENT_TIMEOUT, 0);
}

/*
 * Just after accept, on the next loop turn (evhttp has given the bufferevent
 * its socket by then; the bufferevent callback runs before it has one): count
 * the connection against its address, or end it at once when that address
 * has [limits] connections_per_address open already. Idle connections from
 * one place can thus never fill max_connections and pause every listener.
 */
static void hs_admit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hs_conn *c = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	evutil_socket_t sock;

	(void)fd;
	(void)what;
	if (c->s == NULL || c->bev == NULL)
		return;
	sock = bufferevent_getfd(c->bev);
	if (sock < 0 || getpeername(sock, (struct sockaddr *)&ss, &len) != 0)
		return;
	ratelimit_addr_key((struct sockaddr *)&ss, c->addr_key);
	if (limits_conn_open(c->s->app->limits, c->s->app->cfg, c->addr_key) == 0) {
		c->addr_counted = 1;
		return;
	}
	log_info("connection_refused", "reason=connections_per_address listener=%s",
		 c->s->kind == LISTENER_OPS ? "ops" : "api");
	if (c->s->app->metrics != NULL)
		metrics_add(c->s->app->metrics, M_REFUSED_PER_ADDRESS, 1);
	shutdown(sock, SHUT_RDWR);
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, 0);
}

/* A bufferevent that can never carry data: evhttp's bufferevent_setfd on it
 * fails and the connection is dropped. Used when TLS setup fails, because
 * returning NULL would make evhttp serve plaintext. */
static struct bufferevent *hs_reject_bev(struct event_base *base)
{
	struct bufferevent *pair[2];

	if (bufferevent_pair_new(base, 0, pair) != 0) {
		/* Not even a few bytes left: the only answer that cannot
		 * become a plaintext listener is to stop. */
		log_error("tls_setup_failed", "reason=out_of_memory");
		abort();
	}
	bufferevent_free(pair[1]);
	return pair[0];
}

static struct bufferevent *hs_bevcb(struct event_base *base, void *arg)
{
	struct http_server *s = arg;
	struct hs_conn *c;
	SSL *ssl;
	struct bufferevent *bev;

	hs_apply_limits(s);
	ssl = tls_server_new_ssl(s->app->tls, s->require_cert);
	if (ssl == NULL)
		goto reject;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		SSL_free(ssl);
		goto reject;
	}
	if (!SSL_set_ex_data(ssl, s->ssl_idx, c)) {
		free(c);
		SSL_free(ssl);
		goto reject;
	}
	c->deadline = evtimer_new(base, hs_deadline_cb, c);
	c->admit = evtimer_new(base, hs_admit_cb, c);
	if (c->deadline == NULL || c->admit == NULL) {
		SSL_free(ssl);          /* frees c (not yet counted) */
		goto reject;
	}
	c->s = s;
	LIST_INSERT_HEAD(&s->conn_list, c, link);
	s->conns++;
	http_head_scan_reset(&c->scan);

	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		SSL_free(ssl);          /* frees c and uncounts it */
		goto reject;
	}
	c->bev = bev;
	/* Peers that close without close_notify are ordinary on the web. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	if (evbuffer_add_cb(bufferevent_get_input(bev), hs_scan_cb, c) == NULL) {
		bufferevent_free(bev);
		goto reject;
	}
	hs_balance(s);
	if (s->kind == LISTENER_API) {
		struct timeval now = { 0, 0 };
		evtimer_add(c->admit, &now);
	}
	return bev;
reject:
	log_warn("tls_setup_failed", "listener=%s", s->kind == LISTENER_OPS ? "ops" : "api");
	return hs_reject_bev(base);
}

static struct hs_conn *hs_conn_of(struct http_server *s, struct evhttp_request *ev,
				  struct bufferevent **bevp)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;

	*bevp = bev;
	return ssl ? SSL_get_ex_data(ssl, s->ssl_idx) : NULL;
}

static void hs_request_cb(struct evhttp_request *ev, void *arg)
{
	struct http_server *s = arg;
	struct bufferevent *bev = NULL;
	struct hs_conn *c = hs_conn_of(s, ev, &bev);
	struct http_hdr_check hc;
	struct evkeyval *kv;
	const char *bad = NULL;
	struct req *r;
	int one = 1;

	if (c != NULL && c->deadline != NULL)
		evtimer_del(c->deadline);       /* the request is complete */
	if (c != NULL && !c->nodelay_set && bev != NULL) {
		/* Inherited from the listener on Linux; set anyway, once. */
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->nodelay_set = 1;
	}
	r = req_new(s->app, ev);
	if (r == NULL) {
		evhttp_send_error(ev, 503, NULL);
		return;
	}
	r->hooks = &s->hooks;
	s->in_flight++;

	if (c == NULL)
		bad = "no_connection_state";
	else if (c->scan.state == HS_BAD)
		bad = c->scan.bad;
	if (bad == NULL) {
		http_hdr_check_init(&hc);
		for (kv = evhttp_request_get_input_headers(ev)->tqh_first; kv != NULL;
		     kv = kv->next.tqe_next) {
			if (http_hdr_check_one(&hc, kv->key, kv->value) != 0)
				break;
		}
		if (http_hdr_check_end(&hc) != 0)
			bad = hc.bad;
	}
	if (bad != NULL) {
		/* Never reuse a connection whose framing is in doubt. */
		log_event(LOG_WARN, r->id, "request_rejected", "reason=%s", bad);
		req_add_header(r, "Connection", "close");
		req_reply_error(r, 400, "bad_request", "malformed or ambiguous request", NULL);
		return;
	}
	hs_scan_rearm(c, bev);

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
	s->hooks.reply_starts = hs_reply_starts;
	s->hooks.done = hs_request_done;
	s->hooks.arg = s;
	s->kind = kind;
	s->require_cert = require_cert;
	s->ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, hs_conn_free_cb);
	if (s->ssl_idx < 0) {
		snprintf(err, errlen, "listen: no SSL ex_data index");
		goto fail;
	}
	s->want_spare = app->cfg ? app->cfg->spare_fds : 0;
	if (s->want_spare > HS_MAX_SPARE)
		s->want_spare = HS_MAX_SPARE;
	hs_spare_fill(s);
	if (s->nspare < s->want_spare) {
		snprintf(err, errlen, "listen: cannot reserve %d spare descriptors", s->want_spare);
		goto fail;
	}
	s->resume_ev = evtimer_new(app->base, hs_resume_cb, s);
	s->http = evhttp_new(app->base);
	if (s->resume_ev == NULL || s->http == NULL) {
		snprintf(err, errlen, "listen: out of memory");
		goto fail;
	}
	/* Without lingering close a client still sending an oversized body
	 * gets a reset instead of the 413. */
	evhttp_set_flags(s->http, EVHTTP_SERVER_LINGERING_CLOSE);
	evhttp_set_bevcb(s->http, hs_bevcb, s);
	/* evhttp parses only these (TRACE and CONNECT never); the configured
	 * subset is enforced in hs_request_cb so refusals are 405 in the
	 * protocol's JSON shape rather than evhttp's 501 page. */
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						    EVHTTP_REQ_PUT | EVHTTP_REQ_PATCH |
						    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(s->http, hs_request_cb, s);
	hs_apply_limits(s);

	fd = hs_listen_socket(hostport, app->cfg->reuse_port, err, errlen);
	if (fd < 0)
		goto fail;
	s->lev = evconnlistener_new(app->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (s->lev == NULL) {
		close(fd);
		snprintf(err, errlen, "listen: %s: cannot watch the socket", hostport);
		goto fail;
	}
	if (evhttp_bind_listener(s->http, s->lev) == NULL) {
		evconnlistener_free(s->lev);
		s->lev = NULL;
		snprintf(err, errlen, "listen: %s: cannot bind evhttp", hostport);
		goto fail;
	}
	evconnlistener_set_error_cb(s->lev, hs_accept_error);
	s->listening = 1;
	hs_registry_set(s, 1);
	return s;
fail:
	if (s->http)
		evhttp_free(s->http);
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

/* A reply is about to be queued on evcon: from now on it must be written out
 * within write_timeout, or the connection is closed. */
static void hs_reply_starts(void *arg, struct evhttp_connection *evcon)
{
	struct http_server *s = arg;
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	struct hs_conn *c = ssl && s && !s->freed ? SSL_get_ex_data(ssl, s->ssl_idx) : NULL;
	long ms;
	struct timeval tv;

	/* libevent 2.1's one inactivity timeout (idle_timeout) would let a
	 * client that stops reading hold the connection that long; the reply
	 * must be written out within write_timeout instead. */
	if (c == NULL || c->deadline == NULL || s->app->cfg == NULL)
		return;
	ms = s->app->cfg->write_timeout_ms;
	tv = clock_tv(ms);
	evtimer_del(c->deadline);
	c->write_deadline = 1;
	evtimer_add(c->deadline, &tv);
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
	hs_registry_set(s, 0);
	/* Connections' records outlive us only as orphans. */
	LIST_FOREACH(c, &s->conn_list, link) {
		c->s = NULL;
		if (c->deadline != NULL) {
			event_free(c->deadline);
			c->deadline = NULL;
		}
		if (c->admit != NULL) {
			event_free(c->admit);
			c->admit = NULL;
		}
		/* The limit tables outlive the server, and these will close
		 * now without it: give their counts back. */
		if (c->addr_counted) {
			limits_conn_close(s->app->limits, c->addr_key);
			c->addr_counted = 0;
		}
	}
	LIST_INIT(&s->conn_list);
	s->conns = 0;
	/* Frees the listener and every connection; requests still being
	 * handled are detached by request.c's close callback. */
	evhttp_free(s->http);
	s->http = NULL;
	s->lev = NULL;
	event_free(s->resume_ev);
	while (s->nspare > 0)
		close(s->spare[--s->nspare]);
	if (s->in_flight <= 0)
		free(s);
}
