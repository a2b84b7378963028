/*
 * jsonv.h - strict JSON input: parsing with caps, and table-driven validation
 * of request bodies and query strings against the protocol's formats.
 *
 * Owns: the error codes of input validation (malformed_json, duplicate_key,
 * nesting_too_deep, unknown_field, missing_field, invalid_type, invalid_value,
 * invalid_cursor) and the JSON pointer naming the field at fault.
 * Must never: put a client's value into an error (only field names, which come
 * from our own tables or are shown only when they are plain identifiers); do I/O.
 */
#ifndef REFD_JSONV_H
#define REFD_JSONV_H

#include <stddef.h>
#include <jansson.h>

#define JSONV_MAX_DEPTH 8

/* Why an input was refused. code and message are static strings. */
struct jv_error {
	int status;            /* 400, or 422 for business refusals found here */
	const char *code;
	const char *message;
	char field[160];       /* JSON pointer ("/client/uic"), "" when none */
};

/* A format check for a string (already length-checked): 0 = valid. */
typedef int (*jv_check)(const char *s, size_t len);

enum jv_kind {
	JV_STR = 1,            /* min/max: length in code points; check optional */
	JV_INT,                /* min/max: inclusive range */
	JV_BOOL,
	JV_OBJ,                /* sub: the allowed members */
	JV_STR_ARRAY,          /* min/max: item count; check (+ item_max) per item */
	JV_OBJ_ANY,            /* any object of strings (not used for client data) */
};

#define JV_REQUIRED 0x1
#define JV_UNIQUE   0x2    /* JV_STR_ARRAY: no repeated items */

struct jv_field {
	const char *name;      /* NULL terminates a table */
	enum jv_kind kind;
	unsigned flags;
	long long min, max;
	jv_check check;
	const struct jv_field *sub;
	long long item_max;    /* JV_STR_ARRAY: max code points per item (0 = 256) */
};

/* Parse a body: size cap, duplicate keys, trailing garbage, depth cap, and a
 * top-level object. Returns a new reference or NULL with *e filled. */
json_t *jsonv_parse(const void *buf, size_t len, size_t max_len, struct jv_error *e);

/* Deepest nesting of v (a scalar is depth 0, {} is 1). If it exceeds max,
 * returns -1 and writes the pointer of the first too-deep container into ptr. */
int jsonv_depth_check(const json_t *v, int max, char *ptr, size_t ptrlen);

/* Validate an object against a table: unknown members first, then each
 * declared member in table order. prefix is the object's own pointer ("" at the
 * top). 0 = valid, -1 with *e filled. */
int jsonv_validate(const json_t *obj, const struct jv_field *fields, const char *prefix,
		   struct jv_error *e);

/* Query strings: every parameter must be declared; values are validated and
 * copied into args (ints and bools converted). "limit" is clamped to 200. */
enum jv_qkind { JQ_STR = 1, JQ_LIMIT, JQ_BOOL, JQ_CURSOR };
struct jv_qparam {
	const char *name;      /* NULL terminates */
	enum jv_qkind kind;
	jv_check check;        /* JQ_STR */
};
int jsonv_query(const char *query, const struct jv_qparam *params, json_t *args,
		struct jv_error *e);

/* Fill *e; field may be NULL. Returns -1 for tail calls. */
int jsonv_fail(struct jv_error *e, int status, const char *code, const char *message,
	       const char *field);

/* Number of UTF-8 code points in s (jansson has already checked validity). */
size_t jsonv_utf8_len(const char *s, size_t len);

/* Format checks (0 = valid). */
int jsonv_is_uic(const char *s, size_t len);
int jsonv_is_printable(const char *s, size_t len);     /* ASCII 0x20..0x7e */
int jsonv_is_text(const char *s, size_t len);          /* no control chars but \t \n \r */
int jsonv_is_lang(const char *s, size_t len);
int jsonv_is_slug(const char *s, size_t len);
int jsonv_is_phone(const char *s, size_t len);
int jsonv_is_need(const char *s, size_t len);
int jsonv_is_urgency(const char *s, size_t len);
int jsonv_is_gender(const char *s, size_t len);
int jsonv_is_kind(const char *s, size_t len);           /* same set as need */
int jsonv_is_date(const char *s, size_t len);           /* YYYY-MM-DD, a real day */
int jsonv_is_time(const char *s, size_t len);           /* RFC 3339 date-time */
int jsonv_is_uuid(const char *s, size_t len);
int jsonv_is_duration(const char *s, size_t len);       /* ISO 8601 PnDTnHnMnS subset */
int jsonv_is_handle(const char *s, size_t len);         /* [A-Za-z0-9._-] */
int jsonv_is_cursor(const char *s, size_t len);         /* base64url-ish, opaque */
int jsonv_is_idem_key(const char *s, size_t len);       /* 1-128 printable */
int jsonv_is_https_url(const char *s, size_t len);
int jsonv_is_event_name(const char *s, size_t len);     /* [a-z_.]+ */
int jsonv_is_role(const char *s, size_t len);
int jsonv_is_referral_status(const char *s, size_t len);
int jsonv_is_assignment_status(const char *s, size_t len);

/* Calendar year of now (UTC), for birth_year's upper bound. */
int jsonv_current_year(void);

#endif
