#!/usr/bin/env bats
# One source per value set (issue 8 §4): each closed set of the protocol is a
# domain in sql/migrations/0075_value_sets.sql; the C tables (daemon/vocab.c)
# and the spec's enums (proto/openapi.yaml) must list exactly its values, and
# no table writes the list out again in a CHECK. No daemon runs here.

load ../lib/common
load sql_common

setup_file() {
	sql_setup_file || return 1
	cc -std=c11 -O1 -I"$REFD_ROOT/daemon" -o "$REFD_TMP/vocab_dump" \
		"$REFD_ROOT/tests/integration/vocab_dump.c" "$REFD_ROOT/daemon/vocab.c" || return 1
	"$REFD_TMP/vocab_dump" >"$REFD_TMP/vocab.txt"
	yq -c '[paths(type == "object" and has("enum")) as $p
	        | {key: ($p | map(tostring) | join(".")), value: getpath($p).enum}] | from_entries' \
		"$REFD_ROOT/proto/openapi.yaml" >"$REFD_TMP/enums.json"
}
teardown_file() { refd_teardown_file; }

# domain_values NAME: the values of the domain's CHECK, sorted, one a line.
domain_values() {
	sql "SELECT v[1] FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
	    CROSS JOIN LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([^'']+)''', 'g') AS v
	    WHERE t.typname = '$1' ORDER BY 1"
}
c_values() { awk -v s="$1" '$1 == s { print $2 }' "$REFD_TMP/vocab.txt" | LC_ALL=C sort; }
spec_values() {
	jq -r --arg p "$1" '.[$p] // error("no enum at \($p)") | .[] | select(. != null) | tostring' \
		"$REFD_TMP/enums.json" | LC_ALL=C sort
}

# Each row: DOMAIN[-VALUE] (the domain less an internal value), the C set
# (or -), then the spec's enums that must hold the same values.
SETS='
need need components.schemas.Need
urgency urgency components.schemas.Urgency
gender gender components.schemas.ClientInput.properties.gender components.schemas.ClientView.properties.gender
subject_role role components.schemas.Role components.schemas.SignInCode.properties.role components.schemas.Session.properties.role components.schemas.Me.properties.role
referral_status referral_status components.schemas.ReferralStatus
assignment_status assignment_status components.schemas.AssignmentStatus
event_type event_type components.schemas.EventInput.properties.type components.schemas.Event.properties.type
completion_outcome outcome components.schemas.CompletionOutcome
assignment_outcome - components.schemas.Assignment.properties.outcome
assignment_outcome-failed outcome
fail_reason fail_reason components.schemas.Failure.properties.reason
deadline_kind - components.schemas.Deadline.properties.kind
deadline_state - components.schemas.Deadline.properties.state
deadline_state-void deadline_state paths./v1/deadlines.get.parameters.0.schema
deadline_clock clock components.schemas.Deadline.properties.clock components.schemas.DeadlinePolicyInput.properties.clock components.schemas.DeadlinePolicy.properties.clock
supervisor_scope supervisor_scope components.schemas.SupervisorInput.properties.scope components.schemas.Supervisor.properties.scope
consent_scope consent_scope components.schemas.ConsentRevocation.properties.scope
report_group_by report_group_by components.schemas.FollowUpReport.properties.group_by paths./v1/reports/follow-up.get.parameters.2.schema
'

@test "the C sets and the spec's enums list exactly the values of their domain" {
	local dom cset paths want got p bad="" dname less
	while read -r dom cset paths; do
		[ -n "$dom" ] || continue
		dname=${dom%%-*}
		less=${dom#"$dname"}
		less=${less#-}
		want=$(domain_values "$dname" | grep -vxF -- "${less:-$'\x01'}")
		[ -n "$want" ] || { bad="$bad; no domain $dname"; continue; }
		if [ "$cset" != - ]; then
			got=$(c_values "$cset")
			[ "$got" = "$want" ] || bad="$bad; C $cset: $(echo $got) is not $dom: $(echo $want)"
		fi
		for p in $paths; do
			got=$(spec_values "$p") || { bad="$bad; spec: no enum at $p"; continue; }
			[ "$got" = "$want" ] || bad="$bad; spec $p: $(echo $got) is not $dom: $(echo $want)"
		done
	done <<<"$SETS"
	[ -z "$bad" ] || { echo "${bad#; }" | tr ';' '\n' >&2; return 1; }
}

@test "every C set is held against a domain" {
	local s missing=""
	for s in $(awk '{ print $1 }' "$REFD_TMP/vocab.txt" | sort -u); do
		printf '%s\n' "$SETS" | awk -v s="$s" '$2 == s { f = 1 } END { exit !f }' ||
			missing="$missing $s"
	done
	[ -z "$missing" ] || { echo "C sets with no domain row:$missing" >&2; return 1; }
}

@test "no table writes a domain's values out again in a CHECK" {
	local bad
	bad=$(sql "WITH d AS (
	            SELECT t.typname, array_agg(v[1] ORDER BY v[1]) AS vals
	            FROM pg_constraint c JOIN pg_type t ON t.oid = c.contypid
	            CROSS JOIN LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([^'']+)''', 'g') AS v
	            WHERE t.typtype = 'd' AND t.typnamespace = 'public'::regnamespace GROUP BY 1),
	          k AS (
	            SELECT c.conrelid::regclass::text AS tbl, c.conname,
	                   array_agg(v[1] ORDER BY v[1]) AS vals
	            FROM pg_constraint c
	            CROSS JOIN LATERAL regexp_matches(pg_get_constraintdef(c.oid), '''([^'']+)''::text', 'g') AS v
	            WHERE c.contype = 'c' AND c.conrelid <> 0 GROUP BY 1, 2)
	          SELECT string_agg(k.tbl || '.' || k.conname || ' repeats ' || d.typname, ', ')
	          FROM k JOIN d ON d.vals <@ k.vals")
	[ -z "$bad" ] || { echo "$bad" >&2; return 1; }
	# The columns hold the domains.
	[ "$(sql "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
	         WHERE attrelid = 'assignments'::regclass AND attname = 'status'")" = assignment_status ]
	run sql_app "UPDATE deadline_policies SET clock = 'lunar'"
	[ "$status" -ne 0 ]
	[[ "$output" == *deadline_clock* ]]
}
