#!/usr/bin/env bats
# referralctl.bats - the operator CLI (issue 13, part 3) against the real
# daemon over TLS: each command's effect is read back from the database.
load ../lib/api

setup_file() {
	api_setup_file || return 1
	export CTL CTLD HOME
	CTL=$BUILD/referralctl
	[ -x "$CTL" ] || { echo "$CTL missing: run make" >&2; return 1; }
	CTLD=$REFD_TMP/ctl
	HOME=$REFD_TMP/home
	mkdir -p "$CTLD" "$HOME/.config"
	(umask 077 && printf '%s\n' "$ADMIN_TOKEN" >"$CTLD/token")
	cat >"$HOME/.config/referralctl.conf" <<EOF
url = $REFD_URL
ca_file = $REFD_CA
token_file = ~/admin.token
EOF
	cp -p "$CTLD/token" "$HOME/admin.token"
}

teardown_file() { api_teardown_file; }

# ctl ARGS...: referralctl with the configuration in ~/.config
ctl() { "$CTL" "$@"; }

@test "the token comes only from a 0600 token file: not the command line, not the config file" {
	run ctl --token "$ADMIN_TOKEN" org add x
	[ "$status" -eq 2 ]
	run ctl org add x --token "$ADMIN_TOKEN"
	[ "$status" -eq 3 ]
	grep -q 'never taken on the command line' <<<"$output"
	chmod 0644 "$HOME/admin.token"
	run ctl org add "org-$(rand_hex 4)"
	chmod 0600 "$HOME/admin.token"
	[ "$status" -eq 3 ]
	grep -q 'readable by group or others' <<<"$output"
	printf 'url = %s\ntoken_file = %s\ntoken = %s\n' "$REFD_URL" "$CTLD/token" "$ADMIN_TOKEN" >"$CTLD/bad.conf"
	run ctl -c "$CTLD/bad.conf" org add x
	[ "$status" -eq 3 ]
	grep -q 'does not belong in this file' <<<"$output"
	! grep -qF "$ADMIN_TOKEN" <<<"$output"
	printf 'url = http://127.0.0.1:1\ntoken_file = %s\n' "$CTLD/token" >"$CTLD/plain.conf"
	run ctl -c "$CTLD/plain.conf" org add x
	[ "$status" -eq 3 ]
	grep -q 'url must start with https://' <<<"$output"
}

@test "the daemon's certificate is verified against ca_file" {
	printf 'url = %s\nca_file = %s\ntoken_file = %s\n' "$REFD_URL" "$REFD_CERTS/foreign-ca.crt" \
		"$CTLD/token" >"$CTLD/foreign.conf"
	run ctl -c "$CTLD/foreign.conf" org add "org-$(rand_hex 4)"
	[ "$status" -eq 3 ]
	[ "$(sql "select count(*) from organisations where name like 'org-%'")" = 0 ]
}

@test "org, office (with its certificate), worker, leave/return, supervisor: created as asked" {
	local org office fp worker
	run ctl org add "Harm Reduction Osh"
	[ "$status" -eq 0 ]
	org=$(jq -r .id <<<"$output")
	[ "$(sql "select name from organisations where id = '$org'")" = "Harm Reduction Osh" ]
	run ctl office add "Office Osh" osh --cert "$REFD_CERTS/office2.crt"
	[ "$status" -eq 0 ]
	office=$(jq -r .id <<<"$output")
	fp=$(openssl x509 -in "$REFD_CERTS/office2.crt" -outform DER | sha256sum | cut -c1-64)
	[ "$(sql "select count(*) from office_certs where office_id = '$office' and fingerprint = '$fp'")" = 1 ]
	run ctl worker add --org "$org" --kind harm_reduction --handle "w-$(rand_hex 4)" \
		--regions osh,chui --languages ky,ru --capacity 3
	[ "$status" -eq 0 ]
	worker=$(jq -r .id <<<"$output")
	[ "$(sql "select capacity, on_leave, array_to_string(regions, ',') from workers where id = '$worker'")" = "3|f|osh,chui" ]
	run ctl worker leave "$worker"
	[ "$status" -eq 0 ]
	[ "$(sql "select on_leave from workers where id = '$worker'")" = t ]
	run ctl worker return "$worker"
	[ "$status" -eq 0 ]
	[ "$(sql "select on_leave from workers where id = '$worker'")" = f ]
	run ctl supervisor add --org "$org" --handle "s-$(rand_hex 4)"
	[ "$status" -eq 0 ]
	run ctl supervisor add --programme --handle "p-$(rand_hex 4)"
	[ "$status" -eq 0 ]
	[ "$(sql "select scope from supervisors where id = '$(jq -r .id <<<"$output")'")" = programme ]
	# The daemon's refusal comes back as its code and field.
	run ctl worker add --org "$org" --kind plumbing --handle "w-$(rand_hex 4)" \
		--regions osh --languages ky --capacity 3
	[ "$status" -eq 1 ]
	grep -q 'HTTP 4[0-9][0-9] [a-z_]*: .*kind' <<<"$output"
	echo "$worker" >"$CTLD/worker.id"
}

@test "token issue prints a working token once; token revoke stops it" {
	local worker tok id
	worker=$(cat "$CTLD/worker.id")
	run ctl token issue --role worker --subject "$worker"
	[ "$status" -eq 0 ]
	tok=$(jq -r .token <<<"$output")
	id=$(jq -r .id <<<"$output")
	printf '%s\n' "$tok" >>"$API_SECRETS"
	as "$tok" GET /v1/assignments
	expect_status 200
	run ctl token revoke "$id"
	[ "$status" -eq 0 ]
	as "$tok" GET /v1/assignments
	expect_status 401
}

@test "webhook add reads its secret from a file; policy set changes the deadline policy" {
	local secret org
	org=$(sql "select id from organisations limit 1")
	secret="whsec-$(rand_hex 16)"
	printf '%s\n' "$secret" >>"$API_SECRETS"
	(umask 077 && printf '%s\n' "$secret" >"$CTLD/wh.secret")
	run ctl webhook add --url https://127.0.0.1:9/hook --events assignment.offered,deadline.missed \
		--secret-file "$CTLD/wh.secret" --org "$org"
	echo "$output"
	[ "$status" -eq 0 ]
	! grep -qF "$secret" <<<"$output"
	[ "$(sql "select count(*) from webhooks where url = 'https://127.0.0.1:9/hook'")" = 1 ]
	run ctl policy set legal_support urgent --accept-within PT2H --first-contact-within PT12H
	[ "$status" -eq 0 ]
	[ "$(sql "select accept_within, first_contact_within from deadline_policies where need = 'legal_support' and urgency = 'urgent'")" = "02:00:00|12:00:00" ]
}

@test "org, office, worker, webhook, token list, policy get, retention get: what the database holds" {
	local org worker n sup stok path
	org=$(sql "select id from organisations where name = 'Harm Reduction Osh'")
	worker=$(cat "$CTLD/worker.id")
	run ctl org list
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.items | length' <<<"$output")" = "$(sql "select count(*) from organisations")" ]
	[ "$(jq -r --arg o "$org" '.items[] | select(.id == $o) | .name' <<<"$output")" = "Harm Reduction Osh" ]
	run ctl office list
	[ "$status" -eq 0 ]
	[ "$(jq -r '.items | length' <<<"$output")" = "$(sql "select count(*) from offices")" ]
	[ "$(jq -r '.items[] | select(.name == "Office Osh") | .cert_fingerprint' <<<"$output")" = \
		"$(sql "select c.fingerprint from office_certs c join offices o on o.id = c.office_id where o.name = 'Office Osh'")" ]
	run ctl worker list --org "$org"
	[ "$status" -eq 0 ]
	n=$(sql "select count(*) from workers where organisation_id = '$org'")
	[ "$n" -ge 1 ]
	[ "$(jq -r --arg o "$org" '[.items[] | select(.organisation_id == $o)] | length' <<<"$output")" = "$n" ]
	[ "$(jq -r '.items | length' <<<"$output")" = "$n" ]
	run ctl webhook list
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r '[.items[] | select(.url == "https://127.0.0.1:9/hook")] | length' <<<"$output")" = 1 ]
	# Never the secret, sealed or not.
	! grep -qF "$(cat "$CTLD/wh.secret")" <<<"$output"
	! grep -q secret <<<"$output"
	run ctl token list --subject "$worker"
	[ "$status" -eq 0 ]
	[ "$(jq -r '.items | length' <<<"$output")" = "$(sql "select count(*) from tokens where subject_id = '$worker'")" ]
	[ "$(jq -r '[.items[] | select(.revoked_at != null)] | length' <<<"$output")" -ge 1 ]
	run ctl policy get
	[ "$status" -eq 0 ]
	jq -e '.items[] | select(.need == "legal_support" and .urgency == "urgent" and .accept_within == "PT2H")' <<<"$output"
	run ctl retention get
	echo "$output"
	[ "$status" -eq 0 ]
	jq -e '.contact_after_close and .record_after_close' <<<"$output"
	run ctl retention set --contact-after-close P45D
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(sql "select contact_after_close from retention_policy")" = "45 days" ]
	# Each list read is in the audit, under its operation's name.
	[ "$(sql "select count(*) from audit_log where action in ('organisation.list', 'office.list', 'webhook.list') and outcome = 'ok'")" = 3 ]
	# Not an admin: 403, and the refusal is audited.
	sup=$(ctl supervisor add --org "$org" --handle "s-$(rand_hex 4)" | jq -r .id)
	stok=$(ctl token issue --role supervisor --subject "$sup" | jq -r .token)
	printf '%s\n' "$stok" >>"$API_SECRETS"
	for path in /v1/organisations /v1/offices /v1/webhooks; do
		as "$stok" GET "$path"
		expect_status 403
		expect_denied_audit
	done
}

@test "office bind-cert: the certificate authenticates as that office, a bound one is refused; disable stops every credential" {
	local office tok fp out
	run ctl office add "Office Talas" talas
	[ "$status" -eq 0 ]
	office=$(jq -r .id <<<"$output")
	run ctl token issue --role office --subject "$office"
	[ "$status" -eq 0 ]
	tok=$(jq -r .token <<<"$output")
	printf '%s\n' "$tok" >>"$API_SECRETS"
	# Before binding, the certificate maps to no office.
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	expect_status 401
	run ctl office bind-cert "$office" "$REFD_CERTS/office.crt"
	echo "$output"
	[ "$status" -eq 0 ]
	fp=$(openssl x509 -in "$REFD_CERTS/office.crt" -outform DER | sha256sum | cut -c1-64)
	[ "$(jq -r .cert_fingerprint <<<"$output")" = "$fp" ]
	[ "$(sql "select office_id from office_certs where fingerprint = '$fp'")" = "$office" ]
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	expect_status 200
	[ "$(sql "select actor_id from audit_log where request_id = '$HTTP_REQID'")" = "$office" ]
	# office2.crt is Office Osh's: refused, nothing changes.
	run ctl office bind-cert "$office" "$REFD_CERTS/office2.crt"
	echo "$output"
	[ "$status" -eq 1 ]
	grep -q 'HTTP 409 duplicate_name' <<<"$output"
	[ "$(sql "select o.name from office_certs c join offices o on o.id = c.office_id
	          where c.fingerprint = '$(openssl x509 -in "$REFD_CERTS/office2.crt" -outform DER | sha256sum | cut -c1-64)'")" = "Office Osh" ]
	[ "$(sql "select count(*) from office_certs where office_id = '$office'")" = 1 ]
	# Not a certificate file: refused before any request.
	run ctl office bind-cert "$office" "$CTLD/token"
	[ "$status" -ne 0 ]
	as "$tok" GET /v1/referrals
	expect_status 200
	run ctl office disable "$office"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .active <<<"$output")" = false ]
	[ "$(sql "select active from offices where id = '$office'")" = f ]
	as "$tok" GET /v1/referrals
	expect_status 401
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	expect_status 401
	# An unknown office: 404 from the daemon, exit 1.
	run ctl office disable "$(new_uuid)"
	[ "$status" -eq 1 ]
	grep -q 'HTTP 404' <<<"$output"
}

@test "token revoke --subject revokes every token of the subject" {
	local worker t1 t2
	worker=$(cat "$CTLD/worker.id")
	t1=$(ctl token issue --role worker --subject "$worker" | jq -r .token)
	t2=$(ctl token issue --role worker --subject "$worker" | jq -r .token)
	printf '%s\n%s\n' "$t1" "$t2" >>"$API_SECRETS"
	as "$t1" GET /v1/assignments
	expect_status 200
	as "$t2" GET /v1/assignments
	expect_status 200
	run ctl token revoke --subject "$worker"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -r .revoked <<<"$output")" -ge 2 ]
	as "$t1" GET /v1/assignments
	expect_status 401
	as "$t2" GET /v1/assignments
	expect_status 401
	[ "$(sql "select count(*) from tokens where subject_id = '$worker' and revoked_at is null")" = 0 ]
}

@test "worker import: dry run by default (nothing written), --apply writes, a result per line" {
	local org f n0
	org=$(sql "select id from organisations limit 1")
	f=$CTLD/workers.csv
	{
		echo "handle,organisation_id,kind,regions,languages,capacity"
		echo "imp-a,$org,harm_reduction,osh;chui,ky;ru,2"
		echo "\"imp-b\",$org,legal_support,\"osh, batken\",ru,1"
		echo "imp-c,$org,plumbing,osh,ky,1"
		echo "imp-d,$org,harm_reduction,osh,ky,lots"
		echo "imp-a,$org,harm_reduction,osh,ky,1"
		echo "imp-e,$org,harm_reduction,osh,ky,4"
	} >"$f"
	n0=$(sql "select count(*) from workers")
	run ctl worker import "$f"
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(sql "select count(*) from workers")" = "$n0" ]
	grep -qx 'line 2: ok: would create worker imp-a' <<<"$output"
	grep -qx 'line 4: invalid: kind must be harm_reduction or legal_support' <<<"$output"
	grep -qx 'line 5: invalid: capacity must be an integer 0..1000' <<<"$output"
	grep -qx 'line 6: invalid: handle repeats line 2' <<<"$output"
	grep -qx 'import: 6 records: 3 valid, 3 invalid (dry run: nothing was written; --apply writes)' <<<"$output"
	# Piped: plain lines, no terminal control.
	! grep -q $'\033' <<<"$output"
	run ctl worker import "$f" --apply
	echo "$output"
	[ "$status" -eq 1 ]
	[ "$(sql "select count(*) from workers")" = $((n0 + 3)) ]
	grep -Eq '^line 3: created worker imp-b id=[0-9a-f-]{36}$' <<<"$output"
	[ "$(sql "select array_to_string(regions, ',') from workers where handle = 'imp-b'")" = "osh,batken" ]
	grep -qx 'import: 6 records: 3 created, 3 failed' <<<"$output"
	# Again: the daemon refuses the existing handles, each line says so.
	{ head -n 1 "$f"; sed -n 2p "$f"; } >"$CTLD/again.csv"
	run ctl worker import "$CTLD/again.csv" --apply
	[ "$status" -eq 1 ]
	grep -Eq '^line 2: failed: HTTP 409 ' <<<"$output"
	# A malformed CSV line is reported with its number.
	printf 'organisation_id,kind,handle,regions,languages,capacity\n%s,harm_reduction,x"y,osh,ky,1\n' "$org" >"$CTLD/bad.csv"
	run ctl worker import "$CTLD/bad.csv"
	[ "$status" -eq 1 ]
	grep -q 'line 2: invalid: line 2: a quote inside an unquoted field' <<<"$output"
}

@test "worker import on a terminal draws a progress bar" {
	local org f
	command -v script >/dev/null || skip "script(1) (bsdutils) gives the pty; it is missing here"
	org=$(sql "select id from organisations limit 1")
	f=$CTLD/tty.csv
	{
		echo "organisation_id,kind,handle,regions,languages,capacity"
		for i in 1 2 3 4; do echo "$org,harm_reduction,tty-$i,osh,ky,1"; done
	} >"$f"
	script -qec "$CTL worker import $f" "$CTLD/typescript" >/dev/null
	grep -q $'\r\033\\[K\\[###############...............\\] 2/4' "$CTLD/typescript"
	grep -q '\] 4/4' "$CTLD/typescript"
	grep -q 'line 5: ok: would create worker tty-4' "$CTLD/typescript"
}
