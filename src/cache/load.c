// SPDX-License-Identifier: MIT
/*
 * get-or-load with single flight.  Loads in flight are records on the
 * loading caller's stack, listed under load_lock.  A caller that misses
 * either finds a record for its key and waits on load_cond for it, or
 * adds one and runs the loader with no lock held.  The loader's caller
 * stores the value and pins the new item under the writer lock, marks the
 * record done, wakes the waiters and waits until they have read the result
 * before its stack frame (the record) goes away.
 *
 * Lock order: load_lock is released before the writer lock is taken.
 */
#include <errno.h>
#include <string.h>

#include "cache_int.h"

struct pxc_load {
	struct pxc_load *next;
	const void *key;
	size_t klen;
	bool done;
	int result;
	unsigned waiters;
};

static struct pxc_load *
find_load(struct px_cache *c, const void *key, size_t klen)
{
	struct pxc_load *l;

	for (l = c->loads; l; l = l->next)
		if (l->klen == klen && !memcmp(l->key, key, klen))
			return l;
	return NULL;
}

static void
unlist(struct px_cache *c, struct pxc_load *rec)
{
	struct pxc_load **p = &c->loads;

	while (*p != rec)
		p = &(*p)->next;
	*p = rec->next;
}

/* Wait for @l's load; load_lock held.  Returns its result. */
static int
wait_load(struct px_cache *c, struct pxc_load *l)
{
	int result;

	l->waiters++;
	while (!l->done)
		pthread_cond_wait(&c->load_cond, &c->load_lock);
	result = l->result;
	if (!--l->waiters)
		pthread_cond_broadcast(&c->load_cond);
	return result;
}

/* Run the loader and store its value; pins the item into @ref. */
static int
load_and_store(struct px_cache *c, const void *key, size_t klen,
	       px_cache_loader_fn loader, void *arg, struct px_cache_ref *ref)
{
	struct px_cache_value v = {0};
	struct pxc_item *it;
	int err;

	PXC_COUNT(c, loads, 1);
	err = loader(arg, key, klen, &v);
	if (err)
		return err < 0 ? err : -EINVAL;

	pxc_lock(c);
	err = pxc_store_locked(c, PX_CACHE_SET, key, klen, v.data, v.len,
			       v.flags, v.ttl, 0, &it);
	if (!err && !it)
		err = -ENOENT;
	if (!err) {
		pxc_pin(c, it);
		pxc_fill_ref(it, ref);
		pxc_mark_fetched(it); /* the caller reads it */
	}
	pxc_unlock(c);

	if (!err)
		PXC_COUNT(c, sets, 1);
	if (v.release)
		v.release((void *)v.data);
	return err;
}

static int
lead_load(struct px_cache *c, struct pxc_load *rec, px_cache_loader_fn loader,
	  void *arg, struct px_cache_ref *ref)
{
	int err;

	/* A load may have finished between our miss and our record. */
	err = px_cache_get_ref(c, rec->key, rec->klen, ref);
	if (err == -ENOENT)
		err = load_and_store(c, rec->key, rec->klen, loader, arg, ref);

	pthread_mutex_lock(&c->load_lock);
	rec->done = true;
	rec->result = err;
	unlist(c, rec);
	pthread_cond_broadcast(&c->load_cond);
	while (rec->waiters)
		pthread_cond_wait(&c->load_cond, &c->load_lock);
	pthread_mutex_unlock(&c->load_lock);
	return err;
}

int
px_cache_get_or_load(struct px_cache *c, const void *key, size_t klen,
		     px_cache_loader_fn loader, void *arg,
		     struct px_cache_ref *ref)
{
	struct pxc_load rec = {.key = key, .klen = klen}, *l;
	int err;

	if (!loader)
		return -EINVAL; /* a miss would call through NULL */
	for (;;) {
		err = px_cache_get_ref(c, key, klen, ref);
		if (err != -ENOENT)
			return err;

		pthread_mutex_lock(&c->load_lock);
		l = find_load(c, key, klen);
		if (!l) {
			rec.next = c->loads;
			c->loads = &rec;
			pthread_mutex_unlock(&c->load_lock);
			return lead_load(c, &rec, loader, arg, ref);
		}
		PXC_COUNT(c, load_waits, 1);
		err = wait_load(c, l);
		pthread_mutex_unlock(&c->load_lock);
		if (err)
			return err;
	}
}
