#!/usr/bin/env bats
# The transactional outbox (events written with the change, ids only, claim
# leases so two daemons never send one event at once, retry backoff), the
# supervisor's audit list scope, and the retention purge.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file
	local org org2 off w res
	org=$(sql_mk_org o-ob)
	org2=$(sql_mk_org o2-ob)
	off=$(sql_mk_office off-ob ob)
	w=$(sql_mk_worker "$org" harm_reduction h-ob '["ob"]' '["ru"]' 50)
	sql_api webhook_create "$(who_admin)" "{\"url\":\"https://partner.example/hook\",\"events\":[\"assignment.offered\",\"assignment.accepted\"],\"secret_sealed\":\"k1:c2VjcmV0\",\"organisation_id\":\"$org\"}" >/dev/null
	res=$(sql_submit "$off" k1 E1 CANARY-OB '["harm_reduction"]' ob '["ru"]')
	sql_api assignment_accept "$(who_worker "$w" "$org")" "{\"id\":\"$(jget '.body.assignments[0].id' "$res")\"}" >/dev/null
	echo "$org $org2 $off $w $(jget '.body.assignments[0].id' "$res")" >"$REFD_TMP/ids"
}
teardown_file() { refd_teardown_file; }
setup() { read -r ORG ORG2 OFF W AID <"$REFD_TMP/ids"; }

@test "offer and accept wrote outbox events with ids and a detail_url only" {
	[ "$(sql "select string_agg(type, ',' order by created_at, type) from outbox where payload->>'assignment_id' = '$AID'")" = "assignment.offered,assignment.accepted" ]
	run sql "select count(*) from outbox where payload::text ~* 'canary|sealed|phone|note'"
	[ "$output" = 0 ]
	[ "$(sql "select payload->>'detail_url' from outbox where type = 'assignment.accepted'")" = "/v1/assignments/$AID" ]
}

@test "claims lease events: two claimers never get the same one; done and retry" {
	local a b
	a=$(sql_app "select outbox_claim(10)")
	b=$(sql_app "select outbox_claim(10)")
	[ -n "$a" ]
	[ -z "$b" ]
	[ "$(jq -r 'select(.type == "assignment.offered") | .webhooks[0].url' <<<"$a")" = "https://partner.example/hook" ]
	[ "$(jq -r 'select(.type == "assignment.offered") | .webhooks[0].secret_sealed' <<<"$a")" = "k1:c2VjcmV0" ]
	local id
	id=$(jq -r 'select(.type == "assignment.offered") | .id' <<<"$a")
	sql_app "select outbox_done('$id')" >/dev/null
	id=$(jq -r 'select(.type == "assignment.accepted") | .id' <<<"$a")
	sql_app "select outbox_retry('$id', 'timeout')" >/dev/null
	[ "$(sql "select next_attempt_at > now() and attempts = 1 from outbox where id = '$id'")" = t ]
	[ "$(sql "select count(*) from outbox where delivered_at is not null")" = 1 ]
}

@test "a supervisor's audit list keeps to its organisation" {
	local res
	res=$(sql_api audit_list "$(who_sup 00000000-0000-4000-8000-0000000000d1 "$ORG")" '{"limit":200}')
	[ "$(jget .status "$res")" = 200 ]
	[ "$(jget "[.body.items[] | select(.object_id == \"$AID\")] | length" "$res")" -ge 1 ]
	res=$(sql_api audit_list "$(who_sup 00000000-0000-4000-8000-0000000000d2 "$ORG2")" '{"limit":200}')
	[ "$(jget "[.body.items[] | select(.object_id == \"$AID\")] | length" "$res")" = 0 ]
	res=$(sql_api audit_list "$(who_worker "$W" "$ORG")" '{}')
	[ "$(jget .status "$res")" = 403 ]
}

@test "retention purge drops only old idempotency records" {
	sql "update idempotency_keys set created_at = now() - interval '3 days'" >/dev/null
	sql_submit "$OFF" k2 E2 U2 '["harm_reduction"]' ob '["ru"]' >/dev/null
	[ "$(sql_app "select idempotency_purge('1 day')")" = 1 ]
	[ "$(sql "select count(*) from idempotency_keys")" = 1 ]
}
