/*
 * audit_head.c - the audit chain's signed head (protocol v1.1 "Audit heads").
 *
 * A head is {"seq","hash","at","key_id","signature"}: the latest sealed
 * record's position, its hash in hex and its time as in the canonical record,
 * signed with Ed25519 over the bytes "seq|hash|at". Partners keep heads they
 * received (GET /v1/audit/head, the audit.head event); `referrald
 * --verify-audit --head FILE` then proves the chain still contains one.
 *
 * Owns: the signing key in memory (freed with EVP_PKEY_free, which cleanses
 * it), its key id and public PEM, the signed message, and the strict parser
 * of a head file (a partner's file is input: fuzzed in tests/fuzz).
 * Must never: print or return the private key; accept a head with unknown
 * fields or a malformed one (a lenient parser would let a wrong file pass
 * for a different head).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit_head.h"

struct audit_signer {
	EVP_PKEY *key;
	char key_id[AUDIT_KEY_ID_MAX];
	char *public_pem;
};

void audit_signer_free(struct audit_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->key);
	free(s->public_pem);
	free(s);
}

struct audit_signer *audit_signer_load(const char *path, char *err, size_t errlen)
{
	struct audit_signer *s = NULL;
	FILE *f = NULL;
	BIO *b = NULL;
	unsigned char raw[32], md[32];
	size_t rawlen = sizeof(raw);
	unsigned int mdlen = 0;
	char *pem;
	long n;

	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "cannot open audit signing key %s", path);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto oom;
	s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	if (!s->key || EVP_PKEY_get_id(s->key) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "audit signing key %s is not an Ed25519 private key (PEM)",
			 path);
		goto fail;
	}
	if (EVP_PKEY_get_raw_public_key(s->key, raw, &rawlen) != 1 || rawlen != 32 ||
	    EVP_Digest(raw, rawlen, md, &mdlen, EVP_sha256(), NULL) != 1)
		goto oom;
	for (int i = 0; i < 8; i++)
		snprintf(s->key_id + 2 * i, 3, "%02x", md[i]);
	b = BIO_new(BIO_s_mem());
	if (!b || PEM_write_bio_PUBKEY(b, s->key) != 1)
		goto oom;
	n = BIO_get_mem_data(b, &pem);
	if (n <= 0 || !(s->public_pem = malloc((size_t)n + 1)))
		goto oom;
	memcpy(s->public_pem, pem, (size_t)n);
	s->public_pem[n] = '\0';
	BIO_free(b);
	fclose(f);
	return s;
oom:
	snprintf(err, errlen, "audit signing key %s: out of memory or OpenSSL failure", path);
fail:
	BIO_free(b);
	fclose(f);
	audit_signer_free(s);
	return NULL;
}

const char *audit_signer_key_id(const struct audit_signer *s)
{
	return s->key_id;
}

const char *audit_signer_public_pem(const struct audit_signer *s)
{
	return s->public_pem;
}

int audit_head_message(const struct audit_head *h, char *buf, size_t buflen)
{
	int n = snprintf(buf, buflen, "%lld|%s|%s", h->seq, h->hash, h->at);

	return n < 0 || (size_t)n >= buflen ? -1 : n;
}

int audit_head_sign(const struct audit_signer *s, struct audit_head *h)
{
	char msg[160];
	int n = audit_head_message(h, msg, sizeof(msg));
	EVP_MD_CTX *ctx;
	size_t siglen = sizeof(h->sig);
	int ok;

	if (n < 0 || !(ctx = EVP_MD_CTX_new()))
		return -1;
	ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
	     EVP_DigestSign(ctx, h->sig, &siglen, (const unsigned char *)msg, (size_t)n) == 1 &&
	     siglen == 64;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	memcpy(h->key_id, s->key_id, sizeof(h->key_id));
	h->has_sig = 1;
	return 0;
}

int audit_head_check(const struct audit_signer *s, const struct audit_head *h)
{
	char msg[160];
	int n = audit_head_message(h, msg, sizeof(msg));
	EVP_MD_CTX *ctx;
	int ok;

	if (n < 0 || !h->has_sig || !(ctx = EVP_MD_CTX_new()))
		return 0;
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, s->key) == 1 &&
	     EVP_DigestVerify(ctx, h->sig, 64, (const unsigned char *)msg, (size_t)n) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

json_t *audit_head_to_json(const struct audit_head *h)
{
	char sig[89];

	if (!h->has_sig || EVP_EncodeBlock((unsigned char *)sig, h->sig, 64) != 88)
		return NULL;
	return json_pack("{s:I, s:s, s:s?, s:s, s:s}", "seq", (json_int_t)h->seq, "hash", h->hash,
			 "at", h->at[0] ? h->at : NULL, "key_id", h->key_id, "signature", sig);
}

/* YYYY-MM-DDTHH:MM:SS.ffffffZ, digits where digits go. */
static int ah_at_ok(const char *s)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	size_t i;

	if (strlen(s) != sizeof(shape) - 1)
		return 0;
	for (i = 0; shape[i]; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return 0;
	}
	return 1;
}

static int ah_hex_ok(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int ah_key_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= AUDIT_KEY_ID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static int ah_fail(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -1;
}

/* seq, hash and at of obj into h; shared by the file and database forms. */
static int ah_fields(json_t *obj, struct audit_head *h, char *err, size_t errlen)
{
	json_t *seq = json_object_get(obj, "seq");
	json_t *hash = json_object_get(obj, "hash");
	json_t *at = json_object_get(obj, "at");

	if (!json_is_integer(seq) || json_integer_value(seq) < 0)
		return ah_fail(err, errlen, "\"seq\" must be a non-negative integer");
	h->seq = (long long)json_integer_value(seq);
	if (!json_is_string(hash) || !ah_hex_ok(json_string_value(hash), 64))
		return ah_fail(err, errlen, "\"hash\" must be 64 lowercase hex digits");
	memcpy(h->hash, json_string_value(hash), 65);
	if (json_is_null(at) && h->seq == 0) {
		h->at[0] = '\0';
	} else if (json_is_string(at) && ah_at_ok(json_string_value(at))) {
		memcpy(h->at, json_string_value(at), strlen(json_string_value(at)) + 1);
	} else {
		return ah_fail(err, errlen, "\"at\" must be YYYY-MM-DDTHH:MM:SS.ffffffZ");
	}
	return 0;
}

int audit_head_parse(const char *text, size_t len, struct audit_head *h, char *err,
		     size_t errlen)
{
	json_error_t je;
	json_t *obj, *kid, *sig;
	const char *k;
	json_t *v;
	unsigned char raw[66];
	const char *s;
	int rc = -1;

	memset(h, 0, sizeof(*h));
	obj = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(obj)) {
		ah_fail(err, errlen, "not a JSON object");
		goto done;
	}
	json_object_foreach(obj, k, v) {
		if (strcmp(k, "seq") && strcmp(k, "hash") && strcmp(k, "at") &&
		    strcmp(k, "key_id") && strcmp(k, "signature")) {
			ah_fail(err, errlen, "unknown field in head");
			goto done;
		}
	}
	if (ah_fields(obj, h, err, errlen) < 0)
		goto done;
	kid = json_object_get(obj, "key_id");
	if (!json_is_string(kid) || !ah_key_id_ok(json_string_value(kid))) {
		ah_fail(err, errlen, "\"key_id\" must be 1-64 of [A-Za-z0-9._-]");
		goto done;
	}
	memcpy(h->key_id, json_string_value(kid), strlen(json_string_value(kid)) + 1);
	sig = json_object_get(obj, "signature");
	s = json_string_value(sig);
	/* 64 bytes are 88 base64 characters ending in "==". */
	if (!s || strlen(s) != 88 || s[86] != '=' || s[87] != '=' ||
	    EVP_DecodeBlock(raw, (const unsigned char *)s, 88) != 66) {
		ah_fail(err, errlen, "\"signature\" must be base64 of 64 bytes");
		goto done;
	}
	for (size_t i = 0; i < 86; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/')) {
			ah_fail(err, errlen, "\"signature\" must be base64 of 64 bytes");
			goto done;
		}
	}
	memcpy(h->sig, raw, 64);
	h->has_sig = 1;
	rc = 0;
done:
	json_decref(obj);
	return rc;
}

int audit_head_from_db(const char *text, size_t len, struct audit_head *h)
{
	char err[80];
	json_t *obj = json_loadb(text, len, 0, NULL);
	int rc;

	memset(h, 0, sizeof(*h));
	rc = json_is_object(obj) ? ah_fields(obj, h, err, sizeof(err)) : -1;
	json_decref(obj);
	return rc;
}
