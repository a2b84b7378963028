/*
 * queries.c - the table of prepared statements.
 *
 * Owns: the static SQL text of every statement the daemon prepares; callers
 * refer to a statement by its name only.
 * Must never: contain SQL assembled at run time, or anything that depends on
 * request data; parameters always travel separately as $n.
 */
#include <stddef.h>

#include "db_pool.h"
#include "queries.h"

static const struct query queries[] = {
	/* api_health.c: schema version the database has reached. */
	{ "readyz", "SELECT coalesce(max(version),0) FROM schema_migrations", 0 },

	/* sweeper.c: claim and act on due deadlines (FOR UPDATE SKIP LOCKED). */
	{ "deadline_sweep", "SELECT deadline_sweep($1::int)", 1 },

	/* Other modules append their statements here. */
};

const struct query *queries_table(int *count)
{
	*count = (int)(sizeof(queries) / sizeof(queries[0]));
	return queries;
}

int queries_register(struct db_pool *p)
{
	size_t i;

	for (i = 0; i < sizeof(queries) / sizeof(queries[0]); i++) {
		if (db_pool_prepare(p, queries[i].name, queries[i].sql, queries[i].nparams) != 0)
			return -1;
	}
	return 0;
}
