#!/usr/bin/env bats
# sign_in.bats - one-time sign-in codes, sign-in and sign-out over the API
# (issue 14; the browser side is ui.bats): who may issue a code for whom, a
# code works once and for 15 minutes, is stored only as a keyed hash, wrong
# codes are audited and rate limited per address, a session token lives
# [ui] session_lifetime, sign-out revokes exactly the token it is called with.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	export W_A W_B REGION
	REGION=$(new_region)
	W_A=$(mk_worker "$ORG_A" harm_reduction "$REGION" ky 3) || return 1
	W_B=$(mk_worker "$ORG_B" harm_reduction "$REGION" ky 3) || return 1
}

teardown_file() { api_teardown_file; }

# issue TOKEN SUBJECT -> sets CODE (and records it as a secret).
issue() {
	call "$1" POST /v1/sign-in-codes "{\"subject_id\":\"$2\"}"
	CODE=$(jget '.code // ""')
	[ -n "$CODE" ] && printf '%s\n' "$CODE" "${CODE/-/}" >>"$API_SECRETS"
	return 0
}

sign_in() { anon POST /v1/sign-in "{\"code\":\"$1\"}"; }

denied_auth_count() {
	sql "SELECT count(*) FROM audit_log WHERE action = 'authenticate' AND outcome = 'denied'"
}

@test "a supervisor issues a code for its worker: 8 characters, 15 minutes, only a keyed hash stored" {
	issue "$SUP_A_TOKEN" "$W_A"
	expect_status 201
	[[ $CODE =~ ^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$ ]]
	expect_json .subject_id "$W_A"
	expect_json .role worker
	local left
	left=$(( $(date -d "$(jget .expires_at)" +%s) - $(date +%s) ))
	[ "$left" -gt 880 ] && [ "$left" -le 900 ]
	# Neither form of the code is in the table, only a 64-hex keyed hash
	# (not the plain SHA-256 of the code either).
	local dump plain
	dump=$(sql "SELECT row_to_json(c)::text FROM sign_in_codes c")
	! grep -qF "$CODE" <<<"$dump"
	! grep -qF "${CODE/-/}" <<<"$dump"
	plain=$(printf '%s' "${CODE/-/}" | sha256sum | cut -c1-64)
	! grep -qF "$plain" <<<"$dump"
	[ "$(sql "SELECT count(*) FROM sign_in_codes WHERE subject_id = '$W_A' AND code_hash ~ '^[0-9a-f]{64}$'")" -ge 1 ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'sign_in_code.create' AND actor_id = '$SUP_A'")" -ge 1 ]
}

@test "sign-in with the code: a worker token for [ui] session_lifetime (7 days); the code works once" {
	issue "$SUP_A_TOKEN" "$W_A"
	sign_in "$(tr 'A-Z' 'a-z' <<<"${CODE/-/ }")"   # lower case, a space for the dash
	expect_status 200
	local tok left
	tok=$(jget .token)
	printf '%s\n' "$tok" >>"$API_SECRETS"
	expect_json .role worker
	expect_json .subject_id "$W_A"
	left=$(( $(date -d "$(jget .expires_at)" +%s) - $(date +%s) ))
	[ "$left" -gt $((7 * 86400 - 60)) ] && [ "$left" -le $((7 * 86400)) ]
	as "$tok" GET /v1/me
	expect_status 200
	expect_json .role worker
	expect_json .subject_id "$W_A"
	expect_json .organisation_id "$ORG_A"
	as "$tok" GET "/v1/assignments?status=offered"
	expect_status 200
	# Spent.
	sign_in "$CODE"
	expect_error 401 unauthorized
	expect_no_echo "${CODE/-/}"
}

@test "two sign-ins racing with one code: exactly one token" {
	issue "$SUP_A_TOKEN" "$W_A"
	local i n=0
	for i in 1 2 3 4; do
		curl -sS --http1.1 --cacert "$API_CA" -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
			--data-binary "{\"code\":\"$CODE\"}" "$API_URL/v1/sign-in" >"$API_TMP/race.$i" &
	done
	wait
	for i in 1 2 3 4; do [ "$(cat "$API_TMP/race.$i")" = 200 ] && n=$((n + 1)); done
	[ "$n" -eq 1 ]
	[ "$(sql "SELECT count(*) FROM sign_in_codes WHERE code_hash IN (SELECT code_hash FROM sign_in_codes
	          WHERE used_at IS NOT NULL ORDER BY used_at DESC LIMIT 1) AND token_id IS NOT NULL")" = 1 ]
}

@test "who may issue for whom: own organisation's workers (supervisor), anyone (admin); else 404 or 403" {
	issue "$SUP_A_TOKEN" "$W_B"            # another organisation's worker
	expect_error 404 not_found
	issue "$SUP_A_TOKEN" "$SUP_B"          # not a worker
	expect_error 404 not_found
	issue "$SUP_A_TOKEN" "$(new_uuid)"
	expect_error 404 not_found
	issue "$PROG_TOKEN" "$W_B"             # the programme supervisor: any worker
	expect_status 201
	local wtok
	wtok=$(mk_token worker "$W_A")
	issue "$wtok" "$W_A"
	expect_error 403 forbidden
	issue "$OFFICE_TOKEN" "$W_A"
	expect_error 403 forbidden
	# An admin may issue one for a supervisor, and the token is a supervisor's.
	issue "$ADMIN_TOKEN" "$SUP_B"
	expect_status 201
	expect_json .role supervisor
	sign_in "$CODE"
	expect_status 200
	printf '%s\n' "$(jget .token)" >>"$API_SECRETS"
	as "$(jget .token)" GET /v1/me
	expect_json .role supervisor
	expect_json .subject_id "$SUP_B"
	# A deactivated worker's code stops working.
	issue "$SUP_A_TOKEN" "$W_A"
	as_admin PATCH "/v1/workers/$W_A" '{"active":false}'
	expect_status 200
	sign_in "$CODE"
	expect_error 401 unauthorized
	as_admin PATCH "/v1/workers/$W_A" '{"active":true}'
}

@test "an expired code does not work" {
	issue "$SUP_A_TOKEN" "$W_A"
	sql "UPDATE sign_in_codes SET expires_at = now() - interval '1 second'
	     WHERE subject_id = '$W_A' AND used_at IS NULL" >/dev/null
	sign_in "$CODE"
	expect_error 401 unauthorized
}

@test "bad sign-in bodies: 400 in the protocol's shape, nothing spent, nothing echoed" {
	issue "$SUP_A_TOKEN" "$W_A"
	anon POST /v1/sign-in '{"code":"ABCD-EFGU"}'      # U is not in the alphabet
	expect_error 400 "" /code
	anon POST /v1/sign-in "{\"code\":\"$CODE\",\"subject_id\":\"$W_A\"}"
	expect_error 400 unknown_field
	expect_no_echo "${CODE/-/}"
	anon POST /v1/sign-in '{}'
	expect_error 400 "" /code
	anon POST "/v1/sign-in?code=${CODE/-/}" "{\"code\":\"$CODE\"}"
	expect_status 400
	anon POST /v1/sign-in-codes "{\"subject_id\":\"$W_A\"}"
	expect_error 401 unauthorized
	# The code is still good.
	sign_in "$CODE"
	expect_status 200
	printf '%s\n' "$(jget .token)" >>"$API_SECRETS"
}

@test "sign-out revokes the token it is called with, and only that one" {
	local t1 t2
	issue "$SUP_A_TOKEN" "$W_A"; sign_in "$CODE"; t1=$(jget .token)
	issue "$SUP_A_TOKEN" "$W_A"; sign_in "$CODE"; t2=$(jget .token)
	printf '%s\n' "$t1" "$t2" >>"$API_SECRETS"
	as "$t1" POST /v1/sign-out
	expect_status 204
	as "$t1" GET /v1/me
	expect_error 401 unauthorized
	as "$t2" GET /v1/me
	expect_status 200
	as "$t1" POST /v1/sign-out
	expect_error 401 unauthorized
	as "$t2" POST /v1/sign-out '{"all":true}'
	expect_error 400
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'sign_out' AND actor_id = '$W_A'")" = 1 ]
}

restart_with() { # SECTION KEY VALUE ...
	refd_daemon_stop main >/dev/null || return 1
	while [ $# -ge 3 ]; do
		refd_config_set "$REFD_CONF" "$1" "$2" "$3"
		shift 3
	done
	refd_daemon_start main "$REFD_CONF"
}

# Last: it restarts the daemon with a short window ([limits] auth_failures,
# in memory per daemon, as for bad tokens).
@test "wrong codes are audited failed authentications, limited per address with bad tokens; then 429 (a right code too)" {
	local before i good
	restart_with limits auth_failures 5/10s
	issue "$SUP_A_TOKEN" "$W_A"
	good=$CODE
	before=$(denied_auth_count)
	for i in 1 2 3; do
		anon POST /v1/sign-in '{"code":"ZZZZ-ZZZZ"}'
		expect_error 401 unauthorized
		expect_no_echo ZZZZZZZZ
	done
	# Bad tokens and bad codes count together.
	call "bad$(rand_hex 20)" GET /v1/me
	expect_error 401 unauthorized
	anon POST /v1/sign-in '{"code":"YYYY-YYYY"}'
	expect_error 401 unauthorized
	[ "$(denied_auth_count)" -eq $((before + 5)) ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'authenticate' AND outcome = 'denied'
	          AND object_type = 'address' AND object_id = '127.0.0.1'")" -ge 5 ]
	anon POST /v1/sign-in '{"code":"ZZZZ-ZZZZ"}'
	expect_error 429 rate_limited
	local ra
	ra=$(header Retry-After)
	[ "$ra" -ge 1 ] && [ "$ra" -le 11 ]
	sign_in "$good"
	expect_error 429 rate_limited
	[ "$(sql "SELECT count(*) FROM sign_in_codes WHERE subject_id = '$W_A' AND used_at IS NULL")" -ge 1 ]
	# Once the window has passed, the right code works.
	sleep "$ra"; sleep 0.3
	sign_in "$good"
	expect_status 200
	printf '%s\n' "$(jget .token)" >>"$API_SECRETS"
	restart_with limits auth_failures 20/1m
}
