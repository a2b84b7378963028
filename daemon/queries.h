/*
 * queries.h - the prepared statements the daemon runs.
 * What it owns and must never do: queries.c.
 */
#ifndef REFD_QUERIES_H
#define REFD_QUERIES_H

struct db_pool;

struct query {
	const char *name;   /* passed to db_submit() */
	const char *sql;
	int nparams;
};

/* Register every statement of the table with the pool (before db_pool_start).
 * Returns 0, or -1 if the pool refused one. */
int queries_register(struct db_pool *p);

/* The table itself, for tests and --check-config style listings. */
const struct query *queries_table(int *count);

#endif
