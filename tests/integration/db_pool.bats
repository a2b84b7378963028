#!/usr/bin/env bats
# tests/integration/db_pool.bats - the database path against a private
# PostgreSQL: the async pool (driven by the test_db_pool binary, including a
# server stop/start), migrations (concurrent --migrate, schema newer than the
# binary, forward-only: a changed or missing applied migration refused, the
# released files checked by tests/check-migrations.sh), the re-applied
# functions and their checksum, and the start-up durability check.
#
# The HTTP-level scenarios (/readyz 503 while the server is down, a client
# leaving mid-query, SIGTERM draining) live in foundation.bats.

load ../lib/common

setup_file() {
	REFD_NO_DAEMON=1 refd_setup_file
}

teardown_file() {
	refd_teardown_file
}

# Shell commands test_db_pool runs (through system()) to stop and start the
# cluster, as the cluster's owner.
pg_ctl_cmd() {
	local cmd="$REFD_PG_BIN/pg_ctl -D '$REFD_PGDATA' -w -t 60"
	case $1 in
	stop) cmd="$cmd -m fast stop" ;;
	start) cmd="$cmd -l '$REFD_PGHOST/server.log' start" ;;
	esac
	if [ "$(id -u)" -eq 0 ]; then
		echo "cd / && runuser -u postgres -- $cmd >/dev/null"
	else
		echo "$cmd >/dev/null"
	fi
}

@test "db pool: queries, errors, FIFO, deadlines with cancel, outage and reconnect" {
	[ -x "$BUILD/tests/test_db_pool" ] || skip "test_db_pool not built"
	# The pool test creates its own scratch tables: the schema owner's
	# connection, not the daemon's least-privileged runtime role.
	export REFD_TEST_CONNINFO=$REFD_MIGRATE_CONNINFO
	REFD_TEST_PG_STOP=$(pg_ctl_cmd stop)
	REFD_TEST_PG_START=$(pg_ctl_cmd start)
	export REFD_TEST_PG_STOP REFD_TEST_PG_START
	run "$BUILD/tests/test_db_pool"
	echo "$output"
	# Whatever happened, the cluster must be up for the next tests.
	refd_pg_start 2>/dev/null || true
	[ "$status" -eq 0 ]
	[[ "$output" == *"PASSED  ] 7 test(s)"* ]]
	[[ "$output" != *SKIPPED* ]]
}

@test "migrate: two daemons migrating at once both succeed, each migration applied once" {
	local n
	n=$(ls "$REFD_ROOT"/sql/migrations/*.sql | wc -l)
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/m1.log" 2>&1 &
	local p1=$!
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/m2.log" 2>&1 &
	local p2=$!
	wait $p1 || { cat "$REFD_TMP/m1.log"; false; }
	wait $p2 || { cat "$REFD_TMP/m2.log"; false; }
	[ "$(refd_psql -tAc 'select count(*) from schema_migrations')" -eq "$n" ]
	[ "$(refd_psql -tAc 'select count(distinct version) from schema_migrations')" -eq "$n" ]
	# Nothing pending: a third run changes nothing.
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/m3.log" 2>&1
	[ "$(refd_psql -tAc 'select count(*) from schema_migrations')" -eq "$n" ]
}

@test "migrate: a database newer than the binary is refused" {
	"$REFD_BIN" -c "$REFD_CONF" --migrate >/dev/null 2>&1
	refd_psql -c "insert into schema_migrations (version, name) values (99999, 'future')"
	run "$REFD_BIN" -c "$REFD_CONF" --migrate
	refd_psql -c "delete from schema_migrations where version = 99999"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"newer than this binary"* ]]
}

# The checksum the binary embeds, rebuilt the way daemon/gen_migrations.sh
# computes it: each file's name, then its contents, in file order.
functions_checksum() {
	local f
	for f in "$REFD_ROOT"/sql/functions/*.sql; do
		basename "$f"
		cat "$f"
	done | sha256sum | cut -c1-64
}

@test "migrate: functions are applied with their checksum, skipped when it matches, re-applied when not" {
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/f1.log" 2>&1 || { cat "$REFD_TMP/f1.log"; false; }
	[ "$(refd_psql -tAc 'select checksum from schema_functions')" = "$(functions_checksum)" ]
	[ "$(refd_psql -tAc "select ts('2026-11-28 09:00:00+00')")" = 2026-11-28T09:00:00Z ]
	# Same checksum: a second run does not touch the functions (a change
	# made behind its back stays).
	refd_psql -c "CREATE OR REPLACE FUNCTION ts(t timestamptz) RETURNS text
		LANGUAGE sql IMMUTABLE AS \$\$ SELECT 'changed'::text \$\$"
	local before
	before=$(refd_psql -tAc 'select applied_at from schema_functions')
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/f2.log" 2>&1 || { cat "$REFD_TMP/f2.log"; false; }
	[ "$(refd_psql -tAc "select ts(now())")" = changed ]
	[ "$(refd_psql -tAc 'select applied_at from schema_functions')" = "$before" ]
	# Another checksum (an older binary's functions): all are re-applied.
	refd_psql -c "update schema_functions set checksum = 'older'"
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/f3.log" 2>&1 || { cat "$REFD_TMP/f3.log"; false; }
	[ "$(refd_psql -tAc "select ts('2026-11-28 09:00:00+00')")" = 2026-11-28T09:00:00Z ]
	[ "$(refd_psql -tAc 'select checksum from schema_functions')" = "$(functions_checksum)" ]
	[ "$(refd_psql -tAc 'select applied_at from schema_functions')" != "$before" ]
}

@test "migrate = off: functions out of date are pending, and the daemon refuses to start" {
	"$REFD_BIN" -c "$REFD_CONF" --migrate >/dev/null 2>&1
	refd_psql -c "update schema_functions set checksum = 'older'"
	cp "$REFD_CONF" "$REFD_TMP/off.conf"
	refd_config_set "$REFD_TMP/off.conf" database migrate off
	run timeout 30 "$REFD_BIN" -c "$REFD_TMP/off.conf"
	echo "$output"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$output" == *"1 migration(s) pending"* ]]
	# Nothing was applied by the refusing daemon.
	[ "$(refd_psql -tAc 'select checksum from schema_functions')" = older ]
	"$REFD_BIN" -c "$REFD_CONF" --migrate >/dev/null 2>&1
	[ "$(refd_psql -tAc 'select checksum from schema_functions')" = "$(functions_checksum)" ]
}

# Migrations are forward-only (issue 13): the SHA-256 of each applied file is
# recorded, and a database whose applied migration differs from this
# binary's (an edited released file), or is missing from it, is refused.
migration_sums() { # "version|sha256" per file, as the daemon must record them
	local f v
	for f in "$REFD_ROOT"/sql/migrations/*.sql; do
		v=$(basename "$f" | sed 's/_.*//; s/^0*//')
		echo "$v|$(sha256sum <"$f" | cut -c1-64)"
	done
}

@test "migrate: each applied migration's SHA-256 is recorded; a changed one is refused by --migrate and at start" {
	local first name edited
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/c1.log" 2>&1 || { cat "$REFD_TMP/c1.log"; false; }
	[ "$(refd_psql -tAc 'select version || $$|$$ || checksum from schema_migrations order by version')" = \
		"$(migration_sums)" ]
	# The released file 0003 edited after it was applied: what the binary
	# carries no longer hashes to what the database recorded.
	first=$(ls "$REFD_ROOT"/sql/migrations/*.sql | sed -n 2p)
	name=$(basename "$first" .sql)
	edited=$( (cat "$first"; echo "-- edited after release") | sha256sum | cut -c1-64)
	refd_psql -c "update schema_migrations set checksum = '$edited' where version = ${name%%_*}"
	refd_psql -c "update schema_functions set checksum = 'older'"
	run "$REFD_BIN" -c "$REFD_CONF" --migrate
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"migration ${name} was changed after it was applied"* ]]
	# Refused before anything ran: the functions were not re-applied.
	[ "$(refd_psql -tAc 'select checksum from schema_functions')" = older ]
	# The daemon refuses to start on it too, with migrate = auto and off.
	run timeout 30 "$REFD_BIN" -c "$REFD_CONF"
	echo "$output"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$output" == *"was changed after it was applied"* ]]
	cp "$REFD_CONF" "$REFD_TMP/off.conf"
	refd_config_set "$REFD_TMP/off.conf" database migrate off
	run timeout 30 "$REFD_BIN" -c "$REFD_TMP/off.conf"
	echo "$output"
	[ "$status" -ne 0 ] && [ "$status" -ne 124 ]
	[[ "$output" == *"was changed after it was applied"* ]]
	[ "$(refd_psql -tAc "select checksum from schema_migrations where version = ${name%%_*}")" = "$edited" ]
	# With the released file's checksum back, it migrates again.
	refd_psql -c "update schema_migrations set checksum = '$(sha256sum <"$first" | cut -c1-64)'
	              where version = ${name%%_*}"
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/c2.log" 2>&1 || { cat "$REFD_TMP/c2.log"; false; }
	[ "$(refd_psql -tAc 'select checksum from schema_functions')" = "$(functions_checksum)" ]
}

@test "migrate: an applied migration missing from the binary is refused; checksums are filled in for an older database" {
	local v
	"$REFD_BIN" -c "$REFD_CONF" --migrate >/dev/null 2>&1
	# A version below the binary's newest that the binary does not have
	# (a released file deleted).
	v=$(refd_psql -tAc "select min(g) from generate_series(1, (select max(version) from schema_migrations)) g
	                    where g not in (select version from schema_migrations)")
	[ -n "$v" ]
	refd_psql -c "insert into schema_migrations (version, name, checksum) values ($v, 'deleted', 'x')"
	run "$REFD_BIN" -c "$REFD_CONF" --migrate
	refd_psql -c "delete from schema_migrations where version = $v"
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"migration $(printf '%04d' "$v") is applied to this database but missing from this binary"* ]]
	# A database migrated before checksums were kept: no column; --migrate
	# adds it and records this binary's files.
	refd_psql -c "alter table schema_migrations drop column checksum"
	"$REFD_BIN" -c "$REFD_CONF" --migrate >"$REFD_TMP/c3.log" 2>&1 || { cat "$REFD_TMP/c3.log"; false; }
	[ "$(refd_psql -tAc 'select version || $$|$$ || checksum from schema_migrations order by version')" = \
		"$(migration_sums)" ]
}

@test "released migrations are unchanged; the check catches one changed, removed or numbered before them" {
	local d=$BATS_TEST_TMPDIR/tree last unreleased
	run sh "$REFD_ROOT/tests/check-migrations.sh"
	echo "$output"
	[ "$status" -eq 0 ]
	# Every file the list names exists in the tree (the list is not empty).
	[ "$(grep -c '^[0-9a-f]\{64\}  sql/migrations/' "$REFD_ROOT/sql/released-migrations.sha256")" -ge 9 ]
	mkdir -p "$d/tests" && cp -r "$REFD_ROOT/sql" "$d/" && cp "$REFD_ROOT/tests/check-migrations.sh" "$d/tests/"
	last=$(grep '^[0-9a-f]' "$d/sql/released-migrations.sha256" | tail -n 1 | awk '{ print $2 }')
	# Changed.
	cp "$d/$last" "$d/saved.sql"
	echo "ALTER TABLE referrals ADD COLUMN sneaky text;" >>"$d/$last"
	run sh "$d/tests/check-migrations.sh" "$d"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$last was released and has changed"* ]]
	# Removed.
	rm "$d/$last"
	run sh "$d/tests/check-migrations.sh" "$d"
	[ "$status" -eq 1 ]
	[[ "$output" == *"$last was released but is gone"* ]]
	mv "$d/saved.sql" "$d/$last"
	run sh "$d/tests/check-migrations.sh" "$d"
	[ "$status" -eq 0 ]
	# A new file numbered before the last released one.
	echo "SELECT 1;" >"$d/sql/migrations/0001_early.sql"
	run sh "$d/tests/check-migrations.sh" "$d"
	[ "$status" -eq 1 ]
	[[ "$output" == *"0001_early.sql is not released but numbered at or below"* ]]
	rm "$d/sql/migrations/0001_early.sql"
	# A new one after them is fine, may still change until released, and
	# --release freezes it.
	run sh "$d/tests/check-migrations.sh" "$d"
	unreleased=$(sed -n 's/.*; \([0-9]*\) not yet released.*/\1/p' <<<"$output")
	[ -n "$unreleased" ]
	echo "SELECT 1;" >"$d/sql/migrations/9990_next.sql"
	run sh "$d/tests/check-migrations.sh" "$d"
	[ "$status" -eq 0 ]
	[[ "$output" == *"; $((unreleased + 1)) not yet released"* ]]
	run sh "$d/tests/check-migrations.sh" --release "$d"
	[ "$status" -eq 0 ]
	echo "SELECT 2;" >"$d/sql/migrations/9990_next.sql"
	run sh "$d/tests/check-migrations.sh" "$d"
	[ "$status" -eq 1 ]
	[[ "$output" == *"9990_next.sql was released and has changed"* ]]
}

durability_refused() { # SETTING VALUE WORD
	refd_psql -c "alter system set $1 = '$2'" -c "select pg_reload_conf()" >/dev/null
	sleep 0.3
	run "$REFD_BIN" -c "$REFD_CONF" --migrate
	refd_psql -c "alter system reset $1" -c "select pg_reload_conf()" >/dev/null
	sleep 0.3
	echo "$output"
	[ "$status" -ne 0 ]
	[[ "$output" == *"$3"* ]]
}

@test "durability: fsync off, full_page_writes off, synchronous_commit off/local are refused" {
	durability_refused fsync off "fsync = off"
	durability_refused full_page_writes off "full_page_writes = off"
	durability_refused synchronous_commit off "synchronous_commit = off"
	durability_refused synchronous_commit local "synchronous_commit = local"
	# And with everything back on, it runs.
	run "$REFD_BIN" -c "$REFD_CONF" --migrate
	echo "$output"
	[ "$status" -eq 0 ]
}
