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

# sql_app (was q), sql (was qs), sql_api (was api), who_*, jget FILTER [JSON]:
# tests/lib/client.bash, the one dialect. The seeders below are sql_mk_*,
# sql_submit; their old names stay as aliases at the end of this file.

sql_mk_org() { # NAME
	jget .body.id "$(sql_api organisation_create "$(who_admin)" "{\"name\":\"$1\"}")"
}
sql_mk_office() { # NAME REGION
	jget .body.id "$(sql_api office_create "$(who_admin)" "{\"name\":\"$1\",\"region\":\"$2\"}")"
}
sql_mk_worker() { # ORG KIND HANDLE REGIONS_JSON LANGS_JSON CAPACITY
	jget .body.id "$(sql_api worker_create "$(who_admin)" "{\"organisation_id\":\"$1\",\"kind\":\"$2\",
		\"handle\":\"$3\",\"regions\":$4,\"languages\":$5,\"capacity\":$6}")"
}

# sql_first_worker RESULT: the worker of the first assignment of a
# submission's result, from the database ("null" when unassigned): an office's
# answer never names the worker (protocol v1.1). sql_first_status: its status.
sql_first_worker() {
	sql "select coalesce(worker_id::text, 'null') from assignments where id = '$(jget '.body.assignments[0].id' "$1")'"
}
sql_first_status() {
	sql "select status from assignments where id = '$(jget '.body.assignments[0].id' "$1")'"
}

# sql_submit_args KEY EXTREF UIC NEEDS_JSON REGION LANGS_JSON [URGENCY] [CONSENT]
sql_submit_args() {
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
# sql_submit OFFICE KEY EXTREF UIC NEEDS REGION LANGS [URGENCY] -> result document
sql_submit() {
	local o=$1
	shift
	sql_api referral_submit "$(who_office "$o")" "$(sql_submit_args "$@")"
}

# ---- old names: thin aliases until no test uses them --------------------------
mk_org() { sql_mk_org "$@"; }
mk_office() { sql_mk_office "$@"; }
mk_worker() { sql_mk_worker "$@"; }
submit_args() { sql_submit_args "$@"; }
submit() { sql_submit "$@"; }
first_worker() { sql_first_worker "$@"; }
first_status() { sql_first_status "$@"; }
# The old order was jget JSON FILTER: a first argument that is a JSON document
# (not a jq filter) is taken that way.
jget() {
	if [ $# -ge 2 ] && case $1 in '{'* | '['*) true ;; *) false ;; esac &&
		jq -e . >/dev/null 2>&1 <<<"$1"; then
		printf '%s' "$1" | jq -r "$2"
	else
		printf '%s' "${2-$HTTP_BODY}" | jq -r "$1"
	fi
}
# Child shells (xargs -P ... bash -c) need the seeders and jget as well.
export -f sql_mk_org sql_mk_office sql_mk_worker sql_submit_args sql_submit sql_first_worker \
	sql_first_status jget
