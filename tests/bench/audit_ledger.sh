#!/usr/bin/env bash
# tests/bench/audit_ledger.sh - the audit ledger v2: sealing 1,000,000
# records, --verify-audit over them, the sealing lag under 200 concurrent
# submissions, and submissions/s and audited reads/s before and after v2.
#
#   bash tests/bench/audit_ledger.sh BUILD     (called by tests/bench/run.sh)
#
# 1. One private PostgreSQL and one daemon: BENCH_LEDGER_RECORDS (1,000,000)
#    records generated in SQL (INSERT ... SELECT generate_series, one
#    transaction, stamped unsealed by the append trigger), then the daemon's
#    sealer chains them: time from commit until the last is sealed. Then
#    `referrald --verify-audit` over the whole chain, timed.
# 2. 200 submissions started at once (curl, one connection each); the
#    sealing lag of their audit records: sealed_at - at (at is stamped by the
#    request's last statement, just before its commit), p50 and p99.
# 3. Before and after: tests/bench/referrals.sh and tests/bench/reads.sh (each
#    beside pgbench's one-row commits on its own cluster) run with this build
#    and with the daemon of BENCH_LEDGER_BEFORE (default e4f7de6, main just
#    before ledger v2, built here in a temporary git worktree; both at the
#    same BENCH_POOL_SIZE). Skipped with
#    BENCH_LEDGER_BEFORE=none.
# Prints figures only (and rows for the results table); fails when setup
# fails, the chain is not reported intact or a submission is refused.
#
# Knobs: BENCH_LEDGER_RECORDS (1000000), BENCH_LEDGER_BEFORE (e4f7de6 | none).
# Owns: its own cluster, daemon and worktree; removes them.
# Must never: use fixed ports, or print tokens.
set -u

cd "$(dirname "$0")/../.." || exit 2
ROOT=$(pwd)
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
export BUILD
RECORDS=${BENCH_LEDGER_RECORDS:-1000000}
# What tests/bench/run.sh exports, for a run on its own.
export BENCH_DURATION=${BENCH_DURATION:-10s} BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-32} \
	BENCH_THREADS=${BENCH_THREADS:-2}
BEFORE=${BENCH_LEDGER_BEFORE:-e4f7de6}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

REFD_PGDATA=${REFD_PGDATA:-}
WT=
cleanup() {
	refd_teardown_file
	if [ -n "$WT" ]; then
		git -C "$ROOT" worktree remove --force "$WT" >/dev/null 2>&1 || rm -rf "$WT"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench audit_ledger: $*" >&2
	exit 1
}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "== audit ledger v2: sealing and verifying $RECORDS records, sealing lag, before/after"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"

# ---- 1. a million records sealed, then verified ---------------------------
t0=$(now)
refd_psql -c "INSERT INTO audit_log (actor_role, actor_id, credential_id, action, object_type,
                                     object_id, outcome, request_id)
              SELECT (ARRAY['office', 'worker', 'supervisor', 'admin'])[1 + i % 4],
                     md5('actor' || (i % 977))::uuid::text, md5('cred' || (i % 977))::uuid::text,
                     (ARRAY['referral.submit', 'assignment.accept', 'assignment.event',
                            'read_client_data'])[1 + i % 4],
                     'referral', md5('obj' || i)::uuid::text,
                     CASE WHEN i % 50 = 0 THEN 'denied' ELSE 'ok' END,
                     'bench-' || lpad(i::text, 10, '0')
              FROM generate_series(1, $RECORDS) i" >/dev/null || fail "inserting records failed"
t1=$(now)
for _ in $(seq 1 3000); do
	left=$(refd_psql -At -c "SELECT count(*) FROM audit_log WHERE seq IS NULL")
	[ "$left" = 0 ] && break
	sleep 0.2
done
t2=$(now)
[ "$left" = 0 ] || fail "$left records still unsealed after 10 minutes"
count=$(refd_psql -At -c 'SELECT count(*) FROM audit_log')
seal_s=$(secs "$t1" "$t2")
echo "  appended $RECORDS records in $(secs "$t0" "$t1") s; sealed by the daemon's sealer in" \
	"$seal_s s ($(awk -v n="$RECORDS" -v s="$seal_s" 'BEGIN { printf "%.0f", n / s }') records/s)"
refd_psql -c 'VACUUM ANALYZE audit_log' >/dev/null || true
out=$REFD_TMP/verify.out
t0=$(now)
"$REFD_BIN" -c "$REFD_CONF" --verify-audit >"$out" 2>"$REFD_TMP/verify.err"
rc=$?
t1=$(now)
sed 's/^/  referrald: /' "$out"
[ "$rc" = 0 ] && grep -q "intact: $count records" "$out" || fail "--verify-audit: exit $rc"
vr=$(awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
echo "  verify-audit: $count records in $(secs "$t0" "$t1") s wall clock = $vr records/s"
bench_row "audit: seal $RECORDS records" \
	"$(awk -v n="$RECORDS" -v s="$seal_s" 'BEGIN { printf "%.0f", n / s }')" - "records/s" - - - \
	"the daemon's sealer, [audit] seal_batch 5000"
bench_row "audit: --verify-audit over $count records" "$vr" - "records/s" - - - \
	"$(secs "$t0" "$t1") s, process start to exit"

# ---- 2. sealing lag under 200 concurrent submissions ------------------------
admin=$(refd_mint_admin_token bench) || fail "no admin token"
org=$(bench_api "$admin" POST /v1/organisations '{"name":"lag org"}' | jq -er .id) || fail "seed org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"lag office","region":"bishkek"}' | jq -er .id) || fail "seed office"
bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"harm_reduction\",\"handle\":\"lag-w\",
	\"regions\":[\"bishkek\"],\"languages\":[\"ky\"],\"capacity\":1000}" >/dev/null || fail "seed worker"
otoken=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"office\",\"subject_id\":\"$office\",
	\"expires_at\":\"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)\"}" | jq -er .token) || fail "seed token"
: >"$REFD_TMP/codes"
pids=()
t0=$(now)
for i in $(seq 1 200); do
	body="{\"external_ref\":\"LAG-$i\",\"client\":{\"uic\":\"LAG$i$RANDOM\",\"birth_year\":1985,
		\"gender\":\"m\",\"languages\":[\"ky\"],\"region\":\"bishkek\",\"contact\":{\"phone\":\"+996555$(printf '%06d' "$i")\"}},
		\"needs\":[\"harm_reduction\"],\"urgency\":\"normal\",\"consent\":{\"services\":true,
		\"report_back\":false,\"obtained_at\":\"2026-11-27T10:00:00Z\"}}"
	curl -s -o /dev/null -w '%{http_code}\n' --cacert "$REFD_CA" --max-time 60 \
		-H "Authorization: Bearer $otoken" -H 'Content-Type: application/json' \
		-H "Idempotency-Key: lag-$i-$RANDOM" --data-binary "$body" "$REFD_URL/v1/referrals" \
		>>"$REFD_TMP/codes" &
	pids+=($!)
done
# Only the submissions: the daemon is a background job of this shell too.
wait "${pids[@]}"
t1=$(now)
[ "$(grep -c '^201$' "$REFD_TMP/codes")" = 200 ] || fail "not every submission was accepted"
for _ in $(seq 1 300); do
	[ "$(refd_psql -At -c "SELECT count(*) FROM audit_log WHERE seq IS NULL")" = 0 ] && break
	sleep 0.1
done
read -r p50 p99 < <(refd_psql -At -F ' ' -c "SELECT
	round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY sealed_at - at))::numeric, 1),
	round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY sealed_at - at))::numeric, 1)
	FROM audit_log WHERE action = 'referral.submit' AND request_id IS NOT NULL
	  AND object_id IN (SELECT id::text FROM referrals WHERE office_id = '$office')")
echo "  200 concurrent submissions in $(secs "$t0" "$t1") s; sealing lag (record's commit to" \
	"sealed) p50 $p50 ms, p99 $p99 ms ([audit] seal_interval 100ms)"
bench_row "audit: sealing lag, 200 concurrent submissions" - - "ms" - "$p50" "$p99" \
	"commit to sealed; seal_interval 100ms"
refd_teardown_file
REFD_PGDATA=

# ---- 3. before and after ------------------------------------------------------
[ "$BEFORE" = none ] && exit 0
WT=$(mktemp -d "${TMPDIR:-/tmp}/refd-before.XXXXXX") && rmdir "$WT" || fail "no temp dir"
git -C "$ROOT" worktree add --detach "$WT" "$BEFORE" >/dev/null 2>&1 ||
	fail "cannot check out $BEFORE (set BENCH_LEDGER_BEFORE=none to skip)"
make -C "$WT" --no-print-directory -j2 BUILD="$WT/build" "$WT/build/referrald" >"$WT.make.log" 2>&1 ||
	fail "building $BEFORE failed (see $WT.make.log)"
rm -f "$WT.make.log"
for which in before after; do
	for s in referrals reads; do
		echo "  -- $which ledger v2 ($([ $which = before ] && echo "$BEFORE" || echo this build)): $s"
		if [ $which = before ]; then
			# The older daemon knows no [audit] section: its config goes without.
			REFD_BIN=$WT/build/referrald REFD_CONF_NO_AUDIT=1 BENCH_ROWS=/dev/null \
				bash tests/bench/$s.sh "$WT/build" 2>&1 | sed 's/^/    /'
		else
			BENCH_ROWS=/dev/null bash tests/bench/$s.sh "$BUILD" 2>&1 | sed 's/^/    /'
		fi
	done
done
exit 0
