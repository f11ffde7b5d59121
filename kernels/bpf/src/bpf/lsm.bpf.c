// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* lsm.bpf.c: hookbench's BPF LSM programs, a separate object from hookbench.bpf.c. As there,
 * the Rust side (hookbench-bpf's src/lsm.rs) opens the object once per program instance and
 * loads only the one program it needs, so every instance has its own program and its own maps.
 *
 * Measured hook: the LSM hook socket_create (security_socket_create(), called by
 * __sock_create() on every socket(2) before the family's create function), reached through
 * the BPF LSM's stub bpf_lsm_socket_create (kernel/bpf/bpf_lsm.c) and a BPF trampoline on it:
 *
 *   lsm_cgroup/socket_create (BPF_LSM_CGROUP, kernel >= 6.0): attached per cgroup with a link;
 *     the trampoline runs a shim (__cgroup_bpf_run_lsm_current: the hook's first argument is
 *     not a socket) that runs current's cgroup's effective array for the hook, like
 *     cgroup-bpf. One program per body; each returns HB_LSM_CGROUP_VERDICT_ALLOW.
 *   lsm/socket_create (BPF_LSM_MAC): attached globally, every program runs for every task on
 *     the machine. Each first checks whether it applies to the current task (its hb_task task
 *     storage: bpf_task_storage_get on bpf_get_current_task_btf(), no create) and, only if
 *     so, runs the body. One program per body; each returns HB_LSM_VERDICT_ALLOW.
 *
 * Bodies and their maps from hb_bodies.h, as in hookbench.bpf.c: null, counter (atomic add on
 * hb_counter[HB_COUNTER_KEY]), map lookup (bpf_map_lookup_elem of HB_LOOKUP_KEY in hb_lookup,
 * exactly as the cgroup-bpf and kmod programs run it). No vmlinux.h is needed:
 * the programs never read the hook's arguments (ctx), and struct task_struct is only passed
 * through as a pointer.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "hb_bodies.h"
#include "lsm.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} hb_task SEC(".maps");

/* Whether the global programs apply to the current task: its hb_task storage holds
 * HB_TASK_MARK_APPLIES (tasks without storage get NULL: nothing is created). */
static __always_inline int hb_applies(void)
{
	__u64 *mark = bpf_task_storage_get(&hb_task, bpf_get_current_task_btf(), 0, 0);

	return mark && *mark == HB_TASK_MARK_APPLIES;
}

HB_BODY_PROGS("lsm_cgroup/socket_create", hb_lsmcg, void *, 1, HB_LSM_CGROUP_VERDICT_ALLOW)

/* The global programs check that they apply first; the null body's check stays (the barrier is
 * its body), nothing else runs. */
HB_BODY_PROGS("lsm/socket_create", hb_lsm, void *, hb_applies(), HB_LSM_VERDICT_ALLOW)
