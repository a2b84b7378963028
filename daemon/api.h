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

/* api_referrals.c (office, supervisor) */
void api_referral_submit(struct req *r);
void api_referral_list(struct req *r);
void api_referral_get(struct req *r);
void api_referral_withdraw(struct req *r);

/* api_assignments.c (worker, supervisor) */
void api_assignment_list(struct req *r);
void api_assignment_get(struct req *r);
void api_assignment_accept(struct req *r);
void api_assignment_decline(struct req *r);
void api_assignment_event(struct req *r);
void api_assignment_hold(struct req *r);
void api_assignment_resume(struct req *r);
void api_assignment_complete(struct req *r);
void api_assignment_fail(struct req *r);
void api_assignment_reassign(struct req *r);

/* api_admin.c (admin), plus the supervisor's deadline and audit lists */
void api_organisation_create(struct req *r);
void api_office_create(struct req *r);
void api_worker_create(struct req *r);
void api_worker_patch(struct req *r);
void api_supervisor_create(struct req *r);
void api_token_create(struct req *r);
void api_token_revoke(struct req *r);
void api_deadline_policy_put(struct req *r);
void api_webhook_create(struct req *r);
void api_deadline_list(struct req *r);
void api_audit_list(struct req *r);
/* api_reports.c */
void api_report_follow_up(struct req *r);
/* api_sign_in.c (web sign-in: codes, sign-in, sign-out; supervisors' workers) */
void api_sign_in_code_create(struct req *r);
void api_sign_in(struct req *r);
void api_sign_out(struct req *r);
void api_worker_list(struct req *r);
void api_me(struct req *r);
/* ui.c: the web pages under /ui/ (no authentication: static files) */
void ui_serve(struct req *r);

#endif
