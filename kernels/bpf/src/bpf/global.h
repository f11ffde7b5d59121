/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* global.h: the C/Rust ABI of hookbench's global-filter programs (global.bpf.c) beyond
 * hookbench.h, whose body codes and map layouts they share (hb_counter, hb_lookup).
 * hookbench-bpf's src/global.rs mirrors every value and the layout below; a unit test parses
 * this file and checks them.
 *
 * The object's read-only configuration, set by the loader before BPF_PROG_LOAD (the verifier
 * then sees constants), is one struct hb_global_cfg, the only variable of its .rodata:
 *   trigger_nr: the syscall number the programs act on (args[1] of raw_tp/sys_enter); every
 *               other syscall returns at once;
 *   handles:    the entries of hb_handles the handle loop walks (H).
 *
 * The maps only one form uses (the loader creates only the one its program needs, with
 * max_entries = H):
 *   hb_handles: BPF_MAP_TYPE_CGROUP_ARRAY, key __u32 (0..H-1), value a cgroup directory fd
 *               from userspace (the kernel keeps the cgroup);
 *   hb_cgids:   BPF_MAP_TYPE_HASH, key __u64 (a cgroup id: the cgroup directory's inode number
 *               on cgroup2), value __u32 (the handle's index).
 */
#ifndef HOOKBENCH_GLOBAL_H
#define HOOKBENCH_GLOBAL_H

/* What every global program returns (raw tracepoint programs' return value is ignored). */
#define HB_GLOBAL_RETURN 0

/* Bytes of struct hb_global_cfg: __u64 trigger_nr, __u32 handles, __u32 pad. */
#define HB_GLOBAL_CFG_BYTES 16

struct hb_global_cfg {
	__u64 trigger_nr;
	__u32 handles;
	__u32 pad;
};

#endif /* HOOKBENCH_GLOBAL_H */
