#!/usr/bin/env bats
# Matching (issue 3): kind, region, language, capacity, least-loaded order with
# the idle tie-break, match_reason, decline -> next worker, no candidate ->
# unassigned and visible to supervisors, leave/inactive -> offers re-offered.
# Every test works in a region of its own, so the workers it creates are the
# only candidates it can meet.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
}

teardown_file() { api_teardown_file; }

# ref_in REGION NEEDS_JSON [LANGS_JSON] [more jq]: submit as office 1.
ref_in() {
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$1\" | .needs=$2
		| .client.languages=${3:-[\"ky\",\"ru\"]} | ${4:-.}")"
	expect_status 201
}
# The office's answer names no worker and (without report-back) no status:
# the matcher's choice is read from the database.
hr_worker() { local w; w=$(worker_for harm_reduction); printf '%s' "${w:-none}"; }
ls_worker() { local w; w=$(worker_for legal_support); printf '%s' "${w:-none}"; }
hr_status() { status_for harm_reduction; }

@test "kind: each need goes to a worker of that kind" {
	local r hr ls
	r=$(new_region)
	hr=$(mk_worker "$ORG_A" harm_reduction "$r" ky,ru 5)
	ls=$(mk_worker "$ORG_A" legal_support "$r" ky,ru 5)
	ref_in "$r" '["harm_reduction","legal_support"]'
	[ "$(hr_worker)" = "$hr" ]
	[ "$(ls_worker)" = "$ls" ]
	ref_in "$r" '["legal_support"]'
	expect_json '.assignments | length' 1
	[ "$(ls_worker)" = "$ls" ]
	# No harm-reduction worker left with the right kind: unassigned, not the legal one.
	as_admin PATCH "/v1/workers/$hr" '{"active":false}'
	expect_status 200
	ref_in "$r" '["harm_reduction"]'
	[ "$(hr_status)" = unassigned ]
}

@test "region: a worker serves only its regions (several allowed)" {
	local r1 r2 r3 w
	r1=$(new_region)
	r2=$(new_region)
	r3=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$r1,$r2" ky,ru 5)
	ref_in "$r2" '["harm_reduction"]'
	[ "$(hr_worker)" = "$w" ]
	ref_in "$r1" '["harm_reduction"]'
	[ "$(hr_worker)" = "$w" ]
	ref_in "$r3" '["harm_reduction"]'
	[ "$(hr_status)" = unassigned ]
	# Adding the region to the worker makes it a candidate for new referrals.
	as_admin PATCH "/v1/workers/$w" "{\"regions\":[\"$r1\",\"$r2\",\"$r3\"]}"
	expect_status 200
	ref_in "$r3" '["harm_reduction"]'
	[ "$(hr_worker)" = "$w" ]
}

@test "language: worker and client must share one" {
	local r ky ru
	r=$(new_region)
	ky=$(mk_worker "$ORG_A" harm_reduction "$r" ky 5)
	ref_in "$r" '["harm_reduction"]' '["ru"]'
	[ "$(hr_status)" = unassigned ]
	ref_in "$r" '["harm_reduction"]' '["uz","ky"]'
	[ "$(hr_worker)" = "$ky" ]
	ru=$(mk_worker "$ORG_B" harm_reduction "$r" ru,en 5)
	ref_in "$r" '["harm_reduction"]' '["ru"]'
	[ "$(hr_worker)" = "$ru" ]
}

@test "capacity: open assignments (offered, accepted, in_progress, on_hold) count; ended ones free a place" {
	local r w wt a1 a2
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)
	ref_in "$r" '["harm_reduction"]'
	a1=$(assignment_for harm_reduction)
	[ "$(hr_worker)" = "$w" ]
	ref_in "$r" '["harm_reduction"]'
	a2=$(assignment_for harm_reduction)
	[ "$(hr_worker)" = "$w" ]
	as "$wt" POST "/v1/assignments/$a1/accept"
	as "$wt" POST "/v1/assignments/$a1/events" '{"type":"contact_made"}'
	as "$wt" POST "/v1/assignments/$a2/accept"
	as "$wt" POST "/v1/assignments/$a2/hold" '{"reason":"r"}'
	expect_json .status on_hold
	# Full: in_progress + on_hold = 2.
	ref_in "$r" '["harm_reduction"]'
	[ "$(hr_status)" = unassigned ]
	as "$wt" POST "/v1/assignments/$a1/complete" '{"outcome":"engaged"}'
	expect_status 200
	ref_in "$r" '["harm_reduction"]'
	[ "$(hr_worker)" = "$w" ]
	ref_in "$r" '["harm_reduction"]'
	[ "$(hr_status)" = unassigned ]
	# Raising the capacity makes room for new referrals.
	as_admin PATCH "/v1/workers/$w" '{"capacity":3}'
	expect_status 200
	expect_json .capacity 3
	ref_in "$r" '["harm_reduction"]'
	[ "$(hr_worker)" = "$w" ]
}

@test "least loaded (open/capacity) first, ties to the one idle longest" {
	local r a b seq i
	r=$(new_region)
	a=$(mk_worker "$ORG_A" harm_reduction "$r" ky 4)
	ref_in "$r" '["harm_reduction"]'
	[ "$(hr_worker)" = "$a" ]
	b=$(mk_worker "$ORG_B" harm_reduction "$r" ky 2)
	# a 1/4 vs b 0/2 -> b; a 1/4 vs b 1/2 -> a; a 2/4 vs b 1/2, tie -> b (idle
	# longer: its last offer is older); b full -> a; a 3/4, b full -> a; then none.
	seq=""
	for i in 1 2 3 4 5 6; do
		ref_in "$r" '["harm_reduction"]'
		case $(hr_worker) in
		"$a") seq="$seq a" ;;
		"$b") seq="$seq b" ;;
		*) seq="$seq -" ;;
		esac
	done
	echo "order:$seq" >&2
	[ "$seq" = " b a b a a -" ]
}

@test "each offer records a match_reason, shown to supervisors, not to workers" {
	local r w wt asg
	r=$(new_region)
	read -r w wt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)
	ref_in "$r" '["harm_reduction"]'
	asg=$(assignment_for harm_reduction)
	as "$SUP_A_TOKEN" GET "/v1/assignments/$asg"
	expect_status 200
	expect_jq '.match_reason != null and .match_reason != ""'
	as "$wt" GET "/v1/assignments/$asg"
	expect_status 200
	expect_jq 'has("match_reason") | not'
	[ "$(sql "SELECT count(*) FROM offers WHERE assignment_id = '$asg' AND match_reason IS NOT NULL")" = 1 ]
}

@test "decline -> the next worker at once; decliners are never offered it again; none left -> unassigned" {
	local r x xt y yt asg first second firstt secondt
	r=$(new_region)
	read -r x xt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 3)
	read -r y yt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 3)
	ref_in "$r" '["harm_reduction"]'
	asg=$(assignment_for harm_reduction)
	first=$(hr_worker)
	if [ "$first" = "$x" ]; then
		firstt=$xt second=$y secondt=$yt
	else
		firstt=$yt second=$x secondt=$xt
	fi
	as "$firstt" POST "/v1/assignments/$asg/decline" '{"reason":"no time"}'
	expect_status 200
	as "$secondt" GET "/v1/assignments?status=offered"
	expect_jq "[.items[].id] | index(\"$asg\") != null"
	as "$firstt" GET "/v1/assignments?status=offered"
	expect_jq "[.items[].id] | index(\"$asg\") == null"
	as "$secondt" POST "/v1/assignments/$asg/decline" '{"reason":"conflict of interest"}'
	expect_status 200
	# The first decliner has room but must not get it back.
	[ "$(sql "SELECT status FROM assignments WHERE id = '$asg'")" = unassigned ]
	as "$firstt" GET "/v1/assignments/$asg"
	expect_error 404 not_found
	[ "$(sql "SELECT count(*) FROM offers WHERE assignment_id = '$asg'")" = 2 ]
	# Visible to the programme supervisor and the supervisor of the region's organisation.
	as "$PROG_TOKEN" GET "/v1/assignments/$asg"
	expect_status 200
	expect_json .status unassigned
	as "$SUP_A_TOKEN" GET '/v1/assignments?status=unassigned&limit=200'
	expect_jq "[.items[].id] | index(\"$asg\") != null"
	as "$SUP_B_TOKEN" GET "/v1/assignments/$asg"
	expect_error 404 not_found
}

@test "no candidate: unassigned, visible to the programme supervisor's list" {
	local r asg
	r=$(new_region)
	ref_in "$r" '["harm_reduction","legal_support"]'
	[ "$(status_for harm_reduction)" = unassigned ] && [ "$(status_for legal_support)" = unassigned ]
	[ "$(sql "SELECT count(*) FROM assignments WHERE referral_id = '$(jget .id)'
		AND worker_id IS NULL AND offer_expires_at IS NULL")" = 2 ]
	asg=$(assignment_for legal_support)
	as "$PROG_TOKEN" GET '/v1/assignments?status=unassigned&limit=200'
	expect_status 200
	expect_jq "[.items[].id] | index(\"$asg\") != null"
	as "$PROG_TOKEN" GET "/v1/assignments/$asg"
	expect_status 200
	expect_json .status unassigned
}

@test "worker on leave: its offers are re-offered, its accepted work stays, it gets no new offers" {
	local r x xt y yt a1 a2 a3
	r=$(new_region)
	read -r x xt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 5)
	ref_in "$r" '["harm_reduction"]'
	a1=$(assignment_for harm_reduction)
	ref_in "$r" '["harm_reduction"]'
	a2=$(assignment_for harm_reduction)
	[ "$(hr_worker)" = "$x" ]
	as "$xt" POST "/v1/assignments/$a1/accept"
	expect_status 200
	read -r y yt < <(worker_with_token "$ORG_B" harm_reduction "$r" ky 5)
	as_admin PATCH "/v1/workers/$x" '{"on_leave":true}'
	expect_status 200
	expect_json .on_leave true
	# The open offer moved to y; the accepted assignment stayed with x.
	as "$yt" GET '/v1/assignments?status=offered'
	expect_jq "[.items[].id] | index(\"$a2\") != null"
	[ "$(sql "SELECT worker_id FROM assignments WHERE id = '$a2'")" = "$y" ]
	[ "$(sql "SELECT worker_id || ' ' || status FROM assignments WHERE id = '$a1'")" = "$x accepted" ]
	as "$xt" GET '/v1/assignments?status=offered'
	expect_json '.items | length' 0
	# New referrals skip x although it is less loaded than y.
	ref_in "$r" '["harm_reduction"]'
	a3=$(assignment_for harm_reduction)
	[ "$(hr_worker)" = "$y" ]
	# Back from leave: a candidate again.
	as_admin PATCH "/v1/workers/$x" '{"on_leave":false}'
	expect_status 200
	ref_in "$r" '["harm_reduction"]'
	[ "$(hr_worker)" = "$x" ]
}

@test "deactivated worker: offers re-offered (or unassigned when nobody else fits)" {
	local r x xt a
	r=$(new_region)
	read -r x xt < <(worker_with_token "$ORG_A" legal_support "$r" ru 2)
	ref_in "$r" '["legal_support"]' '["ru"]'
	a=$(assignment_for legal_support)
	[ "$(ls_worker)" = "$x" ]
	as_admin PATCH "/v1/workers/$x" '{"active":false}'
	expect_status 200
	[ "$(sql "SELECT status FROM assignments WHERE id = '$a'")" = unassigned ]
	# A deactivated worker's token no longer authenticates (401), or the
	# assignment is out of its scope (404).
	as "$xt" GET "/v1/assignments/$a"
	expect_status 401 404
}

@test "worker administration validates its input" {
	as_admin POST /v1/workers "{\"organisation_id\":\"$ORG_A\",\"kind\":\"cook\",\"handle\":\"h-$(rand_hex 3)\",\"regions\":[\"osh\"],\"languages\":[\"ky\"],\"capacity\":2}"
	expect_error 400 "" /kind
	as_admin POST /v1/workers "{\"organisation_id\":\"$ORG_A\",\"kind\":\"legal_support\",\"handle\":\"h-$(rand_hex 3)\",\"regions\":[\"osh\"],\"languages\":[\"ky\"],\"capacity\":-1}"
	expect_error 400 "" /capacity
	as_admin POST /v1/workers "{\"organisation_id\":\"$(new_uuid)\",\"kind\":\"legal_support\",\"handle\":\"h-$(rand_hex 3)\",\"regions\":[\"osh\"],\"languages\":[\"ky\"],\"capacity\":2}"
	expect_error 400 "" /organisation_id
	as_admin PATCH "/v1/workers/$(new_uuid)" '{"capacity":3}'
	expect_error 404 not_found
	as_admin PATCH "/v1/workers/$(mk_worker "$ORG_A" legal_support osh ky 1)" '{"colour":"red"}'
	expect_error 400 unknown_field /colour
}
