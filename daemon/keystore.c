/*
 * keystore.c - the key store's blocking side: its one table created at
 * start (before the event loop, like the migrations), and the re-wrap
 * command (referrald --rewrap-keys) that wraps every data key again under
 * the keyring's current key, so an old KEK line can leave data_key_file.
 *
 * The key store is a PostgreSQL database of its own ([security]
 * key_store_conninfo), not the main database: a dump of the main database
 * holds sealed values whose keys are not in it. Table:
 *
 *   data_keys (referral_id uuid PRIMARY KEY, wrapped text NOT NULL,
 *              created_at timestamptz, rewrapped_at timestamptz)
 *
 * Owns: the table's definition, the re-wrap loop and its progress line.
 * Must never: print a key, a wrapped key or the conninfo (it may hold a
 * password); re-wrap a key it cannot unwrap (it is left and counted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "config.h"
#include "datakey.h"
#include "keyring.h"
#include "keystore.h"
#include "log.h"

#define KEYSTORE_REWRAP_BATCH 500

/* Several daemons (or --migrate beside a starting daemon) may prepare the key
 * store at the same moment, and two concurrent CREATE TABLE IF NOT EXISTS can
 * both miss the other's table and one fail on pg_type's unique index
 * (23505). One transaction-scoped advisory lock in the key store's database
 * makes them take turns; the key is that database's own, nothing else there
 * takes advisory locks. */
static const char keystore_schema[] =
	"BEGIN;"
	"SELECT pg_advisory_xact_lock(7265666400000001);"
	"CREATE TABLE IF NOT EXISTS data_keys ("
	" referral_id uuid PRIMARY KEY,"
	" wrapped text NOT NULL,"
	" created_at timestamptz NOT NULL DEFAULT now(),"
	" rewrapped_at timestamptz);"
	"COMMIT";

static PGconn *keystore_connect(const char *conninfo, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(conninfo);

	if (PQstatus(c) != CONNECTION_OK) {
		/* libpq's message names host and database, never the password. */
		snprintf(err, errlen, "key store: cannot connect: %s", PQerrorMessage(c));
		err[strcspn(err, "\n")] = '\0';
		PQfinish(c);
		return NULL;
	}
	return c;
}

int keystore_prepare(const char *conninfo, char *err, size_t errlen)
{
	PGconn *c = keystore_connect(conninfo, err, errlen);
	PGresult *r;
	int rc = -1;

	if (!c)
		return -1;
	r = PQexec(c, "SET client_min_messages = warning");
	PQclear(r);
	r = PQexec(c, keystore_schema);
	if (PQresultStatus(r) == PGRES_COMMAND_OK)
		rc = 0;
	else
		snprintf(err, errlen, "key store: cannot create table data_keys (sqlstate %s)",
			 PQresultErrorField(r, PG_DIAG_SQLSTATE) ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
								 : "-");
	PQclear(r);
	PQfinish(c);
	return rc;
}

static void keystore_progress(int tty, long done, long total, int final)
{
	if (tty)
		fprintf(stderr, "\rrewrap-keys: %ld of %ld data keys%s", done, total,
			final ? "\n" : "");
}

int keystore_rewrap(const struct config *cfg, const struct keyring *k)
{
	char err[512], after[37] = "00000000-0000-0000-0000-000000000000", lim[16];
	const char *kid = keyring_current_kid(k);
	int tty = isatty(STDERR_FILENO);
	long total = 0, seen = 0, rewrapped = 0, current = 0, failed = 0;
	PGconn *c;
	PGresult *r;

	c = keystore_connect(cfg->key_store_conninfo, err, sizeof(err));
	if (!c) {
		log_error("rewrap.failed", "reason=\"%s\"", err);
		return 1;
	}
	r = PQexec(c, "SELECT count(*) FROM data_keys");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		log_error("rewrap.failed", "reason=\"cannot read data_keys\"");
		PQclear(r);
		PQfinish(c);
		return 1;
	}
	total = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	snprintf(lim, sizeof(lim), "%d", KEYSTORE_REWRAP_BATCH);
	for (;;) {
		const char *p[2] = { after, lim };
		int n;

		/* Keyset pagination: each batch is a short statement, and a key
		 * created meanwhile (wrapped under the current KEK) is harmless. */
		r = PQexecParams(c,
				 "SELECT referral_id::text, wrapped FROM data_keys WHERE referral_id > $1::uuid "
				 "ORDER BY referral_id LIMIT $2::int",
				 2, NULL, p, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			log_error("rewrap.failed", "reason=\"cannot read data_keys\"");
			PQclear(r);
			PQfinish(c);
			return 1;
		}
		n = PQntuples(r);
		for (int i = 0; i < n; i++) {
			const char *id = PQgetvalue(r, i, 0), *old = PQgetvalue(r, i, 1);
			char okid[48];
			unsigned char key[DATAKEY_LEN];
			char *neu;

			seen++;
			if (crypto_sealed_kid(old, okid, sizeof(okid)) == 0 && strcmp(okid, kid) == 0) {
				current++;
				continue;
			}
			if (datakey_unwrap(k, id, old, key) != 0) {
				failed++;
				continue;
			}
			neu = datakey_wrap(k, id, key);
			OPENSSL_cleanse(key, sizeof(key));
			if (neu) {
				const char *u[3] = { id, neu, old };
				PGresult *ur = PQexecParams(
					c,
					"UPDATE data_keys SET wrapped = $2, rewrapped_at = now() "
					"WHERE referral_id = $1::uuid AND wrapped = $3",
					3, NULL, u, NULL, NULL, 0);
				if (PQresultStatus(ur) == PGRES_COMMAND_OK)
					rewrapped += atol(PQcmdTuples(ur));
				else
					failed++;
				PQclear(ur);
				free(neu);
			} else {
				failed++;
			}
		}
		if (n > 0)
			snprintf(after, sizeof(after), "%s", PQgetvalue(r, n - 1, 0));
		PQclear(r);
		keystore_progress(tty, seen, total > seen ? total : seen, 0);
		if (n < KEYSTORE_REWRAP_BATCH)
			break;
	}
	keystore_progress(tty, seen, total > seen ? total : seen, 1);
	PQfinish(c);
	log_info("rewrap.done", "kid=%s keys=%ld rewrapped=%ld already_current=%ld failed=%ld", kid,
		 seen, rewrapped, current, failed);
	return failed ? 1 : 0;
}
