#!/usr/bin/env bats
# The sweeper's batch re-offer (deadline_reoffer_batch, 42_deadline_steps.sql)
# against its reference: the same due accept deadlines acted on one after the
# other through match_assignment (05_matching.sql), in a transaction rolled
# back. A network with loads, capacities, languages, workers serving two
# regions, a region with more workers than the batch reads (its boundary),
# declines, and a need where nobody is left; three rounds of expiries, each
# compared assignment by assignment (status and worker). And a batch that
# meets a busy worker row is undone whole and redone one deadline at a time,
# nothing lost and nothing twice.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file
	local orgs=() o i r langs
	orgs[0]=$(mk_org o-b1)
	orgs[1]=$(mk_org o-b2)
	mk_office off-b1 b1 >"$REFD_TMP/off1"
	mk_office off-b2 b2 >"$REFD_TMP/off2"
	RANDOM=4242
	langs=('["ru"]' '["ky"]' '["ru","ky"]' '["ky","ru","en"]')
	for i in $(seq 1 14); do
		mk_worker "${orgs[$((i % 2))]}" harm_reduction "h1-$i" '["b1"]' "${langs[$((RANDOM % 4))]}" \
			$((1 + RANDOM % 4)) >/dev/null
	done
	for i in $(seq 1 6); do
		mk_worker "${orgs[$((i % 2))]}" harm_reduction "h12-$i" '["b1","b2"]' \
			"${langs[$((RANDOM % 4))]}" $((1 + RANDOM % 3)) >/dev/null
	done
	# b2: more workers than a batch of a few b2 assignments reads (2k+16)
	for i in $(seq 1 22); do
		mk_worker "${orgs[$((i % 2))]}" harm_reduction "h2-$i" '["b2"]' "${langs[$((RANDOM % 4))]}" \
			$((2 + RANDOM % 2)) >/dev/null
	done
	mk_worker "${orgs[0]}" harm_reduction h1-en '["b1"]' '["en"]' 5 >/dev/null
	for i in 1 2 3; do
		mk_worker "${orgs[$((i % 2))]}" legal_support "l1-$i" '["b1"]' '["ru","ky"]' 1 >/dev/null
	done
	# different accept times per organisation's policy are the same policy
	# here; the due times are moved by the tests
	local off1 off2 needs
	off1=$(cat "$REFD_TMP/off1")
	off2=$(cat "$REFD_TMP/off2")
	for i in $(seq 1 26); do
		needs='["harm_reduction"]'
		[ $((i % 4)) = 0 ] && needs='["harm_reduction","legal_support"]'
		submit "$off1" "k1-$i" "E1-$i" "U1-$i" "$needs" b1 "${langs[$((RANDOM % 3))]}" >/dev/null
	done
	for i in $(seq 1 4); do
		submit "$off2" "k2-$i" "E2-$i" "U2-$i" '["harm_reduction"]' b2 "${langs[$((RANDOM % 3))]}" >/dev/null
	done
	# Declines: those workers may never be offered these again.
	local a w org res
	while read -r a w org; do
		res=$(api assignment_decline "$(who_worker "$w" "$org")" "{\"id\":\"$a\"}")
		[ "$(jget "$res" .status)" = 200 ] || return 1
	done < <(qs "select a.id || ' ' || a.worker_id || ' ' || w.organisation_id from assignments a
	             join workers w on w.id = a.worker_id where a.status = 'offered' order by a.id limit 6")
}
teardown_file() { refd_teardown_file; }

# Every live offer's accept deadline falls due now, one after the other.
all_due() {
	qs "with n as (select d.id, d.offer_id, now() - interval '10 seconds'
	                      + row_number() over (order by d.id) * interval '1 ms' as due
	               from deadlines d where d.state = 'pending' and d.kind = 'accept')
	    , o as (update offers o set expires_at = n.due from n where o.id = n.offer_id)
	    update deadlines d set due_at = n.due from n where d.id = n.id" >/dev/null
}

# What became of every assignment that had a due offer: id, status, worker.
state_of() { # FILE: the due assignments' ids
	qs "select string_agg(a.id || ' ' || a.status || ' ' || coalesce(a.worker_id::text, '-'), ',' order by a.id)
	    from assignments a where a.id in (select x::uuid from unnest(string_to_array('$(paste -sd, "$1")', ',')) x)"
}

# Every time the tables hold before a sweep (table fp_old), so that the
# fingerprint tells the times a sweep wrote from the ones it found.
fp_snapshot() {
	qs "drop table if exists fp_old;
	    create table fp_old as select distinct x from (
	        select unnest(array[offer_expires_at, offered_at, accepted_at, ended_at, updated_at])
	        from assignments
	        union all select unnest(array[offered_at, expires_at, ended_at]) from offers
	        union all select unnest(array[starts_at, due_at, remind_at, missed_at]) from deadlines
	        union all select unnest(array[created_at, resolved_at, level2_at]) from escalations
	        union all select last_assigned_at from workers) s(x) where x is not null" >/dev/null
}

# Everything a sweep leaves about the due assignments (temp table fp_due),
# one line per row: the assignments, each one's history rows in order (all
# but their clock time), offers, deadlines, escalations, this transaction's
# outbox events, and every worker's load and idle-since. The times the
# sweep wrote (T: when it marked the deadlines missed) are written T+offset,
# so the reference's and the sweep's compare; the ones it found as they are.
FINGERPRINT=$(cat <<'SQL'
CREATE FUNCTION pg_temp.rt(x timestamptz) RETURNS text LANGUAGE sql STABLE AS $f$
	SELECT CASE WHEN x >= t.t AND NOT EXISTS (SELECT 1 FROM fp_old WHERE fp_old.x = rt.x)
	            THEN 'T+' || (x - t.t)::text ELSE x::text END
	FROM (SELECT max(d.missed_at) AS t FROM deadlines d
	      WHERE d.assignment_id IN (SELECT assignment_id FROM fp_due)) t
$f$;
CREATE FUNCTION pg_temp.rj(j jsonb) RETURNS jsonb LANGUAGE sql STABLE AS $f$
	SELECT CASE WHEN j ? 'idle_since'
	            THEN j || jsonb_build_object('idle_since', pg_temp.rt((j->>'idle_since')::timestamptz))
	            ELSE j END
$f$;
SELECT line FROM (
	SELECT 1 AS part, a.id::text AS k1, 0::bigint AS k2, concat_ws(' ', 'assignment', a.id, a.status,
		a.worker_id, a.organisation_id, pg_temp.rt(a.offer_expires_at), pg_temp.rj(a.match_reason),
		pg_temp.rt(a.offered_at), pg_temp.rt(a.accepted_at), pg_temp.rt(a.ended_at), a.reason,
		a.reason_sealed, pg_temp.rt(a.updated_at)) AS line
	FROM assignments a WHERE a.id IN (SELECT assignment_id FROM fp_due)
	UNION ALL
	SELECT 2, h.assignment_id::text, h.id, concat_ws(' ', 'history', h.assignment_id, h.from_status,
		h.to_status, h.worker_id, h.actor_role, h.actor_id, h.request_id, h.reason, h.reason_sealed)
	FROM assignment_history h WHERE h.assignment_id IN (SELECT assignment_id FROM fp_due)
	UNION ALL
	SELECT 3, o.assignment_id || pg_temp.rt(o.offered_at) || o.worker_id, 0, concat_ws(' ', 'offer',
		o.assignment_id, o.worker_id, o.outcome, o.reason, pg_temp.rt(o.offered_at),
		pg_temp.rt(o.expires_at), pg_temp.rt(o.ended_at), pg_temp.rj(o.match_reason))
	FROM offers o WHERE o.assignment_id IN (SELECT assignment_id FROM fp_due)
	UNION ALL
	SELECT 4, d.assignment_id || pg_temp.rt(d.starts_at) || d.kind || coalesce(o.worker_id::text, ''), 0,
		concat_ws(' ', 'deadline', d.assignment_id, d.kind, o.worker_id, o.outcome, d.worker_id,
		d.organisation_id, pg_temp.rt(d.starts_at), pg_temp.rt(d.due_at), d.clock,
		pg_temp.rt(d.remind_at), d.state, pg_temp.rt(d.missed_at), d.escalated)
	FROM deadlines d LEFT JOIN offers o ON o.id = d.offer_id
	WHERE d.assignment_id IN (SELECT assignment_id FROM fp_due)
	UNION ALL
	SELECT 5, e.assignment_id || pg_temp.rt(e.created_at) || e.reason || coalesce(d.id::text, ''), 0,
		concat_ws(' ', 'escalation', e.assignment_id, e.reason, d.id, e.organisation_id,
		pg_temp.rt(e.created_at), pg_temp.rt(e.resolved_at), e.level, pg_temp.rt(e.level2_at))
	FROM escalations e LEFT JOIN deadlines d ON d.id = e.deadline_id
	WHERE e.assignment_id IN (SELECT assignment_id FROM fp_due)
	UNION ALL
	SELECT 6, x.type || x.payload::text, 0, concat_ws(' ', 'outbox', x.type, x.payload,
		x.organisation_id, x.office_id)
	FROM outbox x WHERE pg_temp.rt(x.created_at) LIKE 'T+%'
	UNION ALL
	SELECT 7, w.id::text, 0, concat_ws(' ', 'worker', w.id, w.open_count, pg_temp.rt(w.last_assigned_at))
	FROM workers w) f
ORDER BY part, k1, k2, line;
SQL
)

# The reference, rolled back: mark, expire, then match_assignment one by one
# in due order. Its fingerprint, then what became of each due assignment.
reference() {
	refd_psql -At <<SQL
BEGIN;
CREATE TEMP TABLE ref_due AS
	SELECT row_number() OVER (ORDER BY d.due_at, d.id) AS n, d.id, d.assignment_id
	FROM deadlines d JOIN offers o ON o.id = d.offer_id AND o.outcome = 'pending'
	WHERE d.state = 'pending' AND d.kind = 'accept' AND d.due_at <= now();
CREATE TEMP TABLE fp_due AS SELECT assignment_id FROM ref_due;
DO \$\$
DECLARE
	r record;
BEGIN
	PERFORM ctx_set('{"role": "system"}', 'sweeper');
	PERFORM deadline_mark_missed(ARRAY(SELECT id FROM ref_due ORDER BY n));
	UPDATE offers SET outcome = 'expired', ended_at = now(), reason = 'accept_deadline_missed'
	WHERE assignment_id IN (SELECT assignment_id FROM ref_due) AND outcome = 'pending';
	UPDATE assignments SET status = 'expired' WHERE id IN (SELECT assignment_id FROM ref_due);
	FOR r IN SELECT assignment_id FROM ref_due ORDER BY n LOOP
		PERFORM match_assignment(r.assignment_id);
	END LOOP;
END \$\$;
$FINGERPRINT
SELECT string_agg(a.id || ' ' || a.status || ' ' || coalesce(a.worker_id::text, '-'), ',' ORDER BY a.id)
FROM assignments a WHERE a.id IN (SELECT assignment_id FROM ref_due);
ROLLBACK;
SQL
}

# The fingerprint of the due assignments (FILE: their ids) as they are now.
fingerprint() { # FILE
	refd_psql -At <<SQL
CREATE TEMP TABLE fp_due AS
	SELECT x::uuid AS assignment_id FROM unnest(string_to_array('$(paste -sd, "$1")', ',')) x;
$FINGERPRINT
SQL
}

# The sweep, as the daemon's role, with how many assignments went the
# ordinary way (match_assignment calls in its transaction).
sweep_counting() {
	psql -X -q -tA -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d "$REFD_DB" \
		-c "SET track_functions = 'pl'" -c "SET ROLE referrald_app" -c "BEGIN" \
		-c "SELECT deadline_sweep(1000)->>'processed'" \
		-c "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcname = 'match_assignment'" \
		-c "COMMIT"
}

@test "batch re-offer: the choices of match_assignment one after the other, three rounds" {
	local round ref got out due nunassigned
	for round in 1 2 3; do
		all_due
		qs "select d.assignment_id from deadlines d join offers o on o.id = d.offer_id
		    where d.state = 'pending' and d.kind = 'accept' and o.outcome = 'pending'
		    order by 1" >"$REFD_TMP/due"
		due=$(wc -l <"$REFD_TMP/due")
		[ "$due" -gt 0 ]
		fp_snapshot
		reference >"$REFD_TMP/ref"
		ref=$(tail -n 1 "$REFD_TMP/ref")
		sed '$d' "$REFD_TMP/ref" >"$REFD_TMP/ref.fp"
		out=$(sweep_counting)
		got=$(state_of "$REFD_TMP/due")
		echo "round $round: $due due; sweep: $out" >&2
		[ "$(sed -n 1p <<<"$out")" = "$due" ]
		if [ "$ref" != "$got" ]; then
			diff <(tr , '\n' <<<"$ref") <(tr , '\n' <<<"$got") >&2
			false
		fi
		# And everything else it left: history rows, offers, deadlines,
		# escalations, outbox events, loads, exactly as one by one.
		fingerprint "$REFD_TMP/due" >"$REFD_TMP/got.fp"
		[ "$(grep -c '^history ' "$REFD_TMP/got.fp")" -gt "$due" ]
		diff "$REFD_TMP/ref.fp" "$REFD_TMP/got.fp" >&2
		# Only those nobody could take went the ordinary way.
		nunassigned=$(tr , '\n' <<<"$got" | grep -c ' unassigned ' || true)
		[ "$(sed -n 2p <<<"$out")" = "$nunassigned" ]
	done
	# Some really moved on, some ran out of workers (the need with three).
	[ "$(qs "select count(*) from assignments where status = 'offered'")" -gt 20 ]
	[ "$(qs "select count(*) from assignments where status = 'unassigned'")" -gt 0 ]
	# Never over capacity, never two live offers, never re-offered to who let
	# it expire or declined it.
	[ "$(qs "select count(*) from workers where open_count > capacity")" = 0 ]
	[ "$(qs "select count(*) from workers w where open_count <>
	         (select count(*) from assignments a where a.worker_id = w.id
	          and a.status in ('offered','accepted','in_progress','on_hold'))")" = 0 ]
	[ "$(qs "select count(*) from (select assignment_id from offers where outcome = 'pending'
	         group by 1 having count(*) > 1) x")" = 0 ]
	[ "$(qs "select count(*) from offers p join offers o on o.assignment_id = p.assignment_id
	         and o.worker_id = p.worker_id and o.outcome in ('declined','expired')
	         where p.outcome = 'pending'")" = 0 ]
	# One escalation, one deadline.missed and one audit record per missed
	# deadline; one assignment.offered per offer made by the sweeper.
	[ "$(qs "select count(*) from deadlines d where d.state = 'missed'
	         and (select count(*) from escalations e where e.deadline_id = d.id) <> 1")" = 0 ]
	[ "$(qs "select count(*) from outbox where type = 'deadline.missed'")" = \
	  "$(qs "select count(*) from deadlines where state = 'missed'")" ]
	[ "$(qs "select count(*) from audit_log where action = 'deadline.missed'")" = \
	  "$(qs "select count(*) from deadlines where state = 'missed'")" ]
	[ "$(qs "select count(*) from outbox where type = 'assignment.offered'")" = \
	  "$(qs "select count(*) from offers")" ]
	# Each new offer has its accept deadline; the history has both steps.
	[ "$(qs "select count(*) from offers o where o.outcome = 'pending' and not exists
	         (select 1 from deadlines d where d.offer_id = o.id and d.state = 'pending' and d.kind = 'accept')")" = 0 ]
	[ "$(qs "select count(*) from assignment_history where from_status = 'offered' and to_status = 'expired'")" = \
	  "$(qs "select count(*) from offers where outcome = 'expired'")" ]
}

@test "batch re-offer meeting a busy worker: undone whole, redone one by one, each once" {
	local w out
	# new offers for the unassigned and decline-free ones: fresh submissions
	for i in $(seq 1 6); do
		submit "$(cat "$REFD_TMP/off2")" "k3-$i" "E3-$i" "U3-$i" '["harm_reduction"]' b2 '["ru","ky"]' >/dev/null
	done
	all_due
	local due
	due=$(qs "select count(*) from deadlines d join offers o on o.id = d.offer_id
	          where d.state = 'pending' and d.kind = 'accept' and o.outcome = 'pending'")
	[ "$due" -gt 1 ]
	# Someone holds the worker row of one of the due offers for 3 s.
	w=$(qs "select o.worker_id from deadlines d join offers o on o.id = d.offer_id
	        where d.state = 'pending' and d.kind = 'accept' and o.outcome = 'pending' order by d.due_at limit 1")
	refd_psql -c "begin" -c "select 1 from workers where id = '$w' for update" -c "select pg_sleep(3)" \
		-c "commit" >/dev/null &
	sleep 0.5
	out=$(q "select deadline_sweep(1000)")
	wait
	echo "$out" >&2
	# Not all done (the held worker's offers waited), none lost ...
	[ "$(jget "$out" .processed)" -lt "$due" ]
	[ "$(jget "$out" .skipped)" -gt 0 ]
	q "select deadline_sweep(1000)" >/dev/null
	[ "$(qs "select count(*) from deadlines d join offers o on o.id = d.offer_id
	         where d.kind = 'accept' and d.due_at <= now() and (d.state = 'pending' or o.outcome = 'pending')")" = 0 ]
	# ... and nothing twice.
	[ "$(qs "select count(*) from deadlines d where d.state = 'missed'
	         and (select count(*) from escalations e where e.deadline_id = d.id) <> 1")" = 0 ]
	[ "$(qs "select count(*) from audit_log where action = 'deadline.missed'")" = \
	  "$(qs "select count(*) from deadlines where state = 'missed'")" ]
	[ "$(qs "select count(*) from outbox where type = 'deadline.missed'")" = \
	  "$(qs "select count(*) from deadlines where state = 'missed'")" ]
	[ "$(qs "select count(*) from (select assignment_id from offers where outcome = 'pending'
	         group by 1 having count(*) > 1) x")" = 0 ]
	[ "$(qs "select count(*) from workers where open_count > capacity")" = 0 ]
}

@test "a row written once through a status (app.status_via): both steps checked against the table" {
	local a w
	a=$(qs "select id from assignments where status = 'offered' order by id limit 1")
	w=$(qs "select w.id from workers w, assignments a where a.id = '$a' and w.kind = a.need
	        and w.id <> a.worker_id order by w.id limit 1")
	# Allowed: offered -> expired -> offered, stamped as an offer.
	run refd_psql -At -c "begin" -c "select set_config('app.status_via', 'expired', true)" \
		-c "update assignments set worker_id = '$w', offered_at = now() - interval '1 day'
		    where id = '$a' returning status || ' ' || (offered_at = now())" -c "rollback"
	[ "$status" = 0 ]
	[ "${lines[1]}" = "offered true" ]
	# Each step refused once the table no longer lists it.
	run refd_psql -At -c "begin" \
		-c "delete from assignment_transitions where from_status = 'expired' and to_status = 'offered'" \
		-c "select set_config('app.status_via', 'expired', true)" \
		-c "update assignments set worker_id = '$w' where id = '$a'" -c "rollback"
	[ "$status" != 0 ]
	[[ "$output" == *"invalid transition expired -> offered"* ]]
	run refd_psql -At -c "begin" \
		-c "delete from assignment_transitions where from_status = 'offered' and to_status = 'expired'" \
		-c "select set_config('app.status_via', 'expired', true)" \
		-c "update assignments set worker_id = '$w' where id = '$a'" -c "rollback"
	[ "$status" != 0 ]
	[[ "$output" == *"invalid transition offered -> expired"* ]]
	# And a status that may not be passed through at all.
	run refd_psql -At -c "begin" -c "select set_config('app.status_via', 'completed', true)" \
		-c "update assignments set worker_id = '$w' where id = '$a'" -c "rollback"
	[ "$status" != 0 ]
	[[ "$output" == *"invalid transition offered -> completed"* ]]
}
