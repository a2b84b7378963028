/*
 * config.c - the configuration file: one table describing every key, an INI
 * parser driven by it, validation, and the SIGHUP rules.
 *
 * Owns: the key table (section, name, type, default, required, reloadable,
 * validation, where the value lands in struct config, description), the
 * parsing of the file and the strings stored in struct config.
 * Must never: touch sockets, the database or TLS objects; echo a value in an
 * error (conninfo may hold a password) except file names of path keys; keep
 * state between calls.
 */
#include "config.h"
#include "log.h"
#include "ratelimit.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum key_type {
	KT_STRING,    /* char *, free text */
	KT_PATH,      /* char *, a file that must exist and be readable */
	KT_ADDR,      /* char *, IP:port or [IPv6]:port */
	KT_INT,       /* int, within [min, max] */
	KT_BOOL,      /* int 0/1 */
	KT_SIZE,      /* size_t bytes, written 512, 64k, 1m, 1g */
	KT_DURATION,  /* long milliseconds, written 500ms, 10s, 5m, 1h, 1d */
	KT_ENUM,      /* int index into the key's value list */
};

#define KEY_REQUIRED 0x1u
#define KEY_RELOAD 0x2u

/* String checks beyond the type: return NULL when fine, else the reason. */
typedef const char *(*key_check)(const char *v);

struct key_def {
	const char *section;
	const char *name;
	enum key_type type;
	const char *def;            /* default as written in the file; NULL = none */
	unsigned flags;
	long long min, max;         /* ranges for int, size and duration (ms) */
	const char *const *values;  /* KT_ENUM: names in enum order, NULL-terminated */
	key_check check;
	size_t offset;
	const char *desc;
};

static const char *const client_cert_values[] = { "optional", "require", NULL };
static const char *const cert_identity_values[] = { "fingerprint", "subject", NULL };
static const char *const migrate_values[] = { "auto", "off", NULL };
static const char *const log_level_values[] = { "debug", "info", "warn", "error", NULL };
static const char *const log_format_values[] = { "logfmt", "json", NULL };

static const char *check_methods(const char *v);
static const char *check_tls_version(const char *v);
static const char *check_no_space(const char *v);
static const char *check_limit_spec(const char *v);

#define OFF(f) offsetof(struct config, f)
#define SEC_MS 1000LL
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)

/*
 * The one table. Order here is the order of --config-reference and of the
 * example file. Reloadable keys are the ones whose consumers read the live
 * struct config (or rebuild from it) after SIGHUP: TLS material, log level and
 * format, timeouts and limits. Listen addresses, the pool and the keys need a
 * restart.
 */
static const struct key_def keys[] = {
	{ "server", "listen", KT_ADDR, NULL, KEY_REQUIRED, 0, 0, NULL, NULL, OFF(listen),
	  "Public TLS listener, IP:port ([IPv6]:port), numeric." },
	{ "server", "client_cert", KT_ENUM, "optional", 0, 0, 0, client_cert_values, NULL,
	  OFF(client_cert),
	  "Client certificates on `listen`: optional (offices with certificates and bearer-token "
	  "clients) or require (handshake fails without one)." },
	{ "server", "mtls_listen", KT_ADDR, NULL, 0, 0, 0, NULL, NULL, OFF(mtls_listen),
	  "Optional second listener that always requires a client certificate." },
	{ "server", "metrics_listen", KT_ADDR, NULL, 0, 0, 0, NULL, NULL, OFF(metrics_listen),
	  "Optional TLS listener for /metrics, /healthz and /readyz; keep it on loopback." },
	{ "server", "max_connections", KT_INT, "1024", KEY_RELOAD, 1, 1000000, NULL, NULL,
	  OFF(max_connections),
	  "Open connections across listen and mtls_listen together; beyond it accepting "
	  "pauses. The metrics listener has a budget of the same size of its own." },
	{ "server", "max_header_size", KT_SIZE, "8k", KEY_RELOAD, 1024, 1024 * 1024, NULL, NULL,
	  OFF(max_header_size), "Largest request header block; larger is refused." },
	{ "server", "max_body_size", KT_SIZE, "64k", KEY_RELOAD, 1024, 64 * 1024 * 1024, NULL, NULL,
	  OFF(max_body_size), "Largest request body; larger answers 413." },
	{ "server", "read_timeout", KT_DURATION, "10s", KEY_RELOAD, 100, HOUR_MS, NULL, NULL,
	  OFF(read_timeout_ms),
	  "Time allowed to receive a whole request (head and body) from its first byte." },
	{ "server", "write_timeout", KT_DURATION, "10s", KEY_RELOAD, 100, HOUR_MS, NULL, NULL,
	  OFF(write_timeout_ms),
	  "Time allowed to write a response out; a client that stops reading is disconnected." },
	{ "server", "idle_timeout", KT_DURATION, "60s", KEY_RELOAD, 100, HOUR_MS, NULL, NULL,
	  OFF(idle_timeout_ms),
	  "Inactivity allowed on a connection: between keep-alive requests, and with no byte "
	  "moving either way." },
	{ "server", "drain_timeout", KT_DURATION, "10s", KEY_RELOAD, 0, HOUR_MS, NULL, NULL,
	  OFF(drain_timeout_ms),
	  "On SIGTERM/SIGINT, how long in-flight requests may take before the daemon exits anyway." },
	{ "server", "reuse_port", KT_BOOL, "false", 0, 0, 0, NULL, NULL, OFF(reuse_port),
	  "Bind the listeners with SO_REUSEPORT: several daemons on one host (one per core, "
	  "the same user) then share the same addresses and the kernel spreads new connections "
	  "over them." },
	{ "server", "allowed_methods", KT_STRING, "GET,POST,PUT,PATCH,DELETE", 0, 0, 0, NULL,
	  check_methods, OFF(allowed_methods),
	  "Comma list of HTTP methods accepted; others answer 405." },
	{ "server", "spare_fds", KT_INT, "8", 0, 0, 1024, NULL, NULL, OFF(spare_fds),
	  "File descriptors kept in reserve so running out of them never spins the loop." },
	{ "server", "user", KT_STRING, NULL, 0, 0, 0, NULL, check_no_space, OFF(run_user),
	  "System user the daemon switches to after binding its listeners and reading its key "
	  "files when started as root (it refuses to run as root without one); --init-keys gives "
	  "the key files it creates to this user." },

	{ "tls", "cert_file", KT_PATH, NULL, KEY_REQUIRED | KEY_RELOAD, 0, 0, NULL, NULL,
	  OFF(tls_cert_file), "Server certificate chain (PEM)." },
	{ "tls", "key_file", KT_PATH, NULL, KEY_REQUIRED | KEY_RELOAD, 0, 0, NULL, NULL,
	  OFF(tls_key_file), "Server private key (PEM)." },
	{ "tls", "ca_file", KT_PATH, NULL, KEY_RELOAD, 0, 0, NULL, NULL, OFF(tls_ca_file),
	  "CA certificates that sign office client certificates (PEM); required when client "
	  "certificates are required anywhere." },
	{ "tls", "min_version", KT_STRING, "1.2", KEY_RELOAD, 0, 0, NULL, check_tls_version,
	  OFF(tls_min_version), "Lowest TLS version: 1.2 or 1.3." },
	{ "tls", "ciphers", KT_STRING,
	  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
	  KEY_RELOAD, 0, 0, NULL, check_no_space, OFF(tls_ciphers),
	  "OpenSSL cipher list for TLS 1.2." },
	{ "tls", "ciphersuites", KT_STRING,
	  "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", KEY_RELOAD,
	  0, 0, NULL, check_no_space, OFF(tls_ciphersuites), "OpenSSL cipher suites for TLS 1.3." },
	{ "tls", "office_cert_identity", KT_ENUM, "fingerprint", 0, 0, 0, cert_identity_values, NULL,
	  OFF(office_cert_identity),
	  "What maps an office client certificate to its office: its SHA-256 fingerprint or its "
	  "subject." },

	{ "database", "conninfo", KT_STRING, NULL, KEY_REQUIRED, 0, 0, NULL, NULL, OFF(db_conninfo),
	  "libpq connection string of the daemon's runtime role (never logged). That role should "
	  "not own the schema: an owner could disable the audit triggers." },
	{ "database", "migrate_conninfo", KT_STRING, NULL, 0, 0, 0, NULL, NULL,
	  OFF(db_migrate_conninfo),
	  "libpq connection string of the role that owns the schema, used only to apply "
	  "migrations. Unset: conninfo is used for migrations too." },
	{ "database", "pool_size", KT_INT, "8", 0, 1, 512, NULL, NULL, OFF(db_pool_size),
	  "Connections in the pool of each daemon." },
	{ "database", "query_timeout", KT_DURATION, "5s", 0, 10, HOUR_MS, NULL, NULL,
	  OFF(db_query_timeout_ms),
	  "Deadline of one database operation (also the server-side statement_timeout); past it "
	  "the query is cancelled and the request answers 503." },
	{ "database", "connect_timeout", KT_DURATION, "5s", 0, 100, HOUR_MS, NULL, NULL,
	  OFF(db_connect_timeout_ms), "Deadline of one connection attempt." },
	{ "database", "reconnect_max", KT_DURATION, "30s", 0, 100, HOUR_MS, NULL, NULL,
	  OFF(db_reconnect_max_ms), "Ceiling of the reconnect backoff." },
	{ "database", "migrate", KT_ENUM, "auto", 0, 0, 0, migrate_values, NULL, OFF(db_migrate),
	  "auto: apply pending migrations at start; off: refuse to start while some are pending." },

	{ "security", "uic_key_file", KT_PATH, NULL, KEY_REQUIRED, 0, 0, NULL, NULL,
	  OFF(uic_key_file), "Secret (32+ bytes) for the HMAC-SHA256 of client codes; keep it "
	  "outside the database and its backups." },
	{ "security", "data_key_file", KT_PATH, NULL, KEY_REQUIRED, 0, 0, NULL, NULL,
	  OFF(data_key_file),
	  "Keyring for contact details and notes: lines `<key id> <64 hex chars>`, the last one "
	  "encrypts." },
	{ "security", "token_key_file", KT_PATH, NULL, KEY_REQUIRED, 0, 0, NULL, NULL,
	  OFF(token_key_file),
	  "Secret (32+ bytes, not the UIC key) for the HMAC-SHA256 under which bearer tokens and "
	  "sign-in codes are stored; keep it outside the database. Replacing it revokes every "
	  "token." },
	{ "security", "key_store_conninfo", KT_STRING, NULL, KEY_REQUIRED, 0, 0, NULL, NULL,
	  OFF(key_store_conninfo),
	  "libpq connection string of the key store: a database of its own (referrald_keys) that "
	  "holds each referral's data key, wrapped by the data_key_file keyring. Deleting a key "
	  "erases that referral's personal fields; keep its backups shorter than "
	  "contact_after_close (SECURITY.md). Never logged." },
	{ "security", "key_store_pool_size", KT_INT, "4", 0, 1, 256, NULL, NULL,
	  OFF(key_store_pool_size), "Connections to the key store of each daemon." },
	{ "security", "max_token_lifetime", KT_DURATION, "90d", 0, MIN_MS, 3650LL * 24 * HOUR_MS,
	  NULL, NULL, OFF(max_token_lifetime_ms),
	  "Longest a new token may live (its expires_at at most this far ahead, else 422; the "
	  "protocol's P90D)." },

	{ "deadlines", "sweeper_max_sleep", KT_DURATION, "1s", KEY_RELOAD, 10, HOUR_MS, NULL, NULL,
	  OFF(sweeper_max_sleep_ms),
	  "Longest sleep of the deadline sweeper (it otherwise wakes at the next due time). "
	  "Bounds how late a deadline created by another daemon, or due sooner than the one "
	  "waited for, is acted on; an idle sweep is one index probe." },
	{ "deadlines", "sweeper_batch", KT_INT, "100", KEY_RELOAD, 1, 10000, NULL, NULL,
	  OFF(sweeper_batch), "Due deadlines claimed per transaction." },
	{ "deadlines", "escalate_after", KT_DURATION, "24h", KEY_RELOAD, 100, 365LL * 24 * HOUR_MS,
	  NULL, NULL, OFF(escalate_after_ms),
	  "How long after a missed deadline's escalation to the organisation's supervisors "
	  "(level 1) it escalates to programme supervisors (level 2), if its assignment is still "
	  "not acted on." },

	{ "matching", "rematch_interval", KT_DURATION, "1m", KEY_RELOAD, 100, 24 * HOUR_MS, NULL,
	  NULL, OFF(rematch_interval_ms),
	  "How often every unassigned assignment is matched again, oldest first, besides the "
	  "re-matching that follows each change that may free a candidate." },
	{ "matching", "rematch_poll", KT_DURATION, "1s", KEY_RELOAD, 10, HOUR_MS, NULL, NULL,
	  OFF(rematch_poll_ms),
	  "How often the notices left by such changes (a slot freed, capacity raised, a worker "
	  "added, back from leave, or serving other regions or languages) are drained; bounds how "
	  "late an unassigned assignment is offered to a worker who became free." },

	{ "webhooks", "timeout", KT_DURATION, "10s", KEY_RELOAD, 100, 10 * MIN_MS, NULL, NULL,
	  OFF(webhook_timeout_ms), "Deadline of one webhook delivery." },
	{ "webhooks", "batch", KT_INT, "50", KEY_RELOAD, 1, 10000, NULL, NULL, OFF(webhook_batch),
	  "Outbox events claimed per round." },
	{ "webhooks", "ca_file", KT_PATH, NULL, 0, 0, 0, NULL, NULL, OFF(webhook_ca_file),
	  "CA certificates (PEM) that partner endpoints must chain to; unset: the system's CA "
	  "store. Endpoints are also checked for the URL's host name or IP address." },
	{ "webhooks", "max_inflight", KT_INT, "8", KEY_RELOAD, 1, 1000, NULL, NULL,
	  OFF(webhook_max_inflight),
	  "Outbox events being delivered at once (each to its endpoints, one after another)." },
	{ "webhooks", "poll_interval", KT_DURATION, "1s", KEY_RELOAD, 10, HOUR_MS, NULL, NULL,
	  OFF(webhook_poll_ms), "How often the outbox is checked for due events when idle." },
	{ "webhooks", "retry_base", KT_DURATION, "10s", KEY_RELOAD, 10, HOUR_MS, NULL, NULL,
	  OFF(webhook_retry_base_ms),
	  "Wait after the first failed attempt; doubles per attempt, with 20 % jitter either way." },
	{ "webhooks", "retry_max", KT_DURATION, "1h", KEY_RELOAD, 10, 24 * HOUR_MS, NULL, NULL,
	  OFF(webhook_retry_max_ms), "Longest wait between attempts." },
	{ "webhooks", "max_attempts", KT_INT, "20", KEY_RELOAD, 1, 1000, NULL, NULL,
	  OFF(webhook_max_attempts),
	  "Failed attempts after which an event is given up (it stays in the outbox)." },
	{ "webhooks", "max_response_size", KT_SIZE, "64k", KEY_RELOAD, 1024, 16 * 1024 * 1024,
	  NULL, NULL, OFF(webhook_max_response),
	  "Largest answer body read from an endpoint (it is discarded)." },
	{ "webhooks", "allow_private_targets", KT_BOOL, "off", 0, 0, 0, NULL, NULL,
	  OFF(webhook_allow_private),
	  "on: webhooks may target loopback, private, link-local, unique-local and unspecified "
	  "addresses (tests and labs only). off: refused at registration (422) and again at "
	  "delivery, after the name is resolved." },

	{ "retention", "idempotency_keys", KT_DURATION, "7d", KEY_RELOAD, SEC_MS, 365LL * 24 * HOUR_MS,
	  NULL, NULL, OFF(retention_idempotency_ms),
	  "How long a submission's Idempotency-Key is remembered (a replay within it gets the "
	  "stored answer); older records are purged." },
	{ "retention", "interval", KT_DURATION, "10m", KEY_RELOAD, 100, 24 * HOUR_MS, NULL, NULL,
	  OFF(retention_interval_ms), "How often the retention purge runs." },
	{ "retention", "batch", KT_INT, "100", KEY_RELOAD, 1, 100000, NULL, NULL,
	  OFF(retention_batch),
	  "Referrals the retention job erases or deletes per transaction (GET/PUT "
	  "/v1/retention-policy sets when; this bounds how long one batch holds its locks)." },

	{ "privacy", "break_glass_window", KT_DURATION, "1h", KEY_RELOAD, SEC_MS, 7LL * 24 * HOUR_MS,
	  NULL, NULL, OFF(break_glass_window_ms),
	  "How long a supervisor who broke the glass on an assignment (POST "
	  "/v1/assignments/{id}/break-glass) may read it as its worker does, with GET "
	  "/v1/assignments/{id}; each read is audited." },

	{ "ui", "session_lifetime", KT_DURATION, "7d", KEY_RELOAD, MIN_MS, 90LL * 24 * HOUR_MS,
	  NULL, NULL, OFF(ui_session_lifetime_ms),
	  "How long a token bought with a one-time sign-in code (the web pages) lives." },

	{ "audit", "signing_key_file", KT_PATH, NULL, 0, 0, 0, NULL, NULL,
	  OFF(audit_signing_key_file),
	  "Ed25519 private key (PEM) that signs audit heads; its key id is the first 16 hex digits "
	  "of SHA-256 of the public key. Without it GET /v1/audit/head answers 503 and no "
	  "audit.head event is sent." },
	{ "audit", "head_interval", KT_DURATION, "10m", KEY_RELOAD, 100, 24 * HOUR_MS, NULL, NULL,
	  OFF(audit_head_interval_ms),
	  "An audit.head event goes to programme-wide webhooks at least this often." },
	{ "audit", "seal_interval", KT_DURATION, "100ms", KEY_RELOAD, 10, MIN_MS, NULL, NULL,
	  OFF(audit_seal_interval_ms),
	  "How often the sealer looks for committed, unsealed audit records (at once again "
	  "after a full batch)." },
	{ "audit", "seal_batch", KT_INT, "5000", KEY_RELOAD, 1, 100000, NULL, NULL,
	  OFF(audit_seal_batch), "Audit records sealed per sealer transaction at most." },
	{ "audit", "max_unsealed_age", KT_DURATION, "5m", KEY_RELOAD, SEC_MS, 30 * 24 * HOUR_MS,
	  NULL, NULL, OFF(audit_max_unsealed_age_ms),
	  "--verify-audit fails when an unsealed record is older than this (a stopped sealer or a "
	  "transaction held open for that long)." },

	{ "limits", "auth_failures", KT_STRING, "20/1m", KEY_RELOAD, 0, 0, NULL, check_limit_spec,
	  OFF(limit_auth_failures),
	  "Failed authentications allowed per address (IPv6: per /64) per window, written "
	  "COUNT/DURATION or off; beyond it every request from there answers 429 until the "
	  "window passes." },
	{ "limits", "credential_requests", KT_STRING, "off", KEY_RELOAD, 0, 0, NULL,
	  check_limit_spec, OFF(limit_credential_requests),
	  "Requests allowed per credential (token or certificate) per window, COUNT/DURATION, or "
	  "off." },
	{ "limits", "connections_per_address", KT_INT, "64", KEY_RELOAD, 0, 1000000, NULL, NULL,
	  OFF(limit_connections_per_address),
	  "Open connections allowed from one address (IPv6: one /64); 0 = no cap." },
	{ "limits", "tracked", KT_INT, "16384", 0, 64, 16777216, NULL, NULL, OFF(limit_tracked),
	  "Addresses and credentials each limit table remembers (fixed memory, least recently "
	  "seen replaced first)." },

	{ "log", "level", KT_ENUM, "info", KEY_RELOAD, 0, 0, log_level_values, NULL, OFF(log_level),
	  "debug, info, warn or error." },
	{ "log", "format", KT_ENUM, "logfmt", KEY_RELOAD, 0, 0, log_format_values, NULL,
	  OFF(log_format), "logfmt or json (one JSON object per line)." },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* ------------------------------------------------------------------ */
/* Value parsers. Each returns 0 or -1; on -1 *why says what was expected. */

static const char *check_methods(const char *v)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
					     "OPTIONS", NULL };
	const char *p = v;

	if (*p == '\0')
		return "expected a comma list of HTTP methods";
	while (*p) {
		size_t n = strcspn(p, ",");
		int ok = 0;

		for (int i = 0; known[i]; i++)
			if (strlen(known[i]) == n && strncmp(known[i], p, n) == 0)
				ok = 1;
		if (!ok)
			return "expected a comma list of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
		p += n;
		if (*p == ',')
			p++;
	}
	return NULL;
}

static const char *check_tls_version(const char *v)
{
	if (strcmp(v, "1.2") == 0 || strcmp(v, "1.3") == 0)
		return NULL;
	return "expected 1.2 or 1.3";
}

static const char *check_no_space(const char *v)
{
	for (; *v; v++)
		if (isspace((unsigned char)*v))
			return "must not contain spaces";
	return NULL;
}

static const char *check_limit_spec(const char *v)
{
	struct limit_spec spec;
	char err[160];

	return limit_spec_parse(v, &spec, err, sizeof(err)) == 0
		       ? NULL
		       : "must be off or COUNT/DURATION (COUNT 1-1000000, DURATION 1s-1d)";
}

static int parse_ll(const char *s, long long *out, const char **rest)
{
	char *end;

	if (!isdigit((unsigned char)*s) && *s != '-')
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	if (errno || end == s)
		return -1;
	*rest = end;
	return 0;
}

static int parse_size(const char *s, long long *out)
{
	const char *rest;
	long long v, mul = 1;

	if (parse_ll(s, &v, &rest) < 0 || v < 0)
		return -1;
	if (strcasecmp(rest, "") == 0 || strcasecmp(rest, "b") == 0)
		mul = 1;
	else if (strcasecmp(rest, "k") == 0 || strcasecmp(rest, "kb") == 0)
		mul = 1024;
	else if (strcasecmp(rest, "m") == 0 || strcasecmp(rest, "mb") == 0)
		mul = 1024 * 1024;
	else if (strcasecmp(rest, "g") == 0 || strcasecmp(rest, "gb") == 0)
		mul = 1024LL * 1024 * 1024;
	else
		return -1;
	if (v > LLONG_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

/* A unit is required: a bare "30" is ambiguous (seconds? milliseconds?). */
static int parse_duration(const char *s, long long *out)
{
	const char *rest;
	long long v, mul;

	if (parse_ll(s, &v, &rest) < 0 || v < 0)
		return -1;
	if (strcmp(rest, "ms") == 0)
		mul = 1;
	else if (strcmp(rest, "s") == 0)
		mul = SEC_MS;
	else if (strcmp(rest, "m") == 0 || strcmp(rest, "min") == 0)
		mul = MIN_MS;
	else if (strcmp(rest, "h") == 0)
		mul = HOUR_MS;
	else if (strcmp(rest, "d") == 0)
		mul = 24 * HOUR_MS;
	else
		return -1;
	if (v > LLONG_MAX / mul)
		return -1;
	*out = v * mul;
	return 0;
}

static int parse_bool(const char *s, int *out)
{
	if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
	    !strcmp(s, "1"))
		*out = 1;
	else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
		 !strcmp(s, "0"))
		*out = 0;
	else
		return -1;
	return 0;
}

/* IP:port or [IPv6]:port, numeric only: the listener binds without a
 * resolver, so a name would only fail later, at start. Port 1-65535. */
static int parse_addr(const char *s)
{
	char host[64];
	const char *colon, *rest;
	long long port;
	unsigned char bin[16];
	size_t hlen;
	int v6 = s[0] == '[';

	if (v6) {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -1;
		colon = close + 1;
		hlen = (size_t)(close - s - 1);
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, s + 1, hlen);
	} else {
		colon = strchr(s, ':');
		if (!colon)
			return -1;
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, s, hlen);
	}
	host[hlen] = '\0';
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1)
		return -1;
	if (parse_ll(colon + 1, &port, &rest) < 0 || *rest || port < 1 || port > 65535)
		return -1;
	return 0;
}

/* ------------------------------------------------------------------ */

struct parse_ctx {
	const char *path;
	char *err;
	size_t errlen;
	int line_of[NKEYS];  /* line where each key was set, 0 = not set */
	unsigned flags;      /* CONFIG_LOAD_* */
};

__attribute__((format(printf, 3, 4))) static int fail_at(struct parse_ctx *c, int line,
							  const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(c->err, c->errlen, "%s:%d: %s", c->path, line, reason);
	else
		snprintf(c->err, c->errlen, "%s: %s", c->path, reason);
	return -1;
}

/* Each type's name (the reference table) and hint (error messages). */
static const struct {
	const char *name, *hint;
} key_types[] = {
	[KT_STRING] = { "string", "a value" },
	[KT_PATH] = { "path", "a value" },
	[KT_ADDR] = { "IP:port", "IP:port" },
	[KT_INT] = { "int", "an integer" },
	[KT_BOOL] = { "bool", "true or false" },
	[KT_SIZE] = { "size", "a size like 512, 64k, 1m" },
	[KT_DURATION] = { "duration", "a duration like 500ms, 10s, 5m, 1h" },
	[KT_ENUM] = { "enum", "a value" },
};

static const char *type_hint(const struct key_def *k)
{
	return key_types[k->type].hint;
}

static void fmt_limit(const struct key_def *k, long long v, char *buf, size_t n);

/* Store the text value v for key k into cfg. line 0 = a default. */
static int set_value(struct parse_ctx *c, int line, const struct key_def *k, const char *v,
		     struct config *cfg)
{
	char *field = (char *)cfg + k->offset;
	long long n;

	if (*v == '\0' && (k->type == KT_STRING || k->type == KT_PATH || k->type == KT_ADDR)) {
		if (k->flags & KEY_REQUIRED)
			return fail_at(c, line, "%s.%s must not be empty", k->section, k->name);
		free(*(char **)field);
		*(char **)field = NULL;
		return 0;
	}
	switch (k->type) {
	case KT_ADDR:
		if (parse_addr(v) < 0)
			return fail_at(c, line, "bad value for %s.%s: expected IP:port or "
				       "[IPv6]:port (numeric, port 1-65535)", k->section, k->name);
		/* fall through */
	case KT_STRING:
	case KT_PATH: {
		char *dup;

		if (k->check) {
			const char *why = k->check(v);

			if (why)
				return fail_at(c, line, "bad value for %s.%s: %s", k->section,
					       k->name, why);
		}
		if (k->type == KT_PATH && !(c->flags & CONFIG_LOAD_NO_FILES) && access(v, R_OK) != 0)
			return fail_at(c, line, "%s.%s: cannot read \"%s\": %s", k->section,
				       k->name, v, strerror(errno));
		dup = strdup(v);
		if (!dup)
			return fail_at(c, line, "out of memory");
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	case KT_BOOL:
		if (parse_bool(v, (int *)field) < 0)
			return fail_at(c, line, "bad value for %s.%s: expected %s", k->section,
				       k->name, type_hint(k));
		return 0;
	case KT_ENUM:
		for (int i = 0; k->values[i]; i++) {
			if (strcmp(k->values[i], v) == 0) {
				*(int *)field = i;
				return 0;
			}
		}
		{
			char list[128] = "";

			for (int i = 0; k->values[i]; i++) {
				if (i)
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
				strncat(list, k->values[i], sizeof(list) - strlen(list) - 1);
			}
			return fail_at(c, line, "bad value for %s.%s: expected one of %s",
				       k->section, k->name, list);
		}
	case KT_INT:
	case KT_SIZE:
	case KT_DURATION: {
		const char *rest = "";
		int bad;

		if (k->type == KT_INT)
			bad = parse_ll(v, &n, &rest) < 0 || *rest;
		else if (k->type == KT_SIZE)
			bad = parse_size(v, &n) < 0;
		else
			bad = parse_duration(v, &n) < 0;
		if (bad)
			return fail_at(c, line, "bad value for %s.%s: expected %s", k->section,
				       k->name, type_hint(k));
		if (n < k->min || n > k->max) {
			char lo[32], hi[32];

			fmt_limit(k, k->min, lo, sizeof(lo));
			fmt_limit(k, k->max, hi, sizeof(hi));
			return fail_at(c, line, "bad value for %s.%s: must be between %s and %s",
				       k->section, k->name, lo, hi);
		}
		if (k->type == KT_INT)
			*(int *)field = (int)n;
		else if (k->type == KT_SIZE)
			*(size_t *)field = (size_t)n;
		else
			*(long *)field = (long)n;
		return 0;
	}
	}
	return fail_at(c, line, "internal: unknown key type");
}

/* Limits are shown in the unit a reader would write. */
static void fmt_limit(const struct key_def *k, long long v, char *buf, size_t n)
{
	if (k->type == KT_DURATION) {
		if (v && v % HOUR_MS == 0)
			snprintf(buf, n, "%lldh", v / HOUR_MS);
		else if (v && v % MIN_MS == 0)
			snprintf(buf, n, "%lldm", v / MIN_MS);
		else if (v && v % SEC_MS == 0)
			snprintf(buf, n, "%llds", v / SEC_MS);
		else
			snprintf(buf, n, "%lldms", v);
	} else if (k->type == KT_SIZE) {
		if (v && v % (1024 * 1024) == 0)
			snprintf(buf, n, "%lldm", v / (1024 * 1024));
		else if (v && v % 1024 == 0)
			snprintf(buf, n, "%lldk", v / 1024);
		else
			snprintf(buf, n, "%lld", v);
	} else {
		snprintf(buf, n, "%lld", v);
	}
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/*
 * The value part after '=': optional double quotes (with \" and \\ escapes),
 * else up to an inline comment that starts with whitespace then # or ;.
 * Written in place. Returns NULL and sets *why on a syntax error.
 */
static char *parse_rhs(char *s, const char **why)
{
	s = trim(s);
	if (*s == '"') {
		char *r = s + 1, *w = s;

		while (*r && *r != '"') {
			if (*r == '\\' && (r[1] == '"' || r[1] == '\\'))
				r++;
			*w++ = *r++;
		}
		if (*r != '"') {
			*why = "unterminated quoted value";
			return NULL;
		}
		*w = '\0';
		r = trim(r + 1);
		if (*r && *r != '#' && *r != ';') {
			*why = "text after the closing quote";
			return NULL;
		}
		return s;
	}
	for (char *p = s; *p; p++) {
		if ((*p == '#' || *p == ';') && p > s && isspace((unsigned char)p[-1])) {
			*p = '\0';
			break;
		}
	}
	return trim(s);
}

static int known_section(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, name) == 0)
			return 1;
	return 0;
}

static int find_key(const char *section, const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int parse_file(struct parse_ctx *c, FILE *f, struct config *cfg)
{
	char *buf = NULL;
	size_t cap = 0;
	ssize_t got;
	int lineno = 0;
	char section[64] = "";
	int rc = -1;

	while ((got = getline(&buf, &cap, f)) >= 0) {
		char *line, *eq, *key, *val;
		const char *why = NULL;
		int ki;

		lineno++;
		if ((size_t)got != strlen(buf)) {
			fail_at(c, lineno, "NUL byte in line");
			goto fail;
		}
		line = buf;
		/* Some editors start a UTF-8 file with a byte order mark. */
		if (lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
			line += 3;
		line = trim(line);
		if (*line == '\0' || *line == '#' || *line == ';')
			continue;
		if (*line == '[') {
			char *close = strchr(line, ']');
			char *after;

			if (!close) {
				fail_at(c, lineno, "expected [section]");
				goto fail;
			}
			*close = '\0';
			after = trim(close + 1);
			if (*after && *after != '#' && *after != ';') {
				fail_at(c, lineno, "text after [section]");
				goto fail;
			}
			line = trim(line + 1);
			if (!known_section(line)) {
				char safe[64];

				fail_at(c, lineno, "unknown section [%s]",
					log_esc(safe, sizeof(safe), line));
				goto fail;
			}
			snprintf(section, sizeof(section), "%s", line);
			continue;
		}
		eq = strchr(line, '=');
		if (!eq) {
			fail_at(c, lineno, "expected key = value");
			goto fail;
		}
		*eq = '\0';
		key = trim(line);
		if (*key == '\0') {
			fail_at(c, lineno, "missing key before '='");
			goto fail;
		}
		if (section[0] == '\0') {
			fail_at(c, lineno, "key outside a [section]");
			goto fail;
		}
		ki = find_key(section, key);
		if (ki < 0) {
			char safe[64];

			fail_at(c, lineno, "unknown key \"%s\" in [%s]",
				log_esc(safe, sizeof(safe), key), section);
			goto fail;
		}
		if (c->line_of[ki]) {
			fail_at(c, lineno, "duplicate key %s.%s (first set on line %d)", section, key,
				c->line_of[ki]);
			goto fail;
		}
		val = parse_rhs(eq + 1, &why);
		if (!val) {
			fail_at(c, lineno, "%s", why);
			goto fail;
		}
		if (set_value(c, lineno, &keys[ki], val, cfg) < 0)
			goto fail;
		c->line_of[ki] = lineno;
	}
	if (ferror(f)) {
		fail_at(c, 0, "read error: %s", strerror(errno));
		goto fail;
	}
	rc = 0;
fail:
	free(buf);
	return rc;
}

/* Rules that involve more than one key. */
static int check_cross(struct parse_ctx *c, const struct config *cfg)
{
	if (!cfg->tls_ca_file && (cfg->client_cert == CLIENT_CERT_REQUIRE || cfg->mtls_listen))
		return fail_at(c, 0, "tls.ca_file is required when client certificates are "
			       "required (server.client_cert = require or server.mtls_listen)");
	if (cfg->mtls_listen && strcmp(cfg->mtls_listen, cfg->listen) == 0)
		return fail_at(c, 0, "server.mtls_listen must differ from server.listen");
	if (cfg->metrics_listen && (strcmp(cfg->metrics_listen, cfg->listen) == 0 ||
				    (cfg->mtls_listen &&
				     strcmp(cfg->metrics_listen, cfg->mtls_listen) == 0)))
		return fail_at(c, 0, "server.metrics_listen must differ from the other listeners");
	if (cfg->spare_fds >= cfg->max_connections && cfg->spare_fds > 0)
		return fail_at(c, 0, "server.spare_fds must be below server.max_connections");
	return 0;
}

int config_load(const char *path, struct config *out, char *err, size_t errlen)
{
	return config_load_flags(path, out, err, errlen, 0);
}

int config_load_flags(const char *path, struct config *out, char *err, size_t errlen,
		      unsigned flags)
{
	struct parse_ctx c;
	FILE *f = NULL;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.flags = flags;
	c.path = path;
	c.err = err;
	c.errlen = errlen;

	/* Defaults first, through the same parser, so the table's text is checked too. */
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].def && set_value(&c, 0, &keys[i], keys[i].def, out) < 0)
			goto fail;
	}
	f = fopen(path, "r");
	if (!f) {
		fail_at(&c, 0, "cannot open: %s", strerror(errno));
		goto fail;
	}
	if (parse_file(&c, f, out) < 0)
		goto fail;
	for (size_t i = 0; i < NKEYS; i++) {
		if ((keys[i].flags & KEY_REQUIRED) && !c.line_of[i]) {
			fail_at(&c, 0, "missing required key %s.%s (in [%s])", keys[i].section,
				keys[i].name, keys[i].section);
			goto fail;
		}
	}
	if (check_cross(&c, out) < 0)
		goto fail;
	fclose(f);
	return 0;
fail:
	if (f)
		fclose(f);
	config_free(out);
	return -1;
}

void config_free(struct config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < NKEYS; i++) {
		enum key_type t = keys[i].type;

		if (t == KT_STRING || t == KT_PATH || t == KT_ADDR) {
			char **p = (char **)((char *)c + keys[i].offset);

			free(*p);
			*p = NULL;
		}
	}
}

static int key_differs(const struct key_def *k, const struct config *a, const struct config *b)
{
	const char *fa = (const char *)a + k->offset;
	const char *fb = (const char *)b + k->offset;

	switch (k->type) {
	case KT_STRING:
	case KT_PATH:
	case KT_ADDR: {
		const char *sa = *(char *const *)fa, *sb = *(char *const *)fb;

		if (!sa || !sb)
			return sa != sb;
		return strcmp(sa, sb) != 0;
	}
	case KT_INT:
	case KT_BOOL:
	case KT_ENUM:
		return *(const int *)fa != *(const int *)fb;
	case KT_SIZE:
		return *(const size_t *)fa != *(const size_t *)fb;
	case KT_DURATION:
		return *(const long *)fa != *(const long *)fb;
	}
	return 1;
}

int config_check_reload(const struct config *old, const struct config *neu, char *err,
			size_t errlen)
{
	for (size_t i = 0; i < NKEYS; i++) {
		if (keys[i].flags & KEY_RELOAD)
			continue;
		if (key_differs(&keys[i], old, neu)) {
			snprintf(err, errlen, "%s.%s cannot change on reload (restart needed)",
				 keys[i].section, keys[i].name);
			return -1;
		}
	}
	return 0;
}

static const char *type_name(const struct key_def *k)
{
	return key_types[k->type].name;
}

/* Markdown table; README's copy is compared with this output byte for byte. */
void config_print_reference(FILE *out)
{
	fputs("| Key | Type | Default | Required | SIGHUP | Description |\n", out);
	fputs("|---|---|---|---|---|---|\n", out);
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key_def *k = &keys[i];
		char range[96] = "";

		if (k->type == KT_INT || k->type == KT_SIZE || k->type == KT_DURATION) {
			char lo[32], hi[32];

			fmt_limit(k, k->min, lo, sizeof(lo));
			fmt_limit(k, k->max, hi, sizeof(hi));
			snprintf(range, sizeof(range), " %s..%s", lo, hi);
		} else if (k->type == KT_ENUM) {
			size_t len = 0;

			for (int j = 0; k->values[j] && len < sizeof(range); j++)
				len += (size_t)snprintf(range + len, sizeof(range) - len, "%s%s",
							j ? "\\|" : " ", k->values[j]);
		}
		fprintf(out, "| `[%s] %s` | %s%s | %s%s%s | %s | %s | %s |\n", k->section, k->name,
			type_name(k), range, k->def ? "`" : "", k->def ? k->def : "(none)",
			k->def ? "`" : "", (k->flags & KEY_REQUIRED) ? "yes" : "no",
			(k->flags & KEY_RELOAD) ? "yes" : "no", k->desc);
	}
}
