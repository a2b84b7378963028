#!/usr/bin/env bats
# ui.bats - the web pages (issue 14) in headless Chromium (Debian's), driven
# by playwright-core against the real daemon over real TLS: the worker's flow
# on a phone, the supervisor's lists, reassign, report charts and CSV, the
# languages, the CSP and origins, the XSS case and axe-core. The scenarios
# are tests/ui/scenario_*.mjs; this file seeds their data through the API,
# runs them, and checks in the database what only the database can tell.
# Screenshots go to build/ui-shots/.

load ../lib/api

setup_file() {
	ui_install_node_modules || return 1
	api_setup_file || return 1
	api_seed_network || return 1
	export UI_SPKI UI_SHOTS NODE_EXTRA_CA_CERTS UI_SUP_TOKEN UI_REGION UI_WORKER_ID UI_ASG UI_PHONE
	UI_SHOTS=$REFD_ROOT/build/ui-shots
	NODE_EXTRA_CA_CERTS=$REFD_CA
	# Chromium checks the daemon's certificate against this pin (the key's
	# SPKI hash), not against a system store it cannot see.
	UI_SPKI=$(openssl x509 -in "$REFD_CERTS/server.crt" -pubkey -noout |
		openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)
	UI_SUP_TOKEN=$SUP_A_TOKEN
	UI_REGION=$(new_region)
	UI_WORKER_ID=$(mk_worker "$ORG_A" harm_reduction "$UI_REGION" ky,ru 3 "aidana-$(rand_hex 3)") || return 1
	UI_PHONE=$(new_phone)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$UI_REGION\" | .needs=[\"harm_reduction\"]
		| .client.contact.phone=\"$UI_PHONE\"")"
	[ "$HTTP_STATUS" = 201 ] || { _api_ctx; return 1; }
	UI_ASG=$(assignment_for harm_reduction)
	[ "$(worker_for harm_reduction)" = "$UI_WORKER_ID" ] || { echo "fixture: not offered to the worker" >&2; return 1; }
}

teardown_file() { api_teardown_file; }

# npm ci once per lock file (the packages are pinned in tests/ui/package-lock.json).
ui_install_node_modules() {
	local d=$REFD_ROOT/tests/ui
	if [ -f "$d/node_modules/.package-lock.json" ] &&
		cmp -s <(jq -S .packages "$d/package-lock.json" | jq -S 'del(."")') \
			<(jq -S .packages "$d/node_modules/.package-lock.json"); then
		return 0
	fi
	(cd "$d" && npm ci --no-audit --no-fund --loglevel=error) >&2
}

ui_run() { node "$REFD_ROOT/tests/ui/run.mjs" "$@"; }

@test "ui: worker on a phone signs in with a supervisor's code, accepts, records contact, completes, signs out" {
	run ui_run worker
	echo "$output"
	[ "$status" -eq 0 ]
	# The retried contact_made was recorded once.
	[ "$(sql "SELECT count(*) FROM assignment_events WHERE assignment_id = '$UI_ASG' AND type = 'contact_made'")" = 1 ]
	# The code is stored only as a keyed hash, and spent.
	[ "$(sql "SELECT count(*) FROM sign_in_codes WHERE subject_id = '$UI_WORKER_ID' AND used_at IS NOT NULL
	          AND code_hash ~ '^[0-9a-f]{64}$'")" = 1 ]
	# Sign-in and sign-out are on the audit record.
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'sign_in' AND actor_id = '$UI_WORKER_ID'")" -ge 1 ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'sign_out' AND actor_id = '$UI_WORKER_ID'")" -ge 1 ]
}
