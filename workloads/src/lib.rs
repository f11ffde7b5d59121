//! Workload generators of hookbench: model worlds, their trigger loops, attach benches, workers.
//!
//! Whole worlds (cgroup trees, task pools, per-slot programs) are built from scenario `Params`
//! for every model mechanism; the kernel's mechanisms are measured by the exec'd workers
//! ([`worker`]).
//!
//! Scenario layouts (hook 0 is the measured hook; `foreign` programs go round-robin to hooks
//! `1..hooks`, so `hooks >= 2` when `foreign > 0`):
//!
//! - **task-chain** (`chain-walk`): each slot is a task with its own chain of `programs + foreign`
//!   separately allocated nodes, foreign nodes interleaved evenly with the measured ones (so the
//!   walk visits them). Extra tasks (`tasks` beyond the slots) are forked from the slot tasks
//!   round-robin and share their chains (each adds one pointer of metadata).
//! - **task-hook-array** (`hook-index`): each slot task has its own table of `hooks` lists; extra
//!   tasks share the tables.
//! - Task models ignore `depth` and `cgroups` (they build no cgroup); `params()` reports them as
//!   requested.
//! - **cgroup-effective** (`effective-array`): root -> one path of `depth` cgroups per slot, the
//!   slot's task in the deepest; the slot's programs (and its foreign ones on their hooks) are
//!   attached with `ALLOW_MULTI` round-robin over its path from the leaf up (at most 64 per
//!   cgroup and hook, else [`BuildError::CgroupCap`]); the remaining `cgroups` are idle children of
//!   the root. Needs `1 + slots * depth` cgroups. Extra tasks share the slot tasks' css_sets.
//! - **global-filter** (`handle-loop`, `cgroup-id-map`): root -> K container cgroups; the LAST
//!   container holds every slot's path of `depth` cgroups (the slot's task in the deepest, at
//!   level `depth + 1`). K = `cgroups - 1 - slots * depth` when `cgroups > 0` (so the tree has
//!   exactly `cgroups`), K = slots when `cgroups == 0`. handle-loop: hook 0's global list holds
//!   `programs` programs (global: shared by all slots), each with its own array of K handles, one
//!   per container, in order, so every slot matches only the last: each program checks all K.
//!   cgroup-id-map: hook 0 has one global program (when `programs > 0`) whose map has one entry
//!   per slot cgroup (value: that slot's own `programs` bodies) and one per idle container (empty
//!   policy); foreign bodies are in other hooks' maps, per slot.
#![warn(missing_docs)]

mod attach;
pub mod attach_worker;
pub mod cgroup_bpf;
pub mod cgroupfs;
pub mod cpus;
pub mod error;
pub mod kmem;
pub mod kmod;
pub mod landlock;
pub mod layout;
pub mod lsm;
pub mod metadata;
pub mod model_worker;
pub mod rawtp;
pub mod ring;
pub mod seccomp;
pub mod sock_worker;
pub mod spawner;
pub mod taskpool;
#[cfg(test)]
mod test_support;
pub mod trigger;
pub mod worker;
mod world;

pub use error::BuildError;
pub use hookbench_model::{Body, HookAccounting, Mechanism, ModelKind, Params};
pub use world::MEASURED_HOOK;

/// Run counts of a slot's programs (Counter bodies only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunCounts {
    /// Total runs of the programs in effect on the measured hook for the slot.
    ///
    /// For handle-loop, the global programs, shared by every slot.
    pub measured: u64,
    /// Total runs of the slot's foreign programs (they must never run on the measured hook).
    pub foreign: u64,
}

/// A built scenario ready to be triggered, with `working_set * cpus` slots.
///
/// CPU c's measuring thread uses slots `c*W .. (c+1)*W`. Each slot is a distinct task (task
/// models) or a task in a distinct cgroup (cgroup models), each with its own, separately
/// allocated programs (global-filter's handle-loop programs are global by definition and
/// shared).
pub trait World: Send + Sync {
    /// The mechanism built.
    fn mechanism(&self) -> Mechanism;
    /// The params as built, with `cgroups` and `tasks` resolved to the real counts.
    ///
    /// `cgroups == 0` or `tasks == 0` in the request mean "auto, exactly what the other axes need";
    /// here they are resolved (task models keep `cgroups` as requested: they build none).
    fn params(&self) -> Params;
    /// Number of slots (`working_set * cpus`).
    fn slots(&self) -> usize;
    /// Runs the measured hook `iterations` times, cycling through the slots of `order`.
    ///
    /// `order` holds slot indices, each < `slots()` (panics on a larger one, a caller bug), one
    /// hook per entry; returns the sum of verdicts so the caller can black_box it. No counting, no
    /// allocation, monomorphic inside (one dyn call per batch). An empty `order` runs nothing and
    /// returns 0.
    fn trigger(&self, order: &[u32], iterations: u64) -> u64;
    /// Exact accounting of one hook as slot `slot`, counted by the same traversal as `trigger`
    /// (it runs the hook once, so Counter bodies count that run). Panics if `slot >= slots()`.
    fn accounting(&self, slot: u32) -> HookAccounting;
    /// Exact bytes of dispatch metadata of the whole world, programs excluded.
    ///
    /// From the actual allocations, shared allocations once.
    fn metadata_bytes(&self) -> u64;
    /// [`World::metadata_bytes`] by component; sums to it.
    ///
    /// Components: "chain-nodes", "task-pointers", "hook-tables", "hook-lists", "cgroup-bpf",
    /// "attach-lists", "effective-arrays", "css-sets", "global-lists", "handle-arrays",
    /// "map-buckets", "map-entries".
    fn metadata_breakdown(&self) -> Vec<(&'static str, u64)>;
    /// Bytes of the distinct program structs (and their own maps), apart from the metadata.
    fn program_bytes(&self) -> u64;
    /// Run counts of slot `slot`'s programs.
    ///
    /// `None` unless the body is Counter, or for a slot out of range.
    fn run_counts(&self, slot: u32) -> Option<RunCounts>;
}

/// Builds the world of `mechanism` for `params`. `seed` is accepted for reproducible variants;
/// the layouts are deterministic and do not use it. Errors: [`BuildError`] naming the bad axis
/// and value (sizes above the `layout::MAX_*` limits, `hooks < 2` with foreign programs, too few
/// cgroups or tasks, more than 64 programs per cgroup and hook).
pub fn build_world(mechanism: Mechanism, params: &Params, seed: u64) -> Result<Box<dyn World>, BuildError> {
    let _ = seed;
    world::build(mechanism, params)
}

/// Update cost: attach/detach one program at the attach point.
pub trait AttachBench: Send {
    /// The mechanism built.
    fn mechanism(&self) -> Mechanism;
    /// The params as built.
    fn params(&self) -> Params;
    /// Attaches one new program on hook 0; returns the work units of the attach.
    ///
    /// cgroup-effective: at the top of a subtree with `params.cgroups` descendants (chains of
    /// `depth`), with ALLOW_MULTI, on top of `programs` already attached there, recomputing every
    /// effective array of the subtree; returns the arrays recomputed (`cgroups + 1`); at most `64 -
    /// programs` attaches may be outstanding, past that it attaches nothing and returns 0.
    /// task-chain: push one node on the task (1). task-hook-array: copy-on-install of the task's
    /// table and hook 0's list (entries copied: `hooks` + new list length). handle-loop: RCU-copy
    /// append to hook 0's global list of a program with one handle, the attach point (entries
    /// copied + 1). cgroup-id-map: rewrite the attach point's map entry with its policy plus the
    /// program (policy entries written; the map is keyed by exact cgroup id, descendants are not
    /// touched).
    fn attach(&mut self) -> u64;
    /// Undoes the last outstanding attach; returns the work units of the undo, 0 with none left.
    ///
    /// task-chain drops the node: 1.
    fn detach(&mut self) -> u64;
}

/// Builds the attach bench of `mechanism` for `params` (`cgroups`: descendants of the top).
///
/// `seed` is unused: layouts are deterministic.
///
/// Errors: as [`build_world`]; cgroup-effective also needs `programs < 64` to leave room for the
/// attached one.
pub fn build_attach_bench(
    mechanism: Mechanism,
    params: &Params,
    seed: u64,
) -> Result<Box<dyn AttachBench>, BuildError> {
    let _ = seed;
    attach::build(mechanism, params)
}

#[cfg(test)]
mod tests;
