#!/usr/bin/env bats
# transport.bats - the daemon's own HTTP/1.1 transport (http_server.c,
# http_parse.c) under the attacks and framings a front end meets: pipelined
# requests (behind a database-bound one too), a head or a body trickled in
# slower than read_timeout (slowloris), a client that stops reading its
# answers (write_timeout), an idle keep-alive connection, a
# chunked body, Expect: 100-continue, HTTP/1.0. Each test speaks raw bytes
# over real TLS (openssl s_client) to the real daemon.

load ../lib/common

setup_file() {
	export REFD_NO_DAEMON=1
	refd_setup_file || return 1
	refd_config_set "$REFD_CONF" server read_timeout 1s
	refd_config_set "$REFD_CONF" server idle_timeout 2s
	refd_config_set "$REFD_CONF" server write_timeout 1s
	refd_daemon_start main "$REFD_CONF"
}
teardown_file() { refd_teardown_file; }

# Raw bytes from stdin over TLS to the public port; prints what the server
# answered. s_client -quiet keeps reading until the server closes, so the
# timeout (exit 124) is what tells "closed the connection" from "kept it".
raw_tls() {
	timeout "${1:-5}" openssl s_client -quiet -connect "127.0.0.1:$REFD_PORT" \
		-servername localhost -CAfile "$REFD_CA" -verify_return_error 2>/dev/null
}

now_ms() { date +%s%3N; }
# Status codes of every answer in a raw stream (a body has no newline of its
# own, so the next status line may follow it on the same line).
statuses() { tr -d '\r' | grep -oE 'HTTP/1\.1 [0-9]{3} ' | awk '{ print $2 }' | paste -sd' '; }

@test "pipelined requests on one connection are answered in order, each once" {
	run raw_tls 5 < <(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /no-such-path HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = "200 404 200" ]
	[ "$(grep -c '^Connection: close' <<<"$output")" = 1 ]
}

@test "a request pipelined behind one the database answers waits for it, then is answered" {
	run raw_tls 5 < <(printf 'GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = "200 200" ]
	grep -q '"status":"ready"' <<<"$output"
}

@test "a head trickled in slower than read_timeout is cut off (slowloris)" {
	local t0 t1 i
	t0=$(now_ms)
	run raw_tls 10 < <(
		printf 'GET /healthz HTTP/1.1\r\n'
		for i in 1 2 3 4 5 6 7 8; do
			sleep 0.5
			printf 'X-Slow-%d: a\r\n' "$i"
		done
		printf '\r\n'
		sleep 2
	)
	t1=$(now_ms)
	echo "closed after $((t1 - t0)) ms: $output"
	[ "$status" -ne 124 ]
	[ -z "$(statuses <<<"$output")" ]
	# Every half second a byte came, 4 s in all: only the 1 s deadline for
	# the whole head ended it.
	[ $((t1 - t0)) -lt 3500 ]
	grep -q 'event=request_timeout' "$REFD_LOG"
}

@test "a body trickled in slower than read_timeout is cut off" {
	local t0 t1 i
	t0=$(now_ms)
	run raw_tls 10 < <(
		printf 'POST /v1/referrals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{'
		for i in 1 2 3 4 5 6 7 8; do
			sleep 0.5
			printf '"a":1,'
		done
		sleep 2
	)
	t1=$(now_ms)
	echo "closed after $((t1 - t0)) ms: $output"
	[ "$status" -ne 124 ]
	[ -z "$(statuses <<<"$output")" ]
	[ $((t1 - t0)) -lt 3500 ]
}

@test "an idle keep-alive connection is closed after idle_timeout, its answer given" {
	local t0 t1
	t0=$(now_ms)
	run raw_tls 10 < <(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'; sleep 6)
	t1=$(now_ms)
	echo "closed after $((t1 - t0)) ms: $output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = 200 ]
	[ $((t1 - t0)) -lt 5000 ]
}

@test "a chunked body is refused with 411 and the connection closed" {
	run raw_tls 5 < <(printf 'POST /v1/referrals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = 411 ]
	grep -q '"code":"length_required"' <<<"$output"
}

@test "Expect: 100-continue: 100 Continue, then the body is read and answered" {
	run raw_tls 5 < <(printf 'POST /v1/referrals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n'; sleep 0.5; printf '{}')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = "100 401" ]
}

@test "an Expect other than 100-continue is refused with 417" {
	run raw_tls 5 < <(printf 'POST /v1/referrals HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: something\r\n\r\n{}')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = 417 ]
}

@test "HTTP/1.0: one answer, then the connection closes; with keep-alive it stays" {
	run raw_tls 5 < <(printf 'GET /healthz HTTP/1.0\r\n\r\n'; sleep 3)
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = 200 ]
	grep -q '^Connection: close' <<<"$output"
	run raw_tls 5 < <(printf 'GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\n\r\n')
	echo "$output"
	[ "$(statuses <<<"$output")" = "200 200" ]
	grep -q '^Connection: keep-alive' <<<"$output"
}

@test "a body one byte over max_body_size is refused with 413 before it is read" {
	run raw_tls 5 < <(printf 'POST /v1/referrals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 65537\r\n\r\n')
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = 413 ]
}

@test "a request line that is not HTTP/1.x, or a target not origin-form, is refused with 400" {
	run raw_tls 5 < <(printf 'GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n')
	[ "$(statuses <<<"$output")" = 400 ]
	run raw_tls 5 < <(printf 'GET  /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
	[ "$(statuses <<<"$output")" = 400 ]
	run raw_tls 5 < <(printf 'GET http://x/healthz HTTP/1.1\r\nHost: x\r\n\r\n')
	[ "$(statuses <<<"$output")" = 400 ]
	run raw_tls 5 < <(printf 'GET /healthz HTTP/1.1\r\nNoColonHere\r\n\r\n')
	[ "$(statuses <<<"$output")" = 400 ]
	run raw_tls 5 < <(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
	[ "$(statuses <<<"$output")" = 200 ]
}

@test "a client that pipelines requests and never reads its answers is cut off at write_timeout" {
	# A tiny receive window and no reading: the answers pile up until the
	# socket takes no more; the reply being written must go out within 1 s.
	run timeout 20 python3 - "$REFD_PORT" "$REFD_CA" <<'PY'
import socket, ssl, sys, time
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(("127.0.0.1", port))
t = ctx.wrap_socket(s, server_hostname="localhost")
t.settimeout(0.2)
req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 200
t0 = time.time()
while time.time() - t0 < 8:
    try:
        t.sendall(req)
    except socket.timeout:
        pass
    except OSError:
        print("closed by the server after %.1f s" % (time.time() - t0))
        sys.exit(0)
print("still open after 8 s")
sys.exit(1)
PY
	echo "$output"
	[ "$status" = 0 ]
	grep -q 'event=write_timeout' "$REFD_LOG"
}

@test "a keep-alive connection idle past OpenSSL's buffer release still answers, pipelined too" {
	# The listener gives OpenSSL's buffers back after 1 s idle (below
	# idle_timeout, 2 s here); the next request takes them again.
	run raw_tls 10 < <(
		printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
		sleep 1.5
		printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
		sleep 1.5
		printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n'
		printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
		sleep 3
	)
	echo "$output"
	[ "$status" -ne 124 ]
	[ "$(statuses <<<"$output")" = "200 200 200 404 200" ]
}

@test "a reply larger than the socket takes at once reaches a slow reader whole, then the next" {
	# A small receive window: the reply goes out in pieces as the client
	# reads; the listener keeps the rest of it meanwhile.
	run timeout 20 python3 - "$REFD_PORT" "$REFD_CA" "$REFD_ROOT/ui/i18n.js" <<'PY'
import socket, ssl, sys, time
port, ca, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
want = open(path, "rb").read()
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(("127.0.0.1", port))
t = ctx.wrap_socket(s, server_hostname="localhost")
t.sendall(b"GET /ui/i18n.js HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(0.2)                 # let the server find the socket full
data = b""
while True:
    chunk = t.recv(1024)
    if not chunk:
        break
    data += chunk
    time.sleep(0.002)
head, _, rest = data.partition(b"\r\n\r\n")
assert head.startswith(b"HTTP/1.1 200 "), head[:40]
n = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
assert n == len(want), (n, len(want))
assert rest[:n] == want, "body differs"
assert rest[n:].startswith(b"HTTP/1.1 200 "), rest[n:n + 40]
print("whole: %d bytes, then the next answer" % n)
PY
	echo "$output"
	[ "$status" = 0 ]
}

@test "the daemon is still healthy and its log clean after all of the above" {
	run raw_tls 5 < <(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
	[ "$(statuses <<<"$output")" = 200 ]
	refd_log_clean "$REFD_LOG"
}
