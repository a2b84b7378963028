/*
 * db_pool.h - asynchronous libpq connection pool on the daemon's event loop.
 *
 * Owns: N connections (non-blocking connect with PQconnectStart/PQconnectPoll,
 * PQsetnonblocking), the prepared statements registered before start (prepared
 * on every connection after it connects), one operation in flight per
 * connection, a FIFO of waiting operations, a deadline per operation (cancel
 * and DB_TIMEOUT when it passes), reconnect with backoff.
 * Must never: call a blocking libpq function from the event loop; log query
 * parameters or full server error texts (they may hold data); keep a PGresult
 * past the callback.
 */
#ifndef REFD_DB_POOL_H
#define REFD_DB_POOL_H

#include <libpq-fe.h>

struct event_base;
struct db_pool;
struct db_op;

enum db_status {
	DB_OK = 0,          /* res is the statement's result (PGRES_TUPLES_OK / COMMAND_OK) */
	DB_SQL_ERROR,       /* the server rejected the statement: res holds the error (sqlstate) */
	DB_UNAVAILABLE,     /* no connection could run it (server down, pool closing) */
	DB_TIMEOUT,         /* the operation's deadline passed (the query was cancelled) */
};
const char *db_status_to_str(enum db_status s);

/* res is owned by the pool and valid only during the callback (NULL unless
 * DB_OK or DB_SQL_ERROR). Called exactly once per submitted operation, always
 * from the event loop, never from inside db_submit(). */
typedef void (*db_cb)(void *arg, enum db_status st, const PGresult *res);

struct db_pool_opts {
	const char *conninfo;
	int size;
	long query_timeout_ms;      /* default deadline per op */
	long connect_timeout_ms;
	long reconnect_max_ms;
	long statement_timeout_ms;  /* SET statement_timeout on each connection (server side too) */
};

struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_opts *o);
/* Register a prepared statement; only before db_pool_start(). */
int db_pool_prepare(struct db_pool *p, const char *name, const char *sql, int nparams);
int db_pool_start(struct db_pool *p);
/* Close every connection; waiting operations get DB_UNAVAILABLE. */
void db_pool_close(struct db_pool *p);
void db_pool_free(struct db_pool *p);

/* Run a registered prepared statement. values are text-format parameters
 * (NULL entry = SQL NULL); the pool copies them, so they may be freed once this
 * returns. timeout_ms <= 0 uses the pool default. Returns NULL (and never calls
 * cb) only if the pool is closed; otherwise cb is called exactly once. */
struct db_op *db_submit(struct db_pool *p, const char *stmt, int nparams,
			const char *const *values, db_cb cb, void *arg, long timeout_ms);

struct db_pool_stats {
	int size;           /* configured connections */
	int connected;      /* connections ready for queries */
	int busy;           /* connections with an operation in flight */
	int waiting;        /* operations queued */
	unsigned long errors;   /* DB_SQL_ERROR + DB_UNAVAILABLE + DB_TIMEOUT so far */
	unsigned long timeouts;
	unsigned long reconnects;
};
void db_pool_get_stats(const struct db_pool *p, struct db_pool_stats *out);

/* Sqlstate of an error result, or "" */
const char *db_sqlstate(const PGresult *res);

#endif
