/*
 * principal.c - the names of the roles. principal.h holds the types every
 * layer shares (role, principal, peer certificate) so that tls.c, request.c
 * and auth.c need not include each other for them.
 *
 * Owns: role_to_str.
 * Must never: grow logic; it is a leaf everyone may include.
 */
#include "principal.h"

const char *role_to_str(enum role role)
{
	switch (role) {
	case ROLE_OFFICE:
		return "office";
	case ROLE_WORKER:
		return "worker";
	case ROLE_SUPERVISOR:
		return "supervisor";
	case ROLE_ADMIN:
		return "admin";
	case ROLE_NONE:
		break;
	}
	return "none";
}
