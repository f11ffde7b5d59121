// SPDX-License-Identifier: GPL-2.0-only
/*
 * hb_models.c: hookbench.ko's shared state and its task models: the built-in null body and
 * empty arrays, the deferred (RCU) frees, program arrays, sessions and RESET, task-chain
 * installs (seccomp-style shared nodes), task-hook-array installs (copy on write), and the
 * fork/exit tracepoint probes that share a task's state with its children and release it at
 * exit. The attach models (cgroup-effective, global-filter) are in hb_cgroup.c, the hook
 * itself in hb_fire.c, the lookup shared by all models in hb_internal.h.
 */
#include <linux/errno.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tracepoint.h>
#include <linux/version.h>
#include <linux/workqueue.h>

#include "hb_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* Built-in null body, the shared empty arrays. */

char hb_null_body_marker;

static noinline u32 hb_null_body(const u64 *ctx)
{
	return HB_KMOD_VERDICT_ALLOW;
}

u32 (*hb_null_body_fn)(const u64 *ctx) __read_mostly = hb_null_body;

struct hb_empty_prog_array hb_empty_storage = {
	.null_prog = NULL,
};

struct hb_task_arrays hb_empty_task_arrays = {
	.hooks = { [0 ... HB_KMOD_MAX_HOOKS - 1] = &hb_empty_storage.hdr },
};

/* ---------------------------------------------------------------------------------------- */
/* Deferred frees: objects unlinked by any context are freed by a worker after a grace period,
 * so that hooks running under rcu_read_lock() never see freed memory, and program references
 * are dropped in process context.
 */

static LLIST_HEAD(hb_free_list);

static void hb_free_workfn(struct work_struct *work)
{
	struct llist_node *list, *pos, *next;

	while ((list = llist_del_all(&hb_free_list))) {
		synchronize_rcu();
		llist_for_each_safe(pos, next, list) {
			struct hb_deferred *d = llist_entry(pos, struct hb_deferred, llnode);

			d->free(d);
			cond_resched();
		}
	}
}

static DECLARE_WORK(hb_free_work, hb_free_workfn);

void hb_defer(struct hb_deferred *d, void (*free)(struct hb_deferred *d))
{
	d->free = free;
	llist_add(&d->llnode, &hb_free_list);
	schedule_work(&hb_free_work);
}

void hb_deferred_flush(void)
{
	do {
		flush_work(&hb_free_work);
	} while (!llist_empty(&hb_free_list));
}

/* ---------------------------------------------------------------------------------------- */
/* Programs and arrays. */

void hb_prog_put(struct bpf_prog *prog)
{
	if (prog && prog != HB_NULL_BODY)
		bpf_prog_put(prog);
}

static void hb_prog_inc(struct bpf_prog *prog)
{
	if (prog != HB_NULL_BODY)
		bpf_prog_inc(prog);
}

size_t hb_array_bytes(u32 cnt)
{
	return sizeof(struct hb_prog_array) + ((size_t)cnt + 1) * sizeof(struct bpf_prog *);
}

struct hb_prog_array *hb_array_alloc(struct hb_session *s, u32 cnt)
{
	size_t bytes = hb_array_bytes(cnt);
	struct hb_prog_array *a = kvmalloc(bytes, GFP_KERNEL);

	if (!a)
		return NULL;
	a->cnt = cnt;
	a->pad = 0;
	a->progs[cnt] = NULL;
	hb_account(s, HB_ST_PROG_ARRAYS, 1, bytes);
	return a;
}

static void hb_array_free_fn(struct hb_deferred *d)
{
	kvfree(container_of(d, struct hb_prog_array, dfr));
}

void hb_array_release(struct hb_session *s, struct hb_prog_array *a)
{
	if (!a || a == HB_EMPTY_ARRAY)
		return;
	hb_account(s, HB_ST_PROG_ARRAYS, -1, -(long)hb_array_bytes(a->cnt));
	hb_defer(&a->dfr, hb_array_free_fn);
}

/* ---------------------------------------------------------------------------------------- */
/* task-chain nodes and task-hook-array sets. */

static void hb_chain_node_free(struct hb_deferred *d)
{
	struct hb_chain_node *n = container_of(d, struct hb_chain_node, dfr);

	hb_prog_put(n->prog);
	kfree(n);
}

/*
 * Drops one reference on @n and, as they become unused, on its older nodes, like
 * __seccomp_filter_release(). Every reference is dropped here, at once, so each freed node's
 * grace period starts after it became unreachable. Any context.
 */
static void hb_chain_put(struct hb_session *s, struct hb_chain_node *n)
{
	while (n && refcount_dec_and_test(&n->usage)) {
		struct hb_chain_node *prev = n->prev;

		hb_account(s, HB_ST_CHAIN_NODES, -1, -(long)sizeof(*n));
		hb_defer(&n->dfr, hb_chain_node_free);
		n = prev;
	}
}

static void hb_task_arrays_free(struct hb_deferred *d)
{
	struct hb_task_arrays *ta = container_of(d, struct hb_task_arrays, dfr);
	u32 h, i;

	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		struct hb_prog_array *a = ta->hooks[h];

		if (a == HB_EMPTY_ARRAY)
			continue;
		for (i = 0; i < a->cnt; i++)
			hb_prog_put(a->progs[i]);
		kvfree(a);
	}
	kfree(ta);
}

/* Drops one reference on a task's array set. Any context. */
static void hb_task_arrays_put(struct hb_session *s, struct hb_task_arrays *ta)
{
	u32 h;

	if (!ta || ta == &hb_empty_task_arrays || !refcount_dec_and_test(&ta->usage))
		return;
	hb_account(s, HB_ST_TASK_ARRAYS, -1, -(long)sizeof(*ta));
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		if (ta->hooks[h] != HB_EMPTY_ARRAY)
			hb_account(s, HB_ST_PROG_ARRAYS, -1,
				   -(long)hb_array_bytes(ta->hooks[h]->cnt));
	}
	hb_defer(&ta->dfr, hb_task_arrays_free);
}

/* ---------------------------------------------------------------------------------------- */
/* Task entries. */

static void hb_task_free(struct hb_deferred *d)
{
	kfree(container_of(d, struct hb_task, dfr));
}

static struct hb_task *hb_task_new(struct task_struct *key, gfp_t gfp)
{
	struct hb_task *t = kmalloc(sizeof(*t), gfp);

	if (!t)
		return NULL;
	t->h.key = key;
	RCU_INIT_POINTER(t->chain, NULL);
	RCU_INIT_POINTER(t->arrays, &hb_empty_task_arrays);
	return t;
}

/* Publishes @t. Caller holds task_lock. */
static void hb_task_insert(struct hb_session *s, struct hb_task *t)
{
	hlist_add_head_rcu(&t->h.node, &s->tasks[hash_ptr(t->h.key, HB_HASH_BITS)]);
	hb_account(s, HB_ST_TASK_ENTRIES, 1, sizeof(*t));
}

/* Unlinks @t and releases its state. Caller holds task_lock. */
static void hb_task_remove(struct hb_session *s, struct hb_task *t)
{
	hlist_del_rcu(&t->h.node);
	hb_chain_put(s, rcu_dereference_protected(t->chain, lockdep_is_held(&s->task_lock)));
	hb_task_arrays_put(s, rcu_dereference_protected(t->arrays, lockdep_is_held(&s->task_lock)));
	hb_account(s, HB_ST_TASK_ENTRIES, -1, -(long)sizeof(*t));
	hb_defer(&t->dfr, hb_task_free);
}

/*
 * The calling task's entry, created empty if it has none. Caller holds s->lock; the entry
 * stays valid until s->lock is released (only RESET, under s->lock, and the task's own exit
 * remove it).
 */
static struct hb_task *hb_task_current(struct hb_session *s)
{
	struct hb_task *t;

	lockdep_assert_held(&s->lock);
	rcu_read_lock();
	t = hb_task_lookup(s, current, false);
	rcu_read_unlock();
	if (t)
		return t;
	t = hb_task_new(current, GFP_KERNEL);
	if (!t)
		return ERR_PTR(-ENOMEM);
	spin_lock(&s->task_lock);
	hb_task_insert(s, t);
	spin_unlock(&s->task_lock);
	return t;
}

/* task-chain: push a node on the calling task's chain (seccomp_attach_filter). */
static int hb_chain_install(struct hb_session *s, struct hb_task *t, struct bpf_prog *prog,
			    u32 hook, u32 *count)
{
	struct hb_chain_node *old = rcu_dereference_protected(t->chain, lockdep_is_held(&s->lock));
	struct hb_chain_node *n;

	if (old && old->len >= HB_KMOD_MAX_TASK_PROGS)
		return -E2BIG;
	n = kmalloc(sizeof(*n), GFP_KERNEL);
	if (!n)
		return -ENOMEM;
	n->prev = old;   /* the task's reference on @old moves to the new node */
	n->prog = prog;
	n->hook = hook;
	n->len = old ? old->len + 1 : 1;
	refcount_set(&n->usage, 1);
	hb_account(s, HB_ST_CHAIN_NODES, 1, sizeof(*n));
	spin_lock(&s->task_lock);
	rcu_assign_pointer(t->chain, n);
	spin_unlock(&s->task_lock);
	*count = n->len;
	return 0;
}

/* task-hook-array: give the calling task a new array set with @prog appended on @hook. */
static int hb_arrays_install(struct hb_session *s, struct hb_task *t, struct bpf_prog *prog,
			     u32 hook, u32 *count)
{
	struct hb_task_arrays *old =
		rcu_dereference_protected(t->arrays, lockdep_is_held(&s->lock));
	struct hb_task_arrays *na;
	u32 h, i;

	if (old->hooks[hook]->cnt >= HB_KMOD_MAX_TASK_PROGS)
		return -E2BIG;
	na = kmalloc(sizeof(*na), GFP_KERNEL);
	if (!na)
		return -ENOMEM;
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++)
		na->hooks[h] = HB_EMPTY_ARRAY;
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		struct hb_prog_array *src = old->hooks[h], *a;
		u32 cnt = src->cnt + (h == hook ? 1 : 0);

		if (!cnt)
			continue;
		a = hb_array_alloc(s, cnt);
		if (!a)
			goto nomem;
		memcpy(a->progs, src->progs, src->cnt * sizeof(a->progs[0]));
		if (h == hook)
			a->progs[src->cnt] = prog;
		na->hooks[h] = a;
	}
	/* The new set's own references: the copies' (the new program's comes from the caller). */
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		for (i = 0; i < old->hooks[h]->cnt; i++)
			hb_prog_inc(old->hooks[h]->progs[i]);
	}
	refcount_set(&na->usage, 1);
	hb_account(s, HB_ST_TASK_ARRAYS, 1, sizeof(*na));
	spin_lock(&s->task_lock);
	rcu_assign_pointer(t->arrays, na);
	spin_unlock(&s->task_lock);
	hb_task_arrays_put(s, old);
	*count = na->hooks[hook]->cnt;
	return 0;

nomem:
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		if (na->hooks[h] != HB_EMPTY_ARRAY) {
			hb_account(s, HB_ST_PROG_ARRAYS, -1,
				   -(long)hb_array_bytes(na->hooks[h]->cnt));
			kvfree(na->hooks[h]);
		}
	}
	kfree(na);
	return -ENOMEM;
}

int hb_task_install(struct hb_session *s, u32 model, struct bpf_prog *prog, u32 hook,
		    struct hb_kmod_attach *a)
{
	struct hb_task *t;
	u64 t0;
	int err;

	mutex_lock(&s->lock);
	t = hb_task_current(s);
	if (IS_ERR(t)) {
		err = PTR_ERR(t);
		goto out;
	}
	t0 = ktime_get_ns();
	if (model == HB_KMOD_MODEL_TASK_CHAIN)
		err = hb_chain_install(s, t, prog, hook, &a->count);
	else
		err = hb_arrays_install(s, t, prog, hook, &a->count);
	a->elapsed_ns = ktime_get_ns() - t0;
out:
	mutex_unlock(&s->lock);
	return err;
}

/* ---------------------------------------------------------------------------------------- */
/* State for the firing task or cgroup (FIRE, RUN). */

int hb_ensure_state(struct hb_session *s, u32 model)
{
	struct hb_task *t;

	switch (model) {
	case HB_KMOD_MODEL_TASK_CHAIN:
	case HB_KMOD_MODEL_TASK_HOOK_ARRAY:
		mutex_lock(&s->lock);
		t = hb_task_current(s);
		mutex_unlock(&s->lock);
		return PTR_ERR_OR_ZERO(t);
	case HB_KMOD_MODEL_CGROUP_EFFECTIVE:
		return hb_cgrp_ensure_current(s);
	default:
		return 0;
	}
}

/* ---------------------------------------------------------------------------------------- */
/* Sessions, RESET. */

static LIST_HEAD(hb_sessions);           /* walked by the probes under RCU */
static DEFINE_MUTEX(hb_sessions_lock);   /* writers */

void hb_session_reset(struct hb_session *s)
{
	struct hlist_node *tmp;
	struct hb_task *t;
	u32 b;

	mutex_lock(&s->lock);
	for (b = 0; b < HB_HASH_SIZE; b++) {
		spin_lock(&s->task_lock);
		hlist_for_each_entry_safe(t, tmp, &s->tasks[b], h.node)
			hb_task_remove(s, t);
		spin_unlock(&s->task_lock);
	}
	hb_attached_reset(s);
	mutex_unlock(&s->lock);
}

struct hb_session *hb_session_create(void)
{
	struct hb_session *s = kvzalloc(sizeof(*s), GFP_KERNEL);
	u32 h;

	if (!s)
		return NULL;
	mutex_init(&s->lock);
	spin_lock_init(&s->task_lock);
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		RCU_INIT_POINTER(s->global[h], HB_EMPTY_ARRAY);
		INIT_LIST_HEAD(&s->global_attached[h]);
	}
	mutex_lock(&hb_sessions_lock);
	list_add_tail_rcu(&s->node, &hb_sessions);
	mutex_unlock(&hb_sessions_lock);
	return s;
}

/* The last reference to the open file is gone: no ioctl can run on @s any more. */
void hb_session_destroy(struct hb_session *s)
{
	mutex_lock(&hb_sessions_lock);
	list_del_rcu(&s->node);
	mutex_unlock(&hb_sessions_lock);
	synchronize_rcu();   /* no fork/exit probe still walks @s */
	hb_session_reset(s);
	mutex_destroy(&s->lock);
	kvfree(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Fork and exit: a child shares its parent's chain and array set (one more reference each, as
 * copy_seccomp() does with get_seccomp_filter()); an exiting task's state is released. The
 * probes run in the forking/exiting task with preemption disabled: no sleeping, GFP_NOWAIT.
 */

static void hb_probe_fork(void *data, struct task_struct *parent, struct task_struct *child)
{
	struct hb_session *s;

	rcu_read_lock();
	list_for_each_entry_rcu(s, &hb_sessions, node) {
		struct hb_task *pt, *ct;

		if (!hb_task_lookup(s, parent, false))
			continue;
		ct = hb_task_new(child, GFP_NOWAIT | __GFP_NOWARN);
		if (!ct) {
			hb_account(s, HB_ST_FORKS_NOMEM, 1, 0);
			continue;
		}
		spin_lock(&s->task_lock);
		pt = hb_task_lookup(s, parent, lockdep_is_held(&s->task_lock));
		if (pt && !hb_task_lookup(s, child, lockdep_is_held(&s->task_lock))) {
			struct hb_chain_node *chain;
			struct hb_task_arrays *arrays;

			chain = rcu_dereference_protected(pt->chain,
							  lockdep_is_held(&s->task_lock));
			arrays = rcu_dereference_protected(pt->arrays,
							   lockdep_is_held(&s->task_lock));
			if (chain)
				refcount_inc(&chain->usage);
			if (arrays != &hb_empty_task_arrays)
				refcount_inc(&arrays->usage);
			RCU_INIT_POINTER(ct->chain, chain);
			RCU_INIT_POINTER(ct->arrays, arrays);
			hb_task_insert(s, ct);
			hb_account(s, HB_ST_FORKS_SHARED, 1, 0);
			ct = NULL;
		}
		spin_unlock(&s->task_lock);
		kfree(ct);
	}
	rcu_read_unlock();
}

static void hb_exit_task(struct task_struct *p)
{
	struct hb_session *s;

	rcu_read_lock();
	list_for_each_entry_rcu(s, &hb_sessions, node) {
		struct hb_task *t;

		if (!hb_task_lookup(s, p, false))
			continue;
		spin_lock(&s->task_lock);
		t = hb_task_lookup(s, p, lockdep_is_held(&s->task_lock));
		if (t) {
			hb_task_remove(s, t);
			hb_account(s, HB_ST_EXITS_RELEASED, 1, 0);
		}
		spin_unlock(&s->task_lock);
	}
	rcu_read_unlock();
}

/* sched_process_exit gained group_dead in 6.16 (commit 3e816361e94a). */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0)
static void hb_probe_exit(void *data, struct task_struct *p, bool group_dead)
{
	hb_exit_task(p);
}
#else
static void hb_probe_exit(void *data, struct task_struct *p)
{
	hb_exit_task(p);
}
#endif

static struct tracepoint *hb_tp_fork, *hb_tp_exit;

static void hb_tp_find(struct tracepoint *tp, void *priv)
{
	if (!strcmp(tp->name, "sched_process_fork"))
		hb_tp_fork = tp;
	else if (!strcmp(tp->name, "sched_process_exit"))
		hb_tp_exit = tp;
}

int hb_probes_register(void)
{
	int err;

	for_each_kernel_tracepoint(hb_tp_find, NULL);
	if (!hb_tp_fork || !hb_tp_exit) {
		pr_err("hookbench: tracepoints sched_process_fork/sched_process_exit not found\n");
		return -ENOENT;
	}
	err = tracepoint_probe_register(hb_tp_fork, (void *)hb_probe_fork, NULL);
	if (err)
		return err;
	err = tracepoint_probe_register(hb_tp_exit, (void *)hb_probe_exit, NULL);
	if (err) {
		tracepoint_probe_unregister(hb_tp_fork, (void *)hb_probe_fork, NULL);
		tracepoint_synchronize_unregister();
	}
	return err;
}

void hb_probes_unregister(void)
{
	tracepoint_probe_unregister(hb_tp_exit, (void *)hb_probe_exit, NULL);
	tracepoint_probe_unregister(hb_tp_fork, (void *)hb_probe_fork, NULL);
	tracepoint_synchronize_unregister();
}
