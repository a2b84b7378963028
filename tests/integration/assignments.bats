#!/usr/bin/env bats
# Assignments (issue 3): every transition of the brief's state machine that a
# caller can drive, a sample of forbidden ones (409 invalid_transition),
# events, and who sees what: the worker sees contact and note only once it
# has accepted; the office sees status fields only, and the contact_made time
# only with report-back consent.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
}

teardown_file() { api_teardown_file; }

# fresh_offer NEED [JQ_FILTER]: a new region with one worker of org A for NEED
# (and a spare one of the same kind in org A for reassignments), a referral
# for that need there. Sets REF ASG W W_TOKEN W2 W2_TOKEN BODY PHONE NOTE.
fresh_offer() {
	local need=$1 region
	region=$(new_region)
	read -r W W_TOKEN < <(worker_with_token "$ORG_A" "$need" "$region" ky,ru 3)
	BODY=$(referral_json ".client.region=\"$region\" | .needs=[\"$need\"] | ${2:-.}")
	PHONE=$(jget .client.contact.phone "$BODY")
	NOTE=$(jget .note "$BODY")
	submit "$OFFICE_TOKEN" "$BODY"
	expect_status 201 || return 1
	REF=$(jget .id)
	ASG=$(assignment_for "$need")
	[ "$(worker_for "$need")" = "$W" ] || {
		echo "fresh_offer: not offered to the only worker" >&2
		return 1
	}
	# The spare worker is created after the offer so it did not compete.
	read -r W2 W2_TOKEN < <(worker_with_token "$ORG_A" "$need" "$region" ky,ru 3)
}

# offer_in REGION NEED: a referral for NEED in REGION (its one worker of that
# kind gets the offer). Sets REF ASG.
offer_in() {
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$1\" | .needs=[\"$2\"]")"
	expect_status 201 || return 1
	REF=$(jget .id)
	ASG=$(assignment_for "$2")
}

# has_key NAME: some key anywhere in the last body matches NAME (a regex).
no_key() { expect_jq "[paths | .[-1] | strings | select(test(\"$1\"))] | length == 0"; }

@test "offered -> accepted -> in_progress (first contact_made) -> completed, with events" {
	fresh_offer harm_reduction
	as "$W_TOKEN" GET "/v1/assignments?status=offered"
	expect_status 200
	expect_jq "[.items[].id] | index(\"$ASG\") != null"
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_status 200
	expect_json .status accepted
	expect_json .worker_id "$W"
	expect_time "$(jget .accepted_at)"
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"contact_attempt","outcome":"no_answer"}'
	expect_status 201
	expect_json .type contact_attempt
	expect_uuid "$(jget .id)"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_json .status accepted
	# An event's time lies between acceptance and now (never backdated).
	local at
	at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" \
		"$(jq -nc --arg d "$(new_detail)" --arg at "$at" '{type:"contact_made", at:$at, detail:$d}')"
	expect_status 201
	expect_json .type contact_made
	expect_json .at "$at"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_json .status in_progress
	expect_time "$(jget .first_contact_at)"
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"service_delivered"}'
	expect_status 201
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" "$(jq -nc --arg d "$(new_detail)" '{type:"note", detail:$d}')"
	expect_status 201
	as "$W_TOKEN" POST "/v1/assignments/$ASG/complete" '{"outcome":"linked_to_services","detail":"ok"}'
	expect_status 200
	expect_json .status completed
	expect_json .outcome linked_to_services
	# All of the referral's assignments ended: the referral is closed. The
	# office, without report-back consent, still sees only that it is open
	# (protocol v1.1); its supervisor sees it closed.
	[ "$(sql "SELECT status FROM referrals WHERE id = '$REF'")" = closed ]
	as_office GET "/v1/referrals/$REF"
	expect_status 200
	expect_json .status open
	expect_office_view
	as "$PROG_TOKEN" GET "/v1/referrals/$REF"
	expect_status 200
	expect_json .status closed
	# The history records who moved it.
	[ "$(sql "SELECT count(*) FROM assignment_history WHERE assignment_id = '$ASG'")" -ge 3 ]
}

@test "accepted -> on_hold -> in_progress -> on_hold -> in_progress -> failed" {
	fresh_offer legal_support
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_json .status accepted
	as "$W_TOKEN" POST "/v1/assignments/$ASG/hold" '{"reason":"client in hospital"}'
	expect_status 200
	expect_json .status on_hold
	as "$W_TOKEN" POST "/v1/assignments/$ASG/resume"
	expect_status 200
	expect_json .status in_progress
	as "$W_TOKEN" POST "/v1/assignments/$ASG/hold" '{"reason":"again"}'
	expect_json .status on_hold
	as "$W_TOKEN" POST "/v1/assignments/$ASG/resume"
	expect_json .status in_progress
	as "$W_TOKEN" POST "/v1/assignments/$ASG/fail" '{"reason":"lost_contact","detail":"phone off"}'
	expect_status 200
	expect_json .status failed
	as "$W_TOKEN" POST "/v1/assignments/$ASG/fail" '{"reason":"unknown_reason"}'
	expect_status 400 409
}

@test "each completion outcome and failure reason is accepted" {
	local o r w wt
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 10)
	for o in engaged declined_services other; do
		offer_in "$r" harm_reduction
		as "$wt" POST "/v1/assignments/$ASG/accept"
		as "$wt" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
		expect_status 201
		as "$wt" POST "/v1/assignments/$ASG/complete" "{\"outcome\":\"$o\"}"
		expect_status 200
		expect_json .outcome "$o"
	done
	for o in client_declined detained other; do
		offer_in "$r" harm_reduction
		as "$wt" POST "/v1/assignments/$ASG/accept"
		as "$wt" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
		as "$wt" POST "/v1/assignments/$ASG/fail" "{\"reason\":\"$o\"}"
		expect_status 200
		expect_json .status failed
		expect_json .reason "$o"
	done
}

@test "offered -> declined: the decliner sees declined, then loses the assignment" {
	fresh_offer harm_reduction
	as "$W_TOKEN" POST "/v1/assignments/$ASG/decline" '{"reason":"too far"}'
	expect_status 200
	expect_json .status declined
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 404 not_found
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_status 404 409
	as "$W_TOKEN" POST "/v1/assignments/$ASG/decline"
	expect_status 400 404 409
}

@test "decline needs a reason" {
	fresh_offer harm_reduction
	as "$W_TOKEN" POST "/v1/assignments/$ASG/decline" '{}'
	expect_error 400 "" /reason
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_json .status offered
}

@test "withdrawal cancels every open assignment (offered, accepted, in_progress, on_hold)" {
	local ws r w wt
	# One assignment per need, so four referrals, each withdrawn in another state.
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky,ru 10)
	for ws in offered accepted in_progress on_hold; do
		offer_in "$r" harm_reduction
		case $ws in
		accepted) as "$wt" POST "/v1/assignments/$ASG/accept" ;;
		in_progress)
			as "$wt" POST "/v1/assignments/$ASG/accept"
			as "$wt" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
			;;
		on_hold)
			as "$wt" POST "/v1/assignments/$ASG/accept"
			as "$wt" POST "/v1/assignments/$ASG/hold" '{"reason":"r"}'
			;;
		esac
		[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = "$ws" ]
		as_office POST "/v1/referrals/$REF/withdraw" '{"reason":"x"}'
		expect_status 200
		expect_json .status withdrawn
		expect_office_view
		[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = cancelled ]
		as "$wt" POST "/v1/assignments/$ASG/events" '{"type":"note"}'
		expect_status 404 409
		as "$wt" POST "/v1/assignments/$ASG/accept"
		expect_status 404 409
	done
}

@test "supervisor reassigns: old assignment reassigned, the new one offered to the chosen worker" {
	local new
	fresh_offer harm_reduction
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_json .status accepted
	as "$SUP_A_TOKEN" POST "/v1/assignments/$ASG/reassign" "{\"worker_id\":\"$W2\",\"reason\":\"test reassignment\"}"
	expect_status 200
	new=$(jget .id)
	[ "$new" != "$ASG" ]
	expect_json .status offered
	expect_json .worker_id "$W2"
	expect_json .referral_id "$REF"
	[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = reassigned ]
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 404 200
	[ "$HTTP_STATUS" = 404 ] || expect_json .status reassigned
	as "$W2_TOKEN" POST "/v1/assignments/$new/accept"
	expect_status 200
	expect_json .status accepted
	# A worker cannot reassign; a supervisor of another organisation cannot see it.
	as "$W2_TOKEN" POST "/v1/assignments/$new/reassign" "{\"worker_id\":\"$W\",\"reason\":\"test reassignment\"}"
	expect_error 403 forbidden
	as "$SUP_B_TOKEN" POST "/v1/assignments/$new/reassign" "{\"worker_id\":\"$W\",\"reason\":\"test reassignment\"}"
	expect_error 404 not_found
}

@test "reassignment from every open state: offered, accepted, in_progress, on_hold" {
	local ws r w wt w2 w2t new
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" legal_support "$r" ky,ru 10)
	for ws in offered accepted in_progress on_hold; do
		offer_in "$r" legal_support
		[ "$(worker_for legal_support)" = "$w" ]
		case $ws in
		accepted) as "$wt" POST "/v1/assignments/$ASG/accept" ;;
		in_progress)
			as "$wt" POST "/v1/assignments/$ASG/accept"
			as "$wt" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
			;;
		on_hold)
			as "$wt" POST "/v1/assignments/$ASG/accept"
			as "$wt" POST "/v1/assignments/$ASG/hold" '{"reason":"r"}'
			;;
		esac
		[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = "$ws" ]
		# The new holder, created now so that it did not compete for the offer
		# (w, whose assignments all end in reassignment, stays the least loaded).
		read -r w2 w2t < <(worker_with_token "$ORG_A" legal_support "$r" ky,ru 3)
		as "$PROG_TOKEN" POST "/v1/assignments/$ASG/reassign" "{\"worker_id\":\"$w2\",\"reason\":\"test reassignment\"}"
		expect_status 200
		new=$(jget .id)
		expect_json .worker_id "$w2"
		expect_json .status offered
		[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = reassigned ]
		as "$w2t" POST "/v1/assignments/$new/accept"
		expect_status 200
	done
}

@test "unassigned -> offered: a supervisor offers an unassigned need to a worker" {
	local region ref asg w wt
	region=$(new_region)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	ref=$(jget .id)
	asg=$(assignment_for harm_reduction)
	[ "$(status_for harm_reduction)" = unassigned ]
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$region" ky 2)
	as "$PROG_TOKEN" POST "/v1/assignments/$asg/reassign" "{\"worker_id\":\"$w\",\"reason\":\"test reassignment\"}"
	expect_status 200
	expect_json .status offered
	expect_json .worker_id "$w"
	as "$wt" GET "/v1/assignments?status=offered"
	expect_jq "[.items[] | select(.referral_id == \"$ref\")] | length == 1"
}

@test "reassign to an ineligible worker: 400 invalid_field /worker_id" {
	local other
	fresh_offer harm_reduction
	other=$(mk_worker "$ORG_A" legal_support "$(new_region)" ky 2)
	as "$SUP_A_TOKEN" POST "/v1/assignments/$ASG/reassign" "{\"worker_id\":\"$other\",\"reason\":\"test reassignment\"}"
	expect_error 400 "" /worker_id
	as "$SUP_A_TOKEN" POST "/v1/assignments/$ASG/reassign" "{\"worker_id\":\"$(new_uuid)\",\"reason\":\"test reassignment\"}"
	expect_status 400 404
}

@test "forbidden transitions answer 409 invalid_transition and change nothing" {
	fresh_offer harm_reduction
	# From offered.
	as "$W_TOKEN" POST "/v1/assignments/$ASG/complete" '{"outcome":"engaged"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/fail" '{"reason":"other"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/hold" '{"reason":"r"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/resume"
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
	expect_error 409 invalid_transition
	[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = offered ]
	# From accepted.
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_status 200
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/decline" '{"reason":"changed my mind"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/resume"
	expect_error 409 invalid_transition
	# accepted -> completed skips first contact.
	as "$W_TOKEN" POST "/v1/assignments/$ASG/complete" '{"outcome":"engaged"}'
	expect_error 409 invalid_transition
	# From on_hold.
	as "$W_TOKEN" POST "/v1/assignments/$ASG/hold" '{"reason":"r"}'
	expect_json .status on_hold
	as "$W_TOKEN" POST "/v1/assignments/$ASG/hold" '{"reason":"r"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/complete" '{"outcome":"engaged"}'
	expect_error 409 invalid_transition
	# From the end states.
	as "$W_TOKEN" POST "/v1/assignments/$ASG/resume"
	as "$W_TOKEN" POST "/v1/assignments/$ASG/complete" '{"outcome":"engaged"}'
	expect_json .status completed
	as "$W_TOKEN" POST "/v1/assignments/$ASG/complete" '{"outcome":"engaged"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/fail" '{"reason":"other"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/hold" '{"reason":"r"}'
	expect_error 409 invalid_transition
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"note"}'
	expect_status 404 409
	as "$SUP_A_TOKEN" POST "/v1/assignments/$ASG/reassign" "{\"worker_id\":\"$W2\",\"reason\":\"test reassignment\"}"
	expect_error 409 invalid_transition
	# Without report-back the office still sees the referral open (a 409
	# would tell it otherwise): it may withdraw it, which ends nothing more.
	as_office POST "/v1/referrals/$REF/withdraw" '{"reason":"x"}'
	expect_status 200
	expect_json .status withdrawn
	as_office POST "/v1/referrals/$REF/withdraw" '{"reason":"x"}'
	expect_error 409 invalid_transition
	[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = completed ]
}

@test "the database refuses an illegal transition even without the API" {
	fresh_offer harm_reduction
	run sql "UPDATE assignments SET status = 'completed' WHERE id = '$ASG'"
	[ "$status" -ne 0 ]
	[ "$(sql "SELECT status FROM assignments WHERE id = '$ASG'")" = offered ]
}

@test "event validation: unknown type, unknown field, bad time" {
	fresh_offer harm_reduction
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"visit"}'
	expect_error 400 "" /type
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"note","mood":"good"}'
	expect_error 400 unknown_field /mood
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"note","at":"last tuesday"}'
	expect_error 400 "" /at
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{}'
	expect_error 400 "" /type
}

@test "the worker sees contact and note only after accepting" {
	fresh_offer harm_reduction
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_json .status offered
	no_key '^(contact|note|contact_sealed|note_sealed|phone|uic)$'
	expect_no_echo "$PHONE"
	expect_no_echo "$NOTE"
	as "$W_TOKEN" GET "/v1/assignments?status=offered"
	expect_no_echo "$PHONE"
	expect_no_echo "$NOTE"
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_status 200
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_json .client.contact.phone "$PHONE"
	expect_json .note "$NOTE"
	no_key '^(contact_sealed|note_sealed|uic|uic_hash)$'
	# Every read of client data is audited.
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id = '$HTTP_REQID'")" -ge 1 ]
	# The supervisor manages the assignment but never reads the client's contact.
	as "$SUP_A_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_no_echo "$PHONE"
	expect_no_echo "$NOTE"
	# Nor does the worker once the assignment has ended.
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
	as "$W_TOKEN" POST "/v1/assignments/$ASG/complete" '{"outcome":"engaged"}'
	expect_status 200
	expect_no_echo "$PHONE"
}

@test "the office sees engagement (status, contact_made time) only with report_back" {
	local ref_no ref_yes
	fresh_offer harm_reduction '.consent.report_back = false'
	ref_no=$REF
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"contact_made","outcome":"met"}'
	expect_status 201
	as_office GET "/v1/referrals/$ref_no"
	expect_status 200
	expect_office_view
	expect_jq '.assignments[0] | has("status") | not'
	no_key 'contact|note|client|uic|phone|outcome|detail|match_reason|worker'
	expect_no_echo "$PHONE"
	expect_no_echo "$NOTE"

	fresh_offer harm_reduction '.consent.report_back = true'
	ref_yes=$REF
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	as_office GET "/v1/referrals/$ref_yes"
	expect_jq '.assignments[0].contact_made_at == null'
	local at
	at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" "$(jq -nc --arg at "$at" '{type:"contact_made", at:$at}')"
	expect_status 201
	as_office GET "/v1/referrals/$ref_yes"
	expect_status 200
	expect_office_view report_back
	expect_json '.assignments[0].status' in_progress
	expect_json '.assignments[0].contact_made_at' "$at"
	no_key '^(contact|note|client|uic|phone|detail|contact_sealed|note_sealed)$'
	expect_no_echo "$PHONE"
	expect_no_echo "$NOTE"
	# The list view follows the same rule.
	as_office GET '/v1/referrals?limit=200'
	expect_jq "[.items[] | select(.id == \"$ref_no\") | .. | objects | keys[]] | map(select(test(\"contact\"))) | length == 0"
}

@test "assignment lists: worker inbox and supervisor view, with status filter and paging" {
	local i region w wt asg cursor got
	region=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$region" ky 3)
	for i in 1 2 3; do
		submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
		expect_status 201
		[ "$(worker_for harm_reduction)" = "$w" ]
	done
	asg=$(assignment_for harm_reduction)
	as "$wt" GET '/v1/assignments?status=offered'
	expect_status 200
	expect_json '.items | length' 3
	expect_jq "all(.items[]; .worker_id == \"$w\" and .status == \"offered\")"
	expect_jq '[.items[].created_at] as $t | $t == ($t | sort | reverse)'
	as "$wt" GET '/v1/assignments?status=accepted'
	expect_json '.items | length' 0
	as "$wt" GET '/v1/assignments?limit=2'
	expect_json '.items | length' 2
	cursor=$(jget .next)
	[ -n "$cursor" ] && [ "$cursor" != null ]
	got=$(jget '[.items[].id] | join(" ")')
	as "$wt" GET "/v1/assignments?limit=2&cursor=$(jq -rn --arg c "$cursor" '$c|@uri')"
	expect_status 200
	expect_json '.items | length' 1
	case " $got " in *" $(jget '.items[0].id') "*) false ;; esac
	expect_jq '.next == null'
	as "$SUP_A_TOKEN" GET '/v1/assignments?status=offered&limit=200'
	expect_status 200
	expect_jq "[.items[].id] | index(\"$asg\") != null"
	as "$SUP_B_TOKEN" GET '/v1/assignments?status=offered&limit=200'
	expect_status 200
	expect_jq "[.items[].id] | index(\"$asg\") == null"
	as "$wt" GET '/v1/assignments?status=nonsense'
	expect_status 400
}

@test "an offer expires when not accepted in time, and is offered to the next worker (sweeper)" {
	local before i
	as_admin PUT /v1/deadline-policies/harm_reduction/urgent '{"accept_within":"PT2S","first_contact_within":"PT24H"}'
	expect_status 200
	fresh_offer harm_reduction '.urgency = "urgent"'
	before=$W
	# Due 2 s after the offer; the sweeper should act within about 1 s of that.
	# Poll (up to 10 s, a loaded machine) rather than sleep a fixed time.
	for i in $(seq 1 50); do
		[ "$(sql "SELECT count(*) FROM offers WHERE assignment_id = '$ASG' AND worker_id = '$before'
			AND outcome = 'expired'")" = 1 ] && break
		sleep 0.2
	done
	[ "$(sql "SELECT count(*) FROM offers WHERE assignment_id = '$ASG' AND worker_id = '$before' AND outcome = 'expired'")" = 1 ]
	# The next candidate (the spare worker) has the offer now.
	[ "$(sql "SELECT status || ' ' || worker_id FROM assignments WHERE id = '$ASG'")" = "offered $W2" ]
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_status 404 409
	as_admin PUT /v1/deadline-policies/harm_reduction/urgent '{"accept_within":"PT4H","first_contact_within":"PT24H"}'
	expect_status 200
}
