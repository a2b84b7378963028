/*
 * audit_seal.h - the audit ledger v2's periodic jobs: the sealer and the
 * signed-head publisher.
 */
#ifndef REFD_AUDIT_SEAL_H
#define REFD_AUDIT_SEAL_H

struct app;
struct audit_sealer;

struct audit_sealer *audit_sealer_start(struct app *app);
/* No new run; frees itself once its statements in flight have returned. */
void audit_sealer_stop(struct audit_sealer *s);

#endif
