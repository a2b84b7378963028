/*
 * router.h - the one route table and dispatch.
 * What it owns and must never do: router.c.
 */
#ifndef REFD_ROUTER_H
#define REFD_ROUTER_H

#include "api.h"

struct req;

/* The listener a request came in on. */
enum route_where { ROUTE_API = 0, ROUTE_OPS = 1 };

struct route {
	int method;            /* enum evhttp_cmd_type bit */
	const char *pattern;   /* "/v1/referrals/{id}/withdraw"; {x} captures one segment */
	unsigned roles;        /* mask of enum role allowed; 0 = no authentication (health) */
	const char *name;      /* the operation's one name: logs, metrics, audit action;
				  its SQL function is api_<name> with '.' as '_' */
	api_handler handler;   /* api_call_op for most routes */
	struct api_op op;      /* statement, body schema, query parameters, flags */
	int ops;               /* also on the ops listener, and there without authentication */
};

/* Match method+path among the API listener's routes. Returns the route and
 * fills params, or NULL with *path_known = 1 when the path exists under
 * another method (405). */
const struct route *router_match(const char *path, int method, char params[][64], int nparams,
				 int *path_known);
/* Match, authenticate (if the route needs it on that listener), check the
 * role, then call the handler. Always ends in exactly one reply. */
void router_dispatch(struct req *r, enum route_where where);

/* The whole table, for the unit tests. */
const struct route *router_table(int *count);

#endif
