/*
 * api_admin.c - the operator's calls that do more than validate and call:
 * supervisors (organisation or programme), tokens (minted here), deadline
 * policies (named by their path), webhooks (secret sealed). The others
 * (organisations, offices, workers, token revocation) are rows of the route
 * table.
 *
 * Owns: the cross-field rules of these bodies; minting bearer tokens (random from OpenSSL,
 * only the SHA-256 goes to the database, the token is shown once in the 201);
 * sealing webhook secrets.
 * Must never: log a token or a secret; return a stored secret; touch client
 * data (admins never see any: the SQL functions return none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "jsonv.h"
#include "keyring.h"
#include "log.h"
#include "request.h"
#include "vocab.h"

#define TOKEN_PREFIX "rfd_"

void api_supervisor_create(struct req *r, const struct api_op *op)
{
	json_t *args;
	const char *scope;
	int has_org;

	args = api_call_args(r, op);
	if (!args)
		return;
	scope = json_string_value(json_object_get(args, "scope"));
	has_org = json_object_get(args, "organisation_id") != NULL;
	/* Exactly one of: an organisation, or the programme scope. */
	if (scope && strcmp(scope, "programme") == 0) {
		if (has_org) {
			json_decref(args);
			req_reply_error(r, 400, "invalid_value",
					"a programme supervisor has no organisation",
					"/organisation_id");
			return;
		}
	} else if (!has_org) {
		json_decref(args);
		req_reply_error(r, 400, "missing_field", "required field missing",
				"/organisation_id");
		return;
	}
	api_call_run(r, op->stmt, args);
}

/* The token itself exists only here and in the 201 body. */
static void token_free(void *arg)
{
	char *t = arg;

	OPENSSL_cleanse(t, strlen(t));
	free(t);
}

static void token_post(struct req *r, int *status, json_t *body, void *arg)
{
	(void)r;
	if (*status == 201)
		json_object_set_new(body, "token", json_string((const char *)arg));
}

void api_token_create(struct req *r, const struct api_op *op)
{
	json_t *args;
	char rnd[64], hex[65];
	char *token;
	size_t tl;

	args = api_call_args(r, op);
	if (!args)
		return;
	if (crypto_random_b64url(32, rnd, sizeof(rnd)) != 0) {
		json_decref(args);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	tl = strlen(TOKEN_PREFIX) + strlen(rnd) + 1;
	token = malloc(tl);
	if (!token) {
		OPENSSL_cleanse(rnd, sizeof(rnd));
		json_decref(args);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	snprintf(token, tl, "%s%s", TOKEN_PREFIX, rnd);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	crypto_sha256_hex(token, strlen(token), hex);
	json_object_set_new(args, "token_hash", json_string(hex));
	api_call_run_ex(r, op->stmt, args, token_post, token, token_free);
}

void api_deadline_policy_put(struct req *r, const struct api_op *op)
{
	const char *need = r->params[0], *urgency = r->params[1];
	json_t *args;

	if (api_call_no_query(r) < 0)
		return;
	/* Only four policies exist; any other path names no resource. */
	if (!vocab_has(vocab_need, need, strlen(need)) ||
	    !vocab_has(vocab_urgency, urgency, strlen(urgency))) {
		req_reply_error(r, 404, "not_found", "no such resource", NULL);
		return;
	}
	args = api_call_body(r, op->body, 0);
	if (!args)
		return;
	if (json_object_size(args) == 0) {
		json_decref(args);
		req_reply_error(r, 400, "missing_field", "at least one duration is required", "");
		return;
	}
	json_object_set_new(args, "need", json_string(need));
	json_object_set_new(args, "urgency", json_string(urgency));
	api_call_run(r, op->stmt, args);
}

void api_webhook_create(struct req *r, const struct api_op *op)
{
	json_t *args;

	args = api_call_args(r, op);
	if (!args)
		return;
	if (json_object_get(args, "organisation_id") && json_object_get(args, "office_id")) {
		json_decref(args);
		req_reply_error(r, 400, "invalid_value",
				"a webhook belongs to an organisation or an office, not both",
				"/office_id");
		return;
	}
	if (api_call_seal(r, args, "secret", "secret_sealed") < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, op->stmt, args);
}
