/*
 * fuzz_netcheck.c - libFuzzer target for the webhook target checks of
 * netcheck.h: URL host judgement and IP literal classification.
 *
 * Owns: nothing but the fuzz harness. Must never: print the input or write
 * files; every finding is a sanitizer report or a failed invariant (abort).
 *
 * Invariants:
 * - an unbracketed host judged a public IP literal is one netcheck_ip_internal
 *   calls public, and one it calls internal is judged internal;
 * - bracketing a host ("[" h "]") never turns an internal judgement public;
 * - a URL "https://" h "/x" is never judged more permissive than h itself
 *   (NC_HOST_INTERNAL or NC_HOST_BAD stay refused);
 * - a name or IPv4 host with a trailing root dot is judged like the host
 *   without it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int refused(enum netcheck_host h)
{
	return h == NC_HOST_INTERNAL || h == NC_HOST_BAD;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char host[300], buf[320];
	enum netcheck_host h, hb, hu, hd;
	int ip;

	if (size == 0 || size > 255 || memchr(data, '\0', size))
		return 0;
	memcpy(host, data, size);
	host[size] = '\0';

	h = netcheck_host(host, size);
	ip = netcheck_ip_internal(host);
	if (host[0] != '[' && host[size - 1] != '.' && h == NC_HOST_PUBLIC_IP && ip != 0)
		abort();
	if (ip == 1 && h != NC_HOST_INTERNAL)
		abort();

	buf[0] = '[';
	memcpy(buf + 1, host, size);
	buf[size + 1] = ']';
	buf[size + 2] = '\0';
	hb = netcheck_host(buf, size + 2);
	if (h == NC_HOST_INTERNAL && hb == NC_HOST_PUBLIC_IP)
		abort();

	if (!strpbrk(host, "/?#@[]% \t\r\n\\")) {
		memcpy(buf, "https://", 8);
		memcpy(buf + 8, host, size);
		memcpy(buf + 8 + size, "/x", 3);
		hu = netcheck_url(buf);
		if (refused(h) && !refused(hu) && strchr(host, ':') == NULL)
			abort();
	}

	if (size < 250 && !strchr(host, ':') && host[0] != '[' && host[size - 1] != '.') {
		memcpy(buf, host, size);
		buf[size] = '.';
		buf[size + 1] = '\0';
		hd = netcheck_host(buf, size + 1);
		if (h != NC_HOST_BAD && hd != h)
			abort();
	}
	return 0;
}
