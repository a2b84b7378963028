/*
 * keyring.h - client-data cryptography: UIC pseudonymisation (HMAC-SHA256
 * under a key kept outside the database), the keyed hash of bearer tokens and
 * sign-in codes (its own key file), and AES-256-GCM sealing under purpose
 * subkeys with every value bound to its table, column, row and key id.
 * Also the random tokens, uuids and SHA-256 helpers the rest of the daemon
 * uses.
 */
#ifndef REFD_KEYRING_H
#define REFD_KEYRING_H

#include <stddef.h>

struct keyring;

/* What a subkey is for (HKDF-SHA256 info strings in keyring.c). */
enum keyring_purpose {
	KP_CLIENT_DATA = 0,   /* "referrald/client-data": contact, notes, free text */
	KP_WEBHOOK_SECRET,    /* "referrald/webhook-secret" */
	KP_DEK_WRAP,          /* "referrald/dek-wrap": per-referral data keys */
	KP_COUNT
};

/* Where a sealed value lives. The AEAD's associated data is
 * "v2|" kid "|" table "|" column "|" row_id (row_id compared lowercased).
 * No part may be empty or hold '|'. */
struct seal_bind {
	const char *table;
	const char *column;
	const char *row_id;
};

struct keyring *keyring_load(const char *uic_key_file, const char *data_key_file, char *err,
			     size_t errlen);
/* The token key file ([security] token_key_file); required by the daemon. */
int keyring_load_token_key(struct keyring *k, const char *token_key_file, char *err,
			   size_t errlen);
void keyring_free(struct keyring *k);

/* HMAC-SHA256 of the UIC upper-cased, as 64 lowercase hex chars + NUL. */
int keyring_uic_hash(const struct keyring *k, const char *uic, char out[65]);
/* HMAC-SHA256 under the token key of a bearer token or sign-in code, as 64
 * lowercase hex chars + NUL: the only form in which those are stored. */
int keyring_token_hash(const struct keyring *k, const void *secret, size_t len, char out[65]);

/* The MAC that ties a token row to what it grants: HMAC under the token key
 * of "bind|v1|" token_hash "|" role "|" subject_id "|" expires (Unix
 * seconds). Stored beside the hash; checked at every authentication, so a
 * row whose role, subject or expiry was changed in the database no longer
 * authenticates. 64 hex chars + NUL. */
int keyring_token_binding(const struct keyring *k, const char *token_hash, const char *role,
			  const char *subject_id, long long expires_epoch, char out[65]);

/* Seal with the current key's subkey for purpose p, bound to b: returns a
 * malloc'd "kid:base64(nonce|ciphertext|tag)", or NULL. */
char *keyring_seal(const struct keyring *k, enum keyring_purpose p, const struct seal_bind *b,
		   const void *plain, size_t len);
/* Open a value sealed for purpose p at b; malloc'd NUL-terminated plaintext,
 * or NULL when it does not open (tampered, moved, unknown key id). */
char *keyring_open(const struct keyring *k, enum keyring_purpose p, const struct seal_bind *b,
		   const char *sealed, size_t *len);
/* The 32-byte subkey of purpose p for key id kid (NULL: the current key),
 * for modules that wrap their own keys (datakey.c); NULL if unknown. */
const unsigned char *keyring_subkey(const struct keyring *k, enum keyring_purpose p,
				    const char *kid);
const char *keyring_current_kid(const struct keyring *k);

/* The same sealed format and binding under a caller's 32-byte key (a
 * per-referral data key): kid is the label stored before the ':'. */
char *crypto_seal_bound(const unsigned char key[32], const char *kid, const struct seal_bind *b,
			const void *plain, size_t len);
char *crypto_open_bound(const unsigned char key[32], const char *sealed,
			const struct seal_bind *b, size_t *len);
/* The key id of a sealed value into kid (NUL-terminated); 0 or -1. */
int crypto_sealed_kid(const char *sealed, char *kid, size_t kidlen);

/* n random bytes from OpenSSL's RNG as base64url without padding; 0 on success. */
int crypto_random_b64url(size_t nbytes, char *out, size_t outlen);
/* A random (version 4) uuid in lowercase text; 0 on success. */
int crypto_uuid_v4(char out[37]);
void crypto_sha256_hex(const void *data, size_t len, char out[65]);
/* Constant-time comparison of equal-length buffers. */
int crypto_equal(const void *a, const void *b, size_t len);

#endif
