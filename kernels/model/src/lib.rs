//! Re-implements each dispatch model in userspace with the kernel's data shapes, to time dispatch.
//!
//! The models are those of ARCHITECTURE.md, "Names":
//!
//! - [`chain`]: task-chain (`struct seccomp_filter`'s `prev` list, shared across fork);
//! - [`hook_array`]: task-hook-array (per-task `programs[hook]` table);
//! - [`cgroup`]: cgroup-effective (kernel/bpf/cgroup.c: attach rules, `compute_effective_progs`,
//!   `update_effective_progs`, `struct bpf_prog_array_item`, css_set indirection);
//! - [`global`]: global-filter (handle loop of RFC v2 09/10, or one cgroup-id map lookup).
//!
//! Every traversal is generic over a [`Tally`]: [`NoTally`] on the measured path,
//! [`HookAccounting`] for exact counts from the same walk. [`Footprint`] gives exact metadata
//! bytes from the actual allocations.
#![warn(missing_docs)]

pub mod cgroup;
pub mod chain;
pub mod error;
pub mod footprint;
pub mod global;
pub mod hook_array;
pub mod htab;
pub mod names;
pub mod prog;
pub mod tally;

pub use cgroup::{
    AttachError, AttachFlags, CgroupRef, CgroupTask, CgroupTree, CssSet, EffectiveArray, HookProgs, ProgArrayItem,
    BPF_CGROUP_MAX_PROGS,
};
pub use chain::{ChainNode, ChainTask};
pub use error::ModelError;
pub use footprint::Footprint;
pub use global::{CgroupIdMapFilter, GlobalProg, HandleLoopFilter, Policy};
pub use hook_array::{HookArrayTask, HookTable, ProgList};
pub use htab::{Htab, HtabError};
pub use names::{Body, Mechanism, ModelKind, Params, UnknownName, NUMERIC_AXES};
pub use prog::{HookCtx, HookId, Prog, ProgFn, PROG_MAP_ENTRIES, VERDICT_ALLOW};
pub use tally::{HookAccounting, NoTally, Step, Tally};
