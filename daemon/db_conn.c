/*
 * db_conn.c - one connection of the db pool (db_pool.c): its libpq session on
 * the daemon's event loop. What the two files share is in db_pool_int.h.
 *
 * Owns: the connection's PGconn and the libevent events on its socket, its
 * timer (backoff, connect/setup timeout, drain grace), the statements
 * prepared on its session, the result being collected for the current step,
 * the reconnect backoff, and the short-lived cancel threads (see
 * db_conn_cancel for why threads).
 * Must never: call a blocking libpq function on the loop thread (no PQexec,
 * PQprepare, PQconnectdb, PQcancel here); run an operation's callback (the
 * outcome goes to the pool's events->op_done, the loop runs it); call into
 * db_pool.c other than through its db_conn_events; log query
 * parameters or server error texts (sqlstate, statement name and connection
 * index only; libpq's connection-level errors - host, port, authentication -
 * are logged only while connecting, because after a query PQerrorMessage
 * holds the server's text); keep a PGresult past handing it to the
 * operation.
 *
 * Life of a connection:
 *   BACKOFF -> CONNECTING (PQconnectPoll on socket events) -> SETUP (SET
 *   statement_timeout) -> PREPARING (one PQsendPrepare after another) -> IDLE
 *   <-> BUSY (one operation) ; BUSY -> DRAINING (deadline passed: cancel sent,
 *   waiting for the cancelled query to come back) -> IDLE.
 *   Any failure -> conn_fail(): the in-flight operation gets DB_UNAVAILABLE,
 *   the event is deleted before PQfinish, and a backoff timer reconnects.
 *
 * Known limit: libpq resolves a host name inside PQconnectStart with a
 * blocking lookup; give an address (host=10.0.0.5 or hostaddr=) or a socket
 * directory in the conninfo so reconnects never wait on DNS.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "clock.h"
#include "db_pool.h"
#include "db_pool_int.h"
#include "log.h"

/* After a deadline, how long the cancelled query may take to come back
 * before the connection is dropped and reopened instead. */
#define DB_CANCEL_GRACE_MS 2000
/* How often a drained connection checks that its cancel thread finished. */
#define DB_CANCEL_POLL_MS 5

/* Shared between a connection and its cancel thread; whoever drops the last
 * reference frees it, so neither has to outlive the other. */
struct cancel_job {
	atomic_int refs;
	atomic_int done;
	PGcancel *cancel;
};

static void conn_fail(struct db_conn *c, const char *reason);
static void conn_idle(struct db_conn *c);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);

static void silent_notice(void *arg, const char *msg)
{
	/* Notices can quote data; the pool has no use for them. */
	(void)arg;
	(void)msg;
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
void db_conn_close(struct db_conn *c)
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
	db_conn_close(c);
	c->state = CS_BACKOFF;
	if (op != NULL)
		c->events->op_done(op, DB_UNAVAILABLE, NULL);
	if (p->closed)
		return;
	/* Full jitter on the upper half, so a restarted server is not hit by
	 * every connection of every daemon in the same millisecond. */
	delay = c->backoff_ms / 2 + (long)(c->events->rand(p) % (uint64_t)(c->backoff_ms / 2 + 1));
	c->backoff_ms = c->backoff_ms * 2 > p->o.reconnect_max_ms ? p->o.reconnect_max_ms
								   : c->backoff_ms * 2;
	tv = clock_tv(delay);
	event_add(c->timer, &tv);
	c->events->lost(p);
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
	c->events->up(p);
	conn_idle(c);
}

/* Prepare the registered statements one after another. A statement the
 * server rejects (say, its function is not migrated yet) is logged and left
 * unprepared: the connection still serves the others, and an operation on
 * that statement prepares it again lazily (db_conn_send_op). */
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

void db_conn_send_op(struct db_conn *c, struct db_op *op)
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
	c->events->idle(c->pool);
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

/* 25006 read_only_sql_transaction: a write reached a standby (or a
 * primary being demoted). 57P01-57P03: the server is shutting down or not
 * yet accepting - a session worth dropping, not a bad statement. */
static int conn_on_standby(const PGresult *res)
{
	const char *st = db_sqlstate(res);

	return strcmp(st, "25006") == 0 || strcmp(st, "57P01") == 0 || strcmp(st, "57P02") == 0 ||
	       strcmp(st, "57P03") == 0;
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
				db_conn_send_op(c, op);
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
		if (st == DB_SQL_ERROR && conn_on_standby(res)) {
			/* This session is no longer on the primary (a failover,
			 * or a standby behind the conninfo): nothing was written,
			 * the operation answers unavailable (503 + Retry-After),
			 * and a new session finds the writable server
			 * (target_session_attrs=read-write in the conninfo). */
			PQclear(res);
			conn_fail(c, "read_only");
			return;
		}
		c->op = NULL;
		if (st == DB_TIMEOUT || st == DB_UNAVAILABLE) {
			PQclear(res);
			res = NULL;
		}
		c->events->op_done(op, st, res);
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
			tv = clock_tv(DB_CANCEL_POLL_MS);
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

/* Before the session exists, libpq's error is about the connection only
 * (host, port, TLS, authentication): safe to log, the first time. */
static void conn_connect_failed(struct db_conn *c)
{
	char msg[256], esc[300];

	snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c->pg));
	log_esc(esc, sizeof(esc), msg);
	if (c->fail_streak == 0)
		log_warn("db_connect_failed", "conn=%d error=\"%s\"", c->idx, esc);
	conn_fail(c, "connect_failed");
}

static void conn_poll_connect(struct db_conn *c)
{
	struct db_pool *p = c->pool;
	PostgresPollingStatusType r = PQconnectPoll(c->pg);
	char setup[96];
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
		conn_connect_failed(c);
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
	tv = clock_tv(setup_ms);
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

void db_conn_start(struct db_conn *c)
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
		conn_connect_failed(c);
		return;
	}
	tv = clock_tv(p->o.connect_timeout_ms);
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
void db_conn_cancel(struct db_conn *c)
{
	struct cancel_job *j;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t all, old;
	struct timeval tv;
	int rc;

	c->state = CS_DRAINING;
	c->drained = 0;
	c->drain_deadline = clock_mono_ms() + DB_CANCEL_GRACE_MS;
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
	tv = clock_tv(DB_CANCEL_GRACE_MS);
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
		db_conn_start(c);
		return;
	case CS_CONNECTING:
	case CS_SETUP:
	case CS_PREPARING:
		conn_fail(c, "connect_timeout");
		return;
	case CS_DRAINING:
		now = clock_mono_ms();
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
		tv = clock_tv(c->drained ? DB_CANCEL_POLL_MS : (long)(c->drain_deadline - now));
		event_add(c->timer, &tv);
		return;
	default:
		return;
	}
}

/* Declared in db_pool.h for every caller; defined here, where results are
 * read, so that calls between the two files go one way (pool -> conn). */
const char *db_sqlstate(const PGresult *res)
{
	const char *s;

	if (res == NULL)
		return "";
	s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	return s != NULL ? s : "";
}

int db_conn_init(struct db_conn *c, struct db_pool *p, int idx,
		 const struct db_conn_events *events)
{
	c->pool = p;
	c->events = events;
	c->idx = idx;
	c->state = CS_BACKOFF;
	c->backoff_ms = DB_BACKOFF_MIN_MS;
	c->prepared = calloc((size_t)(p->nstmts > 0 ? p->nstmts : 1), 1);
	c->timer = evtimer_new(p->base, conn_timer_cb, c);
	if (c->prepared == NULL || c->timer == NULL)
		return -1;
	return 0;
}

void db_conn_destroy(struct db_conn *c)
{
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->prepared);
}
