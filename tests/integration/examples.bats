#!/usr/bin/env bats
# tests/integration/examples.bats - replay every proto/examples/*.json against
# the real daemon (real PostgreSQL, real TLS) with curl.
#
# Owns: the example file format and its placeholder convention (below), and the
# replay of each example in file-name order on one daemon and one database.
# Must never: edit an example to fit the daemon (the examples are normative:
# fix the daemon or, when the spec changed, the example and the spec together),
# or print tokens.
#
# Example file: {"title", "description"?, "role", "issue"?,
#   "request":  {"method", "path", "headers": {..}, "body": <json> | "body_raw": "<text>",
#                "client_cert": "office"?},
#   "response": {"status", "headers": {..}, "body"?: <json>, "text_contains"?: ["..."]},
#   "capture"?: {"name": "<jq filter on the response body>"}}
#
# Variables: "{{name}}" anywhere in a string of the request or the expected
# response is replaced by a value captured by an earlier example (or by the
# same example, before its response is compared), or given by this runner:
# admin_token (minted on the command line), office_cert_fingerprint (SHA-256
# hex of the test office certificate). An undefined variable fails the example.
#
# Expected response: status exactly; each expected header (case-insensitive
# name, last occurrence); the body as a SUBSET: every member an expected object
# shows must be present and match, members it does not show are not checked;
# arrays must have the same length and match element by element in any order
# (the order of a referral's assignments is not part of the protocol; list
# order is tested elsewhere and by the paging examples). Placeholders, a whole
# string standing for a generated value:
#   "<uuid>"    a UUID              "<time>"    an RFC 3339 UTC time
#   "<string>"  a non-empty string  "<number>"  a number   "<boolean>" a boolean
#   "<array>"   an array            "<object>"  an object  "<any>" any value
#   "<request-id>" 32 hex digits    "<absent>"  the member/header must NOT exist
# An expected "body" also requires Content-Type: application/json. An error
# answer must not echo the request's client values (uic, phone, name, note).
# "text_contains": the raw body (non-JSON answers: CSV, metrics) contains each string.
# "client_cert": "office" presents the test office certificate (mutual TLS).
# "issue": N names the issue that added the endpoint; informational only (an
# example whose route answers 404 fails like any other mismatch).

load ../lib/common

EXAMPLES_DIR=$REFD_ROOT/proto/examples

# The subset matcher. diff($e; $a; $path) yields one message per mismatch.
MATCHER='
def re: {"<uuid>": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
         "<time>": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$",
         "<request-id>": "^[0-9a-f]{32}$"};
def isph: type == "string" and test("^<[a-z-]+>$");
def phok($e):
  if $e == "<any>" then true
  elif $e == "<string>" then (type == "string" and length > 0)
  elif $e == "<number>" then type == "number"
  elif $e == "<boolean>" then type == "boolean"
  elif $e == "<array>" then type == "array"
  elif $e == "<object>" then type == "object"
  elif (re | has($e)) then (type == "string" and test(re[$e]))
  else error("unknown placeholder \($e)") end;
def diff($e; $a; $p):
  if ($e | isph) then
    (if ($a | phok($e)) then empty else "\($p): expected \($e), got \($a | tojson)" end)
  elif ($e | type) == "object" then
    if ($a | type) != "object" then "\($p): expected an object, got \($a | tojson)"
    else
      $e | to_entries[] | .key as $k | .value as $v |
      if $v == "<absent>" then
        (if ($a | has($k)) then "\($p)/\($k): must be absent, got \($a[$k] | tojson)" else empty end)
      elif ($a | has($k) | not) then "\($p)/\($k): missing"
      else diff($v; $a[$k]; "\($p)/\($k)") end
    end
  elif ($e | type) == "array" then
    if ($a | type) != "array" then "\($p): expected an array, got \($a | tojson)"
    elif ($e | length) != ($a | length) then
      "\($p): expected \($e | length) items, got \($a | length): \($a | tojson)"
    else
      # any order: try every pairing (arrays in examples are short).
      def pairs($es; $xs):
        if ($es | length) == 0 then true
        else any(range(0; $xs | length) as $i
                 | select([diff($es[0]; $xs[$i]; "")] | length == 0)
                 | pairs($es[1:]; $xs[:$i] + $xs[$i + 1:]); .)
        end;
      if pairs($e; $a) then empty
      else "\($p): expected these items in any order: \($e | tojson), got \($a | tojson)" end
    end
  elif $e == $a then empty
  else "\($p): expected \($e | tojson), got \($a | tojson)" end;
'

# Replace {{name}} in every string of the input by $vars[name].
SUBST='
def subst: gsub("\\{\\{(?<n>[a-z0-9_]+)\\}\\}";
  .n as $n | ($vars[$n] // error("undefined variable {{\($n)}}")) | tostring);
walk(if type == "string" then subst else . end)
'

setup_file() {
	REFD_NO_DAEMON=1 refd_setup_file || return 1
	# The examples show a production deployment: webhooks aimed inside the
	# network are refused (the harness allows them for local receivers).
	refd_config_set "$REFD_CONF" webhooks allow_private_targets off
	refd_daemon_start main "$REFD_CONF" || return 1
	local tok fp
	tok=$(refd_mint_admin_token examples-admin) || return 1
	fp=$(openssl x509 -in "$REFD_CERTS/office.crt" -outform DER | sha256sum | cut -d' ' -f1)
	# Tokens live at most [security] max_token_lifetime (90 days): the
	# examples' tokens expire a month from the run.
	jq -n --arg t "$tok" --arg f "$fp" --arg e "$(date -u -d '+30 days' +%Y-%m-%dT00:00:00Z)" \
		'{admin_token: $t, office_cert_fingerprint: $f, token_expires_at: $e}' \
		>"$BATS_FILE_TMPDIR/vars.json"
}

teardown_file() {
	refd_teardown_file
}

# Turn an example (with $vars) into shell assignments for replay(): three jq
# runs per example in all, since jq's start-up dominates on a busy machine.
PLAN='
if (.title | type) == "string" and (.role | type) == "string"
   and (.request.method | type) == "string" and (.request.path | startswith("/"))
   and (.response.status | type) == "number" then . else error("not a valid example file") end
| .response.status as $want | (.issue // "" | tostring) as $issue
| (.capture // {} | to_entries | map("\(.key | tojson): ([\(.value)] | first)") | join(", ")) as $cap
| .request | (
  @sh "method=\(.method) path=\(.path) cert=\(.client_cert // "")",
  @sh "want=\($want) issue=\($issue) capture_prog=\("{" + $cap + "}")",
  "hdrs=(\(.headers // {} | to_entries | map("\(.key): \(.value)") | @sh))",
  (if has("body") then @sh "body=\(.body | tojson) has_body=1"
   elif has("body_raw") then @sh "body=\(.body_raw) has_body=1"
   else "body= has_body=0" end))
'

# Compare one answer with the expected response; prints one line per problem.
CHECK='
($ex[0].response | '"$SUBST"') as $e
| ($h | split("\n") | map(select(index(":")) | {(.[:index(":")] | ascii_downcase): (.[index(":") + 1:] | sub("^[ \t]+"; ""))}) | add // {}) as $hs
| ($b | try fromjson catch null) as $j
| (if ($status | tonumber) != $e.status then "status: expected \($e.status), got \($status)" else empty end),
  ($e.headers // {} | to_entries[] | (.key | ascii_downcase) as $k | .value as $v
   | if $v == "<absent>" then (if $hs | has($k) then "header \(.key): must be absent" else empty end)
     elif ($hs | has($k) | not) then "header \(.key): missing"
     else diff($v; $hs[$k]; "header \(.key)") end),
  (if $e.body == null then empty
   elif ($hs["content-type"] // "" | startswith("application/json") | not) then
     "header Content-Type: expected application/json, got \($hs["content-type"] // "none")"
   elif $j == null then "body: not JSON"
   else diff($e.body; $j; "body") end),
  ($e.text_contains // [] | .[] | select(. as $s | $b | contains($s) | not) | "body: does not contain \(tojson)"),
  (if ($status | tonumber) < 400 then empty else
   $ex[0].request.body // {} | [.client.uic?, .client.contact.phone?, .client.name?, .note?]
   | map(select(type == "string" and length >= 4)) | .[]
   | select(ascii_downcase as $s | $b | ascii_downcase | contains($s))
   | "body: an error echoes the client value \(tojson)" end)
'

# replay NAME: run proto/examples/NAME.json; fail with the reasons.
replay() {
	local f=$EXAMPLES_DIR/$1.json d=$BATS_TEST_TMPDIR vars=$BATS_FILE_TMPDIR/vars.json plan
	local method path cert want issue capture_prog body has_body status problems
	local -a hdrs args
	[ -f "$f" ] || { echo "no example $f" >&2; return 1; }
	plan=$(jq -r --slurpfile v "$vars" '$v[0] as $vars | .request |= ('"$SUBST"') | '"$PLAN" "$f") ||
		return 1
	eval "$plan"

	args=(-sS --http1.1 --cacert "$REFD_CA" --max-time 30 -X "$method" -o "$d/body" -D "$d/hdrs"
		-w '%{http_code}')
	local h
	for h in "${hdrs[@]}"; do
		args+=(-H "$h")
	done
	if [ "$has_body" = 1 ]; then
		printf '%s' "$body" >"$d/req"
		args+=(--data-binary "@$d/req")
	fi
	if [ -n "$cert" ]; then
		args+=(--cert "$REFD_CERTS/$cert.crt" --key "$REFD_CERTS/$cert.key")
	fi
	status=$(curl "${args[@]}" "$REFD_URL$path") || status=000
	tr -d '\r' <"$d/hdrs" >"$d/hdrs.txt" 2>/dev/null || : >"$d/hdrs.txt"
	[ -f "$d/body" ] || : >"$d/body"

	# Captures first, so the expected response can refer to this answer's ids.
	if [ "$capture_prog" != "{}" ]; then
		if ! jq --slurpfile v "$vars" '$v[0] + ('"$capture_prog"' | with_entries(select(.value != null)))' \
			"$d/body" >"$vars.new" 2>/dev/null; then
			echo "$1: captures found nothing (answer not JSON)" >&2
			rm -f "$vars.new"
		else
			mv "$vars.new" "$vars"
		fi
	fi

	problems=$(jq -rn --slurpfile ex "$f" --slurpfile v "$vars" --arg status "$status" \
		--rawfile h "$d/hdrs.txt" --rawfile b "$d/body" \
		"$MATCHER"' $v[0] as $vars | '"$CHECK" 2>&1) || problems="runner: $problems"
	if [ -n "$problems" ]; then
		echo "example $1 ($(jq -r .title "$f")): $method $(jq -r .request.path "$f")" >&2
		printf '%s\n' "$problems" | sed 's/^/  /' >&2
		printf '  answer: HTTP %s %.1500s\n' "$status" "$(cat "$d/body")" >&2
		return 1
	fi
}

@test "every example file is replayed by this suite, and parses" {
	local f n missing=""
	for f in "$EXAMPLES_DIR"/*.json; do
		jq -e . "$f" >/dev/null || { echo "bad JSON: $f" >&2; return 1; }
		n=$(basename "$f" .json)
		grep -q "^@test \"$n\"" "$BATS_TEST_FILENAME" || missing="$missing $n"
	done
	[ -z "$missing" ] || { echo "examples not replayed:$missing" >&2; return 1; }
}

@test "every example the spec names exists" {
	local f missing=""
	for f in $(grep -o '[0-9][0-9]_[a-z0-9_]*\.json' "$REFD_ROOT/proto/openapi.yaml" | sort -u); do
		[ -f "$EXAMPLES_DIR/$f" ] || missing="$missing $f"
	done
	[ -z "$missing" ] || { echo "proto/openapi.yaml names missing examples:$missing" >&2; return 1; }
}

@test "the spec and the daemon's route table list the same method + path pairs" {
	local spec routes
	spec=$(awk '/^paths:/ { in_paths = 1; next } /^[a-z]/ { in_paths = 0 }
		in_paths && /^  \/[^ ]*:$/ { p = $1; sub(/:$/, "", p) }
		in_paths && /^    (get|post|put|patch|delete):$/ { m = $1; sub(/:$/, "", m); print toupper(m), p }' \
		"$REFD_ROOT/proto/openapi.yaml" | sort)
	routes=$(grep -o 'EVHTTP_REQ_[A-Z]*, "[^"]*"' "$REFD_ROOT/daemon/router.c" |
		sed 's/EVHTTP_REQ_//; s/, "/ /; s/"$//' | sort)
	[ -n "$routes" ] || { echo "no routes found in daemon/router.c" >&2; return 1; }
	if [ "$spec" != "$routes" ]; then
		echo "spec (<) and router (>) differ:" >&2
		diff <(printf '%s\n' "$spec") <(printf '%s\n' "$routes") >&2
		return 1
	fi
}

@test "proto/webhook.md's worked signature example is correct" {
	local doc=$REFD_ROOT/proto/webhook.md body secret t v1 got
	body=$(grep -m1 '^{"id":"' "$doc")
	secret=$(sed -n 's/^secret *= *\([^ ]*\).*/\1/p' "$doc")
	t=$(sed -n 's/^t *= *\([0-9]*\).*/\1/p' "$doc")
	v1=$(sed -n 's/^Signature: t=[0-9]*,v1=\([0-9a-f]*\)$/\1/p' "$doc")
	[ -n "$body" ] && [ -n "$secret" ] && [ -n "$t" ] && [ -n "$v1" ]
	got=$(printf '%s' "$t.$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)
	[ "$got" = "$v1" ] || { echo "webhook.md: signature $v1, recomputed $got" >&2; return 1; }
}

@test "00_healthz" { replay 00_healthz; }
@test "01_readyz" { replay 01_readyz; }
@test "02_create_organisation" { replay 02_create_organisation; }
@test "03_create_office" { replay 03_create_office; }
@test "04_create_office_osh" { replay 04_create_office_osh; }
@test "05_create_hr_worker" { replay 05_create_hr_worker; }
@test "06_create_legal_worker" { replay 06_create_legal_worker; }
@test "07_create_supervisor" { replay 07_create_supervisor; }
@test "08_create_programme_supervisor" { replay 08_create_programme_supervisor; }
@test "09_token_programme_supervisor" { replay 09_token_programme_supervisor; }
@test "10_token_office" { replay 10_token_office; }
@test "11_token_office_osh" { replay 11_token_office_osh; }
@test "12_token_hr_worker" { replay 12_token_hr_worker; }
@test "13_token_legal_worker" { replay 13_token_legal_worker; }
@test "14_token_supervisor" { replay 14_token_supervisor; }
@test "15_token_to_revoke" { replay 15_token_to_revoke; }
@test "16_revoke_token" { replay 16_revoke_token; }
@test "17_revoked_token_refused" { replay 17_revoked_token_refused; }
@test "18_put_deadline_policy" { replay 18_put_deadline_policy; }
@test "19_create_webhook" { replay 19_create_webhook; }
@test "20_submit_referral" { replay 20_submit_referral; }
@test "21_replay_referral" { replay 21_replay_referral; }
@test "22_idempotency_key_reused" { replay 22_idempotency_key_reused; }
@test "23_duplicate_external_ref" { replay 23_duplicate_external_ref; }
@test "24_missing_idempotency_key" { replay 24_missing_idempotency_key; }
@test "25_no_consent" { replay 25_no_consent; }
@test "26_unknown_field" { replay 26_unknown_field; }
@test "27_duplicate_key" { replay 27_duplicate_key; }
@test "28_malformed_json" { replay 28_malformed_json; }
@test "29_invalid_type" { replay 29_invalid_type; }
@test "30_invalid_phone" { replay 30_invalid_phone; }
@test "31_missing_field" { replay 31_missing_field; }
@test "32_invalid_uic" { replay 32_invalid_uic; }
@test "33_office_get_referral" { replay 33_office_get_referral; }
@test "34_office_list_referrals" { replay 34_office_list_referrals; }
@test "35_office_cert_get_referral" { replay 35_office_cert_get_referral; }
@test "36_duplicate_of_other_office" { replay 36_duplicate_of_other_office; }
@test "37_supervisor_list_page1" { replay 37_supervisor_list_page1; }
@test "38_supervisor_list_page2" { replay 38_supervisor_list_page2; }
@test "39_invalid_cursor" { replay 39_invalid_cursor; }
@test "40_invalid_limit" { replay 40_invalid_limit; }
@test "41_worker_inbox" { replay 41_worker_inbox; }
@test "42_worker_get_offer" { replay 42_worker_get_offer; }
@test "43_worker_accept" { replay 43_worker_accept; }
@test "44_worker_get_accepted" { replay 44_worker_get_accepted; }
@test "45_accept_twice" { replay 45_accept_twice; }
@test "46_event_contact_made" { replay 46_event_contact_made; }
@test "47_worker_get_in_progress" { replay 47_worker_get_in_progress; }
@test "48_hold" { replay 48_hold; }
@test "49_resume" { replay 49_resume; }
@test "50_complete" { replay 50_complete; }
@test "51_complete_twice" { replay 51_complete_twice; }
@test "52_legal_decline" { replay 52_legal_decline; }
@test "53_declined_leaves_scope" { replay 53_declined_leaves_scope; }
@test "54_supervisor_sees_unassigned" { replay 54_supervisor_sees_unassigned; }
@test "55_create_second_legal_worker" { replay 55_create_second_legal_worker; }
@test "56_supervisor_reassign" { replay 56_supervisor_reassign; }
@test "57_office_sees_progress" { replay 57_office_sees_progress; }
@test "58_accept_dup" { replay 58_accept_dup; }
@test "59_event_contact_made_dup" { replay 59_event_contact_made_dup; }
@test "60_fail" { replay 60_fail; }
@test "61_office_report_back" { replay 61_office_report_back; }
@test "62_withdraw" { replay 62_withdraw; }
@test "63_withdraw_twice" { replay 63_withdraw_twice; }
@test "64_nesting_too_deep" { replay 64_nesting_too_deep; }
@test "65_unknown_query_parameter" { replay 65_unknown_query_parameter; }
@test "66_supervisor_get_assignment" { replay 66_supervisor_get_assignment; }
@test "67_office_may_not_list_assignments" { replay 67_office_may_not_list_assignments; }
@test "68_worker_on_leave" { replay 68_worker_on_leave; }
@test "69_break_glass_programme" { replay 69_break_glass_programme; }
@test "70_other_workers_assignment" { replay 70_other_workers_assignment; }
@test "71_other_offices_referral" { replay 71_other_offices_referral; }
@test "72_worker_may_not_list_referrals" { replay 72_worker_may_not_list_referrals; }
@test "73_admin_never_sees_client_data" { replay 73_admin_never_sees_client_data; }
@test "74_no_credentials" { replay 74_no_credentials; }
@test "75_token_in_query" { replay 75_token_in_query; }
@test "76_unknown_path" { replay 76_unknown_path; }
@test "77_method_not_allowed" { replay 77_method_not_allowed; }
@test "78_not_my_role_to_reassign" { replay 78_not_my_role_to_reassign; }
@test "79_break_glass_list" { replay 79_break_glass_list; }
@test "80_supervisor_deadlines" { replay 80_supervisor_deadlines; }
@test "81_follow_up_report" { replay 81_follow_up_report; }
@test "82_follow_up_report_csv" { replay 82_follow_up_report_csv; }
@test "83_audit" { replay 83_audit; }
@test "84_metrics_admin" { replay 84_metrics_admin; }
@test "85_token_list" { replay 85_token_list; }
@test "86_webhook_internal_refused" { replay 86_webhook_internal_refused; }
@test "87_submit_report_back" { replay 87_submit_report_back; }
@test "88_consent_revoke_report_back" { replay 88_consent_revoke_report_back; }
@test "89_consent_revoke_services" { replay 89_consent_revoke_services; }
@test "90_consent_revoke_unknown_scope" { replay 90_consent_revoke_unknown_scope; }
@test "91_consent_revoke_future" { replay 91_consent_revoke_future; }
@test "92_consent_revoke_other_office" { replay 92_consent_revoke_other_office; }
@test "93_break_glass_not_for_workers" { replay 93_break_glass_not_for_workers; }
@test "94_get_retention_policy" { replay 94_get_retention_policy; }
@test "95_put_retention_policy" { replay 95_put_retention_policy; }
@test "96_subject_access" { replay 96_subject_access; }
@test "97_subject_access_nothing_held" { replay 97_subject_access_nothing_held; }
@test "98_subject_access_not_for_organisations" { replay 98_subject_access_not_for_organisations; }
@test "99_break_glass_not_needed" { replay 99_break_glass_not_needed; }

@test "no client data from the examples reached the daemon's log" {
	# The UIC, phone and note of the examples must never be logged.
	local s
	for s in AB0312M85 ab0312m85 996555123456 'free text for the worker' 'drop-in centre' \
		'switched off'; do
		if grep -qiF -- "$s" "$REFD_LOG"; then
			echo "client data '$s' found in the daemon log" >&2
			return 1
		fi
	done
}

@test "after every example the daemon stops cleanly (exit 0, no sanitizer report)" {
	refd_daemon_stop main >/dev/null
}
