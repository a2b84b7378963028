/*
 * queries.c - the table of prepared statements.
 *
 * Owns: the static SQL text of every statement the daemon prepares; callers
 * refer to a statement by its name only.
 * Must never: contain SQL assembled at run time, or anything that depends on
 * request data; parameters always travel separately as $n.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_pool.h"
#include "queries.h"

/* A statement is named after the one function it calls, the text written
 * out at compile time: FN(name, its arguments, how many); OP(name) for an
 * operation of the one C-to-SQL convention, name(who, request_id, args)
 * -> {status, body, headers}. */
#define FN(name, args, n) { name, "SELECT " name "(" args ")", n }
#define OP(name) FN(name, "$1::jsonb, $2, $3::jsonb", 3)

static const struct query queries[] = {
	/* api_health.c: schema version the database has reached. */
	{ "readyz", "SELECT coalesce(max(version),0) FROM schema_migrations", 0 },

	/* sweeper.c: claim and act on due deadlines (FOR UPDATE SKIP LOCKED). */
	FN("deadline_sweep", "$1::int", 1),

	/* auth.c: the principal behind a token hash or an office certificate. */
	FN("auth_token", "$1", 1),
	FN("auth_cert", "$1, $2", 2),

	/* api_*.c through api_call.c: one function per operation,
	 * api_<op>(p_who, p_request_id, p_args) -> {"status","body","headers"}. */
	OP("api_referral_submit"),
	OP("api_referral_get"),
	OP("api_referral_list"),
	OP("api_referral_withdraw"),
	OP("api_referral_consent_revoke"),
	OP("api_assignment_get"),
	OP("api_assignment_list"),
	OP("api_assignment_accept"),
	OP("api_assignment_decline"),
	OP("api_assignment_event"),
	OP("api_assignment_hold"),
	OP("api_assignment_resume"),
	OP("api_assignment_complete"),
	OP("api_assignment_fail"),
	OP("api_assignment_reassign"),
	OP("api_organisation_create"),
	OP("api_office_create"),
	OP("api_worker_create"),
	OP("api_worker_patch"),
	OP("api_supervisor_create"),
	OP("api_token_create"),
	OP("api_token_revoke"),
	OP("api_token_list"),
	OP("api_token_revoke_subject"),
	OP("api_office_patch"),
	OP("api_supervisor_patch"),
	OP("api_office_certificate_delete"),
	OP("api_deadline_policy_put"),
	OP("api_webhook_create"),
	OP("api_deadline_list"),
	OP("api_audit_list"),
	OP("api_subject_access"),
	OP("api_break_glass"),
	OP("api_break_glass_list"),
	OP("api_report_follow_up"),
	/* purge.c: retention of idempotency records. */
	FN("idempotency_purge", "$1::interval, $2::int", 2),
	/* router.c: the denied record of a 403 (role never allowed on a route). */
	OP("audit_denied"),

	/* outbox.c: claim due events (SKIP LOCKED, 60 s lease, attempt counted)
	 * with their target webhooks; record success; or schedule the next attempt
	 * $3 ms from now (the back-off and its jitter are configuration, computed
	 * in C), $3 < 0 parking a given-up event for operators. */
	FN("outbox_claim", "$1::int", 1),
	FN("outbox_done", "$1::uuid", 1),
	{ "outbox_retry_in",
	  "UPDATE outbox SET last_error = left($2, 200), next_attempt_at = CASE WHEN $3::bigint < 0 "
	  "THEN 'infinity'::timestamptz ELSE now() + $3::bigint * interval '1 millisecond' END "
	  "WHERE id = $1::uuid AND delivered_at IS NULL",
	  3 },

	/* followup.c: re-matching (notices, or a full pass) and the reminder /
	 * level-2 escalation step, both FOR UPDATE SKIP LOCKED in the database. */
	FN("rematch_run", "$1::boolean, $2::int", 2),
	FN("deadline_steps", "$1::int, $2::interval", 2),
	/* api_health.c: the follow-up gauges of /metrics (cached a few seconds). */
	FN("followup_gauges", "", 0),
	OP("api_calendar_put"),
	OP("api_deadline_policy_list"),
	OP("api_assignment_history"),
	/* The web pages' sign-in (api_sign_in.c and route rows). */
	OP("api_sign_in_code_create"),
	OP("sign_in_claim"),
	OP("api_sign_in"),
	OP("api_sign_out"),
	OP("api_worker_list"),
	OP("api_organisation_list"),
	OP("api_office_list"),
	OP("api_webhook_list"),
	OP("api_office_certificate_put"),
	OP("api_me"),
	/* audit_seal.c: the ledger v2 sealer and the signed head's publisher;
	 * api_audit_head.c: GET /v1/audit/head. */
	FN("audit_seal", "$1::int", 1),
	FN("audit_head", "", 0),
	FN("audit_head_publish", "$1::jsonb, $2::interval", 2),
	/* auth_limits.c: the audit record of a failed authentication. */
	FN("audit_authenticate_failed", "$1, $2::jsonb", 2),

	/* Retention (sql/functions/60_retention.sql): the policy's routes, the
	 * retention job's batch, the erasure queue, and the referral of an
	 * assignment (its free text is sealed under that referral's key). */
	OP("api_retention_policy_get"),
	OP("api_retention_policy_put"),
	FN("retention_run", "$1::int", 1),
	FN("data_key_erasures_due", "$1::int", 1),
	FN("data_key_erasures_done", "$1::uuid[]", 1),
	FN("assignment_referral", "$1::uuid", 1),
};

const struct query *queries_table(int *count)
{
	*count = (int)(sizeof(queries) / sizeof(queries[0]));
	return queries;
}

/* An operation's statement with its caller's authentication folded in
 * (auth.c's cache of verified tokens, api_call.c): $4 the token's keyed hash,
 * $5 the principal auth_token() returned when the daemon verified it, as the
 * text it returned. The operation runs only when auth_token($4) still returns
 * exactly that (same row, binding, subject, scope; not revoked, expired or
 * disabled); otherwise the result is NULL and nothing ran. Compared as text:
 * jsonb's text of equal values from the same function is the same, and a
 * difference of form alone would only mean one more authentication; parsing
 * $5 into jsonb for every request cost 17,000 instructions (issue 12).
 * Composed once at start from the static texts above, never from request
 * data. */
#define QUERIES_FOLD_HEAD "SELECT CASE WHEN auth_token($4)::text = $5 THEN "
#define QUERIES_FOLD_TAIL " END"

static int queries_foldable(const struct query *q)
{
	return q->nparams == 3 && strncmp(q->name, "api_", 4) == 0 &&
	       strncmp(q->sql, "SELECT api_", 11) == 0 && strchr(q->sql, ';') == NULL;
}

int queries_folded_name(const char *name, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
		if (strcmp(queries[i].name, name) == 0) {
			if (!queries_foldable(&queries[i]))
				return -1;
			if ((size_t)snprintf(out, outlen, "%s" QUERIES_FOLDED_SUFFIX, name) >= outlen)
				return -1;
			return 0;
		}
	return -1;
}

int queries_register(struct db_pool *p)
{
	size_t i;

	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		if (db_pool_prepare(p, queries[i].name, queries[i].sql, queries[i].nparams) != 0)
			return -1;
	}
	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		char name[128], *sql;
		size_t n;
		int rc;

		if (!queries_foldable(&queries[i]))
			continue;
		n = strlen(QUERIES_FOLD_HEAD) + strlen(queries[i].sql) + strlen(QUERIES_FOLD_TAIL) + 1;
		sql = malloc(n);
		if (!sql || queries_folded_name(queries[i].name, name, sizeof(name)) != 0) {
			free(sql);
			return -1;
		}
		snprintf(sql, n, QUERIES_FOLD_HEAD "%s" QUERIES_FOLD_TAIL, queries[i].sql + 7);
		rc = db_pool_prepare(p, name, sql, 5);
		free(sql);
		if (rc != 0)
			return -1;
	}
	return 0;
}
