//! Attach benches: one mechanism's attach point built from scenario params, attaching and detaching one program at a time, returning the work units done.

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
        match self.tree.attach(self.top, MEASURED_HOOK, prog.clone(), AttachFlags::ALLOW_MULTI) {
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
    let measured: Vec<Arc<Prog>> = (0..p.programs).map(|_| Prog::new(p.body)).collect();
    if !measured.is_empty() {
        tree.attach_batch(top, MEASURED_HOOK, measured, AttachFlags::ALLOW_MULTI)?;
    }
    for (h, list) in foreign_by_hook(p) {
        if !list.is_empty() {
            tree.attach_batch(top, h, list, AttachFlags::ALLOW_MULTI)?;
        }
    }
    let pool = (p.programs as usize..BPF_CGROUP_MAX_PROGS).map(|_| Prog::new(p.body)).collect();
    Ok(Box::new(EffectiveAttach { params: *p, tree, top, pool, stack: Vec::new() }))
}

struct ChainAttach {
    params: Params,
    task: ChainTask,
    prog: Arc<Prog>,
    outstanding: u64,
}

impl AttachBench for ChainAttach {
    fn mechanism(&self) -> Mechanism {
        Mechanism::ChainWalk
    }
    fn params(&self) -> Params {
        self.params
    }
    fn attach(&mut self) -> u64 {
        self.outstanding += 1;
        self.task.install(MEASURED_HOOK, self.prog.clone())
    }
    fn detach(&mut self) -> u64 {
        if self.outstanding == 0 {
            return 0;
        }
        self.outstanding -= 1;
        u64::from(self.task.uninstall_newest().is_some())
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
    Ok(Box::new(ChainAttach { params: *p, task, prog: Prog::new(p.body), outstanding: 0 }))
}

struct HookArrayAttach {
    params: Params,
    task: HookArrayTask,
    prog: Arc<Prog>,
    outstanding: u64,
}

impl AttachBench for HookArrayAttach {
    fn mechanism(&self) -> Mechanism {
        Mechanism::HookIndex
    }
    fn params(&self) -> Params {
        self.params
    }
    fn attach(&mut self) -> u64 {
        match self.task.install(MEASURED_HOOK, self.prog.clone()) {
            Ok(n) => {
                self.outstanding += 1;
                n
            }
            Err(_) => 0,
        }
    }
    fn detach(&mut self) -> u64 {
        if self.outstanding == 0 {
            return 0;
        }
        self.outstanding -= 1;
        self.task.uninstall_newest(MEASURED_HOOK).unwrap_or(0)
    }
}

fn build_hook_array(p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    let mut lists: Vec<Vec<Arc<Prog>>> = vec![Vec::new(); p.hooks as usize];
    lists[MEASURED_HOOK as usize] = (0..p.programs).map(|_| Prog::new(p.body)).collect();
    for (h, l) in foreign_by_hook(p) {
        lists[h as usize] = l;
    }
    let task = HookArrayTask::with_lists(lists);
    Ok(Box::new(HookArrayAttach { params: *p, task, prog: Prog::new(p.body), outstanding: 0 }))
}

struct HandleLoopAttach {
    params: Params,
    _tree: CgroupTree,
    filter: HandleLoopFilter,
    handles: Arc<[CgroupRef]>,
    prog: Arc<Prog>,
    outstanding: u64,
}

impl AttachBench for HandleLoopAttach {
    fn mechanism(&self) -> Mechanism {
        Mechanism::HandleLoop
    }
    fn params(&self) -> Params {
        self.params
    }
    fn attach(&mut self) -> u64 {
        let handles: Arc<[CgroupRef]> = Arc::from(&self.handles[..]);
        match self.filter.append(MEASURED_HOOK, self.prog.clone(), handles) {
            Ok(n) => {
                self.outstanding += 1;
                n
            }
            Err(_) => 0,
        }
    }
    fn detach(&mut self) -> u64 {
        if self.outstanding == 0 {
            return 0;
        }
        self.outstanding -= 1;
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
    Ok(Box::new(HandleLoopAttach { params: *p, _tree: tree, filter, handles, prog: Prog::new(p.body), outstanding: 0 }))
}

struct IdMapAttach {
    params: Params,
    filter: CgroupIdMapFilter,
    key: u64,
    policy: Vec<Arc<Prog>>,
    prog: Arc<Prog>,
    base: usize,
}

impl IdMapAttach {
    fn write(&mut self) -> u64 {
        let policy: Policy = self.policy.clone().into_boxed_slice();
        self.filter.set_policy(MEASURED_HOOK, self.key, policy).unwrap_or(0)
    }
}

impl AttachBench for IdMapAttach {
    fn mechanism(&self) -> Mechanism {
        Mechanism::CgroupIdMap
    }
    fn params(&self) -> Params {
        self.params
    }
    fn attach(&mut self) -> u64 {
        self.policy.push(self.prog.clone());
        self.write()
    }
    fn detach(&mut self) -> u64 {
        if self.policy.len() <= self.base {
            return 0;
        }
        self.policy.pop();
        self.write()
    }
}

fn build_id_map(p: &Params) -> Result<Box<dyn AttachBench>, BuildError> {
    let (tree, top) = subtree(p)?;
    let mut filter = CgroupIdMapFilter::new(p.hooks, tree.len() as u32);
    let policy: Vec<Arc<Prog>> = (0..p.programs).map(|_| Prog::new(p.body)).collect();
    filter.set_policy(MEASURED_HOOK, top.id(), policy.clone().into_boxed_slice())?;
    for (h, list) in foreign_by_hook(p) {
        if !list.is_empty() {
            filter.set_policy(h, top.id(), list.into_boxed_slice())?;
        }
    }
    let base = policy.len();
    Ok(Box::new(IdMapAttach { params: *p, filter, key: top.id(), policy, prog: Prog::new(p.body), base }))
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
