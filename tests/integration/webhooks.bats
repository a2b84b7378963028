#!/usr/bin/env bats
# webhooks.bats - partner notifications against the real daemon, database and
# TLS (proto/webhook.md): an admin registers endpoints, the daemon delivers
# outbox events to small HTTPS receivers (webhook_receiver.c, built here)
# that record each request; the tests recompute the signature with openssl,
# check the envelope holds ids and detail_url only (no client canary), that
# a 500 or a closed port is retried with back-off and delivered once the
# endpoint is back (same event id), and that an endpoint whose certificate
# is untrusted or names another host never receives a body.

load ../lib/api

# rx_start NAME CERT KEY [PORT]: a receiver recording into $RX/NAME.
rx_start() {
	local name=$1 d=$RX/$1 i
	mkdir -p "$d"
	rm -f "$d/port"
	(
		"$RX_BIN" "$2" "$3" "$d" ${4:+"$4"} </dev/null >>"$RX/$name.log" 2>&1 &
		echo $! >"$RX/$name.pid"
		wait $!
	) </dev/null >/dev/null 2>&1 3>&- &
	for i in $(seq 1 50); do
		[ -s "$d/port" ] && { cat "$d/port"; return 0; }
		sleep 0.1
	done
	echo "receiver $name did not start" >&2
	cat "$RX/$name.log" >&2
	return 1
}

rx_stop() {
	local pid
	pid=$(cat "$RX/$1.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || true
	rm -f "$RX/$1.pid"
}

# register ORG_ID URL EVENTS_JSON: POST /v1/webhooks (call it directly, not in
# $(...), to keep HTTP_BODY); the id is then $(jget .id).
register() {
	as_admin POST /v1/webhooks "$(jq -nc --arg u "$2" --arg s "$WH_SECRET" --arg o "$1" \
		--argjson e "$3" '{url:$u, events:$e, secret:$s, organisation_id:$o}')"
	expect_status 201
}

# bodies_with DIR TEXT: the .body files of DIR containing TEXT, oldest first
# (a request counts once its .head exists).
bodies_with() {
	local i=1
	while [ -e "$1/$i.head" ]; do
		grep -qF "$2" "$1/$i.body" 2>/dev/null && echo "$1/$i.body"
		i=$((i + 1))
	done
	return 0
}

# wait_bodies DIR TEXT N SECS: until at least N bodies contain TEXT.
wait_bodies() {
	local i n
	for i in $(seq 1 $(($4 * 10))); do
		n=$(bodies_with "$1" "$2" | wc -l)
		[ "$n" -ge "$3" ] && return 0
		sleep 0.1
	done
	echo "after $4 s: $n bodies in $1 contain $2, wanted $3" >&2
	return 1
}

# head_value HEADFILE NAME: a header's value as the receiver saw it.
head_value() {
	awk -v n="$2" 'BEGIN { n = tolower(n) } { i = index($0, ":") }
		i && tolower(substr($0, 1, i - 1)) == n { print substr($0, i + 2); exit }' "$1"
}

# check_signature BODYFILE: Signature header = HMAC-SHA256(secret, t "." body),
# t within 300 s of now.
check_signature() {
	local body=$1 head=${1%.body}.head sig t v1 want now
	sig=$(head_value "$head" Signature)
	[[ $sig =~ ^t=([0-9]+),v1=([0-9a-f]{64})$ ]] || { echo "bad Signature: $sig" >&2; return 1; }
	t=${BASH_REMATCH[1]}
	v1=${BASH_REMATCH[2]}
	want=$({ printf '%s.' "$t"; cat "$body"; } | openssl dgst -sha256 -hmac "$WH_SECRET" | awk '{ print $NF }')
	[ "$v1" = "$want" ] || { echo "signature mismatch: $v1 != $want" >&2; return 1; }
	now=$(date +%s)
	[ $((now - t)) -le 300 ] && [ $((t - now)) -le 300 ]
}

# received_at BODYFILE: the receiver's time of receipt (seconds.micro).
received_at() { sed -n 's/^@ //p' "${1%.body}.head"; }

setup_file() {
	api_setup_file || return 1
	export RX RX_BIN WH_SECRET
	RX=$REFD_TMP/rx
	RX_BIN=$RX/webhook_receiver
	mkdir -p "$RX"
	# shellcheck disable=SC2046
	cc -std=c11 -D_GNU_SOURCE -O1 -o "$RX_BIN" "$REFD_ROOT/tests/integration/webhook_receiver.c" \
		$(pkg-config --cflags --libs libevent_core libevent_extra libevent_openssl openssl) || return 1
	# Short back-off so retries happen within seconds; the test CA is the
	# only one the sender trusts.
	refd_daemon_stop main >/dev/null || return 1
	refd_config_set "$REFD_CONF" webhooks ca_file "$REFD_CERTS/ca.crt"
	refd_config_set "$REFD_CONF" webhooks poll_interval 100ms
	refd_config_set "$REFD_CONF" webhooks retry_base 400ms
	refd_config_set "$REFD_CONF" webhooks retry_max 2s
	refd_config_set "$REFD_CONF" webhooks timeout 3s
	refd_daemon_start main "$REFD_CONF" || return 1
	api_seed_network || return 1
	WH_SECRET="whsec-$(rand_hex 16)"
	# The secret must never reach the log or a dump in plaintext either.
	printf '%s\n' "$WH_SECRET" >>"$API_SECRETS"
	# The well-behaved endpoint (test CA, names 127.0.0.1 and localhost).
	rx_start ok "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key" >/dev/null
}

teardown_file() {
	local f
	for f in "$RX"/*.pid; do
		[ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	api_teardown_file
}

@test "an offer reaches the organisation's endpoint signed, with ids and detail_url only" {
	local port region w hook a body head id n
	port=$(cat "$RX/ok/port")
	region=$(new_region)
	w=$(mk_worker "$ORG_A" harm_reduction "$region" ky 5)
	register "$ORG_A" "https://127.0.0.1:$port/hooks/a?src=referrald" \
		'["assignment.offered","assignment.accepted"]'
	hook=$(jget .id)
	expect_uuid "$hook"
	# The secret is never returned.
	run jget '.secret // "absent"'
	[ "$output" = absent ]
	[[ $HTTP_BODY != *"$WH_SECRET"* ]]

	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	wait_bodies "$RX/ok" "\"assignment_id\":\"$a\"" 1 10
	body=$(bodies_with "$RX/ok" "\"assignment_id\":\"$a\"" | head -n 1)
	head=${body%.body}.head

	# The request: POST to the registered path and query, JSON, signed.
	run head -n 1 "$head"
	[ "$output" = "POST /hooks/a?src=referrald" ]
	[ "$(head_value "$head" Content-Type)" = application/json ]
	check_signature "$body"

	# The envelope of webhook.md: exactly id, type, created_at, data.
	run jq -r 'keys_unsorted | join(",")' "$body"
	[ "$output" = "id,type,created_at,data" ]
	run jq -r .type "$body"
	[ "$output" = assignment.offered ]
	id=$(jq -r .id "$body")
	expect_uuid "$id"
	expect_time "$(jq -r .created_at "$body")"
	run jq -r '.data | keys | join(",")' "$body"
	[ "$output" = "assignment_id,detail_url,worker_id" ]
	[ "$(jq -r .data.worker_id "$body")" = "$w" ]
	[ "$(jq -r .data.detail_url "$body")" = "/v1/assignments/$a" ]
	# The event id is the outbox row's, now marked delivered.
	wait_sql "SELECT delivered_at IS NOT NULL FROM outbox WHERE id = '$id'" t 5

	# No client value anywhere the receiver saw (UIC, phone, note canaries).
	grep -v '^$' "$API_SECRETS" | grep -v -F "$WH_SECRET" >"$RX/canaries"
	run grep -rqiF -f "$RX/canaries" "$RX/ok"
	[ "$status" -ne 0 ]

	# Accepting sends assignment.accepted with its own, different id.
	local wtok
	wtok=$(mk_token worker "$w")
	as "$wtok" POST "/v1/assignments/$a/accept"
	expect_status 200
	wait_bodies "$RX/ok" '"type":"assignment.accepted"' 1 10
	body=$(bodies_with "$RX/ok" '"type":"assignment.accepted"' | tail -n 1)
	check_signature "$body"
	[ "$(jq -r .data.assignment_id "$body")" = "$a" ]
	[ "$(jq -r .id "$body")" != "$id" ]
	# Every id the receiver saw names one event only.
	n=$(cat "$RX"/ok/*.body | jq -s 'group_by(.id) | map(map([.type, .data]) | unique | length) | max')
	[ "$n" = 1 ]
	# The daemon's log names events and webhooks by id, never the URL.
	grep -q "event=webhook_delivered.*event_id=$id.*webhook_id=$hook" "$REFD_LOG"
	run grep -c "hooks/a" "$REFD_LOG"
	[ "$output" = 0 ]
}

@test "an endpoint answering 500 is retried with back-off and gets the same event once it answers 2xx" {
	local port org region w a bodies f id t1 t2 t3
	port=$(cat "$RX/ok/port")
	org=$(mk_org "org-500-$(rand_hex 3)")
	register "$org" "https://127.0.0.1:$port/flaky" '["assignment.offered"]'
	region=$(new_region)
	echo 500 >"$RX/ok/status"
	w=$(mk_worker "$org" harm_reduction "$region" ky 5)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	wait_bodies "$RX/ok" "\"assignment_id\":\"$a\"" 3 15
	rm -f "$RX/ok/status"
	id=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a'")
	wait_sql "SELECT delivered_at IS NOT NULL FROM outbox WHERE id = '$id'" t 15
	run sql "SELECT last_error IS NULL, attempts >= 4 FROM outbox WHERE id = '$id'"
	[ "$output" = "t|t" ]

	# Every attempt: the same event id and body, each signed afresh.
	mapfile -t bodies < <(bodies_with "$RX/ok" "\"assignment_id\":\"$a\"")
	[ "${#bodies[@]}" -ge 4 ]
	for f in "${bodies[@]}"; do
		[ "$(jq -r .id "$f")" = "$id" ]
		cmp -s "$f" "${bodies[0]}"
		check_signature "$f"
	done
	# Back-off: the waits grow (0.4 s then 0.8 s, each +-20 %).
	t1=$(received_at "${bodies[0]}")
	t2=$(received_at "${bodies[1]}")
	t3=$(received_at "${bodies[2]}")
	echo "attempts at $t1 $t2 $t3"
	awk -v a="$t1" -v b="$t2" -v c="$t3" 'BEGIN { exit !((b - a) >= 0.3 && (c - b) >= 0.6 && (c - b) > (b - a)) }'
	grep -q "event=webhook_failed.*event_id=$id.*outcome=http_status status=500" "$REFD_LOG"
	# Counted on /metrics (ops listener).
	refd_req GET "$REFD_OPS_URL/metrics"
	[ "$REFD_STATUS" = 200 ]
	printf '%s\n' "$REFD_BODY" | grep -Eq '^referrald_webhook_deliveries_ok_total [1-9]'
	printf '%s\n' "$REFD_BODY" | grep -Eq '^referrald_webhook_deliveries_failed_total [1-9]'
	printf '%s\n' "$REFD_BODY" | grep -Eq '^referrald_outbox_retries_total [1-9]'
	# The periodic jobs (job.c): runs by job, no failed claim, durations.
	printf '%s\n' "$REFD_BODY" | grep -Eq '^referrald_job_runs_total\{job="outbox"\} [1-9]'
	printf '%s\n' "$REFD_BODY" | grep -Eq '^referrald_job_runs_total\{job="sweeper"\} [1-9]'
	printf '%s\n' "$REFD_BODY" | grep -Eq '^referrald_job_failures_total\{job="outbox"\} 0$'
	printf '%s\n' "$REFD_BODY" | grep -Eq '^referrald_job_duration_seconds_count\{job="outbox"\} [1-9]'
}

@test "an endpoint that is down is retried and receives the event once it is up" {
	local port org region w hook a id f
	port=$(refd_free_port)
	org=$(mk_org "org-down-$(rand_hex 3)")
	register "$org" "https://127.0.0.1:$port/" '["assignment.offered"]'
	hook=$(jget .id)
	region=$(new_region)
	w=$(mk_worker "$org" harm_reduction "$region" ky 5)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	id=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a'")
	# Refused connections are failed attempts, recorded by class only.
	wait_sql "SELECT attempts >= 2 AND last_error = 'connect' AND delivered_at IS NULL FROM outbox WHERE id = '$id'" t 15
	rx_start down "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key" "$port" >/dev/null
	wait_bodies "$RX/down" "\"assignment_id\":\"$a\"" 1 15
	wait_sql "SELECT delivered_at IS NOT NULL FROM outbox WHERE id = '$id'" t 5
	f=$(bodies_with "$RX/down" "\"assignment_id\":\"$a\"" | head -n 1)
	[ "$(jq -r .id "$f")" = "$id" ]
	check_signature "$f"
	grep -q "event=webhook_failed.*event_id=$id.*webhook_id=$hook.*outcome=connect" "$REFD_LOG"
}

@test "an endpoint with an untrusted or wrong-name certificate never receives the body" {
	local p_foreign p_name org1 org2 r1 r2 a1 a2 id1 id2
	# A certificate from a CA the sender does not trust.
	p_foreign=$(rx_start foreign "$REFD_CERTS/foreign.crt" "$REFD_CERTS/foreign.key")
	# A certificate from the trusted CA that does not name 127.0.0.1.
	p_name=$(rx_start wrongname "$REFD_CERTS/office.crt" "$REFD_CERTS/office.key")
	org1=$(mk_org "org-f-$(rand_hex 3)")
	org2=$(mk_org "org-n-$(rand_hex 3)")
	register "$org1" "https://127.0.0.1:$p_foreign/" '["assignment.offered"]'
	register "$org2" "https://127.0.0.1:$p_name/" '["assignment.offered"]'
	r1=$(new_region)
	r2=$(new_region)
	mk_worker "$org1" harm_reduction "$r1" ky 5 >/dev/null
	mk_worker "$org2" harm_reduction "$r2" ky 5 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r1\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a1=$(assignment_for harm_reduction)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r2\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a2=$(assignment_for harm_reduction)
	id1=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a1'")
	id2=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a2'")
	wait_sql "SELECT attempts >= 2 AND last_error = 'tls' FROM outbox WHERE id = '$id1'" t 15
	wait_sql "SELECT attempts >= 2 AND last_error = 'tls' FROM outbox WHERE id = '$id2'" t 15
	# Nothing was recorded: the handshake failed before any request byte.
	run sh -c "ls '$RX/foreign' '$RX/wrongname' | grep -c -E '\\.(head|body)\$'"
	[ "$output" = 0 ]
}

@test "a host name is resolved on the loop and checked against the certificate's DNS names" {
	local port org region a f id2 org2 r2 a2
	port=$(cat "$RX/ok/port")
	org=$(mk_org "org-name-$(rand_hex 3)")
	# server.crt names DNS:localhost; the name comes from the hosts file.
	register "$org" "https://localhost:$port/named" '["assignment.offered"]'
	region=$(new_region)
	mk_worker "$org" harm_reduction "$region" ky 5 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	wait_bodies "$RX/ok" "\"assignment_id\":\"$a\"" 1 10
	f=$(bodies_with "$RX/ok" "\"assignment_id\":\"$a\"" | head -n 1)
	run head -n 1 "${f%.body}.head"
	[ "$output" = "POST /named" ]
	[ "$(head_value "${f%.body}.head" Host)" = "localhost:$port" ]
	check_signature "$f"

	# A name that cannot resolve is a connect failure, retried like any other.
	org2=$(mk_org "org-nx-$(rand_hex 3)")
	register "$org2" "https://no-such-host.invalid:$port/" '["assignment.offered"]'
	r2=$(new_region)
	mk_worker "$org2" harm_reduction "$r2" ky 5 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$r2\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a2=$(assignment_for harm_reduction)
	id2=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a2'")
	wait_sql "SELECT attempts >= 1 AND last_error IN ('connect', 'timeout') FROM outbox WHERE id = '$id2'" t 15
}

@test "an event nobody subscribed to is marked done without a delivery" {
	local region w a id
	region=$(new_region)
	# Organisation B registered no endpoint.
	w=$(mk_worker "$ORG_B" harm_reduction "$region" ky 5)
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	id=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a'")
	wait_sql "SELECT delivered_at IS NOT NULL FROM outbox WHERE id = '$id'" t 5
	run grep -rlF "$a" "$RX"
	[ "$status" -ne 0 ]
}

@test "a redirect is not followed: it is a failed attempt" {
	local port org region a id
	port=$(rx_start redirect "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key")
	echo 302 >"$RX/redirect/status"
	org=$(mk_org "org-3xx-$(rand_hex 3)")
	register "$org" "https://127.0.0.1:$port/moved" '["assignment.offered"]'
	region=$(new_region)
	mk_worker "$org" harm_reduction "$region" ky 5 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	id=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a'")
	wait_sql "SELECT attempts >= 2 AND last_error = 'http_302' AND delivered_at IS NULL FROM outbox WHERE id = '$id'" t 15
	rx_stop redirect
}

@test "an answer larger than max_response_size is not read: a failed attempt" {
	local port org region a id
	port=$(rx_start big "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key")
	echo 1000000 >"$RX/big/answer_size"
	org=$(mk_org "org-big-$(rand_hex 3)")
	register "$org" "https://127.0.0.1:$port/" '["assignment.offered"]'
	region=$(new_region)
	mk_worker "$org" harm_reduction "$region" ky 5 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	id=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a'")
	wait_sql "SELECT attempts >= 1 AND last_error = 'too_large' AND delivered_at IS NULL FROM outbox WHERE id = '$id'" t 15
	# A small answer is fine.
	echo 100 >"$RX/big/answer_size"
	wait_sql "SELECT delivered_at IS NOT NULL FROM outbox WHERE id = '$id'" t 15
	rx_stop big
}

@test "two daemons on one database share the outbox: each event is sent once" {
	local port org region i n conf rc
	port=$(rx_start shared "$REFD_CERTS/server.crt" "$REFD_CERTS/server.key")
	org=$(mk_org "org-two-$(rand_hex 3)")
	register "$org" "https://127.0.0.1:$port/" '["assignment.offered"]'
	region=$(new_region)
	mk_worker "$org" harm_reduction "$region" ky,ru 100 >/dev/null
	# A second daemon with the same webhook settings.
	conf=$REFD_TMP/second.conf
	refd_config_write "$conf" "$(refd_free_port)" "$(refd_free_port)" "$(refd_free_port)"
	refd_config_set "$conf" webhooks ca_file "$REFD_CERTS/ca.crt"
	refd_config_set "$conf" webhooks poll_interval 50ms
	refd_config_set "$conf" webhooks retry_base 400ms
	refd_daemon_start second "$conf"
	for i in $(seq 1 20); do
		submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
		expect_status 201
	done
	wait_bodies "$RX/shared" '"type":"assignment.offered"' 20 20
	sleep 1
	# Twenty events, twenty requests, twenty distinct ids: none sent twice.
	n=$(cat "$RX"/shared/*.body | jq -s 'length')
	[ "$n" = 20 ]
	n=$(cat "$RX"/shared/*.body | jq -s 'map(.id) | unique | length')
	[ "$n" = 20 ]
	run sql "SELECT count(*) FROM outbox o JOIN assignments a ON a.id::text = o.payload->>'assignment_id'
	         WHERE o.type = 'assignment.offered' AND a.organisation_id = '$org' AND o.delivered_at IS NOT NULL"
	[ "$output" = 20 ]
	# Both daemons took part (each logs what it delivered).
	grep -q "event=webhook_delivered" "$REFD_TMP/second.log"
	rc=$(refd_daemon_stop second)
	[ "$rc" = 0 ]
	rx_stop shared
}

@test "SIGTERM with a delivery in flight: the daemon exits 0 and the event stays leased for a later attempt" {
	local port org region a id rc
	port=$(cat "$RX/ok/port")
	org=$(mk_org "org-slow-$(rand_hex 3)")
	register "$org" "https://127.0.0.1:$port/slow" '["assignment.offered"]'
	region=$(new_region)
	echo 4000 >"$RX/ok/delay"
	mk_worker "$org" harm_reduction "$region" ky 5 >/dev/null
	submit "$OFFICE_TOKEN" "$(referral_json ".client.region=\"$region\" | .needs=[\"harm_reduction\"]")"
	expect_status 201
	a=$(assignment_for harm_reduction)
	# The receiver has the request and holds its answer back.
	wait_bodies "$RX/ok" "\"assignment_id\":\"$a\"" 1 10
	rm -f "$RX/ok/delay"
	rc=$(refd_daemon_stop main)
	[ "$rc" = 0 ]
	# Not recorded as delivered: the claim's lease brings it back later
	# (at-least-once), and the event is still there for that.
	id=$(sql "SELECT id FROM outbox WHERE type = 'assignment.offered' AND payload->>'assignment_id' = '$a'")
	run sql "SELECT delivered_at IS NULL AND next_attempt_at > now() FROM outbox WHERE id = '$id'"
	[ "$output" = t ]
	grep -Eq "event=outbox_stop abandoned_events=[1-9]" "$REFD_LOG"
}
