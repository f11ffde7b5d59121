// SPDX-License-Identifier: GPL-2.0-only
/*
 * hb_wset.c: RUN's working set (uapi header, RUN): W copies of the caller's state in one model,
 * built before the timed loop, put in the session's table under synthetic keys (so that every
 * fire pays the same lookup as a W = 1 fire), visited in a seeded permutation, and unlinked and
 * freed before RUN returns.
 *
 * A copy holds the same program pointers as the caller's state but no program references: the
 * caller holds the session's lock from hb_wset_build() to hb_wset_free(), so no update or RESET
 * of the session can drop the references of the caller's own state (attachments, chain nodes,
 * array sets) meanwhile, and the caller cannot exit while it is in the ioctl.
 *
 * task-chain copies are built level by level across the W states (the oldest node of every
 * state, then the next one, ...), so that the nodes of one chain are not neighbours in the slab,
 * as the filters a task installs over its life are not.
 */
#include <linux/errno.h>
#include <linux/mm.h>
#include <linux/slab.h>

#include "hb_internal.h"

/* splitmix64 (uapi header, RUN): the permutation's generator. */
static u64 hb_splitmix64(u64 *x)
{
	u64 z;

	*x += 0x9e3779b97f4a7c15ULL;
	z = *x;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Fisher-Yates over 0 .. w-1 drawn from @seed (uapi header, RUN). */
static void hb_wset_permute(u32 *perm, u32 w, u64 seed)
{
	u64 x = seed;
	u32 i;

	for (i = 0; i < w; i++)
		perm[i] = i;
	for (i = w - 1; i > 0; i--) {
		u32 j = (u32)(hb_splitmix64(&x) % ((u64)i + 1));
		u32 t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
}

/* The caller's task entry, or NULL. Caller holds s->lock (installs are serialized by it). */
static struct hb_task *hb_wset_caller_task(struct hb_session *s)
{
	struct hb_task *t;

	rcu_read_lock();
	t = hb_task_lookup(s, current, false);
	rcu_read_unlock();
	return t;
}

/* The caller's cgroup entry, or NULL. Caller holds s->lock. */
static struct hb_cgrp *hb_wset_caller_cgrp(struct hb_session *s)
{
	struct hb_cgrp *c;

	rcu_read_lock();
	c = hb_cgrp_lookup(s, task_dfl_cgroup(current), false);
	rcu_read_unlock();
	return c;
}

/* Bytes of the non-empty arrays of @arrs (HB_KMOD_MAX_HOOKS of them). */
static u64 hb_arrays_bytes(struct hb_prog_array *const *arrs)
{
	u64 bytes = 0;
	u32 h;

	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		if (arrs[h] != HB_EMPTY_ARRAY)
			bytes += hb_array_bytes(arrs[h]->cnt);
	}
	return bytes;
}

u64 hb_wset_state_bytes(struct hb_session *s, u32 model)
{
	const struct hb_chain_node *n;
	const struct hb_task_arrays *ta;
	struct hb_task *t;
	struct hb_cgrp *c;
	u64 bytes = 0;
	u32 h;

	lockdep_assert_held(&s->lock);
	switch (model) {
	case HB_KMOD_MODEL_TASK_CHAIN:
		t = hb_wset_caller_task(s);
		if (!t)
			return 0;
		n = rcu_dereference_protected(t->chain, lockdep_is_held(&s->lock));
		return sizeof(*t) + (n ? (u64)n->len * sizeof(*n) : 0);
	case HB_KMOD_MODEL_TASK_HOOK_ARRAY:
		t = hb_wset_caller_task(s);
		if (!t)
			return 0;
		ta = rcu_dereference_protected(t->arrays, lockdep_is_held(&s->lock));
		if (ta != &hb_empty_task_arrays)
			bytes = sizeof(*ta) + hb_arrays_bytes(ta->hooks);
		return sizeof(*t) + bytes;
	case HB_KMOD_MODEL_CGROUP_EFFECTIVE:
		c = hb_wset_caller_cgrp(s);
		if (!c)
			return 0;
		for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
			struct hb_prog_array *a = rcu_dereference_protected(c->effective[h],
									    lockdep_is_held(&s->lock));

			if (a != HB_EMPTY_ARRAY)
				bytes += hb_array_bytes(a->cnt);
		}
		return sizeof(*c) + bytes;
	default:
		return 0;
	}
}

/* A copy of @src (an array of the caller's state): accounted, or NULL without memory. */
static struct hb_prog_array *hb_wset_array_copy(struct hb_session *s, struct hb_prog_array *src)
{
	struct hb_prog_array *a;

	if (src == HB_EMPTY_ARRAY)
		return HB_EMPTY_ARRAY;
	a = hb_array_alloc(s, src->cnt);
	if (a)
		memcpy(a->progs, src->progs, src->cnt * sizeof(a->progs[0]));
	return a;
}

/* Frees an array made by hb_wset_array_copy() (no reader can see it any more). */
static void hb_wset_array_free(struct hb_session *s, struct hb_prog_array *a)
{
	if (!a || a == HB_EMPTY_ARRAY)
		return;
	hb_account(s, HB_ST_PROG_ARRAYS, -1, -(long)hb_array_bytes(a->cnt));
	kvfree(a);
}

/* task-chain and task-hook-array: W task entries, empty until their chains or arrays come. */
static int hb_wset_tasks(struct hb_session *s, struct hb_wset *ws)
{
	for (ws->built = 0; ws->built < ws->w; ws->built++) {
		struct hb_task *t = kmalloc(sizeof(*t), GFP_KERNEL | __GFP_NOWARN);

		if (!t)
			return -ENOMEM;
		t->h.key = HB_WSET_KEY(ws->built);
		RCU_INIT_POINTER(t->chain, NULL);
		RCU_INIT_POINTER(t->arrays, &hb_empty_task_arrays);
		ws->states[ws->built] = t;
		hb_account(s, HB_ST_TASK_ENTRIES, 1, sizeof(*t));
	}
	return 0;
}

/* task-chain: each entry gets its own copy of @caller's chain, level by level (see the top). */
static int hb_wset_chains(struct hb_session *s, struct hb_wset *ws, struct hb_task *caller)
{
	struct hb_chain_node *head = rcu_dereference_protected(caller->chain,
							       lockdep_is_held(&s->lock));
	struct hb_chain_node **levels, *n;
	u32 len = head ? head->len : 0, k, i;

	if (!len)
		return 0;
	/* the caller's nodes oldest first */
	levels = kvmalloc_array(len, sizeof(*levels), GFP_KERNEL | __GFP_NOWARN);
	if (!levels)
		return -ENOMEM;
	for (n = head, k = len; n && k; n = n->prev)
		levels[--k] = n;
	for (k = 0; k < len; k++) {
		for (i = 0; i < ws->w; i++) {
			struct hb_task *t = ws->states[i];
			struct hb_chain_node *c = kmalloc(sizeof(*c), GFP_KERNEL | __GFP_NOWARN);

			if (!c) {
				kvfree(levels);
				return -ENOMEM;
			}
			c->prev = rcu_dereference_protected(t->chain, lockdep_is_held(&s->lock));
			c->prog = levels[k]->prog;
			c->hook = levels[k]->hook;
			c->len = levels[k]->len;
			refcount_set(&c->usage, 1);
			hb_account(s, HB_ST_CHAIN_NODES, 1, sizeof(*c));
			RCU_INIT_POINTER(t->chain, c);
		}
		cond_resched();
	}
	kvfree(levels);
	return 0;
}

/* task-hook-array: each entry gets its own array set with copies of @caller's arrays. */
static int hb_wset_task_arrays(struct hb_session *s, struct hb_wset *ws, struct hb_task *caller)
{
	struct hb_task_arrays *src = rcu_dereference_protected(caller->arrays,
							       lockdep_is_held(&s->lock));
	u32 i, h;

	if (src == &hb_empty_task_arrays)
		return 0;
	for (i = 0; i < ws->w; i++) {
		struct hb_task *t = ws->states[i];
		struct hb_task_arrays *ta = kmalloc(sizeof(*ta), GFP_KERNEL | __GFP_NOWARN);

		if (!ta)
			return -ENOMEM;
		for (h = 0; h < HB_KMOD_MAX_HOOKS; h++)
			ta->hooks[h] = HB_EMPTY_ARRAY;
		refcount_set(&ta->usage, 1);
		hb_account(s, HB_ST_TASK_ARRAYS, 1, sizeof(*ta));
		RCU_INIT_POINTER(t->arrays, ta);
		for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
			ta->hooks[h] = hb_wset_array_copy(s, src->hooks[h]);
			if (!ta->hooks[h]) {
				ta->hooks[h] = HB_EMPTY_ARRAY;
				return -ENOMEM;
			}
		}
		if (!(i % 256))
			cond_resched();
	}
	return 0;
}

/* cgroup-effective: W cgroup entries, each with copies of @caller's effective arrays. */
static int hb_wset_cgroups(struct hb_session *s, struct hb_wset *ws, struct hb_cgrp *caller)
{
	u32 h;

	for (ws->built = 0; ws->built < ws->w; ws->built++) {
		struct hb_cgrp *c = kzalloc(sizeof(*c), GFP_KERNEL | __GFP_NOWARN);

		if (!c)
			return -ENOMEM;
		c->h.key = HB_WSET_KEY(ws->built);
		for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
			INIT_LIST_HEAD(&c->attached[h]);
			RCU_INIT_POINTER(c->effective[h], HB_EMPTY_ARRAY);
		}
		ws->states[ws->built] = c;
		hb_account(s, HB_ST_CGROUP_ENTRIES, 1, sizeof(*c));
		for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
			struct hb_prog_array *src, *a;

			src = rcu_dereference_protected(caller->effective[h], lockdep_is_held(&s->lock));
			a = hb_wset_array_copy(s, src);
			if (!a)
				return -ENOMEM;
			RCU_INIT_POINTER(c->effective[h], a);
		}
		if (!(ws->built % 256))
			cond_resched();
	}
	return 0;
}

/* Publishes every state in the session's table (task entries under task_lock, as the probes). */
static void hb_wset_insert(struct hb_session *s, struct hb_wset *ws)
{
	u32 i;

	for (i = 0; i < ws->w; i++) {
		struct hb_hnode *h = ws->states[i];   /* the first member of both entry types */
		struct hlist_head *table = ws->model == HB_KMOD_MODEL_CGROUP_EFFECTIVE ? s->cgroups
										       : s->tasks;

		if (ws->model != HB_KMOD_MODEL_CGROUP_EFFECTIVE)
			spin_lock(&s->task_lock);
		hlist_add_head_rcu(&h->node, &table[hash_ptr(h->key, HB_HASH_BITS)]);
		if (ws->model != HB_KMOD_MODEL_CGROUP_EFFECTIVE)
			spin_unlock(&s->task_lock);
	}
	ws->inserted = true;
}

int hb_wset_build(struct hb_session *s, u32 model, u32 w, u64 seed, struct hb_wset *ws)
{
	u64 one, avail;
	int err;

	lockdep_assert_held(&s->lock);
	memset(ws, 0, sizeof(*ws));
	ws->w = w;
	ws->model = model;
	one = hb_wset_state_bytes(s, model);
	if (!one)
		return -EAGAIN;   /* the caller's state is gone: it moved to another cgroup */
	if (one * w > HB_KMOD_MAX_WORKING_SET_BYTES)
		return -E2BIG;
	avail = (u64)si_mem_available() << PAGE_SHIFT;
	if (one * w > avail / 2)
		return -ENOMEM;
	ws->perm = kvmalloc_array(w, sizeof(*ws->perm), GFP_KERNEL | __GFP_NOWARN);
	ws->states = kvcalloc(w, sizeof(*ws->states), GFP_KERNEL | __GFP_NOWARN);
	if (!ws->perm || !ws->states) {
		err = -ENOMEM;
		goto fail;
	}
	hb_wset_permute(ws->perm, w, seed);
	if (model == HB_KMOD_MODEL_CGROUP_EFFECTIVE) {
		struct hb_cgrp *caller = hb_wset_caller_cgrp(s);

		err = caller ? hb_wset_cgroups(s, ws, caller) : -EAGAIN;
	} else {
		struct hb_task *caller = hb_wset_caller_task(s);

		err = caller ? hb_wset_tasks(s, ws) : -EAGAIN;
		if (!err && model == HB_KMOD_MODEL_TASK_CHAIN)
			err = hb_wset_chains(s, ws, caller);
		else if (!err)
			err = hb_wset_task_arrays(s, ws, caller);
	}
	if (err)
		goto fail;
	hb_wset_insert(s, ws);
	ws->bytes = one * w;
	return 0;
fail:
	hb_wset_free(s, ws);
	return err;
}

/* Frees task entry @t of a working set with its chain or array set (unreachable by now). */
static void hb_wset_task_free(struct hb_session *s, struct hb_task *t)
{
	struct hb_chain_node *n = rcu_dereference_protected(t->chain, 1);
	struct hb_task_arrays *ta = rcu_dereference_protected(t->arrays, 1);
	u32 h;

	while (n) {
		struct hb_chain_node *prev = n->prev;

		hb_account(s, HB_ST_CHAIN_NODES, -1, -(long)sizeof(*n));
		kfree(n);
		n = prev;
	}
	if (ta != &hb_empty_task_arrays) {
		for (h = 0; h < HB_KMOD_MAX_HOOKS; h++)
			hb_wset_array_free(s, ta->hooks[h]);
		hb_account(s, HB_ST_TASK_ARRAYS, -1, -(long)sizeof(*ta));
		kfree(ta);
	}
	hb_account(s, HB_ST_TASK_ENTRIES, -1, -(long)sizeof(*t));
	kfree(t);
}

/* Frees cgroup entry @c of a working set with its arrays (unreachable by now). */
static void hb_wset_cgrp_free(struct hb_session *s, struct hb_cgrp *c)
{
	u32 h;

	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++)
		hb_wset_array_free(s, rcu_dereference_protected(c->effective[h], 1));
	hb_account(s, HB_ST_CGROUP_ENTRIES, -1, -(long)sizeof(*c));
	kfree(c);
}

void hb_wset_free(struct hb_session *s, struct hb_wset *ws)
{
	u32 i, n = ws->states ? ws->w : 0;   /* unbuilt slots are NULL (kvcalloc) */

	lockdep_assert_held(&s->lock);
	if (ws->inserted) {
		for (i = 0; i < ws->w; i++) {
			struct hb_hnode *h = ws->states[i];

			if (ws->model != HB_KMOD_MODEL_CGROUP_EFFECTIVE)
				spin_lock(&s->task_lock);
			hlist_del_rcu(&h->node);
			if (ws->model != HB_KMOD_MODEL_CGROUP_EFFECTIVE)
				spin_unlock(&s->task_lock);
		}
		/* fires of other tasks and the fork/exit probes may still walk these buckets */
		synchronize_rcu();
	}
	for (i = 0; i < n; i++) {
		if (!ws->states[i])
			continue;
		if (ws->model == HB_KMOD_MODEL_CGROUP_EFFECTIVE)
			hb_wset_cgrp_free(s, ws->states[i]);
		else
			hb_wset_task_free(s, ws->states[i]);
		if (!(i % 256))
			cond_resched();
	}
	kvfree(ws->states);
	kvfree(ws->perm);
	memset(ws, 0, sizeof(*ws));
}
