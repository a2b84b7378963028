#!/usr/bin/env bats
# One name per operation (issue 8 §4): route "referral.submit" runs
# api_referral_submit, which writes audit action "referral.submit". The unit
# test test_router.c checks route name against statement; this file checks the
# SQL side: the audit actions each api_ function's source writes, and that the
# route table and the database name the same functions. No daemon runs here.

load ../lib/common
load sql_common

setup_file() { sql_setup_file; }
teardown_file() { refd_teardown_file; }

# The operation functions: api_<name>(p_who, p_request_id, p_args).
OPS="(SELECT p.proname, p.prosrc FROM pg_proc p
      JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'public'
      WHERE p.proname LIKE 'api\\_%' AND pg_get_function_identity_arguments(p.oid)
            = 'p_who jsonb, p_request_id text, p_args jsonb') AS f"
# The action is the literal after p_request_id: audit_write, api_forbidden,
# api_not_found, admin_check, admin_done, assignment_reply and
# assignment_worker_step all take it there.
ACTION="'p_request_id,\\s*(?:p_args,\\s*)?''([a-z_.]+)'''"

@test "every audit action an api_ function names is its own name" {
	local bad n
	# read_client_data is the second record of a read, not an operation.
	bad=$(sql "SELECT string_agg(f.proname || ' writes ' || m[1], ', ' ORDER BY f.proname)
	          FROM $OPS CROSS JOIN LATERAL regexp_matches(f.prosrc, $ACTION, 'g') AS m
	          WHERE m[1] <> 'read_client_data' AND 'api_' || replace(m[1], '.', '_') <> f.proname")
	[ -z "$bad" ] || { echo "actions not named after their function: $bad" >&2; return 1; }
	# Not vacuous: most operations name their action.
	n=$(sql "SELECT count(*) FROM $OPS WHERE f.prosrc ~ $ACTION")
	[ "$n" -ge 30 ] || { echo "only $n functions name an action" >&2; return 1; }
}

@test "the route table and the database name the same api_ functions" {
	local db routes
	db=$(sql "SELECT f.proname FROM $OPS ORDER BY 1")
	routes=$(grep -o '"api_[a-z_]*"' "$REFD_ROOT/daemon/router.c" | tr -d '"' | sort -u)
	[ -n "$db" ] && [ -n "$routes" ]
	if [ "$db" != "$routes" ]; then
		echo "functions (<) and routes (>) differ:" >&2
		diff <(printf '%s\n' "$db") <(printf '%s\n' "$routes") >&2
		return 1
	fi
}

@test "a denied call is audited under the operation's name" {
	# Each function refuses a role it does not serve with a 'denied' record
	# under its own name, as the router does for a role the route refuses.
	local fn name bad=""
	while read -r fn name; do
		sql_app "SELECT $fn('{\"role\":\"nobody\",\"id\":\"00000000-0000-4000-8000-000000000001\"}',
		             'names-$fn', '{\"id\":\"00000000-0000-4000-8000-000000000002\"}')" >/dev/null
		[ "$(sql "SELECT string_agg(action || ':' || outcome, ',') FROM audit_log
		         WHERE request_id = 'names-$fn'")" = "$name:denied" ] || bad="$bad $fn"
	done <<-LIST
		api_referral_submit referral.submit
		api_assignment_hold assignment.hold
		api_assignment_event assignment.event
		api_worker_create worker.create
		api_calendar_put calendar.put
		api_report_follow_up report.follow_up
	LIST
	[ -z "$bad" ] || { echo "denied under another name:$bad" >&2; return 1; }
}
