/*
 * auth_limits.c - what a failed authentication costs its sender, and the
 * limits on a request before and after authentication.
 *
 * - Every 401 is audited (`authenticate`/`denied`, the address and, for a
 *   certificate, its fingerprint: never the token) and counted against the
 *   address. Once an address has [limits] auth_failures in its window, every
 *   request from it to an authenticated route answers 429 rate_limited with
 *   Retry-After until the window passes, before any database work (a valid
 *   credential too: the address is what is limited). 429s are not audited:
 *   that would hand the flood to the database again; they are counted.
 * - With [limits] credential_requests on, each credential gets that many
 *   requests per window (429 beyond).
 * - Connections per address are capped (http_server.c asks here).
 * All state is in memory (ratelimit.c): fixed size, O(1) per request,
 * per daemon.
 *
 * Owns: struct limits (three tables), the 401 reply and its audit record,
 * the 429 reply, the credential's audit name (principal.credential_id).
 * Must never: send the token, or anything of it, to the database or a log;
 * answer 401 before the failure is on record (503 when it cannot be).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "app.h"
#include "auth_limits.h"
#include "config.h"
#include "db_pool.h"
#include "log.h"
#include "metrics.h"
#include "ratelimit.h"
#include "request.h"

struct limits {
	struct ratelimit *fail;   /* failed authentications per address */
	struct ratelimit *cred;   /* requests per credential */
	struct ratelimit *conns;  /* open connections per address */
};

struct limits *limits_new(const struct config *cfg)
{
	struct limits *l = calloc(1, sizeof(*l));
	uint32_t n = (uint32_t)cfg->limit_tracked;

	if (!l)
		return NULL;
	l->fail = ratelimit_new(n);
	l->cred = ratelimit_new(n);
	l->conns = ratelimit_new(n);
	if (!l->fail || !l->cred || !l->conns) {
		limits_free(l);
		return NULL;
	}
	return l;
}

void limits_free(struct limits *l)
{
	if (!l)
		return;
	ratelimit_free(l->fail);
	ratelimit_free(l->cred);
	ratelimit_free(l->conns);
	free(l);
}

static uint32_t limits_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)ts.tv_sec;
}

static void limits_spec(const char *text, struct limit_spec *spec)
{
	char err[8];

	/* config.c validated it; a failure here can only mean "off". */
	if (limit_spec_parse(text ? text : "off", spec, err, sizeof(err)) < 0)
		memset(spec, 0, sizeof(*spec));
}

static void limits_reply_429(struct req *r, uint32_t retry_s, const char *what)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", retry_s ? retry_s : 1);
	if (r->app && r->app->metrics)
		metrics_add(r->app->metrics, M_RATE_LIMITED, 1);
	log_event(LOG_INFO, r->id, "rate_limited", "limit=%s retry_after=%u", what, retry_s);
	req_add_header(r, "Retry-After", v);
	req_reply_error(r, 429, "rate_limited", "too many requests; retry later", NULL);
}

int auth_limits_precheck(struct req *r)
{
	struct limit_spec spec;
	uint32_t left;

	if (!r->app || !r->app->limits || !r->app->cfg)
		return 0;
	limits_spec(r->app->cfg->limit_auth_failures, &spec);
	left = ratelimit_blocked(r->app->limits->fail, r->peer_key, 16, &spec, limits_now());
	if (!left)
		return 0;
	limits_reply_429(r, left, "auth_failures");
	return 1;
}

int auth_limits_credential_check(struct req *r)
{
	struct limit_spec spec;
	uint32_t left;
	const char *c = r->who.credential_id;

	if (!r->app || !r->app->limits || !r->app->cfg || !c[0])
		return 0;
	limits_spec(r->app->cfg->limit_credential_requests, &spec);
	if (!spec.on)
		return 0;
	/* COUNT requests pass; the one after them is the first refused. */
	spec.count++;
	left = ratelimit_hit(r->app->limits->cred, c, strlen(c), &spec, limits_now());
	if (!left)
		return 0;
	limits_reply_429(r, left, "credential_requests");
	return 1;
}

void auth_limits_credential_name(struct req *r)
{
	struct principal *p = &r->who;

	if (p->token_id[0])
		snprintf(p->credential_id, sizeof(p->credential_id), "%s", p->token_id);
	else if (r->cert.present)
		snprintf(p->credential_id, sizeof(p->credential_id), "cert:%s", r->cert.fingerprint);
	else
		p->credential_id[0] = '\0';
}

struct fail_state {
	struct req *r;
	const char *message;    /* a literal of auth.c */
};

static void auth_limits_audited(void *arg, enum db_status st, const PGresult *res)
{
	struct fail_state *f = arg;
	struct req *r = f->r;
	const char *message = f->message;

	(void)res;
	free(f);
	if (st != DB_OK) {
		log_event(LOG_WARN, r->id, "audit_authenticate_failed", "status=%s",
			  db_status_to_str(st));
		req_reply_unavailable(r, 1);
		return;
	}
	req_add_header(r, "WWW-Authenticate", "Bearer realm=\"referrald\"");
	req_reply_error(r, 401, "unauthorized", message, NULL);
}

void auth_limits_failed(struct req *r, const char *reason, const char *message)
{
	struct limit_spec spec;
	struct fail_state *f;
	char addr[64], cred[72];
	json_t *args;
	char *args_s;

	(void)reason;           /* in the log line of auth.c, not in the audit */
	if (!r->app || !r->app->pool || !r->app->cfg) {
		req_reply_unavailable(r, 1);
		return;
	}
	if (r->app->limits) {
		limits_spec(r->app->cfg->limit_auth_failures, &spec);
		ratelimit_hit(r->app->limits->fail, r->peer_key, 16, &spec, limits_now());
	}
	if (r->app->metrics)
		metrics_add(r->app->metrics, M_AUTH_FAILURES, 1);
	ratelimit_addr_text(r->peer_key, addr, sizeof(addr));
	cred[0] = '\0';
	if (r->cert.present && !req_header(r, "Authorization"))
		snprintf(cred, sizeof(cred), "cert:%s", r->cert.fingerprint);
	args = json_pack("{s:s, s:s, s:s?}", "reason", reason, "address", addr, "credential_id",
			 cred[0] ? cred : NULL);
	args_s = args ? json_dumps(args, JSON_COMPACT) : NULL;
	json_decref(args);
	f = args_s ? calloc(1, sizeof(*f)) : NULL;
	if (!f) {
		free(args_s);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	f->r = r;
	f->message = message;
	{
		const char *values[2] = { r->id, args_s };

		if (!db_submit(r->app->pool, "audit_authenticate_failed", 2, values,
			       auth_limits_audited, f, 0)) {
			free(f);
			req_reply_unavailable(r, 1);
		}
	}
	free(args_s);
}

int limits_conn_open(struct limits *l, const struct config *cfg, const unsigned char key[16])
{
	if (!l || !cfg)
		return 0;
	return ratelimit_conn_add(l->conns, key, 16, (uint32_t)cfg->limit_connections_per_address,
				  limits_now());
}

void limits_conn_close(struct limits *l, const unsigned char key[16])
{
	if (l)
		ratelimit_conn_del(l->conns, key, 16);
}
