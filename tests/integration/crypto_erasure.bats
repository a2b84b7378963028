#!/usr/bin/env bats
# Crypto-erasure and the retention job (issue 10 section 3), through the
# real daemon: personal fields sealed under per-referral data keys kept in
# the key store (referrald_keys); the retention job (PT1S) erases a closed
# referral's contact within 5 s and deletes its key; a pg_dump of the main
# database taken before, restored into a new database and served by a
# second daemon with the current key files and key store, does not reveal
# the purged contact even to an attacker who reopens the assignment in the
# database, while it still serves a contact that was not purged.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	local w
	w=$(worker_with_token "$ORG_A" harm_reduction bishkek ky,ru 100) || return 1
	export W_ID=${w% *} W_TOKEN=${w#* }
}

teardown_file() { api_teardown_file; }

keys_sql() {
	psql -X -q -At -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres \
		-d "$REFD_KEYS_DB" -c "$1"
}

# An accepted referral of one need: prints "REFERRAL ASSIGNMENT PHONE".
accepted() {
	local body phone rid aid
	body=$(referral_json '.needs=["harm_reduction"]')
	phone=$(jq -r .client.contact.phone <<<"$body")
	submit "$OFFICE_TOKEN" "$body"
	[ "$HTTP_STATUS" = 201 ] || return 1
	rid=$(jget .id)
	aid=$(assignment_for harm_reduction)
	[ "$(worker_for harm_reduction)" = "$W_ID" ] || return 1
	call "$W_TOKEN" POST "/v1/assignments/$aid/accept" '{}'
	[ "$HTTP_STATUS" = 200 ] || return 1
	echo "$rid $aid $phone"
}

@test "personal fields are sealed under the referral's own key, kept only in the key store" {
	local rid aid phone
	read -r rid aid phone <<<"$(accepted)"
	[ -n "$phone" ]
	call "$W_TOKEN" GET "/v1/assignments/$aid"
	expect_status 200
	expect_json .client.contact.phone "$phone"
	# Every sealed value of the referral carries its key's label; the clear
	# external_ref is not stored, its keyed hash is.
	[ "$(sql "SELECT count(*) FROM referrals WHERE id = '$rid' AND contact_sealed LIKE 'd@$rid:%'
	          AND note_sealed LIKE 'd@$rid:%' AND external_ref_sealed LIKE 'd@$rid:%'
	          AND external_ref IS NULL AND external_ref_hash ~ '^[0-9a-f]{64}$'")" = 1 ]
	# Free text of the assignment and its events too.
	call "$W_TOKEN" POST "/v1/assignments/$aid/events" "$(jq -nc --arg d "$(new_detail)" \
		'{type:"contact_made", detail:$d, outcome:"reached"}')"
	expect_status 201
	[ "$(sql "SELECT count(*) FROM assignment_events WHERE assignment_id = '$aid'
	          AND detail_sealed LIKE 'd@$rid:%' AND outcome_sealed LIKE 'd@$rid:%'")" = 1 ]
	# The key: one row in the key store, wrapped under the keyring's key id,
	# and nowhere in the main database.
	[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE referral_id = '$rid' AND wrapped LIKE 'k1:%'")" = 1 ]
	[ "$(sql "SELECT count(*) FROM pg_tables WHERE tablename = 'data_keys'")" = 0 ]
	# The office reads its external_ref back in clear.
	call "$OFFICE_TOKEN" GET "/v1/referrals/$rid"
	expect_status 200
	expect_jq '.external_ref | startswith("T-")'
}

@test "a replayed or refused submission leaves no data key behind" {
	local body key n
	body=$(referral_json '.needs=["harm_reduction"]')
	key=$(new_key)
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_status 201
	n=$(keys_sql "SELECT count(*) FROM data_keys")
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_status 201
	[ "$(header Idempotent-Replayed)" = true ]
	# The same external_ref under another key: 409, found by its keyed hash.
	submit "$OFFICE_TOKEN" "$body"
	expect_error 409 duplicate_referral
	sleep 0.5
	[ "$(keys_sql "SELECT count(*) FROM data_keys")" = "$n" ]
}

@test "retention PT1S: contact erased within 5 s of closing, key deleted, audited; a backup restored later reveals nothing" {
	local a aa pa b ba pb dump restored conf p1 t0 t1
	read -r a aa pa <<<"$(accepted)"
	read -r b ba pb <<<"$(accepted)"
	[ -n "$pa" ] && [ -n "$pb" ]
	call "$W_TOKEN" POST "/v1/assignments/$aa/events" '{"type":"contact_made"}'
	expect_status 201
	call "$W_TOKEN" POST "/v1/assignments/$aa/complete" "$(jq -nc --arg d "$(new_detail)" '{outcome:"engaged", detail:$d}')"
	expect_status 200
	[ "$(sql "SELECT status FROM referrals WHERE id = '$a'")" = closed ]

	# 1. The backup, while the closed referral's contact still exists.
	dump=$REFD_TMP/main.sql
	pg_dump -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d "$REFD_DB" >"$dump"
	grep -q "d@$a:" "$dump"
	! grep -qF "$pa" "$dump"
	! grep -q "CREATE TABLE public.data_keys" "$dump"

	# 2. The purge: contact after PT1S; the job acts within 5 s of the due time.
	as_admin PUT /v1/retention-policy '{"contact_after_close":"PT1S"}'
	expect_status 200
	expect_json .contact_after_close PT1S
	t0=$(sql "SELECT extract(epoch FROM closed_at + interval '1 second') FROM referrals WHERE id = '$a'")
	wait_sql "SELECT count(*) FROM referrals WHERE id = '$a' AND forgotten_at IS NOT NULL" 1 15
	t1=$(sql "SELECT extract(epoch FROM forgotten_at) FROM referrals WHERE id = '$a'")
	awk -v a="$t0" -v b="$t1" 'BEGIN { exit !(b - a < 5) }'
	for _ in $(seq 1 50); do
		[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE referral_id = '$a'")" = 0 ] && break
		sleep 0.1
	done
	[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE referral_id = '$a'")" = 0 ]
	[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE referral_id = '$b'")" = 1 ]
	[ "$(sql "SELECT count(*) FROM data_key_erasures")" = 0 ]
	[ "$(sql "SELECT count(*) FROM referrals WHERE id = '$a' AND contact_sealed IS NULL
	          AND note_sealed IS NULL AND external_ref_sealed IS NULL AND uic_hash IS NULL")" = 1 ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'retention.contact_erased'
	          AND object_id = '$a' AND actor_role = 'system'")" = 1 ]
	grep -q 'event=retention_done contact_erased=' "$REFD_LOG"
	# The open referral keeps its contact.
	call "$W_TOKEN" GET "/v1/assignments/$ba"
	expect_json .client.contact.phone "$pb"
	as_admin PUT /v1/retention-policy '{"contact_after_close":"P30D"}'
	expect_status 200

	# 3. The backup restored into a new database; a second daemon on it with
	# the current key files and key store.
	restored=${REFD_DB}_restored
	refd_pg_createdb "$restored" || return 1
	psql -X -q -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres \
		-d "$restored" -f "$dump" >/dev/null
	# An attacker with the restored database reopens the purged assignment
	# for the worker, triggers off, as if it were still in progress.
	psql -X -q -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres \
		-d "$restored" -c "SET session_replication_role = replica;
		UPDATE assignments SET status = 'in_progress', ended_at = NULL WHERE id = '$aa';
		UPDATE referrals SET status = 'open', closed_at = NULL WHERE id = '$a'" >/dev/null
	conf=$REFD_TMP/restored.conf
	p1=$(refd_free_port)
	refd_config_write "$conf" "$p1" "$(refd_free_port)" "$(refd_free_port)"
	refd_config_set "$conf" database conninfo "${REFD_CONNINFO/dbname=$REFD_DB /dbname=$restored }"
	refd_config_set "$conf" database migrate_conninfo \
		"${REFD_MIGRATE_CONNINFO/dbname=$REFD_DB /dbname=$restored }"
	grep -q "dbname=$restored " "$conf"
	refd_daemon_start restored "$conf" || return 1

	# 4. It does not reveal the purged contact, note or free text...
	API_URL=https://127.0.0.1:$p1 call "$W_TOKEN" GET "/v1/assignments/$aa"
	expect_status 200
	expect_json .id "$aa"
	expect_jq '.client.contact == null and .note == null and .detail == null'
	[[ "$HTTP_BODY" != *"$pa"* ]]
	# ...while it still serves the contact that was not purged.
	API_URL=https://127.0.0.1:$p1 call "$W_TOKEN" GET "/v1/assignments/$ba"
	expect_status 200
	expect_json .client.contact.phone "$pb"
	expect_jq '.note | length > 0'
	refd_daemon_stop restored
}

@test "KEK rotation: --rewrap-keys wraps every data key under the new key, the old line can go" {
	local b ba pb n out
	read -r b ba pb <<<"$(accepted)"
	n=$(keys_sql "SELECT count(*) FROM data_keys")
	[ "$n" -ge 1 ]
	[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE wrapped NOT LIKE 'k1:%'")" = 0 ]
	refd_daemon_stop main
	echo "k2 $(openssl rand -hex 32)" >>"$REFD_KEYS/data.keys"
	# On a terminal it shows its progress; the log line has the counts.
	out=$(script -qec "'$REFD_BIN' -c '$REFD_CONF' --rewrap-keys" /dev/null)
	[[ "$out" == *"rewrap-keys: $n of $n data keys"* ]]
	[[ "$out" == *"event=rewrap.done kid=k2 keys=$n rewrapped=$n already_current=0 failed=0"* ]]
	[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE wrapped LIKE 'k2:%'")" = "$n" ]
	# Again: nothing left to do.
	run "$REFD_BIN" -c "$REFD_CONF" --rewrap-keys
	[ "$status" -eq 0 ]
	[[ "$output" == *"rewrapped=0 already_current=$n failed=0"* ]]
	# Without the old line the daemon still opens every referral's fields.
	sed -i '/^k1 /d' "$REFD_KEYS/data.keys"
	! grep -q '^k1 ' "$REFD_KEYS/data.keys"
	refd_daemon_start main "$REFD_CONF"
	call "$W_TOKEN" GET "/v1/assignments/$ba"
	expect_status 200
	expect_json .client.contact.phone "$pb"
	read -r b ba pb <<<"$(accepted)"
	[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE referral_id = '$b' AND wrapped LIKE 'k2:%'")" = 1 ]
}

@test "a reassignment's reason is sealed under the referral's key, shown in the history, erased with it" {
	local b ba pb w2 why="moved: $(rand_hex 8)"
	read -r b ba pb <<<"$(accepted)"
	w2=$(mk_worker "$ORG_A" harm_reduction bishkek ky,ru 100)
	call "$SUP_A_TOKEN" POST "/v1/assignments/$ba/reassign" \
		"$(jq -nc --arg w "$w2" --arg r "$why" '{worker_id:$w, reason:$r}')"
	expect_status 200
	call "$SUP_A_TOKEN" GET "/v1/assignments/$ba/history"
	expect_status 200
	expect_jq "[.items[] | select(.reason == \"$why\")] | length >= 1"
	[ "$(sql "SELECT count(*) FROM assignment_history h JOIN assignments a ON a.id = h.assignment_id
	          WHERE a.referral_id = '$b' AND (h.reason = '$why' OR a.reason = '$why')")" = 0 ]
	[ "$(sql "SELECT count(*) FROM assignment_history WHERE assignment_id = '$ba'
	          AND reason_sealed LIKE 'd@$b:%'")" -ge 1 ]
	# Forgotten (as consent revocation does): the history keeps no reason.
	sql "SELECT referral_forget('$b')" >/dev/null
	wait_sql "SELECT count(*) FROM data_key_erasures WHERE referral_id = '$b'" 0 10
	[ "$(keys_sql "SELECT count(*) FROM data_keys WHERE referral_id = '$b'")" = 0 ]
	call "$SUP_A_TOKEN" GET "/v1/assignments/$ba/history"
	expect_status 200
	expect_jq '[.items[] | select(.reason != null)] | length == 0'
}
