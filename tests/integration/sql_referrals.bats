#!/usr/bin/env bats
# Submission rules in SQL: idempotency (replay, reuse, in flight, concurrent
# same key), duplicate external_ref, consent, scoping of reads and lists,
# cursors, and the administration functions.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file
	local org off off2 w
	org=$(sql_mk_org "o-rf")
	off=$(sql_mk_office "off-rf" rf)
	off2=$(sql_mk_office "off2-rf" rf)
	w=$(sql_mk_worker "$org" harm_reduction "h-rf" '["rf"]' '["ru"]' 100)
	echo "$org $off $off2 $w" >"$REFD_TMP/ids"
}
teardown_file() { refd_teardown_file; }
setup() { read -r ORG OFF OFF2 W <"$REFD_TMP/ids"; }

@test "replay: same key and body -> the stored response, Idempotent-Replayed, nothing twice" {
	local a b
	a=$(sql_submit "$OFF" idem-1 R-1 U-1 '["harm_reduction"]' rf '["ru"]')
	b=$(sql_submit "$OFF" idem-1 R-1 U-1 '["harm_reduction"]' rf '["ru"]')
	[ "$(jget .status "$a")" = 201 ]
	[ "$(jget .status "$b")" = 201 ]
	[ "$(jget '.headers["Idempotent-Replayed"]' "$b")" = true ]
	[ "$(jget .headers.Location "$a")" = "/v1/referrals/$(jget .body.id "$a")" ]
	[ "$(jq -S .body <<<"$a")" = "$(jq -S .body <<<"$b")" ]
	[ "$(sql "select count(*) from referrals where external_ref = 'R-1'")" = 1 ]
}

@test "same key, other body -> 422 idempotency_key_reused" {
	sql_submit "$OFF" idem-2 R-2 U-2 '["harm_reduction"]' rf '["ru"]' >/dev/null
	local b
	b=$(sql_submit "$OFF" idem-2 R-2b U-2 '["harm_reduction"]' rf '["ru"]')
	[ "$(jget .status "$b")" = 422 ]
	[ "$(jget .body.error.code "$b")" = idempotency_key_reused ]
	# Keys are per office: another office may use the same key.
	b=$(sql_submit "$OFF2" idem-2 R-2 U-2x '["harm_reduction"]' rf '["ru"]')
	[ "$(jget .status "$b")" = 201 ]
}

@test "a request in flight with the same key -> 409 idempotency_key_in_flight" {
	psql -X -q -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d "$REFD_DB" \
		-c "begin; select pg_advisory_xact_lock(hashtextextended('idem:$OFF:idem-3', 0)); select pg_sleep(3); commit;" \
		>/dev/null &
	sleep 1
	local b
	b=$(sql_submit "$OFF" idem-3 R-3 U-3 '["harm_reduction"]' rf '["ru"]')
	wait
	[ "$(jget .status "$b")" = 409 ]
	[ "$(jget .body.error.code "$b")" = idempotency_key_in_flight ]
	[ "$(sql "select count(*) from referrals where external_ref = 'R-3'")" = 0 ]
}

@test "one key from 8 clients at once: one referral, the rest replayed or in flight" {
	export -f sql_app sql_api sql_submit sql_submit_args who_office
	export REFD_PGHOST REFD_PGPORT REFD_DB OFF
	seq 1 8 | xargs -P 8 -I{} bash -c \
		'r=$(sql_submit "$OFF" idem-4 R-4 U-4 "[\"harm_reduction\"]" rf "[\"ru\"]"); echo "$(jq -r .status <<<"$r") $(jq -r ".headers[\"Idempotent-Replayed\"] // \"-\"" <<<"$r")"' \
		>"$REFD_TMP/same-key"
	cat "$REFD_TMP/same-key"
	[ "$(grep -c '^201 -$' "$REFD_TMP/same-key")" = 1 ]
	[ "$(grep -vc -e '^201 -$' -e '^201 true$' -e '^409 -$' "$REFD_TMP/same-key")" = 0 ]
	[ "$(sql "select count(*) from referrals where external_ref = 'R-4'")" = 1 ]
}

@test "same external_ref with another key -> 409 duplicate_referral with the existing id" {
	local a b
	a=$(sql_submit "$OFF" idem-5 R-5 U-5 '["harm_reduction"]' rf '["ru"]')
	b=$(sql_submit "$OFF" idem-5b R-5 U-5 '["harm_reduction"]' rf '["ru"]')
	[ "$(jget .status "$b")" = 409 ]
	[ "$(jget .body.error.code "$b")" = duplicate_referral ]
	[ "$(jget .body.error.existing_id "$b")" = "$(jget .body.id "$a")" ]
}

@test "no consent -> 422 consent_required, nothing stored" {
	local b
	b=$(sql_api referral_submit "$(who_office "$OFF")" "$(sql_submit_args idem-6 R-6 U-6 '["harm_reduction"]' rf '["ru"]' normal false)")
	[ "$(jget .status "$b")" = 422 ]
	[ "$(jget .body.error.code "$b")" = consent_required ]
	[ "$(jget .body.error.field "$b")" = /consent/services ]
	[ "$(sql "select count(*) from referrals where external_ref = 'R-6'")" = 0 ]
}

@test "an office sees only its own referrals, status fields only" {
	local a res
	a=$(sql_submit "$OFF" idem-7 R-7 U-7 '["harm_reduction"]' rf '["ru"]')
	res=$(sql_api referral_get "$(who_office "$OFF2")" "{\"id\":\"$(jget .body.id "$a")\"}")
	[ "$(jget .status "$res")" = 404 ]
	res=$(sql_api referral_get "$(who_office "$OFF")" "{\"id\":\"$(jget .body.id "$a")\"}")
	[ "$(jget .status "$res")" = 200 ]
	! grep -q sealed <<<"$res"
	! grep -q uic <<<"$res"
	[ "$(jget '.body.assignments[0] | has("contact_made_at")' "$res")" = false ]
	res=$(sql_api referral_get "$(who_office "$OFF")" '{"id":"not-a-uuid"}')
	[ "$(jget .status "$res")" = 404 ]
}

@test "referral list: newest first, limit clamp, cursor pages without skips or repeats" {
	local i res next all=""
	for i in 1 2 3 4 5; do
		sql_submit "$OFF2" "page-$i" "P-$i" "UP-$i" '["harm_reduction"]' rf '["ru"]' >/dev/null
	done
	local total
	total=$(sql "select count(*) from referrals where office_id = '$OFF2'")
	res=$(sql_api referral_list "$(who_office "$OFF2")" '{"limit":2}')
	[ "$(jget '.body.items | length' "$res")" = 2 ]
	[ "$(jget '.body.items[0].external_ref' "$res")" = P-5 ]
	all=$(jget '.body.items[].id' "$res")
	next=$(jget .body.next "$res")
	while [ "$next" != null ]; do
		res=$(sql_api referral_list "$(who_office "$OFF2")" "{\"limit\":2,\"cursor\":\"$next\"}")
		all="$all
$(jget '.body.items[].id' "$res")"
		next=$(jget .body.next "$res")
	done
	[ "$(sort <<<"$all" | uniq | wc -l)" = "$total" ]
	[ "$(wc -l <<<"$all")" = "$total" ]
	res=$(sql_api referral_list "$(who_office "$OFF2")" '{"limit":0}')
	[ "$(jget '.body.items | length' "$res")" = 1 ]
	res=$(sql_api referral_list "$(who_office "$OFF2")" '{"cursor":"garbage!"}')
	[ "$(jget .body.error.code "$res")" = invalid_cursor ]
}

@test "supervisors see their organisation's referrals; others' are 404" {
	local a sup res org2
	a=$(sql_submit "$OFF" idem-8 R-8 U-8 '["harm_reduction"]' rf '["ru"]')
	res=$(sql_api referral_get "$(who_sup 00000000-0000-4000-8000-0000000000aa "$ORG")" "{\"id\":\"$(jget .body.id "$a")\"}")
	[ "$(jget .status "$res")" = 200 ]
	org2=$(sql_mk_org "o2-rf")
	res=$(sql_api referral_get "$(who_sup 00000000-0000-4000-8000-0000000000bb "$org2")" "{\"id\":\"$(jget .body.id "$a")\"}")
	[ "$(jget .status "$res")" = 404 ]
	[ "$(sql "select count(*) from audit_log where action = 'referral.get' and outcome = 'denied' and actor_id = '00000000-0000-4000-8000-0000000000bb'")" = 1 ]
}

@test "a role that may never call a function gets 403 and a denied record" {
	local res
	res=$(sql_api referral_submit "$(who_worker "$W" "$ORG")" "$(sql_submit_args x X U '["harm_reduction"]' rf '["ru"]')")
	[ "$(jget .status "$res")" = 403 ]
	res=$(sql_api worker_create "$(who_office "$OFF")" '{}')
	[ "$(jget .status "$res")" = 403 ]
	[ "$(sql "select count(*) from audit_log where action = 'worker.create' and outcome = 'denied'")" = 1 ]
}

@test "tokens: create, authenticate, revoke; certificates map to offices" {
	local h res tid
	h=$(printf 'tok-%s' "$RANDOM" | sha256sum | cut -c1-64)
	# Beyond the longest lifetime (90 days unless the daemon says otherwise): 422.
	res=$(sql_api token_create "$(who_admin)" "{\"role\":\"worker\",\"subject_id\":\"$W\",\"expires_at\":\"2099-01-01T00:00:00Z\",\"token_hash\":\"$h\"}")
	[ "$(jget .status "$res")" = 422 ]
	res=$(sql_api token_create "$(who_admin)" "{\"role\":\"worker\",\"subject_id\":\"$W\",\"expires_at\":\"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)\",\"token_hash\":\"$h\"}")
	[ "$(jget .status "$res")" = 201 ]
	tid=$(jget .body.id "$res")
	! grep -q "$h" <<<"$res"
	[ "$(jget .role "$(sql_app "select auth_token('$h')")")" = worker ]
	[ "$(jget .org_id "$(sql_app "select auth_token('$h')")")" = "$ORG" ]
	res=$(sql_api token_revoke "$(who_admin)" "{\"id\":\"$tid\"}")
	[ "$(jget .status "$res")" = 200 ]
	[ -z "$(sql_app "select auth_token('$h')")" ]
	res=$(sql_api token_create "$(who_admin)" "{\"role\":\"office\",\"subject_id\":\"$W\",\"expires_at\":\"$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)\",\"token_hash\":\"$h\"}")
	[ "$(jget .body.error.field "$res")" = /subject_id ]
	res=$(sql_api office_create "$(who_admin)" "{\"name\":\"cert-office\",\"region\":\"rf\",\"cert_fingerprint\":\"$(printf x | sha256sum | cut -c1-64)\"}")
	[ "$(jget .id "$(sql_app "select auth_cert('$(printf x | sha256sum | cut -c1-64)', null)")")" = "$(jget .body.id "$res")" ]
	# Only the schema owner mints admin tokens (the CLI); the runtime role may not.
	! sql_app "select mint_admin_token('root', '$(printf m | sha256sum | cut -c1-64)', '$(printf b | sha256sum | cut -c1-64)', 2000000000)" 2>/dev/null
	res=$(sql "select mint_admin_token('root', '$(printf m | sha256sum | cut -c1-64)', '$(printf b | sha256sum | cut -c1-64)', extract(epoch from now() + interval '1 day')::bigint)")
	[ "$(jget .role "$(sql_app "select auth_token('$(printf m | sha256sum | cut -c1-64)')")")" = admin ]
}

@test "deadline policy: ISO 8601 durations, validated" {
	local res
	res=$(sql_api deadline_policy_put "$(who_admin)" '{"need":"legal_support","urgency":"urgent","accept_within":"PT2H","first_contact_within":"PT12H","consultation_within":"P3D"}')
	[ "$(jget .status "$res")" = 200 ]
	[ "$(jget .body.accept_within "$res")" = PT2H ]
	[ "$(jget .body.consultation_within "$res")" = P3D ]
	res=$(sql_api deadline_policy_put "$(who_admin)" '{"need":"harm_reduction","urgency":"normal","accept_within":"24h"}')
	[ "$(jget .status "$res")" = 400 ]
	[ "$(jget .body.error.field "$res")" = /accept_within ]
	res=$(sql_api deadline_policy_put "$(who_admin)" '{"need":"harm_reduction","urgency":"normal","accept_within":"PT0S"}')
	[ "$(jget .status "$res")" = 400 ]
}

# The field rules of a referral (CHECK constraints until migration 0090, a
# trigger since): each broken one refused for any writer, the owner too, on
# insert and on update, with the constraint's name; NULL passes (the fields
# retention clears).
@test "a referral's field rules: each refused under its constraint's name, NULL passes" {
	local res id hex bad
	res=$(sql_submit "$OFF" chk-1 R-chk U-chk '["harm_reduction"]' rf '["ru"]')
	[ "$(jget .status "$res")" = 201 ]
	id=$(jget .body.id "$res")
	hex=$(printf chk | sha256sum | cut -c1-64)
	for bad in "birth_year = 1899:referrals_birth_year_check" \
		"consent_services = false:referrals_consent_revoked" \
		"external_ref = '':referrals_external_ref_check" \
		"external_ref = repeat('x', 65):referrals_external_ref_check" \
		"external_ref_hash = upper('$hex'):referrals_external_ref_hash_check" \
		"external_ref_hash = left('$hex', 63):referrals_external_ref_hash_check" \
		"languages = '{}':referrals_languages_check" \
		"needs = '{}':referrals_needs_check" \
		"needs = '{harm_reduction,legal_support,harm_reduction}':referrals_needs_check" \
		"region = 'Bishkek':referrals_region_check" \
		"region = '':referrals_region_check" \
		"region = repeat('r', 65):referrals_region_check" \
		"uic_hash = '$hex' || 'a':referrals_uic_hash_check" \
		"uic_hash = 'g' || left('$hex', 63):referrals_uic_hash_check"; do
		run sql "update referrals set ${bad%:*} where id = '$id'"
		[ "$status" -ne 0 ]
		[[ "$output" == *"violates check constraint \"${bad##*:}\""* ]]
	done
	# A need outside the value set: the domain's own refusal, as before.
	run sql "update referrals set needs = '{shelter}' where id = '$id'"
	[ "$status" -ne 0 ]
	[[ "$output" == *"value for domain need violates"* ]]
	# On insert too, and nothing of the statement is written.
	run sql "insert into referrals (office_id, external_ref, uic_hash, birth_year, gender, languages,
		                       region, needs, urgency, consent_services, consent_report_back,
		                       consent_obtained_at)
		values ('$OFF', 'R-chk-2', '$hex', 1985, 'm', '{ru}', 'rf', '{harm_reduction}', 'normal',
		        true, false, now()), ('$OFF', 'R-chk-3', '$hex', 1985, 'm', '{ru}', 'rf x',
		        '{harm_reduction}', 'normal', true, false, now())"
	[ "$status" -ne 0 ]
	[[ "$output" == *"violates check constraint \"referrals_region_check\""* ]]
	[ "$(sql "select count(*) from referrals where external_ref like 'R-chk-%'")" = 0 ]
	# What is valid stays so, and the cleared fields pass.
	sql "update referrals set region = 'a-9', external_ref_hash = '$hex', birth_year = 2200 where id = '$id'"
	sql "update referrals set uic_hash = null, external_ref = null, external_ref_hash = null where id = '$id'"
	[ "$(sql "select region || ' ' || birth_year || ' ' || (uic_hash is null) from referrals where id = '$id'")" = "a-9 2200 true" ]
}
