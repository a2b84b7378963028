/*
 * privdrop.c - a daemon started as root (outside systemd, which starts it as
 * its User= directly) gives root up after binding and reading its keys.
 *
 * Owns: the switch to [server] user: supplementary groups, gid, uid, in that
 * order, and the proof that root cannot be regained.
 * Must never: let the daemon go on as root (no user, an unknown one, uid 0,
 * or any step failing is an error the caller stops on); look the user up
 * anywhere but the system's password database.
 */
#include "privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int privdrop_to(const char *user, char *err, size_t errlen)
{
	struct passwd *pw;
	gid_t gid;
	uid_t uid;

	if (geteuid() != 0 && getuid() != 0)
		return 0;
	if (!user) {
		snprintf(err, errlen, "started as root without [server] user: refusing to run as "
			 "root");
		return -1;
	}
	errno = 0;
	pw = getpwnam(user);
	if (!pw) {
		snprintf(err, errlen, "server.user \"%s\": %s", user,
			 errno ? strerror(errno) : "no such user");
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "server.user \"%s\" is root: refusing to run as root", user);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0) {
		snprintf(err, errlen, "switching to user \"%s\": %s", user, strerror(errno));
		return -1;
	}
	/* A saved set-user-id of 0 would let the process return to root. */
	if (setuid(0) == 0 || geteuid() == 0 || getuid() == 0 || getegid() != gid) {
		snprintf(err, errlen, "switching to user \"%s\": root could be regained", user);
		return -1;
	}
	return 1;
}
