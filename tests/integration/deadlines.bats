#!/usr/bin/env bats
# deadlines.bats - follow-up deadlines against the real daemon and database
# (issue 4): offers expiring and being re-offered, first contacts met or
# missed, escalation exactly once with two daemons on one database, and
# deadlines surviving a restart. Policies are set to seconds through the API,
# so nothing here sleeps for hours.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	# Seconds, not hours: the admin API takes any ISO 8601 duration.
	as_admin PUT /v1/deadline-policies/harm_reduction/normal \
		'{"accept_within":"PT2S","first_contact_within":"PT3S"}'
	[ "$HTTP_STATUS" = 200 ] || { _api_ctx; return 1; }
}

teardown_file() { api_teardown_file; }

# A failing test must not leave the second daemon sweeping for the next one.
teardown() {
	if [ -s "$BATS_FILE_TMPDIR/extra-daemons" ] && refd_daemon_alive second; then
		refd_daemon_stop second >/dev/null || true
	fi
}

# hr_referral REGION: a harm-reduction-only referral in REGION from office 1;
# leaves the response in HTTP_BODY.
# first_offer ASSIGNMENT: the worker of its first offer.
first_offer() {
	sql "SELECT worker_id FROM offers WHERE assignment_id = '$1' ORDER BY offered_at, id LIMIT 1"
}

hr_referral() {
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$1\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
}

@test "an offer not accepted in time expires within a second and goes to the next worker" {
	local region w1 w2 a first lat
	region=$(new_region)
	w1=$(mk_worker "$ORG_A" harm_reduction "$region" ky 5)
	w2=$(mk_worker "$ORG_A" harm_reduction "$region" ky 5)
	hr_referral "$region"
	a=$(assignment_for harm_reduction)
	# The office's answer names no worker (protocol v1.1): the first offer's.
	first=$(first_offer "$a")
	[ "$first" = "$w1" ] || [ "$first" = "$w2" ]
	expect_office_view

	# The first offer expires (2 s) and the other worker is offered it.
	wait_sql "SELECT count(*) FROM offers WHERE assignment_id = '$a'" 2 6
	run sql "SELECT outcome FROM offers WHERE assignment_id = '$a' AND worker_id = '$first'"
	[ "$output" = expired ]
	run sql "SELECT worker_id FROM offers WHERE assignment_id = '$a' AND outcome = 'pending'"
	[ -n "$output" ] && [ "$output" != "$first" ]
	# Its accept deadline is missed, acted on within 1 s of the due time.
	run sql "SELECT state FROM deadlines WHERE assignment_id = '$a' AND worker_id = '$first' AND kind = 'accept'"
	[ "$output" = missed ]
	lat=$(sql "SELECT extract(epoch FROM missed_at - due_at) FROM deadlines
	           WHERE assignment_id = '$a' AND worker_id = '$first' AND kind = 'accept'")
	echo "sweeper latency: ${lat}s"
	awk -v l="$lat" 'BEGIN { exit !(l >= 0 && l < 1.0) }'

	# The supervisor sees the missed deadline and the escalation.
	as "$SUP_A_TOKEN" GET "/v1/deadlines?state=missed"
	expect_status 200
	expect_jq "[.items[] | select(.assignment_id == \"$a\" and .state == \"missed\")] | length >= 1"

	# Both candidates exhausted: unassigned, and escalated.
	wait_sql "SELECT status FROM assignments WHERE id = '$a'" unassigned 6
	run sql "SELECT count(*) FROM offers WHERE assignment_id = '$a' AND outcome = 'expired'"
	[ "$output" = 2 ]
	run sql "SELECT count(*) FROM escalations WHERE assignment_id = '$a' AND reason = 'unassigned'"
	[ "$output" = 1 ]
	run sql "SELECT count(*) FROM escalations WHERE assignment_id = '$a' AND reason = 'deadline_missed'"
	[ "$output" = 2 ]
	as "$SUP_A_TOKEN" GET "/v1/assignments/$a"
	expect_status 200
	expect_json .status unassigned
}

@test "first contact on time is met with the elapsed time; late is missed, escalated, and recorded" {
	local region w tok a1 a2
	region=$(new_region)
	read -r w tok < <(worker_with_token "$ORG_A" harm_reduction "$region" ky 5)
	hr_referral "$region"
	a1=$(assignment_for harm_reduction)
	hr_referral "$region"
	a2=$(assignment_for harm_reduction)
	as "$tok" POST "/v1/assignments/$a1/accept"
	expect_status 200
	as "$tok" POST "/v1/assignments/$a2/accept"
	expect_status 200
	run sql "SELECT state FROM deadlines WHERE assignment_id = '$a1' AND kind = 'accept'"
	[ "$output" = met ]

	# On time: contact made at once.
	as "$tok" POST "/v1/assignments/$a1/events" '{"type":"contact_made"}'
	expect_status 201
	run sql "SELECT state, elapsed IS NOT NULL, elapsed < interval '3 seconds'
	         FROM deadlines WHERE assignment_id = '$a1' AND kind = 'first_contact'"
	[ "$output" = "met|t|t" ]
	as "$tok" GET "/v1/assignments/$a1"
	expect_json .status in_progress

	# Late: nothing for 3 s -> missed and escalated to the organisation.
	wait_sql "SELECT state FROM deadlines WHERE assignment_id = '$a2' AND kind = 'first_contact'" missed 6
	run sql "SELECT count(*) FROM escalations e JOIN deadlines d ON d.id = e.deadline_id
	         WHERE d.assignment_id = '$a2' AND d.kind = 'first_contact' AND e.organisation_id = '$ORG_A'"
	[ "$output" = 1 ]
	as "$SUP_A_TOKEN" GET "/v1/assignments?overdue=true"
	expect_status 200
	expect_jq "[.items[] | select(.id == \"$a2\")] | length == 1"
	expect_jq "[.items[] | select(.id == \"$a1\")] | length == 0"
	# Another organisation's supervisor sees none of it.
	as "$SUP_B_TOKEN" GET "/v1/assignments?overdue=true"
	expect_jq "[.items[] | select(.id == \"$a2\")] | length == 0"

	# The contact made late still records when it happened, for the reports.
	as "$tok" POST "/v1/assignments/$a2/events" '{"type":"contact_made"}'
	expect_status 201
	run sql "SELECT state, met_at IS NOT NULL, elapsed >= interval '3 seconds'
	         FROM deadlines WHERE assignment_id = '$a2' AND kind = 'first_contact'"
	[ "$output" = "missed|t|t" ]
}

@test "two daemons on one database: 100 deadlines expiring together are each acted on once" {
	local region w1 w2 ports i n
	region=$(new_region)
	w1=$(mk_worker "$ORG_A" harm_reduction "$region" ky 200)
	w2=$(mk_worker "$ORG_A" harm_reduction "$region" ky 200)
	ports=$(refd_instance second)
	[ -n "$ports" ]
	# teardown stops it if an assertion below fails first.
	echo second >"$BATS_FILE_TMPDIR/extra-daemons"

	# 100 referrals in a burst (8 in parallel): their offers all expire
	# within about a second of each other. Bodies are made first, so the
	# burst itself is only curl.
	for i in $(seq 1 100); do
		referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]" \
			>"$BATS_TEST_TMPDIR/body.$i"
	done
	seq 1 100 | xargs -P 8 -I{} curl -sS --http1.1 --cacert "$API_CA" -o /dev/null \
		-w '%{http_code}\n' -X POST -H "Authorization: Bearer $OFFICE_TOKEN" \
		-H "Idempotency-Key: burst-$region-{}" -H 'Content-Type: application/json' \
		--data-binary "@$BATS_TEST_TMPDIR/body.{}" "$API_URL/v1/referrals" \
		>"$BATS_TEST_TMPDIR/statuses"
	sort "$BATS_TEST_TMPDIR/statuses" | uniq -c
	[ "$(grep -c '^201$' "$BATS_TEST_TMPDIR/statuses")" = 100 ]
	run sql "SELECT count(*) FROM assignments WHERE region = '$region'"
	[ "$output" = 100 ]

	# Each assignment: offered, expired, re-offered to the other worker,
	# expired again, unassigned.
	wait_sql "SELECT count(*) FROM assignments WHERE region = '$region' AND status = 'unassigned'" 100 15
	# On failure, show the assignments that did not get exactly two offers.
	sql "SELECT o.assignment_id, o.worker_id, o.outcome, o.offered_at, o.ended_at, o.reason
	     FROM offers o JOIN assignments a ON a.id = o.assignment_id
	     WHERE a.region = '$region' AND o.assignment_id IN (
	       SELECT assignment_id FROM offers GROUP BY 1 HAVING count(*) <> 2)
	     ORDER BY o.assignment_id, o.offered_at"
	run sql "SELECT count(*) FROM offers o JOIN assignments a ON a.id = o.assignment_id
	         WHERE a.region = '$region'"
	[ "$output" = 200 ]
	run sql "SELECT count(*) FROM (SELECT o.assignment_id, o.worker_id, count(*) FROM offers o
	         JOIN assignments a ON a.id = o.assignment_id WHERE a.region = '$region'
	         GROUP BY 1, 2 HAVING count(*) > 1) x"
	[ "$output" = 0 ]
	# Every accept deadline missed once: one audit record, one outbox event and
	# one escalation per deadline, not two.
	run sql "SELECT count(*) FROM deadlines d JOIN assignments a ON a.id = d.assignment_id
	         WHERE a.region = '$region' AND d.kind = 'accept' AND d.state = 'missed'"
	[ "$output" = 200 ]
	run sql "SELECT count(*), count(DISTINCT l.object_id) FROM audit_log l
	         JOIN deadlines d ON d.id::text = l.object_id JOIN assignments a ON a.id = d.assignment_id
	         WHERE a.region = '$region' AND l.action = 'deadline.missed'"
	[ "$output" = "200|200" ]
	run sql "SELECT count(*), count(DISTINCT o.payload->>'deadline_id') FROM outbox o
	         JOIN assignments a ON a.id = (o.payload->>'assignment_id')::uuid
	         WHERE a.region = '$region' AND o.type = 'deadline.missed'"
	[ "$output" = "200|200" ]
	run sql "SELECT count(*) FROM escalations e JOIN assignments a ON a.id = e.assignment_id
	         WHERE a.region = '$region'"
	[ "$output" = 300 ] # 200 missed deadlines + 100 unassigned

	# Both sweepers' own counts add up to exactly the 200 (no double work).
	n=0
	for f in "$REFD_LOG" "$REFD_TMP/second.log"; do
		i=$(grep -o 'event=sweeper_swept missed=[0-9]*' "$f" | awk -F= '{ s += $3 } END { print s + 0 }')
		n=$((n + i))
	done
	echo "missed deadlines handled by both daemons (whole file so far): $n"
	run sql "SELECT count(*) FROM deadlines WHERE state = 'missed'"
	[ "$n" = "$output" ]
	refd_daemon_stop second
}

@test "deadlines pending across a restart are acted on after it" {
	local region w1 w2 a first due
	region=$(new_region)
	w1=$(mk_worker "$ORG_A" harm_reduction "$region" ky 5)
	w2=$(mk_worker "$ORG_A" harm_reduction "$region" ky 5)
	hr_referral "$region"
	a=$(assignment_for harm_reduction)
	first=$(first_offer "$a")
	refd_daemon_stop main
	# Past the due time while no daemon runs: nothing may happen yet.
	sleep 3
	run sql "SELECT state FROM deadlines WHERE assignment_id = '$a' AND kind = 'accept'"
	[ "$output" = pending ]
	refd_daemon_start main "$REFD_CONF"
	wait_sql "SELECT count(*) FROM offers WHERE assignment_id = '$a' AND outcome = 'expired'" 1 5
	run sql "SELECT worker_id FROM offers WHERE assignment_id = '$a' AND outcome = 'pending'"
	[ -n "$output" ] && [ "$output" != "$first" ]
}
