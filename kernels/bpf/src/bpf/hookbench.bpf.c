// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* hookbench.bpf.c: hookbench's cgroup-bpf programs. One object holds every program; the Rust
 * side (hookbench-bpf) opens the object once per program instance and loads only the one
 * program it needs (the others are set not to autoload), so every instance has its own program
 * and its own maps, as hookbench's "program" is defined (kernels/model: Body).
 *
 * Measured hook: cgroup/sock_create (BPF_CGROUP_INET_SOCK_CREATE, runs in inet_create() on
 * every socket(AF_INET*, ...) of a task in the cgroup), one program per body.
 * Foreign hooks (never run by socket()/close()): cgroup/sysctl, cgroup/getsockopt, cgroup/dev;
 * their programs run the counter body, so a test can check they never ran.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "hookbench.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HB_COUNTER_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} hb_counter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HB_LOOKUP_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} hb_lookup SEC(".maps");

static __always_inline int hb_count(void)
{
	__u32 key = HB_COUNTER_KEY;
	__u64 *v = bpf_map_lookup_elem(&hb_counter, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return HB_VERDICT_ALLOW;
}

static __always_inline int hb_lookup_body(void)
{
	__u32 key = HB_LOOKUP_KEY;
	__u64 *v = bpf_map_lookup_elem(&hb_lookup, &key);

	/* The verdict does not depend on the value: only the lookup is measured. */
	if (v && *v == (__u64)-1)
		return HB_VERDICT_ALLOW;
	return HB_VERDICT_ALLOW;
}

SEC("cgroup/sock_create")
int hb_sock_null(struct bpf_sock *ctx)
{
	return HB_VERDICT_ALLOW;
}

SEC("cgroup/sock_create")
int hb_sock_counter(struct bpf_sock *ctx)
{
	return hb_count();
}

SEC("cgroup/sock_create")
int hb_sock_lookup(struct bpf_sock *ctx)
{
	return hb_lookup_body();
}

SEC("cgroup/sysctl")
int hb_foreign_sysctl(struct bpf_sysctl *ctx)
{
	return hb_count();
}

SEC("cgroup/getsockopt")
int hb_foreign_getsockopt(struct bpf_sockopt *ctx)
{
	/* Leave the kernel's own getsockopt result alone (retval untouched). */
	return hb_count();
}

SEC("cgroup/dev")
int hb_foreign_dev(struct bpf_cgroup_dev_ctx *ctx)
{
	return hb_count();
}
