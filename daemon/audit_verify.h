/*
 * audit_verify.h - verification of the hash-chained audit trail.
 */
#ifndef REFD_AUDIT_VERIFY_H
#define REFD_AUDIT_VERIFY_H

#include <libpq-fe.h>

struct audit_verify_result {
	long long checked;       /* records verified intact before the first bad one */
	long long bad_seq;       /* seq of the first bad record, 0 when intact */
	long long bad_position;  /* its 1-based position in the chain */
	const char *reason;      /* "altered", "removed", "inserted", "broken_link", "unreadable",
				    "differs_from_published_head", "published_head_missing" */
	long long unsealed;      /* records not sealed yet */
	long long unsealed_old;  /* of which older than the bound */
	int head_found;          /* the given head's seq was in the chain */
};

struct audit_head;

/* Walk the whole sealed chain on a connected (blocking) libpq connection;
 * with head, also check the record at head->seq has its hash and time.
 * Returns 0 with *out filled, or -1 when the chain could not be read. */
int audit_verify_conn(PGconn *c, const struct audit_head *head, long max_unsealed_age_ms,
		      struct audit_verify_result *out);

#endif
