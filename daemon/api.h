/*
 * api.h - the handler type, struct api_op, and the handlers with code of their own.
 * Owns: only declarations (daemon/README: a leaf of layer 0).
 */
#ifndef REFD_API_H
#define REFD_API_H

struct req;
struct jv_field;
struct jv_qparam;

/* What a route row (router.c) tells its handler. */
#define API_ID          0x1  /* path parameter 0 is an object's uuid: args.id (malformed: 404) */
#define API_EMPTY_OK    0x2  /* an absent or empty body counts as {} */
#define API_SEAL_DETAIL 0x4  /* args.detail (free text about a client) leaves only sealed,
                                bound to assignments.detail of args.id */
#define API_NO_BODY     0x8  /* a body is refused (DELETE) */
#define API_NONEMPTY    0x10 /* the body must name at least one member (PATCH) */
#define API_SEAL_REASON 0x20 /* args.reason sealed, bound to assignments.reason of args.id */
#define API_SEAL_EVENT  0x40 /* an event: args.event_id chosen here, detail and outcome sealed
                                bound to that assignment_events row */
#define API_SEAL_WITHDRAWN 0x80 /* args.reason sealed, bound to referrals.withdrawn_reason */
#define API_SEAL_REASSIGN 0x100 /* args.reason sealed, bound to assignment_history.reason of
                                   the assignment's referral */

struct api_op {
	const char *stmt;               /* statement registered in queries.c */
	const struct jv_field *body;    /* body schema (api_schema.c); NULL: body not read */
	const struct jv_qparam *query;  /* query parameters; NULL: no query string allowed */
	unsigned flags;                 /* API_* */
};

/* Every handler ends in exactly one req_reply_*() call, also on error. */
typedef void (*api_handler)(struct req *r, const struct api_op *op);

/* api_call.c: the handler of most routes: query or path id, body, sealing
 * per flags, then SELECT op->stmt(who, request_id, args). */
void api_call_op(struct req *r, const struct api_op *op);

/* api_health.c: unauthenticated liveness/readiness, and the metrics page. */
void api_healthz(struct req *r, const struct api_op *op);
void api_readyz(struct req *r, const struct api_op *op);
void api_metrics(struct req *r, const struct api_op *op);

/* api_referrals.c: POST /v1/referrals (UIC hashed, contact and note sealed). */
void api_referral_submit(struct req *r, const struct api_op *op);

/* api_admin.c: the administration calls that do more than validate. */
void api_supervisor_create(struct req *r, const struct api_op *op);
void api_token_create(struct req *r, const struct api_op *op);
void api_deadline_policy_put(struct req *r, const struct api_op *op);
void api_webhook_create(struct req *r, const struct api_op *op);

/* api_audit_head.c: GET /v1/audit/head (signed) and GET /v1/audit/keys. */
void api_audit_head(struct req *r, const struct api_op *op);
void api_audit_keys(struct req *r, const struct api_op *op);

/* api_access.c: subject access (UIC hashed, reason sealed) and
 * break-the-glass (reason sealed, the configured window). */
void api_subject_access(struct req *r, const struct api_op *op);
void api_break_glass(struct req *r, const struct api_op *op);

/* api_reports.c */
void api_report_follow_up(struct req *r, const struct api_op *op);

/* api_sign_in.c: the web pages' sign-in (one-time codes, sign-in). */
void api_sign_in_code_create(struct req *r, const struct api_op *op);
void api_sign_in(struct req *r, const struct api_op *op);

/* ui.c: the web pages under /ui/ (static files, no authentication). */
void ui_serve(struct req *r);

#endif
