/*
 * router.c - the method + path table and the policy of each route.
 *
 * Owns: the one route table: every path of the protocol (and the ops
 * listener's, rows marked OPS) with the roles it admits, and what it does: a
 * statement, a body schema, query parameters and flags, which the generic
 * handler api_call_op runs, or a handler of its own for the few routes that
 * do more. Matching a decoded path against it, and the order of the checks:
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
#include "api_schema.h"
#include "app.h"
#include "auth.h"
#include "auth_limits.h"
#include "db_pool.h"
#include "jsonv.h"
#include "log.h"
#include "queries.h"
#include "request.h"
#include "router.h"

#define R_OFF ROLE_OFFICE
#define R_WRK ROLE_WORKER
#define R_SUP ROLE_SUPERVISOR
#define R_ADM ROLE_ADMIN

/* A route the generic handler serves: statement, body, query, API_* flags. */
#define OP(stmt, body, query, flags) api_call_op, { stmt, body, query, flags }, 0
/* A route with a handler of its own (which still reads its row's op). */
#define CALL(handler, stmt, body, query) handler, { stmt, body, query, 0 }, 0
/* Health and metrics: on both listeners; on the ops one without a token. */
#define OPS(handler) handler, { NULL, NULL, NULL, 0 }, 1

static const struct route routes[] = {
	/* Operations: health unauthenticated; metrics for admins here (the
	 * ops listener, meant for loopback, serves it without a token). */
	{ EVHTTP_REQ_GET, "/healthz", 0, "healthz", OPS(api_healthz) },
	{ EVHTTP_REQ_GET, "/readyz", 0, "readyz", OPS(api_readyz) },
	{ EVHTTP_REQ_GET, "/metrics", R_ADM, "metrics", OPS(api_metrics) },

	/* Referrals. */
	{ EVHTTP_REQ_POST, "/v1/referrals", R_OFF, "referral.submit",
	  CALL(api_referral_submit, "api_referral_submit", api_body_referral, NULL) },
	{ EVHTTP_REQ_GET, "/v1/referrals", R_OFF | R_SUP, "referral.list",
	  OP("api_referral_list", NULL, api_query_referrals, 0) },
	{ EVHTTP_REQ_GET, "/v1/referrals/{id}", R_OFF | R_SUP, "referral.get",
	  OP("api_referral_get", NULL, NULL, API_ID) },
	{ EVHTTP_REQ_POST, "/v1/referrals/{id}/withdraw", R_OFF, "referral.withdraw",
	  OP("api_referral_withdraw", api_body_reason, NULL, API_ID | API_SEAL_WITHDRAWN) },
	{ EVHTTP_REQ_POST, "/v1/referrals/{id}/consent/revoke", R_OFF | R_WRK | R_SUP,
	  "referral.consent_revoke",
	  OP("api_referral_consent_revoke", api_body_consent_revoke, NULL, API_ID) },

	/* Assignments: the state machine's actions (the database's transition
	 * table decides which are allowed). */
	{ EVHTTP_REQ_GET, "/v1/assignments", R_WRK | R_SUP, "assignment.list",
	  OP("api_assignment_list", NULL, api_query_assignments, 0) },
	{ EVHTTP_REQ_GET, "/v1/assignments/{id}", R_WRK | R_SUP, "assignment.get",
	  OP("api_assignment_get", NULL, NULL, API_ID) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/accept", R_WRK, "assignment.accept",
	  OP("api_assignment_accept", api_body_empty, NULL, API_ID | API_EMPTY_OK) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/decline", R_WRK, "assignment.decline",
	  OP("api_assignment_decline", api_body_reason, NULL, API_ID | API_SEAL_REASON) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/events", R_WRK, "assignment.event",
	  OP("api_assignment_event", api_body_event, NULL, API_ID | API_SEAL_EVENT) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/hold", R_WRK, "assignment.hold",
	  OP("api_assignment_hold", api_body_reason, NULL, API_ID | API_SEAL_REASON) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/resume", R_WRK, "assignment.resume",
	  OP("api_assignment_resume", api_body_empty, NULL, API_ID | API_EMPTY_OK) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/complete", R_WRK, "assignment.complete",
	  OP("api_assignment_complete", api_body_complete, NULL, API_ID | API_SEAL_DETAIL) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/fail", R_WRK, "assignment.fail",
	  OP("api_assignment_fail", api_body_fail, NULL, API_ID | API_SEAL_DETAIL) },
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/reassign", R_SUP, "assignment.reassign",
	  OP("api_assignment_reassign", api_body_reassign, NULL, API_ID | API_SEAL_REASSIGN) },
	{ EVHTTP_REQ_GET, "/v1/assignments/{id}/history", R_WRK | R_SUP, "assignment.history",
	  OP("api_assignment_history", NULL, api_query_history, API_ID) },

	/* Exceptional access (v1.1): break-the-glass and subject access; the
	 * database decides which supervisors (programme scope, another
	 * organisation). */
	{ EVHTTP_REQ_POST, "/v1/assignments/{id}/break-glass", R_SUP, "break_glass",
	  api_break_glass, { "api_break_glass", api_body_reason, NULL, API_ID }, 0 },
	{ EVHTTP_REQ_GET, "/v1/break-glass", R_SUP, "break_glass.list",
	  OP("api_break_glass_list", NULL, api_query_break_glass, 0) },
	{ EVHTTP_REQ_POST, "/v1/subject-access", R_SUP, "subject_access",
	  CALL(api_subject_access, "api_subject_access", api_body_subject_access, NULL) },

	/* Supervisors: deadlines, the audit trail, the follow-up report. */
	{ EVHTTP_REQ_GET, "/v1/deadlines", R_SUP, "deadline.list",
	  OP("api_deadline_list", NULL, api_query_deadlines, 0) },
	{ EVHTTP_REQ_GET, "/v1/audit", R_SUP, "audit.list",
	  OP("api_audit_list", NULL, api_query_audit, 0) },
	{ EVHTTP_REQ_GET, "/v1/audit/head", R_SUP | R_ADM, "audit.head",
	  CALL(api_audit_head, "audit_head", NULL, NULL) },
	{ EVHTTP_REQ_GET, "/v1/audit/keys", R_OFF | R_WRK | R_SUP | R_ADM, "audit.keys",
	  CALL(api_audit_keys, NULL, NULL, NULL) },
	{ EVHTTP_REQ_GET, "/v1/reports/follow-up", R_SUP, "report.follow_up",
	  CALL(api_report_follow_up, "api_report_follow_up", NULL, api_query_report) },

	/* Administration. */
	{ EVHTTP_REQ_POST, "/v1/organisations", R_ADM, "organisation.create",
	  OP("api_organisation_create", api_body_organisation, NULL, 0) },
	{ EVHTTP_REQ_POST, "/v1/offices", R_ADM, "office.create",
	  OP("api_office_create", api_body_office, NULL, 0) },
	{ EVHTTP_REQ_POST, "/v1/workers", R_ADM, "worker.create",
	  OP("api_worker_create", api_body_worker, NULL, 0) },
	{ EVHTTP_REQ_PATCH, "/v1/workers/{id}", R_ADM, "worker.patch",
	  OP("api_worker_patch", api_body_worker_patch, NULL, API_ID | API_NONEMPTY) },
	{ EVHTTP_REQ_POST, "/v1/supervisors", R_ADM, "supervisor.create",
	  CALL(api_supervisor_create, "api_supervisor_create", api_body_supervisor, NULL) },
	{ EVHTTP_REQ_POST, "/v1/tokens", R_ADM, "token.create",
	  CALL(api_token_create, "api_token_create", api_body_token, NULL) },
	{ EVHTTP_REQ_DELETE, "/v1/tokens/{id}", R_ADM, "token.revoke",
	  OP("api_token_revoke", NULL, NULL, API_ID | API_NO_BODY) },
	/* Credentials (v1.1): seen, revoked in bulk, disabled, unbound. */
	{ EVHTTP_REQ_GET, "/v1/tokens", R_ADM | R_SUP, "token.list",
	  OP("api_token_list", NULL, api_query_tokens, 0) },
	{ EVHTTP_REQ_POST, "/v1/tokens/revoke", R_ADM, "token.revoke_subject",
	  OP("api_token_revoke_subject", api_body_revoke_subject, NULL, 0) },
	{ EVHTTP_REQ_PATCH, "/v1/offices/{id}", R_ADM, "office.patch",
	  OP("api_office_patch", api_body_active, NULL, API_ID) },
	{ EVHTTP_REQ_DELETE, "/v1/offices/{id}/certificate", R_ADM, "office.certificate_delete",
	  OP("api_office_certificate_delete", NULL, NULL, API_ID | API_NO_BODY) },
	{ EVHTTP_REQ_PUT, "/v1/offices/{id}/certificate", R_ADM, "office.certificate_put",
	  OP("api_office_certificate_put", api_body_office_cert, NULL, API_ID | API_NONEMPTY) },
	{ EVHTTP_REQ_PATCH, "/v1/supervisors/{id}", R_ADM, "supervisor.patch",
	  OP("api_supervisor_patch", api_body_active, NULL, API_ID) },
	{ EVHTTP_REQ_PUT, "/v1/deadline-policies/{need}/{urgency}", R_ADM, "deadline_policy.put",
	  CALL(api_deadline_policy_put, "api_deadline_policy_put", api_body_policy, NULL) },
	{ EVHTTP_REQ_POST, "/v1/webhooks", R_ADM, "webhook.create",
	  CALL(api_webhook_create, "api_webhook_create", api_body_webhook, NULL) },
	/* The administration lists referralctl shows (issue 13). */
	{ EVHTTP_REQ_GET, "/v1/organisations", R_ADM, "organisation.list",
	  OP("api_organisation_list", NULL, api_query_page, 0) },
	{ EVHTTP_REQ_GET, "/v1/offices", R_ADM, "office.list",
	  OP("api_office_list", NULL, api_query_page, 0) },
	{ EVHTTP_REQ_GET, "/v1/webhooks", R_ADM, "webhook.list",
	  OP("api_webhook_list", NULL, api_query_page, 0) },

	/* Retention (v1.1): when personal data and records of closed referrals go. */
	{ EVHTTP_REQ_GET, "/v1/retention-policy", R_ADM, "retention_policy.get",
	  OP("api_retention_policy_get", NULL, NULL, 0) },
	{ EVHTTP_REQ_PUT, "/v1/retention-policy", R_ADM, "retention_policy.put",
	  OP("api_retention_policy_put", api_body_retention_policy, NULL, API_NONEMPTY) },

	/* Follow-up, continued: working calendars and the policies' list. */
	{ EVHTTP_REQ_PUT, "/v1/organisations/{id}/calendar", R_ADM, "calendar.put",
	  OP("api_calendar_put", api_body_calendar, NULL, API_ID) },
	{ EVHTTP_REQ_GET, "/v1/deadline-policies", R_ADM | R_SUP, "deadline_policy.list",
	  OP("api_deadline_policy_list", NULL, NULL, 0) },
	/* The web pages' sign-in (issue 14): codes, sign-in (the code is the
	 * credential), sign-out, who am I, and the workers a supervisor sees. */
	{ EVHTTP_REQ_POST, "/v1/sign-in-codes", R_SUP | R_ADM, "sign_in_code.create",
	  CALL(api_sign_in_code_create, "api_sign_in_code_create", api_body_sign_in_code, NULL) },
	{ EVHTTP_REQ_POST, "/v1/sign-in", 0, "sign_in",
	  CALL(api_sign_in, "api_sign_in", api_body_sign_in, NULL) },
	{ EVHTTP_REQ_POST, "/v1/sign-out", R_OFF | R_WRK | R_SUP | R_ADM, "sign_out",
	  OP("api_sign_out", api_body_empty, NULL, API_EMPTY_OK) },
	{ EVHTTP_REQ_GET, "/v1/me", R_OFF | R_WRK | R_SUP | R_ADM, "me", OP("api_me", NULL, NULL, 0) },
	{ EVHTTP_REQ_GET, "/v1/workers", R_SUP | R_ADM, "worker.list",
	  OP("api_worker_list", NULL, api_query_workers, 0) },
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

static const struct route *router_find(enum route_where where, const char *path, int method,
				      char params[][64], int nparams, int *path_known)
{
	int i;

	*path_known = 0;
	if (!path)
		return NULL;
	for (i = 0; i < NROUTES; i++) {
		if (where == ROUTE_OPS && !routes[i].ops)
			continue;
		if (!router_match_pattern(routes[i].pattern, path, params, nparams))
			continue;
		if (routes[i].method == method)
			return &routes[i];
		*path_known = 1;
	}
	return NULL;
}

const struct route *router_match(const char *path, int method, char params[][64], int nparams,
				 int *path_known)
{
	return router_find(ROUTE_API, path, method, params, nparams, path_known);
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
static void router_allow(enum route_where where, const char *path, char *out, size_t outlen)
{
	char scratch[REQ_MAX_PARAMS][64];
	size_t o = 0;

	out[0] = '\0';
	for (int i = 0; i < NROUTES; i++) {
		const char *m;
		size_t ml;

		if (where == ROUTE_OPS && !routes[i].ops)
			continue;
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
	who = auth_who_json(&r->who);
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
	/* A principal from auth.c's cache is re-checked by the operation's own
	 * statement (api_call.c). A route whose statement is not an operation,
	 * and a refusal (403 and its audit record), take a fresh lookup. */
	char folded[128];

	if (r->auth_cached && ((r->route->roles & (unsigned)r->who.role) == 0 ||
			       !r->route->op.stmt ||
			       queries_folded_name(r->route->op.stmt, folded, sizeof(folded)) != 0)) {
		auth_recheck(r);
		return;
	}
	if (auth_limits_credential_check(r))
		return;
	if ((r->route->roles & (unsigned)r->who.role) == 0) {
		router_forbid(r);
		return;
	}
	r->route->handler(r, &r->route->op);
}

void router_dispatch(struct req *r, enum route_where where)
{
	int known = 0;
	const struct route *rt;

	/* The web pages: static files, a subtree rather than a row. */
	if (where == ROUTE_API && r->path && strncmp(r->path, "/ui", 3) == 0 &&
	    (r->path[3] == '\0' || r->path[3] == '/')) {
		r->route_name = "ui";
		ui_serve(r);
		return;
	}
	rt = router_find(where, r->path, r->method, r->params, REQ_MAX_PARAMS, &known);
	if (rt == NULL) {
		if (known) {
			char allow[64];
			router_allow(where, r->path, allow, sizeof(allow));
			req_add_header(r, "Allow", allow);
			req_reply_error(r, 405, "method_not_allowed",
					"method not allowed on this path", NULL);
		} else {
			req_reply_error(r, 404, "not_found", "no such resource", NULL);
		}
		return;
	}
	r->route = rt;
	r->route_name = rt->name;
	if (rt->roles == 0 || where == ROUTE_OPS) {
		rt->handler(r, &rt->op);
		return;
	}
	if (auth_limits_precheck(r))
		return;
	auth_begin(r, router_after_auth);
}
