/*
 * api_schema.h - the bodies and query strings of the API.
 * What it owns and must never do: api_schema.c.
 */
#ifndef REFD_API_SCHEMA_H
#define REFD_API_SCHEMA_H

#include "jsonv.h"

/* Request bodies. */
extern const struct jv_field api_body_empty[];
extern const struct jv_field api_body_reason[];          /* withdraw, decline, hold */
extern const struct jv_field api_body_consent_revoke[];
extern const struct jv_field api_body_referral[];
extern const struct jv_field api_body_event[];
extern const struct jv_field api_body_complete[];
extern const struct jv_field api_body_fail[];
extern const struct jv_field api_body_reassign[];
extern const struct jv_field api_body_organisation[];
extern const struct jv_field api_body_office[];
extern const struct jv_field api_body_office_cert[];
extern const struct jv_field api_body_worker[];
extern const struct jv_field api_body_worker_patch[];
extern const struct jv_field api_body_supervisor[];
extern const struct jv_field api_body_token[];
extern const struct jv_field api_body_policy[];
extern const struct jv_field api_body_retention_policy[];
extern const struct jv_field api_body_webhook[];
extern const struct jv_field api_body_calendar[];
extern const struct jv_field api_body_sign_in_code[];
extern const struct jv_field api_body_sign_in[];
extern const struct jv_field api_body_revoke_subject[];
extern const struct jv_field api_body_active[];

/* Query strings. */
extern const struct jv_qparam api_query_referrals[];
extern const struct jv_qparam api_query_assignments[];
extern const struct jv_qparam api_query_deadlines[];
extern const struct jv_qparam api_query_audit[];
extern const struct jv_qparam api_query_report[];
extern const struct jv_qparam api_query_history[];
extern const struct jv_qparam api_query_tokens[];
extern const struct jv_qparam api_query_workers[];  /* GET /v1/workers */
extern const struct jv_qparam api_query_page[];     /* limit and cursor only */
extern const struct jv_field api_body_subject_access[];  /* POST /v1/subject-access */
extern const struct jv_qparam api_query_break_glass[];    /* GET /v1/break-glass */

/* POST /v1/referrals' rules that span fields or depend on the clock
 * (api_referrals.c). 0 = fine, else *e is set. */
int api_referral_rules(const json_t *body, struct jv_error *e);

#endif
