/*
 * test_keyring.c - unit tests for daemon/keyring.c: sealing round trip,
 * tamper detection, unknown and wrong key ids, rotation, UIC hashing
 * (case-insensitive, keyed), key file parsing and permission checks, and the
 * random/sha256/compare helpers.
 *
 * Key files are written into a private mktemp directory that is removed at
 * the end; the keys are test constants, never real ones.
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

#include "keyring.h"

#define K1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define K2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define UICKEY "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

static char dir[64];

static const char *tpath(const char *name)
{
	static char buf[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void write_file(const char *name, const char *content, size_t len, mode_t mode)
{
	const char *p = tpath(name);
	FILE *f;

	unlink(p);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, mode), 0);
}

static void write_text(const char *name, const char *content)
{
	write_file(name, content, strlen(content), 0600);
}

static struct keyring *load(const char *uic, const char *data, char *err, size_t errlen)
{
	return keyring_load(tpath(uic), tpath(data), err, errlen);
}

static int setup_all(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_keyring.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	write_text("uic.key", UICKEY "\n");
	write_text("data1.key", "# first key\n\nk1 " K1 "\n");
	write_text("data2.key", "k1 " K1 "\n# rotated\nk2 " K2 "\n");
	write_text("data2only.key", "k2 " K2 "\n");
	write_text("data_k1_as_k2.key", "k2 " K1 "\n");
	return 0;
}

static int teardown_all(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Where the test values "live": every seal is bound to a row. */
static const struct seal_bind B1 = { "referrals", "contact", "1b4e28ba-2fa1-11d2-883f-0016d3cca427" };

static void test_round_trip(void **state)
{
	char err[256] = "";
	struct keyring *k = load("uic.key", "data1.key", err, sizeof(err));
	const char *msg = "{\"phone\":\"+996555123456\"}";
	char *sealed, *sealed2, *plain;
	size_t len = 99;

	(void)state;
	assert_non_null(k);
	sealed = keyring_seal(k, KP_CLIENT_DATA, &B1, msg, strlen(msg));
	assert_non_null(sealed);
	assert_true(strncmp(sealed, "k1:", 3) == 0);
	assert_null(strstr(sealed, "996555"));
	plain = keyring_open(k, KP_CLIENT_DATA, &B1, sealed, &len);
	assert_non_null(plain);
	assert_int_equal(len, strlen(msg));
	assert_string_equal(plain, msg);
	/* Fresh nonce every time: same plaintext, different blobs. */
	sealed2 = keyring_seal(k, KP_CLIENT_DATA, &B1, msg, strlen(msg));
	assert_non_null(sealed2);
	assert_string_not_equal(sealed, sealed2);
	free(plain);
	free(sealed);
	free(sealed2);

	/* Empty plaintext and binary data with NULs survive too. */
	sealed = keyring_seal(k, KP_CLIENT_DATA, &B1, "", 0);
	assert_non_null(sealed);
	plain = keyring_open(k, KP_CLIENT_DATA, &B1, sealed, &len);
	assert_non_null(plain);
	assert_int_equal(len, 0);
	assert_string_equal(plain, "");
	free(plain);
	free(sealed);
	sealed = keyring_seal(k, KP_CLIENT_DATA, &B1, "a\0b", 3);
	plain = keyring_open(k, KP_CLIENT_DATA, &B1, sealed, NULL);
	assert_non_null(plain);
	assert_memory_equal(plain, "a\0b", 3);
	free(plain);
	free(sealed);
	keyring_free(k);
}

static void test_tamper(void **state)
{
	char err[256] = "";
	struct keyring *k = load("uic.key", "data1.key", err, sizeof(err));
	char *sealed, *plain;
	size_t i, n;

	(void)state;
	assert_non_null(k);
	/* 20 bytes: 12 + 20 + 16 = 48, a multiple of 3, so the base64 has
	 * no padding and every character carries only meaningful bits. */
	sealed = keyring_seal(k, KP_CLIENT_DATA, &B1, "note for the worker!", 20);
	assert_non_null(sealed);
	n = strlen(sealed);
	/* Flip every base64 character in turn (nonce, ciphertext, tag): each
	 * change must be refused. */
	for (i = 3; i < n; i++) {
		char saved = sealed[i];

		if (saved == '=')
			continue;
		sealed[i] = saved == 'A' ? 'B' : 'A';
		plain = keyring_open(k, KP_CLIENT_DATA, &B1, sealed, NULL);
		assert_null(plain);
		sealed[i] = saved;
	}
	plain = keyring_open(k, KP_CLIENT_DATA, &B1, sealed, NULL);
	assert_non_null(plain);
	free(plain);
	/* Truncated, garbage, no kid, empty. */
	sealed[n - 4] = '\0';
	assert_null(keyring_open(k, KP_CLIENT_DATA, &B1, sealed, NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, &B1, "k1:!!!!", NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, &B1, "k1:", NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, &B1, "k1:AAAA", NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, &B1, "no-colon-here", NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, &B1, "", NULL));
	free(sealed);
	keyring_free(k);
}

static void test_wrong_kid(void **state)
{
	char err[256] = "";
	struct keyring *k1 = load("uic.key", "data1.key", err, sizeof(err));
	struct keyring *k2 = load("uic.key", "data2only.key", err, sizeof(err));
	struct keyring *kx = load("uic.key", "data_k1_as_k2.key", err, sizeof(err));
	char *sealed, *relabelled;

	(void)state;
	assert_non_null(k1);
	assert_non_null(k2);
	assert_non_null(kx);
	sealed = keyring_seal(k1, KP_CLIENT_DATA, &B1, "secret", 6);
	assert_non_null(sealed);
	/* Unknown kid: a keyring without k1 cannot open it. */
	assert_null(keyring_open(k2, KP_CLIENT_DATA, &B1, sealed, NULL));
	/* Relabelled to k2 under a keyring where k2 holds k1's key bytes: the
	 * kid is authenticated data, so the tag check fails. */
	relabelled = strdup(sealed);
	assert_non_null(relabelled);
	relabelled[1] = '2';
	assert_null(keyring_open(kx, KP_CLIENT_DATA, &B1, relabelled, NULL));
	/* ... and the right key under the wrong label is refused as well. */
	assert_null(keyring_open(k2, KP_CLIENT_DATA, &B1, relabelled, NULL));
	free(relabelled);
	free(sealed);
	keyring_free(k1);
	keyring_free(k2);
	keyring_free(kx);
}

static void test_rotation(void **state)
{
	char err[256] = "";
	struct keyring *old = load("uic.key", "data1.key", err, sizeof(err));
	struct keyring *neu = load("uic.key", "data2.key", err, sizeof(err));
	char *s_old, *s_new, *plain;

	(void)state;
	assert_non_null(old);
	assert_non_null(neu);
	s_old = keyring_seal(old, KP_CLIENT_DATA, &B1, "before rotation", 15);
	s_new = keyring_seal(neu, KP_CLIENT_DATA, &B1, "after rotation", 14);
	assert_non_null(s_old);
	assert_non_null(s_new);
	/* The last line is the current key. */
	assert_true(strncmp(s_new, "k2:", 3) == 0);
	plain = keyring_open(neu, KP_CLIENT_DATA, &B1, s_old, NULL);
	assert_non_null(plain);
	assert_string_equal(plain, "before rotation");
	free(plain);
	plain = keyring_open(neu, KP_CLIENT_DATA, &B1, s_new, NULL);
	assert_non_null(plain);
	assert_string_equal(plain, "after rotation");
	free(plain);
	/* The old keyring does not know k2. */
	assert_null(keyring_open(old, KP_CLIENT_DATA, &B1, s_new, NULL));
	free(s_old);
	free(s_new);
	keyring_free(old);
	keyring_free(neu);
}

static void test_uic_hash(void **state)
{
	char err[256] = "";
	struct keyring *k = load("uic.key", "data1.key", err, sizeof(err));
	struct keyring *kraw;
	char a[65], b[65], c[65], d[65];
	size_t i;

	(void)state;
	assert_non_null(k);
	assert_int_equal(keyring_uic_hash(k, "AB0312M85", a), 0);
	assert_int_equal(keyring_uic_hash(k, "ab0312m85", b), 0);
	assert_int_equal(keyring_uic_hash(k, "Ab0312M85", c), 0);
	assert_int_equal(strlen(a), 64);
	for (i = 0; i < 64; i++)
		assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
	assert_string_equal(a, b);
	assert_string_equal(a, c);
	assert_int_equal(keyring_uic_hash(k, "AB0312M86", d), 0);
	assert_string_not_equal(a, d);
	/* It is keyed: a plain SHA-256 of the UIC is not the stored value,
	 * and another key gives another hash. */
	crypto_sha256_hex("AB0312M85", 9, d);
	assert_string_not_equal(a, d);
	write_file("uic_raw.key", "0123456789abcdef0123456789abcdefXYZ", 35, 0600);
	kraw = load("uic_raw.key", "data1.key", err, sizeof(err));
	assert_non_null(kraw);
	assert_int_equal(keyring_uic_hash(kraw, "AB0312M85", d), 0);
	assert_string_not_equal(a, d);
	keyring_free(kraw);
	keyring_free(k);
}

static void expect_refused(const char *uic, const char *data, const char *needle)
{
	char err[256] = "";
	struct keyring *k = load(uic, data, err, sizeof(err));

	if (k != NULL)
		fail_msg("%s / %s was accepted", uic, data);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	/* Error messages never carry key material. */
	assert_null(strstr(err, "00112233"));
	assert_null(strstr(err, "0f1e2d3c"));
}

static void test_bad_files(void **state)
{
	(void)state;
	/* Readable by group or others: refused like ssh does. */
	write_file("uic_open.key", UICKEY "\n", 65, 0644);
	expect_refused("uic_open.key", "data1.key", "too open");
	write_file("data_open.key", "k1 " K1 "\n", 68, 0640);
	expect_refused("uic.key", "data_open.key", "too open");
	/* Missing files. */
	expect_refused("missing.key", "data1.key", "cannot open");
	expect_refused("uic.key", "missing.key", "cannot open");
	/* UIC key too short, in hex and raw form; odd hex. */
	write_text("uic_short_hex.key", "00112233445566778899aabbccddeeff\n");
	expect_refused("uic_short_hex.key", "data1.key", "too short");
	write_text("uic_short_raw.key", "short secret");
	expect_refused("uic_short_raw.key", "data1.key", "too short");
	write_text("uic_odd.key", UICKEY "0\n");
	expect_refused("uic_odd.key", "data1.key", "odd");
	/* Data key files: wrong length, not hex, bad kid, duplicate, empty,
	 * missing key, extra field. */
	write_text("d_len.key", "k1 00112233\n");
	expect_refused("uic.key", "d_len.key", "d_len.key:1:");
	write_text("d_hex.key", "# c\nk1 " "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n");
	expect_refused("uic.key", "d_hex.key", "d_hex.key:2: key is not hex");
	write_text("d_kid.key", "k:1 " K1 "\n");
	expect_refused("uic.key", "d_kid.key", "key id may hold only");
	write_text("d_dup.key", "k1 " K1 "\nk1 " K2 "\n");
	expect_refused("uic.key", "d_dup.key", "d_dup.key:2: duplicate key id");
	write_text("d_empty.key", "# nothing here\n\n");
	expect_refused("uic.key", "d_empty.key", "no keys");
	write_text("d_nokey.key", "k1\n");
	expect_refused("uic.key", "d_nokey.key", "expected");
	write_text("d_extra.key", "k1 " K1 " extra\n");
	expect_refused("uic.key", "d_extra.key", "expected");
	/* A directory is not a key file. */
	expect_refused(".", "data1.key", "not a regular file");
}

/* Finding 2: a value moved to another row, column or table, or opened
 * for another purpose, does not open; the row id compares case-blind. */
static void test_binding(void **state)
{
	char err[256] = "";
	struct keyring *k = load("uic.key", "data1.key", err, sizeof(err));
	struct seal_bind other_row = { "referrals", "contact", "2b4e28ba-2fa1-11d2-883f-0016d3cca427" };
	struct seal_bind other_col = { "referrals", "note", B1.row_id };
	struct seal_bind other_tab = { "assignments", "contact", B1.row_id };
	struct seal_bind upper = { "referrals", "contact", "1B4E28BA-2FA1-11D2-883F-0016D3CCA427" };
	struct seal_bind pipe = { "referrals", "con|tact", B1.row_id };
	char *sealed, *plain, *wh;
	char kid[40];

	(void)state;
	assert_non_null(k);
	sealed = keyring_seal(k, KP_CLIENT_DATA, &B1, "+996555123456", 13);
	assert_non_null(sealed);
	assert_null(keyring_open(k, KP_CLIENT_DATA, &other_row, sealed, NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, &other_col, sealed, NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, &other_tab, sealed, NULL));
	assert_null(keyring_open(k, KP_WEBHOOK_SECRET, &B1, sealed, NULL));
	assert_null(keyring_open(k, KP_CLIENT_DATA, NULL, sealed, NULL));
	plain = keyring_open(k, KP_CLIENT_DATA, &upper, sealed, NULL);
	assert_non_null(plain);
	assert_string_equal(plain, "+996555123456");
	free(plain);
	/* A binding part holding the separator is refused outright. */
	assert_null(keyring_seal(k, KP_CLIENT_DATA, &pipe, "x", 1));
	/* A webhook secret opens only as one. */
	wh = keyring_seal(k, KP_WEBHOOK_SECRET, &B1, "secret", 6);
	assert_non_null(wh);
	assert_null(keyring_open(k, KP_CLIENT_DATA, &B1, wh, NULL));
	plain = keyring_open(k, KP_WEBHOOK_SECRET, &B1, wh, NULL);
	assert_non_null(plain);
	free(plain);
	/* The low-level pair under a caller's key (datakey.c's DEKs). */
	assert_int_equal(crypto_sealed_kid(sealed, kid, sizeof(kid)), 0);
	assert_string_equal(kid, "k1");
	assert_non_null(keyring_subkey(k, KP_DEK_WRAP, NULL));
	assert_null(keyring_subkey(k, KP_DEK_WRAP, "nope"));
	assert_ptr_not_equal(keyring_subkey(k, KP_DEK_WRAP, "k1"),
			     keyring_subkey(k, KP_CLIENT_DATA, "k1"));
	assert_memory_not_equal(keyring_subkey(k, KP_DEK_WRAP, "k1"),
				keyring_subkey(k, KP_CLIENT_DATA, "k1"), 32);
	free(wh);
	free(sealed);
	keyring_free(k);
}

/* Finding 1: tokens are stored as an HMAC under their own key file, and a
 * row's binding changes with anything it grants. */
static void test_token_hash(void **state)
{
	char err[256] = "";
	struct keyring *k = load("uic.key", "data1.key", err, sizeof(err));
	struct keyring *k2 = load("uic.key", "data1.key", err, sizeof(err));
	char a[65], b[65], plain[65], b1[65], b2[65], b3[65], u1[37], u2[37];

	(void)state;
	assert_non_null(k);
	assert_non_null(k2);
	/* No token key loaded: no hash. */
	assert_int_equal(keyring_token_hash(k, "rfd_x", 5, a), -1);
	write_text("token.key", "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n");
	chmod(tpath("token.key"), 0600);
	write_text("token2.key", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n");
	chmod(tpath("token2.key"), 0600);
	assert_int_equal(keyring_load_token_key(k, tpath("token.key"), err, sizeof(err)), 0);
	assert_int_equal(keyring_load_token_key(k2, tpath("token2.key"), err, sizeof(err)), 0);
	assert_int_equal(keyring_token_hash(k, "rfd_secret_token", 16, a), 0);
	assert_int_equal(keyring_token_hash(k2, "rfd_secret_token", 16, b), 0);
	crypto_sha256_hex("rfd_secret_token", 16, plain);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);       /* another key file, another hash */
	assert_string_not_equal(a, plain);   /* not the plain SHA-256 any more */
	assert_int_equal(keyring_token_binding(k, a, "worker", "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
					       1800000000LL, b1), 0);
	assert_int_equal(keyring_token_binding(k, a, "worker", "2b4e28ba-2fa1-11d2-883f-0016d3cca427",
					       1800000000LL, b2), 0);
	assert_int_equal(keyring_token_binding(k, a, "worker", "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
					       1800000001LL, b3), 0);
	assert_string_not_equal(b1, b2);
	assert_string_not_equal(b1, b3);
	/* The UIC key's bytes are refused as a token key. */
	assert_int_equal(keyring_load_token_key(k, tpath("uic.key"), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "must differ"));
	assert_int_equal(crypto_uuid_v4(u1), 0);
	assert_int_equal(crypto_uuid_v4(u2), 0);
	assert_int_equal(strlen(u1), 36);
	assert_int_equal(u1[14], '4');
	assert_string_not_equal(u1, u2);
	keyring_free(k);
	keyring_free(k2);
}

static void test_helpers(void **state)
{
	char a[64], b[64], h[65];
	size_t i;

	(void)state;
	assert_int_equal(crypto_random_b64url(32, a, sizeof(a)), 0);
	assert_int_equal(strlen(a), 43);
	for (i = 0; i < 43; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
				       a[i]));
	assert_int_equal(crypto_random_b64url(32, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	/* Output buffer too small is refused, not overflowed. */
	assert_int_equal(crypto_random_b64url(32, b, 43), -1);
	crypto_sha256_hex("abc", 3, h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(crypto_equal("same", "same", 4));
	assert_false(crypto_equal("same", "samf", 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_wrong_kid),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_uic_hash),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_binding),
		cmocka_unit_test(test_token_hash),
		cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
