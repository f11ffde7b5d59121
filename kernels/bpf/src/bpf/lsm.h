/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* lsm.h: the C/Rust ABI of hookbench's BPF LSM programs (lsm.bpf.c) beyond hookbench.h, whose
 * body codes and map layouts they share (hb_counter, hb_lookup: see hookbench.h).
 * hookbench-bpf's src/lsm.rs mirrors every value below; a unit test parses this file and checks
 * them. Plain #defines only, so the file is valid C for clang -target bpf and trivially
 * parseable.
 *
 * The object's third map, used by the global (lsm/...) programs only:
 *   hb_task: BPF_MAP_TYPE_TASK_STORAGE (BPF_F_NO_PREALLOC), key int (a pidfd from userspace),
 *            value __u64; a task whose value is HB_TASK_MARK_APPLIES is one the program applies
 *            to, every other task (no storage) skips the body.
 */
#ifndef HOOKBENCH_LSM_H
#define HOOKBENCH_LSM_H

/* What a global lsm program returns to allow: 0 (a negative errno denies; the kernel's
 * call_int_hook stops at the first non-zero return). */
#define HB_LSM_VERDICT_ALLOW 0

/* What an lsm_cgroup program returns to allow: 1 (0 denies with EPERM;
 * kernel/bpf/cgroup.c: __cgroup_bpf_run_lsm_current). */
#define HB_LSM_CGROUP_VERDICT_ALLOW 1

/* The hb_task value of a task the global programs apply to. */
#define HB_TASK_MARK_APPLIES 1

#endif /* HOOKBENCH_LSM_H */
