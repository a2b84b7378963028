/*
 * router.c - the method + path table and the policy of each route.
 *
 * Owns: the static route table and matching a decoded path against it;
 * dispatching to the handler once the route's policy is satisfied.
 * Must never: do I/O itself or look at request bodies; unknown paths answer
 * 404, known paths under another method 405, before any handler runs.
 */
#include <string.h>

#include <event2/http.h>

#include "api.h"
#include "request.h"
#include "router.h"

static const struct route routes[] = {
	{ EVHTTP_REQ_GET, "/healthz", 0, api_healthz, "healthz" },
	{ EVHTTP_REQ_GET, "/readyz", 0, api_readyz, "readyz" },
	{ EVHTTP_REQ_GET, "/metrics", ROLE_ADMIN, api_metrics, "metrics" },
};

#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

const struct route *router_table(int *count)
{
	*count = NROUTES;
	return routes;
}

/* Match one pattern against path, segment by segment. A "{x}" segment
 * captures exactly one non-empty path segment shorter than 64 bytes; any
 * other segment must be equal. Returns 1 on a match. */
static int router_match_pattern(const char *pat, const char *path, char params[][64],
				int nparams)
{
	int np = 0;

	while (*pat && *path) {
		if (*pat != '/' || *path != '/')
			return 0;
		pat++;
		path++;
		const char *pend = strchr(pat, '/');
		const char *send = strchr(path, '/');
		size_t plen = pend ? (size_t)(pend - pat) : strlen(pat);
		size_t slen = send ? (size_t)(send - path) : strlen(path);

		if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}') {
			if (slen == 0 || slen >= 64)
				return 0;
			if (np < nparams) {
				memcpy(params[np], path, slen);
				params[np][slen] = '\0';
			}
			np++;
		} else if (plen != slen || memcmp(pat, path, plen) != 0) {
			return 0;
		}
		pat += plen;
		path += slen;
	}
	return *pat == '\0' && *path == '\0';
}

const struct route *router_match(const char *path, int method, char params[][64], int nparams,
				 int *path_known)
{
	int i;

	*path_known = 0;
	for (i = 0; i < NROUTES; i++) {
		if (!router_match_pattern(routes[i].pattern, path, params, nparams))
			continue;
		if (routes[i].method == method)
			return &routes[i];
		*path_known = 1;
	}
	return NULL;
}

void router_dispatch(struct req *r)
{
	int known = 0;
	const struct route *rt;

	rt = router_match(r->path, r->method, r->params, REQ_MAX_PARAMS, &known);
	if (rt == NULL) {
		if (known)
			req_reply_error(r, 405, "method_not_allowed",
					"method not allowed on this path", NULL);
		else
			req_reply_error(r, 404, "not_found", "no such resource", NULL);
		return;
	}
	r->route = rt;
	if (rt->roles == 0) {
		rt->handler(r);
		return;
	}
	/* Authentication (auth_begin from auth.h) is wired in by the API
	 * module; until then every protected route is refused. */
	req_reply_error(r, 401, "unauthenticated", "authentication required", NULL);
}
