/*
 * auth_limits.h - failed authentication (audit + count), rate limits before
 * and after authentication, and the per-address connection cap.
 */
#ifndef REFD_AUTH_LIMITS_H
#define REFD_AUTH_LIMITS_H

struct config;
struct limits;
struct req;

struct limits *limits_new(const struct config *cfg);
void limits_free(struct limits *l);

/* Before authentication: 1 when r was answered 429 (its address is over
 * [limits] auth_failures), else 0. */
int auth_limits_precheck(struct req *r);
/* After authentication: 1 when r was answered 429 (its credential is over
 * [limits] credential_requests), else 0. */
int auth_limits_credential_check(struct req *r);
/* Fill r->who.credential_id from the token id or the certificate. */
void auth_limits_credential_name(struct req *r);
/* Count the failure, audit it, then answer 401 with message (a literal);
 * 503 when the record cannot be written. */
void auth_limits_failed(struct req *r, const char *reason, const char *message);

/* A connection from key opens: 0, or -1 when over [limits]
 * connections_per_address (not counted then). */
int limits_conn_open(struct limits *l, const struct config *cfg, const unsigned char key[16]);
void limits_conn_close(struct limits *l, const unsigned char key[16]);

#endif
