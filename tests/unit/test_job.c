/*
 * test_job.c - daemon/job.c on a real libevent loop: runs follow the delays
 * their clients return, one run at a time even when poked, a delay returned
 * by run() is not a run, failures are retried after retry_ms and counted,
 * stop during a run frees only when the run ends (and never calls next()),
 * job_submit_op keeps the job alive until its callback, and the metrics
 * render runs, failures and durations by job; job_launch allocates, sets up
 * and frees a client's state. The database path goes through
 * a real db_pool whose server does not answer (DB_UNAVAILABLE), so no
 * PostgreSQL is needed here; sweeper, outbox and purge exercise job.c
 * against a real one in the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "app.h"
#include "clock.h"
#include "db_pool.h"
#include "job.h"
#include "log.h"
#include "metrics.h"

/* One test client: each run lasts run_ms on a timer of its own (async work),
 * then ends with job_done(next_ms). */
struct client {
	struct app *app;
	struct job *job;
	struct event *work;      /* the run's asynchronous work */
	long run_ms;             /* how long a run takes */
	long next_ms;            /* what the run ends with */
	long run_returns;        /* what run() returns when not JOB_RUNNING-async */
	int use_db;              /* run submits a statement instead */
	int runs, concurrent, max_concurrent, nexts, frees, stops;
	uint64_t run_at_ms[16];
	enum db_status last_st;
	int stop_after;          /* job_stop from inside the n-th end (0: never) */
	int op_cbs;
	enum db_status op_st;
};

static void client_work_done(evutil_socket_t fd, short what, void *arg)
{
	struct client *c = arg;

	(void)fd;
	(void)what;
	c->concurrent--;
	job_done(c->job, c->next_ms);
}

/* The loop's own time of the callback now running: libevent bases a timer
 * added from a callback on the time it cached for this loop iteration, so
 * spacing is a promise in that time. Read with clock_mono_ms() instead, a
 * callback that starts late (a loaded machine, a sanitizer build) makes the
 * next run look early. */
static uint64_t loop_now_ms(struct app *app)
{
	struct timeval tv;

	event_base_gettimeofday_cached(app->base, &tv);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static long client_run(struct job *j, void *arg)
{
	struct client *c = arg;
	struct timeval tv = clock_tv(c->run_ms);

	if (c->runs < 16)
		c->run_at_ms[c->runs] = loop_now_ms(c->app);
	c->runs++;
	if (c->run_returns != JOB_RUNNING)
		return c->run_returns;
	if (c->use_db)
		return job_submit(j, "stmt", 0, NULL) < 0 ? JOB_FAILED : JOB_RUNNING;
	c->concurrent++;
	if (c->concurrent > c->max_concurrent)
		c->max_concurrent = c->concurrent;
	evtimer_add(c->work, &tv);
	return JOB_RUNNING;
}

static long client_next(void *arg, enum db_status st, const PGresult *res)
{
	struct client *c = arg;

	(void)res;
	c->nexts++;
	c->last_st = st;
	return st == DB_OK ? c->next_ms : JOB_FAILED;
}

static void client_stop(void *arg)
{
	((struct client *)arg)->stops++;
}

static void client_free(void *arg)
{
	((struct client *)arg)->frees++;
}

static const struct job_def def = {
	.name = "test_job",
	.retry_ms = 30,
	.run = client_run,
	.next = client_next,
	.stop = client_stop,
	.free = client_free,
};

struct fixture {
	struct app app;
	struct client c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct db_pool_opts o = {
		/* Nothing listens on port 1: every operation ends DB_UNAVAILABLE. */
		.conninfo = "host=127.0.0.1 port=1 connect_timeout=1",
		.size = 1,
		.query_timeout_ms = 3000,
		.connect_timeout_ms = 500,
		.reconnect_max_ms = 200,
	};

	assert_non_null(f);
	f->app.base = event_base_new();
	f->app.metrics = metrics_new();
	f->app.pool = db_pool_new(f->app.base, &o);
	assert_non_null(f->app.pool);
	assert_int_equal(db_pool_prepare(f->app.pool, "stmt", "SELECT 1", 0), 0);
	assert_int_equal(db_pool_start(f->app.pool), 0);
	f->c.app = &f->app;
	f->c.work = evtimer_new(f->app.base, client_work_done, &f->c);
	f->c.run_returns = JOB_RUNNING;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	db_pool_close(f->app.pool);
	event_base_loop(f->app.base, EVLOOP_NONBLOCK);
	db_pool_free(f->app.pool);
	event_free(f->c.work);
	metrics_free(f->app.metrics);
	event_base_free(f->app.base);
	free(f);
	return 0;
}

/* Run the loop for ms milliseconds. */
static void loop_for(struct fixture *f, long ms)
{
	struct timeval tv = clock_tv(ms);

	event_base_loopexit(f->app.base, &tv);
	event_base_dispatch(f->app.base);
}

/* Run the loop until cond holds (checked every few ms), at most 10 s: the
 * machine may be loaded, so tests wait for what they expect instead of
 * assuming how fast it comes. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

#define loop_until(f, cond)                                                          \
	do {                                                                         \
		struct event *tick_ = event_new((f)->app.base, -1, EV_PERSIST, tick_cb, NULL); \
		struct timeval tv_ = clock_tv(5);                                    \
		uint64_t end_ = clock_mono_ms() + 10000;                             \
		event_add(tick_, &tv_);                                              \
		while (!(cond) && clock_mono_ms() < end_)                            \
			event_base_loop((f)->app.base, EVLOOP_ONCE);                 \
		event_free(tick_);                                                   \
		assert_true(cond);                                                   \
	} while (0)

static char *render(struct fixture *f)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *s;

	metrics_render(f->app.metrics, NULL, b);
	n = evbuffer_get_length(b);
	s = malloc(n + 1);
	assert_non_null(s);
	evbuffer_remove(b, s, n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static void has(const char *text, const char *line)
{
	if (strstr(text, line) == NULL)
		fail_msg("metrics lack \"%s\" in:\n%s", line, text);
}

static void stop_and_reap(struct fixture *f)
{
	job_stop(f->c.job);
	loop_until(f, f->c.frees == 1);
	loop_for(f, 20);
	assert_int_equal(f->c.frees, 1);
}

/* Runs of 20 ms with 30 ms between them: spaced by at least run + delay,
 * never two at once. */
static void test_runs_follow_next_delay(void **state)
{
	struct fixture *f = *state;
	char *m;

	f->c.run_ms = 20;
	f->c.next_ms = 30;
	f->c.job = job_start(&f->app, &def, &f->c, 10);
	assert_non_null(f->c.job);
	loop_until(f, f->c.runs >= 5);
	assert_int_equal(f->c.max_concurrent, 1);
	for (int i = 1; i < f->c.runs && i < 16; i++)
		assert_true(f->c.run_at_ms[i] - f->c.run_at_ms[i - 1] >= 48);
	m = render(f);
	has(m, "# TYPE referrald_job_runs_total counter");
	has(m, "# TYPE referrald_job_duration_seconds histogram");
	has(m, "referrald_job_failures_total{job=\"test_job\"} 0");
	/* Every finished run is in the histogram, each took >= 20 ms. */
	{
		char want[128];
		int done = f->c.runs - f->c.concurrent;

		snprintf(want, sizeof(want), "referrald_job_runs_total{job=\"test_job\"} %d", done);
		has(m, want);
		snprintf(want, sizeof(want),
			 "referrald_job_duration_seconds_bucket{job=\"test_job\",le=\"0.01\"} 0");
		has(m, want);
		snprintf(want, sizeof(want),
			 "referrald_job_duration_seconds_count{job=\"test_job\"} %d", done);
		has(m, want);
	}
	free(m);
	stop_and_reap(f);
	assert_int_equal(f->c.stops, 1);
}

/* JOB_NOW and job_run_now never overlap a run; job_run_now on an idle job
 * cuts a long wait short. */
static void test_one_run_at_a_time(void **state)
{
	struct fixture *f = *state;

	f->c.run_ms = 300;
	f->c.next_ms = 60000;
	f->c.job = job_start(&f->app, &def, &f->c, 0);
	loop_until(f, f->c.runs == 1);
	/* Poked during the run: nothing new starts. */
	job_run_now(f->c.job);
	job_run_now(f->c.job);
	loop_until(f, f->c.concurrent == 0);
	loop_for(f, 30);
	assert_int_equal(f->c.runs, 1);
	assert_int_equal(f->c.max_concurrent, 1);
	/* Idle, waiting a minute: poked, it runs at once. */
	f->c.run_ms = 1;
	job_run_now(f->c.job);
	loop_until(f, f->c.runs == 2);
	/* Back to back: JOB_NOW after each run. */
	f->c.next_ms = JOB_NOW;
	job_run_now(f->c.job);
	loop_until(f, f->c.runs >= 8);
	assert_int_equal(f->c.max_concurrent, 1);
	stop_and_reap(f);
}

/* run() saying "nothing now, ask in 40 ms" is not a run in the metrics;
 * run() failing is, and is retried after retry_ms (30). */
static void test_delay_and_failure(void **state)
{
	struct fixture *f = *state;
	char *m;

	int asked;

	f->c.run_returns = 40;
	f->c.job = job_start(&f->app, &def, &f->c, 0);
	loop_until(f, f->c.runs >= 3);
	for (int i = 1; i < f->c.runs && i < 16; i++)
		assert_true(f->c.run_at_ms[i] - f->c.run_at_ms[i - 1] >= 38);
	m = render(f);
	has(m, "referrald_job_runs_total{job=\"test_job\"} 0");
	free(m);
	asked = f->c.runs;
	f->c.run_returns = JOB_FAILED;
	loop_until(f, f->c.runs >= asked + 3);
	for (int i = asked + 1; i < f->c.runs && i < 16; i++)
		assert_true(f->c.run_at_ms[i] - f->c.run_at_ms[i - 1] >= 28);
	m = render(f);
	{
		char want[96];

		snprintf(want, sizeof(want), "referrald_job_failures_total{job=\"test_job\"} %d",
			 f->c.runs - asked);
		has(m, want);
		snprintf(want, sizeof(want), "referrald_job_runs_total{job=\"test_job\"} %d",
			 f->c.runs - asked);
		has(m, want);
	}
	free(m);
	stop_and_reap(f);
}

/* Stopped during a run: not freed until the run ends, then freed once;
 * nothing runs after the stop. */
static void test_stop_during_run_defers_free(void **state)
{
	struct fixture *f = *state;

	f->c.run_ms = 300;
	f->c.next_ms = 0;
	f->c.job = job_start(&f->app, &def, &f->c, 0);
	loop_until(f, f->c.runs == 1);
	job_stop(f->c.job);
	job_stop(f->c.job); /* twice is harmless */
	job_run_now(f->c.job);
	assert_int_equal(f->c.stops, 1);
	assert_int_equal(f->c.frees, 0);
	loop_until(f, f->c.frees == 1);
	loop_for(f, 20);
	assert_int_equal(f->c.frees, 1);
	assert_int_equal(f->c.runs, 1);
	job_stop(NULL);
}

/* The database path: the statement ends DB_UNAVAILABLE (no server), next()
 * sees it, the failure is counted and retried. */
static void test_submit_through_pool(void **state)
{
	struct fixture *f = *state;
	char *m;

	f->c.use_db = 1;
	f->c.next_ms = 10;
	f->c.job = job_start(&f->app, &def, &f->c, 0);
	/* The pool gives up after its down grace (1 s). */
	loop_until(f, f->c.nexts >= 1);
	assert_int_equal(f->c.last_st, DB_UNAVAILABLE);
	m = render(f);
	has(m, "referrald_job_failures_total{job=\"test_job\"}");
	assert_null(strstr(m, "referrald_job_failures_total{job=\"test_job\"} 0\n"));
	free(m);
	stop_and_reap(f);
}

/* Stopped while the statement is with the pool: freed when the pool returns
 * it, without next(). */
static void test_stop_with_statement_in_flight(void **state)
{
	struct fixture *f = *state;

	f->c.use_db = 1;
	f->c.job = job_start(&f->app, &def, &f->c, 0);
	loop_until(f, f->c.runs == 1); /* the statement waits for a connection */
	assert_int_equal(f->c.nexts, 0);
	job_stop(f->c.job);
	assert_int_equal(f->c.frees, 0);
	loop_until(f, f->c.frees == 1);
	assert_int_equal(f->c.nexts, 0);
	assert_int_equal(f->c.runs, 1);
}

static void op_cb(void *arg, enum db_status st, const PGresult *res)
{
	struct client *c = arg;

	(void)res;
	c->op_cbs++;
	c->op_st = st;
	/* The job is stopped but its arg is still ours. */
	assert_int_equal(c->frees, 0);
}

/* Stopped while the statement is with the pool: freed when the pool returns
 * it, without next(). */
/* An operation beside the run keeps the job until its callback, which is
 * called even after job_stop. */
static void test_op_keeps_job(void **state)
{
	struct fixture *f = *state;

	f->c.run_returns = 60000; /* no runs of interest */
	f->c.job = job_start(&f->app, &def, &f->c, 60000);
	assert_int_equal(job_submit_op(f->c.job, "stmt", 0, NULL, op_cb, &f->c), 0);
	job_stop(f->c.job);
	assert_int_equal(f->c.frees, 0);
	db_pool_close(f->app.pool); /* the op completes DB_UNAVAILABLE */
	loop_until(f, f->c.frees == 1);
	assert_int_equal(f->c.op_cbs, 1);
	assert_int_equal(f->c.op_st, DB_UNAVAILABLE);
	assert_int_equal(f->c.frees, 1);
}

/* job_launch: the client's state, allocated zeroed by job.c, set up by init
 * with the app and the job's own handle, freed by job.c after the free hook;
 * the first run after first(app); a failed run retried after JOB_RETRY_MS
 * when the def leaves retry_ms 0. */
struct launched {
	struct app *app;
	struct job *job;
	int zeroed, runs;
	uint64_t run_at_ms[2];
	int refuse;
};

static int launched_inits, launched_frees, launched_refuse;
static struct launched *launched_state; /* the arg run() was given */

static int launched_init(struct app *app, struct job *j, void *arg)
{
	struct launched *l = arg;

	launched_inits++;
	l->zeroed = l->app == NULL && l->job == NULL && l->runs == 0;
	l->app = app;
	l->job = j;
	return launched_refuse ? -1 : 0;
}

static long launched_first(const struct app *app)
{
	(void)app;
	return 30;
}

static long launched_run(struct job *j, void *arg)
{
	struct launched *l = arg;

	(void)j;
	launched_state = l;
	if (l->runs < 2)
		l->run_at_ms[l->runs] = loop_now_ms(l->app);
	l->runs++;
	return l->runs == 1 ? JOB_FAILED : 60000;
}

static void launched_free(void *arg)
{
	(void)arg;
	launched_frees++;
}

static const struct job_def launched_def = {
	.name = "test_launched",
	.first_ms = 60000, /* first() overrides it */
	.first = launched_first,
	.arg_size = sizeof(struct launched),
	.init = launched_init,
	.run = launched_run,
	.free = launched_free,
};

static void test_launch_owns_state(void **state)
{
	struct fixture *f = *state;
	uint64_t start = loop_now_ms(&f->app);
	struct job *j;
	struct launched *l;

	launched_inits = launched_frees = 0;
	launched_state = NULL;
	launched_refuse = 1;
	assert_null(job_launch(&f->app, &launched_def));
	assert_int_equal(launched_inits, 1);
	assert_int_equal(launched_frees, 0); /* a refused init is not freed */

	launched_refuse = 0;
	j = job_launch(&f->app, &launched_def);
	assert_non_null(j);
	assert_int_equal(launched_inits, 2);
	loop_until(f, launched_state != NULL && launched_state->runs >= 2);
	l = launched_state; /* the arg run() sees is the state init set up */
	assert_true(l->zeroed);
	assert_ptr_equal(l->app, &f->app);
	assert_ptr_equal(l->job, j);
	assert_true(l->run_at_ms[0] >= start + 30);
	assert_true(l->run_at_ms[1] >= l->run_at_ms[0] + JOB_RETRY_MS);
	job_stop(j);
	assert_int_equal(launched_frees, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_runs_follow_next_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_run_at_a_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delay_and_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_during_run_defers_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_submit_through_pool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_statement_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_op_keeps_job, setup, teardown),
		cmocka_unit_test_setup_teardown(test_launch_owns_state, setup, teardown),
	};

	log_setup(LOG_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests_name("job", tests, NULL, NULL);
}
