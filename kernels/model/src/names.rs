//! Names every backend shares, so that their results line up: models, mechanisms, bodies, axes.
//!
//! The dispatch models, program bodies and scenario axes are those of ARCHITECTURE.md, "Names".

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A dispatch model, one of the four ARCHITECTURE.md compares under "Names".
///
/// Its names are "task-chain", "task-hook-array", "cgroup-effective" and "global-filter".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Per task, one linked list of every hook's programs, which every hook walks whole.
    ///
    /// The list (`node->prev`) is shared across fork (Landlock RFC v2, seccomp's
    /// `struct seccomp_filter`).
    TaskChain,
    /// Per task, one program list per hook (later Landlock revisions' `programs[HOOK_LAST]`).
    TaskHookArray,
    /// Per cgroup, `effective[hook]` arrays recomputed on attach (cgroup-bpf).
    ///
    /// The recompute is `update_effective_progs` in kernel/bpf/cgroup.c; a hook does
    /// `current->cgroups->dfl_cgrp->bpf.effective[hook]`.
    CgroupEffective,
    /// One global list per hook, each program checking whether the current cgroup is its target.
    ///
    /// Seen in Checmate, `bpf_current_task_under_cgroup`, and systemd's one program with a map
    /// keyed by cgroup id.
    GlobalFilter,
}

impl ModelKind {
    /// Every model, in the order of ARCHITECTURE.md's table.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::TaskChain,
        ModelKind::TaskHookArray,
        ModelKind::CgroupEffective,
        ModelKind::GlobalFilter,
    ];

    /// The name ARCHITECTURE.md and the results use, e.g. "task-chain".
    pub const fn as_str(self) -> &'static str {
        match self {
            ModelKind::TaskChain => "task-chain",
            ModelKind::TaskHookArray => "task-hook-array",
            ModelKind::CgroupEffective => "cgroup-effective",
            ModelKind::GlobalFilter => "global-filter",
        }
    }
}

/// Error for a name that is not one of the known ones; the message lists the accepted names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}': expected one of {expected}")]
pub struct UnknownName {
    /// What kind of name was expected ("model", "mechanism", "body").
    pub what: &'static str,
    /// The value that was given.
    pub value: String,
    /// The accepted names, comma-separated.
    pub expected: String,
}

/// Gives a name enum `Display` and `FromStr` through its `ALL` and `as_str`, so names parse back.
///
/// `$what` is the kind of name an [`UnknownName`] error reports ("model", "mechanism", "body").
macro_rules! name_traits {
    ($ty:ident, $what:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| UnknownName {
                        what: $what,
                        value: s.to_string(),
                        expected: $ty::ALL.map(|v| v.as_str()).join(", "),
                    })
            }
        }
    };
}

name_traits!(ModelKind, "model");
name_traits!(Mechanism, "mechanism");
name_traits!(Body, "body");

/// How the userspace `model` backend implements a model; the results' `mechanism` names it.
///
/// A model can have several mechanisms (global-filter has two forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// task-chain: walk every node of the task's chain, run the nodes whose hook matches.
    ChainWalk,
    /// task-hook-array: index the task's per-hook table, run that hook's list.
    HookIndex,
    /// cgroup-effective: css_set -> cgroup -> `effective[hook]`, run the NULL-terminated array.
    EffectiveArray,
    /// global-filter: every global program loops over its cgroup handles, testing each.
    ///
    /// Each test is `cgroup_is_descendant` (Landlock RFC v2 patch 09/10).
    HandleLoop,
    /// global-filter: one global program looks the current cgroup id up in a hash map.
    ///
    /// This is systemd's shape: a single program plus a map keyed by cgroup id.
    CgroupIdMap,
}

impl Mechanism {
    /// Every model-backend mechanism.
    pub const ALL: [Mechanism; 5] = [
        Mechanism::ChainWalk,
        Mechanism::HookIndex,
        Mechanism::EffectiveArray,
        Mechanism::HandleLoop,
        Mechanism::CgroupIdMap,
    ];

    /// The results name, e.g. "chain-walk".
    pub const fn as_str(self) -> &'static str {
        match self {
            Mechanism::ChainWalk => "chain-walk",
            Mechanism::HookIndex => "hook-index",
            Mechanism::EffectiveArray => "effective-array",
            Mechanism::HandleLoop => "handle-loop",
            Mechanism::CgroupIdMap => "cgroup-id-map",
        }
    }

    /// The dispatch model this mechanism implements.
    pub const fn model(self) -> ModelKind {
        match self {
            Mechanism::ChainWalk => ModelKind::TaskChain,
            Mechanism::HookIndex => ModelKind::TaskHookArray,
            Mechanism::EffectiveArray => ModelKind::CgroupEffective,
            Mechanism::HandleLoop | Mechanism::CgroupIdMap => ModelKind::GlobalFilter,
        }
    }

    /// The mechanisms that implement `model`.
    pub fn of_model(model: ModelKind) -> Vec<Mechanism> {
        Mechanism::ALL.into_iter().filter(|m| m.model() == model).collect()
    }
}

/// The body every program runs, the same in every model so that only dispatch differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Body {
    /// Returns "allow" at once.
    Null,
    /// Increments the program's own counter (a BPF array map counter with an atomic add).
    #[default]
    Counter,
    /// Looks a key up in a small hash map owned by the program (a BPF hash map lookup).
    MapLookup,
}

impl Body {
    /// Every body.
    pub const ALL: [Body; 3] = [Body::Null, Body::Counter, Body::MapLookup];

    /// The results name: "null", "counter" or "map-lookup".
    pub const fn as_str(self) -> &'static str {
        match self {
            Body::Null => "null",
            Body::Counter => "counter",
            Body::MapLookup => "map-lookup",
        }
    }
}

/// One point of the scenario space: a value for each axis a sweep can vary.
///
/// The axes are ARCHITECTURE.md's "Scenario axes" (under "Names"). All counts are plain numbers
/// of objects; `working_set` and `cpus` are at least 1; `cgroups` and `tasks` of 0 mean "exactly
/// what the other axes need" (the default), resolved when a world is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// N: programs in effect on the measured hook for the measured task.
    pub programs: u32,
    /// Programs attached for other hooks (in effect for the task, but not on the measured hook).
    pub foreign: u32,
    /// H: distinct hooks in use (the measured one plus H-1 others carrying the foreign programs).
    pub hooks: u32,
    /// Cgroup nesting of the measured task; cgroup programs are spread over these levels.
    pub depth: u32,
    /// C: cgroups in the hierarchy (for attach cells: descendants of the attach point).
    pub cgroups: u32,
    /// T: tasks alive.
    pub tasks: u32,
    /// W: distinct tasks (or cgroups) the measuring CPU rotates through between hooks.
    pub working_set: u32,
    /// P: concurrent triggering CPUs.
    pub cpus: u32,
    /// The program body.
    pub body: Body,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            programs: 1,
            foreign: 0,
            hooks: 4,
            depth: 1,
            cgroups: 0,
            tasks: 0,
            working_set: 1,
            cpus: 1,
            body: Body::Counter,
        }
    }
}

/// The names of the numeric axes of [`Params`], in declaration order (`body` is not numeric).
pub const NUMERIC_AXES: [&str; 8] = [
    "programs",
    "foreign",
    "hooks",
    "depth",
    "cgroups",
    "tasks",
    "working_set",
    "cpus",
];

impl Params {
    /// The field of numeric axis `name`, or `None` for a name not in [`NUMERIC_AXES`].
    fn axis_mut(&mut self, name: &str) -> Option<&mut u32> {
        Some(match name {
            "programs" => &mut self.programs,
            "foreign" => &mut self.foreign,
            "hooks" => &mut self.hooks,
            "depth" => &mut self.depth,
            "cgroups" => &mut self.cgroups,
            "tasks" => &mut self.tasks,
            "working_set" => &mut self.working_set,
            "cpus" => &mut self.cpus,
            _ => return None,
        })
    }

    /// The value of numeric axis `name` (one of [`NUMERIC_AXES`]), or `None` for an unknown name.
    pub fn axis(&self, name: &str) -> Option<u32> {
        // `Params` is a few words of `Copy` data: reading through a copy keeps one table of axes.
        let mut copy = *self;
        copy.axis_mut(name).copied()
    }

    /// Sets numeric axis `name` to `value`, so sweeps can name axes; `false` for an unknown name.
    ///
    /// An unknown name changes nothing.
    pub fn set_axis(&mut self, name: &str, value: u32) -> bool {
        let Some(slot) = self.axis_mut(name) else {
            return false;
        };
        *slot = value;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_axis_reads_back_what_was_set() {
        let mut p = Params::default();
        for (i, name) in (1..).zip(NUMERIC_AXES) {
            assert!(p.set_axis(name, 100 + i), "{name}");
        }
        let read: Vec<Option<u32>> = NUMERIC_AXES.iter().map(|a| p.axis(a)).collect();
        assert_eq!(read, (101..=108).map(Some).collect::<Vec<_>>());
        assert_eq!((p.programs, p.cpus), (101, 108), "declaration order");
        assert!(!p.set_axis("body", 1));
        assert_eq!(p.axis("nope"), None);
    }

    #[test]
    fn names_parse_back_and_unknown_ones_list_the_choices() {
        for m in Mechanism::ALL {
            assert_eq!(m.to_string().parse::<Mechanism>(), Ok(m));
        }
        assert_eq!("task-chain".parse::<ModelKind>(), Ok(ModelKind::TaskChain));
        let err = "nul".parse::<Body>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown body 'nul': expected one of null, counter, map-lookup"
        );
    }
}
