#!/usr/bin/env bats
# access.bats - exceptional access to client data (protocol v1.1, issue 10
# §4 and §5) against the real daemon, PostgreSQL and TLS:
# - break-the-glass: a supervisor of another organisation or of the
#   programme reads an assignment as its worker does, then through GET for
#   [privacy] break_glass_window only; every use audited, access.break_glass
#   received by a programme webhook with ids only; the own organisation's
#   supervisor gets 409 not_needed; workers, offices and admins 403; unknown
#   ids 404; GET /v1/break-glass for programme supervisors;
# - subject access: everything held about one client (referrals,
#   assignments, events, offers, deadlines, the audit records naming them,
#   contact and note), for programme supervisors only, UIC in the body
#   only; audited, access.subject_access received with ids only.
# Every refusal changes nothing (the rows counted before and after) and is
# audited where the protocol says. api_teardown_file proves that no UIC,
# phone, note, reason or token reached the log, an error body or a dump.

load ../lib/api
load ../lib/webhook_rx

# received TYPE ID SECS: the body the programme receiver got of event TYPE
# naming ID (waits for it); prints its file name.
received() {
	local i f
	for i in $(seq 1 $(($3 * 10))); do
		for f in $(rx_bodies "$RX/prog" "$2"); do
			grep -qF "\"type\":\"$1\"" "$f" && { echo "$f"; return 0; }
		done
		sleep 0.1
	done
	echo "no $1 naming $2 within $3 s" >&2
	return 1
}

# A reason is free text about a client: a canary for the leak check.
new_reason() { printf 'Client at risk, %s' "$(_secret "reason$(rand_hex 8)")"; }

# The rows a refusal must leave alone.
access_rows() {
	sql "SELECT (SELECT count(*) FROM break_glass) || '/' ||
		(SELECT count(*) FROM subject_access_requests) || '/' ||
		(SELECT count(*) FROM outbox WHERE type LIKE 'access.%')"
}

# accepted_case [JQ_FILTER]: a referral in a new region whose harm-reduction
# assignment an org A worker accepted. Sets REF ASG W W_TOKEN BODY UIC PHONE NOTE.
accepted_case() {
	local region
	region=$(new_region)
	read -r W W_TOKEN < <(worker_with_token "$ORG_A" harm_reduction "$region" ky,ru 3)
	BODY=$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"] | ${1:-.}")
	UIC=$(jget .client.uic "$BODY")
	PHONE=$(jget .client.contact.phone "$BODY")
	NOTE=$(jget .note "$BODY")
	submit "$OFFICE_TOKEN" "$BODY"
	expect_status 201 || return 1
	REF=$(jget .id)
	ASG=$(assignment_for harm_reduction)
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_status 200 || return 1
}

setup_file() {
	api_setup_file || return 1
	export WH_SECRET WINDOW
	rx_build || return 1
	# A short window, so that its end is seen within the test.
	WINDOW=4
	refd_daemon_stop main >/dev/null || return 1
	refd_config_set "$REFD_CONF" privacy break_glass_window "${WINDOW}s"
	refd_config_set "$REFD_CONF" webhooks ca_file "$REFD_CERTS/ca.crt"
	refd_config_set "$REFD_CONF" webhooks poll_interval 100ms
	refd_daemon_start main "$REFD_CONF" || return 1
	api_seed_network || return 1
	WH_SECRET="whsec-$(rand_hex 16)"
	printf '%s\n' "$WH_SECRET" >>"$API_SECRETS"
	rx_start prog "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key" >/dev/null || return 1
	as_admin POST /v1/webhooks "$(jq -nc --arg u "https://127.0.0.1:$(cat "$RX/prog/port")/prog" \
		--arg s "$WH_SECRET" '{url:$u, events:["access.break_glass","access.subject_access"],
		secret:$s, programme:true}')"
	[ "$HTTP_STATUS" = 201 ] || { _api_ctx; return 1; }
}

teardown_file() {
	rx_stop_all
	api_teardown_file
}

# ---- break-the-glass --------------------------------------------------------

@test "break-glass: another organisation's supervisor reads the assignment as its worker, for the window only" {
	local reason f t0 exp
	accepted_case
	# Before: out of its scope, as if it did not exist.
	as "$SUP_B_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 404 not_found
	reason=$(new_reason)
	t0=$(date +%s)
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_status 200
	expect_json .id "$ASG"
	expect_json .worker_id "$W"
	expect_json .status accepted
	expect_json .client.contact.phone "$PHONE"
	expect_json .note "$NOTE"
	expect_json '.match_reason // "absent"' absent
	exp=$(date -d "$(header Break-Glass-Expires)" +%s)
	[ $((exp - t0)) -ge $((WINDOW - 1)) ] && [ $((exp - t0)) -le $((WINDOW + 2)) ]
	# The use is on record, with ids only; the reason only sealed.
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id = '$HTTP_REQID' AND action = 'break_glass'
		AND object_id = '$ASG' AND outcome = 'ok' AND actor_id = '$SUP_B'")" = 1 ]
	[ "$(sql "SELECT count(*) FROM break_glass WHERE assignment_id = '$ASG' AND supervisor_id = '$SUP_B'
		AND expires_at - created_at = interval '$WINDOW seconds'")" = 1 ]
	# The same read through GET while the window is open, audited each time.
	as "$SUP_B_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_json .client.contact.phone "$PHONE"
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id = '$HTTP_REQID' AND action = 'break_glass'
		AND object_id = '$ASG' AND outcome = 'ok'")" = 1 ]
	# Another supervisor of the same organisation gets nothing from it.
	local sb2 sb2_token
	sb2=$(mk_supervisor "$ORG_B")
	sb2_token=$(mk_token supervisor "$sb2")
	as "$sb2_token" GET "/v1/assignments/$ASG"
	expect_error 404 not_found
	# The programme's webhook got access.break_glass: ids and a detail_url.
	f=$(received access.break_glass "$ASG" 10)
	run jq -r '.data | keys | join(",")' "$f"
	[ "$output" = "assignment_id,break_glass_id,detail_url,referral_id,supervisor_id" ]
	[ "$(jq -r .data.referral_id "$f")" = "$REF" ]
	[ "$(jq -r .data.supervisor_id "$f")" = "$SUP_B" ]
	# After the window: 404 again.
	sleep $((exp - $(date +%s) + 1))
	as "$SUP_B_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 404 not_found
	expect_denied_audit
}

@test "break-glass: a programme supervisor sees the client only after breaking the glass" {
	accepted_case
	as "$PROG_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_json '.client // "absent"' absent
	expect_json '.note // "absent"' absent
	as "$PROG_TOKEN" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$(new_reason)" '{reason:$r}')"
	expect_status 200
	expect_json .client.contact.phone "$PHONE"
	expect_json .note "$NOTE"
	as "$PROG_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_json .client.contact.phone "$PHONE"
	received access.break_glass "$ASG" 10 >/dev/null
}

@test "break-glass: an assignment not yet accepted shows no client, as to its worker" {
	local region
	region=$(new_region)
	mk_worker "$ORG_A" harm_reduction "$region" ky 3 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	ASG=$(assignment_for harm_reduction)
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$(new_reason)" '{reason:$r}')"
	expect_status 200
	expect_json .status offered
	expect_json '.client // "absent"' absent
	expect_json '.note // "absent"' absent
}

@test "break-glass refusals: own organisation 409, worker/office/admin 403, unknown 404, bad bodies 400; nothing changes" {
	local before reason
	accepted_case
	reason=$(new_reason)
	before=$(access_rows)
	as "$SUP_A_TOKEN" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_error 409 not_needed
	expect_no_echo "$reason"
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id = '$HTTP_REQID' AND action = 'break_glass'
		AND outcome = 'denied'")" = 1 ]
	for tok in "$W_TOKEN" "$OFFICE_TOKEN" "$ADMIN_TOKEN"; do
		as "$tok" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$reason" '{reason:$r}')"
		expect_error 403 forbidden
		expect_denied_audit
	done
	as "$SUP_B_TOKEN" POST "/v1/assignments/$(new_uuid)/break-glass" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_error 404 not_found
	expect_denied_audit
	as "$SUP_B_TOKEN" POST "/v1/assignments/not-a-uuid/break-glass" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_error 404 not_found
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" '{}'
	expect_error 400 "" /reason
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" '{"reason":""}'
	expect_error 400 "" /reason
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" \
		"$(jq -nc --arg r "$(printf 'x%.0s' $(seq 1 501))" '{reason:$r}')"
	expect_error 400 "" /reason
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" \
		"$(jq -nc --arg r "$reason" '{reason:$r, uic:"X"}')"
	expect_error 400 unknown_field
	expect_no_echo "$reason"
	[ "$(access_rows)" = "$before" ]
	# None of them opened a window.
	as "$SUP_B_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 404 not_found
}

@test "GET /v1/break-glass lists the uses, reasons opened, for programme supervisors only" {
	local reason since
	accepted_case
	since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	reason=$(new_reason)
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_status 200
	as "$PROG_TOKEN" GET "/v1/break-glass?since=$since"
	expect_status 200
	expect_jq "[.items[] | select(.assignment_id == \"$ASG\")] | length == 1"
	expect_jq ".items[] | select(.assignment_id == \"$ASG\") | .supervisor_id == \"$SUP_B\"
		and .referral_id == \"$REF\" and .organisation_id == \"$ORG_B\" and .reason == \"$reason\""
	expect_jq '[.items[] | .created_at >= "'"$since"'"] | all'
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id = '$HTTP_REQID' AND action = 'break_glass.list'")" = 1 ]
	# Paging: one at a time, no repeats.
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$(new_reason)" '{reason:$r}')"
	as "$PROG_TOKEN" GET "/v1/break-glass?since=$since&limit=1"
	expect_jq '.items | length == 1'
	local first next
	first=$(jget '.items[0].id')
	next=$(jget .next)
	as "$PROG_TOKEN" GET "/v1/break-glass?since=$since&limit=1&cursor=$next"
	expect_status 200
	expect_jq ".items | length == 1 and .[0].id != \"$first\""
	# Organisation supervisors, workers: 403 (audited); bad input: 400.
	as "$SUP_B_TOKEN" GET "/v1/break-glass"
	expect_error 403 forbidden
	expect_denied_audit
	as "$W_TOKEN" GET "/v1/break-glass"
	expect_error 403 forbidden
	expect_denied_audit
	as "$PROG_TOKEN" GET "/v1/break-glass?since=yesterday"
	expect_error 400 "" /since
	as "$PROG_TOKEN" GET "/v1/break-glass?uic=AB0312M85"
	expect_error 400
}

@test "break-glass: forgetting the referral destroys the reason, the record of the use stays" {
	local reason
	accepted_case
	reason=$(new_reason)
	as "$SUP_B_TOKEN" POST "/v1/assignments/$ASG/break-glass" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_status 200
	[ "$(sql "SELECT count(*) FROM break_glass WHERE referral_id = '$REF' AND reason_sealed IS NOT NULL")" = 1 ]
	# Retention and consent revocation forget a referral through this.
	[ "$(sql "SELECT referral_forget('$REF')")" = t ]
	[ "$(sql "SELECT count(*) FROM break_glass WHERE referral_id = '$REF' AND reason_sealed IS NULL")" = 1 ]
	as "$PROG_TOKEN" GET "/v1/break-glass?limit=200"
	expect_status 200
	expect_jq ".items[] | select(.referral_id == \"$REF\") | has(\"reason\") | not"
	expect_jq "[.items[] | select(.referral_id == \"$REF\")] | length == 1"
	# The client's UIC no longer leads to it either (its keyed hash went).
	as "$PROG_TOKEN" POST /v1/subject-access "$(jq -nc --arg u "$UIC" --arg r "$(new_reason)" '{uic:$u, reason:$r}')"
	expect_status 200
	expect_jq '.referrals == []'
}

# ---- subject access ---------------------------------------------------------

@test "subject access: everything held about one client, contact and note opened, audited, ids-only event" {
	local body2 ref2 reason f sa n
	accepted_case
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" "$(jq -nc --arg d "$(new_detail)" '{type:"contact_made", detail:$d}')"
	expect_status 201
	local ev
	ev=$(jget .id)
	# A second referral of the same client, from the other office, withdrawn.
	body2=$(referral_json ".client.uic=\"$UIC\" | .client.region=\"osh\"")
	submit "$OFFICE2_TOKEN" "$body2"
	expect_status 201
	ref2=$(jget .id)
	as "$OFFICE2_TOKEN" POST "/v1/referrals/$ref2/withdraw" "$(jq -nc --arg r "$(new_reason)" '{reason:$r}')"
	expect_status 200

	reason=$(new_reason)
	as "$PROG_TOKEN" POST /v1/subject-access "$(jq -nc --arg u "${UIC,,}" --arg r "$reason" '{uic:$u, reason:$r}')"
	expect_status 200
	expect_jq '.referrals | length == 2'
	expect_jq "[.referrals[].id] == [\"$REF\", \"$ref2\"]"
	expect_jq ".referrals[0].client.contact.phone == \"$PHONE\" and .referrals[0].note == \"$NOTE\""
	expect_jq ".referrals[1].client.contact.phone == \"$(jget .client.contact.phone "$body2")\""
	expect_jq '.referrals[1].status == "withdrawn" and (.referrals[1].withdrawn_reason | type == "string")'
	expect_jq ".referrals[0].assignments[0].id == \"$ASG\""
	expect_jq ".referrals[0].assignments[0].events | map(.id) | index(\"$ev\") != null"
	expect_jq '.referrals[0].assignments[0].events[0].detail | startswith("Called back")'
	expect_jq ".referrals[0].assignments[0].offers | map(.worker_id) | index(\"$W\") != null"
	expect_jq '.referrals[0].assignments[0].deadlines | map(.kind) | index("first_contact") != null'
	expect_jq '.referrals[0].assignments[0].history | length >= 2'
	# The audit records naming its rows: the submission, the accept, the event.
	expect_jq ".referrals[0].audit | map(.object_id) | index(\"$REF\") != null and index(\"$ASG\") != null"
	expect_jq '.referrals[0].audit | map(.action) | index("assignment.accept") != null'
	# Nothing sealed or hashed goes out.
	expect_jq '[paths | .[-1] | strings | select(test("_sealed$|_hash$"))] | length == 0'
	expect_no_echo "$UIC"
	# Audited: one record for the request and one per referral, ids only.
	sa=$(sql "SELECT object_id FROM audit_log WHERE request_id = '$HTTP_REQID' AND action = 'subject_access'
		AND object_type = 'subject_access'")
	expect_uuid "$sa"
	[ "$(sql "SELECT string_agg(object_id, ',' ORDER BY object_id) FROM audit_log WHERE request_id = '$HTTP_REQID'
		AND action = 'subject_access' AND object_type = 'referral'")" = \
		"$(printf '%s\n' "$REF" "$ref2" | sort | paste -sd,)" ]
	[ "$(sql "SELECT referral_ids = ARRAY['$REF', '$ref2']::uuid[] FROM subject_access_requests WHERE id = '$sa'")" = t ]
	# The programme's webhook: access.subject_access with ids only.
	f=$(received access.subject_access "$sa" 10)
	run jq -r '.data | keys | join(",")' "$f"
	[ "$output" = "referral_ids,subject_access_id,supervisor_id" ]
	[ "$(jq -c .data.referral_ids "$f")" = "[\"$REF\",\"$ref2\"]" ]
	n=$(grep -ciF -e "$UIC" -e "$PHONE" -e "$NOTE" -e "$reason" "$f" || true)
	[ "$n" = 0 ]
}

@test "subject access: nothing held answers {\"referrals\": []}, still audited" {
	as "$PROG_TOKEN" POST /v1/subject-access "$(jq -nc --arg u "$(new_uic)" --arg r "$(new_reason)" '{uic:$u, reason:$r}')"
	expect_status 200
	[ "$(printf '%s' "$HTTP_BODY" | jq -c .)" = '{"referrals":[]}' ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id = '$HTTP_REQID' AND action = 'subject_access'")" = 1 ]
}

@test "subject access refusals: organisation supervisors, workers, offices, admins 403; UIC in the URL or bad bodies 400; nothing changes" {
	local before uic reason
	accepted_case
	uic=$UIC
	reason=$(new_reason)
	before=$(access_rows)
	for tok in "$SUP_A_TOKEN" "$W_TOKEN" "$OFFICE_TOKEN" "$ADMIN_TOKEN"; do
		as "$tok" POST /v1/subject-access "$(jq -nc --arg u "$uic" --arg r "$reason" '{uic:$u, reason:$r}')"
		expect_error 403 forbidden
		expect_no_echo "$uic"
		expect_denied_audit
	done
	as "$PROG_TOKEN" POST "/v1/subject-access?uic=$uic" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_error 400
	expect_no_echo "$uic"
	as "$PROG_TOKEN" POST /v1/subject-access "$(jq -nc --arg u "$uic" '{uic:$u}')"
	expect_error 400 "" /reason
	as "$PROG_TOKEN" POST /v1/subject-access "$(jq -nc --arg u "$uic" '{uic:$u, reason:""}')"
	expect_error 400 "" /reason
	as "$PROG_TOKEN" POST /v1/subject-access \
		"$(jq -nc --arg u "$uic" --arg r "$(printf 'x%.0s' $(seq 1 501))" '{uic:$u, reason:$r}')"
	expect_error 400 "" /reason
	as "$PROG_TOKEN" POST /v1/subject-access "$(jq -nc --arg u "$uic!" --arg r "$reason" '{uic:$u, reason:$r}')"
	expect_error 400 "" /uic
	expect_no_echo "$uic"
	as "$PROG_TOKEN" POST /v1/subject-access "$(jq -nc --arg u "$uic" --arg r "$reason" '{uic:$u, reason:$r, name:"x"}')"
	expect_error 400 unknown_field
	expect_no_echo "$uic"
	as "$PROG_TOKEN" GET /v1/subject-access
	expect_error 405
	[ "$(access_rows)" = "$before" ]
	# The UIC is nowhere in the audit trail nor in the daemon's log.
	[ "$(sql "SELECT count(*) FROM audit_log WHERE position(upper('$uic') IN upper(concat_ws('|', actor_id,
		action, object_type, object_id, request_id))) > 0")" = 0 ]
	run grep -ciF "$uic" "$REFD_LOG"
	[ "$output" = 0 ]
}
