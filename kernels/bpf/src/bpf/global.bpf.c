// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* global.bpf.c: hookbench's global-filter programs on the running kernel, a separate object
 * beside hookbench.bpf.c and lsm.bpf.c. As there, the Rust side (hookbench-bpf's
 * src/global.rs) opens the object once per program instance and loads only the one program it
 * needs, with its own maps.
 *
 * Hook: the raw tracepoint sys_enter (BPF_PROG_TYPE_RAW_TRACEPOINT, no BPF trampoline), run on
 * every syscall entry of every task of the machine while a program is attached. A global
 * program cannot be attached "to a cgroup": it runs for every task and must find out whether
 * it applies to the current one. Two forms of that dispatch, the only difference between the
 * two families of programs:
 *
 *   hb_loop_*: RFC v2 patch 09/10's shape (Landlock, August 2016): the program walks the first
 *     H entries of a BPF_MAP_TYPE_CGROUP_ARRAY of cgroup handles, calling
 *     bpf_current_task_under_cgroup(&hb_handles, i) on each, and runs its body at the first
 *     handle the task is in (or under). bpf_loop() walks them: the verifier checks the callback
 *     once whatever H (and inlines the call into a plain loop), so H goes to 4096 and far
 *     beyond (bpf_loop's limit is 1 << 23).
 *   hb_cgid_*: one bpf_get_current_cgroup_id() and one lookup of that id in a BPF_MAP_TYPE_HASH
 *     of H cgroup ids; the body runs when it is found. (This matches the task's own cgroup
 *     only, where the loop also matches descendants: hookbench's tasks sit in the handle
 *     cgroups themselves, so both find the same ones.)
 *
 * Both forms first compare the syscall number (ctx->args[1] of sys_enter) with the measured
 * trigger's (hb_cfg.trigger_nr, getppid here) and return at once for any other: sys_enter is
 * one hook for every syscall, and the comparison turns it into a hook of one operation, as an
 * LSM hook would be. So only getppid() pays the dispatch, the machine's other syscalls pay the
 * program's entry and one comparison, and the two forms filter identically: only the dispatch
 * differs. Bodies come from hb_bodies.h, exactly as cgroup-bpf's and the kmod's programs run
 * them: null, counter (atomic add on hb_counter[HB_COUNTER_KEY]), map lookup.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "hb_bodies.h"
#include "global.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the loader before load (see global.h): read-only, so the verifier sees constants. */
const volatile struct hb_global_cfg hb_cfg = {};

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1); /* the loader sets H */
	__type(key, __u32);
	__type(value, __u32);
} hb_handles SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1); /* the loader sets H */
	__type(key, __u64);
	__type(value, __u32);
} hb_cgids SEC(".maps");

/* A compiler barrier: the null body (keeps the branch that selects it). */
#define hb_barrier() asm volatile("" ::: "memory")

/* Whether this sys_enter is the measured trigger's syscall. */
static __always_inline int hb_is_trigger(struct bpf_raw_tracepoint_args *ctx)
{
	return ctx->args[1] == hb_cfg.trigger_nr;
}

/* What the handle loop's callback reports back. */
struct hb_loop_state {
	int matched;
};

/* One handle: stops the loop (returns 1) at the first handle the task is under. */
static long hb_handle_check(__u64 index, void *data)
{
	struct hb_loop_state *state = data;

	if (bpf_current_task_under_cgroup(&hb_handles, (__u32)index) == 1) {
		state->matched = 1;
		return 1;
	}
	return 0;
}

/* The handle loop: whether the task is under one of the first H handles. */
static __always_inline int hb_loop_matches(void)
{
	struct hb_loop_state state = { .matched = 0 };

	bpf_loop(hb_cfg.handles, hb_handle_check, &state, 0);
	return state.matched;
}

/* The cgroup-id map: whether the task's cgroup id is one of the H keys. */
static __always_inline int hb_cgid_matches(void)
{
	__u64 id = bpf_get_current_cgroup_id();

	return bpf_map_lookup_elem(&hb_cgids, &id) != 0;
}

/* One program hb_<form>_<name>: the trigger filter, the form's dispatch (hb_<form>_matches),
 * the body. Both forms of one body differ only in the dispatch. */
#define HB_GLOBAL_PROGRAM(form, name, body)                                   \
	SEC("raw_tp/sys_enter")                                               \
	int hb_##form##_##name(struct bpf_raw_tracepoint_args *ctx)           \
	{                                                                     \
		if (hb_is_trigger(ctx) && hb_##form##_matches())              \
			body;                                                 \
		return HB_GLOBAL_RETURN;                                      \
	}

#define HB_GLOBAL_PROGRAMS(name, body)                                        \
	HB_GLOBAL_PROGRAM(loop, name, body)                                   \
	HB_GLOBAL_PROGRAM(cgid, name, body)

HB_GLOBAL_PROGRAMS(null, hb_barrier())
HB_GLOBAL_PROGRAMS(counter, hb_count())
HB_GLOBAL_PROGRAMS(lookup, hb_lookup_body())
