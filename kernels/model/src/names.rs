//! The standard names shared by every backend: dispatch models, mechanisms, program bodies and the scenario axes (DESIGN.md).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A dispatch model, named as in DESIGN.md ("task-chain", "task-hook-array", "cgroup-effective",
/// "global-filter").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// Per task, a singly linked list of every hook's programs (`node->prev`), shared across fork;
    /// every hook walks the whole list (Landlock RFC v2, seccomp's `struct seccomp_filter`).
    TaskChain,
    /// Per task, one program list per hook (later Landlock revisions' `programs[HOOK_LAST]`).
    TaskHookArray,
    /// Per cgroup, `effective[hook]` arrays recomputed on attach (`update_effective_progs` in
    /// kernel/bpf/cgroup.c); a hook does `current->cgroups->dfl_cgrp->bpf.effective[hook]`.
    CgroupEffective,
    /// One global list per hook; each program checks whether the current task's cgroup is its target
    /// (Checmate, `bpf_current_task_under_cgroup`, systemd's one program with a map keyed by cgroup id).
    GlobalFilter,
}

impl ModelKind {
    /// Every model, in DESIGN.md's order.
    pub const ALL: [ModelKind; 4] = [
        ModelKind::TaskChain,
        ModelKind::TaskHookArray,
        ModelKind::CgroupEffective,
        ModelKind::GlobalFilter,
    ];

    /// The DESIGN.md name, e.g. "task-chain".
    pub const fn as_str(self) -> &'static str {
        match self {
            ModelKind::TaskChain => "task-chain",
            ModelKind::TaskHookArray => "task-hook-array",
            ModelKind::CgroupEffective => "cgroup-effective",
            ModelKind::GlobalFilter => "global-filter",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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

impl FromStr for ModelKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| unknown("model", s, ModelKind::ALL.iter().map(|m| m.as_str())))
    }
}

/// How a model is implemented in the userspace `model` backend. A model can have several
/// mechanisms (global-filter has two forms); the results' `mechanism` field carries this name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mechanism {
    /// task-chain: walk every node of the task's chain, run the nodes whose hook matches.
    ChainWalk,
    /// task-hook-array: index the task's per-hook table, run that hook's list.
    HookIndex,
    /// cgroup-effective: css_set -> cgroup -> `effective[hook]`, run the NULL-terminated array.
    EffectiveArray,
    /// global-filter: every global program loops over its cgroup handles, testing
    /// `cgroup_is_descendant` for each (Landlock RFC v2 patch 09/10).
    HandleLoop,
    /// global-filter: one global program looks the current cgroup id up in a hash map
    /// (systemd's single program plus a map keyed by cgroup id).
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

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mechanism {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| unknown("mechanism", s, Mechanism::ALL.iter().map(|m| m.as_str())))
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

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Body {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Body::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| unknown("body", s, Body::ALL.iter().map(|b| b.as_str())))
    }
}

fn unknown<'a>(what: &'static str, value: &str, names: impl Iterator<Item = &'a str>) -> UnknownName {
    UnknownName {
        what,
        value: value.to_string(),
        expected: names.collect::<Vec<_>>().join(", "),
    }
}

/// One point of the scenario space: the axes of every sweep (DESIGN.md "Scenario parameters").
/// All counts are plain numbers of objects; `working_set` and `cpus` are at least 1; `cgroups`
/// and `tasks` of 0 mean "exactly what the other axes need" (the default), resolved when a world is built.
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
    /// The value of numeric axis `name` (one of [`NUMERIC_AXES`]), or `None` for an unknown name.
    pub fn axis(&self, name: &str) -> Option<u32> {
        Some(match name {
            "programs" => self.programs,
            "foreign" => self.foreign,
            "hooks" => self.hooks,
            "depth" => self.depth,
            "cgroups" => self.cgroups,
            "tasks" => self.tasks,
            "working_set" => self.working_set,
            "cpus" => self.cpus,
            _ => return None,
        })
    }

    /// Sets numeric axis `name` to `value`; returns `false` (and changes nothing) for an unknown name.
    pub fn set_axis(&mut self, name: &str, value: u32) -> bool {
        let slot = match name {
            "programs" => &mut self.programs,
            "foreign" => &mut self.foreign,
            "hooks" => &mut self.hooks,
            "depth" => &mut self.depth,
            "cgroups" => &mut self.cgroups,
            "tasks" => &mut self.tasks,
            "working_set" => &mut self.working_set,
            "cpus" => &mut self.cpus,
            _ => return false,
        };
        *slot = value;
        true
    }
}
