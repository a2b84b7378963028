/*
 * api_referrals.c - POST /v1/referrals (the other referral routes are rows of
 * the route table; the body's schema is api_body_referral in api_schema.c).
 *
 * Owns: the cross-field rules (birth year, probation dates; consent to
 * services is the database's rule, api_referral_submit), and turning client
 * secrets into what the database
 * may hold: the UIC and external_ref become keyed hashes, contact, note and
 * external_ref are sealed under the referral's own data key (created in the
 * key store first; datakey.c), and the idempotency fingerprint of the body
 * is a keyed hash too. A key whose referral was not created is deleted.
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
#include "datakey.h"
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

/* Seal a JSON value (object as compact text, string as itself) into args
 * under the referral's data key, bound to referrals.<column> of row id. */
static int seal_into(const unsigned char *dek, json_t *dst, const char *key, const json_t *v,
		     const char *column, const char *id)
{
	struct seal_bind b = { "referrals", column, id };
	char *text = NULL, *sealed = NULL;
	size_t len;
	int rc = -1;

	if (json_is_string(v)) {
		len = json_string_length(v);
		sealed = datakey_seal(dek, id, &b, json_string_value(v), len);
	} else {
		text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			return -1;
		len = strlen(text);
		sealed = datakey_seal(dek, id, &b, text, len);
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

/* The keyed hash of (office, external_ref) the per-office uniqueness check
 * compares: the clear reference (a probation case number) never reaches
 * the database, and a dump cannot be searched for one without the key. */
static int external_ref_hash(const struct keyring *k, const char *office, const char *ref,
			     char out[65])
{
	size_t n = strlen(office) + strlen(ref) + 8;
	char *tagged = malloc(n);
	int rc;

	if (!tagged)
		return -1;
	snprintf(tagged, n, "XREF1:%s:%s", office, ref);
	rc = keyring_uic_hash(k, tagged, out);
	OPENSSL_cleanse(tagged, n);
	free(tagged);
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

/* A submission between its data key and its reply. */
struct submit {
	struct req *r;
	const struct api_op *op;
	json_t *args;        /* the SQL args, personal fields still clear in secrets */
	json_t *secrets;     /* {"contact", "note", "external_ref"} as received */
	char id[37];
	int decided;         /* the database answered */
	int keep;            /* ...with this referral created */
};

static void submit_free(void *arg)
{
	struct submit *s = arg;

	/* A key whose referral was never created (a replay, a refusal) goes;
	 * when the outcome is unknown (a timeout) it stays: a referral that
	 * did commit must keep its key. */
	if (s->decided && !s->keep && s->r && s->r->app) {
		const char *ids[1] = { s->id };
		datakeys_erase(s->r->app->datakeys, ids, 1, NULL, NULL);
	}
	json_decref(s->args);
	json_decref(s->secrets);
	free(s);
}

static void submit_seen(void *arg, int status, const json_t *body, const json_t *headers)
{
	struct submit *s = arg;
	const char *id = json_string_value(json_object_get(body, "id"));

	s->decided = 1;
	s->keep = status == 201 && id && strcmp(id, s->id) == 0 &&
		  !json_object_get(headers, "Idempotent-Replayed");
}

/* Build the SQL args from a validated body: the UIC and external_ref become
 * keyed hashes; contact, note and external_ref move to secrets, sealed once
 * the data key exists. */
static struct submit *submit_args(struct req *r, const json_t *body, const char *idem_key)
{
	const struct keyring *k = r->app ? r->app->keys : NULL;
	struct submit *s = calloc(1, sizeof(*s));
	json_t *args, *client, *v, *consent;
	char uic_hash[65], rh[65], xh[65];

	if (!s || !k)
		goto fail;
	s->r = r;
	s->args = args = json_deep_copy(body);
	s->secrets = json_object();
	if (!args || !s->secrets)
		goto fail;
	/* The referral's id is chosen here, so its sealed fields are bound to
	 * their row before the row exists (a replay answers from the record). */
	if (crypto_uuid_v4(s->id) != 0)
		goto fail;
	json_object_set_new(args, "id", json_string(s->id));
	client = json_object_get(args, "client");
	if (keyring_uic_hash(k, json_string_value(json_object_get(client, "uic")), uic_hash) != 0)
		goto fail;
	json_object_del(client, "uic");
	json_object_set_new(client, "uic_hash", json_string(uic_hash));
	if ((v = json_object_get(client, "contact"))) {
		json_object_set(s->secrets, "contact", v);
		json_object_del(client, "contact");
	}
	if ((v = json_object_get(args, "note"))) {
		json_object_set(s->secrets, "note", v);
		json_object_del(args, "note");
	}
	v = json_object_get(args, "external_ref");
	if (!json_is_string(v) ||
	    external_ref_hash(k, r->who.id, json_string_value(v), xh) != 0)
		goto fail;
	json_object_set(s->secrets, "external_ref", v);
	json_object_del(args, "external_ref");
	json_object_set_new(args, "external_ref_hash", json_string(xh));
	if (!json_object_get(args, "urgency"))
		json_object_set_new(args, "urgency", json_string("normal"));
	consent = json_object_get(args, "consent");
	if (!json_object_get(consent, "report_back"))
		json_object_set_new(consent, "report_back", json_false());
	if (request_hash(k, body, rh) != 0)
		goto fail;
	json_object_set_new(args, "request_hash", json_string(rh));
	json_object_set_new(args, "idempotency_key", json_string(idem_key));
	return s;
fail:
	if (s) {
		json_decref(s->args);
		json_decref(s->secrets);
		free(s);
	}
	return NULL;
}

/* The data key exists (keys holds it): seal, then the one statement. */
static void submit_keyed(void *arg, struct dek_set *keys)
{
	struct submit *s = arg;
	struct req *r = s->r;
	const unsigned char *dek = dek_set_get(keys, s->id);
	json_t *client = json_object_get(s->args, "client"), *v, *args;
	int ok = dek != NULL;

	if (ok && (v = json_object_get(s->secrets, "contact")))
		ok = seal_into(dek, client, "contact_sealed", v, "contact", s->id) == 0;
	if (ok && (v = json_object_get(s->secrets, "note")))
		ok = seal_into(dek, s->args, "note_sealed", v, "note", s->id) == 0;
	if (ok && (v = json_object_get(s->secrets, "external_ref")))
		ok = seal_into(dek, s->args, "external_ref_sealed", v, "external_ref", s->id) == 0;
	dek_set_free(keys);
	json_decref(s->secrets);
	s->secrets = NULL;
	if (!ok) {
		if (!keys) {
			/* The key store did not answer: nothing was stored. */
			json_decref(s->args);
			free(s);
			req_reply_unavailable(r, 1);
			return;
		}
		log_event(LOG_ERROR, r->id, "seal_failed", "route=%s", r->route_name);
		s->decided = 1;     /* nothing will use the key */
		submit_free(s);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	args = s->args;
	s->args = NULL;
	api_call_run_seen(r, s->op->stmt, args, submit_seen, s, submit_free);
}

void api_referral_submit(struct req *r, const struct api_op *op)
{
	const char *key = req_header(r, "Idempotency-Key");
	struct jv_error e;
	json_t *body = NULL;
	struct submit *sub;

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
	sub = submit_args(r, body, key);
	json_decref(body);
	if (!sub) {
		log_event(LOG_ERROR, r->id, "seal_failed", "route=%s", r->route_name);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	sub->op = op;
	/* The referral's own data key first: every personal field is sealed
	 * under it, and erasing it erases them (datakey.c). */
	if (!r->app || datakeys_create(r->app->datakeys, sub->id, submit_keyed, sub) < 0) {
		json_decref(sub->args);
		json_decref(sub->secrets);
		free(sub);
		req_reply_unavailable(r, 1);
	}
}
