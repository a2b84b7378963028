/*
 * api_assignments.c - the worker's and supervisor's side of assignments:
 * list, get, and the state machine's actions (accept, decline, events, hold,
 * resume, complete, fail, reassign).
 *
 * Owns: the action bodies' schemas and sealing the free-text `detail` of
 * events and outcomes before it goes to the database.
 * Must never: decide whether a transition is allowed (the database's
 * transition table does, so two daemons agree) or whether the caller may see
 * the assignment (the SQL answers 404 outside the caller's scope).
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_call.h"
#include "app.h"
#include "jsonv.h"
#include "keyring.h"
#include "log.h"
#include "request.h"
#include "router.h"

#define JV_END { NULL, 0, 0, 0, 0, NULL, NULL, 0 }

static int is_event_type(const char *s, size_t len)
{
	static const char *const set[] = {"contact_attempt", "contact_made", "service_delivered",
					  "note", NULL};
	for (const char *const *p = set; *p; p++)
		if (strlen(*p) == len && memcmp(*p, s, len) == 0)
			return 0;
	return -1;
}

static int is_outcome(const char *s, size_t len)
{
	static const char *const set[] = {"linked_to_services", "engaged", "declined_services",
					  "other", NULL};
	for (const char *const *p = set; *p; p++)
		if (strlen(*p) == len && memcmp(*p, s, len) == 0)
			return 0;
	return -1;
}

static int is_fail_reason(const char *s, size_t len)
{
	static const char *const set[] = {"lost_contact", "client_declined", "detained", "other",
					  NULL};
	for (const char *const *p = set; *p; p++)
		if (strlen(*p) == len && memcmp(*p, s, len) == 0)
			return 0;
	return -1;
}

static const struct jv_field empty_fields[] = { JV_END };

static const struct jv_field reason_fields[] = {
	{ "reason", JV_STR, JV_REQUIRED, 1, 500, jsonv_is_text, NULL, 0 },
	JV_END,
};

static const struct jv_field event_fields[] = {
	{ "type", JV_STR, JV_REQUIRED, 1, 32, is_event_type, NULL, 0 },
	{ "at", JV_STR, 0, 20, 40, jsonv_is_time, NULL, 0 },
	{ "outcome", JV_STR, 0, 1, 64, jsonv_is_text, NULL, 0 },
	{ "detail", JV_STR, 0, 1, 2000, jsonv_is_text, NULL, 0 },
	JV_END,
};

static const struct jv_field complete_fields[] = {
	{ "outcome", JV_STR, JV_REQUIRED, 1, 32, is_outcome, NULL, 0 },
	{ "detail", JV_STR, 0, 1, 2000, jsonv_is_text, NULL, 0 },
	JV_END,
};

static const struct jv_field fail_fields[] = {
	{ "reason", JV_STR, JV_REQUIRED, 1, 32, is_fail_reason, NULL, 0 },
	{ "detail", JV_STR, 0, 1, 2000, jsonv_is_text, NULL, 0 },
	JV_END,
};

static const struct jv_field reassign_fields[] = {
	{ "worker_id", JV_STR, JV_REQUIRED, 36, 36, jsonv_is_uuid, NULL, 0 },
	/* v1.1 makes it required and records it (issue 11); accepted here so the
	 * web pages can send it already. */
	{ "reason", JV_STR, 0, 1, 500, jsonv_is_text, NULL, 0 },
	JV_END,
};

static const struct jv_qparam list_params[] = {
	{ "status", JQ_STR, jsonv_is_assignment_status },
	{ "overdue", JQ_BOOL, NULL },
	{ "limit", JQ_LIMIT, NULL },
	{ "cursor", JQ_CURSOR, NULL },
	{ NULL, 0, NULL },
};

/* "detail" is free text about a client: only its sealed form leaves here. */
static int seal_detail(struct req *r, json_t *args)
{
	json_t *d = json_object_get(args, "detail");
	char *sealed;

	if (!d)
		return 0;
	sealed = r->app && r->app->keys ?
		keyring_seal(r->app->keys, json_string_value(d), json_string_length(d)) : NULL;
	if (!sealed) {
		log_event(LOG_ERROR, r->id, "seal_failed", "route=%s", r->route->name);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return -1;
	}
	json_object_set_new(args, "detail_sealed", json_string(sealed));
	json_object_del(args, "detail");
	free(sealed);
	return 0;
}

/* Every action has the same shape: id + body -> one SQL function. */
static void assignment_action(struct req *r, const struct jv_field *fields, int empty_ok,
			      int sealed_detail, const char *stmt)
{
	json_t *args = api_call_body_with_id(r, fields, empty_ok);

	if (!args)
		return;
	if (sealed_detail && seal_detail(r, args) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, stmt, args);
}

void api_assignment_list(struct req *r)
{
	json_t *args = json_object();

	if (api_call_query(r, list_params, args) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, "api_assignment_list", args);
}

void api_assignment_get(struct req *r)
{
	json_t *args = json_object();

	if (api_call_no_query(r) < 0 || api_call_path_id(r, 0, args, "id") < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, "api_assignment_get", args);
}

void api_assignment_accept(struct req *r)
{
	assignment_action(r, empty_fields, 1, 0, "api_assignment_accept");
}

void api_assignment_decline(struct req *r)
{
	assignment_action(r, reason_fields, 0, 0, "api_assignment_decline");
}

void api_assignment_event(struct req *r)
{
	assignment_action(r, event_fields, 0, 1, "api_assignment_event");
}

void api_assignment_hold(struct req *r)
{
	assignment_action(r, reason_fields, 0, 0, "api_assignment_hold");
}

void api_assignment_resume(struct req *r)
{
	assignment_action(r, empty_fields, 1, 0, "api_assignment_resume");
}

void api_assignment_complete(struct req *r)
{
	assignment_action(r, complete_fields, 0, 1, "api_assignment_complete");
}

void api_assignment_fail(struct req *r)
{
	assignment_action(r, fail_fields, 0, 1, "api_assignment_fail");
}

void api_assignment_reassign(struct req *r)
{
	assignment_action(r, reassign_fields, 0, 0, "api_assignment_reassign");
}
