# tests/lib/api.bash - HTTP helpers for the API integration tests (issue 3).
#
# Owns: calling the daemon with curl as a given principal, JSON assertions with
# jq, seeding principals through the admin API, minting the bootstrap admin
# token, psql queries against the test database, and the leak check (client
# secrets planted by a test file must never reach the daemon's log, an error
# body or a plain pg_dump).
# Must never: start or stop PostgreSQL or the daemon itself (the harness
# library, tests/lib/common.bash, owns that), print tokens, or depend on
# test order across files.
#
# Use in a .bats file:
#   load ../lib/api
#   setup_file()    { api_setup_file; }     # cluster + daemon + admin token
#   teardown_file() { api_teardown_file; }  # leak check, then stop everything
#
# A request:   as_admin POST /v1/organisations '{"name":"x"}'
#              as TOKEN GET /v1/assignments/ID
#              call TOKEN METHOD PATH [BODY] [extra curl args...]
# sets HTTP_STATUS, HTTP_BODY, HTTP_HEADERS (file) and HTTP_REQID in the
# current shell (do not call it inside $(...) when you need those).
# Assertions:  expect_status 201; expect_json .status open;
#              expect_error 400 unknown_field /client/name; jget .id
#
# Client secrets (UIC, phone, note, event detail) come from new_uic, new_phone,
# new_note, new_detail: each value is unique and is recorded so that
# api_teardown_file can prove none of them leaked (bearer tokens minted by
# mk_token and the admin token are checked the same way).

load ../lib/common

# ---- start / stop ---------------------------------------------------------

api_setup_file() {
	refd_setup_file || return 1
	export API_URL API_CA ADMIN_TOKEN API_TMP API_SECRETS API_ERRORS
	API_URL=$REFD_URL
	API_CA=$REFD_CA
	API_TMP=$(mktemp -d "${BATS_FILE_TMPDIR:-$REFD_TMP}/api.XXXXXX")
	API_SECRETS=$API_TMP/secrets
	API_ERRORS=$API_TMP/error-bodies
	: >"$API_SECRETS"
	: >"$API_ERRORS"
	ADMIN_TOKEN=$(refd_mint_admin_token "tests-$(rand_hex 4)")
	if [ -z "$ADMIN_TOKEN" ]; then
		echo "api_setup_file: could not mint an admin token" >&2
		return 1
	fi
	# Bearer tokens are secrets too: they must never reach a log or a dump.
	printf '%s\n' "$ADMIN_TOKEN" >>"$API_SECRETS"
}

api_teardown_file() {
	local rc=0
	if [ -n "${API_SECRETS:-}" ] && [ -s "$API_SECRETS" ]; then
		api_leak_check || rc=1
	fi
	# Stop the daemon here, not only in the harness's teardown (which ignores
	# the outcome): after all of this file's traffic it must exit 0 within its
	# drain time, with no sanitizer report (make asan) in its log.
	if [ -n "${REFD_TMP:-}" ] && refd_daemon_alive main; then
		refd_daemon_stop main >/dev/null || rc=1
	fi
	refd_teardown_file || rc=1
	return $rc
}

# ---- requests -------------------------------------------------------------

# call, as, anon, header: tests/lib/client.bash.
as_admin() { call "$ADMIN_TOKEN" "$@"; }
as_office() { call "$OFFICE_TOKEN" "$@"; }
as_worker() { call "$WORKER_TOKEN" "$@"; }
as_supervisor() { call "$SUPERVISOR_TOKEN" "$@"; }

# ---- assertions -----------------------------------------------------------

# expect_status, expect_json, expect_jq, jget: tests/lib/client.bash.

# expect_error STATUS CODE [POINTER]: the protocol's error shape. CODE "" skips
# the code check. POINTER matches exactly, or as a prefix followed by "/"
# (a validator may point at /needs/0 instead of /needs).
expect_error() {
	local st=$1 code=${2-} ptr=${3-} got
	expect_status "$st" || return 1
	if ! printf '%s' "$HTTP_BODY" | jq -e '.error | type == "object" and (.code | type == "string")
		and (.message | type == "string")' >/dev/null 2>&1; then
		echo "error body lacks {error:{code,message}}" >&2
		_api_ctx
		return 1
	fi
	if [ -n "$code" ]; then
		expect_json .error.code "$code" || return 1
	fi
	if [ -n "$ptr" ]; then
		got=$(jget '.error.field // ""')
		case $got in
		"$ptr" | "$ptr"/*) ;;
		*)
			echo "expected error.field '$ptr', got '$got'" >&2
			_api_ctx
			return 1
			;;
		esac
	fi
}

# The last body must not contain the given string (errors never echo input).
expect_no_echo() {
	if printf '%s' "$HTTP_BODY" | grep -qiF -- "$1"; then
		echo "response body echoes client input '$1'" >&2
		_api_ctx
		return 1
	fi
}

expect_uuid() {
	printf '%s' "$1" | grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' || {
		echo "not a uuid: '$1'" >&2
		return 1
	}
}

expect_time() {
	printf '%s' "$1" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$' || {
		echo "not an RFC 3339 UTC time: '$1'" >&2
		return 1
	}
}

# ---- unique values and client secrets -------------------------------------

# Random values from bash's SRANDOM, set into a variable (printf -v): no
# process and no subshell per value, since forking bats' shell is slow.
# rand_hex_v VAR NBYTES / rand_digits_v VAR NDIGITS
rand_hex_v() {
	local -n _out=$1
	local _n=$((${2:-6} * 2)) _s=
	while [ ${#_s} -lt "$_n" ]; do printf -v _s '%s%08x' "$_s" "$SRANDOM"; done
	_out=${_s:0:_n}
}
rand_digits_v() {
	local -n _out=$1
	local _n=${2:-7} _s=
	while [ ${#_s} -lt "$_n" ]; do printf -v _s '%s%09d' "$_s" $((SRANDOM % 1000000000)); done
	_out=${_s:0:_n}
}
rand_hex() { local h; rand_hex_v h "${1:-6}"; printf '%s' "$h"; }
rand_digits() { local d; rand_digits_v d "${1:-7}"; printf '%s' "$d"; }
new_uuid() { cat /proc/sys/kernel/random/uuid; }
new_key() { echo "idem-$(rand_hex 8)"; }
new_ref() { echo "T-$(rand_hex 6)"; }
# A region nobody else uses isolates a test's matching from the rest of the file.
new_region() { echo "r-$(rand_hex 5)"; }

# Client secrets: recorded for the leak check, then returned (the *_v forms
# set a variable instead of printing).
_secret() { printf '%s\n' "$1" >>"$API_SECRETS"; printf '%s' "$1"; }
new_uic_v() {
	local -n _u=$1
	local h
	rand_hex_v h 6
	_u=UIC${h^^}
	printf '%s\n' "$_u" >>"$API_SECRETS"
}
new_phone_v() {
	local -n _p=$1
	local d
	rand_digits_v d 9
	# E.164 with a number long enough to be unique in a log or dump.
	printf '%s\n' "$d" >>"$API_SECRETS"
	_p=+996$d
}
new_note_v() {
	local -n _t=$1
	local h
	rand_hex_v h 8
	printf 'note%s\n' "$h" >>"$API_SECRETS"
	_t="Meet at the clinic door, ask for note$h"
}
new_uic() { local v; new_uic_v v; printf '%s' "$v"; }
new_phone() { local v; new_phone_v v; printf '%s' "$v"; }
new_note() { local v; new_note_v v; printf '%s' "$v"; }
new_detail() { printf 'Called back, %s' "$(_secret "detail$(rand_hex 8)")"; }

# ---- seeding through the admin API ----------------------------------------

# Each mk_* echoes the new object's id (or fails showing the response).
_mk() {
	call "$ADMIN_TOKEN" POST "$1" "$2"
	if [ "$HTTP_STATUS" != 201 ]; then
		echo "seeding $1 failed: HTTP $HTTP_STATUS" >&2
		_api_ctx
		return 1
	fi
	jget .id
}
mk_org() { _mk /v1/organisations "$(jq -nc --arg n "${1:-org-$(rand_hex 4)}" '{name:$n}')"; }
mk_office() {
	_mk /v1/offices "$(jq -nc --arg n "${1:-office-$(rand_hex 4)}" --arg r "${2:-bishkek}" \
		'{name:$n, region:$r}')"
}
# mk_worker ORG KIND REGIONS_CSV LANGS_CSV CAPACITY [HANDLE]
mk_worker() {
	_mk /v1/workers "$(jq -nc --arg o "$1" --arg k "$2" --arg r "$3" --arg l "$4" \
		--argjson c "$5" --arg h "${6:-w-$(rand_hex 5)}" \
		'{organisation_id:$o, kind:$k, handle:$h, regions:($r|split(",")),
		  languages:($l|split(",")), capacity:$c}')"
}
mk_supervisor() {
	_mk /v1/supervisors "$(jq -nc --arg o "$1" --arg h "${2:-s-$(rand_hex 5)}" \
		'{organisation_id:$o, handle:$h}')"
}
mk_programme_supervisor() {
	_mk /v1/supervisors "$(jq -nc --arg h "${1:-p-$(rand_hex 5)}" '{scope:"programme", handle:$h}')"
}
# mk_token ROLE SUBJECT_ID [EXPIRES_AT] -> the token (shown once by the API).
mk_token() {
	local exp=${3:-$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)}
	call "$ADMIN_TOKEN" POST /v1/tokens "$(jq -nc --arg r "$1" --arg s "$2" --arg e "$exp" \
		'{role:$r, subject_id:$s, expires_at:$e}')"
	if [ "$HTTP_STATUS" != 201 ]; then
		echo "token for $1 failed: HTTP $HTTP_STATUS" >&2
		_api_ctx
		return 1
	fi
	jget .token | tee -a "$API_SECRETS"
}
# token_hash TOKEN: how the database stores it, HMAC-SHA256 under the test
# token key (tokens.token_hash).
token_hash() {
	printf '%s' "$1" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(tr -d '[:space:]' <"$REFD_KEYS/token.key")" -r |
		cut -d' ' -f1
}
# worker_with_token ORG KIND REGIONS LANGS CAP -> "ID TOKEN"
worker_with_token() {
	local id tok
	id=$(mk_worker "$@") || return 1
	tok=$(mk_token worker "$id") || return 1
	echo "$id $tok"
}

# ---- referrals ------------------------------------------------------------

# referral_json [JQ_FILTER]: the brief's example with a fresh external_ref,
# UIC, phone and note, then FILTER applied (e.g. '.client.region="osh"').
referral_json() {
	local uic phone note ref
	new_uic_v uic
	new_phone_v phone
	new_note_v note
	rand_hex_v ref 6
	jq -nc --arg ref "T-$ref" --arg uic "$uic" --arg ph "$phone" --arg note "$note" '{
		external_ref: $ref,
		client: {uic: $uic, birth_year: 1985, gender: "m", languages: ["ky", "ru"],
			region: "bishkek", contact: {phone: $ph}},
		needs: ["harm_reduction", "legal_support"],
		urgency: "normal",
		consent: {services: true, report_back: false, obtained_at: "2026-11-27T10:00:00Z"},
		probation: {starts_on: "2026-11-20", ends_on: "2027-05-20"},
		note: $note
	} | '"${1:-.}"
}

# submit TOKEN BODY [KEY]: POST /v1/referrals with an Idempotency-Key.
submit() {
	call "$1" POST /v1/referrals "$2" -H "Idempotency-Key: ${3:-$(new_key)}"
}

# assignment_for NEED: id of the assignment for NEED in the last referral body.
assignment_for() { jget "[.assignments[] | select(.need == \"$1\")][0].id"; }
# worker_for NEED / status_for NEED: the worker holding (and the status of)
# that assignment, from the database: an office's answer never names the
# worker, and shows statuses only with report-back consent (protocol v1.1).
worker_for() {
	local id
	id=$(assignment_for "$1")
	[ -n "$id" ] && [ "$id" != null ] || return 0
	sql "SELECT coalesce(worker_id::text, '') FROM assignments WHERE id = '$id'"
}
status_for() {
	local id
	id=$(assignment_for "$1")
	[ -n "$id" ] && [ "$id" != null ] || return 0
	sql "SELECT status FROM assignments WHERE id = '$id'"
}

# expect_office_view [report_back]: the last body is a referral exactly as
# an office may see it (protocol v1.1, "What an office sees"): only these
# members, never a worker or a duplicate link; assignments with id and need
# only, or with report_back their progress too (never a detail).
expect_office_view() {
	local akeys='["id","need"]'
	[ "${1-}" = report_back ] &&
		akeys='["accepted_at","contact_made_at","ended_at","id","need","outcome","status"]'
	expect_jq '(keys == ["assignments","consent","created_at","external_ref","id","needs",
		"status","urgency","withdrawn_at"])
		and (.consent | keys == ["obtained_at","report_back","report_back_revoked_at",
		"revoked_at","services"])
		and all(.assignments[]; keys == '"$akeys"')
		and ([.. | objects | select(has("worker_id") or has("duplicate_of") or has("detail")
		      or has("offer_expires_at"))] | length == 0)'
}

# ---- database -------------------------------------------------------------

# sql QUERY (the superuser), sql_app QUERY (the daemon's role): tests/lib/client.bash.

# wait_sql QUERY WANT SECS: poll until the query prints WANT (the periodic
# jobs act on their own time); fails showing the last value.
wait_sql() {
	local i got
	for i in $(seq 1 $(($3 * 10))); do
		got=$(sql "$1")
		[ "$got" = "$2" ] && return 0
		sleep 0.1
	done
	echo "after $3 s: '$1' gave '$got', wanted '$2'" >&2
	return 1
}

# The audit record of a denied request, found by the request id we saw.
audit_denied_count() {
	sql "SELECT count(*) FROM audit_log WHERE request_id = '$1' AND outcome = 'denied'"
}
expect_denied_audit() {
	local n
	n=$(audit_denied_count "$HTTP_REQID")
	if [ "${n:-0}" -lt 1 ]; then
		echo "no 'denied' audit record for request ${HTTP_REQID:-?}" >&2
		_api_ctx
		return 1
	fi
}

# ---- leak check -----------------------------------------------------------

# Every recorded secret must be absent from the daemon's log, from every error
# body this file received, and from a plain pg_dump of the database.
api_leak_check() {
	local dump f found=0
	dump=$API_TMP/dump.sql
	pg_dump -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d "$REFD_DB" >"$dump" || {
		echo "leak check: pg_dump failed" >&2
		return 1
	}
	grep -v '^$' "$API_SECRETS" >"$API_TMP/secrets.nonempty" || return 0
	for f in "$REFD_LOG" "$API_ERRORS" "$dump"; do
		if [ -f "$f" ] && grep -qiF -f "$API_TMP/secrets.nonempty" "$f"; then
			echo "LEAK: a client secret or token planted by this file appears in $(basename "$f")" >&2
			found=1
		fi
	done
	return $found
}

# ---- a base network most files share --------------------------------------

# Two organisations (A, B), two offices (1 in bishkek, 2 in osh) with tokens, a
# supervisor per organisation and a programme supervisor, all with tokens.
# Workers are created by each test in its own region (new_region) so matching
# stays predictable. Exports the ids and tokens for the tests.
api_seed_network() {
	export ORG_A ORG_B OFFICE1 OFFICE2 OFFICE_TOKEN OFFICE2_TOKEN SUP_A SUP_B PROG \
		SUP_A_TOKEN SUP_B_TOKEN PROG_TOKEN SUPERVISOR_TOKEN
	ORG_A=$(mk_org "org-a-$(rand_hex 3)") || return 1
	ORG_B=$(mk_org "org-b-$(rand_hex 3)") || return 1
	OFFICE1=$(mk_office "office-1-$(rand_hex 3)" bishkek) || return 1
	OFFICE2=$(mk_office "office-2-$(rand_hex 3)" osh) || return 1
	OFFICE_TOKEN=$(mk_token office "$OFFICE1") || return 1
	OFFICE2_TOKEN=$(mk_token office "$OFFICE2") || return 1
	SUP_A=$(mk_supervisor "$ORG_A") || return 1
	SUP_B=$(mk_supervisor "$ORG_B") || return 1
	PROG=$(mk_programme_supervisor) || return 1
	SUP_A_TOKEN=$(mk_token supervisor "$SUP_A") || return 1
	SUP_B_TOKEN=$(mk_token supervisor "$SUP_B") || return 1
	PROG_TOKEN=$(mk_token supervisor "$PROG") || return 1
	SUPERVISOR_TOKEN=$SUP_A_TOKEN
}
