/*
 * keyring.h - client-data cryptography: UIC pseudonymisation (HMAC-SHA256
 * under a key kept outside the database) and AES-256-GCM for contact details
 * and notes, with a key id stored beside each ciphertext so keys can rotate.
 * Also the random tokens and SHA-256 helpers the rest of the daemon uses.
 *
 * Owns: key material in memory (cleansed on free).
 * Must never: write keys or plaintext anywhere but the caller's buffers.
 */
#ifndef REFD_KEYRING_H
#define REFD_KEYRING_H

#include <stddef.h>

struct keyring;

struct keyring *keyring_load(const char *uic_key_file, const char *data_key_file, char *err,
			     size_t errlen);
void keyring_free(struct keyring *k);

/* HMAC-SHA256 of the UIC upper-cased, as 64 lowercase hex chars + NUL. */
int keyring_uic_hash(const struct keyring *k, const char *uic, char out[65]);
/* Encrypt with the current key: returns a malloc'd "kid:base64(nonce|ciphertext|tag)". */
char *keyring_seal(const struct keyring *k, const void *plain, size_t len);
/* Decrypt a sealed blob; returns malloc'd NUL-terminated plaintext or NULL. */
char *keyring_open(const struct keyring *k, const char *sealed, size_t *len);

/* n random bytes from OpenSSL's RNG as base64url without padding; 0 on success. */
int crypto_random_b64url(size_t nbytes, char *out, size_t outlen);
void crypto_sha256_hex(const void *data, size_t len, char out[65]);
/* Constant-time comparison of equal-length buffers. */
int crypto_equal(const void *a, const void *b, size_t len);

#endif
