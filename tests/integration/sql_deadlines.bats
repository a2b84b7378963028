#!/usr/bin/env bats
# Deadlines as rows and deadline_sweep(): an offer not accepted in time
# expires and goes to the next candidate (or unassigned + escalation), first
# contact met or missed with the elapsed time, and several sweepers in
# parallel act on each deadline exactly once. Policies are set to seconds.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file
	api deadline_policy_put "$(who_admin)" '{"need":"harm_reduction","urgency":"urgent","accept_within":"PT1S","first_contact_within":"PT1S"}' >/dev/null
	api deadline_policy_put "$(who_admin)" '{"need":"legal_support","urgency":"urgent","accept_within":"PT3S","first_contact_within":"PT3S"}' >/dev/null
}
teardown_file() { refd_teardown_file; }

sweep() { q "select deadline_sweep(${1:-100})"; }

@test "an offer not accepted in time expires, the next worker is offered, the deadline is missed" {
	local org off a b res aid first second
	org=$(mk_org o-d1)
	off=$(mk_office off-d1 d1)
	a=$(mk_worker "$org" legal_support a-d1 '["d1"]' '["ru"]' 3)
	b=$(mk_worker "$org" legal_support b-d1 '["d1"]' '["ru"]' 3)
	res=$(submit "$off" k1 E1 U1 '["legal_support"]' d1 '["ru"]' urgent)
	aid=$(jget "$res" '.body.assignments[0].id')
	# Not yet due: nothing happens, and the sweeper is told when to wake
	# (3 s to accept here, not 1: on a loaded machine, or beside a sanitizer
	# run, submitting and the first sweep alone took over a second).
	res=$(sweep)
	[ "$(jget "$res" .processed)" = 0 ]
	[ "$(jget "$res" .next_due_in_ms)" -le 3000 ]
	# The office's answer names no worker: the first offer's, from the
	# database (read after the first sweep, which the 3 s offer must beat).
	first=$(qs "select worker_id from offers where assignment_id = '$aid' order by offered_at, id limit 1")
	if [ "$first" = "$a" ]; then second=$b; else second=$a; fi
	sleep 3.2
	res=$(sweep)
	[ "$(jget "$res" .processed)" = 1 ]
	[ "$(qs "select status || ' ' || worker_id from assignments where id = '$aid'")" = "offered $second" ]
	[ "$(qs "select outcome from offers where assignment_id = '$aid' and worker_id = '$first'")" = expired ]
	[ "$(qs "select state || ' ' || escalated from deadlines where assignment_id = '$aid' and worker_id = '$first'")" = "missed true" ]
	[ "$(qs "select count(*) from escalations e join deadlines d on d.id = e.deadline_id where d.assignment_id = '$aid'")" = 1 ]
	[ "$(qs "select count(*) from deadlines where assignment_id = '$aid' and state = 'pending' and worker_id = '$second'")" = 1 ]
	# A late accept by the first worker is refused (404: the offer moved on).
	res=$(api assignment_accept "$(who_worker "$first" "$org")" "{\"id\":\"$aid\"}")
	[ "$(jget "$res" .status)" = 404 ]
	# The second lets it expire too: nobody left -> unassigned + escalation.
	sleep 3.2
	sweep >/dev/null
	[ "$(qs "select status from assignments where id = '$aid'")" = unassigned ]
	[ "$(qs "select count(*) from escalations where assignment_id = '$aid' and reason = 'unassigned' and resolved_at is null")" = 1 ]
	[ "$(qs "select count(*) from outbox where type = 'deadline.missed' and payload->>'assignment_id' = '$aid'")" = 2 ]
}

@test "accept after offer_expires_at but before the sweep: 409 offer_expired" {
	local org off w res aid
	org=$(mk_org o-d2)
	off=$(mk_office off-d2 d2)
	w=$(mk_worker "$org" harm_reduction a-d2 '["d2"]' '["ru"]' 3)
	res=$(submit "$off" k1 E1 U1 '["harm_reduction"]' d2 '["ru"]' urgent)
	aid=$(jget "$res" '.body.assignments[0].id')
	sleep 1.2
	res=$(api assignment_accept "$(who_worker "$w" "$org")" "{\"id\":\"$aid\"}")
	[ "$(jget "$res" .status)" = 409 ]
	[ "$(jget "$res" .body.error.code)" = offer_expired ]
}

@test "first contact: on time -> met with elapsed; late -> missed, escalated, time still recorded" {
	local org off w res a1 a2
	org=$(mk_org o-d3)
	off=$(mk_office off-d3 d3)
	w=$(mk_worker "$org" harm_reduction a-d3 '["d3"]' '["ru"]' 5)
	api deadline_policy_put "$(who_admin)" '{"need":"harm_reduction","urgency":"normal","first_contact_within":"PT1S"}' >/dev/null
	a1=$(jget "$(submit "$off" k1 E1 U1 '["harm_reduction"]' d3 '["ru"]')" '.body.assignments[0].id')
	a2=$(jget "$(submit "$off" k2 E2 U2 '["harm_reduction"]' d3 '["ru"]')" '.body.assignments[0].id')
	api assignment_accept "$(who_worker "$w" "$org")" "{\"id\":\"$a1\"}" >/dev/null
	api assignment_accept "$(who_worker "$w" "$org")" "{\"id\":\"$a2\"}" >/dev/null
	# Accept deadlines were met, with their elapsed time.
	[ "$(qs "select count(*) from deadlines where kind = 'accept' and assignment_id in ('$a1','$a2') and state = 'met' and elapsed is not null")" = 2 ]
	res=$(api assignment_event "$(who_worker "$w" "$org")" "{\"id\":\"$a1\",\"type\":\"contact_made\"}")
	[ "$(jget "$res" .status)" = 201 ]
	[ "$(qs "select state from deadlines where assignment_id = '$a1' and kind = 'first_contact'")" = met ]
	sleep 1.2
	sweep >/dev/null
	[ "$(qs "select state || ' ' || escalated from deadlines where assignment_id = '$a2' and kind = 'first_contact'")" = "missed true" ]
	[ "$(qs "select count(*) from escalations e join deadlines d on d.id = e.deadline_id where d.assignment_id = '$a2' and e.organisation_id = '$org'")" = 1 ]
	api assignment_event "$(who_worker "$w" "$org")" "{\"id\":\"$a2\",\"type\":\"contact_made\"}" >/dev/null
	[ "$(qs "select state || ' ' || (met_at is not null) || ' ' || (elapsed >= interval '1 second') from deadlines where assignment_id = '$a2' and kind = 'first_contact'")" = "missed true true" ]
	# Overdue shows in the supervisor's list.
	res=$(api assignment_list "$(who_sup 00000000-0000-4000-8000-0000000000cc "$org")" '{"overdue":true}')
	[ "$(jget "$res" '[.body.items[].id] | index("'"$a2"'") != null')" = true ]
	[ "$(jget "$res" '[.body.items[].id] | index("'"$a1"'") == null')" = true ]
	res=$(api deadline_list "$(who_sup 00000000-0000-4000-8000-0000000000cc "$org")" '{"state":"missed"}')
	[ "$(jget "$res" '.body.items | length')" = 1 ]
}

@test "four sweepers in parallel, 100 deadlines due together: each acted on exactly once" {
	local org off i
	org=$(mk_org o-d4)
	off=$(mk_office off-d4 d4)
	for i in $(seq 1 10); do
		mk_worker "$org" harm_reduction "w$i-d4" '["d4"]' '["ru"]' 20 >/dev/null
	done
	export -f q api submit submit_args who_office
	export REFD_PGHOST REFD_PGPORT REFD_DB off
	seq 1 100 | xargs -P 8 -I{} bash -c \
		'submit "$off" "k{}" "E{}" "U{}" "[\"harm_reduction\"]" d4 "[\"ru\"]" urgent >/dev/null'
	[ "$(qs "select count(*) from assignments where office_id = '$off' and status = 'offered'")" = 100 ]
	sleep 1.5
	# Each sweeper takes small batches, so they really interleave.
	seq 1 4 | xargs -P 4 -I{} bash -c \
		'for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do q "select deadline_sweep(5)"; done' \
		>"$REFD_TMP/sweeps"
	[ "$(qs "select count(*) from deadlines d join assignments a on a.id = d.assignment_id
	         where a.office_id = '$off' and d.kind = 'accept' and d.state = 'missed'")" -ge 100 ]
	# Exactly one escalation per missed deadline, one expiry per missed offer.
	[ "$(qs "select count(*) from deadlines d where d.state = 'missed' and
	         (select count(*) from escalations e where e.deadline_id = d.id) <> 1")" = 0 ]
	[ "$(qs "select count(*) from (select d.id from deadlines d join offers o on o.id = d.offer_id
	         where d.state = 'missed' and o.outcome <> 'expired') x")" = 0 ]
	[ "$(qs "select count(*) from (select assignment_id from offers where outcome = 'pending' group by 1 having count(*) > 1) x")" = 0 ]
	[ "$(qs "select count(*) from audit_log where action = 'deadline.missed'")" = "$(qs "select count(*) from deadlines where state = 'missed'")" ]
	[ "$(qs "select count(*) from workers w where w.open_count > w.capacity")" = 0 ]
}
