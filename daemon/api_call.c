/*
 * api_call.c - one generic path from a validated request to its reply:
 * SELECT api_<op>(who, request_id, args) on the pool, then the result's
 * {"status","body","headers"} becomes the HTTP reply.
 *
 * Owns: the per-call state (freed before the reply), turning the sealed values
 * of a result into clear fields for the reply (only those of open_rules, each
 * opened with the row it names: a value that fails to open makes the whole
 * reply a 500), sealing request fields bound to their row (api_call_seal*),
 * and the small input helpers shared by the api_*.c handlers.
 * Must never: log args, results or opened plaintext; echo input in an
 * error; open a field the SQL side
 * left out (it decides who may see what) or one not in open_rules; keep
 * plaintext longer than the reply needs it (buffers are cleansed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "auth.h"
#include "config.h"
#include "datakey.h"
#include "db_pool.h"
#include "jsonv.h"
#include "keyring.h"
#include "log.h"
#include "queries.h"
#include "request.h"

struct api_call {
	struct req *r;
	int folded;             /* ran with auth_token() re-checked in the statement */
	api_call_post post;
	api_call_render render;
	api_call_seen seen;
	void *arg;
	void (*free_arg)(void *);
	/* While the data keys of the reply's sealed values are fetched. */
	json_t *result;
	json_t *body;
	int status;
};

static void api_call_free(struct api_call *c)
{
	if (!c)
		return;
	if (c->free_arg && c->arg)
		c->free_arg(c->arg);
	json_decref(c->body);
	json_decref(c->result);
	free(c);
}

void api_call_reply_invalid(struct req *r, const struct jv_error *e)
{
	req_reply_error(r, e->status ? e->status : 400, e->code, e->message,
			e->field[0] || strcmp(e->code, "invalid_type") == 0 ? e->field : NULL);
}

json_t *api_call_body(struct req *r, const struct jv_field *fields, int empty_ok)
{
	struct jv_error e;
	json_t *body;
	size_t max = r->app && r->app->cfg ? r->app->cfg->max_body_size : 65536;

	if (empty_ok && (r->body == NULL || r->body_len == 0))
		return json_object();
	body = jsonv_parse(r->body, r->body_len, max, &e);
	if (!body) {
		api_call_reply_invalid(r, &e);
		return NULL;
	}
	if (jsonv_validate(body, fields, "", &e) < 0) {
		json_decref(body);
		api_call_reply_invalid(r, &e);
		return NULL;
	}
	return body;
}

int api_call_path_id(struct req *r, int idx, json_t *args, const char *key)
{
	const char *id = r->params[idx];

	if (jsonv_is_uuid(id, strlen(id)) != 0) {
		/* Indistinguishable from an id that does not exist. */
		req_reply_error(r, 404, "not_found", "no such resource", NULL);
		return -1;
	}
	json_object_set_new(args, key, json_string(id));
	return 0;
}

json_t *api_call_body_with_id(struct req *r, const struct jv_field *fields, int empty_ok)
{
	json_t *idargs = json_object(), *body;

	if (!idargs) {
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return NULL;
	}
	if (api_call_no_query(r) < 0 || api_call_path_id(r, 0, idargs, "id") < 0) {
		json_decref(idargs);
		return NULL;
	}
	body = api_call_body(r, fields, empty_ok);
	if (body)
		json_object_update(body, idargs);
	json_decref(idargs);
	return body;
}

int api_call_query(struct req *r, const struct jv_qparam *params, json_t *args)
{
	struct jv_error e;

	if (jsonv_query(r->query, params, args, &e) < 0) {
		api_call_reply_invalid(r, &e);
		return -1;
	}
	return 0;
}

int api_call_no_query(struct req *r)
{
	static const struct jv_qparam none[] = { JQ_END };
	json_t *scratch = json_object();
	int rc = api_call_query(r, none, scratch);

	json_decref(scratch);
	return rc;
}

/* The only sealed values a reply may carry, and where each must have been
 * sealed. The SQL side names the row ({"sealed","table","column","row"});
 * the pair (table, column) must be one of these for the member's name, so a
 * value of another kind (a webhook secret, a value copied from elsewhere) is
 * never opened, whatever the database holds. */
static const struct open_rule {
	const char *key;        /* member name in the SQL result */
	const char *clear;      /* member name in the reply */
	const char *table;
	const char *column;
	int as_object;          /* contact: a JSON object sealed as text */
} open_rules[] = {
	{ "contact_sealed", "contact", "referrals", "contact", 1 },
	{ "note_sealed", "note", "referrals", "note", 0 },
	{ "external_ref_sealed", "external_ref", "referrals", "external_ref", 0 },
	{ "withdrawn_reason_sealed", "withdrawn_reason", "referrals", "withdrawn_reason", 0 },
	{ "detail_sealed", "detail", "assignments", "detail", 0 },
	{ "reason_sealed", "reason", "assignments", "reason", 0 },
	{ "detail_sealed", "detail", "assignment_events", "detail", 0 },
	{ "outcome_sealed", "outcome", "assignment_events", "outcome", 0 },
	{ "reason_sealed", "reason", "assignment_history", "reason", 0 },
	{ "reason_sealed", "reason", "break_glass", "reason", 0 },
};

static int ends_with_sealed(const char *k)
{
	size_t n = strlen(k);

	return n > 7 && strcmp(k + n - 7, "_sealed") == 0;
}

/* Open one sealed member into its clear name. Returns -1 when a value that
 * should open does not: it was altered or moved, and the reply must not go
 * out (the caller answers 500). Anything that is not a known sealed value is
 * dropped unopened. A value sealed under a referral's data key opens with
 * that key from keys; when the key store no longer has it the value was
 * erased (retention, consent revocation) and is dropped like an absent one:
 * a database restored from an older backup cannot bring it back. */
static int api_call_open_one(struct req *r, json_t *obj, const char *key,
			     const struct dek_set *keys)
{
	char rid[DATAKEY_ID_LEN + 1];
	json_t *v = json_object_get(obj, key);
	const struct keyring *k = r->app ? r->app->keys : NULL;
	const struct open_rule *rule = NULL;
	const char *table, *column, *row, *blob;
	struct seal_bind b;
	char *plain = NULL;
	size_t len = 0;
	json_t *clear = NULL;

	if (json_is_null(v)) {
		json_object_del(obj, key);
		return 0;
	}
	table = json_string_value(json_object_get(v, "table"));
	column = json_string_value(json_object_get(v, "column"));
	row = json_string_value(json_object_get(v, "row"));
	blob = json_string_value(json_object_get(v, "sealed"));
	for (size_t i = 0; table && column && i < sizeof(open_rules) / sizeof(open_rules[0]); i++)
		if (strcmp(open_rules[i].key, key) == 0 && strcmp(open_rules[i].table, table) == 0 &&
		    strcmp(open_rules[i].column, column) == 0)
			rule = &open_rules[i];
	if (!rule || !row) {
		log_event(LOG_WARN, r->id, "unseal_refused", "field=%s reason=not_openable", key);
		json_object_del(obj, key);
		return 0;
	}
	if (!blob) {            /* no value stored */
		json_object_del(obj, key);
		return 0;
	}
	b.table = rule->table;
	b.column = rule->column;
	b.row_id = row;
	if (datakey_sealed_referral(blob, rid) == 0) {
		const unsigned char *dek = dek_set_get(keys, rid);

		if (!dek) {
			json_object_del(obj, key);
			return 0;
		}
		plain = datakey_open(dek, blob, &b, &len);
	} else if (k) {
		plain = keyring_open(k, KP_CLIENT_DATA, &b, blob, &len);
	}
	if (plain) {
		if (rule->as_object) {
			clear = json_loadb(plain, len, JSON_REJECT_DUPLICATES, NULL);
			if (clear && !json_is_object(clear)) {
				json_decref(clear);
				clear = NULL;
			}
		} else {
			clear = json_stringn(plain, len);
		}
		OPENSSL_cleanse(plain, len);
		free(plain);
	}
	if (!clear) {
		/* The row id is an identifier, never client data. */
		log_event(LOG_ERROR, r->id, "sealed_value_tampered", "table=%s column=%s row=%.64s",
			  rule->table, rule->column, row);
		return -1;
	}
	json_object_set_new(obj, rule->clear, clear);
	json_object_del(obj, key);
	return 0;
}

static int api_call_open_sealed(struct req *r, json_t *v, int depth, const struct dek_set *keys)
{
	if (depth > 16)
		return 0;
	if (json_is_object(v)) {
		const char *k;
		json_t *m, *names = json_array();
		size_t i;
		int rc = 0;

		if (!names)
			return -1;
		/* Collect first: members change while they are opened. */
		json_object_foreach(v, k, m)
			if (ends_with_sealed(k))
				json_array_append_new(names, json_string(k));
		json_array_foreach(names, i, m)
			if (api_call_open_one(r, v, json_string_value(m), keys) < 0)
				rc = -1;
		json_decref(names);
		if (rc < 0)
			return -1;
		json_object_foreach(v, k, m)
			if (api_call_open_sealed(r, m, depth + 1, keys) < 0)
				return -1;
	} else if (json_is_array(v)) {
		size_t i;
		json_t *m;
		json_array_foreach(v, i, m)
			if (api_call_open_sealed(r, m, depth + 1, keys) < 0)
				return -1;
	}
	return 0;
}

/* The referral ids of the values in v sealed under a data key (members
 * ending in _sealed whose "sealed" carries a "d@" label), into ids. */
static void api_call_collect_keys(json_t *v, int depth, json_t *ids)
{
	const char *k;
	json_t *m;
	size_t i;

	if (depth > 16)
		return;
	if (json_is_object(v)) {
		json_object_foreach(v, k, m) {
			char rid[DATAKEY_ID_LEN + 1];
			const char *blob;

			if (ends_with_sealed(k) && json_is_object(m)) {
				blob = json_string_value(json_object_get(m, "sealed"));
				if (blob && datakey_sealed_referral(blob, rid) == 0)
					json_object_set_new(ids, rid, json_true());
				continue;
			}
			api_call_collect_keys(m, depth + 1, ids);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
			api_call_collect_keys(m, depth + 1, ids);
	}
}

static int header_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return 0;
	}
	return 1;
}

static void api_call_finish(struct api_call *c, struct dek_set *keys);

static void api_call_keys(void *arg, struct dek_set *keys)
{
	struct api_call *c = arg;

	if (!keys) {
		/* The key store did not answer: the caller may retry. */
		log_event(LOG_WARN, c->r->id, "db_call_failed", "route=%s status=key_store",
			  c->r->route_name ? c->r->route_name : "-");
		struct req *r = c->r;

		api_call_free(c);
		req_reply_unavailable(r, 1);
		return;
	}
	api_call_finish(c, keys);
}

static void api_call_done(void *arg, enum db_status st, const PGresult *res)
{
	struct api_call *c = arg;
	struct req *r = c->r;
	const char *route = r->route_name ? r->route_name : "-";
	json_t *result = NULL, *body = NULL, *ids;
	json_error_t jerr;
	int status;

	switch (st) {
	case DB_OK:
		break;
	case DB_UNAVAILABLE:
	case DB_TIMEOUT:
		log_event(LOG_WARN, r->id, "db_call_failed", "route=%s status=%s", route,
			  db_status_to_str(st));
		api_call_free(c);
		req_reply_unavailable(r, 1);
		return;
	case DB_SQL_ERROR:
	default: {
		const char *state = res ? db_sqlstate(res) : "";
		log_event(LOG_ERROR, r->id, "db_call_failed", "route=%s status=%s sqlstate=%s", route,
			  db_status_to_str(st), state);
		api_call_free(c);
		/* Serialisation failures, deadlocks, lock and statement timeouts
		 * are transient: the client may retry. Anything else is our bug. */
		if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
		    strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0)
			req_reply_unavailable(r, 1);
		else
			req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	}

	if (c->folded && res && PQntuples(res) == 1 && PQnfields(res) >= 1 &&
	    PQgetisnull(res, 0, 0)) {
		/* The cached principal no longer holds (revoked, expired,
		 * disabled, changed): nothing ran; authenticate afresh, which
		 * answers 401 or runs the request again unfolded. */
		api_call_free(c);
		auth_recheck(r);
		return;
	}
	if (!res || PQntuples(res) != 1 || PQnfields(res) < 1 || PQgetisnull(res, 0, 0))
		goto bad;
	result = json_loadb(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 0, &jerr);
	if (!json_is_object(result))
		goto bad;
	status = (int)json_integer_value(json_object_get(result, "status"));
	if (status < 200 || status > 599)
		goto bad;
	/* The function forgot a referral (referral_forget): its data key goes
	 * from the key store now that the transaction has committed. */
	if (json_is_true(json_object_get(result, "erase")) && r->app)
		datakeys_erase_queued(r->app->datakeys);
	body = json_object_get(result, "body");
	if (body)
		json_incref(body);
	if (body && json_is_null(body)) {
		json_decref(body);
		body = NULL;
	}
	if (c->seen)
		c->seen(c->arg, status, body, json_object_get(result, "headers"));
	if (status == 404) {
		/* Every 404 must read the same, whether the object is absent, out
		 * of scope or its id malformed: even the object type in a message
		 * is dropped, so nothing tells one case from another. */
		json_decref(body);
		json_decref(result);
		api_call_free(c);
		req_reply_error(r, 404, "not_found", "no such resource", NULL);
		return;
	}
	c->result = result;
	c->body = body;
	c->status = status;
	ids = json_object();
	if (body && ids)
		api_call_collect_keys(body, 0, ids);
	if (ids && json_object_size(ids) > 0) {
		const char **list = calloc(json_object_size(ids), sizeof(*list));
		struct dek_set *now = NULL;
		const char *k;
		json_t *m;
		size_t n = 0;
		int rc = -1;

		if (list) {
			json_object_foreach(ids, k, m)
				list[n++] = k;
			rc = datakeys_fetch(r->app ? r->app->datakeys : NULL, list, n, api_call_keys,
					    c, &now);
		}
		free(list);
		json_decref(ids);
		if (rc == 0)
			return;                 /* api_call_keys follows */
		if (rc < 0) {
			api_call_free(c);
			req_reply_unavailable(r, 1);
			return;
		}
		api_call_finish(c, now);
		return;
	}
	json_decref(ids);
	api_call_finish(c, NULL);
	return;
bad:
	log_event(LOG_ERROR, r->id, "db_call_failed", "route=%s status=bad_result", route);
	json_decref(result);
	api_call_free(c);
	req_reply_error(r, 500, "internal_error", "internal error", NULL);
}

/* The rest of a reply once the data keys its sealed values need are in
 * keys (NULL: none needed); takes keys. */
static void api_call_finish(struct api_call *c, struct dek_set *keys)
{
	struct req *r = c->r;
	json_t *result = c->result, *body = c->body, *headers;
	int status = c->status;
	int opened;

	c->result = NULL;
	c->body = NULL;
	opened = !body || api_call_open_sealed(r, body, 0, keys) == 0;
	dek_set_free(keys);
	if (!opened) {
		/* A sealed value failed to open: tampering, or a value moved to
		 * another row. Nothing of this reply goes out. */
		json_decref(body);
		json_decref(result);
		api_call_free(c);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	if (c->post && status < 300 && body)
		c->post(r, &status, body, c->arg);

	headers = json_object_get(result, "headers");
	if (json_is_object(headers)) {
		const char *k;
		json_t *v;
		json_object_foreach(headers, k, v) {
			const char *hv = json_string_value(v);
			if (!hv || !header_name_ok(k) || strpbrk(hv, "\r\n") || strlen(hv) > 512)
				continue;
			req_add_header(r, k, hv);
		}
	}
	json_decref(result);
	if (c->render && status < 300 && body) {
		api_call_render render = c->render;
		void *rarg = c->arg;
		void (*free_arg)(void *) = c->free_arg;

		/* The renderer still needs its arg: freed after it ran. */
		c->free_arg = NULL;
		api_call_free(c);
		render(r, status, body, rarg);
		if (free_arg && rarg)
			free_arg(rarg);
		return;
	}
	api_call_free(c);
	req_reply_json(r, status, body);
}

static void api_call_start(struct req *r, const char *stmt, json_t *args, api_call_post post,
			   api_call_render render, api_call_seen seen, void *arg,
			   void (*free_arg)(void *))
{
	struct api_call *c = NULL;
	json_t *who = NULL;
	char *who_s = NULL, *args_s = NULL;
	const char *values[5];
	char folded[128];
	int nvalues = 3;
	size_t args_len = 0;
	int reply = 500;      /* 0: submitted; 503: no pool; 500: out of memory; 401: recheck */

	c = calloc(1, sizeof(*c));
	if (!c) {
		if (free_arg && arg)
			free_arg(arg);
		goto out;
	}
	c->r = r;
	c->post = post;
	c->render = render;
	c->seen = seen;
	c->arg = arg;
	c->free_arg = free_arg;
	who = auth_who_json(&r->who);
	who_s = who ? json_dumps(who, JSON_COMPACT) : NULL;
	args_s = args ? json_dumps(args, JSON_COMPACT) : NULL;
	if (!who_s || !args_s)
		goto out;
	args_len = strlen(args_s);
	values[0] = who_s;
	values[1] = r->id;
	values[2] = args_s;
	if (r->auth_cached) {
		/* A principal from auth.c's cache acts only through the
		 * statement that re-checks it; an operation without such a twin
		 * authenticates afresh first. */
		if (queries_folded_name(stmt, folded, sizeof(folded)) != 0) {
			reply = 401;
			goto out;
		}
		values[3] = r->auth_hash;
		values[4] = r->auth_expect;
		nvalues = 5;
		stmt = folded;
		c->folded = 1;
	}
	if (r->app && r->app->pool &&
	    db_submit(r->app->pool, stmt, nvalues, values, api_call_done, c, 0))
		reply = 0;
	else
		reply = 503;
out:
	/* The pool copied the parameters; the args text may hold sealed blobs
	 * and hashes, so wipe it rather than leave it in the heap. */
	if (args_s)
		OPENSSL_cleanse(args_s, args_len);
	free(args_s);
	free(who_s);
	json_decref(who);
	json_decref(args);
	if (reply == 0)
		return;
	api_call_free(c);
	if (reply == 401)
		auth_recheck(r);
	else if (reply == 503)
		req_reply_unavailable(r, 1);
	else
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
}

void api_call_run_ex(struct req *r, const char *stmt, json_t *args, api_call_post post,
		     void *arg, void (*free_arg)(void *))
{
	api_call_start(r, stmt, args, post, NULL, NULL, arg, free_arg);
}

void api_call_run_seen(struct req *r, const char *stmt, json_t *args, api_call_seen seen,
		       void *arg, void (*free_arg)(void *))
{
	api_call_start(r, stmt, args, NULL, NULL, seen, arg, free_arg);
}

void api_call_run(struct req *r, const char *stmt, json_t *args)
{
	api_call_start(r, stmt, args, NULL, NULL, NULL, NULL, NULL);
}

void api_call_run_render(struct req *r, const char *stmt, json_t *args, api_call_render render,
			 void *arg)
{
	api_call_start(r, stmt, args, NULL, render, NULL, arg, NULL);
}

void api_call_run_render_ex(struct req *r, const char *stmt, json_t *args,
			    api_call_render render, void *arg, void (*free_arg)(void *))
{
	api_call_start(r, stmt, args, NULL, render, NULL, arg, free_arg);
}

/* Seal under the referral's data key dek when given (rid: its referral),
 * else under the keyring's purpose subkey. */
static int api_call_seal_with(struct req *r, json_t *args, const char *key, const char *sealed_key,
			      enum keyring_purpose purpose, const char *table, const char *column,
			      const char *row_id, const unsigned char *dek, const char *rid)
{
	json_t *v = json_object_get(args, key);
	const struct keyring *k = r->app ? r->app->keys : NULL;
	struct seal_bind b = { table, column, row_id };
	char *text = NULL, *sealed = NULL;
	size_t len = 0;

	if (!v)
		return 0;
	if (json_is_string(v)) {
		sealed = dek ? datakey_seal(dek, rid, &b, json_string_value(v), json_string_length(v))
		       : k ? keyring_seal(k, purpose, &b, json_string_value(v),
					  json_string_length(v)) : NULL;
	} else {
		text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
		if (text) {
			len = strlen(text);
			sealed = dek ? datakey_seal(dek, rid, &b, text, len)
			       : k ? keyring_seal(k, purpose, &b, text, len) : NULL;
			OPENSSL_cleanse(text, len);
			free(text);
		}
	}
	if (!sealed) {
		log_event(LOG_ERROR, r->id, "seal_failed", "route=%s",
			  r->route_name ? r->route_name : "-");
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return -1;
	}
	json_object_set_new(args, sealed_key, json_string(sealed));
	json_object_del(args, key);
	free(sealed);
	return 0;
}

int api_call_seal_for(struct req *r, json_t *args, const char *key, const char *sealed_key,
		      enum keyring_purpose purpose, const char *table, const char *column,
		      const char *row_id)
{
	return api_call_seal_with(r, args, key, sealed_key, purpose, table, column, row_id, NULL,
				  NULL);
}

int api_call_seal(struct req *r, json_t *args, const char *key, const char *sealed_key,
		  const char *table, const char *column, const char *row_id)
{
	return api_call_seal_for(r, args, key, sealed_key, KP_CLIENT_DATA, table, column, row_id);
}

/* One free-text field under the referral's key (or the keyring's, for a
 * referral older than data keys). */
static int api_call_seal_text(struct req *r, json_t *args, const char *key, const char *sealed_key,
			      const char *table, const char *column, const char *row_id,
			      const unsigned char *dek, const char *rid)
{
	return api_call_seal_with(r, args, key, sealed_key, KP_CLIENT_DATA, table, column, row_id,
				  dek, rid);
}

/* Free text about a client, per the route's flags: only its sealed form
 * leaves here, bound to the row it will live in (an event's row id is chosen
 * here for that; the assignment's or referral's is the path's), under the
 * data key of the referral it belongs to (dek; NULL: a referral older than
 * data keys, sealed under the keyring). */
static int api_call_seal_flags(struct req *r, json_t *args, unsigned flags,
			       const unsigned char *dek, const char *rid)
{
	const char *id = json_string_value(json_object_get(args, "id"));
	char eid[37];

	if (flags & API_SEAL_EVENT) {
		if (crypto_uuid_v4(eid) != 0) {
			req_reply_error(r, 500, "internal_error", "internal error", NULL);
			return -1;
		}
		json_object_set_new(args, "event_id", json_string(eid));
		if (api_call_seal_text(r, args, "detail", "detail_sealed", "assignment_events",
				       "detail", eid, dek, rid) < 0 ||
		    api_call_seal_text(r, args, "outcome", "outcome_sealed", "assignment_events",
				       "outcome", eid, dek, rid) < 0)
			return -1;
	}
	if ((flags & API_SEAL_DETAIL) &&
	    api_call_seal_text(r, args, "detail", "detail_sealed", "assignments", "detail", id, dek,
			       rid) < 0)
		return -1;
	if ((flags & API_SEAL_REASON) &&
	    api_call_seal_text(r, args, "reason", "reason_sealed", "assignments", "reason", id, dek,
			       rid) < 0)
		return -1;
	if ((flags & API_SEAL_WITHDRAWN) &&
	    api_call_seal_text(r, args, "reason", "reason_sealed", "referrals", "withdrawn_reason",
			       id, dek, rid) < 0)
		return -1;
	/* Kept in each history row of the reassignment: bound to the referral. */
	if ((flags & API_SEAL_REASSIGN) && rid &&
	    api_call_seal_text(r, args, "reason", "reason_sealed", "assignment_history", "reason",
			       rid, dek, rid) < 0)
		return -1;
	return 0;
}

#define API_SEAL_ANY \
	(API_SEAL_DETAIL | API_SEAL_REASON | API_SEAL_EVENT | API_SEAL_WITHDRAWN | API_SEAL_REASSIGN)

/* A route with free text, between finding its referral's key and its call. */
struct api_seal {
	struct req *r;
	const struct api_op *op;
	json_t *args;
	char rid[DATAKEY_ID_LEN + 1];
};

static void api_seal_run(struct api_seal *p, const unsigned char *dek)
{
	struct req *r = p->r;
	json_t *args = p->args;
	const struct api_op *op = p->op;
	const char *rid = p->rid;
	int rc = api_call_seal_flags(r, args, op->flags, dek, rid);

	free(p);
	if (rc < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, op->stmt, args);
}

static void api_seal_keys(void *arg, struct dek_set *keys)
{
	struct api_seal *p = arg;

	if (!keys) {
		struct req *r = p->r;

		json_decref(p->args);
		free(p);
		req_reply_unavailable(r, 1);
		return;
	}
	/* No key: a referral older than data keys (keyring sealing). */
	api_seal_run(p, dek_set_get(keys, p->rid));
	dek_set_free(keys);
}

static void api_seal_fetch(struct api_seal *p)
{
	const char *ids[1] = { p->rid };
	struct dek_set *now = NULL;
	int rc = datakeys_fetch(p->r->app ? p->r->app->datakeys : NULL, ids, 1, api_seal_keys, p,
				&now);

	if (rc == 1) {
		api_seal_keys(p, now);
	} else if (rc < 0) {
		struct req *r = p->r;

		json_decref(p->args);
		free(p);
		req_reply_unavailable(r, 1);
	}
}

/* The assignment's referral, and whether its personal data still exists. */
static void api_seal_referral(void *arg, enum db_status st, const PGresult *res)
{
	struct api_seal *p = arg;
	json_t *j = NULL;

	if (st != DB_OK || PQntuples(res) != 1) {
		struct req *r = p->r;

		json_decref(p->args);
		free(p);
		req_reply_unavailable(r, 1);
		return;
	}
	if (!PQgetisnull(res, 0, 0))
		j = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
	if (!j || json_is_true(json_object_get(j, "forgotten")) ||
	    !json_string_value(json_object_get(j, "referral_id")) ||
	    strlen(json_string_value(json_object_get(j, "referral_id"))) != DATAKEY_ID_LEN) {
		/* No such assignment (the call answers 404), or its referral's
		 * personal data is gone: free text about it is not kept. */
		unsigned f = p->op->flags;

		if (f & (API_SEAL_DETAIL | API_SEAL_EVENT))
			json_object_del(p->args, "detail");
		if (f & API_SEAL_EVENT)
			json_object_del(p->args, "outcome");
		if (f & (API_SEAL_REASON | API_SEAL_WITHDRAWN))
			json_object_del(p->args, "reason");
		if (f & API_SEAL_REASSIGN) {
			/* A required reason: a stand-in, so the call answers
			 * 404 or 409 as it would; it is never stored. */
			json_object_del(p->args, "reason");
			json_object_set_new(p->args, "reason_sealed", json_string("-"));
		}
		json_decref(j);
		api_seal_run(p, NULL);
		return;
	}
	snprintf(p->rid, sizeof(p->rid), "%s", json_string_value(json_object_get(j, "referral_id")));
	json_decref(j);
	api_seal_fetch(p);
}

/* The args of a route without a body: its query string (or none) and the
 * path id, in that order, as every GET has always checked them. */
static json_t *api_call_op_args(struct req *r, const struct api_op *op)
{
	json_t *args = json_object();

	if (!args) {
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return NULL;
	}
	if ((op->query ? api_call_query(r, op->query, args) : api_call_no_query(r)) < 0 ||
	    ((op->flags & API_ID) && api_call_path_id(r, 0, args, "id") < 0)) {
		json_decref(args);
		return NULL;
	}
	if ((op->flags & API_NO_BODY) && r->body_len > 0) {
		json_decref(args);
		req_reply_error(r, 400, "invalid_value", "DELETE takes no body", NULL);
		return NULL;
	}
	return args;
}

json_t *api_call_args(struct req *r, const struct api_op *op)
{
	int empty_ok = (op->flags & API_EMPTY_OK) != 0;
	json_t *args;

	if (!op->body)
		args = api_call_op_args(r, op);
	else if (op->flags & API_ID)
		args = api_call_body_with_id(r, op->body, empty_ok);
	else
		args = api_call_no_query(r) < 0 ? NULL : api_call_body(r, op->body, empty_ok);
	/* With API_ID the args hold "id" beside the body's members. */
	if (args && (op->flags & API_NONEMPTY) &&
	    json_object_size(args) < ((op->flags & API_ID) ? 2u : 1u)) {
		json_decref(args);
		req_reply_error(r, 400, "missing_field", "at least one field to change is required",
				"");
		return NULL;
	}
	return args;
}

void api_call_op(struct req *r, const struct api_op *op)
{
	json_t *args = api_call_args(r, op);

	if (!args)
		return;
	if ((op->flags & API_SEAL_ANY) &&
	    (json_object_get(args, "detail") || json_object_get(args, "outcome") ||
	     json_object_get(args, "reason"))) {
		struct api_seal *p = calloc(1, sizeof(*p));
		const char *id = json_string_value(json_object_get(args, "id"));
		const char *params[1] = { id };

		if (!p || !id || !r->app) {
			free(p);
			json_decref(args);
			req_reply_error(r, 500, "internal_error", "internal error", NULL);
			return;
		}
		p->r = r;
		p->op = op;
		p->args = args;
		if (op->flags & API_SEAL_WITHDRAWN) {
			/* The path names the referral itself. */
			snprintf(p->rid, sizeof(p->rid), "%s", id);
			api_seal_fetch(p);
		} else if (!db_submit(r->app->pool, "assignment_referral", 1, params,
				      api_seal_referral, p, 0)) {
			json_decref(args);
			free(p);
			req_reply_unavailable(r, 1);
		}
		return;
	}
	if (api_call_seal_flags(r, args, op->flags, NULL, NULL) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, op->stmt, args);
}
