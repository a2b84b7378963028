/*
 * referralctl.c - the operator's client of referrald's admin API over TLS.
 *
 *   referralctl [-c FILE] NOUN VERB [ARGS] [--option VALUE ...]
 *
 * Owns: the command table (noun, verb, what it sends where), the HTTPS
 * client (libcurl: one handle, certificate and host name verified against
 * the configured CA, https only), reading the bearer token from token_file,
 * and `worker import` (CSV -> one POST /v1/workers per line, dry run by
 * default, a progress bar on a terminal, one plain line per record when
 * piped).
 * Must never: take a token on the command line or from the environment
 * (command lines are visible to every local user and kept in shell
 * histories); read a token file that group or others can read; print a
 * token except the one `token issue` was asked for, once; follow a redirect
 * or speak plain HTTP.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ctl.h"

#define CTL_VERSION "0.1.0"
#define MAX_OPTS 16

/* The command line after NOUN VERB: positionals and --key value pairs. */
struct args {
	const char *pos[8];
	int npos;
	const char *key[MAX_OPTS], *val[MAX_OPTS];
	int nopt;
	int apply, programme;
};

/* ---------------------------------------------------------------- helpers */

void ctl_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void ctl_die(const char *fmt, ...)
{
	va_list ap;

	fputs(CTL_NAME ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_SETUP);
}

char *ctl_read_file(const char *path, size_t *len, int secret)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (secret ? O_NOFOLLOW : 0));
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > MAX_FILE) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if (secret && (st.st_mode & 077)) {
		close(fd);
		ctl_die("%s: readable by group or others (chmod 600 it)", path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	while (off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	buf[off] = '\0';
	*len = off;
	return buf;
}

/* "~/x" -> "$HOME/x"; anything else as is. Caller frees. */
static char *expand_home(const char *p)
{
	const char *home = getenv("HOME");
	char *out;

	if (strncmp(p, "~/", 2) != 0 || !home)
		return strdup(p);
	if (asprintf(&out, "%s/%s", home, p + 2) < 0)
		return NULL;
	return out;
}

static const char *opt(const struct args *a, const char *key)
{
	for (int i = 0; i < a->nopt; i++)
		if (strcmp(a->key[i], key) == 0)
			return a->val[i];
	return NULL;
}

/* Comma or semicolon separated list -> JSON array of strings. */
json_t *ctl_str_list(const char *s)
{
	json_t *arr = json_array();
	const char *p = s;

	while (arr && p && *p) {
		size_t n = strcspn(p, ",;");
		const char *b = p, *e = p + n;

		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > b)
			json_array_append_new(arr, json_stringn(b, (size_t)(e - b)));
		p += n;
		if (*p)
			p++;
	}
	return arr;
}

/* ------------------------------------------------------------------ HTTP */

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reply *r = arg;
	size_t n = size * nmemb;
	char *nb;

	if (r->len + n > MAX_FILE)
		return 0;
	nb = realloc(r->body, r->len + n + 1);
	if (!nb)
		return 0;
	memcpy(nb + r->len, data, n);
	r->body = nb;
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static void http_setup(struct ctx *c)
{
	c->curl = curl_easy_init();
	if (!c->curl)
		ctl_die("cannot initialise libcurl");
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c->curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->conf.timeout_s);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	if (c->conf.ca_file)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->conf.ca_file);
	if (c->conf.client_cert) {
		curl_easy_setopt(c->curl, CURLOPT_SSLCERT, c->conf.client_cert);
		curl_easy_setopt(c->curl, CURLOPT_SSLKEY, c->conf.client_key);
	}
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
}

/* One request; body may be NULL. Returns 0 with r filled, -1 on transport
 * failure (reported on stderr). */
int ctl_http(struct ctx *c, const char *method, const char *path, json_t *body,
		struct reply *r)
{
	struct curl_slist *h = NULL;
	char auth[640], *url = NULL, *payload = NULL;
	CURLcode cc;

	memset(r, 0, sizeof(*r));
	if (asprintf(&url, "%s%s", c->conf.url, path) < 0)
		return -1;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
	h = curl_slist_append(h, auth);
	OPENSSL_cleanse(auth, sizeof(auth));
	h = curl_slist_append(h, "Accept: application/json");
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		h = curl_slist_append(h, "Content-Type: application/json");
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	}
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, r);
	cc = curl_easy_perform(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h); /* the token's copy inside goes with it */
	free(payload);
	free(url);
	if (cc != CURLE_OK) {
		fprintf(stderr, CTL_NAME ": %s %s: %s\n", method, path, curl_easy_strerror(cc));
		free(r->body);
		r->body = NULL;
		return -1;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &r->status);
	return 0;
}

/* "HTTP 409 conflict: message (field)" for an error reply. */
void ctl_describe_error(const struct reply *r, const char *method, const char *path, char *buf,
			   size_t n)
{
	json_t *j = r->body ? json_loads(r->body, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));

	if (code)
		snprintf(buf, n, "HTTP %ld %s: %s%s%s%s", r->status, code, msg ? msg : "",
			 field ? " (" : "", field ? field : "", field ? ")" : "");
	else if (r->status == 404 || r->status == 405)
		snprintf(buf, n, "HTTP %ld: this daemon does not offer %s %s", r->status, method,
			 path);
	else
		snprintf(buf, n, "HTTP %ld", r->status);
	json_decref(j);
}

/* Send, print the JSON answer on stdout; the exit code. */
static int call(struct ctx *c, const char *method, const char *path, json_t *body)
{
	struct reply r;
	char why[512];
	int rc;

	if (ctl_http(c, method, path, body, &r) < 0) {
		json_decref(body);
		return EXIT_SETUP;
	}
	json_decref(body);
	if (r.status >= 200 && r.status < 300) {
		json_t *j = r.len ? json_loads(r.body, 0, NULL) : NULL;

		if (j) {
			char *out = json_dumps(j, c->tty_out ? JSON_INDENT(2) : JSON_COMPACT);

			if (out)
				puts(out);
			free(out);
			json_decref(j);
		}
		rc = 0;
	} else {
		ctl_describe_error(&r, method, path, why, sizeof(why));
		fprintf(stderr, CTL_NAME ": %s\n", why);
		rc = EXIT_API;
	}
	if (r.body)
		OPENSSL_cleanse(r.body, r.len);
	free(r.body);
	return rc;
}

static char *path_of(const char *fmt, const char *id)
{
	char *p = NULL;
	char *esc = curl_easy_escape(NULL, id, 0);

	if (esc && asprintf(&p, fmt, esc) < 0)
		p = NULL;
	curl_free(esc);
	if (!p)
		ctl_die("out of memory");
	return p;
}

static int call_id(struct ctx *c, const char *method, const char *fmt, const char *id, json_t *body)
{
	char *p = path_of(fmt, id);
	int rc = call(c, method, p, body);

	free(p);
	return rc;
}

/* -------------------------------------------------------------- commands */

static int need(const struct args *a, int npos, const char *key1, const char *key2)
{
	if (a->npos < npos || (key1 && !opt(a, key1)) || (key2 && !opt(a, key2)))
		return -1;
	return 0;
}

static void set_opt_str(json_t *o, const char *name, const char *v)
{
	if (v)
		json_object_set_new(o, name, json_string(v));
}

/* SHA-256 of a PEM certificate's DER, lowercase hex (what the daemon maps). */
static int cert_fingerprint(const char *path, char out[65])
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (f)
		fclose(f);
	if (!x || X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) {
		X509_free(x);
		return -1;
	}
	X509_free(x);
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int cmd_org_add(struct ctx *c, struct args *a)
{
	if (need(a, 1, NULL, NULL) < 0)
		return -1;
	return call(c, "POST", "/v1/organisations", json_pack("{ss}", "name", a->pos[0]));
}

static int cmd_org_list(struct ctx *c, struct args *a)
{
	(void)a;
	return call(c, "GET", "/v1/organisations", NULL);
}

static int cmd_office_add(struct ctx *c, struct args *a)
{
	json_t *o;
	char fp[65];

	if (need(a, 2, NULL, NULL) < 0)
		return -1;
	o = json_pack("{ssss}", "name", a->pos[0], "region", a->pos[1]);
	if (opt(a, "--cert")) {
		if (cert_fingerprint(opt(a, "--cert"), fp) < 0)
			ctl_die("%s: not a PEM certificate", opt(a, "--cert"));
		json_object_set_new(o, "cert_fingerprint", json_string(fp));
	}
	set_opt_str(o, "cert_subject", opt(a, "--cert-subject"));
	return call(c, "POST", "/v1/offices", o);
}

static int cmd_office_list(struct ctx *c, struct args *a)
{
	(void)a;
	return call(c, "GET", "/v1/offices", NULL);
}

static int cmd_office_disable(struct ctx *c, struct args *a)
{
	if (need(a, 1, NULL, NULL) < 0)
		return -1;
	return call_id(c, "PATCH", "/v1/offices/%s", a->pos[0], json_pack("{sb}", "active", 0));
}

static int cmd_office_bind_cert(struct ctx *c, struct args *a)
{
	char fp[65];

	if (need(a, 2, NULL, NULL) < 0)
		return -1;
	if (cert_fingerprint(a->pos[1], fp) < 0)
		ctl_die("%s: not a PEM certificate", a->pos[1]);
	return call_id(c, "PUT", "/v1/offices/%s/certificate", a->pos[0],
		       json_pack("{ss}", "cert_fingerprint", fp));
}

json_t *ctl_worker_body(const char *org, const char *kind, const char *handle,
			   const char *regions, const char *languages, long capacity)
{
	return json_pack("{sssssssoso si}", "organisation_id", org, "kind", kind, "handle", handle,
			 "regions", ctl_str_list(regions), "languages", ctl_str_list(languages), "capacity",
			 (int)capacity);
}

static int cmd_worker_add(struct ctx *c, struct args *a)
{
	char *end;
	long cap;

	if (need(a, 0, "--org", "--handle") < 0 || !opt(a, "--kind") || !opt(a, "--regions") ||
	    !opt(a, "--languages") || !opt(a, "--capacity"))
		return -1;
	cap = strtol(opt(a, "--capacity"), &end, 10);
	if (*end || cap < 0 || cap > 1000)
		ctl_die("--capacity must be 0..1000");
	return call(c, "POST", "/v1/workers",
		    ctl_worker_body(opt(a, "--org"), opt(a, "--kind"), opt(a, "--handle"),
				opt(a, "--regions"), opt(a, "--languages"), cap));
}

static int cmd_worker_list(struct ctx *c, struct args *a)
{
	if (opt(a, "--org"))
		return call_id(c, "GET", "/v1/workers?organisation_id=%s", opt(a, "--org"), NULL);
	return call(c, "GET", "/v1/workers", NULL);
}

static int cmd_worker_leave(struct ctx *c, struct args *a)
{
	if (need(a, 1, NULL, NULL) < 0)
		return -1;
	return call_id(c, "PATCH", "/v1/workers/%s", a->pos[0], json_pack("{sb}", "on_leave", 1));
}

static int cmd_worker_return(struct ctx *c, struct args *a)
{
	if (need(a, 1, NULL, NULL) < 0)
		return -1;
	return call_id(c, "PATCH", "/v1/workers/%s", a->pos[0], json_pack("{sb}", "on_leave", 0));
}

static int cmd_supervisor_add(struct ctx *c, struct args *a)
{
	json_t *o;

	if (need(a, 0, "--handle", NULL) < 0 || (!opt(a, "--org") == !a->programme))
		return -1;
	o = json_pack("{ss}", "handle", opt(a, "--handle"));
	if (a->programme)
		json_object_set_new(o, "scope", json_string("programme"));
	else
		json_object_set_new(o, "organisation_id", json_string(opt(a, "--org")));
	return call(c, "POST", "/v1/supervisors", o);
}

static int cmd_token_issue(struct ctx *c, struct args *a)
{
	char exp[32];

	if (need(a, 0, "--role", "--subject") < 0)
		return -1;
	if (!opt(a, "--expires")) {
		/* Default: 30 days, well inside any lifetime ceiling. */
		time_t t = time(NULL) + 30 * 86400;
		struct tm tm;

		gmtime_r(&t, &tm);
		strftime(exp, sizeof(exp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	return call(c, "POST", "/v1/tokens",
		    json_pack("{ssssss}", "role", opt(a, "--role"), "subject_id",
			      opt(a, "--subject"), "expires_at",
			      opt(a, "--expires") ? opt(a, "--expires") : exp));
}

static int cmd_token_list(struct ctx *c, struct args *a)
{
	if (opt(a, "--subject"))
		return call_id(c, "GET", "/v1/tokens?subject_id=%s", opt(a, "--subject"), NULL);
	return call(c, "GET", "/v1/tokens", NULL);
}

static int cmd_token_revoke(struct ctx *c, struct args *a)
{
	if (opt(a, "--subject"))
		return call(c, "POST", "/v1/tokens/revoke",
			    json_pack("{ss}", "subject_id", opt(a, "--subject")));
	if (need(a, 1, NULL, NULL) < 0)
		return -1;
	return call_id(c, "DELETE", "/v1/tokens/%s", a->pos[0], NULL);
}

static int cmd_webhook_add(struct ctx *c, struct args *a)
{
	size_t len = 0;
	char *secret;
	json_t *o;
	int rc;

	if (need(a, 0, "--url", "--events") < 0 || !opt(a, "--secret-file"))
		return -1;
	secret = ctl_read_file(opt(a, "--secret-file"), &len, 1);
	if (!secret)
		ctl_die("%s: %s", opt(a, "--secret-file"), strerror(errno));
	while (len > 0 && (secret[len - 1] == '\n' || secret[len - 1] == '\r'))
		secret[--len] = '\0';
	o = json_pack("{sssoss}", "url", opt(a, "--url"), "events", ctl_str_list(opt(a, "--events")),
		      "secret", secret);
	OPENSSL_cleanse(secret, len);
	free(secret);
	set_opt_str(o, "organisation_id", opt(a, "--org"));
	set_opt_str(o, "office_id", opt(a, "--office"));
	rc = call(c, "POST", "/v1/webhooks", o);
	return rc;
}

static int cmd_webhook_list(struct ctx *c, struct args *a)
{
	(void)a;
	return call(c, "GET", "/v1/webhooks", NULL);
}

static int cmd_policy_get(struct ctx *c, struct args *a)
{
	(void)a;
	return call(c, "GET", "/v1/deadline-policies", NULL);
}

static int cmd_policy_set(struct ctx *c, struct args *a)
{
	char *p = NULL, *n, *u;
	json_t *o;
	int rc;

	if (need(a, 2, NULL, NULL) < 0)
		return -1;
	o = json_object();
	set_opt_str(o, "accept_within", opt(a, "--accept-within"));
	set_opt_str(o, "first_contact_within", opt(a, "--first-contact-within"));
	set_opt_str(o, "consultation_within", opt(a, "--consultation-within"));
	set_opt_str(o, "clock", opt(a, "--clock"));
	set_opt_str(o, "remind_before", opt(a, "--remind-before"));
	n = curl_easy_escape(NULL, a->pos[0], 0);
	u = curl_easy_escape(NULL, a->pos[1], 0);
	if (!n || !u || asprintf(&p, "/v1/deadline-policies/%s/%s", n, u) < 0)
		ctl_die("out of memory");
	curl_free(n);
	curl_free(u);
	rc = call(c, "PUT", p, o);
	free(p);
	return rc;
}

static int cmd_retention_get(struct ctx *c, struct args *a)
{
	(void)a;
	return call(c, "GET", "/v1/retention-policy", NULL);
}

static int cmd_retention_set(struct ctx *c, struct args *a)
{
	json_t *o;

	if (!opt(a, "--contact-after-close") && !opt(a, "--record-after-close"))
		return -1;
	o = json_object();
	set_opt_str(o, "contact_after_close", opt(a, "--contact-after-close"));
	set_opt_str(o, "record_after_close", opt(a, "--record-after-close"));
	return call(c, "PUT", "/v1/retention-policy", o);
}

static int cmd_worker_import(struct ctx *c, struct args *a)
{
	if (need(a, 1, NULL, NULL) < 0)
		return -1;
	return ctl_worker_import(c, a->pos[0], a->apply);
}

struct command {
	const char *noun, *verb;
	int (*run)(struct ctx *, struct args *);
	const char *usage;
};

static const struct command commands[] = {
	{ "org", "add", cmd_org_add, "NAME" },
	{ "org", "list", cmd_org_list, "" },
	{ "office", "add", cmd_office_add, "NAME REGION [--cert FILE.pem | --cert-subject DN]" },
	{ "office", "list", cmd_office_list, "" },
	{ "office", "disable", cmd_office_disable, "OFFICE_ID" },
	{ "office", "bind-cert", cmd_office_bind_cert, "OFFICE_ID FILE.pem" },
	{ "worker", "add", cmd_worker_add,
	  "--org ID --kind harm_reduction|legal_support --handle H --regions R1,R2 "
	  "--languages ky,ru --capacity N" },
	{ "worker", "list", cmd_worker_list, "[--org ID]" },
	{ "worker", "leave", cmd_worker_leave, "WORKER_ID" },
	{ "worker", "return", cmd_worker_return, "WORKER_ID" },
	{ "worker", "import", cmd_worker_import, "FILE.csv [--apply]" },
	{ "supervisor", "add", cmd_supervisor_add, "--handle H (--org ID | --programme)" },
	{ "token", "issue", cmd_token_issue, "--role ROLE --subject ID [--expires RFC3339]" },
	{ "token", "list", cmd_token_list, "[--subject ID]" },
	{ "token", "revoke", cmd_token_revoke, "TOKEN_ID | --subject ID" },
	{ "webhook", "add", cmd_webhook_add,
	  "--url https://... --events E1,E2 --secret-file FILE [--org ID | --office ID]" },
	{ "webhook", "list", cmd_webhook_list, "" },
	{ "policy", "get", cmd_policy_get, "" },
	{ "policy", "set", cmd_policy_set,
	  "NEED URGENCY [--accept-within D] [--first-contact-within D] "
	  "[--consultation-within D] [--clock wall|working] [--remind-before D]" },
	{ "retention", "get", cmd_retention_get, "" },
	{ "retention", "set", cmd_retention_set,
	  "[--contact-after-close D] [--record-after-close D]" },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: " CTL_NAME " [-c FILE] NOUN VERB [ARGS]\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %s %s %s\n", commands[i].noun, commands[i].verb, commands[i].usage);
	fprintf(out, "\nConfiguration: -c FILE, else ~/.config/" CTL_NAME ".conf, else\n"
		     "/etc/referrald/" CTL_NAME ".conf (url, ca_file, token_file; the token\n"
		     "itself lives only in token_file, mode 0600). Exit codes: 0 ok, 1 the\n"
		     "daemon refused (or an import line failed), 2 usage, 3 configuration or\n"
		     "transport.\n");
}

/* ----------------------------------------------------------------- setup */

static char *find_conf(const char *given)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char *p = NULL;

	if (given)
		return strdup(given);
	if (xdg && *xdg && asprintf(&p, "%s/" CTL_NAME ".conf", xdg) >= 0) {
		if (access(p, F_OK) == 0)
			return p;
		free(p);
		p = NULL;
	}
	if (home && *home && asprintf(&p, "%s/.config/" CTL_NAME ".conf", home) >= 0) {
		if (access(p, F_OK) == 0)
			return p;
		free(p);
	}
	return strdup("/etc/referrald/" CTL_NAME ".conf");
}

static void load(struct ctx *c, const char *given)
{
	char err[512], *path = find_conf(given), *text, *tpath, *tok;
	size_t len = 0, tlen = 0;

	if (!path)
		ctl_die("out of memory");
	text = ctl_read_file(path, &len, 0);
	if (!text)
		ctl_die("%s: %s", path, strerror(errno));
	if (ctl_conf_parse(path, text, len, &c->conf, err, sizeof(err)) < 0)
		ctl_die("%s", err);
	free(text);
	free(path);
	tpath = expand_home(c->conf.token_file);
	if (!tpath)
		ctl_die("out of memory");
	tok = ctl_read_file(tpath, &tlen, 1);
	if (!tok)
		ctl_die("token_file %s: %s", tpath, strerror(errno));
	while (tlen > 0 && (tok[tlen - 1] == '\n' || tok[tlen - 1] == '\r' || tok[tlen - 1] == ' '))
		tok[--tlen] = '\0';
	if (tlen == 0 || tlen >= sizeof(c->token) || strcspn(tok, " \t\r\n") != tlen)
		ctl_die("token_file %s: expected one token on one line", tpath);
	memcpy(c->token, tok, tlen + 1);
	OPENSSL_cleanse(tok, tlen);
	free(tok);
	free(tpath);
}

static int parse_args(int argc, char **argv, int from, struct args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = from; i < argc; i++) {
		if (strcmp(argv[i], "--apply") == 0) {
			a->apply = 1;
		} else if (strcmp(argv[i], "--programme") == 0) {
			a->programme = 1;
		} else if (strncmp(argv[i], "--", 2) == 0) {
			if (strcmp(argv[i], "--token") == 0)
				ctl_die("a token is never taken on the command line: put it in "
					  "token_file (mode 0600)");
			if (i + 1 >= argc || a->nopt == MAX_OPTS)
				return -1;
			a->key[a->nopt] = argv[i];
			a->val[a->nopt++] = argv[++i];
		} else {
			if (a->npos == (int)(sizeof(a->pos) / sizeof(a->pos[0])))
				return -1;
			a->pos[a->npos++] = argv[i];
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	const struct command *cmd = NULL;
	struct ctx c;
	struct args a;
	int i = 1, rc;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc > 1 && strcmp(argv[1], "--version") == 0) {
		puts(CTL_NAME " " CTL_VERSION);
		return 0;
	}
	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		conf = argv[2];
		i = 3;
	}
	if (argc - i < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	for (size_t k = 0; k < NCOMMANDS; k++)
		if (strcmp(commands[k].noun, argv[i]) == 0 && strcmp(commands[k].verb, argv[i + 1]) == 0)
			cmd = &commands[k];
	if (!cmd || parse_args(argc, argv, i + 2, &a) < 0) {
		if (cmd)
			fprintf(stderr, "usage: " CTL_NAME " %s %s %s\n", cmd->noun, cmd->verb,
				cmd->usage);
		else
			usage(stderr);
		return EXIT_USAGE;
	}
	memset(&c, 0, sizeof(c));
	c.tty_out = isatty(STDOUT_FILENO);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		ctl_die("cannot initialise libcurl");
	load(&c, conf);
	http_setup(&c);
	rc = cmd->run(&c, &a);
	if (rc < 0) {
		fprintf(stderr, "usage: " CTL_NAME " %s %s %s\n", cmd->noun, cmd->verb, cmd->usage);
		rc = EXIT_USAGE;
	}
	curl_easy_cleanup(c.curl);
	curl_global_cleanup();
	OPENSSL_cleanse(c.token, sizeof(c.token));
	ctl_conf_free(&c.conf);
	return rc;
}
