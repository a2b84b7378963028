#!/usr/bin/env bats
# auth_limits.bats - failed authentication is audited and limited (issue 9,
# finding 5): 60 bad tokens from one address, then 429 with Retry-After also
# for a valid token, an `authenticate`/`denied` record per failure with no
# secret in it, the window passing, the per-credential limit (off by
# default), and the cap on connections per address. Its own daemon: every
# test here comes from 127.0.0.1, which the limits are about.

load ../lib/api

setup_file() {
	# The built-in limits, not the harness's raised one.
	export REFD_LIMITS_DEFAULT=1
	api_setup_file || return 1
	api_seed_network || return 1
}

teardown_file() { api_teardown_file; }

restart_with() { # SECTION KEY VALUE ...
	refd_daemon_stop main >/dev/null || return 1
	while [ $# -ge 3 ]; do
		refd_config_set "$REFD_CONF" "$1" "$2" "$3"
		shift 3
	done
	refd_daemon_start main "$REFD_CONF"
}

bad_token() { printf 'bad%s' "$(rand_hex 20)"; }

@test "60 bad tokens: 20 answers 401, each audited without the secret; then 429 with Retry-After, a valid token too" {
	local i tok codes=() n401=0 n429=0 ra
	: >"$BATS_TEST_TMPDIR/tokens"
	for i in $(seq 1 60); do
		tok=$(bad_token)
		printf '%s\n' "$tok" >>"$BATS_TEST_TMPDIR/tokens"
		call "$tok" GET /v1/referrals
		codes+=("$HTTP_STATUS")
		case $HTTP_STATUS in
		401) n401=$((n401 + 1)) ;;
		429) n429=$((n429 + 1)); ra=$(header Retry-After) ;;
		esac
	done
	echo "401: $n401 429: $n429"
	[ "$n401" = 20 ]
	[ "$n429" = 40 ]
	# The first 20 are the 401s, in order.
	[ "${codes[19]}" = 401 ]
	[ "${codes[20]}" = 429 ]
	expect_error 429 rate_limited
	[ "$ra" -ge 1 ] && [ "$ra" -le 60 ]
	# A valid token from the same address is held back too.
	as "$SUP_A_TOKEN" GET /v1/audit
	expect_status 429
	[ -n "$(header Retry-After)" ]
	# One `authenticate`/`denied` record per 401, naming the address, never
	# the token (nor its hash).
	run sql "SELECT count(*) FROM audit_log WHERE action = 'authenticate' AND outcome = 'denied'
	         AND actor_role = 'none' AND object_type = 'address' AND object_id = '127.0.0.1'"
	[ "$output" = 20 ]
	sql "SELECT l::text FROM audit_log l" >"$BATS_TEST_TMPDIR/audit.txt"
	while read -r tok; do
		! grep -qF "$tok" "$BATS_TEST_TMPDIR/audit.txt"
		! grep -qF "$(printf '%s' "$tok" | sha256sum | cut -d' ' -f1)" "$BATS_TEST_TMPDIR/audit.txt"
		! grep -qF "$tok" "$REFD_LOG"
	done <"$BATS_TEST_TMPDIR/tokens"
	# Health stays reachable (no credential needed, nothing to limit).
	anon GET /healthz
	expect_status 200
}

@test "the limit holds until its window passes, then a valid token works again" {
	local i
	restart_with limits auth_failures 5/3s
	for i in 1 2 3 4 5; do
		call "$(bad_token)" GET /v1/referrals
		expect_status 401
	done
	as_office GET /v1/referrals
	expect_error 429 rate_limited
	[ "$(header Retry-After)" -le 3 ]
	sleep 3.2
	as_office GET /v1/referrals
	expect_status 200
	# A failed certificate counts as well: an unbound certificate is a 401.
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office2.crt" --key "$REFD_CERTS/office2.key"
	expect_status 401
	[ "$(sql "SELECT credential_id FROM audit_log WHERE request_id = '$HTTP_REQID'")" = \
		"cert:$(openssl x509 -in "$REFD_CERTS/office2.crt" -outform DER | sha256sum | cut -d' ' -f1)" ]
}

@test "the per-credential limit is off by default and, when set, holds one credential only" {
	local i
	restart_with limits auth_failures 20/1m
	for i in $(seq 1 30); do
		as_office GET /v1/referrals
		expect_status 200
	done
	restart_with limits credential_requests 5/1m
	for i in 1 2 3 4 5; do
		as_office GET /v1/referrals
		expect_status 200
	done
	as_office GET /v1/referrals
	expect_error 429 rate_limited
	[ "$(header Retry-After)" -ge 1 ]
	# Another credential from the same address is not affected.
	call "$OFFICE2_TOKEN" GET /v1/referrals
	expect_status 200
	restart_with limits credential_requests off
}

@test "connections per address are capped: idle sockets cannot take every slot" {
	local fds=() i fd
	restart_with limits connections_per_address 4
	for i in 1 2 3 4; do
		exec {fd}<>"/dev/tcp/127.0.0.1/$REFD_PORT"
		fds+=("$fd")
	done
	sleep 0.3
	# The fifth connection is closed at once.
	as_office GET /v1/referrals
	[ "$HTTP_STATUS" = 000 ]
	grep -q "connection_refused.*connections_per_address" "$REFD_LOG"
	# One goes away: there is room again.
	exec {fds[0]}>&-
	sleep 0.3
	as_office GET /v1/referrals
	expect_status 200
	for fd in "${fds[@]:1}"; do
		exec {fd}>&-
	done
	restart_with limits connections_per_address 64
}
