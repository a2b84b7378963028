/*
 * audit_head.h - the audit chain's signed head: the Ed25519 signing key,
 * signing and checking `seq|hash|at`, and the head's JSON form.
 */
#ifndef REFD_AUDIT_HEAD_H
#define REFD_AUDIT_HEAD_H

#include <stddef.h>
#include <jansson.h>

struct audit_signer;

#define AUDIT_HEAD_AT_MAX 40
#define AUDIT_KEY_ID_MAX 65

struct audit_head {
	long long seq;                   /* 0 for an empty chain */
	char hash[65];                   /* lowercase hex */
	char at[AUDIT_HEAD_AT_MAX];      /* canonical form, "" for an empty chain */
	char key_id[AUDIT_KEY_ID_MAX];
	unsigned char sig[64];
	int has_sig;
};

/* Load an Ed25519 private key (PEM, PKCS#8) from path. The key id is the
 * first 16 hex digits of SHA-256 of the raw public key. NULL + err. */
struct audit_signer *audit_signer_load(const char *path, char *err, size_t errlen);
void audit_signer_free(struct audit_signer *s);
const char *audit_signer_key_id(const struct audit_signer *s);
/* The public key as PEM (SubjectPublicKeyInfo), owned by s. */
const char *audit_signer_public_pem(const struct audit_signer *s);

/* The signed bytes: "seq|hash|at" into buf; its length, or -1. */
int audit_head_message(const struct audit_head *h, char *buf, size_t buflen);
/* Sign h (fills key_id, sig, has_sig). 0 or -1. */
int audit_head_sign(const struct audit_signer *s, struct audit_head *h);
/* 1 when h's signature verifies under s's public key, 0 when not. */
int audit_head_check(const struct audit_signer *s, const struct audit_head *h);

/* {"seq","hash","at","key_id","signature"} (signature base64); NULL on OOM. */
json_t *audit_head_to_json(const struct audit_head *h);
/* Strict parse of that object (no other field, each field well-formed;
 * "at" may be null only when seq is 0). 0, or -1 with a reason in err. */
int audit_head_parse(const char *text, size_t len, struct audit_head *h, char *err,
		     size_t errlen);
/* Fill seq/hash/at from the database's audit_head() JSON. 0 or -1. */
int audit_head_from_db(const char *text, size_t len, struct audit_head *h);

#endif
