/*
 * notify.h - the service manager's readiness protocol (sd_notify).
 */
#ifndef REFD_NOTIFY_H
#define REFD_NOTIFY_H

struct app;
struct notify;

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC once. Returns an object even when
 * no service manager listens (every call is then a no-op), NULL only when
 * out of memory. Sends READY=1 from the loop once the pool has a connection
 * (the listeners are bound and the schema was checked before this call). */
struct notify *notify_start(struct app *app);
void notify_reloading(struct notify *n);   /* RELOADING=1, before a SIGHUP reload */
void notify_reloaded(struct notify *n);    /* READY=1 after it, whatever its outcome */
void notify_stopping(struct notify *n);    /* STOPPING=1 at the start of the drain */
void notify_free(struct notify *n);

/* One datagram to the socket named like $NOTIFY_SOCKET (a path, or "@name"
 * for the abstract namespace). Returns 0 when sent. */
int notify_send_to(const char *socket_name, const char *msg);

#endif
