/*
 * api_admin.c - the operator's API (organisations, offices, workers,
 * supervisors, tokens, deadline policies, webhooks) and the supervisor's
 * deadline and audit lists.
 *
 * Owns: these bodies' schemas; minting bearer tokens (random from OpenSSL,
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
#include "router.h"

#define JV_END { NULL, 0, 0, 0, 0, NULL, NULL, 0 }
#define TOKEN_PREFIX "rfd_"

static int is_hex64(const char *s, size_t len)
{
	if (len != 64)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	return 0;
}

static int is_scope(const char *s, size_t len)
{
	if ((len == 9 && memcmp(s, "programme", 9) == 0) ||
	    (len == 12 && memcmp(s, "organisation", 12) == 0))
		return 0;
	return -1;
}

static int is_clock(const char *s, size_t len)
{
	if ((len == 4 && memcmp(s, "wall", 4) == 0) || (len == 7 && memcmp(s, "working", 7) == 0))
		return 0;
	return -1;
}

static const struct jv_field organisation_fields[] = {
	{ "name", JV_STR, JV_REQUIRED, 1, 200, jsonv_is_text, NULL, 0 },
	JV_END,
};

static const struct jv_field office_fields[] = {
	{ "name", JV_STR, JV_REQUIRED, 1, 200, jsonv_is_text, NULL, 0 },
	{ "region", JV_STR, JV_REQUIRED, 1, 64, jsonv_is_slug, NULL, 0 },
	{ "cert_fingerprint", JV_STR, 0, 64, 64, is_hex64, NULL, 0 },
	{ "cert_subject", JV_STR, 0, 1, 255, jsonv_is_text, NULL, 0 },
	JV_END,
};

static const struct jv_field worker_fields[] = {
	{ "organisation_id", JV_STR, JV_REQUIRED, 36, 36, jsonv_is_uuid, NULL, 0 },
	{ "kind", JV_STR, JV_REQUIRED, 1, 32, jsonv_is_kind, NULL, 0 },
	{ "handle", JV_STR, JV_REQUIRED, 1, 64, jsonv_is_handle, NULL, 0 },
	{ "regions", JV_STR_ARRAY, JV_REQUIRED | JV_UNIQUE, 1, 32, jsonv_is_slug, NULL, 64 },
	{ "languages", JV_STR_ARRAY, JV_REQUIRED | JV_UNIQUE, 1, 8, jsonv_is_lang, NULL, 2 },
	{ "capacity", JV_INT, JV_REQUIRED, 0, 1000, NULL, NULL, 0 },
	JV_END,
};

static const struct jv_field worker_patch_fields[] = {
	{ "capacity", JV_INT, 0, 0, 1000, NULL, NULL, 0 },
	{ "on_leave", JV_BOOL, 0, 0, 0, NULL, NULL, 0 },
	{ "active", JV_BOOL, 0, 0, 0, NULL, NULL, 0 },
	{ "regions", JV_STR_ARRAY, JV_UNIQUE, 1, 32, jsonv_is_slug, NULL, 64 },
	{ "languages", JV_STR_ARRAY, JV_UNIQUE, 1, 8, jsonv_is_lang, NULL, 2 },
	JV_END,
};

static const struct jv_field supervisor_fields[] = {
	{ "organisation_id", JV_STR, 0, 36, 36, jsonv_is_uuid, NULL, 0 },
	{ "scope", JV_STR, 0, 1, 16, is_scope, NULL, 0 },
	{ "handle", JV_STR, JV_REQUIRED, 1, 64, jsonv_is_handle, NULL, 0 },
	JV_END,
};

static const struct jv_field token_fields[] = {
	{ "role", JV_STR, JV_REQUIRED, 1, 16, jsonv_is_role, NULL, 0 },
	{ "subject_id", JV_STR, JV_REQUIRED, 36, 36, jsonv_is_uuid, NULL, 0 },
	{ "expires_at", JV_STR, JV_REQUIRED, 20, 40, jsonv_is_time, NULL, 0 },
	JV_END,
};

static const struct jv_field policy_fields[] = {
	{ "accept_within", JV_STR, 0, 3, 32, jsonv_is_duration, NULL, 0 },
	{ "first_contact_within", JV_STR, 0, 3, 32, jsonv_is_duration, NULL, 0 },
	{ "consultation_within", JV_STR, 0, 3, 32, jsonv_is_duration, NULL, 0 },
	{ "clock", JV_STR, 0, 1, 16, is_clock, NULL, 0 },
	{ "remind_before", JV_STR, 0, 3, 32, jsonv_is_duration, NULL, 0 },
	JV_END,
};

static const struct jv_field webhook_fields[] = {
	{ "url", JV_STR, JV_REQUIRED, 9, 2048, jsonv_is_https_url, NULL, 0 },
	{ "events", JV_STR_ARRAY, JV_REQUIRED | JV_UNIQUE, 1, 32, jsonv_is_event_name, NULL, 64 },
	{ "secret", JV_STR, JV_REQUIRED, 16, 256, jsonv_is_printable, NULL, 0 },
	{ "organisation_id", JV_STR, 0, 36, 36, jsonv_is_uuid, NULL, 0 },
	{ "office_id", JV_STR, 0, 36, 36, jsonv_is_uuid, NULL, 0 },
	JV_END,
};

static int is_deadline_state(const char *s, size_t len)
{
	static const char *const set[] = {"pending", "met", "missed", NULL};
	for (const char *const *p = set; *p; p++)
		if (strlen(*p) == len && memcmp(*p, s, len) == 0)
			return 0;
	return -1;
}

static const struct jv_qparam deadline_params[] = {
	{ "state", JQ_STR, is_deadline_state },
	{ "due_before", JQ_STR, jsonv_is_time },
	{ "limit", JQ_LIMIT, NULL },
	{ "cursor", JQ_CURSOR, NULL },
	{ NULL, 0, NULL },
};

static const struct jv_qparam audit_params[] = {
	{ "from", JQ_STR, jsonv_is_time },
	{ "to", JQ_STR, jsonv_is_time },
	{ "object", JQ_STR, jsonv_is_uuid },
	{ "limit", JQ_LIMIT, NULL },
	{ "cursor", JQ_CURSOR, NULL },
	{ NULL, 0, NULL },
};

/* Body-only create: validate, no query string, call. */
static void admin_create(struct req *r, const struct jv_field *fields, const char *stmt)
{
	json_t *args;

	if (api_call_no_query(r) < 0)
		return;
	args = api_call_body(r, fields, 0);
	if (args)
		api_call_run(r, stmt, args);
}

void api_organisation_create(struct req *r)
{
	admin_create(r, organisation_fields, "api_organisation_create");
}

void api_office_create(struct req *r)
{
	admin_create(r, office_fields, "api_office_create");
}

void api_worker_create(struct req *r)
{
	admin_create(r, worker_fields, "api_worker_create");
}

void api_worker_patch(struct req *r)
{
	json_t *args = api_call_body_with_id(r, worker_patch_fields, 0);

	if (!args)
		return;
	if (json_object_size(args) < 2) {  /* only "id": nothing to change */
		json_decref(args);
		req_reply_error(r, 400, "missing_field", "at least one field to change is required",
				"");
		return;
	}
	api_call_run(r, "api_worker_patch", args);
}

void api_supervisor_create(struct req *r)
{
	json_t *args;
	const char *scope;
	int has_org;

	if (api_call_no_query(r) < 0)
		return;
	args = api_call_body(r, supervisor_fields, 0);
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
	api_call_run(r, "api_supervisor_create", args);
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

void api_token_create(struct req *r)
{
	json_t *args;
	char rnd[64], hex[65];
	char *token;
	size_t tl;

	if (api_call_no_query(r) < 0)
		return;
	args = api_call_body(r, token_fields, 0);
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
	api_call_run_ex(r, "api_token_create", args, token_post, token, token_free);
}

void api_token_revoke(struct req *r)
{
	json_t *args = json_object();

	if (api_call_no_query(r) < 0 || api_call_path_id(r, 0, args, "id") < 0) {
		json_decref(args);
		return;
	}
	if (r->body_len > 0) {
		json_decref(args);
		req_reply_error(r, 400, "invalid_value", "DELETE takes no body", NULL);
		return;
	}
	api_call_run(r, "api_token_revoke", args);
}

void api_deadline_policy_put(struct req *r)
{
	const char *need = r->params[0], *urgency = r->params[1];
	json_t *args;

	if (api_call_no_query(r) < 0)
		return;
	/* Only four policies exist; any other path names no resource. */
	if (jsonv_is_need(need, strlen(need)) != 0 ||
	    jsonv_is_urgency(urgency, strlen(urgency)) != 0) {
		req_reply_error(r, 404, "not_found", "no such resource", NULL);
		return;
	}
	args = api_call_body(r, policy_fields, 0);
	if (!args)
		return;
	if (json_object_size(args) == 0) {
		json_decref(args);
		req_reply_error(r, 400, "missing_field", "at least one field to change is required", "");
		return;
	}
	json_object_set_new(args, "need", json_string(need));
	json_object_set_new(args, "urgency", json_string(urgency));
	api_call_run(r, "api_deadline_policy_put", args);
}

void api_webhook_create(struct req *r)
{
	json_t *args, *secret;
	char *sealed;

	if (api_call_no_query(r) < 0)
		return;
	args = api_call_body(r, webhook_fields, 0);
	if (!args)
		return;
	if (json_object_get(args, "organisation_id") && json_object_get(args, "office_id")) {
		json_decref(args);
		req_reply_error(r, 400, "invalid_value",
				"a webhook belongs to an organisation or an office, not both",
				"/office_id");
		return;
	}
	secret = json_object_get(args, "secret");
	sealed = r->app && r->app->keys ?
		keyring_seal(r->app->keys, json_string_value(secret), json_string_length(secret)) :
		NULL;
	if (!sealed) {
		json_decref(args);
		log_event(LOG_ERROR, r->id, "seal_failed", "route=%s", r->route->name);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	json_object_del(args, "secret");
	json_object_set_new(args, "secret_sealed", json_string(sealed));
	free(sealed);
	api_call_run(r, "api_webhook_create", args);
}

void api_deadline_list(struct req *r)
{
	json_t *args = json_object();

	if (api_call_query(r, deadline_params, args) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, "api_deadline_list", args);
}

void api_audit_list(struct req *r)
{
	json_t *args = json_object();

	if (api_call_query(r, audit_params, args) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, "api_audit_list", args);
}
