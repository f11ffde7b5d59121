/* SPDX-License-Identifier: GPL-2.0-only OR MIT */
/* hb_bodies.h: the maps and program bodies every hookbench BPF object shares (hookbench.bpf.c,
 * lsm.bpf.c, and kernels/kmod's kmod.bpf.c, which adds this directory with -I), so that the
 * same "program" runs in every dispatch model. Include it after <linux/bpf.h> and
 * <bpf/bpf_helpers.h>; the layouts are those of the ABI header hookbench.h.
 *
 * The maps are defined here, so every object that includes this header has its own hb_counter
 * and hb_lookup (the Rust side finds them by name in each object and creates them per program
 * instance).
 */
#ifndef HOOKBENCH_HB_BODIES_H
#define HOOKBENCH_HB_BODIES_H

#include "hookbench.h"

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

/* The counter body: an atomic add on hb_counter[HB_COUNTER_KEY]. */
static __always_inline void hb_count(void)
{
	__u32 key = HB_COUNTER_KEY;
	__u64 *v = bpf_map_lookup_elem(&hb_counter, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* The map-lookup body: one bpf_map_lookup_elem of HB_LOOKUP_KEY in hb_lookup. The verdict
 * does not depend on the value: only the lookup is measured. Returns the value found (NULL if
 * none), which callers may ignore. */
static __always_inline __u64 *hb_lookup_body(void)
{
	__u32 key = HB_LOOKUP_KEY;

	return bpf_map_lookup_elem(&hb_lookup, &key);
}

/* A compiler barrier: the null body, where a branch must stay (its two sides return alike). */
#define hb_barrier() asm volatile("" ::: "memory")

/*
 * One program: SEC(sec_) int name_(ctx_t_ ctx) runs @body_ when @applies_ holds, then returns
 * @verdict_. Pass 1 as @applies_ for a program that always runs its body.
 */
#define HB_PROG(sec_, name_, ctx_t_, applies_, body_, verdict_)	\
	SEC(sec_)							\
	int name_(ctx_t_ ctx)						\
	{								\
		if (applies_)						\
			body_;						\
		return verdict_;					\
	}

/*
 * The three measured programs of one section, prefix_##_null, _counter and _lookup, running the
 * null, counter and map-lookup bodies: what every object defines once per hook, so that the same
 * "program" runs on every hook and in every dispatch model.
 */
#define HB_BODY_PROGS(sec_, prefix_, ctx_t_, applies_, verdict_)				\
	HB_PROG(sec_, prefix_##_null, ctx_t_, applies_, hb_barrier(), verdict_)		\
	HB_PROG(sec_, prefix_##_counter, ctx_t_, applies_, hb_count(), verdict_)		\
	HB_PROG(sec_, prefix_##_lookup, ctx_t_, applies_, hb_lookup_body(), verdict_)

#endif /* HOOKBENCH_HB_BODIES_H */
