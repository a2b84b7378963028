/*
 * initkeys.c - `referrald --init-keys`: the first install needs no
 * hand-written key material.
 *
 * Owns: the table of key files (which config key names a file, and in which
 * format its material is made), making fresh material from OpenSSL's random
 * generator, and writing each file once (O_EXCL, mode 0600, fsync'ed, then
 * handed to [server] user when run as root).
 * Must never: overwrite, truncate or follow a symbolic link to an existing
 * file (a key that changes orphans every hash and ciphertext made with it);
 * print key material anywhere; leave a partly written file behind.
 */
#include "initkeys.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "config.h"

enum keyfile_format {
	KF_HEX_SECRET,   /* 32 random bytes as 64 hex digits and a newline */
	KF_KEYRING,      /* "k1 <64 hex digits>\n": a keyring with one current key */
	KF_ED25519_PEM,  /* an Ed25519 private key, PKCS#8 PEM */
};

struct keyfile_kind {
	const char *section, *name;  /* the config key that names the file */
	size_t offset;               /* its char * in struct config */
	enum keyfile_format format;
	const char *what;
};

/* One line per key file the daemon reads. An optional key left unset in
 * the configuration is skipped. */
static const struct keyfile_kind keyfiles[] = {
	{ "security", "uic_key_file", offsetof(struct config, uic_key_file), KF_HEX_SECRET,
	  "UIC key" },
	{ "security", "data_key_file", offsetof(struct config, data_key_file), KF_KEYRING,
	  "data keyring" },
	{ "security", "token_key_file", offsetof(struct config, token_key_file), KF_HEX_SECRET,
	  "token key" },
	{ "audit", "signing_key_file", offsetof(struct config, audit_signing_key_file),
	  KF_ED25519_PEM, "audit head signing key" },
};
#define NKEYFILES (sizeof(keyfiles) / sizeof(keyfiles[0]))

#define KEY_BYTES 32
#define MATERIAL_MAX 512

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int make_ed25519(char *buf, size_t cap, size_t *len)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	BIO *b = BIO_new(BIO_s_secmem());
	char *data;
	long n;
	int rc = -1;

	if (pk && b && PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) == 1) {
		n = BIO_get_mem_data(b, &data);
		if (n > 0 && (size_t)n < cap) {
			memcpy(buf, data, (size_t)n);
			*len = (size_t)n;
			rc = 0;
		}
	}
	BIO_free(b);
	EVP_PKEY_free(pk);
	return rc;
}

/* Fresh material for one file, in buf (cleansed by the caller). */
static int make_material(enum keyfile_format f, char *buf, size_t cap, size_t *len)
{
	unsigned char raw[KEY_BYTES];
	char hex[2 * KEY_BYTES + 1];
	int n = -1;

	if (f == KF_ED25519_PEM)
		return make_ed25519(buf, cap, len);
	if (RAND_priv_bytes(raw, sizeof(raw)) != 1)
		return -1;
	hex_encode(raw, sizeof(raw), hex);
	switch (f) {
	case KF_HEX_SECRET:
		n = snprintf(buf, cap, "%s\n", hex);
		break;
	case KF_KEYRING:
		n = snprintf(buf, cap, "k1 %s\n", hex);
		break;
	case KF_ED25519_PEM:
		break;
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(hex, sizeof(hex));
	if (n < 0 || (size_t)n >= cap)
		return -1;
	*len = (size_t)n;
	return 0;
}

/* 0 written, 1 existed (untouched), -1 failed (reason on stderr). */
static int write_keyfile(const struct keyfile_kind *k, const char *path, const struct passwd *owner)
{
	char buf[MATERIAL_MAX];
	size_t len = 0, off = 0;
	int fd, rc = -1;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST) {
			fprintf(stderr, "referrald: %s.%s: \"%s\" exists: refusing to overwrite it\n",
				k->section, k->name, path);
			return 1;
		}
		fprintf(stderr, "referrald: %s.%s: cannot create \"%s\": %s\n", k->section,
			k->name, path, strerror(errno));
		return -1;
	}
	if (make_material(k->format, buf, sizeof(buf), &len) < 0) {
		fprintf(stderr, "referrald: %s.%s: no key material (OpenSSL)\n", k->section,
			k->name);
		goto out;
	}
	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "referrald: %s.%s: writing \"%s\": %s\n", k->section,
				k->name, path, strerror(errno));
			goto out;
		}
		off += (size_t)w;
	}
	/* open()'s mode passed through the umask; say it outright. */
	if (fchmod(fd, 0600) < 0 ||
	    (owner && fchown(fd, owner->pw_uid, owner->pw_gid) < 0) || fsync(fd) < 0) {
		fprintf(stderr, "referrald: %s.%s: \"%s\": %s\n", k->section, k->name, path,
			strerror(errno));
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	if (rc < 0)
		unlink(path); /* never leave a half-made key to be mistaken for one */
	return rc;
}

int initkeys_run(const struct config *cfg)
{
	const struct passwd *owner = NULL;
	int rc = 0, made = 0;

	if (geteuid() == 0 && cfg->run_user) {
		owner = getpwnam(cfg->run_user);
		if (!owner) {
			fprintf(stderr, "referrald: server.user: no such user \"%s\"\n",
				cfg->run_user);
			return 1;
		}
	}
	for (size_t i = 0; i < NKEYFILES; i++) {
		const struct keyfile_kind *k = &keyfiles[i];
		const char *path = *(char *const *)((const char *)cfg + k->offset);
		int r;

		if (!path)
			continue;
		r = write_keyfile(k, path, owner);
		if (r == 0) {
			printf("created %s (%s.%s): %s\n", k->what, k->section, k->name, path);
			made++;
		} else {
			rc = 1;
		}
	}
	fflush(stdout);
	if (rc != 0)
		fprintf(stderr, "referrald: --init-keys: %d key file(s) created, "
			"existing files left untouched\n", made);
	return rc;
}
