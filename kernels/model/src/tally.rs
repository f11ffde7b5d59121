//! Every traversal counts its steps through a `Tally`, so timing and accounting share one walk.
//!
//! `NoTally` is the measured path (its counting is inlined away); `HookAccounting` counts each
//! [`Step`] of the same walk exactly.

use crate::prog::{HookCtx, Prog};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One thing a dispatch walk does that the accounting counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A dispatch entry stepped over (not an effective array's NULL terminator).
    ///
    /// The entry is a chain node, a per-hook list item, an effective array item, a global list
    /// entry or a policy item.
    Node,
    /// A program body run.
    Prog,
    /// A cgroup handle compared (`cgroup_is_descendant`).
    Handle,
    /// A dispatch map lookup (the cgroup-id map).
    ///
    /// Program bodies' own lookups are not counted: the bodies are the same in every model.
    Lookup,
}

/// What a traversal reports while it walks, so that the measured and the counted walk are one.
///
/// Every dispatch function is generic over it: the measured path ([`NoTally`]) and the
/// accounting path ([`HookAccounting`]) run the same code.
pub trait Tally {
    /// Records one `step` of the walk.
    fn count(&mut self, step: Step);
}

/// The no-op tally of the measured path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTally;

impl Tally for NoTally {
    #[inline(always)]
    fn count(&mut self, _step: Step) {}
}

/// Exact accounting of one or more hooks, counted by the real traversal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HookAccounting {
    /// Dispatch entries stepped over (see [`Step::Node`]).
    pub nodes_visited: u64,
    /// Program bodies run.
    pub programs_run: u64,
    /// Cgroup handles compared.
    pub handles_checked: u64,
    /// Dispatch map lookups.
    pub map_lookups: u64,
}

impl HookAccounting {
    /// The accounting with these counts, in the order the fields are declared.
    pub const fn new(nodes_visited: u64, programs_run: u64, handles_checked: u64, map_lookups: u64) -> Self {
        HookAccounting {
            nodes_visited,
            programs_run,
            handles_checked,
            map_lookups,
        }
    }

    /// Counts what `walk` does, starting from zero.
    pub fn of<R>(walk: impl FnOnce(&mut HookAccounting) -> R) -> HookAccounting {
        let mut acc = HookAccounting::default();
        walk(&mut acc);
        acc
    }
}

impl Tally for HookAccounting {
    #[inline(always)]
    fn count(&mut self, step: Step) {
        let counter = match step {
            Step::Node => &mut self.nodes_visited,
            Step::Prog => &mut self.programs_run,
            Step::Handle => &mut self.handles_checked,
            Step::Lookup => &mut self.map_lookups,
        };
        *counter += 1;
    }
}

/// Runs the programs of a flat list in order, counting each as an entry stepped over and a run.
///
/// This is the walk of every model that keeps one list per hook (`bpf_prog_run_array`'s loop);
/// it returns the OR of the verdicts.
#[inline(always)]
pub(crate) fn run_list<'a, T: Tally>(progs: impl Iterator<Item = &'a Arc<Prog>>, ctx: &HookCtx, tally: &mut T) -> u32 {
    let mut ret = 0;
    for prog in progs {
        tally.count(Step::Node);
        tally.count(Step::Prog);
        ret |= prog.run(ctx);
    }
    ret
}
