# shellcheck shell=bash
# tests/lib/client.bash - the one dialect in which tests talk to the daemon
# and to the database (tests/lib/common.bash loads it, so every .bats file has
# it).
#
# Owns: one request helper (call: curl as a principal; the answer in
# HTTP_STATUS, HTTP_BODY, HTTP_HEADERS), the assertions on that answer, jq on
# a body, and the two ways into the test database (sql as the superuser,
# sql_app as the daemon's role, sql_api to call an api_ function as the daemon
# does). Below them, the old dialects' names as thin aliases, for tests not
# moved yet: refd_req/REFD_STATUS, q/qs/api; remove each once nothing uses it.
# Must never: start or stop anything (common.bash does), print tokens.
#
#   call TOKEN METHOD PATH|URL [BODY] [curl args...]   TOKEN "" = none
#   as TOKEN ...; anon ...; header NAME; jget FILTER [JSON]
#   expect_status CODE...; expect_json FILTER VALUE; expect_jq FILTER
#   sql QUERY; sql_app QUERY; sql_api NAME WHO ARGS
#
# Call call directly, not inside $(...) or `run`, so the variables stay set.

_client_n=0
# call TOKEN METHOD PATH|URL [BODY] [curl args...]: PATH is on $REFD_URL (the
# API listener; $API_URL when set); a full https:// URL is used as it is. A
# BODY is sent as application/json. Sets HTTP_STATUS (000 when the transport
# failed), HTTP_BODY, HTTP_HEADERS (a file), HTTP_REQID, HTTP_CURL_RC and
# HTTP_CURL_ERR. Non-2xx bodies are kept in $API_ERRORS when it is set (the
# leak check of api.bash reads them). Always returns 0: assert afterwards.
call() {
	local token=$1 method=$2 url=$3 data=${4-} dir=${API_TMP:-${REFD_TMP:?}} bodyf hdrf args
	shift 3
	[ $# -gt 0 ] && shift
	_client_n=$((_client_n + 1))
	bodyf=$dir/body.$BASHPID.$_client_n
	hdrf=$dir/hdr.$BASHPID.$_client_n
	case $url in https://*) ;; *) url=${API_URL:-$REFD_URL}$url ;; esac
	args=(-sS --http1.1 --cacert "${API_CA:-$REFD_CA}" --max-time 30 -X "$method" -o "$bodyf"
		-D "$hdrf" -w '%{http_code}')
	[ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
	if [ -n "$data" ]; then
		printf '%s' "$data" >"$bodyf.req"
		args+=(-H 'Content-Type: application/json' --data-binary "@$bodyf.req")
	fi
	# "|| ..." keeps a failed transfer from ending the test under set -e.
	HTTP_CURL_RC=0
	HTTP_STATUS=$(curl "${args[@]}" "$@" "$url" 2>"$bodyf.err") || HTTP_CURL_RC=$?
	[ -n "$HTTP_STATUS" ] || HTTP_STATUS=000
	# Builtins only from here: the suite makes thousands of calls.
	HTTP_BODY= HTTP_CURL_ERR=
	IFS= read -r -d '' HTTP_BODY <"$bodyf" 2>/dev/null || true
	IFS= read -r -d '' HTTP_CURL_ERR <"$bodyf.err" || true
	[ -z "$HTTP_CURL_ERR" ] || printf '%s' "$HTTP_CURL_ERR" >&2
	[ -f "$hdrf" ] || : >"$hdrf"
	HTTP_HEADERS=$hdrf
	HTTP_REQID=$(header X-Request-Id)
	case $HTTP_STATUS in
	2??) ;;
	*) [ -z "${API_ERRORS:-}" ] || printf '%s\n' "$HTTP_BODY" >>"$API_ERRORS" ;;
	esac
	return 0
}

as() { call "$@"; }
anon() { call "" "$@"; }

# Value of a response header of the last call (case-insensitive, the last
# occurrence), CR stripped.
header() {
	local line name=${1,,} v=
	[ -f "${HTTP_HEADERS:-}" ] || return 0
	while IFS= read -r line; do
		line=${line%$'\r'}
		case ${line,,} in
		"$name":*)
			v=${line#*:}
			v=${v#"${v%%[![:space:]]*}"}
			;;
		esac
	done <"$HTTP_HEADERS"
	printf '%s' "$v"
}

_api_ctx() {
	echo "  last response: HTTP $HTTP_STATUS request-id=${HTTP_REQID:-?}" >&2
	printf '  body: %.2000s\n' "$HTTP_BODY" >&2
}

expect_status() {
	local want
	for want in "$@"; do
		[ "$HTTP_STATUS" = "$want" ] && return 0
	done
	echo "expected HTTP status $*, got $HTTP_STATUS" >&2
	_api_ctx
	return 1
}

# jget FILTER [JSON]: jq -r on the last body (or the given JSON).
jget() {
	printf '%s' "${2-$HTTP_BODY}" | jq -r "$1"
}

# expect_json FILTER VALUE: jq -r FILTER of the last body equals VALUE.
expect_json() {
	local got
	got=$(jget "$1" 2>/dev/null) || got="<jq failed>"
	if [ "$got" != "$2" ]; then
		echo "expected $1 == '$2', got '$got'" >&2
		_api_ctx
		return 1
	fi
}

# expect_jq FILTER: the filter yields true on the last body.
expect_jq() {
	if ! printf '%s' "$HTTP_BODY" | jq -e "$1" >/dev/null 2>&1; then
		echo "expected jq '$1' to hold" >&2
		_api_ctx
		return 1
	fi
}

# ---- the database ------------------------------------------------------------

# sql QUERY: as the superuser (fixtures, inspection, tampering); unaligned
# tuples only.
sql() {
	refd_psql -At -c "$1"
}

# sql_app QUERY: as the daemon's role referrald_app (its grants and row-level
# security apply).
sql_app() {
	psql -X -q -tA -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres \
		-d "$REFD_DB" -c "SET ROLE referrald_app" -c "$1"
}

# sql_api NAME WHO ARGS: api_NAME(WHO, request id, ARGS) as the daemon calls
# it; prints the whole result document {status, body, headers}.
sql_api() {
	sql_app "SELECT api_$1('$2'::jsonb, 'req-$RANDOM', \$json\$$3\$json\$::jsonb)"
}

# Principals as the daemon's auth step hands them to SQL.
who_admin() { echo '{"role":"admin","id":"00000000-0000-4000-8000-000000000001"}'; }
who_office() { echo "{\"role\":\"office\",\"id\":\"$1\"}"; }
who_worker() { echo "{\"role\":\"worker\",\"id\":\"$1\",\"org_id\":\"$2\"}"; }
who_sup() { echo "{\"role\":\"supervisor\",\"id\":\"$1\",\"org_id\":\"$2\",\"programme\":false}"; }

# ---- old dialects: thin aliases until no test uses them ----------------------

# refd_req METHOD PATH|URL [curl args...] -> REFD_STATUS, REFD_BODY, REFD_HDRS
# (header text), REFD_CURL_RC, REFD_CURL_ERR. New tests: call "" METHOD ...
refd_req() {
	local method=$1 url=$2
	shift 2
	call "" "$method" "$url" "" "$@" 2>/dev/null
	REFD_STATUS=$HTTP_STATUS
	REFD_BODY=$(printf '%s' "$HTTP_BODY")
	REFD_HDRS=$(tr -d '\r' <"$HTTP_HEADERS")
	REFD_CURL_RC=$HTTP_CURL_RC
	REFD_CURL_ERR=$(printf '%s' "$HTTP_CURL_ERR")
	return 0
}
# New tests: header NAME.
refd_hdr() { header "$1"; }
# New tests: sql_app, sql, sql_api.
q() { sql_app "$1"; }
qs() { sql "$1"; }
api() { sql_api "$@"; }

# Tests run these in child shells too (xargs -P ... bash -c): exported.
export -f refd_psql sql sql_app sql_api who_admin who_office who_worker who_sup q qs api
