/*
 * api_reports.c - GET /v1/reports/follow-up: the supervisors' follow-up
 * report, as JSON or (Accept: text/csv) as CSV with a header row.
 *
 * Owns: choosing the representation, and the CSV rendering of the JSON the
 * database computed (api_report_follow_up in sql/functions/20_reports.sql
 * does all counting and percentiles). The query's schema is api_query_report.
 * Must never: compute figures in C (the database is the one source), or let a
 * label start a spreadsheet formula in the CSV.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "api.h"
#include "api_call.h"
#include "jsonv.h"
#include "request.h"

/* Does the Accept header ask for CSV (and not JSON first)? A plain substring
 * test is enough here: we offer exactly two representations. */
static int wants_csv(const struct req *r)
{
	const char *accept = req_header(r, "Accept");
	const char *csv, *json;

	if (!accept)
		return 0;
	csv = strcasestr(accept, "text/csv");
	json = strcasestr(accept, "application/json");
	return csv && (!json || csv < json);
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote or line
 * break; a leading = + - @ is prefixed with ' so a spreadsheet shows it as
 * text instead of evaluating it. */
static void csv_field(struct evbuffer *out, const char *s)
{
	const char *p;

	if (!s)
		return;
	if (strpbrk(s, ",\"\r\n") || strchr("=+-@", s[0]) != NULL) {
		evbuffer_add(out, "\"", 1);
		if (s[0] && strchr("=+-@", s[0]))
			evbuffer_add(out, "'", 1);
		for (p = s; *p; p++) {
			if (*p == '"')
				evbuffer_add(out, "\"\"", 2);
			else
				evbuffer_add(out, p, 1);
		}
		evbuffer_add(out, "\"", 1);
		return;
	}
	evbuffer_add(out, s, strlen(s));
}

/* Numbers as the JSON shows them; null stays an empty field. */
static void csv_number(struct evbuffer *out, const json_t *v)
{
	if (json_is_integer(v))
		evbuffer_add_printf(out, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		evbuffer_add_printf(out, "%.15g", json_real_value(v));
}

static const char *const csv_metrics[] = { "met", "on_time", "missed", "on_time_rate",
					   "median_seconds", "p90_seconds" };
#define N_METRICS (sizeof(csv_metrics) / sizeof(csv_metrics[0]))

static void report_render(struct req *r, int status, json_t *body, void *arg)
{
	struct evbuffer *out;
	const json_t *groups = json_object_get(body, "groups");
	const json_t *g;
	size_t i, k;
	const char *sections[2] = { "accept", "first_contact" };
	size_t s;
	char *text;
	size_t len;

	(void)arg;
	if (!wants_csv(r)) {
		req_reply_json(r, status, body);
		return;
	}
	out = evbuffer_new();
	if (!out) {
		json_decref(body);
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	evbuffer_add_printf(out, "group_by,key,label,offers,assignments");
	for (s = 0; s < 2; s++)
		for (k = 0; k < N_METRICS; k++)
			evbuffer_add_printf(out, ",%s_%s", sections[s], csv_metrics[k]);
	evbuffer_add(out, "\r\n", 2);
	json_array_foreach(groups, i, g) {
		csv_field(out, json_string_value(json_object_get(body, "group_by")));
		evbuffer_add(out, ",", 1);
		csv_field(out, json_string_value(json_object_get(g, "key")));
		evbuffer_add(out, ",", 1);
		csv_field(out, json_string_value(json_object_get(g, "label")));
		evbuffer_add(out, ",", 1);
		csv_number(out, json_object_get(g, "offers"));
		evbuffer_add(out, ",", 1);
		csv_number(out, json_object_get(g, "assignments"));
		for (s = 0; s < 2; s++) {
			const json_t *sec = json_object_get(g, sections[s]);

			for (k = 0; k < N_METRICS; k++) {
				evbuffer_add(out, ",", 1);
				csv_number(out, json_object_get(sec, csv_metrics[k]));
			}
		}
		evbuffer_add(out, "\r\n", 2);
	}
	json_decref(body);
	len = evbuffer_get_length(out);
	text = (char *)evbuffer_pullup(out, -1);
	req_reply_raw(r, status, "text/csv; charset=utf-8; header=present", text, len);
	evbuffer_free(out);
}

void api_report_follow_up(struct req *r, const struct api_op *op)
{
	json_t *args = json_object();

	if (!args || api_call_query(r, op->query, args) < 0) {
		json_decref(args);
		if (!args)
			req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	api_call_run_render(r, op->stmt, args, report_render, NULL);
}
