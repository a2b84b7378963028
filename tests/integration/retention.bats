#!/usr/bin/env bats
# retention.bats - the retention purge (daemon/purge.c): idempotency records
# are kept for [retention] idempotency_keys and then deleted by the daemon's
# own periodic job; a key remembered answers a replay, a key forgotten cannot
# create a referral twice (external_ref still guards it).

load ../lib/api

setup_file() {
	api_setup_file || return 1
	api_seed_network || return 1
	# Seconds instead of days, so the test waits for one purge, not a week.
	refd_daemon_stop main >/dev/null || return 1
	refd_config_set "$REFD_CONF" retention idempotency_keys 3s || return 1
	refd_config_set "$REFD_CONF" retention interval 200ms || return 1
	refd_daemon_start main "$REFD_CONF" || return 1
}

teardown_file() { api_teardown_file; }

@test "idempotency records are replayed while kept, purged after the retention, never duplicated" {
	local body key id i n
	body=$(referral_json '.needs=["harm_reduction"]')
	key=$(new_key)
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_status 201
	id=$(jget .id)
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_status 201
	[ "$(header Idempotent-Replayed)" = true ]
	expect_json .id "$id"

	# Purged by the daemon once older than 3 s.
	for i in $(seq 1 80); do
		n=$(sql "SELECT count(*) FROM idempotency_keys WHERE key = '$key'")
		[ "$n" = 0 ] && break
		sleep 0.1
	done
	[ "$n" = 0 ]
	grep -q 'event=purge_done idempotency_keys=' "$REFD_LOG"

	# The key is forgotten, the referral is not: the same body again is a
	# duplicate external_ref, with the existing id, and nothing new exists.
	submit "$OFFICE_TOKEN" "$body" "$key"
	expect_error 409 duplicate_referral
	expect_json .error.existing_id "$id"
	[ "$(sql "SELECT count(*) FROM referrals WHERE id = '$id'")" = 1 ]
	[ -z "$(header Idempotent-Replayed)" ]

	# A record younger than the retention stays.
	key=$(new_key)
	submit "$OFFICE_TOKEN" "$(referral_json '.needs=["harm_reduction"]')" "$key"
	expect_status 201
	sleep 1
	[ "$(sql "SELECT count(*) FROM idempotency_keys WHERE key = '$key'")" = 1 ]
}
