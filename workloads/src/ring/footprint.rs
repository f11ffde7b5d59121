//! The bytes a ring's hook reads per rotation: W tasks or cgroups and their N programs each.
//!
//! "Cold" means something only against the caches: a working set whose dispatch metadata and
//! programs fit in the L2 stays warm however many tasks take turns. The kernel's objects are
//! not visible from userspace, so the kernel figure is an estimate from their layouts (x86-64,
//! Linux 6.x), counted in 64-byte cache lines the dispatch reads, not in bytes allocated (a
//! `struct bpf_prog` occupies a page, of which the dispatch reads one line):
//!
//! - seccomp (`__seccomp_filter` -> `seccomp_run_filters`, kernel/seccomp.c), per task: the
//!   line of `task_struct` holding `seccomp.filter`, and the line of the newest filter's action
//!   cache bitmap (`seccomp_cache_check_allow`); per filter: the `struct seccomp_filter` line
//!   (`prog`, `prev`), the `struct bpf_prog` line (`bpf_func`) and two lines of JIT image (13
//!   eBPF instructions, about 100 bytes on x86-64).
//! - cgroup-bpf getsockname4 (`__cgroup_bpf_run_filter_sock_addr` -> `bpf_prog_run_array_cg`),
//!   per cgroup: the `struct cgroup` line holding `bpf.effective[atype]`, the `bpf_prog_array`
//!   header line and its NULL terminator item (16 bytes); per program: its 16-byte
//!   `bpf_prog_array_item`, the `struct bpf_prog` line and one line of JIT image (the null
//!   body: `r0 = 1; exit` with the prologue and epilogue, under 64 bytes).
//!
//! What switching between the W tasks touches besides (their `task_struct`s, kernel stacks,
//! FPU state, page tables) is in the baseline as much as in the cell and is not counted: the
//! figure is a lower bound of what the rotation pulls through the caches.

use super::RingChain;

/// A cache line, bytes.
pub const LINE_BYTES: u64 = 64;

/// One `bpf_prog_array_item` (a program pointer and a cookie or storage pointer), bytes.
pub const ARRAY_ITEM_BYTES: u64 = 16;

/// How the kernel figures are counted, as the cells say it.
pub const KERNEL_METHOD: &str = "estimate: 64-byte lines the dispatch reads per task or cgroup and per program, \
                                 from kernel object layouts (x86-64, Linux 6.x); task switching not counted";

/// Bytes the hook's dispatch reads per slot (task or cgroup) and per program of a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes per task or cgroup, whatever its programs.
    pub per_slot_bytes: u64,
    /// Bytes per program of a slot.
    pub per_program_bytes: u64,
}

impl Footprint {
    /// Bytes `slots` slots of `programs` programs each read: one rotation's working set.
    pub fn bytes(&self, slots: u32, programs: u32) -> u64 {
        u64::from(slots) * self.slot_bytes(programs)
    }

    /// Bytes one slot of `programs` programs reads.
    pub fn slot_bytes(&self, programs: u32) -> u64 {
        self.per_slot_bytes + u64::from(programs) * self.per_program_bytes
    }
}

/// The kernel estimate for a ring of `chain` (see the module documentation). Pure.
pub fn kernel_footprint(chain: RingChain) -> Footprint {
    match chain {
        RingChain::Seccomp => Footprint {
            per_slot_bytes: 2 * LINE_BYTES,
            per_program_bytes: 4 * LINE_BYTES,
        },
        RingChain::CgroupBpf => Footprint {
            per_slot_bytes: 2 * LINE_BYTES + ARRAY_ITEM_BYTES,
            per_program_bytes: 2 * LINE_BYTES + ARRAY_ITEM_BYTES,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_lines_per_slot_and_per_program() {
        let chain = kernel_footprint(RingChain::Seccomp);
        assert_eq!(chain.slot_bytes(0), 128);
        assert_eq!(chain.slot_bytes(16), 128 + 16 * 256);
        assert_eq!(chain.bytes(4096, 16), 4096 * (128 + 16 * 256));
        let array = kernel_footprint(RingChain::CgroupBpf);
        assert_eq!(array.slot_bytes(4), 144 + 4 * 144);
        // A chain node costs more lines than an array slot: the walk follows a pointer per node.
        assert!(chain.per_program_bytes > array.per_program_bytes);
        assert_eq!(array.bytes(0, 16), 0);
    }
}
