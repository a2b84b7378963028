/*
 * wipe.c - a wiping free for jansson and libevent: request bodies pass
 * through evbuffers and JSON values, and replies carry opened contacts and
 * notes through both; every such block is cleansed before it is freed, so
 * client data does not linger in freed heap for a later bug (or a core
 * dump) to find.
 *
 * Owns: the three allocation hooks.
 * Must never: change the allocator itself (blocks stay plain malloc blocks,
 * so code that frees them with free() is still correct, only not wiped).
 */
#include "wipe.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

/* explicit_bzero, not OPENSSL_cleanse: both are kept by the compiler, but
 * glibc's is its vectorised memset, while OpenSSL's is a plain store loop.
 * Every evbuffer chain a request passes through is freed here (4 KiB and
 * more each): the loop was 3 % of the daemon's time on GET /healthz. */
void wipe_free(void *p)
{
	if (!p)
		return;
	explicit_bzero(p, malloc_usable_size(p));
	free(p);
}

/* realloc would leave the old block unwiped when it moves: copy instead. */
static void *wipe_realloc(void *p, size_t n)
{
	void *q;
	size_t old;

	if (!p)
		return malloc(n);
	if (n == 0) {
		wipe_free(p);
		return NULL;
	}
	old = malloc_usable_size(p);
	if (n <= old)
		return p;
	q = malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, old);
	wipe_free(p);
	return q;
}

void wipe_install(void)
{
	json_set_alloc_funcs(malloc, wipe_free);
	event_set_mem_functions(malloc, wipe_realloc, wipe_free);
}
