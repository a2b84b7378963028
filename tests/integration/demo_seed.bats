#!/usr/bin/env bats
# The demo seed (issue 3 item 9): deploy/demo-seed.sh builds the demo network
# through the admin API, its tokens work for their roles, a second run into
# the same database succeeds, and the walk make demo prints (submission ->
# offer -> accept -> first contact -> completed) works with those credentials.

load ../lib/api

setup_file() {
	api_setup_file || return 1
}

teardown_file() { api_teardown_file; }

seed() {
	BASE_URL=$API_URL CA_CERT=$API_CA ADMIN_TOKEN=$ADMIN_TOKEN \
		OFFICE_CERT=$REFD_CERTS/office.crt sh "$REFD_ROOT/deploy/demo-seed.sh" \
		>"$BATS_FILE_TMPDIR/seed$1.env" 2>"$BATS_FILE_TMPDIR/seed$1.err"
}

# Values of the seed's output, the way deploy/demo.sh reads them.
val() { sed -n "s/^$2=//p" "$BATS_FILE_TMPDIR/seed$1.env"; }

@test "the seed prints the demo contract's tokens and they work for their roles" {
	local k
	seed 1
	for k in SUPERVISOR_TOKEN WORKER_TOKEN OFFICE_TOKEN OSH_OFFICE_TOKEN LEGAL_ORG_SUPERVISOR_TOKEN \
		PROGRAMME_SUPERVISOR_TOKEN WORKER_RU_TOKEN LEGAL_WORKER_TOKEN OSH_WORKER_TOKEN; do
		[ -n "$(val 1 "$k")" ]
		val 1 "$k" >>"$API_SECRETS"
	done
	# Only KEY=value lines a shell can read safely (demo.sh's filter).
	! grep -vqE '^[A-Z_]+=[A-Za-z0-9._:/-]*$' "$BATS_FILE_TMPDIR/seed1.env" || false
	as "$(val 1 OFFICE_TOKEN)" GET /v1/referrals
	expect_status 200
	as "$(val 1 WORKER_TOKEN)" GET '/v1/assignments?status=offered'
	expect_status 200
	as "$(val 1 SUPERVISOR_TOKEN)" GET /v1/assignments
	expect_status 200
	as "$(val 1 PROGRAMME_SUPERVISOR_TOKEN)" GET /v1/assignments
	expect_status 200
	# The office client certificate stands for office 1.
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	expect_status 200
	# The network: 6 workers of both kinds over bishkek and osh, 3 supervisors.
	[ "$(sql "SELECT count(*) FROM workers")" = 6 ]
	[ "$(sql "SELECT count(DISTINCT kind) FROM workers")" = 2 ]
	[ "$(sql "SELECT count(*) FROM offices")" = 2 ]
	[ "$(sql "SELECT count(*) FROM organisations")" = 2 ]
	[ "$(sql "SELECT count(*) FROM supervisors")" = 3 ]
	# Both organisations on the Kyrgyz calendar of deploy/calendars/.
	[ "$(sql "SELECT count(*) FROM org_calendars WHERE timezone = 'Asia/Bishkek'
	           AND '2027-03-21' = ANY (holidays) AND hours->'sat' = '[]'")" = 2 ]
}

@test "the walk printed by make demo: submission to completed assignment" {
	local ref asg body
	body=$(referral_json '.client.region = "bishkek" | .client.languages = ["ky"] | .consent.report_back = true')
	call "" POST /v1/referrals "$body" -H "Idempotency-Key: demo-walk-1" \
		--cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	expect_status 201
	ref=$(jget .id)
	# Only hr-aibek (WORKER_TOKEN) serves bishkek in ky among harm-reduction workers.
	as "$(val 1 WORKER_TOKEN)" GET '/v1/assignments?status=offered'
	expect_status 200
	asg=$(jget "[.items[] | select(.referral_id == \"$ref\")][0].id")
	expect_uuid "$asg"
	as "$(val 1 WORKER_TOKEN)" POST "/v1/assignments/$asg/accept"
	expect_json .status accepted
	as "$(val 1 WORKER_TOKEN)" POST "/v1/assignments/$asg/events" \
		"{\"type\":\"contact_made\",\"at\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}"
	expect_status 201
	as "$(val 1 WORKER_TOKEN)" POST "/v1/assignments/$asg/complete" '{"outcome":"linked_to_services"}'
	expect_json .status completed
	as "$(val 1 SUPERVISOR_TOKEN)" GET "/v1/assignments/$asg"
	expect_json .status completed
}

@test "seeding again into the same database works (make demo twice)" {
	local k
	seed 2
	for k in SUPERVISOR_TOKEN WORKER_TOKEN OFFICE_TOKEN; do
		[ -n "$(val 2 "$k")" ]
		val 2 "$k" >>"$API_SECRETS"
	done
	as "$(val 2 OFFICE_TOKEN)" GET /v1/referrals
	expect_status 200
	as "$(val 2 WORKER_TOKEN)" GET /v1/assignments
	expect_status 200
	# The certificate still authenticates (bound to the first office 1).
	call "" GET /v1/referrals "" --cert "$REFD_CERTS/office.crt" --key "$REFD_CERTS/office.key"
	expect_status 200
}
