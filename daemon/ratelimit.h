/*
 * ratelimit.h - bounded, in-memory limit state: failed authentications and
 * open connections per address, requests per credential.
 */
#ifndef REFD_RATELIMIT_H
#define REFD_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

/* "off" or "N/DURATION" (N 1..1000000; DURATION 1s..1d, written 30s, 1m,
 * 1h, 1d). */
struct limit_spec {
	int on;
	uint32_t count;
	uint32_t window_s;
};
/* 0, or -1 with a reason (never the value) in err. */
int limit_spec_parse(const char *s, struct limit_spec *out, char *err, size_t errlen);

/* A fixed number of slots (sets of RL_WAYS), keyed by a 64-bit keyed hash. */
struct ratelimit;
struct ratelimit *ratelimit_new(uint32_t slots);
void ratelimit_free(struct ratelimit *rl);

/* The key of an address: IPv4 as itself, IPv6 by its /64 (one host owns a
 * whole /64 as easily as one address). 16 bytes. */
void ratelimit_addr_key(const struct sockaddr *sa, unsigned char key[16]);
/* Text of that key for the audit ("203.0.113.7", "2001:db8:1:2::/64"). */
void ratelimit_addr_text(const unsigned char key[16], char *out, size_t outlen);

/* Events in the current window of spec for key: when the limit is reached,
 * returns the seconds until the window passes (>= 1), else 0. */
uint32_t ratelimit_blocked(struct ratelimit *rl, const void *key, size_t keylen,
			   const struct limit_spec *spec, uint32_t now_s);
/* Count one event; returns ratelimit_blocked() after counting it. Untracked
 * (the slot set is full of open connections) counts nothing and returns 0. */
uint32_t ratelimit_hit(struct ratelimit *rl, const void *key, size_t keylen,
		       const struct limit_spec *spec, uint32_t now_s);
/* Connections: add one (returns 0, or -1 when max would be passed: not
 * added); release one added before. max 0 = no cap. */
int ratelimit_conn_add(struct ratelimit *rl, const void *key, size_t keylen, uint32_t max,
		       uint32_t now_s);
void ratelimit_conn_del(struct ratelimit *rl, const void *key, size_t keylen);
/* Slots in use (tests and metrics). */
uint32_t ratelimit_used(const struct ratelimit *rl);

#endif
