// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* hookbench.bpf.c: hookbench's cgroup-bpf programs. One object holds every program; the Rust
 * side (hookbench-bpf) opens the object once per program instance and loads only the one
 * program it needs (the others are set not to autoload), so every instance has its own program
 * and its own maps, as hookbench's "program" is defined (kernels/model: Body).
 *
 * Measured hooks, one program per body each:
 * - cgroup/getsockname4 (BPF_CGROUP_INET4_GETSOCKNAME, Linux 5.8+): run by inet_getname() on
 *   every getsockname() of an AF_INET socket, from the effective array of the cgroup the
 *   socket was created in (sk->sk_cgrp_data). The cheap trigger: no allocation, no undo. The
 *   verifier accepts only a return value of 1 for this attach type (check_return_code).
 * - cgroup/sock_create (BPF_CGROUP_INET_SOCK_CREATE, runs in inet_create() on every
 *   socket(AF_INET*, ...) of a task in the cgroup).
 * Foreign hooks (never run by socket(), getsockname() or close()): cgroup/sysctl,
 * cgroup/getsockopt, cgroup/dev; their programs run the counter body, so a test can check
 * they never ran.
 *
 * The maps (hb_counter, hb_lookup) and the bodies come from hb_bodies.h, shared with lsm.bpf.c
 * and kernels/kmod's kmod.bpf.c.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "hb_bodies.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

HB_BODY_PROGS("cgroup/sock_create", hb_sock, struct bpf_sock *, 1, HB_VERDICT_ALLOW)
HB_BODY_PROGS("cgroup/getsockname4", hb_getsockname, struct bpf_sock_addr *, 1, HB_VERDICT_ALLOW)

/* Foreign hooks: the counter body, so that a test can tell they never ran. cgroup/getsockopt
 * leaves the kernel's own getsockopt result alone (retval untouched). */
HB_PROG("cgroup/sysctl", hb_foreign_sysctl, struct bpf_sysctl *, 1, hb_count(), HB_VERDICT_ALLOW)
HB_PROG("cgroup/getsockopt", hb_foreign_getsockopt, struct bpf_sockopt *, 1, hb_count(),
	HB_VERDICT_ALLOW)
HB_PROG("cgroup/dev", hb_foreign_dev, struct bpf_cgroup_dev_ctx *, 1, hb_count(), HB_VERDICT_ALLOW)
