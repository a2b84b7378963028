/*
 * auth.h - who is calling: bearer token or office client certificate.
 * What it owns and must never do: auth.c.
 */
#ifndef REFD_AUTH_H
#define REFD_AUTH_H

#include <jansson.h>

struct req;
struct principal;

/* On success fills r->who and calls next(r); on failure replies 401 (or 503
 * when the database is unavailable) and does not call next. */
typedef void (*auth_next)(struct req *r);
void auth_begin(struct req *r, auth_next next);

/* The principal as the database's p_who: {"role","id","org_id","programme",
 * "token_id"}. A new reference, or NULL when out of memory. */
json_t *auth_who_json(const struct principal *p);

#endif
