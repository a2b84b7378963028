/*
 * webhook.h - one signed HTTPS POST to a partner's webhook endpoint.
 * What it owns and must never do: webhook.c.
 */
#ifndef REFD_WEBHOOK_H
#define REFD_WEBHOOK_H

#include <stddef.h>

struct event_base;
struct webhook_client;
struct webhook_delivery;

/* The result of one delivery attempt. The _to_str names go into logs, metrics
 * and the outbox's last_error; they never carry data from the endpoint. */
enum webhook_outcome {
	WH_DELIVERED = 0,   /* 2xx */
	WH_HTTP_STATUS,     /* any other status (3xx included: redirects are not followed) */
	WH_TIMEOUT,         /* no complete answer within the deadline */
	WH_TLS,             /* handshake failed: untrusted or wrong-name certificate, old protocol */
	WH_CONNECT,         /* name not resolved, connection refused or reset, EOF before answer */
	WH_TOO_LARGE,       /* response headers or body over the cap */
	WH_BAD_RESPONSE,    /* not HTTP */
	WH_BAD_URL,         /* not an https URL this client can use */
	WH_PRIVATE_TARGET,  /* the host is, or resolves to, an internal address */
	WH_INTERNAL,        /* allocation or setup failure on our side */
};
const char *webhook_outcome_to_str(enum webhook_outcome o);

/* Called exactly once per delivery that was not cancelled, always from the
 * event loop and never from inside webhook_post(). http_status is the
 * answer's status code, or 0 when there was none. */
typedef void (*webhook_cb)(void *arg, enum webhook_outcome o, int http_status);

/* ca_file NULL: the system's default CA store. Returns NULL with a reason in
 * err (no secret or path content beyond the file name). */
struct webhook_client *webhook_client_new(struct event_base *base, const char *ca_file,
					  char *err, size_t errlen);
/* on: internal targets (loopback, private, link-local, unique-local,
 * unspecified) may be delivered to; off (the default): refused after
 * resolution, WH_PRIVATE_TARGET. */
void webhook_client_allow_private(struct webhook_client *c, int on);
/* Frees every delivery still alive without calling its callback. */
void webhook_client_free(struct webhook_client *c);
/* Deliveries currently alive (connecting, sending or waiting). */
int webhook_client_active(const struct webhook_client *c);

struct webhook_request {
	const char *url;          /* https://host[:port]/path[?query] */
	const char *secret;       /* HMAC key (the registered secret's bytes) */
	size_t secret_len;
	const char *body;         /* exact bytes to send and sign */
	size_t body_len;
	long long t;              /* signature time, Unix seconds (the attempt's time) */
	long timeout_ms;          /* whole-attempt deadline: connect, TLS, send, answer */
	size_t max_response;      /* cap on the answer's body (its headers are capped at 8 KiB) */
};

/* Start one POST. Every string is copied (the secret only into the signature
 * header, which is computed here), so the caller may free them on return.
 * Returns NULL only when out of memory (cb is then never called). */
struct webhook_delivery *webhook_post(struct webhook_client *c, const struct webhook_request *rq,
				      webhook_cb cb, void *arg);
/* Abandon a delivery: its connection is closed and its callback never runs. */
void webhook_cancel(struct webhook_delivery *d);

/* "t=<t>,v1=<64 lowercase hex>" = HMAC-SHA256(secret, "<t>." + body).
 * Returns 0, or -1 when out is too small (needs about 90 bytes). */
int webhook_sign(const char *secret, size_t secret_len, long long t, const char *body,
		 size_t body_len, char *out, size_t outlen);

#endif
