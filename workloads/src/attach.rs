//! Attach benches: one mechanism's attach point, from params, attaching one program at a time.
//!
//! Each attach or detach returns the work units it did.

use crate::error::BuildError;
use crate::layout::{chain_slot_is_foreign, check_cgroup_cap, foreign_hook, validate_common};
use crate::world::MEASURED_HOOK;
use crate::AttachBench;
use hookbench_model::{
    AttachFlags, CgroupIdMapFilter, CgroupRef, CgroupTree, ChainTask, HandleLoopFilter, HookArrayTask, Mechanism,
    Params, Policy, Prog, BPF_CGROUP_MAX_PROGS,
};
use std::sync::Arc;

/// Builds root -> top -> `descendants` cgroups below `top`, hung as chains of `depth` levels.
fn subtree(p: &Params) -> Result<(CgroupTree, CgroupRef), BuildError> {
    let mut tree = CgroupTree::new(p.hooks);
    let top = tree.add_cgroup(CgroupRef::ROOT)?;
    let depth = p.depth.max(1);
    let mut parent = top;
    for i in 0..p.cgroups {
        if i % depth == 0 {
            parent = top;
        }
        parent = tree.add_cgroup(parent)?;
    }
    Ok((tree, top))
}

/// `p.programs` new programs.
fn new_progs(p: &Params) -> Vec<Arc<Prog>> {
    (0..p.programs).map(|_| Prog::new(p.body)).collect()
}

fn foreign_by_hook(p: &Params) -> Vec<(u32, Vec<Arc<Prog>>)> {
    let mut v: Vec<(u32, Vec<Arc<Prog>>)> = (1..p.hooks).map(|h| (h, Vec::new())).collect();
    for j in 0..p.foreign {
        let h = foreign_hook(j, p.hooks);
        v[(h - 1) as usize].1.push(Prog::new(p.body));
    }
    v
}

struct EffectiveAttach {
    params: Params,
    tree: CgroupTree,
    top: CgroupRef,
    pool: Vec<Arc<Prog>>,
    stack: Vec<Arc<Prog>>,
}

impl AttachBench for EffectiveAttach {
    fn mechanism(&self) -> Mechanism {
        Mechanism::EffectiveArray
    }
    fn params(&self) -> Params {
        self.params
    }
    fn attach(&mut self) -> u64 {
        let Some(prog) = self.pool.pop() else { return 0 };
        match self
            .tree
            .attach(self.top, MEASURED_HOOK, prog.clone(), AttachFlags::ALLOW_MULTI)
        {
            Ok(n) => {
                self.stack.push(prog);
                n
            }
            Err(_) => {
                self.pool.push(prog);
                0
            }
        }
    }
    fn detach(&mut self) -> u64 {
        let Some(prog) = self.stack.pop() else { return 0 };
        match self.tree.detach(self.top, MEASURED_HOOK, &prog) {
            Ok(n) => {
                self.pool.push(prog);
                n
            }
            Err(_) => {
                self.stack.push(prog);
                0
            }
        }
    }
}

fn build_effective(p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    if p.programs as usize >= BPF_CGROUP_MAX_PROGS {
        return Err(BuildError::CgroupCap {
            what: "programs",
            needed: u64::from(p.programs) + 1,
            max: BPF_CGROUP_MAX_PROGS as u64,
            min_depth: 1,
        });
    }
    check_cgroup_cap("foreign", p.foreign, p.hooks.saturating_sub(1), 1)?;
    let (mut tree, top) = subtree(p)?;
    let measured = new_progs(p);
    if !measured.is_empty() {
        tree.attach_batch(top, MEASURED_HOOK, measured, AttachFlags::ALLOW_MULTI)?;
    }
    for (h, list) in foreign_by_hook(p) {
        if !list.is_empty() {
            tree.attach_batch(top, h, list, AttachFlags::ALLOW_MULTI)?;
        }
    }
    let pool = (p.programs as usize..BPF_CGROUP_MAX_PROGS)
        .map(|_| Prog::new(p.body))
        .collect();
    Ok(Box::new(EffectiveAttach {
        params: *p,
        tree,
        top,
        pool,
        stack: Vec::new(),
    }))
}

/// An attach point that takes one program at a time on [`MEASURED_HOOK`] and undoes the newest:
/// task-chain, task-hook-array, handle-loop and cgroup-id-map.
trait NewestFirst: Send + 'static {
    /// The mechanism this attach point models.
    const MECHANISM: Mechanism;
    /// Attaches `prog`; returns the work units, `None` when refused.
    fn push(&mut self, prog: Arc<Prog>) -> Option<u64>;
    /// Undoes the newest attach; returns the work units (0 when it failed).
    fn pop(&mut self) -> u64;
}

/// The attach bench of a [`NewestFirst`] point: attaches the same program again and again.
struct StackAttach<A> {
    params: Params,
    point: A,
    prog: Arc<Prog>,
    outstanding: u64,
}

impl<A: NewestFirst> StackAttach<A> {
    fn boxed(p: &Params, point: A) -> Result<Box<dyn AttachBench>, BuildError> {
        Ok(Box::new(StackAttach {
            params: *p,
            point,
            prog: Prog::new(p.body),
            outstanding: 0,
        }))
    }
}

impl<A: NewestFirst> AttachBench for StackAttach<A> {
    fn mechanism(&self) -> Mechanism {
        A::MECHANISM
    }
    fn params(&self) -> Params {
        self.params
    }
    fn attach(&mut self) -> u64 {
        match self.point.push(self.prog.clone()) {
            Some(n) => {
                self.outstanding += 1;
                n
            }
            None => 0,
        }
    }
    fn detach(&mut self) -> u64 {
        if self.outstanding == 0 {
            return 0;
        }
        self.outstanding -= 1;
        self.point.pop()
    }
}

impl NewestFirst for ChainTask {
    const MECHANISM: Mechanism = Mechanism::ChainWalk;
    fn push(&mut self, prog: Arc<Prog>) -> Option<u64> {
        Some(self.install(MEASURED_HOOK, prog))
    }
    fn pop(&mut self) -> u64 {
        u64::from(self.uninstall_newest().is_some())
    }
}

fn build_chain(p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    let mut task = ChainTask::new();
    let mut f = 0;
    for k in 0..u64::from(p.programs) + u64::from(p.foreign) {
        if chain_slot_is_foreign(k, p.programs, p.foreign) {
            task.install(foreign_hook(f, p.hooks), Prog::new(p.body));
            f += 1;
        } else {
            task.install(MEASURED_HOOK, Prog::new(p.body));
        }
    }
    StackAttach::boxed(p, task)
}

impl NewestFirst for HookArrayTask {
    const MECHANISM: Mechanism = Mechanism::HookIndex;
    fn push(&mut self, prog: Arc<Prog>) -> Option<u64> {
        self.install(MEASURED_HOOK, prog).ok()
    }
    fn pop(&mut self) -> u64 {
        self.uninstall_newest(MEASURED_HOOK).unwrap_or(0)
    }
}

fn build_hook_array(p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    let mut lists: Vec<Vec<Arc<Prog>>> = vec![Vec::new(); p.hooks as usize];
    lists[MEASURED_HOOK as usize] = new_progs(p);
    for (h, l) in foreign_by_hook(p) {
        lists[h as usize] = l;
    }
    StackAttach::boxed(p, HookArrayTask::with_lists(lists))
}

/// handle-loop's attach point: hook 0's global list, each program with the one handle `handles`.
struct HandleLoopPoint {
    _tree: CgroupTree,
    filter: HandleLoopFilter,
    handles: Arc<[CgroupRef]>,
}

impl NewestFirst for HandleLoopPoint {
    const MECHANISM: Mechanism = Mechanism::HandleLoop;
    fn push(&mut self, prog: Arc<Prog>) -> Option<u64> {
        let handles: Arc<[CgroupRef]> = Arc::from(&self.handles[..]);
        self.filter.append(MEASURED_HOOK, prog, handles).ok()
    }
    fn pop(&mut self) -> u64 {
        self.filter.remove_newest(MEASURED_HOOK).unwrap_or(0)
    }
}

fn build_handle_loop(p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    let (tree, top) = subtree(p)?;
    let handles: Arc<[CgroupRef]> = Arc::from(vec![top]);
    let mut filter = HandleLoopFilter::new(p.hooks);
    for _ in 0..p.programs {
        filter.append(MEASURED_HOOK, Prog::new(p.body), Arc::from(&handles[..]))?;
    }
    for (h, list) in foreign_by_hook(p) {
        for prog in list {
            filter.append(h, prog, Arc::from(&handles[..]))?;
        }
    }
    StackAttach::boxed(
        p,
        HandleLoopPoint {
            _tree: tree,
            filter,
            handles,
        },
    )
}

/// cgroup-id-map's attach point: the map entry of one cgroup, rewritten with its whole policy.
struct IdMapPoint {
    filter: CgroupIdMapFilter,
    key: u64,
    policy: Vec<Arc<Prog>>,
}

impl IdMapPoint {
    fn write(&mut self) -> u64 {
        let policy: Policy = self.policy.clone().into_boxed_slice();
        self.filter.set_policy(MEASURED_HOOK, self.key, policy).unwrap_or(0)
    }
}

impl NewestFirst for IdMapPoint {
    const MECHANISM: Mechanism = Mechanism::CgroupIdMap;
    fn push(&mut self, prog: Arc<Prog>) -> Option<u64> {
        self.policy.push(prog);
        Some(self.write())
    }
    fn pop(&mut self) -> u64 {
        self.policy.pop();
        self.write()
    }
}

fn build_id_map(p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    let (tree, top) = subtree(p)?;
    let mut filter = CgroupIdMapFilter::new(p.hooks, tree.len() as u32);
    let policy = new_progs(p);
    filter.set_policy(MEASURED_HOOK, top.id(), policy.clone().into_boxed_slice())?;
    for (h, list) in foreign_by_hook(p) {
        if !list.is_empty() {
            filter.set_policy(h, top.id(), list.into_boxed_slice())?;
        }
    }
    StackAttach::boxed(
        p,
        IdMapPoint {
            filter,
            key: top.id(),
            policy,
        },
    )
}

/// See [`crate::build_attach_bench`].
pub(crate) fn build(mechanism: Mechanism, p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    validate_common(p, false)?;
    match mechanism {
        Mechanism::EffectiveArray => build_effective(p),
        Mechanism::ChainWalk => build_chain(p),
        Mechanism::HookIndex => build_hook_array(p),
        Mechanism::HandleLoop => build_handle_loop(p),
        Mechanism::CgroupIdMap => build_id_map(p),
    }
}
