#!/usr/bin/env bash
# tests/bench/sweeper.sh - the deadline sweeper's latency from due time to
# action, with 1,000,000 other deadlines pending (BENCH_SWEEP_FAR).
#
#   bash tests/bench/sweeper.sh BUILD         (called by tests/bench/run.sh)
#
# On one private PostgreSQL and one daemon (default sweeper settings:
# sweeper_max_sleep 1s, sweeper_batch 100):
# 1. seed through the API: one organisation, one office, workers of both kinds;
# 2. seed BENCH_SWEEP_NEAR accept deadlines the real way: referrals with both
#    needs straight into api_referral_submit (the function the daemon calls),
#    so each has its assignment, offer and worker load (due after the normal
#    policy's accept_within, 24 h); and BENCH_SWEEP_FAR pending deadlines due
#    1 to 31 days from now, inserted set-based as superuser (referrals, their
#    unassigned assignments, a first_contact deadline each): seconds instead
#    of minutes. BENCH_SWEEP_SEED=api makes those through the function too;
# 3. move BENCH_SWEEP_NEAR of them (and their offers' expiry) to be due
#    between 5 s and 5 s + BENCH_SWEEP_SPREAD from now, evenly spaced, as
#    superuser; the others stay due far in the future;
# 4. wait until the sweeper has marked all of them missed (expired, audited,
#    re-offered), then print p50/p90/max of missed_at - due_at from the
#    deadlines table, and how long after the last due time the last one was
#    seen done (what a client could observe; 100 ms polling); and the EXPLAIN
#    of the sweeper's claim before (plan) and after the burst (ANALYZE).
# missed_at is the sweep transaction's start (now()), so the first figures are
# the scheduling latency; the second also includes the work and the commit.
# Prints figures only; fails only when the setup fails or a deadline is never
# acted on within 60 s of its due time.
#
# Knobs: BENCH_SWEEP_FAR (1000000), BENCH_SWEEP_NEAR (10000), BENCH_SWEEP_SPREAD
# (seconds, 1: the issue's "10,000 falling due in the same second"),
# BENCH_SWEEP_SEED (sql or api). The table row's goal: all acted on within 2 s.
# Owns: its own cluster and daemon (tests/lib/common.bash); stops both.
# Must never: use fixed ports, or print tokens.
set -u

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
FAR=${BENCH_SWEEP_FAR:-1000000}
NEAR=${BENCH_SWEEP_NEAR:-10000}
SPREAD=${BENCH_SWEEP_SPREAD:-1}
SEED=${BENCH_SWEEP_SEED:-sql}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

# The harness reads these in teardown even when setup failed early.
REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench sweeper: $*" >&2
	exit 1
}


total=$((FAR + NEAR))
echo "== deadline sweeper: $NEAR deadlines due over ${SPREAD}s among $FAR pending far in the future"
refd_setup_file || fail "no cluster/daemon"
refd_config_set "$REFD_CONF" log level warn
refd_daemon_stop main >/dev/null || fail "daemon did not stop"
refd_daemon_start main "$REFD_CONF" || fail "daemon did not restart"
bench_profile_setup || fail "profiling setup failed"

# ---- 1. the network, through the API ------------------------------------
admin=$(refd_mint_admin_token bench) || fail "no admin token"
org=$(bench_api "$admin" POST /v1/organisations '{"name":"sweeper bench org"}' | jq -er .id) || fail "seed org"
office=$(bench_api "$admin" POST /v1/offices '{"name":"sweeper bench office","region":"bishkek"}' |
	jq -er .id) || fail "seed office"
# Room for every referral: capacity per kind = 20 x 1000 > (FAR + NEAR) / 2.
for i in $(seq 1 20); do
	for kind in harm_reduction legal_support; do
		bench_api "$admin" POST /v1/workers "{\"organisation_id\":\"$org\",\"kind\":\"$kind\",
			\"handle\":\"sweep-$kind-$i\",\"regions\":[\"bishkek\"],\"languages\":[\"ky\",\"ru\"],
			\"capacity\":1000}" >/dev/null || fail "seed worker"
	done
done

# ---- 2. the deadlines ------------------------------------------------------
# Both needs: each referral makes two offers, so two accept deadlines. As the
# daemon's own role, like the daemon, 100 submissions per statement (one
# transaction each: a single huge transaction slows down on the many versions
# of the same worker rows it updates).
submit_sql() { # FIRST LAST
	local lo
	for ((lo = $1; lo <= $2; lo += 100)); do
		cat <<SQL
SELECT count(api_referral_submit(
	jsonb_build_object('role', 'office', 'id', :'office', 'programme', false),
	'sweep-seed-' || i,
	jsonb_build_object(
		'idempotency_key', 'sweep-' || i,
		'external_ref', 'SWEEP-' || i,
		'request_hash', encode(sha256(convert_to('req' || i, 'UTF8')), 'hex'),
		'client', jsonb_build_object(
			'uic_hash', encode(sha256(convert_to('uic' || i, 'UTF8')), 'hex'),
			'birth_year', 1985, 'gender', 'm', 'languages', jsonb_build_array('ky', 'ru'),
			'region', 'bishkek', 'contact_sealed', 'k1:' || md5(i::text)),
		'needs', jsonb_build_array('harm_reduction', 'legal_support'),
		'urgency', 'normal',
		'consent', jsonb_build_object('services', true, 'report_back', false,
		                              'obtained_at', '2026-11-27T10:00:00Z'),
		'note_sealed', 'k1:' || md5('note' || i::text))))
FROM generate_series($lo, least($lo + 99, $2)) AS i;
SQL
	done
}
submit() { # FIRST LAST
	submit_sql "$1" "$2" | PGOPTIONS='-c client_min_messages=warning' \
		psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$REFD_PGPORT" \
		-U "${REFD_APP_USER:-$REFD_DB_USER}" -d "$REFD_DB" -v office="$office" >/dev/null
}
t0=$(date +%s.%N)
if [ "$SEED" = api ]; then
	# Every deadline the real way (slow: about 15 ms a referral on 2 busy cores).
	submit 1 $(((total + 1) / 2)) || fail "seeding referrals failed"
else
	# The ones that will come due the real way, so the sweeper expires real
	# offers and re-offers; the far ones set-based as superuser: referrals, two
	# unassigned assignments each and a first_contact deadline per assignment,
	# due 1 to 31 days from now. The sweeper only ever sees them through the
	# partial index on pending due_at, which is what they are here to fill.
	# They are in a region no worker of the bench serves (osh): a backlog of
	# 1,000,000 unassigned that workers could take would have the
	# re-matching job offering them all through the burst (its
	# rematch_next cost 226 ms a call there, a core beside the sweeper),
	# which is another benchmark than the sweeper's.
	submit 1 $(((NEAR + 1) / 2)) || fail "seeding referrals failed"
	refd_psql -v office="$office" -v org="$org" -v n=$(((FAR + 1) / 2)) >/dev/null <<'SQL' ||
WITH r AS (
	INSERT INTO referrals (office_id, external_ref, uic_hash, birth_year, gender, languages,
	                       region, needs, urgency, consent_services, consent_report_back,
	                       consent_obtained_at)
	SELECT :'office', 'FAR-' || i, encode(sha256(convert_to('far' || i, 'UTF8')), 'hex'),
	       1985, 'm', '{ky,ru}', 'osh', '{harm_reduction,legal_support}', 'normal',
	       true, false, now()
	FROM generate_series(1, :n) AS i
	RETURNING id, office_id),
a AS (
	INSERT INTO assignments (referral_id, office_id, need, urgency, region, languages)
	SELECT r.id, r.office_id, need, 'normal', 'osh', '{ky,ru}'
	FROM r CROSS JOIN unnest('{harm_reduction,legal_support}'::text[]) AS need
	RETURNING id)
INSERT INTO deadlines (kind, assignment_id, organisation_id, due_at)
SELECT 'first_contact', a.id, :'org', now() + interval '1 day' + random() * interval '30 days'
FROM a;
SQL
		fail "seeding far deadlines failed"
fi
t1=$(date +%s.%N)
pending=$(refd_psql -At -c "SELECT count(*) FROM deadlines WHERE state = 'pending'")
[ "${pending:-0}" -ge "$total" ] || fail "only ${pending:-0} pending deadlines after seeding (wanted $total)"
printf '  seeded %s pending deadlines (%s) in %.1f s\n' "$pending" \
	"$([ "$SEED" = api ] && echo 'all through api_referral_submit' ||
		echo "$NEAR through api_referral_submit, the others inserted directly")" \
	"$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"
# ---- 3. NEAR of them become due soon --------------------------------------
# One statement per table, so the spacing is exact:
# due = now + 5 s + k * SPREAD / NEAR.
refd_psql -v near="$NEAR" -v spread="$SPREAD" >/dev/null <<'SQL' || fail "moving deadlines failed"
CREATE TABLE bench_near AS
	SELECT id, offer_id,
	       now() + interval '5 s'
	             + (row_number() OVER (ORDER BY id) - 1) * (:spread::float8 / :near) * interval '1 s' AS due
	FROM deadlines WHERE state = 'pending' AND kind = 'accept'
	ORDER BY id LIMIT :near;
UPDATE offers o SET expires_at = n.due FROM bench_near n WHERE o.id = n.offer_id;
UPDATE deadlines d SET due_at = n.due FROM bench_near n WHERE d.id = n.id;
-- Statistics for the poll below: without them it joined by hashing all
-- 1,000,000 deadlines, 1.5-1.8 s a poll, a whole core beside the sweeper.
ALTER TABLE bench_near ADD PRIMARY KEY (id);
ANALYZE bench_near;
-- The statistics autovacuum gathers within a minute of a bulk load like the
-- one above: without them every plan over referrals, assignments and
-- deadlines is made from an empty table's estimates (the retention job's
-- then cost 1.4 s of planning per run, every 4 s, beside the sweeper).
ANALYZE referrals, assignments, deadlines, offers;
SQL
last_due=$(refd_psql -At -c "SELECT extract(epoch FROM max(due)) FROM bench_near")
last_due_ts=$(refd_psql -At -c "SELECT max(due) FROM bench_near")
# The sweeper's claim, as deadline_sweep() runs it (plan only: nothing is due
# yet; the partial index on pending due_at must be what it reads).
echo "  EXPLAIN of the due-deadlines claim (deadline_sweep, batch 100):"
refd_psql -At -c "EXPLAIN SELECT id FROM deadlines WHERE state = 'pending' AND due_at <= now()
	ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED" | sed 's/^/    /'
bench_profile_start

# ---- 4. wait for the sweeper --------------------------------------------
done_n=0
seen_at=
for _ in $(seq 1 $(((5 + SPREAD + 60) * 10))); do
	# What is still pending among them, through the sweeper's own partial
	# index (pending, by due time): a lookup of the few left, not a join of
	# all of them each 100 ms (that cost 17 ms a poll, beside the sweeper).
	# The far ones are due a day later, the re-offers' deadlines too.
	left_n=$(refd_psql -At -c "SELECT count(*) FROM deadlines
		WHERE state = 'pending' AND due_at <= '$last_due_ts'")
	done_n=$((NEAR - ${left_n:-$NEAR}))
	if [ "${left_n:-1}" -eq 0 ]; then
		seen_at=$(date +%s.%N)
		break
	fi
	sleep 0.1
done
[ -n "$seen_at" ] || fail "only $done_n of $NEAR due deadlines were acted on"
missed_n=$(refd_psql -At -c "SELECT count(*) FROM deadlines d JOIN bench_near n USING (id)
	WHERE d.state = 'missed'")
[ "${missed_n:-0}" -eq "$NEAR" ] || fail "only ${missed_n:-0} of $NEAR due deadlines are marked missed"
bench_profile_report
read -r lat_p50 lat_p99 < <(refd_psql -At -F ' ' -c "SELECT
	round((percentile_cont(0.5) WITHIN GROUP (ORDER BY ms))::numeric, 1),
	round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ms))::numeric, 1)
	FROM (SELECT extract(epoch FROM d.missed_at - d.due_at) * 1000 AS ms
	      FROM deadlines d JOIN bench_near n USING (id)) s")
refd_psql -At -F ' ' <<'SQL' | awk '{
	printf "  missed_at - due_at over %d deadlines: p50 %.1f ms, p90 %.1f ms, max %.1f ms (min %.1f ms)\n",
		$1, $2, $3, $4, $5 }'
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY ms),
       max(ms), min(ms)
FROM (SELECT extract(epoch FROM d.missed_at - d.due_at) * 1000 AS ms
      FROM deadlines d JOIN bench_near n USING (id)) s;
SQL
awk -v a="$last_due" -v b="$seen_at" -v n="$NEAR" 'BEGIN {
	printf "  all %s acted on and committed: seen %.0f ms after the last due time (100 ms polling)\n",
		n, (b - a) * 1000 }'
reoffered=$(refd_psql -At -c "SELECT count(*) FROM offers o JOIN deadlines d ON d.assignment_id = o.assignment_id
	JOIN bench_near n ON n.id = d.id WHERE o.outcome = 'pending'")
still=$(refd_psql -At -c "SELECT count(*) FROM deadlines WHERE state = 'pending'")
# The same claim once all are done, in a rolled-back transaction: what an idle
# pass costs right after a burst (the missed rows' index entries are dead).
echo "  EXPLAIN ANALYZE of the claim after the burst:"
refd_psql -At <<'SQL' | grep -E 'Index|Limit|Buffers|Execution|Rows Removed' | sed 's/^/    /'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT id FROM deadlines
WHERE state = 'pending' AND due_at <= now() ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED;
ROLLBACK;
SQL
echo "  re-offered to the next worker: $reoffered of $NEAR; pending deadlines now: $still"
after_ms=$(awk -v a="$last_due" -v b="$seen_at" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
bench_row "$NEAR deadlines due within ${SPREAD}s among $FAR pending" "$after_ms" "" ms "<=2000 ms" \
	"$lat_p50" "$lat_p99" "last due time to all acted on (100 ms polling); p50/p99: missed_at - due_at"
refd_daemon_stop main >/dev/null || fail "daemon did not stop cleanly"
exit 0
