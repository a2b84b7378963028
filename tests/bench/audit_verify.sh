#!/usr/bin/env bash
# tests/bench/audit_verify.sh - how fast `referrald --verify-audit` walks a
# long audit chain.
#
#   bash tests/bench/audit_verify.sh BUILD     (called by tests/bench/run.sh)
#
# On one private PostgreSQL (schema made by starting the daemon once):
# 1. insert BENCH_AUDIT_RECORDS (1,000,000) audit records as superuser with
#    INSERT ... SELECT generate_series, so every row goes through the
#    audit_chain trigger: the chain (seq, prev_hash, hash) is the real one;
#    BENCH_AUDIT_BATCH (1000) rows per statement, one transaction each. Not
#    all in one: every row updates the single chain-head row, and inside one
#    transaction each update adds a version the next row's lookup walks past,
#    so one statement grows quadratically (measured on 2 busy cores: 10,000
#    rows 3.9 s, 20,000 21.5 s, 40,000 47 s; 100,000 did not finish in 10 min)
#    while batches of 1000 run at about 8,000-12,000 rows/s;
# 2. run `referrald -c CONF --verify-audit` (the daemon is stopped: a
#    one-shot command on its own connection), time it, and print its own line
#    (records verified, seconds, records/s) and the rate measured from outside
#    (process start to exit, connection and all).
# Prints figures only; fails when setup fails or the chain is not reported
# intact.
#
# Knobs: BENCH_AUDIT_RECORDS (1000000), BENCH_AUDIT_BATCH (1000).
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
RECORDS=${BENCH_AUDIT_RECORDS:-1000000}
BATCH=${BENCH_AUDIT_BATCH:-1000}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash

# The harness reads this in teardown even when setup failed early.
REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench audit_verify: $*" >&2
	exit 1
}

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "== --verify-audit over $RECORDS audit records"
refd_setup_file || fail "no cluster/daemon"
# The daemon has created the schema; the measurement runs without it.
refd_daemon_stop main >/dev/null || fail "daemon did not stop"

# ---- 1. the chain -------------------------------------------------------
# Fields like the daemon's own records: a role, an id, an action, an object,
# a request id. seq, at, prev_hash and hash are the trigger's.
insert_sql() {
	local lo hi
	for ((lo = 1; lo <= RECORDS; lo += BATCH)); do
		hi=$((lo + BATCH - 1))
		[ "$hi" -le "$RECORDS" ] || hi=$RECORDS
		cat <<SQL
INSERT INTO audit_log (seq, at, actor_role, actor_id, action, object_type, object_id,
                       outcome, request_id, prev_hash, hash)
SELECT 0, now(), (ARRAY['office', 'worker', 'supervisor', 'admin'])[1 + i % 4],
       md5('actor' || (i % 977)::text)::uuid::text,
       (ARRAY['referral.create', 'assignment.accept', 'assignment.event', 'referral.get'])[1 + i % 4],
       'referral', md5('obj' || i::text)::uuid::text,
       CASE WHEN i % 50 = 0 THEN 'denied' ELSE 'ok' END,
       'bench-' || lpad(i::text, 10, '0'), ''::bytea, ''::bytea
FROM generate_series($lo, $hi) AS i;
SQL
	done
}
t0=$(now)
insert_sql | PGOPTIONS='-c client_min_messages=warning' refd_psql >/dev/null ||
	fail "inserting audit records failed"
t1=$(now)
count=$(refd_psql -At -c 'SELECT count(*) FROM audit_log')
size=$(refd_psql -At -c "SELECT pg_size_pretty(pg_total_relation_size('audit_log'))")
echo "  inserted $RECORDS records through the chain trigger in $(secs "$t0" "$t1") s" \
	"($count in the chain, $size on disk)"
refd_psql -c 'VACUUM ANALYZE audit_log' >/dev/null || true

# ---- 2. the verifier -----------------------------------------------------
out=$REFD_TMP/verify.out
t0=$(now)
"$REFD_BIN" -c "$REFD_CONF" --verify-audit >"$out" 2>"$REFD_TMP/verify.err"
rc=$?
t1=$(now)
sed 's/^/  referrald: /' "$out"
[ "$rc" = 0 ] || {
	tail -n 5 "$REFD_TMP/verify.err" >&2
	fail "--verify-audit exited with $rc"
}
grep -q 'intact' "$out" || fail "--verify-audit did not report the chain intact"
awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN {
	printf "  verify-audit: %d records in %.2f s wall clock = %.0f records/s (process start to exit)\n",
		n, b - a, n / (b - a) }'
exit 0
