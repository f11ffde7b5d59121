/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * hb_internal.h: hookbench.ko's data structures, shared by hookbench_main.c (device, ioctls),
 * hb_models.c (shared state, sessions, the task models, fork/exit propagation, deferred frees),
 * hb_cgroup.c (the attach models: cgroup-effective and global-filter) and hb_fire.c (the hook:
 * fire-once and the timed loop).
 *
 * How a hook finds its state, and why it is fair
 * ----------------------------------------------
 * The real kernel keeps a task's chain in the task (current->seccomp.filter, Landlock's domain
 * in current's cred) and a cgroup's arrays in the cgroup (cgrp->bpf.effective[atype], reached
 * as current->cgroups->dfl_cgrp). A module cannot add fields to task_struct or struct cgroup,
 * so both kinds of state live in the same kind of table: a fixed-size hlist hash table of
 * HB_HASH_SIZE buckets per session, hashed with hash_ptr() and walked under RCU by the same
 * function (hb_lookup()), keyed by `current` for the task models and by
 * task_dfl_cgroup(current) for cgroup-effective. Every model therefore pays one identical
 * lookup on top of what the kernel would do; the only difference left is the real one: the
 * cgroup model's two extra dependent loads current->cgroups->dfl_cgrp. global-filter has no
 * per-task or per-cgroup state (its programs would do their own lookup, e.g. a map keyed by
 * cgroup id), so it reads the session's list directly.
 *
 * Lifetimes
 * ---------
 * Everything reachable by a hook is published with rcu_assign_pointer()/hlist_add_head_rcu()
 * and freed through hb_defer(): a worker waits for an RCU grace period, then frees (and drops
 * the program references, in process context). Program arrays hold no program references
 * (as cgroup-bpf's effective arrays); attachments, chain nodes and task array sets do, one per
 * attachment.
 */
#ifndef HB_INTERNAL_H
#define HB_INTERNAL_H

#include <linux/atomic.h>
#include <linux/bpf.h>
#include <linux/cgroup.h>
#include <linux/filter.h>
#include <linux/hash.h>
#include <linux/list.h>
#include <linux/llist.h>
#include <linux/mutex.h>
#include <linux/rculist.h>
#include <linux/refcount.h>
#include <linux/sched.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include "uapi/hookbench_kmod.h"

/* Buckets per table: 4096, so that thousands of tasks or cgroups keep chains at about one. */
#define HB_HASH_BITS 12
#define HB_HASH_SIZE (1U << HB_HASH_BITS)

/* An object freed after an RCU grace period by the deferred-free worker. */
struct hb_deferred {
	struct llist_node llnode;
	void (*free)(struct hb_deferred *d);
};

/* Queues @d; @free runs in process context after a grace period. Any context. */
void hb_defer(struct hb_deferred *d, void (*free)(struct hb_deferred *d));
/* Waits until every object queued so far is freed. Process context. */
void hb_deferred_flush(void);

/*
 * A program array: @cnt programs then a NULL slot, immutable once published (an update
 * publishes a new array). HB_EMPTY_ARRAY is shared by everything with no program in effect,
 * so that a hook always has an array to run (as bpf_empty_prog_array).
 */
struct hb_prog_array {
	struct hb_deferred dfr;
	u32 cnt;
	u32 pad;
	struct bpf_prog *progs[];
};

struct hb_empty_prog_array {
	struct hb_prog_array hdr;
	struct bpf_prog *null_prog;
};

extern struct hb_empty_prog_array hb_empty_storage;
#define HB_EMPTY_ARRAY (&hb_empty_storage.hdr)

/*
 * The built-in null body: prog_fd HB_KMOD_PROG_NULL_BODY. Stored in arrays and nodes as the
 * address HB_NULL_BODY (never dereferenced), run by calling hb_null_body_fn, a function pointer
 * read at every call, so it costs an indirect call as a BPF program's bpf_func does.
 */
extern char hb_null_body_marker;
#define HB_NULL_BODY ((struct bpf_prog *)&hb_null_body_marker)
extern u32 (*hb_null_body_fn)(const u64 *ctx);

/* Runs one program; the caller has preemption disabled and holds rcu_read_lock(). */
static __always_inline u32 hb_run_prog(const struct bpf_prog *prog, const u64 *ctx)
{
	if (prog == HB_NULL_BODY)
		return READ_ONCE(hb_null_body_fn)(ctx);
	return bpf_prog_run(prog, ctx);
}

/* Hash table entry header, the same for task and cgroup state (see the top of this file). */
struct hb_hnode {
	struct hlist_node node;
	const void *key;
};

/*
 * The one lookup of every model: the entry of @key_ in @table_, or NULL. @cond_ is a lockdep
 * condition for callers that hold the table's update lock instead of rcu_read_lock() (only
 * evaluated with CONFIG_PROVE_RCU_LIST, hence a macro).
 */
#define hb_lookup(table_, key_, cond_)							\
	({										\
		const void *__hb_key = (key_);						\
		struct hb_hnode *__hb_h, *__hb_found = NULL;				\
		hlist_for_each_entry_rcu(__hb_h,					\
					 &(table_)[hash_ptr(__hb_key, HB_HASH_BITS)],	\
					 node, cond_) {					\
			if (__hb_h->key == __hb_key) {					\
				__hb_found = __hb_h;					\
				break;							\
			}								\
		}									\
		__hb_found;								\
	})

/*
 * task-chain: one node per installed program, newest first, as struct seccomp_filter: a task
 * (and every child forked after the install) points at its newest node with one reference;
 * each node holds one reference on @prev. Nodes are immutable.
 */
struct hb_chain_node {
	struct hb_chain_node *prev;
	struct bpf_prog *prog;   /* one reference, or HB_NULL_BODY */
	u32 hook;
	u32 len;                 /* nodes from this one to the end of the chain */
	refcount_t usage;
	struct hb_deferred dfr;
};

/*
 * task-hook-array: one program array per hook (Landlock's later programs[HOOK_LAST]), shared
 * by a task and the children forked from it; an install gives the installing task a new set
 * (copy on write). The set holds one reference per program in its arrays; arrays with no
 * program are HB_EMPTY_ARRAY.
 */
struct hb_task_arrays {
	struct hb_prog_array *hooks[HB_KMOD_MAX_HOOKS];
	refcount_t usage;
	struct hb_deferred dfr;
};

/* The set of a task with no program installed (never freed, not refcounted). */
extern struct hb_task_arrays hb_empty_task_arrays;

/* A task's state in a session (key: its task_struct; removed when the task exits). */
struct hb_task {
	struct hb_hnode h;
	struct hb_chain_node __rcu *chain;     /* NULL: empty chain */
	struct hb_task_arrays __rcu *arrays;   /* never NULL */
	struct hb_deferred dfr;
};

/* One program attached at a cgroup or on a global hook. */
struct hb_attachment {
	struct list_head node;
	struct bpf_prog *prog;   /* one reference, or HB_NULL_BODY; NULL while being detached */
	struct hb_deferred dfr;  /* frees and drops the reference */
};

/*
 * A cgroup's state in a session (key: its struct cgroup, of which it holds a reference):
 * what is attached there per hook and the effective arrays (cgrp->bpf.progs/flags/effective).
 */
struct hb_cgrp {
	struct hb_hnode h;
	struct hb_prog_array __rcu *effective[HB_KMOD_MAX_HOOKS];   /* never NULL */
	struct cgroup *cgrp;
	struct list_head attached[HB_KMOD_MAX_HOOKS];
	u32 nattached[HB_KMOD_MAX_HOOKS];
	u32 flags[HB_KMOD_MAX_HOOKS];
	struct hb_prog_array *inactive;   /* during an update (cgrp->bpf.inactive) */
	struct hb_deferred dfr;
};

enum hb_stat {
	HB_ST_TASK_ENTRIES,
	HB_ST_CGROUP_ENTRIES,
	HB_ST_CHAIN_NODES,
	HB_ST_TASK_ARRAYS,
	HB_ST_PROG_ARRAYS,
	HB_ST_ATTACHMENTS,
	HB_ST_BYTES,
	HB_ST_FORKS_SHARED,
	HB_ST_FORKS_NOMEM,
	HB_ST_EXITS_RELEASED,
	HB_ST_COUNT,
};

/* One open file of /dev/hookbench (see the uapi header: "Sessions"). */
struct hb_session {
	struct hlist_head tasks[HB_HASH_SIZE];     /* struct hb_task; writers hold task_lock */
	struct hlist_head cgroups[HB_HASH_SIZE];   /* struct hb_cgrp; writers hold lock */
	struct hb_prog_array __rcu *global[HB_KMOD_MAX_HOOKS];   /* never NULL */
	struct list_head global_attached[HB_KMOD_MAX_HOOKS];
	u32 nglobal[HB_KMOD_MAX_HOOKS];
	struct mutex lock;       /* serializes every update of the session */
	spinlock_t task_lock;    /* task table and task entries (also taken by fork/exit probes) */
	struct list_head node;   /* in the list of sessions the probes walk (RCU) */
	atomic64_t stats[HB_ST_COUNT];
};

static inline void hb_account(struct hb_session *s, enum hb_stat st, long n, long bytes)
{
	atomic64_add(n, &s->stats[st]);
	if (bytes)
		atomic64_add(bytes, &s->stats[HB_ST_BYTES]);
}

/* The state of task @t_ / cgroup @c_ in @s_, or NULL (see hb_lookup() for @cond_). */
#define hb_task_lookup(s_, t_, cond_)						\
	({									\
		struct hb_hnode *__hb_th = hb_lookup((s_)->tasks, (t_), cond_);	\
		__hb_th ? container_of(__hb_th, struct hb_task, h) : NULL;	\
	})

#define hb_cgrp_lookup(s_, c_, cond_)							\
	({										\
		struct hb_hnode *__hb_ch = hb_lookup((s_)->cgroups, (c_), cond_);	\
		__hb_ch ? container_of(__hb_ch, struct hb_cgrp, h) : NULL;		\
	})

/* hb_models.c */
struct hb_session *hb_session_create(void);
void hb_session_destroy(struct hb_session *s);
void hb_session_reset(struct hb_session *s);
int hb_probes_register(void);
void hb_probes_unregister(void);
int hb_task_install(struct hb_session *s, u32 model, struct bpf_prog *prog, u32 hook,
		    struct hb_kmod_attach *a);
int hb_ensure_state(struct hb_session *s, u32 model);
void hb_prog_put(struct bpf_prog *prog);
/* Bytes requested from the allocator for an array of @cnt programs. */
size_t hb_array_bytes(u32 cnt);
/* A new array of @cnt programs (slots to fill) and its NULL slot; NULL without memory. */
struct hb_prog_array *hb_array_alloc(struct hb_session *s, u32 cnt);
/* @a is unreachable by new readers (or was never published): free it after a grace period. */
void hb_array_release(struct hb_session *s, struct hb_prog_array *a);

/* hb_cgroup.c */
/*
 * cgroup-effective: attaches @prog at @cgrp on @hook with @flags, or (!@attach) detaches it,
 * and recomputes the effective arrays of @cgrp's subtree; @a gets the time and counts.
 */
int hb_cgroup_update(struct hb_session *s, struct cgroup *cgrp, struct bpf_prog *prog, u32 hook,
		     u32 flags, bool attach, struct hb_kmod_attach *a);
/* global-filter: appends @prog to @hook's list, or (!@attach) removes its oldest attachment. */
int hb_global_update(struct hb_session *s, struct bpf_prog *prog, u32 hook, bool attach,
		     struct hb_kmod_attach *a);
/* The state of the calling task's cgroup, created if missing (FIRE, RUN). */
int hb_cgrp_ensure_current(struct hb_session *s);
/* RESET's share: every cgroup entry and global attachment of @s. Caller holds s->lock. */
void hb_attached_reset(struct hb_session *s);

/* hb_wset.c: RUN's working set (see the uapi header, RUN) */

/* The table key of working-set state @i (0 .. W-1): the number i + 1, never a kernel address. */
#define HB_WSET_KEY(i) ((const void *)(unsigned long)((i) + 1))

/* W states of one model, built by hb_wset_build() for one RUN, freed by hb_wset_free(). */
struct hb_wset {
	u32 w;            /* states */
	u32 built;        /* states allocated so far (all of them after a build) */
	u32 model;
	bool inserted;    /* the states are in the session's table */
	u32 *perm;        /* the seeded permutation of 0 .. w-1 */
	void **states;    /* struct hb_task * or struct hb_cgrp *, by index */
	u64 bytes;        /* bytes of the states (as STATS counts them) */
};

/* Bytes of the caller's state in @model (what one working-set state copies); 0: none. */
u64 hb_wset_state_bytes(struct hb_session *s, u32 model);
/*
 * Builds @w copies of the caller's state in @model, in the session's table, and the permutation
 * of @seed. Caller holds s->lock until hb_wset_free(). On error nothing is left (0, -ENOMEM,
 * -E2BIG, -EAGAIN).
 */
int hb_wset_build(struct hb_session *s, u32 model, u32 w, u64 seed, struct hb_wset *ws);
/* Unlinks and frees everything hb_wset_build() made (also a partial build). Caller holds s->lock. */
void hb_wset_free(struct hb_session *s, struct hb_wset *ws);

/* hb_fire.c */
int hb_fire_once(struct hb_session *s, struct hb_kmod_fire *f);
int hb_run_loop(struct hb_session *s, struct hb_kmod_run *r);

#endif /* HB_INTERNAL_H */
