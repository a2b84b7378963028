/*
 * api.h - every route handler the router can dispatch to.
 *
 * Owns: only declarations; each handler lives in its api_<resource>.c file.
 * Must never: hold state; a handler receives a struct req, and ends in exactly
 * one req_reply_*() call (also on every error path).
 */
#ifndef REFD_API_H
#define REFD_API_H

struct req;

/* api_health.c: unauthenticated liveness/readiness, and the metrics page. */
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_metrics(struct req *r);

/* Other api_<resource>.c files append their handlers below. */

#endif
