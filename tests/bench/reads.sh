#!/usr/bin/env bash
# tests/bench/reads.sh - audited reads of client data: GET /v1/assignments/{id}
# as the worker holding it (decrypts the contact and note, writes an audit
# record), against the database's own one-row commit limit in the same run.
#
#   bash tests/bench/reads.sh BUILD        (called by tests/bench/run.sh)
#
# Seeds BENCH_READS_N accepted assignments of one worker through the API, then
# wrk over TLS with keep-alive reads them in random order. Goal: >= 0.40x the
# commit limit (one audit record is one commit).
#
# Knobs: BENCH_DURATION (10s), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_POOL_SIZE (default: what make demo configures), BENCH_READS_N (200),
# BENCH_PROFILE=1 (top statements, functions and daemon symbols: tests/bench/README).
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
DURATION=${BENCH_DURATION:-10s}
export BENCH_DURATION=$DURATION
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
POOL=${BENCH_POOL_SIZE:-$(sed -n 's/^pool_size = //p' deploy/demo.sh)}
N=${BENCH_READS_N:-200}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench reads: $*" >&2
	exit 1
}


echo "== GET /v1/assignments/{id} as its worker (decrypt + audit), wrk $CONNS connections, $DURATION, pool $POOL"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_config_set "$REFD_CONF" database pool_size "$POOL"
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"

admin=$(refd_mint_admin_token bench) || fail "no admin token"
exp=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
org=$(bench_api "$admin" POST /v1/organisations '{"name":"reads bench org"}' | jq -er .id) || fail "seed org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"reads bench office","region":"bishkek"}' | jq -er .id) ||
	fail "seed office"
worker=$(bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"harm_reduction\",
	\"handle\":\"reads-w\",\"regions\":[\"bishkek\"],\"languages\":[\"ky\"],\"capacity\":$((N + 10))}" |
	jq -er .id) || fail "seed worker"
otoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"office\",\"subject_id\":\"$office\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "office token"
wtoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"worker\",\"subject_id\":\"$worker\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "worker token"
ids=$REFD_TMP/ids
: >"$ids"
for i in $(seq 1 "$N"); do
	body="{\"external_ref\":\"R-$i\",\"client\":{\"uic\":\"RB$(printf %05d "$i")\",\"birth_year\":1985,\"gender\":\"f\",
		\"languages\":[\"ky\"],\"region\":\"bishkek\",\"contact\":{\"phone\":\"+99655510$(printf %04d "$i")\"}},
		\"needs\":[\"harm_reduction\"],\"urgency\":\"normal\",\"consent\":{\"services\":true,\"report_back\":false,
		\"obtained_at\":\"2026-11-27T10:00:00Z\"},\"probation\":{\"starts_on\":\"2026-11-20\",\"ends_on\":\"2027-05-20\"},\"note\":\"calls after 18:00\"}"
	a=$(bench_api "$otoken" POST /v1/referrals "$body" -H "Idempotency-Key: reads-$i" | jq -er '.assignments[0].id') ||
		fail "submit $i"
	bench_api "$wtoken" POST "/v1/assignments/$a/accept" '' >/dev/null || fail "accept $i"
	echo "$a" >>"$ids"
done
# A read shows the contact: the path under test decrypts.
bench_api "$wtoken" GET "/v1/assignments/$(head -n 1 "$ids")" '' | jq -e '.client.contact.phone' >/dev/null ||
	fail "the worker's read shows no contact"

bench_commit_limit "$CONNS" || fail "pgbench commit limit failed"

lua=$REFD_TMP/read.lua
{
	echo 'local ids = {'
	sed 's/.*/"&",/' "$ids"
	echo '}'
	cat <<'EOF'
local token = os.getenv("BENCH_TOKEN")
math.randomseed(os.time())
function request()
	return wrk.format("GET", "/v1/assignments/" .. ids[math.random(#ids)],
		{ ["Authorization"] = "Bearer " .. token })
end
EOF
} >"$lua"
bench_profile_setup || fail "profiling setup failed"
bench_profile_start
before=$(refd_psql -At -c "SELECT count(*) FROM audit_log")
out=$REFD_TMP/wrk.out
BENCH_TOKEN=$wtoken wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$lua" "$REFD_URL/" >"$out" 2>&1 ||
	fail "wrk failed: $(cat "$out")"
sed 's/^/  wrk: /' "$out"
bench_profile_report
after=$(refd_psql -At -c "SELECT count(*) FROM audit_log")
rps=$(wrk_rps "$out")
bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
echo "  daemon: ${rps:-?} audited reads/s (non-2xx: ${bad:-0}; $((after - before)) audit records written)"
bench_row "GET /v1/assignments/{id} (decrypt + audit)" "${rps:-}" "$COMMIT_TPS" req/s 0.40 \
	"$(wrk_pct "$out" 50)" "$(wrk_pct "$out" 99)" "vs one-row commits; pool $POOL; non-2xx ${bad:-0}"
[ "${bad:-0}" = 0 ] || fail "the daemon answered $bad reads with non-2xx"
