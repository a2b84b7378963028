/*
 * vocab.c - the protocol's closed value sets (need, urgency, statuses,
 * outcomes, ...), once, for the validation tables (JV_ENUM, JQ_ENUM) and
 * every other C check.
 *
 * Owns: the C copy of each set; vocab_sets names them all, so
 * sql_value_sets.bats can hold them against their source, the domains of
 * sql/migrations/0075_value_sets.sql, and against the spec's enums.
 * Must never: grow a value the database would refuse (the test fails then).
 */
#include <string.h>

#include "vocab.h"

const char *const vocab_need[] = { "harm_reduction", "legal_support", NULL };
const char *const vocab_urgency[] = { "normal", "urgent", NULL };
const char *const vocab_gender[] = { "f", "m", "x", NULL };
const char *const vocab_role[] = { "office", "worker", "supervisor", "admin", NULL };
const char *const vocab_referral_status[] = { "open", "closed", "withdrawn", NULL };
const char *const vocab_assignment_status[] = {
	"unassigned", "offered", "accepted", "declined", "expired", "in_progress",
	"on_hold", "completed", "failed", "cancelled", "reassigned", NULL,
};
const char *const vocab_event_type[] = { "contact_attempt", "contact_made",
					 "service_delivered", "note", NULL };
const char *const vocab_outcome[] = { "linked_to_services", "engaged", "declined_services",
				      "other", NULL };
const char *const vocab_fail_reason[] = { "lost_contact", "client_declined", "detained",
					  "other", NULL };
const char *const vocab_deadline_state[] = { "pending", "met", "missed", NULL };
const char *const vocab_supervisor_scope[] = { "programme", "organisation", NULL };
const char *const vocab_report_group_by[] = { "organisation", "office", "worker", "region",
					      "need", NULL };

const char *const vocab_clock[] = { "wall", "working", NULL };
const char *const vocab_consent_scope[] = { "services", "report_back", NULL };

const struct vocab_set vocab_sets[] = {
	{ "need", vocab_need },
	{ "urgency", vocab_urgency },
	{ "gender", vocab_gender },
	{ "role", vocab_role },
	{ "referral_status", vocab_referral_status },
	{ "assignment_status", vocab_assignment_status },
	{ "event_type", vocab_event_type },
	{ "outcome", vocab_outcome },
	{ "fail_reason", vocab_fail_reason },
	{ "deadline_state", vocab_deadline_state },
	{ "supervisor_scope", vocab_supervisor_scope },
	{ "report_group_by", vocab_report_group_by },
	{ "clock", vocab_clock },
	{ "consent_scope", vocab_consent_scope },
	{ NULL, NULL },
};

int vocab_has(const char *const *set, const char *s, size_t len)
{
	for (; *set; set++)
		if (strlen(*set) == len && memcmp(*set, s, len) == 0)
			return 1;
	return 0;
}
