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
	ui_supervisor_fixture || return 1
}

# The supervisor's fixture: an organisation whose name is an XSS attempt,
# its supervisor, three referrals whose deadlines are moved to January 2026
# with chosen outcomes (the known numbers the charts are checked against),
# one that no worker can take (unassigned) and a worker to reassign it to.
#   week of 2026-01-05: A1 accepted after 600 s, first contact on time after 108000 s
#                       A2 accepted after 7200 s, first contact missed
#   week of 2026-01-12: A3 offer missed (region B)
ui_supervisor_fixture() {
	export UI_XSS UI_ORG UI_SUPU_TOKEN UI_RA UI_RB UI_A1 UI_A2 UI_A3 UI_UNASSIGNED UI_TARGET UI_WX_TOKEN UI_WX_ASG
	UI_XSS='<img src=x onerror=alert(1)>'
	UI_ORG=$(mk_org "$UI_XSS Ош НКО $(rand_hex 2)") || return 1
	local supu wu t0="timestamptz '2026-01-05T00:00:00Z'"
	supu=$(mk_supervisor "$UI_ORG") || return 1
	UI_SUPU_TOKEN=$(mk_token supervisor "$supu") || return 1
	UI_RA=$(new_region) && UI_RB=$(new_region)
	wu=$(mk_worker "$UI_ORG" harm_reduction "$UI_RA,$UI_RB" ky 10 "bakyt-$(rand_hex 3)") || return 1
	UI_A1=$(ui_referral "$UI_RA" harm_reduction) && UI_A2=$(ui_referral "$UI_RA" harm_reduction) &&
		UI_A3=$(ui_referral "$UI_RB" harm_reduction) || return 1
	sql "UPDATE deadlines SET starts_at = $t0 + interval '1 hour', due_at = $t0 + interval '25 hours',
	     created_at = $t0 + interval '1 hour', state = 'met', met_at = $t0 + interval '1 hour 600 seconds',
	     elapsed = interval '600 seconds' WHERE assignment_id = '$UI_A1' AND kind = 'accept';
	     UPDATE deadlines SET starts_at = $t0 + interval '2 hours', due_at = $t0 + interval '26 hours',
	     created_at = $t0 + interval '2 hours', state = 'met', met_at = $t0 + interval '4 hours',
	     elapsed = interval '7200 seconds' WHERE assignment_id = '$UI_A2' AND kind = 'accept';
	     UPDATE deadlines SET starts_at = $t0 + interval '7 days 1 hour', due_at = $t0 + interval '8 days 1 hour',
	     created_at = $t0 + interval '7 days 1 hour', state = 'missed', missed_at = $t0 + interval '8 days 1 hour',
	     escalated = true WHERE assignment_id = '$UI_A3' AND kind = 'accept';
	     UPDATE assignments SET created_at = $t0 + interval '1 hour' WHERE id = '$UI_A1';
	     UPDATE assignments SET created_at = $t0 + interval '2 hours' WHERE id = '$UI_A2';
	     UPDATE assignments SET created_at = $t0 + interval '7 days 1 hour' WHERE id = '$UI_A3';
	     INSERT INTO deadlines (kind, assignment_id, worker_id, organisation_id, starts_at, due_at, state,
	       met_at, elapsed, missed_at, escalated, created_at) VALUES
	     ('first_contact', '$UI_A1', '$wu', '$UI_ORG', $t0 + interval '2 hours', $t0 + interval '74 hours',
	      'met', $t0 + interval '2 hours 108000 seconds', interval '108000 seconds', NULL, false, $t0 + interval '2 hours'),
	     ('first_contact', '$UI_A2', '$wu', '$UI_ORG', $t0 + interval '4 hours', $t0 + interval '76 hours',
	      'missed', NULL, NULL, $t0 + interval '76 hours', true, $t0 + interval '4 hours')" >/dev/null || return 1
	# Legal support in region C: the organisation's only worker there has no
	# room, so the referral stays unassigned; UI_TARGET (region D) can take it
	# by reassignment.
	local rc rd
	rc=$(new_region) && rd=$(new_region)
	mk_worker "$UI_ORG" legal_support "$rc" ky 0 "full-$(rand_hex 3)" >/dev/null || return 1
	UI_TARGET=$(mk_worker "$UI_ORG" legal_support "$rd" ky,ru 2 "cholpon-$(rand_hex 3)") || return 1
	UI_UNASSIGNED=$(ui_referral "$rc" legal_support) || return 1
	[ "$(sql "SELECT status FROM assignments WHERE id = '$UI_UNASSIGNED'")" = unassigned ] ||
		{ echo "fixture: not unassigned" >&2; return 1; }
	# The XSS case for a worker: a note holding markup, seen after accepting.
	local wx rx
	rx=$(new_region)
	wx=$(mk_worker "$UI_ORG" harm_reduction "$rx" ky 2 "xss-$(rand_hex 3)") || return 1
	UI_WX_TOKEN=$(mk_token worker "$wx") || return 1
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$rx\" | .needs=[\"harm_reduction\"]
		| .note=\"$UI_XSS\"")"
	[ "$HTTP_STATUS" = 201 ] || { _api_ctx; return 1; }
	UI_WX_ASG=$(assignment_for harm_reduction)
	# The worker's other actions: two offers to one worker.
	export UI_WM_TOKEN UI_WM_DECLINE UI_WM_FAIL
	local wm rm
	rm=$(new_region)
	wm=$(mk_worker "$UI_ORG" harm_reduction "$rm" ky 3 "nurlan-$(rand_hex 3)") || return 1
	UI_WM_TOKEN=$(mk_token worker "$wm") || return 1
	UI_WM_DECLINE=$(ui_referral "$rm" harm_reduction) && UI_WM_FAIL=$(ui_referral "$rm" harm_reduction) || return 1
}

# ui_referral REGION NEED -> the assignment id of a fresh referral.
ui_referral() {
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$1\" | .needs=[\"$2\"]")"
	[ "$HTTP_STATUS" = 201 ] || { _api_ctx; return 1; }
	assignment_for "$2"
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

@test "ui: catalogues complete in Kyrgyz, Russian and English; scripts write no markup and name no other origin" {
	run node "$REFD_ROOT/tests/ui/check_static.mjs"
	echo "$output"
	[ "$status" -eq 0 ]
}

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

@test "ui: worker declines with a reason code, records an attempt, holds, resumes, closes without result" {
	run ui_run worker_more
	echo "$output"
	[ "$status" -eq 0 ]
	# The decline is on record with the reason code the worker chose.
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'assignment.decline' AND object_id = '$UI_WM_DECLINE'")" = 1 ]
	[ "$(sql "SELECT status || ' ' || reason FROM assignments WHERE id = '$UI_WM_FAIL'")" = "failed lost_contact" ]
}

@test "ui: supervisor sees overdue and unassigned, reassigns with a reason, reads the charts against known numbers, downloads the CSV" {
	run ui_run supervisor
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(sql "SELECT status FROM assignments WHERE id = '$UI_UNASSIGNED'")" = reassigned ]
	[ "$(sql "SELECT a.worker_id FROM assignments a WHERE a.replaces = '$UI_UNASSIGNED'")" = "$UI_TARGET" ]
}

@test "ui: a note and an organisation name holding <img src=x onerror=alert(1)> render as text" {
	run ui_run xss
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "ui: Kyrgyz-first browser, language switch, locale formats in Asia/Bishkek time" {
	run ui_run i18n
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "ui: headers of the pages: CSP, nosniff, no referrer, ETag and 304, gzip, immutable versioned assets" {
	run ui_run headers
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "ui: page weight on a first and a repeat load, time to the inbox (figures, printed)" {
	run ui_run measure
	echo "$output"
	[ "$status" -eq 0 ]
	# Shown in the TAP output of make check.
	printf '%s\n' "$output" | grep -E 'page weight|time to inbox' | sed 's/^ */# /' >&3
}
