/*
 * router.c - the method + path table and the policy of each route.
 *
 * Owns: the static route table (every path of the protocol with the roles it
 * admits), matching a decoded path against it, and the order of the checks:
 * 404 unknown path, 405 (with Allow) known path under another method, then
 * authentication (401), then the role (403 + a `denied` audit record), and
 * only then the handler.
 * Must never: do I/O itself or look at request bodies; object-level scoping
 * is not decided here (the handler's SQL answers 404 for other people's
 * objects), only whether a role may call the route at all.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "auth.h"
#include "db_pool.h"
#include "jsonv.h"
#include "log.h"
#include "request.h"
#include "router.h"

#define R_OFF ROLE_OFFICE
#define R_WRK ROLE_WORKER
#define R_SUP ROLE_SUPERVISOR
#define R_ADM ROLE_ADMIN

static const struct route routes[] = {
	/* Operations: unauthenticated health; metrics for admins only here
	 * (the ops listener serves it without a token, on loopback). */
	{ EVHTTP_REQ_GET, "/healthz", 0, api_healthz, "healthz" },
	{ EVHTTP_REQ_GET, "/readyz", 0, api_readyz, "readyz" },
	{ EVHTTP_REQ_GET, "/metrics", R_ADM, api_metrics, "metrics" },

	/* Referrals. */
	{ EVHTTP_REQ_POST, "/v1/referrals", R_OFF, api_referral_submit, "referrals.submit" },
	{ EVHTTP_REQ_GET, "/v1/referrals", R_OFF | R_SUP, api_referral_list, "referrals.list" },
	{ EVHTTP_REQ_GET, "/v1/referrals/{id}", R_OFF | R_SUP, api_referral_get, "referrals.get" },
	{ EVHTTP_REQ_POST, "/v1/referrals/{id}/withdraw", R_OFF, api_referral_withdraw,
	  "referrals.withdraw" },

	/* Assignments. */
	{ EVHTTP_REQ_GET, "/v1/assignments", R_WRK | R_SUP, api_assignment_list,
	  "assignments.list" },
	{ EVHTTP_REQ_GET, "/v1/assignments/{id}", R_WRK | R_SUP, api_assignment_get,
	  "assignments.get" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/accept", R_WRK, api_assignment_accept,
	  "assignments.accept" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/decline", R_WRK, api_assignment_decline,
	  "assignments.decline" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/events", R_WRK, api_assignment_event,
	  "assignments.events" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/hold", R_WRK, api_assignment_hold,
	  "assignments.hold" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/resume", R_WRK, api_assignment_resume,
	  "assignments.resume" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/complete", R_WRK, api_assignment_complete,
	  "assignments.complete" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/fail", R_WRK, api_assignment_fail,
	  "assignments.fail" },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/reassign", R_SUP, api_assignment_reassign,
	  "assignments.reassign" },

	/* Supervisors: deadlines and the audit trail. */
	{ EVHTTP_REQ_GET, "/v1/deadlines", R_SUP, api_deadline_list, "deadlines.list" },
	{ EVHTTP_REQ_GET, "/v1/audit", R_SUP, api_audit_list, "audit.list" },
	{ EVHTTP_REQ_GET, "/v1/reports/follow-up", R_SUP, api_report_follow_up,
	  "reports.follow_up" },

	/* Administration. */
	{ EVHTTP_REQ_POST, "/v1/organisations", R_ADM, api_organisation_create,
	  "organisations.create" },
	{ EVHTTP_REQ_POST, "/v1/offices", R_ADM, api_office_create, "offices.create" },
	{ EVHTTP_REQ_POST, "/v1/workers", R_ADM, api_worker_create, "workers.create" },
	{ EVHTTP_REQ_PATCH, "/v1/workers/{id}", R_ADM, api_worker_patch, "workers.patch" },
	{ EVHTTP_REQ_POST, "/v1/supervisors", R_ADM, api_supervisor_create, "supervisors.create" },
	{ EVHTTP_REQ_POST, "/v1/tokens", R_ADM, api_token_create, "tokens.create" },
	{ EVHTTP_REQ_DELETE, "/v1/tokens/{id}", R_ADM, api_token_revoke, "tokens.revoke" },
	{ EVHTTP_REQ_PUT, "/v1/deadline-policies/{need}/{urgency}", R_ADM, api_deadline_policy_put,
	  "deadline_policies.put" },
	{ EVHTTP_REQ_POST, "/v1/webhooks", R_ADM, api_webhook_create, "webhooks.create" },

	/* Web sign-in (issue 14): codes, sign-in (no credential yet), sign-out. */
	{ EVHTTP_REQ_POST, "/v1/sign-in-codes", R_SUP | R_ADM, api_sign_in_code_create,
	  "sign_in_codes.create" },
	{ EVHTTP_REQ_POST, "/v1/sign-in", 0, api_sign_in, "sign_in" },
	{ EVHTTP_REQ_POST, "/v1/sign-out", R_OFF | R_WRK | R_SUP | R_ADM, api_sign_out, "sign_out" },
	{ EVHTTP_REQ_GET, "/v1/workers", R_SUP | R_ADM, api_worker_list, "workers.list" },
	{ EVHTTP_REQ_GET, "/v1/me", R_OFF | R_WRK | R_SUP | R_ADM, api_me, "me" },
};

#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

const struct route *router_table(int *count)
{
	*count = NROUTES;
	return routes;
}

/* Match one pattern against path, segment by segment. A "{x}" segment
 * captures exactly one non-empty path segment shorter than 64 bytes; any
 * other segment must be equal. Returns 1 on a match. */
static int router_match_pattern(const char *pat, const char *path, char params[][64],
				int nparams)
{
	int np = 0;

	while (*pat && *path) {
		if (*pat != '/' || *path != '/')
			return 0;
		pat++;
		path++;
		const char *pend = strchr(pat, '/');
		const char *send = strchr(path, '/');
		size_t plen = pend ? (size_t)(pend - pat) : strlen(pat);
		size_t slen = send ? (size_t)(send - path) : strlen(path);

		if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}') {
			if (slen == 0 || slen >= 64)
				return 0;
			if (np < nparams) {
				memcpy(params[np], path, slen);
				params[np][slen] = '\0';
			}
			np++;
		} else if (plen != slen || memcmp(pat, path, plen) != 0) {
			return 0;
		}
		pat += plen;
		path += slen;
	}
	return *pat == '\0' && *path == '\0';
}

const struct route *router_match(const char *path, int method, char params[][64], int nparams,
				 int *path_known)
{
	int i;

	*path_known = 0;
	if (!path)
		return NULL;
	for (i = 0; i < NROUTES; i++) {
		if (!router_match_pattern(routes[i].pattern, path, params, nparams))
			continue;
		if (routes[i].method == method)
			return &routes[i];
		*path_known = 1;
	}
	return NULL;
}

static const char *router_method_name(int m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	default: return "OTHER";
	}
}

/* "GET, POST" for the methods the path exists under (405's Allow header). */
static void router_allow(const char *path, char *out, size_t outlen)
{
	char scratch[REQ_MAX_PARAMS][64];
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < NROUTES; i++) {
		const char *m;
		size_t ml;

		if (!router_match_pattern(routes[i].pattern, path, scratch, REQ_MAX_PARAMS))
			continue;
		m = router_method_name(routes[i].method);
		ml = strlen(m);
		if (strstr(out, m))
			continue;
		if (o + ml + 3 >= outlen)
			break;
		if (o) {
			memcpy(out + o, ", ", 2);
			o += 2;
		}
		memcpy(out + o, m, ml);
		o += ml;
		out[o] = '\0';
	}
}

static void router_forbidden_reply(struct req *r)
{
	req_reply_error(r, 403, "forbidden", "this role may not call this endpoint", NULL);
}

static void router_denied_done(void *arg, enum db_status st, const PGresult *res)
{
	struct req *r = arg;

	(void)res;
	if (st != DB_OK) {
		/* The refusal must be on record; without the record, answer as
		 * for any database trouble rather than a silent 403. */
		log_event(LOG_WARN, r->id, "audit_denied_failed", "status=%s", db_status_to_str(st));
		req_reply_unavailable(r, 1);
		return;
	}
	router_forbidden_reply(r);
}

/* The caller is authenticated but its role may never call this route:
 * 403, with a `denied` audit record (audit_denied in the database) committed
 * first. Only the route's name and the object id reach the database, nothing
 * else of the request. */
static void router_forbid(struct req *r)
{
	json_t *who = NULL, *args = NULL;
	char *who_s = NULL, *args_s = NULL;
	int has_id;

	log_event(LOG_INFO, r->id, "forbidden", "route=%s role=%s", r->route->name,
		  role_to_str(r->who.role));
	if (!r->app || !r->app->pool) {
		req_reply_unavailable(r, 1);
		return;
	}
	has_id = strchr(r->route->pattern, '{') && jsonv_is_uuid(r->params[0],
								  strlen(r->params[0])) == 0;
	who = api_call_who(&r->who);
	args = json_pack("{s:s, s:s}", "route", r->route->name, "method",
			 router_method_name(r->method));
	if (args && has_id)
		json_object_set_new(args, "id", json_string(r->params[0]));
	who_s = who ? json_dumps(who, JSON_COMPACT) : NULL;
	args_s = args ? json_dumps(args, JSON_COMPACT) : NULL;
	json_decref(who);
	json_decref(args);
	if (!who_s || !args_s) {
		free(who_s);
		free(args_s);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	const char *values[3] = {who_s, r->id, args_s};
	if (!db_submit(r->app->pool, "audit_denied", 3, values, router_denied_done, r, 0))
		req_reply_unavailable(r, 1);
	free(who_s);
	free(args_s);
}

static void router_after_auth(struct req *r)
{
	if ((r->route->roles & (unsigned)r->who.role) == 0) {
		router_forbid(r);
		return;
	}
	r->route->handler(r);
}

void router_dispatch(struct req *r)
{
	int known = 0;
	const struct route *rt;

	/* The web pages: static files, a subtree rather than a route row. */
	if (r->path && strncmp(r->path, "/ui", 3) == 0 && (r->path[3] == '\0' || r->path[3] == '/')) {
		ui_serve(r);
		return;
	}
	rt = router_match(r->path, r->method, r->params, REQ_MAX_PARAMS, &known);
	if (rt == NULL) {
		if (known) {
			char allow[64];
			router_allow(r->path, allow, sizeof(allow));
			req_add_header(r, "Allow", allow);
			req_reply_error(r, 405, "method_not_allowed",
					"method not allowed on this path", NULL);
		} else {
			req_reply_error(r, 404, "not_found", "no such resource", NULL);
		}
		return;
	}
	r->route = rt;
	if (rt->roles == 0) {
		rt->handler(r);
		return;
	}
	auth_begin(r, router_after_auth);
}
