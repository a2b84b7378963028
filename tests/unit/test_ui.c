/*
 * test_ui.c - the web pages' small parsers: the canonical form of a typed
 * sign-in code (api_sign_in.c) and Accept-Encoding (ui.c), and the embedded
 * file table (every page the HTML names is in it, compressed and tagged).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "sign_in_code.h"
#include "ui_files.h"

static void test_code_normalise(void **state)
{
	char out[9];

	(void)state;
	assert_int_equal(sign_in_code_normalise("K7QM-4XTD", 9, out), 0);
	assert_string_equal(out, "K7QM4XTD");
	/* Lower case, spaces, the look-alikes O -> 0, I and L -> 1. */
	assert_int_equal(sign_in_code_normalise("k7qm 4xtd", 9, out), 0);
	assert_string_equal(out, "K7QM4XTD");
	assert_int_equal(sign_in_code_normalise("oOiI-lL00", 9, out), 0);
	assert_string_equal(out, "00111100");
	/* U is not in the alphabet; too short, too long, other bytes. */
	assert_int_equal(sign_in_code_normalise("UUUU-UUUU", 9, out), -1);
	assert_int_equal(sign_in_code_normalise("K7QM-4XT", 8, out), -1);
	assert_int_equal(sign_in_code_normalise("K7QM-4XTDA", 10, out), -1);
	assert_int_equal(sign_in_code_normalise("K7QM_4XTD", 9, out), -1);
	assert_int_equal(sign_in_code_normalise("K7QM\0" "4XTD", 9, out), -1);
	assert_int_equal(sign_in_code_normalise("", 0, out), -1);
	assert_int_equal(sign_in_code_normalise("--------", 8, out), -1);
}

static void test_accepts_gzip(void **state)
{
	(void)state;
	assert_true(ui_accepts_gzip("gzip"));
	assert_true(ui_accepts_gzip("gzip, deflate, br"));
	assert_true(ui_accepts_gzip("br;q=1.0, GZIP;q=0.5"));
	assert_true(ui_accepts_gzip("*"));
	assert_true(ui_accepts_gzip("identity, gzip ; q=0.001"));
	assert_false(ui_accepts_gzip(NULL));
	assert_false(ui_accepts_gzip(""));
	assert_false(ui_accepts_gzip("identity"));
	assert_false(ui_accepts_gzip("gzip;q=0"));
	assert_false(ui_accepts_gzip("gzip; q=0.000"));
	assert_false(ui_accepts_gzip("x-gzip2, gzipx"));
	assert_false(ui_accepts_gzip("br, *;q=0"));
}

/* Every file is in the table with its gzip form (which inflates back to the
 * same bytes), a 32-hex ETag, and a type; the HTML names only files that
 * exist, each with the current version. */
static void test_file_table(void **state)
{
	const struct ui_file *index = NULL;
	(void)state;

	assert_true(refd_ui_files_count >= 8);
	assert_int_equal(strlen(refd_ui_version), 16);
	for (int i = 0; i < refd_ui_files_count; i++) {
		const struct ui_file *f = &refd_ui_files[i];
		static unsigned char buf[1 << 20];
		z_stream z;

		assert_true(strncmp(f->path, "/ui/", 4) == 0);
		assert_int_equal(strlen(f->etag), 32);
		assert_non_null(f->content_type);
		memset(&z, 0, sizeof(z));
		assert_int_equal(inflateInit2(&z, 16 + MAX_WBITS), Z_OK);
		z.next_in = (unsigned char *)f->gz;
		z.avail_in = (unsigned)f->gzlen;
		z.next_out = buf;
		z.avail_out = sizeof(buf);
		assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
		assert_int_equal(z.total_out, f->len);
		assert_memory_equal(buf, f->data, f->len);
		inflateEnd(&z);
		if (strcmp(f->path, "/ui/index.html") == 0)
			index = f;
	}
	assert_non_null(index);
	{
		char html[16384], want[256];
		const char *p;
		int refs = 0;

		assert_true(index->len < sizeof(html));
		memcpy(html, index->data, index->len);
		html[index->len] = '\0';
		assert_null(strstr(html, "@UI_VERSION@"));
		assert_null(strstr(html, "<style"));
		assert_null(strstr(html, " style="));
		for (p = html; (p = strstr(p, "?v=")) != NULL; p += 3) {
			const char *q = p;
			char name[128];
			size_t n;
			int found = 0;

			while (q > html && q[-1] != '"')
				q--;
			n = (size_t)(p - q);
			assert_true(n > 0 && n < sizeof(name) - 5);
			snprintf(name, sizeof(name), "/ui/%.*s", (int)n, q);
			for (int i = 0; i < refd_ui_files_count; i++)
				found |= strcmp(refd_ui_files[i].path, name) == 0;
			assert_true(found);
			snprintf(want, sizeof(want), "?v=%s\"", refd_ui_version);
			assert_memory_equal(p, want, strlen(want));
			refs++;
		}
		assert_true(refs >= 8);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_code_normalise),
		cmocka_unit_test(test_accepts_gzip),
		cmocka_unit_test(test_file_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
