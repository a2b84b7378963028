/*
 * api_followup.c - working calendars, the deadline policies' list and an
 * assignment's history (the "follow-up, continued" part of the protocol).
 *
 * Owns: these requests' schemas: the shape of a calendar (a zone name, an
 * object of day -> list of HH:MM, a list of dates) is checked here; what only
 * the database can judge (the zone exists, ranges ascend, dates are real,
 * at most 366 holidays a year) is checked by api_calendar_put and answers
 * 422 with the field.
 * Must never: decide scope (the SQL answers 404 outside it); echo input in an
 * error.
 */
#include <string.h>

#include "api.h"
#include "api_call.h"
#include "jsonv.h"
#include "request.h"

#define JV_END { NULL, 0, 0, 0, 0, NULL, NULL, 0 }
#define DAY(d) { d, JV_STR_ARRAY, 0, 0, 16, NULL, NULL, 8 }

static const struct jv_field hours_fields[] = {
	DAY("mon"), DAY("tue"), DAY("wed"), DAY("thu"), DAY("fri"), DAY("sat"), DAY("sun"),
	JV_END,
};

/* Up to ten years of holidays in one calendar. */
static const struct jv_field calendar_fields[] = {
	{ "timezone", JV_STR, JV_REQUIRED, 1, 64, jsonv_is_printable, NULL, 0 },
	{ "hours", JV_OBJ, JV_REQUIRED, 0, 0, NULL, hours_fields, 0 },
	{ "holidays", JV_STR_ARRAY, 0, 0, 3660, jsonv_is_printable, NULL, 32 },
	JV_END,
};

static const struct jv_qparam history_params[] = {
	{ "limit", JQ_LIMIT, NULL },
	{ "cursor", JQ_CURSOR, NULL },
	{ NULL, 0, NULL },
};

void api_calendar_put(struct req *r)
{
	json_t *args;

	if (api_call_no_query(r) < 0)
		return;
	args = api_call_body_with_id(r, calendar_fields, 0);
	if (args)
		api_call_run(r, "api_calendar_put", args);
}

void api_deadline_policy_list(struct req *r)
{
	if (api_call_no_query(r) < 0)
		return;
	api_call_run(r, "api_deadline_policy_list", json_object());
}

void api_assignment_history(struct req *r)
{
	json_t *args = json_object();

	if (api_call_path_id(r, 0, args, "id") < 0 || api_call_query(r, history_params, args) < 0) {
		json_decref(args);
		return;
	}
	api_call_run(r, "api_assignment_history", args);
}
