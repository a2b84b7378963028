/*
 * cli_admin.c - the one-shot commands main.c runs instead of the daemon:
 * minting the first admin token (so an operator can bootstrap a fresh
 * database without the network) and walking the audit hash chain.
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
#define CLI_VERIFY_PAGE "100000"

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

int cli_verify_audit(const struct config *cfg)
{
	PGconn *c = cli_connect(cfg);
	long long from = 1, total = 0;
	int rc = 1;

	if (!c)
		return 1;
	/* Page through the chain so one statement never holds the whole
	 * table; each page starts from the stored hash of the record before. */
	for (;;) {
		char fromtxt[32];
		const char *values[1] = {fromtxt};
		PGresult *res;
		json_t *j;
		long long checked;
		const json_t *bad;

		snprintf(fromtxt, sizeof(fromtxt), "%lld", from);
		res = PQexecParams(c, "SELECT audit_verify($1::bigint, " CLI_VERIFY_PAGE ")", 1,
				   NULL, values, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
		    PQgetisnull(res, 0, 0)) {
			const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			fprintf(stderr, "referrald: audit verification failed (sqlstate %s)\n",
				st ? st : "-");
			PQclear(res);
			break;
		}
		j = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
		PQclear(res);
		if (!json_is_object(j)) {
			json_decref(j);
			fprintf(stderr, "referrald: audit verification gave no result\n");
			break;
		}
		checked = json_integer_value(json_object_get(j, "checked"));
		total += checked;
		bad = json_object_get(j, "first_bad_seq");
		if (json_is_integer(bad)) {
			const char *why = json_string_value(json_object_get(j, "reason"));
			printf("audit chain BROKEN at seq %lld (%s) after %lld intact records\n",
			       (long long)json_integer_value(bad), why ? why : "altered", total);
			json_decref(j);
			rc = 1;
			break;
		}
		json_decref(j);
		if (checked < atoll(CLI_VERIFY_PAGE)) {
			printf("audit chain intact: %lld records\n", total);
			rc = 0;
			break;
		}
		from += checked;
	}
	PQfinish(c);
	return rc;
}
