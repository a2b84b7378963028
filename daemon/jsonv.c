/*
 * jsonv.c - strict JSON input for the API: parse with caps, then validate
 * against small tables that say, per member, its type, range and format.
 *
 * Owns: the error codes of input validation (malformed_json, duplicate_key,
 * nesting_too_deep, unknown_field, missing_field, invalid_type, invalid_value,
 * invalid_cursor) and the JSON pointer naming the field at fault; the field
 * kinds (JV_ENUM and JQ_ENUM check a value against a vocab.c set).
 * Must never: copy a client's value into an error or a log line. Field names
 * from the client (unknown members) are shown only when they are plain
 * identifiers, so a stray value pasted as a key cannot be echoed back.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "jsonv.h"
#include "vocab.h"

int jsonv_fail(struct jv_error *e, int status, const char *code, const char *message,
	       const char *field)
{
	e->status = status;
	e->code = code;
	e->message = message;
	e->field[0] = '\0';
	if (field) {
		size_t n = strlen(field);
		if (n >= sizeof(e->field))
			n = sizeof(e->field) - 1;
		memcpy(e->field, field, n);
		e->field[n] = '\0';
	}
	return -1;
}

size_t jsonv_utf8_len(const char *s, size_t len)
{
	size_t n = 0;

	/* Count bytes that do not continue a sequence (10xxxxxx). */
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			n++;
	return n;
}

/* Append "/name" to a pointer, escaping '~' and '/' as RFC 6901 says. */
static void ptr_append(char *dst, size_t dstlen, const char *prefix, const char *name)
{
	size_t o = 0;

	o = (size_t)snprintf(dst, dstlen, "%s/", prefix);
	if (o >= dstlen)
		goto trunc;
	for (const char *p = name; *p; p++) {
		const char *rep = NULL;
		char one[2] = {*p, '\0'};

		if (*p == '~')
			rep = "~0";
		else if (*p == '/')
			rep = "~1";
		else
			rep = one;
		size_t rl = strlen(rep);
		if (o + rl >= dstlen)
			goto trunc;
		memcpy(dst + o, rep, rl);
		o += rl;
	}
	dst[o] = '\0';
	return;
trunc:
	dst[dstlen - 1] = '\0';
}

/* A client-supplied key is named in an error only if it looks like one of
 * our field names (lowercase letters and '_', no digits); anything else could
 * be data pasted in the wrong place (a UIC or a phone number as a key). */
static int key_is_nameish(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n > 40 || !(k[0] >= 'a' && k[0] <= 'z'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (!((k[i] >= 'a' && k[i] <= 'z') || k[i] == '_'))
			return 0;
	}
	return 1;
}

static int depth_walk(const json_t *v, int depth, int max, char *ptr, size_t ptrlen,
		      const char *here)
{
	char sub[256];

	if (!json_is_object(v) && !json_is_array(v))
		return 0;
	if (depth + 1 > max) {
		snprintf(ptr, ptrlen, "%s", here);
		return -1;
	}
	if (json_is_object(v)) {
		const char *k;
		json_t *m;
		json_object_foreach((json_t *)v, k, m) {
			ptr_append(sub, sizeof(sub), here, key_is_nameish(k) ? k : "-");
			if (depth_walk(m, depth + 1, max, ptr, ptrlen, sub) < 0)
				return -1;
		}
	} else {
		size_t i;
		json_t *m;
		json_array_foreach(v, i, m) {
			snprintf(sub, sizeof(sub), "%s/%zu", here, i);
			if (depth_walk(m, depth + 1, max, ptr, ptrlen, sub) < 0)
				return -1;
		}
	}
	return 0;
}

int jsonv_depth_check(const json_t *v, int max, char *ptr, size_t ptrlen)
{
	if (ptrlen)
		ptr[0] = '\0';
	return depth_walk(v, 0, max, ptr, ptrlen, "");
}

json_t *jsonv_parse(const void *buf, size_t len, size_t max_len, struct jv_error *e)
{
	json_error_t jerr;
	json_t *root = NULL;
	char ptr[160];

	if (len > max_len) {
		jsonv_fail(e, 413, "payload_too_large", "request body too large", NULL);
		return NULL;
	}
	if (len == 0 || buf == NULL) {
		jsonv_fail(e, 400, "malformed_json", "request body must be a JSON object", NULL);
		return NULL;
	}
	/* No JSON_DISABLE_EOF_CHECK: trailing bytes after the value are an error.
	 * Without JSON_ALLOW_NUL, "\u0000" inside strings is refused too. */
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* The parser's reason, as the protocol's code and message; the
		 * last row answers every other reason. */
		static const struct {
			enum json_error_code code;
			const char *error, *message;
		} why[] = {
			{ json_error_duplicate_key, "duplicate_key", "an object has a repeated key" },
			{ json_error_stack_overflow, "nesting_too_deep", "JSON nested too deeply" },
			{ json_error_invalid_utf8, "malformed_json", "body is not valid UTF-8" },
			{ json_error_numeric_overflow, "malformed_json", "a number is out of range" },
			{ json_error_unknown, "malformed_json", "body is not valid JSON" },
		};
		size_t i = 0;

		while (i + 1 < sizeof(why) / sizeof(why[0]) && why[i].code != json_error_code(&jerr))
			i++;
		jsonv_fail(e, 400, why[i].error, why[i].message, NULL);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		jsonv_fail(e, 400, "invalid_type", "body must be a JSON object", "");
		return NULL;
	}
	if (jsonv_depth_check(root, JSONV_MAX_DEPTH, ptr, sizeof(ptr)) < 0) {
		json_decref(root);
		jsonv_fail(e, 400, "nesting_too_deep", "JSON nested too deeply", ptr);
		return NULL;
	}
	return root;
}

static int check_string(const json_t *v, const struct jv_field *f, const char *ptr,
			struct jv_error *e)
{
	const char *s = json_string_value(v);
	size_t bl = json_string_length(v);
	size_t cl;

	if (!json_is_string(v))
		return jsonv_fail(e, 400, "invalid_type", "must be a string", ptr);
	cl = jsonv_utf8_len(s, bl);
	/* A string holding NUL cannot get here (jansson refuses \u0000), but keep
	 * the byte length honest for the checks that use strlen semantics. */
	if (strlen(s) != bl)
		return jsonv_fail(e, 400, "invalid_value", "must not contain NUL", ptr);
	if ((long long)cl < f->min || (long long)cl > f->max)
		return jsonv_fail(e, 400, "invalid_value", "length out of range", ptr);
	if (f->check && f->check(s, bl) != 0)
		return jsonv_fail(e, 400, "invalid_value", "invalid format", ptr);
	if (f->set && !vocab_has(f->set, s, bl))
		return jsonv_fail(e, 400, "invalid_value", "invalid format", ptr);
	return 0;
}

static int check_array(const json_t *v, const struct jv_field *f, const char *ptr,
		       struct jv_error *e)
{
	size_t i, j, n;
	json_t *it;
	char sub[200];
	long long imax = f->item_max > 0 ? f->item_max : 256;

	if (!json_is_array(v))
		return jsonv_fail(e, 400, "invalid_type", "must be an array", ptr);
	n = json_array_size(v);
	if ((long long)n < f->min || (long long)n > f->max)
		return jsonv_fail(e, 400, "invalid_value", "number of items out of range", ptr);
	json_array_foreach(v, i, it) {
		struct jv_field one = {.name = "", .kind = JV_STR, .min = 1, .max = imax,
				       .check = f->check, .set = f->set};

		snprintf(sub, sizeof(sub), "%s/%zu", ptr, i);
		if (check_string(it, &one, sub, e) < 0)
			return -1;
		if (f->flags & JV_UNIQUE) {
			for (j = 0; j < i; j++)
				if (json_equal(it, json_array_get(v, j)))
					return jsonv_fail(e, 400, "invalid_value",
							  "repeated item", sub);
		}
	}
	return 0;
}

static int check_member(const json_t *v, const struct jv_field *f, const char *ptr,
			struct jv_error *e)
{
	switch (f->kind) {
	case JV_STR:
	case JV_ENUM:
		return check_string(v, f, ptr, e);
	case JV_INT: {
		json_int_t x;
		if (!json_is_integer(v))
			return jsonv_fail(e, 400, "invalid_type", "must be an integer", ptr);
		x = json_integer_value(v);
		if (x < f->min || x > f->max)
			return jsonv_fail(e, 400, "invalid_value", "out of range", ptr);
		return 0;
	}
	case JV_BOOL:
		if (!json_is_boolean(v))
			return jsonv_fail(e, 400, "invalid_type", "must be a boolean", ptr);
		return 0;
	case JV_OBJ:
		if (!json_is_object(v))
			return jsonv_fail(e, 400, "invalid_type", "must be an object", ptr);
		return jsonv_validate(v, f->sub, ptr, e);
	case JV_STR_ARRAY:
		return check_array(v, f, ptr, e);
	case JV_OBJ_ANY:
		if (!json_is_object(v))
			return jsonv_fail(e, 400, "invalid_type", "must be an object", ptr);
		return 0;
	}
	return jsonv_fail(e, 400, "invalid_value", "unsupported field", ptr);
}

int jsonv_validate(const json_t *obj, const struct jv_field *fields, const char *prefix,
		   struct jv_error *e)
{
	const char *k;
	json_t *v;
	char ptr[160];

	if (!json_is_object(obj))
		return jsonv_fail(e, 400, "invalid_type", "must be an object", prefix);
	/* Unknown members first: a misspelt optional field must not pass as
	 * "absent", and a client name field must never be stored anywhere. */
	json_object_foreach((json_t *)obj, k, v) {
		const struct jv_field *f;
		for (f = fields; f->name; f++)
			if (strcmp(f->name, k) == 0)
				break;
		if (!f->name) {
			if (key_is_nameish(k))
				ptr_append(ptr, sizeof(ptr), prefix, k);
			else
				snprintf(ptr, sizeof(ptr), "%s", prefix);
			return jsonv_fail(e, 400, "unknown_field", "unknown field", ptr);
		}
	}
	for (const struct jv_field *f = fields; f->name; f++) {
		ptr_append(ptr, sizeof(ptr), prefix, f->name);
		v = json_object_get(obj, f->name);
		if (!v) {
			if (f->flags & JV_REQUIRED)
				return jsonv_fail(e, 400, "missing_field", "required field missing",
						  ptr);
			continue;
		}
		if (check_member(v, f, ptr, e) < 0)
			return -1;
	}
	return 0;
}

/* ---- query strings ---- */

int jsonv_query(const char *query, const struct jv_qparam *params, json_t *args,
		struct jv_error *e)
{
	struct evkeyvalq q;
	struct evkeyval *kv;
	char ptr[160];
	int rc = -1;

	TAILQ_INIT(&q);
	if (!query || !*query)
		return 0;
	if (evhttp_parse_query_str(query, &q) != 0)
		return jsonv_fail(e, 400, "invalid_value", "malformed query string", NULL);
	TAILQ_FOREACH(kv, &q, next) {
		const struct jv_qparam *p;
		const char *val = kv->value;
		size_t vl = strlen(val);

		for (p = params; p->name; p++)
			if (strcmp(p->name, kv->key) == 0)
				break;
		if (!p->name) {
			if (key_is_nameish(kv->key))
				snprintf(ptr, sizeof(ptr), "/%s", kv->key);
			else
				ptr[0] = '\0';
			jsonv_fail(e, 400, "unknown_field", "unknown query parameter", ptr);
			goto fail;
		}
		snprintf(ptr, sizeof(ptr), "/%s", p->name);
		if (json_object_get(args, p->name)) {
			jsonv_fail(e, 400, "duplicate_key", "repeated query parameter", ptr);
			goto fail;
		}
		switch (p->kind) {
		case JQ_LIMIT: {
			char *end = NULL;
			long long x;
			if (vl == 0 || vl > 9 || !isdigit((unsigned char)val[0])) {
				jsonv_fail(e, 400, "invalid_value", "must be a positive integer", ptr);
				goto fail;
			}
			x = strtoll(val, &end, 10);
			if (*end != '\0' || x < 1) {
				jsonv_fail(e, 400, "invalid_value", "must be a positive integer", ptr);
				goto fail;
			}
			if (x > 200)
				x = 200;  /* the brief: clamped, not refused */
			json_object_set_new(args, p->name, json_integer(x));
			break;
		}
		case JQ_BOOL:
			if (strcmp(val, "true") == 0)
				json_object_set_new(args, p->name, json_true());
			else if (strcmp(val, "false") == 0)
				json_object_set_new(args, p->name, json_false());
			else {
				jsonv_fail(e, 400, "invalid_value", "must be true or false", ptr);
				goto fail;
			}
			break;
		case JQ_CURSOR:
			if (jsonv_is_cursor(val, vl) != 0) {
				jsonv_fail(e, 400, "invalid_cursor", "invalid cursor", ptr);
				goto fail;
			}
			json_object_set_new(args, p->name, json_stringn(val, vl));
			break;
		case JQ_STR:
		case JQ_ENUM:
			if (vl == 0 || vl > 256 || (p->check && p->check(val, vl) != 0) ||
			    (p->set && !vocab_has(p->set, val, vl))) {
				jsonv_fail(e, 400, "invalid_value", "invalid value", ptr);
				goto fail;
			}
			{
				json_t *s = json_stringn(val, vl);
				if (!s) {  /* not UTF-8 */
					jsonv_fail(e, 400, "invalid_value", "invalid value", ptr);
					goto fail;
				}
				json_object_set_new(args, p->name, s);
			}
			break;
		}
	}
	rc = 0;
fail:
	evhttp_clear_headers(&q);
	return rc;
}

/* ---- formats ---- */

enum chars { CH_ALNUM, CH_LOWER }; /* [A-Za-z0-9], [a-z0-9] */

/* 0 when len is within [min, max] and every byte is of cls or in extra. */
static int chars_in(const char *s, size_t len, size_t min, size_t max, enum chars cls,
		    const char *extra)
{
	if (len < min || len > max)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (cls == CH_LOWER ? (isdigit(c) || (c >= 'a' && c <= 'z')) : (c < 128 && isalnum(c)))
			continue;
		if (c && strchr(extra, c))
			continue;
		return -1;
	}
	return 0;
}

int jsonv_is_uic(const char *s, size_t len)
{
	return chars_in(s, len, 4, 32, CH_ALNUM, "-");
}

int jsonv_is_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return -1;
	return 0;
}

int jsonv_is_text(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
			return -1;
	}
	return 0;
}

int jsonv_is_lang(const char *s, size_t len)
{
	return len == 2 && s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z' ? 0 : -1;
}

int jsonv_is_slug(const char *s, size_t len)
{
	return chars_in(s, len, 1, 64, CH_LOWER, "-");
}

int jsonv_is_phone(const char *s, size_t len)
{
	if (len < 9 || len > 16 || s[0] != '+' || s[1] == '0')
		return -1;
	for (size_t i = 1; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return -1;
	return 0;
}

int jsonv_is_hex64(const char *s, size_t len)
{
	if (len != 64)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
	return 0;
}

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

int jsonv_is_date(const char *s, size_t len)
{
	int y, m, d;

	if (len != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	if (digits(s, 4, &y) || digits(s + 5, 2, &m) || digits(s + 8, 2, &d))
		return -1;
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
		return -1;
	return 0;
}

int jsonv_is_time(const char *s, size_t len)
{
	int hh, mm, ss;
	size_t i = 19;

	/* 2026-11-28T09:00:00[.fff](Z|+hh:mm|-hh:mm) */
	if (len < 20 || len > 40 || jsonv_is_date(s, 10) != 0)
		return -1;
	if ((s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
		return -1;
	if (digits(s + 11, 2, &hh) || digits(s + 14, 2, &mm) || digits(s + 17, 2, &ss))
		return -1;
	if (hh > 23 || mm > 59 || ss > 60)
		return -1;
	if (s[i] == '.') {
		size_t st = ++i;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i == st || i - st > 9)
			return -1;
	}
	if (i == len - 1 && (s[i] == 'Z' || s[i] == 'z'))
		return 0;
	if (len - i == 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
		int oh, om;
		if (digits(s + i + 1, 2, &oh) || digits(s + i + 4, 2, &om))
			return -1;
		return oh <= 23 && om <= 59 ? 0 : -1;
	}
	return -1;
}

int jsonv_is_uuid(const char *s, size_t len)
{
	if (len != 36)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -1;
		} else if (!isxdigit((unsigned char)s[i])) {
			return -1;
		}
	}
	return 0;
}

int jsonv_is_duration(const char *s, size_t len)
{
	/* P[nD][T[nH][nM][nS]] with at least one component, whole numbers only,
	 * plus PnW. Enough for deadline policies; months and years are refused
	 * because their length varies. */
	size_t i = 1;
	int any = 0, in_time = 0;
	const char *order = "WDHMS";
	int last = -1;

	if (len < 3 || len > 32 || s[0] != 'P')
		return -1;
	while (i < len) {
		size_t st = i;
		const char *pos;
		int idx;

		if (s[i] == 'T') {
			if (in_time)
				return -1;
			in_time = 1;
			i++;
			if (i == len)
				return -1;
			continue;
		}
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
		if (i == st || i == len || i - st > 9)
			return -1;
		pos = strchr(order, s[i]);
		if (!pos || !s[i])
			return -1;
		idx = (int)(pos - order);
		if ((idx >= 2) != in_time || idx <= last)
			return -1;
		last = idx;
		any = 1;
		i++;
	}
	return any ? 0 : -1;
}

int jsonv_is_handle(const char *s, size_t len)
{
	return chars_in(s, len, 1, 64, CH_ALNUM, "._-");
}

int jsonv_is_cursor(const char *s, size_t len)
{
	return chars_in(s, len, 1, 512, CH_ALNUM, "-_=.:");
}

int jsonv_is_idem_key(const char *s, size_t len)
{
	if (len < 1 || len > 128)
		return -1;
	return jsonv_is_printable(s, len);
}

int jsonv_is_https_url(const char *s, size_t len)
{
	if (len < 9 || len > 2048 || strncmp(s, "https://", 8) != 0)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return -1;
	return 0;
}

int jsonv_is_event_name(const char *s, size_t len)
{
	return chars_in(s, len, 1, 64, CH_LOWER, "._*");
}

int jsonv_current_year(void)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	return tm.tm_year + 1900;
}
