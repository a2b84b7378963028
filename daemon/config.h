/*
 * config.h - the daemon's configuration, described by one table in config.c.
 *
 * Owns: parsing the INI-style file (key = value, [sections]), defaults,
 * validation, and telling which keys SIGHUP may change.
 * Must never: touch sockets, the database or TLS objects; it only produces a
 * struct config (or a precise "file:line: reason" error).
 */
#ifndef REFD_CONFIG_H
#define REFD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

enum client_cert_mode { CLIENT_CERT_OPTIONAL = 0, CLIENT_CERT_REQUIRE = 1 };
enum office_cert_identity { CERT_ID_FINGERPRINT = 0, CERT_ID_SUBJECT = 1 };
enum migrate_mode { MIGRATE_AUTO = 0, MIGRATE_OFF = 1 };

/* Durations are stored in milliseconds, sizes in bytes. Strings are owned by
 * the struct and freed by config_free(). Empty optional strings are NULL. */
struct config {
	/* [server] */
	char *listen;                 /* host:port of the public TLS listener */
	int client_cert;              /* enum client_cert_mode for `listen` */
	char *mtls_listen;            /* optional host:port that always requires a client cert */
	char *metrics_listen;         /* host:port of the TLS ops listener (/metrics, /healthz, /readyz) */
	int reuse_port;               /* SO_REUSEPORT on the listeners */
	int max_connections;          /* API listeners together; the ops listener has its own */
	size_t max_header_size;
	size_t max_body_size;
	long read_timeout_ms;
	long write_timeout_ms;
	long idle_timeout_ms;
	long drain_timeout_ms;
	char *allowed_methods;        /* comma list, e.g. "GET,POST,PUT,PATCH,DELETE" */
	int spare_fds;                /* descriptors kept in reserve so EMFILE never spins */
	char *run_user;               /* [server] user: switched to after binding, when root */

	/* [tls] */
	char *tls_cert_file;
	char *tls_key_file;
	char *tls_ca_file;            /* CA that signs client (office) certificates */
	char *tls_min_version;        /* "1.2" or "1.3" */
	char *tls_ciphers;            /* TLS 1.2 cipher list */
	char *tls_ciphersuites;       /* TLS 1.3 suites */
	int office_cert_identity;     /* enum office_cert_identity */

	/* [database] */
	char *db_conninfo;
	int db_pool_size;
	long db_query_timeout_ms;     /* per operation deadline (cancel + 503 when it passes) */
	long db_connect_timeout_ms;
	long db_reconnect_max_ms;     /* reconnect backoff ceiling */
	int db_migrate;               /* enum migrate_mode */
	char *db_migrate_conninfo;    /* schema owner for migrations; NULL = db_conninfo */

	/* [security] */
	char *uic_key_file;           /* 32+ byte secret for HMAC-SHA256 of UICs */
	char *data_key_file;          /* keyring: lines "<key id> <64 hex chars>", last line is current */
	char *token_key_file;         /* 32+ byte secret for HMAC-SHA256 of tokens and sign-in codes */
	char *key_store_conninfo;     /* the key store database (per-referral data keys) */
	int key_store_pool_size;
	long max_token_lifetime_ms;   /* a new token's expires_at at most this far ahead */

	/* [deadlines] */
	long sweeper_max_sleep_ms;    /* upper bound between sweeps when nothing is due */
	int sweeper_batch;            /* deadlines claimed per transaction */
	long escalate_after_ms;       /* level 1 -> level 2 (programme supervisors) */

	/* [matching] */
	long rematch_interval_ms;     /* full re-matching pass over every region and kind */
	long rematch_poll_ms;         /* how often the re-matching notices are drained */

	/* [webhooks] */
	long webhook_timeout_ms;
	int webhook_batch;
	char *webhook_ca_file;        /* CA bundle for partner endpoints; NULL = system store */
	int webhook_max_inflight;     /* outbox events being delivered at once */
	long webhook_poll_ms;         /* outbox poll interval when nothing is due */
	long webhook_retry_base_ms;   /* first retry delay; doubles per failed attempt */
	long webhook_retry_max_ms;    /* retry delay ceiling */
	int webhook_max_attempts;     /* attempts before an event is given up (kept for operators) */
	size_t webhook_max_response;  /* cap on a partner answer's body */
	int webhook_allow_private;    /* internal (loopback, private, ...) targets allowed */

	/* [retention] */
	long retention_idempotency_ms; /* idempotency records older than this are purged */
	long retention_interval_ms;    /* between purge runs */
	int retention_batch;           /* referrals per retention transaction */

	/* [privacy] */
	long break_glass_window_ms;   /* how long a break-the-glass read stays allowed */

	/* [ui] */
	long ui_session_lifetime_ms;  /* lifetime of a token a sign-in code buys */

	/* [audit] (ledger v2 sealer and signed heads) */
	char *audit_signing_key_file;  /* Ed25519 private key (PEM); NULL = heads unsigned/off */
	long audit_head_interval_ms;   /* an audit.head event at least this often */
	long audit_seal_interval_ms;   /* between sealer runs when nothing is pending */
	int audit_seal_batch;          /* records sealed per transaction */
	long audit_max_unsealed_age_ms; /* --verify-audit: older unsealed records are reported */

	/* [limits] (in memory, per daemon) */
	char *limit_auth_failures;     /* "N/DURATION" per address, or "off" */
	char *limit_credential_requests; /* "N/DURATION" per credential, or "off" */
	int limit_connections_per_address; /* 0 = no cap */
	int limit_tracked;             /* slots of each limit table */

	/* [log] */
	int log_level;                /* enum log_level */
	int log_format;               /* enum log_format */
};

/* Load and validate. On failure returns -1 and writes "FILE:LINE: reason" (or
 * "FILE: reason") into err. On success *out is filled (caller config_free()s). */
int config_load(const char *path, struct config *out, char *err, size_t errlen);
void config_free(struct config *c);
/* CONFIG_LOAD_NO_FILES: path keys need not exist yet (--init-keys creates
 * the key files a configuration names). */
#define CONFIG_LOAD_NO_FILES 0x1u
int config_load_flags(const char *path, struct config *out, char *err, size_t errlen,
		      unsigned flags);

/* For SIGHUP: returns 0 if every changed key is reloadable, else -1 with the
 * first non-reloadable key named in err. A reload then replaces the whole
 * struct (main.c swaps app->cfg to the new object and keeps the old one alive
 * until exit), so modules must read app->cfg when they use a value rather than
 * caching it, and may compare the pointer to notice a reload. */
int config_check_reload(const struct config *old, const struct config *neu, char *err,
			size_t errlen);

/* Print the configuration reference (one row per key: name, type, default,
 * reloadable, description) as a Markdown table. README's table is checked
 * against this output by the tests. */
void config_print_reference(FILE *out);

#endif
