/*
 * api_schema.c - the shape of every request body and query string of the
 * API, as jsonv tables; the route table (router.c) names one of each per
 * route.
 *
 * Owns: member names, types, lengths, ranges, formats and value sets (from
 * vocab.c) of the protocol's inputs (proto/openapi.yaml is the contract;
 * tests/integration hold the two together).
 * Must never: accept a member the protocol does not name (jsonv refuses
 * unknown members), or a client's name in any form.
 */
#include "api_schema.h"
#include "sign_in_code.h"
#include "vocab.h"

const struct jv_field api_body_empty[] = { JV_END };

const struct jv_field api_body_reason[] = {
	JVF_STR("reason", JV_REQUIRED, 1, 500, jsonv_is_text),
	JV_END,
};

/* POST /v1/referrals/{id}/consent/revoke (whether recorded_at lies in the
 * future is the database clock's to say: 422 there). */
const struct jv_field api_body_consent_revoke[] = {
	JVF_ENUM("scope", JV_REQUIRED, 1, 32, vocab_consent_scope),
	JVF_STR("recorded_at", JV_REQUIRED, 20, 40, jsonv_is_time),
	JV_END,
};

/* POST /v1/referrals */
static const struct jv_field contact_fields[] = {
	JVF_STR("phone", JV_REQUIRED, 9, 16, jsonv_is_phone),
	JV_END,
};

static const struct jv_field client_fields[] = {
	JVF_STR("uic", JV_REQUIRED, 4, 32, jsonv_is_uic),
	JVF_INT("birth_year", JV_REQUIRED, 1900, 9999),
	JVF_ENUM("gender", JV_REQUIRED, 1, 1, vocab_gender),
	JVF_ARRAY("languages", JV_REQUIRED | JV_UNIQUE, 1, 8, jsonv_is_lang, 2),
	JVF_STR("region", JV_REQUIRED, 1, 64, jsonv_is_slug),
	JVF_OBJ("contact", 0, contact_fields),
	JV_END,
};

static const struct jv_field consent_fields[] = {
	JVF_BOOL("services", JV_REQUIRED),
	JVF_BOOL("report_back", 0),
	JVF_STR("obtained_at", JV_REQUIRED, 20, 40, jsonv_is_time),
	JV_END,
};

static const struct jv_field probation_fields[] = {
	JVF_STR("starts_on", JV_REQUIRED, 10, 10, jsonv_is_date),
	JVF_STR("ends_on", JV_REQUIRED, 10, 10, jsonv_is_date),
	JV_END,
};

const struct jv_field api_body_referral[] = {
	JVF_STR("external_ref", JV_REQUIRED, 1, 64, jsonv_is_printable),
	JVF_OBJ("client", JV_REQUIRED, client_fields),
	JVF_ENUM_ARRAY("needs", JV_REQUIRED | JV_UNIQUE, 1, 2, vocab_need, 32),
	JVF_ENUM("urgency", 0, 1, 16, vocab_urgency),
	JVF_OBJ("consent", JV_REQUIRED, consent_fields),
	JVF_OBJ("probation", 0, probation_fields),
	JVF_STR("note", 0, 0, 2000, jsonv_is_text),
	JV_END,
};

/* Assignment actions. */
const struct jv_field api_body_event[] = {
	JVF_ENUM("type", JV_REQUIRED, 1, 32, vocab_event_type),
	JVF_STR("at", 0, 20, 40, jsonv_is_time),
	JVF_STR("outcome", 0, 1, 64, jsonv_is_text),
	JVF_STR("detail", 0, 1, 2000, jsonv_is_text),
	JV_END,
};

const struct jv_field api_body_complete[] = {
	JVF_ENUM("outcome", JV_REQUIRED, 1, 32, vocab_outcome),
	JVF_STR("detail", 0, 1, 2000, jsonv_is_text),
	JV_END,
};

const struct jv_field api_body_fail[] = {
	JVF_ENUM("reason", JV_REQUIRED, 1, 32, vocab_fail_reason),
	JVF_STR("detail", 0, 1, 2000, jsonv_is_text),
	JV_END,
};

const struct jv_field api_body_reassign[] = {
	JVF_STR("worker_id", JV_REQUIRED, 36, 36, jsonv_is_uuid),
	JVF_STR("reason", JV_REQUIRED, 1, 500, jsonv_is_text),
	JV_END,
};

/* Exceptional access (api_access.c): subject access, break-the-glass. */
const struct jv_field api_body_subject_access[] = {
	JVF_STR("uic", JV_REQUIRED, 4, 32, jsonv_is_uic),
	JVF_STR("reason", JV_REQUIRED, 1, 500, jsonv_is_text),
	JV_END,
};

const struct jv_qparam api_query_break_glass[] = {
	JQP_STR("since", jsonv_is_time),
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

/* The web pages' sign-in (api_sign_in.c). */
const struct jv_field api_body_sign_in_code[] = {
	JVF_STR("subject_id", JV_REQUIRED, 36, 36, jsonv_is_uuid),
	JV_END,
};

const struct jv_field api_body_sign_in[] = {
	JVF_STR("code", JV_REQUIRED, 8, 32, sign_in_code_is_text),
	JV_END,
};

/* Administration. */
const struct jv_field api_body_organisation[] = {
	JVF_STR("name", JV_REQUIRED, 1, 200, jsonv_is_text),
	JV_END,
};

const struct jv_field api_body_office[] = {
	JVF_STR("name", JV_REQUIRED, 1, 200, jsonv_is_text),
	JVF_STR("region", JV_REQUIRED, 1, 64, jsonv_is_slug),
	JVF_STR("cert_fingerprint", 0, 64, 64, jsonv_is_hex64),
	JVF_STR("cert_subject", 0, 1, 255, jsonv_is_text),
	JV_END,
};

/* PUT /v1/offices/{id}/certificate: at least one of the two (API_NONEMPTY). */
const struct jv_field api_body_office_cert[] = {
	JVF_STR("cert_fingerprint", 0, 64, 64, jsonv_is_hex64),
	JVF_STR("cert_subject", 0, 1, 255, jsonv_is_text),
	JV_END,
};

const struct jv_field api_body_worker[] = {
	JVF_STR("organisation_id", JV_REQUIRED, 36, 36, jsonv_is_uuid),
	JVF_ENUM("kind", JV_REQUIRED, 1, 32, vocab_need),
	JVF_STR("handle", JV_REQUIRED, 1, 64, jsonv_is_handle),
	JVF_ARRAY("regions", JV_REQUIRED | JV_UNIQUE, 1, 32, jsonv_is_slug, 64),
	JVF_ARRAY("languages", JV_REQUIRED | JV_UNIQUE, 1, 8, jsonv_is_lang, 2),
	JVF_INT("capacity", JV_REQUIRED, 0, 1000),
	JV_END,
};

const struct jv_field api_body_worker_patch[] = {
	JVF_INT("capacity", 0, 0, 1000),
	JVF_BOOL("on_leave", 0),
	JVF_BOOL("active", 0),
	JVF_ARRAY("regions", JV_UNIQUE, 1, 32, jsonv_is_slug, 64),
	JVF_ARRAY("languages", JV_UNIQUE, 1, 8, jsonv_is_lang, 2),
	JV_END,
};

const struct jv_field api_body_supervisor[] = {
	JVF_STR("organisation_id", 0, 36, 36, jsonv_is_uuid),
	JVF_ENUM("scope", 0, 1, 16, vocab_supervisor_scope),
	JVF_STR("handle", JV_REQUIRED, 1, 64, jsonv_is_handle),
	JV_END,
};

const struct jv_field api_body_token[] = {
	JVF_ENUM("role", JV_REQUIRED, 1, 16, vocab_role),
	JVF_STR("subject_id", JV_REQUIRED, 36, 36, jsonv_is_uuid),
	JVF_STR("expires_at", JV_REQUIRED, 20, 40, jsonv_is_time),
	JV_END,
};

const struct jv_field api_body_policy[] = {
	JVF_STR("accept_within", 0, 3, 32, jsonv_is_duration),
	JVF_STR("first_contact_within", 0, 3, 32, jsonv_is_duration),
	JVF_STR("consultation_within", 0, 3, 32, jsonv_is_duration),
	JVF_ENUM("clock", 0, 1, 16, vocab_clock),
	JVF_STR("remind_before", 0, 3, 32, jsonv_is_duration),
	JV_END,
};

/* PUT /v1/retention-policy: ISO 8601 durations (P30D, PT1S); at least one
 * (API_NONEMPTY); positive is the database's 400. */
const struct jv_field api_body_retention_policy[] = {
	JVF_STR("contact_after_close", 0, 3, 32, jsonv_is_duration),
	JVF_STR("record_after_close", 0, 3, 32, jsonv_is_duration),
	JV_END,
};

/* PUT /v1/organisations/{id}/calendar: the shape only; whether the zone
 * exists, ranges ascend and dates are real is the database's 422
 * (api_calendar_put). Up to ten years of holidays. */
#define CAL_DAY(d) JVF_ARRAY(d, 0, 0, 16, NULL, 8)
static const struct jv_field calendar_hours[] = {
	CAL_DAY("mon"), CAL_DAY("tue"), CAL_DAY("wed"), CAL_DAY("thu"), CAL_DAY("fri"),
	CAL_DAY("sat"), CAL_DAY("sun"),
	JV_END,
};

const struct jv_field api_body_calendar[] = {
	JVF_STR("timezone", JV_REQUIRED, 1, 64, jsonv_is_printable),
	JVF_OBJ("hours", JV_REQUIRED, calendar_hours),
	JVF_ARRAY("holidays", 0, 0, 3660, jsonv_is_printable, 32),
	JV_END,
};

const struct jv_field api_body_webhook[] = {
	JVF_STR("url", JV_REQUIRED, 9, 2048, jsonv_is_https_url),
	JVF_ARRAY("events", JV_REQUIRED | JV_UNIQUE, 1, 32, jsonv_is_event_name, 64),
	JVF_STR("secret", JV_REQUIRED, 16, 256, jsonv_is_printable),
	JVF_STR("organisation_id", 0, 36, 36, jsonv_is_uuid),
	JVF_STR("office_id", 0, 36, 36, jsonv_is_uuid),
	JVF_BOOL("programme", 0),
	JV_END,
};

/* Credentials (v1.1): bulk revocation, disabling offices and supervisors. */
const struct jv_field api_body_revoke_subject[] = {
	JVF_STR("subject_id", JV_REQUIRED, 36, 36, jsonv_is_uuid),
	JV_END,
};

const struct jv_field api_body_active[] = {
	JVF_BOOL("active", JV_REQUIRED),
	JV_END,
};

/* Lists and the report. */
const struct jv_qparam api_query_referrals[] = {
	JQP_ENUM("status", vocab_referral_status),
	JQP_STR("since", jsonv_is_time),
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

const struct jv_qparam api_query_assignments[] = {
	JQP_ENUM("status", vocab_assignment_status),
	JQP_BOOL("overdue"),
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

const struct jv_qparam api_query_deadlines[] = {
	JQP_ENUM("state", vocab_deadline_state),
	JQP_STR("due_before", jsonv_is_time),
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

const struct jv_qparam api_query_audit[] = {
	JQP_STR("from", jsonv_is_time),
	JQP_STR("to", jsonv_is_time),
	JQP_STR("object", jsonv_is_uuid),
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

const struct jv_qparam api_query_history[] = {
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

/* GET /v1/workers: one organisation's (within what the caller may see). */
const struct jv_qparam api_query_workers[] = {
	JQP_STR("organisation_id", jsonv_is_uuid),
	JQ_END,
};

/* A plain list: paging only. */
const struct jv_qparam api_query_page[] = {
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

const struct jv_qparam api_query_tokens[] = {
	JQP_STR("subject_id", jsonv_is_uuid),
	JQP_LIMIT,
	JQP_CURSOR,
	JQ_END,
};

const struct jv_qparam api_query_report[] = {
	JQP_STR("from", jsonv_is_time),
	JQP_STR("to", jsonv_is_time),
	JQP_ENUM("group_by", vocab_report_group_by),
	JQ_END,
};
