#!/usr/bin/env bats
# The assignment status machine as data: every allowed transition through the
# api_ functions, forbidden ones answered 409 invalid_transition, and direct
# UPDATEs (even by a superuser) refused by the trigger; history rows record
# who did each transition; the referral closes when all assignments end.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file
	local reg=sm org off
	org=$(sql_mk_org "o-sm")
	off=$(sql_mk_office "off-sm" "$reg")
	W1=$(sql_mk_worker "$org" harm_reduction "w1-sm" "[\"$reg\"]" '["ru"]' 50)
	W2=$(sql_mk_worker "$org" harm_reduction "w2-sm" "[\"$reg\"]" '["ru"]' 50)
	L1=$(sql_mk_worker "$org" legal_support "l1-sm" "[\"$reg\"]" '["ru"]' 50)
	echo "$org" >"$REFD_TMP/org"
	echo "$off" >"$REFD_TMP/off"
	echo "$W1 $W2 $L1" >"$REFD_TMP/workers"
}
teardown_file() { refd_teardown_file; }

setup() {
	ORG=$(cat "$REFD_TMP/org")
	OFF=$(cat "$REFD_TMP/off")
	read -r W1 W2 L1 <"$REFD_TMP/workers"
}

# new_offer -> "ASSIGNMENT_ID WORKER_ID" of a fresh harm-reduction offer
new_offer() {
	local res
	res=$(sql_submit "$OFF" "k$RANDOM$RANDOM" "E$RANDOM$RANDOM" "U$RANDOM$RANDOM" '["harm_reduction"]' sm '["ru"]')
	echo "$(jget '.body.assignments[0].id' "$res") $(sql_first_worker "$res")"
}
act() { # ACTION WORKER ASSIGNMENT [EXTRA_JSON]
	sql_api "assignment_$1" "$(who_worker "$2" "$ORG")" "{\"id\":\"$3\"${4:+,$4}}"
}

@test "the transition table is exactly the protocol's machine" {
	run sql "select string_agg(from_status || '>' || to_status, ' ' order by from_status, to_status) from assignment_transitions"
	[ "$output" = "accepted>cancelled accepted>in_progress accepted>on_hold accepted>reassigned declined>offered declined>unassigned expired>offered expired>unassigned in_progress>cancelled in_progress>completed in_progress>failed in_progress>on_hold in_progress>reassigned offered>accepted offered>cancelled offered>declined offered>expired offered>reassigned on_hold>cancelled on_hold>in_progress on_hold>reassigned unassigned>cancelled unassigned>offered unassigned>reassigned" ]
}

@test "offered -> accepted -> in_progress -> on_hold -> in_progress -> completed" {
	local aid w res
	read -r aid w <<<"$(new_offer)"
	res=$(act accept "$w" "$aid")
	[ "$(jget .status "$res")" = 200 ]
	[ "$(jget .body.status "$res")" = accepted ]
	# Sealed values leave SQL naming the row they are bound to (the daemon
	# opens them only there).
	[ "$(jget .body.client.contact_sealed.sealed "$res")" = "k1:c2VhbGVk" ]
	[ "$(jget '.body.client.contact_sealed | "\(.table) \(.column)"' "$res")" = "referrals contact" ]
	res=$(act event "$w" "$aid" '"type":"contact_attempt"')
	[ "$(jget .status "$res")" = 201 ]
	[ "$(sql "select status from assignments where id = '$aid'")" = accepted ]
	res=$(act event "$w" "$aid" '"type":"contact_made"')
	[ "$(jget .status "$res")" = 201 ]
	[ "$(sql "select status from assignments where id = '$aid'")" = in_progress ]
	[ "$(sql "select state from deadlines where assignment_id = '$aid' and kind = 'first_contact'")" = met ]
	res=$(act hold "$w" "$aid" '"reason":"hospital"')
	[ "$(jget .body.status "$res")" = on_hold ]
	res=$(act resume "$w" "$aid")
	[ "$(jget .body.status "$res")" = in_progress ]
	res=$(act complete "$w" "$aid" '"outcome":"engaged"')
	[ "$(jget .body.status "$res")" = completed ]
	[ "$(jget .body.outcome "$res")" = engaged ]
	[ "$(jget .body.client "$res")" = null ]
	# Every step in the history with its actor and request id.
	run sql "select string_agg(coalesce(from_status,'-') || '>' || to_status || ':' || actor_role, ' ' order by id) from assignment_history where assignment_id = '$aid'"
	[ "$output" = "->unassigned:office unassigned>offered:office offered>accepted:worker accepted>in_progress:worker in_progress>on_hold:worker on_hold>in_progress:worker in_progress>completed:worker" ]
	[ "$(sql "select count(*) from assignment_history where assignment_id = '$aid' and request_id is null")" = 0 ]
	# The referral's only assignment ended: closed.
	[ "$(sql "select r.status from referrals r join assignments a on a.referral_id = r.id where a.id = '$aid'")" = closed ]
}

@test "accepted -> on_hold, in_progress -> failed; legal support gets a consultation deadline" {
	local res aid w
	res=$(sql_submit "$OFF" "k$RANDOM" "E$RANDOM" "U$RANDOM" '["legal_support"]' sm '["ru"]')
	aid=$(jget '.body.assignments[0].id' "$res")
	w=$(sql_first_worker "$res")
	[ "$w" = "$L1" ]
	act accept "$w" "$aid" >/dev/null
	[ "$(sql "select string_agg(kind, ',' order by kind) from deadlines where assignment_id = '$aid' and state = 'pending'")" = "consultation,first_contact" ]
	res=$(act hold "$w" "$aid" '"reason":"x"')
	[ "$(jget .body.status "$res")" = on_hold ]
	res=$(act resume "$w" "$aid")
	[ "$(jget .body.status "$res")" = in_progress ]
	res=$(act event "$w" "$aid" '"type":"service_delivered"')
	[ "$(sql "select state from deadlines where assignment_id = '$aid' and kind = 'consultation'")" = met ]
	res=$(act fail "$w" "$aid" '"reason":"detained"')
	[ "$(jget .body.status "$res")" = failed ]
	[ "$(jget .body.reason "$res")" = detained ]
	[ "$(sql "select count(*) from deadlines where assignment_id = '$aid' and state = 'pending'")" = 0 ]
}

@test "forbidden transitions through the api answer 409 invalid_transition" {
	local aid w res
	read -r aid w <<<"$(new_offer)"
	for a in resume complete fail hold; do
		res=$(act "$a" "$w" "$aid" '"reason":"other","outcome":"engaged"')
		[ "$(jget .status "$res")" = 409 ]
		[ "$(jget .body.error.code "$res")" = invalid_transition ]
	done
	res=$(act event "$w" "$aid" '"type":"note"')
	[ "$(jget .body.error.code "$res")" = invalid_transition ]
	act accept "$w" "$aid" >/dev/null
	for a in accept decline resume complete; do
		res=$(act "$a" "$w" "$aid" '"reason":"x","outcome":"engaged"')
		[ "$(jget .status "$res")" = 409 ]
	done
	[ "$(sql "select status from assignments where id = '$aid'")" = accepted ]
}

@test "direct UPDATEs outside the table are refused by the trigger, even for a superuser" {
	local aid w
	read -r aid w <<<"$(new_offer)"
	for to in completed in_progress on_hold failed unassigned; do
		run sql "update assignments set status = '$to' where id = '$aid'"
		[ "$status" -ne 0 ]
		[[ "$output" == *"invalid transition offered -> $to"* ]]
	done
	run sql "insert into assignments (referral_id, office_id, need, urgency, region, languages, status)
	        select referral_id, office_id, need, urgency, region, languages, 'accepted' from assignments where id = '$aid'"
	[ "$status" -ne 0 ]
	# An allowed direct change passes and is recorded as the database user.
	run sql "update assignments set status = 'accepted' where id = '$aid'"
	[ "$status" -eq 0 ]
	[ "$(sql "select actor_role from assignment_history where assignment_id = '$aid' order by id desc limit 1")" = "db:postgres" ]
	run sql "update assignments set status = 'offered' where id = '$aid'"
	[ "$status" -ne 0 ]
}

@test "the daemon's role cannot update a row it cannot see (row-level security)" {
	local aid w
	read -r aid w <<<"$(new_offer)"
	# No context set: the policies hide every row.
	[ "$(sql_app "select count(*) from assignments")" = 0 ]
	[ "$(sql_app "select count(*) from referrals")" = 0 ]
	run sql_app "update assignments set status = 'accepted' where id = '$aid' returning id"
	[ -z "$output" ]
	# A worker context sees only its own assignments.
	[ "$(sql_app "select set_config('app.role','worker',false), set_config('app.subject','$W2',false); select count(*) from assignments where worker_id <> '$W2'" | tail -1)" = 0 ]
}

@test "two concurrent accepts of one offer: exactly one wins" {
	local aid w i
	for i in 1 2 3 4 5; do
		read -r aid w <<<"$(new_offer)"
		sql_api assignment_accept "$(who_worker "$w" "$ORG")" "{\"id\":\"$aid\"}" >"$REFD_TMP/a1" &
		sql_api assignment_accept "$(who_worker "$w" "$ORG")" "{\"id\":\"$aid\"}" >"$REFD_TMP/a2" &
		sql_api assignment_decline "$(who_worker "$w" "$ORG")" "{\"id\":\"$aid\",\"reason\":\"r\"}" >"$REFD_TMP/a3" &
		wait
		# One 200; the losers see 409 (already accepted/declined) or 404
		# (declined first: the offer went to another worker).
		run sh -c "cat '$REFD_TMP/a1' '$REFD_TMP/a2' '$REFD_TMP/a3' | jq -r .status | sort | tr '\n' ' '"
		[[ "$output" =~ ^200\ (404|409)\ (404|409)\ $ ]]
		[ "$(sql "select count(*) from assignment_history where assignment_id = '$aid' and from_status = 'offered'")" = 1 ]
	done
}

@test "another worker cannot act on an offer it does not hold: 404 and a denied audit record" {
	local aid w other res
	read -r aid w <<<"$(new_offer)"
	if [ "$w" = "$W1" ]; then other=$W2; else other=$W1; fi
	res=$(act accept "$other" "$aid")
	[ "$(jget .status "$res")" = 404 ]
	[ "$(jget .body.error.code "$res")" = not_found ]
	[ "$(sql "select count(*) from audit_log where action = 'assignment.accept' and object_id = '$aid' and outcome = 'denied' and actor_id = '$other'")" = 1 ]
	[ "$(sql "select status from assignments where id = '$aid'")" = offered ]
}

@test "withdrawal cancels open assignments; reassign moves one to a named worker" {
	local res rid aid w other
	res=$(sql_submit "$OFF" "k$RANDOM" "E$RANDOM" "U$RANDOM" '["harm_reduction","legal_support"]' sm '["ru"]')
	rid=$(jget .body.id "$res")
	aid=$(jget '.body.assignments[0].id' "$res")
	w=$(sql_first_worker "$res")
	if [ "$w" = "$W1" ]; then other=$W2; else other=$W1; fi
	act accept "$w" "$aid" >/dev/null
	res=$(sql_api assignment_reassign "$(who_sup 00000000-0000-4000-8000-00000000000a "$ORG")" "{\"id\":\"$aid\",\"worker_id\":\"$other\",\"reason\":\"test\"}")
	[ "$(jget .status "$res")" = 200 ]
	[ "$(jget .body.status "$res")" = offered ]
	[ "$(jget .body.worker_id "$res")" = "$other" ]
	[ "$(jget .body.replaces "$res")" = "$aid" ]
	[ "$(sql "select status from assignments where id = '$aid'")" = reassigned ]
	res=$(sql_api referral_withdraw "$(who_office "$OFF")" "{\"id\":\"$rid\",\"reason\":\"moved\"}")
	[ "$(jget .status "$res")" = 200 ]
	[ "$(jget .body.status "$res")" = withdrawn ]
	[ "$(sql "select count(*) from assignments where referral_id = '$rid' and status not in ('cancelled','reassigned')")" = 0 ]
	[ "$(sql "select count(*) from deadlines d join assignments a on a.id = d.assignment_id where a.referral_id = '$rid' and d.state = 'pending'")" = 0 ]
	res=$(sql_api referral_withdraw "$(who_office "$OFF")" "{\"id\":\"$rid\",\"reason\":\"again\"}")
	[ "$(jget .status "$res")" = 409 ]
}
