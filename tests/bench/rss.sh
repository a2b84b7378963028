#!/usr/bin/env bash
# tests/bench/rss.sh - the daemon's memory under sustained traffic: RSS after
# 1,000,000 requests (goal <= 30 MB) and its growth between the second and the
# last million (goal: none, the leak check).
#
#   bash tests/bench/rss.sh BUILD        (called by tests/bench/run.sh)
#
# wrk over TLS with keep-alive in 5 s slices, alternating GET /healthz (32
# connections) and, every fifth slice, GET /v1/referrals as an office (database
# path, JSON built and freed), until BENCH_RSS_MILLIONS million requests; VmRSS
# read from /proc after each slice. New connections are made at every slice,
# so handshakes and connection teardown are in the mix too.
#
# Knobs: BENCH_RSS_MILLIONS (10), BENCH_CONNECTIONS (32), BENCH_THREADS (2).
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u -o pipefail

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
MILLIONS=${BENCH_RSS_MILLIONS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
POOL=${BENCH_POOL_SIZE:-$(sed -n 's/^pool_size = //p' deploy/demo.sh)}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench rss: $*" >&2
	exit 1
}

echo "== daemon RSS over $MILLIONS million requests (healthz, and office lists every fifth slice)"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_config_set "$REFD_CONF" database pool_size "$POOL"
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"
pid=$(cat "$REFD_TMP/daemon-main.pid") || fail "no daemon pid"
admin=$(refd_mint_admin_token bench) || fail "no admin token"
office=$(curl -sS --cacert "$REFD_CA" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
	--data-binary '{"name":"rss bench office","region":"bishkek"}' "$REFD_URL/v1/offices" | jq -er .id) ||
	fail "seed office"
otoken=$(curl -sS --cacert "$REFD_CA" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
	--data-binary "{\"role\":\"office\",\"subject_id\":\"$office\",\"expires_at\":\"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)\"}" \
	"$REFD_URL/v1/tokens" | jq -er .token) || fail "office token"
lua=$REFD_TMP/list.lua
cat >"$lua" <<'EOF'
local token = os.getenv("BENCH_TOKEN")
function request()
	return wrk.format("GET", "/v1/referrals", { ["Authorization"] = "Bearer " .. token })
end
EOF

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"; }
total=0 slice=0 rss1= rss2= start_rss=$(rss_kb)
echo "  at start: $((start_rss / 1024)) MB"
while [ "$total" -lt $((MILLIONS * 1000000)) ]; do
	slice=$((slice + 1))
	out=$REFD_TMP/slice.out
	if [ $((slice % 5)) -eq 0 ]; then
		BENCH_TOKEN=$otoken wrk -t"$THREADS" -c"$CONNS" -d5s -s "$lua" "$REFD_URL/" >"$out" 2>&1
	else
		wrk -t"$THREADS" -c"$CONNS" -d5s "$REFD_URL/healthz" >"$out" 2>&1
	fi
	n=$(awk '/requests in/ { print $1 }' "$out")
	[ -n "$n" ] || fail "wrk gave no count: $(cat "$out")"
	grep -q 'Non-2xx' "$out" && fail "non-2xx answers: $(grep Non-2xx "$out")"
	kill -0 "$pid" 2>/dev/null || fail "the daemon died"
	prev=$total
	total=$((total + n))
	now=$(rss_kb)
	[ -z "$rss1" ] && [ "$prev" -lt 1000000 ] && [ "$total" -ge 1000000 ] && rss1=$now
	[ -z "$rss2" ] && [ "$prev" -lt 2000000 ] && [ "$total" -ge 2000000 ] && rss2=$now
	printf '  %9d requests: RSS %d kB\n' "$total" "$now"
done
last=$(rss_kb)
echo "  RSS after 1M: $((rss1 / 1024)) MB; after 2M: ${rss2:+$((rss2 / 1024)) MB}; after $((total / 1000000))M: $((last / 1024)) MB"
bench_row "RSS after 1,000,000 requests" "$(awk -v k="$rss1" 'BEGIN { printf "%.1f", k / 1024 }')" "" MB \
	"<=30 MB" - - "start $((start_rss / 1024)) MB; healthz + office lists, new connections every 5 s"
[ -n "$rss2" ] && bench_row "RSS growth, 2nd to last million (${MILLIONS}M)" \
	"$(awk -v a="$rss2" -v b="$last" 'BEGIN { printf "%.1f", (b - a) / 1024 }')" "" MB "<=0 (no growth)" - - \
	"$((rss2 / 1024)) MB -> $((last / 1024)) MB"
refd_daemon_stop main >/dev/null || fail "daemon did not stop cleanly"
exit 0
