/*
 * http_server.h - evhttp listeners wired to TLS.
 * What it owns and must never do: http_server.c.
 */
#ifndef REFD_HTTP_SERVER_H
#define REFD_HTTP_SERVER_H

struct app;
struct http_server;

enum listener_kind {
	LISTENER_API = 0,     /* full API; client cert optional or required per flag */
	LISTENER_OPS = 1,     /* /metrics, /healthz, /readyz only */
};

struct http_server *http_server_new(struct app *app, const char *hostport,
				    enum listener_kind kind, int require_cert, char *err,
				    unsigned long errlen);
/* Each of the following takes NULL (a listener not configured): a no-op,
 * or 0. */
/* Stop accepting new connections (drain). */
void http_server_stop_accepting(struct http_server *s);
/* Requests received and not yet replied to. */
int http_server_in_flight(const struct http_server *s);
/* Open connections on this listener. */
int http_server_connections(const struct http_server *s);
/* Free the listener. Requests still in flight stay valid: the server's
 * bookkeeping is released when the last of them replies. */
void http_server_free(struct http_server *s);

#endif
