/*
 * initkeys.h - `referrald --init-keys`: create the key files a configuration
 * names.
 */
#ifndef REFD_INITKEYS_H
#define REFD_INITKEYS_H

struct config;

/* Create every key file cfg names that does not exist yet (mode 0600, given
 * to [server] user when run as root), print one line per file on stdout.
 * Returns the process exit code: 0 when every file was created, 1 when one
 * existed already (it is left untouched) or could not be written. */
int initkeys_run(const struct config *cfg);

#endif
