#!/usr/bin/env bats
# audit_million.bats - the audit ledger v2 under load (issue 9, "Tests"):
# 1,000,000 records appended while 200 concurrent submissions go through two
# daemons (two sealers, one at a time), then every record sealed with no gap,
# no fork and dense sequence numbers, and `--verify-audit` over the whole
# chain. A file of its own: its own cluster, so the million rows slow no
# other file's tests, and it runs beside them (tests/run.sh runs two files
# at a time).
#
# The million are generated in SQL (INSERT ... SELECT generate_series, one
# transaction, through the append trigger that stamps every record unsealed
# with its transaction's id, as audit_write's are): the daemon's own path
# appends a few thousand records a second here, far too slow for a test; the
# sealer and the verifier cannot tell the difference. The transaction stays
# open while the submissions commit, so their records must wait for it: the
# sealer may seal nothing past the snapshot horizon.
#
# Knob: REFD_LEDGER_RECORDS (default 1000000) for a quicker local run.

load ../lib/api

setup_file() {
	api_setup_file || return 1
	# A million rows and their seal (an UPDATE of each) do not fit the
	# harness's 32 MB of shared buffers.
	refd_daemon_stop main >/dev/null || return 1
	refd_psql -c "ALTER SYSTEM SET shared_buffers = '256MB'" -c "ALTER SYSTEM SET max_wal_size = '2GB'" \
		>/dev/null || return 1
	refd_pg_restart || return 1
	refd_daemon_start main "$REFD_CONF" || return 1
	export ORG OFFICE OFFICE_TOKEN
	ORG=$(mk_org "org-million-$(rand_hex 3)") || return 1
	OFFICE=$(mk_office "office-million-$(rand_hex 3)" bishkek) || return 1
	OFFICE_TOKEN=$(mk_token office "$OFFICE") || return 1
}

teardown_file() { api_teardown_file; }

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

@test "1,000,000 records appended under 200 concurrent submissions through two daemons: sealed with no gap, no fork, dense seq, verified" {
	local n=${REFD_LEDGER_RECORDS:-1000000} d=$BATS_TEST_TMPDIR region p2 i port t0 t1 t2 t3
	local pids=() backend bulk_xid total late m2 o2
	region=$(new_region)
	mk_worker "$ORG" harm_reduction "$region" ky 1000 >/dev/null
	# Batches of 50,000 (at most 100,000): the default 5,000 seals ~6,000
	# records/s on this machine, 50,000 about twice that; both daemons.
	refd_daemon_stop main >/dev/null
	refd_config_set "$REFD_CONF" audit seal_batch 50000
	refd_daemon_start main "$REFD_CONF"
	p2=$(refd_free_port) && m2=$(refd_free_port) && o2=$(refd_free_port)
	refd_config_write "$REFD_TMP/second.conf" "$p2" "$m2" "$o2"
	refd_config_set "$REFD_TMP/second.conf" audit seal_batch 50000
	refd_daemon_start second "$REFD_TMP/second.conf"
	wait_sql "SELECT count(*) FROM audit_log WHERE seq IS NULL" 0 30
	referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]" >"$d/ref.json"
	for i in $(seq 1 200); do
		jq -c ".external_ref = \"M-$i-$(rand_hex 4)\" | .client.uic = \"MIL$(rand_hex 6)\"" \
			"$d/ref.json" >"$d/r$i.json"
	done

	t0=$(date +%s.%N)
	# The bulk transaction, in the background (fd 3 closed for bats).
	(
		sql "INSERT INTO audit_log (actor_role, actor_id, credential_id, action, object_type,
		                            object_id, outcome, request_id)
		     SELECT (ARRAY['office', 'worker', 'supervisor', 'admin'])[1 + i % 4],
		            md5('a' || (i % 977))::uuid::text, md5('c' || (i % 977))::uuid::text,
		            (ARRAY['referral.submit', 'assignment.accept', 'assignment.get',
		                   'read_client_data'])[1 + i % 4],
		            'referral', md5('o' || i)::uuid::text,
		            CASE WHEN i % 50 = 0 THEN 'denied' ELSE 'ok' END, 'bulk-' || i
		     FROM generate_series(1, $n) i" >"$d/bulk.out" 2>&1
		echo $? >"$d/bulk.rc"
		date +%s.%N >"$d/bulk.end"
	) </dev/null 3>&- &
	# Under way (it has its transaction id) before the submissions start.
	backend=
	for i in $(seq 1 100); do
		backend=$(sql "SELECT backend_xid FROM pg_stat_activity WHERE state = 'active'
		               AND query LIKE 'INSERT INTO audit_log%' AND backend_xid IS NOT NULL LIMIT 1")
		[ -n "$backend" ] && break
		sleep 0.1
	done
	[ -n "$backend" ]
	# 200 at once, half through each daemon; a 503 (busy) is retried as a
	# client would, with the same Idempotency-Key.
	for i in $(seq 1 200); do
		port=$REFD_PORT
		[ $((i % 2)) = 0 ] && port=$p2
		curl -s -o /dev/null -w '%{http_code}\n' --cacert "$REFD_CA" --max-time 60 \
			--retry 5 --retry-delay 1 \
			-H "Authorization: Bearer $OFFICE_TOKEN" -H 'Content-Type: application/json' \
			-H "Idempotency-Key: mil-$i-$(rand_hex 4)" --data-binary "@$d/r$i.json" \
			"https://127.0.0.1:$port/v1/referrals" >>"$d/codes" 3>&- &
		pids+=($!)
	done
	wait "${pids[@]}"
	t1=$(date +%s.%N)
	sort "$d/codes" | uniq -c
	[ "$(grep -c '^201$' "$d/codes")" = 200 ]
	for i in $(seq 1 3000); do
		[ -s "$d/bulk.rc" ] && break
		sleep 0.1
	done
	cat "$d/bulk.out"
	[ "$(cat "$d/bulk.rc")" = 0 ]
	t2=$(cat "$d/bulk.end")
	wait_sql "SELECT count(*) FROM audit_log WHERE seq IS NULL" 0 600
	t3=$(date +%s.%N)
	refd_daemon_stop second >/dev/null
	echo "# $n appended in $(secs "$t0" "$t2") s (200 submissions done after $(secs "$t0" "$t1") s); all sealed $(secs "$t2" "$t3") s after the bulk commit" >&3

	# Dense: seq 1..N, one record each.
	total=$(sql "SELECT count(*) FROM audit_log")
	[ "$total" -ge $((n + 200)) ]
	[ "$(sql "SELECT count(*) = max(seq) AND count(DISTINCT seq) = count(*) FROM audit_log")" = t ]
	# No fork: seq order is (transaction id, id) order for every v2 record.
	[ "$(sql "SELECT count(*) FROM (SELECT xid, id, lag(xid) OVER w AS pxid, lag(id) OVER w AS pid
	          FROM audit_log WHERE version = 2 WINDOW w AS (ORDER BY seq)) x
	          WHERE pxid IS NOT NULL AND (xid < pxid OR (xid = pxid AND id < pid))")" = 0 ]
	# No gap inside the bulk: one transaction, so consecutive in append order.
	bulk_xid=$(sql "SELECT min(xid) FROM audit_log WHERE request_id LIKE 'bulk-%'")
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id LIKE 'bulk-%' AND xid = '$bulk_xid'")" = "$n" ]
	[ "$(sql "SELECT max(seq) - min(seq) + 1 FROM audit_log WHERE request_id LIKE 'bulk-%'")" = "$n" ]
	# Every submission went through and was audited once ...
	[ "$(sql "SELECT count(*) FROM referrals WHERE office_id = '$OFFICE'")" = 200 ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE action = 'referral.submit' AND outcome = 'ok'
	          AND request_id NOT LIKE 'bulk-%'
	          AND object_id IN (SELECT id::text FROM referrals WHERE office_id = '$OFFICE')")" = 200 ]
	# ... and those that committed while the older bulk transaction was still
	# open were sealed after all of it, not before it (the horizon held).
	late=$(sql "SELECT count(*) FROM audit_log WHERE request_id NOT LIKE 'bulk-%'
	            AND xid > '$bulk_xid' AND action = 'referral.submit'
	            AND at < (SELECT max(at) FROM audit_log WHERE request_id LIKE 'bulk-%')")
	echo "# submissions appended while the bulk transaction was open: $late" >&3
	[ "$late" -ge 1 ]
	[ "$(sql "SELECT count(*) FROM audit_log WHERE request_id NOT LIKE 'bulk-%' AND xid > '$bulk_xid'
	          AND seq < (SELECT max(seq) FROM audit_log WHERE request_id LIKE 'bulk-%')")" = 0 ]

	# The verifier over the whole chain.
	t0=$(date +%s.%N)
	run "$REFD_BIN" -c "$REFD_CONF" --verify-audit
	t1=$(date +%s.%N)
	echo "$output"
	[ "$status" -eq 0 ]
	echo "$output" | grep -q "audit chain intact: $total records"
	echo "$output" | grep -q "unsealed records: 0"
	echo "# --verify-audit over $total records: $(secs "$t0" "$t1") s" >&3
}
