#!/usr/bin/env bats
# Crypto-erasure and retention in SQL (sql/functions/60_retention.sql):
# referral_forget destroys every personal column of a referral and its rows
# and queues the data key in the same transaction; retention_run destroys
# personal data after contact_after_close and deletes every row after
# record_after_close, audited, leaving a follow-up report with the same
# figures; the retention policy's validation.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file
	local org off w
	org=$(mk_org "o-rt")
	off=$(mk_office "off-rt" rt)
	w=$(mk_worker "$org" harm_reduction "h-rt" '["rt"]' '["ru"]' 1000)
	echo "$org $off $w" >"$REFD_TMP/ids"
}
teardown_file() { refd_teardown_file; }
setup() { read -r ORG OFF W <"$REFD_TMP/ids"; }

# closed_referral KEY -> the id of a referral whose one assignment was
# accepted, contacted (with free text) and completed.
closed_referral() {
	local r id aid
	r=$(submit "$OFF" "$1" "REF-$1" "UIC-$1" '["harm_reduction"]' rt '["ru"]')
	id=$(jget "$r" .body.id)
	aid=$(jget "$r" '.body.assignments[0].id')
	qs "UPDATE referrals SET external_ref_sealed = 'k1:eHJlZg==', external_ref_hash = repeat('a', 63) || '$((RANDOM % 10))' WHERE id = '$id'" >/dev/null
	api assignment_accept "$(who_worker "$W" "$ORG")" "{\"id\":\"$aid\"}" >/dev/null
	api assignment_event "$(who_worker "$W" "$ORG")" \
		"{\"id\":\"$aid\",\"event_id\":\"$(uuidgen)\",\"type\":\"contact_made\",\"detail_sealed\":\"k1:ZGV0YWls\",\"outcome_sealed\":\"k1:b3V0\"}" >/dev/null
	api assignment_complete "$(who_worker "$W" "$ORG")" \
		"{\"id\":\"$aid\",\"outcome\":\"engaged\",\"detail_sealed\":\"k1:ZG9uZQ==\"}" >/dev/null
	[ "$(qs "SELECT status FROM referrals WHERE id = '$id'")" = closed ] || return 1
	echo "$id"
}

# personal REFERRAL -> how many personal values of the referral and its rows remain
personal() {
	qs "SELECT (SELECT count(*) FILTER (WHERE contact_sealed IS NOT NULL)
	               + count(*) FILTER (WHERE note_sealed IS NOT NULL)
	               + count(*) FILTER (WHERE external_ref_sealed IS NOT NULL)
	               + count(*) FILTER (WHERE external_ref_hash IS NOT NULL)
	               + count(*) FILTER (WHERE uic_hash IS NOT NULL) FROM referrals WHERE id = '$1')
	         + (SELECT count(*) FROM assignments WHERE referral_id = '$1'
	              AND (detail_sealed IS NOT NULL OR reason_sealed IS NOT NULL))
	         + (SELECT count(*) FROM assignment_events e JOIN assignments a ON a.id = e.assignment_id
	              WHERE a.referral_id = '$1' AND (e.detail_sealed IS NOT NULL OR e.outcome_sealed IS NOT NULL))"
}

@test "referral_forget: every personal column nulled and the key queued, in the caller's transaction" {
	local id
	id=$(closed_referral f1)
	[ "$(personal "$id")" -ge 7 ]
	# Rolled back: nothing changes, nothing is queued.
	q "BEGIN; SELECT referral_forget('$id'); ROLLBACK;" >/dev/null
	[ "$(personal "$id")" -ge 7 ]
	[ "$(qs "SELECT count(*) FROM data_key_erasures WHERE referral_id = '$id'")" = 0 ]
	# Committed, as the runtime role with an office's scope set.
	[ "$(q "SELECT set_config('app.role', 'office', false); SELECT referral_forget('$id')" | tail -n 1)" = t ]
	[ "$(personal "$id")" = 0 ]
	[ "$(qs "SELECT count(*) FROM data_key_erasures WHERE referral_id = '$id'")" = 1 ]
	[ "$(qs "SELECT forgotten_at IS NOT NULL FROM referrals WHERE id = '$id'")" = t ]
	# Idempotent; an unknown id is false.
	[ "$(q "SELECT referral_forget('$id')")" = t ]
	[ "$(q "SELECT referral_forget(gen_random_uuid())")" = f ]
	# The daemon's side of the queue.
	[[ "$(q "SELECT data_key_erasures_due(100)")" == *"$id"* ]]
	[ "$(q "SELECT data_key_erasures_done(ARRAY['$id']::uuid[])")" = 1 ]
	[ "$(qs "SELECT count(*) FROM data_key_erasures WHERE referral_id = '$id'")" = 0 ]
}

@test "retention policy: defaults, ISO 8601 durations, admin only, audited" {
	local r
	r=$(api retention_policy_get "$(who_admin)" '{}')
	[ "$(jget "$r" .status)" = 200 ]
	[ "$(jget "$r" .body.contact_after_close)" = P30D ]
	[ "$(jget "$r" .body.record_after_close)" = P730D ]
	r=$(api retention_policy_put "$(who_admin)" '{"contact_after_close":"0D"}')
	[ "$(jget "$r" .status)" = 400 ]
	[ "$(jget "$r" .body.error.field)" = /contact_after_close ]
	r=$(api retention_policy_put "$(who_admin)" '{"record_after_close":"PT0S"}')
	[ "$(jget "$r" .body.error.field)" = /record_after_close ]
	[ "$(jget "$(api retention_policy_get "$(who_admin)" '{}')" .body.contact_after_close)" = P30D ]
	r=$(api retention_policy_put "$(who_office "$OFF")" '{"contact_after_close":"PT1S"}')
	[ "$(jget "$r" .status)" = 403 ]
	r=$(api retention_policy_put "$(who_admin)" '{"contact_after_close":"PT1H"}')
	[ "$(jget "$r" .status)" = 200 ]
	[ "$(jget "$r" .body.contact_after_close)" = PT1H ]
	[ "$(jget "$r" .body.record_after_close)" = P730D ]
	[ "$(qs "SELECT count(*) FROM audit_log WHERE action = 'retention_policy.put' AND outcome = 'ok'")" = 1 ]
	[ "$(qs "SELECT count(*) FROM audit_log WHERE action = 'retention_policy.put' AND outcome = 'denied'")" = 1 ]
}

@test "retention_run: contact erased, then every row deleted; audited; the report unchanged" {
	local a b open rep1 rep2 aids t
	a=$(closed_referral p1)
	b=$(closed_referral p2)
	open=$(jget "$(submit "$OFF" p3 REF-p3 UIC-p3 '["harm_reduction"]' rt '["ru"]')" .body.id)
	rep1=$(api report_follow_up "$(who_sup "$(uuidgen)" "$ORG")" '{"group_by":"organisation","from":"2020-01-01T00:00:00Z"}' | jq -S '.body.groups')
	rep1r=$(api report_follow_up "$(who_sup "$(uuidgen)" "$ORG")" '{"group_by":"region","from":"2020-01-01T00:00:00Z"}' | jq -S '.body | {groups, weeks}')
	aids=$(qs "SELECT string_agg(quote_literal(id), ',') FROM assignments WHERE referral_id IN ('$a', '$b')")

	# Nothing due under the defaults.
	t=$(q "SELECT retention_run(100)")
	[ "$(jget "$t" .forgotten)" = 0 ]
	[ "$(jget "$t" .purged)" = 0 ]
	[ "$(jget "$t" .next_ms)" -gt 1000 ]

	q "UPDATE retention_policy SET contact_after_close = '1 second', record_after_close = '1 hour'" >/dev/null
	sleep 1.1
	t=$(q "SELECT retention_run(100)")
	[ "$(jget "$t" .forgotten)" -ge 2 ]
	[ "$(jget "$t" .purged)" = 0 ]
	[ "$(personal "$a")" = 0 ]
	[ "$(personal "$b")" = 0 ]
	[ "$(personal "$open")" -ge 1 ]
	[ "$(qs "SELECT count(*) FROM data_key_erasures WHERE referral_id IN ('$a', '$b')")" = 2 ]
	[ "$(qs "SELECT count(*) FROM audit_log WHERE action = 'retention.contact_erased' AND object_id IN ('$a', '$b') AND actor_role = 'system'")" = 2 ]
	# Exactly once: a second run finds nothing more to erase.
	[ "$(jget "$(q "SELECT retention_run(100)")" .forgotten)" = 0 ]

	q "UPDATE retention_policy SET record_after_close = '1 second'" >/dev/null
	t=$(q "SELECT retention_run(100)")
	[ "$(jget "$t" .purged)" -ge 2 ]
	[ "$(qs "SELECT count(*) FROM referrals WHERE id IN ('$a', '$b')")" = 0 ]
	[ "$(qs "SELECT count(*) FROM referrals WHERE id = '$open'")" = 1 ]
	# No row of the purged referrals anywhere.
	[ "$(qs "SELECT (SELECT count(*) FROM assignments WHERE id IN ($aids))
	              + (SELECT count(*) FROM offers WHERE assignment_id IN ($aids))
	              + (SELECT count(*) FROM deadlines WHERE assignment_id IN ($aids))
	              + (SELECT count(*) FROM escalations WHERE assignment_id IN ($aids))
	              + (SELECT count(*) FROM assignment_events WHERE assignment_id IN ($aids))
	              + (SELECT count(*) FROM assignment_history WHERE assignment_id IN ($aids))
	              + (SELECT count(*) FROM outbox WHERE payload->>'referral_id' IN ('$a', '$b')
	                    OR payload->>'assignment_id' IN ($aids))
	              + (SELECT count(*) FROM idempotency_keys WHERE response->>'id' IN ('$a', '$b'))")" = 0 ]
	# Audit records stay, and the purge is audited.
	[ "$(qs "SELECT count(*) FROM audit_log WHERE action = 'retention.record_purged' AND object_id IN ('$a', '$b')")" = 2 ]
	[ "$(qs "SELECT count(*) FROM audit_log WHERE object_id = '$a' AND action = 'referral.submit'")" = 1 ]
	[ "$(qs "SELECT count(*) FROM audit_log WHERE action = 'retention.batch'")" -ge 2 ]
	# The facts name no referral, assignment or worker.
	[ "$(qs "SELECT count(*) FROM information_schema.columns WHERE table_name IN ('deadline_facts', 'assignment_facts') AND column_name ~ '(referral|assignment|worker)'")" = 0 ]
	rep2=$(api report_follow_up "$(who_sup "$(uuidgen)" "$ORG")" '{"group_by":"organisation","from":"2020-01-01T00:00:00Z"}' | jq -S '.body.groups')
	rep2r=$(api report_follow_up "$(who_sup "$(uuidgen)" "$ORG")" '{"group_by":"region","from":"2020-01-01T00:00:00Z"}' | jq -S '.body | {groups, weeks}')
	[ "$(jq '.[0].offers' <<<"$rep1")" -ge 3 ]
	[ "$rep1" = "$rep2" ]
	[ "$rep1r" = "$rep2r" ]
}
