// SPDX-License-Identifier: GPL-2.0-only
/*
 * hb_cgroup.c: hookbench.ko's attach models, whose programs hang off lists of attachments
 * rather than off tasks: cgroup-effective attach/detach with the rules and the effective-array
 * recompute of kernel/bpf/cgroup.c on per-session cgroup state, and the global-filter lists.
 * Their share of RESET is hb_attached_reset(). The task models and the state they share with
 * these (arrays, sessions, deferred frees) are in hb_models.c, the hook in hb_fire.c.
 */
#include <linux/errno.h>
#include <linux/ktime.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "hb_internal.h"

/* ---------------------------------------------------------------------------------------- */
/* Attachments: one program on a cgroup's or a global hook's list. */

static void hb_attachment_free(struct hb_deferred *d)
{
	struct hb_attachment *pl = container_of(d, struct hb_attachment, dfr);

	hb_prog_put(pl->prog);
	kfree(pl);
}

/* @pl is off its list and in no published array any more. */
static void hb_attachment_release(struct hb_session *s, struct hb_attachment *pl)
{
	hb_account(s, HB_ST_ATTACHMENTS, -1, -(long)sizeof(*pl));
	hb_defer(&pl->dfr, hb_attachment_free);
}

/* Takes every attachment off @list and releases it. */
static void hb_attachments_release(struct hb_session *s, struct list_head *list)
{
	struct hb_attachment *pl, *pt;

	list_for_each_entry_safe(pl, pt, list, node) {
		list_del(&pl->node);
		hb_attachment_release(s, pl);
	}
}

/* The first attachment of @prog on @list, or NULL. */
static struct hb_attachment *hb_attachment_find(struct list_head *list, struct bpf_prog *prog)
{
	struct hb_attachment *pl;

	list_for_each_entry(pl, list, node) {
		if (pl->prog == prog)
			return pl;
	}
	return NULL;
}

/*
 * A new attachment of @prog, on no list yet. With @unique_in, -EINVAL when @prog is on that
 * list already (the same program twice; each null-body attachment is a new instance, so the
 * null body may be there many times); -ENOMEM.
 */
static struct hb_attachment *hb_attachment_new(struct list_head *unique_in, struct bpf_prog *prog)
{
	struct hb_attachment *pl;

	if (unique_in && prog != HB_NULL_BODY && hb_attachment_find(unique_in, prog))
		return ERR_PTR(-EINVAL);
	pl = kmalloc(sizeof(*pl), GFP_KERNEL);
	if (!pl)
		return ERR_PTR(-ENOMEM);
	pl->prog = prog;
	return pl;
}

/* ---------------------------------------------------------------------------------------- */
/* cgroup-effective: kernel/bpf/cgroup.c's rules on per-session cgroup state. */

static void hb_cgrp_free(struct hb_deferred *d)
{
	struct hb_cgrp *c = container_of(d, struct hb_cgrp, dfr);

	cgroup_put(c->cgrp);
	kfree(c);
}

/* prog_list_length(): attachments not being detached. */
static u32 hb_live_attached(const struct hb_cgrp *c, u32 hook)
{
	const struct hb_attachment *pl;
	u32 n = 0;

	list_for_each_entry(pl, &c->attached[hook], node) {
		if (pl->prog)
			n++;
	}
	return n;
}

/*
 * compute_effective_progs(): the cgroup's own programs first, then each ancestor's, an
 * ancestor's only while nothing was collected yet or when it has ALLOW_MULTI. A cgroup the
 * session has no state for has nothing attached. Caller holds s->lock.
 */
static int hb_compute_effective(struct hb_session *s, struct cgroup *cgrp, u32 hook,
				struct hb_prog_array **out)
{
	const struct hb_attachment *pl;
	struct hb_prog_array *arr;
	struct hb_cgrp *pc;
	struct cgroup *p;
	u32 cnt = 0;

	p = cgrp;
	do {
		pc = hb_cgrp_lookup(s, p, lockdep_is_held(&s->lock));
		if (pc && (cnt == 0 || (pc->flags[hook] & HB_KMOD_F_ALLOW_MULTI)))
			cnt += hb_live_attached(pc, hook);
	} while ((p = cgroup_parent(p)));

	if (!cnt) {
		*out = HB_EMPTY_ARRAY;
		return 0;
	}
	arr = hb_array_alloc(s, cnt);
	if (!arr)
		return -ENOMEM;

	cnt = 0;
	p = cgrp;
	do {
		pc = hb_cgrp_lookup(s, p, lockdep_is_held(&s->lock));
		if (!pc || (cnt > 0 && !(pc->flags[hook] & HB_KMOD_F_ALLOW_MULTI)))
			continue;
		list_for_each_entry(pl, &pc->attached[hook], node) {
			if (pl->prog)
				arr->progs[cnt++] = pl->prog;
		}
	} while ((p = cgroup_parent(p)));
	*out = arr;
	return 0;
}

/*
 * The session's state for @cgrp, created if missing with effective arrays inherited from its
 * ancestors (cgroup_bpf_inherit(), which the kernel runs at mkdir). Caller holds s->lock and a
 * reference on @cgrp.
 */
static struct hb_cgrp *hb_cgrp_ensure(struct hb_session *s, struct cgroup *cgrp)
{
	struct hb_cgrp *c = hb_cgrp_lookup(s, cgrp, lockdep_is_held(&s->lock));
	u32 h;

	if (c)
		return c;
	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return ERR_PTR(-ENOMEM);
	c->h.key = cgrp;
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		struct hb_prog_array *a;
		int err;

		INIT_LIST_HEAD(&c->attached[h]);
		err = hb_compute_effective(s, cgrp, h, &a);
		if (err) {
			while (h--)
				hb_array_release(s, rcu_dereference_protected(c->effective[h], 1));
			kfree(c);
			return ERR_PTR(err);
		}
		RCU_INIT_POINTER(c->effective[h], a);
	}
	cgroup_get(cgrp);
	c->cgrp = cgrp;
	hlist_add_head_rcu(&c->h.node, &s->cgroups[hash_ptr(cgrp, HB_HASH_BITS)]);
	hb_account(s, HB_ST_CGROUP_ENTRIES, 1, sizeof(*c));
	return c;
}

/* A cgroup and its live descendants, pre-order, with references and the session's state. */
struct hb_subtree {
	struct cgroup **cgrps;
	struct hb_cgrp **entries;
	u32 n;
};

static void hb_subtree_free(struct hb_subtree *st)
{
	u32 i;

	for (i = 0; i < st->n; i++)
		cgroup_put(st->cgrps[i]);
	kvfree(st->cgrps);
	kvfree(st->entries);
	memset(st, 0, sizeof(*st));
}

/*
 * Collects @root and its online descendants (css_for_each_descendant_pre(), as
 * update_effective_progs() does; offline ones are skipped as the kernel skips cgroups whose
 * bpf.refcnt is dead), taking a reference on each, and makes sure the session has state for
 * each. The walk runs under rcu_read_lock() (the kernel holds cgroup_mutex, which modules
 * cannot take); allocation happens outside it. Caller holds s->lock. Errors: ENOENT (@root
 * was removed), ENOMEM, EAGAIN (the subtree kept growing during eight attempts).
 */
static int hb_subtree_collect(struct hb_session *s, struct cgroup *root, struct hb_subtree *st)
{
	struct cgroup_subsys_state *pos;
	bool overflow = true;
	u32 cap, i, tries;

	memset(st, 0, sizeof(*st));
	for (tries = 0; tries < 8 && overflow; tries++) {
		cap = 16;
		rcu_read_lock();
		css_for_each_descendant_pre(pos, &root->self)
			cap++;
		rcu_read_unlock();
		st->cgrps = kvmalloc_array(cap, sizeof(*st->cgrps), GFP_KERNEL);
		if (!st->cgrps)
			return -ENOMEM;
		overflow = false;
		rcu_read_lock();
		css_for_each_descendant_pre(pos, &root->self) {
			if (st->n == cap) {
				overflow = true;
				break;
			}
			if (css_tryget_online(pos))
				st->cgrps[st->n++] = container_of(pos, struct cgroup, self);
		}
		rcu_read_unlock();
		if (overflow)
			hb_subtree_free(st);
	}
	if (overflow)
		return -EAGAIN;
	if (!st->n || st->cgrps[0] != root) {
		hb_subtree_free(st);
		return -ENOENT;
	}
	st->entries = kvmalloc_array(st->n, sizeof(*st->entries), GFP_KERNEL);
	if (!st->entries) {
		hb_subtree_free(st);
		return -ENOMEM;
	}
	for (i = 0; i < st->n; i++) {
		struct hb_cgrp *c = hb_cgrp_ensure(s, st->cgrps[i]);

		if (IS_ERR(c)) {
			hb_subtree_free(st);
			return PTR_ERR(c);
		}
		st->entries[i] = c;
	}
	return 0;
}

/*
 * update_effective_progs(): compute every new array first (nothing changes if one allocation
 * fails), then publish them all and free the old ones after a grace period.
 */
static int hb_update_effective(struct hb_session *s, struct hb_subtree *st, u32 hook)
{
	u32 i;
	int err;

	for (i = 0; i < st->n; i++) {
		err = hb_compute_effective(s, st->entries[i]->cgrp, hook,
					   &st->entries[i]->inactive);
		if (err)
			goto cleanup;
	}
	for (i = 0; i < st->n; i++) {
		struct hb_cgrp *c = st->entries[i];
		struct hb_prog_array *old;

		old = rcu_replace_pointer(c->effective[hook], c->inactive,
					  lockdep_is_held(&s->lock));
		c->inactive = NULL;
		hb_array_release(s, old);
	}
	return 0;

cleanup:
	for (i = 0; i < st->n; i++) {
		hb_array_release(s, st->entries[i]->inactive);
		st->entries[i]->inactive = NULL;
	}
	return err;
}

/* hierarchy_allows_attach(). */
static bool hb_hierarchy_allows_attach(struct hb_session *s, struct cgroup *cgrp, u32 hook)
{
	struct cgroup *p = cgroup_parent(cgrp);

	if (!p)
		return true;
	do {
		struct hb_cgrp *pc = hb_cgrp_lookup(s, p, lockdep_is_held(&s->lock));
		u32 flags = pc ? pc->flags[hook] : 0;
		u32 cnt;

		if (flags & HB_KMOD_F_ALLOW_MULTI)
			return true;
		cnt = pc ? hb_live_attached(pc, hook) : 0;
		WARN_ON_ONCE(cnt > 1);
		if (cnt == 1)
			return !!(flags & HB_KMOD_F_ALLOW_OVERRIDE);
		p = cgroup_parent(p);
	} while (p);
	return true;
}

static u32 hb_effective_count(struct hb_session *s, struct hb_cgrp *c, u32 hook)
{
	return rcu_dereference_protected(c->effective[hook], lockdep_is_held(&s->lock))->cnt;
}

/*
 * __cgroup_bpf_attach() for a program (no link, no replace_prog) at @st's root, then the
 * recompute of @st. Caller holds s->lock.
 */
static int hb_cgroup_attach(struct hb_session *s, struct hb_subtree *st, struct bpf_prog *prog,
			    u32 hook, u32 flags)
{
	struct hb_attachment *pl, *replace = NULL;
	struct hb_cgrp *c = st->entries[0];
	u32 saved_flags;
	int err;

	if (!hb_hierarchy_allows_attach(s, c->cgrp, hook))
		return -EPERM;
	/* no NONE/OVERRIDE on top of MULTI or the reverse, no NONE on OVERRIDE */
	if (c->nattached[hook] && c->flags[hook] != flags)
		return -EPERM;
	if (c->nattached[hook] >= HB_KMOD_MAX_PROGS)
		return -E2BIG;
	/* single-attach: replace what is there; multi: not the same program twice */
	if (!(flags & HB_KMOD_F_ALLOW_MULTI) && !list_empty(&c->attached[hook]))
		replace = list_first_entry(&c->attached[hook], struct hb_attachment, node);
	pl = hb_attachment_new(flags & HB_KMOD_F_ALLOW_MULTI ? &c->attached[hook] : NULL, prog);
	if (IS_ERR(pl))
		return PTR_ERR(pl);
	if (replace) {
		list_replace(&replace->node, &pl->node);
	} else {
		list_add_tail(&pl->node, &c->attached[hook]);
		c->nattached[hook]++;
	}
	saved_flags = c->flags[hook];
	c->flags[hook] = flags;
	err = hb_update_effective(s, st, hook);
	if (err) {
		if (replace) {
			list_replace(&pl->node, &replace->node);
		} else {
			list_del(&pl->node);
			c->nattached[hook]--;
		}
		c->flags[hook] = saved_flags;
		kfree(pl);
		return err;
	}
	hb_account(s, HB_ST_ATTACHMENTS, 1, sizeof(*pl));
	if (replace)
		hb_attachment_release(s, replace);
	return 0;
}

/* __cgroup_bpf_detach() for a program at @st's root, then the recompute. Caller holds s->lock. */
static int hb_cgroup_detach(struct hb_session *s, struct hb_subtree *st, struct bpf_prog *prog,
			    u32 hook)
{
	struct hb_cgrp *c = st->entries[0];
	struct hb_attachment *pl = NULL;
	struct bpf_prog *saved;
	int err;

	if (c->flags[hook] & HB_KMOD_F_ALLOW_MULTI)
		pl = hb_attachment_find(&c->attached[hook], prog);
	else if (!list_empty(&c->attached[hook]))   /* NONE, OVERRIDE: detach what is there */
		pl = list_first_entry(&c->attached[hook], struct hb_attachment, node);
	if (!pl)
		return -ENOENT;
	/* mark it deleted, so it is ignored while recomputing effective */
	saved = pl->prog;
	pl->prog = NULL;
	err = hb_update_effective(s, st, hook);
	pl->prog = saved;
	if (err)
		return err;
	list_del(&pl->node);
	if (!--c->nattached[hook])
		c->flags[hook] = 0;   /* last program detached: reset flags */
	hb_attachment_release(s, pl);
	return 0;
}

int hb_cgroup_update(struct hb_session *s, struct cgroup *cgrp, struct bpf_prog *prog, u32 hook,
		     u32 flags, bool attach, struct hb_kmod_attach *a)
{
	struct hb_subtree st;
	u64 t0;
	int err;

	mutex_lock(&s->lock);
	/* detach: a cgroup the session has no state for has nothing attached */
	if (!attach && !hb_cgrp_lookup(s, cgrp, lockdep_is_held(&s->lock))) {
		err = -ENOENT;
		goto unlock;
	}
	err = hb_subtree_collect(s, cgrp, &st);
	if (err)
		goto unlock;
	t0 = ktime_get_ns();
	err = attach ? hb_cgroup_attach(s, &st, prog, hook, flags)
		     : hb_cgroup_detach(s, &st, prog, hook);
	if (!err) {
		a->elapsed_ns = ktime_get_ns() - t0;
		a->recomputed = st.n;
		a->count = hb_effective_count(s, st.entries[0], hook);
	}
	hb_subtree_free(&st);
unlock:
	mutex_unlock(&s->lock);
	return err;
}

/* ---------------------------------------------------------------------------------------- */
/* global-filter. */

/* A new array of the hook's global list, without @skip and with @add at its end. */
static struct hb_prog_array *hb_global_build(struct hb_session *s, u32 hook,
					     struct hb_attachment *skip,
					     struct hb_attachment *add)
{
	u32 cnt = s->nglobal[hook] - (skip ? 1 : 0) + (add ? 1 : 0), i = 0;
	struct hb_attachment *pl;
	struct hb_prog_array *arr;

	if (!cnt)
		return HB_EMPTY_ARRAY;
	arr = hb_array_alloc(s, cnt);
	if (!arr)
		return NULL;
	list_for_each_entry(pl, &s->global_attached[hook], node) {
		if (pl != skip)
			arr->progs[i++] = pl->prog;
	}
	if (add)
		arr->progs[i] = add->prog;
	return arr;
}

static void hb_global_publish(struct hb_session *s, u32 hook, struct hb_prog_array *arr)
{
	hb_array_release(s, rcu_replace_pointer(s->global[hook], arr, lockdep_is_held(&s->lock)));
}

int hb_global_update(struct hb_session *s, struct bpf_prog *prog, u32 hook, bool attach,
		     struct hb_kmod_attach *a)
{
	struct list_head *list = &s->global_attached[hook];
	struct hb_attachment *pl;
	struct hb_prog_array *arr;
	u64 t0;
	int err = 0;

	mutex_lock(&s->lock);
	t0 = ktime_get_ns();
	if (!attach)
		pl = hb_attachment_find(list, prog) ?: ERR_PTR(-ENOENT);
	else if (s->nglobal[hook] >= HB_KMOD_MAX_PROGS)
		pl = ERR_PTR(-E2BIG);
	else
		pl = hb_attachment_new(list, prog);
	if (IS_ERR(pl)) {
		err = PTR_ERR(pl);
		goto out;
	}
	/* the new array first: nothing changes if it cannot be allocated */
	arr = attach ? hb_global_build(s, hook, NULL, pl) : hb_global_build(s, hook, pl, NULL);
	if (!arr) {
		if (attach)
			kfree(pl);
		err = -ENOMEM;
		goto out;
	}
	if (attach) {
		list_add_tail(&pl->node, list);
		s->nglobal[hook]++;
		hb_account(s, HB_ST_ATTACHMENTS, 1, sizeof(*pl));
	} else {
		list_del(&pl->node);
		s->nglobal[hook]--;
	}
	hb_global_publish(s, hook, arr);
	if (!attach)
		hb_attachment_release(s, pl);
	a->elapsed_ns = ktime_get_ns() - t0;
	a->count = s->nglobal[hook];
out:
	mutex_unlock(&s->lock);
	return err;
}

/* ---------------------------------------------------------------------------------------- */
/* State for the firing cgroup, RESET. */

int hb_cgrp_ensure_current(struct hb_session *s)
{
	struct cgroup *cgrp;
	struct hb_cgrp *c;

	/* as task_get_css(): the task may be migrating, its old cgroup dying */
	rcu_read_lock();
	while (true) {
		cgrp = task_dfl_cgroup(current);
		if (likely(cgroup_tryget(cgrp)))
			break;
		cpu_relax();
	}
	rcu_read_unlock();
	mutex_lock(&s->lock);
	c = hb_cgrp_ensure(s, cgrp);
	mutex_unlock(&s->lock);
	cgroup_put(cgrp);
	return PTR_ERR_OR_ZERO(c);
}

void hb_attached_reset(struct hb_session *s)
{
	struct hlist_node *tmp;
	struct hb_cgrp *c;
	u32 b, h;

	lockdep_assert_held(&s->lock);
	for (b = 0; b < HB_HASH_SIZE; b++) {
		hlist_for_each_entry_safe(c, tmp, &s->cgroups[b], h.node) {
			hlist_del_rcu(&c->h.node);
			for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
				struct hb_prog_array *eff;

				eff = rcu_dereference_protected(c->effective[h],
								lockdep_is_held(&s->lock));
				hb_array_release(s, eff);
				hb_attachments_release(s, &c->attached[h]);
			}
			hb_account(s, HB_ST_CGROUP_ENTRIES, -1, -(long)sizeof(*c));
			hb_defer(&c->dfr, hb_cgrp_free);
		}
		cond_resched();
	}
	for (h = 0; h < HB_KMOD_MAX_HOOKS; h++) {
		hb_global_publish(s, h, HB_EMPTY_ARRAY);
		hb_attachments_release(s, &s->global_attached[h]);
		s->nglobal[h] = 0;
	}
}
