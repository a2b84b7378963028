#!/usr/bin/env bats
# foundation.bats - the transport, configuration and database path of issue 2
# against a private PostgreSQL and the real daemon over real TLS, driven with
# curl and openssl s_client.
#
# One cluster and one daemon ("main") serve the file; tests that must stop a
# daemon start their own instance on the same database.

load ../lib/common

setup_file() { refd_setup_file; }
teardown_file() { refd_teardown_file; }

# Raw bytes from stdin over TLS to PORT; prints what the server answered.
# -quiet implies -ign_eof: s_client keeps reading until the server closes, so
# the timeout is what tells "closed the connection" from "kept it open".
raw_tls() {
	timeout "${2:-5}" openssl s_client -quiet -connect "127.0.0.1:$1" -servername localhost \
		-CAfile "$REFD_CA" -verify_return_error 2>/dev/null
}

# Status code of the first response in a raw answer.
first_status() { head -n 1 | tr -d '\r' | awk '{ print $2 }'; }

# Hold an ACCESS EXCLUSIVE lock on schema_migrations from a background psql
# session, so the daemon's /readyz query (which reads that table) stays in
# flight until lock_release.
lock_hold() {
	(PGAPPNAME=refd_locker refd_psql -c "BEGIN; LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(120); COMMIT;" \
		>/dev/null 2>&1 </dev/null 3>&- &)
	local i
	for i in $(seq 1 100); do
		[ "$(refd_psql -tAc "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			WHERE a.application_name = 'refd_locker' AND l.granted
			AND l.relation = 'schema_migrations'::regclass")" = 1 ] && return 0
		sleep 0.1
	done
	echo "lock not acquired" >&2
	return 1
}

# Wait until some backend waits for that lock: the daemon's query is in flight.
lock_waiter_seen() {
	local i
	for i in $(seq 1 "${1:-50}"); do
		[ "$(refd_psql -tAc "SELECT count(*) FROM pg_locks
			WHERE NOT granted AND relation = 'schema_migrations'::regclass")" -ge 1 ] && return 0
		sleep 0.1
	done
	return 1
}

lock_release() {
	refd_psql -tAc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'refd_locker'" >/dev/null
}

now_ms() { date +%s%3N; }

@test "GET /healthz answers 200 over TLS with an X-Request-Id" {
	call "" GET /healthz
	[ "$HTTP_STATUS" = 200 ]
	[[ "$(header X-Request-Id)" =~ ^[0-9a-f]{32}$ ]]
	call "" GET /healthz
	[[ "$(header X-Request-Id)" =~ ^[0-9a-f]{32}$ ]]
}

@test "GET /readyz answers 200 when the database is reachable and the schema current" {
	call "" GET /readyz
	[ "$HTTP_STATUS" = 200 ]
}

@test "--version, --help and --check-config on a good configuration" {
	run "$REFD_BIN" --version
	[ "$status" -eq 0 ]
	[[ "$output" == *referrald* ]]
	run "$REFD_BIN" --help
	[ "$status" -eq 0 ]
	[[ "$output" == *--check-config* ]]
	run "$REFD_BIN" -c "$REFD_CONF" --check-config
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "a bad configuration is refused with file:line and the reason" {
	local bad=$REFD_TMP/bad.conf line
	cp "$REFD_CONF" "$bad"
	refd_config_set "$bad" server no_such_key 1
	line=$(grep -n '^no_such_key' "$bad" | cut -d: -f1)
	run "$REFD_BIN" -c "$bad" --check-config
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$bad:$line"* ]]
	[[ "$output" == *no_such_key* ]]

	cp "$REFD_CONF" "$bad"
	refd_config_set "$bad" server max_body_size lots
	line=$(grep -n '^max_body_size' "$bad" | cut -d: -f1)
	run "$REFD_BIN" -c "$bad" --check-config
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$bad:$line"* ]]
	[[ "$output" == *max_body_size* ]]

	cp "$REFD_CONF" "$bad"
	refd_config_set "$bad" tls cert_file "$REFD_TMP/does-not-exist.crt"
	line=$(grep -n '^cert_file' "$bad" | cut -d: -f1)
	run "$REFD_BIN" -c "$bad" --check-config
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$bad:$line"* ]]

	# Starting (not only checking) with it fails too, at once.
	cp "$REFD_CONF" "$bad"
	refd_config_set "$bad" server no_such_key 1
	run timeout 10 "$REFD_BIN" -c "$bad"
	[ "$status" -ne 0 ]
	[ "$status" -ne 124 ]
	[[ "$output" == *"$bad:"* ]]
}

@test "TLS 1.1 is refused, TLS 1.2 and 1.3 are accepted" {
	# SECLEVEL=0: OpenSSL 3's client would not even offer TLS 1.1 otherwise.
	run timeout 10 openssl s_client -connect "127.0.0.1:$REFD_PORT" -tls1_1 \
		-cipher 'DEFAULT:@SECLEVEL=0' </dev/null
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" != *"New, TLSv1.1"* ]]
	[[ "$output" == *"Cipher is (NONE)"* ]]
	run timeout 10 openssl s_client -connect "127.0.0.1:$REFD_PORT" -tls1_2 \
		-CAfile "$REFD_CA" -verify_return_error </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *"TLSv1.2"* ]]
	run timeout 10 openssl s_client -connect "127.0.0.1:$REFD_PORT" -tls1_3 \
		-CAfile "$REFD_CA" -verify_return_error </dev/null
	[ "$status" -eq 0 ]
	[[ "$output" == *"TLSv1.3"* ]]
}

@test "plaintext HTTP to the TLS ports gets no HTTP answer (the bevcb trap)" {
	local port
	for port in "$REFD_PORT" "$REFD_MTLS_PORT" "$REFD_OPS_PORT"; do
		run curl -sS -i --http0.9 --max-time 5 "http://127.0.0.1:$port/healthz"
		echo "port $port: $output"
		[[ "$output" != *"HTTP/1."* ]]
		[[ "$output" != *'"ok"'* ]]
	done
}

@test "mTLS listener: no client certificate fails the TLS 1.2 handshake" {
	run timeout 10 openssl s_client -connect "127.0.0.1:$REFD_MTLS_PORT" -tls1_2 \
		-CAfile "$REFD_CA" </dev/null
	echo "$output"
	[ "$status" -ne 0 ]
	# TLS 1.3 sends the refusal right after the client's Finished.
	run curl -sS --max-time 10 --cacert "$REFD_CA" "$REFD_MTLS_URL/healthz"
	echo "$output"
	[ "$status" -ne 0 ]
}

@test "mTLS listener: a foreign CA's certificate and an expired one are refused" {
	run timeout 10 openssl s_client -connect "127.0.0.1:$REFD_MTLS_PORT" -tls1_2 \
		-CAfile "$REFD_CA" -cert "$REFD_CERTS/foreign.crt" -key "$REFD_CERTS/foreign.key" </dev/null
	echo "$output"
	[ "$status" -ne 0 ]
	run curl -sS --max-time 10 --cacert "$REFD_CA" --cert "$REFD_CERTS/foreign.crt" \
		--key "$REFD_CERTS/foreign.key" "$REFD_MTLS_URL/healthz"
	[ "$status" -ne 0 ]
	run curl -sS --max-time 10 --cacert "$REFD_CA" --cert "$REFD_CERTS/expired.crt" \
		--key "$REFD_CERTS/expired.key" "$REFD_MTLS_URL/healthz"
	echo "$output"
	[ "$status" -ne 0 ]
}

@test "mTLS listener: the office certificate is accepted" {
	call "" GET "$REFD_MTLS_URL/healthz" "" --cert "$REFD_CERTS/office.crt" \
		--key "$REFD_CERTS/office.key"
	echo "$HTTP_CURL_ERR"
	[ "$HTTP_STATUS" = 200 ]
}

@test "public listener: certificate optional, but a foreign one fails the handshake" {
	call "" GET /healthz "" --cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	[ "$HTTP_STATUS" = 200 ]
	run curl -sS --max-time 10 --cacert "$REFD_CA" --cert "$REFD_CERTS/foreign.crt" \
		--key "$REFD_CERTS/foreign.key" "$REFD_URL/healthz"
	echo "$output"
	[ "$status" -ne 0 ]
}

@test "a 10 MiB body is refused with 413 in under 2 s" {
	head -c 10485760 /dev/zero | tr '\0' 'a' >"$REFD_TMP/big.json"
	local t0 t1
	t0=$(now_ms)
	call "" POST /v1/referrals "" -H 'Content-Type: application/json' \
		-H 'Idempotency-Key: big-body' --data-binary @"$REFD_TMP/big.json"
	t1=$(now_ms)
	echo "status $HTTP_STATUS after $((t1 - t0)) ms; $HTTP_CURL_ERR"
	[ "$HTTP_STATUS" = 413 ]
	[ $((t1 - t0)) -lt 2000 ]
	# Also when the client waits for 100-continue.
	call "" POST /v1/referrals "" -H 'Content-Type: application/json' -H 'Expect: 100-continue' \
		--data-binary @"$REFD_TMP/big.json"
	[ "$HTTP_STATUS" = 413 ]
	# The daemon is still fine.
	call "" GET /healthz
	[ "$HTTP_STATUS" = 200 ]
}

@test "keep-alive replies do not stall on Nagle and delayed ACKs (one record per reply, TCP_NODELAY)" {
	# A stall costs ~40 ms per reply (the delayed ACK): 50 replies on one
	# connection would take 2 s; without it they take a few ms each.
	local urls=() i t0 t1 n
	for i in $(seq 1 50); do urls+=("$REFD_URL/healthz"); done
	t0=$(now_ms)
	n=$(curl -sS --cacert "$REFD_CA" -o /dev/null -w '%{num_connects}\n' "${urls[@]}" |
		awk '{ s += $1 } END { print s }')
	t1=$(now_ms)
	echo "50 requests on $n connection(s) in $((t1 - t0)) ms"
	[ "$n" = 1 ]
	[ $((t1 - t0)) -lt 1500 ]
}

@test "oversized request headers are refused" {
	local big
	big=$(head -c 16384 /dev/zero | tr '\0' 'a')
	call "" GET /healthz "" -H "X-Big: $big"
	echo "status $HTTP_STATUS; $HTTP_CURL_ERR"
	[[ "$HTTP_STATUS" =~ ^(400|413|431)$ ]]
	call "" GET /healthz
	[ "$HTTP_STATUS" = 200 ]
}

@test "duplicate Content-Length with different values: 400 and the connection closed" {
	run raw_tls "$REFD_PORT" < <(printf 'POST /v1/referrals HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(first_status <<<"$output")" = 400 ]
}

@test "Content-Length: +2 is refused with 400" {
	run raw_tls "$REFD_PORT" < <(printf 'POST /v1/referrals HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: +2\r\n\r\n{}')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(first_status <<<"$output")" = 400 ]
}

@test "Content-Length together with Transfer-Encoding is refused with 400" {
	run raw_tls "$REFD_PORT" < <(printf 'POST /v1/referrals HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(first_status <<<"$output")" = 400 ]
}

@test "obs-fold, bare LF and NUL in header values are refused with 400" {
	run raw_tls "$REFD_PORT" < <(printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n')
	echo "obs-fold: $output"
	[ "$(first_status <<<"$output")" = 400 ]
	run raw_tls "$REFD_PORT" < <(printf 'GET /healthz HTTP/1.1\nHost: localhost\nX-A: a\n\n')
	echo "bare LF: $output"
	[ "$(first_status <<<"$output")" = 400 ]
	run raw_tls "$REFD_PORT" < <(printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: a\000b\r\n\r\n')
	echo "NUL: $output"
	[ "$(first_status <<<"$output")" = 400 ]
}

@test "the access log has one line per request and never the query string" {
	call "" GET '/healthz?token=canary-q-7f3a&uic=canary-uic-91' "" -H 'Authorization: Bearer canary-tok-55'
	[ "$HTTP_STATUS" = 200 ]
	local id
	id=$(header X-Request-Id)
	sleep 0.3
	grep -F "$id" "$REFD_LOG"
	run grep -F -e canary-q-7f3a -e canary-uic-91 -e canary-tok-55 "$REFD_LOG"
	[ "$status" -eq 1 ]
}

@test "/metrics on the metrics listener, not anonymously on the public one" {
	call "" GET "$REFD_OPS_URL/metrics"
	[ "$HTTP_STATUS" = 200 ]
	[[ "$(header Content-Type)" == text/plain* ]]
	[[ "$HTTP_BODY" == *"# TYPE referrald_http_requests_total counter"* ]]
	[[ "$HTTP_BODY" == *'route="healthz"'* ]]
	[[ "$HTTP_BODY" == *referrald_db_pool_size* ]]
	call "" GET "$REFD_OPS_URL/healthz"
	[ "$HTTP_STATUS" = 200 ]
	call "" GET /metrics
	echo "public /metrics: $HTTP_STATUS"
	[ "$HTTP_STATUS" != 200 ]
}

@test "readyz answers 503 while PostgreSQL is stopped and 200 after it restarts (same process)" {
	local pid
	pid=$(refd_daemon_pid main)
	refd_pg_stop
	refd_wait_status "$REFD_URL/readyz" 503 10
	call "" GET /healthz
	[ "$HTTP_STATUS" = 200 ]
	refd_pg_start
	refd_wait_status "$REFD_URL/readyz" 200 20
	[ "$(refd_daemon_pid main)" = "$pid" ]
	refd_daemon_alive main
}

@test "a client that leaves while its query is in flight: the daemon stays healthy" {
	lock_hold
	local t0 seen=no
	(curl -s -o /dev/null --max-time 1 --cacert "$REFD_CA" "$REFD_URL/readyz" 3>&- &)
	lock_waiter_seen 30 && seen=yes
	sleep 1
	# Several clients leaving at once, then the lock goes away.
	for i in 1 2 3; do
		(curl -s -o /dev/null --max-time 1 --cacert "$REFD_CA" "$REFD_URL/readyz" 3>&- &)
	done
	sleep 1.5
	lock_release
	echo "query seen in flight: $seen"
	[ "$seen" = yes ]
	refd_wait_status "$REFD_URL/readyz" 200 10
	call "" GET /healthz
	[ "$HTTP_STATUS" = 200 ]
	refd_daemon_alive main
}

@test "SIGTERM drains an in-flight request, then the daemon exits 0" {
	local ports p code rc
	ports=$(refd_instance drain)
	p=${ports%% *}
	lock_hold
	(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --cacert "$REFD_CA" \
		"https://127.0.0.1:$p/readyz" >"$REFD_TMP/drain.code" 2>/dev/null 3>&- &)
	lock_waiter_seen 50 || { lock_release; false; }
	kill -TERM "$(refd_daemon_pid drain)"
	sleep 0.2
	# Still running: the request is not finished.
	refd_daemon_alive drain || { lock_release; echo "exited before the request finished"; false; }
	# Not accepting new work. (Quickly: /readyz gives up on its own after a
	# couple of seconds, and the lock should be what ends the request.)
	run curl -s -o /dev/null -w '%{http_code}' --max-time 1 --cacert "$REFD_CA" "https://127.0.0.1:$p/healthz"
	echo "new request while draining: $output"
	lock_release
	[ "$output" != 200 ]
	rc=$(refd_daemon_stop drain 0)
	echo "exit code $rc"
	for i in $(seq 1 50); do [ -s "$REFD_TMP/drain.code" ] && break; sleep 0.1; done
	code=$(cat "$REFD_TMP/drain.code")
	echo "in-flight request answered $code"
	[[ "$code" =~ ^(200|503)$ ]]
	[ "$rc" = 0 ]
}

@test "SIGHUP reloads a changed certificate; an established connection survives" {
	local before after newserial
	before=$(openssl s_client -connect "127.0.0.1:$REFD_PORT" -servername localhost </dev/null 2>/dev/null |
		openssl x509 -noout -serial)
	# A keep-alive connection that sends one request before and one after.
	mkfifo "$REFD_TMP/ka.in"
	(timeout 30 openssl s_client -quiet -connect "127.0.0.1:$REFD_PORT" -servername localhost \
		-CAfile "$REFD_CA" <"$REFD_TMP/ka.in" >"$REFD_TMP/ka.out" 2>"$REFD_TMP/ka.err" 3>&- &)
	exec 4>"$REFD_TMP/ka.in"
	printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n' >&4
	for i in $(seq 1 50); do grep -q 'HTTP/1.1 200' "$REFD_TMP/ka.out" && break; sleep 0.1; done

	sh "$REFD_ROOT/deploy/gen-certs.sh" --renew-server "$REFD_CERTS"
	refd_give "$REFD_CERTS"   # the daemon reads it as its own user
	newserial=$(openssl x509 -in "$REFD_CERTS/server.crt" -noout -serial)
	[ "$newserial" != "$before" ]
	kill -HUP "$(refd_daemon_pid main)"
	for i in $(seq 1 50); do
		after=$(openssl s_client -connect "127.0.0.1:$REFD_PORT" -servername localhost \
			-CAfile "$REFD_CA" -verify_return_error </dev/null 2>/dev/null | openssl x509 -noout -serial)
		[ "$after" = "$newserial" ] && break
		sleep 0.1
	done
	printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&4
	exec 4>&-
	for i in $(seq 1 50); do
		[ "$(grep -c 'HTTP/1.1 200' "$REFD_TMP/ka.out")" -ge 2 ] && break
		sleep 0.1
	done
	echo "before=$before after=$after new=$newserial"
	echo "keep-alive answers: $(grep -c 'HTTP/1.1 200' "$REFD_TMP/ka.out")"
	[ "$after" = "$newserial" ]
	[ "$(grep -c 'HTTP/1.1 200' "$REFD_TMP/ka.out")" -eq 2 ]
	refd_daemon_alive main
	call "" GET /healthz
	[ "$HTTP_STATUS" = 200 ]
}

@test "SIGTERM: the daemon exits 0 with no sanitizer report in its log" {
	run refd_daemon_stop main
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${lines[-1]}" = 0 ]
}
