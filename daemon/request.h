/*
 * request.h - one HTTP request from arrival to its single reply.
 * What it owns and must never do: request.c.
 */
#ifndef REFD_REQUEST_H
#define REFD_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "principal.h"

struct app;
struct route;
struct hp_request;

/* What the listener that received a request wants to hear of it; set by the
 * listener, so request.c never calls back into it by name. */
struct req_hooks {
	/* The whole reply (status line, headers, body), lent for the call only:
	 * the listener copies what it cannot write at once (it may hold an
	 * opened contact: the listener wipes its copy, request.c the original).
	 * NULL: out of memory, end the connection. close: the connection ends
	 * after it (the head says "Connection: close"). */
	void (*send)(void *arg, void *conn, const char *reply, size_t len, int close);
	/* The request has replied and is freed: called exactly once. */
	void (*done)(void *arg);
	void *arg;
};

/* What the listener hands req_new: a parsed head, its body, and the
 * connection's identity. Everything is copied except head, which must stay
 * valid until the reply or req_detach. */
struct req_in {
	const struct hp_request *head;
	const unsigned char *body;
	size_t body_len;
	const struct peer_cert *cert;    /* the connection's verified peer, or NULL */
	const unsigned char *peer_key;   /* 16 bytes: the peer's address as a limit key */
	void *conn;                      /* handed back to hooks->send */
	const struct req_hooks *hooks;
	unsigned close : 1;              /* the listener will close after the reply */
};

#define REQ_MAX_PARAMS 3
/* The principal's text as auth_token() returned it, when auth.c took it from
 * its cache of verified tokens (longer ones are never cached). */
#define REQ_AUTH_EXPECT_MAX 640
/* Paths shorter than this, without escapes, are kept in the request itself. */
#define REQ_PATH_INLINE 128

struct req {
	struct app *app;
	const struct hp_request *in;     /* the parsed head (the listener's); NULL once detached */
	void *conn;                      /* the listener's connection; NULL once detached */
	char *oh;                        /* reply headers so far, "Name: value\r\n" lines; owned */
	size_t oh_len, oh_cap;
	unsigned oh_cache_control : 1;   /* oh has a Cache-Control of the handler's */
	unsigned close : 1;              /* the connection ends after the reply */
	char id[33];                     /* request id: 32 hex chars, echoed as X-Request-Id */
	int method;                      /* enum evhttp_cmd_type */
	char *path;                      /* decoded path, no query string; owned (or path_buf) */
	char path_buf[REQ_PATH_INLINE];
	char *query;                     /* raw query string or NULL; owned */
	const struct route *route;       /* the router's matched row (opaque to others) */
	const char *route_name;          /* its name, for logs, metrics and audit; or NULL */
	char params[REQ_MAX_PARAMS][64]; /* path parameters captured by the router */
	struct principal who;
	struct peer_cert cert;
	unsigned char *body;             /* request body, NUL-terminated copy; owned (or body_empty) */
	size_t body_len;
	unsigned char body_empty[1];     /* the body when there is none */
	uint64_t start_ns;               /* monotonic */
	unsigned gone : 1;               /* client closed the connection before we replied */
	unsigned replied : 1;
	void *state;                     /* handler's own state; the handler frees it before replying */
	const struct req_hooks *hooks;   /* the listener's, or NULL */
	unsigned char peer_key[16];      /* the peer's address as a limit key (ratelimit.h) */
	/* Set by auth.c when `who` came from its cache of verified tokens: the
	 * statement that acts must re-check it in the database (api_call.c folds
	 * auth_token(auth_hash) = auth_expect into it); auth_recheck() does the
	 * full lookup again and resumes at auth_next. Wiped when r is freed. */
	unsigned auth_cached : 1;
	char auth_hash[65];
	void (*auth_next)(struct req *r);
	struct req *spare_next;          /* request.c's list of released requests */
	/* Last: zero whenever auth_hash is (both are set and wiped together),
	 * so a released request needs no second wipe of it. */
	char auth_expect[REQ_AUTH_EXPECT_MAX];
};

/* Created by http_server.c for each incoming request. Returns NULL only on
 * allocation failure (the caller then answers 503 itself). */
struct req *req_new(struct app *app, const struct req_in *in);
/* Frees the requests and the reply buffer kept for reuse (at exit, once
 * every request has replied). */
void req_spares_free(void);
/* The connection is gone while r is being handled: r's reply will only free
 * it (r->gone, no headers left to read). Called by the listener. */
void req_detach(struct req *r);

/* Header lookup on the incoming request (case-insensitive); NULL if absent. */
const char *req_header(const struct req *r, const char *name);
/* Decoded query parameter; NULL if absent. Never log the value. */
const char *req_query_param(const struct req *r, const char *name, char *buf, size_t buflen);

/* Add a response header before replying. */
void req_add_header(struct req *r, const char *name, const char *value);

/* Replies: exactly one per request; each frees r. */
void req_reply_json(struct req *r, int status, json_t *body); /* steals body (may be NULL: empty) */
void req_reply_raw(struct req *r, int status, const char *content_type, const void *data,
		   size_t len);
/* Error in the protocol's shape: {"error":{"code","message","field"?}}.
 * field is a JSON pointer or NULL. message must never contain client data. */
void req_reply_error(struct req *r, int status, const char *code, const char *message,
		     const char *field);
/* 503 with Retry-After, for database trouble. */
void req_reply_unavailable(struct req *r, int retry_after_s);

#endif
