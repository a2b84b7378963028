/*
 * api_audit_head.c - GET /v1/audit/head (supervisor, admin) and
 * GET /v1/audit/keys (any authenticated caller).
 *
 * The head is the database's (audit_head(): the chain head the sealer
 * keeps); the signature is made here with the key of [audit]
 * signing_key_file, over "seq|hash|at". Neither reply carries client data,
 * and neither is audited: they name only a position in the audit itself.
 *
 * Owns: the two replies.
 * Must never: return anything of the private key.
 */
#include <stdlib.h>

#include <jansson.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "audit_head.h"
#include "db_pool.h"
#include "log.h"
#include "request.h"

static void api_audit_head_done(void *arg, enum db_status st, const PGresult *res)
{
	struct req *r = arg;
	struct audit_head h;
	json_t *j;

	if (st != DB_OK) {
		log_event(LOG_WARN, r->id, "audit_head_failed", "status=%s", db_status_to_str(st));
		req_reply_unavailable(r, 1);
		return;
	}
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
	    audit_head_from_db(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), &h) < 0 ||
	    !r->app->signer || audit_head_sign(r->app->signer, &h) < 0 ||
	    !(j = audit_head_to_json(&h))) {
		log_event(LOG_ERROR, r->id, "audit_head_failed", "reason=bad_head");
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	req_reply_json(r, 200, j);
}

void api_audit_head(struct req *r, const struct api_op *op)
{
	(void)op;
	if (api_call_no_query(r) < 0)
		return;
	if (!r->app->signer) {
		req_reply_error(r, 503, "unavailable", "audit heads are not signed by this server",
				NULL);
		return;
	}
	if (!db_submit(r->app->pool, "audit_head", 0, NULL, api_audit_head_done, r, 0))
		req_reply_unavailable(r, 1);
}

void api_audit_keys(struct req *r, const struct api_op *op)
{
	json_t *keys, *body;

	(void)op;
	if (api_call_no_query(r) < 0)
		return;
	keys = json_array();
	if (keys && r->app->signer)
		json_array_append_new(keys, json_pack("{s:s, s:s, s:s}", "key_id",
						      audit_signer_key_id(r->app->signer),
						      "algorithm", "ed25519", "public_key_pem",
						      audit_signer_public_pem(r->app->signer)));
	body = keys ? json_pack("{s:o}", "keys", keys) : NULL;
	if (!body) {
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	req_reply_json(r, 200, body);
}
