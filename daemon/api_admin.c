/*
 * api_admin.c - the operator's calls that do more than validate and call:
 * supervisors (organisation or programme), tokens (minted here), deadline
 * policies (named by their path), webhooks (secret sealed). The others
 * (organisations, offices, workers, token revocation) are rows of the route
 * table.
 *
 * Owns: the cross-field rules of these bodies; minting bearer tokens (random
 * from OpenSSL, only the keyed hash and its binding go to the database, the
 * token is shown once in the 201); where a webhook may point; sealing webhook
 * secrets (bound to their row, under their own subkey).
 * Must never: log a token or a secret; return a stored secret; touch client
 * data (admins never see any: the SQL functions return none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "config.h"
#include "jsonv.h"
#include "keyring.h"
#include "log.h"
#include "netcheck.h"
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

/* Unix seconds of an RFC 3339 time jsonv_is_time accepted (fractions
 * dropped, as the database stores the expiry to the second). */
static int time_epoch(const char *s, long long *out)
{
	struct tm tm;
	size_t len = s ? strlen(s) : 0, i = 19;
	long off = 0;
	time_t t;

	if (!s || jsonv_is_time(s, len) != 0)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(s, "%4d-%2d-%2d%*1[Tt]%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if (s[i] == '.')
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			;
	if (s[i] == '+' || s[i] == '-') {
		int oh = (s[i + 1] - '0') * 10 + (s[i + 2] - '0');
		int om = (s[i + 4] - '0') * 10 + (s[i + 5] - '0');

		off = (s[i] == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
	}
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -1;
	*out = (long long)t - off;
	return 0;
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
	char rnd[64], hex[65], bind[65];
	char *token;
	size_t tl;
	long long exp = 0;

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
	if (time_epoch(json_string_value(json_object_get(args, "expires_at")), &exp) != 0) {
		token_free(token);
		json_decref(args);
		req_reply_error(r, 400, "invalid_value", "not an RFC 3339 time", "/expires_at");
		return;
	}
	if (!r->app || keyring_token_hash(r->app->keys, token, strlen(token), hex) != 0 ||
	    keyring_token_binding(r->app->keys, hex,
				  json_string_value(json_object_get(args, "role")),
				  json_string_value(json_object_get(args, "subject_id")), exp,
				  bind) != 0) {
		token_free(token);
		json_decref(args);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	json_object_set_new(args, "token_hash", json_string(hex));
	json_object_set_new(args, "binding", json_string(bind));
	json_object_set_new(args, "expires_epoch", json_integer((json_int_t)exp));
	OPENSSL_cleanse(hex, sizeof(hex));
	OPENSSL_cleanse(bind, sizeof(bind));
	/* The bound on a token's life is the daemon's ([security]
	 * max_token_lifetime); the database checks it on its own clock. */
	json_object_set_new(args, "max_lifetime_ms",
			    json_integer(r->app->cfg ? r->app->cfg->max_token_lifetime_ms : 0));
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

/* Where a webhook may point, and whom it serves. An IP literal inside the
 * network (or a loopback name) is refused here; a name is judged by what it
 * resolves to at each delivery (webhook.c). A webhook of neither an
 * organisation nor an office receives programme-wide events only, and only
 * when the admin says so (programme: true). */
static int webhook_target_check(struct req *r, json_t *args)
{
	const char *url = json_string_value(json_object_get(args, "url"));
	int allow = r->app && r->app->cfg && r->app->cfg->webhook_allow_private;
	int owned = json_object_get(args, "organisation_id") || json_object_get(args, "office_id");
	int prog = json_is_true(json_object_get(args, "programme"));

	switch (netcheck_url(url)) {
	case NC_HOST_BAD:
		req_reply_error(r, 422, "invalid_value",
				"the URL's host must be a DNS name or a plain IP address", "/url");
		return -1;
	case NC_HOST_INTERNAL:
		if (!allow) {
			req_reply_error(r, 422, "invalid_value",
					"webhooks may not target loopback, private, link-local, "
					"unique-local or unspecified addresses", "/url");
			return -1;
		}
		break;
	default:
		break;
	}
	if (prog && owned) {
		req_reply_error(r, 422, "invalid_value",
				"a programme-wide webhook belongs to no organisation or office",
				"/programme");
		return -1;
	}
	if (!prog && !owned) {
		req_reply_error(r, 422, "invalid_value",
				"a webhook belongs to an organisation or an office, or is marked "
				"programme: true", "/programme");
		return -1;
	}
	json_object_set_new(args, "programme", json_boolean(prog));
	return 0;
}

void api_webhook_create(struct req *r, const struct api_op *op)
{
	json_t *args;
	char id[37];

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
	if (webhook_target_check(r, args) < 0) {
		json_decref(args);
		return;
	}
	/* The webhook's id is chosen here so the secret is sealed to its row,
	 * under the webhook-secret subkey (never openable as client data). */
	if (crypto_uuid_v4(id) != 0) {
		json_decref(args);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	json_object_set_new(args, "id", json_string(id));
	if (api_call_seal_for(r, args, "secret", "secret_sealed", KP_WEBHOOK_SECRET, "webhooks",
			      "secret", id) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, op->stmt, args);
}
