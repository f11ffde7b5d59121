//! Errors of building worlds and attach benches from params, each naming the bad axis and value.
//!
//! Each also says what to do.

use hookbench_model::{AttachError, ModelError};

/// Why a scenario could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// An axis is above what the library will allocate.
    #[error("{axis} = {value} is too large: at most {max} ({why}); lower it")]
    TooLarge {
        /// The axis (or product of axes).
        axis: &'static str,
        /// Its value.
        value: u64,
        /// The limit.
        max: u64,
        /// What the limit protects.
        why: &'static str,
    },
    /// An axis value makes no sense for the mechanism.
    #[error("{axis} = {value} is invalid: {why}")]
    Invalid {
        /// The axis.
        axis: &'static str,
        /// Its value.
        value: u64,
        /// Why, and what to use instead.
        why: String,
    },
    /// Fewer cgroups requested than the scenario needs.
    #[error("cgroups = {requested} is fewer than the {needed} cgroups this scenario needs ({why}); use cgroups >= {needed}, or 0 for exactly that")]
    TooFewCgroups {
        /// Requested `cgroups`.
        requested: u32,
        /// Cgroups needed.
        needed: u64,
        /// What they are needed for.
        why: String,
    },
    /// Fewer tasks requested than slots.
    #[error("tasks = {requested} is fewer than the {needed} slots (working_set x cpus), each of which is a task; use tasks >= {needed}, or 0 for exactly that")]
    TooFewTasks {
        /// Requested `tasks`.
        requested: u32,
        /// Tasks needed.
        needed: u64,
    },
    /// Spreading the programs would exceed `BPF_CGROUP_MAX_PROGS` on one cgroup and hook.
    #[error("{what}: {needed} programs would go on one cgroup and hook, above BPF_CGROUP_MAX_PROGS = {max}; use depth >= {min_depth} or fewer programs")]
    CgroupCap {
        /// Which programs ("programs" or "foreign").
        what: &'static str,
        /// Programs per cgroup and hook the spread needs.
        needed: u64,
        /// The kernel's limit.
        max: u64,
        /// The smallest depth that fits.
        min_depth: u64,
    },
    /// The model refused an operation while building (a bug in the builder if it happens).
    #[error("building the cgroup tree: {0}")]
    Attach(#[from] AttachError),
    /// The model refused an operation while building.
    #[error("building the model: {0}")]
    Model(#[from] ModelError),
}
