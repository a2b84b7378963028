/*
 * queries.h - the prepared statements the daemon runs.
 * What it owns and must never do: queries.c.
 */
#ifndef REFD_QUERIES_H
#define REFD_QUERIES_H

#include <stddef.h>

struct db_pool;

struct query {
	const char *name;   /* passed to db_submit() */
	const char *sql;
	int nparams;
};

/* Register every statement of the table with the pool (before db_pool_start).
 * Returns 0, or -1 if the pool refused one. */
int queries_register(struct db_pool *p);

/* The name of an operation's twin with the caller's authentication folded
 * in (queries.c: $4 token hash, $5 the verified principal; NULL result when
 * the principal no longer holds), into out. -1 when name has none. */
#define QUERIES_FOLDED_SUFFIX "+auth"
int queries_folded_name(const char *name, char *out, size_t outlen);

/* The table itself, for tests and --check-config style listings. */
const struct query *queries_table(int *count);

#endif
