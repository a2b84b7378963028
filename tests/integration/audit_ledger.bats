#!/usr/bin/env bats
# audit_ledger.bats - the audit ledger v2 and signed heads (issue 9, finding 3,
# finding 4 and "Audit heads"), attacked for real: the runtime role spoofing
# the v1 session settings, a superuser's consistent rewrite caught by a
# published head, 200 concurrent submissions through two daemons (two
# sealers) and their sealing lag, and the sealer killed with SIGKILL in the
# middle of a batch (its database backend too). 1,000,000 records sealed under
# 200 concurrent submissions: audit_million.bats.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
}

teardown_file() { api_teardown_file; }

as_app() {
	psql -X -q -h 127.0.0.1 -p "$REFD_PGPORT" -U "$REFD_APP_USER" -d "$REFD_DB" \
		-v ON_ERROR_STOP=1 -Atc "$1"
}

verify() {
	run "$REFD_BIN" -c "$REFD_CONF" --verify-audit "$@"
}

# Every record sealed (the sealer runs every 100 ms).
wait_sealed() {
	wait_sql "SELECT count(*) FROM audit_log WHERE seq IS NULL" 0 "${1:-30}"
}

# The chain's shape, straight from the table: dense seq 1..N, one record per
# seq, and seq order = (xid, id) order for every v2 record (no fork: nothing
# was sealed in front of an earlier seal).
expect_dense_chain() {
	run sql "SELECT count(*) = max(seq) AND count(DISTINCT seq) = count(*) FROM audit_log"
	[ "$output" = t ]
	run sql "SELECT count(*) FROM (SELECT xid, id, lag(xid) OVER w AS pxid, lag(id) OVER w AS pid
	         FROM audit_log WHERE version = 2 WINDOW w AS (ORDER BY seq)) x
	         WHERE pxid IS NOT NULL AND (xid < pxid OR (xid = pxid AND id < pid))"
	[ "$output" = 0 ]
}

@test "the runtime role spoofs the v1 session settings and writes what it may: the chain stays true" {
	local before after
	wait_sealed
	before=$(sql "SELECT last_seq FROM audit_chain_head")
	# v1 trusted these two settings; the app role moved the head with them.
	run as_app "SET audit.last_seq = '999999'; SET audit.last_hash = '$(printf 'ff%.0s' {1..32})';
	            SELECT audit_write('{\"role\":\"admin\",\"id\":\"spoof\"}', 'spoof-1', 'spoof.test',
	                               NULL, NULL, 'ok');
	            SELECT audit_seal(10);"
	echo "$output"
	[ "$status" -eq 0 ]
	# Its other ways in are closed: no INSERT, UPDATE or DELETE on audit_log,
	# nothing on the head.
	run as_app "INSERT INTO audit_log (seq, at, actor_role, action, outcome, prev_hash, hash)
	            VALUES (999999, now(), 'admin', 'forged', 'ok', '\\x00', '\\x00')"
	[ "$status" -ne 0 ]
	echo "$output" | grep -q "permission denied"
	run as_app "UPDATE audit_log SET seq = 999999 WHERE request_id = 'spoof-1'"
	[ "$status" -ne 0 ]
	run as_app "UPDATE audit_chain_head SET last_seq = 999999"
	[ "$status" -ne 0 ]
	run as_app "UPDATE audit_head_published SET at = now() + interval '1 year'"
	[ "$status" -ne 0 ]
	wait_sealed
	# The spoofed record got the next seq, not the one the settings named.
	after=$(sql "SELECT seq FROM audit_log WHERE request_id = 'spoof-1'")
	[ "$after" -gt "$before" ]
	[ "$after" -lt 999999 ]
	expect_dense_chain
	verify
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "audit chain intact"
	echo "$output" | grep -q "unsealed records: 0"
}

@test "every record names its credential: the token's id, or cert: and the certificate fingerprint" {
	local fp office tok_id
	as "$SUP_A_TOKEN" GET /v1/audit
	expect_status 200
	tok_id=$(sql "SELECT credential_id FROM audit_log WHERE request_id = '$HTTP_REQID'")
	# The token's id, as the tokens table knows it.
	[ "$(sql "SELECT count(*) FROM tokens WHERE id::text = '$tok_id' AND subject_id = '$SUP_A'")" = 1 ]

	fp=$(openssl x509 -in "$REFD_CERTS/office.crt" -outform DER | sha256sum | cut -d' ' -f1)
	as_admin POST /v1/offices "{\"name\":\"cert-office-$(rand_hex 3)\",\"region\":\"chui\",\"cert_fingerprint\":\"$fp\"}"
	expect_status 201
	office=$(jget .id)
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	expect_status 200
	[ "$(sql "SELECT credential_id FROM audit_log WHERE request_id = '$HTTP_REQID'")" = "cert:$fp" ]
	[ "$(sql "SELECT actor_id FROM audit_log WHERE request_id = '$HTTP_REQID'")" = "$office" ]

	# GET /v1/audit shows it (programme supervisor: sees every record).
	wait_sealed
	as "$PROG_TOKEN" GET "/v1/audit?limit=200"
	expect_status 200
	expect_jq "[.items[] | select(.credential_id == \"cert:$fp\")] | length >= 1"
	expect_jq "[.items[] | select(.credential_id == \"$tok_id\")] | length >= 1"
	expect_jq '[.items[] | select(.seq != null)] | length >= 1'
}

@test "the signed head verifies with openssl pkeyutl; a changed byte does not" {
	local seq hash at sig d=$BATS_TEST_TMPDIR
	wait_sealed
	as_admin GET /v1/audit/head
	expect_status 200
	expect_jq '(.seq | type) == "number" and (.hash | test("^[0-9a-f]{64}$")) and
	           (.at | test("^[0-9-]{10}T[0-9:]{8}\\.[0-9]{6}Z$")) and (.signature | length) == 88'
	seq=$(jget .seq)
	hash=$(jget .hash)
	at=$(jget .at)
	sig=$(jget .signature)
	[ "$hash" = "$(sql "SELECT encode(hash, 'hex') FROM audit_log WHERE seq = $seq")" ]
	[ "$(jget .key_id)" != "" ]
	# The public key from /v1/audit/keys, any authenticated caller.
	call "$OFFICE_TOKEN" GET /v1/audit/keys
	expect_status 200
	expect_jq '.keys | length == 1 and .[0].algorithm == "ed25519"'
	[ "$(jget '.keys[0].key_id')" = "$(call "$SUP_A_TOKEN" GET /v1/audit/head; jget .key_id)" ]
	call "$OFFICE_TOKEN" GET /v1/audit/keys
	jget '.keys[0].public_key_pem' >"$d/pub.pem"
	printf '%s|%s|%s' "$seq" "$hash" "$at" >"$d/msg"
	printf '%s' "$sig" | base64 -d >"$d/sig"
	run openssl pkeyutl -verify -pubin -inkey "$d/pub.pem" -rawin -in "$d/msg" -sigfile "$d/sig"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "Signature Verified Successfully"
	# One digit of seq changed: refused.
	printf '%s|%s|%s' "$((seq + 1))" "$hash" "$at" >"$d/msg2"
	run openssl pkeyutl -verify -pubin -inkey "$d/pub.pem" -rawin -in "$d/msg2" -sigfile "$d/sig"
	[ "$status" -ne 0 ]
	# Workers and offices may not read the head (403, audited), only the keys.
	call "$OFFICE_TOKEN" GET /v1/audit/head
	expect_status 403
	expect_denied_audit
}

@test "a consistent rewrite (record changed, every later hash and the head recomputed) is caught by --verify-audit --head" {
	local d=$BATS_TEST_TMPDIR hseq
	wait_sealed
	as "$SUP_A_TOKEN" GET /v1/audit/head
	expect_status 200
	printf '%s' "$HTTP_BODY" >"$d/head.json"
	hseq=$(jget .seq)
	# Traffic after the head was published.
	as_office GET /v1/referrals
	as "$SUP_A_TOKEN" GET /v1/audit
	wait_sealed
	verify --head "$d/head.json"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "signature valid"
	echo "$output" | grep -q "published head seq $hseq found unchanged"

	# The superuser rewrites record 3 and recomputes the chain after it.
	sql "CREATE TABLE audit_saved AS SELECT * FROM audit_log" >/dev/null
	sql "ALTER TABLE audit_log DISABLE TRIGGER USER;
	     DO \$\$ DECLARE a audit_log; prev bytea; BEGIN
	       UPDATE audit_log SET action = 'assignment.get' WHERE seq = 3;
	       SELECT hash INTO prev FROM audit_log WHERE seq = 2;
	       FOR a IN SELECT * FROM audit_log WHERE seq >= 3 ORDER BY seq LOOP
	         UPDATE audit_log SET prev_hash = prev, hash = audit_record_hash(prev, a)
	         WHERE id = a.id RETURNING hash INTO prev;
	       END LOOP;
	       UPDATE audit_chain_head SET last_hash = prev;
	     END \$\$;
	     ALTER TABLE audit_log ENABLE TRIGGER USER;" >/dev/null
	# The chain alone cannot tell ...
	verify
	echo "$output"
	[ "$status" -eq 0 ]
	# ... the published head can.
	verify --head "$d/head.json"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "(seq $hseq): differs_from_published_head"

	# A cut-off chain (the tail after seq 2 removed, head moved back) too.
	sql "ALTER TABLE audit_log DISABLE TRIGGER USER;
	     DELETE FROM audit_log WHERE seq > 2;
	     UPDATE audit_chain_head SET last_seq = 2, last_hash = (SELECT hash FROM audit_log WHERE seq = 2);
	     ALTER TABLE audit_log ENABLE TRIGGER USER;" >/dev/null
	verify
	[ "$status" -eq 0 ]
	verify --head "$d/head.json"
	echo "$output"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "published_head_missing"

	# A head file that was tampered with is refused before the chain is read.
	jq -c '.seq = .seq + 1' "$d/head.json" >"$d/bad.json"
	verify --head "$d/bad.json"
	[ "$status" -eq 1 ]
	echo "$output" | grep -q "REJECTED"
	echo '{"seq": 1, "hash": "zz"}' >"$d/junk.json"
	verify --head "$d/junk.json"
	[ "$status" -eq 1 ]

	# Put the true history back.
	sql "ALTER TABLE audit_log DISABLE TRIGGER USER; DELETE FROM audit_log;
	     INSERT INTO audit_log OVERRIDING SYSTEM VALUE SELECT * FROM audit_saved;
	     UPDATE audit_chain_head SET last_seq = (SELECT max(seq) FROM audit_saved),
	            last_hash = (SELECT hash FROM audit_saved ORDER BY seq DESC LIMIT 1);
	     DROP TABLE audit_saved; ALTER TABLE audit_log ENABLE TRIGGER USER;" >/dev/null
	verify --head "$d/head.json"
	[ "$status" -eq 0 ]
}

@test "audit.head events reach the outbox at least every head_interval, signed" {
	local d=$BATS_TEST_TMPDIR n
	refd_daemon_stop main >/dev/null
	refd_config_set "$REFD_CONF" audit head_interval 2s
	refd_daemon_start main "$REFD_CONF"
	sleep 5
	n=$(sql "SELECT count(*) FROM outbox WHERE type = 'audit.head' AND created_at > now() - interval '5 seconds'")
	echo "events in 5 s: $n"
	# One every 1-2 s between the daemons (one here).
	[ "$n" -ge 2 ]
	[ "$n" -le 5 ]
	sql "SELECT payload FROM outbox WHERE type = 'audit.head' ORDER BY created_at DESC LIMIT 1" >"$d/ev.json"
	jq -e '.seq and .hash and .at and .key_id and .signature' "$d/ev.json"
	# What a partner receives is a head the verifier accepts.
	verify --head "$d/ev.json"
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "signature valid"
	refd_daemon_stop main >/dev/null
	refd_config_set "$REFD_CONF" audit head_interval 10m
	refd_daemon_start main "$REFD_CONF"
}

@test "200 concurrent submissions through two daemons: sealed with no gap, no fork, dense seq" {
	local region w tok p2 i t0 n_before n pids=()
	region=$(new_region)
	read -r w tok < <(worker_with_token "$ORG_A" harm_reduction "$region" ky 1000)
	read -r p2 _ _ < <(refd_instance second)
	wait_sealed
	n_before=$(sql "SELECT count(*) FROM audit_log")
	referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]" >"$BATS_TEST_TMPDIR/ref.json"
	for i in $(seq 1 200); do
		port=$REFD_PORT
		[ $((i % 2)) = 0 ] && port=$p2
		jq -c ".external_ref = \"L-$i-$(rand_hex 4)\" | .client.uic = \"LOAD$(rand_hex 6)\"" \
			"$BATS_TEST_TMPDIR/ref.json" >"$BATS_TEST_TMPDIR/r$i.json"
		curl -s -o /dev/null -w '%{http_code}\n' --cacert "$REFD_CA" --max-time 60 \
			-H "Authorization: Bearer $OFFICE_TOKEN" -H 'Content-Type: application/json' \
			-H "Idempotency-Key: load-$i-$(rand_hex 4)" --data-binary "@$BATS_TEST_TMPDIR/r$i.json" \
			"https://127.0.0.1:$port/v1/referrals" >>"$BATS_TEST_TMPDIR/codes" &
		pids+=($!)
	done
	wait "${pids[@]}"
	[ "$(grep -c '^201$' "$BATS_TEST_TMPDIR/codes")" = 200 ]
	wait_sealed 60
	n=$(sql "SELECT count(*) FROM audit_log WHERE action = 'referral.submit' AND outcome = 'ok'
	         AND at > now() - interval '10 minutes' AND object_type = 'referral'")
	[ "$n" -ge 200 ]
	expect_dense_chain
	[ "$(sql "SELECT count(*) FROM audit_log")" -ge $((n_before + 200)) ]
	run sql "SELECT round(1000 * extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY sealed_at - at)))::int,
	                round(1000 * extract(epoch FROM percentile_cont(0.99) WITHIN GROUP (ORDER BY sealed_at - at)))::int
	         FROM audit_log WHERE action = 'referral.submit' AND at > now() - interval '10 minutes'"
	echo "# sealing lag (append to sealed) ms p50|p99: $output" >&3
	refd_daemon_stop second >/dev/null
	verify
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "the sealer killed mid-batch (SIGKILL, its backend too) resumes with nothing lost or doubled" {
	local total pid backend i sealed_before
	wait_sealed
	refd_daemon_stop main >/dev/null
	refd_config_set "$REFD_CONF" audit seal_batch 50000
	sql "INSERT INTO audit_log (actor_role, action, object_type, object_id, outcome, request_id)
	     SELECT 'system', 'deadline.missed', 'deadline', md5(i::text)::uuid::text, 'ok', 'kill-' || i
	     FROM generate_series(1, 150000) i" >/dev/null
	sealed_before=$(sql "SELECT last_seq FROM audit_chain_head")
	total=$(sql "SELECT count(*) FROM audit_log")
	refd_daemon_start main "$REFD_CONF"
	# Catch a batch in flight.
	backend=
	for i in $(seq 1 200); do
		backend=$(sql "SELECT pid FROM pg_stat_activity WHERE state = 'active'
		               AND query LIKE 'SELECT audit_seal%' LIMIT 1")
		[ -n "$backend" ] && break
		sleep 0.05
	done
	[ -n "$backend" ]
	pid=$(refd_daemon_pid main)
	kill -KILL "$pid"
	kill -KILL "$backend"
	for i in $(seq 1 100); do
		[ -s "$REFD_TMP/daemon-main.rc" ] && break
		sleep 0.1
	done
	# The cluster recovers from the killed backend (crash restart).
	for i in $(seq 1 100); do
		sql "SELECT 1" >/dev/null 2>&1 && break
		sleep 0.2
	done
	# Whole batches or nothing: what is sealed verifies.
	verify
	echo "$output"
	[ "$status" -eq 0 ]
	echo "# sealed when killed: $(( $(sql "SELECT last_seq FROM audit_chain_head") - sealed_before )) of 150000" >&3
	refd_config_set "$REFD_CONF" audit seal_batch 5000
	refd_daemon_start main "$REFD_CONF"
	wait_sealed 120
	[ "$(sql "SELECT count(*) FROM audit_log")" = "$total" ]
	[ "$(sql "SELECT count(DISTINCT request_id) FROM audit_log WHERE request_id LIKE 'kill-%' AND seq IS NOT NULL")" = 150000 ]
	expect_dense_chain
	verify
	[ "$status" -eq 0 ]
}
