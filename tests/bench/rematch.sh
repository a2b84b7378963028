#!/usr/bin/env bash
# tests/bench/rematch.sh - the cost of a re-matching pass with 10,000
# unassigned assignments and nobody free (issue 11).
#
#   bash tests/bench/rematch.sh BUILD         (called by tests/bench/run.sh)
#
# On one private PostgreSQL (the daemon migrates it, then is stopped so its
# own job does not run meanwhile):
# 1. 9 regions x 2 kinds, one worker each, every one at capacity (capacity 0);
# 2. BENCH_REMATCH_N unassigned assignments (default 10,000) spread over
#    those 18 (region, kind) pairs, inserted set-based as superuser;
# 3. time BENCH_REMATCH_PASSES full passes, `SELECT rematch_run(true, 100)`
#    (the statement the daemon's job runs every [matching] rematch_interval),
#    and print the mean and p90 per pass, the probes it reports (one per pair
#    plus one per free-worker check), and the shared buffers one pass touches
#    (EXPLAIN ANALYZE, BUFFERS);
# 4. the baseline the design avoids, in the same run: one candidate query
#    per unassigned assignment (match_candidate, the matcher's own query,
#    for each of the N rows);
# 5. a notice-driven pass for one pair (what follows a freed slot).
# Prints figures only; fails when the setup fails or a pass offers anything
# (nobody is free).
#
# Knobs: BENCH_REMATCH_N (10000), BENCH_REMATCH_PASSES (50).
# Owns: its own cluster (tests/lib/common.bash); stops it.
# Must never: use fixed ports.
set -u

cd "$(dirname "$0")/../.." || exit 2
BUILD=${1:-${BUILD:-build}}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
export BUILD
N=${BENCH_REMATCH_N:-10000}
PASSES=${BENCH_REMATCH_PASSES:-50}

# shellcheck source=../lib/common.bash
. tests/lib/common.bash
# shellcheck source=lib.sh
. tests/bench/lib.sh

REFD_PGDATA=${REFD_PGDATA:-}
trap 'refd_teardown_file' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "bench rematch: $*" >&2
	exit 1
}

echo "== re-matching: one full pass over $N unassigned assignments, nobody free"
refd_setup_file || fail "no cluster/daemon"
refd_daemon_stop main >/dev/null || fail "daemon did not stop"

refd_psql -v n="$N" >/dev/null <<'SQL' || fail "seeding failed"
INSERT INTO organisations (name) VALUES ('rematch bench');
INSERT INTO offices (name, region) VALUES ('rematch bench office', 'bishkek');
INSERT INTO workers (organisation_id, kind, handle, regions, languages, capacity)
SELECT (SELECT id FROM organisations), k, 'w-' || r || '-' || k, ARRAY[r], '{ky,ru}', 0
FROM unnest('{bishkek,osh-city,chui,osh,jalal-abad,batken,talas,naryn,issyk-kul}'::text[]) r,
     unnest('{harm_reduction,legal_support}'::text[]) k;
WITH rg AS (SELECT array_agg(r) a FROM unnest('{bishkek,osh-city,chui,osh,jalal-abad,batken,talas,naryn,issyk-kul}'::text[]) r),
ref AS (
	INSERT INTO referrals (office_id, external_ref, uic_hash, birth_year, gender, languages,
	                       region, needs, urgency, consent_services, consent_report_back,
	                       consent_obtained_at)
	SELECT (SELECT id FROM offices), 'RM-' || i, encode(sha256(convert_to('rm' || i, 'UTF8')), 'hex'),
	       1985, 'm', '{ky}', (SELECT a[1 + i % 9] FROM rg),
	       ARRAY[CASE WHEN i % 2 = 0 THEN 'harm_reduction' ELSE 'legal_support' END],
	       'normal', true, false, now()
	FROM generate_series(1, :n) i
	RETURNING id, office_id, region, needs)
INSERT INTO assignments (referral_id, office_id, need, urgency, region, languages, created_at)
SELECT id, office_id, needs[1], 'normal', region, '{ky}', now() - random() * interval '30 days'
FROM ref;
ANALYZE;
SQL
un=$(refd_psql -At -c "SELECT count(*) FROM assignments WHERE status = 'unassigned'")
[ "$un" = "$N" ] || fail "$un unassigned after seeding, wanted $N"

# Timed passes, each its own transaction, as the job runs them.
refd_psql -At -v passes="$PASSES" >"$REFD_TMP/passes" <<'SQL' || fail "passes failed"
\set QUIET on
SET bench.passes = :'passes';
CREATE TEMP TABLE t (ms float8, res jsonb);
DO $$
DECLARE
	t0 timestamptz;
	r jsonb;
BEGIN
	FOR i IN 1 .. current_setting('bench.passes')::int LOOP
		t0 := clock_timestamp();
		r := rematch_run(true, 100);
		INSERT INTO t VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000, r);
	END LOOP;
END $$;
SELECT round(avg(ms)::numeric, 3), round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 3),
       max((res->>'probes')::int), max((res->>'offered')::int), max((res->>'attempts')::int)
FROM t;
SQL
read -r mean p90 probes offered attempts <<<"$(tr '|' ' ' <"$REFD_TMP/passes" | tail -n 1)"
[ -n "${mean:-}" ] || fail "no timings (psql: $(cat "$REFD_TMP/passes"))"
[ "$offered" = 0 ] && [ "$attempts" = 0 ] || fail "a pass with nobody free offered $offered, tried $attempts"
# Shared buffers of one warm pass (the second in the session: the first also
# reads the catalogue to plan the function).
buffers=$(refd_psql -At <<'SQL' | sed -n '/^\[/,$p' | jq '.[0].Plan["Shared Hit Blocks"] + .[0].Plan["Shared Read Blocks"]'
\set QUIET on
SELECT 'warm', rematch_run(true, 100);
EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT rematch_run(true, 100);
SQL
)

# The baseline: what re-matching each unassigned assignment costs, the
# matcher's own candidate query (match_candidate, 05_matching.sql) run for
# each of the N rows, as a pass without the pair probes would.
base=$(refd_psql -At <<'SQL'
\set QUIET on
SET app.role = 'system';
CREATE TEMP TABLE t (ms float8);
DO $$
DECLARE
	t0 timestamptz;
	a assignments;
	found_any int := 0;
BEGIN
	FOR i IN 1 .. 3 LOOP
		t0 := clock_timestamp();
		FOR a IN SELECT * FROM assignments WHERE status = 'unassigned' LOOP
			IF (match_candidate(a, NULL, true)).id IS NOT NULL THEN
				found_any := found_any + 1;
			END IF;
		END LOOP;
		INSERT INTO t VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
	END LOOP;
	IF found_any > 0 THEN
		RAISE EXCEPTION 'a candidate was found: the setup is wrong';
	END IF;
END $$;
SELECT round(avg(ms)::numeric, 3) FROM t;
SQL
)

# A notice for one pair (a slot freed there, taken again at once: nobody
# free), on a warm session.
notice=$(refd_psql -At <<'SQL' | tail -n 1
\set QUIET on
SELECT rematch_run(false, 100);
INSERT INTO rematch_notices (region, need) VALUES ('osh', 'harm_reduction');
SELECT round((extract(epoch FROM clock_timestamp() - now()) * 1000)::numeric, 3)
FROM (SELECT rematch_run(false, 100)) x;
SQL
)

printf '  full pass: mean %s ms, p90 %s ms over %s passes; %s index probes, %s shared buffers a warm pass\n' \
	"$mean" "$p90" "$PASSES" "$probes" "$buffers"
printf '  baseline (a candidate query per unassigned assignment): %s ms a pass\n' "$base"
printf '  notice-driven pass for one pair: %s ms\n' "$notice"
bench_row "re-matching pass, $N unassigned, nobody free" "$mean" "$base" "ms" "-" "$mean" "$p90" \
	"$probes probes (18 pairs), $buffers buffers; baseline = one candidate query per assignment"
