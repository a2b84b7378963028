/*
 * db_pool_int.h - what db_pool.c and db_conn.c share: the layout of the pool,
 * its connections and its operations, and the few calls across the line
 * between the two files.
 *
 * Owns: nothing at run time; it only divides the work. db_pool.c owns the
 * operations, the FIFO, the deadlines, the down state, the counters and the
 * public API (db_pool.h); db_conn.c owns each connection's session: its
 * PGconn, socket event, timer, prepares, backoff and cancel thread.
 * Must never: be included outside db_pool.c and db_conn.c (everyone else uses
 * db_pool.h); declare anything either file can keep static.
 */
#ifndef REFD_DB_POOL_INT_H
#define REFD_DB_POOL_INT_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include <event2/util.h>

#include "db_pool.h"

struct event;
struct cancel_job;

/* Reconnect backoff starts here and doubles up to reconnect_max_ms. */
#define DB_BACKOFF_MIN_MS 100

enum conn_state {
	CS_BACKOFF = 0,
	CS_CONNECTING,
	CS_SETUP,
	CS_PREPARING,
	CS_IDLE,
	CS_BUSY,
	CS_DRAINING,
};

enum op_where { OP_QUEUED = 0, OP_RUNNING, OP_DONE };

struct db_stmt {
	char *name;
	char *sql;
	int nparams;
};

struct db_op {
	TAILQ_ENTRY(db_op) link;     /* pool->queue (OP_QUEUED) or pool->done (OP_DONE) */
	struct db_pool *pool;
	struct db_conn *conn;        /* OP_RUNNING only */
	enum op_where where;
	int stmt_idx;                /* -1: not registered (the server will say so) */
	char *stmt;
	int nparams;
	char **values;
	db_cb cb;
	void *arg;
	struct event *timer;         /* deadline; made active to deliver completion */
	enum db_status status;       /* OP_DONE */
	PGresult *res;               /* OP_DONE */
};

struct db_conn {
	struct db_pool *pool;
	const struct db_conn_events *events;  /* the pool's, see below */
	int idx;
	enum conn_state state;
	PGconn *pg;
	struct event *ev;            /* socket event; recreated when fd or interest changes */
	evutil_socket_t ev_fd;
	short ev_what;
	struct event *timer;         /* backoff, connect/setup timeout, drain grace/poll */
	long backoff_ms;
	int fail_streak;             /* consecutive failures: log the first loudly only */
	int prep_next;               /* connect-time prepare cursor */
	char *prepared;              /* per statement: prepared on this session */
	int op_prepping;             /* BUSY: a lazy PQsendPrepare for op runs first */
	int flushing;                /* PQflush said 1: wait for write too */
	struct db_op *op;            /* BUSY */
	PGresult *res;               /* result collected for the current step */
	struct cancel_job *cancel;   /* DRAINING */
	int drained;                 /* DRAINING: the cancelled query came back */
	uint64_t drain_deadline;
};

TAILQ_HEAD(op_list, db_op);

struct db_pool {
	struct event_base *base;
	struct db_pool_opts o;
	char *conninfo;
	struct db_stmt *stmts;
	int nstmts, capstmts;
	struct db_conn *conns;
	struct op_list queue;
	int nqueue;
	struct op_list done;
	int started, closed;
	uint64_t down_since;         /* monotonic ms; 0 while some connection is ready */
	struct event *down_timer;    /* fires DB_DOWN_GRACE_MS after down_since */
	int down;                    /* the grace passed with nothing ready: fail fast */
	unsigned long errors, timeouts, reconnects;
	uint64_t rng;
};

/* ---- how a connection reports to its pool ----
 * db_pool.c hands these to each connection at db_conn_init, so db_conn.c
 * never calls into db_pool.c by name: the dependency has one direction. */
struct db_conn_events {
	/* Finish op (detached from the queue and from any connection): the
	 * loop runs its callback later, never inside the caller. */
	void (*op_done)(struct db_op *op, enum db_status st, PGresult *res);
	/* A connection became ready: the pool is up again. */
	void (*up)(struct db_pool *p);
	/* A connection left the ready states: start the down clock if none is. */
	void (*lost)(struct db_pool *p);
	/* A connection is idle: hand waiting operations to idle connections. */
	void (*idle)(struct db_pool *p);
	/* Backoff jitter from the pool's generator. */
	uint64_t (*rand)(struct db_pool *p);
};

/* ---- db_conn.c, for db_pool.c ---- */

/* Fill slot idx of p->conns (zeroed by the pool): BACKOFF, nothing open. */
int db_conn_init(struct db_conn *c, struct db_pool *p, int idx,
		 const struct db_conn_events *events);
/* Free what db_conn_init allocated (the session must be closed already). */
void db_conn_destroy(struct db_conn *c);
/* Begin a non-blocking connect. */
void db_conn_start(struct db_conn *c);
/* Tear the session down (no reconnect, no callback). */
void db_conn_close(struct db_conn *c);
/* The running operation's deadline passed (op already detached): cancel. */
void db_conn_cancel(struct db_conn *c);
/* Run op on an idle connection. */
void db_conn_send_op(struct db_conn *c, struct db_op *op);

#endif
