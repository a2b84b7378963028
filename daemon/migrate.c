/*
 * migrate.c - applies the database code embedded in the binary and checks
 * that the server runs with durability on.
 *
 * Two kinds of code (sql/README.md): forward-only migrations
 * (sql/migrations/, schema only, each applied once, in order) and functions
 * (sql/functions/: functions, triggers, policies, all CREATE OR REPLACE),
 * re-applied together, in file order, whenever their checksum differs from
 * the one recorded or a migration was just applied.
 *
 * Owns: the schema_migrations and schema_functions tables (created here,
 * before any migration), the SHA-256 recorded for each applied migration (a
 * database whose applied migration differs from, or is missing in, this
 * binary is refused: forward-only for real) and the advisory lock that
 * serialises migrations between daemons starting together. One transaction per migration, and one
 * for all the functions: a failure leaves the database as it was before that
 * step, never half applied.
 * Must never: run inside the event loop (it uses blocking libpq on purpose:
 * it runs before the loop starts, or from `--migrate`); put server error
 * texts that could hold data into its error string (only sqlstate, and the
 * message for classes that describe the schema, not rows).
 */
#include "migrate.h"
#include "errbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* Arbitrary constant shared by every referrald: "refdmigr" in ASCII. */
#define MIGRATE_LOCK_KEY "7522537126473082226"

#define migrate_err errbuf_set

/* Connection-level libpq errors (host, port, authentication) are safe to
 * show; strip the trailing newline libpq adds. */
static void migrate_conn_err(PGconn *c, const char *what, char *err, size_t errlen)
{
	char msg[256];
	size_t n, i;

	snprintf(msg, sizeof(msg), "%s", c != NULL ? PQerrorMessage(c) : "out of memory");
	n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	/* One line for the operator's log. */
	for (i = 0; i < n; i++)
		if (msg[i] == '\n' || msg[i] == '\t' || msg[i] == '\r')
			msg[i] = ' ';
	migrate_err(err, errlen, "%s: %s", what, msg);
}

/* Describe a failed result without leaking row data: the sqlstate always;
 * the primary message only for syntax/definition errors (class 42 and 0A),
 * which name schema objects, never values. */
static void migrate_res_err(const PGresult *r, const char *what, char *err, size_t errlen)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *prim = r != NULL ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *pos = r != NULL ? PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION) : NULL;

	if (state == NULL)
		state = "";
	if (prim != NULL && (strncmp(state, "42", 2) == 0 || strncmp(state, "0A", 2) == 0))
		migrate_err(err, errlen, "%s: SQLSTATE %s: %s%s%s", what, state, prim,
			    pos != NULL ? " at character " : "", pos != NULL ? pos : "");
	else
		migrate_err(err, errlen, "%s: SQLSTATE %s", what, state[0] ? state : "unknown");
}

/* Server notices ("relation already exists, skipping") are noise on the
 * operator's terminal and could carry text we did not vet: drop them. */
static void migrate_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* NULL (err says why) when conninfo is NULL or the connection fails. */
static PGconn *migrate_connect(const char *conninfo, char *err, size_t errlen)
{
	const char *keys[] = { "dbname", "application_name", NULL };
	const char *vals[] = { conninfo, "referrald-migrate", NULL };
	PGconn *c;

	if (conninfo == NULL) {
		migrate_err(err, errlen, "no database conninfo");
		return NULL;
	}
	c = PQconnectdbParams(keys, vals, 1);
	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		migrate_conn_err(c, "database connection failed", err, errlen);
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, migrate_notice, NULL);
	return c;
}

/* Run a command that returns no interesting rows, with nparams text
 * parameters (none: the simple protocol, which runs every statement of
 * sql); 0 on success. */
static int migrate_command(PGconn *c, const char *sql, int nparams, const char *const *params,
			   const char *what, char *err, size_t errlen)
{
	PGresult *r = nparams > 0 ? PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0)
				  : PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (r == NULL || PQstatus(c) == CONNECTION_BAD)
			migrate_conn_err(c, what, err, errlen);
		else
			migrate_res_err(r, what, err, errlen);
		PQclear(r);
		return -1;
	}
	PQclear(r);
	return 0;
}

static int migrate_exec(PGconn *c, const char *sql, const char *what, char *err, size_t errlen)
{
	return migrate_command(c, sql, 0, NULL, what, err, errlen);
}

static int migrate_known_max(void)
{
	int i, max = 0;

	for (i = 0; i < refd_migrations_count; i++)
		if (refd_migrations[i].version > max)
			max = refd_migrations[i].version;
	return max;
}

/* One value of a one-row query (with at most one parameter) into buf;
 * 0, or -1 with err (what it was reading). */
static int migrate_value(PGconn *c, const char *sql, const char *param, const char *what,
			 char *buf, size_t n, char *err, size_t errlen)
{
	const char *params[1] = { param };
	PGresult *r = PQexecParams(c, sql, param ? 1 : 0, NULL, param ? params : NULL, NULL, NULL,
				   0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		migrate_res_err(r, what, err, errlen);
		PQclear(r);
		return -1;
	}
	snprintf(buf, n, "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	return 0;
}

/* Fill applied[i] = 1 for each embedded migration already recorded (2 when
 * it was recorded before checksums were, so its checksum is still to be
 * written), and check the database is not ahead of the binary and that no
 * applied migration was changed or removed since: migrations are
 * forward-only. Returns the number of pending migrations or -1. */
static int migrate_scan(PGconn *c, char *applied, char *err, size_t errlen)
{
	PGresult *r;
	char exists[8];
	int i, j, pending = 0, known_max = migrate_known_max(), db_max = 0;

	memset(applied, 0, (size_t)(refd_migrations_count > 0 ? refd_migrations_count : 1));
	if (migrate_value(c, "SELECT to_regclass('schema_migrations') IS NOT NULL", NULL,
			  "reading schema_migrations", exists, sizeof(exists), err, errlen) < 0)
		return -1;
	if (strcmp(exists, "t") != 0)
		return refd_migrations_count; /* fresh database: everything is pending */
	/* to_jsonb: a database migrated before checksums were recorded has no
	 * checksum column yet (NULL here; the column is added when applying). */
	r = PQexec(c, "SELECT version, to_jsonb(m)->>'checksum' FROM schema_migrations m "
		      "ORDER BY version");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		migrate_res_err(r, "reading schema_migrations", err, errlen);
		PQclear(r);
		return -1;
	}
	for (i = 0; i < PQntuples(r); i++) {
		int v = atoi(PQgetvalue(r, i, 0)), found = 0;

		if (v > db_max)
			db_max = v;
		for (j = 0; j < refd_migrations_count; j++) {
			const struct migration *m = &refd_migrations[j];

			if (m->version != v)
				continue;
			found = 1;
			if (PQgetisnull(r, i, 1)) {
				applied[j] = 2;
			} else if (strcmp(PQgetvalue(r, i, 1), m->checksum) != 0) {
				migrate_err(err, errlen,
					    "migration %04d_%s was changed after it was applied to "
					    "this database (its SHA-256 differs from the one "
					    "recorded): migrations are forward-only; restore the "
					    "released file and put the change in a new migration",
					    m->version, m->name);
				PQclear(r);
				return -1;
			} else {
				applied[j] = 1;
			}
		}
		if (!found && v <= known_max) {
			migrate_err(err, errlen,
				    "migration %04d is applied to this database but missing from "
				    "this binary: migrations are forward-only; restore the "
				    "released file", v);
			PQclear(r);
			return -1;
		}
	}
	PQclear(r);
	if (db_max > known_max) {
		migrate_err(err, errlen,
			    "database schema version %d is newer than this binary's %d: "
			    "upgrade referrald before using this database",
			    db_max, known_max);
		return -1;
	}
	for (j = 0; j < refd_migrations_count; j++)
		if (!applied[j])
			pending++;
	return pending;
}

static int migrate_apply_one(PGconn *c, const struct migration *m, char *err, size_t errlen)
{
	char what[160], ver[16];
	const char *params[3];

	snprintf(what, sizeof(what), "migration %04d_%s", m->version, m->name);
	if (migrate_exec(c, "BEGIN", what, err, errlen) != 0)
		return -1;
	/* A migration file may hold several statements: the simple query
	 * protocol runs them all inside our transaction. */
	if (migrate_exec(c, m->sql, what, err, errlen) != 0)
		goto fail;
	snprintf(ver, sizeof(ver), "%d", m->version);
	params[0] = ver;
	params[1] = m->name;
	params[2] = m->checksum;
	if (migrate_command(c,
			    "INSERT INTO schema_migrations (version, name, checksum, applied_at) "
			    "VALUES ($1::int, $2, $3, now())",
			    3, params, what, err, errlen) != 0)
		goto fail;
	if (migrate_exec(c, "COMMIT", what, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	/* The caller's error stays; a failed ROLLBACK only means the
	 * connection is gone, and then the server rolled back anyway. */
	PQclear(PQexec(c, "ROLLBACK"));
	return -1;
}

/* 1 when schema_functions records this binary's checksum, 0 when not (or
 * the table does not exist yet), -1 on error. */
static int migrate_functions_current(PGconn *c, char *err, size_t errlen)
{
	char v[24];

	if (migrate_value(c, "SELECT to_regclass('schema_functions') IS NOT NULL", NULL,
			  "reading schema_functions", v, sizeof(v), err, errlen) < 0)
		return -1;
	if (strcmp(v, "t") != 0)
		return 0;
	if (migrate_value(c, "SELECT count(*) FROM schema_functions WHERE checksum = $1",
			  refd_functions_checksum, "reading schema_functions", v, sizeof(v), err,
			  errlen) < 0)
		return -1;
	return strcmp(v, "1") == 0;
}

/* Every file of sql/functions/ in one transaction, then the checksum. */
static int migrate_apply_functions(PGconn *c, char *err, size_t errlen)
{
	const char *params[1] = { refd_functions_checksum };
	char what[160];
	int i;

	if (migrate_exec(c, "BEGIN", "functions", err, errlen) != 0)
		return -1;
	for (i = 0; i < refd_functions_count; i++) {
		snprintf(what, sizeof(what), "functions %s", refd_functions[i].name);
		if (migrate_exec(c, refd_functions[i].sql, what, err, errlen) != 0)
			goto fail;
	}
	if (migrate_command(c,
			    "INSERT INTO schema_functions (one, checksum, applied_at) "
			    "VALUES (true, $1, now()) "
			    "ON CONFLICT (one) DO UPDATE SET checksum = EXCLUDED.checksum, "
			    "applied_at = EXCLUDED.applied_at",
			    1, params, "recording the functions' checksum", err, errlen) != 0)
		goto fail;
	if (migrate_exec(c, "COMMIT", "functions", err, errlen) != 0)
		goto fail;
	return 0;
fail:
	PQclear(PQexec(c, "ROLLBACK"));
	return -1;
}

/* Record the checksum of migrations applied before checksums were kept
 * (applied[i] == 2): this binary's file is taken as the released one. */
static int migrate_record_checksums(PGconn *c, const char *applied, char *err, size_t errlen)
{
	char ver[16];
	const char *params[2];
	int i;

	for (i = 0; i < refd_migrations_count; i++) {
		if (applied[i] != 2)
			continue;
		snprintf(ver, sizeof(ver), "%d", refd_migrations[i].version);
		params[0] = ver;
		params[1] = refd_migrations[i].checksum;
		if (migrate_command(c,
				    "UPDATE schema_migrations SET checksum = $2 "
				    "WHERE version = $1::int AND checksum IS NULL",
				    2, params, "recording migration checksums", err, errlen) != 0)
			return -1;
	}
	return 0;
}

int migrate_run(const char *conninfo, int apply, char *err, size_t errlen)
{
	PGconn *c;
	char *applied = NULL;
	int pending, i, fn_current, ran = 0;

	c = migrate_connect(conninfo, err, errlen);
	if (c == NULL)
		return -1;
	applied = calloc(1, (size_t)(refd_migrations_count > 0 ? refd_migrations_count : 1));
	if (applied == NULL) {
		migrate_err(err, errlen, "out of memory");
		goto fail;
	}
	if (apply) {
		/* Long migrations must not be cut by a default statement_timeout
		 * set on the role. */
		if (migrate_exec(c, "SET statement_timeout = 0", "migration setup", err, errlen) != 0)
			goto fail;
		/* Session-level advisory lock: a second daemon starting at the
		 * same moment waits here, then finds nothing pending. */
		if (migrate_exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")",
				 "taking the migration lock", err, errlen) != 0)
			goto fail;
		if (migrate_exec(c,
				 "CREATE TABLE IF NOT EXISTS schema_migrations ("
				 " version int PRIMARY KEY,"
				 " name text NOT NULL,"
				 " applied_at timestamptz NOT NULL DEFAULT now())",
				 "creating schema_migrations", err, errlen) != 0)
			goto fail;
		/* Each applied migration's SHA-256 (databases migrated before
		 * this column existed get it filled in below). */
		if (migrate_exec(c,
				 "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_attribute "
				 "WHERE attrelid = 'schema_migrations'::regclass "
				 "AND attname = 'checksum' AND NOT attisdropped) THEN "
				 "ALTER TABLE schema_migrations ADD COLUMN checksum text; "
				 "END IF; END $$",
				 "adding schema_migrations.checksum", err, errlen) != 0)
			goto fail;
		if (migrate_exec(c,
				 "CREATE TABLE IF NOT EXISTS schema_functions ("
				 " one boolean PRIMARY KEY DEFAULT true CHECK (one),"
				 " checksum text NOT NULL,"
				 " applied_at timestamptz NOT NULL DEFAULT now())",
				 "creating schema_functions", err, errlen) != 0)
			goto fail;
	}
	pending = migrate_scan(c, applied, err, errlen);
	if (pending < 0)
		goto fail;
	fn_current = migrate_functions_current(c, err, errlen);
	if (fn_current < 0)
		goto fail;
	if (apply) {
		if (migrate_record_checksums(c, applied, err, errlen) != 0)
			goto fail;
		/* The generator emits files in sorted order, so versions ascend. */
		for (i = 0; i < refd_migrations_count; i++) {
			if (applied[i])
				continue;
			if (migrate_apply_one(c, &refd_migrations[i], err, errlen) != 0)
				goto fail;
			pending--;
			ran++;
		}
		/* A migration may have dropped or changed what a function uses:
		 * re-create them all after any schema change, not only when their
		 * text changed. */
		if (ran > 0 || !fn_current) {
			if (migrate_apply_functions(c, err, errlen) != 0)
				goto fail;
			fn_current = 1;
		}
		PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")"));
	}
	free(applied);
	PQfinish(c);
	return pending + !fn_current;
fail:
	/* Closing the session releases the advisory lock too. */
	free(applied);
	PQfinish(c);
	return -1;
}

/* SHOW one setting into buf; 0 on success. */
static int migrate_show(PGconn *c, const char *name, char *buf, size_t n, char *err,
			size_t errlen)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "SHOW %s", name);
	return migrate_value(c, sql, NULL, sql, buf, n, err, errlen);
}

int migrate_check_durability(const char *conninfo, char *err, size_t errlen)
{
	char fsync_v[32], fpw[32], sync[32];
	PGconn *c;
	int rc = -1;

	c = migrate_connect(conninfo, err, errlen);
	if (c == NULL)
		return -1;
	if (migrate_show(c, "fsync", fsync_v, sizeof(fsync_v), err, errlen) != 0 ||
	    migrate_show(c, "full_page_writes", fpw, sizeof(fpw), err, errlen) != 0 ||
	    migrate_show(c, "synchronous_commit", sync, sizeof(sync), err, errlen) != 0)
		goto out;
	/* An acknowledged referral or audit record must survive a crash of
	 * the database host: refuse to run on a server that could lose it. */
	if (strcmp(fsync_v, "on") != 0) {
		migrate_err(err, errlen,
			    "PostgreSQL runs with fsync = %s: committed data can be lost on a crash; "
			    "refusing to start (set fsync = on)", fsync_v);
		goto out;
	}
	if (strcmp(fpw, "on") != 0) {
		migrate_err(err, errlen,
			    "PostgreSQL runs with full_page_writes = %s: a crash can corrupt pages; "
			    "refusing to start (set full_page_writes = on)", fpw);
		goto out;
	}
	if (strcmp(sync, "off") == 0 || strcmp(sync, "local") == 0) {
		migrate_err(err, errlen,
			    "PostgreSQL runs with synchronous_commit = %s: acknowledged commits can "
			    "be lost; refusing to start (set synchronous_commit = on)", sync);
		goto out;
	}
	rc = 0;
out:
	PQfinish(c);
	return rc;
}
