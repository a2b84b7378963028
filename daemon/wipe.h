/*
 * wipe.h - memory that held request bodies and opened replies is wiped
 * before it goes back to the allocator.
 */
#ifndef REFD_WIPE_H
#define REFD_WIPE_H

#include <stddef.h>

/* Route jansson's and libevent's frees through wipe_free. Call once, first
 * thing in main, before any JSON value or libevent object exists. */
void wipe_install(void);
/* OPENSSL_cleanse the whole block (malloc_usable_size), then free it. Safe
 * on any pointer from malloc, so a plain free() elsewhere stays correct. */
void wipe_free(void *p);

#endif
