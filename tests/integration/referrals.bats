#!/usr/bin/env bats
# Referral submission (issue 3): the brief's example, idempotency, duplicates,
# strict input validation, consent, lists and withdrawal — over real TLS
# against a real PostgreSQL. One cluster and daemon serve the whole file.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	export HR_W LS_W
	# Generous capacity in bishkek so submissions here are always offered.
	HR_W=$(mk_worker "$ORG_A" harm_reduction bishkek ky,ru 500) || return 1
	LS_W=$(mk_worker "$ORG_B" legal_support bishkek ky,ru 500) || return 1
}

teardown_file() { api_teardown_file; }

@test "submission as in the brief: 201, referral shape, one offer per need" {
	local body
	body=$(referral_json)
	submit "$OFFICE_TOKEN" "$body"
	expect_status 201
	expect_uuid "$(jget .id)"
	expect_json .status open
	expect_json .external_ref "$(jget .external_ref "$body")"
	expect_time "$(jget .created_at)"
	expect_json '.assignments | length' 2
	expect_jq '[.assignments[].need] | sort == ["harm_reduction", "legal_support"]'
	# Without report-back consent the office learns only that each need
	# has an assignment (protocol v1.1): no status, worker or offer time.
	expect_office_view
	expect_json .consent.report_back false
	expect_json .consent.services true
	[ "$(status_for harm_reduction)" = offered ]
	[ "$(status_for legal_support)" = offered ]
	[ "$(worker_for harm_reduction)" = "$HR_W" ]
	[ "$(worker_for legal_support)" = "$LS_W" ]
	# With report-back: the assignments' progress, still no worker.
	submit "$OFFICE_TOKEN" "$(referral_json '.consent.report_back = true')"
	expect_status 201
	expect_office_view report_back
	expect_jq 'all(.assignments[]; .status == "offered" and .accepted_at == null
		and .contact_made_at == null and .ended_at == null and .outcome == null)'
	# The office's answer never carries client data back.
	expect_jq 'has("client") | not'
	expect_jq 'has("note") | not'
	expect_no_echo "$(jget .client.uic "$body")"
	expect_no_echo "$(jget .client.contact.phone "$body")"
	[ -n "$(header X-Request-Id)" ]
	header Content-Type | grep -qi '^application/json'
}

@test "GET /v1/referrals/{id} gives the submission's shape to its office" {
	submit "$OFFICE_TOKEN" "$(referral_json)"
	expect_status 201
	local id created
	id=$(jget .id)
	created=$(jget .created_at)
	as_office GET "/v1/referrals/$id"
	expect_status 200
	expect_json .id "$id"
	expect_json .status open
	expect_json .created_at "$created"
	expect_json '.assignments | length' 2
	expect_office_view
	expect_jq 'has("client") | not'
	expect_jq '[paths | map(tostring) | join("/")] | map(select(test("contact|note|uic|phone"))) | length == 0'
}

@test "idempotent replay: same key and body give the same id with Idempotent-Replayed" {
	local body key id
	body=$(referral_json)
	key=$(new_key)
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_status 201
	id=$(jget .id)
	[ -z "$(header Idempotent-Replayed)" ]
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_status 201
	expect_json .id "$id"
	[ "$(header Idempotent-Replayed)" = true ]
	expect_office_view
	# Nothing was created twice (the reference is stored only sealed and
	# as a keyed hash: compare those).
	[ "$(sql "SELECT count(*) FROM referrals WHERE external_ref_hash = (SELECT external_ref_hash FROM referrals WHERE id = '$id')")" = 1 ]
	[ "$(sql "SELECT count(*) FROM referrals WHERE id = '$id' AND external_ref IS NULL AND external_ref_sealed LIKE 'd@$id:%'")" = 1 ]
	[ "$(sql "SELECT count(*) FROM assignments WHERE referral_id = '$id'")" = 2 ]
}

@test "same key with another body: 422 idempotency_key_reused" {
	local body key
	body=$(referral_json)
	key=$(new_key)
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_status 201
	submit "$OFFICE_TOKEN" "$(printf '%s' "$body" | jq -c '.urgency = "urgent"')" "$key"
	expect_error 422 idempotency_key_reused
}

@test "Idempotency-Key is scoped to the office: another office may use the same key" {
	local key
	key=$(new_key)
	submit "$OFFICE_TOKEN" "$(referral_json)" "$key"
	expect_status 201
	submit "$OFFICE2_TOKEN" "$(referral_json)" "$key"
	expect_status 201
	[ -z "$(header Idempotent-Replayed)" ]
}

@test "concurrent submissions with one key: one 201, the others 409 in flight or a replay" {
	local body key i codes created ids
	body=$(referral_json)
	key=$(new_key)
	printf '%s' "$body" >"$BATS_TEST_TMPDIR/req.json"
	for i in $(seq 1 8); do
		curl -sS --http1.1 --cacert "$API_CA" --max-time 30 -o "$BATS_TEST_TMPDIR/b.$i" \
			-D "$BATS_TEST_TMPDIR/h.$i" -w '%{http_code}\n' \
			-H "Authorization: Bearer $OFFICE_TOKEN" -H 'Content-Type: application/json' \
			-H "Idempotency-Key: $key" --data-binary "@$BATS_TEST_TMPDIR/req.json" \
			"$API_URL/v1/referrals" >"$BATS_TEST_TMPDIR/c.$i" &
	done
	wait
	codes=$(cat "$BATS_TEST_TMPDIR"/c.* | sort | uniq -c)
	echo "$codes" >&2
	created=0
	for i in $(seq 1 8); do
		case $(cat "$BATS_TEST_TMPDIR/c.$i") in
		201)
			grep -qi '^Idempotent-Replayed: *true' "$BATS_TEST_TMPDIR/h.$i" ||
				created=$((created + 1))
			jq -r .id "$BATS_TEST_TMPDIR/b.$i" >>"$BATS_TEST_TMPDIR/ids"
			;;
		409) [ "$(jq -r .error.code "$BATS_TEST_TMPDIR/b.$i")" = idempotency_key_in_flight ] ;;
		*) false ;;
		esac
	done
	[ "$created" -eq 1 ]
	ids=$(sort -u "$BATS_TEST_TMPDIR/ids" | wc -l)
	[ "$ids" -eq 1 ]
	[ "$(sql "SELECT count(*) FROM referrals WHERE external_ref_hash = (SELECT external_ref_hash FROM referrals WHERE id = '$(sort -u "$BATS_TEST_TMPDIR/ids")')")" = 1 ]
}

@test "same external_ref from the same office with another key: 409 duplicate_referral with the existing id" {
	local body id
	body=$(referral_json)
	submit "$OFFICE_TOKEN" "$body"
	expect_status 201
	id=$(jget .id)
	# Same external_ref, different client: still the office's duplicate.
	submit "$OFFICE_TOKEN" "$(referral_json | jq -c --arg r "$(jget .external_ref "$body")" '.external_ref = $r')"
	expect_error 409 duplicate_referral
	expect_jq "[.. | strings] | index(\"$id\") != null"
	# Another office may use the same external_ref (it is per office).
	submit "$OFFICE2_TOKEN" "$(referral_json | jq -c --arg r "$(jget .external_ref "$body")" '.external_ref = $r')"
	expect_status 201
}

@test "open referral for the same client from another office: linked by duplicate_of, continuity of care" {
	local region w1 w2 uic first holder second
	region=$(new_region)
	w1=$(mk_worker "$ORG_A" harm_reduction "$region" ky 5)
	w2=$(mk_worker "$ORG_B" harm_reduction "$region" ky 5)
	uic=$(new_uic)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .client.languages=[\"ky\"]
		| .needs=[\"harm_reduction\"] | .client.uic=\"$uic\"")"
	expect_status 201
	first=$(jget .id)
	holder=$(worker_for harm_reduction)
	[ "$holder" = "$w1" ] || [ "$holder" = "$w2" ]
	expect_jq 'has("duplicate_of") | not'
	# Same UIC in other letter case from the other office: a new referral,
	# linked silently (the second office never learns the first one's id,
	# with or without report-back), and offered to the worker who already
	# holds the client although the other worker is now less loaded.
	submit "$OFFICE2_TOKEN" "$(referral_json ".client.region=\"$region\" | .client.languages=[\"ky\"]
		| .needs=[\"harm_reduction\"] | .client.uic=\"$(printf '%s' "$uic" | tr A-Z a-z)\"
		| .consent.report_back = true")"
	expect_status 201
	second=$(jget .id)
	[ "$second" != "$first" ]
	expect_office_view report_back
	expect_no_echo "$first"
	[ "$(worker_for harm_reduction)" = "$holder" ]
	as "$OFFICE2_TOKEN" GET "/v1/referrals/$second"
	expect_office_view report_back
	expect_no_echo "$first"
	as "$OFFICE2_TOKEN" GET "/v1/referrals?limit=200"
	expect_no_echo "$first"
	expect_no_echo "$holder"
	# The link is there: the database and the supervisor see it.
	[ "$(sql "SELECT duplicate_of FROM referrals WHERE id = '$second'")" = "$first" ]
	as "$PROG_TOKEN" GET "/v1/referrals/$second"
	expect_status 200
	expect_json .duplicate_of "$first"
	expect_json '.assignments[0].worker_id' "$holder"
}

@test "a withdrawn referral is not open: the same client later is not a duplicate" {
	local uic id
	uic=$(new_uic)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.uic=\"$uic\"")"
	expect_status 201
	id=$(jget .id)
	as_office POST "/v1/referrals/$id/withdraw" '{"reason":"sent in error"}'
	expect_status 200
	submit "$OFFICE2_TOKEN" "$(referral_json ".client.uic=\"$uic\"")"
	expect_status 201
	expect_jq '.duplicate_of == null'
}

@test "no Idempotency-Key: 400 idempotency_key_required; an oversized key is refused" {
	as_office POST /v1/referrals "$(referral_json)"
	expect_error 400 idempotency_key_required
	submit "$OFFICE_TOKEN" "$(referral_json)" "$(printf 'k%.0s' $(seq 1 129))"
	expect_status 400
	submit "$OFFICE_TOKEN" "$(referral_json)" "$(printf 'k%.0s' $(seq 1 128))"
	expect_status 201
}

@test "no consent to services: 422 consent_required and nothing stored" {
	local body n
	body=$(referral_json '.consent.services = false')
	n=$(sql "SELECT count(*) FROM referrals")
	submit "$OFFICE_TOKEN" "$body"
	expect_error 422 consent_required
	[ "$(sql "SELECT count(*) FROM referrals")" = "$n" ]
}

@test "unknown fields are refused with their JSON pointer (no client name field exists)" {
	submit "$OFFICE_TOKEN" "$(referral_json '.client.name = "Aibek"')"
	expect_error 400 unknown_field /client/name
	expect_no_echo Aibek
	submit "$OFFICE_TOKEN" "$(referral_json '.name = "x"')"
	expect_error 400 unknown_field /name
	submit "$OFFICE_TOKEN" "$(referral_json '.client.contact.email = "a@b.kg"')"
	expect_error 400 unknown_field /client/contact/email
	expect_no_echo a@b.kg
	submit "$OFFICE_TOKEN" "$(referral_json '.consent.extra = true')"
	expect_error 400 unknown_field /consent/extra
}

@test "duplicate keys are refused" {
	local body
	body=$(referral_json | sed 's/"urgency":"normal"/"urgency":"normal","urgency":"urgent"/')
	printf '%s' "$body" | grep -q '"urgency":"normal","urgency":"urgent"'
	submit "$OFFICE_TOKEN" "$body"
	expect_error 400 duplicate_key
	body=$(referral_json | sed 's/"gender":"m"/"gender":"m","gender":"f"/')
	submit "$OFFICE_TOKEN" "$body"
	expect_error 400 duplicate_key
}

@test "deep nesting, malformed JSON, a non-object body: 400" {
	local deep
	deep=$(printf '[%.0s' $(seq 1 200))$(printf ']%.0s' $(seq 1 200))
	submit "$OFFICE_TOKEN" "$(referral_json | jq -c --argjson d "$deep" '.client.contact.phone = $d')"
	expect_error 400
	submit "$OFFICE_TOKEN" "{\"a\":$(printf '{"a":%.0s' $(seq 1 100))1$(printf '}%.0s' $(seq 1 101))"
	expect_error 400
	submit "$OFFICE_TOKEN" '{"external_ref": "x",'
	expect_error 400 malformed_json
	submit "$OFFICE_TOKEN" '[1,2,3]'
	expect_error 400
	submit "$OFFICE_TOKEN" "$(referral_json) trailing"
	expect_error 400
}

@test "wrong types: 400 invalid_type with the pointer" {
	submit "$OFFICE_TOKEN" "$(referral_json '.client.birth_year = "1985"')"
	expect_error 400 invalid_type /client/birth_year
	submit "$OFFICE_TOKEN" "$(referral_json '.needs = "harm_reduction"')"
	expect_error 400 invalid_type /needs
	submit "$OFFICE_TOKEN" "$(referral_json '.consent.services = "yes"')"
	expect_error 400 invalid_type /consent/services
	submit "$OFFICE_TOKEN" "$(referral_json '.client = "AB0312M85"')"
	expect_error 400 invalid_type /client
	submit "$OFFICE_TOKEN" "$(referral_json '.client.languages = [1]')"
	expect_error 400 invalid_type /client/languages
	submit "$OFFICE_TOKEN" "$(referral_json '.note = 42')"
	expect_error 400 invalid_type /note
}

@test "out-of-range and malformed values: 400 with the pointer, never echoing the value" {
	local v
	v=$(printf 'N%.0s' $(seq 1 2001))
	submit "$OFFICE_TOKEN" "$(referral_json ".note = \"$v\"")"
	expect_error 400 "" /note
	expect_no_echo NNNNNNNNNNNNNNNN
	v=$(printf 'R%.0s' $(seq 1 65))
	submit "$OFFICE_TOKEN" "$(referral_json ".external_ref = \"$v\"")"
	expect_error 400 "" /external_ref
	expect_no_echo RRRRRRRRRRRRRRRR
	submit "$OFFICE_TOKEN" "$(referral_json ".client.uic = \"$(printf 'U%.0s' $(seq 1 33))\"")"
	expect_error 400 "" /client/uic
	submit "$OFFICE_TOKEN" "$(referral_json '.client.uic = "AB 0312;M85"')"
	expect_error 400 "" /client/uic
	expect_no_echo 'AB 0312;M85'
	submit "$OFFICE_TOKEN" "$(referral_json '.client.uic = "AB1"')"
	expect_error 400 "" /client/uic
	submit "$OFFICE_TOKEN" "$(referral_json '.client.contact.phone = "0555 123 456"')"
	expect_error 400 "" /client/contact/phone
	expect_no_echo '0555 123 456'
	submit "$OFFICE_TOKEN" "$(referral_json '.client.birth_year = 1899')"
	expect_error 400 "" /client/birth_year
	submit "$OFFICE_TOKEN" "$(referral_json ".client.birth_year = $(($(date -u +%Y) + 1))")"
	expect_error 400 "" /client/birth_year
	submit "$OFFICE_TOKEN" "$(referral_json '.client.gender = "q"')"
	expect_error 400 "" /client/gender
	submit "$OFFICE_TOKEN" "$(referral_json '.client.region = "Bishkek"')"
	expect_error 400 "" /client/region
	submit "$OFFICE_TOKEN" "$(referral_json '.client.languages = ["kyr"]')"
	expect_error 400 "" /client/languages
	submit "$OFFICE_TOKEN" "$(referral_json '.needs = []')"
	expect_error 400 "" /needs
	submit "$OFFICE_TOKEN" "$(referral_json '.needs = ["housing"]')"
	expect_error 400 "" /needs
	submit "$OFFICE_TOKEN" "$(referral_json '.urgency = "high"')"
	expect_error 400 "" /urgency
	submit "$OFFICE_TOKEN" "$(referral_json '.consent.obtained_at = "yesterday"')"
	expect_error 400 "" /consent/obtained_at
	submit "$OFFICE_TOKEN" "$(referral_json '.probation.ends_on = "2026-13-40"')"
	expect_error 400 "" /probation/ends_on
}

@test "missing required fields: 400 with the pointer" {
	submit "$OFFICE_TOKEN" "$(referral_json 'del(.client)')"
	expect_error 400 "" /client
	submit "$OFFICE_TOKEN" "$(referral_json 'del(.client.uic)')"
	expect_error 400 "" /client/uic
	submit "$OFFICE_TOKEN" "$(referral_json 'del(.needs)')"
	expect_error 400 "" /needs
	submit "$OFFICE_TOKEN" "$(referral_json 'del(.consent)')"
	expect_error 400 "" /consent
}

@test "a 2,000-character note in Cyrillic is accepted" {
	local note
	note=$(printf 'ж%.0s' $(seq 1 2000))
	submit "$OFFICE_TOKEN" "$(referral_json | jq -c --arg n "$note" '.note = $n')"
	expect_status 201
}

@test "list: the office sees its own referrals, newest first, paged without repeats" {
	local i ids got cursor page
	for i in 1 2 3; do
		submit "$OFFICE2_TOKEN" "$(referral_json)"
		expect_status 201
	done
	as "$OFFICE2_TOKEN" GET '/v1/referrals?limit=200'
	expect_status 200
	ids=$(jget '[.items[].id] | join(" ")')
	[ -n "$ids" ]
	# Every item belongs to office 2 (checked in the database).
	[ "$(sql "SELECT count(*) FROM referrals WHERE office_id = '$OFFICE2'
		AND id IN ($(jget '[.items[].id | "'"'"'" + . + "'"'"'"] | join(",")'))")" = "$(jget '.items | length')" ]
	# Newest first.
	expect_jq '[.items[].created_at] as $t | $t == ($t | sort | reverse)'
	# Page through with limit=2 and compare with the full list.
	got=""
	cursor=""
	for page in $(seq 1 50); do
		if [ -z "$cursor" ]; then
			as "$OFFICE2_TOKEN" GET '/v1/referrals?limit=2'
		else
			as "$OFFICE2_TOKEN" GET "/v1/referrals?limit=2&cursor=$(jq -rn --arg c "$cursor" '$c|@uri')"
		fi
		expect_status 200
		expect_jq '.items | length <= 2'
		got="$got $(jget '[.items[].id] | join(" ")')"
		cursor=$(jget '.next // ""')
		[ -n "$cursor" ] || break
	done
	[ "$(echo $got)" = "$(echo $ids)" ]
	# Office 1 sees none of office 2's.
	as_office GET '/v1/referrals?limit=200'
	expect_jq "[.items[].id] - (\"$ids\" | split(\" \")) == [.items[].id]"
	# Clamped limit, and a bad cursor refused.
	as "$OFFICE2_TOKEN" GET '/v1/referrals?limit=100000'
	expect_status 200
	expect_jq '.items | length <= 200'
	as "$OFFICE2_TOKEN" GET '/v1/referrals?cursor=not-a-cursor'
	expect_error 400 invalid_cursor
}

@test "list filters: status and since" {
	local id since
	since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	sleep 1
	submit "$OFFICE_TOKEN" "$(referral_json)"
	expect_status 201
	id=$(jget .id)
	as_office POST "/v1/referrals/$id/withdraw" '{"reason":"client moved"}'
	expect_status 200
	as_office GET "/v1/referrals?status=withdrawn&limit=200"
	expect_status 200
	expect_jq "[.items[].id] | index(\"$id\") != null"
	expect_jq 'all(.items[]; .status == "withdrawn")'
	as_office GET "/v1/referrals?since=$since&limit=200"
	expect_status 200
	expect_jq "[.items[].id] | index(\"$id\") != null"
	expect_jq "all(.items[]; .created_at >= \"$since\")"
	as_office GET "/v1/referrals?status=bogus"
	expect_status 400
}

@test "withdraw: referral withdrawn, open assignments cancelled; a second withdraw is 409" {
	local id
	submit "$OFFICE_TOKEN" "$(referral_json)"
	expect_status 201
	id=$(jget .id)
	as_office POST "/v1/referrals/$id/withdraw" '{"reason":"client moved"}'
	expect_status 200
	expect_json .status withdrawn
	expect_time "$(jget .withdrawn_at)"
	expect_office_view
	[ "$(sql "SELECT count(*) FROM assignments WHERE referral_id = '$id' AND status <> 'cancelled'")" = 0 ]
	as_office POST "/v1/referrals/$id/withdraw" '{"reason":"again"}'
	expect_error 409 invalid_transition
	as_office POST "/v1/referrals/$id/withdraw" '{"reason":"x","extra":1}'
	expect_status 400 409
}

@test "an unassigned need still creates the referral (no worker in the region)" {
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region = \"$(new_region)\"")"
	expect_status 201
	expect_json .status open
	expect_office_view
	[ "$(status_for harm_reduction)" = unassigned ]
	[ "$(worker_for harm_reduction)" = "" ]
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region = \"$(new_region)\" | .consent.report_back = true")"
	expect_status 201
	expect_office_view report_back
	expect_jq 'all(.assignments[]; .status == "unassigned")'
}
