#!/usr/bin/env bash
# tests/bench/retention.sh - the retention job's cost: BENCH_RETENTION_N
# (10,000) closed referrals falling due for purge at once.
#
#   bash tests/bench/retention.sh BUILD         (called by tests/bench/run.sh)
#
# On one private PostgreSQL, its key store and one daemon (default
# [retention] batch 100):
# 1. seed through the API: an organisation, an office, a worker;
# 2. seed N closed referrals set-based as superuser (triggers off): each with
#    sealed contact, note and external_ref, one completed assignment, its
#    offer, two met deadlines, an escalation, two events with sealed text,
#    history, two outbox rows, an idempotency record, and a data key in the
#    key store; all closed an hour ago;
# 3. PUT /v1/retention-policy {"contact_after_close":"PT1S",
#    "record_after_close":"PT1S"}: every one of them is due at once;
# 4. wait until no row of them is left and the key store holds none of
#    their keys, then print the time to done, the number of batches and the
#    longest time one batch's transaction held its locks (the daemon's
#    retention_done lines: ms from the transaction's start to its result;
#    the commit follows), and the report's figures before and after.
# Prints figures only; fails only when the setup fails, the purge is not
# done within 10 minutes, or the report's figures change.
#
# Knobs: BENCH_RETENTION_N (10000), BENCH_RETENTION_BATCH (100).
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
N=${BENCH_RETENTION_N:-10000}
BATCH=${BENCH_RETENTION_BATCH:-100}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench retention: $*" >&2
	exit 1
}


keys_psql() {
	psql -X -q -At -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres \
		-d "$REFD_KEYS_DB" "$@"
}

echo "== retention: $N closed referrals due for purge at once (batch $BATCH)"
refd_setup_file || fail "no cluster/daemon"
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_config_set "$REFD_CONF" retention batch "$BATCH"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"

admin=$(refd_mint_admin_token bench) || fail "no admin token"
org=$(bench_api "$admin" POST /v1/organisations '{"name":"retention bench org"}' | jq -er .id) ||
	fail "seed org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"retention bench office","region":"bishkek"}' |
	jq -er .id) || fail "seed office"
worker=$(bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"harm_reduction\",
	\"handle\":\"ret-w\",\"regions\":[\"bishkek\"],\"languages\":[\"ky\",\"ru\"],\"capacity\":10}" |
	jq -er .id) || fail "seed worker"
sup=$(bench_api "$admin" POST /v1/supervisors "{\"organisation_id\":\"$org\",\"handle\":\"ret-s\"}" |
	jq -er .id) || fail "seed supervisor"
exp=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
sup_token=$(bench_api "$admin" POST /v1/tokens "{\"role\":\"supervisor\",\"subject_id\":\"$sup\",\"expires_at\":\"$exp\"}" |
	jq -er .token) || fail "supervisor token"

t0=$(date +%s.%N)
refd_psql -v office="$office" -v org="$org" -v worker="$worker" -v n="$N" >/dev/null <<'SQL' ||
SET session_replication_role = replica;
CREATE TABLE bench_ret AS
	SELECT gen_random_uuid() AS rid, gen_random_uuid() AS aid, gen_random_uuid() AS oid,
	       gen_random_uuid() AS d1, gen_random_uuid() AS d2, i
	FROM generate_series(1, :n) AS i;
INSERT INTO referrals (id, office_id, external_ref_sealed, external_ref_hash, uic_hash,
                       birth_year, gender, languages, region, needs, urgency, consent_services,
                       consent_report_back, consent_obtained_at, contact_sealed, note_sealed,
                       status, created_at, updated_at, closed_at)
SELECT rid, :'office', 'd@' || rid || ':' || md5('x' || i),
       encode(sha256(convert_to('xref' || i, 'UTF8')), 'hex'),
       encode(sha256(convert_to('uic' || i, 'UTF8')), 'hex'), 1985, 'm', '{ky,ru}', 'bishkek',
       '{harm_reduction}', 'normal', true, false, now() - interval '3 days',
       'd@' || rid || ':' || md5('c' || i), 'd@' || rid || ':' || md5('n' || i), 'closed',
       now() - interval '2 days' - i * interval '1 second', now() - interval '1 hour',
       now() - interval '1 hour'
FROM bench_ret;
INSERT INTO assignments (id, referral_id, office_id, need, urgency, region, languages, status,
                         worker_id, organisation_id, offered_at, accepted_at, first_contact_at,
                         ended_at, outcome, detail_sealed, created_at, updated_at)
SELECT aid, rid, :'office', 'harm_reduction', 'normal', 'bishkek', '{ky,ru}', 'completed',
       :'worker', :'org', now() - interval '2 days' - i * interval '1 second',
       now() - interval '47 hours' - i * interval '1 second',
       now() - interval '40 hours' - i * interval '1 second', now() - interval '1 hour',
       'engaged', 'd@' || rid || ':' || md5('d' || i),
       now() - interval '2 days' - i * interval '1 second', now() - interval '1 hour'
FROM bench_ret;
INSERT INTO offers (id, assignment_id, worker_id, offered_at, expires_at, outcome, ended_at, match_reason)
SELECT oid, aid, :'worker', now() - interval '2 days', now() - interval '1 day', 'accepted',
       now() - interval '47 hours', '{}'
FROM bench_ret;
INSERT INTO deadlines (id, kind, assignment_id, offer_id, worker_id, organisation_id, starts_at,
                       due_at, state, met_at, elapsed)
SELECT d1, 'accept', aid, oid, :'worker'::uuid, :'org'::uuid, now() - interval '2 days' - i * interval '1 second',
       now() - interval '1 day' - i * interval '1 second', 'met',
       now() - interval '47 hours' - i * interval '1 second', interval '1 hour'
FROM bench_ret
UNION ALL
SELECT d2, 'first_contact', aid, NULL, :'worker'::uuid, :'org'::uuid, now() - interval '47 hours' - i * interval '1 second',
       now() - interval '1 day' - i * interval '1 second',
       CASE WHEN i % 5 = 0 THEN 'missed' ELSE 'met' END,
       now() - interval '40 hours' - i * interval '1 second', interval '7 hours'
FROM bench_ret;
INSERT INTO escalations (reason, deadline_id, assignment_id, organisation_id, resolved_at)
SELECT 'deadline_missed', d2, aid, :'org', now() - interval '1 day' FROM bench_ret WHERE i % 5 = 0;
INSERT INTO assignment_events (assignment_id, type, at, detail_sealed, outcome_sealed, actor_role, actor_id)
SELECT aid, t, now() - interval '40 hours', 'd@' || rid || ':' || md5('e' || i),
       'd@' || rid || ':' || md5('o' || i), 'worker', :'worker'
FROM bench_ret CROSS JOIN unnest('{contact_attempt,contact_made}'::text[]) AS t;
INSERT INTO assignment_history (assignment_id, from_status, to_status, worker_id, actor_role)
SELECT aid, 'in_progress', 'completed', :'worker', 'worker' FROM bench_ret;
INSERT INTO outbox (type, payload, office_id, delivered_at)
SELECT 'referral.closed', jsonb_build_object('referral_id', rid, 'detail_url', '/v1/referrals/' || rid),
       :'office'::uuid, now() FROM bench_ret
UNION ALL
SELECT 'assignment.accepted', jsonb_build_object('assignment_id', aid, 'detail_url', '/v1/assignments/' || aid),
       NULL::uuid, now() FROM bench_ret;
INSERT INTO idempotency_keys (office_id, key, request_hash, status, response, created_at)
SELECT :'office', 'ret-' || i, md5(i::text), 201, jsonb_build_object('id', rid), now()
FROM bench_ret;
ANALYZE;
SQL
	fail "seeding failed"
refd_psql -At -c "COPY (SELECT rid, 'k1:' || md5(rid::text) FROM bench_ret) TO STDOUT" |
	keys_psql -c "COPY data_keys (referral_id, wrapped) FROM STDIN" || fail "seeding keys failed"
t1=$(date +%s.%N)
printf '  seeded %s closed referrals with all their rows and keys in %.1f s\n' "$N" \
	"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"

report() {
	curl -sS --cacert "$REFD_CA" -H "Authorization: Bearer $sup_token" \
		"$REFD_URL/v1/reports/follow-up?group_by=organisation&from=2020-01-01T00:00:00Z" |
		jq -S '.groups'
}
before=$(report)
[ "$(jq '.[0].offers' <<<"$before")" -ge "$N" ] || fail "the report does not see the seeded rows"

lines0=$(grep -c 'event=retention_done' "$REFD_LOG")
ts=$(date +%s.%N)
bench_api "$admin" PUT /v1/retention-policy '{"contact_after_close":"PT1S","record_after_close":"PT1S"}' \
	>/dev/null || fail "policy"
done_at=
for _ in $(seq 1 6000); do
	left=$(refd_psql -At -c "SELECT count(*) FROM referrals r JOIN bench_ret b ON b.rid = r.id")
	keys=$(keys_psql -c "SELECT count(*) FROM data_keys")
	if [ "$left" = 0 ] && [ "$keys" = 0 ]; then
		done_at=$(date +%s.%N)
		break
	fi
	sleep 0.1
done
[ -n "$done_at" ] || fail "not done after 10 minutes: $left referrals and $keys keys left"
after=$(report)
rows_left=$(refd_psql -At -c "SELECT
	(SELECT count(*) FROM assignments a JOIN bench_ret b ON b.aid = a.id)
	+ (SELECT count(*) FROM offers o JOIN bench_ret b ON b.oid = o.id)
	+ (SELECT count(*) FROM deadlines d JOIN bench_ret b ON b.d1 = d.id OR b.d2 = d.id)
	+ (SELECT count(*) FROM assignment_events e JOIN bench_ret b ON b.aid = e.assignment_id)
	+ (SELECT count(*) FROM outbox o JOIN bench_ret b
	     ON o.payload->>'referral_id' = b.rid::text OR o.payload->>'assignment_id' = b.aid::text)
	+ (SELECT count(*) FROM idempotency_keys WHERE key LIKE 'ret-%')")
# The daemon's lines of this purge: batches and their longest transaction.
read -r batches max_ms sum_ms < <(grep 'event=retention_done' "$REFD_LOG" | tail -n +$((lines0 + 1)) |
	sed -n 's/.* ms=\([0-9]*\).*/\1/p' |
	awk '{ n++; s += $1; if ($1 > m) m = $1 } END { printf "%d %d %d\n", n, m, s }')
audited=$(refd_psql -At -c "SELECT count(*) FROM audit_log a JOIN bench_ret b ON a.object_id = b.rid::text
	WHERE a.action = 'retention.record_purged'")
secs=$(awk -v a="$ts" -v b="$done_at" 'BEGIN { printf "%.1f", b - a }')
printf '  purged %s referrals (rows left: %s, keys left: 0, audited: %s) in %s s after the policy change\n' \
	"$N" "$rows_left" "$audited" "$secs"
printf '  %s batches; longest transaction (locks held) %s ms; sum of batch transactions %s ms\n' \
	"$batches" "$max_ms" "$sum_ms"
if [ "$before" = "$after" ]; then
	echo "  follow-up report by organisation: the same figures before and after the purge"
else
	echo "  follow-up report changed across the purge:" >&2
	diff <(echo "$before") <(echo "$after") >&2
	fail "report changed"
fi
bench_row "retention purge of $N referrals" "$secs" - s "locks held < 1 s" - "$max_ms" \
	"$batches batches of $BATCH, longest transaction $max_ms ms"
