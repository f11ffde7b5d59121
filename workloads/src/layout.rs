//! Scenario validation and layout arithmetic shared by worlds and attach benches.
//!
//! Limits, the hook of each foreign program, chain interleaving, cgroup counts.

use crate::error::BuildError;
use hookbench_model::{HookId, Params, BPF_CGROUP_MAX_PROGS};

/// Most programs (or foreign programs) per slot.
pub const MAX_PROGRAMS: u32 = 100_000;
/// Most cgroups in a tree.
pub const MAX_CGROUPS: u32 = 1_000_000;
/// Most slots (working_set x cpus).
pub const MAX_SLOTS: u64 = 1_000_000;
/// Most tasks alive.
pub const MAX_TASKS: u32 = 10_000_000;
/// Most hooks.
pub const MAX_HOOKS: u32 = 4096;
/// Most cgroup nesting levels.
pub const MAX_DEPTH: u32 = 1000;
/// Most separately allocated programs in a world (slots x (programs + foreign)).
pub const MAX_PROGRAM_OBJECTS: u64 = 20_000_000;
/// Most cgroup handles in a handle-loop world ((programs + foreign) x containers).
pub const MAX_HANDLES: u64 = 100_000_000;

fn too_large(axis: &'static str, value: u64, max: u64, why: &'static str) -> Result<(), BuildError> {
    if value > max {
        return Err(BuildError::TooLarge { axis, value, max, why });
    }
    Ok(())
}

/// Checks the axes every mechanism shares; returns the number of slots (working_set x cpus).
/// Errors: an axis above its limit, `working_set`/`cpus`/`hooks` of 0, `foreign > 0` with
/// `hooks < 2`, `tasks` below the slots.
pub fn validate_common(p: &Params, per_slot_programs: bool) -> Result<u64, BuildError> {
    too_large(
        "programs",
        p.programs.into(),
        MAX_PROGRAMS.into(),
        "programs per hook the model will allocate",
    )?;
    too_large(
        "foreign",
        p.foreign.into(),
        MAX_PROGRAMS.into(),
        "foreign programs the model will allocate",
    )?;
    too_large(
        "cgroups",
        p.cgroups.into(),
        MAX_CGROUPS.into(),
        "cgroups the model will allocate",
    )?;
    too_large(
        "tasks",
        p.tasks.into(),
        MAX_TASKS.into(),
        "tasks the model will allocate",
    )?;
    too_large("hooks", p.hooks.into(), MAX_HOOKS.into(), "hooks per task or cgroup")?;
    too_large("depth", p.depth.into(), MAX_DEPTH.into(), "cgroup nesting levels")?;
    for (axis, v) in [("working_set", p.working_set), ("cpus", p.cpus), ("hooks", p.hooks)] {
        if v == 0 {
            return Err(BuildError::Invalid {
                axis,
                value: 0,
                why: format!("{axis} must be at least 1"),
            });
        }
    }
    if p.foreign > 0 && p.hooks < 2 {
        return Err(BuildError::Invalid {
            axis: "hooks",
            value: p.hooks.into(),
            why: format!(
                "foreign = {} programs need a hook other than the measured hook 0; use hooks >= 2 or foreign = 0",
                p.foreign
            ),
        });
    }
    let slots = u64::from(p.working_set) * u64::from(p.cpus);
    too_large(
        "working_set x cpus",
        slots,
        MAX_SLOTS,
        "slots, each a task with its own programs",
    )?;
    if per_slot_programs {
        too_large(
            "working_set x cpus x (programs + foreign)",
            slots * (u64::from(p.programs) + u64::from(p.foreign)),
            MAX_PROGRAM_OBJECTS,
            "separately allocated programs, one set per slot",
        )?;
    }
    if p.tasks != 0 && u64::from(p.tasks) < slots {
        return Err(BuildError::TooFewTasks {
            requested: p.tasks,
            needed: slots,
        });
    }
    Ok(slots)
}

/// The hook of foreign program `j`, round-robin over hooks `1..hooks` (requires `hooks >= 2`).
pub fn foreign_hook(j: u32, hooks: u32) -> HookId {
    1 + j % (hooks - 1).max(1)
}

/// Whether position `k` (install order) of a chain of `programs + foreign` nodes is foreign.
///
/// Foreign nodes are interleaved evenly among the measured ones.
pub fn chain_slot_is_foreign(k: u64, programs: u32, foreign: u32) -> bool {
    let m = u64::from(programs) + u64::from(foreign);
    if m == 0 {
        return false;
    }
    let f = u64::from(foreign);
    (k + 1) * f / m > k * f / m
}

/// Checks that `count` programs spread over `depth` levels stay within `BPF_CGROUP_MAX_PROGS`.
///
/// They are spread round-robin, per hook over `hooks_used` hooks; the limit is per cgroup and
/// hook.
pub fn check_cgroup_cap(what: &'static str, count: u32, hooks_used: u32, depth: u32) -> Result<(), BuildError> {
    let per_hook = u64::from(count).div_ceil(u64::from(hooks_used.max(1)));
    let per_level = per_hook.div_ceil(u64::from(depth.max(1)));
    let max = BPF_CGROUP_MAX_PROGS as u64;
    if per_level > max {
        return Err(BuildError::CgroupCap {
            what,
            needed: per_level,
            max,
            min_depth: per_hook.div_ceil(max),
        });
    }
    Ok(())
}

/// Requires `depth >= 1` for the cgroup mechanisms.
pub fn require_depth(p: &Params) -> Result<(), BuildError> {
    if p.depth == 0 {
        return Err(BuildError::Invalid {
            axis: "depth",
            value: 0,
            why: "cgroup mechanisms put each slot's task at depth >= 1 below its container; use depth >= 1".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_counts_and_spreads() {
        for (n, f) in [(4u32, 12u32), (0, 5), (5, 0), (7, 3), (64, 64)] {
            let flags: Vec<bool> = (0..u64::from(n + f)).map(|k| chain_slot_is_foreign(k, n, f)).collect();
            assert_eq!(flags.iter().filter(|&&x| x).count() as u32, f);
            if n > 0 && f > 0 {
                // No run of foreign nodes longer than ceil(f / n) + 1.
                let longest = flags.split(|x| !x).map(|r| r.len()).max().unwrap_or(0) as u32;
                assert!(longest <= f.div_ceil(n) + 1, "n={n} f={f} longest={longest}");
            }
        }
        assert_eq!(
            (0..6).map(|j| foreign_hook(j, 3)).collect::<Vec<_>>(),
            vec![1, 2, 1, 2, 1, 2]
        );
    }

    #[test]
    fn cap() {
        assert!(check_cgroup_cap("programs", 64, 1, 1).is_ok());
        assert_eq!(
            check_cgroup_cap("programs", 65, 1, 1),
            Err(BuildError::CgroupCap {
                what: "programs",
                needed: 65,
                max: 64,
                min_depth: 2
            })
        );
        assert!(check_cgroup_cap("foreign", 300, 3, 2).is_ok());
    }
}
