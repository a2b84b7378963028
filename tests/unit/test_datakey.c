/*
 * test_datakey.c - unit tests for daemon/datakey.c without a key store:
 * sealing under a per-referral data key (round trip, the label that names
 * the referral, binding to row and referral, tampering, another referral's
 * key), the label parser on hostile input, and wrapping under the keyring's
 * KEK across a rotation (what --rewrap-keys relies on).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datakey.h"
#include "keyring.h"

#define K1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define K2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define UICKEY "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
#define RID "3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
#define RID2 "9a8b7c6d-5e4f-4321-8765-0fedcba98765"

static char dir[64];

static void write_text(const char *name, const char *content)
{
	char p[128];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, 0600), 0);
}

static struct keyring *load(const char *data)
{
	char u[128], d[128], err[256];
	struct keyring *k;

	snprintf(u, sizeof(u), "%s/uic.key", dir);
	snprintf(d, sizeof(d), "%s/%s", dir, data);
	k = keyring_load(u, d, err, sizeof(err));
	if (!k)
		fail_msg("keyring_load: %s", err);
	return k;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/refd-datakey.XXXXXX");
	assert_non_null(mkdtemp(dir));
	write_text("uic.key", UICKEY "\n");
	write_text("one.keys", "k1 " K1 "\n");
	write_text("two.keys", "k1 " K1 "\nk2 " K2 "\n");
	write_text("new.keys", "k2 " K2 "\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_seal_open(void **state)
{
	unsigned char key[DATAKEY_LEN], other[DATAKEY_LEN];
	struct seal_bind b = { "referrals", "contact", RID };
	struct seal_bind moved = { "referrals", "note", RID };
	char rid[DATAKEY_ID_LEN + 1], *sealed, *plain, *fake;
	size_t len = 0;

	(void)state;
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	sealed = datakey_seal(key, RID, &b, "+996555123456", 13);
	assert_non_null(sealed);
	assert_int_equal(strncmp(sealed, "d@" RID ":", strlen("d@" RID ":")), 0);
	assert_null(strstr(sealed, "996555"));
	assert_int_equal(datakey_sealed_referral(sealed, rid), 0);
	assert_string_equal(rid, RID);
	plain = datakey_open(key, sealed, &b, &len);
	assert_non_null(plain);
	assert_int_equal(len, 13);
	assert_memory_equal(plain, "+996555123456", 13);
	free(plain);
	/* Another key, another column, a flipped byte: nothing opens. */
	assert_null(datakey_open(other, sealed, &b, NULL));
	assert_null(datakey_open(key, sealed, &moved, NULL));
	sealed[strlen(sealed) - 3] ^= 1;
	assert_null(datakey_open(key, sealed, &b, NULL));
	free(sealed);
	/* Relabelled as another referral's: the label is authenticated. */
	sealed = datakey_seal(key, RID, &b, "x", 1);
	fake = strdup(sealed);
	memcpy(fake + 2, RID2, DATAKEY_ID_LEN);
	assert_int_equal(datakey_sealed_referral(fake, rid), 0);
	assert_string_equal(rid, RID2);
	assert_null(datakey_open(key, fake, &b, NULL));
	free(fake);
	free(sealed);
	/* Upper-case ids are the same referral. */
	sealed = datakey_seal(key, "3F2B1C4D-5E6F-4A7B-8C9D-0E1F2A3B4C5D", &b, "y", 1);
	assert_non_null(sealed);
	assert_int_equal(datakey_sealed_referral(sealed, rid), 0);
	assert_string_equal(rid, RID);
	free(sealed);
	assert_null(datakey_seal(key, "not-a-uuid", &b, "y", 1));
}

static void test_label_parser(void **state)
{
	char rid[DATAKEY_ID_LEN + 1];
	static const char *const bad[] = {
		"", "d@", "d@:", "k1:AAAA", "d@" RID, "d@" RID "x:AAAA",
		"d@3f2b1c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5:AAAA", "d@3f2b1c4d_5e6f-4a7b-8c9d-0e1f2a3b4c5d:A",
		"d@3f2b1c4g-5e6f-4a7b-8c9d-0e1f2a3b4c5d:A", "D@" RID ":AAAA",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(datakey_sealed_referral(bad[i], rid), -1);
	assert_int_equal(datakey_sealed_referral(NULL, rid), -1);
	assert_int_equal(datakey_sealed_referral("d@" RID ":", rid), 0);
}

static void test_wrap_rotation(void **state)
{
	struct keyring *one = load("one.keys"), *two = load("two.keys"), *neu = load("new.keys");
	unsigned char key[DATAKEY_LEN], back[DATAKEY_LEN];
	char *w1, *w2;

	(void)state;
	memset(key, 0x5a, sizeof(key));
	w1 = datakey_wrap(one, RID, key);
	assert_non_null(w1);
	assert_int_equal(strncmp(w1, "k1:", 3), 0);
	/* Bound to its referral: not another's key. */
	assert_int_equal(datakey_unwrap(one, RID2, w1, back), -1);
	assert_int_equal(datakey_unwrap(one, RID, w1, back), 0);
	assert_memory_equal(back, key, sizeof(key));
	/* After appending k2: the old wrap still opens, a new one is under k2. */
	assert_int_equal(datakey_unwrap(two, RID, w1, back), 0);
	w2 = datakey_wrap(two, RID, key);
	assert_int_equal(strncmp(w2, "k2:", 3), 0);
	/* Once k1 is gone only the re-wrapped one opens. */
	assert_int_equal(datakey_unwrap(neu, RID, w1, back), -1);
	assert_int_equal(datakey_unwrap(neu, RID, w2, back), 0);
	assert_memory_equal(back, key, sizeof(key));
	/* The wrap key is its own subkey: a client-data seal does not open. */
	assert_int_equal(datakey_unwrap(one, RID, "k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", back), -1);
	free(w1);
	free(w2);
	keyring_free(one);
	keyring_free(two);
	keyring_free(neu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open),
		cmocka_unit_test(test_label_parser),
		cmocka_unit_test(test_wrap_rotation),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
