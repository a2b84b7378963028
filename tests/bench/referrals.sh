#!/usr/bin/env bash
# tests/bench/referrals.sh - referral submission rate: the daemon against the
# database function it calls.
#
#   bash tests/bench/referrals.sh BUILD        (called by tests/bench/run.sh)
#
# In one run, on one private PostgreSQL and one daemon:
# 1. wrk over TLS, keep-alive, 32 connections: POST /v1/referrals as an office,
#    each request with its own Idempotency-Key, external_ref and UIC (a wrk Lua
#    script), the brief's example body with both needs, so every request
#    creates a referral, two assignments and their offers.
# 2. pgbench with 32 clients running the same SQL function
#    (api_referral_submit) with the same argument shape the daemon sends
#    (hashed UIC, sealed contact and note of realistic sizes), one statement
#    per transaction like the daemon.
# 3. pgbench's one-row INSERT per transaction on the same cluster: the
#    database's own commit limit, the baseline of the table's row (goal:
#    submissions >= 0.15x of it, p99 <= 3x pgbench's p99).
# Prints the rates and the ratios.
#
# Knobs: BENCH_DURATION (10s), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_POOL_SIZE (daemon's database pool; default: what make demo configures),
# BENCH_PROFILE=1 (top statements, functions and daemon symbols: tests/bench/README).
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
DURATION=${BENCH_DURATION:-10s}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
# The pool make demo configures (a newcomer measures that).
POOL=${BENCH_POOL_SIZE:-$(sed -n "s/^pool_size = //p" deploy/demo.sh)}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench referrals: $*" >&2
	exit 1
}


echo "== POST /v1/referrals over TLS (wrk, $CONNS connections, keep-alive, $DURATION)" \
	"vs pgbench (api_referral_submit, $CONNS clients, $DURATION)"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_config_set "$REFD_CONF" database pool_size "$POOL"
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"

# ---- seed: one office, 2 x 50 workers with room for every submission (50k offers per kind)
admin=$(refd_mint_admin_token bench) || fail "no admin token"
org=$(bench_api "$admin" POST /v1/organisations '{"name":"bench org"}' | jq -er .id) || fail "seed org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"bench office","region":"bishkek"}' | jq -er .id) ||
	fail "seed office"
for i in $(seq 1 50); do
	for kind in harm_reduction legal_support; do
		bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"$kind\",
			\"handle\":\"bench-$kind-$i\",\"regions\":[\"bishkek\",\"chui\"],\"languages\":[\"ky\",\"ru\"],
			\"capacity\":1000}" >/dev/null || fail "seed worker"
	done
done
otoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"office\",\"subject_id\":\"$office\",
	\"expires_at\":\"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)\"}" | jq -er .token) || fail "seed token"

# ---- 0. the database's own commit limit ------------------------------------
bench_commit_limit "$CONNS" || fail "pgbench commit limit failed"

# ---- 1. the daemon under wrk ----------------------------------------------
lua=$REFD_TMP/submit.lua
cat >"$lua" <<'EOF'
-- Each request: a fresh Idempotency-Key, external_ref, UIC and phone.
local nonce = os.getenv("BENCH_NONCE")
local token = os.getenv("BENCH_TOKEN")
local threads = 0
local n = 0

function setup(thread)
	threads = threads + 1
	thread:set("tid", threads)
end

local body = '{"external_ref":"W-%s-%d-%d","client":{"uic":"W%sT%dN%d","birth_year":1985,' ..
	'"gender":"m","languages":["ky","ru"],"region":"bishkek","contact":{"phone":"+996%09d"}},' ..
	'"needs":["harm_reduction","legal_support"],"urgency":"normal","consent":{"services":true,' ..
	'"report_back":false,"obtained_at":"2026-11-27T10:00:00Z"},"probation":{"starts_on":' ..
	'"2026-11-20","ends_on":"2027-05-20"},"note":"prefers calls after 18:00, ask for the nurse"}'

function request()
	n = n + 1
	local headers = {
		["Authorization"] = "Bearer " .. token,
		["Content-Type"] = "application/json",
		["Idempotency-Key"] = string.format("w-%s-%d-%d", nonce, tid, n),
	}
	return wrk.format("POST", "/v1/referrals", headers,
		string.format(body, nonce, tid, n, nonce, tid, n, (tid * 100000000 + n) % 1000000000))
end
EOF
wrk_out=$REFD_TMP/wrk.out
bench_profile_setup || fail "profiling setup failed"
bench_profile_start
BENCH_NONCE=$(openssl rand -hex 4) BENCH_TOKEN=$otoken \
	wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$lua" "$REFD_URL/v1/referrals" >"$wrk_out" 2>&1 ||
	fail "wrk failed: $(cat "$wrk_out")"
sed 's/^/  wrk: /' "$wrk_out"
bench_profile_report
wrk_rps=$(awk '/^Requests\/sec:/ { print $2 }' "$wrk_out")
wrk_bad=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$wrk_out")
# The daemon seals external_ref (only its keyed hash is clear): before
# pgbench runs, every referral is one of wrk's.
made=$(refd_psql -At -c "SELECT count(*) FROM referrals")

# ---- 2. the same function under pgbench -----------------------------------
contact=k1:$(openssl rand -base64 54 | tr -d '\n')
note=k1:$(openssl rand -base64 72 | tr -d '\n')
static=$(jq -nc --arg c "$contact" --arg n "$note" '{
	client: {birth_year: 1985, gender: "m", languages: ["ky", "ru"], region: "bishkek",
		contact_sealed: $c},
	needs: ["harm_reduction", "legal_support"], urgency: "normal",
	consent: {services: true, report_back: false, obtained_at: "2026-11-27T10:00:00Z"},
	probation: {starts_on: "2026-11-20", ends_on: "2027-05-20"}, note_sealed: $n}')
who=$(jq -nc --arg o "$office" '{role: "office", id: $o, programme: false}')
pgb=$REFD_TMP/submit.pgbench
# pgbench substitutes :client_id and :n textually; the JSON constants are
# dollar-quoted so their own characters need no escaping.
cat >"$pgb" <<EOF
\\set n random(1, 2000000000)
SELECT api_referral_submit(\$w\$$who\$w\$::jsonb, md5(random()::text),
  jsonb_set(\$s\$$static\$s\$::jsonb, '{client,uic_hash}',
            to_jsonb(encode(sha256(convert_to('P' || :client_id || ':' || :n || random(), 'UTF8')), 'hex')))
  || jsonb_build_object(
       'idempotency_key', 'p-' || :client_id || '-' || :n || '-' || md5(random()::text),
       'external_ref', 'P-' || :client_id || '-' || :n || '-' || substr(md5(random()::text), 1, 8),
       'request_hash', encode(sha256(convert_to(random()::text, 'UTF8')), 'hex')));
EOF
pg_out=$REFD_TMP/pgbench.out
waits=$REFD_TMP/waits
# What the 32 sessions wait on while pgbench runs (sampled every 0.2 s): shows
# whether the function is bound by CPU, WAL flushes or a lock everybody needs.
(
	end=$((SECONDS + ${DURATION%s}))
	while [ "$SECONDS" -lt "$end" ]; do
		refd_psql -At -c "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU')
			FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'
			AND pid <> pg_backend_pid()" 2>/dev/null
		# Row locks waited for: the table of the row the holder is blocking on.
		refd_psql -At -c "SELECT 'blocked-on-table:' || coalesce(h.relation::regclass::text, '?')
			FROM pg_locks w JOIN pg_locks h ON h.granted AND h.locktype = 'tuple'
			AND h.database = w.database AND h.relation IS NOT NULL AND h.pid <> w.pid
			WHERE NOT w.granted AND w.locktype IN ('tuple', 'transactionid')
			GROUP BY w.pid, h.relation" 2>/dev/null
		sleep 0.2
	done >"$waits"
) &
sampler=$!
PGOPTIONS='-c client_min_messages=warning' \
	pgbench -n -h 127.0.0.1 -p "$REFD_PGPORT" -U "$REFD_DB_USER" -c "$CONNS" -j "$THREADS" \
	-T "${DURATION%s}" -f "$pgb" "$REFD_DB" >"$pg_out" 2>&1 || fail "pgbench failed: $(tail -n 5 "$pg_out")"
wait "$sampler"
sed -n '/^number of transactions actually processed/p; /^number of failed/p; /^latency average/p; /^tps/p' \
	"$pg_out" | sed 's/^/  pgbench: /'
pg_tps=$(awk '/^tps = / { print $3 }' "$pg_out")
pg_made=$(refd_psql -At -c "SELECT count(*) FROM referrals WHERE external_ref LIKE 'P-%'")
pg_offered=$(refd_psql -At -c "SELECT count(*) FROM assignments a JOIN referrals r ON r.id = a.referral_id
	WHERE r.external_ref LIKE 'P-%' AND a.status = 'offered'")

echo "  pgbench sessions' wait events (share of samples):"
grep -v '^blocked-on-table:' "$waits" | sort | uniq -c | sort -rn | head -n 5 |
	awk -v n="$(grep -vc '^blocked-on-table:' "$waits")" '{ printf "    %5.1f%%  %s\n", 100 * $1 / (n ? n : 1), $2 }'
echo "  row locks waited on, by the holder's tuple-lock table (samples):"
grep '^blocked-on-table:' "$waits" | sort | uniq -c | sort -rn | head -n 3 | sed 's/blocked-on-table://; s/^/    /'
echo "  daemon:  ${wrk_rps:-?} referrals/s over TLS (non-2xx: ${wrk_bad:-0}; $made referrals created)"
echo "  pgbench: ${pg_tps:-?} referrals/s straight into api_referral_submit ($pg_made created, $pg_offered offers)"
awk -v a="${wrk_rps:-0}" -v b="${pg_tps:-0}" \
	'BEGIN { if (b > 0) printf "  ratio daemon/pgbench: %.2f\n", a / b; else print "  ratio: n/a" }'
[ "${wrk_bad:-0}" = 0 ] || fail "the daemon answered $wrk_bad requests with non-2xx"
bench_row "POST /v1/referrals (2 needs, matched)" "${wrk_rps:-}" "$COMMIT_TPS" req/s 0.15 \
	"$(wrk_pct "$wrk_out" 50)" "$(wrk_pct "$wrk_out" 99)" \
	"vs one-row commits; p99 goal <= 3x pgbench's $COMMIT_P99 ms; api_referral_submit under pgbench: ${pg_tps:-?}/s"
