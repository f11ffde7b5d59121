// SPDX-License-Identifier: GPL-2.0-only
/*
 * hb_fire.c: hookbench.ko's synthetic hook. One fire finds the state of the model (the same
 * hb_lookup() for every model that has per-task or per-cgroup state, see hb_internal.h) and
 * runs the programs in effect, with preemption disabled and under rcu_read_lock() as the
 * kernel runs a hook (bpf_prog_run_array_cg(), __seccomp_filter()). FIRE fires once per ioctl;
 * RUN is the in-kernel timed loop, over the caller's state or (working set W > 1) over W copies
 * of it in a seeded order (hb_wset.c builds them).
 */
#include <linux/errno.h>
#include <linux/ktime.h>
#include <linux/preempt.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "hb_internal.h"

/* bpf_prog_run_array(): run the array up to its NULL slot. */
static __always_inline u32 hb_run_array(const struct hb_prog_array *arr, const u64 *ctx,
					 u32 *verdict)
{
	struct bpf_prog *const *item = arr->progs;
	const struct bpf_prog *prog;
	u32 ran = 0;

	while ((prog = READ_ONCE(*item))) {
		*verdict &= hb_run_prog(prog, ctx);
		item++;
		ran++;
	}
	return ran;
}

/*
 * task-chain: walk the whole chain, run the nodes of @hook (the RFC's and seccomp's walk).
 * @key: the task's table key (current, or a working-set state's).
 */
static __always_inline u32 hb_fire_task_chain(struct hb_session *s, const void *key, u32 hook,
					       const u64 *ctx, u32 *verdict, bool *found)
{
	const struct hb_chain_node *n;
	struct hb_task *t;
	u32 ran = 0;

	t = hb_task_lookup(s, key, false);
	if (unlikely(!t)) {
		*found = false;
		return 0;
	}
	for (n = rcu_dereference(t->chain); n; n = n->prev) {
		if (n->hook != hook)
			continue;
		*verdict &= hb_run_prog(n->prog, ctx);
		ran++;
	}
	return ran;
}

/* task-hook-array: index the task's array set by hook, run that array. @key as task-chain's. */
static __always_inline u32 hb_fire_task_hook_array(struct hb_session *s, const void *key, u32 hook,
						    const u64 *ctx, u32 *verdict, bool *found)
{
	struct hb_task *t;

	t = hb_task_lookup(s, key, false);
	if (unlikely(!t)) {
		*found = false;
		return 0;
	}
	return hb_run_array(rcu_dereference(t->arrays)->hooks[hook], ctx, verdict);
}

/*
 * cgroup-effective: the cgroup's effective[hook], run it. @key: the cgroup's table key, NULL
 * for the caller's cgroup (current -> cgroups -> dfl_cgrp, two dependent loads of hot lines for
 * one task); a working-set state's key is looked up directly.
 */
static __always_inline u32 hb_fire_cgroup_effective(struct hb_session *s, const void *key,
						     u32 hook, const u64 *ctx, u32 *verdict,
						     bool *found)
{
	struct hb_cgrp *c;

	c = hb_cgrp_lookup(s, key ?: task_dfl_cgroup(current), false);
	if (unlikely(!c)) {
		*found = false;
		return 0;
	}
	return hb_run_array(rcu_dereference(c->effective[hook]), ctx, verdict);
}

/* global-filter: run every program of the hook's global list. */
static __always_inline u32 hb_fire_global_filter(struct hb_session *s, u32 hook, const u64 *ctx,
						  u32 *verdict)
{
	return hb_run_array(rcu_dereference(s->global[hook]), ctx, verdict);
}

/*
 * One fire. With a constant @model (RUN) the switch disappears; FIRE pays one predictable
 * branch. @key: the state's table key, NULL for the caller's (current, its cgroup). Caller:
 * preemption disabled, rcu_read_lock() held.
 */
static __always_inline u32 hb_fire_model(struct hb_session *s, const u32 model, const void *key,
					 u32 hook, const u64 *ctx, u32 *verdict, bool *found)
{
	switch (model) {
	case HB_KMOD_MODEL_TASK_CHAIN:
		return hb_fire_task_chain(s, key ?: current, hook, ctx, verdict, found);
	case HB_KMOD_MODEL_TASK_HOOK_ARRAY:
		return hb_fire_task_hook_array(s, key ?: current, hook, ctx, verdict, found);
	case HB_KMOD_MODEL_CGROUP_EFFECTIVE:
		return hb_fire_cgroup_effective(s, key, hook, ctx, verdict, found);
	case HB_KMOD_MODEL_GLOBAL_FILTER:
		return hb_fire_global_filter(s, hook, ctx, verdict);
	default:
		return 0;
	}
}

/* The hook's context (see the uapi header). */
static void hb_build_ctx(u64 *ctx, u32 model, u32 hook)
{
	rcu_read_lock();
	ctx[HB_KMOD_CTX_CGROUP_ID] = cgroup_id(task_dfl_cgroup(current));
	rcu_read_unlock();
	ctx[HB_KMOD_CTX_HOOK] = hook;
	ctx[HB_KMOD_CTX_PID] = task_pid_nr(current);
	ctx[HB_KMOD_CTX_MODEL] = model;
}

static u32 hb_fire_one(struct hb_session *s, u32 model, u32 hook, const u64 *ctx, u32 *verdict,
		       bool *found)
{
	u32 ran;

	*verdict = HB_KMOD_VERDICT_ALLOW;
	*found = true;
	preempt_disable();
	rcu_read_lock();
	ran = hb_fire_model(s, model, NULL, hook, ctx, verdict, found);
	rcu_read_unlock();
	preempt_enable();
	return ran;
}

int hb_fire_once(struct hb_session *s, struct hb_kmod_fire *f)
{
	u64 ctx[HB_KMOD_CTX_ARGS];
	u32 verdict, ran;
	bool found;
	int err;

	hb_build_ctx(ctx, f->model, f->hook);
	ran = hb_fire_one(s, f->model, f->hook, ctx, &verdict, &found);
	if (unlikely(!found)) {
		/* first fire of this task or cgroup in the session: create its state, fire again */
		err = hb_ensure_state(s, f->model);
		if (err)
			return err;
		ran = hb_fire_one(s, f->model, f->hook, ctx, &verdict, &found);
	}
	f->progs_run = ran;
	f->verdict = verdict;
	f->cgroup_id = ctx[HB_KMOD_CTX_CGROUP_ID];
	return 0;
}

/* Opens one timed batch: no preemption until hb_batch_end(); returns the batch's start (ns). */
static __always_inline u64 hb_batch_begin(void)
{
	preempt_disable();
	return ktime_get_ns();
}

/*
 * Closes the batch opened at @t0 as sample @i: stores its ns in @out[i], adds them to @total, and
 * lets a signal (-EINTR) or the scheduler in between batches. 0, -EFAULT or -EINTR.
 */
static __always_inline int hb_batch_end(u64 t0, u64 __user *out, u32 i, u64 *total)
{
	u64 t1 = ktime_get_ns();

	preempt_enable();
	if (put_user(t1 - t0, out + i))
		return -EFAULT;
	*total += t1 - t0;
	if (signal_pending(current))
		return -EINTR;
	cond_resched();
	return 0;
}

/* The timed loop for one (constant) model. */
static __always_inline int hb_timed(struct hb_session *s, const u32 model, struct hb_kmod_run *r,
				    const u64 *ctx)
{
	u64 __user *out = u64_to_user_ptr(r->samples_addr);
	const u32 hook = r->hook, batch = r->batch, samples = r->samples;
	u32 verdict = HB_KMOD_VERDICT_ALLOW;
	u64 progs = 0, total = 0;
	bool found = true;
	u32 i, k;

	for (i = 0; i < samples; i++) {
		const u64 t0 = hb_batch_begin();
		int err;

		for (k = 0; k < batch; k++) {
			rcu_read_lock();
			progs += hb_fire_model(s, model, NULL, hook, ctx, &verdict, &found);
			rcu_read_unlock();
		}
		err = hb_batch_end(t0, out, i, &total);
		if (err)
			return err;
	}
	r->progs_run = progs;
	r->verdict = verdict;
	r->total_ns = total;
	return 0;
}

/*
 * The timed loop over a working set: fire f uses state perm[f % W], looked up by its key in the
 * session's table as hb_timed()'s fires look up the caller. Beyond hb_timed() a fire costs the
 * read of perm[] (sequential), the wrap of the index and the digest's multiply (registers only).
 */
static __always_inline int hb_timed_wset(struct hb_session *s, const u32 model,
					 struct hb_kmod_run *r, const u64 *ctx,
					 const struct hb_wset *ws)
{
	u64 __user *out = u64_to_user_ptr(r->samples_addr);
	const u32 hook = r->hook, batch = r->batch, samples = r->samples, w = ws->w;
	const u32 *perm = ws->perm;
	u32 verdict = HB_KMOD_VERDICT_ALLOW;
	u64 progs = 0, total = 0, digest = 0;
	bool found = true;
	u32 i, k, pos = 0;

	for (i = 0; i < samples; i++) {
		const u64 t0 = hb_batch_begin();
		int err;

		for (k = 0; k < batch; k++) {
			const void *key = HB_WSET_KEY(perm[pos]);

			if (++pos == w)
				pos = 0;
			rcu_read_lock();
			if (model == HB_KMOD_MODEL_TASK_CHAIN)
				progs += hb_fire_task_chain(s, key, hook, ctx, &verdict, &found);
			else if (model == HB_KMOD_MODEL_TASK_HOOK_ARRAY)
				progs += hb_fire_task_hook_array(s, key, hook, ctx, &verdict,
								 &found);
			else
				progs += hb_fire_cgroup_effective(s, key, hook, ctx, &verdict,
								  &found);
			rcu_read_unlock();
			digest = (digest ^ (unsigned long)key) * HB_KMOD_DIGEST_PRIME;
		}
		err = hb_batch_end(t0, out, i, &total);
		if (err)
			return err;
	}
	/* every state is in the table until hb_wset_free(): a miss is a bug of this file */
	if (WARN_ON_ONCE(!found))
		return -EIO;
	r->progs_run = progs;
	r->verdict = verdict;
	r->total_ns = total;
	r->states_digest = digest;
	r->working_set_bytes = ws->bytes;
	return 0;
}

/* hb_timed_wset() for a model known at run time, with the session's lock held around it. */
static int hb_run_wset(struct hb_session *s, struct hb_kmod_run *r, const u64 *ctx)
{
	struct hb_wset ws;
	int err;

	mutex_lock(&s->lock);
	err = hb_wset_build(s, r->model, r->working_set, r->seed, &ws);
	if (err)
		goto unlock;
	switch (r->model) {
	case HB_KMOD_MODEL_TASK_CHAIN:
		err = hb_timed_wset(s, HB_KMOD_MODEL_TASK_CHAIN, r, ctx, &ws);
		break;
	case HB_KMOD_MODEL_TASK_HOOK_ARRAY:
		err = hb_timed_wset(s, HB_KMOD_MODEL_TASK_HOOK_ARRAY, r, ctx, &ws);
		break;
	case HB_KMOD_MODEL_CGROUP_EFFECTIVE:
		err = hb_timed_wset(s, HB_KMOD_MODEL_CGROUP_EFFECTIVE, r, ctx, &ws);
		break;
	default:   /* global-filter: refused by the ioctl's checks */
		err = -EINVAL;
		break;
	}
	hb_wset_free(s, &ws);
unlock:
	mutex_unlock(&s->lock);
	return err;
}

/* Nodes of the calling task's chain (what one task-chain fire walks). */
static u32 hb_current_chain_len(struct hb_session *s)
{
	const struct hb_chain_node *n;
	struct hb_task *t;
	u32 len = 0;

	rcu_read_lock();
	t = hb_task_lookup(s, current, false);
	if (t) {
		n = rcu_dereference(t->chain);
		len = n ? n->len : 0;
	}
	rcu_read_unlock();
	return len;
}

int hb_run_loop(struct hb_session *s, struct hb_kmod_run *r)
{
	u64 ctx[HB_KMOD_CTX_ARGS];
	u64 work;
	u32 verdict;
	bool found;
	int err;

	if (!r->samples_addr ||
	    !access_ok(u64_to_user_ptr(r->samples_addr), (size_t)r->samples * sizeof(u64)))
		return -EFAULT;
	err = hb_ensure_state(s, r->model);
	if (err)
		return err;
	hb_build_ctx(ctx, r->model, r->hook);
	/* one untimed fire: the programs one fire runs */
	r->progs_per_fire = hb_fire_one(s, r->model, r->hook, ctx, &verdict, &found);
	/* a batch runs with preemption disabled: bound its work */
	work = max_t(u64, r->progs_per_fire, 1);
	if (r->model == HB_KMOD_MODEL_TASK_CHAIN)
		work = max_t(u64, work, hb_current_chain_len(s));
	if (work * r->batch > HB_KMOD_MAX_BATCH_WORK)
		return -E2BIG;
	if (r->working_set > 1)
		return hb_run_wset(s, r, ctx);
	if (r->model != HB_KMOD_MODEL_GLOBAL_FILTER) {
		mutex_lock(&s->lock);
		r->working_set_bytes = hb_wset_state_bytes(s, r->model);
		mutex_unlock(&s->lock);
	}
	switch (r->model) {
	case HB_KMOD_MODEL_TASK_CHAIN:
		return hb_timed(s, HB_KMOD_MODEL_TASK_CHAIN, r, ctx);
	case HB_KMOD_MODEL_TASK_HOOK_ARRAY:
		return hb_timed(s, HB_KMOD_MODEL_TASK_HOOK_ARRAY, r, ctx);
	case HB_KMOD_MODEL_CGROUP_EFFECTIVE:
		return hb_timed(s, HB_KMOD_MODEL_CGROUP_EFFECTIVE, r, ctx);
	case HB_KMOD_MODEL_GLOBAL_FILTER:
		return hb_timed(s, HB_KMOD_MODEL_GLOBAL_FILTER, r, ctx);
	default:
		return -EINVAL;
	}
}
