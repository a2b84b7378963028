/*
 * notify_listener.c - the service manager's side of sd_notify, for the tests:
 * binds an AF_UNIX datagram socket at PATH and prints every datagram it
 * receives as one line (its NEWLINE-separated assignments joined by " | "),
 * flushing after each, until killed.
 *
 *   notify_listener PATH
 *
 * Owns: the socket file at PATH (removed before binding).
 * Must never: answer anything (the protocol is one-way).
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_un sa;
	char buf[4096];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "usage: notify_listener PATH\n");
		return 2;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, argv[1]);
	unlink(argv[1]);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("notify_listener");
		return 1;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n < 0)
			return 1;
		buf[n] = '\0';
		for (char *p = buf; *p; p++) {
			if (*p == '\n') {
				fputs(" | ", stdout);
				continue;
			}
			fputc(*p, stdout);
		}
		fputc('\n', stdout);
		fflush(stdout);
	}
}
