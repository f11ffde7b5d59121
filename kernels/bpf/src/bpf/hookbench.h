/* hookbench.h: the C/Rust ABI of hookbench's BPF programs (hookbench.bpf.c) and
 * hookbench-bpf's Rust side (src/lib.rs mirrors every value below; a unit test parses this file
 * and checks them). Plain #defines only, so the file is valid C for clang -target bpf and
 * trivially parseable.
 *
 * Every program object has two maps, owned by the one program loaded from it:
 *   hb_counter: BPF_MAP_TYPE_ARRAY, HB_COUNTER_ENTRIES entries, key __u32, value __u64; the
 *               counter body adds 1 to entry HB_COUNTER_KEY with an atomic add per run.
 *   hb_lookup:  BPF_MAP_TYPE_HASH, HB_LOOKUP_ENTRIES entries, key __u32, value __u64; the
 *               map-lookup body looks up HB_LOOKUP_KEY (userspace fills keys
 *               0..HB_LOOKUP_ENTRIES-1 so the lookup hits).
 * Every program returns HB_VERDICT_ALLOW (1: "allow" for every cgroup attach type used).
 */
#ifndef HOOKBENCH_H
#define HOOKBENCH_H

/* Body kinds (what one program does when its hook fires). */
#define HB_BODY_NULL 0
#define HB_BODY_COUNTER 1
#define HB_BODY_MAP_LOOKUP 2

/* Counter map layout. */
#define HB_COUNTER_ENTRIES 1
#define HB_COUNTER_KEY 0

/* Lookup map layout. */
#define HB_LOOKUP_ENTRIES 16
#define HB_LOOKUP_KEY 7

/* Return value of every program. */
#define HB_VERDICT_ALLOW 1

#endif /* HOOKBENCH_H */
