//! Whole worlds built from scenario params, one per mechanism, behind one generic `World`.
//!
//! That implementation's measured loop is monomorphic.

// Slot tasks are boxed on purpose: each is a separate allocation, like a `task_struct`.
#![allow(clippy::vec_box)]

use crate::error::BuildError;
use crate::layout::{
    chain_slot_is_foreign, check_cgroup_cap, foreign_hook, require_depth, validate_common, MAX_HANDLES,
};
use crate::{RunCounts, World};
use hookbench_model::{
    AttachFlags, Body, CgroupIdMapFilter, CgroupRef, CgroupTask, CgroupTree, ChainTask, Footprint, HandleLoopFilter,
    HookAccounting, HookArrayTask, HookCtx, Mechanism, NoTally, Params, Prog, Tally,
};
use std::sync::Arc;

/// The measured hook.
pub const MEASURED_HOOK: u32 = 0;

/// A slot's task, alone on its cache line; reaching it stands for reading `current`.
///
/// Tasks are separately allocated objects, like `task_struct`s.
#[repr(align(64))]
struct TaskBox<T>(T);

/// How a mechanism finds the programs of a task of type `K` and runs them.
///
/// The per-task mechanisms read them from the task itself ([`OwnPrograms`]); the cgroup ones from
/// the task's cgroup, through the effective arrays of the tree or a global filter.
trait Dispatch<K>: Send + Sync + 'static {
    /// Fires `ctx.hook` as `task`.
    fn run<T: Tally>(&self, task: &K, ctx: &HookCtx, tally: &mut T) -> u32;
    /// Adds the dispatch metadata and programs kept beyond the tasks' own.
    fn footprint(&self, fp: &mut Footprint);
}

/// The programs of each slot, kept for run-count checks.
struct SlotProgs {
    measured: Vec<Vec<Arc<Prog>>>,
    foreign: Vec<Vec<Arc<Prog>>>,
}

impl SlotProgs {
    fn new() -> SlotProgs {
        SlotProgs {
            measured: Vec::new(),
            foreign: Vec::new(),
        }
    }

    /// Records the next slot's programs.
    fn push(&mut self, measured: Vec<Arc<Prog>>, foreign: Vec<Arc<Prog>>) {
        self.measured.push(measured);
        self.foreign.push(foreign);
    }
}

/// A built world: its slot tasks (and the extra ones), how it dispatches, and their programs.
struct ModelWorld<D, K> {
    mechanism: Mechanism,
    params: Params,
    slots: usize,
    progs: SlotProgs,
    dispatch: D,
    tasks: Tasks<K>,
}

impl<D: Dispatch<K>, K: Task> ModelWorld<D, K> {
    /// Boxes a built world; `params` are the resolved ones, the slot count is that of `progs`.
    fn boxed(
        mechanism: Mechanism,
        params: Params,
        progs: SlotProgs,
        dispatch: D,
        tasks: Tasks<K>,
    ) -> Result<Box<dyn World>, BuildError> {
        let slots = progs.measured.len();
        Ok(Box::new(ModelWorld {
            mechanism,
            params,
            slots,
            progs,
            dispatch,
            tasks,
        }))
    }

    /// Fires the measured hook as slot `slot`.
    #[inline]
    fn run<T: Tally>(&self, slot: usize, ctx: &HookCtx, tally: &mut T) -> u32 {
        self.dispatch.run(self.tasks.slot(slot), ctx, tally)
    }

    /// The world's dispatch metadata and programs, then its tasks'.
    fn footprint(&self) -> Footprint {
        let mut fp = Footprint::new();
        self.dispatch.footprint(&mut fp);
        self.tasks.footprint(&mut fp);
        fp
    }
}

impl<D: Dispatch<K>, K: Task> World for ModelWorld<D, K> {
    fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    fn params(&self) -> Params {
        self.params
    }

    fn slots(&self) -> usize {
        self.slots
    }

    fn trigger(&self, order: &[u32], iterations: u64) -> u64 {
        let ctx = HookCtx { hook: MEASURED_HOOK };
        let mut acc = 0u64;
        if order.is_empty() {
            return acc;
        }
        let mut left = iterations;
        while left > 0 {
            let n = left.min(order.len() as u64) as usize;
            for &s in &order[..n] {
                acc = acc.wrapping_add(u64::from(self.run(s as usize, &ctx, &mut NoTally)));
            }
            left -= n as u64;
        }
        acc
    }

    fn accounting(&self, slot: u32) -> HookAccounting {
        let mut acc = HookAccounting::default();
        self.run(slot as usize, &HookCtx { hook: MEASURED_HOOK }, &mut acc);
        acc
    }

    fn metadata_bytes(&self) -> u64 {
        self.footprint().metadata_bytes()
    }

    fn metadata_breakdown(&self) -> Vec<(&'static str, u64)> {
        self.footprint().breakdown()
    }

    fn program_bytes(&self) -> u64 {
        self.footprint().program_bytes()
    }

    fn run_counts(&self, slot: u32) -> Option<RunCounts> {
        let sum = |v: &Vec<Arc<Prog>>| v.iter().map(|p| p.run_count()).sum::<Option<u64>>();
        let s = slot as usize;
        Some(RunCounts {
            measured: sum(self.progs.measured.get(s)?)?,
            foreign: sum(self.progs.foreign.get(s)?)?,
        })
    }
}

fn new_progs(body: Body, n: u32) -> Vec<Arc<Prog>> {
    (0..n).map(|_| Prog::new(body)).collect()
}

/// A task type of the model: forkable, with its own dispatch metadata.
trait Task: Send + Sync + Sized + 'static {
    /// `fork`: a child sharing the parent's dispatch state.
    fn fork(&self) -> Self;
    /// Adds the task's metadata (its pointer and what it shares, shared allocations once).
    fn footprint(&self, fp: &mut Footprint);
}

/// Implements [`Task`] by the task types' own `fork` and `footprint`.
macro_rules! impl_task {
    ($($t:ty),*) => {$(
        impl Task for $t {
            fn fork(&self) -> Self {
                <$t>::fork(self)
            }
            fn footprint(&self, fp: &mut Footprint) {
                <$t>::footprint(self, fp);
            }
        }
    )*};
}

impl_task!(ChainTask, HookArrayTask, CgroupTask);

/// A world's tasks: one per slot, each boxed alone as it is built, and the extra ones.
///
/// The extra tasks are forked from the slot tasks.
struct Tasks<K> {
    slots: Vec<Box<TaskBox<K>>>,
    extra: Vec<K>,
}

impl<K: Task> Tasks<K> {
    fn with_capacity(slots: usize) -> Tasks<K> {
        Tasks {
            slots: Vec::with_capacity(slots),
            extra: Vec::new(),
        }
    }

    /// Adds the next slot's task, in its own allocation.
    fn push(&mut self, task: K) {
        self.slots.push(Box::new(TaskBox(task)));
    }

    /// Forks the extra tasks round-robin from the slot tasks; returns `p` with `tasks` resolved.
    ///
    /// `p.tasks == 0` means one task per slot.
    fn fork_extra(&mut self, p: &Params) -> Params {
        let slots = self.slots.len() as u64;
        let tasks = if p.tasks == 0 { slots as u32 } else { p.tasks };
        self.extra = (0..u64::from(tasks) - slots)
            .map(|e| self.slots[(e % slots) as usize].0.fork())
            .collect();
        Params { tasks, ..*p }
    }

    /// Slot `slot`'s task (panics when out of range).
    #[inline]
    fn slot(&self, slot: usize) -> &K {
        &self.slots[slot].0
    }

    /// Adds every task's metadata, slot tasks first.
    fn footprint(&self, fp: &mut Footprint) {
        for t in &self.slots {
            t.0.footprint(fp);
        }
        for t in &self.extra {
            t.footprint(fp);
        }
    }
}

// ---------------------------------------------------------------- task-chain, task-hook-array

/// A per-task mechanism: each slot's task carries its own programs.
trait PerTask: Task {
    /// The mechanism this task models.
    const MECHANISM: Mechanism;
    /// Fires `ctx.hook` as this task.
    fn run<T: Tally>(&self, ctx: &HookCtx, tally: &mut T) -> u32;
}

/// Implements [`PerTask`] for task types by their mechanism and their own `run`.
macro_rules! impl_per_task {
    ($($t:ty: $mechanism:ident),*) => {$(
        impl PerTask for $t {
            const MECHANISM: Mechanism = Mechanism::$mechanism;
            #[inline]
            fn run<T: Tally>(&self, ctx: &HookCtx, tally: &mut T) -> u32 {
                <$t>::run(self, ctx, tally)
            }
        }
    )*};
}

impl_per_task!(ChainTask: ChainWalk, HookArrayTask: HookIndex);

/// One slot's task with fresh programs, with its measured and foreign programs.
///
/// `p.programs` measured programs go on [`MEASURED_HOOK`], `p.foreign` ones on the other hooks.
type SlotBuilder<K> = fn(&Params) -> (K, Vec<Arc<Prog>>, Vec<Arc<Prog>>);

/// A task-chain slot: one chain of `programs + foreign` nodes, the foreign ones interleaved.
fn chain_slot(p: &Params) -> (ChainTask, Vec<Arc<Prog>>, Vec<Arc<Prog>>) {
    let mut task = ChainTask::new();
    let (mut measured, mut foreign) = (Vec::new(), Vec::new());
    for k in 0..u64::from(p.programs) + u64::from(p.foreign) {
        let prog = Prog::new(p.body);
        if chain_slot_is_foreign(k, p.programs, p.foreign) {
            task.install(foreign_hook(foreign.len() as u32, p.hooks), prog.clone());
            foreign.push(prog);
        } else {
            task.install(MEASURED_HOOK, prog.clone());
            measured.push(prog);
        }
    }
    (task, measured, foreign)
}

/// A task-hook-array slot: one list per hook, the foreign programs round-robin on hooks `1..`.
fn hook_array_slot(p: &Params) -> (HookArrayTask, Vec<Arc<Prog>>, Vec<Arc<Prog>>) {
    let mut lists: Vec<Vec<Arc<Prog>>> = vec![Vec::new(); p.hooks as usize];
    let measured = new_progs(p.body, p.programs);
    let foreign = new_progs(p.body, p.foreign);
    lists[MEASURED_HOOK as usize] = measured.clone();
    for (j, f) in foreign.iter().enumerate() {
        lists[foreign_hook(j as u32, p.hooks) as usize].push(f.clone());
    }
    (HookArrayTask::with_lists(lists), measured, foreign)
}

/// The dispatch of a per-task mechanism: each task carries its own programs, nothing else does.
struct OwnPrograms;

impl<K: PerTask> Dispatch<K> for OwnPrograms {
    #[inline]
    fn run<T: Tally>(&self, task: &K, ctx: &HookCtx, tally: &mut T) -> u32 {
        task.run(ctx, tally)
    }
    fn footprint(&self, _: &mut Footprint) {}
}

/// The world of a per-task mechanism, each slot's task from `build_slot`.
fn build_per_task<K: PerTask>(p: &Params, build_slot: SlotBuilder<K>) -> Result<Box<dyn World>, BuildError> {
    let slots = validate_common(p, true)?;
    let mut progs = SlotProgs::new();
    let mut tasks = Tasks::with_capacity(slots as usize);
    for _ in 0..slots {
        let (task, measured, foreign) = build_slot(p);
        tasks.push(task);
        progs.push(measured, foreign);
    }
    let params = tasks.fork_extra(p);
    ModelWorld::boxed(K::MECHANISM, params, progs, OwnPrograms, tasks)
}

// ---------------------------------------------------------------- cgroup-effective

/// Implements [`Dispatch`] of cgroup tasks by a model type's own `run` and `footprint`.
///
/// The types are the effective arrays of a [`CgroupTree`] and the map of a
/// [`CgroupIdMapFilter`].
macro_rules! impl_cgroup_dispatch {
    ($($t:ty),*) => {$(
        impl Dispatch<CgroupTask> for $t {
            #[inline]
            fn run<T: Tally>(&self, task: &CgroupTask, ctx: &HookCtx, tally: &mut T) -> u32 {
                <$t>::run(self, task, ctx, tally)
            }
            fn footprint(&self, fp: &mut Footprint) {
                <$t>::footprint(self, fp);
            }
        }
    )*};
}

impl_cgroup_dispatch!(CgroupTree, CgroupIdMapFilter);

/// The programs of `foreign` that go to hook `h` (round-robin over hooks `1..hooks`).
fn foreign_on(foreign: &[Arc<Prog>], h: u32, hooks: u32) -> Vec<Arc<Prog>> {
    foreign
        .iter()
        .enumerate()
        .filter(|(j, _)| foreign_hook(*j as u32, hooks) == h)
        .map(|(_, f)| f.clone())
        .collect()
}

/// Attaches `progs` over `path` (index 0 = top) round-robin from the leaf up, `ALLOW_MULTI`.
fn attach_over_path(
    tree: &mut CgroupTree,
    path: &[CgroupRef],
    hook: u32,
    progs: &[Arc<Prog>],
) -> Result<(), BuildError> {
    let depth = path.len();
    let mut per_level: Vec<Vec<Arc<Prog>>> = vec![Vec::new(); depth];
    for (j, prog) in progs.iter().enumerate() {
        per_level[depth - 1 - j % depth].push(prog.clone());
    }
    for (level, list) in per_level.into_iter().enumerate().rev() {
        if !list.is_empty() {
            tree.attach_batch(path[level], hook, list, AttachFlags::ALLOW_MULTI)?;
        }
    }
    Ok(())
}

fn build_effective(p: &Params) -> Result<Box<dyn World>, BuildError> {
    let slots = validate_common(p, true)?;
    require_depth(p)?;
    check_cgroup_cap("programs", p.programs, 1, p.depth)?;
    check_cgroup_cap("foreign", p.foreign, p.hooks.saturating_sub(1), p.depth)?;
    let needed = 1 + slots * u64::from(p.depth);
    let cgroups = resolve_cgroups(p, needed, || {
        format!(
            "the root plus working_set x cpus = {slots} container paths of depth {}",
            p.depth
        )
    })?;
    let mut tree = CgroupTree::new(p.hooks);
    let mut progs = SlotProgs::new();
    let mut tasks = Tasks::with_capacity(slots as usize);
    for _ in 0..slots {
        let path = add_path(&mut tree, CgroupRef::ROOT, p.depth)?;
        let measured = new_progs(p.body, p.programs);
        let foreign = new_progs(p.body, p.foreign);
        attach_over_path(&mut tree, &path, MEASURED_HOOK, &measured)?;
        for h in 1..p.hooks {
            let mine = foreign_on(&foreign, h, p.hooks);
            attach_over_path(&mut tree, &path, h, &mine)?;
        }
        let leaf = path[path.len() - 1];
        tasks.push(CgroupTask::new(leaf));
        progs.push(measured, foreign);
    }
    for _ in needed..u64::from(cgroups) {
        tree.add_cgroup(CgroupRef::ROOT)?;
    }
    let params = Params {
        cgroups,
        ..tasks.fork_extra(p)
    };
    ModelWorld::boxed(Mechanism::EffectiveArray, params, progs, tree, tasks)
}

/// Refuses a tree of more than [`crate::layout::MAX_CGROUPS`] cgroups; `axis` says how `total`
/// was counted.
fn check_total_cgroups(axis: &'static str, total: u64) -> Result<(), BuildError> {
    if total > u64::from(crate::layout::MAX_CGROUPS) {
        return Err(BuildError::TooLarge {
            axis,
            value: total,
            max: crate::layout::MAX_CGROUPS.into(),
            why: "cgroups the model will allocate; lower working_set, cpus or depth",
        });
    }
    Ok(())
}

/// Resolves `cgroups == 0` to `needed`; errors when fewer than `needed` were requested.
fn resolve_cgroups(p: &Params, needed: u64, why: impl FnOnce() -> String) -> Result<u32, BuildError> {
    check_total_cgroups("cgroups needed (root + working_set x cpus x depth)", needed)?;
    if p.cgroups == 0 {
        return Ok(needed as u32);
    }
    if u64::from(p.cgroups) < needed {
        return Err(BuildError::TooFewCgroups {
            requested: p.cgroups,
            needed,
            why: why(),
        });
    }
    Ok(p.cgroups)
}

/// Adds a path of `depth` cgroups under `parent`; returns it top first.
fn add_path(tree: &mut CgroupTree, parent: CgroupRef, depth: u32) -> Result<Vec<CgroupRef>, BuildError> {
    let mut path = Vec::with_capacity(depth as usize);
    let mut c = parent;
    for _ in 0..depth {
        c = tree.add_cgroup(c)?;
        path.push(c);
    }
    Ok(path)
}

// ---------------------------------------------------------------- global-filter

/// The global-filter tree: root -> K containers, every slot's path beneath the last one.
///
/// The last container holds every slot's path of `depth` cgroups, so every slot is beneath the
/// LAST container (and no other).
struct GlobalLayout {
    tree: CgroupTree,
    containers: Vec<CgroupRef>,
    leaves: Vec<CgroupRef>,
    cgroups: u32,
}

fn global_layout(p: &Params, slots: u64) -> Result<GlobalLayout, BuildError> {
    require_depth(p)?;
    let path_cgroups = slots * u64::from(p.depth);
    let containers = if p.cgroups == 0 {
        slots
    } else {
        let needed = 2 + path_cgroups;
        resolve_cgroups(p, needed, || {
            format!("the root, at least one container, and working_set x cpus = {slots} slot paths of depth {} beneath the last container", p.depth)
        })?;
        u64::from(p.cgroups) - 1 - path_cgroups
    };
    let total = 1 + containers + path_cgroups;
    check_total_cgroups("cgroups needed (root + containers + working_set x cpus x depth)", total)?;
    let handles = containers * (u64::from(p.programs) + u64::from(p.foreign));
    if handles > MAX_HANDLES {
        return Err(BuildError::TooLarge {
            axis: "(programs + foreign) x containers",
            value: handles,
            max: MAX_HANDLES,
            why: "cgroup handles, one per container in every global program; lower programs, foreign or cgroups",
        });
    }
    let mut tree = CgroupTree::new(p.hooks);
    let containers: Vec<CgroupRef> = (0..containers)
        .map(|_| tree.add_cgroup(CgroupRef::ROOT))
        .collect::<Result<_, _>>()?;
    let last = containers[containers.len() - 1];
    let mut leaves = Vec::with_capacity(slots as usize);
    for _ in 0..slots {
        let path = add_path(&mut tree, last, p.depth)?;
        leaves.push(path[path.len() - 1]);
    }
    Ok(GlobalLayout {
        tree,
        containers,
        leaves,
        cgroups: total as u32,
    })
}

/// The global-filter tasks, one in each leaf of `layout`, with `p` resolved to the layout.
///
/// One slot task in each leaf, in order, plus the extra ones forked from them; `p` is returned
/// with `tasks`, and `cgroups` as laid out.
fn leaf_tasks(p: &Params, layout: &GlobalLayout) -> (Tasks<CgroupTask>, Params) {
    let mut tasks = Tasks::with_capacity(layout.leaves.len());
    for &leaf in &layout.leaves {
        tasks.push(CgroupTask::new(leaf));
    }
    let params = Params {
        cgroups: layout.cgroups,
        ..tasks.fork_extra(p)
    };
    (tasks, params)
}

/// The dispatch of handle-loop: the global filter, which checks the task's cgroup in the tree.
///
/// Only the filter counts as metadata: the tree is the cgroups themselves.
struct HandleLoop {
    tree: CgroupTree,
    filter: HandleLoopFilter,
}

impl Dispatch<CgroupTask> for HandleLoop {
    #[inline]
    fn run<T: Tally>(&self, task: &CgroupTask, ctx: &HookCtx, tally: &mut T) -> u32 {
        self.filter.run(&self.tree, task, ctx, tally)
    }
    fn footprint(&self, fp: &mut Footprint) {
        self.filter.footprint(fp);
    }
}

fn build_handle_loop(p: &Params) -> Result<Box<dyn World>, BuildError> {
    let slots = validate_common(p, false)?;
    let layout = global_layout(p, slots)?;
    let mut filter = HandleLoopFilter::new(p.hooks);
    let measured = new_progs(p.body, p.programs);
    let foreign = new_progs(p.body, p.foreign);
    for prog in &measured {
        filter.append(MEASURED_HOOK, prog.clone(), Arc::from(layout.containers.clone()))?;
    }
    for (j, prog) in foreign.iter().enumerate() {
        filter.append(
            foreign_hook(j as u32, p.hooks),
            prog.clone(),
            Arc::from(layout.containers.clone()),
        )?;
    }
    let (tasks, params) = leaf_tasks(p, &layout);
    // The global programs are shared by every slot.
    let progs = SlotProgs {
        measured: vec![measured; slots as usize],
        foreign: vec![foreign; slots as usize],
    };
    let dispatch = HandleLoop {
        tree: layout.tree,
        filter,
    };
    ModelWorld::boxed(Mechanism::HandleLoop, params, progs, dispatch, tasks)
}

fn build_id_map(p: &Params) -> Result<Box<dyn World>, BuildError> {
    let slots = validate_common(p, true)?;
    let layout = global_layout(p, slots)?;
    let idle = layout.containers.len() as u64 - 1;
    let max_entries = (slots + idle) as u32;
    let mut filter = CgroupIdMapFilter::new(p.hooks, max_entries);
    let mut progs = SlotProgs::new();
    for &leaf in &layout.leaves {
        let measured = new_progs(p.body, p.programs);
        let foreign = new_progs(p.body, p.foreign);
        if p.programs > 0 {
            filter.set_policy(MEASURED_HOOK, leaf.id(), measured.clone().into_boxed_slice())?;
        }
        for h in 1..p.hooks {
            let mine = foreign_on(&foreign, h, p.hooks);
            if !mine.is_empty() {
                filter.set_policy(h, leaf.id(), mine.into_boxed_slice())?;
            }
        }
        progs.push(measured, foreign);
    }
    if p.programs > 0 {
        for &c in &layout.containers[..idle as usize] {
            filter.set_policy(MEASURED_HOOK, c.id(), Vec::new().into_boxed_slice())?;
        }
    }
    let (tasks, params) = leaf_tasks(p, &layout);
    ModelWorld::boxed(Mechanism::CgroupIdMap, params, progs, filter, tasks)
}

/// See [`crate::build_world`].
pub(crate) fn build(mechanism: Mechanism, p: &Params) -> Result<Box<dyn World>, BuildError> {
    match mechanism {
        Mechanism::ChainWalk => build_per_task(p, chain_slot),
        Mechanism::HookIndex => build_per_task(p, hook_array_slot),
        Mechanism::EffectiveArray => build_effective(p),
        Mechanism::HandleLoop => build_handle_loop(p),
        Mechanism::CgroupIdMap => build_id_map(p),
    }
}
