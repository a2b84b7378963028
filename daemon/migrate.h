/*
 * migrate.h - forward-only schema migrations embedded in the binary from
 * sql/migrations/NNNN_name.sql, and the start-up durability check.
 *
 * Owns: the schema_migrations table; one transaction per migration.
 * Runs only before the event loop starts (blocking libpq is fine there, and
 * nowhere else).
 */
#ifndef REFD_MIGRATE_H
#define REFD_MIGRATE_H

#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *sql;
};
/* Generated at build time (build/migrations.c). */
extern const struct migration refd_migrations[];
extern const int refd_migrations_count;

/* apply = 1: apply pending migrations; apply = 0: only check. Returns the
 * number of pending migrations left (0 = current), or -1 with err set. */
int migrate_run(const char *conninfo, int apply, char *err, size_t errlen);
/* Refuse durability off: fsync, full_page_writes, synchronous_commit. */
int migrate_check_durability(const char *conninfo, char *err, size_t errlen);

#endif
