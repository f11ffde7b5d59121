//! Models global-filter: one program list per hook for all tasks, each program picking cgroups.
//!
//! A program decides whether the current task's cgroup is its target by a loop over cgroup
//! handles (`Mechanism::HandleLoop`, RFC v2 09/10) or by one lookup keyed by cgroup id
//! (`Mechanism::CgroupIdMap`).

use crate::cgroup::{CgroupRef, CgroupTask, CgroupTree};
use crate::error::ModelError;
use crate::footprint::{arc_slice_bytes, boxed_slice_bytes, Footprint};
use crate::htab::Htab;
use crate::prog::{HookCtx, HookId, Prog};
use crate::tally::{run_list, Step, Tally};
use std::sync::Arc;

/// One global program of the handle-loop form: the body plus its array of cgroup handles.
///
/// The handles are the RFC's `BPF_MAP_ARRAY_TYPE_LANDLOCK_CGROUP` map of
/// `struct map_landlock_handle`.
#[derive(Debug, Clone)]
pub struct GlobalProg {
    /// The body, run when the current cgroup is beneath one of the handles.
    pub prog: Arc<Prog>,
    /// The cgroups the program targets, checked in order.
    pub handles: Arc<[CgroupRef]>,
}

impl GlobalProg {
    /// Whether `current` is beneath one of the handles, stopping at the first match.
    ///
    /// This is `bpf_landlock_cmp_cgroup_beneath` with `BPF_MAP_ARRAY_OP_OR`:
    /// `cgroup_is_descendant(current, handle)` for each handle in turn.
    #[inline(always)]
    fn matches<T: Tally>(&self, tree: &CgroupTree, current: CgroupRef, tally: &mut T) -> bool {
        for &h in self.handles.iter() {
            tally.count(Step::Handle);
            if tree.is_descendant(current, h) {
                return true;
            }
        }
        false
    }
}

/// The handle-loop global filter: per hook, an immutable list of [`GlobalProg`]s.
///
/// Like an RCU-protected list, each is replaced by a copy on every change.
#[derive(Debug)]
pub struct HandleLoopFilter {
    lists: Box<[Arc<[GlobalProg]>]>,
}

impl HandleLoopFilter {
    /// An empty filter for `hooks` hooks.
    pub fn new(hooks: u32) -> HandleLoopFilter {
        let lists = (0..hooks)
            .map(|_| Arc::from(Vec::<GlobalProg>::new()))
            .collect::<Vec<_>>()
            .into_boxed_slice();
        HandleLoopFilter { lists }
    }

    /// The global list of `hook` (empty for an unknown hook).
    pub fn list(&self, hook: HookId) -> &[GlobalProg] {
        self.lists.get(hook as usize).map_or(&[], |l| &l[..])
    }

    /// Appends a program targeting `handles` to `hook`'s global list, copying the list (RCU).
    ///
    /// Returns the work done: list entries copied plus handles written. Errors with
    /// [`ModelError::NoSuchHook`].
    pub fn append(&mut self, hook: HookId, prog: Arc<Prog>, handles: Arc<[CgroupRef]>) -> Result<u64, ModelError> {
        let hooks = self.lists.len() as u32;
        let list = self
            .lists
            .get_mut(hook as usize)
            .ok_or(ModelError::NoSuchHook { hook, hooks })?;
        let written = handles.len() as u64;
        let mut v = Vec::with_capacity(list.len() + 1);
        v.extend(list.iter().cloned());
        v.push(GlobalProg { prog, handles });
        let copied = v.len() as u64;
        *list = Arc::from(v);
        Ok(copied + written)
    }

    /// Removes the newest program of `hook`'s list by copy, returning the entries copied.
    ///
    /// Errors with [`ModelError::NoSuchHook`] or [`ModelError::NothingInstalled`].
    pub fn remove_newest(&mut self, hook: HookId) -> Result<u64, ModelError> {
        let hooks = self.lists.len() as u32;
        let list = self
            .lists
            .get_mut(hook as usize)
            .ok_or(ModelError::NoSuchHook { hook, hooks })?;
        if list.is_empty() {
            return Err(ModelError::NothingInstalled { hook });
        }
        let v: Vec<GlobalProg> = list[..list.len() - 1].to_vec();
        let copied = v.len() as u64;
        *list = Arc::from(v);
        Ok(copied)
    }

    /// Fires `ctx.hook` as `task` and returns the OR of the verdicts.
    ///
    /// Every program of the hook's global list runs its handle loop against
    /// `task_css_set(current)->dfl_cgrp` and, on a match, its body.
    #[inline]
    pub fn run<T: Tally>(&self, tree: &CgroupTree, task: &CgroupTask, ctx: &HookCtx, tally: &mut T) -> u32 {
        let current = task.cgroup();
        let mut ret = 0;
        if let Some(list) = self.lists.get(ctx.hook as usize) {
            for gp in list.iter() {
                tally.count(Step::Node);
                if gp.matches(tree, current, tally) {
                    tally.count(Step::Prog);
                    ret |= gp.prog.run(ctx);
                }
            }
        }
        ret
    }

    /// Adds the global lists ("global-lists") and each distinct handle array ("handle-arrays").
    pub fn footprint(&self, fp: &mut Footprint) {
        fp.add("global-lists", boxed_slice_bytes(&self.lists[..]));
        for list in self.lists.iter() {
            fp.add_once(
                "global-lists",
                list.as_ptr() as usize,
                arc_slice_bytes::<GlobalProg>(list.len()),
            );
            for gp in list.iter() {
                fp.add_once(
                    "handle-arrays",
                    gp.handles.as_ptr() as usize,
                    arc_slice_bytes::<CgroupRef>(gp.handles.len()),
                );
                fp.program(&gp.prog);
            }
        }
    }
}

/// A cgroup's policy in the cgroup-id map: the bodies to run, in order (one allocation).
pub type Policy = Box<[Arc<Prog>]>;

/// The cgroup-id-map global filter: per hook, at most one program and its map of policies.
///
/// The hash map (the kernel's htab shape) maps a cgroup id to that cgroup's [`Policy`], like
/// systemd's single program with a map keyed by `bpf_get_current_cgroup_id()`.
#[derive(Debug)]
pub struct CgroupIdMapFilter {
    maps: Box<[Option<Htab<Policy>>]>,
    max_entries: u32,
}

impl CgroupIdMapFilter {
    /// A filter for `hooks` hooks whose maps hold at most `max_entries` cgroups each.
    ///
    /// A hook's global program (and map) exists once a policy is set on it.
    pub fn new(hooks: u32, max_entries: u32) -> CgroupIdMapFilter {
        CgroupIdMapFilter {
            maps: (0..hooks).map(|_| None).collect::<Vec<_>>().into_boxed_slice(),
            max_entries,
        }
    }

    /// The policy of cgroup `cgroup_id` on `hook`, if any.
    pub fn policy(&self, hook: HookId, cgroup_id: u64) -> Option<&Policy> {
        self.maps.get(hook as usize)?.as_ref()?.lookup(cgroup_id)
    }

    /// Sets the policy of cgroup `cgroup_id` on `hook`: `bpf_map_update_elem` on the hook's map.
    ///
    /// The hook's global program is loaded first if it has none. Returns the entries written
    /// (the policy's length, at least 1 for the element). Errors with
    /// [`ModelError::NoSuchHook`] or a full map.
    pub fn set_policy(&mut self, hook: HookId, cgroup_id: u64, policy: Policy) -> Result<u64, ModelError> {
        let hooks = self.maps.len() as u32;
        let max_entries = self.max_entries;
        let map = self
            .maps
            .get_mut(hook as usize)
            .ok_or(ModelError::NoSuchHook { hook, hooks })?;
        let map = map.get_or_insert_with(|| Htab::with_capacity(max_entries, hook));
        let written = policy.len().max(1) as u64;
        map.update(cgroup_id, policy)?;
        Ok(written)
    }

    /// Fires `ctx.hook` as `task` and returns the OR of the verdicts.
    ///
    /// The hook's one global program reads the current cgroup id
    /// (`task->cgroups->dfl_cgrp->kn->id`), looks it up, and runs the policy's bodies. A hook
    /// without a program costs one index.
    #[inline]
    pub fn run<T: Tally>(&self, task: &CgroupTask, ctx: &HookCtx, tally: &mut T) -> u32 {
        let Some(Some(map)) = self.maps.get(ctx.hook as usize) else {
            return 0;
        };
        tally.count(Step::Node);
        tally.count(Step::Lookup);
        map.lookup(task.cgroup().id())
            .map_or(0, |policy| run_list(policy.iter(), ctx, tally))
    }

    /// Adds the filter's metadata to `fp`: program slots, map buckets and map elements.
    ///
    /// The components are the per-hook program slots ("global-lists"), map buckets
    /// ("map-buckets") and map elements with their policy arrays ("map-entries").
    pub fn footprint(&self, fp: &mut Footprint) {
        fp.add("global-lists", boxed_slice_bytes(&self.maps[..]));
        for map in self.maps.iter().flatten() {
            fp.add("map-buckets", map.bucket_bytes());
            fp.add("map-entries", map.element_bytes(|p| boxed_slice_bytes(&p[..])));
            for (_, policy) in map.iter() {
                for p in policy.iter() {
                    fp.program(p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Body;
    use crate::tally::HookAccounting;

    #[test]
    fn handle_loop_checks_every_handle_when_match_is_last() {
        let mut tree = CgroupTree::new(2);
        let cgs: Vec<CgroupRef> = (0..10).map(|_| tree.add_cgroup(CgroupRef::ROOT).unwrap()).collect();
        let leaf = tree.add_cgroup(cgs[9]).unwrap();
        let handles: Arc<[CgroupRef]> = Arc::from(cgs.clone());
        let mut f = HandleLoopFilter::new(2);
        let progs: Vec<Arc<Prog>> = (0..3).map(|_| Prog::new(Body::Counter)).collect();
        for (i, p) in progs.iter().enumerate() {
            // Copies the i old entries plus the new one, and writes its 10 handles.
            assert_eq!(f.append(0, p.clone(), handles.clone()).unwrap(), i as u64 + 1 + 10);
        }
        let ctx = HookCtx { hook: 0 };
        let run_as = |cg: CgroupRef| HookAccounting::of(|acc| f.run(&tree, &CgroupTask::new(cg), &ctx, acc));
        assert_eq!(run_as(leaf), HookAccounting::new(3, 3, 30, 0));
        // A task under the first handle stops after one check per program.
        assert_eq!(run_as(cgs[0]).handles_checked, 3);
        // A task under no handle runs nothing but checks all.
        let acc = run_as(CgroupRef::ROOT);
        assert_eq!((acc.handles_checked, acc.programs_run), (30, 0));
        assert_eq!(progs.iter().map(|p| p.run_count().unwrap()).sum::<u64>(), 6);
        assert_eq!(f.remove_newest(0).unwrap(), 2);
        assert_eq!(f.remove_newest(1), Err(ModelError::NothingInstalled { hook: 1 }));
    }

    #[test]
    fn id_map_one_lookup() {
        let mut tree = CgroupTree::new(1);
        let a = tree.add_cgroup(CgroupRef::ROOT).unwrap();
        let b = tree.add_cgroup(CgroupRef::ROOT).unwrap();
        let mut f = CgroupIdMapFilter::new(2, 4);
        let pa: Vec<Arc<Prog>> = (0..5).map(|_| Prog::new(Body::Counter)).collect();
        assert_eq!(f.set_policy(0, a.id(), pa.clone().into_boxed_slice()).unwrap(), 5);
        f.set_policy(0, b.id(), Box::new([])).unwrap();
        let run_on =
            |hook: HookId, cg: CgroupRef| HookAccounting::of(|acc| f.run(&CgroupTask::new(cg), &HookCtx { hook }, acc));
        assert_eq!(run_on(0, a), HookAccounting::new(6, 5, 0, 1));
        assert_eq!(run_on(0, b), HookAccounting::new(1, 0, 0, 1));
        assert_eq!(run_on(1, a), HookAccounting::default(), "no program on hook 1");
        assert!(pa.iter().all(|p| p.run_count() == Some(1)));
        assert!(f.set_policy(2, 1, Box::new([])).is_err());
    }
}
