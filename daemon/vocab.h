/*
 * vocab.h - the protocol's closed value sets.
 * What it owns and must never do: vocab.c.
 */
#ifndef REFD_VOCAB_H
#define REFD_VOCAB_H

#include <stddef.h>

/* Each set is NULL-terminated. */
extern const char *const vocab_need[];              /* also a worker's kind */
extern const char *const vocab_urgency[];
extern const char *const vocab_gender[];
extern const char *const vocab_role[];
extern const char *const vocab_referral_status[];
extern const char *const vocab_assignment_status[];
extern const char *const vocab_event_type[];
extern const char *const vocab_outcome[];
extern const char *const vocab_fail_reason[];
extern const char *const vocab_deadline_state[];
extern const char *const vocab_supervisor_scope[];
extern const char *const vocab_report_group_by[];
extern const char *const vocab_consent_scope[];       /* what a consent revocation revokes */
extern const char *const vocab_clock[];               /* a deadline policy's clock */

/* Every set by name, NULL-terminated: for tests comparing them with the
 * schema and the spec. */
struct vocab_set {
	const char *name;
	const char *const *values;
};
extern const struct vocab_set vocab_sets[];

/* 1 when s (len bytes) is one of set's values. */
int vocab_has(const char *const *set, const char *s, size_t len);

#endif
