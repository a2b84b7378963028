/*
 * db_pool.c - asynchronous libpq connection pool on the daemon's event loop.
 *
 * Owns: the PGconn of every pool connection and the libevent events on their
 * sockets, the registered prepared statements, every submitted operation
 * (from db_submit until its callback returns), the FIFO of waiting
 * operations, the per-operation deadline timers, the reconnect backoff, and
 * the short-lived cancel threads (see conn_cancel for why threads).
 * Must never: call a blocking libpq function on the loop thread (no PQexec,
 * PQprepare, PQconnectdb, PQcancel here); run a callback from inside
 * db_submit(); log query parameters or server error texts (sqlstate, statement
 * name and connection index only; libpq's connection-level errors - host,
 * port, authentication - are logged only while connecting, because after a
 * query PQerrorMessage holds the server's text); keep a PGresult past the
 * callback.
 *
 * Life of a connection:
 *   BACKOFF -> CONNECTING (PQconnectPoll on socket events) -> SETUP (SET
 *   statement_timeout) -> PREPARING (one PQsendPrepare after another) -> IDLE
 *   <-> BUSY (one operation) ; BUSY -> DRAINING (deadline passed: cancel sent,
 *   waiting for the cancelled query to come back) -> IDLE.
 *   Any failure -> conn_fail(): the in-flight operation gets DB_UNAVAILABLE,
 *   the event is deleted before PQfinish, and a backoff timer reconnects.
 *
 * Life of an operation: queued (FIFO) -> running on one connection -> done.
 * Completion is deferred: op_complete() makes the operation's own timer event
 * active, and the callback runs from that event. So callbacks always run at
 * the top of the loop, never nested inside pool code or db_submit(), and a
 * callback may submit again or reply to its request without re-entering a
 * half-updated connection.
 *
 * Not done, on purpose: pipeline mode. Measured on the 2-core target, one
 * loop with 8 connections and 32 operations outstanding runs a prepared
 * SELECT or INSERT at the same rate as pgbench -M prepared with 8 clients,
 * and one query per connection keeps cancel exact (a cancel can only hit
 * the operation whose deadline passed).
 * Known limit: libpq resolves a host name inside PQconnectStart with a
 * blocking lookup; give an address (host=10.0.0.5 or hostaddr=) or a socket
 * directory in the conninfo so reconnects never wait on DNS.
 */
#include "db_pool.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

/* Reconnect backoff starts here and doubles up to reconnect_max_ms. */
#define DB_BACKOFF_MIN_MS 100
/* When no connection has been ready for this long, the pool counts as down:
 * queued operations fail at once with DB_UNAVAILABLE (the HTTP side answers
 * 503 + Retry-After) instead of each waiting out its whole deadline. Short
 * enough for a prompt 503, long enough to ride out a single reconnect. */
#define DB_DOWN_GRACE_MS 1000
/* After a deadline, how long the cancelled query may take to come back
 * before the connection is dropped and reopened instead. */
#define DB_CANCEL_GRACE_MS 2000
/* How often a drained connection checks that its cancel thread finished. */
#define DB_CANCEL_POLL_MS 5

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

/* Shared between a connection and its cancel thread; whoever drops the last
 * reference frees it, so neither has to outlive the other. */
struct cancel_job {
	atomic_int refs;
	atomic_int done;
	PGcancel *cancel;
};

struct db_conn {
	struct db_pool *pool;
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

static void conn_start(struct db_conn *c);
static void conn_fail(struct db_conn *c, const char *reason);
static void conn_idle(struct db_conn *c);
static void pool_dispatch(struct db_pool *p);
static void conn_cancel(struct db_conn *c);

const char *db_status_to_str(enum db_status s)
{
	switch (s) {
	case DB_OK:
		return "ok";
	case DB_SQL_ERROR:
		return "sql_error";
	case DB_UNAVAILABLE:
		return "unavailable";
	case DB_TIMEOUT:
		return "timeout";
	}
	return "unknown";
}

const char *db_sqlstate(const PGresult *res)
{
	const char *s;

	if (res == NULL)
		return "";
	s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return s != NULL ? s : "";
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval ms_tv(long ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* xorshift64*: only for backoff jitter, which needs spread, not secrecy. */
static uint64_t pool_rand(struct db_pool *p)
{
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return p->rng * 2685821657736338717ULL;
}

static void silent_notice(void *arg, const char *msg)
{
	/* Notices can quote data; the pool has no use for them. */
	(void)arg;
	(void)msg;
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
static void op_complete(struct db_op *op, enum db_status st, PGresult *res)
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
		conn_cancel(c);
		op_deliver(op, DB_TIMEOUT, NULL);
		return;
	}
}

/* ---- socket events ------------------------------------------------------- */

static void conn_io_cb(evutil_socket_t fd, short what, void *arg);

static void conn_unwatch(struct db_conn *c)
{
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
}

/* Arm the socket event for `what`. PQsocket() is re-read every time: it
 * changes while connecting (libpq may try several addresses) and after a
 * reconnect. While connecting the event is always recreated, because libpq
 * may close a socket and get the same number back for a new one, which an
 * epoll registration would not notice. */
static int conn_watch(struct db_conn *c, short what, int fresh)
{
	evutil_socket_t fd = PQsocket(c->pg);

	if (fd < 0)
		return -1;
	if (c->ev != NULL && (fresh || c->ev_fd != fd || c->ev_what != what))
		conn_unwatch(c);
	if (c->ev == NULL) {
		c->ev = event_new(c->pool->base, fd, what | EV_PERSIST, conn_io_cb, c);
		if (c->ev == NULL || event_add(c->ev, NULL) != 0)
			return -1;
		c->ev_fd = fd;
		c->ev_what = what;
	}
	return 0;
}

static void cancel_job_release(struct cancel_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) == 1) {
		PQfreeCancel(j->cancel);
		free(j);
	}
}

/* Tear the session down. The socket event goes first: PQfinish closes the
 * descriptor and its number may be reused at once. */
static void conn_close(struct db_conn *c)
{
	conn_unwatch(c);
	event_del(c->timer);
	if (c->res != NULL) {
		PQclear(c->res);
		c->res = NULL;
	}
	if (c->pg != NULL) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	if (c->cancel != NULL) {
		cancel_job_release(c->cancel);
		c->cancel = NULL;
	}
	c->flushing = 0;
	c->op_prepping = 0;
	c->drained = 0;
}

static int pool_ready_count(const struct db_pool *p)
{
	int i, n = 0;

	for (i = 0; i < p->o.size; i++)
		if (p->conns[i].state >= CS_IDLE)
			n++;
	return n;
}

/* Called whenever a connection leaves the ready states. */
static void pool_check_down(struct db_pool *p)
{
	struct timeval tv;

	if (!p->started || p->closed || pool_ready_count(p) > 0 || p->down_since != 0)
		return;
	p->down_since = now_ms();
	if (p->down_since == 0)
		p->down_since = 1;
	tv = ms_tv(DB_DOWN_GRACE_MS);
	event_add(p->down_timer, &tv);
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
		op_complete(op, DB_UNAVAILABLE, NULL);
		n++;
	}
	log_warn("db_pool_down", "failed_waiting=%d", n);
}

static void conn_fail(struct db_conn *c, const char *reason)
{
	struct db_pool *p = c->pool;
	struct db_op *op = c->op;
	struct timeval tv;
	long delay;

	if (c->fail_streak++ == 0)
		log_warn("db_conn_lost", "conn=%d reason=%s", c->idx, reason);
	else
		log_debug("db_conn_lost", "conn=%d reason=%s streak=%d", c->idx, reason,
			  c->fail_streak);
	c->op = NULL;
	conn_close(c);
	c->state = CS_BACKOFF;
	if (op != NULL)
		op_complete(op, DB_UNAVAILABLE, NULL);
	if (p->closed)
		return;
	/* Full jitter on the upper half, so a restarted server is not hit by
	 * every connection of every daemon in the same millisecond. */
	delay = c->backoff_ms / 2 + (long)(pool_rand(p) % (uint64_t)(c->backoff_ms / 2 + 1));
	c->backoff_ms = c->backoff_ms * 2 > p->o.reconnect_max_ms ? p->o.reconnect_max_ms
								   : c->backoff_ms * 2;
	tv = ms_tv(delay);
	event_add(c->timer, &tv);
	pool_check_down(p);
}

/* Log a failed step's sqlstate (never its text). */
static void conn_log_sql_error(const struct db_conn *c, const char *event, const char *stmt,
			       const PGresult *res)
{
	const char *st = db_sqlstate(res);

	log_warn(event, "conn=%d stmt=%s sqlstate=%s", c->idx, stmt != NULL ? stmt : "-",
		 st[0] ? st : "none");
}

/* Send buffered output. PQflush returns 1 while data remains: then wait for
 * the socket to become writable (and readable: the server may be waiting for
 * us to read before it reads more). */
static void conn_flush(struct db_conn *c)
{
	int r = PQflush(c->pg);

	if (r < 0) {
		conn_fail(c, "flush_failed");
		return;
	}
	c->flushing = r == 1;
	if (conn_watch(c, c->flushing ? EV_READ | EV_WRITE : EV_READ, 0) != 0)
		conn_fail(c, "no_socket");
}

static void conn_ready(struct db_conn *c)
{
	struct db_pool *p = c->pool;

	event_del(c->timer);
	if (c->fail_streak > 0 || log_enabled(LOG_DEBUG))
		log_info("db_connected", "conn=%d after_failures=%d", c->idx, c->fail_streak);
	c->fail_streak = 0;
	c->backoff_ms = DB_BACKOFF_MIN_MS;
	p->down_since = 0;
	p->down = 0;
	event_del(p->down_timer);
	conn_idle(c);
}

/* Prepare the registered statements one after another. A statement the
 * server rejects (say, its function is not migrated yet) is logged and left
 * unprepared: the connection still serves the others, and an operation on
 * that statement prepares it again lazily (conn_send_op). */
static void conn_prepare_next(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	struct db_stmt *s;

	if (c->prep_next >= p->nstmts) {
		conn_ready(c);
		return;
	}
	s = &p->stmts[c->prep_next];
	c->state = CS_PREPARING;
	if (!PQsendPrepare(c->pg, s->name, s->sql, s->nparams, NULL)) {
		conn_fail(c, "send_failed");
		return;
	}
	conn_flush(c);
}

static void conn_send_op(struct db_conn *c, struct db_op *op)
{
	struct db_pool *p = c->pool;
	int ok;

	c->op = op;
	op->conn = c;
	op->where = OP_RUNNING;
	c->state = CS_BUSY;
	if (op->stmt_idx >= 0 && !c->prepared[op->stmt_idx]) {
		struct db_stmt *s = &p->stmts[op->stmt_idx];

		c->op_prepping = 1;
		ok = PQsendPrepare(c->pg, s->name, s->sql, s->nparams, NULL);
	} else {
		c->op_prepping = 0;
		ok = PQsendQueryPrepared(c->pg, op->stmt, op->nparams,
					 (const char *const *)op->values, NULL, NULL, 0);
	}
	if (!ok) {
		conn_fail(c, "send_failed");
		return;
	}
	conn_flush(c);
}

/* The connection is free: keep a read event armed so that a server shutdown
 * (EOF on the socket) is noticed at once even with no query running, then
 * hand it the next waiting operation. */
static void conn_idle(struct db_conn *c)
{
	c->state = CS_IDLE;
	c->flushing = 0;
	if (conn_watch(c, EV_READ, 0) != 0) {
		conn_fail(c, "no_socket");
		return;
	}
	pool_dispatch(c->pool);
}

static void pool_dispatch(struct db_pool *p)
{
	struct db_op *op;
	int i;

	for (i = 0; i < p->o.size && (op = TAILQ_FIRST(&p->queue)) != NULL; i++) {
		struct db_conn *c = &p->conns[i];

		if (c->state != CS_IDLE)
			continue;
		TAILQ_REMOVE(&p->queue, op, link);
		p->nqueue--;
		conn_send_op(c, op);
	}
}

static enum db_status result_status(const PGresult *res)
{
	const char *st;

	if (res == NULL)
		return DB_UNAVAILABLE;
	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
	case PGRES_SINGLE_TUPLE:
		return DB_OK;
	default:
		st = db_sqlstate(res);
		/* 57014: the server's statement_timeout fired (or our cancel):
		 * for the caller that is the deadline, not a bad statement. */
		if (strcmp(st, "57014") == 0)
			return DB_TIMEOUT;
		return DB_SQL_ERROR;
	}
}

/* The current step's results are all in (PQgetResult returned NULL). */
static void conn_step_done(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	PGresult *res = c->res;
	struct db_op *op;
	enum db_status st;
	struct timeval tv;

	c->res = NULL;
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		PQclear(res);
		conn_fail(c, "connection_bad");
		return;
	}
	switch (c->state) {
	case CS_SETUP:
		if (result_status(res) != DB_OK) {
			conn_log_sql_error(c, "db_setup_failed", NULL, res);
			PQclear(res);
			conn_fail(c, "setup_failed");
			return;
		}
		PQclear(res);
		c->prep_next = 0;
		conn_prepare_next(c);
		return;
	case CS_PREPARING:
		if (result_status(res) == DB_OK)
			c->prepared[c->prep_next] = 1;
		else
			conn_log_sql_error(c, "db_prepare_failed", p->stmts[c->prep_next].name, res);
		PQclear(res);
		c->prep_next++;
		conn_prepare_next(c);
		return;
	case CS_BUSY:
		op = c->op;
		if (c->op_prepping) {
			c->op_prepping = 0;
			/* 42P05: already prepared - a prepare abandoned by an
			 * earlier deadline did finish on the server after all. */
			if (result_status(res) == DB_OK || strcmp(db_sqlstate(res), "42P05") == 0) {
				PQclear(res);
				c->prepared[op->stmt_idx] = 1;
				c->op = NULL;
				conn_send_op(c, op);
				return;
			}
			conn_log_sql_error(c, "db_prepare_failed", op->stmt, res);
			st = result_status(res);
		} else {
			st = result_status(res);
			if (st != DB_OK)
				conn_log_sql_error(c, st == DB_TIMEOUT ? "db_statement_timeout"
								     : "db_sql_error",
						   op->stmt, res);
		}
		c->op = NULL;
		if (st == DB_TIMEOUT || st == DB_UNAVAILABLE) {
			PQclear(res);
			res = NULL;
		}
		op_complete(op, st, res);
		conn_idle(c);
		return;
	case CS_DRAINING:
		PQclear(res);
		c->drained = 1;
		/* Wait for the cancel thread too: a cancel request that
		 * reached the server late would hit the next query. */
		if (c->cancel == NULL || atomic_load(&c->cancel->done)) {
			if (c->cancel != NULL) {
				cancel_job_release(c->cancel);
				c->cancel = NULL;
			}
			event_del(c->timer);
			conn_idle(c);
		} else {
			tv = ms_tv(DB_CANCEL_POLL_MS);
			event_add(c->timer, &tv);
			if (conn_watch(c, EV_READ, 0) != 0)
				conn_fail(c, "no_socket");
		}
		return;
	default:
		PQclear(res);
		return;
	}
}

static void conn_collect(struct db_conn *c, PGresult *r)
{
	ExecStatusType rs = PQresultStatus(r);

	/* One statement gives one result; keep it, but let an error that
	 * follows a success win so the caller never misses a failure. */
	if (c->res == NULL) {
		c->res = r;
	} else if ((rs == PGRES_FATAL_ERROR || rs == PGRES_NONFATAL_ERROR) &&
		   PQresultStatus(c->res) != PGRES_FATAL_ERROR) {
		PQclear(c->res);
		c->res = r;
	} else {
		PQclear(r);
	}
}

static void conn_poll_connect(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	PostgresPollingStatusType r = PQconnectPoll(c->pg);
	char setup[96], msg[256], esc[300];
	struct timeval tv;
	long setup_ms;

	switch (r) {
	case PGRES_POLLING_READING:
		if (conn_watch(c, EV_READ, 1) != 0)
			conn_fail(c, "no_socket");
		return;
	case PGRES_POLLING_WRITING:
		if (conn_watch(c, EV_WRITE, 1) != 0)
			conn_fail(c, "no_socket");
		return;
	case PGRES_POLLING_FAILED:
		/* Before the session exists, libpq's error is about the
		 * connection only (host, port, TLS, authentication). */
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
		log_esc(esc, sizeof(esc), msg);
		if (c->fail_streak == 0)
			log_warn("db_connect_failed", "conn=%d error=\"%s\"", c->idx, esc);
		conn_fail(c, "connect_failed");
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		return;
	}
	if (PQsetnonblocking(c->pg, 1) != 0) {
		conn_fail(c, "setnonblocking_failed");
		return;
	}
	PQsetNoticeProcessor(c->pg, silent_notice, NULL);
	/* Bound setup and prepares: the server-side statement timeout plus the
	 * connect budget (a lock can hold a PREPARE that long). */
	setup_ms = p->o.connect_timeout_ms +
		   (p->o.statement_timeout_ms > 0 ? p->o.statement_timeout_ms : p->o.query_timeout_ms);
	tv = ms_tv(setup_ms);
	event_add(c->timer, &tv);
	/* The server enforces the deadline too, so an abandoned query cannot
	 * run for ever even if our cancel never arrives. */
	snprintf(setup, sizeof(setup), "SET statement_timeout = %ld",
		 p->o.statement_timeout_ms > 0 ? p->o.statement_timeout_ms : 0L);
	c->state = CS_SETUP;
	if (!PQsendQuery(c->pg, setup)) {
		conn_fail(c, "send_failed");
		return;
	}
	conn_flush(c);
}

static void conn_io_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;
	PGresult *r;
	int f;

	(void)fd;
	if (c->state == CS_CONNECTING) {
		conn_poll_connect(c);
		return;
	}
	if (c->flushing) {
		if ((what & EV_READ) && !PQconsumeInput(c->pg)) {
			conn_fail(c, "server_closed");
			return;
		}
		f = PQflush(c->pg);
		if (f < 0) {
			conn_fail(c, "flush_failed");
			return;
		}
		if (f == 1)
			return;
		c->flushing = 0;
		if (conn_watch(c, EV_READ, 0) != 0) {
			conn_fail(c, "no_socket");
			return;
		}
	}
	if (!PQconsumeInput(c->pg)) {
		conn_fail(c, c->state == CS_IDLE ? "server_closed_idle" : "server_closed");
		return;
	}
	if (c->state == CS_IDLE) {
		PGnotify *n;

		/* Nothing should arrive while idle but a shutdown notice or
		 * EOF (the next callback then fails above). Drop strays. */
		while ((n = PQnotifies(c->pg)) != NULL)
			PQfreemem(n);
		while (!PQisBusy(c->pg) && (r = PQgetResult(c->pg)) != NULL)
			PQclear(r);
		if (PQstatus(c->pg) == CONNECTION_BAD)
			conn_fail(c, "connection_bad");
		return;
	}
	for (;;) {
		if (PQisBusy(c->pg))
			return;   /* the read event stays armed */
		r = PQgetResult(c->pg);
		if (r == NULL)
			break;
		conn_collect(c, r);
	}
	conn_step_done(c);
}

static void conn_start(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	const char *keys[] = { "dbname", "application_name", NULL };
	const char *vals[] = { p->conninfo, "referrald", NULL };
	struct timeval tv;

	/* Later keywords override what the conninfo string says. */
	c->pg = PQconnectStartParams(keys, vals, 1);
	c->state = CS_CONNECTING;
	memset(c->prepared, 0, (size_t)(p->nstmts > 0 ? p->nstmts : 1));
	if (c->pg == NULL) {
		conn_fail(c, "out_of_memory");
		return;
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		char msg[256], esc[300];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
		log_esc(esc, sizeof(esc), msg);
		if (c->fail_streak == 0)
			log_warn("db_connect_failed", "conn=%d error=\"%s\"", c->idx, esc);
		conn_fail(c, "connect_failed");
		return;
	}
	tv = ms_tv(p->o.connect_timeout_ms);
	event_add(c->timer, &tv);
	/* The first PQconnectPoll step is "writing" (the socket connects). */
	if (conn_watch(c, EV_WRITE, 1) != 0)
		conn_fail(c, "no_socket");
}

static void *cancel_thread(void *arg)
{
	struct cancel_job *j = arg;
	char err[256];

	/* Blocking by design, off the loop thread; the outcome does not
	 * matter: the connection's grace timer covers a cancel that failed. */
	(void)PQcancel(j->cancel, err, sizeof(err));
	atomic_store(&j->done, 1);
	cancel_job_release(j);
	return NULL;
}

/*
 * The deadline passed with a query in flight. libpq 15 has no non-blocking
 * cancel, so PQcancel (which connects to the server and waits for it to
 * close) runs in a short detached thread that owns a PGcancel copy; the loop
 * thread never blocks. Why not just close and reconnect: the server keeps
 * running a query whose client vanished until it next writes to the socket or
 * statement_timeout fires, still holding its locks and a backend; and a
 * reconnect costs a TLS handshake, authentication and re-preparing every
 * statement. A cancel frees the server at once and keeps the session. If the
 * cancelled query has not come back within DB_CANCEL_GRACE_MS (server or
 * network gone), we fall back to dropping the connection.
 */
static void conn_cancel(struct db_conn *c)
{
	struct cancel_job *j;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	struct timeval tv;
	int rc;

	c->state = CS_DRAINING;
	c->drained = 0;
	c->drain_deadline = now_ms() + DB_CANCEL_GRACE_MS;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto fallback;
	j->cancel = PQgetCancel(c->pg);
	if (j->cancel == NULL) {
		free(j);
		goto fallback;
	}
	atomic_init(&j->refs, 2);
	atomic_init(&j->done, 0);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* Signals stay with the loop thread (libevent's signal handling). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&th, &attr, cancel_thread, j);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		PQfreeCancel(j->cancel);
		free(j);
		goto fallback;
	}
	c->cancel = j;
	tv = ms_tv(DB_CANCEL_GRACE_MS);
	event_add(c->timer, &tv);
	return;
fallback:
	conn_fail(c, "cancel_unavailable");
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct db_conn *c = arg;
	struct db_pool *p = c->pool;
	struct timeval tv;
	uint64_t now;

	(void)fd;
	(void)what;
	switch (c->state) {
	case CS_BACKOFF:
		if (p->closed)
			return;
		p->reconnects++;
		conn_start(c);
		return;
	case CS_CONNECTING:
	case CS_SETUP:
	case CS_PREPARING:
		conn_fail(c, "connect_timeout");
		return;
	case CS_DRAINING:
		now = now_ms();
		if (c->drained && (c->cancel == NULL || atomic_load(&c->cancel->done))) {
			if (c->cancel != NULL) {
				cancel_job_release(c->cancel);
				c->cancel = NULL;
			}
			conn_idle(c);
			return;
		}
		if (now >= c->drain_deadline) {
			conn_fail(c, "cancel_timeout");
			return;
		}
		tv = ms_tv(c->drained ? DB_CANCEL_POLL_MS : (long)(c->drain_deadline - now));
		event_add(c->timer, &tv);
		return;
	default:
		return;
	}
}

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
	p->rng = ((uint64_t)getpid() << 32) ^ now_ms() ^ (uint64_t)(uintptr_t)p;
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
	for (i = 0; i < p->o.size; i++) {
		struct db_conn *c = &p->conns[i];

		c->pool = p;
		c->idx = i;
		c->state = CS_BACKOFF;
		c->backoff_ms = DB_BACKOFF_MIN_MS;
		c->prepared = calloc((size_t)(p->nstmts > 0 ? p->nstmts : 1), 1);
		c->timer = evtimer_new(p->base, conn_timer_cb, c);
		if (c->prepared == NULL || c->timer == NULL)
			return -1;
	}
	p->started = 1;
	/* Nothing is ready yet: start the down clock so requests during a
	 * start against a dead server get 503 after the grace, not a hang. */
	pool_check_down(p);
	for (i = 0; i < p->o.size; i++)
		conn_start(&p->conns[i]);
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
	tv = ms_tv(timeout_ms > 0 ? timeout_ms : p->o.query_timeout_ms);
	if (event_add(op->timer, &tv) != 0)
		goto fail;
	if (p->down) {
		/* The pool has been down for a while: say so at once (from
		 * the loop, not from here) rather than let the op wait. */
		op_complete(op, DB_UNAVAILABLE, NULL);
		return op;
	}
	op->where = OP_QUEUED;
	TAILQ_INSERT_TAIL(&p->queue, op, link);
	p->nqueue++;
	pool_dispatch(p);
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
			conn_close(c);
			c->state = CS_BACKOFF;
			if (op != NULL)
				op_complete(op, DB_UNAVAILABLE, NULL);
		}
	}
	while ((op = TAILQ_FIRST(&p->queue)) != NULL) {
		TAILQ_REMOVE(&p->queue, op, link);
		p->nqueue--;
		op_complete(op, DB_UNAVAILABLE, NULL);
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
		for (i = 0; i < p->o.size; i++) {
			if (p->conns[i].timer != NULL)
				event_free(p->conns[i].timer);
			free(p->conns[i].prepared);
		}
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
