/*
 * outbox.c - the partner notification sender, a client of job.c: it delivers
 * the transactional outbox's events as signed webhooks.
 *
 * Each run claims due events with the "outbox_claim" statement: the SQL
 * function picks rows whose next_attempt_at has come (partial index on it)
 * with FOR UPDATE SKIP LOCKED, counts the attempt and leases the row for
 * 60 s by moving next_attempt_at, and commits at once; each row comes with
 * its target webhooks (url and sealed secret). No transaction stays open
 * while we talk to partners. Each event is then POSTed to its webhooks one
 * after another (webhook.c) and recorded with "outbox_done" when every
 * endpoint answered 2xx, or with "outbox_retry_in" otherwise: the delay is
 * webhook.md's back-off, min(retry_base * 2^(n-1), retry_max) +-20 %
 * jitter, computed here because the jitter and the limits are
 * configuration; after max_attempts the row is parked (next_attempt_at =
 * infinity, last_error "gave_up:...") and kept for operators.
 *
 * A failed endpoint makes the whole event retry, so endpoints that did
 * answer 2xx see it again: at-least-once, which receivers handle by
 * de-duplicating on the event id (webhook.md says so). An event's endpoints
 * are served one after another, so the 60 s lease covers about 60 s /
 * timeout of them that all time out; past that another daemon may claim the
 * event meanwhile (a duplicate, never a loss). This process skips a claimed
 * row that it is still delivering.
 *
 * Scheduling: claim no more than the free delivery slots; a full claim means
 * more may be due, so claim again as soon as slots free up; otherwise poll
 * every poll_interval (events are written by any daemon on the database, so
 * there is no due time to sleep until).
 *
 * Owns: at most [webhooks] max_inflight events being delivered (each to its
 * endpoints one after another, so never more deliveries than that in
 * flight), and the webhook client (TLS context, resolver) they use. At
 * job_stop it abandons deliveries in flight: their events stay leased in the
 * outbox and are sent again when the lease runs out (at-least-once).
 * Must never: log or send client data, a secret, a URL or an endpoint's
 * answer (event ids, webhook ids, outcome classes and status codes only);
 * keep an event only in memory (the database lease covers a crash).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/queue.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "app.h"
#include "config.h"
#include "jobs.h"
#include "keyring.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "webhook.h"

#define OUTBOX_ID_MAX 64

struct outbox_event;

struct outbox {
	struct app *app;
	struct webhook_client *client;
	struct job *job;
	LIST_HEAD(, outbox_event) events;  /* events being delivered */
	int active;                   /* length of events */
	int more;                     /* the last claim was full: more may be due */
};

struct outbox_event {
	struct outbox *o;
	LIST_ENTRY(outbox_event) link; /* in o->events */
	char id[OUTBOX_ID_MAX];
	char *body;                   /* the exact bytes every endpoint gets and we sign */
	size_t body_len;
	json_t *hooks;                /* [{"id","url","secret_sealed"}] */
	size_t next_hook;
	int attempt;                  /* this attempt's number (the claim counted it) */
	int failed;
	char error[48];               /* first failure's class, for last_error */
	struct webhook_delivery *d;
	char hook_id[OUTBOX_ID_MAX];  /* the endpoint d talks to */
};

static void outbox_event_next(struct outbox_event *ev);

long outbox_backoff_ms(int n, long base_ms, long max_ms, double jitter01)
{
	double d = (double)base_ms;

	if (n < 1)
		n = 1;
	/* Doubling past the ceiling is pointless; stop before overflow. */
	for (int i = 1; i < n && d < (double)max_ms; i++)
		d *= 2;
	if (d > (double)max_ms)
		d = (double)max_ms;
	d *= 0.8 + 0.4 * jitter01;
	return d < 1 ? 1 : (long)d;
}

static void outbox_event_free(struct outbox_event *ev)
{
	struct outbox *o = ev->o;

	LIST_REMOVE(ev, link);
	o->active--;
	if (ev->d)
		webhook_cancel(ev->d);
	json_decref(ev->hooks);
	free(ev->body);
	free(ev);
}

static void outbox_ack_cb(void *arg, enum db_status st, const PGresult *res)
{
	struct outbox *o = arg;

	if (st != DB_OK) {
		/* The lease runs out and the event is sent again: at-least-once. */
		log_warn("outbox_ack_failed", "status=%s sqlstate=%s", db_status_to_str(st),
			 res ? db_sqlstate(res) : "");
		metrics_add(o->app->metrics, M_OUTBOX_ERRORS, 1);
	}
}

/* Every endpoint has had its try: record the event's fate, free it, and let
 * the next claim use the freed slot. */
static void outbox_event_done(struct outbox_event *ev)
{
	struct outbox *o = ev->o;
	const struct config *cfg = o->app->cfg;
	const char *params[3];
	char delay[24], error[64];
	const char *stmt;
	int nparams;

	params[0] = ev->id;
	if (ev->failed == 0) {
		stmt = "outbox_done";
		nparams = 1;
		metrics_add(o->app->metrics, M_OUTBOX_DELIVERED, 1);
	} else {
		long ms;

		if (ev->attempt >= cfg->webhook_max_attempts) {
			ms = -1;
			snprintf(error, sizeof(error), "gave_up:%s", ev->error);
			log_error("webhook_gave_up", "event_id=%s attempts=%d error=%s", ev->id,
				  ev->attempt, ev->error);
			metrics_add(o->app->metrics, M_OUTBOX_GIVEN_UP, 1);
		} else {
			uint32_t r = 0;

			RAND_bytes((unsigned char *)&r, sizeof(r));
			ms = outbox_backoff_ms(ev->attempt, cfg->webhook_retry_base_ms,
					       cfg->webhook_retry_max_ms,
					       (double)r / 4294967296.0);
			snprintf(error, sizeof(error), "%s", ev->error);
			log_info("webhook_retry_scheduled", "event_id=%s attempt=%d retry_in_ms=%ld",
				 ev->id, ev->attempt, ms);
			metrics_add(o->app->metrics, M_OUTBOX_RETRIES, 1);
		}
		snprintf(delay, sizeof(delay), "%ld", ms);
		params[1] = error;
		params[2] = delay;
		stmt = "outbox_retry_in";
		nparams = 3;
	}
	job_submit_op(o->job, stmt, nparams, params, outbox_ack_cb, o);
	outbox_event_free(ev);
	if (o->more)
		job_run_now(o->job); /* a slot is free; no-op while a claim runs */
}

static void outbox_delivered_cb(void *arg, enum webhook_outcome oc, int status)
{
	struct outbox_event *ev = arg;
	struct outbox *o = ev->o;

	ev->d = NULL;
	if (oc == WH_DELIVERED) {
		log_info("webhook_delivered", "event_id=%s webhook_id=%s status=%d attempt=%d",
			 ev->id, ev->hook_id, status, ev->attempt);
		metrics_add(o->app->metrics, M_WEBHOOK_OK, 1);
	} else {
		log_warn("webhook_failed", "event_id=%s webhook_id=%s outcome=%s status=%d attempt=%d",
			 ev->id, ev->hook_id, webhook_outcome_to_str(oc), status, ev->attempt);
		metrics_add(o->app->metrics, M_WEBHOOK_FAILED, 1);
		if (ev->failed++ == 0) {
			if (oc == WH_HTTP_STATUS)
				snprintf(ev->error, sizeof(ev->error), "http_%d", status);
			else
				snprintf(ev->error, sizeof(ev->error), "%s",
					 webhook_outcome_to_str(oc));
		}
	}
	outbox_event_next(ev);
}

/* Start the delivery to the next endpoint, or finish the event. A webhook
 * whose secret cannot be opened (key rotated away) counts as failed and is
 * never sent unsigned. */
static void outbox_event_next(struct outbox_event *ev)
{
	struct outbox *o = ev->o;
	const struct config *cfg = o->app->cfg;

	while (ev->next_hook < json_array_size(ev->hooks)) {
		json_t *h = json_array_get(ev->hooks, ev->next_hook++);
		const char *hid = json_string_value(json_object_get(h, "id"));
		const char *url = json_string_value(json_object_get(h, "url"));
		const char *sealed = json_string_value(json_object_get(h, "secret_sealed"));
		struct webhook_request rq;
		char *secret = NULL;
		size_t slen = 0;

		snprintf(ev->hook_id, sizeof(ev->hook_id), "%s", hid ? hid : "?");
		if (url && sealed && hid) {
			/* Bound to its own row and purpose: a secret copied from
			 * another webhook, or any other sealed value, does not open. */
			struct seal_bind b = { "webhooks", "secret", hid };

			secret = keyring_open(o->app->keys, KP_WEBHOOK_SECRET, &b, sealed, &slen);
		}
		if (!secret) {
			log_error("webhook_failed", "event_id=%s webhook_id=%s outcome=secret",
				  ev->id, ev->hook_id);
			if (ev->failed++ == 0)
				snprintf(ev->error, sizeof(ev->error), "secret");
			continue;
		}
		memset(&rq, 0, sizeof(rq));
		rq.url = url;
		rq.secret = secret;
		rq.secret_len = slen;
		rq.body = ev->body;
		rq.body_len = ev->body_len;
		rq.t = (long long)time(NULL);
		rq.timeout_ms = cfg->webhook_timeout_ms;
		rq.max_response = cfg->webhook_max_response;
		ev->d = webhook_post(o->client, &rq, outbox_delivered_cb, ev);
		OPENSSL_cleanse(secret, slen);
		free(secret);
		if (ev->d)
			return; /* outbox_delivered_cb continues */
		if (ev->failed++ == 0)
			snprintf(ev->error, sizeof(ev->error), "internal");
	}
	outbox_event_done(ev);
}

/* One claimed row -> an event in delivery. Returns -1 when the row is not
 * what outbox_claim promises (then it is left to its lease). */
static int outbox_event_start(struct outbox *o, const char *text)
{
	json_t *row, *data, *hooks, *env = NULL;
	json_error_t jerr;
	const char *id, *type, *created;
	struct outbox_event *ev = NULL, *e;

	row = json_loads(text, 0, &jerr);
	if (!row)
		return -1;
	id = json_string_value(json_object_get(row, "id"));
	type = json_string_value(json_object_get(row, "type"));
	created = json_string_value(json_object_get(row, "created_at"));
	data = json_object_get(row, "payload");
	hooks = json_object_get(row, "webhooks");
	if (!id || strlen(id) >= OUTBOX_ID_MAX || !type || !created || !json_is_object(data) ||
	    !json_is_array(hooks) || !json_is_integer(json_object_get(row, "attempts")))
		goto fail;
	/* Still in delivery here after its lease ran out (many slow endpoints):
	 * the delivery under way will record the outcome; do not send it twice
	 * at once from this process. */
	LIST_FOREACH(e, &o->events, link) {
		if (strcmp(e->id, id) == 0) {
			json_decref(row);
			return 0;
		}
	}
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		goto fail;
	/* The envelope of webhook.md, in its member order. */
	env = json_pack("{s:s, s:s, s:s, s:O}", "id", id, "type", type, "created_at", created,
			"data", data);
	if (!env)
		goto fail;
	ev->body = json_dumps(env, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!ev->body)
		goto fail;
	ev->body_len = strlen(ev->body);
	ev->o = o;
	snprintf(ev->id, sizeof(ev->id), "%s", id);
	ev->attempt = (int)json_integer_value(json_object_get(row, "attempts"));
	ev->hooks = json_incref(hooks);
	json_decref(env);
	json_decref(row);
	LIST_INSERT_HEAD(&o->events, ev, link);
	o->active++;
	outbox_event_next(ev);
	return 0;
fail:
	if (ev)
		free(ev->body);
	free(ev);
	json_decref(env);
	json_decref(row);
	return -1;
}

/* The claim returned: start its events; say when to claim again. */
static long outbox_next(void *arg, enum db_status st, const PGresult *res)
{
	struct outbox *o = arg;
	int limit, n, bad = 0;

	if (st != DB_OK) {
		metrics_add(o->app->metrics, M_OUTBOX_ERRORS, 1);
		o->more = 0;
		return JOB_FAILED;
	}
	n = PQntuples(res);
	limit = o->app->cfg->webhook_max_inflight - o->active;
	if (limit > o->app->cfg->webhook_batch)
		limit = o->app->cfg->webhook_batch;
	for (int i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 0) || outbox_event_start(o, PQgetvalue(res, i, 0)) < 0)
			bad++;
	}
	if (bad) {
		log_error("outbox_claim_bad_rows", "rows=%d", bad);
		metrics_add(o->app->metrics, M_OUTBOX_ERRORS, (unsigned long)bad);
	}
	/* A full claim: more may be due. Claim again once a slot is free (an
	 * event finishing re-runs us); right now if one already is. */
	o->more = n > 0 && n >= limit;
	if (o->more && o->active < o->app->cfg->webhook_max_inflight)
		return JOB_NOW;
	return o->app->cfg->webhook_poll_ms;
}

static long outbox_run(struct job *j, void *arg)
{
	struct outbox *o = arg;
	const struct config *cfg = o->app->cfg;
	char batch[24];
	const char *params[1] = { batch };
	int limit;

	limit = cfg->webhook_max_inflight - o->active;
	if (limit > cfg->webhook_batch)
		limit = cfg->webhook_batch;
	if (limit <= 0) {
		/* Every slot busy: an event finishing re-runs us; poll meanwhile. */
		o->more = 1;
		return cfg->webhook_poll_ms;
	}
	snprintf(batch, sizeof(batch), "%d", limit);
	return job_submit(j, "outbox_claim", 1, params) < 0 ? JOB_FAILED : JOB_RUNNING;
}

static void outbox_abandon(void *arg)
{
	struct outbox *o = arg;
	int abandoned = o->active;

	while (!LIST_EMPTY(&o->events))
		outbox_event_free(LIST_FIRST(&o->events));
	if (abandoned)
		log_info("outbox_stop", "abandoned_events=%d", abandoned);
}

static void outbox_free(void *arg)
{
	struct outbox *o = arg;

	webhook_client_free(o->client);
}

static int outbox_init(struct app *app, struct job *j, void *arg)
{
	struct outbox *o = arg;
	char err[256], esc[300];

	o->app = app;
	o->job = j;
	o->client = webhook_client_new(app->base, app->cfg->webhook_ca_file, err, sizeof(err));
	if (!o->client) {
		log_error("outbox_start_failed", "reason=\"%s\"", log_esc(esc, sizeof(esc), err));
		return -1;
	}
	webhook_client_allow_private(o->client, app->cfg->webhook_allow_private);
	return 0;
}

const struct job_def outbox_job = {
	.name = "outbox",
	.arg_size = sizeof(struct outbox),
	.init = outbox_init,
	.run = outbox_run,
	.next = outbox_next,
	.stop = outbox_abandon,
	.free = outbox_free,
};
