/*
 * datakey.c - per-referral data keys (DEKs): each referral's personal fields
 * are sealed under a random 32-byte key of its own, and destroying that key
 * is their erasure (crypto-erasure; SECURITY.md).
 *
 * A key is stored only in the key store ([security] key_store_conninfo), a
 * database of its own, table data_keys (referral_id, wrapped): wrapped is
 * the key sealed under the keyring's KP_DEK_WRAP subkey, labelled with the
 * KEK's key id (so the KEK can rotate: referrald --rewrap-keys) and bound to
 * ("data_keys", "dek", referral id). A value sealed under a data key is
 * labelled "d@" + referral id, so whoever opens it knows which key to ask
 * for, and the label is part of the associated data.
 *
 * Opened keys are kept in a bounded cache (DATAKEY_CACHE_SLOTS, direct
 * mapped; an entry lives DATAKEY_CACHE_TTL_MS at most, so a key erased by
 * another daemon is gone from this one's memory within that time). Every
 * slot and every set is OPENSSL_cleanse()d when dropped.
 *
 * Owns: the key store's statements, the cache, key generation, wrapping.
 * Must never: write a data key anywhere but the key store (wrapped) and
 * memory it cleanses; log a key, a wrapped key or a plaintext; keep a key
 * of a referral it was told to erase.
 */
#include "datakey.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "clock.h"
#include "log.h"

#define DATAKEY_CACHE_SLOTS 4096          /* a power of two */
#define DATAKEY_CACHE_TTL_MS 60000L
#define DATAKEY_FETCH_MAX 256              /* ids per statement */

static const struct query_def {
	const char *name, *sql;
	int nparams;
} datakey_queries[] = {
	/* Every key waiting for the store in one statement and one commit
	 * (datakey_put_flush): $1 the ids, $2 the wrapped keys, as arrays. */
	{ "dek_put",
	  "INSERT INTO data_keys (referral_id, wrapped) SELECT * FROM unnest($1::uuid[], $2::text[])",
	  2 },
	{ "dek_get",
	  "SELECT referral_id::text, wrapped FROM data_keys WHERE referral_id = ANY($1::uuid[])", 1 },
	{ "dek_delete", "DELETE FROM data_keys WHERE referral_id = ANY($1::uuid[])", 1 },
};

struct dk_slot {
	char id[DATAKEY_ID_LEN + 1];   /* "" when free */
	unsigned char key[DATAKEY_LEN];
	uint64_t at_ms;
};

struct dk_put;

struct datakeys {
	struct db_pool *store;
	const struct keyring *k;
	struct dk_slot *slots;
	void (*erase_hook)(void *);
	void *erase_arg;
	/* New keys waiting for the store: sent together once a statement
	 * slot is free (at most puts_max in flight, one per connection). */
	struct dk_put *pending, **pending_tail;
	int puts_inflight, puts_max;
};

struct dek_entry {
	char id[DATAKEY_ID_LEN + 1];
	unsigned char key[DATAKEY_LEN];
};

struct dek_set {
	size_t n, cap;
	struct dek_entry *e;
};

struct dk_op {
	struct datakeys *d;
	datakeys_cb cb;
	void *arg;
	struct dek_set *set;    /* what the cache had, and (create) the new key */
};

/* One new key on its way to the store. */
struct dk_put {
	struct dk_op *op;
	char *wrapped;
	struct dk_put *next;
};

int datakeys_register(struct db_pool *store)
{
	for (size_t i = 0; i < sizeof(datakey_queries) / sizeof(datakey_queries[0]); i++)
		if (db_pool_prepare(store, datakey_queries[i].name, datakey_queries[i].sql,
				    datakey_queries[i].nparams) != 0)
			return -1;
	return 0;
}

struct datakeys *datakeys_new(struct db_pool *store, const struct keyring *k)
{
	struct datakeys *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->slots = calloc(DATAKEY_CACHE_SLOTS, sizeof(*d->slots));
	if (!d->slots) {
		free(d);
		return NULL;
	}
	d->store = store;
	d->k = k;
	d->pending_tail = &d->pending;
	{
		struct db_pool_stats st;

		db_pool_get_stats(store, &st);
		d->puts_max = st.size > 0 ? st.size : 1;
	}
	return d;
}

void datakeys_free(struct datakeys *d)
{
	if (!d)
		return;
	/* Keys never sent (the loop stopped): dropped, cleansed. */
	while (d->pending) {
		struct dk_put *p = d->pending;

		d->pending = p->next;
		dek_set_free(p->op->set);
		free(p->op);
		free(p->wrapped);
		free(p);
	}
	OPENSSL_cleanse(d->slots, DATAKEY_CACHE_SLOTS * sizeof(*d->slots));
	free(d->slots);
	free(d);
}

void datakeys_set_erase_hook(struct datakeys *d, void (*hook)(void *), void *arg)
{
	if (!d)
		return;
	d->erase_hook = hook;
	d->erase_arg = arg;
}

void datakeys_erase_queued(struct datakeys *d)
{
	if (d && d->erase_hook)
		d->erase_hook(d->erase_arg);
}

/* A referral id as stored: 36 characters of a uuid, lowercased. */
static int datakey_norm_id(const char *id, char out[DATAKEY_ID_LEN + 1])
{
	size_t i;

	if (!id || strlen(id) != DATAKEY_ID_LEN)
		return -1;
	for (i = 0; i < DATAKEY_ID_LEN; i++) {
		int c = (unsigned char)id[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return -1;
		} else if (!isxdigit(c)) {
			return -1;
		}
		out[i] = (char)tolower(c);
	}
	out[DATAKEY_ID_LEN] = '\0';
	return 0;
}

/* ---------------------------------------------------------------- sets */

static struct dek_set *dek_set_new(void)
{
	return calloc(1, sizeof(struct dek_set));
}

static int dek_set_add(struct dek_set *s, const char *id, const unsigned char key[DATAKEY_LEN])
{
	if (dek_set_get(s, id))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		struct dek_entry *e = calloc(cap, sizeof(*e));
		if (!e)
			return -1;
		if (s->e) {
			memcpy(e, s->e, s->n * sizeof(*e));
			OPENSSL_cleanse(s->e, s->cap * sizeof(*s->e));
			free(s->e);
		}
		s->e = e;
		s->cap = cap;
	}
	memcpy(s->e[s->n].id, id, DATAKEY_ID_LEN + 1);
	memcpy(s->e[s->n].key, key, DATAKEY_LEN);
	s->n++;
	return 0;
}

const unsigned char *dek_set_get(const struct dek_set *s, const char *referral_id)
{
	char id[DATAKEY_ID_LEN + 1];

	if (!s || datakey_norm_id(referral_id, id) != 0)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->e[i].id, id) == 0)
			return s->e[i].key;
	return NULL;
}

void dek_set_free(struct dek_set *s)
{
	if (!s)
		return;
	if (s->e) {
		OPENSSL_cleanse(s->e, s->cap * sizeof(*s->e));
		free(s->e);
	}
	free(s);
}

/* --------------------------------------------------------------- cache */

static struct dk_slot *datakey_slot(struct datakeys *d, const char *id)
{
	uint32_t h = 2166136261u;   /* FNV-1a over the id's text */

	for (const char *p = id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &d->slots[h & (DATAKEY_CACHE_SLOTS - 1)];
}

static const unsigned char *datakey_cache_get(struct datakeys *d, const char *id)
{
	struct dk_slot *s = datakey_slot(d, id);

	if (s->id[0] == '\0' || strcmp(s->id, id) != 0)
		return NULL;
	if (clock_mono_ms() - s->at_ms > (uint64_t)DATAKEY_CACHE_TTL_MS) {
		OPENSSL_cleanse(s, sizeof(*s));
		return NULL;
	}
	return s->key;
}

static void datakey_cache_put(struct datakeys *d, const char *id, const unsigned char *key)
{
	struct dk_slot *s = datakey_slot(d, id);

	OPENSSL_cleanse(s, sizeof(*s));
	memcpy(s->id, id, DATAKEY_ID_LEN + 1);
	memcpy(s->key, key, DATAKEY_LEN);
	s->at_ms = clock_mono_ms();
}

static void datakey_cache_drop(struct datakeys *d, const char *id)
{
	struct dk_slot *s = datakey_slot(d, id);

	if (strcmp(s->id, id) == 0)
		OPENSSL_cleanse(s, sizeof(*s));
}

/* ------------------------------------------------------------- sealing */

static void datakey_label(const char *id, char out[DATAKEY_ID_LEN + 3])
{
	snprintf(out, DATAKEY_ID_LEN + 3, DATAKEY_LABEL_PREFIX "%s", id);
}

int datakey_sealed_referral(const char *sealed, char out[DATAKEY_ID_LEN + 1])
{
	size_t pl = strlen(DATAKEY_LABEL_PREFIX);

	if (!sealed || strncmp(sealed, DATAKEY_LABEL_PREFIX, pl) != 0 ||
	    strlen(sealed) < pl + DATAKEY_ID_LEN + 1 || sealed[pl + DATAKEY_ID_LEN] != ':')
		return -1;
	{
		char id[DATAKEY_ID_LEN + 1];
		memcpy(id, sealed + pl, DATAKEY_ID_LEN);
		id[DATAKEY_ID_LEN] = '\0';
		return datakey_norm_id(id, out);
	}
}

char *datakey_seal(const unsigned char key[DATAKEY_LEN], const char *referral_id,
		   const struct seal_bind *b, const void *plain, size_t len)
{
	char id[DATAKEY_ID_LEN + 1], label[DATAKEY_ID_LEN + 3];

	if (!key || datakey_norm_id(referral_id, id) != 0)
		return NULL;
	datakey_label(id, label);
	return crypto_seal_bound(key, label, b, plain, len);
}

char *datakey_open(const unsigned char key[DATAKEY_LEN], const char *sealed,
		   const struct seal_bind *b, size_t *len)
{
	char id[DATAKEY_ID_LEN + 1];

	if (!key || datakey_sealed_referral(sealed, id) != 0)
		return NULL;
	return crypto_open_bound(key, sealed, b, len);
}

char *datakey_wrap(const struct keyring *k, const char *referral_id,
		   const unsigned char key[DATAKEY_LEN])
{
	char id[DATAKEY_ID_LEN + 1];
	const unsigned char *kek = keyring_subkey(k, KP_DEK_WRAP, NULL);
	const char *kid = keyring_current_kid(k);
	struct seal_bind b = { "data_keys", "dek", id };

	if (!kek || !kid || datakey_norm_id(referral_id, id) != 0)
		return NULL;
	return crypto_seal_bound(kek, kid, &b, key, DATAKEY_LEN);
}

int datakey_unwrap(const struct keyring *k, const char *referral_id, const char *wrapped,
		   unsigned char key[DATAKEY_LEN])
{
	char id[DATAKEY_ID_LEN + 1], kid[48];
	const unsigned char *kek;
	struct seal_bind b = { "data_keys", "dek", id };
	char *plain;
	size_t len = 0;
	int rc = -1;

	if (datakey_norm_id(referral_id, id) != 0 ||
	    crypto_sealed_kid(wrapped, kid, sizeof(kid)) != 0)
		return -1;
	kek = keyring_subkey(k, KP_DEK_WRAP, kid);
	if (!kek)
		return -1;
	plain = crypto_open_bound(kek, wrapped, &b, &len);
	if (plain && len == DATAKEY_LEN) {
		memcpy(key, plain, DATAKEY_LEN);
		rc = 0;
	}
	if (plain) {
		OPENSSL_cleanse(plain, len);
		free(plain);
	}
	return rc;
}

/* ------------------------------------------------------ key store calls */

static void datakey_op_end(struct dk_op *op, int ok)
{
	struct dek_set *set = ok ? op->set : NULL;

	if (!ok)
		dek_set_free(op->set);
	op->cb(op->arg, set);
	free(op);
}

/* The keys of one dek_put statement. */
struct dk_put_batch {
	struct datakeys *d;
	struct dk_put *first;
};

static void datakey_put_flush(struct datakeys *d);

/* Each key of the statement goes to its caller: all stored (one commit),
 * or none. */
static void datakey_put_done(void *arg, enum db_status st, const PGresult *res)
{
	struct dk_put_batch *b = arg;
	struct datakeys *d = b->d;
	struct dk_put *p = b->first, *next;

	(void)res;
	if (st != DB_OK)
		log_warn("datakey_store_failed", "op=put status=%s", db_status_to_str(st));
	d->puts_inflight--;
	free(b);
	for (; p; p = next) {
		next = p->next;
		if (st == DB_OK && p->op->set->n == 1)
			datakey_cache_put(d, p->op->set->e[0].id, p->op->set->e[0].key);
		datakey_op_end(p->op, st == DB_OK);
		free(p->wrapped);
		free(p);
	}
	datakey_put_flush(d);
}

/* Append s to an array literal as a quoted element (" and \ escaped);
 * the literal is kept closed ("{...}") after every call. */
static int datakey_array_add(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t need = *len + 2 * strlen(s) + 6;

	if (need > *cap) {
		size_t ncap = *cap ? *cap : 256;
		char *nb;

		while (ncap < need)
			ncap *= 2;
		nb = realloc(*buf, ncap);
		if (!nb)
			return -1;
		*buf = nb;
		*cap = ncap;
	}
	if (*len == 0)
		(*buf)[(*len)++] = '{';
	else
		(*buf)[*len - 1] = ',';     /* over the closing brace */
	(*buf)[(*len)++] = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			(*buf)[(*len)++] = '\\';
		(*buf)[(*len)++] = *s;
	}
	(*buf)[(*len)++] = '"';
	(*buf)[(*len)++] = '}';
	(*buf)[*len] = '\0';
	return 0;
}

/* Keys that never reached the store: their callers learn it (no key). */
static void datakey_put_fail(struct dk_put *p)
{
	struct dk_put *next;

	for (; p; p = next) {
		next = p->next;
		datakey_op_end(p->op, 0);
		free(p->wrapped);
		free(p);
	}
}

/* Send the waiting keys, up to DATAKEY_FETCH_MAX per statement, while a
 * statement slot is free: under load the keys of many submissions share
 * one statement and one commit in the key store instead of one each. A
 * key is handed to its caller only after its statement committed. */
static void datakey_put_flush(struct datakeys *d)
{
	while (d->pending && d->puts_inflight < d->puts_max) {
		struct dk_put *first = d->pending, *last = NULL, *p;
		struct dk_put_batch *b = NULL;
		char *ids = NULL, *keys = NULL;
		size_t il = 0, ic = 0, kl = 0, kc = 0;
		int n = 0, ok = 1;

		for (p = first; p && n < DATAKEY_FETCH_MAX; p = p->next, n++)
			last = p;
		d->pending = last->next;
		last->next = NULL;
		if (!d->pending)
			d->pending_tail = &d->pending;
		for (p = first; ok && p; p = p->next)
			ok = datakey_array_add(&ids, &il, &ic, p->op->set->e[0].id) == 0 &&
			     datakey_array_add(&keys, &kl, &kc, p->wrapped) == 0;
		if (ok && (b = calloc(1, sizeof(*b)))) {
			const char *params[2] = { ids, keys };

			b->d = d;
			b->first = first;
			d->puts_inflight++;
			if (!db_submit(d->store, "dek_put", 2, params, datakey_put_done, b, 0)) {
				d->puts_inflight--;
				free(b);
				b = NULL;
			}
		}
		free(ids);
		free(keys);
		if (!b) {
			log_warn("datakey_store_failed", "op=put status=%s", "not_sent");
			datakey_put_fail(first);
		}
	}
}

int datakeys_create(struct datakeys *d, const char *referral_id, datakeys_cb cb, void *arg)
{
	unsigned char key[DATAKEY_LEN];
	char id[DATAKEY_ID_LEN + 1], *wrapped = NULL;
	struct dk_op *op = NULL;
	struct dk_put *put = NULL;
	int rc = -1;

	if (!d || datakey_norm_id(referral_id, id) != 0 || RAND_bytes(key, sizeof(key)) != 1)
		goto out;
	op = calloc(1, sizeof(*op));
	put = calloc(1, sizeof(*put));
	if (!op || !put || !(op->set = dek_set_new()) || dek_set_add(op->set, id, key) != 0)
		goto out;
	wrapped = datakey_wrap(d->k, id, key);
	if (!wrapped)
		goto out;
	op->d = d;
	op->cb = cb;
	op->arg = arg;
	put->op = op;
	put->wrapped = wrapped;
	*d->pending_tail = put;
	d->pending_tail = &put->next;
	op = NULL;
	put = NULL;
	wrapped = NULL;
	rc = 0;
	datakey_put_flush(d);
out:
	OPENSSL_cleanse(key, sizeof(key));
	free(wrapped);
	free(put);
	if (op) {
		dek_set_free(op->set);
		free(op);
	}
	return rc;
}

static void datakey_get_done(void *arg, enum db_status st, const PGresult *res)
{
	struct dk_op *op = arg;
	int ok = st == DB_OK;

	if (!ok) {
		log_warn("datakey_store_failed", "op=get status=%s", db_status_to_str(st));
	} else {
		for (int i = 0; i < PQntuples(res); i++) {
			unsigned char key[DATAKEY_LEN];
			char id[DATAKEY_ID_LEN + 1];

			if (datakey_norm_id(PQgetvalue(res, i, 0), id) != 0 ||
			    datakey_unwrap(op->d->k, id, PQgetvalue(res, i, 1), key) != 0) {
				/* Not a key this keyring can open: refuse the
				 * whole answer rather than treat it as erased. */
				log_error("datakey_unwrap_failed", "referral=%.36s",
					  PQgetvalue(res, i, 0));
				ok = 0;
				break;
			}
			datakey_cache_put(op->d, id, key);
			if (dek_set_add(op->set, id, key) != 0)
				ok = 0;
			OPENSSL_cleanse(key, sizeof(key));
		}
	}
	datakey_op_end(op, ok);
}

/* A uuid[] literal of normalised ids, "{id,id,...}", built in a buffer
 * with room for them (DATAKEY_ID_LEN + 1 each, and 3): o starts at 1. */
static void id_list_add(char *list, size_t *o, const char *id)
{
	if (*o > 1)
		list[(*o)++] = ',';
	memcpy(list + *o, id, DATAKEY_ID_LEN);
	*o += DATAKEY_ID_LEN;
}

static void id_list_end(char *list, size_t o)
{
	list[o++] = '}';
	list[o] = '\0';
}

/* Submit a key-store statement whose one parameter is list, and free the
 * list (the pool keeps its own copy). 0, or -1: cb will not be called. */
static int datakey_submit_list(struct datakeys *d, const char *stmt, char *list, db_cb cb,
			       void *arg)
{
	const char *params[1] = { list };
	struct db_op *op = db_submit(d->store, stmt, 1, params, cb, arg, 0);

	free(list);
	return op ? 0 : -1;
}

int datakeys_fetch(struct datakeys *d, const char *const *ids, size_t n, datakeys_cb cb,
		   void *arg, struct dek_set **now)
{
	struct dek_set *set = dek_set_new();
	struct dk_op *op = NULL;
	char *list = NULL;
	size_t missing = 0, o = 1;

	*now = NULL;
	if (!d || !set)
		goto fail;
	list = malloc(n * (DATAKEY_ID_LEN + 1) + 3);
	if (!list)
		goto fail;
	list[0] = '{';
	for (size_t i = 0; i < n; i++) {
		char id[DATAKEY_ID_LEN + 1];
		const unsigned char *key;

		if (datakey_norm_id(ids[i], id) != 0 || dek_set_get(set, id))
			continue;
		key = datakey_cache_get(d, id);
		if (key) {
			if (dek_set_add(set, id, key) != 0)
				goto fail;
			continue;
		}
		if (missing >= DATAKEY_FETCH_MAX)
			continue;
		id_list_add(list, &o, id);
		missing++;
	}
	id_list_end(list, o);
	if (missing == 0) {
		free(list);
		*now = set;
		return 1;
	}
	op = calloc(1, sizeof(*op));
	if (!op)
		goto fail;
	op->d = d;
	op->cb = cb;
	op->arg = arg;
	op->set = set;
	if (datakey_submit_list(d, "dek_get", list, datakey_get_done, op) < 0) {
		free(op);
		dek_set_free(set);
		return -1;
	}
	return 0;
fail:
	free(list);
	dek_set_free(set);
	return -1;
}

struct dk_erase {
	db_cb cb;
	void *arg;
};

static void datakey_erase_done(void *arg, enum db_status st, const PGresult *res)
{
	struct dk_erase *e = arg;

	if (st != DB_OK)
		log_warn("datakey_store_failed", "op=delete status=%s", db_status_to_str(st));
	if (e->cb)
		e->cb(e->arg, st, res);
	free(e);
}

int datakeys_erase(struct datakeys *d, const char *const *ids, size_t n, db_cb cb, void *arg)
{
	struct dk_erase *e = NULL;
	char *list = NULL;
	size_t o = 1;

	if (!d)
		return -1;
	list = malloc(n * (DATAKEY_ID_LEN + 1) + 3);
	e = calloc(1, sizeof(*e));
	if (!list || !e)
		goto fail;
	list[0] = '{';
	for (size_t i = 0; i < n; i++) {
		char id[DATAKEY_ID_LEN + 1];

		if (datakey_norm_id(ids[i], id) != 0)
			continue;
		datakey_cache_drop(d, id);
		id_list_add(list, &o, id);
	}
	id_list_end(list, o);
	e->cb = cb;
	e->arg = arg;
	if (datakey_submit_list(d, "dek_delete", list, datakey_erase_done, e) == 0)
		return 0;
	list = NULL;
fail:
	free(list);
	free(e);
	return -1;
}
