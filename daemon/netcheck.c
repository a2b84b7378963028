/*
 * netcheck.c - which addresses are inside: the check behind
 * [webhooks] allow_private_targets, at registration (the URL's host) and at
 * delivery (every address its name resolves to, so a name that later
 * resolves inside, DNS rebinding, is caught where it matters).
 *
 * Owns: the list of internal ranges, and the judgement of URL host texts.
 * Must never: resolve anything (callers resolve on the loop, asynchronously),
 * or treat a numeric form the C library reads differently from us (octal,
 * hex, single-number IPv4) as a name.
 */
#include "netcheck.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/http.h>

#define NC_HOST_MAX 255

static int v4_internal(uint32_t a)
{
	static const struct { uint32_t net, mask; } r[] = {
		{ 0x00000000u, 0xff000000u },  /* 0.0.0.0/8 this network, unspecified */
		{ 0x0a000000u, 0xff000000u },  /* 10/8 */
		{ 0x64400000u, 0xffc00000u },  /* 100.64/10 shared (carrier NAT) */
		{ 0x7f000000u, 0xff000000u },  /* 127/8 loopback */
		{ 0xa9fe0000u, 0xffff0000u },  /* 169.254/16 link-local (cloud metadata) */
		{ 0xac100000u, 0xfff00000u },  /* 172.16/12 */
		{ 0xc0000000u, 0xffffff00u },  /* 192.0.0/24 protocol assignments */
		{ 0xc0a80000u, 0xffff0000u },  /* 192.168/16 */
		{ 0xc6120000u, 0xfffe0000u },  /* 198.18/15 benchmarking */
		{ 0xe0000000u, 0xf0000000u },  /* 224/4 multicast */
		{ 0xf0000000u, 0xf0000000u },  /* 240/4 reserved, broadcast */
	};

	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++)
		if ((a & r[i].mask) == r[i].net)
			return 1;
	return 0;
}

static int v6_internal(const unsigned char *b)
{
	static const unsigned char zero[16];
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	static const unsigned char compat[12];

	if (memcmp(b, zero, 15) == 0 && (b[15] == 0 || b[15] == 1))
		return 1;                          /* :: and ::1 */
	if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0 ||
	    memcmp(b, compat, 12) == 0)            /* an IPv4 inside: judge that */
		return v4_internal((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
				   (uint32_t)b[14] << 8 | b[15]);
	if ((b[0] & 0xfe) == 0xfc)
		return 1;                          /* fc00::/7 unique-local */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
		return 1;                          /* fe80::/10 link-local */
	if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0)
		return 1;                          /* fec0::/10 old site-local */
	if (b[0] == 0xff)
		return 1;                          /* multicast */
	if (b[0] == 0x20 && b[1] == 0x02)          /* 2002::/16 6to4: its IPv4 */
		return v4_internal((uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 |
				   (uint32_t)b[4] << 8 | b[5]);
	return 0;
}

int netcheck_sockaddr_internal(const struct sockaddr *sa)
{
	if (!sa)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)(const void *)sa;
		return v4_internal(ntohl(s->sin_addr.s_addr));
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)(const void *)sa;
		return v6_internal(s->sin6_addr.s6_addr);
	}
	return -1;
}

int netcheck_ip_internal(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!host)
		return -1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return v4_internal(ntohl(a4.s_addr));
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return v6_internal(a6.s6_addr);
	return -1;
}

/* A name made only of digits, dots and hex markers is a number to some
 * resolver (inet_aton reads "2130706433", "0x7f.1", "0177.0.0.1" as
 * 127.0.0.1): never a name we pass on. */
static int looks_numeric(const char *h)
{
	struct in_addr a;
	const char *last = strrchr(h, '.'), *p;
	int digits;

	if (inet_aton(h, &a) != 0)
		return 1;
	/* The last label of a real name is never all digits. */
	p = last ? last + 1 : h;
	digits = *p != '\0';
	for (; *p; p++)
		if (!isdigit((unsigned char)*p))
			digits = 0;
	return digits;
}

static int is_loopback_name(const char *h)
{
	size_t n = strlen(h);

	if (n > 0 && h[n - 1] == '.')
		n--;
	if (n == 9 && strncasecmp(h, "localhost", 9) == 0)
		return 1;
	if (n > 10 && strncasecmp(h + n - 10, ".localhost", 10) == 0)
		return 1;
	if (n == 21 && strncasecmp(h, "localhost.localdomain", 21) == 0)
		return 1;
	return 0;
}

enum netcheck_host netcheck_host(const char *host, size_t len)
{
	char h[NC_HOST_MAX + 1];
	int in;

	if (!host || len == 0)
		return NC_HOST_BAD;
	if (host[0] == '[') {
		if (len < 3 || host[len - 1] != ']')
			return NC_HOST_BAD;
		host++;
		len -= 2;
	}
	if (len > NC_HOST_MAX || memchr(host, '\0', len))
		return NC_HOST_BAD;
	memcpy(h, host, len);
	h[len] = '\0';
	if (len > 1 && h[len - 1] == '.' && !strchr(h, ':'))  /* the root label: same host */
		h[--len] = '\0';
	if (strchr(h, '%'))                        /* zone ids: link-local by definition */
		return NC_HOST_INTERNAL;
	in = netcheck_ip_internal(h);
	if (in == 1)
		return NC_HOST_INTERNAL;
	if (in == 0)
		return NC_HOST_PUBLIC_IP;
	if (strchr(h, ':'))
		return NC_HOST_BAD;
	if (looks_numeric(h))
		return NC_HOST_BAD;
	if (is_loopback_name(h))
		return NC_HOST_INTERNAL;
	return NC_HOST_NAME;
}

enum netcheck_host netcheck_url(const char *url)
{
	struct evhttp_uri *u = url ? evhttp_uri_parse_with_flags(url, 0) : NULL;
	const char *host;
	enum netcheck_host rc = NC_HOST_BAD;

	if (!u)
		return NC_HOST_BAD;
	host = evhttp_uri_get_host(u);
	if (host)
		rc = netcheck_host(host, strlen(host));
	evhttp_uri_free(u);
	return rc;
}
