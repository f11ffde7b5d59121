//! Kernel memory of dispatch metadata, counted by object: kmalloc caches and BPF's vmalloc pages.
//!
//! Claim 5 asks how many bytes the kernel keeps per cgroup and per task for its security
//! programs. [`KmemCounter::read`] takes one reading of the caches that can hold that metadata
//! (`/proc/slabinfo`, `active_objs x objsize` per cache, right after SLUB's `shrink` has flushed
//! the per-CPU slabs so that the counts are exact) and of the pages vmalloc'd for BPF programs
//! (`/proc/vmallocinfo`, callers `bpf_*`); [`Kmem::delta`] subtracts two readings. Root only.
//!
//! Which caches, and why (kernel/bpf/cgroup.c, kernel/seccomp.c, kernel/bpf/core.c of 6.x):
//!
//! - An effective array is `bpf_prog_array_alloc(cnt, GFP_KERNEL)`, a `kzalloc` of a 16-byte
//!   `rcu_head` and `cnt + 1` `bpf_prog_array_item`s of 24 bytes (`compute_effective_progs`,
//!   once per cgroup of the subtree and attach type in `update_effective_progs`): a
//!   `kmalloc-<size>` object (64 bytes for one program), never a dedicated cache.
//! - Each attach also allocates its `bpf_cgroup_link` (`kzalloc`, `GFP_USER`) and its entry of
//!   the attached list (`struct bpf_prog_list`, `kmalloc`): `kmalloc-<size>` too, once per attach,
//!   whatever the number of cgroups.
//! - A seccomp filter is a `struct seccomp_filter` (`kzalloc`, `kmalloc-<size>` or its
//!   memcg-accounted `kmalloc-cg-<size>` twin) and a classic BPF program: `bpf_prog_alloc` vmallocs
//!   its instructions (`bpf_prog_alloc_no_stats`, `bpf_prog_realloc` when converted) and
//!   kzallocs its `bpf_prog_aux` (`kmalloc-cg-<size>`); the JIT image goes to the shared
//!   `bpf_prog_pack` pages (not per program) and the per-CPU statistics to the percpu allocator
//!   (not counted: `Percpu:` of /proc/meminfo has kB resolution).
//!
//! So a reading sums the kmalloc caches of its [`Caches`] and the `bpf_*` vmalloc pages, and
//! leaves out every dedicated cache (dentries, inodes, task structs, `vmap_area`, whose lazy
//! purge frees thousands at once): what those hold does not grow with cgroups or with seccomp
//! filters, and it is where most of the system's own churn is. cgroup-bpf allocates nothing
//! with `__GFP_ACCOUNT`, so its readings leave the memcg-accounted `kmalloc-cg-` caches out
//! ([`Caches::Unaccounted`]), and with them most of other processes' churn (a fork's kmalloc
//! objects are accounted); seccomp's `bpf_prog_aux` is accounted, so its readings take both
//! ([`Caches::All`]). A fork's `task_struct`, `mm_struct` and stack are not metadata either;
//! the seccomp cells subtract the same tasks forked without filters.
//!
//! Objects freed by RCU callbacks (`kfree_rcu` of a replaced effective array, a task's exit)
//! land later; [`KmemCounter::settle`] waits for the counted bytes to stop falling before a
//! measurement starts.

use std::time::{Duration, Instant};

use hookbench_sys::slabinfo::{is_kmalloc, shrink, SlabInfo, SlabInfoError};
use hookbench_sys::vmallocinfo::{is_bpf_caller, page_bytes_where, page_size_bytes, read_vmallocinfo};
use serde::{Deserialize, Serialize};

/// Pause between the readings of [`KmemCounter::settle`].
pub const SETTLE_STEP: Duration = Duration::from_millis(25);

/// Steps in a row without a change that [`KmemCounter::settle`] takes as settled.
pub const SETTLE_QUIET_STEPS: u32 = 2;

/// Length of the null windows that bracket a measurement ([`KmemCounter::measure`]).
pub const NULL_WINDOW: Duration = Duration::from_millis(50);

/// Largest change of the counted bytes in a null window for the system to count as quiet.
pub const QUIET_TOLERANCE_BYTES: i64 = 16 << 10;

/// Why kernel memory could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum KmemError {
    /// `/proc/slabinfo` could not be read or parsed, or a cache not shrunk (needs root).
    #[error(transparent)]
    Slab(#[from] SlabInfoError),
    /// `/proc/vmallocinfo` could not be read (needs root).
    #[error("{0}")]
    Vmalloc(#[source] std::io::Error),
    /// `/proc/slabinfo` lists no kmalloc cache of the kind asked for: the allocator is not SLUB.
    #[error("/proc/slabinfo lists no kmalloc-<size> cache: this kernel's slab allocator is not SLUB")]
    NoKmalloc,
}

/// Which kmalloc caches a reading counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Caches {
    /// `kmalloc-<size>` (and its `-rnd-` copies): what is allocated without `__GFP_ACCOUNT`.
    ///
    /// Effective arrays, `bpf_prog_list` and `bpf_cgroup_link` (GFP_KERNEL, GFP_USER) land here.
    Unaccounted,
    /// Those and their memcg-accounted twins `kmalloc-cg-<size>` (every kmalloc cache).
    #[default]
    All,
}

impl Caches {
    /// Whether the cache `name` is counted.
    pub fn counts(self, name: &str) -> bool {
        is_kmalloc(name) && (self == Caches::All || !name.starts_with("kmalloc-cg-"))
    }
}

/// Why [`KmemCounter::measure`] has no measurement: counting failed, or the action did.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError<E: std::error::Error + 'static> {
    /// A reading failed.
    #[error(transparent)]
    Kmem(#[from] KmemError),
    /// The action measured failed.
    #[error(transparent)]
    Act(E),
}

/// One reading: every slab cache and the bytes of BPF's vmalloc pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kmem {
    /// The slab caches, as read right after shrinking the counted ones.
    pub slab: SlabInfo,
    /// Bytes of the pages behind live vmalloc areas of `bpf_*` callers.
    pub bpf_vmalloc_bytes: u64,
    /// The caches counted.
    pub caches: Caches,
}

/// One measurement: the change across an action, and what changed in the null windows beside it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Measurement {
    /// The change from just before the action to just after it.
    pub delta: KmemDelta,
    /// The largest change (absolute) of the counted bytes in either null window beside the action.
    ///
    /// That is other processes' allocations and frees.
    pub background_bytes: i64,
}

impl Measurement {
    /// Whether both null windows stayed within [`QUIET_TOLERANCE_BYTES`].
    pub fn quiet(&self) -> bool {
        self.background_bytes <= QUIET_TOLERANCE_BYTES
    }
}

/// What changed between two readings, in the counted caches and BPF's vmalloc pages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmemDelta {
    /// `slab_bytes + bpf_vmalloc_bytes`.
    pub bytes: i64,
    /// Change of the kmalloc caches' active bytes.
    pub slab_bytes: i64,
    /// Change of the bytes of `bpf_*` vmalloc pages.
    pub bpf_vmalloc_bytes: i64,
    /// The kmalloc caches that changed, with the change, largest first.
    pub by_cache: Vec<(String, i64)>,
}

impl Kmem {
    /// Bytes counted in this reading: its kmalloc caches and BPF's vmalloc pages.
    pub fn counted_bytes(&self) -> i64 {
        self.slab.active_bytes(|c| self.caches.counts(c)) as i64 + self.bpf_vmalloc_bytes as i64
    }

    /// What changed from `before` to this reading, in this reading's caches. Pure.
    pub fn delta(&self, before: &Kmem) -> KmemDelta {
        let slab = self.slab.delta(&before.slab, |c| self.caches.counts(c));
        let vmalloc = self.bpf_vmalloc_bytes as i64 - before.bpf_vmalloc_bytes as i64;
        KmemDelta {
            bytes: slab.bytes + vmalloc,
            slab_bytes: slab.bytes,
            bpf_vmalloc_bytes: vmalloc,
            by_cache: slab.by_cache,
        }
    }
}

/// Takes [`Kmem`] readings of this kernel's kmalloc caches (root only).
#[derive(Debug, Clone)]
pub struct KmemCounter {
    /// The counted caches' names, shrunk before every reading.
    names: Vec<String>,
    caches: Caches,
    page_bytes: u64,
}

impl KmemCounter {
    /// Learns this kernel's kmalloc caches of `caches` from one reading of `/proc/slabinfo`.
    ///
    /// Errors: [`KmemError::Slab`] (not root), [`KmemError::NoKmalloc`].
    pub fn new(caches: Caches) -> Result<KmemCounter, KmemError> {
        let names: Vec<String> = SlabInfo::read()?
            .caches()
            .filter(|c| caches.counts(&c.name))
            .map(|c| c.name.clone())
            .collect();
        if names.is_empty() {
            return Err(KmemError::NoKmalloc);
        }
        Ok(KmemCounter {
            names,
            caches,
            page_bytes: page_size_bytes(),
        })
    }

    /// One exact reading: shrinks the kmalloc caches, then reads slabinfo and vmallocinfo.
    ///
    /// Shrinking first flushes the per-CPU slabs, whose free objects slabinfo would otherwise
    /// count as active (see `hookbench_sys::slabinfo`). Errors: [`KmemError`].
    pub fn read(&self) -> Result<Kmem, KmemError> {
        shrink(self.names.iter().map(String::as_str))?;
        let slab = SlabInfo::read()?;
        let text = read_vmallocinfo().map_err(KmemError::Vmalloc)?;
        Ok(Kmem {
            slab,
            bpf_vmalloc_bytes: page_bytes_where(&text, self.page_bytes, is_bpf_caller),
            caches: self.caches,
        })
    }

    /// Waits until the counted bytes stop changing, at most `timeout`; returns the last reading.
    ///
    /// Readings [`SETTLE_STEP`] apart; it stops after [`SETTLE_QUIET_STEPS`] steps in a row in
    /// which they did not change by more than `tolerance_bytes`, so that the RCU callbacks and
    /// deferred work of what was freed before (replaced effective arrays, exited tasks' filters)
    /// do not land inside the next measurement, nor a burst of other processes' allocations.
    /// Errors: [`KmemError`].
    pub fn settle(&self, tolerance_bytes: i64, timeout: Duration) -> Result<Kmem, KmemError> {
        let deadline = Instant::now() + timeout;
        let mut last = self.read()?;
        let mut quiet = 0;
        while quiet < SETTLE_QUIET_STEPS && Instant::now() < deadline {
            std::thread::sleep(SETTLE_STEP);
            let now = self.read()?;
            let changed = (last.counted_bytes() - now.counted_bytes()).abs();
            quiet = if changed <= tolerance_bytes { quiet + 1 } else { 0 };
            last = now;
        }
        Ok(last)
    }

    /// Measures what `act` allocates, between two [`NULL_WINDOW`]s that watch everyone else.
    ///
    /// Reads, waits a null window, reads (the "before"), runs `act`, reads (the "after"), waits
    /// a null window and reads again. `act`'s result is returned beside the measurement, so what
    /// it made (links, tasks) can outlive the readings. A caller keeps the measurement only when
    /// [`Measurement::quiet`]: a change in a null window is other processes' work, which may
    /// have landed between "before" and "after" too. Errors: [`MeasureError`].
    pub fn measure<T, E: std::error::Error + 'static>(
        &self,
        act: impl FnOnce() -> Result<T, E>,
    ) -> Result<(Measurement, T), MeasureError<E>> {
        let lead = self.read()?;
        std::thread::sleep(NULL_WINDOW);
        let before = self.read()?;
        let made = act().map_err(MeasureError::Act)?;
        let after = self.read()?;
        std::thread::sleep(NULL_WINDOW);
        let trail = self.read()?;
        let background_bytes = (before.counted_bytes() - lead.counted_bytes())
            .abs()
            .max((trail.counted_bytes() - after.counted_bytes()).abs());
        Ok((
            Measurement {
                delta: after.delta(&before),
                background_bytes,
            },
            made,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(k64: u64, cg256: u64, vmalloc: u64, caches: Caches) -> Kmem {
        let text = format!(
            "slabinfo - version: 2.1\nkmalloc-64 {k64} 8192 64 64 1\nkmalloc-cg-256 {cg256} 512 256 16 1\n\
             task_struct 300 320 9408 3 8\n"
        );
        Kmem {
            slab: SlabInfo::parse(&text).expect("fixture parses"),
            bpf_vmalloc_bytes: vmalloc,
            caches,
        }
    }

    #[test]
    fn a_delta_counts_kmalloc_caches_and_bpf_pages_only() {
        let before = reading(1000, 100, 8192, Caches::All);
        let after = reading(1000 + 4097, 104, 8192 + 4 * 4096, Caches::All);
        let d = after.delta(&before);
        assert_eq!(d.slab_bytes, 4097 * 64 + 4 * 256);
        assert_eq!(d.bpf_vmalloc_bytes, 4 * 4096);
        assert_eq!(d.bytes, d.slab_bytes + d.bpf_vmalloc_bytes);
        assert_eq!(d.by_cache[0], ("kmalloc-64".to_string(), 4097 * 64));
        assert_eq!(
            after.counted_bytes() - before.counted_bytes(),
            d.bytes,
            "task_struct is not counted"
        );
        // Unaccounted: the kmalloc-cg-256 objects are not counted.
        let before = reading(1000, 100, 0, Caches::Unaccounted);
        let after = reading(1000 + 4097, 104, 0, Caches::Unaccounted);
        assert_eq!(after.delta(&before).bytes, 4097 * 64);
        assert!(Caches::Unaccounted.counts("kmalloc-8k") && !Caches::Unaccounted.counts("kmalloc-cg-64"));
        assert!(Caches::All.counts("kmalloc-cg-64") && !Caches::All.counts("kmalloc-rcl-64"));
    }

    /// A live reading as root: counts something, and two readings in a row barely differ.
    #[test]
    fn live_readings_as_root() {
        if !hookbench_sys::testing::root_or_skip("live_readings_as_root", "/proc/slabinfo is root's only") {
            return;
        }
        let counter = KmemCounter::new(Caches::All).expect("kmalloc caches");
        let a = counter.read().expect("reads");
        assert!(a.counted_bytes() > 0);
        let b = counter.settle(64 << 10, Duration::from_secs(1)).expect("settles");
        assert!(b.counted_bytes() > 0);
    }
}
