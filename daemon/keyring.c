/*
 * keyring.c - client-data cryptography: the UIC pseudonymisation key, the
 * data-encryption keyring (AES-256-GCM with key ids so keys can rotate), and
 * small helpers (random tokens, SHA-256, constant-time compare).
 *
 * Owns: every byte of key material in memory; it is OPENSSL_cleanse()d in
 * keyring_free() and temporary copies are cleansed before they are released.
 * Must never: write a key, a plaintext or a UIC anywhere but the caller's
 * buffers; put key bytes or file contents into an error message; accept a key
 * file that group or others can read (like ssh with private keys).
 *
 * Key file formats (deploy/README.md repeats this for operators):
 *
 *   uic_key_file   A secret of at least 32 bytes. If the file holds only hex
 *                  digits (trailing whitespace/newline ignored) it is decoded
 *                  as hex and must give at least 32 bytes (64 digits), e.g.
 *                  `openssl rand -hex 32 > uic.key`. Anything else is taken as
 *                  raw bytes, exactly as stored (no trimming), e.g.
 *                  `head -c 32 /dev/urandom > uic.key`. This key must never
 *                  change while the database holds hashes made with it: the
 *                  duplicate-client check compares HMACs.
 *
 *   data_key_file  One key per line: "<kid> <64 hex digits>". The kid is
 *                  1-32 characters of [A-Za-z0-9._-]. Blank lines and lines
 *                  starting with '#' are ignored. The LAST key is the current
 *                  one (used to seal); every listed key can still open. To
 *                  rotate, append a new line; remove an old line only when no
 *                  stored ciphertext carries its kid any more.
 *
 *   token_key_file A secret like the UIC key (hex or raw, 32+ bytes), and a
 *                  different one. Bearer tokens and sign-in codes are stored
 *                  only as HMAC-SHA256 under it, so a row written into the
 *                  database by someone without this file never matches a
 *                  token anybody holds. Changing it invalidates every token.
 *
 * Purposes: each data key is never used directly. HKDF-SHA256 (no salt,
 * info "referrald/client-data", "referrald/webhook-secret",
 * "referrald/dek-wrap") derives one subkey per purpose, so a webhook secret
 * sealed for the outbox can never be opened as a client's note.
 *
 * Sealed format: "<kid>:" + base64(nonce[12] | ciphertext | tag[16]), with a
 * fresh random nonce per seal. The additional authenticated data binds the
 * value to where it lives: "v2|" kid "|" table "|" column "|" row_id, so a
 * ciphertext moved to another row, column, table or key id no longer opens.
 */
#include "keyring.h"
#include "errbuf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define KEYRING_MAX_FILE 65536   /* a key file bigger than this is a mistake */
#define KEYRING_KID_MAX 32
/* A sealed value's label: a key id of the keyring, or (datakey.c) "d@" and
 * the referral id whose data key sealed it. */
#define SEAL_LABEL_MAX 40
#define KEYRING_KEY_LEN 32       /* AES-256 */
#define KEYRING_NONCE_LEN 12
#define KEYRING_TAG_LEN 16
#define KEYRING_UIC_MIN 32

struct data_key {
	char kid[KEYRING_KID_MAX + 1];
	unsigned char key[KEYRING_KEY_LEN];
	unsigned char sub[KP_COUNT][KEYRING_KEY_LEN];  /* HKDF subkeys per purpose */
};

struct keyring {
	unsigned char *uic_key;
	size_t uic_key_len;
	unsigned char *token_key;   /* HMAC key of bearer tokens and sign-in codes */
	size_t token_key_len;
	struct data_key *keys;   /* in file order; keys[nkeys - 1] is current */
	size_t nkeys;
};

static int keyring_derive_subkeys(struct keyring *k);
#define keyring_err errbuf_set

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Read a whole key file after checking it is a regular file that only its
 * owner can read. *buf is malloc'd; the caller cleanses and frees it. */
static int keyring_read_file(const char *path, unsigned char **buf, size_t *len, char *err,
			     size_t errlen)
{
	struct stat st;
	unsigned char *b = NULL;
	size_t have = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		keyring_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		keyring_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		keyring_err(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	/* Same rule as ssh for private keys: a secret others can read is no
	 * longer a secret, so refuse rather than warn. */
	if ((st.st_mode & 077) != 0) {
		keyring_err(err, errlen,
			    "%s: permissions %04o are too open; key files must not be accessible "
			    "by group or others (chmod 600)",
			    path, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	if (st.st_size > KEYRING_MAX_FILE) {
		keyring_err(err, errlen, "%s: file too large for a key file", path);
		goto fail;
	}
	b = malloc((size_t)st.st_size + 1);
	if (b == NULL) {
		keyring_err(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, b + have, (size_t)st.st_size - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			keyring_err(err, errlen, "%s: read error", path);
			goto fail;
		}
		have += (size_t)n;
	}
	b[have] = '\0';
	close(fd);
	*buf = b;
	*len = have;
	return 0;
fail:
	if (b != NULL) {
		OPENSSL_cleanse(b, (size_t)st.st_size + 1);
		free(b);
	}
	close(fd);
	return -1;
}

/* A secret file (the UIC key, the token key): hex or raw, 32+ bytes. */
static int keyring_load_secret(unsigned char **key_out, size_t *len_out, const char *path,
			       char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t len = 0, hexlen, i;
	int rc = -1;

	if (keyring_read_file(path, &buf, &len, err, errlen) != 0)
		return -1;
	hexlen = len;
	while (hexlen > 0 && isspace(buf[hexlen - 1]))
		hexlen--;
	for (i = 0; i < hexlen; i++)
		if (hexval(buf[i]) < 0)
			break;
	if (hexlen > 0 && i == hexlen) {
		/* Hex form: decode in place into a fresh buffer. */
		if (hexlen % 2 != 0) {
			keyring_err(err, errlen, "%s: odd number of hex digits", path);
			goto out;
		}
		if (hexlen / 2 < KEYRING_UIC_MIN) {
			keyring_err(err, errlen, "%s: key too short: need at least %d bytes (%d hex digits)",
				    path, KEYRING_UIC_MIN, 2 * KEYRING_UIC_MIN);
			goto out;
		}
		*key_out = malloc(hexlen / 2);
		if (*key_out == NULL)
			goto oom;
		for (i = 0; i < hexlen / 2; i++)
			(*key_out)[i] = (unsigned char)(hexval(buf[2 * i]) << 4 | hexval(buf[2 * i + 1]));
		*len_out = hexlen / 2;
	} else {
		if (len < KEYRING_UIC_MIN) {
			keyring_err(err, errlen, "%s: key too short: need at least %d bytes", path,
				    KEYRING_UIC_MIN);
			goto out;
		}
		*key_out = malloc(len);
		if (*key_out == NULL)
			goto oom;
		memcpy(*key_out, buf, len);
		*len_out = len;
	}
	rc = 0;
	goto out;
oom:
	keyring_err(err, errlen, "%s: out of memory", path);
out:
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

static int kid_valid_char(int c)
{
	return isalnum(c) || c == '.' || c == '_' || c == '-';
}

static int keyring_load_data(struct keyring *k, const char *path, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	char *line, *next;
	int lineno = 0, rc = -1;

	if (keyring_read_file(path, &buf, &len, err, errlen) != 0)
		return -1;
	if (memchr(buf, '\0', len) != NULL) {
		keyring_err(err, errlen, "%s: contains a NUL byte", path);
		goto out;
	}
	for (line = (char *)buf; line != NULL; line = next) {
		char *p = line, *kid, *hex;
		size_t kidlen, hexlen, i;
		struct data_key *dk;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#' || *p == '\r')
			continue;
		kid = p;
		while (*p != '\0' && *p != ' ' && *p != '\t')
			p++;
		kidlen = (size_t)(p - kid);
		while (*p == ' ' || *p == '\t')
			p++;
		hex = p;
		while (*p != '\0' && !isspace((unsigned char)*p))
			p++;
		hexlen = (size_t)(p - hex);
		while (*p != '\0' && isspace((unsigned char)*p))
			p++;
		if (hexlen == 0 || *p != '\0') {
			keyring_err(err, errlen, "%s:%d: expected \"<kid> <64 hex digits>\"", path, lineno);
			goto out;
		}
		if (kidlen == 0 || kidlen > KEYRING_KID_MAX) {
			keyring_err(err, errlen, "%s:%d: key id must be 1-%d characters", path, lineno,
				    KEYRING_KID_MAX);
			goto out;
		}
		for (i = 0; i < kidlen; i++) {
			if (!kid_valid_char((unsigned char)kid[i])) {
				keyring_err(err, errlen, "%s:%d: key id may hold only A-Z a-z 0-9 . _ -",
					    path, lineno);
				goto out;
			}
		}
		if (hexlen != 2 * KEYRING_KEY_LEN) {
			keyring_err(err, errlen, "%s:%d: key must be exactly %d hex digits", path, lineno,
				    2 * KEYRING_KEY_LEN);
			goto out;
		}
		for (i = 0; i < hexlen; i++) {
			if (hexval((unsigned char)hex[i]) < 0) {
				keyring_err(err, errlen, "%s:%d: key is not hex", path, lineno);
				goto out;
			}
		}
		for (i = 0; i < k->nkeys; i++) {
			if (strlen(k->keys[i].kid) == kidlen && memcmp(k->keys[i].kid, kid, kidlen) == 0) {
				keyring_err(err, errlen, "%s:%d: duplicate key id", path, lineno);
				goto out;
			}
		}
		if (k->nkeys == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			struct data_key *nk = calloc(ncap, sizeof(*nk));

			if (nk == NULL) {
				keyring_err(err, errlen, "%s: out of memory", path);
				goto out;
			}
			if (k->keys != NULL) {
				memcpy(nk, k->keys, k->nkeys * sizeof(*nk));
				OPENSSL_cleanse(k->keys, cap * sizeof(*nk));
				free(k->keys);
			}
			k->keys = nk;
			cap = ncap;
		}
		dk = &k->keys[k->nkeys++];
		memcpy(dk->kid, kid, kidlen);
		dk->kid[kidlen] = '\0';
		for (i = 0; i < KEYRING_KEY_LEN; i++)
			dk->key[i] = (unsigned char)(hexval((unsigned char)hex[2 * i]) << 4 |
						     hexval((unsigned char)hex[2 * i + 1]));
	}
	if (k->nkeys == 0) {
		keyring_err(err, errlen, "%s: no keys (expected lines \"<kid> <64 hex digits>\")", path);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

struct keyring *keyring_load(const char *uic_key_file, const char *data_key_file, char *err,
			     size_t errlen)
{
	struct keyring *k;

	if (uic_key_file == NULL || data_key_file == NULL) {
		keyring_err(err, errlen, "uic_key_file and data_key_file are required");
		return NULL;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		keyring_err(err, errlen, "out of memory");
		return NULL;
	}
	if (keyring_load_secret(&k->uic_key, &k->uic_key_len, uic_key_file, err, errlen) != 0)
		goto fail;
	if (keyring_load_data(k, data_key_file, err, errlen) != 0)
		goto fail;
	if (keyring_derive_subkeys(k) != 0) {
		keyring_err(err, errlen, "%s: cannot derive the purpose subkeys", data_key_file);
		goto fail;
	}
	return k;
fail:
	keyring_free(k);
	return NULL;
}

int keyring_load_token_key(struct keyring *k, const char *token_key_file, char *err,
			   size_t errlen)
{
	unsigned char *key = NULL;
	size_t len = 0;

	if (k == NULL || token_key_file == NULL) {
		keyring_err(err, errlen, "token_key_file is required");
		return -1;
	}
	if (keyring_load_secret(&key, &len, token_key_file, err, errlen) != 0)
		return -1;
	/* The same bytes as the UIC key would let one file's theft do both
	 * jobs; refuse the copy an operator might make by mistake. */
	if (len == k->uic_key_len && CRYPTO_memcmp(key, k->uic_key, len) == 0) {
		OPENSSL_cleanse(key, len);
		free(key);
		keyring_err(err, errlen, "%s: the token key must differ from the UIC key",
			    token_key_file);
		return -1;
	}
	if (k->token_key != NULL) {
		OPENSSL_cleanse(k->token_key, k->token_key_len);
		free(k->token_key);
	}
	k->token_key = key;
	k->token_key_len = len;
	return 0;
}

void keyring_free(struct keyring *k)
{
	if (k == NULL)
		return;
	if (k->uic_key != NULL) {
		OPENSSL_cleanse(k->uic_key, k->uic_key_len);
		free(k->uic_key);
	}
	if (k->token_key != NULL) {
		OPENSSL_cleanse(k->token_key, k->token_key_len);
		free(k->token_key);
	}
	if (k->keys != NULL) {
		OPENSSL_cleanse(k->keys, k->nkeys * sizeof(*k->keys));
		free(k->keys);
	}
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int keyring_uic_hash(const struct keyring *k, const char *uic, char out[65])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t n, i;
	char *up;
	int rc = -1;

	if (k == NULL || uic == NULL || out == NULL)
		return -1;
	n = strlen(uic);
	/* The UIC is compared case-insensitively (protocol), so normalise
	 * before hashing; the copy is client data and is cleansed. */
	up = malloc(n + 1);
	if (up == NULL)
		return -1;
	for (i = 0; i < n; i++)
		up[i] = (char)toupper((unsigned char)uic[i]);
	up[n] = '\0';
	if (HMAC(EVP_sha256(), k->uic_key, (int)k->uic_key_len, (const unsigned char *)up, n, mac,
		 &maclen) == NULL || maclen != 32)
		goto out;
	hex_encode(mac, 32, out);
	rc = 0;
out:
	OPENSSL_cleanse(up, n + 1);
	free(up);
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

static const struct data_key *keyring_find(const struct keyring *k, const char *kid, size_t kidlen)
{
	size_t i;

	for (i = 0; i < k->nkeys; i++)
		if (strlen(k->keys[i].kid) == kidlen && memcmp(k->keys[i].kid, kid, kidlen) == 0)
			return &k->keys[i];
	return NULL;
}

/* HKDF-SHA256(ikm = a data key, no salt, info = the purpose's name) -> 32
 * bytes. One derivation per key and purpose, at load time. */
static int keyring_hkdf(const unsigned char *ikm, size_t ikmlen, const char *info,
			unsigned char out[KEYRING_KEY_LEN])
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[4];
	int rc = -1;

	if (!kctx)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string("key", (void *)ikm, ikmlen);
	params[2] = OSSL_PARAM_construct_octet_string("info", (void *)info, strlen(info));
	params[3] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, KEYRING_KEY_LEN, params) == 1)
		rc = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

static const char *const purpose_info[KP_COUNT] = {
	[KP_CLIENT_DATA] = "referrald/client-data",
	[KP_WEBHOOK_SECRET] = "referrald/webhook-secret",
	[KP_DEK_WRAP] = "referrald/dek-wrap",
};

static int keyring_derive_subkeys(struct keyring *k)
{
	for (size_t i = 0; i < k->nkeys; i++)
		for (int p = 0; p < KP_COUNT; p++)
			if (keyring_hkdf(k->keys[i].key, KEYRING_KEY_LEN, purpose_info[p],
					 k->keys[i].sub[p]) != 0)
				return -1;
	return 0;
}

/* "v2|" kid "|" table "|" column "|" row_id; each part is an identifier the
 * caller controls (never client data). NULL when a part holds '|' (which
 * would make two bindings read alike) or the result does not fit. */
static char *seal_aad(const char *kid, const struct seal_bind *b, size_t *aadlen)
{
	const char *parts[4] = {kid, b ? b->table : NULL, b ? b->column : NULL,
				b ? b->row_id : NULL};
	size_t n = 2, i, o;
	char *aad;

	for (i = 0; i < 4; i++) {
		if (!parts[i] || !*parts[i] || strchr(parts[i], '|') || strlen(parts[i]) > 128)
			return NULL;
		n += 1 + strlen(parts[i]);
	}
	aad = malloc(n + 1);
	if (!aad)
		return NULL;
	memcpy(aad, "v2", 2);
	o = 2;
	for (i = 0; i < 4; i++) {
		size_t l = strlen(parts[i]);

		aad[o++] = '|';
		/* Row ids are uuids; compare them as PostgreSQL prints them. */
		for (size_t j = 0; j < l; j++)
			aad[o++] = i == 3 ? (char)tolower((unsigned char)parts[i][j]) : parts[i][j];
	}
	aad[o] = '\0';
	*aadlen = o;
	return aad;
}

/* AES-256-GCM under key with the nonce at nonce, the additional data
 * already taken in: enc 1 seals, 0 opens. NULL on failure. */
static EVP_CIPHER_CTX *seal_cipher(const unsigned char key[32], const unsigned char *nonce,
				   const char *aad, size_t aadlen, int enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int n;

	if (ctx == NULL)
		return NULL;
	if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KEYRING_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, nonce, enc) != 1 ||
	    EVP_CipherUpdate(ctx, NULL, &n, (const unsigned char *)aad, (int)aadlen) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

char *crypto_seal_bound(const unsigned char key[32], const char *kid, const struct seal_bind *b,
			const void *plain, size_t len)
{
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	size_t rawlen, kidlen, b64len, aadlen = 0;
	char *out = NULL, *aad = NULL;
	int n, fin;

	if (!key || !kid || (plain == NULL && len > 0) || len > (size_t)1 << 30)
		return NULL;
	aad = seal_aad(kid, b, &aadlen);
	if (!aad)
		return NULL;
	kidlen = strlen(kid);
	rawlen = KEYRING_NONCE_LEN + len + KEYRING_TAG_LEN;
	raw = malloc(rawlen);
	if (raw == NULL)
		goto fail;
	/* A fresh random 96-bit nonce per seal: with one key the collision
	 * bound stays far beyond the number of records this service keeps. */
	if (RAND_bytes(raw, KEYRING_NONCE_LEN) != 1)
		goto fail;
	ctx = seal_cipher(key, raw, aad, aadlen, 1);
	if (ctx == NULL)
		goto fail;
	n = 0;
	if (len > 0 &&
	    EVP_EncryptUpdate(ctx, raw + KEYRING_NONCE_LEN, &n, plain, (int)len) != 1)
		goto fail;
	fin = 0;
	if (EVP_EncryptFinal_ex(ctx, raw + KEYRING_NONCE_LEN + n, &fin) != 1 ||
	    (size_t)(n + fin) != len)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KEYRING_TAG_LEN,
				raw + KEYRING_NONCE_LEN + len) != 1)
		goto fail;
	b64len = 4 * ((rawlen + 2) / 3);
	out = malloc(kidlen + 1 + b64len + 1);
	if (out == NULL)
		goto fail;
	memcpy(out, kid, kidlen);
	out[kidlen] = ':';
	if (EVP_EncodeBlock((unsigned char *)out + kidlen + 1, raw, (int)rawlen) != (int)b64len)
		goto fail;
	EVP_CIPHER_CTX_free(ctx);
	free(raw);   /* nonce, ciphertext and tag only: nothing secret */
	free(aad);
	return out;
fail:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	free(out);
	free(aad);
	return NULL;
}

int crypto_sealed_kid(const char *sealed, char *kid, size_t kidlen)
{
	const char *colon = sealed ? strchr(sealed, ':') : NULL;
	size_t n;

	if (!colon)
		return -1;
	n = (size_t)(colon - sealed);
	if (n == 0 || n > SEAL_LABEL_MAX || n >= kidlen)
		return -1;
	memcpy(kid, sealed, n);
	kid[n] = '\0';
	return 0;
}

char *crypto_open_bound(const unsigned char key[32], const char *sealed,
			const struct seal_bind *b, size_t *len)
{
	char kid[SEAL_LABEL_MAX + 1];
	const char *b64;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	char *plain = NULL, *aad = NULL;
	size_t b64len, rawlen, ctlen, plainsize = 0, aadlen = 0;
	int n, fin, pad = 0, dec;

	if (len != NULL)
		*len = 0;
	if (!key || crypto_sealed_kid(sealed, kid, sizeof(kid)) != 0)
		return NULL;
	b64 = sealed + strlen(kid) + 1;
	b64len = strlen(b64);
	if (b64len == 0 || b64len % 4 != 0 || b64len > (size_t)INT32_MAX)
		return NULL;
	aad = seal_aad(kid, b, &aadlen);
	if (!aad)
		return NULL;
	if (b64[b64len - 1] == '=')
		pad++;
	if (b64[b64len - 2] == '=')
		pad++;
	raw = malloc(b64len / 4 * 3);
	if (raw == NULL)
		goto fail;
	/* EVP_DecodeBlock counts '=' padding as zero bytes; subtract it. */
	dec = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)b64len);
	if (dec < 0 || (size_t)dec != b64len / 4 * 3)
		goto fail;
	rawlen = (size_t)dec - (size_t)pad;
	if (rawlen < KEYRING_NONCE_LEN + KEYRING_TAG_LEN)
		goto fail;
	ctlen = rawlen - KEYRING_NONCE_LEN - KEYRING_TAG_LEN;
	plainsize = ctlen + 1;
	plain = malloc(plainsize);
	if (plain == NULL)
		goto fail;
	ctx = seal_cipher(key, raw, aad, aadlen, 0);
	if (ctx == NULL)
		goto fail;
	n = 0;
	if (ctlen > 0 && EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n,
					   raw + KEYRING_NONCE_LEN, (int)ctlen) != 1)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KEYRING_TAG_LEN,
				raw + KEYRING_NONCE_LEN + ctlen) != 1)
		goto fail;
	fin = 0;
	/* The tag check happens here: a tampered blob, a wrong key, or a blob
	 * moved to another row, column, table or key id fails. */
	if (EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &fin) != 1 ||
	    (size_t)(n + fin) != ctlen)
		goto fail;
	plain[ctlen] = '\0';
	if (len != NULL)
		*len = ctlen;
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	free(aad);
	return plain;
fail:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	free(aad);
	if (plain != NULL) {
		OPENSSL_cleanse(plain, plainsize);
		free(plain);
	}
	return NULL;
}

char *keyring_seal(const struct keyring *k, enum keyring_purpose p, const struct seal_bind *b,
		   const void *plain, size_t len)
{
	const struct data_key *dk;

	if (k == NULL || k->nkeys == 0 || (int)p < 0 || p >= KP_COUNT)
		return NULL;
	dk = &k->keys[k->nkeys - 1];
	return crypto_seal_bound(dk->sub[p], dk->kid, b, plain, len);
}

char *keyring_open(const struct keyring *k, enum keyring_purpose p, const struct seal_bind *b,
		   const char *sealed, size_t *len)
{
	const struct data_key *dk;
	char kid[KEYRING_KID_MAX + 1];

	if (len != NULL)
		*len = 0;
	if (k == NULL || sealed == NULL || (int)p < 0 || p >= KP_COUNT ||
	    crypto_sealed_kid(sealed, kid, sizeof(kid)) != 0)
		return NULL;
	dk = keyring_find(k, kid, strlen(kid));
	if (dk == NULL)
		return NULL;
	return crypto_open_bound(dk->sub[p], sealed, b, len);
}

const unsigned char *keyring_subkey(const struct keyring *k, enum keyring_purpose p,
				    const char *kid)
{
	const struct data_key *dk;

	if (k == NULL || k->nkeys == 0 || (int)p < 0 || p >= KP_COUNT)
		return NULL;
	dk = kid ? keyring_find(k, kid, strlen(kid)) : &k->keys[k->nkeys - 1];
	return dk ? dk->sub[p] : NULL;
}

const char *keyring_current_kid(const struct keyring *k)
{
	return k && k->nkeys ? k->keys[k->nkeys - 1].kid : NULL;
}

int keyring_token_hash(const struct keyring *k, const void *secret, size_t len, char out[65])
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;

	if (out)
		out[0] = '\0';
	if (k == NULL || k->token_key == NULL || secret == NULL || out == NULL)
		return -1;
	if (HMAC(EVP_sha256(), k->token_key, (int)k->token_key_len, secret, len, mac,
		 &maclen) == NULL || maclen != 32) {
		OPENSSL_cleanse(mac, sizeof(mac));
		return -1;
	}
	hex_encode(mac, 32, out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

int keyring_token_binding(const struct keyring *k, const char *token_hash, const char *role,
			  const char *subject_id, long long expires_epoch, char out[65])
{
	char msg[256];
	char subj[40];
	size_t n = subject_id ? strlen(subject_id) : 0;
	int len;

	if (out)
		out[0] = '\0';
	if (!token_hash || !role || !subject_id || n >= sizeof(subj) || !out)
		return -1;
	for (size_t i = 0; i <= n; i++)
		subj[i] = (char)tolower((unsigned char)subject_id[i]);
	len = snprintf(msg, sizeof(msg), "bind|v1|%s|%s|%s|%lld", token_hash, role, subj,
		       expires_epoch);
	if (len < 0 || (size_t)len >= sizeof(msg))
		return -1;
	return keyring_token_hash(k, msg, (size_t)len, out);
}

int crypto_uuid_v4(char out[37])
{
	unsigned char b[16];
	static const char digits[] = "0123456789abcdef";
	size_t o = 0;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	for (size_t i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = digits[b[i] >> 4];
		out[o++] = digits[b[i] & 15];
	}
	out[o] = '\0';
	return 0;
}

int crypto_random_b64url(size_t nbytes, char *out, size_t outlen)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char *buf;
	size_t i, o = 0;
	unsigned int acc = 0;
	int bits = 0;

	if (out == NULL || nbytes == 0 || outlen < (nbytes * 8 + 5) / 6 + 1)
		return -1;
	buf = malloc(nbytes);
	if (buf == NULL)
		return -1;
	if (RAND_bytes(buf, (int)nbytes) != 1) {
		free(buf);
		return -1;
	}
	for (i = 0; i < nbytes; i++) {
		acc = (acc << 8 | buf[i]) & 0xffffu;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = alphabet[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = alphabet[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	OPENSSL_cleanse(buf, nbytes);
	free(buf);
	return 0;
}

void crypto_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		/* Only on allocation failure inside OpenSSL; an empty string
		 * never matches a stored hash. */
		out[0] = '\0';
		return;
	}
	hex_encode(md, 32, out);
}

int crypto_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}
