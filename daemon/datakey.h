/*
 * datakey.h - per-referral data keys (DEKs) in the key store, and sealing
 * under them. What it owns and must never do: datakey.c.
 */
#ifndef REFD_DATAKEY_H
#define REFD_DATAKEY_H

#include <stddef.h>

#include "db_pool.h"
#include "keyring.h"

#define DATAKEY_LEN 32
#define DATAKEY_ID_LEN 36            /* a referral id: a lowercase uuid */
#define DATAKEY_LABEL_PREFIX "d@"    /* a sealed value's label: "d@" referral id */

struct datakeys;
/* The data keys one request or run uses: a small set it owns (wiped when
 * freed). A referral whose key is not in the set has no key any more. */
struct dek_set;

/* Register the key store's statements with its pool (before db_pool_start). */
int datakeys_register(struct db_pool *store);
struct datakeys *datakeys_new(struct db_pool *store, const struct keyring *k);
/* Wipes the cache. The store pool must be closed first (no callback pending). */
void datakeys_free(struct datakeys *d);

/* set is the callback's to free (dek_set_free); NULL when the key store
 * could not answer. Never called from inside the call that started it. */
typedef void (*datakeys_cb)(void *arg, struct dek_set *set);

/* A fresh random key for referral id, wrapped under the current KEK and
 * stored; cb gets a set holding it. 0, or -1 (cb never called). */
int datakeys_create(struct datakeys *d, const char *referral_id, datakeys_cb cb, void *arg);
/* The keys of these referrals (cache, else the store). Returns 1 with *now
 * set when the cache had them all (cb not called), 0 when cb follows, -1
 * when the store's pool is closed (cb never called). */
int datakeys_fetch(struct datakeys *d, const char *const *ids, size_t n, datakeys_cb cb,
		   void *arg, struct dek_set **now);
/* Delete these referrals' keys from the cache and the key store. cb (may be
 * NULL) gets the statement's outcome. 0, or -1 (cb never called). */
int datakeys_erase(struct datakeys *d, const char *const *ids, size_t n, db_cb cb, void *arg);

/* Someone committed a referral_forget(): hook (set by main.c) runs the
 * erasure job now. No-op without a hook. */
void datakeys_set_erase_hook(struct datakeys *d, void (*hook)(void *), void *arg);
void datakeys_erase_queued(struct datakeys *d);

const unsigned char *dek_set_get(const struct dek_set *s, const char *referral_id);
void dek_set_free(struct dek_set *s);

/* The referral id of a value sealed under a data key into out, 0; -1 when
 * the value is not sealed under one (a keyring value, or garbage). */
int datakey_sealed_referral(const char *sealed, char out[DATAKEY_ID_LEN + 1]);
/* Seal under key, labelled with the referral and bound to b. malloc'd. */
char *datakey_seal(const unsigned char key[DATAKEY_LEN], const char *referral_id,
		   const struct seal_bind *b, const void *plain, size_t len);
/* Open a value sealed under a data key; NULL when it does not open. */
char *datakey_open(const unsigned char key[DATAKEY_LEN], const char *sealed,
		   const struct seal_bind *b, size_t *len);

/* Wrapping, for the re-wrap command: wrap key for referral id under the
 * current KEK ("kid:base64"), and unwrap under whichever KEK kid it names. */
char *datakey_wrap(const struct keyring *k, const char *referral_id,
		   const unsigned char key[DATAKEY_LEN]);
int datakey_unwrap(const struct keyring *k, const char *referral_id, const char *wrapped,
		   unsigned char key[DATAKEY_LEN]);

#endif
