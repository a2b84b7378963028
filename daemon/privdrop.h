/*
 * privdrop.h - leave root once the privileged start-up steps are done.
 */
#ifndef REFD_PRIVDROP_H
#define REFD_PRIVDROP_H

#include <stddef.h>

/* Not root: returns 0 and changes nothing. Root: switches the process to
 * user (its group, no supplementary groups) and checks root cannot be taken
 * back; returns 1 when done, -1 with the reason in err when user is NULL,
 * unknown, root itself, or the switch failed. */
int privdrop_to(const char *user, char *err, size_t errlen);

#endif
