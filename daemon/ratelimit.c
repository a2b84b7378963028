/*
 * ratelimit.c - limit state in memory: bounded in size, O(1) per event.
 *
 * The table is a fixed array of sets, RL_WAYS entries each. A key (an
 * address, a credential id) is hashed with SipHash-2-4 under a random key
 * drawn at start, so nobody outside can aim many keys at one set; the set
 * is searched (RL_WAYS entries: constant work) and, for a new key, the
 * least recently seen entry that holds no open connection is reused. State
 * is lost on restart and not shared between daemons: limits are per daemon
 * (SECURITY.md says so). Counters are fixed windows starting at a key's
 * first event, so "until the window passes" is exact and cheap.
 *
 * Owns: the table and its hash key; the limit spec parser ("20/1m").
 * Must never: allocate after ratelimit_new (no growth under attack); keep
 * more of a key than its 64-bit hash (no addresses or credentials in memory
 * beyond the connection that carries them).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/rand.h>

#include "ratelimit.h"

#define RL_WAYS 8

struct rl_entry {
	uint64_t tag;           /* keyed hash of the key; 0 = free */
	uint32_t window_start;  /* seconds (monotonic) */
	uint32_t count;         /* events in the window */
	uint32_t last_seen;
	uint32_t conns;         /* open connections */
};

struct ratelimit {
	struct rl_entry *e;
	uint32_t nsets;
	uint64_t k0, k1;
};

/* ---- the limit spec ---------------------------------------------------- */

int limit_spec_parse(const char *s, struct limit_spec *out, char *err, size_t errlen)
{
	unsigned long long n = 0, d = 0, mult;
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	if (!s) {
		snprintf(err, errlen, "missing value");
		return -1;
	}
	if (strcmp(s, "off") == 0)
		return 0;
	if (s[0] < '1' || s[0] > '9')
		goto bad;
	while (s[i] >= '0' && s[i] <= '9') {
		n = n * 10 + (unsigned)(s[i++] - '0');
		if (n > 1000000)
			goto bad;
	}
	if (s[i++] != '/')
		goto bad;
	if (s[i] < '1' || s[i] > '9')
		goto bad;
	while (s[i] >= '0' && s[i] <= '9') {
		d = d * 10 + (unsigned)(s[i++] - '0');
		if (d > 86400)
			goto bad;
	}
	switch (s[i]) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	default: goto bad;
	}
	if (s[i + 1] != '\0' || d * mult > 86400)
		goto bad;
	out->on = 1;
	out->count = (uint32_t)n;
	out->window_s = (uint32_t)(d * mult);
	return 0;
bad:
	snprintf(err, errlen, "must be off or COUNT/DURATION (COUNT 1-1000000, DURATION 1s-1d "
			      "written like 30s, 1m, 1h)");
	return -1;
}

/* ---- SipHash-2-4 ------------------------------------------------------- */

#define RL_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define RL_ROUND()                                                                     \
	do {                                                                           \
		v0 += v1; v1 = RL_ROTL(v1, 13); v1 ^= v0; v0 = RL_ROTL(v0, 32);       \
		v2 += v3; v3 = RL_ROTL(v3, 16); v3 ^= v2;                              \
		v0 += v3; v3 = RL_ROTL(v3, 21); v3 ^= v0;                              \
		v2 += v1; v1 = RL_ROTL(v1, 17); v1 ^= v2; v2 = RL_ROTL(v2, 32);       \
	} while (0)

static uint64_t rl_hash(const struct ratelimit *rl, const unsigned char *in, size_t len)
{
	uint64_t v0 = rl->k0 ^ 0x736f6d6570736575ULL, v1 = rl->k1 ^ 0x646f72616e646f6dULL;
	uint64_t v2 = rl->k0 ^ 0x6c7967656e657261ULL, v3 = rl->k1 ^ 0x7465646279746573ULL;
	uint64_t m, b = (uint64_t)len << 56;
	size_t i, left = len & 7;

	for (i = 0; i + 8 <= len; i += 8) {
		m = 0;
		for (int j = 7; j >= 0; j--)
			m = m << 8 | in[i + (size_t)j];
		v3 ^= m;
		RL_ROUND();
		RL_ROUND();
		v0 ^= m;
	}
	for (size_t j = 0; j < left; j++)
		b |= (uint64_t)in[i + j] << (8 * j);
	v3 ^= b;
	RL_ROUND();
	RL_ROUND();
	v0 ^= b;
	v2 ^= 0xff;
	RL_ROUND();
	RL_ROUND();
	RL_ROUND();
	RL_ROUND();
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table ---------------------------------------------------------- */

struct ratelimit *ratelimit_new(uint32_t slots)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	unsigned char k[16];

	if (!rl)
		return NULL;
	rl->nsets = slots / RL_WAYS ? slots / RL_WAYS : 1;
	rl->e = calloc((size_t)rl->nsets * RL_WAYS, sizeof(*rl->e));
	if (!rl->e || RAND_bytes(k, sizeof(k)) != 1) {
		ratelimit_free(rl);
		return NULL;
	}
	memcpy(&rl->k0, k, 8);
	memcpy(&rl->k1, k + 8, 8);
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->e);
	free(rl);
}

/* The entry of key; with create, a new one (or NULL when every entry of
 * its set holds open connections). */
static struct rl_entry *rl_find(struct ratelimit *rl, const void *key, size_t keylen,
				int create, uint32_t now_s)
{
	uint64_t tag = rl_hash(rl, key, keylen);
	struct rl_entry *set, *victim = NULL;

	if (tag == 0)
		tag = 1;
	set = rl->e + (size_t)(tag % rl->nsets) * RL_WAYS;
	for (int i = 0; i < RL_WAYS; i++) {
		if (set[i].tag == tag)
			return &set[i];
	}
	if (!create)
		return NULL;
	for (int i = 0; i < RL_WAYS; i++) {
		struct rl_entry *c = &set[i];

		if (c->tag == 0) {
			victim = c;
			break;
		}
		if (c->conns == 0 && (!victim || c->last_seen < victim->last_seen))
			victim = c;
	}
	if (!victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->tag = tag;
	victim->window_start = now_s;
	victim->last_seen = now_s;
	return victim;
}

static uint32_t rl_left(struct rl_entry *e, const struct limit_spec *spec, uint32_t now_s)
{
	if (now_s - e->window_start >= spec->window_s) {
		e->window_start = now_s;
		e->count = 0;
		return 0;
	}
	if (e->count < spec->count)
		return 0;
	return spec->window_s - (now_s - e->window_start);
}

uint32_t ratelimit_blocked(struct ratelimit *rl, const void *key, size_t keylen,
			   const struct limit_spec *spec, uint32_t now_s)
{
	struct rl_entry *e;

	if (!rl || !spec->on || !(e = rl_find(rl, key, keylen, 0, now_s)))
		return 0;
	return rl_left(e, spec, now_s);
}

uint32_t ratelimit_hit(struct ratelimit *rl, const void *key, size_t keylen,
		       const struct limit_spec *spec, uint32_t now_s)
{
	struct rl_entry *e;

	if (!rl || !spec->on || !(e = rl_find(rl, key, keylen, 1, now_s)))
		return 0;
	e->last_seen = now_s;
	rl_left(e, spec, now_s);        /* a passed window starts afresh */
	if (e->count < UINT32_MAX)
		e->count++;
	return rl_left(e, spec, now_s);
}

int ratelimit_conn_add(struct ratelimit *rl, const void *key, size_t keylen, uint32_t max,
		       uint32_t now_s)
{
	struct rl_entry *e;

	if (!rl || max == 0)
		return 0;
	e = rl_find(rl, key, keylen, 1, now_s);
	if (!e)
		return -1;      /* every entry of the set is a busy address: refuse */
	if (e->conns >= max)
		return -1;
	e->conns++;
	e->last_seen = now_s;
	return 0;
}

void ratelimit_conn_del(struct ratelimit *rl, const void *key, size_t keylen)
{
	struct rl_entry *e;

	if (!rl || !(e = rl_find(rl, key, keylen, 0, 0)))
		return;
	if (e->conns > 0)
		e->conns--;
}

uint32_t ratelimit_used(const struct ratelimit *rl)
{
	uint32_t n = 0;

	for (size_t i = 0; i < (size_t)rl->nsets * RL_WAYS; i++)
		n += rl->e[i].tag != 0;
	return n;
}

/* ---- addresses ---------------------------------------------------------- */

void ratelimit_addr_key(const struct sockaddr *sa, unsigned char key[16])
{
	memset(key, 0, 16);
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		key[10] = key[11] = 0xff;
		memcpy(key + 12, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

		memcpy(key, &in6->sin6_addr, 16);
		if (memcmp(key, mapped, 12) != 0)
			memset(key + 8, 0, 8);  /* the /64 */
	}
}

void ratelimit_addr_text(const unsigned char key[16], char *out, size_t outlen)
{
	static const unsigned char mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char buf[INET6_ADDRSTRLEN];

	if (memcmp(key, mapped, 12) == 0) {
		inet_ntop(AF_INET, key + 12, buf, sizeof(buf));
		snprintf(out, outlen, "%s", buf);
	} else {
		inet_ntop(AF_INET6, key, buf, sizeof(buf));
		snprintf(out, outlen, "%s/64", buf);
	}
}
