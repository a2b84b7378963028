/*
 * webhook.c - one signed HTTPS POST with libevent's evhttp client over
 * bufferevent_openssl, on the daemon's event loop.
 *
 * Each delivery: parse the URL (https only, no user info), make an SSL with
 * SNI (names only: SNI carries no IP literals) and the expected identity set
 * on its verify parameters (X509_VERIFY_PARAM_set1_host for a name,
 * set1_ip_asc for an IP literal), wrap it in a connecting bufferevent, hand
 * that to an evhttp connection that resolves the host through evdns (never a
 * blocking getaddrinfo on the loop), and send one POST with the signature.
 * The request bytes sit in the bufferevent's output until the handshake has
 * verified the peer, so an endpoint with an untrusted or wrong-name
 * certificate never receives the body.
 *
 * Resolution: names go through evdns_getaddrinfo (the system's resolver
 * configuration and hosts file are read once, at start); numeric addresses
 * skip it. Every address a name resolves to is judged (netcheck.c): if any is
 * internal and internal targets are not allowed, nothing is sent
 * (WH_PRIVATE_TARGET). The connection then goes to the address that was
 * judged, never to a second lookup of the name, so a resolver that answers
 * differently the next time (DNS rebinding) cannot redirect it. The name
 * still sets SNI, the certificate check and the Host header. A deployment
 * without resolver configuration can still use numeric URLs.
 *
 * Lifetime: a delivery ends in webhook_finish(), which only records the
 * outcome and activates the delivery's reap event; the reap runs on a later
 * loop iteration, calls the owner's callback and frees the connection there.
 * That keeps every free out of evhttp's own callbacks (freeing a connection
 * from inside its request callback is unsafe) and guarantees the owner's
 * callback never runs inside webhook_post().
 *
 * Owns: the client SSL_CTX (TLS 1.2+, peer verification against the system CA
 * store or a configured CA file), the evdns base, every live delivery (a
 * list, so webhook_client_free can reap them all).
 * Must never: send a body before the endpoint's certificate and name were
 * verified; log or return the URL, secret, body or anything the endpoint
 * sent; follow redirects; read more than the response cap; call the owner's
 * callback twice.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "app.h"
#include "clock.h"
#include "netcheck.h"
#include "webhook.h"

#define WH_MAX_HEADERS 8192
#define WH_HOST_MAX 256

struct webhook_client {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *ctx;
	LIST_HEAD(, webhook_delivery) live; /* deliveries not yet freed */
	int nlive;
	int allow_private;
};

struct webhook_delivery {
	struct webhook_client *c;
	LIST_ENTRY(webhook_delivery) link; /* in c->live */
	struct evhttp_connection *conn;
	struct evhttp_request *req;   /* owned by evhttp once made; NULL after its callback */
	int req_made;                 /* req handed to evhttp_make_request */
	SSL *ssl;                     /* ours until a bufferevent takes it */
	struct evdns_getaddrinfo_request *dnsreq;
	int resolving;
	char *path;
	int port;
	struct event *deadline;
	struct event *reap;
	webhook_cb cb;
	void *arg;
	enum evhttp_request_error req_err;
	int have_req_err;
	int peer_spoke;               /* a TLS message came back: the TCP connection existed */
	int handshake_done;           /* the peer's certificate and name were verified */
	int finished;                 /* outcome recorded; reap pending */
	size_t max_response;
	struct timeval tv;
	enum webhook_outcome outcome;
	int status;
};

const char *webhook_outcome_to_str(enum webhook_outcome o)
{
	switch (o) {
	case WH_DELIVERED: return "delivered";
	case WH_HTTP_STATUS: return "http_status";
	case WH_TIMEOUT: return "timeout";
	case WH_TLS: return "tls";
	case WH_CONNECT: return "connect";
	case WH_TOO_LARGE: return "too_large";
	case WH_BAD_RESPONSE: return "bad_response";
	case WH_BAD_URL: return "bad_url";
	case WH_PRIVATE_TARGET: return "private_target";
	case WH_INTERNAL: return "internal";
	}
	return "unknown";
}

int webhook_sign(const char *secret, size_t secret_len, long long t, const char *body,
		 size_t body_len, char *out, size_t outlen)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char prefix[32];
	int plen, n;
	EVP_MAC *m = NULL;
	EVP_MAC_CTX *mctx = NULL;
	OSSL_PARAM params[2];
	size_t got = 0;
	int rc = -1;

	plen = snprintf(prefix, sizeof(prefix), "%lld.", t);
	if (plen < 0 || (size_t)plen >= sizeof(prefix))
		return -1;
	m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!m)
		goto fail;
	mctx = EVP_MAC_CTX_new(m);
	if (!mctx)
		goto fail;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	/* An empty key is legal HMAC but EVP_MAC_init wants a non-NULL pointer. */
	if (!EVP_MAC_init(mctx, (const unsigned char *)(secret ? secret : ""), secret_len, params) ||
	    !EVP_MAC_update(mctx, (const unsigned char *)prefix, (size_t)plen) ||
	    !EVP_MAC_update(mctx, (const unsigned char *)body, body_len) ||
	    !EVP_MAC_final(mctx, mac, &got, sizeof(mac)))
		goto fail;
	maclen = (unsigned int)got;
	n = snprintf(out, outlen, "t=%lld,v1=", t);
	if (n < 0 || (size_t)n + maclen * 2 + 1 > outlen)
		goto fail;
	for (unsigned int i = 0; i < maclen; i++)
		snprintf(out + n + 2 * i, 3, "%02x", mac[i]);
	rc = 0;
fail:
	OPENSSL_cleanse(mac, sizeof(mac));
	EVP_MAC_CTX_free(mctx);
	EVP_MAC_free(m);
	return rc;
}

struct webhook_client *webhook_client_new(struct event_base *base, const char *ca_file,
					  char *err, size_t errlen)
{
	struct webhook_client *c = calloc(1, sizeof(*c));

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->base = base;
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (!c->ctx) {
		snprintf(err, errlen, "cannot create the client TLS context");
		goto fail;
	}
	SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(c->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
					    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* Forward-secret AEAD suites only for TLS 1.2; TLS 1.3's defaults are fine. */
	if (SSL_CTX_set_cipher_list(c->ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1) {
		snprintf(err, errlen, "cipher list refused");
		goto fail;
	}
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (ca_file) {
		if (SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) != 1) {
			snprintf(err, errlen, "%s: cannot load CA certificates", ca_file);
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
		snprintf(err, errlen, "cannot load the system CA store");
		goto fail;
	}
	/* The resolver reads its configuration once, here, not on the loop's hot
	 * path. Without any (no resolv.conf), numeric URLs still work. */
	c->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
					      EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!c->dns)
		c->dns = evdns_base_new(base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (!c->dns) {
		snprintf(err, errlen, "cannot create the resolver");
		goto fail;
	}
	ERR_clear_error();
	return c;
fail:
	if (c->ctx)
		SSL_CTX_free(c->ctx);
	free(c);
	ERR_clear_error();
	return NULL;
}

void webhook_client_allow_private(struct webhook_client *c, int on)
{
	if (c)
		c->allow_private = on ? 1 : 0;
}

int webhook_client_active(const struct webhook_client *c)
{
	return c ? c->nlive : 0;
}

static void webhook_free(struct webhook_delivery *d)
{
	struct webhook_client *c = d->c;

	LIST_REMOVE(d, link);
	c->nlive--;
	/* A lookup still running: cancelling calls its callback with
	 * EVUTIL_EAI_CANCEL, which then touches nothing. */
	if (d->dnsreq) {
		struct evdns_getaddrinfo_request *q = d->dnsreq;

		d->dnsreq = NULL;
		d->resolving = 0;
		evdns_getaddrinfo_cancel(q);
	}
	/* Frees the pending request (without calling its callback) and the
	 * bufferevent with its SSL. */
	if (d->conn)
		evhttp_connection_free(d->conn);
	if (d->req && !d->req_made)
		evhttp_request_free(d->req);
	if (d->ssl)
		SSL_free(d->ssl);
	free(d->path);
	if (d->deadline)
		event_free(d->deadline);
	if (d->reap)
		event_free(d->reap);
	free(d);
}

void webhook_client_free(struct webhook_client *c)
{
	if (!c)
		return;
	while (!LIST_EMPTY(&c->live))
		webhook_free(LIST_FIRST(&c->live));
	if (c->dns)
		evdns_base_free(c->dns, 1);
	SSL_CTX_free(c->ctx);
	free(c);
}

/* Record the outcome once; the reap event does the rest on the next turn. */
static void webhook_finish(struct webhook_delivery *d, enum webhook_outcome o, int status)
{
	if (d->finished)
		return;
	d->finished = 1;
	d->outcome = o;
	d->status = status;
	evtimer_del(d->deadline);
	event_active(d->reap, EV_TIMEOUT, 0);
}

static void webhook_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct webhook_delivery *d = arg;
	webhook_cb cb = d->cb;
	void *cbarg = d->arg;
	enum webhook_outcome o = d->outcome;
	int status = d->status;

	(void)fd;
	(void)what;
	webhook_free(d);
	cb(cbarg, o, status);
}

static void webhook_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	webhook_finish(arg, WH_TIMEOUT, 0);
}

static void webhook_error_cb(enum evhttp_request_error e, void *arg)
{
	struct webhook_delivery *d = arg;

	d->req_err = e;
	d->have_req_err = 1;
}

/* What the TLS layer saw, recorded as it happens: evhttp resets the
 * connection (and the SSL's socket BIO) before it reports a failure, so
 * nothing can be asked afterwards. */
static void webhook_msg_cb(int write_p, int version, int content_type, const void *buf,
			   size_t len, SSL *ssl, void *arg)
{
	struct webhook_delivery *d = arg;

	(void)version;
	(void)content_type;
	(void)buf;
	(void)len;
	(void)ssl;
	if (!write_p)
		d->peer_spoke = 1;
}

static void webhook_info_cb(const SSL *ssl, int where, int ret)
{
	struct webhook_delivery *d = SSL_get_app_data(ssl);

	(void)ret;
	if (d && (where & SSL_CB_HANDSHAKE_DONE))
		d->handshake_done = 1;
}

/* Why did the request end without an answer? Nothing came back: the
 * connection never existed (refused, unreachable, unresolved) or timed out.
 * The peer spoke but the handshake did not finish: TLS (our verification
 * refused its certificate or name, or no common protocol). After the
 * handshake: evhttp's own reason. */
static enum webhook_outcome webhook_classify(struct webhook_delivery *d)
{
	int timeout = d->have_req_err && d->req_err == EVREQ_HTTP_TIMEOUT;

	ERR_clear_error();
	if (!d->peer_spoke)
		return timeout ? WH_TIMEOUT : WH_CONNECT;
	if (!d->handshake_done)
		return timeout ? WH_TIMEOUT : WH_TLS;
	if (d->have_req_err) {
		switch (d->req_err) {
		case EVREQ_HTTP_TIMEOUT: return WH_TIMEOUT;
		case EVREQ_HTTP_DATA_TOO_LONG: return WH_TOO_LARGE;
		case EVREQ_HTTP_INVALID_HEADER: return WH_BAD_RESPONSE;
		default: break;
		}
	}
	return WH_CONNECT;
}

static void webhook_done_cb(struct evhttp_request *req, void *arg)
{
	struct webhook_delivery *d = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;

	/* evhttp frees the request when this returns. */
	d->req = NULL;
	if (d->finished)
		return;
	if (code <= 0) {
		webhook_finish(d, webhook_classify(d), 0);
		return;
	}
	webhook_finish(d, code >= 200 && code < 300 ? WH_DELIVERED : WH_HTTP_STATUS, code);
}

/* Split an https URL; host_out without IPv6 brackets. Returns 0 or -1. */
static int webhook_parse_url(const char *url, char *host_out, size_t hostlen, int *port_out,
			     char **path_out, char *hosthdr, size_t hdrlen)
{
	struct evhttp_uri *u = evhttp_uri_parse_with_flags(url, 0);
	const char *scheme, *host, *path, *query;
	size_t n;
	int port, rc = -1;

	if (!u)
		return -1;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	port = evhttp_uri_get_port(u);
	if (!scheme || strcasecmp(scheme, "https") != 0 || !host || !*host ||
	    evhttp_uri_get_userinfo(u) != NULL)
		goto fail;
	if (port < 0)
		port = 443;
	if (port == 0 || port > 65535)
		goto fail;
	n = strlen(host);
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= hostlen)
		goto fail;
	memcpy(host_out, host, n);
	host_out[n] = '\0';
	if (!path || !*path)
		path = "/";
	n = strlen(path) + (query ? strlen(query) + 1 : 0) + 1;
	*path_out = malloc(n);
	if (!*path_out)
		goto fail;
	snprintf(*path_out, n, "%s%s%s", path, query ? "?" : "", query ? query : "");
	*port_out = port;
	/* The Host header as the URL had it: IPv6 in brackets, the port only when
	 * it is not https's own. */
	snprintf(hosthdr, hdrlen, "%s%s%s", strchr(host_out, ':') ? "[" : "", host_out,
		 strchr(host_out, ':') ? "]" : "");
	if (port != 443) {
		size_t used = strlen(hosthdr);

		snprintf(hosthdr + used, hdrlen - used, ":%d", port);
	}
	rc = 0;
fail:
	evhttp_uri_free(u);
	return rc;
}

/* The SSL for one connection: SNI for names, the identity the peer's
 * certificate must carry, and the observers webhook_classify reads. */
static SSL *webhook_ssl(struct webhook_client *c, struct webhook_delivery *d, const char *host)
{
	SSL *ssl = SSL_new(c->ctx);
	X509_VERIFY_PARAM *vp;
	unsigned char addr[16];
	int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;

	if (!ssl)
		return NULL;
	SSL_set_app_data(ssl, d);
	SSL_set_info_callback(ssl, webhook_info_cb);
	SSL_set_msg_callback(ssl, webhook_msg_cb);
	SSL_set_msg_callback_arg(ssl, d);
	vp = SSL_get0_param(ssl);
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
			goto fail;
	} else {
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1 ||
		    SSL_set_tlsext_host_name(ssl, host) != 1)
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/* Second half of a delivery: connect to the judged numeric address. */
static void webhook_connect(struct webhook_delivery *d, const char *addr)
{
	struct webhook_client *c = d->c;
	struct bufferevent *bev;

	bev = bufferevent_openssl_socket_new(c->base, -1, d->ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		webhook_finish(d, WH_INTERNAL, 0);
		return;
	}
	/* ssl now belongs to bev, and bev (below) to the connection. */
	d->ssl = NULL;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	d->conn = evhttp_connection_base_bufferevent_new(c->base, c->dns, bev, addr,
							 (unsigned short)d->port);
	if (!d->conn) {
		bufferevent_free(bev);
		webhook_finish(d, WH_INTERNAL, 0);
		return;
	}
	evhttp_connection_set_retries(d->conn, 0);
	evhttp_connection_set_max_headers_size(d->conn, WH_MAX_HEADERS);
	evhttp_connection_set_max_body_size(d->conn, d->max_response);
	evhttp_connection_set_timeout_tv(d->conn, &d->tv);
	d->req_made = 1;
	if (evhttp_make_request(d->conn, d->req, EVHTTP_REQ_POST, d->path) < 0) {
		d->req = NULL; /* freed by evhttp on failure */
		webhook_finish(d, WH_CONNECT, 0);
	}
}

/* Is this address one we may send to? */
static int webhook_addr_ok(const struct webhook_delivery *d, const struct sockaddr *sa)
{
	int in = netcheck_sockaddr_internal(sa);

	return in == 0 || (in == 1 && d->c->allow_private);
}

static void webhook_resolved_cb(int result, struct evutil_addrinfo *res, void *arg)
{
	struct webhook_delivery *d = arg;
	struct evutil_addrinfo *ai;
	char addr[INET6_ADDRSTRLEN];
	const void *bytes = NULL;
	int family = 0;

	if (result == EVUTIL_EAI_CANCEL) {
		if (res)
			evutil_freeaddrinfo(res);
		return;                     /* d is being freed */
	}
	d->dnsreq = NULL;
	d->resolving = 0;
	if (d->finished) {
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	if (result != 0 || !res) {
		if (res)
			evutil_freeaddrinfo(res);
		webhook_finish(d, WH_CONNECT, 0);
		return;
	}
	/* One internal address among several is enough to refuse: the
	 * connection must not depend on which one a retry would pick. */
	for (ai = res; ai; ai = ai->ai_next) {
		if (!webhook_addr_ok(d, ai->ai_addr)) {
			evutil_freeaddrinfo(res);
			webhook_finish(d, WH_PRIVATE_TARGET, 0);
			return;
		}
		if (!bytes && ai->ai_family == AF_INET) {
			family = AF_INET;
			bytes = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
		} else if (!bytes && ai->ai_family == AF_INET6) {
			family = AF_INET6;
			bytes = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
		}
	}
	if (!bytes || !inet_ntop(family, bytes, addr, sizeof(addr))) {
		evutil_freeaddrinfo(res);
		webhook_finish(d, WH_CONNECT, 0);
		return;
	}
	evutil_freeaddrinfo(res);
	webhook_connect(d, addr);
}

struct webhook_delivery *webhook_post(struct webhook_client *c, const struct webhook_request *rq,
				      webhook_cb cb, void *arg)
{
	struct webhook_delivery *d = calloc(1, sizeof(*d));
	char host[WH_HOST_MAX], hosthdr[WH_HOST_MAX + 16], sig[128], len[24];
	struct evkeyvalq *h;
	struct evutil_addrinfo hints;
	struct evdns_getaddrinfo_request *q;
	int in;
	enum webhook_outcome early = WH_INTERNAL;

	if (!d)
		return NULL;
	d->c = c;
	d->cb = cb;
	d->arg = arg;
	d->deadline = evtimer_new(c->base, webhook_deadline_cb, d);
	d->reap = evtimer_new(c->base, webhook_reap_cb, d);
	if (!d->deadline || !d->reap) {
		if (d->deadline)
			event_free(d->deadline);
		if (d->reap)
			event_free(d->reap);
		free(d);
		return NULL;
	}
	LIST_INSERT_HEAD(&c->live, d, link);
	c->nlive++;

	/* From here every failure is reported through the callback, deferred. */
	if (webhook_parse_url(rq->url, host, sizeof(host), &d->port, &d->path, hosthdr,
			      sizeof(hosthdr)) < 0) {
		early = WH_BAD_URL;
		goto fail;
	}
	if (webhook_sign(rq->secret, rq->secret_len, rq->t, rq->body, rq->body_len, sig,
			 sizeof(sig)) < 0)
		goto fail;
	d->ssl = webhook_ssl(c, d, host);
	if (!d->ssl)
		goto fail;
	d->max_response = rq->max_response;
	d->tv = clock_tv(rq->timeout_ms);

	d->req = evhttp_request_new(webhook_done_cb, d);
	if (!d->req)
		goto fail;
	evhttp_request_set_error_cb(d->req, webhook_error_cb);
	h = evhttp_request_get_output_headers(d->req);
	snprintf(len, sizeof(len), "%zu", rq->body_len);
	if (evhttp_add_header(h, "Host", hosthdr) < 0 ||
	    evhttp_add_header(h, "User-Agent", REFD_NAME "/" REFD_VERSION) < 0 ||
	    evhttp_add_header(h, "Content-Type", "application/json") < 0 ||
	    evhttp_add_header(h, "Content-Length", len) < 0 ||
	    evhttp_add_header(h, "Signature", sig) < 0 ||
	    evhttp_add_header(h, "Connection", "close") < 0 ||
	    evbuffer_add(evhttp_request_get_output_buffer(d->req), rq->body, rq->body_len) < 0)
		goto fail;
	OPENSSL_cleanse(sig, sizeof(sig));
	evtimer_add(d->deadline, &d->tv);

	in = netcheck_ip_internal(host);
	if (in >= 0) {
		/* An IP literal: judged as it stands. */
		if (in == 1 && !c->allow_private)
			webhook_finish(d, WH_PRIVATE_TARGET, 0);
		else
			webhook_connect(d, host);
		return d;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	d->resolving = 1;
	/* May answer at once (hosts file, cache): the callback has then run. */
	q = evdns_getaddrinfo(c->dns, host, NULL, &hints, webhook_resolved_cb, d);
	if (d->resolving)
		d->dnsreq = q;
	return d;
fail:
	OPENSSL_cleanse(sig, sizeof(sig));
	ERR_clear_error();
	webhook_finish(d, early, 0);
	return d;
}

void webhook_cancel(struct webhook_delivery *d)
{
	if (d)
		webhook_free(d);
}
