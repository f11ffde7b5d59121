//! Counting type parameter of every traversal: `NoTally` for the measured path, `HookAccounting` for exact per-hook accounting from the same walk.

use serde::{Deserialize, Serialize};

/// What a traversal reports while it walks. Every dispatch function is generic over it, so the
/// measured path ([`NoTally`], all no-ops inlined away) and the accounting path
/// ([`HookAccounting`]) run the same code.
pub trait Tally {
    /// One dispatch entry stepped over: a chain node, a per-hook list item, an effective array
    /// item (not the NULL terminator), a global list entry, a policy item.
    fn node(&mut self);
    /// One program body run.
    fn prog(&mut self);
    /// One cgroup handle compared (`cgroup_is_descendant`).
    fn handle(&mut self);
    /// One dispatch map lookup (the cgroup-id map; program bodies' own lookups are not counted,
    /// the bodies being the same in every model).
    fn lookup(&mut self);
}

/// The no-op tally of the measured path.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTally;

impl Tally for NoTally {
    #[inline(always)]
    fn node(&mut self) {}
    #[inline(always)]
    fn prog(&mut self) {}
    #[inline(always)]
    fn handle(&mut self) {}
    #[inline(always)]
    fn lookup(&mut self) {}
}

/// Exact accounting of one or more hooks, counted by the real traversal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HookAccounting {
    /// Dispatch entries stepped over (see [`Tally::node`]).
    pub nodes_visited: u64,
    /// Program bodies run.
    pub programs_run: u64,
    /// Cgroup handles compared.
    pub handles_checked: u64,
    /// Dispatch map lookups.
    pub map_lookups: u64,
}

impl Tally for HookAccounting {
    #[inline(always)]
    fn node(&mut self) {
        self.nodes_visited += 1;
    }
    #[inline(always)]
    fn prog(&mut self) {
        self.programs_run += 1;
    }
    #[inline(always)]
    fn handle(&mut self) {
        self.handles_checked += 1;
    }
    #[inline(always)]
    fn lookup(&mut self) {
        self.map_lookups += 1;
    }
}
