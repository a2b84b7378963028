#!/usr/bin/env bats
# trust_tokens.bats - issue 9's attacks on the trust boundaries, each performed
# against the private cluster (as its superuser or as the runtime role) and
# shown to fail: forged and altered token rows, sealed values moved between
# rows, a webhook secret copied into a note, webhooks aimed inside the
# network (literals, odd numeric forms, a name that resolves to 127.0.0.1 at
# delivery), a backdated contact, a decline reason reaching the next worker;
# and the credential endpoints of protocol v1.1 (token list, bulk revocation,
# disabling offices and supervisors, unbinding a certificate, the lifetime
# bound).
#
# The daemon here runs with [webhooks] allow_private_targets = off (the
# harness default is on, for the other files' local receivers).

load ../lib/api

# as_app SQL: one statement as the daemon's runtime role (what a hostile
# process holding the daemon's database login could do).
as_app() {
	psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$REFD_PGPORT" -U "$REFD_APP_USER" \
		-d "$REFD_DB" -c "$1"
}

setup_file() {
	REFD_NO_DAEMON=1 api_setup_file || return 1
	export RX RX_BIN
	refd_config_set "$REFD_CONF" webhooks allow_private_targets off
	refd_config_set "$REFD_CONF" webhooks ca_file "$REFD_CERTS/ca.crt"
	refd_config_set "$REFD_CONF" webhooks poll_interval 100ms
	refd_config_set "$REFD_CONF" webhooks retry_base 400ms
	refd_daemon_start main "$REFD_CONF" || return 1
	api_seed_network || return 1
	RX=$REFD_TMP/rx
	RX_BIN=$RX/webhook_receiver
	mkdir -p "$RX/ok"
	# shellcheck disable=SC2046
	cc -std=c11 -D_GNU_SOURCE -O1 -o "$RX_BIN" "$REFD_ROOT/tests/integration/webhook_receiver.c" \
		$(pkg-config --cflags --libs libevent_core libevent_extra libevent_openssl openssl) || return 1
	(
		"$RX_BIN" "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key" "$RX/ok" </dev/null \
			>>"$RX/ok.log" 2>&1 &
		echo $! >"$RX/ok.pid"
		wait $!
	) </dev/null >/dev/null 2>&1 3>&- &
	for _ in $(seq 1 50); do [ -s "$RX/ok/port" ] && break; sleep 0.1; done
	[ -s "$RX/ok/port" ]
}

teardown_file() {
	[ -e "$RX/ok.pid" ] && kill "$(cat "$RX/ok.pid")" 2>/dev/null
	api_teardown_file
}

# A worker of ORG_A in a region of its own, with a token: sets W_ID W_TOKEN REGION.
fresh_worker() {
	REGION=$(new_region)
	read -r W_ID W_TOKEN < <(worker_with_token "$ORG_A" harm_reduction "$REGION" ky,ru 5)
	[ -n "$W_TOKEN" ]
}

# A referral in $REGION accepted by W: sets REF ASG PHONE.
accepted_referral() {
	local phone
	new_phone_v phone
	PHONE=$phone
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$REGION\" | .needs=[\"harm_reduction\"] | .client.contact.phone=\"$phone\"")"
	expect_status 201
	REF=$(jget .id)
	ASG=$(assignment_for harm_reduction)
	as "$W_TOKEN" POST "/v1/assignments/$ASG/accept"
	expect_status 200
}

now_plus() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }

# ---- finding 1: tokens from the database -------------------------------------

@test "a token row written by the database alone never authenticates" {
	local tok sha mac
	fresh_worker
	accepted_referral
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_json .client.contact.phone "$PHONE"

	# The attacker picks a token and writes its plain SHA-256 (the old
	# scheme), and an HMAC under a key of its own, for the same worker.
	tok="rfd_forged$(rand_hex 16)"
	printf '%s\n' "$tok" >>"$API_SECRETS"
	sha=$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)
	mac=$(printf '%s' "$tok" | openssl dgst -sha256 -hmac "attacker-key" -r | cut -d' ' -f1)
	sql "INSERT INTO tokens (role, subject_id, token_hash, expires_at)
	     VALUES ('worker', '$W_ID', '$sha', now() + interval '1 day'),
	            ('worker', '$W_ID', '$mac', now() + interval '1 day')"
	as "$tok" GET "/v1/assignments/$ASG"
	expect_error 401 unauthorized
	expect_no_echo "$PHONE"

	# The runtime role cannot write tokens at all, nor mint an admin.
	run as_app "INSERT INTO tokens (role, subject_id, token_hash, expires_at)
	            VALUES ('worker', '$W_ID', '$sha', now() + interval '1 day')"
	[ "$status" -ne 0 ]
	[[ $output == *"permission denied"* ]]
	run as_app "UPDATE tokens SET expires_at = now() + interval '10 years'"
	[ "$status" -ne 0 ]
	run as_app "SELECT mint_admin_token('evil', '$sha', '$sha', 2000000000)"
	[ "$status" -ne 0 ]
	[[ $output == *"permission denied"* ]]
}

@test "a real token whose row was moved to another worker, or extended, stops working" {
	local other other_tok tid
	fresh_worker
	accepted_referral
	read -r other other_tok < <(worker_with_token "$ORG_A" harm_reduction "$(new_region)" ky 5)
	tid=$(sql "SELECT id FROM tokens WHERE subject_id = '$other'")
	as "$other_tok" GET "/v1/assignments?status=accepted"
	expect_status 200

	# Superuser rewrites the other worker's token to name W: the binding no
	# longer matches, so it reads nothing as W.
	sql "UPDATE tokens SET subject_id = '$W_ID' WHERE id = '$tid'"
	as "$other_tok" GET "/v1/assignments/$ASG"
	expect_error 401 unauthorized
	expect_no_echo "$PHONE"
	grep -q 'token_row_tampered' "$REFD_LOG"
	sql "UPDATE tokens SET subject_id = '$other' WHERE id = '$tid'"
	as "$other_tok" GET "/v1/assignments?status=accepted"
	expect_status 200
	# Its expiry pushed out, or its role changed: refused as well.
	sql "UPDATE tokens SET expires_at = expires_at + interval '1 year' WHERE id = '$tid'"
	as "$other_tok" GET "/v1/assignments?status=accepted"
	expect_error 401 unauthorized
}

# ---- finding 2: sealed values bound to their row ---------------------------------

@test "a contact copied into another referral's row answers 500 and shows neither" {
	local p1 ref1 ref2 ph2 note1
	fresh_worker
	accepted_referral
	p1=$PHONE
	ref1=$REF
	note1=$(sql "SELECT note_sealed FROM referrals WHERE id = '$ref1'")
	new_phone_v ph2
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$(new_region)\" | .needs=[\"harm_reduction\"] | .client.contact.phone=\"$ph2\"")"
	expect_status 201
	ref2=$(jget .id)
	[ -n "$note1" ]
	# Client 2's sealed phone moved into client 1's row.
	sql "UPDATE referrals SET contact_sealed = (SELECT contact_sealed FROM referrals WHERE id = '$ref2')
	     WHERE id = '$ref1'"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 500 internal_error
	expect_no_echo "$ph2"
	expect_no_echo "$p1"
	grep -q "sealed_value_tampered.*table=referrals column=contact row=$ref1" "$REFD_LOG"

	# A webhook secret (its own subkey, its own row) copied into the note
	# does not come back in clear either.
	local secret hook
	secret="whsec-$(rand_hex 16)"
	printf '%s\n' "$secret" >>"$API_SECRETS"
	as_admin POST /v1/webhooks "$(jq -nc --arg s "$secret" --arg o "$ORG_B" \
		'{url:"https://partner.example/hook", events:["assignment.offered"], secret:$s, organisation_id:$o}')"
	expect_status 201
	hook=$(jget .id)
	sql "UPDATE referrals SET contact_sealed = NULL,
	            note_sealed = (SELECT secret_sealed FROM webhooks WHERE id = '$hook')
	     WHERE id = '$ref1'"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 500 internal_error
	expect_no_echo "$secret"
	# Put back, the row reads normally again.
	sql "UPDATE referrals SET note_sealed = '$note1' WHERE id = '$ref1'"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	[ "$(jget .client)" = null ] || expect_jq '.client.contact == null'
}

# ---- finding 7: webhooks aimed inside the network --------------------------------

@test "webhook URLs inside the network are refused at registration (422)" {
	local u
	for u in "https://127.0.0.1:1/x" "https://127.1.2.3/x" "https://[::1]/x" "https://10.0.0.5/x" \
		"https://172.16.0.1/x" "https://192.168.1.1/x" "https://169.254.169.254/latest/meta-data" \
		"https://[fd00::1]/x" "https://[fe80::1]/x" "https://0.0.0.0/x" "https://[::]/x" \
		"https://[::ffff:127.0.0.1]/x" "https://100.64.0.1/x" "https://localhost:8443/x" \
		"https://api.localhost/x" "https://2130706433/x" "https://0x7f.1/x" "https://0177.0.0.1/x" \
		"https://127.0.0.1./x"; do
		as_admin POST /v1/webhooks "$(jq -nc --arg u "$u" --arg o "$ORG_A" \
			'{url:$u, events:["assignment.offered"], secret:"0123456789abcdef0123", organisation_id:$o}')"
		[ "$HTTP_STATUS" = 422 ] || { echo "accepted: $u" >&2; _api_ctx; return 1; }
		expect_json .error.field /url
	done
	[ "$(sql "SELECT count(*) FROM webhooks WHERE url LIKE '%127.%' OR url LIKE '%localhost%'")" = 0 ]
	# Public addresses and names are accepted.
	as_admin POST /v1/webhooks "$(jq -nc --arg o "$ORG_A" \
		'{url:"https://93.184.216.34/x", events:["assignment.offered"], secret:"0123456789abcdef0123", organisation_id:$o}')"
	expect_status 201
}

@test "a webhook whose name resolves to 127.0.0.1 at delivery gets nothing" {
	local port org hook a id
	port=$(cat "$RX/ok/port")
	org=$(mk_org "org-rebind-$(rand_hex 3)")
	as_admin POST /v1/webhooks "$(jq -nc --arg o "$org" \
		'{url:"https://partner.example/hook", events:["assignment.offered"], secret:"0123456789abcdef0123", organisation_id:$o}')"
	expect_status 201
	hook=$(jget .id)
	# DNS rebinding: the name now answers with a loopback address (here the
	# hosts file's localhost, where a receiver is listening and would accept).
	sql "UPDATE webhooks SET url = 'https://localhost:$port/rebound' WHERE id = '$hook'"
	REGION=$(new_region)
	mk_worker "$org" harm_reduction "$REGION" ky 5 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$REGION\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	id=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a'")
	wait_sql "SELECT last_error FROM outbox WHERE id = '$id'" private_target 15
	run grep -rlF "$a" "$RX/ok"
	[ "$status" -ne 0 ]
	[ ! -e "$RX/ok/1.head" ] || ! grep -q rebound "$RX"/ok/*.head
}

@test "a webhook of nobody gets programme-wide events only, and only when marked programme" {
	local h id row
	as_admin POST /v1/webhooks '{"url":"https://partner.example/all","events":["assignment.offered","assignment.unassigned"],"secret":"0123456789abcdef0123"}'
	expect_error 422 invalid_value /programme
	as_admin POST /v1/webhooks '{"url":"https://partner.example/all","events":["assignment.offered","assignment.unassigned"],"secret":"0123456789abcdef0123","programme":true}'
	expect_status 201
	expect_json .programme true
	h=$(jget .id)
	# Claimed inside a transaction of our own (the daemon cannot see the
	# rows until commit, and we roll back): which webhooks would each get?
	row=$(refd_psql -At <<EOF
BEGIN;
INSERT INTO outbox (id, type, payload, organisation_id) VALUES
  ('00000000-0000-4000-8000-00000000000a', 'assignment.offered', '{}', '$ORG_A'),
  ('00000000-0000-4000-8000-00000000000b', 'assignment.unassigned', '{}', NULL);
SELECT c->>'id', c->'webhooks' @> '[{"id":"$h"}]' FROM outbox_claim(1000) c
 WHERE c->>'id' LIKE '00000000-0000-4000-8000-00000000000%' ORDER BY 1;
ROLLBACK;
EOF
)
	[ "$(sed -n 1p <<<"$row")" = "00000000-0000-4000-8000-00000000000a|f" ]
	[ "$(sed -n 2p <<<"$row")" = "00000000-0000-4000-8000-00000000000b|t" ]
}

# ---- finding 8: backdated events -----------------------------------------------

@test "a backdated or future contact is refused (422) and meets no deadline" {
	fresh_worker
	accepted_referral
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"contact_made","at":"2000-01-01T00:00:00Z"}'
	expect_error 422 invalid_value /at
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" \
		"$(jq -nc --arg at "$(now_plus '-1 hour')" '{type:"contact_made", at:$at}')"
	expect_error 422 invalid_value /at
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" \
		"$(jq -nc --arg at "$(now_plus '+1 hour')" '{type:"contact_made", at:$at}')"
	expect_error 422 invalid_value /at
	[ "$(sql "SELECT state FROM deadlines WHERE assignment_id = '$ASG' AND kind = 'first_contact'")" = pending ]
	[ "$(sql "SELECT count(*) FROM assignment_events WHERE assignment_id = '$ASG'")" = 0 ]
	as "$W_TOKEN" POST "/v1/assignments/$ASG/events" '{"type":"contact_made"}'
	expect_status 201
	[ "$(sql "SELECT state FROM deadlines WHERE assignment_id = '$ASG' AND kind = 'first_contact'")" = met ]
}

# ---- finding 9: free text sealed; a reason never reaches the next worker --------------

@test "a decline reason no longer reaches the next worker, and free text is stored sealed" {
	local region w1 t1 w2 t2 a reason hold outcome
	region=$(new_region)
	read -r w1 t1 < <(worker_with_token "$ORG_A" harm_reduction "$region" ky 5)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	[ "$(worker_for harm_reduction)" = "$w1" ]
	read -r w2 t2 < <(worker_with_token "$ORG_A" harm_reduction "$region" ky 5)
	reason="client is my neighbour $(rand_hex 8)"
	printf '%s\n' "$reason" >>"$API_SECRETS"
	as "$t1" POST "/v1/assignments/$a/decline" "$(jq -nc --arg r "$reason" '{reason:$r}')"
	expect_status 200
	expect_json .reason "$reason"          # the decliner's own view, opened
	as "$t2" GET "/v1/assignments/$a"
	expect_status 200
	expect_json .worker_id "$w2"
	expect_json .reason null
	expect_no_echo "$reason"
	[ "$(sql "SELECT count(*) FROM assignments WHERE id = '$a' AND (reason IS NOT NULL OR reason_sealed IS NOT NULL)")" = 0 ]

	# Hold reason and event outcome and detail: sealed in the database,
	# opened for the worker.
	as "$t2" POST "/v1/assignments/$a/accept"
	expect_status 200
	outcome="left a note $(rand_hex 6)"
	printf '%s\n' "$outcome" >>"$API_SECRETS"
	as "$t2" POST "/v1/assignments/$a/events" "$(jq -nc --arg o "$outcome" '{type:"contact_attempt", outcome:$o}')"
	expect_status 201
	expect_json .outcome "$outcome"
	hold="client in hospital $(rand_hex 6)"
	printf '%s\n' "$hold" >>"$API_SECRETS"
	as "$t2" POST "/v1/assignments/$a/hold" "$(jq -nc --arg r "$hold" '{reason:$r}')"
	expect_status 200
	expect_json .reason "$hold"
	# Under the referral's own data key (datakey.c): labelled with it.
	local rid
	rid=$(sql "SELECT referral_id FROM assignments WHERE id = '$a'")
	run sql "SELECT reason_sealed FROM assignments WHERE id = '$a'"
	[[ $output == "d@$rid:"* ]]
	run sql "SELECT outcome_sealed FROM assignment_events WHERE assignment_id = '$a'"
	[[ $output == "d@$rid:"* ]]
	# (api_teardown_file's leak check greps a plain pg_dump for all three.)
}

# ---- finding 6 and the Credentials section -----------------------------------------

@test "token list: issuer and last use for admins; supervisors see only their workers and themselves" {
	local tid
	fresh_worker
	as "$W_TOKEN" GET /v1/assignments
	expect_status 200
	tid=$(sql "SELECT id FROM tokens WHERE subject_id = '$W_ID'")
	as_admin GET "/v1/tokens?subject_id=$W_ID"
	expect_status 200
	expect_jq '.items | length == 1'
	expect_json '.items[0].id' "$tid"
	expect_json '.items[0].role' worker
	expect_jq ".items[0].issued_by == \"$(sql "SELECT subject_id FROM tokens WHERE role = 'admin' LIMIT 1")\""
	expect_time "$(jget '.items[0].last_used_at')"
	expect_jq '.items[0] | has("token") or has("token_hash") or has("binding") | not'
	expect_no_echo "$W_TOKEN"
	# Supervisor A: its organisation's worker and itself, nobody else.
	as "$SUP_A_TOKEN" GET "/v1/tokens?subject_id=$W_ID"
	expect_jq '.items | length == 1'
	as "$SUP_A_TOKEN" GET "/v1/tokens?subject_id=$SUP_A"
	expect_jq '.items | length == 1'
	as "$SUP_B_TOKEN" GET "/v1/tokens?subject_id=$W_ID"
	expect_status 200
	expect_jq '.items | length == 0'
	as "$SUP_A_TOKEN" GET "/v1/tokens?subject_id=$OFFICE1"
	expect_jq '.items | length == 0'
	as "$W_TOKEN" GET /v1/tokens
	expect_status 403
}

@test "revoking a subject's tokens stops every one of them at once" {
	local second
	fresh_worker
	second=$(mk_token worker "$W_ID")
	as "$second" GET /v1/assignments
	expect_status 200
	as "$SUP_A_TOKEN" POST /v1/tokens/revoke "{\"subject_id\":\"$W_ID\"}"
	expect_status 403
	as_admin POST /v1/tokens/revoke "{\"subject_id\":\"$W_ID\"}"
	expect_status 200
	expect_json .revoked 2
	as "$W_TOKEN" GET /v1/assignments
	expect_error 401 unauthorized
	as "$second" GET /v1/assignments
	expect_error 401 unauthorized
	as_admin GET "/v1/tokens?subject_id=$W_ID"
	expect_jq '[.items[].revoked_at | select(. != null)] | length == 2'
}

@test "a disabled office or supervisor, or an unbound certificate, stops working at once" {
	local fp office otok stok sup
	fp=$(openssl x509 -in "$REFD_CERTS/office2.crt" -outform DER | sha256sum | cut -d' ' -f1)
	as_admin POST /v1/offices "{\"name\":\"cert-off-$(rand_hex 3)\",\"region\":\"chui\",\"cert_fingerprint\":\"$fp\"}"
	expect_status 201
	office=$(jget .id)
	otok=$(mk_token office "$office")
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office2.crt" --key "$REFD_CERTS/office2.key"
	expect_status 200
	as "$otok" GET /v1/referrals
	expect_status 200

	as_admin PATCH "/v1/offices/$office" '{"active":false}'
	expect_status 200
	expect_json .active false
	as "$otok" GET /v1/referrals
	expect_error 401 unauthorized
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office2.crt" --key "$REFD_CERTS/office2.key"
	expect_error 401 unauthorized
	as_admin PATCH "/v1/offices/$office" '{"active":true}'
	expect_status 200
	as "$otok" GET /v1/referrals
	expect_status 200

	as_admin DELETE "/v1/offices/$office/certificate"
	expect_status 200
	expect_json .cert_fingerprint null
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office2.crt" --key "$REFD_CERTS/office2.key"
	expect_error 401 unauthorized
	as "$otok" GET /v1/referrals
	expect_status 200

	sup=$(mk_supervisor "$ORG_B")
	stok=$(mk_token supervisor "$sup")
	as "$stok" GET /v1/deadlines
	expect_status 200
	as_admin PATCH "/v1/supervisors/$sup" '{"active":false}'
	expect_status 200
	expect_json .active false
	as "$stok" GET /v1/deadlines
	expect_error 401 unauthorized
	as_admin PATCH "/v1/supervisors/$(new_uuid)" '{"active":false}'
	expect_status 404
	as_admin PATCH "/v1/offices/$office" '{"active":"no"}'
	expect_status 400
}

@test "a token may live at most max_token_lifetime (90 days): beyond it 422" {
	local w
	w=$(mk_worker "$ORG_A" harm_reduction "$(new_region)" ky 5)
	as_admin POST /v1/tokens "$(jq -nc --arg s "$w" --arg e "$(now_plus '+91 days')" \
		'{role:"worker", subject_id:$s, expires_at:$e}')"
	expect_error 422 invalid_value /expires_at
	[ "$(sql "SELECT count(*) FROM tokens WHERE subject_id = '$w'")" = 0 ]
	as_admin POST /v1/tokens "$(jq -nc --arg s "$w" --arg e "$(now_plus '+89 days')" \
		'{role:"worker", subject_id:$s, expires_at:$e}')"
	expect_status 201
	printf '%s\n' "$(jget .token)" >>"$API_SECRETS"
	# An offset time is the same instant: the binding holds.
	as_admin POST /v1/tokens "$(jq -nc --arg s "$w" --arg e "$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%S.250+02:00)" \
		'{role:"worker", subject_id:$s, expires_at:$e}')"
	expect_status 201
	local t
	t=$(jget .token)
	printf '%s\n' "$t" >>"$API_SECRETS"
	as "$t" GET /v1/assignments
	expect_status 200
}

# ---- the cache of verified tokens (issue 12: one round trip per request) ------

# pg_statements_since MARK: the statements the server logged after MARK.
pg_statements_since() {
	sed -n "/$1/,\$p" "$REFD_PGHOST/server.log"
}

@test "a token in the daemon's cache costs one statement, and revoking or rewriting its row still bites at once" {
	local mark log tid
	fresh_worker
	accepted_referral
	tid=$(sql "SELECT id FROM tokens WHERE subject_id = '$W_ID'")
	sql "ALTER SYSTEM SET log_statement = 'all'" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	mark="cache-mark-$(rand_hex 4)"
	sql "SELECT '$mark'" >/dev/null
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	expect_json .client.contact.phone "$PHONE"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200
	log=$(pg_statements_since "$mark")
	# The token was verified when it was first used (accept): each read is
	# the operation with the token's check folded in, no lookup of its own.
	[ "$(grep -c 'execute api_assignment_get+auth' <<<"$log")" = 2 ]
	[ "$(grep -c 'execute auth_token' <<<"$log")" = 0 ]

	# The row's expiry pushed out (binding no longer matches): the folded check fails,
	# nothing runs, the fresh lookup finds the binding broken.
	mark="cache-mark-$(rand_hex 4)"
	sql "SELECT '$mark'" >/dev/null
	sql "UPDATE tokens SET expires_at = expires_at + interval '1 day' WHERE id = '$tid'"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 401 unauthorized
	expect_no_echo "$PHONE"
	log=$(pg_statements_since "$mark")
	[ "$(grep -c 'execute api_assignment_get+auth' <<<"$log")" = 1 ]
	[ "$(grep -c 'execute auth_token' <<<"$log")" = 1 ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE actor_id = '$W_ID' AND request_id = '$(header X-Request-Id)'")" = 0 ]
	sql "UPDATE tokens SET expires_at = expires_at - interval '1 day' WHERE id = '$tid'"
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_status 200

	# Revoked while cached: refused on the next request.
	as_admin DELETE "/v1/tokens/$tid"
	expect_status 200
	as "$W_TOKEN" GET "/v1/assignments/$ASG"
	expect_error 401 unauthorized
	expect_no_echo "$PHONE"
	sql "ALTER SYSTEM RESET log_statement" >/dev/null
	sql "SELECT pg_reload_conf()" >/dev/null
}
