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
 * Resolution: names go through evdns (the system's resolver configuration
 * and hosts file are read once, at start); numeric addresses skip it. A
 * deployment without resolver configuration can still use numeric URLs.
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
#include "webhook.h"

#define WH_MAX_HEADERS 8192
#define WH_HOST_MAX 256

struct webhook_client {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *ctx;
	LIST_HEAD(, webhook_delivery) live; /* deliveries not yet freed */
	int nlive;
};

struct webhook_delivery {
	struct webhook_client *c;
	LIST_ENTRY(webhook_delivery) link; /* in c->live */
	struct evhttp_connection *conn;
	struct evhttp_request *req;   /* owned by evhttp once made; NULL after its callback */
	struct event *deadline;
	struct event *reap;
	webhook_cb cb;
	void *arg;
	enum evhttp_request_error req_err;
	int have_req_err;
	int peer_spoke;               /* a TLS message came back: the TCP connection existed */
	int handshake_done;           /* the peer's certificate and name were verified */
	int finished;                 /* outcome recorded; reap pending */
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

int webhook_client_active(const struct webhook_client *c)
{
	return c ? c->nlive : 0;
}

static void webhook_free(struct webhook_delivery *d)
{
	struct webhook_client *c = d->c;

	LIST_REMOVE(d, link);
	c->nlive--;
	/* Frees the pending request (without calling its callback) and the
	 * bufferevent with its SSL. */
	if (d->conn)
		evhttp_connection_free(d->conn);
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

struct webhook_delivery *webhook_post(struct webhook_client *c, const struct webhook_request *rq,
				      webhook_cb cb, void *arg)
{
	struct webhook_delivery *d = calloc(1, sizeof(*d));
	char host[WH_HOST_MAX], hosthdr[WH_HOST_MAX + 16], sig[128], len[24];
	char *path = NULL;
	int port = 0;
	SSL *ssl = NULL;
	struct bufferevent *bev = NULL;
	struct evkeyvalq *h;
	struct timeval tv;
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
	if (webhook_parse_url(rq->url, host, sizeof(host), &port, &path, hosthdr,
			      sizeof(hosthdr)) < 0) {
		early = WH_BAD_URL;
		goto fail;
	}
	if (webhook_sign(rq->secret, rq->secret_len, rq->t, rq->body, rq->body_len, sig,
			 sizeof(sig)) < 0)
		goto fail;
	ssl = webhook_ssl(c, d, host);
	if (!ssl)
		goto fail;
	bev = bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		goto fail;
	}
	/* ssl now belongs to bev, and bev (below) to the connection. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	d->conn = evhttp_connection_base_bufferevent_new(c->base, c->dns, bev, host,
							 (unsigned short)port);
	if (!d->conn) {
		bufferevent_free(bev);
		goto fail;
	}
	evhttp_connection_set_retries(d->conn, 0);
	evhttp_connection_set_max_headers_size(d->conn, WH_MAX_HEADERS);
	evhttp_connection_set_max_body_size(d->conn, rq->max_response);
	tv = clock_tv(rq->timeout_ms);
	evhttp_connection_set_timeout_tv(d->conn, &tv);

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
	    evbuffer_add(evhttp_request_get_output_buffer(d->req), rq->body, rq->body_len) < 0) {
		evhttp_request_free(d->req);
		d->req = NULL;
		goto fail;
	}
	if (evhttp_make_request(d->conn, d->req, EVHTTP_REQ_POST, path) < 0) {
		d->req = NULL; /* freed by evhttp on failure */
		early = WH_CONNECT;
		goto fail;
	}
	OPENSSL_cleanse(sig, sizeof(sig));
	free(path);
	evtimer_add(d->deadline, &tv);
	return d;
fail:
	OPENSSL_cleanse(sig, sizeof(sig));
	free(path);
	ERR_clear_error();
	webhook_finish(d, early, 0);
	return d;
}

void webhook_cancel(struct webhook_delivery *d)
{
	if (d)
		webhook_free(d);
}
