#!/usr/bin/env bats
# reports.bats - GET /v1/reports/follow-up against a fixture whose times are
# chosen, so counts, on-time rates, medians and p90s have exact expected
# values, in JSON and in CSV, for every grouping; and scoping: a supervisor
# of another organisation sees none of it.
#
# The fixture: four real referrals submitted through the API (so the
# assignments, offers and accept deadlines are the daemon's own), whose
# deadline times are then moved to January 2026 by the superuser, plus
# first-contact deadlines with chosen outcomes.
#
#   worker 1: accept d1 met after 600 s, d2 met after 1800 s
#             first contact f1 met on time after 7200 s,
#                           f2 missed (due 72 h), then met late after 288000 s
#   worker 2: accept d3 met after 3600 s, d4 missed
#             first contact f3 missed, never met
# percentile_cont interpolates: p90 of {600,1800,3600} = 1800 + 0.8*1800 = 3240.

load ../lib/api

T0=2026-01-10T00:00:00Z

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	export REGION W1 W2 A1 A2 A3 A4
	REGION=$(new_region)
	W1=$(mk_worker "$ORG_A" harm_reduction "$REGION" ky 5 "rep-w1-$(rand_hex 3)") || return 1
	A1=$(fixture_referral) && A2=$(fixture_referral) || return 1
	# Worker 2 joins now: least loaded, it takes the next two.
	W2=$(mk_worker "$ORG_A" harm_reduction "$REGION" ky 5 "rep-w2-$(rand_hex 3)") || return 1
	A3=$(fixture_referral) && A4=$(fixture_referral) || return 1
	[ "$(sql "SELECT string_agg(worker_id::text, ',' ORDER BY created_at) FROM assignments
	          WHERE id IN ('$A1','$A2','$A3','$A4')")" = "$W1,$W1,$W2,$W2" ] || {
		echo "fixture: unexpected matching" >&2
		return 1
	}
	fixture_times
}

teardown_file() { api_teardown_file; }

fixture_referral() {
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$REGION\" | .needs=[\"harm_reduction\"]")"
	[ "$HTTP_STATUS" = 201 ] || { _api_ctx; return 1; }
	assignment_for harm_reduction
}

# accept_at ASSIGNMENT HOURS_AFTER_T0 ELAPSED_S|missed
accept_at() {
	local start="timestamptz '$T0' + interval '$2 hours'"
	if [ "$3" = missed ]; then
		sql "UPDATE deadlines SET starts_at = $start, due_at = $start + interval '24 hours',
		     created_at = $start, state = 'missed', missed_at = $start + interval '24 hours',
		     escalated = true
		     WHERE assignment_id = '$1' AND kind = 'accept'" >/dev/null
	else
		sql "UPDATE deadlines SET starts_at = $start, due_at = $start + interval '24 hours',
		     created_at = $start, state = 'met', met_at = $start + interval '$3 seconds',
		     elapsed = interval '$3 seconds'
		     WHERE assignment_id = '$1' AND kind = 'accept'" >/dev/null
	fi
	sql "UPDATE assignments SET created_at = $start WHERE id = '$1'" >/dev/null
}

# contact_at ASSIGNMENT WORKER HOURS_AFTER_T0 STATE MET_AFTER_S|-
contact_at() {
	local start="timestamptz '$T0' + interval '$3 hours'" met=NULL el=NULL missed=NULL
	if [ "$5" != - ]; then
		met="$start + interval '$5 seconds'"
		el="interval '$5 seconds'"
	fi
	[ "$4" = missed ] && missed="$start + interval '72 hours'"
	sql "INSERT INTO deadlines (kind, assignment_id, worker_id, organisation_id, starts_at,
	     due_at, state, met_at, elapsed, missed_at, escalated, created_at)
	     VALUES ('first_contact', '$1', '$2', '$ORG_A', $start, $start + interval '72 hours',
	     '$4', $met, $el, $missed, '$4' = 'missed', $start)" >/dev/null
}

fixture_times() {
	accept_at "$A1" 1 600
	accept_at "$A2" 2 1800
	accept_at "$A3" 3 3600
	accept_at "$A4" 4 missed
	contact_at "$A1" "$W1" 2 met 7200
	contact_at "$A2" "$W1" 3 missed 288000
	contact_at "$A3" "$W2" 4 missed -
}

report() { # TOKEN GROUP [curl args]
	local tok=$1 grp=$2
	shift 2
	call "$tok" GET "/v1/reports/follow-up?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z&group_by=$grp" "" "$@"
}

# The whole-organisation figures, the same for every grouping with one group.
expect_all_figures() {
	expect_jq '.groups | length == 1'
	expect_jq '.groups[0] | .offers == 4 and .assignments == 4'
	expect_jq '.groups[0].accept | .met == 3 and .on_time == 3 and .missed == 1
		and .on_time_rate == 0.75 and .median_seconds == 1800 and .p90_seconds == 3240'
	expect_jq '.groups[0].first_contact | .met == 2 and .on_time == 1 and .missed == 2
		and .on_time_rate == 0.3333 and .median_seconds == 147600 and .p90_seconds == 259920'
}

@test "report by organisation, office, region and need: exact counts, rates, medians, p90s" {
	report "$SUP_A_TOKEN" organisation
	expect_status 200
	expect_json .group_by organisation
	expect_json .groups[0].key "$ORG_A"
	expect_all_figures
	report "$SUP_A_TOKEN" office
	expect_json .groups[0].key "$OFFICE1"
	expect_all_figures
	report "$SUP_A_TOKEN" region
	expect_json .groups[0].key "$REGION"
	expect_all_figures
	report "$SUP_A_TOKEN" need
	expect_json .groups[0].key harm_reduction
	expect_all_figures
	# The programme supervisor sees the same organisation's figures.
	report "$PROG_TOKEN" region
	expect_all_figures
}

@test "report by worker splits the figures per worker" {
	report "$SUP_A_TOKEN" worker
	expect_status 200
	expect_jq '.groups | length == 2'
	expect_jq "(.groups[] | select(.key == \"$W1\")) as \$g | \$g.offers == 2 and \$g.assignments == 2
		and \$g.accept.met == 2 and \$g.accept.missed == 0 and \$g.accept.on_time_rate == 1
		and \$g.accept.median_seconds == 1200 and \$g.accept.p90_seconds == 1680
		and \$g.first_contact.met == 2 and \$g.first_contact.on_time == 1
		and \$g.first_contact.missed == 1 and \$g.first_contact.on_time_rate == 0.5
		and \$g.first_contact.median_seconds == 147600 and \$g.first_contact.p90_seconds == 259920"
	expect_jq "(.groups[] | select(.key == \"$W2\")) as \$g | \$g.offers == 2 and \$g.assignments == 2
		and \$g.accept.met == 1 and \$g.accept.missed == 1 and \$g.accept.on_time_rate == 0.5
		and \$g.accept.median_seconds == 3600 and \$g.accept.p90_seconds == 3600
		and \$g.first_contact.met == 0 and \$g.first_contact.missed == 1
		and \$g.first_contact.on_time_rate == 0 and \$g.first_contact.median_seconds == null"
	# Workers are labelled by handle, never by anything about a client.
	expect_jq '[.groups[].label | startswith("rep-w")] | all'
}

@test "Accept: text/csv gives the same figures with a header row" {
	local line
	report "$SUP_A_TOKEN" organisation -H "Accept: text/csv"
	expect_status 200
	header Content-Type | grep -q '^text/csv'
	line=$(printf '%s' "$HTTP_BODY" | head -n 1 | tr -d '\r')
	[ "$line" = "group_by,key,label,offers,assignments,accept_met,accept_on_time,accept_missed,accept_on_time_rate,accept_median_seconds,accept_p90_seconds,first_contact_met,first_contact_on_time,first_contact_missed,first_contact_on_time_rate,first_contact_median_seconds,first_contact_p90_seconds" ]
	[ "$(printf '%s' "$HTTP_BODY" | tr -d '\r' | wc -l)" = 2 ]
	line=$(printf '%s' "$HTTP_BODY" | sed -n 2p | tr -d '\r')
	[ "${line#organisation,$ORG_A,}" != "$line" ]
	[ "$(echo "$line" | cut -d, -f4-)" = "4,4,3,3,1,0.75,1800,3240,2,1,2,0.3333,147600,259920" ]
	report "$SUP_A_TOKEN" worker -H "Accept: text/csv"
	[ "$(printf '%s' "$HTTP_BODY" | tr -d '\r' | grep -c "^worker,$W2,")" = 1 ]
	[ "$(printf '%s' "$HTTP_BODY" | tr -d '\r' | grep "^worker,$W2," | cut -d, -f4-)" = "2,2,1,1,1,0.5,3600,3600,0,0,1,0,," ]
}

@test "a supervisor of another organisation sees none of it; other roles may not ask" {
	report "$SUP_B_TOKEN" organisation
	expect_status 200
	expect_json '.groups | length' 0
	report "$SUP_B_TOKEN" worker -H "Accept: text/csv"
	expect_status 200
	[ "$(printf '%s' "$HTTP_BODY" | tr -d '\r' | wc -l)" = 1 ]
	report "$OFFICE_TOKEN" organisation
	expect_error 403 forbidden
	report "$ADMIN_TOKEN" organisation
	expect_error 403 forbidden
}

@test "bad report parameters are refused with the field named" {
	call "$SUP_A_TOKEN" GET "/v1/reports/follow-up?group_by=client"
	expect_error 400 invalid_value /group_by
	call "$SUP_A_TOKEN" GET "/v1/reports/follow-up?from=yesterday"
	expect_error 400 "" /from
	call "$SUP_A_TOKEN" GET "/v1/reports/follow-up?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"
	expect_error 400 invalid_value /to
	call "$SUP_A_TOKEN" GET "/v1/reports/follow-up?colour=red"
	expect_error 400 "" /colour
}

@test "report: time distributions in five buckets and on-time rates week by week" {
	report "$SUP_A_TOKEN" organisation
	expect_status 200
	expect_jq '.histogram_bounds_seconds == [3600, 14400, 86400, 259200]'
	# accept: 600, 1800 -> under 1 h; 3600 -> 1-4 h. First contact: 7200 -> 1-4 h, 288000 -> 72 h+.
	expect_jq '.groups[0].accept.histogram == [2, 1, 0, 0, 0]'
	expect_jq '.groups[0].first_contact.histogram == [0, 1, 0, 0, 1]'
	# Every deadline started on Saturday 2026-01-10: the week of Monday the 5th.
	expect_jq '.weeks | length == 1'
	expect_jq '.weeks[0].week == "2026-01-05T00:00:00Z"'
	expect_jq '.weeks[0].accept == {"judged": 4, "on_time": 3, "on_time_rate": 0.75}'
	expect_jq '.weeks[0].first_contact == {"judged": 3, "on_time": 1, "on_time_rate": 0.3333}'
	# Another organisation's supervisor: no week, no group.
	report "$SUP_B_TOKEN" organisation
	expect_jq '.weeks == [] and .groups == []'
}
