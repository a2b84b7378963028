/*
 * api_referrals.c - POST /v1/referrals (the other referral routes are rows of
 * the route table; the body's schema is api_body_referral in api_schema.c).
 *
 * Owns: the cross-field rules (birth year, probation dates; consent to
 * services is the database's rule, api_referral_submit), and turning client
 * secrets into what the database
 * may hold: the UIC becomes its keyed hash, contact and note are sealed, and
 * the idempotency fingerprint of the body is a keyed hash too.
 * Must never: pass a clear UIC, phone or note to the database, a log line or
 * an error; keep the canonical body text after hashing it (it is cleansed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "api_call.h"
#include "api_schema.h"
#include "app.h"
#include "jsonv.h"
#include "keyring.h"
#include "log.h"
#include "request.h"

int api_referral_rules(const json_t *body, struct jv_error *e)
{
	const json_t *client = json_object_get(body, "client");
	const json_t *prob = json_object_get(body, "probation");
	json_int_t by = json_integer_value(json_object_get(client, "birth_year"));

	if (by > jsonv_current_year())
		return jsonv_fail(e, 400, "invalid_value", "out of range", "/client/birth_year");
	if (prob) {
		const char *s = json_string_value(json_object_get(prob, "starts_on"));
		const char *t = json_string_value(json_object_get(prob, "ends_on"));
		/* YYYY-MM-DD compares correctly as text. */
		if (s && t && strcmp(t, s) < 0)
			return jsonv_fail(e, 400, "invalid_value", "ends before it starts",
					  "/probation/ends_on");
	}
	return 0;
}

/* Seal a JSON value (object as compact text, string as itself) into args,
 * bound to referrals.<column> of row id. */
static int seal_into(const struct keyring *k, json_t *dst, const char *key, const json_t *v,
		     const char *column, const char *id)
{
	struct seal_bind b = { "referrals", column, id };
	char *text = NULL, *sealed = NULL;
	size_t len;
	int rc = -1;

	if (json_is_string(v)) {
		len = json_string_length(v);
		sealed = keyring_seal(k, KP_CLIENT_DATA, &b, json_string_value(v), len);
	} else {
		text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			return -1;
		len = strlen(text);
		sealed = keyring_seal(k, KP_CLIENT_DATA, &b, text, len);
		OPENSSL_cleanse(text, len);
		free(text);
	}
	if (!sealed)
		return -1;
	if (json_object_set_new(dst, key, json_string(sealed)) == 0)
		rc = 0;
	free(sealed);
	return rc;
}

/* The keyed fingerprint of the body as received (canonical form: sorted keys,
 * compact), so that a replay with the same body matches and a database dump
 * cannot be used to test guesses of the UIC or note. */
static int request_hash(const struct keyring *k, const json_t *body, char out[65])
{
	char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	char digest[65], tagged[80];
	size_t len;
	int rc;

	if (!canon)
		return -1;
	len = strlen(canon);
	crypto_sha256_hex(canon, len, digest);
	OPENSSL_cleanse(canon, len);
	free(canon);
	snprintf(tagged, sizeof(tagged), "REQ1:%s", digest);
	rc = keyring_uic_hash(k, tagged, out);
	OPENSSL_cleanse(digest, sizeof(digest));
	OPENSSL_cleanse(tagged, sizeof(tagged));
	return rc;
}

/* Build the SQL args from a validated body: secrets replaced. */
static json_t *submit_args(const struct keyring *k, const json_t *body, const char *idem_key)
{
	json_t *args = json_deep_copy(body);
	json_t *client, *contact, *note, *consent;
	char uic_hash[65], rh[65], id[37];

	if (!args)
		return NULL;
	/* The referral's id is chosen here, so its sealed fields are bound to
	 * their row before the row exists (a replay answers from the record). */
	if (crypto_uuid_v4(id) != 0)
		goto fail;
	json_object_set_new(args, "id", json_string(id));
	client = json_object_get(args, "client");
	if (keyring_uic_hash(k, json_string_value(json_object_get(client, "uic")), uic_hash) != 0)
		goto fail;
	json_object_del(client, "uic");
	json_object_set_new(client, "uic_hash", json_string(uic_hash));
	contact = json_object_get(client, "contact");
	if (contact) {
		if (seal_into(k, client, "contact_sealed", contact, "contact", id) < 0)
			goto fail;
		json_object_del(client, "contact");
	}
	note = json_object_get(args, "note");
	if (note) {
		if (seal_into(k, args, "note_sealed", note, "note", id) < 0)
			goto fail;
		json_object_del(args, "note");
	}
	if (!json_object_get(args, "urgency"))
		json_object_set_new(args, "urgency", json_string("normal"));
	consent = json_object_get(args, "consent");
	if (!json_object_get(consent, "report_back"))
		json_object_set_new(consent, "report_back", json_false());
	if (request_hash(k, body, rh) != 0)
		goto fail;
	json_object_set_new(args, "request_hash", json_string(rh));
	json_object_set_new(args, "idempotency_key", json_string(idem_key));
	return args;
fail:
	json_decref(args);
	return NULL;
}

void api_referral_submit(struct req *r, const struct api_op *op)
{
	const char *key = req_header(r, "Idempotency-Key");
	struct jv_error e;
	json_t *body = NULL, *args = NULL;

	if (!key) {
		req_reply_error(r, 400, "idempotency_key_required",
				"the Idempotency-Key header is required", NULL);
		return;
	}
	if (jsonv_is_idem_key(key, strlen(key)) != 0) {
		req_reply_error(r, 400, "invalid_value",
				"Idempotency-Key must be 1 to 128 printable characters", NULL);
		return;
	}
	body = api_call_args(r, op);
	if (!body)
		return;
	if (api_referral_rules(body, &e) < 0) {
		json_decref(body);
		api_call_reply_invalid(r, &e);
		return;
	}
	args = submit_args(r->app ? r->app->keys : NULL, body, key);
	json_decref(body);
	if (!args) {
		log_event(LOG_ERROR, r->id, "seal_failed", "route=%s", r->route_name);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	api_call_run(r, op->stmt, args);
}
