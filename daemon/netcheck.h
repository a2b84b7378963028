/*
 * netcheck.h - is a network address or URL host inside the deployment's
 * network? Used to keep webhooks from reaching loopback, private, link-local,
 * unique-local and unspecified addresses (SSRF).
 */
#ifndef REFD_NETCHECK_H
#define REFD_NETCHECK_H

#include <stddef.h>

struct sockaddr;

/* 1 when the address is loopback, private (RFC 1918, CGNAT), link-local,
 * unique-local, unspecified, multicast, reserved or broadcast (IPv4-mapped
 * and NAT64 IPv6 forms judged by the IPv4 inside); 0 when public; -1 when
 * not an IPv4/IPv6 address. */
int netcheck_sockaddr_internal(const struct sockaddr *sa);
/* The same for a numeric host text ("10.0.0.1", "::1"). Returns -1 when the
 * text is not a canonical IP literal. */
int netcheck_ip_internal(const char *host);

enum netcheck_host {
	NC_HOST_NAME = 0,     /* a DNS name: judge its addresses when resolved */
	NC_HOST_PUBLIC_IP,    /* a public IP literal */
	NC_HOST_INTERNAL,     /* an internal IP literal or a loopback name (localhost) */
	NC_HOST_BAD,          /* not usable: an ambiguous numeric form (010.1, 2130706433,
	                         0x7f.1), empty, or too long */
};
/* Judge the host part of an https URL (brackets of IPv6 literals allowed). */
enum netcheck_host netcheck_host(const char *host, size_t len);
/* Extract the host of an https URL and judge it; NC_HOST_BAD when the URL
 * does not parse. */
enum netcheck_host netcheck_url(const char *url);

#endif
