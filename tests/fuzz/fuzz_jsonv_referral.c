/*
 * fuzz_jsonv_referral.c - libFuzzer target: a request body through
 * jsonv_parse, then jsonv_validate against the referral schema the daemon
 * uses for POST /v1/referrals, then the cross-field rules.
 *
 * Owns: nothing but the fuzz harness. Must never: print the input or write
 * files; every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants checked beyond "no crash": an error always has a status and a
 * code, its field pointer is NUL-terminated and starts with '/' (or is
 * empty); a body accepted once is accepted again after a round trip through
 * json_dumps (what the daemon canonicalises for idempotency).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api_schema.h"
#include "jsonv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The daemon's default max_body_size (64 KiB). */
#define FUZZ_MAX_BODY (64 * 1024)

static void fuzz_check_error(const struct jv_error *e)
{
	/* A refusal with no code would reach the client as an empty error. */
	if (e->code == NULL || e->message == NULL || (e->status != 400 && e->status != 422 &&
						     e->status != 413))
		abort();
	if (memchr(e->field, '\0', sizeof(e->field)) == NULL)
		abort();
	if (e->field[0] != '\0' && e->field[0] != '/')
		abort();
}

static int fuzz_validate(json_t *j, struct jv_error *e)
{
	memset(e, 0, sizeof(*e));
	if (jsonv_validate(j, api_body_referral, "", e) != 0) {
		fuzz_check_error(e);
		return -1;
	}
	memset(e, 0, sizeof(*e));
	if (api_referral_rules(j, e) != 0) {
		fuzz_check_error(e);
		return -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jv_error e;
	json_t *j, *again = NULL;
	char *text = NULL;

	memset(&e, 0, sizeof(e));
	j = jsonv_parse(data, size, FUZZ_MAX_BODY, &e);
	if (j == NULL) {
		fuzz_check_error(&e);
		return 0;
	}
	if (!json_is_object(j))
		abort();        /* jsonv_parse promises a top-level object */
	if (fuzz_validate(j, &e) == 0) {
		/* Accepted: the canonical form must parse and validate too. */
		text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
		if (text == NULL)
			abort();
		memset(&e, 0, sizeof(e));
		again = jsonv_parse(text, strlen(text), FUZZ_MAX_BODY, &e);
		if (again == NULL || fuzz_validate(again, &e) != 0)
			abort();
	}
	free(text);
	json_decref(again);
	json_decref(j);
	return 0;
}
