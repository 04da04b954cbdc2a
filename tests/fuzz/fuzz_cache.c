// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: a sequence of px_cache operations decoded from the
 * input, each checked against a small model of memcached's semantics.
 *
 * The model is exact because the cache tells it what it removes: the
 * eviction listener reports every item the policy drops, and the clock is
 * the fuzzer's (struct px_cache_hooks), so expiry and delayed flushes
 * happen exactly when the model expects them.  A mismatch in a return
 * code, a value, the client flags or the cas id aborts with the operation
 * that disagreed.  The budget is small (1 MiB) and values go up to 24 KiB
 * over 48 keys, so evictions, oversized values and append growth are all
 * reached.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <patinox/cache.h>

#define NKEYS      48
#define ITEM_MAX   (16u << 10)
#define VAL_MAX    (24u << 10)
#define BUDGET     (1u << 20)
#define START_TIME 1700000000

struct mitem {
	int live;
	uint8_t val[VAL_MAX];
	size_t vlen;
	uint32_t flags;
	int64_t exptime; /* absolute, 0 never */
	uint64_t cas;
};

static struct mitem model[NKEYS];
static int64_t now;
static int64_t flush_at; /* pending delayed flush, 0 none */
static uint64_t last_cas;
static uint8_t out[VAL_MAX + 64];

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t
take8(struct in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint16_t
take16(struct in *in)
{
	return (uint16_t)(take8(in) | take8(in) << 8);
}

static void
fail(const char *what, int key, long got, long want)
{
	fprintf(stderr, "fuzz_cache: %s on key %d: got %ld, want %ld\n", what,
		key, got, want);
	abort();
}

static int64_t
clock_now(void *arg)
{
	(void)arg;
	return now;
}

static const struct px_cache_hooks hooks = {.now = clock_now};

static int
key_index(const void *key, size_t klen)
{
	int k = 0;

	if (klen != 3 || memcmp(key, "k", 1))
		return -1;
	k = (((const char *)key)[1] - '0') * 10 + ((const char *)key)[2] - '0';
	return k >= 0 && k < NKEYS ? k : -1;
}

static void
on_remove(void *arg, const void *key, size_t klen, enum px_cache_cause cause)
{
	int k = key_index(key, klen);

	(void)arg;
	if (k < 0)
		fail("listener reported an unknown key", k, (long)klen, 3);
	if (cause == PX_CACHE_CAUSE_EVICTED)
		model[k].live = 0;
}

static void
key_name(int k, char name[4])
{
	name[0] = 'k';
	name[1] = (char)('0' + k / 10);
	name[2] = (char)('0' + k % 10);
	name[3] = 0;
}

/* The model's view of liveness at the current time. */
static int
mlive(int k)
{
	struct mitem *m = &model[k];

	if (m->live && m->exptime && m->exptime <= now)
		m->live = 0;
	return m->live;
}

static void
apply_due_flush(void)
{
	if (!flush_at || now < flush_at)
		return;
	for (int k = 0; k < NKEYS; k++)
		model[k].live = 0;
	flush_at = 0;
}

static int64_t
ttl_of(uint8_t b)
{
	switch (b & 7) {
	case 0:
	case 1:
	case 2:
		return 0;
	case 3:
		return -1;
	case 4:
		return now + 3; /* absolute, over 30 days: a Unix time */
	default:
		return 1 + (b >> 3) % 8;
	}
}

static int64_t
abs_exp(int64_t ttl)
{
	if (ttl == 0)
		return 0;
	if (ttl > PX_CACHE_TTL_RELATIVE_MAX)
		return ttl;
	return now + ttl;
}

static void
fill(uint8_t *v, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		v[i] = (uint8_t)(seed + i * 31);
}

static void
new_cas(int k, uint64_t cas)
{
	if (cas <= last_cas)
		fail("cas id did not grow", k, (long)cas, (long)last_cas + 1);
	last_cas = cas;
	model[k].cas = cas;
}

static int
expect_store(int k, enum px_cache_mode mode, size_t vlen, uint64_t cas)
{
	int live = mlive(k);

	/* The value's own size is checked before the mode's condition. */
	if (vlen > ITEM_MAX)
		return -E2BIG;
	switch (mode) {
	case PX_CACHE_ADD:
		if (live)
			return -EEXIST;
		break;
	case PX_CACHE_REPLACE:
	case PX_CACHE_APPEND:
	case PX_CACHE_PREPEND:
		if (!live)
			return -ENOENT;
		if (cas && model[k].cas != cas)
			return -EEXIST;
		break;
	case PX_CACHE_CAS:
		if (!live)
			return -ENOENT;
		if (model[k].cas != cas)
			return -EEXIST;
		break;
	default:
		break;
	}
	if (mode == PX_CACHE_APPEND || mode == PX_CACHE_PREPEND)
		vlen += model[k].vlen;
	return vlen > ITEM_MAX ? -E2BIG : 0;
}

static void
model_store(int k, enum px_cache_mode mode, const uint8_t *v, size_t vlen,
	    uint32_t flags, int64_t ttl, uint64_t cas)
{
	struct mitem *m = &model[k];
	bool dead = ttl < 0 || (ttl > PX_CACHE_TTL_RELATIVE_MAX && ttl <= now);

	/* A store that is dead on arrival only removes: no cas id. */
	if (!dead || mode == PX_CACHE_APPEND || mode == PX_CACHE_PREPEND)
		new_cas(k, cas);
	if (mode == PX_CACHE_APPEND) {
		memcpy(m->val + m->vlen, v, vlen);
		m->vlen += vlen;
		return;
	}
	if (mode == PX_CACHE_PREPEND) {
		memmove(m->val + vlen, m->val, m->vlen);
		memcpy(m->val, v, vlen);
		m->vlen += vlen;
		return;
	}
	m->live = ttl >= 0 && (ttl <= PX_CACHE_TTL_RELATIVE_MAX || ttl > now);
	memcpy(m->val, v, vlen);
	m->vlen = vlen;
	m->flags = flags;
	m->exptime = abs_exp(ttl);
}

static void
op_store(struct px_cache *c, struct in *in, int k, const char *name)
{
	static uint8_t v[VAL_MAX];
	enum px_cache_mode mode = (enum px_cache_mode)(take8(in) % 6);
	uint16_t l = take16(in);
	size_t vlen = l & 0x8000 ? (size_t)(l & 0x7fff) % VAL_MAX : l & 63;
	uint32_t flags = take8(in) & 1 ? 0 : 0xdeadbeef;
	int64_t ttl = ttl_of(take8(in));
	uint64_t cas = take8(in) & 3 ? model[k].cas : last_cas + 7;
	uint64_t got_cas = 0;
	int want, rc;

	fill(v, vlen, take8(in));
	want = expect_store(k, mode, vlen, cas);
	rc = px_cache_store(c, mode, name, 3, v, vlen, flags, ttl, cas,
			    &got_cas);
	if (rc != want)
		fail("store mode result", k, rc, want);
	if (rc == 0)
		model_store(k, mode, v, vlen, flags, ttl, got_cas);
}

static void
check_value(int k, int rc, const struct px_cache_info *info)
{
	struct mitem *m = &model[k];
	int want = mlive(k) ? 0 : -ENOENT;

	if (rc != want)
		fail("get result", k, rc, want);
	if (rc)
		return;
	if (info->vlen != m->vlen || memcmp(out, m->val, m->vlen))
		fail("get value", k, (long)info->vlen, (long)m->vlen);
	if (info->flags != m->flags)
		fail("get flags", k, (long)info->flags, (long)m->flags);
	if (info->cas != m->cas)
		fail("get cas", k, (long)info->cas, (long)m->cas);
	if (info->exptime != m->exptime)
		fail("get exptime", k, (long)info->exptime, (long)m->exptime);
}

static void
op_get(struct px_cache *c, int k, const char *name)
{
	struct px_cache_info info = {0};
	int rc = px_cache_get(c, name, 3, out, sizeof(out), &info);

	check_value(k, rc, &info);
}

static void
op_ref(struct px_cache *c, int k, const char *name)
{
	struct px_cache_ref ref;
	struct px_cache_info info = {0};
	int rc = px_cache_get_ref(c, name, 3, &ref);

	if (rc == 0) {
		memcpy(out, ref.value, ref.vlen);
		info.vlen = ref.vlen;
		info.flags = ref.flags;
		info.cas = ref.cas;
		info.exptime = ref.exptime;
		px_cache_ref_put(c, &ref);
	}
	check_value(k, rc, &info);
}

static void
op_touch(struct px_cache *c, struct in *in, int k, const char *name, int gat)
{
	struct px_cache_info info = {0};
	int64_t ttl = ttl_of(take8(in));
	int rc;

	if (gat) {
		/*
		 * gat reports the item as touched, with its new expiry; a
		 * negative TTL expires it only after it is returned.
		 */
		if (ttl >= 0 && mlive(k))
			model[k].exptime = abs_exp(ttl);
		rc = px_cache_gat(c, name, 3, ttl, out, sizeof(out), &info);
		if (ttl < 0 && rc == 0)
			info.exptime = model[k].exptime;
		check_value(k, rc, &info);
	} else {
		rc = px_cache_touch(c, name, 3, ttl);
		if (rc != (mlive(k) ? 0 : -ENOENT))
			fail("touch result", k, rc, mlive(k) ? 0 : -ENOENT);
	}
	if (rc == 0) {
		model[k].exptime = abs_exp(ttl);
		model[k].live =
		    ttl >= 0 && (ttl <= PX_CACHE_TTL_RELATIVE_MAX || ttl > now);
	}
}

static void
op_delete(struct px_cache *c, int k, const char *name)
{
	int want = mlive(k) ? 0 : -ENOENT;
	int rc = px_cache_delete(c, name, 3);

	if (rc != want)
		fail("delete result", k, rc, want);
	model[k].live = 0;
}

/* The cache's number rule: digits, then only spaces, fitting 64 bits. */
static int
mnumber(int k, uint64_t *v)
{
	struct mitem *m = &model[k];
	size_t i = 0;

	*v = 0;
	if (!m->vlen || m->val[0] < '0' || m->val[0] > '9')
		return -EINVAL;
	for (; i < m->vlen && m->val[i] >= '0' && m->val[i] <= '9'; i++) {
		unsigned d = (unsigned)(m->val[i] - '0');

		if (*v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		*v = *v * 10 + d;
	}
	for (; i < m->vlen; i++)
		if (m->val[i] != ' ')
			return -EINVAL;
	return 0;
}

static void
op_arith(struct px_cache *c, struct in *in, int k, const char *name)
{
	int incr = take8(in) & 1;
	uint64_t delta = take8(in) & 1 ? take16(in) : UINT64_MAX - take8(in);
	uint64_t v, got = 0, cas = 0;
	int want, rc;
	char num[24];

	want = mlive(k) ? mnumber(k, &v) : -ENOENT;
	rc = incr ? px_cache_incr(c, name, 3, delta, &got, &cas)
		  : px_cache_decr(c, name, 3, delta, &got, &cas);
	if (rc != want)
		fail("incr/decr result", k, rc, want);
	if (rc)
		return;
	v = incr ? v + delta : (v > delta ? v - delta : 0);
	if (got != v)
		fail("incr/decr number", k, (long)got, (long)v);
	new_cas(k, cas);
	model[k].vlen =
	    (size_t)snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	memcpy(model[k].val, num, model[k].vlen);
}

/* A value that incr accepts, so arithmetic is reached often. */
static void
op_set_number(struct px_cache *c, struct in *in, int k, const char *name)
{
	char num[32];
	uint64_t cas = 0;
	int n = snprintf(num, sizeof(num), "%u%s", take16(in),
			 take8(in) & 1 ? "  " : "");
	int rc = px_cache_store(c, PX_CACHE_SET, name, 3, num, (size_t)n, 0, 0,
				0, &cas);

	if (rc != 0)
		fail("set of a number", k, rc, 0);
	model_store(k, PX_CACHE_SET, (const uint8_t *)num, (size_t)n, 0, 0,
		    cas);
}

static void
op_flush(struct px_cache *c, struct in *in)
{
	int64_t delay = take8(in) & 1 ? 0 : take8(in) % 5;

	px_cache_flush_all(c, delay);
	if (delay > 0) {
		flush_at = now + delay;
		return;
	}
	flush_at = 0;
	for (int k = 0; k < NKEYS; k++)
		model[k].live = 0;
}

static void
run_op(struct px_cache *c, struct in *in)
{
	uint8_t op = take8(in);
	int k = take8(in) % NKEYS;
	char name[4];

	key_name(k, name);
	apply_due_flush();
	if (getenv("FUZZ_TRACE"))
		fprintf(stderr, "t=%lld op %d key %d\n",
			(long long)(now - START_TIME), op % 12, k);
	switch (op % 12) {
	case 0:
	case 1:
	case 2:
		op_store(c, in, k, name);
		break;
	case 3:
		op_get(c, k, name);
		break;
	case 4:
		op_ref(c, k, name);
		break;
	case 5:
		op_touch(c, in, k, name, take8(in) & 1);
		break;
	case 6:
		op_delete(c, k, name);
		break;
	case 7:
		op_arith(c, in, k, name);
		break;
	case 8:
		op_set_number(c, in, k, name);
		break;
	case 9:
		if (take8(in) % 8 == 0)
			op_flush(c, in);
		break;
	case 10:
		now += 1 + take8(in) % 4;
		break;
	default:
		px_cache_maintain(c, take8(in));
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct px_cache_opts o;
	struct px_cache *c;
	struct in in = {data, size};
	int rc;

	memset(model, 0, sizeof(model));
	now = START_TIME;
	flush_at = 0;
	last_cas = 0;
	px_cache_opts_init(&o);
	o.policy = (enum px_cache_policy)(1 + take8(&in) % 3);
	o.item_max = ITEM_MAX;
	o.hooks = &hooks;
	o.listener = on_remove;
	o.region.backing = PX_REGION_4K; /* leave the shared hugepages be */
	rc = px_cache_create(&c, BUDGET, &o);
	if (rc)
		fail("px_cache_create", -1, rc, 0);
	while (in.n)
		run_op(c, &in);
	for (int k = 0; k < NKEYS; k++) {
		char name[4];

		key_name(k, name);
		apply_due_flush();
		op_get(c, k, name);
	}
	px_cache_destroy(c);
	return 0;
}
