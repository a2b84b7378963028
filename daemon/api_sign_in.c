/*
 * api_sign_in.c - one-time sign-in codes for people on phones, and sign-in
 * (issue 14). Sign-out, who am I and the workers list are plain route rows
 * (router.c).
 *
 * Owns: minting the 8-character code (40 random bits in Crockford's base32,
 * sign_in_code.c), minting the session token, and the keyed hashes of both
 * that alone reach the database.
 * Must never: log or keep a code or a token beyond the reply that shows it;
 * tell a caller why a code did not work; accept a code from anywhere but the
 * JSON body.
 *
 * The keyed hashes go through sign_in_code_hash() and sign_in_token_hash()
 * only, so the move to the token key file (issue 9) is a change in two
 * functions.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "auth_limits.h"
#include "config.h"
#include "jsonv.h"
#include "keyring.h"
#include "log.h"
#include "request.h"
#include "sign_in_code.h"

#define SIGN_IN_TOKEN_PREFIX "rfd_"
#define SIGN_IN_CODE_LEN 8
#define SIGN_IN_CODE_LIFETIME_S 900   /* 15 minutes, fixed by the protocol */

/* Codes and tokens are stored only as their HMAC under the token key. */
static int sign_in_hash(const struct req *r, const char *secret, char hex[65])
{
	if (!r->app || !r->app->keys)
		return -1;
	return keyring_token_hash(r->app->keys, secret, strlen(secret), hex);
}

/* The secret shown once: a code or a token, wiped after the reply. */
static void secret_free(void *arg)
{
	char *s = arg;

	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

static void code_post(struct req *r, int *status, json_t *body, void *arg)
{
	const char *code = arg;
	char shown[SIGN_IN_CODE_LEN + 2];

	(void)r;
	if (*status != 201)
		return;
	/* Read out or texted as two groups of four. */
	snprintf(shown, sizeof(shown), "%.4s-%.4s", code, code + 4);
	json_object_set_new(body, "code", json_string(shown));
	OPENSSL_cleanse(shown, sizeof(shown));
}

void api_sign_in_code_create(struct req *r, const struct api_op *op)
{
	unsigned char rnd[5];
	char *code;
	char hex[65];
	json_t *args;

	args = api_call_args(r, op);
	if (!args)
		return;
	code = calloc(1, SIGN_IN_CODE_LEN + 1);
	if (!code || RAND_bytes(rnd, sizeof(rnd)) != 1)
		goto fail;
	/* 40 bits, five at a time: no bias. */
	for (int i = 0; i < SIGN_IN_CODE_LEN; i++) {
		int bit = i * 5, v = 0;

		for (int b = 0; b < 5; b++, bit++)
			v = (v << 1) | ((rnd[bit / 8] >> (7 - bit % 8)) & 1);
		code[i] = sign_in_code_alphabet[v];
	}
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (sign_in_hash(r, code, hex) != 0)
		goto fail;
	json_object_set_new(args, "code_hash", json_string(hex));
	json_object_set_new(args, "lifetime_s", json_integer(SIGN_IN_CODE_LIFETIME_S));
	OPENSSL_cleanse(hex, sizeof(hex));
	api_call_run_ex(r, op->stmt, args, code_post, code, secret_free);
	return;
fail:
	if (code)
		secret_free(code);
	json_decref(args);
	log_event(LOG_ERROR, r->id, "sign_in_code_failed", "reason=crypto");
	req_reply_error(r, 500, "internal_error", "internal error", NULL);
}

/*
 * Sign-in takes two statements, because a token row's binding (an HMAC of
 * its hash, role, subject and expiry, keyring.c) is made here and the role
 * and subject are known only once the code is found:
 *   1. sign_in_claim spends the code (row lock: of two sign-ins racing with
 *      one code, one wins) and answers its subject, or {"claimed": false}
 *      for a code that is unknown, spent or expired - a failed
 *      authentication like a bad token: counted against the address,
 *      audited, 401 (auth_limits.c);
 *   2. api_sign_in writes the token (hash and binding) and answers it.
 * A failure between the two leaves the code spent and no token: the person
 * asks for a new code.
 */
static void sign_in_done(struct req *r, int status, json_t *body, void *arg)
{
	json_object_set_new(body, "token", json_string((const char *)arg));
	req_reply_json(r, status, body);
}

static void sign_in_claimed(struct req *r, int status, json_t *body, void *arg)
{
	const char *role = json_string_value(json_object_get(body, "role"));
	const char *subject = json_string_value(json_object_get(body, "subject_id"));
	const char *code_id = json_string_value(json_object_get(body, "code_id"));
	char rnd[64], thex[65], bind[65];
	char *token = NULL;
	json_t *args = NULL;
	long long exp;
	size_t tl;

	(void)status;
	(void)arg;
	if (!json_is_true(json_object_get(body, "claimed")) || !role || !subject || !code_id) {
		json_decref(body);
		auth_limits_failed(r, "bad_sign_in_code", "invalid or expired sign-in code");
		return;
	}
	if (crypto_random_b64url(32, rnd, sizeof(rnd)) != 0)
		goto fail;
	tl = strlen(SIGN_IN_TOKEN_PREFIX) + strlen(rnd) + 1;
	token = malloc(tl);
	if (!token)
		goto fail;
	snprintf(token, tl, "%s%s", SIGN_IN_TOKEN_PREFIX, rnd);
	exp = (long long)time(NULL) +
	      (r->app && r->app->cfg ? r->app->cfg->ui_session_lifetime_ms / 1000 : 7 * 86400);
	if (sign_in_hash(r, token, thex) != 0 ||
	    keyring_token_binding(r->app->keys, thex, role, subject, exp, bind) != 0)
		goto fail;
	args = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "code_id", code_id, "role", role,
			 "subject_id", subject, "token_hash", thex, "binding", bind,
			 "expires_epoch", (json_int_t)exp);
	if (!args)
		goto fail;
	OPENSSL_cleanse(rnd, sizeof(rnd));
	OPENSSL_cleanse(thex, sizeof(thex));
	json_decref(body);
	api_call_run_render_ex(r, "api_sign_in", args, sign_in_done, token, secret_free);
	return;
fail:
	OPENSSL_cleanse(rnd, sizeof(rnd));
	OPENSSL_cleanse(thex, sizeof(thex));
	if (token)
		secret_free(token);
	json_decref(body);
	log_event(LOG_ERROR, r->id, "sign_in_failed", "reason=internal");
	req_reply_error(r, 500, "internal_error", "internal error", NULL);
}

void api_sign_in(struct req *r, const struct api_op *op)
{
	char code[SIGN_IN_CODE_LEN + 1], hex[65];
	const json_t *v;
	json_t *args;

	(void)op;
	/* An address over [limits] auth_failures gets 429, a right code too. */
	if (auth_limits_precheck(r))
		return;
	args = api_call_args(r, op);
	if (!args)
		return;
	v = json_object_get(args, "code");
	if (sign_in_code_normalise(json_string_value(v), json_string_length(v), code) != 0 ||
	    sign_in_hash(r, code, hex) != 0) {
		OPENSSL_cleanse(code, sizeof(code));
		json_decref(args);
		log_event(LOG_ERROR, r->id, "sign_in_failed", "reason=internal");
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	OPENSSL_cleanse(code, sizeof(code));
	json_object_del(args, "code");
	json_object_set_new(args, "code_hash", json_string(hex));
	OPENSSL_cleanse(hex, sizeof(hex));
	api_call_run_render(r, "sign_in_claim", args, sign_in_claimed, NULL);
}
