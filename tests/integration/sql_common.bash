# shellcheck shell=bash
# tests/integration/sql_common.bash - drive the SQL functions through psql.
#
# Owns: a private cluster per .bats file with the migrations and functions applied as the
# database owner, and small fixture builders (organisations, offices, workers,
# submissions) that call the api_ functions exactly as the daemon does, as the
# least-privileged role referrald_app (so grants and row-level security are
# exercised too).
# Must never: start the daemon (the C-level tests do that), use fixed ports.
#
#   load ../lib/common
#   load sql_common
#   setup_file()    { sql_setup_file; }
#   teardown_file() { refd_teardown_file; }

sql_setup_file() {
	REFD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/refd-sql.XXXXXX") || return 1
	export REFD_TMP
	refd_pg_init || return 1
	refd_pg_start || return 1
	refd_pg_createdb "$REFD_DB" || return 1
	# The DBA creates the daemon's role once per cluster; migrations run as
	# the database owner (not a superuser), as the daemon's --migrate does.
	psql -X -q -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres -d postgres \
		-c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'referrald_app')
		    THEN CREATE ROLE referrald_app NOLOGIN; END IF; END \$\$" \
		-c "GRANT referrald_app TO $REFD_DB_USER" >/dev/null || return 1
	local f
	for f in "$REFD_ROOT"/sql/migrations/*.sql "$REFD_ROOT"/sql/functions/*.sql; do
		psql -X -q -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U "$REFD_DB_USER" \
			-d "$REFD_DB" -1 -f "$f" >/dev/null 2>"$REFD_TMP/migrate.err" || {
			echo "migration $f failed:" >&2
			cat "$REFD_TMP/migrate.err" >&2
			return 1
		}
	done
}

# q SQL: one statement as the daemon's role; tuples only, unaligned.
q() {
	psql -X -q -tA -v ON_ERROR_STOP=1 -h "$REFD_PGHOST" -p "$REFD_PGPORT" -U postgres \
		-d "$REFD_DB" -c "SET ROLE referrald_app" -c "$1"
}

# qs SQL: as superuser (fixture inspection, tampering).
qs() {
	refd_psql -tA -c "$1"
}

# Principals as the daemon's auth_* functions return them.
who_admin() { echo '{"role":"admin","id":"00000000-0000-4000-8000-000000000001"}'; }
who_office() { echo "{\"role\":\"office\",\"id\":\"$1\"}"; }
who_worker() { echo "{\"role\":\"worker\",\"id\":\"$1\",\"org_id\":\"$2\"}"; }
who_sup() { echo "{\"role\":\"supervisor\",\"id\":\"$1\",\"org_id\":\"$2\",\"programme\":false}"; }

# api NAME WHO ARGS -> the whole result document
api() {
	q "SELECT api_$1('$2'::jsonb, 'req-$RANDOM', \$json\$$3\$json\$::jsonb)"
}
# jget JSON FILTER (jq -r)
jget() { jq -r "$2" <<<"$1"; }

# first_worker RESULT: the worker of the first assignment of a submission's
# result, from the database ("null" when unassigned): an office's answer
# never names the worker (protocol v1.1).
first_worker() {
	qs "select coalesce(worker_id::text, 'null') from assignments where id = '$(jget "$1" '.body.assignments[0].id')'"
}
first_status() {
	qs "select status from assignments where id = '$(jget "$1" '.body.assignments[0].id')'"
}

mk_org() {
	jget "$(api organisation_create "$(who_admin)" "{\"name\":\"$1\"}")" .body.id
}
mk_office() { # NAME REGION
	jget "$(api office_create "$(who_admin)" "{\"name\":\"$1\",\"region\":\"$2\"}")" .body.id
}
mk_worker() { # ORG KIND HANDLE REGIONS_JSON LANGS_JSON CAPACITY
	jget "$(api worker_create "$(who_admin)" "{\"organisation_id\":\"$1\",\"kind\":\"$2\",
		\"handle\":\"$3\",\"regions\":$4,\"languages\":$5,\"capacity\":$6}")" .body.id
}

# submit_args KEY EXTREF UIC NEEDS_JSON REGION LANGS_JSON [URGENCY] [CONSENT]
submit_args() {
	local uic
	uic=$(printf '%s' "$3" | sha256sum | cut -c1-64)
	cat <<EOF
{"idempotency_key":"$1","request_hash":"h-$1-$2","external_ref":"$2",
 "client":{"uic_hash":"$uic","birth_year":1985,"gender":"m","languages":$6,
           "region":"$5","contact_sealed":"k1:c2VhbGVk"},
 "needs":$4,"urgency":"${7:-normal}",
 "consent":{"services":${8:-true},"report_back":false,"obtained_at":"2026-11-27T10:00:00Z"},
 "note_sealed":"k1:bm90ZQ=="}
EOF
}
# submit OFFICE KEY EXTREF UIC NEEDS REGION LANGS [URGENCY] -> result document
submit() {
	local o=$1
	shift
	api referral_submit "$(who_office "$o")" "$(submit_args "$@")"
}
