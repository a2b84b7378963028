#!/usr/bin/env bats
# Canary (issue 3): a referral whose UIC, phone, note and event details hold
# unique canary strings goes through its whole life and through many error
# paths; afterwards none of them may appear in the daemon's log, in a plain
# pg_dump of the database, in any error body, or in /metrics.
# (Every other API test file plants its own secrets too, and its
# teardown_file runs the same leak check: tests/lib/api.bash.)

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	export RC HRW HRW_T LSW LSW_T CUIC CPHONE CNOTE CDETAIL CDETAIL2 CREF CASG CBODY
	RC=$(new_region)
	read -r HRW HRW_T < <(worker_with_token "$ORG_A" harm_reduction "$RC" ky,ru 5)
	read -r LSW LSW_T < <(worker_with_token "$ORG_B" legal_support "$RC" ky,ru 5)
	[ -n "$HRW_T" ] && [ -n "$LSW_T" ] || return 1
	CUIC=$(_secret "CANARY$(rand_hex 8 | tr a-f A-F)")
	CPHONE=+996$(rand_digits 9)
	printf '%s\n' "${CPHONE#+996}" >>"$API_SECRETS"
	CNOTE=$(_secret "canary-note-$(rand_hex 10)")
	CDETAIL=$(_secret "canary-detail-$(rand_hex 10)")
	CDETAIL2=$(_secret "canary-outcome-$(rand_hex 10)")
	CBODY=$(referral_json "
		.client.region = \"$RC\" | .client.uic = \"$CUIC\" | .client.contact.phone = \"$CPHONE\"
		| .note = \"Client asked us to use the side door. $CNOTE\" | .consent.report_back = true")
}

teardown_file() { api_teardown_file; }

# The canary strings themselves, one a line.
canaries() {
	printf '%s\n' "$CUIC" "$(printf '%s' "$CUIC" | tr A-Z a-z)" "$CPHONE" "${CPHONE#+}" \
		"$CNOTE" "$CDETAIL" "$CDETAIL2"
}

# No canary in the last response body.
no_canary_in_body() {
	local c
	while IFS= read -r c; do
		expect_no_echo "$c" || return 1
	done < <(canaries)
}

@test "the canary referral is submitted; the office's answer holds none of it" {
	submit "$OFFICE_TOKEN" "$CBODY" "canary-key-1"
	expect_status 201
	no_canary_in_body
	echo "$(jget .id) $(assignment_for harm_reduction) $(assignment_for legal_support)" >"$BATS_FILE_TMPDIR/ids"
	[ "$(worker_for harm_reduction)" = "$HRW" ]
	# A replay and the office's reads.
	submit "$OFFICE_TOKEN" "$CBODY" "canary-key-1"
	expect_status 201
	no_canary_in_body
	as_office GET "/v1/referrals/$(jget .id)"
	expect_status 200
	no_canary_in_body
	as_office GET "/v1/referrals?limit=200"
	no_canary_in_body
}

@test "the same client from another office (duplicate_of) leaks nothing" {
	submit "$OFFICE2_TOKEN" "$(printf '%s' "$CBODY" | jq -c --arg r "$(new_ref)" '.external_ref = $r')"
	expect_status 201
	# Linked silently: the second office never learns the first referral.
	expect_office_view report_back
	expect_no_echo "$(cut -d' ' -f1 "$BATS_FILE_TMPDIR/ids")"
	[ "$(sql "SELECT duplicate_of FROM referrals WHERE id = '$(jget .id)'")" = "$(cut -d' ' -f1 "$BATS_FILE_TMPDIR/ids")" ]
	no_canary_in_body
}

@test "the worker's whole path: offer, accept, read, events with details, complete" {
	local ref hr ls
	read -r ref hr ls <"$BATS_FILE_TMPDIR/ids"
	as "$HRW_T" GET "/v1/assignments/$hr"
	expect_status 200
	no_canary_in_body
	as "$HRW_T" POST "/v1/assignments/$hr/accept"
	expect_status 200
	as "$HRW_T" GET "/v1/assignments/$hr"
	expect_json .client.contact.phone "$CPHONE"
	jget .note | grep -qF "$CNOTE"
	as "$HRW_T" POST "/v1/assignments/$hr/events" "$(jq -nc --arg d "$CDETAIL" '{type:"contact_made", detail:$d}')"
	expect_status 201
	no_canary_in_body
	as "$HRW_T" POST "/v1/assignments/$hr/events" "$(jq -nc --arg d "$CDETAIL" '{type:"note", detail:$d}')"
	expect_status 201
	as "$HRW_T" POST "/v1/assignments/$hr/complete" "$(jq -nc --arg d "$CDETAIL2" '{outcome:"engaged", detail:$d}')"
	expect_status 200
	as "$LSW_T" POST "/v1/assignments/$ls/decline" '{"reason":"not my area"}'
	expect_status 200
	no_canary_in_body
	as "$SUP_A_TOKEN" GET "/v1/assignments/$hr"
	expect_status 200
	no_canary_in_body
	as_office GET "/v1/referrals/$ref"
	no_canary_in_body
}

@test "error paths carrying the canaries never echo them" {
	local ref hr ls
	read -r ref hr ls <"$BATS_FILE_TMPDIR/ids"
	# Validation errors with canary values in the offending and other fields.
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | jq -c '.client.full_name = "x"')"
	expect_error 400 unknown_field /client/full_name
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | jq -c --arg u "${CUIC}-${CUIC}-${CUIC}" '.client.uic = $u')"
	expect_error 400 "" /client/uic
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | jq -c --arg p "${CPHONE}x" '.client.contact.phone = $p')"
	expect_error 400 "" /client/contact/phone
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | jq -c --arg n "$CNOTE" '.note = ($n + " " * 2000)')"
	expect_error 400 "" /note
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | jq -c '.client.birth_year = "1985"')"
	expect_error 400
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | jq -c '.consent.services = false')"
	expect_error 422 consent_required
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | sed 's/"gender":"m"/"gender":"m","gender":"m"/')"
	expect_error 400
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | head -c 200)"
	expect_error 400
	no_canary_in_body
	# Idempotency and duplicate errors.
	submit "$OFFICE_TOKEN" "$(printf '%s' "$CBODY" | jq -c '.urgency = "urgent"')" "canary-key-1"
	expect_error 422 idempotency_key_reused
	no_canary_in_body
	submit "$OFFICE_TOKEN" "$CBODY"
	expect_error 409 duplicate_referral
	no_canary_in_body
	# Canaries in query values.
	as_office GET "/v1/referrals?since=$CUIC"
	expect_status 400
	no_canary_in_body
	as_office GET "/v1/referrals?status=${CPHONE#+}"
	expect_status 400
	no_canary_in_body
	as "$HRW_T" GET "/v1/assignments?cursor=$CNOTE"
	expect_status 400
	no_canary_in_body
	# Events refused: wrong state, wrong type, outsider.
	as "$HRW_T" POST "/v1/assignments/$hr/events" "$(jq -nc --arg d "$CDETAIL" '{type:"note", detail:$d}')"
	expect_status 404 409
	no_canary_in_body
	as "$LSW_T" POST "/v1/assignments/$hr/events" "$(jq -nc --arg d "$CDETAIL" '{type:"bogus", detail:$d}')"
	expect_status 400 404
	no_canary_in_body
	as "$LSW_T" GET "/v1/assignments/$hr"
	expect_error 404 not_found
	no_canary_in_body
	# Wrong role and no credentials with a canary body.
	as "$HRW_T" POST /v1/referrals "$CBODY" -H "Idempotency-Key: $(new_key)"
	expect_error 403
	no_canary_in_body
	anon POST /v1/referrals "$CBODY" -H "Idempotency-Key: $(new_key)"
	expect_error 401
	no_canary_in_body
	# Too large a body.
	anon POST /v1/referrals "$(printf '%s' "$CBODY" | jq -c --arg n "$CNOTE" '.note = ($n * 5000)')"
	expect_status 413 401 400
	no_canary_in_body
}

@test "withdrawal of the canary referral leaks nothing" {
	local ref hr ls
	read -r ref hr ls <"$BATS_FILE_TMPDIR/ids"
	as_office POST "/v1/referrals/$ref/withdraw" '{"reason":"client moved"}'
	expect_status 200 409
	no_canary_in_body
}

@test "metrics and the audit trail hold no canary" {
	as_admin GET /metrics
	expect_status 200
	no_canary_in_body
	as "$PROG_TOKEN" GET /v1/audit
	expect_status 200
	# Not vacuous: the trail lists the canary referral's records.
	expect_jq '.items | length > 0'
	no_canary_in_body
}

@test "none of the canaries is in the daemon's log, a plain pg_dump, or any error body" {
	local dump c where=""
	dump=$BATS_TEST_TMPDIR/dump.sql
	pg_dump -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d "$REFD_DB" >"$dump"
	# None of the checks may pass vacuously.
	[ -s "$REFD_LOG" ]
	[ -s "$API_ERRORS" ]
	grep -q "$(cut -d' ' -f1 "$BATS_FILE_TMPDIR/ids")" "$dump"
	grep -q "$(cut -d' ' -f1 "$BATS_FILE_TMPDIR/ids")" "$REFD_LOG" ||
		echo "note: the log does not name the referral id (fine)" >&2
	while IFS= read -r c; do
		grep -qiF -- "$c" "$REFD_LOG" && where="$where log"
		grep -qiF -- "$c" "$dump" && where="$where pg_dump"
		grep -qiF -- "$c" "$API_ERRORS" && where="$where error-body"
	done < <(canaries)
	if [ -n "$where" ]; then
		echo "canary found in:$where" >&2
		false
	fi
	# The dump really holds the client's row: encrypted and pseudonymised.
	[ "$(sql "SELECT count(*) FROM referrals WHERE uic_hash IS NOT NULL AND contact_sealed IS NOT NULL
		AND note_sealed IS NOT NULL AND id = '$(cut -d' ' -f1 "$BATS_FILE_TMPDIR/ids")'")" = 1 ]
}
