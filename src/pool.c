// SPDX-License-Identifier: MIT
/*
 * The pool's state machine, independent of the ring: it sees time and its
 * loop only through struct px_pool_env, so unit tests drive it with a fake
 * clock.  docs/pool.md explains the model; in short:
 *
 * - size counts the objects that hold a slot: creating, idle, checking,
 *   in use.  A step that times out is abandoned: its slot is freed at once
 *   and the record lingers (aborting) until the manager ends the step.
 * - Waiters form one FIFO queue.  Objects that become ready (a create or
 *   a checkout recycle finished, a keepalive passed) go to the oldest
 *   waiter.  pump() starts one checkout per waiter not already covered by
 *   a checkout in flight, and one create per waiter not covered by any
 *   step in flight, so a returned object races a slow create and the
 *   waiter takes whichever comes first.
 * - Callbacks of gets never run inside the call that caused them: finished
 *   gets sit on a done list and px_pool_poll() runs them.
 *
 * No locks: a pool belongs to one thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <patinox/error.h>
#include <patinox/pool.h>

#define MS                       (1000000ull)
#define NEVER                    UINT64_MAX
#define container_of(p, type, m) ((type *)((char *)(p)-offsetof(type, m)))

/* ------------------------------------------------------------------ */
/* Lists and the deadline heap                                          */
/* ------------------------------------------------------------------ */

struct plist {
	struct plist *next, *prev;
};

static void
plist_init(struct plist *h)
{
	h->next = h;
	h->prev = h;
}

static bool
plist_empty(const struct plist *h)
{
	return h->next == h;
}

static void
plist_add_tail(struct plist *h, struct plist *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void
plist_del(struct plist *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n;
	n->prev = n;
}

enum tkind { T_WAIT, T_OBJ, T_MAINT, T_WAITQ };

struct tnode {
	uint64_t at;
	uint32_t idx; /* position in the heap, UINT32_MAX when out */
	uint8_t kind;
};

struct theap {
	struct tnode **v;
	uint32_t n, cap;
};

static void
heap_swap(struct theap *h, uint32_t a, uint32_t b)
{
	struct tnode *t = h->v[a];

	h->v[a] = h->v[b];
	h->v[b] = t;
	h->v[a]->idx = a;
	h->v[b]->idx = b;
}

static void
heap_up(struct theap *h, uint32_t i)
{
	while (i > 0 && h->v[(i - 1) / 2]->at > h->v[i]->at) {
		heap_swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void
heap_down(struct theap *h, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < h->n && h->v[l]->at < h->v[m]->at)
			m = l;
		if (r < h->n && h->v[r]->at < h->v[m]->at)
			m = r;
		if (m == i)
			return;
		heap_swap(h, i, m);
		i = m;
	}
}

static int
heap_reserve(struct theap *h)
{
	struct tnode **v;
	uint32_t cap;

	if (h->n < h->cap)
		return 0;
	cap = h->cap ? h->cap * 2 : 64;
	v = realloc(h->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

/* Callers reserve first; insertion itself cannot fail. */
static void
heap_insert(struct theap *h, struct tnode *t, uint64_t at)
{
	t->at = at;
	t->idx = h->n;
	h->v[h->n++] = t;
	heap_up(h, t->idx);
}

static void
heap_remove(struct theap *h, struct tnode *t)
{
	uint32_t i = t->idx;

	if (i == UINT32_MAX)
		return;
	t->idx = UINT32_MAX;
	if (i == --h->n)
		return;
	h->v[i] = h->v[h->n];
	h->v[i]->idx = i;
	heap_up(h, i);
	heap_down(h, h->v[i]->idx);
}

/* ------------------------------------------------------------------ */
/* Types                                                                */
/* ------------------------------------------------------------------ */

enum ostate {
	O_CREATE,       /* manager create */
	O_POST_CREATE,  /* post_create hook */
	O_PRE_RECYCLE,  /* pre_recycle hook */
	O_RECYCLE,      /* manager recycle */
	O_POST_RECYCLE, /* post_recycle hook */
	O_IDLE,
	O_IN_USE,
	O_ABANDONED, /* step timed out or cancelled; waiting for done */
};

/* Why an object runs the recycle steps. */
enum opurpose { P_CREATE, P_CHECKOUT, P_KEEPALIVE };

enum close_reason { C_BROKEN, C_IDLE, C_EXPIRED, C_OTHER };

struct px_pool_obj {
	struct plist link; /* idle, in_use or aborting list */
	struct tnode tmo;  /* step deadline */
	void *value;
	uint8_t state;
	uint8_t purpose;
	bool leak_reported;
	uint64_t expires_ns;
	/* Idle since (or since its last keepalive: the next one counts from
	 * there), or checked out at.  idle_timeout counts from the last use,
	 * m.last_used_ns: a keepalive is not a use. */
	uint64_t since_ns;
	struct px_pool_metrics m;
};

enum wstate { W_QUEUED, W_DONE, W_FREE };

struct px_pool_wait {
	struct plist link;  /* waiters or done list */
	struct plist dlink; /* the deadline queue, when in_dq */
	struct tnode tmo;   /* the deadline; in the heap unless in_dq */
	px_pool_get_fn fn;
	void *ctx;
	struct px_pool_obj *obj;
	uint64_t start_ns;
	int res;
	uint8_t state;
	bool direct;
	bool in_dq;
	struct px_pool_wait *next_free;
};

struct px_pool {
	struct px_pool_env env;
	struct px_pool_manager mgr;
	struct px_pool_opts o;

	struct plist idle, in_use, waiters, done, aborting;
	uint32_t size, nidle, nwait, nin_use, ncreate, ncheckout, nkeep;
	uint32_t naborting;
	uint32_t nretain; /* idle objects under a retain() predicate */
	uint32_t records; /* object records allocated */

	struct theap heap;
	struct tnode maint;
	/*
	 * Waiters whose deadline is no earlier than the last one queued (all
	 * of them when every get uses the same timeout) wait on the deadline
	 * queue dq, sorted by construction, instead of in the heap; one heap
	 * node, dq_tmo, stands for the queue's head while it is not empty.
	 * Its deadline may be older than the head's (it moves lazily, when
	 * it fires).
	 */
	struct plist dq;
	struct tnode dq_tmo;
	uint64_t wake_req;

	uint64_t backoff_until, backoff_ms;
	uint64_t t; /* the clock at the current entry point */
	int last_create_err;
	uint64_t rng;

	bool closed, destroyed, pumping, pump_again, polling, kicked;

	struct px_pool_wait *free_waits;
	uint32_t nfree_waits;
	struct px_pool_stats st;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

/*
 * Time is read once per entry point (enter()) and reused inside it, and
 * calls made from get callbacks reuse the time of the poll running them:
 * a clock read costs more than the rest of a get.  Deadlines taken from
 * that time are at most one poll early, never late.
 */
static uint64_t
now(struct px_pool *p)
{
	return p->t;
}

static void
enter(struct px_pool *p)
{
	if (!p->polling)
		p->t = p->env.now_ns(p->env.arg);
}

static uint32_t
rnd(struct px_pool *p)
{
	/* xorshift64*: jitter only, not security */
	p->rng ^= p->rng >> 12;
	p->rng ^= p->rng << 25;
	p->rng ^= p->rng >> 27;
	return (uint32_t)((p->rng * 2685821657736338717ull) >> 32);
}

static void
report(struct px_pool *p, enum px_pool_event ev, int err,
       struct px_pool_obj *obj)
{
	if (p->o.error_sink)
		p->o.error_sink(p, ev, err, obj, p->o.error_arg);
}

static void
kick(struct px_pool *p)
{
	if (p->kicked || p->polling || p->destroyed)
		return;
	p->kicked = true;
	p->env.kick(p->env.arg);
}

/* Ask the environment for a wakeup at the earliest deadline. */
static void
rearm(struct px_pool *p)
{
	uint64_t top, t;

	if (p->heap.n == 0 || p->destroyed)
		return;
	top = p->heap.v[0]->at;
	t = now(p);
	if (top < p->wake_req || p->wake_req <= t) {
		p->wake_req = top;
		p->env.wake_at(p->env.arg, top);
	}
}

static void maybe_free(struct px_pool *p);
static void pump(struct px_pool *p);
static void rearm(struct px_pool *p);

/* ------------------------------------------------------------------ */
/* Object records                                                       */
/* ------------------------------------------------------------------ */

static struct px_pool_obj *
obj_alloc(struct px_pool *p)
{
	struct px_pool_obj *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	plist_init(&o->link);
	o->tmo.idx = UINT32_MAX;
	o->tmo.kind = T_OBJ;
	p->records++;
	return o;
}

static void
obj_free(struct px_pool *p, struct px_pool_obj *o)
{
	free(o);
	p->records--;
}

/* End of a public entry point: free a destroyed pool, or rearm. */
static void
finish(struct px_pool *p)
{
	if (p->destroyed)
		maybe_free(p);
	else
		rearm(p);
}

static void
count_close(struct px_pool *p, enum close_reason why)
{
	switch (why) {
	case C_BROKEN:
		p->st.closed_broken++;
		break;
	case C_IDLE:
		p->st.closed_idle++;
		break;
	case C_EXPIRED:
		p->st.closed_expired++;
		break;
	default:
		p->st.closed_other++;
		break;
	}
}

/* Destroy the value and the record of an object that holds no slot. */
static void
obj_destroy(struct px_pool *p, struct px_pool_obj *o, enum close_reason why)
{
	if (o->value) {
		p->mgr.destroy(p, o->value, p->mgr.arg);
		count_close(p, why);
	}
	obj_free(p, o);
}

static uint64_t
lifetime_deadline(struct px_pool *p, uint64_t t)
{
	uint64_t life = p->o.max_lifetime_ms * MS, cut;

	if (!life)
		return NEVER;
	/* Per-object jitter: a cohort created together does not expire
	 * together. */
	cut = life / 100 * p->o.lifetime_jitter_pct;
	if (cut)
		life -= (uint64_t)rnd(p) % cut;
	return t + life;
}

static bool
expired(struct px_pool *p, struct px_pool_obj *o, uint64_t t)
{
	return o->expires_ns <= t;
}

/* ------------------------------------------------------------------ */
/* Waiters                                                              */
/* ------------------------------------------------------------------ */

static struct px_pool_wait *
wait_alloc(struct px_pool *p)
{
	struct px_pool_wait *w = p->free_waits;

	if (w) {
		p->free_waits = w->next_free;
		p->nfree_waits--;
	} else {
		w = malloc(sizeof(*w));
		if (!w)
			return NULL;
	}
	memset(w, 0, sizeof(*w));
	plist_init(&w->link);
	plist_init(&w->dlink);
	w->tmo.idx = UINT32_MAX;
	w->tmo.kind = T_WAIT;
	return w;
}

static void
wait_free(struct px_pool *p, struct px_pool_wait *w)
{
	w->state = W_FREE;
	if (p->nfree_waits >= p->o.max_waiters || p->destroyed) {
		free(w);
		return;
	}
	w->next_free = p->free_waits;
	p->free_waits = w;
	p->nfree_waits++;
}

static unsigned int
hist_bucket(uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned int b = us ? 64u - (unsigned int)__builtin_clzll(us) : 0;

	return b < PX_POOL_HIST_BUCKETS - 1 ? b : PX_POOL_HIST_BUCKETS - 1;
}

/* Finish a queued get: off the queue, onto the done list. */
static void
wait_finish(struct px_pool *p, struct px_pool_wait *w, struct px_pool_obj *obj,
	    int res)
{
	plist_del(&w->link);
	if (w->in_dq) {
		plist_del(&w->dlink);
		w->in_dq = false;
		if (plist_empty(&p->dq))
			heap_remove(&p->heap, &p->dq_tmo);
	} else {
		heap_remove(&p->heap, &w->tmo);
	}
	p->nwait--;
	w->obj = obj;
	w->res = res;
	w->state = W_DONE;
	plist_add_tail(&p->done, &w->link);
	kick(p);
}

static void
serve(struct px_pool *p, struct px_pool_obj *o)
{
	struct px_pool_wait *w =
	    container_of(p->waiters.next, struct px_pool_wait, link);
	uint64_t t = now(p);

	o->state = O_IN_USE;
	o->since_ns = t;
	o->leak_reported = false;
	o->m.last_used_ns = t;
	plist_add_tail(&p->in_use, &o->link);
	p->nin_use++;
	if (w->direct)
		p->st.gets_direct++;
	else
		p->st.gets_waited++;
	p->st.wait_hist[hist_bucket(t - w->start_ns)]++;
	wait_finish(p, w, o, 0);
}

/* Fail the newest waiters no step in flight covers. */
static void
fail_uncovered(struct px_pool *p, int err)
{
	while (p->nwait > p->ncheckout + p->ncreate) {
		struct px_pool_wait *w =
		    container_of(p->waiters.prev, struct px_pool_wait, link);

		p->st.gets_failed++;
		wait_finish(p, w, NULL, err);
	}
}

/* ------------------------------------------------------------------ */
/* Steps                                                                */
/* ------------------------------------------------------------------ */

static px_pool_step_fn
step_fn(struct px_pool *p, uint8_t state)
{
	switch (state) {
	case O_CREATE:
		return p->mgr.create;
	case O_POST_CREATE:
		return p->o.hooks.post_create;
	case O_PRE_RECYCLE:
		return p->o.hooks.pre_recycle;
	case O_RECYCLE:
		return p->mgr.recycle;
	case O_POST_RECYCLE:
		return p->o.hooks.post_recycle;
	}
	return NULL;
}

static void *
step_arg(struct px_pool *p, uint8_t state)
{
	if (state == O_CREATE || state == O_RECYCLE)
		return p->mgr.arg;
	return p->o.hooks.arg;
}

static void step_ended(struct px_pool *p, struct px_pool_obj *o, int res);
static void ready(struct px_pool *p, struct px_pool_obj *o);

/*
 * Run the steps from @state on, skipping absent ones.  A step may end
 * inside its call (px_pool_done() -> step_ended() -> run_steps() again),
 * which nests at most once per step.
 */
static void
run_steps(struct px_pool *p, struct px_pool_obj *o, uint8_t state)
{
	uint8_t last = o->purpose == P_CREATE ? O_POST_CREATE : O_POST_RECYCLE;
	px_pool_step_fn fn;

	for (; state <= last; state++) {
		fn = step_fn(p, state);
		if (fn) {
			o->state = state;
			fn(p, o, step_arg(p, state));
			return;
		}
	}
	step_ended(p, o, 0);
}

/* False when there was no memory for the record or its deadline. */
static bool
start_create(struct px_pool *p)
{
	struct px_pool_obj *o = obj_alloc(p);

	if (!o || heap_reserve(&p->heap)) {
		if (o)
			obj_free(p, o);
		p->last_create_err = -ENOMEM;
		fail_uncovered(p, -ENOMEM);
		return false;
	}
	o->purpose = P_CREATE;
	o->state = O_CREATE;
	p->size++;
	p->ncreate++;
	heap_insert(&p->heap, &o->tmo, now(p) + p->o.create_timeout_ms * MS);
	rearm(p);
	run_steps(p, o, O_CREATE);
	return true;
}

/* Start the recycle steps on an idle object taken off the idle list. */
static bool
has_check(const struct px_pool *p)
{
	return p->mgr.recycle || p->o.hooks.pre_recycle ||
	       p->o.hooks.post_recycle;
}

/* False when there was no memory for the check's deadline: @o went back
 * to the idle list, and the caller must not pick it again at once. */
static bool
start_check(struct px_pool *p, struct px_pool_obj *o, uint8_t purpose)
{
	if (!has_check(p)) {
		/* Nothing to run: the fast path of a no-check manager. */
		o->purpose = purpose;
		ready(p, o);
		return true;
	}
	if (heap_reserve(&p->heap)) {
		/* No memory for a deadline: keep it idle and retry later. */
		plist_add_tail(&p->idle, &o->link);
		p->nidle++;
		return false;
	}
	o->purpose = purpose;
	if (purpose == P_CHECKOUT)
		p->ncheckout++;
	else
		p->nkeep++;
	heap_insert(&p->heap, &o->tmo, now(p) + p->o.recycle_timeout_ms * MS);
	rearm(p);
	run_steps(p, o, O_PRE_RECYCLE);
	return true;
}

static void
leave_step(struct px_pool *p, struct px_pool_obj *o)
{
	heap_remove(&p->heap, &o->tmo);
	if (o->purpose == P_CREATE)
		p->ncreate--;
	else if (o->purpose == P_CHECKOUT)
		p->ncheckout--;
	else
		p->nkeep--;
}

static void
make_idle(struct px_pool *p, struct px_pool_obj *o)
{
	o->state = O_IDLE;
	o->since_ns = now(p);
	plist_add_tail(&p->idle, &o->link);
	p->nidle++;
}

/* An object is ready for use: the oldest waiter gets it, or it idles. */
static void
ready(struct px_pool *p, struct px_pool_obj *o)
{
	if (p->closed || p->size > p->o.max_size) {
		p->size--;
		obj_destroy(p, o, C_OTHER);
	} else if (p->nwait > 0) {
		serve(p, o);
	} else {
		make_idle(p, o);
	}
	pump(p);
}

static void
backoff(struct px_pool *p, int err)
{
	uint64_t ms = p->backoff_ms ? p->backoff_ms * 2 : p->o.backoff_min_ms;

	if (ms > p->o.backoff_max_ms)
		ms = p->o.backoff_max_ms;
	p->backoff_ms = ms;
	/* Up to a quarter less, so pools restarted together spread out. */
	if (ms >= 4)
		ms -= rnd(p) % (ms / 4);
	p->backoff_until = now(p) + ms * MS;
	p->st.backoffs++;
	report(p, PX_POOL_EV_BACKOFF, err, NULL);
}

static void
create_failed(struct px_pool *p, struct px_pool_obj *o, int err)
{
	p->st.create_failed++;
	p->size--;
	p->last_create_err = err;
	report(p, PX_POOL_EV_CREATE_FAILED, err, o);
	obj_destroy(p, o, C_BROKEN);
	backoff(p, err);
	fail_uncovered(p, err);
	pump(p);
}

static void
created(struct px_pool *p, struct px_pool_obj *o)
{
	uint64_t t = now(p);

	p->st.created++;
	p->backoff_ms = 0;
	p->backoff_until = 0;
	o->m.created_ns = t;
	o->m.last_used_ns = t;
	o->expires_ns = lifetime_deadline(p, t);
	ready(p, o);
}

static void
check_failed(struct px_pool *p, struct px_pool_obj *o, int err)
{
	p->st.recycle_failed++;
	p->size--;
	report(p, PX_POOL_EV_RECYCLE_FAILED, err, o);
	obj_destroy(p, o, C_BROKEN);
	pump(p);
}

/* A check passed; max_lifetime may have passed while it ran. */
static void
checked(struct px_pool *p, struct px_pool_obj *o)
{
	p->st.recycled++;
	o->m.recycle_count++;
	o->m.recycled_ns = now(p);
	if (expired(p, o, now(p))) {
		p->size--;
		obj_destroy(p, o, C_EXPIRED);
		pump(p);
		return;
	}
	ready(p, o);
}

/* The last step of a create or check ended with @res. */
static void
step_ended(struct px_pool *p, struct px_pool_obj *o, int res)
{
	uint8_t purpose = o->purpose;

	leave_step(p, o);
	if (purpose == P_CREATE && res == 0)
		created(p, o);
	else if (purpose == P_CREATE)
		create_failed(p, o, res);
	else if (res == 0)
		checked(p, o);
	else
		check_failed(p, o, res);
}

void
px_pool_done(struct px_pool *p, struct px_pool_obj *o, int res)
{
	uint8_t last = o->purpose == P_CREATE ? O_POST_CREATE : O_POST_RECYCLE;

	enter(p);
	if (o->state == O_ABANDONED) {
		plist_del(&o->link);
		p->naborting--;
		obj_destroy(p, o, C_BROKEN);
	} else if (o->state > O_POST_RECYCLE) {
		return; /* not in a step: a manager bug, ignored */
	} else if (res == 0 && o->state < last) {
		run_steps(p, o, o->state + 1);
	} else {
		step_ended(p, o, res);
	}
	finish(p);
}

/*
 * Give up the step in flight on @o: its slot is freed now; the record
 * waits on the aborting list until the manager calls px_pool_done().
 */
static void
abandon(struct px_pool *p, struct px_pool_obj *o)
{
	uint8_t state = o->state;
	px_pool_step_fn cancel;
	void *arg;

	leave_step(p, o);
	p->size--;
	o->state = O_ABANDONED;
	plist_add_tail(&p->aborting, &o->link);
	p->naborting++;
	cancel = (state == O_CREATE || state == O_RECYCLE) ? p->mgr.cancel
							   : p->o.hooks.cancel;
	arg = step_arg(p, state);
	if (cancel)
		cancel(p, o, arg);
}

static void
step_timeout(struct px_pool *p, struct px_pool_obj *o)
{
	bool creating = o->purpose == P_CREATE;

	report(p, PX_POOL_EV_STEP_TIMEOUT, -ETIMEDOUT, o);
	if (creating) {
		p->st.create_failed++;
		p->last_create_err = -ETIMEDOUT;
	} else {
		p->st.recycle_failed++;
	}
	abandon(p, o);
	if (creating) {
		backoff(p, -ETIMEDOUT);
		fail_uncovered(p, -ETIMEDOUT);
	}
	pump(p);
}

/* ------------------------------------------------------------------ */
/* The pump: match waiters with objects and slots                       */
/* ------------------------------------------------------------------ */

static struct px_pool_obj *
pop_idle(struct px_pool *p)
{
	struct plist *n;

	while (!plist_empty(&p->idle)) {
		struct px_pool_obj *o;

		n = p->o.order == PX_POOL_LIFO ? p->idle.prev : p->idle.next;
		o = container_of(n, struct px_pool_obj, link);
		plist_del(n);
		p->nidle--;
		if (!expired(p, o, now(p)))
			return o;
		p->size--;
		obj_destroy(p, o, C_EXPIRED);
	}
	return NULL;
}

static bool
pump_one(struct px_pool *p)
{
	struct px_pool_obj *o;

	if (p->closed || p->nwait == 0)
		return false;
	if (p->nwait > p->ncheckout && p->nidle > 0) {
		o = pop_idle(p);
		if (o)
			return start_check(p, o, P_CHECKOUT);
	}
	if (p->nwait <= p->ncheckout + p->ncreate || p->size >= p->o.max_size)
		return false;
	if (now(p) < p->backoff_until) {
		/* Fail fast instead of hammering a backend that is down. */
		fail_uncovered(p, p->last_create_err);
		return false;
	}
	return start_create(p);
}

static void
pump(struct px_pool *p)
{
	if (p->pumping) {
		p->pump_again = true;
		return;
	}
	p->pumping = true;
	/* A change made inside a pump_one() that returns true is seen by the
	 * next call anyway; only one inside the last call needs a pass. */
	do {
		p->pump_again = false;
		while (pump_one(p))
			p->pump_again = false;
	} while (p->pump_again);
	p->pumping = false;
}

/* ------------------------------------------------------------------ */
/* Housekeeping                                                         */
/* ------------------------------------------------------------------ */

static bool
housekeeping_on(const struct px_pool *p)
{
	return p->o.min_idle || p->o.max_lifetime_ms || p->o.idle_timeout_ms ||
	       p->o.keepalive_ms || p->o.leak_threshold_ms;
}

static void
sweep_idle(struct px_pool *p, uint64_t t)
{
	struct plist *n, *next;
	uint64_t idle_to = p->o.idle_timeout_ms * MS;
	uint64_t keep = p->o.keepalive_ms * MS;

	for (n = p->idle.next; n != &p->idle; n = next) {
		struct px_pool_obj *o =
		    container_of(n, struct px_pool_obj, link);
		enum close_reason why;

		next = n->next;
		if (expired(p, o, t))
			why = C_EXPIRED;
		else if (idle_to && t - o->m.last_used_ns >= idle_to &&
			 p->nidle > p->o.min_idle)
			why = C_IDLE;
		else if (keep && t - o->since_ns >= keep)
			why = C_OTHER;
		else
			continue;
		plist_del(n);
		p->nidle--;
		if (why == C_OTHER) {
			p->st.keepalives++;
			/* Out of memory: no more keepalives this round, or
			 * the same object would come up again forever. */
			if (!start_check(p, o, P_KEEPALIVE)) {
				p->st.keepalives--;
				keep = 0;
			}
			/* The list may have changed under a synchronous step.
			 */
			next = p->idle.next;
			continue;
		}
		p->size--;
		obj_destroy(p, o, why);
	}
}

static void
sweep_leaks(struct px_pool *p, uint64_t t)
{
	uint64_t limit = p->o.leak_threshold_ms * MS;
	struct plist *n;

	if (!limit)
		return;
	for (n = p->in_use.next; n != &p->in_use; n = n->next) {
		struct px_pool_obj *o =
		    container_of(n, struct px_pool_obj, link);

		if (!o->leak_reported && t - o->since_ns >= limit) {
			o->leak_reported = true;
			p->st.leaks++;
			report(p, PX_POOL_EV_LEAK, 0, o);
		}
	}
}

/*
 * Background creates up to min_idle, paused while backing off.  Stops at
 * the first create that fails (or finds no memory: the next round
 * retries, instead of spinning here).
 */
static void
replenish(struct px_pool *p, uint64_t t)
{
	while (!p->closed && p->nidle + p->ncreate < p->o.min_idle &&
	       p->size < p->o.max_size && t >= p->backoff_until) {
		uint64_t before = p->st.create_failed;

		if (!start_create(p) || p->st.create_failed != before)
			break;
	}
}

static void
housekeeping(struct px_pool *p)
{
	uint64_t t = now(p);

	if (p->closed)
		return;
	/*
	 * The next round goes in first, into the heap slot this round's node
	 * just left: the steps started below reserve slots of their own, and
	 * could otherwise take the last one and stop housekeeping for good.
	 */
	heap_insert(&p->heap, &p->maint, t + p->o.maint_interval_ms * MS);
	sweep_idle(p, t);
	sweep_leaks(p, t);
	replenish(p, t);
	pump(p);
}

/* ------------------------------------------------------------------ */
/* Polling                                                              */
/* ------------------------------------------------------------------ */

static void
wait_timeout(struct px_pool *p, struct px_pool_wait *w)
{
	p->st.gets_timed_out++;
	wait_finish(p, w, NULL, -ETIMEDOUT);
	pump(p);
}

/*
 * The deadline queue's node fired: put it back at the head's deadline
 * first (into the slot it just left), then time the head out if it is
 * due; run_timers() comes back here for the next one.
 */
static void
dq_fired(struct px_pool *p, uint64_t t)
{
	struct px_pool_wait *w;

	w = container_of(p->dq.next, struct px_pool_wait, dlink);
	heap_insert(&p->heap, &p->dq_tmo, w->tmo.at);
	if (w->tmo.at <= t)
		wait_timeout(p, w);
}

static void
run_timers(struct px_pool *p)
{
	uint64_t t = now(p);

	while (p->heap.n && p->heap.v[0]->at <= t) {
		struct tnode *tn = p->heap.v[0];

		heap_remove(&p->heap, tn);
		if (tn->kind == T_WAIT)
			wait_timeout(
			    p, container_of(tn, struct px_pool_wait, tmo));
		else if (tn->kind == T_OBJ)
			step_timeout(p,
				     container_of(tn, struct px_pool_obj, tmo));
		else if (tn->kind == T_WAITQ)
			dq_fired(p, t);
		else
			housekeeping(p);
	}
}

/*
 * A finished get whose callback has not run changes its outcome: take
 * back the counter it was given, so every get counts once.
 */
static void
uncount_outcome(struct px_pool *p, const struct px_pool_wait *w)
{
	if (w->obj && w->direct)
		p->st.gets_direct--;
	else if (w->obj)
		p->st.gets_waited--;
	else if (w->res == -ETIMEDOUT)
		p->st.gets_timed_out--;
	else
		p->st.gets_failed--;
}

/*
 * The pool closed after @w was matched with an object but before its
 * callback ran: the caller never saw the object, so the get fails like
 * the queued ones and the object is destroyed.
 */
static void
unserve(struct px_pool *p, struct px_pool_wait *w)
{
	struct px_pool_obj *o = w->obj;

	plist_del(&o->link);
	p->nin_use--;
	p->size--;
	obj_destroy(p, o, C_OTHER);
	uncount_outcome(p, w);
	p->st.gets_failed++;
	w->obj = NULL;
	w->res = -PX_ECLOSED;
}

/* Run the callbacks of the gets finished before this call. */
static int
deliver(struct px_pool *p)
{
	struct plist batch;
	int n = 0;

	if (plist_empty(&p->done))
		return 0;
	batch = p->done;
	batch.next->prev = &batch;
	batch.prev->next = &batch;
	plist_init(&p->done);
	while (!plist_empty(&batch)) {
		struct px_pool_wait *w =
		    container_of(batch.next, struct px_pool_wait, link);

		plist_del(&w->link);
		w->state = W_FREE; /* a cancel from the callback is -ENOENT */
		if (w->obj && p->closed)
			unserve(p, w);
		w->fn(p, w->obj, w->res, w->ctx);
		wait_free(p, w);
		n++;
	}
	return n;
}

int
px_pool_poll(struct px_pool *p)
{
	int n;

	enter(p);
	if (p->polling)
		return 0;
	p->polling = true;
	p->kicked = false;
	/* The environment may have dropped its wakeup (it fired, or could
	 * not be armed): ask again at the end, whatever was asked before. */
	p->wake_req = NEVER;
	run_timers(p);
	pump(p);
	/* Callbacks that return and get again finish more gets at once;
	 * run those too, up to a budget, before going back to the loop. */
	n = 0;
	while (n < CONFIG_PX_POOL_POLL_BUDGET && !plist_empty(&p->done))
		n += deliver(p);
	p->polling = false;
	if (!plist_empty(&p->done))
		kick(p);
	rearm(p);
	return n;
}

/* ------------------------------------------------------------------ */
/* Gets                                                                 */
/* ------------------------------------------------------------------ */

static bool
try_get_fails(const struct px_pool *p)
{
	return p->nwait > 0 || (p->nidle == 0 && p->size >= p->o.max_size);
}

/*
 * Arm a queued waiter's deadline, into a heap slot reserved before: on
 * the deadline queue when it sorts last there (one heap node for all of
 * them), in the heap otherwise.  Uses one heap slot at most.
 */
static void
wait_arm(struct px_pool *p, struct px_pool_wait *w, uint64_t at)
{
	struct px_pool_wait *tail =
	    container_of(p->dq.prev, struct px_pool_wait, dlink);

	if (!plist_empty(&p->dq) && tail->tmo.at > at) {
		heap_insert(&p->heap, &w->tmo, at);
		return;
	}
	w->tmo.at = at;
	w->in_dq = true;
	plist_add_tail(&p->dq, &w->dlink);
	if (p->dq_tmo.idx == UINT32_MAX)
		heap_insert(&p->heap, &p->dq_tmo, at);
}

static void
wait_queue(struct px_pool *p, struct px_pool_wait *w, px_pool_get_fn fn,
	   void *ctx)
{
	w->fn = fn;
	w->ctx = ctx;
	w->start_ns = now(p);
	w->direct = p->nwait == 0 && p->nidle > 0;
	w->state = W_QUEUED;
	plist_add_tail(&p->waiters, &w->link);
	p->nwait++;
}

/*
 * The fast path: nobody waits, an idle object needs no check, and the
 * pool is not above its size.  The get is served inside this call (its
 * callback still runs from the next poll), so it needs no deadline.
 */
static bool
get_direct(struct px_pool *p, struct px_pool_wait *w, px_pool_get_fn fn,
	   void *ctx)
{
	struct px_pool_obj *o;

	if (p->nwait || !p->nidle || has_check(p) || p->size > p->o.max_size)
		return false;
	o = pop_idle(p);
	if (!o)
		return false; /* all expired: the slow path creates */
	o->purpose = P_CHECKOUT;
	wait_queue(p, w, fn, ctx);
	w->direct = true;
	serve(p, o);
	return true;
}

int
px_pool_get(struct px_pool *p, int32_t timeout_ms, px_pool_get_fn fn, void *ctx,
	    struct px_pool_wait **wait)
{
	struct px_pool_wait *w;
	uint64_t tmo;

	enter(p);
	if (!fn)
		return -EINVAL;
	if (p->closed)
		return -PX_ECLOSED;
	if (p->nwait >= p->o.max_waiters) {
		p->st.gets_rejected++;
		return -EAGAIN;
	}
	if (timeout_ms < 0)
		timeout_ms = (int32_t)p->o.wait_timeout_ms;
	if (timeout_ms == 0 && try_get_fails(p)) {
		p->st.gets_timed_out++;
		return -ETIMEDOUT;
	}
	w = wait_alloc(p);
	if (!w)
		return -ENOMEM;
	if (wait)
		*wait = w;
	if (get_direct(p, w, fn, ctx))
		return 0;
	if (heap_reserve(&p->heap)) {
		if (wait)
			*wait = NULL;
		free(w);
		return -ENOMEM;
	}
	/* A try-get that found a slot still waits for its create or recycle,
	 * which their own timeouts bound. */
	tmo = (uint64_t)p->o.create_timeout_ms + p->o.recycle_timeout_ms;
	if (timeout_ms)
		tmo = (uint64_t)timeout_ms;
	wait_queue(p, w, fn, ctx);
	/* The deadline goes in before pump(): pump starts creates that take
	 * heap slots of their own, so the slot reserved above must be used
	 * now.  A get that pump() serves at once leaves the heap again. */
	wait_arm(p, w, now(p) + tmo * MS);
	pump(p);
	if (w->state == W_QUEUED)
		rearm(p);
	return 0;
}

int
px_pool_get_cancel(struct px_pool *p, struct px_pool_wait *w)
{
	enter(p);
	if (w->state == W_QUEUED) {
		p->st.gets_cancelled++;
		wait_finish(p, w, NULL, -ECANCELED);
		pump(p);
		return 0;
	}
	if (w->state == W_DONE && w->res != -ECANCELED) {
		uncount_outcome(p, w);
		if (w->obj)
			px_pool_put(p, w->obj);
		w->obj = NULL;
		w->res = -ECANCELED;
		p->st.gets_cancelled++;
		return 0;
	}
	return -ENOENT;
}

/* An object leaves the caller's hands. */
static void
leave_use(struct px_pool *p, struct px_pool_obj *o)
{
	plist_del(&o->link);
	p->nin_use--;
	o->m.last_used_ns = now(p);
}

void
px_pool_put(struct px_pool *p, struct px_pool_obj *o)
{
	enter(p);
	if (p->mgr.put && o->value)
		p->mgr.put(p, o->value, p->mgr.arg);
	leave_use(p, o);
	if (p->closed || p->size > p->o.max_size) {
		p->size--;
		obj_destroy(p, o, C_OTHER);
	} else if (expired(p, o, now(p))) {
		p->size--;
		obj_destroy(p, o, C_EXPIRED);
	} else if (p->nwait && !has_check(p)) {
		/* Straight to the oldest waiter: with no check to run, the
		 * pump would take it off the idle list at once anyway. */
		o->purpose = P_CHECKOUT;
		serve(p, o);
	} else {
		make_idle(p, o);
	}
	pump(p);
	finish(p);
}

void
px_pool_drop(struct px_pool *p, struct px_pool_obj *o)
{
	enter(p);
	leave_use(p, o);
	p->size--;
	obj_destroy(p, o, C_BROKEN);
	pump(p);
	finish(p);
}

void *
px_pool_take(struct px_pool *p, struct px_pool_obj *o)
{
	void *value = o->value;

	enter(p);
	leave_use(p, o);
	p->size--;
	p->st.taken++;
	obj_free(p, o);
	pump(p);
	finish(p);
	return value;
}

/* ------------------------------------------------------------------ */
/* Objects                                                              */
/* ------------------------------------------------------------------ */

void *
px_pool_obj_value(const struct px_pool_obj *o)
{
	return o->value;
}

void
px_pool_obj_set_value(struct px_pool_obj *o, void *value)
{
	o->value = value;
}

const struct px_pool_metrics *
px_pool_obj_metrics(const struct px_pool_obj *o)
{
	return &o->m;
}

/* ------------------------------------------------------------------ */
/* Administration                                                       */
/* ------------------------------------------------------------------ */

static void
shrink_idle(struct px_pool *p)
{
	while (p->size > p->o.max_size && !plist_empty(&p->idle)) {
		struct px_pool_obj *o =
		    container_of(p->idle.next, struct px_pool_obj, link);

		plist_del(&o->link);
		p->nidle--;
		p->size--;
		obj_destroy(p, o, C_OTHER);
	}
}

int
px_pool_resize(struct px_pool *p, uint32_t max_size)
{
	enter(p);
	if (max_size == 0)
		return -EINVAL;
	if (p->closed)
		return -PX_ECLOSED;
	p->o.max_size = max_size;
	shrink_idle(p);
	pump(p);
	rearm(p);
	return 0;
}

/* Move every node of @from to the front of @to, in order. */
static void
plist_splice_head(struct plist *to, struct plist *from)
{
	if (plist_empty(from))
		return;
	from->prev->next = to->next;
	to->next->prev = from->prev;
	to->next = from->next;
	from->next->prev = to;
	plist_init(from);
}

/* After @keep answered for @o, under review by retain(). */
static bool
retain_one(struct px_pool *p, struct px_pool_obj *o, bool kept,
	   struct plist *keep_list)
{
	if (kept && !p->closed && p->size <= p->o.max_size) {
		plist_add_tail(keep_list, &o->link);
		return false;
	}
	p->nretain--;
	p->size--;
	obj_destroy(p, o, C_OTHER);
	return true;
}

/*
 * The idle objects move to a private list first, so that a predicate
 * that calls into the pool (get, put, close, resize, retain) never sees
 * them and never changes the list walked here.  They still count as
 * available; the kept ones go back to the front of the idle list, older
 * than anything that came back meanwhile.
 */
int
px_pool_retain(struct px_pool *p, px_pool_keep_fn keep, void *arg)
{
	struct plist review, kept;
	uint32_t nkept = 0;
	int removed = 0;

	if (!keep)
		return -EINVAL;
	enter(p);
	plist_init(&review);
	plist_init(&kept);
	plist_splice_head(&review, &p->idle);
	p->nretain += p->nidle;
	p->nidle = 0;
	while (!plist_empty(&review)) {
		struct px_pool_obj *o =
		    container_of(review.next, struct px_pool_obj, link);

		plist_del(&o->link);
		if (retain_one(p, o, keep(p, o, arg), &kept))
			removed++;
		else
			nkept++;
	}
	p->nretain -= nkept;
	p->nidle += nkept;
	plist_splice_head(&p->idle, &kept);
	/* A close or resize from a predicate: what is now beyond the size. */
	nkept = p->nidle;
	shrink_idle(p);
	removed += (int)(nkept - p->nidle);
	pump(p);
	finish(p);
	return removed;
}

/* Abandon every step in flight (the pool is closing). */
static void
abandon_all(struct px_pool *p)
{
	while (p->heap.n) {
		struct tnode *tn = p->heap.v[0];

		heap_remove(&p->heap, tn);
		if (tn->kind == T_OBJ) {
			struct px_pool_obj *o =
			    container_of(tn, struct px_pool_obj, tmo);

			abandon(p, o); /* its node is out already */
		}
	}
}

void
px_pool_close(struct px_pool *p)
{
	enter(p);
	if (p->closed)
		return;
	p->closed = true;
	while (p->nwait) {
		struct px_pool_wait *w =
		    container_of(p->waiters.next, struct px_pool_wait, link);

		p->st.gets_failed++;
		wait_finish(p, w, NULL, -PX_ECLOSED);
	}
	p->o.max_size = 0;
	while (!plist_empty(&p->idle)) {
		struct px_pool_obj *o =
		    container_of(p->idle.next, struct px_pool_obj, link);

		plist_del(&o->link);
		p->nidle--;
		p->size--;
		obj_destroy(p, o, C_OTHER);
	}
	abandon_all(p);
}

void
px_pool_status(const struct px_pool *p, struct px_pool_status *out)
{
	out->max_size = p->o.max_size;
	out->size = p->size;
	out->available = p->nidle + p->nretain;
	out->waiting = p->nwait;
	out->in_use = p->nin_use;
	out->creating = p->ncreate;
	out->recycling = p->ncheckout + p->nkeep;
	out->aborting = p->naborting;
}

void
px_pool_stats_get(const struct px_pool *p, struct px_pool_stats *out)
{
	*out = p->st;
}

static const char *const stat_names[] = {
#define PX_POOL_STAT_NAME(name, desc) #name,
    PX_POOL_COUNTERS(PX_POOL_STAT_NAME)
#undef PX_POOL_STAT_NAME
};

static const char *const stat_descs[] = {
#define PX_POOL_STAT_DESC(name, desc) desc,
    PX_POOL_COUNTERS(PX_POOL_STAT_DESC)
#undef PX_POOL_STAT_DESC
};

const char *
px_pool_stat_name(unsigned int i)
{
	return i < sizeof(stat_names) / sizeof(*stat_names) ? stat_names[i]
							    : NULL;
}

const char *
px_pool_stat_desc(unsigned int i)
{
	return i < sizeof(stat_descs) / sizeof(*stat_descs) ? stat_descs[i]
							    : NULL;
}

uint64_t
px_pool_wait_percentile(const struct px_pool_stats *st, double pct)
{
	uint64_t total = 0, seen = 0, want;
	unsigned int i;

	for (i = 0; i < PX_POOL_HIST_BUCKETS; i++)
		total += st->wait_hist[i];
	if (!total)
		return 0;
	want = (uint64_t)(total * pct / 100.0);
	if (want >= total)
		want = total - 1;
	for (i = 0; i < PX_POOL_HIST_BUCKETS; i++) {
		seen += st->wait_hist[i];
		if (seen > want)
			break;
	}
	return (1000ull << i);
}

/* ------------------------------------------------------------------ */
/* Creation and teardown                                                */
/* ------------------------------------------------------------------ */

void
px_pool_opts_init(struct px_pool_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->max_size = CONFIG_PX_POOL_MAX_SIZE;
	o->min_idle = CONFIG_PX_POOL_MIN_IDLE;
	o->max_waiters = CONFIG_PX_POOL_MAX_WAITERS;
	o->wait_timeout_ms = CONFIG_PX_POOL_WAIT_TIMEOUT_MS;
	o->create_timeout_ms = CONFIG_PX_POOL_CREATE_TIMEOUT_MS;
	o->recycle_timeout_ms = CONFIG_PX_POOL_RECYCLE_TIMEOUT_MS;
	o->backoff_min_ms = CONFIG_PX_POOL_BACKOFF_MIN_MS;
	o->backoff_max_ms = CONFIG_PX_POOL_BACKOFF_MAX_MS;
	o->maint_interval_ms = CONFIG_PX_POOL_MAINT_INTERVAL_MS;
	o->lifetime_jitter_pct = CONFIG_PX_POOL_LIFETIME_JITTER_PCT;
	o->max_lifetime_ms = CONFIG_PX_POOL_MAX_LIFETIME_MS;
	o->idle_timeout_ms = CONFIG_PX_POOL_IDLE_TIMEOUT_MS;
	o->keepalive_ms = CONFIG_PX_POOL_KEEPALIVE_MS;
	o->leak_threshold_ms = CONFIG_PX_POOL_LEAK_THRESHOLD_MS;
	o->order = PX_POOL_FIFO;
}

static bool
opts_valid(const struct px_pool_opts *o)
{
	return o->max_size > 0 && o->min_idle <= o->max_size &&
	       o->max_waiters > 0 && o->create_timeout_ms > 0 &&
	       o->recycle_timeout_ms > 0 && o->maint_interval_ms > 0 &&
	       o->backoff_min_ms <= o->backoff_max_ms &&
	       o->lifetime_jitter_pct < 100 &&
	       (o->order == PX_POOL_FIFO || o->order == PX_POOL_LIFO);
}

int
px_pool_create_env(const struct px_pool_env *env,
		   const struct px_pool_manager *mgr,
		   const struct px_pool_opts *opts, struct px_pool **out)
{
	struct px_pool_opts def;
	struct px_pool *p;

	if (!opts) {
		px_pool_opts_init(&def);
		opts = &def;
	}
	if (!env || !env->now_ns || !env->wake_at || !env->kick || !mgr ||
	    !mgr->create || !mgr->destroy || !opts_valid(opts))
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->env = *env;
	p->mgr = *mgr;
	p->o = *opts;
	plist_init(&p->idle);
	plist_init(&p->in_use);
	plist_init(&p->waiters);
	plist_init(&p->done);
	plist_init(&p->aborting);
	p->maint.idx = UINT32_MAX;
	p->maint.kind = T_MAINT;
	plist_init(&p->dq);
	p->dq_tmo.idx = UINT32_MAX;
	p->dq_tmo.kind = T_WAITQ;
	p->wake_req = NEVER;
	enter(p);
	p->rng = opts->seed ? opts->seed : now(p) | 1;
	if (housekeeping_on(p)) {
		if (heap_reserve(&p->heap)) {
			free(p);
			return -ENOMEM;
		}
		/* The first round runs at once: min_idle fills the pool. */
		heap_insert(&p->heap, &p->maint, now(p));
		rearm(p);
	}
	*out = p;
	return 0;
}

static void
maybe_free(struct px_pool *p)
{
	if (!p->destroyed || p->records > 0)
		return;
	while (p->free_waits) {
		struct px_pool_wait *w = p->free_waits;

		p->free_waits = w->next_free;
		free(w);
	}
	free(p->heap.v);
	if (p->env.release)
		p->env.release(p->env.arg);
	free(p);
}

void
px_pool_destroy(struct px_pool *p)
{
	if (!p)
		return;
	px_pool_close(p);
	p->polling = true; /* no kicks from here on */
	deliver(p);
	p->destroyed = true;
	heap_remove(&p->heap, &p->maint);
	maybe_free(p);
}
