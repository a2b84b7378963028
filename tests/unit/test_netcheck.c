/*
 * test_netcheck.c - which webhook hosts are inside the network (finding 7).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "netcheck.h"

static enum netcheck_host judge(const char *h)
{
	return netcheck_host(h, strlen(h));
}

static void test_internal_literals(void **state)
{
	static const char *const inside[] = {
		"127.0.0.1", "127.255.0.9", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "255.255.255.255",
		"224.0.0.1", "198.18.0.1", "[::1]", "::1", "[::]", "[fd00::1]", "[fc00::]",
		"[fe80::1]", "[fe80::1%25eth0]", "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]",
		"[64:ff9b::7f00:1]", "[2002:7f00:1::1]", "[ff02::1]", "[fec0::1]",
		"localhost", "LOCALHOST", "localhost.", "api.localhost", "localhost.localdomain",
		"127.0.0.1.", "[127.0.0.1]", NULL,
	};
	(void)state;
	for (const char *const *p = inside; *p; p++)
		if (judge(*p) != NC_HOST_INTERNAL)
			fail_msg("%s not judged internal (%d)", *p, judge(*p));
}

static void test_public_and_names(void **state)
{
	(void)state;
	assert_int_equal(judge("93.184.216.34"), NC_HOST_PUBLIC_IP);
	assert_int_equal(judge("172.32.0.1"), NC_HOST_PUBLIC_IP);
	assert_int_equal(judge("[2001:db8::1]"), NC_HOST_PUBLIC_IP);
	assert_int_equal(judge("[2606:4700::1111]"), NC_HOST_PUBLIC_IP);
	assert_int_equal(judge("partner.example"), NC_HOST_NAME);
	assert_int_equal(judge("hooks.partner-org.kg"), NC_HOST_NAME);
	assert_int_equal(judge("notlocalhost.example"), NC_HOST_NAME);
}

static void test_ambiguous_numbers(void **state)
{
	static const char *const bad[] = {
		"2130706433", "0x7f.1", "0x7f000001", "0177.0.0.1", "127.1", "1.2.3",
		"10.0.0.1.5", "[zz::1", "", "a.b.123", NULL,
	};
	(void)state;
	for (const char *const *p = bad; *p; p++)
		if (judge(*p) != NC_HOST_BAD)
			fail_msg("%s not judged bad (%d)", *p, judge(*p));
}

static void test_urls(void **state)
{
	(void)state;
	assert_int_equal(netcheck_url("https://127.0.0.1:1/x"), NC_HOST_INTERNAL);
	assert_int_equal(netcheck_url("https://[::1]:8443/x"), NC_HOST_INTERNAL);
	assert_int_equal(netcheck_url("https://localhost/x"), NC_HOST_INTERNAL);
	assert_int_equal(netcheck_url("https://partner.example/h?x=1"), NC_HOST_NAME);
	assert_int_equal(netcheck_url("https://93.184.216.34/"), NC_HOST_PUBLIC_IP);
	assert_int_equal(netcheck_url("not a url"), NC_HOST_BAD);
	assert_int_equal(netcheck_url(NULL), NC_HOST_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_internal_literals),
		cmocka_unit_test(test_public_and_names),
		cmocka_unit_test(test_ambiguous_numbers),
		cmocka_unit_test(test_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
