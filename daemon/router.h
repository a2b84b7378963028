/*
 * router.h - the method + path table, with the policy of each route.
 *
 * Owns: the static route table (method, pattern, roles allowed, handler,
 * route name for logs/metrics) and the matching of a path against it.
 * Must never: do I/O; it only matches and dispatches.
 */
#ifndef REFD_ROUTER_H
#define REFD_ROUTER_H

struct req;

typedef void (*route_handler)(struct req *r);

struct route {
	int method;            /* enum evhttp_cmd_type bit */
	const char *pattern;   /* "/v1/referrals/{id}/withdraw"; {x} captures one segment */
	unsigned roles;        /* mask of enum role allowed; 0 = no authentication (health) */
	route_handler handler;
	const char *name;      /* stable name for logs and metrics, e.g. "referrals.withdraw" */
};

/* Match method+path. Returns the route and fills params, or NULL with
 * *path_known = 1 when the path exists under another method (405). */
const struct route *router_match(const char *path, int method, char params[][64], int nparams,
				 int *path_known);
/* Match, authenticate (if the route needs it), check the role, then call the
 * handler. Always ends in exactly one reply. */
void router_dispatch(struct req *r);

/* Exposed for unit tests. */
const struct route *router_table(int *count);

#endif
