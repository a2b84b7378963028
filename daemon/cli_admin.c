/*
 * cli_admin.c - the one-shot commands main.c runs instead of the daemon:
 * minting the first admin token (so an operator can bootstrap a fresh
 * database without the network). The audit chain walk is audit_verify.c.
 *
 * Owns: one blocking libpq connection for the duration of the command (this
 * runs before any event loop exists, so blocking is fine here and nowhere
 * else).
 * Must never: print the token anywhere but once on stdout; send it to the
 * database (only its keyed hash goes there: HMAC under the token key file);
 * log it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "config.h"
#include "jsonv.h"
#include "keyring.h"

#define CLI_TOKEN_PREFIX "rfd_"
/* Long enough to finish bootstrapping, short enough that a forgotten
 * bootstrap token does not live for ever ([security] max_token_lifetime, 90
 * days by default); operators mint their own after. */

/* As the schema owner when one is configured: the runtime role may not mint
 * admin tokens (0030_trust_tokens.sql revokes it). */
static PGconn *cli_connect(const struct config *cfg)
{
	const char *ci = cfg->db_migrate_conninfo ? cfg->db_migrate_conninfo : cfg->db_conninfo;
	PGconn *c = PQconnectdb(ci ? ci : "");

	if (PQstatus(c) != CONNECTION_OK) {
		/* libpq's message names host and port, never a password. */
		fprintf(stderr, "referrald: database connection failed: %s",
			PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

int cli_mint_admin_token(const struct config *cfg, const struct keyring *keys, const char *name)
{
	PGconn *c = NULL;
	PGresult *res = NULL;
	char rnd[64], hex[65], token[80];
	const char *values[4];
	char life[32], bind[65], admin_id[64];
	long long exp;
	int rc = 1;

	if (!name || jsonv_is_handle(name, strlen(name)) != 0) {
		fprintf(stderr, "referrald: NAME must be 1-64 characters of A-Z a-z 0-9 . _ -\n");
		return 2;
	}
	if (crypto_random_b64url(32, rnd, sizeof(rnd)) != 0) {
		fprintf(stderr, "referrald: no randomness for the token\n");
		return 1;
	}
	snprintf(token, sizeof(token), "%s%s", CLI_TOKEN_PREFIX, rnd);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (keyring_token_hash(keys, token, strlen(token), hex) != 0) {
		fprintf(stderr, "referrald: cannot hash the token (token key missing)\n");
		goto out;
	}
	c = cli_connect(cfg);
	if (!c)
		goto out;
	/* The admin's id first: the token's binding names its subject. */
	values[0] = name;
	res = PQexecParams(c, "SELECT admin_ensure($1)", 1, NULL, values, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) >= (int)sizeof(admin_id)) {
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		fprintf(stderr, "referrald: creating the admin failed (sqlstate %s)\n",
			st ? st : "-");
		goto out;
	}
	snprintf(admin_id, sizeof(admin_id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	res = NULL;
	exp = (long long)time(NULL) + cfg->max_token_lifetime_ms / 1000;
	if (keyring_token_binding(keys, hex, "admin", admin_id, exp, bind) != 0) {
		fprintf(stderr, "referrald: cannot bind the token\n");
		goto out;
	}
	snprintf(life, sizeof(life), "%lld", exp);
	values[0] = name;
	values[1] = hex;
	values[2] = bind;
	values[3] = life;
	res = PQexecParams(c, "SELECT mint_admin_token($1, $2, $3, $4::bigint)", 4, NULL, values,
			   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		fprintf(stderr, "referrald: minting the admin token failed (sqlstate %s)\n",
			st ? st : "-");
		goto out;
	}
	/* The only place the token ever appears. */
	printf("%s\n", token);
	fflush(stdout);
	rc = 0;
out:
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(hex, sizeof(hex));
	OPENSSL_cleanse(bind, sizeof(bind));
	PQclear(res);
	PQfinish(c);
	return rc;
}
