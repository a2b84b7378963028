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
 * Sealed format: "<kid>:" + base64(nonce[12] | ciphertext | tag[16]), with a
 * fresh random nonce per seal and the kid as additional authenticated data,
 * so a ciphertext cannot be relabelled to another key id unnoticed.
 */
#include "keyring.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define KEYRING_MAX_FILE 65536   /* a key file bigger than this is a mistake */
#define KEYRING_KID_MAX 32
#define KEYRING_KEY_LEN 32       /* AES-256 */
#define KEYRING_NONCE_LEN 12
#define KEYRING_TAG_LEN 16
#define KEYRING_UIC_MIN 32

struct data_key {
	char kid[KEYRING_KID_MAX + 1];
	unsigned char key[KEYRING_KEY_LEN];
};

struct keyring {
	unsigned char *uic_key;
	size_t uic_key_len;
	struct data_key *keys;   /* in file order; keys[nkeys - 1] is current */
	size_t nkeys;
};

static void keyring_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void keyring_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

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

static int keyring_load_uic(struct keyring *k, const char *path, char *err, size_t errlen)
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
		k->uic_key = malloc(hexlen / 2);
		if (k->uic_key == NULL)
			goto oom;
		for (i = 0; i < hexlen / 2; i++)
			k->uic_key[i] = (unsigned char)(hexval(buf[2 * i]) << 4 | hexval(buf[2 * i + 1]));
		k->uic_key_len = hexlen / 2;
	} else {
		if (len < KEYRING_UIC_MIN) {
			keyring_err(err, errlen, "%s: key too short: need at least %d bytes", path,
				    KEYRING_UIC_MIN);
			goto out;
		}
		k->uic_key = malloc(len);
		if (k->uic_key == NULL)
			goto oom;
		memcpy(k->uic_key, buf, len);
		k->uic_key_len = len;
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
	if (keyring_load_uic(k, uic_key_file, err, errlen) != 0)
		goto fail;
	if (keyring_load_data(k, data_key_file, err, errlen) != 0)
		goto fail;
	return k;
fail:
	keyring_free(k);
	return NULL;
}

void keyring_free(struct keyring *k)
{
	if (k == NULL)
		return;
	if (k->uic_key != NULL) {
		OPENSSL_cleanse(k->uic_key, k->uic_key_len);
		free(k->uic_key);
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

char *keyring_seal(const struct keyring *k, const void *plain, size_t len)
{
	const struct data_key *dk;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	size_t rawlen, kidlen, b64len;
	char *out = NULL;
	int n, fin;

	if (k == NULL || k->nkeys == 0 || (plain == NULL && len > 0) || len > (size_t)1 << 30)
		return NULL;
	dk = &k->keys[k->nkeys - 1];
	kidlen = strlen(dk->kid);
	rawlen = KEYRING_NONCE_LEN + len + KEYRING_TAG_LEN;
	raw = malloc(rawlen);
	if (raw == NULL)
		goto fail;
	/* A fresh random 96-bit nonce per seal: with one key the collision
	 * bound stays far beyond the number of records this service keeps. */
	if (RAND_bytes(raw, KEYRING_NONCE_LEN) != 1)
		goto fail;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto fail;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KEYRING_NONCE_LEN, NULL) != 1 ||
	    EVP_EncryptInit_ex(ctx, NULL, NULL, dk->key, raw) != 1)
		goto fail;
	if (EVP_EncryptUpdate(ctx, NULL, &n, (const unsigned char *)dk->kid, (int)kidlen) != 1)
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
	memcpy(out, dk->kid, kidlen);
	out[kidlen] = ':';
	if (EVP_EncodeBlock((unsigned char *)out + kidlen + 1, raw, (int)rawlen) != (int)b64len)
		goto fail;
	EVP_CIPHER_CTX_free(ctx);
	free(raw);   /* nonce, ciphertext and tag only: nothing secret */
	return out;
fail:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	free(out);
	return NULL;
}

char *keyring_open(const struct keyring *k, const char *sealed, size_t *len)
{
	const struct data_key *dk;
	const char *colon, *b64;
	EVP_CIPHER_CTX *ctx = NULL;
	unsigned char *raw = NULL;
	char *plain = NULL;
	size_t b64len, rawlen, ctlen, plainsize = 0;
	int n, fin, pad = 0, dec;

	if (len != NULL)
		*len = 0;
	if (k == NULL || sealed == NULL)
		return NULL;
	colon = strchr(sealed, ':');
	if (colon == NULL)
		return NULL;
	dk = keyring_find(k, sealed, (size_t)(colon - sealed));
	if (dk == NULL)
		return NULL;
	b64 = colon + 1;
	b64len = strlen(b64);
	if (b64len == 0 || b64len % 4 != 0 || b64len > (size_t)INT32_MAX)
		return NULL;
	if (b64[b64len - 1] == '=')
		pad++;
	if (b64[b64len - 2] == '=')
		pad++;
	raw = malloc(b64len / 4 * 3);
	if (raw == NULL)
		return NULL;
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
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		goto fail;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, KEYRING_NONCE_LEN, NULL) != 1 ||
	    EVP_DecryptInit_ex(ctx, NULL, NULL, dk->key, raw) != 1)
		goto fail;
	if (EVP_DecryptUpdate(ctx, NULL, &n, (const unsigned char *)dk->kid,
			      (int)strlen(dk->kid)) != 1)
		goto fail;
	n = 0;
	if (ctlen > 0 && EVP_DecryptUpdate(ctx, (unsigned char *)plain, &n,
					   raw + KEYRING_NONCE_LEN, (int)ctlen) != 1)
		goto fail;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KEYRING_TAG_LEN,
				raw + KEYRING_NONCE_LEN + ctlen) != 1)
		goto fail;
	fin = 0;
	/* The tag check happens here: a tampered blob or a wrong key fails. */
	if (EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + n, &fin) != 1 ||
	    (size_t)(n + fin) != ctlen)
		goto fail;
	plain[ctlen] = '\0';
	if (len != NULL)
		*len = ctlen;
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	return plain;
fail:
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	if (plain != NULL) {
		OPENSSL_cleanse(plain, plainsize);
		free(plain);
	}
	return NULL;
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
