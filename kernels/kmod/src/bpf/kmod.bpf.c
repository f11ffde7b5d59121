// SPDX-License-Identifier: GPL-2.0-only OR MIT
/* kmod.bpf.c: the program bodies hookbench.ko runs in every model. They are
 * BPF_PROG_TYPE_RAW_TRACEPOINT programs (SEC("raw_tp"), no tracepoint named): loaded by
 * hookbench-kmod (src/progs.rs), never attached to a tracepoint, and passed to the module by fd,
 * which runs them with bpf_prog_run() on a context of HB_KMOD_CTX_ARGS u64 values (see
 * ../../uapi/hookbench_kmod.h). One object holds every program; the Rust loader opens it once
 * per program instance and loads only the program it needs, so each instance has its own maps,
 * as for kernels/bpf.
 *
 * The null, counter and map-lookup bodies and their maps are those of
 * kernels/bpf/src/bpf/hookbench.bpf.c: both include kernels/bpf/src/bpf/hb_bodies.h (with the
 * constants of its hookbench.h). Two more programs serve the in-guest
 * checks: hb_kmod_ctx records the context it is given, hb_kmod_overread reads one u64 past it
 * (the module must refuse it), and hb_kmod_socket is of another program type (refused too).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
/* kernels/bpf/src/bpf (build.rs adds it with -I): the ABI header hookbench.h and the shared
 * maps and bodies. */
#include "hb_bodies.h"

/* Number of u64 context values the module passes (HB_KMOD_CTX_ARGS of the uapi header). */
#define HB_KMOD_CTX_ARGS 4

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* hb_kmod_ctx's record of the last context: slot i = ctx[i]. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HB_KMOD_CTX_ARGS);
	__type(key, __u32);
	__type(value, __u64);
} hb_ctx SEC(".maps");

HB_BODY_PROGS("raw_tp", hb_kmod, void *, 1, HB_VERDICT_ALLOW)

static __always_inline void hb_record(__u32 slot, __u64 value)
{
	__u64 *v = bpf_map_lookup_elem(&hb_ctx, &slot);

	if (v)
		*v = value;
}

SEC("raw_tp")
int hb_kmod_ctx(struct bpf_raw_tracepoint_args *ctx)
{
	hb_record(0, ctx->args[0]);
	hb_record(1, ctx->args[1]);
	hb_record(2, ctx->args[2]);
	hb_record(3, ctx->args[3]);
	hb_count();
	return HB_VERDICT_ALLOW;
}

SEC("raw_tp")
int hb_kmod_overread(struct bpf_raw_tracepoint_args *ctx)
{
	hb_record(0, ctx->args[HB_KMOD_CTX_ARGS]);
	return HB_VERDICT_ALLOW;
}

SEC("socket")
int hb_kmod_socket(struct __sk_buff *skb)
{
	return 0;
}
