/*
 * test_router.c - the route table and its policy: every protocol path is
 * there with the right method and roles, patterns capture ids, unknown paths
 * are unknown, known paths under another method are reported for 405.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/http.h>

#include "request.h"
#include "router.h"

#define ID "0b7e6a36-5a55-4c6e-9d5d-1c1f8e0e2f11"

struct expect {
	int method;
	const char *path;
	const char *name;
	unsigned roles;
};

/* The brief's endpoints, with the roles that may call each. */
static const struct expect brief[] = {
	{ EVHTTP_REQ_GET, "/healthz", "healthz", 0 },
	{ EVHTTP_REQ_GET, "/readyz", "readyz", 0 },
	{ EVHTTP_REQ_GET, "/metrics", "metrics", ROLE_ADMIN },
	{ EVHTTP_REQ_POST, "/v1/referrals", "referral.submit", ROLE_OFFICE },
	{ EVHTTP_REQ_GET, "/v1/referrals", "referral.list", ROLE_OFFICE | ROLE_SUPERVISOR },
	{ EVHTTP_REQ_GET, "/v1/referrals/" ID, "referral.get", ROLE_OFFICE | ROLE_SUPERVISOR },
	{ EVHTTP_REQ_POST, "/v1/referrals/" ID "/withdraw", "referral.withdraw", ROLE_OFFICE },
	{ EVHTTP_REQ_GET, "/v1/assignments", "assignment.list", ROLE_WORKER | ROLE_SUPERVISOR },
	{ EVHTTP_REQ_GET, "/v1/assignments/" ID, "assignment.get",
	  ROLE_WORKER | ROLE_SUPERVISOR },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/accept", "assignment.accept", ROLE_WORKER },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/decline", "assignment.decline", ROLE_WORKER },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/events", "assignment.event", ROLE_WORKER },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/hold", "assignment.hold", ROLE_WORKER },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/resume", "assignment.resume", ROLE_WORKER },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/complete", "assignment.complete",
	  ROLE_WORKER },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/fail", "assignment.fail", ROLE_WORKER },
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/reassign", "assignment.reassign",
	  ROLE_SUPERVISOR },
	{ EVHTTP_REQ_GET, "/v1/deadlines", "deadline.list", ROLE_SUPERVISOR },
	{ EVHTTP_REQ_GET, "/v1/audit", "audit.list", ROLE_SUPERVISOR },
	{ EVHTTP_REQ_GET, "/v1/audit/head", "audit.head", ROLE_SUPERVISOR | ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/audit/keys", "audit.keys",
	  ROLE_OFFICE | ROLE_WORKER | ROLE_SUPERVISOR | ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/reports/follow-up", "report.follow_up", ROLE_SUPERVISOR },
	{ EVHTTP_REQ_POST, "/v1/organisations", "organisation.create", ROLE_ADMIN },
	{ EVHTTP_REQ_POST, "/v1/offices", "office.create", ROLE_ADMIN },
	{ EVHTTP_REQ_POST, "/v1/workers", "worker.create", ROLE_ADMIN },
	{ EVHTTP_REQ_PATCH, "/v1/workers/" ID, "worker.patch", ROLE_ADMIN },
	{ EVHTTP_REQ_POST, "/v1/supervisors", "supervisor.create", ROLE_ADMIN },
	{ EVHTTP_REQ_POST, "/v1/tokens", "token.create", ROLE_ADMIN },
	{ EVHTTP_REQ_DELETE, "/v1/tokens/" ID, "token.revoke", ROLE_ADMIN },
	{ EVHTTP_REQ_PUT, "/v1/deadline-policies/harm_reduction/urgent", "deadline_policy.put",
	  ROLE_ADMIN },
	{ EVHTTP_REQ_POST, "/v1/webhooks", "webhook.create", ROLE_ADMIN },
	/* The administration lists (issue 13, referralctl). */
	{ EVHTTP_REQ_GET, "/v1/organisations", "organisation.list", ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/offices", "office.list", ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/webhooks", "webhook.list", ROLE_ADMIN },
	/* v1.1: follow-up, continued. */
	{ EVHTTP_REQ_GET, "/v1/assignments/0b7a5f3e-0000-4000-8000-000000000001/history",
	  "assignment.history", ROLE_WORKER | ROLE_SUPERVISOR },
	{ EVHTTP_REQ_PUT, "/v1/organisations/0b7a5f3e-0000-4000-8000-000000000002/calendar",
	  "calendar.put", ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/retention-policy", "retention_policy.get", ROLE_ADMIN },
	{ EVHTTP_REQ_PUT, "/v1/retention-policy", "retention_policy.put", ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/deadline-policies", "deadline_policy.list",
	  ROLE_ADMIN | ROLE_SUPERVISOR },
	/* The web pages' sign-in (issue 14). */
	{ EVHTTP_REQ_POST, "/v1/sign-in-codes", "sign_in_code.create", ROLE_SUPERVISOR | ROLE_ADMIN },
	{ EVHTTP_REQ_POST, "/v1/sign-in", "sign_in", 0 },
	{ EVHTTP_REQ_POST, "/v1/sign-out", "sign_out",
	  ROLE_OFFICE | ROLE_WORKER | ROLE_SUPERVISOR | ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/workers", "worker.list", ROLE_SUPERVISOR | ROLE_ADMIN },
	{ EVHTTP_REQ_GET, "/v1/me", "me", ROLE_OFFICE | ROLE_WORKER | ROLE_SUPERVISOR | ROLE_ADMIN },
	/* v1.1 Credentials. */
	{ EVHTTP_REQ_GET, "/v1/tokens", "token.list", ROLE_ADMIN | ROLE_SUPERVISOR },
	{ EVHTTP_REQ_POST, "/v1/tokens/revoke", "token.revoke_subject", ROLE_ADMIN },
	{ EVHTTP_REQ_PATCH, "/v1/offices/" ID, "office.patch", ROLE_ADMIN },
	{ EVHTTP_REQ_DELETE, "/v1/offices/" ID "/certificate", "office.certificate_delete",
	  ROLE_ADMIN },
	{ EVHTTP_REQ_PUT, "/v1/offices/" ID "/certificate", "office.certificate_put", ROLE_ADMIN },
	{ EVHTTP_REQ_PATCH, "/v1/supervisors/" ID, "supervisor.patch", ROLE_ADMIN },
	/* v1.1 Subject access and break-the-glass (the database decides which
	 * supervisors). */
	{ EVHTTP_REQ_POST, "/v1/assignments/" ID "/break-glass", "break_glass", ROLE_SUPERVISOR },
	{ EVHTTP_REQ_GET, "/v1/break-glass", "break_glass.list", ROLE_SUPERVISOR },
	{ EVHTTP_REQ_POST, "/v1/subject-access", "subject_access", ROLE_SUPERVISOR },
	/* v1.1 Consent revocation. */
	{ EVHTTP_REQ_POST, "/v1/referrals/" ID "/consent/revoke", "referral.consent_revoke",
	  ROLE_OFFICE | ROLE_WORKER | ROLE_SUPERVISOR },
};

static void test_every_brief_route(void **state)
{
	char params[REQ_MAX_PARAMS][64];
	(void)state;

	for (size_t i = 0; i < sizeof(brief) / sizeof(brief[0]); i++) {
		int known = -1;
		const struct route *rt = router_match(brief[i].path, brief[i].method, params,
						      REQ_MAX_PARAMS, &known);
		assert_non_null(rt);
		assert_string_equal(rt->name, brief[i].name);
		assert_int_equal(rt->roles, brief[i].roles);
		assert_non_null(rt->handler);
	}
}

static void test_table_invariants(void **state)
{
	int n = 0;
	const struct route *t = router_table(&n);
	(void)state;

	assert_int_equal(n, (int)(sizeof(brief) / sizeof(brief[0])));
	for (int i = 0; i < n; i++) {
		/* Only health checks and the sign-in that buys a token go
		 * without authentication. */
		if (t[i].roles == 0)
			assert_true(strcmp(t[i].pattern, "/healthz") == 0 ||
				    strcmp(t[i].pattern, "/readyz") == 0 ||
				    strcmp(t[i].pattern, "/v1/sign-in") == 0);
		/* Admins never reach client data. */
		if (strncmp(t[i].pattern, "/v1/referrals", 13) == 0 ||
		    strncmp(t[i].pattern, "/v1/assignments", 15) == 0)
			assert_int_equal(t[i].roles & ROLE_ADMIN, 0);
		/* Every row does something: a handler; every API route a
		 * statement; only the health and metrics rows are on the ops
		 * listener. A path id needs a {..} in the pattern; a body is
		 * read only by methods that carry one. */
		assert_non_null(t[i].handler);
		if (strncmp(t[i].pattern, "/v1/", 4) == 0) {
			/* The audit keys come from the key file, not the database. */
			if (t[i].handler != api_audit_keys)
				assert_non_null(t[i].op.stmt);
			assert_false(t[i].ops);
		} else {
			assert_true(t[i].ops);
		}
		if (t[i].op.flags & API_ID)
			assert_non_null(strchr(t[i].pattern, '{'));
		if (t[i].op.body)
			assert_true(t[i].method == EVHTTP_REQ_POST || t[i].method == EVHTTP_REQ_PUT ||
				    t[i].method == EVHTTP_REQ_PATCH);
		if (t[i].method == EVHTTP_REQ_POST || t[i].method == EVHTTP_REQ_PATCH)
			assert_true(t[i].op.body != NULL);
		if (t[i].handler == api_call_op && t[i].op.body == NULL)
			assert_true(t[i].method == EVHTTP_REQ_GET || (t[i].op.flags & API_NO_BODY));
		for (int j = 0; j < i; j++) {
			assert_string_not_equal(t[i].name, t[j].name);
			assert_false(t[i].method == t[j].method &&
				     strcmp(t[i].pattern, t[j].pattern) == 0);
		}
	}
}

static void test_params_captured(void **state)
{
	char params[REQ_MAX_PARAMS][64];
	int known;
	const struct route *rt;
	(void)state;

	memset(params, 0, sizeof(params));
	rt = router_match("/v1/assignments/" ID "/accept", EVHTTP_REQ_POST, params,
			  REQ_MAX_PARAMS, &known);
	assert_non_null(rt);
	assert_string_equal(params[0], ID);

	rt = router_match("/v1/deadline-policies/legal_support/normal", EVHTTP_REQ_PUT, params,
			  REQ_MAX_PARAMS, &known);
	assert_non_null(rt);
	assert_string_equal(params[0], "legal_support");
	assert_string_equal(params[1], "normal");
}

static void test_unknown_and_405(void **state)
{
	char params[REQ_MAX_PARAMS][64];
	int known;
	(void)state;

	assert_null(router_match("/v1/nothing", EVHTTP_REQ_GET, params, REQ_MAX_PARAMS, &known));
	assert_int_equal(known, 0);
	assert_null(router_match("/v1/referrals/", EVHTTP_REQ_GET, params, REQ_MAX_PARAMS,
				 &known));
	assert_int_equal(known, 0);
	assert_null(router_match("/v1/referrals//withdraw", EVHTTP_REQ_POST, params,
				 REQ_MAX_PARAMS, &known));
	assert_int_equal(known, 0);
	assert_null(router_match("/v1/referrals/" ID "/withdraw/x", EVHTTP_REQ_POST, params,
				 REQ_MAX_PARAMS, &known));
	assert_int_equal(known, 0);
	assert_null(router_match("", EVHTTP_REQ_GET, params, REQ_MAX_PARAMS, &known));
	assert_null(router_match("/V1/referrals", EVHTTP_REQ_GET, params, REQ_MAX_PARAMS,
				 &known));
	assert_int_equal(known, 0);

	/* Known paths, other methods. */
	assert_null(router_match("/v1/referrals", EVHTTP_REQ_DELETE, params, REQ_MAX_PARAMS,
				 &known));
	assert_int_equal(known, 1);
	assert_null(router_match("/v1/assignments/" ID "/accept", EVHTTP_REQ_GET, params,
				 REQ_MAX_PARAMS, &known));
	assert_int_equal(known, 1);
	assert_null(router_match("/healthz", EVHTTP_REQ_POST, params, REQ_MAX_PARAMS, &known));
	assert_int_equal(known, 1);

	/* A segment of 64 bytes or more never matches a parameter. */
	{
		char longp[128];
		snprintf(longp, sizeof(longp), "/v1/referrals/%070d", 0);
		assert_null(router_match(longp, EVHTTP_REQ_GET, params, REQ_MAX_PARAMS, &known));
	}
}

/* One name per operation: a route's name is the audit action its SQL
 * function writes, and the function is "api_" + the name with '.' as '_'
 * (route "referral.submit", function api_referral_submit, audit action
 * "referral.submit"); sql_names.bats checks the functions' actions. Names
 * use only [a-z_] and at most one '.': audit_denied keeps nothing else. */
static void test_one_name_per_operation(void **state)
{
	int n = 0;
	const struct route *t = router_table(&n);
	(void)state;

	for (int i = 0; i < n; i++) {
		const char *name = t[i].name, *dot = strchr(name, '.');
		char want[128];
		size_t k;

		assert_true(name[0] != '\0' && strlen(name) < 64);
		for (k = 0; name[k]; k++)
			assert_true((name[k] >= 'a' && name[k] <= 'z') || name[k] == '_' ||
				    name[k] == '.');
		if (dot) {
			assert_true(dot > name && dot[1] != '\0');
			assert_null(strchr(dot + 1, '.'));
		}
		if (!t[i].op.stmt || strncmp(t[i].op.stmt, "api_", 4) != 0)
			continue;
		snprintf(want, sizeof(want), "api_%s", name);
		for (k = 4; want[k]; k++)
			if (want[k] == '.')
				want[k] = '_';
		if (strcmp(want, t[i].op.stmt) != 0)
			fail_msg("route %s runs %s, not %s", name, t[i].op.stmt, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_brief_route),
		cmocka_unit_test(test_table_invariants),
		cmocka_unit_test(test_one_name_per_operation),
		cmocka_unit_test(test_params_captured),
		cmocka_unit_test(test_unknown_and_405),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
