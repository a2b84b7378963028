/*
 * fuzz_audit_head.c - libFuzzer target for the audit head parser
 * (audit_head_parse: the file `referrald --verify-audit --head FILE` reads,
 * which a partner supplies).
 *
 * Owns: nothing but the harness. Must never: print the input or write files;
 * every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants:
 * - an accepted head has seq >= 0, a 64-digit lowercase hex hash, an "at"
 *   of exactly 27 characters (or "" only with seq 0), a key id of 1-64
 *   characters and a signature;
 * - it survives a round trip: to JSON and parsed again, the same head;
 * - its signed message is exactly "seq|hash|at".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_head h, h2;
	char err[128], msg[200], want[200];
	json_t *j;
	char *text;

	if (audit_head_parse((const char *)data, size, &h, err, sizeof(err)) < 0) {
		if (strlen(err) == 0)
			abort();        /* a refusal always says why */
		return 0;
	}
	if (h.seq < 0 || strlen(h.hash) != 64 || !h.has_sig || strlen(h.key_id) == 0 ||
	    strlen(h.key_id) > 64)
		abort();
	if (h.at[0] ? strlen(h.at) != 27 : h.seq != 0)
		abort();
	j = audit_head_to_json(&h);
	if (!j)
		abort();
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text || audit_head_parse(text, strlen(text), &h2, err, sizeof(err)) < 0)
		abort();
	free(text);
	if (h2.seq != h.seq || strcmp(h2.hash, h.hash) || strcmp(h2.at, h.at) ||
	    strcmp(h2.key_id, h.key_id) || memcmp(h2.sig, h.sig, 64))
		abort();
	snprintf(want, sizeof(want), "%lld|%s|%s", h.seq, h.hash, h.at);
	if (audit_head_message(&h, msg, sizeof(msg)) != (int)strlen(want) || strcmp(msg, want))
		abort();
	return 0;
}
