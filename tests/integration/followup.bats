#!/usr/bin/env bats
# followup.bats - "Follow-up, continued" (issue 11) against the real daemon:
# unassigned assignments matched again on every trigger and by the periodic
# pass, two daemons filling 50 slots for 100 waiting assignments, working
# calendars with holidays, holds that stop the clock, reminders exactly once
# across a restart, level-2 escalation exactly once with two daemons, the
# reassignment reason and history, and the gauges on /metrics.
#
# Policies (set through the API, seconds-long where a test waits):
#   harm_reduction/normal   defaults (24 h): re-matching tests
#   harm_reduction/urgent   accept 1 h, first contact 6 s: holds, level 2
#   legal_support/normal    accept 10 s, remind 6 s before: reminders
#   legal_support/urgent    working clock, accept 4 h: the holiday calendar

load ../lib/api

# followup_conf FILE: the [matching] and [deadlines] values of this file.
followup_conf() {
	refd_config_set "$1" matching rematch_interval 3s &&
		refd_config_set "$1" deadlines escalate_after 3s
}

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	refd_daemon_stop main >/dev/null || return 1
	followup_conf "$REFD_CONF" || return 1
	refd_daemon_start main "$REFD_CONF" || return 1
	as_admin PUT /v1/deadline-policies/harm_reduction/urgent \
		'{"accept_within":"PT1H","first_contact_within":"PT6S"}'
	[ "$HTTP_STATUS" = 200 ] || { _api_ctx; return 1; }
	as_admin PUT /v1/deadline-policies/legal_support/normal \
		'{"accept_within":"PT10S","remind_before":"PT6S"}'
	[ "$HTTP_STATUS" = 200 ] || { _api_ctx; return 1; }
}

teardown_file() { api_teardown_file; }

teardown() {
	if refd_daemon_alive second 2>/dev/null; then
		refd_daemon_stop second >/dev/null || true
	fi
}

# second_daemon: another daemon on the same database, same job settings.
second_daemon() {
	local p m o
	p=$(refd_free_port) && m=$(refd_free_port) && o=$(refd_free_port) || return 1
	refd_config_write "$REFD_TMP/second.conf" "$p" "$m" "$o"
	followup_conf "$REFD_TMP/second.conf" || return 1
	refd_daemon_start second "$REFD_TMP/second.conf"
}

# referral NEED REGION [URGENCY] [LANGS_JSON]: one need from office 1; the
# assignment's id in A.
referral() {
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$2\" | .needs=[\"$1\"]
		| .urgency=\"${3:-normal}\" | .client.languages=${4:-[\"ky\"]}")"
	expect_status 201 || return 1
	A=$(assignment_for "$1")
}

status_of() { sql "SELECT status FROM assignments WHERE id = '$1'"; }

# unassigned_then TRIGGER_DESCRIPTION: the assignment in A is unassigned now,
# then (after the caller's trigger) offered within 4 s with its escalation
# resolved and exactly one assignment.unassigned event.
expect_rematched() {
	wait_sql "SELECT status FROM assignments WHERE id = '$A'" offered 4 || return 1
	[ "$(sql "SELECT count(*) FROM escalations WHERE assignment_id = '$A'
	           AND reason = 'unassigned' AND resolved_at IS NULL")" = 0 ]
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'assignment.unassigned'
	           AND payload->>'assignment_id' = '$A'")" = 1 ]
	[ "$(sql "SELECT match_reason->>'rule' FROM assignments WHERE id = '$A'")" = rematch ]
}

@test "unassigned is matched again when a worker is created, activated, back from leave, or given capacity" {
	local r w
	# Created.
	r=$(new_region)
	referral harm_reduction "$r"
	[ "$(status_of "$A")" = unassigned ]
	sleep 1.5 # a few passes with nobody to offer: still one event
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'assignment.unassigned'
	           AND payload->>'assignment_id' = '$A'")" = 1 ]
	w=$(mk_worker "$ORG_A" harm_reduction "$r" ky 2)
	expect_rematched
	[ "$(sql "SELECT worker_id FROM assignments WHERE id = '$A'")" = "$w" ]

	# Capacity rises from 0.
	r=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$r" ky 0)
	referral harm_reduction "$r"
	[ "$(status_of "$A")" = unassigned ]
	as_admin PATCH "/v1/workers/$w" '{"capacity":1}'
	expect_status 200
	expect_rematched

	# Back from leave.
	r=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$r" ky 1)
	as_admin PATCH "/v1/workers/$w" '{"on_leave":true}'
	referral harm_reduction "$r"
	[ "$(status_of "$A")" = unassigned ]
	as_admin PATCH "/v1/workers/$w" '{"on_leave":false}'
	expect_rematched

	# Activated.
	r=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$r" ky 1)
	as_admin PATCH "/v1/workers/$w" '{"active":false}'
	referral harm_reduction "$r"
	[ "$(status_of "$A")" = unassigned ]
	as_admin PATCH "/v1/workers/$w" '{"active":true}'
	expect_rematched
}

@test "unassigned is matched again when a worker's regions or languages change" {
	local r w
	r=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$(new_region)" ky 1)
	referral harm_reduction "$r"
	[ "$(status_of "$A")" = unassigned ]
	as_admin PATCH "/v1/workers/$w" "{\"regions\":[\"$r\"]}"
	expect_status 200
	expect_rematched

	r=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$r" uz 1)
	referral harm_reduction "$r"
	[ "$(status_of "$A")" = unassigned ]
	as_admin PATCH "/v1/workers/$w" '{"languages":["uz","ky"]}'
	expect_rematched
}

# slot_case REGION: a worker of capacity 1 holding one accepted assignment
# (HELD, token WT, id W) and a second referral waiting unassigned (A).
slot_case() {
	read -r W WT <<<"$(worker_with_token "$ORG_A" harm_reduction "$1" ky 1)"
	referral harm_reduction "$1"
	HELD=$A
	as "$WT" POST "/v1/assignments/$HELD/accept"
	expect_status 200
	referral harm_reduction "$1"
	[ "$(status_of "$A")" = unassigned ]
}

@test "unassigned is matched again when a slot is freed: complete, fail, withdraw, decline, reassign away" {
	local r other
	r=$(new_region)
	slot_case "$r"
	as "$WT" POST "/v1/assignments/$HELD/events" '{"type":"contact_made"}'
	as "$WT" POST "/v1/assignments/$HELD/complete" '{"outcome":"engaged"}'
	expect_status 200
	expect_rematched

	r=$(new_region)
	slot_case "$r"
	as "$WT" POST "/v1/assignments/$HELD/events" '{"type":"contact_made"}'
	as "$WT" POST "/v1/assignments/$HELD/fail" '{"reason":"lost_contact"}'
	expect_status 200
	expect_rematched

	r=$(new_region)
	slot_case "$r"
	as_office POST "/v1/referrals/$(sql "SELECT referral_id FROM assignments WHERE id = '$HELD'")/withdraw" \
		'{"reason":"sent twice"}'
	expect_status 200
	expect_rematched

	# Decline of an offer frees its slot too (the declined one goes unassigned).
	r=$(new_region)
	read -r W WT <<<"$(worker_with_token "$ORG_A" harm_reduction "$r" ky 1)"
	referral harm_reduction "$r"
	HELD=$A
	referral harm_reduction "$r"
	as "$WT" POST "/v1/assignments/$HELD/decline" '{"reason":"no time"}'
	expect_status 200
	expect_rematched
	# The declined one has nobody left: unassigned, its event naming the
	# organisation that held it (and delivered to that organisation).
	[ "$(status_of "$HELD")" = unassigned ]
	[ "$(sql "SELECT payload->>'organisation_id' = '$ORG_A' AND organisation_id = '$ORG_A'
	           FROM outbox WHERE type = 'assignment.unassigned' AND payload->>'assignment_id' = '$HELD'")" = t ]

	# Reassigned away by a supervisor to a worker of another region.
	r=$(new_region)
	slot_case "$r"
	other=$(mk_worker "$ORG_A" harm_reduction "$(new_region)" ky 1)
	as "$SUP_A_TOKEN" POST "/v1/assignments/$HELD/reassign" \
		"{\"worker_id\":\"$other\",\"reason\":\"closer to the client\"}"
	expect_status 200
	expect_rematched
	[ "$(sql "SELECT worker_id FROM assignments WHERE id = '$A'")" = "$W" ]
}

@test "the periodic pass matches what no notice pointed at, oldest first" {
	local r w a1 a2
	r=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$r" ky 0)
	referral harm_reduction "$r"
	a1=$A
	referral harm_reduction "$r"
	a2=$A
	# A change that leaves no notice (triggers off for this one statement,
	# as a restore or a manual repair might): only the periodic pass
	# ([matching] rematch_interval = 3 s here) can find it.
	refd_psql -qc "SET session_replication_role = replica;
	               UPDATE workers SET capacity = 1 WHERE id = '$w'"
	wait_sql "SELECT status FROM assignments WHERE id = '$a1'" offered 6
	[ "$(status_of "$a2")" = unassigned ]
}

@test "two daemons, 100 unassigned, 50 slots at once: exactly 50 offers, nobody over capacity" {
	local r i ws
	r=$(new_region)
	for i in $(seq 1 5); do
		ws+="'$(mk_worker "$ORG_A" harm_reduction "$r" ky 0)',"
	done
	ws=${ws%,}
	for i in $(seq 1 100); do
		referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"] | .client.languages=[\"ky\"]" \
			>"$BATS_TEST_TMPDIR/body.$i"
	done
	seq 1 100 | xargs -P 8 -I{} curl -sS --http1.1 --cacert "$API_CA" -o /dev/null \
		-w '%{http_code}\n' -X POST -H "Authorization: Bearer $OFFICE_TOKEN" \
		-H "Idempotency-Key: burst-$r-{}" -H 'Content-Type: application/json' \
		--data-binary "@$BATS_TEST_TMPDIR/body.{}" "$API_URL/v1/referrals" \
		>"$BATS_TEST_TMPDIR/statuses"
	[ "$(grep -c '^201$' "$BATS_TEST_TMPDIR/statuses")" = 100 ]
	[ "$(sql "SELECT count(*) FROM assignments WHERE region = '$r' AND status = 'unassigned'")" = 100 ]
	second_daemon

	# 50 slots appear in one transaction: five workers go from 0 to 10.
	sql "UPDATE workers SET capacity = 10 WHERE id IN ($ws)" >/dev/null
	wait_sql "SELECT count(*) FROM assignments WHERE region = '$r' AND status = 'offered'" 50 10
	sleep 2 # both daemons' next passes, and a periodic one, change nothing
	[ "$(sql "SELECT count(*) FROM offers o JOIN assignments a ON a.id = o.assignment_id
	           WHERE a.region = '$r'")" = 50 ]
	[ "$(sql "SELECT count(*) FROM assignments WHERE region = '$r' AND status = 'unassigned'")" = 50 ]
	[ "$(sql "SELECT count(*) FROM workers WHERE id IN ($ws) AND open_count = 10
	           AND open_count = (SELECT count(*) FROM assignments a WHERE a.worker_id = workers.id
	                             AND a.status = 'offered')")" = 5 ]
	# One audit record per offer made by the job, none twice.
	[ "$(sql "SELECT count(*), count(DISTINCT object_id) FROM audit_log
	           WHERE action = 'assignment.rematch' AND object_id IN (
	             SELECT id::text FROM assignments WHERE region = '$r')")" = "50|50" ]
	# The oldest 50 got them (oldest first).
	[ "$(sql "SELECT count(*) FROM (SELECT status FROM assignments WHERE region = '$r'
	           ORDER BY created_at, id LIMIT 50) x WHERE status = 'offered'")" = 50 ]
	refd_daemon_stop second
}

@test "reassign needs a reason (1-500, 400 otherwise, nothing changes); the history shows it" {
	local r w w2 wt a new
	r=$(new_region)
	read -r w wt <<<"$(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)"
	referral harm_reduction "$r"
	a=$A
	[ "$(sql "SELECT worker_id FROM assignments WHERE id = '$a'")" = "$w" ]
	w2=$(mk_worker "$ORG_A" harm_reduction "$r" ky 2)
	as "$SUP_A_TOKEN" POST "/v1/assignments/$a/reassign" "{\"worker_id\":\"$w2\"}"
	expect_error 400 missing_field /reason
	as "$SUP_A_TOKEN" POST "/v1/assignments/$a/reassign" "{\"worker_id\":\"$w2\",\"reason\":\"\"}"
	expect_error 400 "" /reason
	as "$SUP_A_TOKEN" POST "/v1/assignments/$a/reassign" \
		"$(jq -nc --arg w "$w2" --arg r "$(printf 'x%.0s' $(seq 1 501))" '{worker_id:$w, reason:$r}')"
	expect_error 400 "" /reason
	[ "$(status_of "$a")" = offered ]
	[ "$(sql "SELECT count(*) FROM assignments WHERE replaces = '$a'")" = 0 ]

	as "$SUP_A_TOKEN" POST "/v1/assignments/$a/reassign" \
		"{\"worker_id\":\"$w2\",\"reason\":\"speaks the client's dialect\"}"
	expect_status 200
	new=$(jget .id)
	as "$SUP_A_TOKEN" GET "/v1/assignments/$a/history"
	expect_status 200
	expect_json '[.items[].to_status] | join(",")' "unassigned,offered,reassigned"
	expect_json '.items[0].actor_role' office
	expect_json '.items[2].actor_role' supervisor
	expect_json '.items[2].reason' "speaks the client's dialect"
	expect_jq '.items[0].at < .items[1].at and .items[1].at < .items[2].at'
	as "$SUP_A_TOKEN" GET "/v1/assignments/$new/history"
	expect_json '.items[-1].to_status' offered
	expect_json '.items[-1].reason' "speaks the client's dialect"
	# Other organisations' supervisors: 404, as if absent.
	as "$SUP_B_TOKEN" GET "/v1/assignments/$a/history"
	expect_error 404 not_found
	# Its worker while it holds it; not once it is gone.
	as "$wt" GET "/v1/assignments/$a/history"
	expect_error 404 not_found
	wt=$(mk_token worker "$w2")
	as "$wt" GET "/v1/assignments/$new/history"
	expect_status 200
	as "$wt" GET "/v1/assignments/$a/history"
	expect_error 404 not_found
}

# local_date_plus N: the date N days from today in Asia/Bishkek.
local_date_plus() { TZ=Asia/Bishkek date -d "+$1 days" +%Y-%m-%d; }

@test "working clock: a deadline asked on a holiday falls due after it, at the right working minute" {
	local org r w today d1 d2 want got
	org=$(mk_org "cal-$(rand_hex 3)")
	r=$(new_region)
	w=$(mk_worker "$org" legal_support "$r" ky 3)
	today=$(local_date_plus 0)
	d1=$(local_date_plus 1)
	d2=$(local_date_plus 2)
	# Every day 09:00-18:00, today and tomorrow holidays.
	as_admin PUT "/v1/organisations/$org/calendar" "$(jq -nc --arg a "$today" --arg b "$d1" '{
		timezone: "Asia/Bishkek",
		hours: {mon: ["09:00","18:00"], tue: ["09:00","18:00"], wed: ["09:00","18:00"],
		        thu: ["09:00","18:00"], fri: ["09:00","18:00"], sat: ["09:00","18:00"],
		        sun: ["09:00","18:00"]},
		holidays: [$a, $b]}')"
	expect_status 200
	expect_json .timezone Asia/Bishkek
	as_admin PUT /v1/deadline-policies/legal_support/urgent '{"clock":"working","accept_within":"PT4H"}'
	expect_status 200
	expect_json .clock working
	referral legal_support "$r" urgent
	# The day after tomorrow, 09:00 + 4 h = 13:00 in Bishkek (UTC+6) = 07:00Z.
	want="${d2}T07:00:00Z"
	got=$(sql "SELECT ts(offer_expires_at) FROM assignments WHERE id = '$A'")
	[ "$got" = "$want" ]
	[ "$(sql "SELECT ts(due_at) || ' ' || clock FROM deadlines WHERE assignment_id = '$A' AND kind = 'accept'")" = "$want working" ]
	# A wall-clock policy ignores the calendar.
	as_admin PUT /v1/deadline-policies/legal_support/urgent '{"clock":"wall"}'
	referral legal_support "$r" urgent
	[ "$(sql "SELECT clock, abs(extract(epoch FROM due_at - created_at) - 14400) < 5 FROM deadlines
	           WHERE assignment_id = '$A'")" = "wall|t" ]
	as "$SUP_A_TOKEN" GET /v1/deadline-policies
	expect_status 200
	expect_json '.items | length' 4
	expect_json '[.items[] | select(.need == "legal_support" and .urgency == "normal")][0].remind_before' PT6S
	expect_json '[.items[] | select(.need == "legal_support" and .urgency == "urgent")][0].clock' wall
}

@test "bad calendars, clocks and reminders are refused and change nothing" {
	local org before
	org=$(mk_org "bad-$(rand_hex 3)")
	as_admin PUT "/v1/organisations/$org/calendar" '{"timezone":"Europe/Atlantis","hours":{}}'
	expect_error 422 invalid_value /timezone
	as_admin PUT "/v1/organisations/$org/calendar" '{"timezone":"Asia/Bishkek","hours":{"mon":["18:00","09:00"]}}'
	expect_error 422 invalid_value /hours/mon
	as_admin PUT "/v1/organisations/$org/calendar" '{"timezone":"Asia/Bishkek","hours":{},"holidays":["2027-02-29"]}'
	expect_error 422 invalid_value /holidays/0
	as_admin PUT "/v1/organisations/$org/calendar" '{"timezone":"Asia/Bishkek","hours":{"funday":[]}}'
	expect_error 400 unknown_field
	[ "$(sql "SELECT count(*) FROM org_calendars WHERE organisation_id = '$org'")" = 0 ]
	as "$SUP_A_TOKEN" PUT "/v1/organisations/$org/calendar" '{"timezone":"Asia/Bishkek","hours":{}}'
	expect_error 403 forbidden

	before=$(sql "SELECT row_to_json(p) FROM deadline_policies p WHERE need = 'harm_reduction' AND urgency = 'normal'")
	as_admin PUT /v1/deadline-policies/harm_reduction/normal '{"clock":"sundial"}'
	expect_error 400 "" /clock
	as_admin PUT /v1/deadline-policies/harm_reduction/normal '{"remind_before":"P2D"}'
	expect_error 422 invalid_value /remind_before
	as_admin PUT /v1/deadline-policies/harm_reduction/normal '{"remind_before":"PT24H"}'
	expect_error 422 invalid_value /remind_before
	as_admin PUT /v1/deadline-policies/legal_support/normal '{"accept_within":"PT5S"}'
	expect_error 422 invalid_value /remind_before
	[ "$(sql "SELECT row_to_json(p) FROM deadline_policies p WHERE need = 'harm_reduction' AND urgency = 'normal'")" = "$before" ]
	[ "$(sql "SELECT accept_within FROM deadline_policies WHERE need = 'legal_support' AND urgency = 'normal'")" = 00:00:10 ]
}

@test "a hold stops the first-contact clock: due_at moves by the time held, the report counts running time" {
	local r w wt due0 due1 held
	r=$(new_region)
	read -r w wt <<<"$(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)"
	referral harm_reduction "$r" urgent
	as "$wt" POST "/v1/assignments/$A/accept"
	expect_status 200
	due0=$(sql "SELECT extract(epoch FROM due_at) FROM deadlines WHERE assignment_id = '$A' AND kind = 'first_contact'")
	as "$wt" POST "/v1/assignments/$A/hold" '{"reason":"client in hospital"}'
	expect_status 200
	as "$SUP_A_TOKEN" GET '/v1/deadlines?state=pending'
	expect_jq "[.items[] | select(.assignment_id == \"$A\" and .kind == \"first_contact\")][0] | .on_hold and .due_at == null"
	# Held past its original due time (6 s): not missed.
	sleep 7
	[ "$(sql "SELECT state FROM deadlines WHERE assignment_id = '$A' AND kind = 'first_contact'")" = pending ]
	as "$wt" POST "/v1/assignments/$A/resume"
	expect_status 200
	read -r due1 held <<<"$(sql "SELECT extract(epoch FROM d.due_at), extract(epoch FROM d.held_total)
	     FROM deadlines d WHERE d.assignment_id = '$A' AND d.kind = 'first_contact'" | tr '|' ' ')"
	echo "due moved by $(awk -v a="$due1" -v b="$due0" 'BEGIN{print a-b}') s, held $held s"
	awk -v a="$due1" -v b="$due0" -v h="$held" 'BEGIN { d = a - b - h; exit !(h >= 7 && d > -0.5 && d < 0.5) }'
	# Contact now: met, and the time it took leaves the hold out.
	as "$wt" POST "/v1/assignments/$A/events" '{"type":"contact_made"}'
	expect_status 201
	run sql "SELECT state, elapsed < interval '3 seconds', met_at - starts_at > interval '7 seconds'
	         FROM deadlines WHERE assignment_id = '$A' AND kind = 'first_contact'"
	[ "$output" = "met|t|t" ]
	as "$SUP_A_TOKEN" GET "/v1/reports/follow-up?group_by=region&from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
	expect_status 200
	expect_jq "[.. | objects | select(.key? == \"$r\")][0].first_contact.median_seconds < 3"
}

@test "a reminder is sent once, that long before the due time, across a restart" {
	local r w a due rem
	r=$(new_region)
	w=$(mk_worker "$ORG_B" legal_support "$r" ky 2)
	referral legal_support "$r"
	a=$A
	read -r due rem <<<"$(sql "SELECT extract(epoch FROM due_at), extract(epoch FROM remind_at)
	     FROM deadlines WHERE assignment_id = '$a' AND kind = 'accept'" | tr '|' ' ')"
	awk -v d="$due" -v r="$rem" 'BEGIN { exit !(d - r > 5.9 && d - r < 6.1) }'
	# Down across the reminder time (due in 10 s, reminder at 4 s).
	refd_daemon_stop main >/dev/null
	sleep 5
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'deadline.due_soon' AND payload->>'assignment_id' = '$a'")" = 0 ]
	refd_daemon_start main "$REFD_CONF"
	second_daemon
	wait_sql "SELECT count(*) FROM outbox WHERE type = 'deadline.due_soon' AND payload->>'assignment_id' = '$a'" 1 4
	sleep 1.5
	refd_daemon_stop main >/dev/null
	refd_daemon_start main "$REFD_CONF"
	sleep 1.5
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'deadline.due_soon' AND payload->>'assignment_id' = '$a'")" = 1 ]
	[ "$(sql "SELECT organisation_id FROM outbox WHERE type = 'deadline.due_soon' AND payload->>'assignment_id' = '$a'")" = "$ORG_B" ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'deadline.remind' AND object_id IN (
	           SELECT id::text FROM deadlines WHERE assignment_id = '$a')")" = 1 ]
	refd_daemon_stop second
}

@test "level-2 escalation happens once, escalate_after after level 1, with two daemons" {
	local r w wt d
	r=$(new_region)
	read -r w wt <<<"$(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)"
	second_daemon
	referral harm_reduction "$r" urgent
	as "$wt" POST "/v1/assignments/$A/accept"
	expect_status 200
	d=$(sql "SELECT id FROM deadlines WHERE assignment_id = '$A' AND kind = 'first_contact'")
	# Missed at 6 s (level 1), still no contact 3 s later (level 2).
	wait_sql "SELECT level FROM escalations WHERE deadline_id = '$d'" 1 9
	wait_sql "SELECT level FROM escalations WHERE deadline_id = '$d'" 2 6
	sleep 1.5
	[ "$(sql "SELECT count(*) FROM escalations WHERE deadline_id = '$d'")" = 1 ]
	[ "$(sql "SELECT extract(epoch FROM level2_at - created_at) >= 3 FROM escalations WHERE deadline_id = '$d'")" = t ]
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'deadline.escalated' AND payload->>'deadline_id' = '$d'")" = 1 ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'deadline.escalate' AND object_id = '$d'")" = 1 ]
	as "$PROG_TOKEN" GET '/v1/deadlines?state=missed'
	expect_status 200
	expect_jq "[.items[] | select(.id == \"$d\")][0].escalations | map(.level) == [1, 2]"
	expect_jq "[.items[] | select(.id == \"$d\")][0].escalations | all(.at | test(\"^[0-9]{4}-\"))"
	# Acting on it (late contact) resolves it.
	as "$wt" POST "/v1/assignments/$A/events" '{"type":"contact_made"}'
	[ "$(sql "SELECT resolved_at IS NOT NULL FROM escalations WHERE deadline_id = '$d'")" = t ]
	refd_daemon_stop second
}

# metric NAME_WITH_LABELS: its value on the ops listener (empty when absent).
metric() {
	curl -sS --cacert "$REFD_CA" "$REFD_OPS_URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}
wait_metric() { # NAME WANT SECS
	local i got
	for i in $(seq 1 $(($3 * 5))); do
		got=$(metric "$1")
		[ "$got" = "$2" ] && return 0
		sleep 0.2
	done
	echo "metric $1 is '$got', wanted '$2'" >&2
	return 1
}

@test "metrics move as the state does: unassigned by region, pending deadlines, escalations, reminders" {
	local r w before
	r=$(new_region)
	[ -z "$(metric "referrald_assignments_unassigned{region=\"$r\"}")" ]
	referral harm_reduction "$r"
	referral harm_reduction "$r"
	wait_metric "referrald_assignments_unassigned{region=\"$r\"}" 2 8
	[ -n "$(metric 'referrald_deadlines_pending{kind="accept"}')" ]
	[ -n "$(metric 'referrald_escalations_open{level="2"}')" ]
	[ -n "$(metric 'referrald_deadlines_overdue{kind="first_contact"}')" ]
	w=$(mk_worker "$ORG_A" harm_reduction "$r" ky 5)
	wait_metric "referrald_assignments_unassigned{region=\"$r\"}" "" 8
	# A reminder sent by this daemon (the only one running) counts once.
	before=$(metric referrald_deadline_reminders_total)
	r=$(new_region)
	w=$(mk_worker "$ORG_B" legal_support "$r" ky 2)
	referral legal_support "$r"
	wait_metric referrald_deadline_reminders_total $((before + 1)) 8
	# Gauges agree with the database.
	wait_metric 'referrald_escalations_open{level="2"}' \
		"$(sql "SELECT count(*) FROM escalations WHERE resolved_at IS NULL AND level = 2")" 8
}
