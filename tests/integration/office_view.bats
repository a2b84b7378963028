#!/usr/bin/env bats
# office_view.bats - what an office sees and consent revocation (protocol
# v1.1; issue 10 sections 1 and 2) against the real daemon, PostgreSQL and
# TLS: the office's view with and without report-back consent before and
# after each transition (submission answer, replay, GET, list, and the
# events its registered webhook actually receives), every revocation path
# and its refusals, and canaries (a phone, a note, a case number, event
# details) absent from the log, error bodies, webhooks and a plain pg_dump
# at every step.

load ../lib/api
load ../lib/webhook_rx

# Every event type an office might be sent: the test shows which arrive.
ALL_EVENTS='["assignment.offered","assignment.accepted","assignment.completed","assignment.failed",
	"assignment.cancelled","assignment.unassigned","deadline.missed","referral.closed",
	"referral.withdrawn","referral.consent_revoked"]'

setup_file() {
	api_setup_file || return 1
	rx_build || return 1
	refd_daemon_stop main >/dev/null || return 1
	refd_config_set "$REFD_CONF" webhooks ca_file "$REFD_CERTS/ca.crt"
	refd_config_set "$REFD_CONF" webhooks poll_interval 100ms
	refd_config_set "$REFD_CONF" webhooks retry_base 300ms
	refd_config_set "$REFD_CONF" webhooks retry_max 1s
	refd_config_set "$REFD_CONF" webhooks timeout 3s
	refd_daemon_start main "$REFD_CONF" || return 1
	api_seed_network || return 1
	export WH_SECRET OFFICE_RX_PORT CASE_SECRETS
	WH_SECRET="whsec-$(rand_hex 16)"
	printf '%s\n' "$WH_SECRET" >>"$API_SECRETS"
	CASE_SECRETS=$API_TMP/case-numbers
	: >"$CASE_SECRETS"
	# Urgent legal offers expire in 6 s: a revocation must end such
	# deadlines before the sweeper could escalate them.
	as_admin PUT /v1/deadline-policies/legal_support/urgent \
		'{"accept_within":"PT6S","first_contact_within":"PT60S"}'
	[ "$HTTP_STATUS" = 200 ] || { _api_ctx; return 1; }
	# One endpoint for office 1, one for organisation A (the control: what
	# the organisation gets shows that delivery happened at all).
	rx_start office "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key" >/dev/null || return 1
	rx_start org "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key" >/dev/null || return 1
	as_admin POST /v1/webhooks "$(jq -nc --arg u "https://127.0.0.1:$(cat "$RX/office/port")/office" \
		--arg s "$WH_SECRET" --arg o "$OFFICE1" --argjson e "$ALL_EVENTS" \
		'{url:$u, events:$e, secret:$s, office_id:$o}')"
	[ "$HTTP_STATUS" = 201 ] || { _api_ctx; return 1; }
	as_admin POST /v1/webhooks "$(jq -nc --arg u "https://127.0.0.1:$(cat "$RX/org/port")/org" \
		--arg s "$WH_SECRET" --arg o "$ORG_A" --argjson e "$ALL_EVENTS" \
		'{url:$u, events:$e, secret:$s, organisation_id:$o}')"
	[ "$HTTP_STATUS" = 201 ] || { _api_ctx; return 1; }
	OFFICE_RX_PORT=$(refd_free_port)
}

teardown_file() {
	rx_stop_all
	api_teardown_file
}

# ---- helpers ----------------------------------------------------------------

# A case number is a canary too, checked by canary_check: never in the log,
# an error or a webhook; in the dump only where the office's own reference
# is kept (the referrals row; sealing it there is the key design's part).
new_case_ref() {
	local c
	c="CASE-$(rand_hex 8 | tr a-f A-F)"
	printf '%s\n' "$c" >>"$CASE_SECRETS"
	printf '%s' "$c"
}

# hr_referral REGION [JQ]: a harm-reduction referral of office 1 with a
# case-number canary and an event-detail canary to use later. Sets REF,
# ASG, KEY, BODY, CREF.
hr_referral() {
	CREF=$(new_case_ref)
	KEY=$(new_key)
	BODY=$(referral_json ".client.region=\"$1\" | .needs=[\"harm_reduction\"]
		| .external_ref=\"$CREF\" | ${2:-.}")
	submit "$OFFICE_TOKEN" "$BODY" "$KEY"
	expect_status 201 || return 1
	REF=$(jget .id)
	ASG=$(assignment_for harm_reduction)
}

# wait_delivered REF: every outbox event about the referral (and its
# assignments) was delivered to all its endpoints.
wait_delivered() {
	local q="FROM outbox WHERE delivered_at IS NULL
		AND (payload->>'referral_id' = '$1' OR payload->>'assignment_id' IN
		     (SELECT id::text FROM assignments WHERE referral_id = '$1'))"
	wait_sql "SELECT count(*) $q" 0 20 && return 0
	sql "SELECT type, attempts, last_error $q" >&2
	return 1
}

# The office's reads of REF (submission replay with KEY/BODY, GET, the list
# item, the status filter) all show exactly the office view of MODE ("" or
# report_back) with status STATUS; HTTP_BODY is then the GET's answer.
office_reads() {
	local mode=$1 status=$2
	submit "$OFFICE_TOKEN" "$BODY" "$KEY"
	expect_status 201 || return 1
	[ "$(header Idempotent-Replayed)" = true ] || { echo "not a replay" >&2; return 1; }
	expect_json .id "$REF" || return 1
	expect_office_view $mode || return 1
	expect_json .status "$status" || return 1
	as_office GET "/v1/referrals/$REF"
	expect_status 200 || return 1
	expect_office_view $mode || return 1
	expect_json .status "$status" || return 1
	local one=$HTTP_BODY
	as_office GET "/v1/referrals?limit=200"
	expect_status 200 || return 1
	HTTP_BODY=$(jget "[.items[] | select(.id == \"$REF\")][0]")
	expect_office_view $mode || return 1
	[ "$(jq -S . <<<"$HTTP_BODY")" = "$(jq -S . <<<"$one")" ] || {
		echo "list item differs from GET" >&2
		return 1
	}
	# The status filter works on the status the office sees.
	as_office GET "/v1/referrals?status=$status&limit=200"
	expect_jq "[.items[].id] | index(\"$REF\") != null" || return 1
	for other in open closed withdrawn; do
		[ "$other" = "$status" ] && continue
		as_office GET "/v1/referrals?status=$other&limit=200"
		expect_jq "[.items[].id] | index(\"$REF\") == null" || return 1
	done
	# Leave the GET's answer as the last body for the caller's checks.
	HTTP_BODY=$one
}

# canary_check: no recorded secret in the log, an error body, a webhook
# body, or a plain pg_dump of the main database, except the case numbers in
# the referrals rows of their own office (external_ref, which the office
# reads back).
canary_check() {
	local dump=$BATS_TEST_TMPDIR/dump.$RANDOM.sql secrets=$BATS_TEST_TMPDIR/secrets.nonempty f
	pg_dump -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d "$REFD_DB" >"$dump" || return 1
	cat "$API_SECRETS" "$CASE_SECRETS" | grep -v '^$' >"$secrets"
	[ -s "$dump" ] && [ -s "$REFD_LOG" ] || { echo "nothing to check" >&2; return 1; }
	for f in "$REFD_LOG" "$API_ERRORS" "$RX"/*/*.body; do
		[ -f "$f" ] || continue
		if grep -qiF -f "$secrets" "$f"; then
			echo "LEAK in $f" >&2
			return 1
		fi
	done
	# The dump: every line naming a secret is a row of the referrals COPY
	# block, and names only a case number.
	awk -v sf="$secrets" '
		BEGIN { while ((getline s < sf) > 0) if (s != "") secret[tolower(s)] = 1 }
		/^COPY / { table = $2; next }
		/^\\\.$/ { table = ""; next }
		{ l = tolower($0)
		  for (s in secret) if (index(l, s)) {
		      if (table != "public.referrals" || s !~ /^case-/) {
		          print "LEAK in pg_dump (" (table == "" ? "schema" : table) ")" > "/dev/stderr"; bad = 1 }
		  } }
		END { exit bad }' "$dump"
}

# db_state REF: what a refused request must not change.
db_state() {
	sql "SELECT status, consent_services, consent_report_back, coalesce(ts(consent_revoked_at), '-'),
		coalesce(ts(report_back_revoked_at), '-'), updated_at,
		(SELECT string_agg(status || ':' || coalesce(reason, ''), ',' ORDER BY id) FROM assignments WHERE referral_id = r.id),
		(SELECT count(*) FROM outbox WHERE payload->>'referral_id' = r.id::text),
		contact_sealed IS NOT NULL, note_sealed IS NOT NULL
		FROM referrals r WHERE id = '$1'"
}

revoke() { # revoke TOKEN REF SCOPE [RECORDED_AT]
	call "$1" POST "/v1/referrals/$2/consent/revoke" \
		"$(jq -nc --arg s "$3" --arg t "${4:-$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)}" \
		'{scope:$s, recorded_at:$t}')"
}

# ---- without report-back ----------------------------------------------------

@test "without report-back the office sees only that its referral is open, before and after every transition, and no engagement event" {
	local r w wt
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 5)
	hr_referral "$r"
	expect_office_view
	expect_json .status open
	expect_json .consent.report_back false
	expect_json '.assignments | length' 1
	[ "$(status_for harm_reduction)" = offered ]
	office_reads "" open
	canary_check

	as "$wt" POST "/v1/assignments/$ASG/accept"
	expect_status 200
	office_reads "" open
	as "$wt" POST "/v1/assignments/$ASG/events" \
		"$(jq -nc --arg d "$(new_detail)" '{type:"contact_made", detail:$d}')"
	expect_status 201
	office_reads "" open
	as "$wt" POST "/v1/assignments/$ASG/complete" "$(jq -nc --arg d "$(new_detail)" '{outcome:"engaged", detail:$d}')"
	expect_status 200
	[ "$(sql "SELECT status FROM referrals WHERE id = '$REF'")" = closed ]
	office_reads "" open
	canary_check

	# The organisation got its events; the office none of them.
	wait_delivered "$REF"
	rx_wait "$RX/org" "\"assignment_id\":\"$ASG\"" 3 10
	[ "$(rx_types "$RX/org" "$ASG")" = "assignment.accepted assignment.completed assignment.offered " ]
	[ -z "$(rx_bodies "$RX/office" "$REF")" ] && [ -z "$(rx_bodies "$RX/office" "$ASG")" ]
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'referral.closed' AND payload->>'referral_id' = '$REF'")" = 1 ]

	# It still looks open, so the office may withdraw it (a 409 would say
	# it closed): withdrawn, and referral.withdrawn reaches the office.
	as_office POST "/v1/referrals/$REF/withdraw" '{"reason":"probation ended"}'
	expect_status 200
	expect_office_view
	expect_json .status withdrawn
	office_reads "" withdrawn
	wait_delivered "$REF"
	rx_wait "$RX/office" "\"referral_id\":\"$REF\"" 1 10
	[ "$(rx_types "$RX/office" "$REF")" = "referral.withdrawn " ]
	canary_check
}

# ---- with report-back, then its revocation ------------------------------------

@test "with report-back the office sees progress and gets engagement events; revoking report-back hides them and stops what is queued" {
	local r w wt t
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 5)
	# Office 1's second endpoint, down until the revocation below.
	as_admin POST /v1/webhooks "$(jq -nc --arg u "https://127.0.0.1:$OFFICE_RX_PORT/late" \
		--arg s "$WH_SECRET" --arg o "$OFFICE1" --argjson e "$ALL_EVENTS" \
		'{url:$u, events:$e, secret:$s, office_id:$o}')"
	expect_status 201
	hr_referral "$r" '.consent.report_back = true'
	expect_office_view report_back
	expect_json '.assignments[0].status' offered
	expect_no_echo "$w"
	office_reads report_back open

	as "$wt" POST "/v1/assignments/$ASG/accept"
	expect_status 200
	office_reads report_back open
	expect_json '.assignments[0].status' accepted
	expect_time "$(jget '.assignments[0].accepted_at')"
	rx_wait "$RX/office" '"type":"assignment.accepted"' 1 10
	[ "$(rx_types "$RX/office" "$ASG")" = "assignment.accepted " ]
	# The endpoint that was down got it queued, still retrying.
	wait_sql "SELECT count(*) FROM outbox WHERE type = 'assignment.accepted'
		AND payload->>'assignment_id' = '$ASG' AND delivered_at IS NULL AND attempts >= 2" 1 15

	as "$wt" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
	expect_status 201
	as "$wt" POST "/v1/assignments/$ASG/complete" "$(jq -nc --arg d "$(new_detail)" '{outcome:"linked_to_services", detail:$d}')"
	expect_status 200
	office_reads report_back closed
	expect_json '.assignments[0].outcome' linked_to_services
	expect_json '.assignments[0].status' completed
	expect_time "$(jget '.assignments[0].contact_made_at')"
	expect_time "$(jget '.assignments[0].ended_at')"
	canary_check
	rx_wait "$RX/office" '"type":"referral.closed"' 1 10

	# The client revokes report-back (the office records it).
	t=$(date -u -d '-5 min' +%Y-%m-%dT%H:%M:%SZ)
	revoke "$OFFICE_TOKEN" "$REF" report_back "$t"
	expect_status 200
	expect_office_view
	expect_json .status open
	expect_json .consent.report_back false
	expect_json .consent.report_back_revoked_at "$t"
	expect_json .consent.services true
	office_reads "" open
	# The endpoint comes up: what was queued for it about this referral's
	# engagement is not delivered any more; the revocation is.
	rx_start late "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key" "$OFFICE_RX_PORT" >/dev/null
	wait_delivered "$REF"
	rx_wait "$RX/late" '"type":"referral.consent_revoked"' 1 10
	[ "$(rx_types "$RX/late" "$REF")" = "referral.consent_revoked " ]
	[ -z "$(rx_bodies "$RX/late" "$ASG")" ]
	[ "$(jq -r .data.scope "$(rx_bodies "$RX/late" "$REF" | head -n 1)")" = report_back ]
	# The organisation still got every event (it is not the office's view).
	rx_wait "$RX/org" "\"assignment_id\":\"$ASG\"" 3 10
	canary_check

	# Again: 200, nothing changes.
	local before
	before=$(db_state "$REF")
	revoke "$OFFICE_TOKEN" "$REF" report_back
	expect_status 200
	expect_json .consent.report_back_revoked_at "$t"
	[ "$(db_state "$REF")" = "$before" ]
	# The later tests count on office 1's first endpoint only.
	sql "UPDATE webhooks SET active = false WHERE url LIKE '%/late'" >/dev/null
	rx_stop late
}

# ---- services ---------------------------------------------------------------

@test "revoking services: assignments cancelled, deadlines end without escalation, offers withdrawn, personal data destroyed, closed, one event" {
	local r w wt ls lst lsa t before n
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 5)
	read -r ls lst < <(worker_with_token "$ORG_B" legal_support "$r" ky,ru 5)
	hr_referral "$r" '.needs = ["harm_reduction","legal_support"] | .urgency = "urgent"'
	lsa=$(assignment_for legal_support)
	[ "$(status_for legal_support)" = offered ]
	as "$wt" POST "/v1/assignments/$ASG/accept"
	expect_status 200
	as "$wt" POST "/v1/assignments/$ASG/events" \
		"$(jq -nc --arg d "$(new_detail)" '{type:"note", detail:$d}')"
	expect_status 201
	as "$wt" POST "/v1/assignments/$ASG/hold" "$(jq -nc --arg d "$(new_detail)" '{reason:$d}')"
	expect_status 200
	# Before: sealed personal data exists, the legal offer is pending.
	[ "$(sql "SELECT count(*) FROM referrals WHERE id = '$REF' AND contact_sealed IS NOT NULL AND note_sealed IS NOT NULL")" = 1 ]
	[ "$(sql "SELECT count(*) FROM assignment_events e JOIN assignments a ON a.id = e.assignment_id
		WHERE a.referral_id = '$REF' AND e.detail_sealed IS NOT NULL")" = 1 ]
	[ "$(sql "SELECT count(*) FROM offers WHERE assignment_id = '$lsa' AND outcome = 'pending'")" = 1 ]

	t=$(date -u -d '-2 min' +%Y-%m-%dT%H:%M:%SZ)
	revoke "$OFFICE_TOKEN" "$REF" services "$t"
	expect_status 200
	expect_office_view
	expect_json .status closed
	expect_json .consent.services false
	expect_json .consent.revoked_at "$t"
	office_reads "" closed

	# In the database, all in that one transaction.
	[ "$(sql "SELECT string_agg(status || ':' || reason, ',') FROM assignments WHERE referral_id = '$REF'")" = \
		"cancelled:consent_revoked,cancelled:consent_revoked" ]
	[ "$(sql "SELECT count(*) FROM offers o JOIN assignments a ON a.id = o.assignment_id
		WHERE a.referral_id = '$REF' AND o.outcome = 'pending'")" = 0 ]
	[ "$(sql "SELECT outcome || ':' || reason FROM offers WHERE assignment_id = '$lsa'")" = withdrawn:consent_revoked ]
	[ "$(sql "SELECT count(*) FROM deadlines d JOIN assignments a ON a.id = d.assignment_id
		WHERE a.referral_id = '$REF' AND d.state = 'pending'")" = 0 ]
	[ "$(sql "SELECT count(*) FROM referrals WHERE id = '$REF' AND contact_sealed IS NULL
		AND note_sealed IS NULL AND withdrawn_reason_sealed IS NULL AND uic_hash IS NULL
		AND forgotten_at IS NOT NULL AND status = 'closed'")" = 1 ]
	[ "$(sql "SELECT count(*) FROM assignment_history h JOIN assignments a ON a.id = h.assignment_id
		WHERE a.referral_id = '$REF' AND h.reason IS NOT NULL")" = 0 ]
	[ "$(sql "SELECT count(*) FROM assignment_events e JOIN assignments a ON a.id = e.assignment_id
		WHERE a.referral_id = '$REF' AND (e.detail_sealed IS NOT NULL OR e.outcome_sealed IS NOT NULL)")" = 0 ]
	[ "$(sql "SELECT count(*) FROM assignments WHERE referral_id = '$REF'
		AND (reason_sealed IS NOT NULL OR detail_sealed IS NOT NULL)")" = 0 ]
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'referral.consent_revoked' AND payload->>'referral_id' = '$REF' AND office_id IS NOT NULL")" = 1 ]
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'referral.closed' AND payload->>'referral_id' = '$REF'")" = 0 ]
	# The worker who held it sees it cancelled, and no client data.
	as "$wt" GET "/v1/assignments/$ASG"
	expect_status 200 404
	expect_jq 'has("client") or has("note") | not'
	canary_check

	# The legal offer's 6 s deadline passes: nothing is missed, escalated
	# or offered again.
	wait_sql "SELECT now() > max(due_at) + interval '1.5 seconds' FROM deadlines WHERE assignment_id = '$lsa' AND kind = 'accept'" t 10
	[ "$(sql "SELECT count(*) FROM deadlines d JOIN assignments a ON a.id = d.assignment_id
		WHERE a.referral_id = '$REF' AND d.state = 'missed'")" = 0 ]
	[ "$(sql "SELECT count(*) FROM outbox WHERE type = 'deadline.missed'
		AND payload->>'assignment_id' IN ('$ASG', '$lsa')")" = 0 ]
	[ "$(sql "SELECT count(*) FROM offers WHERE assignment_id = '$lsa'")" = 1 ]
	[ "$(sql "SELECT count(*) FROM escalations WHERE assignment_id IN ('$ASG', '$lsa') AND resolved_at IS NULL")" = 0 ]

	# The office's endpoint receives the revocation, nothing about engagement.
	wait_delivered "$REF"
	rx_wait "$RX/office" "\"referral_id\":\"$REF\"" 1 10
	[ "$(rx_types "$RX/office" "$REF")" = "referral.consent_revoked " ]
	[ "$(jq -r .data.scope "$(rx_bodies "$RX/office" "$REF" | head -n 1)")" = services ]
	# The organisation holding the hold learns it too.
	rx_wait "$RX/org" "\"referral_id\":\"$REF\"" 1 10
	canary_check

	# Again (services, then report-back, then withdrawal): nothing changes.
	before=$(db_state "$REF")
	revoke "$OFFICE_TOKEN" "$REF" services
	expect_status 200
	expect_json .consent.revoked_at "$t"
	[ "$(db_state "$REF")" = "$before" ]
	as_office POST "/v1/referrals/$REF/withdraw" '{"reason":"x"}'
	expect_error 409 invalid_transition
	[ "$(db_state "$REF")" = "$before" ]
	n=$(sql "SELECT count(*) FROM outbox WHERE type = 'referral.consent_revoked' AND payload->>'referral_id' = '$REF'")
	[ "$n" -ge 2 ]
}

# ---- who may revoke, and refusals ---------------------------------------------

@test "a worker with an open assignment and its organisation's supervisor may revoke; anyone else gets 404, and nothing changes" {
	local r w wt w2 w2t before
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 5)
	read -r w2 w2t < <(worker_with_token "$ORG_B" legal_support "$r" ky,ru 5)
	hr_referral "$r" '.consent.report_back = true'
	before=$(db_state "$REF")
	# Outsiders: another office, a worker of another referral, a supervisor
	# of an organisation holding nothing of it, a programme supervisor.
	for tok in "$OFFICE2_TOKEN" "$w2t" "$SUP_B_TOKEN" "$PROG_TOKEN"; do
		revoke "$tok" "$REF" services
		expect_error 404 not_found
		expect_denied_audit
	done
	revoke "$ADMIN_TOKEN" "$REF" services
	expect_error 403 forbidden
	revoke "$OFFICE_TOKEN" "$(new_uuid)" services
	expect_error 404 not_found
	revoke "$OFFICE_TOKEN" not-a-uuid services
	expect_error 404 not_found
	[ "$(db_state "$REF")" = "$before" ]

	# The worker holding the offer revokes report-back: its own view back.
	revoke "$wt" "$REF" report_back
	expect_status 200
	expect_json .id "$REF"
	expect_json .consent.report_back false
	expect_jq 'has("external_ref") | not'
	expect_json '.assignments | length' 1
	expect_json '.assignments[0].id' "$ASG"
	as_office GET "/v1/referrals/$REF"
	expect_office_view
	# The supervisor of the worker's organisation revokes services.
	revoke "$SUP_A_TOKEN" "$REF" services
	expect_status 200
	expect_json .status closed
	expect_json .consent.services false
	expect_json '.assignments[0].worker_id' "$w"
	expect_json '.assignments[0].status' cancelled
	# The worker who held it may ask again: 200, nothing changes.
	before=$(db_state "$REF")
	revoke "$wt" "$REF" services
	expect_status 200
	revoke "$SUP_A_TOKEN" "$REF" report_back
	expect_status 200
	[ "$(db_state "$REF")" = "$before" ]
	# Once nothing is open, another worker is still an outsider.
	revoke "$w2t" "$REF" services
	expect_error 404 not_found
	canary_check
}

@test "bad revocation input: unknown scope 400, recorded_at in the future 422, malformed 400; the error shape and no change" {
	local r w wt before future
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 5)
	hr_referral "$r" '.consent.report_back = true'
	before=$(db_state "$REF")
	future=$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)
	revoke "$OFFICE_TOKEN" "$REF" everything
	expect_error 400 "" /scope
	expect_no_echo everything
	revoke "$OFFICE_TOKEN" "$REF" "$CREF"
	expect_error 400 "" /scope
	expect_no_echo "$CREF"
	revoke "$OFFICE_TOKEN" "$REF" services "$future"
	expect_error 422 invalid_value /recorded_at
	revoke "$OFFICE_TOKEN" "$REF" report_back "$future"
	expect_error 422 invalid_value /recorded_at
	revoke "$OFFICE_TOKEN" "$REF" services yesterday
	expect_error 400 "" /recorded_at
	as_office POST "/v1/referrals/$REF/consent/revoke" '{"scope":"services"}'
	expect_error 400 missing_field /recorded_at
	as_office POST "/v1/referrals/$REF/consent/revoke" \
		"$(jq -nc --arg n "$CREF" '{scope:"services", recorded_at:"2026-11-01T00:00:00Z", note:$n}')"
	expect_error 400 unknown_field /note
	expect_no_echo "$CREF"
	as_office POST "/v1/referrals/$REF/consent/revoke" '{"scope":"services","scope":"services","recorded_at":"2026-11-01T00:00:00Z"}'
	expect_error 400 duplicate_key
	as_office POST "/v1/referrals/$REF/consent/revoke" '{"scope":'
	expect_error 400 malformed_json
	# The future check is the database's: someone else's referral is a 404
	# whatever the time.
	revoke "$OFFICE2_TOKEN" "$REF" services "$future"
	expect_error 404 not_found
	[ "$(db_state "$REF")" = "$before" ]
	office_reads report_back open
	canary_check
}

# ---- duplicates across offices ------------------------------------------------

@test "the second office never sees duplicate_of or the other referral's id (answer, reads, webhook); the supervisor sees both" {
	local r w wt uic first second
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 5)
	uic=$(new_uic)
	submit "$OFFICE2_TOKEN" "$(referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"]
		| .client.uic=\"$uic\" | .consent.report_back = true")"
	expect_status 201
	first=$(jget .id)
	hr_referral "$r" ".client.uic=\"$uic\" | .consent.report_back = true"
	second=$REF
	expect_office_view report_back
	expect_no_echo "$first"
	[ "$(sql "SELECT duplicate_of FROM referrals WHERE id = '$second'")" = "$first" ]
	[ "$(worker_for harm_reduction)" = "$w" ]
	office_reads report_back open
	expect_no_echo "$first"
	as_office GET "/v1/referrals?limit=200"
	expect_no_echo "$first"
	as "$wt" POST "/v1/assignments/$ASG/accept"
	expect_status 200
	rx_wait "$RX/office" "\"assignment_id\":\"$ASG\"" 1 10
	run grep -rlF "$first" "$RX/office"
	[ "$status" -ne 0 ]
	run grep -rlF "$w" "$RX/office"
	[ "$status" -ne 0 ]
	# The supervisor of the organisation sees the link and the worker.
	as "$SUP_A_TOKEN" GET "/v1/referrals/$second"
	expect_status 200
	expect_json .duplicate_of "$first"
	expect_json '.assignments[0].worker_id' "$w"
	canary_check
}
