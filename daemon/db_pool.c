/*
 * db_pool.c - asynchronous libpq connection pool on the daemon's event loop:
 * the pool side. Each connection's session is db_conn.c's; what the two
 * share is in db_pool_int.h.
 *
 * Owns: the registered prepared statements, every submitted operation
 * (from db_submit until its callback returns), the FIFO of waiting
 * operations, the per-operation deadline timers, the down state (fail fast
 * when no connection is ready), the counters, and the array of connections
 * (each one's insides belong to db_conn.c).
 * Must never: call a blocking libpq function on the loop thread; run a
 * callback from inside db_submit(); log query parameters or server error
 * texts (statement name only); keep a PGresult past the callback; touch a
 * connection's PGconn, socket event or timer (db_conn.c does).
 *
 * Life of an operation: queued (FIFO) -> running on one connection -> done.
 * Completion is deferred: db_pool_op_complete() makes the operation's own
 * timer event active, and the callback runs from that event. So callbacks
 * always run at the top of the loop, never nested inside pool code or
 * db_submit(), and a callback may submit again or reply to its request
 * without re-entering a half-updated connection.
 *
 * Not done, on purpose: pipeline mode. Measured on the 2-core target, one
 * loop with 8 connections and 32 operations outstanding runs a prepared
 * SELECT or INSERT at the same rate as pgbench -M prepared with 8 clients,
 * and one query per connection keeps cancel exact (a cancel can only hit
 * the operation whose deadline passed).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "db_pool.h"
#include "db_pool_int.h"
#include "log.h"

/* When no connection has been ready for this long, the pool counts as down:
 * queued operations fail at once with DB_UNAVAILABLE (the HTTP side answers
 * 503 + Retry-After) instead of each waiting out its whole deadline. Short
 * enough for a prompt 503, long enough to ride out a single reconnect. */
#define DB_DOWN_GRACE_MS 1000

const char *db_status_to_str(enum db_status s)
{
	static const char *const names[] = {
		[DB_OK] = "ok",
		[DB_SQL_ERROR] = "sql_error",
		[DB_UNAVAILABLE] = "unavailable",
		[DB_TIMEOUT] = "timeout",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* xorshift64*: only for backoff jitter, which needs spread, not secrecy. */
static uint64_t db_pool_rand(struct db_pool *p)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 2685821657736338717ULL;
}

/* ---- operations ---------------------------------------------------------- */

static void op_free(struct db_op *op)
{
	int i;

	if (op->values != NULL) {
		for (i = 0; i < op->nparams; i++) {
			if (op->values[i] != NULL) {
				/* Parameters carry client data (hashes, sealed
				 * blobs, validated fields): wipe before free. */
				explicit_bzero(op->values[i], strlen(op->values[i]));
				free(op->values[i]);
			}
		}
		free(op->values);
	}
	if (op->timer != NULL)
		event_free(op->timer);
	PQclear(op->res);
	free(op->stmt);
	free(op);
}

/* Run the callback now and free the operation. Only from an event callback
 * of the loop (op_timer_cb) or from db_pool_close(). */
static void op_deliver(struct db_op *op, enum db_status st, PGresult *res)
{
	struct db_pool *p = op->pool;

	if (st != DB_OK)
		p->errors++;
	if (st == DB_TIMEOUT)
		p->timeouts++;
	op->res = res;
	op->cb(op->arg, st, res);
	op_free(op);
}

/* Finish an operation from inside pool code: record the outcome and let the
 * loop run the callback (see the header comment). The op must already be
 * detached from the queue and from any connection. */
static void db_pool_op_complete(struct db_op *op, enum db_status st, PGresult *res)
{
	struct db_pool *p = op->pool;

	op->where = OP_DONE;
	op->conn = NULL;
	op->status = st;
	op->res = res;
	TAILQ_INSERT_TAIL(&p->done, op, link);
	event_del(op->timer);
	event_active(op->timer, EV_TIMEOUT, 1);
}

static void op_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_op *op = arg;
	struct db_pool *p = op->pool;
	struct db_conn *c;
	PGresult *res;

	(void)fd;
	(void)what;
	switch (op->where) {
	case OP_DONE:
		TAILQ_REMOVE(&p->done, op, link);
		res = op->res;
		op->res = NULL;
		op_deliver(op, op->status, res);
		return;
	case OP_QUEUED:
		TAILQ_REMOVE(&p->queue, op, link);
		p->nqueue--;
		log_warn("db_timeout", "stmt=%s where=queued", op->stmt);
		op_deliver(op, DB_TIMEOUT, NULL);
		return;
	case OP_RUNNING:
		c = op->conn;
		c->op = NULL;
		op->conn = NULL;
		log_warn("db_timeout", "stmt=%s where=running conn=%d", op->stmt, c->idx);
		/* The connection deals with the abandoned query on its own;
		 * the caller hears DB_TIMEOUT now. */
		db_conn_cancel(c);
		op_deliver(op, DB_TIMEOUT, NULL);
		return;
	}
}

/* ---- down state and dispatch --------------------------------------------- */

static int pool_ready_count(const struct db_pool *p)
{
	int i, n = 0;

	for (i = 0; i < p->o.size; i++)
		if (p->conns[i].state >= CS_IDLE)
			n++;
	return n;
}

/* Called whenever a connection leaves the ready states. */
static void db_pool_check_down(struct db_pool *p)
{
	struct timeval tv;

	if (!p->started || p->closed || pool_ready_count(p) > 0 || p->down_since != 0)
		return;
	p->down_since = clock_mono_ms();
	if (p->down_since == 0)
		p->down_since = 1;
	tv = clock_tv(DB_DOWN_GRACE_MS);
	event_add(p->down_timer, &tv);
}

static void db_pool_mark_up(struct db_pool *p)
{
	p->down_since = 0;
	p->down = 0;
	event_del(p->down_timer);
}

static void pool_down_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_pool *p = arg;
	struct db_op *op;
	int n = 0;

	(void)fd;
	(void)what;
	if (p->closed || pool_ready_count(p) > 0)
		return;
	/* A flag, not a clock comparison in db_submit: the timer may fire a
	 * hair before our own clock says the grace is over. */
	p->down = 1;
	while ((op = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, op, link);
		p->nqueue--;
		db_pool_op_complete(op, DB_UNAVAILABLE, NULL);
		n++;
	}
	log_warn("db_pool_down", "failed_waiting=%d", n);
}

static void db_pool_dispatch(struct db_pool *p)
{
	struct db_op *op;
	int i;

	for (i = 0; i < p->o.size && (op = TAILQ_FIRST(&p->queue)) != NULL; i++) {
		struct db_conn *c = &p->conns[i];

		if (c->state != CS_IDLE)
			continue;
		TAILQ_REMOVE(&p->queue, op, link);
		p->nqueue--;
		db_conn_send_op(c, op);
	}
}

/* What each connection calls when it has news for the pool. */
static const struct db_conn_events pool_conn_events = {
	.op_done = db_pool_op_complete,
	.up = db_pool_mark_up,
	.lost = db_pool_check_down,
	.idle = db_pool_dispatch,
	.rand = db_pool_rand,
};

/* ---- public API ---------------------------------------------------------- */

struct db_pool *db_pool_new(struct event_base *base, const struct db_pool_opts *o)
{
	struct db_pool *p;

	if (base == NULL || o == NULL || o->conninfo == NULL || o->size <= 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->base = base;
	p->o = *o;
	p->conninfo = strdup(o->conninfo);
	p->o.conninfo = p->conninfo;
	if (p->o.query_timeout_ms <= 0)
		p->o.query_timeout_ms = 5000;
	if (p->o.connect_timeout_ms <= 0)
		p->o.connect_timeout_ms = 5000;
	if (p->o.reconnect_max_ms < DB_BACKOFF_MIN_MS)
		p->o.reconnect_max_ms = DB_BACKOFF_MIN_MS;
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->done);
	p->rng = ((uint64_t)getpid() << 32) ^ clock_mono_ms() ^ (uint64_t)(uintptr_t)p;
	if (p->rng == 0)
		p->rng = 0x9e3779b97f4a7c15ULL;
	p->down_timer = evtimer_new(base, pool_down_cb, p);
	if (p->conninfo == NULL || p->down_timer == NULL) {
		db_pool_free(p);
		return NULL;
	}
	return p;
}

int db_pool_prepare(struct db_pool *p, const char *name, const char *sql, int nparams)
{
	struct db_stmt *s;
	int i;

	if (p == NULL || p->started || name == NULL || sql == NULL || nparams < 0)
		return -1;
	for (i = 0; i < p->nstmts; i++)
		if (strcmp(p->stmts[i].name, name) == 0)
			return -1;
	if (p->nstmts == p->capstmts) {
		int ncap = p->capstmts ? p->capstmts * 2 : 16;
		struct db_stmt *ns = realloc(p->stmts, (size_t)ncap * sizeof(*ns));

		if (ns == NULL)
			return -1;
		p->stmts = ns;
		p->capstmts = ncap;
	}
	s = &p->stmts[p->nstmts];
	s->name = strdup(name);
	s->sql = strdup(sql);
	s->nparams = nparams;
	if (s->name == NULL || s->sql == NULL) {
		free(s->name);
		free(s->sql);
		return -1;
	}
	p->nstmts++;
	return 0;
}

int db_pool_start(struct db_pool *p)
{
	int i;

	if (p == NULL || p->started || p->closed)
		return -1;
	p->conns = calloc((size_t)p->o.size, sizeof(*p->conns));
	if (p->conns == NULL)
		return -1;
	for (i = 0; i < p->o.size; i++)
		if (db_conn_init(&p->conns[i], p, i, &pool_conn_events) != 0)
			return -1;
	p->started = 1;
	/* Nothing is ready yet: start the down clock so requests during a
	 * start against a dead server get 503 after the grace, not a hang. */
	db_pool_check_down(p);
	for (i = 0; i < p->o.size; i++)
		db_conn_start(&p->conns[i]);
	return 0;
}

struct db_op *db_submit(struct db_pool *p, const char *stmt, int nparams,
			const char *const *values, db_cb cb, void *arg, long timeout_ms)
{
	struct db_op *op;
	struct timeval tv;
	int i;

	if (p == NULL || p->closed || !p->started || stmt == NULL || cb == NULL || nparams < 0 ||
	    (nparams > 0 && values == NULL))
		return NULL;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	op->pool = p;
	op->cb = cb;
	op->arg = arg;
	op->nparams = nparams;
	op->stmt_idx = -1;
	for (i = 0; i < p->nstmts; i++) {
		if (strcmp(p->stmts[i].name, stmt) == 0) {
			op->stmt_idx = i;
			break;
		}
	}
	op->stmt = strdup(stmt);
	op->timer = evtimer_new(p->base, op_timer_cb, op);
	if (op->stmt == NULL || op->timer == NULL)
		goto fail;
	if (nparams > 0) {
		op->values = calloc((size_t)nparams, sizeof(char *));
		if (op->values == NULL)
			goto fail;
		for (i = 0; i < nparams; i++) {
			if (values[i] != NULL && (op->values[i] = strdup(values[i])) == NULL)
				goto fail;
		}
	}
	if (op->stmt_idx < 0)
		log_error("db_unknown_statement", "stmt=%s", op->stmt);
	tv = clock_tv(timeout_ms > 0 ? timeout_ms : p->o.query_timeout_ms);
	if (event_add(op->timer, &tv) != 0)
		goto fail;
	if (p->down) {
		/* The pool has been down for a while: say so at once (from
		 * the loop, not from here) rather than let the op wait. */
		db_pool_op_complete(op, DB_UNAVAILABLE, NULL);
		return op;
	}
	op->where = OP_QUEUED;
	TAILQ_INSERT_TAIL(&p->queue, op, link);
	p->nqueue++;
	db_pool_dispatch(p);
	return op;
fail:
	op_free(op);
	return NULL;
}

void db_pool_close(struct db_pool *p)
{
	struct db_op *op;
	PGresult *res;
	int i;

	if (p == NULL || p->closed)
		return;
	p->closed = 1;
	event_del(p->down_timer);
	if (p->conns != NULL) {
		for (i = 0; i < p->o.size; i++) {
			struct db_conn *c = &p->conns[i];

			op = c->op;
			c->op = NULL;
			db_conn_close(c);
			c->state = CS_BACKOFF;
			if (op != NULL)
				db_pool_op_complete(op, DB_UNAVAILABLE, NULL);
		}
	}
	while ((op = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, op, link);
		p->nqueue--;
		db_pool_op_complete(op, DB_UNAVAILABLE, NULL);
	}
	/* The loop may not run again (shutdown), so deliver every finished
	 * operation here; callbacks see a closed pool if they submit. */
	while ((op = TAILQ_FIRST(&p->done)) != NULL) {
		TAILQ_REMOVE(&p->done, op, link);
		event_del(op->timer);
		res = op->res;
		op->res = NULL;
		op_deliver(op, op->status, res);
	}
}

void db_pool_free(struct db_pool *p)
{
	int i;

	if (p == NULL)
		return;
	db_pool_close(p);
	if (p->conns != NULL) {
		for (i = 0; i < p->o.size; i++)
			db_conn_destroy(&p->conns[i]);
		free(p->conns);
	}
	for (i = 0; i < p->nstmts; i++) {
		free(p->stmts[i].name);
		free(p->stmts[i].sql);
	}
	free(p->stmts);
	if (p->down_timer != NULL)
		event_free(p->down_timer);
	free(p->conninfo);
	free(p);
}

void db_pool_get_stats(const struct db_pool *p, struct db_pool_stats *out)
{
	int i;

	memset(out, 0, sizeof(*out));
	if (p == NULL)
		return;
	out->size = p->o.size;
	if (p->conns != NULL) {
		for (i = 0; i < p->o.size; i++) {
			if (p->conns[i].state >= CS_IDLE)
				out->connected++;
			if (p->conns[i].state == CS_BUSY || p->conns[i].state == CS_DRAINING)
				out->busy++;
		}
	}
	out->waiting = p->nqueue;
	out->errors = p->errors;
	out->timeouts = p->timeouts;
	out->reconnects = p->reconnects;
}
