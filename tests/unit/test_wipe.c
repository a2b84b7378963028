/*
 * test_wipe.c - daemon/wipe.c: after wipe_install() jansson frees through
 * wipe_free (json_get_alloc_funcs tells), and a value carrying a canary goes
 * through those hooks cleanly (under make asan: wipe_free writes exactly the
 * block's usable size, no more). The cleansing itself is not observed: that
 * would mean reading freed heap, which is undefined (and what ASan stops).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "wipe.h"

static void test_jansson_frees_through_wipe_free(void **state)
{
	json_malloc_t m = NULL;
	json_free_t f = NULL;

	(void)state;
	wipe_install();
	json_get_alloc_funcs(&m, &f);
	assert_ptr_equal(f, wipe_free);
	assert_ptr_equal(m, malloc);
	/* A value with a canary goes and comes back through those hooks. */
	json_t *v = json_pack("{ss}", "contact", "+996555123456");
	assert_non_null(v);
	json_decref(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jansson_frees_through_wipe_free),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
