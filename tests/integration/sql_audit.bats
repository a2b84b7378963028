#!/usr/bin/env bats
# The hash-chained audit trail: records for reads of client data and denied
# requests, no client data in any record, the daemon's role cannot change or
# remove records, the trigger refuses even the owner, and audit_verify()
# finds an altered, removed or inserted record at its position. No daemon
# runs here: the tests call audit_seal() themselves, as its sealer would.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file
	local org off w res aid
	org=$(sql_mk_org "o-au")
	off=$(sql_mk_office "off-au" au)
	w=$(sql_mk_worker "$org" harm_reduction "h-au" '["au"]' '["ru"]' 5)
	for i in 1 2 3; do
		res=$(sql_submit "$off" "k$i" "E$i" "CANARYUIC$i" '["harm_reduction"]' au '["ru"]')
	done
	aid=$(jget '.body.assignments[0].id' "$res")
	sql_api assignment_accept "$(who_worker "$w" "$org")" "{\"id\":\"$aid\"}" >/dev/null
	sql_api assignment_get "$(who_worker "$w" "$org")" "{\"id\":\"$aid\"}" >/dev/null
	sql_api referral_get "$(who_office 00000000-0000-4000-8000-0000000000ff)" "{\"id\":\"$(jget .body.id "$res")\"}" >/dev/null
	echo "$aid" >"$REFD_TMP/aid"
	sql_app "select audit_seal(100000)" >/dev/null
}
teardown_file() { refd_teardown_file; }

@test "reads of client data and denied requests are audited; the chain verifies" {
	local aid
	aid=$(cat "$REFD_TMP/aid")
	# accept answers with client fields (one record), get once more (one).
	[ "$(sql "select count(*) from audit_log where action = 'read_client_data' and object_id = '$aid'")" = 2 ]
	[ "$(sql "select count(*) from audit_log where action = 'referral.get' and outcome = 'denied'")" = 1 ]
	[ "$(sql "select audit_verify()::text")" = '{"reason": null, "checked": '"$(sql "select count(*) from audit_log")"', "first_bad_seq": null}' ]
}

@test "no client data in the audit log" {
	run sql "select count(*) from audit_log l where l::text ~* 'canary|c2VhbGVk|bm90ZQ'"
	[ "$output" = 0 ]
	run sql "select count(*) from audit_log l, referrals r where l::text like '%' || r.uic_hash || '%'"
	[ "$output" = 0 ]
}

@test "the daemon's role cannot update, delete or truncate audit records" {
	run sql_app "update audit_log set outcome = 'ok' where seq = 1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"permission denied"* ]]
	run sql_app "delete from audit_log where seq = 1"
	[ "$status" -ne 0 ]
	run sql_app "truncate audit_log"
	[ "$status" -ne 0 ]
	run sql_app "update audit_chain_head set last_seq = 0"
	[ "$status" -ne 0 ]
	# No direct insert either (ledger v2): audit_write is its only way in,
	# and the sealer decides seq and hashes.
	run sql_app "insert into audit_log (seq, at, actor_role, action, outcome, prev_hash, hash) values (999999, now(), 'admin', 'forged', 'ok', '\\x00', '\\x00')"
	[ "$status" -ne 0 ]
	[[ "$output" == *"permission denied"* ]]
	sql_app "select audit_write('{\"role\":\"admin\"}', 'r-x', 'forged', null, null, 'ok')" >/dev/null
	[ "$(sql "select count(*) from audit_log where request_id = 'r-x' and seq is null")" = 1 ]
	sql_app "select audit_seal(100)" >/dev/null
	[ "$(sql "select seq from audit_log where request_id = 'r-x'")" = "$(sql "select last_seq from audit_chain_head")" ]
	[ "$(sql "select audit_verify()->>'first_bad_seq'")" = "" ]
}

@test "the triggers refuse UPDATE, DELETE and TRUNCATE even for the owner" {
	run psql -X -q -tA -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U "$REFD_DB_USER" -d "$REFD_DB" \
		-c "update audit_log set outcome = 'ok' where seq = 1"
	[ "$status" -ne 0 ]
	[[ "$output" == *"append-only"* ]]
	run psql -X -q -tA -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U "$REFD_DB_USER" -d "$REFD_DB" \
		-c "truncate audit_log"
	[ "$status" -ne 0 ]
	[[ "$output" == *"append-only"* ]]
}

# The sealing rules (CHECKs until migration 0095, now the triggers'): a record
# is sealed whole (seq, prev_hash and hash together) or not at all, and a new
# record is unsealed, of version 2 and with its transaction's id, whatever
# its inserter passes. The owner is held to them too.
@test "a record is sealed whole or not at all; a new one is unsealed, version 2, with its xid" {
	local owner=(psql -X -q -tA -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U "$REFD_DB_USER" -d "$REFD_DB")
	sql_app "select audit_write('{\"role\":\"admin\"}', 'r-whole', 'forged', null, null, 'ok')" >/dev/null
	for part in "hash = '\\x00'" "prev_hash = '\\x00'" "prev_hash = '\\x00', hash = null"; do
		run "${owner[@]}" -c "update audit_log set seq = 999999, $part where request_id = 'r-whole'"
		[ "$status" -ne 0 ]
		[[ "$output" == *"append-only"* ]]
	done
	"${owner[@]}" -c "insert into audit_log (seq, prev_hash, hash, version, xid, at, actor_role, action, outcome, request_id)
		values (999998, '\\x00', '\\x00', 7, null, now(), 'admin', 'forged', 'ok', 'r-sealed')" >/dev/null
	[ "$(sql "select count(*) from audit_log where request_id = 'r-sealed' and seq is null and prev_hash is null
		and hash is null and version = 2 and xid is not null")" = 1 ]
	sql_app "select audit_seal(100)" >/dev/null
	[ "$(sql "select count(*) from audit_log where request_id in ('r-whole', 'r-sealed')
		and seq is not null and prev_hash is not null and hash is not null")" = 2 ]
	[ "$(sql "select audit_verify()->>'first_bad_seq'")" = "" ]
}

# api_assignment_get builds the worker's view in its own query (issue 12):
# it must answer exactly what assignment_json shows that worker, accepted
# (client fields) or only offered (none).
@test "the worker's read answers assignment_json's shape, with and without client fields" {
	local w org who out
	w=$(sql "select worker_id from assignments where id = '$(cat "$REFD_TMP/aid")'")
	org=$(sql "select organisation_id from workers where id = '$w'")
	who=$(who_worker "$w" "$org")
	out=$(sql_app "SELECT ctx_set('$who', 'r-eq');
		SELECT count(*) FILTER (WHERE (api_assignment_get('$who', 'r-eq', jsonb_build_object('id', a.id))->'body')
		                               IS NOT DISTINCT FROM assignment_json(a))
		       || ' ' || count(*) || ' ' || count(*) FILTER (WHERE assignment_shows_client(a))
		FROM assignments a WHERE a.worker_id = '$w'" | tail -n 1)
	read -r same all shows <<<"$out"
	[ "$same" = "$all" ]
	[ "$shows" -ge 1 ]
	[ "$all" -gt "$shows" ]
}

# The canonical form joins fields with '|': a field holding one (or a control
# character, or longer than its bound, or an outcome not in the list) would
# make two records hash alike. Refused for every inserter, the owner too, and
# nothing is written.
@test "a record with '|', a control character, a field too long or an unknown outcome is refused" {
	local before
	before=$(sql "select count(*) from audit_log")
	for bad in "'r|x', 'assignment.get', 'ok'" "E'r\\nx', 'assignment.get', 'ok'" \
		"'r-x', 'assign|ment.get', 'ok'" "repeat('r', 65), 'assignment.get', 'ok'" \
		"'r-x', 'assignment.get', 'fine'"; do
		IFS=, read -r req act out <<<"$bad"
		run sql_app "select audit_write('{\"role\":\"worker\",\"id\":\"w\"}', $req, $act, 'assignment', 'a', $out)"
		[ "$status" -ne 0 ]
		[[ "$output" == *"audit record refused"* ]]
	done
	run sql_app "select audit_write('{\"role\":\"wor|ker\"}', 'r-x', 'assignment.get', null, null, 'ok')"
	[ "$status" -ne 0 ]
	run sql_app "select audit_write('{\"role\":\"worker\",\"credential_id\":\"c\\u0007\"}', 'r-x', 'assignment.get', null, null, 'ok')"
	[ "$status" -ne 0 ]
	run psql -X -q -tA -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U "$REFD_DB_USER" -d "$REFD_DB" \
		-c "insert into audit_log (at, actor_role, action, object_id, outcome) values (now(), 'admin', 'forged', 'a|b', 'ok')"
	[ "$status" -ne 0 ]
	[[ "$output" == *"audit record refused"* ]]
	[ "$(sql "select count(*) from audit_log")" = "$before" ]
	# NULL fields pass, as before.
	sql_app "select audit_write('{\"role\":\"worker\"}', null, 'assignment.get', null, null, 'ok')" >/dev/null
	[ "$(sql "select count(*) from audit_log")" = $((before + 1)) ]
}

# Tampering as a superuser who disables the triggers.
tamper() {
	refd_psql -c "set session_replication_role = replica" -c "$1" >/dev/null
}

@test "an altered record is found at its position" {
	local n
	n=$(sql "select last_seq from audit_chain_head")
	tamper "update audit_log set outcome = 'denied' where seq = 3; update audit_log set actor_id = 'someone' where seq = 5"
	[ "$(sql "select audit_verify()::text")" = '{"reason": "altered", "checked": 2, "first_bad_seq": 3}' ]
	[ "$(sql "select audit_verify(4)->>'first_bad_seq'")" = 5 ]
	[ "$n" -gt 5 ]
}

@test "a removed record and an inserted record are found" {
	local n
	n=$(sql "select last_seq from audit_chain_head")
	tamper "delete from audit_log where seq = $((n - 1))"
	[ "$(sql "select audit_verify(6)->>'first_bad_seq'")" = $((n - 1)) ]
	[ "$(sql "select audit_verify(6)->>'reason'")" = missing ]
	# Fill the hole with a well-forged record (right link to its predecessor,
	# right hash for its content): its successor no longer links to it.
	tamper "insert into audit_log (seq, at, actor_role, action, outcome, prev_hash, hash) select $((n - 1)), now(), 'admin', 'forged', 'ok', hash, '\\x00' from audit_log where seq = $((n - 2));
	        update audit_log l set hash = audit_record_hash(l.prev_hash, l) where seq = $((n - 1))"
	[ "$(sql "select audit_verify(6)::text")" = '{"reason": "broken_link", "checked": '"$((n - 6))"', "first_bad_seq": '"$n"'}' ]
	# The removed tail: the head remembers how long the chain was.
	tamper "delete from audit_log where seq = $n"
	[ "$(sql "select audit_verify($((n - 1)))::text")" = '{"reason": "missing", "checked": 1, "first_bad_seq": '"$n"'}' ]
}
