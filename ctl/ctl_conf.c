/*
 * ctl_conf.c - referralctl's configuration file: `key = value` lines.
 *
 *   url = https://referrals.example.org:8443
 *   ca_file = /etc/referrald/ca.crt
 *   token_file = ~/.config/referralctl.token
 *   # client_cert = ... / client_key = ...   (optional mutual TLS)
 *   # timeout = 30                            (seconds)
 *
 * Owns: parsing and the strings of struct ctl_conf.
 * Must never: hold a token itself (a `token` key is refused: tokens live in
 * token_file, never in a file that is often shared, nor on a command line);
 * echo a value in an error; accept a URL that is not https.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static char *ctl_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int ctl_set(char **field, const char *v)
{
	char *d = strdup(v);

	if (!d)
		return -1;
	free(*field);
	*field = d;
	return 0;
}

int ctl_conf_parse(const char *path, const char *text, size_t len, struct ctl_conf *out,
		   char *err, size_t errlen)
{
	char *copy = malloc(len + 1), *line, *save = NULL;
	int lineno = 0;

	memset(out, 0, sizeof(*out));
	out->timeout_s = 30;
	if (!copy) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	if (strlen(copy) != len) {
		snprintf(err, errlen, "%s: NUL byte in the file", path);
		goto fail;
	}
	for (line = copy; line; line = save) {
		char *nl = strchr(line, '\n'), *eq, *k, *v;

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		k = ctl_trim(line);
		if (*k == '\0' || *k == '#' || *k == ';')
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
			goto fail;
		}
		*eq = '\0';
		k = ctl_trim(k);
		v = ctl_trim(eq + 1);
		if (*v == '\0') {
			snprintf(err, errlen, "%s:%d: %s has no value", path, lineno, k);
			goto fail;
		}
		if (strcmp(k, "url") == 0) {
			if (strncmp(v, "https://", 8) != 0 || !v[8]) {
				snprintf(err, errlen, "%s:%d: url must start with https://", path, lineno);
				goto fail;
			}
			/* Drop a trailing slash: paths are appended as /v1/... */
			if (v[strlen(v) - 1] == '/')
				v[strlen(v) - 1] = '\0';
			if (ctl_set(&out->url, v) < 0)
				goto oom;
		} else if (strcmp(k, "ca_file") == 0) {
			if (ctl_set(&out->ca_file, v) < 0)
				goto oom;
		} else if (strcmp(k, "token_file") == 0) {
			if (ctl_set(&out->token_file, v) < 0)
				goto oom;
		} else if (strcmp(k, "client_cert") == 0) {
			if (ctl_set(&out->client_cert, v) < 0)
				goto oom;
		} else if (strcmp(k, "client_key") == 0) {
			if (ctl_set(&out->client_key, v) < 0)
				goto oom;
		} else if (strcmp(k, "timeout") == 0) {
			char *endp;
			long t = strtol(v, &endp, 10);

			if (*endp || t < 1 || t > 3600) {
				snprintf(err, errlen, "%s:%d: timeout must be 1..3600 seconds", path,
					 lineno);
				goto fail;
			}
			out->timeout_s = t;
		} else if (strcmp(k, "token") == 0) {
			snprintf(err, errlen, "%s:%d: a token does not belong in this file: put it "
				 "in the file token_file names (mode 0600)", path, lineno);
			goto fail;
		} else {
			snprintf(err, errlen, "%s:%d: unknown key", path, lineno);
			goto fail;
		}
	}
	if (!out->url || !out->token_file) {
		snprintf(err, errlen, "%s: url and token_file are required", path);
		goto fail;
	}
	if (!out->client_cert != !out->client_key) {
		snprintf(err, errlen, "%s: client_cert and client_key go together", path);
		goto fail;
	}
	free(copy);
	return 0;
oom:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	free(copy);
	ctl_conf_free(out);
	return -1;
}

void ctl_conf_free(struct ctl_conf *c)
{
	free(c->url);
	free(c->ca_file);
	free(c->token_file);
	free(c->client_cert);
	free(c->client_key);
	memset(c, 0, sizeof(*c));
}
