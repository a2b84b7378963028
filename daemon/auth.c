/*
 * auth.c - who is calling: a bearer token (Authorization: Bearer only) or,
 * without one, the office bound to the verified client certificate.
 *
 * Owns: the credential's extraction and syntax check, its keyed hash
 * (HMAC-SHA256 under the token key file: a row someone wrote into the
 * database without that file matches no token anybody can present), the
 * asynchronous lookup (auth_token / auth_cert), filling r->who, and the 401.
 * Also owns the cache of verified tokens (auth.h): a hit saves the lookup's
 * round trip, never the check, which the acting statement repeats in the
 * database (api_call.c, queries.c); a miss there drops the entry.
 * Must never: accept a credential from the query string (a URL ends up in
 * proxy logs and browser history: such a request is refused with 401 even if
 * it also carries a valid header); log or keep a token in clear; compare
 * secrets itself (the database looks up the hash through a unique index; the
 * cache compares keyed hashes in constant time, and only finds what the
 * database already matched); cache a principal whose binding did not verify.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>

#include "app.h"
#include "auth.h"
#include "auth_limits.h"
#include "config.h"
#include "db_pool.h"
#include "keyring.h"
#include "log.h"
#include "request.h"

#define AUTH_TOKEN_MIN 20
#define AUTH_TOKEN_MAX 512

struct auth_state {
	struct req *r;
	auth_next next;
	char token_hash[65];  /* what we looked up, "" for a certificate */
};

/* Direct-mapped by the hash's first hex digits: a token in use stays, a
 * colliding one replaces it (both stay correct; one pays a round trip). */
#define AUTH_CACHE_SLOTS 512

struct auth_cache_entry {
	char hash[65];                       /* "" = empty slot */
	char expect[REQ_AUTH_EXPECT_MAX];    /* auth_token()'s text */
	struct principal who;                /* without credential_id */
	long long expires;                   /* the token's expiry, epoch seconds */
};

struct auth_cache {
	struct auth_cache_entry e[AUTH_CACHE_SLOTS];
};

struct auth_cache *auth_cache_new(void)
{
	return calloc(1, sizeof(struct auth_cache));
}

void auth_cache_free(struct auth_cache *c)
{
	if (!c)
		return;
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static struct auth_cache_entry *auth_cache_slot(const struct req *r, const char *hash)
{
	struct auth_cache *c = r->app ? r->app->auth_cache : NULL;
	unsigned long v;
	char head[9];

	if (!c)
		return NULL;
	memcpy(head, hash, 8);
	head[8] = '\0';
	v = strtoul(head, NULL, 16);
	return &c->e[v % AUTH_CACHE_SLOTS];
}

static void auth_cache_drop(struct req *r, const char *hash)
{
	struct auth_cache_entry *e = auth_cache_slot(r, hash);

	if (e && e->hash[0] && crypto_equal(e->hash, hash, 64))
		OPENSSL_cleanse(e, sizeof(*e));
}

static void auth_cache_put(struct req *r, const char *hash, const char *text, size_t len,
			   long long expires)
{
	struct auth_cache_entry *e = auth_cache_slot(r, hash);

	if (!e || len >= sizeof(e->expect) || expires <= (long long)time(NULL))
		return;
	OPENSSL_cleanse(e, sizeof(*e));
	memcpy(e->hash, hash, 64);
	e->hash[64] = '\0';
	memcpy(e->expect, text, len);
	e->expect[len] = '\0';
	e->who = r->who;
	memset(e->who.credential_id, 0, sizeof(e->who.credential_id));
	e->expires = expires;
}

/* A verified principal for this hash, copied into r; 0 on a miss. */
static int auth_cache_get(struct req *r, const char *hash, auth_next next)
{
	struct auth_cache_entry *e = auth_cache_slot(r, hash);

	if (!e || !e->hash[0] || !crypto_equal(e->hash, hash, 64))
		return 0;
	if (e->expires <= (long long)time(NULL)) {
		OPENSSL_cleanse(e, sizeof(*e));
		return 0;
	}
	r->who = e->who;
	memcpy(r->auth_hash, hash, 65);
	memcpy(r->auth_expect, e->expect, sizeof(r->auth_expect));
	r->auth_cached = 1;
	r->auth_next = next;
	return 1;
}

json_t *auth_who_json(const struct principal *p)
{
	return json_pack("{s:s, s:s, s:s?, s:b, s:s?, s:s?}", "role", role_to_str(p->role), "id",
			 p->id, "org_id", p->org_id[0] ? p->org_id : NULL, "programme",
			 p->programme_scope ? 1 : 0, "token_id",
			 p->token_id[0] ? p->token_id : NULL, "credential_id",
			 p->credential_id[0] ? p->credential_id : NULL);
}

/* Counted against the address and audited (auth_limits.c) before the 401. */
static void auth_reply_401(struct req *r, const char *reason, const char *message)
{
	log_event(LOG_INFO, r->id, "auth_failed", "route=%s reason=%s",
		  r->route_name ? r->route_name : "-", reason);
	auth_limits_failed(r, reason, message);
}

/* Any of these names in the query string is a credential in a URL. */
static int auth_query_has_credential(const char *query)
{
	static const char *const names[] = {"token", "access_token", "bearer", "api_key",
					    "apikey", "auth", NULL};
	struct evkeyvalq q;
	struct evkeyval *kv;
	int found = 0;

	if (!query || !*query)
		return 0;
	TAILQ_INIT(&q);
	if (evhttp_parse_query_str(query, &q) != 0) {
		evhttp_clear_headers(&q);
		/* Unparseable: look for the raw names so a malformed query
		 * cannot smuggle a token past this check. */
		return strstr(query, "token") != NULL;
	}
	TAILQ_FOREACH(kv, &q, next) {
		for (const char *const *n = names; *n; n++)
			if (strcasecmp(kv->key, *n) == 0)
				found = 1;
	}
	evhttp_clear_headers(&q);
	return found;
}

static int auth_token_syntax_ok(const char *t, size_t n)
{
	if (n < AUTH_TOKEN_MIN || n > AUTH_TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		/* RFC 6750 b64token characters. */
		if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' ||
		      c == '/' || c == '='))
			return 0;
	}
	return 1;
}

static enum role auth_role_parse(const char *s)
{
	if (!s)
		return ROLE_NONE;
	if (strcmp(s, "office") == 0)
		return ROLE_OFFICE;
	if (strcmp(s, "worker") == 0)
		return ROLE_WORKER;
	if (strcmp(s, "supervisor") == 0)
		return ROLE_SUPERVISOR;
	if (strcmp(s, "admin") == 0)
		return ROLE_ADMIN;
	return ROLE_NONE;
}

static int auth_copy_id(char *dst, size_t dstlen, const json_t *v, int required)
{
	const char *s = json_string_value(v);

	if (!s || !*s) {
		dst[0] = '\0';
		return required ? -1 : 0;
	}
	if (strlen(s) >= dstlen)
		return -1;
	strcpy(dst, s);
	return 0;
}

/* Parse the principal returned by auth_token/auth_cert into r->who. For a
 * token, the stored hash the database returns must equal the one we computed:
 * compared in constant time here, so the decision never rests on how the
 * database compared (collation, case folding, a wrong row). */
static int auth_fill_principal(struct req *r, const char *text, size_t len,
			       const char *token_hash, long long *expires)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	struct principal p;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	if (!json_is_object(j))
		goto fail;
	p.role = auth_role_parse(json_string_value(json_object_get(j, "role")));
	if (p.role == ROLE_NONE)
		goto fail;
	if (token_hash[0]) {
		const char *stored = json_string_value(json_object_get(j, "token_hash"));
		const char *binding = json_string_value(json_object_get(j, "binding"));
		const char *subject = json_string_value(json_object_get(j, "id"));
		json_t *exp = json_object_get(j, "expires_epoch");
		char want[65];
		int ok;

		if (!stored || strlen(stored) != 64 || !crypto_equal(stored, token_hash, 64))
			goto fail;
		/* The row must still say what it said when it was minted. */
		if (!binding || strlen(binding) != 64 || !subject || !json_is_integer(exp) ||
		    keyring_token_binding(r->app ? r->app->keys : NULL, token_hash,
					  role_to_str(p.role), subject,
					  (long long)json_integer_value(exp), want) != 0) {
			rc = -2;
			goto fail;
		}
		ok = crypto_equal(binding, want, 64);
		OPENSSL_cleanse(want, sizeof(want));
		if (!ok) {
			rc = -2;
			goto fail;
		}
		*expires = (long long)json_integer_value(exp);
	}
	if (auth_copy_id(p.id, sizeof(p.id), json_object_get(j, "id"), 1) < 0 ||
	    auth_copy_id(p.org_id, sizeof(p.org_id), json_object_get(j, "org_id"), 0) < 0 ||
	    auth_copy_id(p.token_id, sizeof(p.token_id), json_object_get(j, "token_id"), 0) < 0)
		goto fail;
	p.programme_scope = json_is_true(json_object_get(j, "programme"));
	r->who = p;
	rc = 0;
fail:
	json_decref(j);
	return rc;
}

static void auth_done(void *arg, enum db_status st, const PGresult *res)
{
	struct auth_state *s = arg;
	struct req *r = s->r;
	auth_next next = s->next;
	char token_hash[65];
	long long expires = 0;
	int rc;

	memcpy(token_hash, s->token_hash, sizeof(token_hash));
	OPENSSL_cleanse(s->token_hash, sizeof(s->token_hash));
	free(s);
	switch (st) {
	case DB_OK:
		break;
	case DB_SQL_ERROR:
		log_event(LOG_ERROR, r->id, "auth_lookup_failed", "sqlstate=%s",
			  res ? db_sqlstate(res) : "");
		req_reply_unavailable(r, 1);
		return;
	default:
		log_event(LOG_WARN, r->id, "auth_lookup_failed", "status=%s", db_status_to_str(st));
		req_reply_unavailable(r, 1);
		return;
	}
	if (!res || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		/* Unknown, expired or revoked: deliberately one answer for all. */
		auth_reply_401(r, "unknown_credential", "invalid or expired credentials");
		return;
	}
	rc = auth_fill_principal(r, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
				 token_hash, &expires);
	if (rc == -2) {
		/* A token row changed or written in the database without the
		 * token key: refused like an unknown token, and said loudly. */
		OPENSSL_cleanse(token_hash, sizeof(token_hash));
		log_event(LOG_ERROR, r->id, "token_row_tampered", "route=%s",
			  r->route_name ? r->route_name : "-");
		auth_reply_401(r, "tampered_credential", "invalid or expired credentials");
		return;
	}
	if (rc < 0) {
		OPENSSL_cleanse(token_hash, sizeof(token_hash));
		log_event(LOG_ERROR, r->id, "auth_lookup_failed", "reason=bad_principal");
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	/* Verified (hash and binding): later requests with this token skip
	 * the lookup and re-check it inside their own statement. */
	if (token_hash[0])
		auth_cache_put(r, token_hash, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0),
			       expires);
	OPENSSL_cleanse(token_hash, sizeof(token_hash));
	auth_limits_credential_name(r);
	next(r);
}

static void auth_submit(struct req *r, auth_next next, const char *stmt, int n,
			const char *const *values, const char *token_hash)
{
	struct auth_state *s = calloc(1, sizeof(*s));

	if (!s) {
		req_reply_unavailable(r, 1);
		return;
	}
	s->r = r;
	s->next = next;
	if (token_hash)
		memcpy(s->token_hash, token_hash, sizeof(s->token_hash));
	if (!r->app || !r->app->pool ||
	    !db_submit(r->app->pool, stmt, n, values, auth_done, s, 0)) {
		free(s);
		req_reply_unavailable(r, 1);
	}
}

void auth_begin(struct req *r, auth_next next)
{
	const char *h = req_header(r, "Authorization");

	memset(&r->who, 0, sizeof(r->who));
	if (auth_query_has_credential(r->query)) {
		auth_reply_401(r, "token_in_url", "credentials are not accepted in the URL");
		return;
	}
	if (h) {
		char hex[65];
		const char *tok;
		size_t n;

		if (strncasecmp(h, "Bearer ", 7) != 0) {
			auth_reply_401(r, "bad_scheme", "use Authorization: Bearer");
			return;
		}
		tok = h + 7;
		while (*tok == ' ')
			tok++;
		n = strlen(tok);
		while (n > 0 && tok[n - 1] == ' ')
			n--;
		if (!auth_token_syntax_ok(tok, n)) {
			auth_reply_401(r, "bad_token_syntax", "invalid or expired credentials");
			return;
		}
		if (!r->app || keyring_token_hash(r->app->keys, tok, n, hex) != 0) {
			req_reply_unavailable(r, 1);
			return;
		}
		if (auth_cache_get(r, hex, next)) {
			OPENSSL_cleanse(hex, sizeof(hex));
			auth_limits_credential_name(r);
			next(r);
			return;
		}
		const char *values[1] = {hex};
		auth_submit(r, next, "auth_token", 1, values, hex);
		OPENSSL_cleanse(hex, sizeof(hex));
		return;
	}
	if (r->cert.present) {
		const struct config *cfg = r->app ? r->app->cfg : NULL;
		int by_subject = cfg && cfg->office_cert_identity == CERT_ID_SUBJECT;
		const char *values[2] = {by_subject ? NULL : r->cert.fingerprint,
					 by_subject ? r->cert.subject : NULL};

		if (!values[0] && !values[1]) {
			auth_reply_401(r, "no_credential", "authentication required");
			return;
		}
		auth_submit(r, next, "auth_cert", 2, values, NULL);
		return;
	}
	auth_reply_401(r, "no_credential", "authentication required");
}

void auth_recheck(struct req *r)
{
	char hex[65];

	memcpy(hex, r->auth_hash, sizeof(hex));
	auth_cache_drop(r, hex);
	r->auth_cached = 0;
	OPENSSL_cleanse(r->auth_hash, sizeof(r->auth_hash));
	OPENSSL_cleanse(r->auth_expect, sizeof(r->auth_expect));
	memset(&r->who, 0, sizeof(r->who));
	if (!r->auth_next || strlen(hex) != 64) {
		OPENSSL_cleanse(hex, sizeof(hex));
		req_reply_error(r, 500, "internal_error", "internal error", NULL);
		return;
	}
	const char *values[1] = {hex};
	auth_submit(r, r->auth_next, "auth_token", 1, values, hex);
	OPENSSL_cleanse(hex, sizeof(hex));
}
