/*
 * app.h - the daemon's one context object.
 *
 * Owns: nothing by itself; it is the bag of pointers every module receives
 * instead of reaching for globals. main.c creates and frees each member.
 * Must never: grow logic of its own or include module internals.
 */
#ifndef REFD_APP_H
#define REFD_APP_H

#include <stdint.h>

struct event_base;
struct config;
struct tls_server;
struct http_server;
struct db_pool;
struct metrics;
struct keyring;
struct job;
struct audit_signer;
struct limits;
struct datakeys;
struct auth_cache;

#define REFD_VERSION "0.1.0"
#define REFD_NAME "referrald"
#define APP_MAX_JOBS 16

struct app {
	struct event_base *base;
	struct config *cfg;
	const char *config_path;
	struct tls_server *tls;     /* SSL_CTX holder; swapped on SIGHUP */
	struct http_server *api;    /* public listener (client cert optional/required per config) */
	struct http_server *mtls;   /* optional listener that always requires a client cert */
	struct http_server *ops;    /* metrics/health listener, meant for loopback */
	struct db_pool *pool;
	struct metrics *metrics;
	struct keyring *keys;       /* UIC HMAC key and data encryption keys */
	struct db_pool *keystore;   /* the key store: per-referral data keys, wrapped */
	struct datakeys *datakeys;  /* those keys: create, fetch (cached), erase */
	struct job *jobs[APP_MAX_JOBS]; /* periodic jobs (job.c), in main_jobs' order */
	int njobs;
	struct audit_signer *signer; /* audit head signing key; NULL when not configured */
	struct limits *limits;      /* rate limits and per-address connection caps (memory) */
	struct auth_cache *auth_cache; /* verified tokens (auth.c); NULL: none cached */
	int draining;               /* set by SIGTERM/SIGINT: stop accepting, finish in-flight */
	int schema_current;         /* migrations applied and matching the binary */
};

#endif
