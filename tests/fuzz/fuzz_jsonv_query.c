/*
 * fuzz_jsonv_query.c - libFuzzer target: a query string through jsonv_query
 * with a parameter table holding every kind the daemon's list endpoints use
 * (JQ_STR with format checks, JQ_ENUM, JQ_LIMIT, JQ_BOOL, JQ_CURSOR).
 *
 * Owns: nothing but the fuzz harness. Must never: print the input or write
 * files; every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants: on success every member of args is a declared parameter of the
 * right JSON type, limit lies in 1..200, strings are valid UTF-8 (jansson
 * built them); on failure the error has a code and a well-formed pointer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jsonv.h"
#include "vocab.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The union of the list endpoints' tables (referrals, assignments, audit). */
static const struct jv_qparam fuzz_params[] = {
	JQP_ENUM("status", vocab_referral_status),
	JQP_ENUM("astatus", vocab_assignment_status),
	JQP_STR("since", jsonv_is_time),
	JQP_STR("from", jsonv_is_time),
	JQP_STR("to", jsonv_is_time),
	JQP_STR("starts_on", jsonv_is_date),
	JQP_STR("worker_id", jsonv_is_uuid),
	JQP_ENUM("kind", vocab_need),
	JQP_STR("region", jsonv_is_slug),
	JQP_ENUM("group_by", vocab_report_group_by),
	JQP_STR("free", NULL),
	JQP_LIMIT,
	JQP_BOOL("overdue"),
	JQP_CURSOR,
	JQ_END,
};

static const struct jv_qparam *fuzz_param(const char *name)
{
	for (const struct jv_qparam *p = fuzz_params; p->name; p++)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jv_error e;
	json_t *args;
	char *q;
	const char *key;
	json_t *v;

	/* The daemon passes the URI's query: a C string, so no NUL inside. */
	if (size > 8192 || memchr(data, '\0', size))
		return 0;
	q = malloc(size + 1);
	if (q == NULL)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	args = json_object();
	memset(&e, 0, sizeof(e));
	if (jsonv_query(q, fuzz_params, args, &e) == 0) {
		json_object_foreach(args, key, v) {
			const struct jv_qparam *p = fuzz_param(key);

			if (p == NULL)
				abort();
			switch (p->kind) {
			case JQ_LIMIT:
				if (!json_is_integer(v) || json_integer_value(v) < 1 ||
				    json_integer_value(v) > 200)
					abort();
				break;
			case JQ_BOOL:
				if (!json_is_boolean(v))
					abort();
				break;
			case JQ_STR:
			case JQ_CURSOR:
				if (!json_is_string(v) || json_string_length(v) == 0)
					abort();
				break;
			case JQ_ENUM:
				/* Only a value of its set gets through. */
				if (!json_is_string(v) ||
				    !vocab_has(p->set, json_string_value(v), json_string_length(v)))
					abort();
				break;
			}
		}
	} else {
		if (e.code == NULL || e.message == NULL || e.status != 400)
			abort();
		if (memchr(e.field, '\0', sizeof(e.field)) == NULL)
			abort();
		if (e.field[0] != '\0' && e.field[0] != '/')
			abort();
	}
	json_decref(args);
	free(q);
	return 0;
}
