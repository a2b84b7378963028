/*
 * migrate.h - the database's code embedded in the binary (forward-only
 * migrations from sql/migrations/, re-applied functions from sql/functions/)
 * and the start-up durability check. See migrate.c.
 */
#ifndef REFD_MIGRATE_H
#define REFD_MIGRATE_H

#include <stddef.h>

struct migration {
	int version;
	const char *name;
	const char *checksum; /* SHA-256 (hex) of the file, recorded when applied */
	const char *sql;
};
/* Generated at build time (build/migrations.c). */
extern const struct migration refd_migrations[];
extern const int refd_migrations_count;

struct sql_file {
	const char *name;
	const char *sql;
};
/* sql/functions/ in file-name order, and the SHA-256 (hex) of their names and
 * contents, recorded in schema_functions when applied. */
extern const struct sql_file refd_functions[];
extern const int refd_functions_count;
extern const char refd_functions_checksum[];

/* apply = 1: apply pending migrations, then the functions if any migration
 * was applied or their checksum differs; apply = 0: only check. Returns the
 * number of pending steps left (pending migrations, plus one when the
 * functions are out of date; 0 = current), or -1 with err set. */
int migrate_run(const char *conninfo, int apply, char *err, size_t errlen);
/* Refuse durability off: fsync, full_page_writes, synchronous_commit. */
int migrate_check_durability(const char *conninfo, char *err, size_t errlen);

#endif
