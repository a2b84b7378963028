#!/usr/bin/env bats
# Concurrency (issue 3): 200 submissions from 16 parallel clients against
# workers of small capacity -> no worker above capacity, no capacity lost,
# every assignment offered or unassigned, no double offers; and races on one
# offer (concurrent accepts, accept against decline, accept against a
# supervisor's reassignment) -> exactly one winner.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
}

teardown_file() { api_teardown_file; }

# parallel_post N_PARALLEL DIR TOKEN: POST every DIR/*.json to /v1/referrals
# (unique Idempotency-Key each), status codes to DIR/*.code.
parallel_post() {
	local par=$1 dir=$2 tok=$3
	ls "$dir"/*.json | xargs -P "$par" -I{} sh -c '
		f=$1
		curl -sS --http1.1 --cacert "$API_CA" --max-time 60 -o "$f.out" -w "%{http_code}" \
			-H "Authorization: Bearer $2" -H "Content-Type: application/json" \
			-H "Idempotency-Key: c-$(basename "$f" .json)-$$" \
			--data-binary "@$f" "$API_URL/v1/referrals" >"$f.code" 2>"$f.err" || true
	' _ {} "$tok"
	# Error bodies join the file's leak check.
	local f
	for f in "$dir"/*.json; do
		case $(cat "$f.code" 2>/dev/null) in 2??) ;; *) cat "$f.out" >>"$API_ERRORS" 2>/dev/null ;; esac
	done
}

# race DIR CMD...: each line of CMD is "TOKEN METHOD PATH [BODY]", started
# together; codes in DIR/N.code.
race() {
	local dir=$1 i=0 tok method path body
	shift
	mkdir -p "$dir"
	while read -r tok method path body; do
		[ -n "$tok" ] || continue
		i=$((i + 1))
		(
			curl -sS --http1.1 --cacert "$API_CA" --max-time 30 -o "$dir/$i.out" -w '%{http_code}' \
				-X "$method" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
				${body:+--data-binary "$body"} "$API_URL$path" >"$dir/$i.code" 2>/dev/null
		) &
	done
	wait
}
# The codes files hold no newline (curl -w): add one each before counting.
all_codes() { for f in "$1"/*.code; do cat "$f"; echo; done; }
count_code() { all_codes "$1" | grep -cx "$2" || true; }

@test "200 submissions from 16 parallel clients: capacity never exceeded, none lost, no double offers" {
	local r dir i line hr_cap ls_cap w cap n t0 t1 spec tok kind
	r=$(new_region)
	dir=$BATS_TEST_TMPDIR/subs
	mkdir -p "$dir"
	# Small capacities: 6 harm-reduction places, 4 legal-support places.
	: >"$BATS_TEST_TMPDIR/workers"
	for spec in "$ORG_A harm_reduction ky,ru 2" "$ORG_A harm_reduction ky 3" "$ORG_B harm_reduction ru 1" \
		"$ORG_A legal_support ky,ru 2" "$ORG_B legal_support ru,ky 2"; do
		set -- $spec
		read -r w tok < <(worker_with_token "$1" "$2" "$r" "$3" "$4")
		[ -n "$tok" ]
		echo "$w $4 $tok $2" >>"$BATS_TEST_TMPDIR/workers"
	done
	hr_cap=6
	ls_cap=4
	# 200 bodies from one jq run (a jq per body would cost more than the test).
	local uic phone note
	for i in $(seq -w 1 200); do
		new_uic_v uic
		new_phone_v phone
		new_note_v note
		printf '%s\t%s\t%s\t%s\n' "$i" "$uic" "$phone" "$note"
	done | jq -Rc --arg r "$r" 'split("\t") as [$i, $uic, $ph, $note] | ($i | tonumber % 3) as $m | {
		external_ref: ("C-" + $r + "-" + $i),
		client: {uic: $uic, birth_year: 1990, gender: "f", languages: ["ky", "ru"], region: $r,
			contact: {phone: $ph}},
		needs: (if $m == 0 then ["harm_reduction"] elif $m == 1 then ["harm_reduction", "legal_support"]
			else ["legal_support"] end),
		urgency: "normal",
		consent: {services: true, report_back: false, obtained_at: "2026-11-27T10:00:00Z"},
		note: $note}' >"$BATS_TEST_TMPDIR/bodies"
	i=0
	while IFS= read -r line; do
		i=$((i + 1))
		printf '%s\n' "$line" >"$dir/$(printf '%03d' "$i").json"
	done <"$BATS_TEST_TMPDIR/bodies"
	[ "$i" = 200 ]
	t0=$(date +%s.%N)
	parallel_post 16 "$dir" "$OFFICE_TOKEN"
	t1=$(date +%s.%N)
	echo "200 submissions in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s" >&2
	all_codes "$dir" | sort | uniq -c >&2
	[ "$(count_code "$dir" 201)" = 200 ]
	[ "$(sql "SELECT count(*) FROM referrals WHERE region = '$r'")" = 200 ]
	# Exactly one assignment per referral and need.
	[ "$(sql "SELECT count(*) FROM (SELECT referral_id, need FROM assignments a JOIN referrals f ON f.id = a.referral_id
		WHERE f.region = '$r' GROUP BY 1, 2 HAVING count(*) > 1) d")" = 0 ]
	# Every assignment is offered or unassigned; nothing else happened to them.
	sql "SELECT a.status, count(*) FROM assignments a JOIN referrals f ON f.id = a.referral_id
		WHERE f.region = '$r' GROUP BY 1 ORDER BY 1" >&2
	[ "$(sql "SELECT count(*) FROM assignments a JOIN referrals f ON f.id = a.referral_id
		WHERE f.region = '$r' AND a.status NOT IN ('offered', 'unassigned')")" = 0 ]
	[ "$(sql "SELECT count(*) FROM assignments a JOIN referrals f ON f.id = a.referral_id
		WHERE f.region = '$r' AND (a.status = 'offered') <> (a.worker_id IS NOT NULL)")" = 0 ]
	# No worker above capacity, and no place left empty while work waited.
	while read -r w cap tok kind; do
		n=$(sql "SELECT count(*) FROM assignments WHERE worker_id = '$w'
			AND status IN ('offered', 'accepted', 'in_progress', 'on_hold')")
		echo "worker $kind cap $cap: $n open" >&2
		[ "$n" -le "$cap" ]
		[ "$n" -eq "$cap" ]
		# The worker's inbox says the same.
		as "$tok" GET '/v1/assignments?status=offered&limit=200'
		expect_json '.items | length' "$cap"
	done <"$BATS_TEST_TMPDIR/workers"
	[ "$(sql "SELECT count(*) FROM assignments a JOIN referrals f ON f.id = a.referral_id
		WHERE f.region = '$r' AND a.status = 'offered' AND a.need = 'harm_reduction'")" = "$hr_cap" ]
	[ "$(sql "SELECT count(*) FROM assignments a JOIN referrals f ON f.id = a.referral_id
		WHERE f.region = '$r' AND a.status = 'offered' AND a.need = 'legal_support'")" = "$ls_cap" ]
	# No double offers: one offer per offered assignment, never two to one worker.
	[ "$(sql "SELECT count(*) FROM (SELECT o.assignment_id FROM offers o JOIN assignments a ON a.id = o.assignment_id
		JOIN referrals f ON f.id = a.referral_id WHERE f.region = '$r' GROUP BY 1 HAVING count(*) > 1) d")" = 0 ]
	[ "$(sql "SELECT count(*) FROM offers o JOIN assignments a ON a.id = o.assignment_id
		JOIN referrals f ON f.id = a.referral_id WHERE f.region = '$r'")" = "$((hr_cap + ls_cap))" ]
}

@test "16 clients submitting for one client (same UIC) at once: each referral created once, one holder per need" {
	local r dir uic i w tok
	r=$(new_region)
	read -r w tok < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 20)
	mk_worker "$ORG_B" harm_reduction "$r" ky 20 >/dev/null
	uic=$(new_uic)
	dir=$BATS_TEST_TMPDIR/same
	mkdir -p "$dir"
	for i in $(seq -w 1 16); do
		referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"] | .client.uic=\"$uic\"
			| .client.languages=[\"ky\"]" >"$dir/$i.json"
	done
	parallel_post 16 "$dir" "$OFFICE_TOKEN"
	[ "$(count_code "$dir" 201)" = 16 ]
	[ "$(sql "SELECT count(*) FROM referrals WHERE region = '$r'")" = 16 ]
	# Submissions for one client are serialised: one original, fifteen linked
	# to an earlier one, and (continuity of care, capacity permitting) every
	# offer goes to the worker who holds the client.
	sql "SELECT (duplicate_of IS NULL) AS original, count(*) FROM referrals WHERE region = '$r' GROUP BY 1" >&2
	[ "$(sql "SELECT count(*) FROM referrals WHERE region = '$r' AND duplicate_of IS NULL")" = 1 ]
	[ "$(sql "SELECT count(DISTINCT a.worker_id) FROM assignments a JOIN referrals f ON f.id = a.referral_id
		WHERE f.region = '$r'")" = 1 ]
}

@test "ten concurrent accepts of one offer: exactly one 200, the rest 409" {
	local r w tok asg dir i
	r=$(new_region)
	read -r w tok < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"] | .client.languages=[\"ky\"]")"
	expect_status 201
	asg=$(assignment_for harm_reduction)
	dir=$BATS_TEST_TMPDIR/acc
	race "$dir" < <(for i in $(seq 1 10); do echo "$tok POST /v1/assignments/$asg/accept"; done)
	all_codes "$dir" | sort | uniq -c >&2
	[ "$(count_code "$dir" 200)" = 1 ]
	[ "$(count_code "$dir" 409)" = 9 ]
	[ "$(sql "SELECT status FROM assignments WHERE id = '$asg'")" = accepted ]
}

@test "two workers accept one offer at once (five tries each): only its worker wins, once" {
	local r x xt y yt asg dir i
	r=$(new_region)
	read -r x xt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"] | .client.languages=[\"ky\"]")"
	expect_status 201
	asg=$(assignment_for harm_reduction)
	[ "$(worker_for harm_reduction)" = "$x" ]
	read -r y yt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 2)
	dir=$BATS_TEST_TMPDIR/two
	race "$dir" < <(for i in 1 2 3 4 5; do
		echo "$yt POST /v1/assignments/$asg/accept"
		echo "$xt POST /v1/assignments/$asg/accept"
	done)
	all_codes "$dir" | sort | uniq -c >&2
	[ "$(count_code "$dir" 200)" = 1 ]
	# The winner is the offered worker; the other one never saw the offer.
	for i in 1 3 5 7 9; do [ "$(cat "$dir/$i.code")" = 404 ]; done
	[ "$(sql "SELECT status || ' ' || worker_id FROM assignments WHERE id = '$asg'")" = "accepted $x" ]
}

@test "accept racing the worker's leave (re-offer to another worker): one holder at the end" {
	local r x xt y yt asg dir round a l
	for round in 1 2 3 4; do
		# A region per round: x is the only candidate for the offer, y (created
		# after it) the only one for the re-offer.
		r=$(new_region)
		read -r x xt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 5)
		submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"] | .client.languages=[\"ky\"]")"
		expect_status 201
		asg=$(assignment_for harm_reduction)
		[ "$(worker_for harm_reduction)" = "$x" ]
		read -r y yt < <(worker_with_token "$ORG_B" harm_reduction "$r" ky 5)
		dir=$BATS_TEST_TMPDIR/leave.$round
		race "$dir" <<EOF
$xt POST /v1/assignments/$asg/accept
$ADMIN_TOKEN PATCH /v1/workers/$x {"on_leave":true}
EOF
		a=$(cat "$dir/1.code")
		l=$(cat "$dir/2.code")
		echo "round $round: accept $a leave $l -> $(sql "SELECT status || ' ' || worker_id FROM assignments WHERE id = '$asg'")" >&2
		[ "$l" = 200 ]
		if [ "$a" = 200 ]; then
			# Accepted first: the leave leaves accepted work alone.
			[ "$(sql "SELECT status || ' ' || worker_id FROM assignments WHERE id = '$asg'")" = "accepted $x" ]
		else
			# Re-offered first: x lost it, y holds the offer and can accept it.
			[ "$(sql "SELECT status || ' ' || worker_id FROM assignments WHERE id = '$asg'")" = "offered $y" ]
			as "$yt" POST "/v1/assignments/$asg/accept"
			expect_status 200
		fi
	done
}

@test "accept racing decline, six rounds: exactly one wins each time, the state matches the winner" {
	local r x xt y yt asg dir round a d st holder
	r=$(new_region)
	read -r x xt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 20)
	read -r y yt < <(worker_with_token "$ORG_B" harm_reduction "$r" ky 20)
	for round in $(seq 1 6); do
		submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"] | .client.languages=[\"ky\"]")"
		expect_status 201
		asg=$(assignment_for harm_reduction)
		holder=$(worker_for harm_reduction)
		[ "$holder" = "$x" ] && tok=$xt || tok=$yt
		dir=$BATS_TEST_TMPDIR/ad.$round
		race "$dir" <<EOF
$tok POST /v1/assignments/$asg/accept
$tok POST /v1/assignments/$asg/decline {"reason":"busy"}
EOF
		a=$(cat "$dir/1.code")
		d=$(cat "$dir/2.code")
		echo "round $round: accept $a decline $d" >&2
		st=$(sql "SELECT status || ' ' || coalesce(worker_id::text, '-') FROM assignments WHERE id = '$asg'")
		if [ "$a" = 200 ]; then
			[ "$d" = 409 ] || [ "$d" = 404 ]
			[ "$st" = "accepted $holder" ]
		else
			[ "$d" = 200 ]
			[ "$a" = 409 ] || [ "$a" = 404 ]
			# Declined: offered to the other worker (never back to the decliner).
			case $st in "offered $holder" | "accepted $holder") false ;; esac
		fi
	done
}

@test "worker accept racing a supervisor's reassignment: one winner, one open holder" {
	local r x xt y yt asg dir round a s open
	r=$(new_region)
	read -r x xt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 20)
	for round in $(seq 1 4); do
		submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r\" | .needs=[\"harm_reduction\"] | .client.languages=[\"ky\"]")"
		expect_status 201
		asg=$(assignment_for harm_reduction)
		[ "$(worker_for harm_reduction)" = "$x" ]
		[ -n "${y:-}" ] || read -r y yt < <(worker_with_token "$ORG_A" harm_reduction "$r" ky 20)
		dir=$BATS_TEST_TMPDIR/ar.$round
		race "$dir" <<EOF
$xt POST /v1/assignments/$asg/accept
$SUP_A_TOKEN POST /v1/assignments/$asg/reassign {"worker_id":"$y","reason":"test reassignment"}
EOF
		a=$(cat "$dir/1.code")
		s=$(cat "$dir/2.code")
		echo "round $round: accept $a reassign $s" >&2
		# Reassigning an accepted assignment is allowed, so both may succeed in
		# sequence; what must hold is one open assignment for the need, held
		# by exactly one worker.
		[ "$a" = 200 ] || [ "$s" = 200 ]
		open=$(sql "SELECT count(*) FROM assignments a JOIN assignments b ON b.referral_id = a.referral_id
			AND b.need = a.need WHERE a.id = '$asg'
			AND b.status IN ('offered', 'accepted', 'in_progress', 'on_hold')")
		[ "$open" = 1 ]
		# Make x the least loaded again for the next round.
		as_admin PATCH "/v1/workers/$y" '{"on_leave":true}'
		expect_status 200
		y=""
	done
}
