/*
 * api_call.h - the one path every /v1 handler takes to the database.
 * What it owns and must never do: api_call.c.
 */
#ifndef REFD_API_CALL_H
#define REFD_API_CALL_H

#include <jansson.h>

#include "jsonv.h"
#include "keyring.h"

struct req;

/* Runs after a successful call, before the reply: may change *status or edit
 * body (for example to add a freshly minted token). */
typedef void (*api_call_post)(struct req *r, int *status, json_t *body, void *arg);

/* Call statement stmt (registered in queries.c as SELECT api_x($1::jsonb,$2,$3::jsonb))
 * with args (stolen). Always ends in exactly one reply. */
void api_call_run(struct req *r, const char *stmt, json_t *args);
/* Same, with a hook; free_arg(arg) runs once, after the reply or on failure. */
void api_call_run_ex(struct req *r, const char *stmt, json_t *args, api_call_post post,
		     void *arg, void (*free_arg)(void *));

/* Told of every well-formed result (any status) before the reply: the
 * body and headers as the database returned them (sealed values unopened);
 * for work that depends on the outcome, not for changing the reply. */
typedef void (*api_call_seen)(void *arg, int status, const json_t *body, const json_t *headers);
void api_call_run_seen(struct req *r, const char *stmt, json_t *args, api_call_seen seen,
		       void *arg, void (*free_arg)(void *));

/* Renders a successful (2xx) result itself instead of the JSON reply, for
 * example as CSV: takes body (a reference it must drop) and must reply exactly
 * once. Errors still get the protocol's JSON error shape. */
typedef void (*api_call_render)(struct req *r, int status, json_t *body, void *arg);
void api_call_run_render(struct req *r, const char *stmt, json_t *args, api_call_render render,
			 void *arg);
/* Same; free_arg(arg) runs once, after the renderer or on failure. */
void api_call_run_render_ex(struct req *r, const char *stmt, json_t *args,
			    api_call_render render, void *arg, void (*free_arg)(void *));

/* Reply with a validation error. */
void api_call_reply_invalid(struct req *r, const struct jv_error *e);

/* Parse and validate the body against fields; on failure replies and returns
 * NULL. empty_ok: an absent/empty body counts as {}. */
json_t *api_call_body(struct req *r, const struct jv_field *fields, int empty_ok);

/* Path parameter idx as a uuid into args[key]; a malformed id replies 404 (as
 * an absent object would) and returns -1. */
int api_call_path_id(struct req *r, int idx, json_t *args, const char *key);

/* Path id first (404 when malformed, before looking at the body), then the
 * body as api_call_body(); the id is added to the returned args as "id". */
json_t *api_call_body_with_id(struct req *r, const struct jv_field *fields, int empty_ok);

/* Validate the query string into args; on failure replies and returns -1. */
int api_call_query(struct req *r, const struct jv_qparam *params, json_t *args);

/* The request must carry no query string (replies 400 and returns -1). */
int api_call_no_query(struct req *r);

/* The args a route row describes (api.h's struct api_op): its query string
 * or none, its path id, its body; on failure replies and returns NULL. */
struct api_op;
json_t *api_call_args(struct req *r, const struct api_op *op);

/* Replace args[key] (a string, or an object sealed as compact JSON; absent:
 * nothing to do) by args[sealed_key], sealed for client data and bound to
 * (table, column, row_id); on failure replies 500 and returns -1. */
int api_call_seal(struct req *r, json_t *args, const char *key, const char *sealed_key,
		  const char *table, const char *column, const char *row_id);
/* The same under another purpose's subkey (webhook secrets). */
int api_call_seal_for(struct req *r, json_t *args, const char *key, const char *sealed_key,
		      enum keyring_purpose purpose, const char *table, const char *column,
		      const char *row_id);

#endif
