#!/usr/bin/env bash
# tests/bench/matching.sh - matching cost against the network's size:
# submission latency, unloaded (one connection), with 100 workers and with
# 100,000 workers across the nine regions and both kinds, and the plan of the
# candidate query at 100,000.
#
#   bash tests/bench/matching.sh BUILD        (called by tests/bench/run.sh)
#
# The workers are inserted set-based as superuser (the API would take minutes
# for 100,000); submissions go through the daemon over TLS (wrk, one
# connection, keep-alive, a fresh Idempotency-Key/UIC each, the harm-reduction
# need only, region bishkek). Goal: p50 at 100,000 <= 1.2x p50 at 100.
# The plan comes from auto_explain (nested statements) on one submission made
# straight into the SQL function as the runtime role would.
#
# Knobs: BENCH_DURATION (10s), BENCH_MATCH_SMALL (100), BENCH_MATCH_LARGE (100000).
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
DURATION=${BENCH_DURATION:-10s}
export BENCH_DURATION=$DURATION
SMALL=${BENCH_MATCH_SMALL:-100}
LARGE=${BENCH_MATCH_LARGE:-100000}
POOL=${BENCH_POOL_SIZE:-$(sed -n 's/^pool_size = //p' deploy/demo.sh)}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench matching: $*" >&2
	exit 1
}


echo "== matching: submission latency with $SMALL and with $LARGE workers (wrk, 1 connection, $DURATION each)"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_config_set "$REFD_CONF" database pool_size "$POOL"
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"

admin=$(refd_mint_admin_token bench) || fail "no admin token"
org=$(bench_api "$admin" POST /v1/organisations '{"name":"matching bench org"}' | jq -er .id) || fail "seed org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"matching bench office","region":"bishkek"}' | jq -er .id) ||
	fail "seed office"
otoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"office\",\"subject_id\":\"$office\",
	\"expires_at\":\"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)\"}" | jq -er .token) || fail "office token"

# add_workers FROM TO: workers FROM..TO, round-robin over 9 regions x 2 kinds,
# capacity 1000 (nobody fills up during the run), loads spread 0..99.
add_workers() {
	refd_psql -v org="$org" -v lo="$1" -v hi="$2" >/dev/null <<'SQL'
INSERT INTO workers (organisation_id, kind, handle, regions, languages, capacity, open_count)
SELECT :'org', (ARRAY['harm_reduction', 'legal_support'])[1 + i % 2], 'mb-' || i,
       ARRAY[(ARRAY['bishkek', 'osh-city', 'chui', 'osh', 'jalal-abad', 'batken', 'talas',
                    'naryn', 'issyk-kul'])[1 + (i / 2) % 9]],
       '{ky,ru}', 1000, 0
FROM generate_series(:lo, :hi) AS i;
ANALYZE workers, worker_match_slots;
SQL
}

lua=$REFD_TMP/submit.lua
cat >"$lua" <<'EOF'
local nonce = os.getenv("BENCH_NONCE")
local token = os.getenv("BENCH_TOKEN")
local n = 0
local body = '{"external_ref":"M-%s-%d","client":{"uic":"M%sN%d","birth_year":1985,' ..
	'"gender":"m","languages":["ky"],"region":"bishkek","contact":{"phone":"+996555%06d"}},' ..
	'"needs":["harm_reduction"],"urgency":"normal","consent":{"services":true,' ..
	'"report_back":false,"obtained_at":"2026-11-27T10:00:00Z"},"probation":{"starts_on":' ..
	'"2026-11-20","ends_on":"2027-05-20"},"note":"calls after 18:00"}'
function request()
	n = n + 1
	return wrk.format("POST", "/v1/referrals", {
		["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json",
		["Idempotency-Key"] = string.format("m-%s-%d", nonce, n) },
		string.format(body, nonce, n, nonce, n, n % 1000000))
end
EOF

measure() { # measure LABEL -> P50 P99 on stdout (ms)
	local out=$REFD_TMP/wrk-$1.out
	BENCH_NONCE=$1$(openssl rand -hex 3) BENCH_TOKEN=$otoken \
		wrk -t1 -c1 -d"$DURATION" --latency -s "$lua" "$REFD_URL/v1/referrals" >"$out" 2>&1 ||
		fail "wrk failed: $(cat "$out")"
	grep -q 'Non-2xx' "$out" && fail "non-2xx answers with $1 workers: $(grep Non-2xx "$out")"
	echo "  $1 workers: $(wrk_rps "$out") submissions/s on one connection" >&2
	echo "$(wrk_pct "$out" 50) $(wrk_pct "$out" 99)"
}

add_workers 1 "$SMALL" || fail "adding workers"
read -r s50 s99 < <(measure "$SMALL")
add_workers $((SMALL + 1)) "$LARGE" || fail "adding workers"
read -r l50 l99 < <(measure "$LARGE")
echo "  p50/p99: $s50/$s99 ms with $SMALL workers, $l50/$l99 ms with $LARGE"
in_region=$(refd_psql -At -c "SELECT count(*) FROM workers WHERE regions @> '{bishkek}' AND kind = 'harm_reduction'")
echo "  candidates in the client's region and kind at $LARGE: $in_region"

# The plan of the candidate search, as the function runs it.
echo "  candidate query plan (auto_explain, nested statements) at $LARGE workers:"
refd_psql -v office="$office" 2>&1 >/dev/null <<'SQL' | awk '
	/^NOTICE:  duration/ { if (blk ~ /FROM worker_match_slots/) printf "%s", blk; blk = "" }
	{ blk = blk $0 "\n" }
	END { if (blk ~ /FROM worker_match_slots/) printf "%s", blk }' | head -n 60 | sed 's/^/    /'
LOAD 'auto_explain';
SET auto_explain.log_min_duration = 0;
SET auto_explain.log_nested_statements = on;
SET auto_explain.log_analyze = on;
SET auto_explain.log_level = notice;
SET client_min_messages = notice;
BEGIN;
SELECT api_referral_submit(
	jsonb_build_object('role', 'office', 'id', :'office', 'programme', false), 'explain-1',
	jsonb_build_object('idempotency_key', 'explain-1', 'external_ref', 'EXPLAIN-1',
		'request_hash', encode(sha256(convert_to('x', 'UTF8')), 'hex'),
		'client', jsonb_build_object('uic_hash', encode(sha256(convert_to('explain-uic', 'UTF8')), 'hex'), 'birth_year', 1985,
			'gender', 'm', 'languages', jsonb_build_array('ky'), 'region', 'bishkek'),
		'needs', jsonb_build_array('harm_reduction'), 'urgency', 'normal',
		'consent', jsonb_build_object('services', true, 'report_back', false,
			'obtained_at', '2026-11-27T10:00:00Z')));
ROLLBACK;
SQL

bench_row "submission p50 with $LARGE workers vs $SMALL" "$l50" "$s50" ms "<=1.2" "$l50" "$l99" \
	"ratio = latency at $LARGE / at $SMALL ($in_region candidates in region and kind); one connection"
refd_daemon_stop main >/dev/null || fail "daemon did not stop cleanly"
exit 0
