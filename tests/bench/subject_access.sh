#!/usr/bin/env bash
# tests/bench/subject_access.sh - POST /v1/subject-access for a client with 50
# referrals (issue 10 §4): the whole answer (referrals, assignments, events,
# offers, deadlines, history, the audit records naming them; contact, note
# and event details opened), the request's own audit records (one per
# referral) and its access.subject_access event, one request at a time.
#
#   bash tests/bench/subject_access.sh BUILD     (called by tests/bench/run.sh)
#
# Seeds BENCH_SA_REFERRALS (50) referrals of one UIC through the API, each
# accepted by its worker with one contact_made event carrying a detail, then
# wrk with one connection (latency, not throughput: an operator asks one at a
# time) posts the request for BENCH_DURATION. Prints p50/p99; no goal.
#
# Knobs: BENCH_DURATION (10s), BENCH_SA_REFERRALS (50), BENCH_SA_CONNECTIONS (1),
# BENCH_POOL_SIZE (default: what make demo configures).
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
DURATION=${BENCH_DURATION:-10s}
export BENCH_DURATION=$DURATION
N=${BENCH_SA_REFERRALS:-50}
CONNS=${BENCH_SA_CONNECTIONS:-1}
POOL=${BENCH_POOL_SIZE:-$(sed -n 's/^pool_size = //p' deploy/demo.sh)}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench subject_access: $*" >&2
	exit 1
}


echo "== POST /v1/subject-access, one client with $N referrals, wrk $CONNS connection(s), $DURATION, pool $POOL"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_config_set "$REFD_CONF" database pool_size "$POOL"
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"

admin=$(refd_mint_admin_token bench) || fail "no admin token"
exp=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
org=$(bench_api "$admin" POST /v1/organisations '{"name":"sa bench org"}' | jq -er .id) || fail "seed org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"sa bench office","region":"bishkek"}' | jq -er .id) ||
	fail "seed office"
worker=$(bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"harm_reduction\",
	\"handle\":\"sa-w\",\"regions\":[\"bishkek\"],\"languages\":[\"ky\"],\"capacity\":$((N + 10))}" |
	jq -er .id) || fail "seed worker"
prog=$(bench_api "$admin" POST /v1/supervisors '{"scope":"programme","handle":"sa-prog"}' | jq -er .id) ||
	fail "seed programme supervisor"
otoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"office\",\"subject_id\":\"$office\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "office token"
wtoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"worker\",\"subject_id\":\"$worker\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "worker token"
ptoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"supervisor\",\"subject_id\":\"$prog\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "supervisor token"
uic=SABENCH0001
for i in $(seq 1 "$N"); do
	body="{\"external_ref\":\"SA-$i\",\"client\":{\"uic\":\"$uic\",\"birth_year\":1985,\"gender\":\"f\",
		\"languages\":[\"ky\"],\"region\":\"bishkek\",\"contact\":{\"phone\":\"+99655520$(printf %04d "$i")\"}},
		\"needs\":[\"harm_reduction\"],\"urgency\":\"normal\",\"consent\":{\"services\":true,\"report_back\":false,
		\"obtained_at\":\"2026-11-27T10:00:00Z\"},\"note\":\"calls after 18:00\"}"
	a=$(bench_api "$otoken" POST /v1/referrals "$body" -H "Idempotency-Key: sa-$i" | jq -er '.assignments[0].id') ||
		fail "submit $i"
	bench_api "$wtoken" POST "/v1/assignments/$a/accept" '' >/dev/null || fail "accept $i"
	bench_api "$wtoken" POST "/v1/assignments/$a/events" '{"type":"contact_made","detail":"met at the clinic"}' \
		>/dev/null || fail "event $i"
done
req="{\"uic\":\"$uic\",\"reason\":\"the client asked for a copy of their records\"}"
one=$REFD_TMP/one.json
t0=$(date +%s%N)
bench_api "$ptoken" POST /v1/subject-access "$req" >"$one" || fail "subject access failed"
first=$(( ($(date +%s%N) - t0) / 1000000 ))
jq -e --argjson n "$N" '(.referrals | length) == $n and all(.referrals[]; .client.contact.phone != null
	and .note != null and (.assignments[0].events | length) == 1 and (.audit | length) > 0)' "$one" \
	>/dev/null || fail "the answer does not hold $N referrals with contact, note, events and audit"
size=$(wc -c <"$one")
records=$(jq '[.referrals[].audit | length] | add' "$one")
echo "  first answer: $size bytes, $N referrals, $records audit records named, $first ms" \
	"(one curl: process, TLS handshake and request)"

lua=$REFD_TMP/sa.lua
cat >"$lua" <<'EOF'
local token = os.getenv("BENCH_TOKEN")
local body = os.getenv("BENCH_BODY")
function request()
	return wrk.format("POST", "/v1/subject-access",
		{ ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }, body)
end
EOF
out=$REFD_TMP/wrk.out
BENCH_TOKEN=$ptoken BENCH_BODY=$req wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$lua" "$REFD_URL/" \
	>"$out" 2>&1 || fail "wrk failed: $(cat "$out")"
sed 's/^/  wrk: /' "$out"
rps=$(wrk_rps "$out")
bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
p50=$(wrk_pct "$out" 50)
p99=$(wrk_pct "$out" 99)
# Each answer holds the audit records naming the client's rows, and each
# request adds one per referral: the answers grow during the run.
bench_api "$ptoken" POST /v1/subject-access "$req" >"$one" || fail "subject access failed"
last=$(wc -c <"$one")
echo "  daemon: p50 ${p50:-?} ms, p99 ${p99:-?} ms, ${rps:-?} req/s (non-2xx: ${bad:-0});" \
	"the answer grew from $size to $last bytes during the run"
bench_row "POST /v1/subject-access ($N referrals)" "${rps:-}" - req/s - "$p50" "$p99" \
	"$CONNS connection(s); first ${first} ms; answer $size..$last bytes (each request adds $N audit records naming the client); non-2xx ${bad:-0}"
[ "${bad:-0}" = 0 ] || fail "the daemon answered $bad requests with non-2xx"
