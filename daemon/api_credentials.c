/*
 * api_credentials.c - seeing and stopping credentials (protocol v1.1
 * "Credentials"): the token list, revoking every token of a subject,
 * disabling offices and supervisors, unbinding an office's certificate.
 *
 * Owns: these requests' schemas.
 * Must never: return a token or its hash (the SQL side returns neither);
 * decide scope itself (the SQL functions answer 404 outside it).
 */
#include <string.h>

#include "api.h"
#include "api_call.h"
#include "jsonv.h"
#include "request.h"

#define JV_END { NULL, 0, 0, 0, 0, NULL, NULL, 0 }

static const struct jv_qparam token_list_params[] = {
	{ "subject_id", JQ_STR, jsonv_is_uuid },
	{ "limit", JQ_LIMIT, NULL },
	{ "cursor", JQ_CURSOR, NULL },
	{ NULL, 0, NULL },
};

static const struct jv_field revoke_subject_fields[] = {
	{ "subject_id", JV_STR, JV_REQUIRED, 36, 36, jsonv_is_uuid, NULL, 0 },
	JV_END,
};

static const struct jv_field active_fields[] = {
	{ "active", JV_BOOL, JV_REQUIRED, 0, 0, NULL, NULL, 0 },
	JV_END,
};

void api_token_list(struct req *r)
{
	json_t *args = json_object();

	if (api_call_query(r, token_list_params, args) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, "api_token_list", args);
}

void api_token_revoke_subject(struct req *r)
{
	json_t *args;

	if (api_call_no_query(r) < 0)
		return;
	args = api_call_body(r, revoke_subject_fields, 0);
	if (args)
		api_call_run(r, "api_token_revoke_subject", args);
}

void api_office_patch(struct req *r)
{
	json_t *args = api_call_body_with_id(r, active_fields, 0);

	if (args)
		api_call_run(r, "api_office_patch", args);
}

void api_supervisor_patch(struct req *r)
{
	json_t *args = api_call_body_with_id(r, active_fields, 0);

	if (args)
		api_call_run(r, "api_supervisor_patch", args);
}

void api_office_certificate_delete(struct req *r)
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
	api_call_run(r, "api_office_certificate_delete", args);
}
