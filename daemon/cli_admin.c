/*
 * cli_admin.c - the one-shot commands main.c runs instead of the daemon:
 * minting the first admin token (so an operator can bootstrap a fresh
 * database without the network). The audit chain walk is audit_verify.c.
 *
 * Owns: one blocking libpq connection for the duration of the command (this
 * runs before any event loop exists, so blocking is fine here and nowhere
 * else).
 * Must never: print the token anywhere but once on stdout; send it to the
 * database (only its SHA-256 goes there); log it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "cli.h"
#include "config.h"
#include "jsonv.h"
#include "keyring.h"

#define CLI_TOKEN_PREFIX "rfd_"
/* Long enough to finish bootstrapping, short enough that a forgotten
 * bootstrap token does not live for ever; operators mint their own after. */
#define CLI_TOKEN_LIFETIME "90 days"

static PGconn *cli_connect(const struct config *cfg)
{
	PGconn *c = PQconnectdb(cfg->db_conninfo ? cfg->db_conninfo : "");

	if (PQstatus(c) != CONNECTION_OK) {
		/* libpq's message names host and port, never a password. */
		fprintf(stderr, "referrald: database connection failed: %s",
			PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

int cli_mint_admin_token(const struct config *cfg, const char *name)
{
	PGconn *c = NULL;
	PGresult *res = NULL;
	char rnd[64], hex[65], token[80];
	const char *values[2];
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
	crypto_sha256_hex(token, strlen(token), hex);
	c = cli_connect(cfg);
	if (!c)
		goto out;
	values[0] = name;
	values[1] = hex;
	res = PQexecParams(c,
			   "SELECT mint_admin_token($1, $2, now() + interval '" CLI_TOKEN_LIFETIME
			   "')",
			   2, NULL, values, NULL, NULL, 0);
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
	PQclear(res);
	PQfinish(c);
	return rc;
}
