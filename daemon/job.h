/*
 * job.h - periodic jobs on the loop; how to write one: job.c's header.
 * What it owns and must never do: job.c.
 */
#ifndef REFD_JOB_H
#define REFD_JOB_H

#include <jansson.h>

#include "db_pool.h"

struct app;
struct job;

/* Delays returned by run() and next() (milliseconds otherwise, >= 0). */
#define JOB_NOW 0L          /* run again at once: the batch was full */
#define JOB_FAILED (-1L)    /* the run failed: job.c logs, counts, retries */
#define JOB_RUNNING (-2L)   /* from run(): a run is under way, its end follows */
#define JOB_RETRY_MS 1000L  /* retry_ms when a def leaves it 0 */

struct job_def {
	const char *name;   /* log and metric label: a literal, [a-z_] */
	long retry_ms;      /* delay after a failed run; 0 means JOB_RETRY_MS */
	/* job_launch(): the first run comes first_ms after start, or first(app)
	 * when that is set (a delay read from the configuration). */
	long first_ms;
	long (*first)(const struct app *app);
	/* job_launch(): arg is the app, or, when arg_size is not 0, the client's
	 * own state: arg_size zeroed bytes that job.c allocates and frees (after
	 * free() below), set up by init (optional; -1 refuses the start, having
	 * logged why and released what it took). j is the job's own handle. */
	size_t arg_size;
	int (*init)(struct app *app, struct job *j, void *arg);
	/* Start one run: job_submit() its statement (or start other work that
	 * ends with job_done()) and return JOB_RUNNING; or return a delay
	 * (nothing to do now, ask again then; not counted as a run); or
	 * JOB_FAILED. */
	long (*run)(struct job *j, void *arg);
	/* The statement of job_submit() returned: read res, return the delay
	 * until the next run or JOB_FAILED. Not called once the job is
	 * stopped. Required when run() uses job_submit(). */
	long (*next)(void *arg, enum db_status st, const PGresult *res);
	/* Optional: job_stop() was called; abandon other work (no run starts
	 * after it, next() is not called any more). */
	void (*stop)(void *arg);
	/* Optional: free arg (or, with arg_size, what it holds); called once,
	 * when the job is stopped and nothing it started is in flight any more. */
	void (*free)(void *arg);
};

/* Start the job a client defines (arg, first run: see struct job_def).
 * NULL when out of memory or init refused. */
struct job *job_launch(struct app *app, const struct job_def *def);
/* Start with an arg of the caller's; first run after first_ms. NULL when
 * out of memory (def->free is not called then: the caller still owns arg). */
struct job *job_start(struct app *app, const struct job_def *def, void *arg, long first_ms);
/* Stop: no new run; free (def->free(arg), then the job) once every
 * operation in flight has returned, which may be at once. NULL is a no-op. */
void job_stop(struct job *j);
/* Run at once unless a run is under way (its next() decides) or stopped. */
void job_run_now(struct job *j);

/* The run's statement; its result goes to def->next. 0, or -1 when the
 * pool is closed (return JOB_FAILED from run() then). */
int job_submit(struct job *j, const char *stmt, int nparams, const char *const *values);
/* run() for a statement of one integer parameter (a batch size): submit it
 * and return JOB_RUNNING, or JOB_FAILED. */
long job_submit_batch(struct job *j, const char *stmt, long batch);
/* For next(): the JSON object a statement answered as its one value (one row,
 * one column, not NULL), or NULL when st is not DB_OK or the answer is not
 * that. The caller json_decref()s it. */
json_t *job_result_object(enum db_status st, const PGresult *res);
/* An integer member of o, or 0 when it is absent or not an integer. */
long job_json_long(const json_t *o, const char *key);
/* End a run that did not use job_submit (next_ms as next() returns it).
 * When the job was stopped meanwhile this may free it and its arg: call it
 * last. */
void job_done(struct job *j, long next_ms);
/* Another statement of the job's (not its run), e.g. an acknowledgement:
 * cb is called exactly once, even after job_stop(), and the job and its arg
 * are kept until it has returned. 0, or -1 when the pool is closed (cb is
 * never called then). */
int job_submit_op(struct job *j, const char *stmt, int nparams, const char *const *values,
		  db_cb cb, void *arg);

#endif
