/*
 * fuzz_limits.c - libFuzzer target for the [limits] spec parser
 * (limit_spec_parse: "off" or "COUNT/DURATION") and, driven by the same
 * bytes, the bounded limit table it configures.
 *
 * Owns: nothing but the harness. Must never: print the input or write files.
 *
 * Invariants:
 * - an accepted spec is "off" (not on) or COUNT in 1..1000000 with a window
 *   of 1 s..1 d, and printing it back as "COUNT/WINDOWs" parses to the same;
 * - a refused spec leaves a reason and an off spec;
 * - with the spec on, hitting one key COUNT times blocks it, for at most the
 *   window; the table never holds more entries than it has slots.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct limit_spec spec, again;
	char text[64], back[64], err[200];
	struct ratelimit *rl;
	uint32_t left = 0;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if (limit_spec_parse(text, &spec, err, sizeof(err)) < 0) {
		if (!err[0] || spec.on)
			abort();
		return 0;
	}
	if (!spec.on) {
		if (strcmp(text, "off") != 0)
			abort();
		return 0;
	}
	if (spec.count < 1 || spec.count > 1000000 || spec.window_s < 1 || spec.window_s > 86400)
		abort();
	snprintf(back, sizeof(back), "%u/%us", spec.count, spec.window_s);
	if (limit_spec_parse(back, &again, err, sizeof(err)) < 0 || again.on != 1 ||
	    again.count != spec.count || again.window_s != spec.window_s)
		abort();
	if (spec.count > 2000)
		return 0;
	rl = ratelimit_new(64);
	if (!rl)
		abort();
	for (uint32_t i = 0; i < spec.count; i++)
		left = ratelimit_hit(rl, text, size, &spec, 1000);
	if (left == 0 || left > spec.window_s)
		abort();
	if (ratelimit_blocked(rl, text, size, &spec, 1000 + spec.window_s) != 0)
		abort();
	for (uint32_t i = 0; i < 200; i++)
		ratelimit_hit(rl, &i, sizeof(i), &spec, 1000);
	if (ratelimit_used(rl) > 64)
		abort();
	ratelimit_free(rl);
	return 0;
}
