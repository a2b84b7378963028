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

/* The cache of verified tokens (one per daemon process, in struct app):
 * token hash -> the principal auth_token() returned and the daemon verified
 * (hash and binding), until the token's expiry. A hit fills r->who without a
 * round trip and sets r->auth_cached; whatever then acts on the request must
 * run the folded statement (queries.c: the operation runs only when
 * auth_token() still returns exactly that principal) or call auth_recheck().
 * NULL when out of memory (then nothing is cached). */
struct auth_cache;
struct auth_cache *auth_cache_new(void);
void auth_cache_free(struct auth_cache *c);

/* The cached principal did not hold (the folded statement returned NULL, or
 * the request needs a fresh one): forget the entry, look the token up again
 * and continue at the auth_next given to auth_begin (or answer 401). */
void auth_recheck(struct req *r);

/* The principal as the database's p_who: {"role","id","org_id","programme",
 * "token_id"}. A new reference, or NULL when out of memory. */
json_t *auth_who_json(const struct principal *p);

#endif
