/*
 * main.c - the process: command line, start-up order, signals, drain, exit.
 *
 * Owns: the struct app and every member of it (creates each in start-up order,
 * frees each in reverse), the signal events (SIGHUP reload, SIGTERM/SIGINT
 * drain) and the drain timer.
 * Must never: serve requests itself, run blocking libpq calls once the event
 * loop is running (migrations and the CLI commands run before it starts), or
 * print a secret (conninfo, keys, tokens) in a message.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "app.h"
#include "cli.h"
#include "config.h"
#include "db_pool.h"
#include "http_server.h"
#include "initkeys.h"
#include "keyring.h"
#include "wipe.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "datakey.h"
#include "keystore.h"
#include "notify.h"
#include "privdrop.h"
#include "queries.h"
#include "request.h"
#include "clock.h"
#include "jobs.h"
#include "audit_head.h"
#include "auth.h"
#include "auth_limits.h"
#include "tls.h"

/* Exit codes (also in --help). */
#define EXIT_OK 0
#define EXIT_CONFIG 1  /* configuration refused */
#define EXIT_USAGE 2   /* bad command line */
#define EXIT_START 3   /* start-up failed: keys, database, durability, migrations, TLS, listen */

#define DRAIN_POLL_MS 50
#define CLOSE_GRACE_MS 1000 /* after the pool closed, time for handlers to send their 503 */

enum run_phase { PHASE_RUNNING = 0, PHASE_DRAINING, PHASE_CLOSING };

/* The process's event plumbing; lives in main()'s frame, passed to callbacks. */
struct proc {
	struct app *app;
	struct event *sighup, *sigterm, *sigint;
	struct event *drain_timer;
	struct notify *notify;  /* the service manager's readiness protocol */
	enum run_phase phase;
	uint64_t phase_start_ms;       /* clock_mono_ms() when the phase began */
	int forced;             /* a second SIGTERM/SIGINT: stop waiting for requests */
	/* Configurations built by SIGHUP. Each replaced one stays allocated until
	 * exit: reloads are rare, and no module can then be left holding a freed
	 * pointer (http_server compares app->cfg with the one it last applied). */
	struct config **reloaded;
	size_t nreloaded;
};

struct cmdline {
	const char *config;
	const char *mint_name;
	int check_config, migrate, verify_audit, reference, version, help, init_keys, rewrap;
	const char *head_file;
};

static void main_usage(FILE *out, int full)
{
	fprintf(out,
		"usage: " REFD_NAME " -c FILE [--check-config] [--init-keys] [--migrate]\n"
		"                 [--mint-admin-token NAME] [--verify-audit [--head FILE]]\n"
		"                 [--rewrap-keys]\n"
		"       " REFD_NAME " --config-reference | --version | --help\n");
	if (!full) {
		fprintf(out, "(" REFD_NAME " --help describes the options and exit codes)\n");
		return;
	}
	fprintf(out,
		"\n"
		"  -c, --config FILE         configuration file (INI: [section] key = value)\n"
		"      --check-config        validate the configuration (and load its TLS\n"
		"                            certificate and key files) and exit\n"
		"      --init-keys           create every key file the configuration names\n"
		"                            (mode 0600; an existing one is never overwritten)\n"
		"      --migrate             apply pending database migrations and exit\n"
		"      --mint-admin-token NAME\n"
		"                            create admin NAME and print a bearer token for it once\n"
		"      --verify-audit        walk the audit hash chain, report the first broken link\n"
		"                            and unsealed records older than [audit] max_unsealed_age\n"
		"      --head FILE           with --verify-audit: also prove the chain still holds the\n"
		"                            signed head in FILE (JSON from GET /v1/audit/head)\n"
		"      --rewrap-keys         wrap every data key in the key store again under the\n"
		"                            current (last) key of data_key_file, with a progress\n"
		"                            line on a terminal (KEK rotation: SECURITY.md)\n"
		"      --config-reference    print every configuration key as a Markdown table\n"
		"      --version             print the version\n"
		"  -h, --help                this text\n"
		"\n"
		"Without a command the daemon runs in the foreground and logs to stderr.\n"
		"Signals: SIGHUP reloads the configuration (reloadable keys) and the TLS\n"
		"certificate; SIGTERM/SIGINT stop accepting, finish in-flight requests within\n"
		"server.drain_timeout, close the database pool and exit 0.\n"
		"\n"
		"Exit codes:\n"
		"  0  success (daemon stopped cleanly, or the command succeeded)\n"
		"  1  configuration refused (the reason is printed as FILE:LINE: reason),\n"
		"     or --mint-admin-token / --verify-audit failed (audit chain broken)\n"
		"  2  bad command line\n"
		"  3  start-up failed: keys, database, durability settings, pending migrations\n"
		"     with migrate = off, TLS material or a listen address\n");
}

static int main_parse_args(int argc, char **argv, struct cmdline *cl)
{
	enum { OPT_MINT = 256, OPT_HEAD };
	/* The switches without an argument set their member themselves
	 * (getopt_long returns 0 for them). */
	const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, &cl->check_config, 1 },
		{ "migrate", no_argument, &cl->migrate, 1 },
		{ "init-keys", no_argument, &cl->init_keys, 1 },
		{ "mint-admin-token", required_argument, NULL, OPT_MINT },
		{ "verify-audit", no_argument, &cl->verify_audit, 1 },
		{ "head", required_argument, NULL, OPT_HEAD },
		{ "rewrap-keys", no_argument, &cl->rewrap, 1 },
		{ "config-reference", no_argument, &cl->reference, 1 },
		{ "version", no_argument, &cl->version, 1 },
		{ "help", no_argument, &cl->help, 1 },
		{ NULL, 0, NULL, 0 },
	};
	int ch, commands;

	memset(cl, 0, sizeof(*cl));
	opterr = 1; /* getopt names the bad option on stderr; usage follows */
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 0:
			break;
		case 'c':
			cl->config = optarg;
			break;
		case OPT_MINT:
			cl->mint_name = optarg;
			break;
		case OPT_HEAD:
			cl->head_file = optarg;
			break;
		case 'h':
			cl->help = 1;
			break;
		default:
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, REFD_NAME ": unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (cl->help || cl->version || cl->reference)
		return 0;
	commands = cl->check_config + cl->migrate + (cl->mint_name != NULL) + cl->verify_audit +
		   cl->init_keys + cl->rewrap;
	if (commands > 1) {
		fprintf(stderr, REFD_NAME ": choose one of --check-config, --init-keys, --migrate, "
				"--mint-admin-token, --verify-audit, --rewrap-keys\n");
		return -1;
	}
	if (cl->head_file && !cl->verify_audit) {
		fprintf(stderr, REFD_NAME ": --head goes with --verify-audit\n");
		return -1;
	}
	if (!cl->config) {
		fprintf(stderr, REFD_NAME ": -c FILE is required\n");
		return -1;
	}
	if (cl->mint_name && !*cl->mint_name) {
		fprintf(stderr, REFD_NAME ": --mint-admin-token needs a NAME\n");
		return -1;
	}
	return 0;
}

/* Periodic jobs on the loop (job.c, jobs.h), started in this order, stopped
 * in the reverse one. A new job is one row. */
static const struct job_def *const main_jobs[] = {
	&sweeper_job, &outbox_job, &purge_job, &retention_job, &erasure_job,
	&seal_job, &head_job, &rematch_job, &steps_job,
};

_Static_assert(sizeof(main_jobs) / sizeof(main_jobs[0]) <= APP_MAX_JOBS, "app.jobs too small");

static void main_stop_jobs(struct app *app)
{
	while (app->njobs > 0) {
		app->njobs--;
		job_stop(app->jobs[app->njobs]);
		app->jobs[app->njobs] = NULL;
	}
}

static int main_in_flight(const struct app *app)
{
	/* A listener not configured (NULL) counts 0. */
	return http_server_in_flight(app->api) + http_server_in_flight(app->mtls) +
	       http_server_in_flight(app->ops);
}

static void main_arm_drain_timer(struct proc *p)
{
	struct timeval tv = clock_tv(DRAIN_POLL_MS);

	evtimer_add(p->drain_timer, &tv);
}

static void main_set_phase(struct proc *p, enum run_phase ph)
{
	p->phase = ph;
	p->phase_start_ms = clock_mono_ms();
}

/*
 * Drain, step by step on a timer (never inside a signal handler):
 * DRAINING - listeners no longer accept; wait for in-flight requests, at most
 *            drain_timeout. Then close the pool: queued and running operations
 *            complete with DB_UNAVAILABLE, so their handlers still reply once.
 * CLOSING  - give those handlers (and the sweeper's callback) a moment on the
 *            loop, then leave it; main() frees everything in reverse order.
 */
static void main_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct proc *p = arg;
	struct app *app = p->app;
	int inflight = main_in_flight(app);
	long elapsed = (long)(clock_mono_ms() - p->phase_start_ms);

	(void)fd;
	(void)what;
	if (p->phase == PHASE_DRAINING) {
		if (inflight > 0 && !p->forced && elapsed < app->cfg->drain_timeout_ms) {
			main_arm_drain_timer(p);
			return;
		}
		log_info("drain.end", "in_flight=%d elapsed_ms=%ld cut_short=%s", inflight, elapsed,
			 inflight == 0 ? "no" : p->forced ? "signal" : "drain_timeout");
		if (app->pool)
			db_pool_close(app->pool);
		if (app->keystore)
			db_pool_close(app->keystore);
		main_set_phase(p, PHASE_CLOSING);
		main_arm_drain_timer(p);
		return;
	}
	if (p->phase == PHASE_CLOSING) {
		/* At least one tick passes here, so callbacks the pool deferred run. */
		if (inflight > 0 && elapsed < CLOSE_GRACE_MS) {
			main_arm_drain_timer(p);
			return;
		}
		if (inflight > 0)
			log_warn("shutdown.abandon", "in_flight=%d", inflight);
		event_base_loopexit(app->base, NULL);
	}
}

static void main_start_drain(struct proc *p, const char *signame)
{
	struct app *app = p->app;

	if (p->phase != PHASE_RUNNING) {
		/* A second signal cuts the wait short: close the pool now. */
		if (p->phase == PHASE_DRAINING) {
			log_warn("drain.forced", "signal=%s", signame);
			p->forced = 1;
			event_active(p->drain_timer, EV_TIMEOUT, 0);
		}
		return;
	}
	app->draining = 1;
	notify_stopping(p->notify);
	log_info("drain.start", "signal=%s in_flight=%d drain_timeout_ms=%ld", signame,
		 main_in_flight(app), app->cfg->drain_timeout_ms);
	http_server_stop_accepting(app->api); /* NULL (not configured): no-op */
	http_server_stop_accepting(app->mtls);
	http_server_stop_accepting(app->ops);
	/* Periodic jobs stop now: no new run may start during the drain. A job
	 * frees itself when the pool returns its operations in flight. */
	main_stop_jobs(app);
	main_set_phase(p, PHASE_DRAINING);
	event_active(p->drain_timer, EV_TIMEOUT, 0);
}

static void main_on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	main_start_drain(arg, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

/*
 * SIGHUP: re-read the file; refuse (and keep running unchanged) when it is
 * invalid or a key that needs a restart changed; otherwise build the new TLS
 * context first (new handshakes use it, established connections keep the
 * old one) and only then point app->cfg at the new configuration, which the
 * modules read at their next use (limits at the next accepted connection).
 */
static void main_on_sighup_apply(struct proc *p, struct config *neu);

static void main_on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct proc *p = arg;
	struct config *neu = calloc(1, sizeof(*neu));

	(void)sig;
	(void)what;
	notify_reloading(p->notify);
	main_on_sighup_apply(p, neu);
	notify_reloaded(p->notify);
}

static void main_on_sighup_apply(struct proc *p, struct config *neu)
{
	struct app *app = p->app;
	struct config **list;
	char err[512], esc[600];

	list = realloc(p->reloaded, (p->nreloaded + 1) * sizeof(*list));
	if (!neu || !list) {
		free(neu);
		if (list)
			p->reloaded = list;
		log_error("reload.failed", "reason=\"out of memory\"");
		return;
	}
	p->reloaded = list;
	/* Files are checked by their users: TLS material is loaded below, and
	 * key files are read only at start (after which the daemon may no
	 * longer be allowed to read them). */
	if (config_load_flags(app->config_path, neu, err, sizeof(err), CONFIG_LOAD_NO_FILES) < 0) {
		log_error("reload.failed", "reason=\"%s\"", log_esc(esc, sizeof(esc), err));
		goto fail;
	}
	if (config_check_reload(app->cfg, neu, err, sizeof(err)) < 0) {
		log_error("reload.failed", "reason=\"%s\"", log_esc(esc, sizeof(esc), err));
		goto fail_loaded;
	}
	if (tls_server_reload(app->tls, neu, err, sizeof(err)) < 0) {
		log_error("reload.failed", "reason=\"%s\"", log_esc(esc, sizeof(esc), err));
		goto fail_loaded;
	}
	p->reloaded[p->nreloaded++] = neu;
	app->cfg = neu;
	log_setup((enum log_level)neu->log_level, (enum log_format)neu->log_format);
	log_info("reload.ok", "config=\"%s\" reloads=%zu", log_esc(esc, sizeof(esc),
		 app->config_path), p->nreloaded);
	return;
fail_loaded:
	config_free(neu);
fail:
	free(neu);
}

/* Migrations and the durability check: blocking libpq, before the loop. */
static int main_prepare_database(const struct config *cfg, int apply)
{
	char err[512], esc[600];
	int pending;

	if (migrate_check_durability(cfg->db_conninfo, err, sizeof(err)) < 0) {
		log_error("start.failed", "step=durability reason=\"%s\"",
			  log_esc(esc, sizeof(esc), err));
		return -1;
	}
	/* Migrations run as the schema owner when one is configured; the
	 * runtime role then cannot alter the schema or disable its triggers. */
	pending = migrate_run(cfg->db_migrate_conninfo ? cfg->db_migrate_conninfo : cfg->db_conninfo,
			      apply, err, sizeof(err));
	if (pending < 0) {
		log_error("start.failed", "step=migrate reason=\"%s\"", log_esc(esc, sizeof(esc), err));
		return -1;
	}
	if (pending > 0) {
		log_error("start.failed", "step=migrate reason=\"%d migration(s) pending and "
			  "database.migrate = off; run with --migrate\"", pending);
		return -1;
	}
	if (keystore_prepare(cfg->key_store_conninfo, err, sizeof(err)) < 0) {
		log_error("start.failed", "step=key_store reason=\"%s\"",
			  log_esc(esc, sizeof(esc), err));
		return -1;
	}
	return 0;
}

static struct http_server *main_listen(struct app *app, const char *addr, enum listener_kind kind,
				       int require_cert, const char *name)
{
	char err[512], esc[600], aesc[300];
	struct http_server *s = http_server_new(app, addr, kind, require_cert, err, sizeof(err));

	if (!s)
		log_error("start.failed", "step=listen listener=%s addr=\"%s\" reason=\"%s\"", name,
			  log_esc(aesc, sizeof(aesc), addr), log_esc(esc, sizeof(esc), err));
	else
		log_info("listen", "listener=%s addr=\"%s\" client_cert=%s", name,
			 log_esc(aesc, sizeof(aesc), addr), require_cert ? "require" : "optional");
	return s;
}

/*
 * --check-config goes one step past parsing: it builds the TLS context and
 * loads the key files exactly as a start would, so an operator can validate
 * a changed file before sending SIGHUP or restarting. Nothing touches the
 * network or the database.
 */
static int main_check_material(const struct config *cfg)
{
	char err[512];
	struct tls_server *t;
	struct keyring *k;

	t = tls_server_new(cfg, err, sizeof(err));
	if (!t) {
		fprintf(stderr, REFD_NAME ": %s\n", err);
		return EXIT_CONFIG;
	}
	tls_server_free(t);
	k = keyring_load(cfg->uic_key_file, cfg->data_key_file, err, sizeof(err));
	if (!k || keyring_load_token_key(k, cfg->token_key_file, err, sizeof(err)) != 0) {
		fprintf(stderr, REFD_NAME ": %s\n", err);
		keyring_free(k);
		return EXIT_CONFIG;
	}
	keyring_free(k);
	if (cfg->audit_signing_key_file) {
		struct audit_signer *sg = audit_signer_load(cfg->audit_signing_key_file, err,
							    sizeof(err));
		if (!sg) {
			fprintf(stderr, REFD_NAME ": %s\n", err);
			return EXIT_CONFIG;
		}
		audit_signer_free(sg);
	}
	return EXIT_OK;
}

/* Everything after the one-shot commands: build the app, run the loop. */
static int main_run(struct app *app)
{
	struct config *cfg = app->cfg;
	struct proc p;
	struct db_pool_opts po;
	char err[512], esc[600];
	int rc = EXIT_START;

	memset(&p, 0, sizeof(p));
	p.app = app;

	/* The epoll changelist folds the add/del pairs each request makes on
	 * its socket into one epoll_ctl: half the system calls per request. */
	{
		struct event_config *ec = event_config_new();

		if (ec) {
			event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
			app->base = event_base_new_with_config(ec);
			event_config_free(ec);
		}
	}
	if (!app->base) {
		log_error("start.failed", "step=event_base");
		goto fail;
	}
	app->metrics = metrics_new();
	if (!app->metrics) {
		log_error("start.failed", "step=metrics");
		goto fail;
	}
	memset(&po, 0, sizeof(po));
	po.conninfo = cfg->db_conninfo;
	po.size = cfg->db_pool_size;
	po.query_timeout_ms = cfg->db_query_timeout_ms;
	po.connect_timeout_ms = cfg->db_connect_timeout_ms;
	po.reconnect_max_ms = cfg->db_reconnect_max_ms;
	po.statement_timeout_ms = cfg->db_query_timeout_ms;
	app->pool = db_pool_new(app->base, &po);
	if (!app->pool) {
		log_error("start.failed", "step=db_pool");
		goto fail;
	}
	if (queries_register(app->pool) < 0) {
		log_error("start.failed", "step=queries_register");
		goto fail;
	}
	if (db_pool_start(app->pool) < 0) {
		log_error("start.failed", "step=db_pool_start");
		goto fail;
	}
	/* The key store: a pool of its own on another database. */
	po.conninfo = cfg->key_store_conninfo;
	po.size = cfg->key_store_pool_size;
	app->keystore = db_pool_new(app->base, &po);
	if (!app->keystore || datakeys_register(app->keystore) < 0 ||
	    db_pool_start(app->keystore) < 0) {
		log_error("start.failed", "step=key_store_pool");
		goto fail;
	}
	app->datakeys = datakeys_new(app->keystore, app->keys);
	if (!app->datakeys) {
		log_error("start.failed", "step=datakeys");
		goto fail;
	}
	app->tls = tls_server_new(cfg, err, sizeof(err));
	if (!app->tls) {
		log_error("start.failed", "step=tls reason=\"%s\"", log_esc(esc, sizeof(esc), err));
		goto fail;
	}
	app->api = main_listen(app, cfg->listen, LISTENER_API,
			       cfg->client_cert == CLIENT_CERT_REQUIRE, "api");
	if (!app->api)
		goto fail;
	if (cfg->mtls_listen) {
		app->mtls = main_listen(app, cfg->mtls_listen, LISTENER_API, 1, "mtls");
		if (!app->mtls)
			goto fail;
	}
	if (cfg->metrics_listen) {
		app->ops = main_listen(app, cfg->metrics_listen, LISTENER_OPS, 0, "ops");
		if (!app->ops)
			goto fail;
	}
	/* main_prepare_database() ran before us: the schema matches this binary. */
	app->schema_current = 1;

	/* Listeners bound and key files read: root, if we had it, goes now. */
	switch (privdrop_to(cfg->run_user, err, sizeof(err))) {
	case -1:
		log_error("start.failed", "step=privdrop reason=\"%s\"",
			  log_esc(esc, sizeof(esc), err));
		goto fail;
	case 1:
		log_info("privdrop", "user=\"%s\" uid=%ld", log_esc(esc, sizeof(esc), cfg->run_user),
			 (long)getuid());
		break;
	default:
		break;
	}

	/* Periodic jobs on the loop (main_jobs above). */
	for (size_t i = 0; i < sizeof(main_jobs) / sizeof(main_jobs[0]); i++) {
		app->jobs[app->njobs] = job_launch(app, main_jobs[i]);
		if (!app->jobs[app->njobs]) {
			log_error("start.failed", "step=%s", main_jobs[i]->name);
			goto fail;
		}
		app->njobs++;
	}

	p.sighup = evsignal_new(app->base, SIGHUP, main_on_sighup, &p);
	p.sigterm = evsignal_new(app->base, SIGTERM, main_on_sigterm, &p);
	p.sigint = evsignal_new(app->base, SIGINT, main_on_sigterm, &p);
	p.drain_timer = evtimer_new(app->base, main_drain_tick, &p);
	if (!p.sighup || !p.sigterm || !p.sigint || !p.drain_timer ||
	    evsignal_add(p.sighup, NULL) < 0 || evsignal_add(p.sigterm, NULL) < 0 ||
	    evsignal_add(p.sigint, NULL) < 0) {
		log_error("start.failed", "step=signals");
		goto fail;
	}

	p.notify = notify_start(app);
	if (!p.notify) {
		log_error("start.failed", "step=notify");
		goto fail;
	}
	log_info("ready", "pid=%ld", (long)getpid());
	if (event_base_dispatch(app->base) < 0) {
		log_error("loop.failed", "%s", "");
		goto fail;
	}
	log_info("stop", "%s", "");
	rc = EXIT_OK;
fail:
	/* Reverse order of creation. A failure before the loop ran never had
	 * requests in flight, so closing the pool here is safe. */
	main_stop_jobs(app);
	if (app->pool && rc != EXIT_OK)
		db_pool_close(app->pool);
	if (app->keystore && rc != EXIT_OK)
		db_pool_close(app->keystore);
	if (p.sighup)
		event_free(p.sighup);
	if (p.sigterm)
		event_free(p.sigterm);
	if (p.sigint)
		event_free(p.sigint);
	if (p.drain_timer)
		event_free(p.drain_timer);
	notify_free(p.notify);
	http_server_free(app->ops);
	http_server_free(app->mtls);
	http_server_free(app->api);
	app->ops = app->mtls = app->api = NULL;
	tls_server_free(app->tls);   /* each of these takes NULL */
	app->tls = NULL;
	db_pool_free(app->pool);
	app->pool = NULL;
	db_pool_free(app->keystore);
	app->keystore = NULL;
	/* After its pool: no key store callback is pending any more. */
	datakeys_free(app->datakeys);
	app->datakeys = NULL;
	/* Every request has replied (the pools failed what was pending). */
	req_spares_free();
	metrics_free(app->metrics);
	app->metrics = NULL;
	if (app->base)
		event_base_free(app->base);
	app->base = NULL;
	/* Nothing runs any more: the reloaded configurations can go. The one
	 * main() loaded stays main()'s to free. */
	for (size_t i = 0; i < p.nreloaded; i++) {
		config_free(p.reloaded[i]);
		free(p.reloaded[i]);
	}
	free(p.reloaded);
	app->cfg = NULL;
	return rc;
}

int main(int argc, char **argv)
{
	struct cmdline cl;
	struct config cfg;
	struct app app;
	char err[512], esc[600];
	int rc;

	/* Before any JSON value or libevent object exists. */
	wipe_install();
	if (main_parse_args(argc, argv, &cl) < 0) {
		main_usage(stderr, 0);
		return EXIT_USAGE;
	}
	if (cl.help) {
		main_usage(stdout, 1);
		return EXIT_OK;
	}
	if (cl.version) {
		printf(REFD_NAME " " REFD_VERSION "\n");
		return EXIT_OK;
	}
	if (cl.reference) {
		config_print_reference(stdout);
		return EXIT_OK;
	}

	if (config_load_flags(cl.config, &cfg, err, sizeof(err),
			      cl.init_keys ? CONFIG_LOAD_NO_FILES : 0) < 0) {
		fprintf(stderr, REFD_NAME ": %s\n", err);
		return EXIT_CONFIG;
	}
	if (cl.init_keys) {
		rc = initkeys_run(&cfg);
		config_free(&cfg);
		return rc;
	}
	if (cl.check_config) {
		rc = main_check_material(&cfg);
		if (rc == EXIT_OK)
			printf("configuration ok\n");
		config_free(&cfg);
		return rc;
	}
	log_setup((enum log_level)cfg.log_level, (enum log_format)cfg.log_format);
	/* A peer resetting mid-write must not kill the process (SSL_write -> EPIPE). */
	signal(SIGPIPE, SIG_IGN);
	/* Seed jansson's hash before anything creates a JSON object. */
	json_object_seed(0);

	memset(&app, 0, sizeof(app));
	app.cfg = &cfg;
	app.config_path = cl.config;
	rc = EXIT_START;

	if (cl.migrate || cl.mint_name || cl.verify_audit || cl.rewrap) {
		log_info("command", "name=%s version=" REFD_VERSION,
			 cl.migrate ? "migrate" : cl.mint_name ? "mint-admin-token" :
			 cl.rewrap ? "rewrap-keys" : "verify-audit");
	} else {
		char a1[300], a2[300], a3[300];

		log_info("start", "version=" REFD_VERSION " pid=%ld listen=\"%s\" mtls_listen=\"%s\" "
			 "metrics_listen=\"%s\" pool_size=%d",
			 (long)getpid(), log_esc(a1, sizeof(a1), cfg.listen),
			 log_esc(a2, sizeof(a2), cfg.mtls_listen ? cfg.mtls_listen : ""),
			 log_esc(a3, sizeof(a3), cfg.metrics_listen ? cfg.metrics_listen : ""),
			 cfg.db_pool_size);
	}

	app.keys = keyring_load(cfg.uic_key_file, cfg.data_key_file, err, sizeof(err));
	if (app.keys && keyring_load_token_key(app.keys, cfg.token_key_file, err, sizeof(err)) != 0) {
		keyring_free(app.keys);
		app.keys = NULL;
	}
	if (!app.keys) {
		log_error("start.failed", "step=keyring reason=\"%s\"",
			  log_esc(esc, sizeof(esc), err));
		goto done;
	}
	if (cl.rewrap) {
		/* Only the key store and the keyring: the main database is not needed. */
		rc = keystore_rewrap(&cfg, app.keys);
		goto done;
	}
	if (main_prepare_database(&cfg, cl.migrate || cfg.db_migrate == MIGRATE_AUTO) < 0)
		goto done;
	if (cl.migrate) {
		log_info("migrate.done", "migrations=%d", refd_migrations_count);
		rc = EXIT_OK;
		goto done;
	}
	if (cl.mint_name) {
		rc = cli_mint_admin_token(&cfg, app.keys, cl.mint_name);
		goto done;
	}
	if (cfg.audit_signing_key_file) {
		app.signer = audit_signer_load(cfg.audit_signing_key_file, err, sizeof(err));
		if (!app.signer) {
			log_error("start.failed", "step=audit_signing_key reason=\"%s\"",
				  log_esc(esc, sizeof(esc), err));
			goto done;
		}
	}
	if (cl.verify_audit) {
		rc = cli_verify_audit(&cfg, app.signer, cl.head_file);
		goto done;
	}
	app.limits = limits_new(&cfg);
	if (!app.limits) {
		log_error("start.failed", "step=limits");
		goto done;
	}
	/* Without it every request looks its token up (correct, slower). */
	app.auth_cache = auth_cache_new();
	rc = main_run(&app);
done:
	auth_cache_free(app.auth_cache);
	limits_free(app.limits);
	audit_signer_free(app.signer);
	if (app.keys)
		keyring_free(app.keys);
	config_free(&cfg);
	return rc;
}
