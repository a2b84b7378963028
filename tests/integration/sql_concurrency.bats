#!/usr/bin/env bats
# Concurrency of matching: 200 submissions from 16 parallel psql clients
# against workers of small capacity. No worker above capacity, every
# assignment offered or unassigned, never two live offers for one assignment,
# and the free capacity is used (no referral left unassigned while a slot
# was free).

load ../lib/common
load sql_common

setup_file() { sql_setup_file; }
teardown_file() { refd_teardown_file; }

# What a client does with the daemon's 503 (lock_not_available, "every
# candidate worker is busy": the wait for a locked worker ran out, nothing
# was written): submit again with the same key. Any other error fails.
submit_busy_retry() {
	local out i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		if out=$(sql_submit "$@" 2>"$REFD_TMP/err.$$"); then
			printf '%s\n' "$out"
			return 0
		fi
		grep -q 'every candidate worker is busy' "$REFD_TMP/err.$$" || { cat "$REFD_TMP/err.$$" >&2; return 1; }
		echo busy >>"$REFD_TMP/busy"
		sleep 0.2
	done
	return 1
}

@test "200 submissions, 16 clients, small capacities: capacity holds, no double offers" {
	local org off i
	org=$(sql_mk_org "o-cc")
	off=$(sql_mk_office "off-cc" cc)
	for i in 1 2 3 4 5; do
		sql_mk_worker "$org" harm_reduction "h$i-cc" '["cc"]' '["ru","ky"]' 3 >/dev/null
	done
	for i in 1 2 3; do
		sql_mk_worker "$org" legal_support "l$i-cc" '["cc"]' '["ru"]' 2 >/dev/null
	done
	export -f sql_app sql_api sql_submit sql_submit_args who_office submit_busy_retry
	export REFD_PGHOST REFD_PGPORT REFD_DB off REFD_TMP
	seq 1 200 | xargs -P 16 -I{} bash -c \
		'submit_busy_retry "$off" "key-{}" "EXT-{}" "UIC-{}" "[\"harm_reduction\",\"legal_support\"]" cc "[\"ru\"]" | jq -r .status' \
		>"$REFD_TMP/statuses"
	[ "$(sort "$REFD_TMP/statuses" | uniq -c | awk '{print $1 " " $2}')" = "200 201" ]
	# A busy answer rolled back everything: exactly one referral per key.
	[ "$(sql "select count(*) from referrals where office_id = '$off'")" = 200 ]
	echo "# busy answers retried: $(cat "$REFD_TMP/busy" 2>/dev/null | wc -l)" >&3
	# Nobody above capacity, and open_count agrees with the rows.
	[ "$(sql "select count(*) from workers w where w.open_count > w.capacity")" = 0 ]
	[ "$(sql "select count(*) from workers w where w.open_count <> (select count(*) from assignments a
	         where a.worker_id = w.id and a.status in ('offered','accepted','in_progress','on_hold'))")" = 0 ]
	# Every assignment offered or unassigned; every slot used.
	[ "$(sql "select count(*) from assignments where office_id = '$off' and status not in ('offered','unassigned')")" = 0 ]
	[ "$(sql "select count(*) from assignments where office_id = '$off' and need = 'harm_reduction' and status = 'offered'")" = 15 ]
	[ "$(sql "select count(*) from assignments where office_id = '$off' and need = 'legal_support' and status = 'offered'")" = 6 ]
	# One live offer per offered assignment, none for the unassigned.
	[ "$(sql "select count(*) from (select assignment_id from offers where outcome = 'pending' group by 1 having count(*) > 1) x")" = 0 ]
	[ "$(sql "select count(*) from assignments a where a.status = 'offered' and not exists
	         (select 1 from offers o where o.assignment_id = a.id and o.outcome = 'pending' and o.worker_id = a.worker_id)")" = 0 ]
	[ "$(sql "select count(*) from offers o join assignments a on a.id = o.assignment_id where a.status = 'unassigned' and o.outcome = 'pending'")" = 0 ]
	[ "$(sql "select count(*) from escalations where reason = 'unassigned' and resolved_at is null")" = $((400 - 21)) ]
	# The audit chain stayed whole under concurrent writers.
	[ "$(sql "select audit_verify()->>'first_bad_seq'")" = "" ]
}

@test "freed capacity is used again: decline under concurrency never double-offers" {
	local org off res ids w
	org=$(sql_mk_org "o-cd")
	off=$(sql_mk_office "off-cd" cd)
	for w in 1 2 3 4; do
		sql_mk_worker "$org" harm_reduction "h$w-cd" '["cd"]' '["ru"]' 2 >/dev/null
	done
	export -f sql_app sql_api sql_submit sql_submit_args who_office who_worker
	export REFD_PGHOST REFD_PGPORT REFD_DB off org
	seq 1 8 | xargs -P 8 -I{} bash -c \
		'sql_submit "$off" "key-{}" "EXT-{}" "UIC-{}" "[\"harm_reduction\"]" cd "[\"ru\"]" >/dev/null'
	# Every worker declines everything it holds, all at once.
	sql "select a.id || ' ' || a.worker_id from assignments a where a.office_id = '$off'" >"$REFD_TMP/offers"
	xargs -P 8 -L1 bash -c \
		'sql_api assignment_decline "$(who_worker "$1" "$org")" "{\"id\":\"$0\",\"reason\":\"busy\"}" | jq -r .status' \
		<"$REFD_TMP/offers" >"$REFD_TMP/declines"
	[ "$(sort -u "$REFD_TMP/declines")" = 200 ]
	[ "$(sql "select count(*) from workers w where w.open_count > w.capacity")" = 0 ]
	[ "$(sql "select count(*) from (select assignment_id from offers where outcome = 'pending' group by 1 having count(*) > 1) x")" = 0 ]
	# Nobody is offered what it declined.
	[ "$(sql "select count(*) from offers o where o.outcome = 'pending' and exists (select 1 from offers d
	         where d.assignment_id = o.assignment_id and d.worker_id = o.worker_id and d.outcome = 'declined')")" = 0 ]
}
