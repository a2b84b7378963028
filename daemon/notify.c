/*
 * notify.c - tells the service manager (systemd's Type=notify) how the daemon
 * is: READY=1, RELOADING=1, STOPPING=1, STATUS= and the WATCHDOG=1 keep-alive.
 *
 * Owns: the datagram socket to $NOTIFY_SOCKET (the documented sd_notify
 * protocol: one AF_UNIX datagram of NEWLINE-separated KEY=VALUE lines, a
 * leading '@' naming the abstract namespace) and the one timer that waits
 * for the pool, then refreshes STATUS= and sends WATCHDOG=1. The timer runs
 * on the event loop on purpose: a loop that no longer turns stops the
 * keep-alive, and the manager restarts the process.
 * Must never: block (the socket is non-blocking; a datagram that cannot be
 * sent is dropped); put anything but counts in STATUS=; be required (no
 * $NOTIFY_SOCKET: every call is a no-op).
 */
#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "app.h"
#include "db_pool.h"
#include "http_server.h"
#include "log.h"

#define NOTIFY_WAIT_READY_MS 100   /* how often the pool is checked before READY=1 */
#define NOTIFY_STATUS_MS 5000      /* STATUS= refresh without a watchdog */

struct notify {
	struct app *app;
	char *socket_name;          /* NULL: no manager listens */
	struct event *timer;
	long watchdog_ms;           /* half of WATCHDOG_USEC; 0 = no watchdog */
	int ready, stopping;
	struct timespec last_watchdog; /* when WATCHDOG=1 was last sent */
	char last_status[160];
};

static int notify_addr(const char *name, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(name);

	if (n == 0 || n >= sizeof(sa->sun_path) || (name[0] != '/' && name[0] != '@'))
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, name, n);
	if (name[0] == '@')
		sa->sun_path[0] = '\0';
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (name[0] == '/'));
	return 0;
}

int notify_send_to(const char *socket_name, const char *msg)
{
	struct sockaddr_un sa;
	socklen_t len;
	ssize_t w;
	int fd;

	if (!socket_name || notify_addr(socket_name, &sa, &len) < 0)
		return -1;
	/* A socket per message: messages are rare (one per STATUS period), and
	 * nothing stays open across a fork or a privilege change. */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	do
		w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	while (w < 0 && errno == EINTR);
	close(fd);
	return w == (ssize_t)strlen(msg) ? 0 : -1;
}

static void notify_send(struct notify *n, const char *msg)
{
	if (n && n->socket_name && notify_send_to(n->socket_name, msg) < 0)
		log_debug("notify.failed", "errno=%d", errno);
}

static int notify_connections(const struct app *app, int *in_flight)
{
	int c = 0, f = 0;
	const struct http_server *s[3] = { app->api, app->mtls, app->ops };

	for (int i = 0; i < 3; i++) {
		if (s[i]) {
			c += http_server_connections(s[i]);
			f += http_server_in_flight(s[i]);
		}
	}
	*in_flight = f;
	return c;
}

static void notify_status(struct notify *n, const char *prefix)
{
	struct db_pool_stats ps;
	char msg[256], st[160];
	int conns, in_flight;

	memset(&ps, 0, sizeof(ps));
	if (n->app->pool)
		db_pool_get_stats(n->app->pool, &ps);
	conns = notify_connections(n->app, &in_flight);
	snprintf(st, sizeof(st), "connections=%d in_flight=%d pool=%d/%d busy=%d queue=%d%s",
		 conns, in_flight, ps.connected, ps.size, ps.busy, ps.waiting,
		 n->stopping ? " draining" : "");
	if (!prefix && strcmp(st, n->last_status) == 0)
		return;
	memcpy(n->last_status, st, sizeof(st));
	snprintf(msg, sizeof(msg), "%sSTATUS=%s", prefix ? prefix : "", st);
	notify_send(n, msg);
}

static void notify_arm(struct notify *n)
{
	long ms = !n->ready ? NOTIFY_WAIT_READY_MS
		: n->watchdog_ms > 0 && n->watchdog_ms < NOTIFY_STATUS_MS ? n->watchdog_ms
		: NOTIFY_STATUS_MS;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(n->timer, &tv);
}

static void notify_tick(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;

	(void)fd;
	(void)what;
	if (!n->ready) {
		struct db_pool_stats ps;

		memset(&ps, 0, sizeof(ps));
		db_pool_get_stats(n->app->pool, &ps);
		if (ps.connected > 0 && !n->app->draining) {
			n->ready = 1;
			notify_status(n, "READY=1\n");
			log_info("notify.ready", "pool_connected=%d", ps.connected);
		}
	} else {
		notify_status(n, NULL);
	}
	if (n->watchdog_ms > 0) {
		struct timespec now;
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (now.tv_sec - n->last_watchdog.tv_sec) * 1000L +
		     (now.tv_nsec - n->last_watchdog.tv_nsec) / 1000000L;
		/* Before READY the timer ticks fast; the keep-alive keeps its pace. */
		if (ms >= n->watchdog_ms || n->last_watchdog.tv_sec == 0) {
			notify_send(n, "WATCHDOG=1");
			n->last_watchdog = now;
		}
	}
	notify_arm(n);
}

struct notify *notify_start(struct app *app)
{
	struct notify *n = calloc(1, sizeof(*n));
	const char *s = getenv("NOTIFY_SOCKET"), *wd = getenv("WATCHDOG_USEC");
	const char *wpid = getenv("WATCHDOG_PID");

	if (!n)
		return NULL;
	n->app = app;
	if (s && *s) {
		n->socket_name = strdup(s);
		if (!n->socket_name) {
			free(n);
			return NULL;
		}
	}
	/* WATCHDOG_PID, when set, names the process the watchdog is for. */
	if (wd && *wd && (!wpid || !*wpid || atol(wpid) == (long)getpid())) {
		long long usec = atoll(wd);

		if (usec > 0)
			n->watchdog_ms = (long)(usec / 2000) > 0 ? (long)(usec / 2000) : 1;
	}
	n->timer = evtimer_new(app->base, notify_tick, n);
	if (!n->timer) {
		free(n->socket_name);
		free(n);
		return NULL;
	}
	if (n->socket_name)
		log_info("notify", "watchdog_ms=%ld", n->watchdog_ms);
	/* With nobody listening the timer is not needed at all. */
	if (n->socket_name)
		event_active(n->timer, EV_TIMEOUT, 0);
	return n;
}

void notify_reloading(struct notify *n)
{
	struct timespec ts;
	char msg[96];

	if (!n)
		return;
	/* MONOTONIC_USEC lets a manager using Type=notify-reload match the
	 * reload with this message. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	notify_send(n, msg);
}

void notify_reloaded(struct notify *n)
{
	if (n && n->ready)
		notify_status(n, "READY=1\n");
}

void notify_stopping(struct notify *n)
{
	if (!n)
		return;
	n->stopping = 1;
	notify_status(n, "STOPPING=1\n");
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	if (n->timer)
		event_free(n->timer);
	free(n->socket_name);
	free(n);
}
