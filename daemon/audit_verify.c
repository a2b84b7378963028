/*
 * audit_verify.c - `referrald --verify-audit`: walk the audit hash chain and
 * name the first record that was altered, inserted or removed.
 *
 * The chain is streamed with one COPY ... TO STDOUT (no paging, no server-side
 * hashing) and every hash is recomputed here, so the check trusts neither the
 * database's functions nor its stored hashes: only the raw fields. The
 * canonical content is defined in sql/functions/03_audit.sql (v1 and v2):
 *   v1: seq|at|actor_role|actor_id|action|object_type|object_id|outcome|request_id
 *   v2: v2|seq|at|actor_role|actor_id|credential_id|action|object_type|
 *       object_id|outcome|request_id
 *   (at in UTC with microseconds, NULL as the empty string)
 *   hash = SHA-256(prev_hash || canonical), prev_hash of seq 1 = 32 zero bytes
 * Only sealed records form the chain. Finally the chain head (last_seq,
 * last_hash) must match the last record, so a removed tail or an appended
 * forgery is found too, and unsealed records older than [audit]
 * max_unsealed_age are reported (the sealer stopped, or a transaction has
 * held the horizon back that long).
 *
 * What the chain alone cannot find: a superuser who rewrites a record and
 * every later one and the head consistently (the chain has no secret).
 * --head FILE closes that: a signed head published earlier (GET
 * /v1/audit/head, the audit.head event) must still be in the chain, at its
 * seq, with its hash and time.
 *
 * Owns: one blocking libpq connection for the command (no event loop exists).
 * Must never: print record contents beyond seq, position and the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <openssl/evp.h>

#include "audit_verify.h"
#include "cli.h"
#include "config.h"
#include "audit_head.h"

#define AV_FIELDS 13

struct av_state {
	unsigned char prev[32];
	long long expect_seq;  /* next seq the chain must show */
	long long position;    /* 1-based index of the row being checked */
	EVP_MD_CTX *md;
	long long bad_seq;     /* first broken record, or 0 */
	long long bad_pos;
	const char *reason;
	const struct audit_head *head;  /* to find in the chain, or NULL */
	int head_found;
};

static int av_hex(const char *s, size_t n, unsigned char *out, size_t outlen)
{
	size_t i;

	if (n != outlen * 2)
		return -1;
	for (i = 0; i < outlen; i++) {
		int hi, lo;
		char a = s[2 * i], b = s[2 * i + 1];

		hi = a >= '0' && a <= '9' ? a - '0' : a >= 'a' && a <= 'f' ? a - 'a' + 10 : -1;
		lo = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ? b - 'a' + 10 : -1;
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* Split one COPY text row in place into fields, undoing COPY's backslash
 * escapes. \N (NULL) becomes the empty string, as in the canonical form. */
static int av_split(char *line, size_t len, char *f[AV_FIELDS], size_t flen[AV_FIELDS])
{
	size_t i = 0, n = 0;
	char *w = line;

	if (len && line[len - 1] == '\n')
		len--;
	f[0] = line;
	while (i < len) {
		char ch = line[i++];

		if (ch == '\t') {
			/* Fields are compacted towards the start of the line (the
			 * write pointer never passes the read pointer), so the next
			 * field begins where this one's text ends. */
			flen[n] = (size_t)(w - f[n]);
			if (++n >= AV_FIELDS)
				return -1;
			f[n] = w;
			continue;
		}
		if (ch == '\\' && i < len) {
			char e = line[i++];

			switch (e) {
			case 'N': continue;
			case 't': ch = '\t'; break;
			case 'n': ch = '\n'; break;
			case 'r': ch = '\r'; break;
			default: ch = e; break;
			}
		}
		*w++ = ch;
	}
	flen[n] = (size_t)(w - f[n]);
	return n == AV_FIELDS - 1 ? 0 : -1;
}

static void av_fail(struct av_state *st, long long seq, const char *reason)
{
	if (st->bad_seq)
		return;
	st->bad_seq = seq;
	st->bad_pos = st->position;
	st->reason = reason;
}

/* Check one record. Fields: seq, at, actor_role, actor_id, action,
 * object_type, object_id, outcome, request_id, prev_hash hex, hash hex,
 * version, credential_id. */
static int av_row(struct av_state *st, char *line, size_t len)
{
	char *f[AV_FIELDS];
	size_t fl[AV_FIELDS], k;
	unsigned char prev[32], hash[32], want[32];
	unsigned int wlen = 0;
	long long seq;

	st->position++;
	if (av_split(line, len, f, fl) < 0 || av_hex(f[9], fl[9], prev, 32) < 0 ||
	    av_hex(f[10], fl[10], hash, 32) < 0) {
		av_fail(st, st->expect_seq, "unreadable");
		return -1;
	}
	{
		char num[24];

		if (fl[0] == 0 || fl[0] >= sizeof(num)) {
			av_fail(st, st->expect_seq, "unreadable");
			return -1;
		}
		memcpy(num, f[0], fl[0]);
		num[fl[0]] = '\0';
		seq = atoll(num);
	}
	if (seq != st->expect_seq) {
		/* Sequence numbers are dense (the chain head hands them out under
		 * its row lock), so a gap is a removed record. */
		av_fail(st, st->expect_seq, seq > st->expect_seq ? "removed" : "inserted");
		return -1;
	}
	if (memcmp(prev, st->prev, 32) != 0) {
		av_fail(st, seq, "broken_link");
		return -1;
	}
	EVP_DigestInit_ex(st->md, EVP_sha256(), NULL);
	EVP_DigestUpdate(st->md, st->prev, 32);
	if (fl[11] == 1 && f[11][0] == '1') {
		for (k = 0; k < 9; k++) {
			if (k)
				EVP_DigestUpdate(st->md, "|", 1);
			EVP_DigestUpdate(st->md, f[k], fl[k]);
		}
	} else if (fl[11] == 1 && f[11][0] == '2') {
		/* v2: seq, at, role, actor, credential, then action..request_id. */
		static const int order[10] = { 0, 1, 2, 3, 12, 4, 5, 6, 7, 8 };

		EVP_DigestUpdate(st->md, "v2", 2);
		for (k = 0; k < 10; k++) {
			EVP_DigestUpdate(st->md, "|", 1);
			EVP_DigestUpdate(st->md, f[order[k]], fl[order[k]]);
		}
	} else {
		av_fail(st, seq, "unreadable");
		return -1;
	}
	EVP_DigestFinal_ex(st->md, want, &wlen);
	if (memcmp(want, hash, 32) != 0) {
		av_fail(st, seq, "altered");
		return -1;
	}
	if (st->head && seq == st->head->seq) {
		unsigned char hh[32];

		st->head_found = 1;
		if (av_hex(st->head->hash, 64, hh, 32) < 0 || memcmp(hh, hash, 32) != 0 ||
		    fl[1] != strlen(st->head->at) || memcmp(f[1], st->head->at, fl[1]) != 0) {
			av_fail(st, seq, "differs_from_published_head");
			return -1;
		}
	}
	memcpy(st->prev, hash, 32);
	st->expect_seq++;
	return 0;
}

static const char av_copy_sql[] =
	"COPY (SELECT seq,"
	" to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
	" actor_role, actor_id, action, object_type, object_id, outcome, request_id,"
	" encode(prev_hash, 'hex'), encode(hash, 'hex'), version, credential_id"
	" FROM audit_log WHERE seq IS NOT NULL ORDER BY seq) TO STDOUT";

int audit_verify_conn(PGconn *c, const struct audit_head *head, long max_unsealed_age_ms,
		      struct audit_verify_result *out)
{
	struct av_state st;
	PGresult *res;
	char *buf = NULL;
	int n, rc = -1;

	memset(&st, 0, sizeof(st));
	memset(out, 0, sizeof(*out));
	st.expect_seq = 1;
	st.head = head;
	st.md = EVP_MD_CTX_new();
	if (!st.md)
		return -1;

	/* One snapshot for the rows and the head, so a record committed while
	 * we read cannot look like a forgery. */
	res = PQexec(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto done;
	PQclear(res);
	res = PQexec(c, av_copy_sql);
	if (PQresultStatus(res) != PGRES_COPY_OUT)
		goto done;
	PQclear(res);
	res = NULL;
	while ((n = PQgetCopyData(c, &buf, 0)) > 0) {
		if (!st.bad_seq)
			av_row(&st, buf, (size_t)n);
		PQfreemem(buf);
		buf = NULL;
	}
	if (n == -2)
		goto done;
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto done;
	PQclear(res);

	res = PQexec(c, "SELECT last_seq, encode(last_hash, 'hex') FROM audit_chain_head");
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		goto done;
	if (!st.bad_seq) {
		long long head_seq = atoll(PQgetvalue(res, 0, 0));
		unsigned char head_hash[32];
		const char *hh = PQgetvalue(res, 0, 1);

		if (head_seq > st.expect_seq - 1) {
			st.position++;
			av_fail(&st, st.expect_seq, "removed");
		} else if (head_seq < st.expect_seq - 1) {
			/* Records past the head were never handed out by it. */
			st.position = head_seq + 1;
			av_fail(&st, head_seq + 1, "inserted");
		} else if (head_seq > 0 &&
			   (av_hex(hh, strlen(hh), head_hash, 32) < 0 ||
			    memcmp(head_hash, st.prev, 32) != 0)) {
			av_fail(&st, head_seq, "altered");
		}
	}
	if (!st.bad_seq && head && !st.head_found && head->seq > 0) {
		/* The chain ends before the published head: its tail is gone. */
		st.position = st.expect_seq;
		av_fail(&st, st.expect_seq, "published_head_missing");
	}
	PQclear(res);
	{
		char age[32];
		const char *v[1] = { age };

		snprintf(age, sizeof(age), "%ld", max_unsealed_age_ms);
		res = PQexecParams(c, "SELECT count(*), count(*) FILTER (WHERE at < now() - "
				      "$1::bigint * interval '1 millisecond') FROM audit_log "
				      "WHERE seq IS NULL", 1, NULL, v, NULL, NULL, 0);
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		goto done;
	out->unsealed = atoll(PQgetvalue(res, 0, 0));
	out->unsealed_old = atoll(PQgetvalue(res, 0, 1));
	out->head_found = st.head_found;
	out->checked = st.bad_seq ? st.bad_pos - 1 : st.expect_seq - 1;
	out->bad_seq = st.bad_seq;
	out->bad_position = st.bad_pos;
	out->reason = st.reason;
	rc = 0;
done:
	if (res)
		PQclear(res);
	res = PQexec(c, "ROLLBACK");
	PQclear(res);
	EVP_MD_CTX_free(st.md);
	return rc;
}

/* The head file: at most 4 KiB of JSON. */
static int av_load_head(const char *path, struct audit_head *h)
{
	char buf[4097], err[120];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f) {
		fprintf(stderr, "referrald: cannot open head file %s\n", path);
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (n == sizeof(buf)) {
		fprintf(stderr, "referrald: head file %s is larger than 4 KiB\n", path);
		return -1;
	}
	if (audit_head_parse(buf, n, h, err, sizeof(err)) < 0) {
		fprintf(stderr, "referrald: head file %s: %s\n", path, err);
		return -1;
	}
	return 0;
}

int cli_verify_audit(const struct config *cfg, const struct audit_signer *signer,
		     const char *head_file)
{
	PGconn *c;
	struct audit_verify_result r;
	struct audit_head head;
	struct timespec t0, t1;
	double secs;
	int rc = 0;

	if (head_file) {
		if (av_load_head(head_file, &head) < 0)
			return 1;
		if (signer && strcmp(head.key_id, audit_signer_key_id(signer)) == 0) {
			if (!audit_head_check(signer, &head)) {
				printf("published head REJECTED: its signature does not verify under "
				       "key %s\n", head.key_id);
				return 1;
			}
			printf("published head seq %lld: signature valid (key %s)\n", head.seq,
			       head.key_id);
		} else {
			printf("published head seq %lld: signature NOT checked (key %s is not this "
			       "server's signing key)\n", head.seq, head.key_id);
		}
	}
	c = PQconnectdb(cfg->db_conninfo ? cfg->db_conninfo : "");
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "referrald: database connection failed: %s", PQerrorMessage(c));
		PQfinish(c);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (audit_verify_conn(c, head_file ? &head : NULL, cfg->audit_max_unsealed_age_ms, &r) < 0) {
		const char *msg = PQerrorMessage(c);

		/* Server messages here concern the audit table itself (rights,
		 * connection), never client data. */
		fprintf(stderr, "referrald: audit verification could not read the chain: %s",
			msg && *msg ? msg : "unexpected result\n");
		PQfinish(c);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	PQfinish(c);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (r.bad_seq) {
		printf("audit chain BROKEN: first bad record at position %lld (seq %lld): %s; "
		       "%lld records before it are intact\n",
		       r.bad_position, r.bad_seq, r.reason, r.checked);
		rc = 1;
	} else {
		printf("audit chain intact: %lld records verified in %.3f s (%.0f records/s)\n",
		       r.checked, secs, secs > 0 ? (double)r.checked / secs : 0.0);
		if (head_file)
			printf("published head seq %lld found unchanged in the chain\n", head.seq);
	}
	printf("unsealed records: %lld, older than max_unsealed_age: %lld\n", r.unsealed,
	       r.unsealed_old);
	if (r.unsealed_old > 0) {
		printf("audit chain STALLED: %lld unsealed records older than %ld ms (is a sealer "
		       "running? is a transaction held open?)\n",
		       r.unsealed_old, cfg->audit_max_unsealed_age_ms);
		rc = 1;
	}
	return rc;
}
