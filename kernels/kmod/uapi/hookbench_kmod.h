/* SPDX-License-Identifier: (GPL-2.0-only WITH Linux-syscall-note) OR MIT */
/*
 * hookbench_kmod.h: the ioctl ABI of hookbench.ko (/dev/hookbench), the one header shared by
 * the module (the C files in kernels/kmod/) and userspace. hookbench-kmod's src/abi.rs mirrors
 * every struct and constant; its layout test compiles this file with the host's C compiler and
 * compares sizes, offsets and values.
 *
 * Rules: fixed-size fields only (__u32/__s32/__u64), explicit padding, no pointers (user
 * addresses travel as __u64), every struct a multiple of 8 bytes, so 32- and 64-bit callers
 * share one layout. Every ioctl but VERSION carries the caller's ABI version in abi_version and
 * fails with EPROTO unless it is HB_KMOD_ABI_VERSION_MIN .. HB_KMOD_ABI_VERSION; fields named
 * reserved* must be zero (else EINVAL); "out" fields are ignored on input and written on success.
 * Errors are negative errnos from ioctl(2).
 *
 * Versions: ABI 2 added RUN's working set (working_set, seed, working_set_bytes, states_digest
 * at the end of struct hb_kmod_run, which grew from 64 to 96 bytes, so HB_KMOD_IOC_RUN changed).
 * A version-1 caller is still served: every other struct is unchanged, and its RUN arrives as
 * HB_KMOD_IOC_RUN_V1 (the old request number: the first HB_KMOD_RUN_V1_SIZE bytes of struct
 * hb_kmod_run) with abi_version 1, and runs with a working set of 1. HB_KMOD_IOC_RUN needs
 * abi_version 2 and HB_KMOD_IOC_RUN_V1 abi_version 1 (EPROTO otherwise). VERSION reports
 * HB_KMOD_ABI_VERSION.
 *
 * Sessions: every open(2) of /dev/hookbench is one session (needs CAP_SYS_ADMIN; EPERM
 * otherwise) with its own state: per-task chains and hook arrays, per-cgroup attachments and
 * effective arrays, global lists. Processes that share the open file (fork, exec without
 * O_CLOEXEC, SCM_RIGHTS) share the session; a second open(2) is a new, empty session. When
 * the last reference to the open file goes away (close, or the harness is killed) the session
 * and everything in it is freed; RESET frees it earlier.
 *
 * Hook context: every program (eBPF or the built-in null body) runs with a context of
 * HB_KMOD_CTX_ARGS __u64 values, read by a BPF_PROG_TYPE_RAW_TRACEPOINT program as
 * ((__u64 *)ctx)[i] (struct bpf_raw_tracepoint_args.args[i]):
 *   [HB_KMOD_CTX_HOOK]      the hook being fired (0 .. HB_KMOD_MAX_HOOKS-1)
 *   [HB_KMOD_CTX_CGROUP_ID] the cgroup v2 id of the firing task's cgroup (its inode number)
 *   [HB_KMOD_CTX_PID]       the firing task's pid (thread id) in the initial pid namespace
 *   [HB_KMOD_CTX_MODEL]     the model (HB_KMOD_MODEL_*) being fired
 * A program that reads beyond HB_KMOD_CTX_ARGS values is refused at attach (EINVAL).
 */
#ifndef _UAPI_HOOKBENCH_KMOD_H
#define _UAPI_HOOKBENCH_KMOD_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Version of this ABI; any change to a struct, value or semantics bumps it. */
#define HB_KMOD_ABI_VERSION 2
/* The oldest caller version still served (see "Versions" above). */
#define HB_KMOD_ABI_VERSION_MIN 1

/* The device node (a misc device, mode 0600). */
#define HB_KMOD_DEVICE "/dev/hookbench"

/* Limits (also reported by VERSION). */
#define HB_KMOD_MAX_HOOKS 16          /* hook ids 0 .. 15 */
/* programs per cgroup and hook, and per global hook (BPF_CGROUP_MAX_PROGS) */
#define HB_KMOD_MAX_PROGS 64
/* per task: chain nodes in all (task-chain), programs per hook (task-hook-array) */
#define HB_KMOD_MAX_TASK_PROGS 4096
#define HB_KMOD_MAX_BATCH 65536       /* RUN: fires per sample (1 << 16) */
#define HB_KMOD_MAX_SAMPLES 1048576   /* RUN: samples per call (1 << 20) */
#define HB_KMOD_MAX_FIRES 268435456   /* RUN: batch * samples (1 << 28) */
#define HB_KMOD_MAX_BATCH_WORK 4194304 /* RUN: batch * work of one fire (1 << 22), see RUN */
#define HB_KMOD_CTX_ARGS 4            /* __u64 values in the hook context */
#define HB_KMOD_MAX_WORKING_SET 65536 /* RUN: states in the working set (1 << 16) */
/* RUN: bytes of the working set's states (256 MiB) */
#define HB_KMOD_MAX_WORKING_SET_BYTES 268435456
#define HB_KMOD_RUN_V1_SIZE 64        /* RUN: size of an ABI 1 caller's struct hb_kmod_run */
/* RUN: the multiplier of states_digest (FNV-1a's 64-bit prime) */
#define HB_KMOD_DIGEST_PRIME 1099511628211ULL

/* Hook context slots. */
#define HB_KMOD_CTX_HOOK 0
#define HB_KMOD_CTX_CGROUP_ID 1
#define HB_KMOD_CTX_PID 2
#define HB_KMOD_CTX_MODEL 3

/* Dispatch models (their names: ARCHITECTURE.md, "Names"). */
#define HB_KMOD_MODEL_TASK_CHAIN 0        /* "task-chain" */
#define HB_KMOD_MODEL_TASK_HOOK_ARRAY 1   /* "task-hook-array" */
#define HB_KMOD_MODEL_CGROUP_EFFECTIVE 2  /* "cgroup-effective" */
#define HB_KMOD_MODEL_GLOBAL_FILTER 3     /* "global-filter" */
#define HB_KMOD_MODELS 4

/* Attach flags of cgroup-effective (the values of BPF_F_ALLOW_OVERRIDE / BPF_F_ALLOW_MULTI). */
#define HB_KMOD_F_ALLOW_OVERRIDE 1
#define HB_KMOD_F_ALLOW_MULTI 2

/* prog_fd naming the built-in null body (a C function returning 1, called through a pointer). */
#define HB_KMOD_PROG_NULL_BODY (-1)

/* cgroup_fd for every model but cgroup-effective. */
#define HB_KMOD_NO_CGROUP (-1)

/* What every built-in body returns; FIRE/RUN report the AND of all programs' return values. */
#define HB_KMOD_VERDICT_ALLOW 1

/*
 * VERSION: the ABI version and limits. Never fails (no input is read).
 */
struct hb_kmod_version {
	__u32 abi_version;    /* out: HB_KMOD_ABI_VERSION */
	__u32 models;         /* out: HB_KMOD_MODELS */
	__u32 max_hooks;      /* out: HB_KMOD_MAX_HOOKS */
	__u32 max_progs;      /* out: HB_KMOD_MAX_PROGS */
	__u32 max_task_progs; /* out: HB_KMOD_MAX_TASK_PROGS */
	__u32 max_batch;      /* out: HB_KMOD_MAX_BATCH */
	__u32 max_samples;    /* out: HB_KMOD_MAX_SAMPLES */
	__u32 ctx_args;       /* out: HB_KMOD_CTX_ARGS */
	__u64 max_fires;      /* out: HB_KMOD_MAX_FIRES */
	__u64 max_batch_work; /* out: HB_KMOD_MAX_BATCH_WORK */
};

/*
 * ATTACH: attach one program (one reference to it per attachment) in one model.
 *   task-chain:       push a node {prog, hook} on the calling task's chain (newest first);
 *                     children forked later share the chain, later pushes do not reach them.
 *   task-hook-array:  append prog to the calling task's array of `hook` (copy on write: the
 *                     task gets a new set of arrays, its children keep the old one).
 *   cgroup-effective: attach prog to the cgroup open as cgroup_fd with flags (0 = NONE,
 *                     HB_KMOD_F_ALLOW_OVERRIDE or HB_KMOD_F_ALLOW_MULTI), with the rules of
 *                     kernel/bpf/cgroup.c (__cgroup_bpf_attach), then recompute effective[hook]
 *                     of the cgroup and all its live descendants (update_effective_progs).
 *   global-filter:    append prog to the session's global list of `hook`.
 * DETACH: undo one ATTACH (cgroup-effective and global-filter only).
 *   cgroup-effective: with ALLOW_MULTI at the cgroup, detaches prog (the oldest attachment of
 *                     the null body for HB_KMOD_PROG_NULL_BODY); otherwise detaches the single
 *                     attached program whatever prog is (as the kernel does); then recomputes.
 *   global-filter:    removes the oldest attachment of prog.
 * elapsed_ns is measured in the kernel around the update proper (checks, list change,
 * recompute, publication); resolving the fds and creating state for cgroups the session has
 * not seen yet (the kernel does that at mkdir) happen before the clock starts.
 * Errors:
 *   EPROTO     abi_version outside HB_KMOD_ABI_VERSION_MIN .. HB_KMOD_ABI_VERSION
 *   EINVAL     reserved != 0; model >= HB_KMOD_MODELS; hook >= HB_KMOD_MAX_HOOKS; flags not
 *              0/OVERRIDE/MULTI (cgroup-effective ATTACH) or not 0 (otherwise); cgroup_fd not
 *              HB_KMOD_NO_CGROUP outside cgroup-effective; prog_fd is open but not a
 *              BPF_PROG_TYPE_RAW_TRACEPOINT program (another file, a map, another program
 *              type), or the program reads beyond HB_KMOD_CTX_ARGS values; ALLOW_MULTI attach of
 *              a program already attached there (global-filter: already on the hook)
 *   EBADF      prog_fd is neither HB_KMOD_PROG_NULL_BODY nor an open fd; cgroup_fd is not an
 *              open fd of a directory of a cgroup v2 mount
 *   EPERM      cgroup-effective: an ancestor has a program attached without OVERRIDE or MULTI
 *              (hierarchy_allows_attach), or the cgroup has programs attached with other flags
 *   E2BIG      HB_KMOD_MAX_PROGS programs already attached there; a task already has
 *              HB_KMOD_MAX_TASK_PROGS chain nodes / programs on the hook
 *   ENOENT     DETACH: no such attachment, or the session has no state for the cgroup; the
 *              cgroup was removed (its attachments are freed by RESET or close)
 *   EOPNOTSUPP DETACH in task-chain or task-hook-array (a task's programs stay until it
 *              exits, RESET or close, as seccomp filters and Landlock domains do)
 *   ENOMEM     out of memory (nothing changed)
 */
struct hb_kmod_attach {
	__u32 abi_version; /* in: HB_KMOD_ABI_VERSION */
	__u32 model;       /* in: HB_KMOD_MODEL_* */
	__s32 prog_fd;     /* in: raw_tp BPF program fd, or HB_KMOD_PROG_NULL_BODY */
	__s32 cgroup_fd;   /* in: cgroup-effective: cgroup v2 dir fd; else HB_KMOD_NO_CGROUP */
	__u32 hook;        /* in: < HB_KMOD_MAX_HOOKS */
	__u32 flags;       /* in: see above */
	__u64 elapsed_ns;  /* out: kernel time of the update */
	__u32 recomputed;  /* out: cgroup-effective: effective arrays recomputed; else 0 */
	__u32 count;       /* out: after the update: cgroup-effective: programs in the
			    * cgroup's effective[hook]; task-chain: nodes in the task's chain;
			    * task-hook-array: programs on the task's hook; global-filter: programs
			    * on the hook */
	__u64 reserved;    /* in: 0 */
};

/*
 * FIRE: fire `hook` once in `model` as the calling task (the syscall is the hook's trigger):
 * find the state (task-chain, task-hook-array: the calling task's; cgroup-effective: its
 * cgroup v2 cgroup's; global-filter: the session's list) and run the programs in effect, with
 * preemption disabled and under rcu_read_lock(), as the kernel runs a hook. With nothing
 * attached this is the syscall baseline. The first FIRE or RUN of a task or cgroup the session
 * has no state for creates (empty or inherited) state for it.
 * Errors: EPROTO; EINVAL (reserved, model, hook, flags != 0); ENOMEM.
 */
struct hb_kmod_fire {
	__u32 abi_version; /* in: HB_KMOD_ABI_VERSION */
	__u32 model;       /* in: HB_KMOD_MODEL_* */
	__u32 hook;        /* in: < HB_KMOD_MAX_HOOKS */
	__u32 flags;       /* in: 0 */
	__u32 progs_run;   /* out: programs run by this fire */
	__u32 verdict;     /* out: AND of their return values (HB_KMOD_VERDICT_ALLOW if none ran) */
	__u64 cgroup_id;   /* out: the cgroup id passed in the context (the caller's cgroup) */
	__u64 reserved;    /* in: 0 */
};

/*
 * RUN: the in-kernel timed loop. `samples` times: with preemption disabled, read the clock
 * (ktime_get_ns), fire `hook` in `model` `batch` times (each fire as FIRE does, under its own
 * rcu_read_lock()), read the clock again, re-enable preemption, store the batch's nanoseconds
 * in samples_addr[i] (a __u64 array of `samples` elements), cond_resched(). Before the loop
 * the state of the caller is created if missing and one untimed fire counts progs_per_fire; the
 * context is built once per call. A pending signal stops the loop with EINTR (the samples
 * written so far are valid; the out fields are not written). A batch runs with preemption
 * disabled, so its work is bounded: batch * (the programs one fire runs, or for task-chain the
 * nodes of the caller's chain if more; at least 1) must not exceed HB_KMOD_MAX_BATCH_WORK.
 *
 * Working set (ABI 2): with working_set W > 1 the fires do not use the caller's state but W
 * copies of it built before the loop: a state is what one fire of the model finds, with the
 * caller's programs in the caller's order (task-chain: a task entry and its own chain of
 * separately allocated nodes; task-hook-array: a task entry, its array set and arrays;
 * cgroup-effective: a cgroup entry and its effective arrays). Each copy sits in the session's
 * table under its own key (state i: the number i + 1, which no kernel object has) and every fire
 * looks its key up there, as a W = 1 fire looks up the caller. Fire f (0, 1, ... over all
 * samples) uses state perm[f % W], perm a permutation of 0 .. W-1 drawn from `seed`:
 *   x = seed; next(): x += 0x9e3779b97f4a7c15; z = x; z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
 *     z = (z ^ (z >> 27)) * 0x94d049bb133111eb; return z ^ (z >> 31)   (splitmix64)
 *   perm[i] = i; for i = W-1 down to 1: j = next() % (i + 1); swap perm[i], perm[j]
 * so a run can be reproduced, and consecutive fires touch different states. The session's lock
 * is held from the build to the free (updates and RESET of the session wait for the RUN); the
 * copies are freed before RUN returns, on every path, and leave nothing in the session.
 * global-filter has one list per session, no per-task or per-cgroup state: W > 1 is EINVAL.
 * With W == 1, seed must be 0.
 *
 * Errors: EPROTO; EINVAL (reserved, reserved2, model, hook, flags != 0, batch == 0,
 *   samples == 0, working_set == 0, working_set > 1 in global-filter, seed != 0 with
 *   working_set 1); E2BIG (batch > HB_KMOD_MAX_BATCH, samples > HB_KMOD_MAX_SAMPLES,
 *   batch * samples > HB_KMOD_MAX_FIRES, batch * work > HB_KMOD_MAX_BATCH_WORK,
 *   working_set > HB_KMOD_MAX_WORKING_SET, working_set * bytes of one state >
 *   HB_KMOD_MAX_WORKING_SET_BYTES); ENOMEM (out of memory, or the states would need more than
 *   half the kernel's available memory); EAGAIN (the caller moved to another cgroup while the
 *   states were built); EFAULT (samples_addr not writable for samples * 8 bytes); EINTR
 *   (signal).
 */
struct hb_kmod_run {
	__u32 abi_version;    /* in: HB_KMOD_ABI_VERSION (HB_KMOD_IOC_RUN_V1: 1) */
	__u32 model;          /* in: HB_KMOD_MODEL_* */
	__u32 hook;           /* in: < HB_KMOD_MAX_HOOKS */
	__u32 batch;          /* in: fires per sample, 1 .. HB_KMOD_MAX_BATCH */
	__u32 samples;        /* in: samples, 1 .. HB_KMOD_MAX_SAMPLES */
	__u32 flags;          /* in: 0 */
	__u64 samples_addr;   /* in: user address of __u64[samples] (out: ns per batch) */
	__u64 progs_run;      /* out: programs run over all batch * samples fires */
	__u32 progs_per_fire; /* out: programs run by one untimed fire before the loop */
	__u32 verdict;        /* out: AND over all fires */
	__u64 total_ns;       /* out: sum of the samples */
	__u64 reserved;       /* in: 0 */
	/* ABI 2; an ABI 1 caller's struct ends here (HB_KMOD_RUN_V1_SIZE bytes) */
	__u32 working_set;    /* in: W, states fired in turn, 1 .. HB_KMOD_MAX_WORKING_SET */
	__u32 reserved2;      /* in: 0 */
	__u64 seed;           /* in: W > 1: seed of the permutation; W == 1: 0 */
	__u64 working_set_bytes; /* out: W * bytes of one state (kmalloc sizes requested; the
				  * caller's state's when W == 1; 0 in global-filter) */
	__u64 states_digest;  /* out: W > 1: d = 0, per fire d = (d ^ (perm[f % W] + 1)) *
			       * HB_KMOD_DIGEST_PRIME, the key of each state found; W == 1: 0 */
};

/*
 * RESET: detach and free everything in the session (task state, cgroup state, global
 * lists). Errors: EPROTO; EINVAL (flags or reserved != 0).
 */
struct hb_kmod_reset {
	__u32 abi_version; /* in: HB_KMOD_ABI_VERSION */
	__u32 flags;       /* in: 0 */
	__u64 reserved;    /* in: 0 */
};

/*
 * STATS: the session's dispatch metadata, exact (object counts and the bytes requested from
 * the allocator for them), and fork/exit events. Errors: EPROTO; EINVAL (flags, reserved).
 */
struct hb_kmod_stats {
	__u32 abi_version;    /* in: HB_KMOD_ABI_VERSION */
	__u32 flags;          /* in: 0 */
	__u64 reserved;       /* in: 0 */
	__u64 task_entries;   /* out: tasks with state in the session */
	__u64 cgroup_entries; /* out: cgroups with state in the session */
	__u64 chain_nodes;    /* out: task-chain nodes (shared nodes counted once) */
	__u64 task_arrays;    /* out: task-hook-array sets (shared sets counted once) */
	__u64 prog_arrays;    /* out: program arrays allocated (effective, task hook, global) */
	__u64 attachments;    /* out: cgroup and global attachments */
	__u64 bytes;          /* out: bytes of all the above (sizes requested from kmalloc) */
	__u64 forks_shared;   /* out: forks whose child was given the parent's state */
	__u64 forks_nomem;    /* out: forks whose child got no state (atomic allocation failed) */
	__u64 exits_released; /* out: exiting tasks whose state was released */
};

#define HB_KMOD_IOC_MAGIC 0xB9

#define HB_KMOD_IOC_VERSION _IOWR(HB_KMOD_IOC_MAGIC, 0, struct hb_kmod_version)
#define HB_KMOD_IOC_ATTACH _IOWR(HB_KMOD_IOC_MAGIC, 1, struct hb_kmod_attach)
#define HB_KMOD_IOC_DETACH _IOWR(HB_KMOD_IOC_MAGIC, 2, struct hb_kmod_attach)
#define HB_KMOD_IOC_FIRE _IOWR(HB_KMOD_IOC_MAGIC, 3, struct hb_kmod_fire)
#define HB_KMOD_IOC_RUN _IOWR(HB_KMOD_IOC_MAGIC, 4, struct hb_kmod_run)
/* RUN of an ABI 1 caller: the same number with the old size */
#define HB_KMOD_IOC_RUN_V1 _IOC(_IOC_READ | _IOC_WRITE, HB_KMOD_IOC_MAGIC, 4, HB_KMOD_RUN_V1_SIZE)
#define HB_KMOD_IOC_RESET _IOWR(HB_KMOD_IOC_MAGIC, 5, struct hb_kmod_reset)
#define HB_KMOD_IOC_STATS _IOWR(HB_KMOD_IOC_MAGIC, 6, struct hb_kmod_stats)

#endif /* _UAPI_HOOKBENCH_KMOD_H */
