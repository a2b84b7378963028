#!/usr/bin/env bash
# tests/bench/capacity.sh - what one referral costs the database, for the
# national-scale plan (deploy/CAPACITY.md).
#
#   bash tests/bench/capacity.sh BUILD        (called by tests/bench/run.sh)
#
# On a private cluster and daemon: N submissions (both needs, the brief's
# body), then the harm-reduction worker takes each through its life: accept,
# contact_made, complete, a read of the assignment and an inbox poll. For each step it prints WAL bytes, rows written
# (pg_stat_user_tables), audit records and requests per referral, and the
# database bytes a referral occupies (tables + indexes, divided by N).
# Rates come from referrals.sh (submissions/s); this script measures amounts.
#
# Knobs: CAPACITY_N (200 referrals).
# Owns: its own cluster and daemon. Must never: use fixed ports or print
# tokens.
set -u

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
N=${CAPACITY_N:-200}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench capacity: $*" >&2
	exit 1
}
q() { refd_psql -At -c "$1"; }
lsn() { q "select pg_current_wal_lsn()"; }
ins() { q "select coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) from pg_stat_user_tables"; }
audit() { q "select count(*) from audit_log"; }
# stats: let the statistics collector catch up before reading counters
settle() { q "select pg_stat_force_next_flush()" >/dev/null 2>&1; sleep 1.2; }

echo "== per-referral costs ($N referrals: submit, accept, contact_made, complete)"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_daemon_stop main >/dev/null && refd_daemon_start main "$REFD_CONF" || fail "restart"
admin=$(refd_mint_admin_token capacity) || fail "no admin token"
org=$(bench_api "$admin" POST /v1/organisations '{"name":"capacity org"}' | jq -er .id) || fail "org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"capacity office","region":"bishkek"}' | jq -er .id) ||
	fail "office"
exp=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
hr=$(bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"harm_reduction\",
	\"handle\":\"cap-hr\",\"regions\":[\"bishkek\"],\"languages\":[\"ky\",\"ru\"],\"capacity\":1000}" |
	jq -er .id) || fail "worker"
bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"legal_support\",
	\"handle\":\"cap-ls\",\"regions\":[\"bishkek\"],\"languages\":[\"ky\",\"ru\"],\"capacity\":1000}" \
	>/dev/null || fail "worker"
otok=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"office\",\"subject_id\":\"$office\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "token"
wtok=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"worker\",\"subject_id\":\"$hr\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "token"

# step NAME REQUESTS: read the counters' deltas since the last mark
mark() { settle; L0=$(lsn); I0=$(ins); A0=$(audit); }
step() {
	local name=$1 reqs=$2 l1 i1 a1 wal rows aud
	settle
	l1=$(lsn) i1=$(ins) a1=$(audit)
	wal=$(q "select round(pg_wal_lsn_diff('$l1', '$L0') / $N)")
	rows=$(awk -v a="$I0" -v b="$i1" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
	aud=$(awk -v a="$A0" -v b="$a1" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
	printf '  %-14s %6s WAL bytes  %5s rows written  %4s audit records  %s requests per referral\n' \
		"$name" "$wal" "$rows" "$aud" "$reqs"
	bench_row "cost: $name (per referral)" "$wal" - "WAL bytes" - - - \
		"rows written $rows, audit records $aud, requests $reqs"
	L0=$l1 I0=$i1 A0=$a1
}

body='{"external_ref":"C-%s","client":{"uic":"CAP%sU","birth_year":1985,"gender":"m",
"languages":["ky","ru"],"region":"bishkek","contact":{"phone":"+996555%06d"}},
"needs":["harm_reduction","legal_support"],"urgency":"normal","consent":{"services":true,
"report_back":false,"obtained_at":"2026-11-27T10:00:00Z"},"probation":{"starts_on":"2026-11-20",
"ends_on":"2027-05-20"},"note":"prefers calls after 18:00, ask for the nurse at the clinic"}'
mark
for i in $(seq 1 "$N"); do
	# shellcheck disable=SC2059
	bench_api "$otok" POST /v1/referrals "$(printf "$body" "$i-$RANDOM" "$i$RANDOM" "$i")" \
		-H "Idempotency-Key: cap-$i-$RANDOM" >/dev/null || fail "submit $i"
done
step submit 1
ids=$(q "select a.id from assignments a where a.worker_id = '$hr' and a.status = 'offered'")
[ "$(wc -w <<<"$ids")" -eq "$N" ] || fail "expected $N offers to the worker"
for a in $ids; do bench_api "$wtok" POST "/v1/assignments/$a/accept" '{}' >/dev/null || fail "accept"; done
step accept 1
for a in $ids; do
	bench_api "$wtok" POST "/v1/assignments/$a/events" "{\"type\":\"contact_made\",\"at\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" \
		>/dev/null || fail "event"
done
step contact_made 1
for a in $ids; do bench_api "$wtok" POST "/v1/assignments/$a/complete" '{"outcome":"engaged"}' >/dev/null || fail "complete"; done
step complete 1
for a in $ids; do bench_api "$wtok" GET "/v1/assignments/$a" >/dev/null || fail "read"; done
step "read (GET)" 1
# The worker's inbox, as a page polls it (one call per referral here).
for _ in $ids; do bench_api "$wtok" GET "/v1/assignments?status=offered" >/dev/null || fail "inbox"; done
step "inbox poll" 1

bytes=$(q "select round(sum(pg_total_relation_size(relid)) / $N) from pg_stat_user_tables
	where relname in ('referrals', 'assignments', 'offers', 'deadlines', 'escalations',
	'assignment_events', 'outbox', 'idempotency_keys', 'audit_log', 'clients', 'assignment_history')")
echo "  stored: $bytes bytes per referral (tables and indexes, both needs, after its life)"
bench_row "cost: stored bytes (per referral)" "$bytes" - "bytes" - - - "tables + indexes after the whole life"
abytes=$(q "select round(pg_total_relation_size('audit_log') / greatest(count(*), 1)) from audit_log")
echo "  audit trail: $abytes bytes per audit record (table and indexes)"
bench_row "cost: stored bytes (per audit record)" "$abytes" - "bytes" - - - "audit_log table + indexes"
