/*
 * api_access.c - exceptional access to client data (protocol v1.1):
 * POST /v1/subject-access and POST /v1/assignments/{id}/break-glass. The
 * list of uses (GET /v1/break-glass) is a plain row of the route table; who
 * may do what (programme scope, another organisation) is decided in
 * sql/functions/70_access.sql.
 *
 * Owns: turning the body into what the database may hold: the UIC becomes
 * its keyed hash, the reason (free text that may describe the client) is
 * sealed bound to the row that keeps it, whose id is chosen here; and
 * handing the database the configured break-the-glass window.
 * Must never: pass a clear UIC or reason to the database, a log line or an
 * error; take the UIC from anywhere but the body (the route has no query
 * parameters and its path holds none).
 */
#include <string.h>

#include <openssl/crypto.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "config.h"
#include "keyring.h"
#include "log.h"
#include "request.h"

void api_subject_access(struct req *r, const struct api_op *op)
{
	json_t *args = api_call_args(r, op);
	const struct keyring *k;
	char hash[65], id[37];
	int ok;

	/* Without args the request has been answered, and r is gone. */
	if (!args)
		return;
	k = r->app ? r->app->keys : NULL;
	ok = k && crypto_uuid_v4(id) == 0 &&
	     keyring_uic_hash(k, json_string_value(json_object_get(args, "uic")), hash) == 0;
	/* The clear UIC leaves the args before anything else can see them. */
	json_object_del(args, "uic");
	if (!ok) {
		OPENSSL_cleanse(hash, sizeof(hash));
		json_decref(args);
		log_event(LOG_ERROR, r->id, "seal_failed", "route=%s", r->route_name);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	json_object_set_new(args, "uic_hash", json_string(hash));
	OPENSSL_cleanse(hash, sizeof(hash));
	json_object_set_new(args, "id", json_string(id));
	if (api_call_seal(r, args, "reason", "reason_sealed", "subject_access_requests", "reason",
			  id) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, op->stmt, args);
}

void api_break_glass(struct req *r, const struct api_op *op)
{
	json_t *args = api_call_args(r, op);
	const struct config *cfg;
	char id[37];

	if (!args)
		return;
	cfg = r->app ? r->app->cfg : NULL;
	if (crypto_uuid_v4(id) != 0) {
		json_decref(args);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	json_object_set_new(args, "break_glass_id", json_string(id));
	json_object_set_new(args, "window_ms",
			    json_integer(cfg ? cfg->break_glass_window_ms : 3600000L));
	if (api_call_seal(r, args, "reason", "reason_sealed", "break_glass", "reason", id) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, op->stmt, args);
}
