/*
 * keystore.h - the key store's table and the re-wrap command. What it owns
 * and must never do: keystore.c.
 */
#ifndef REFD_KEYSTORE_H
#define REFD_KEYSTORE_H

#include <stddef.h>

struct config;
struct keyring;

/* Connect (blocking) and create data_keys if missing; 0, or -1 with err. */
int keystore_prepare(const char *conninfo, char *err, size_t errlen);
/* referrald --rewrap-keys: every data key wrapped again under the current
 * KEK; a progress line on a terminal. The process's exit code. */
int keystore_rewrap(const struct config *cfg, const struct keyring *k);

#endif
