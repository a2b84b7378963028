/*
 * jsonv.h - strict JSON input and table-driven validation.
 * What it owns and must never do: jsonv.c.
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
	JV_ENUM,               /* a string of set; min/max: length, as JV_STR */
	JV_INT,                /* min/max: inclusive range */
	JV_BOOL,
	JV_OBJ,                /* sub: the allowed members */
	JV_STR_ARRAY,          /* min/max: item count; check or set (+ item_max) per item */
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
	const char *const *set;  /* JV_ENUM, JV_STR_ARRAY: allowed values (vocab.h) */
	const struct jv_field *sub;
	long long item_max;    /* JV_STR_ARRAY: max code points per item (0 = 256) */
};

/* Table rows. Lengths are in code points. */
#define JV_END { .name = NULL }
#define JVF_STR(n, fl, lo, hi, chk) \
	{ .name = (n), .kind = JV_STR, .flags = (fl), .min = (lo), .max = (hi), .check = (chk) }
#define JVF_ENUM(n, fl, lo, hi, vals) \
	{ .name = (n), .kind = JV_ENUM, .flags = (fl), .min = (lo), .max = (hi), .set = (vals) }
#define JVF_INT(n, fl, lo, hi) { .name = (n), .kind = JV_INT, .flags = (fl), .min = (lo), .max = (hi) }
#define JVF_BOOL(n, fl) { .name = (n), .kind = JV_BOOL, .flags = (fl) }
#define JVF_OBJ(n, fl, members) { .name = (n), .kind = JV_OBJ, .flags = (fl), .sub = (members) }
#define JVF_ARRAY(n, fl, lo, hi, chk, imax)                                          \
	{ .name = (n), .kind = JV_STR_ARRAY, .flags = (fl), .min = (lo), .max = (hi), \
	  .check = (chk), .item_max = (imax) }
#define JVF_ENUM_ARRAY(n, fl, lo, hi, vals, imax)                                     \
	{ .name = (n), .kind = JV_STR_ARRAY, .flags = (fl), .min = (lo), .max = (hi), \
	  .set = (vals), .item_max = (imax) }

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
enum jv_qkind { JQ_STR = 1, JQ_ENUM, JQ_LIMIT, JQ_BOOL, JQ_CURSOR };
struct jv_qparam {
	const char *name;      /* NULL terminates */
	enum jv_qkind kind;
	jv_check check;        /* JQ_STR */
	const char *const *set;  /* JQ_ENUM */
};
#define JQ_END { .name = NULL }
#define JQP_STR(n, chk) { .name = (n), .kind = JQ_STR, .check = (chk) }
#define JQP_ENUM(n, vals) { .name = (n), .kind = JQ_ENUM, .set = (vals) }
#define JQP_LIMIT { .name = "limit", .kind = JQ_LIMIT }
#define JQP_CURSOR { .name = "cursor", .kind = JQ_CURSOR }
#define JQP_BOOL(n) { .name = (n), .kind = JQ_BOOL }
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
int jsonv_is_date(const char *s, size_t len);           /* YYYY-MM-DD, a real day */
int jsonv_is_time(const char *s, size_t len);           /* RFC 3339 date-time */
int jsonv_is_uuid(const char *s, size_t len);
int jsonv_is_duration(const char *s, size_t len);       /* ISO 8601 PnDTnHnMnS subset */
int jsonv_is_handle(const char *s, size_t len);         /* [A-Za-z0-9._-] */
int jsonv_is_cursor(const char *s, size_t len);         /* base64url-ish, opaque */
int jsonv_is_idem_key(const char *s, size_t len);       /* 1-128 printable */
int jsonv_is_https_url(const char *s, size_t len);
int jsonv_is_event_name(const char *s, size_t len);     /* [a-z_.]+ */
int jsonv_is_hex64(const char *s, size_t len);          /* 64 lowercase hex digits */

/* Calendar year of now (UTC), for birth_year's upper bound. */
int jsonv_current_year(void);

#endif
