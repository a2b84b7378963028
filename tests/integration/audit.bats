#!/usr/bin/env bats
# audit.bats - the audit trail through the real daemon (issue 4): the records
# that API calls touching client data leave, GET /v1/audit scoping, and
# `referrald --verify-audit` finding an altered, removed or inserted record at
# its position. Tampering is done the way a superuser would: with the
# refusing triggers disabled.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
}

teardown_file() { api_teardown_file; }

# audit_of REQUEST_ID: "action:object_type:outcome" lines for one request.
audit_of() {
	sql "SELECT string_agg(action || ':' || coalesce(object_type, '-') || ':' || outcome, ' ' ORDER BY id)
	     FROM audit_log WHERE request_id = '$1'"
}

# as_forger SQL: what a superuser can do: run SQL with the refusing triggers
# lifted (then restored), the chain trigger included.
as_forger() {
	sql "ALTER TABLE audit_log DISABLE TRIGGER USER; $1; ALTER TABLE audit_log ENABLE TRIGGER USER" >/dev/null
}

verify() {
	run "$REFD_BIN" -c "$REFD_CONF" --verify-audit
}

@test "each call touching client data leaves exactly the expected audit records" {
	local region w tok a r rid
	region=$(new_region)
	read -r w tok < <(worker_with_token "$ORG_A" harm_reduction "$region" ky 5)

	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	r=$(jget .id)
	a=$(assignment_for harm_reduction)
	[ "$(audit_of "$HTTP_REQID")" = "referral.submit:referral:ok" ]
	# No client data in any field of the record.
	run sql "SELECT count(*) FROM audit_log WHERE request_id = '$HTTP_REQID' AND object_id = '$r'
	         AND actor_role = 'office' AND actor_id = '$OFFICE1'"
	[ "$output" = 1 ]

	# The worker before accepting: no client data, so no read record.
	as "$tok" GET "/v1/assignments/$a"
	expect_status 200
	expect_jq '.client == null'
	[ "$(audit_of "$HTTP_REQID")" = "assignment.get:assignment:ok" ]

	as "$tok" POST "/v1/assignments/$a/accept"
	expect_status 200
	[ "$(audit_of "$HTTP_REQID")" = "assignment.accept:assignment:ok read_client_data:assignment:ok" ]

	# After accepting, a read shows the contact: one read_client_data record.
	as "$tok" GET "/v1/assignments/$a"
	expect_status 200
	expect_jq '.client.contact.phone | startswith("+996")'
	[ "$(audit_of "$HTTP_REQID")" = "read_client_data:assignment:ok" ]

	# The office reads its referral (status fields only).
	as_office GET "/v1/referrals/$r"
	expect_status 200
	[ "$(audit_of "$HTTP_REQID")" = "referral.get:referral:ok" ]

	# Another office asking is denied, and that is recorded too.
	call "$OFFICE2_TOKEN" GET "/v1/referrals/$r"
	expect_status 404
	[ "$(audit_of "$HTTP_REQID")" = "referral.get:referral:denied" ]

	# The supervisor finds the trail of this assignment through the API.
	as "$SUP_A_TOKEN" GET "/v1/audit?object=$a"
	expect_status 200
	expect_jq '[.items[].action] | index("read_client_data") != null'
	expect_jq "[.items[] | select(.object_id != \"$a\")] | length == 0"
	# ... and another organisation's supervisor does not.
	as "$SUP_B_TOKEN" GET "/v1/audit?object=$a"
	expect_status 200
	expect_jq "[.items[] | select(.object_id == \"$a\")] | length == 0"
}

@test "--verify-audit passes an intact chain and reports how many records it checked" {
	local n
	n=$(sql "SELECT count(*) FROM audit_log")
	[ "$n" -gt 10 ]
	verify
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "audit chain intact: $n records"
}

@test "an altered record is found at its position" {
	local orig
	orig=$(sql "SELECT action FROM audit_log WHERE seq = 5")
	as_forger "UPDATE audit_log SET action = 'assignment.get' WHERE seq = 5;"
	verify
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "position 5 (seq 5): altered"
	# Put it back: the chain verifies again.
	as_forger "UPDATE audit_log SET action = '$orig' WHERE seq = 5;"
	verify
	[ "$status" -eq 0 ]
}

@test "a removed record is found at its position, also at the end of the chain" {
	local last
	sql "CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE seq = 7;" >/dev/null
	as_forger "DELETE FROM audit_log WHERE seq = 7;"
	verify
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "position 7 (seq 7): removed"
	as_forger "INSERT INTO audit_log OVERRIDING SYSTEM VALUE SELECT * FROM audit_saved; DROP TABLE audit_saved;"
	verify
	[ "$status" -eq 0 ]

	# The newest record removed: only the chain head knows it existed.
	last=$(sql "SELECT max(seq) FROM audit_log")
	sql "CREATE TABLE audit_saved AS SELECT * FROM audit_log WHERE seq = $last;" >/dev/null
	as_forger "DELETE FROM audit_log WHERE seq = $last;"
	verify
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "position $last (seq $last): removed"
	as_forger "INSERT INTO audit_log OVERRIDING SYSTEM VALUE SELECT * FROM audit_saved; DROP TABLE audit_saved;"
	verify
	[ "$status" -eq 0 ]
}

@test "an inserted record is found, in the middle or at the end" {
	local last
	# In the middle: renumber the tail to make room, as a forger must.
	sql "CREATE TABLE audit_saved AS SELECT * FROM audit_log;" >/dev/null
	as_forger "UPDATE audit_log SET seq = -seq WHERE seq >= 9;
	     UPDATE audit_log SET seq = -seq + 1 WHERE seq < 0;
	     INSERT INTO audit_log (seq, at, actor_role, actor_id, action, object_type, object_id,
	            outcome, request_id, prev_hash, hash, version, credential_id)
	     SELECT 9, at, actor_role, actor_id, 'assignment.get', object_type,
	            object_id, outcome, request_id, prev_hash, hash, version, credential_id
	     FROM audit_saved WHERE seq = 8;"
	verify
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "position 9 (seq 9): "
	as_forger "DELETE FROM audit_log; INSERT INTO audit_log OVERRIDING SYSTEM VALUE SELECT * FROM audit_saved;
	     DROP TABLE audit_saved;"
	verify
	[ "$status" -eq 0 ]

	# At the end, even with a well-formed hash: the head never handed it out.
	last=$(sql "SELECT max(seq) FROM audit_log")
	as_forger "INSERT INTO audit_log (seq, at, actor_role, actor_id, action, object_type, object_id,
	            outcome, request_id, prev_hash, hash, version, credential_id)
	     SELECT seq + 1, at, actor_role, actor_id, action, object_type,
	            object_id, outcome, request_id, hash, ''::bytea, version, credential_id
	     FROM audit_log WHERE seq = $last;
	     UPDATE audit_log a SET hash = audit_record_hash(a.prev_hash, a) WHERE seq = $last + 1;"
	verify
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "position $((last + 1)) (seq $((last + 1))): inserted"
	as_forger "DELETE FROM audit_log WHERE seq = $((last + 1));"
}

@test "the daemon's database role cannot update, delete or truncate audit records" {
	# The role in the daemon's conninfo: it owns nothing, so it cannot lift
	# the triggers or move the chain head either.
	local as_app="psql -X -h 127.0.0.1 -p $REFD_PGPORT -U $REFD_APP_USER -d $REFD_DB -v ON_ERROR_STOP=1 -Atc"
	grep -q "user=$REFD_APP_USER" "$REFD_CONF"
	run $as_app "UPDATE audit_log SET action = 'x' WHERE seq = 1"
	[ "$status" -ne 0 ]
	run $as_app "DELETE FROM audit_log WHERE seq = 1"
	[ "$status" -ne 0 ]
	run $as_app "TRUNCATE audit_log"
	[ "$status" -ne 0 ]
	run $as_app "ALTER TABLE audit_log DISABLE TRIGGER USER"
	[ "$status" -ne 0 ]
	run $as_app "UPDATE audit_chain_head SET last_seq = 0"
	[ "$status" -ne 0 ]
	run $as_app "SELECT count(*) > 0 FROM audit_log"
	[ "$output" = t ]
	verify
	[ "$status" -eq 0 ]
}
