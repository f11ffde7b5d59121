//! Models cgroup-effective (`Mechanism::EffectiveArray`) with the rules and shapes of cgroup-bpf.
//!
//! Following kernel/bpf/cgroup.c, an arena cgroup tree holds per cgroup and hook the attached
//! list, its flags and the NULL-terminated effective array.

use crate::footprint::{arc_bytes, arc_slice_bytes, vec_bytes, Footprint};
use crate::prog::{HookCtx, HookId, Prog};
use crate::tally::{run_list, Tally};
use std::sync::Arc;

/// `BPF_CGROUP_MAX_PROGS`: programs per cgroup per attach type under `BPF_F_ALLOW_MULTI`.
pub const BPF_CGROUP_MAX_PROGS: usize = 64;

/// Attach flags of one cgroup and hook (`cgrp->bpf.flags[atype]`), with the uapi bit values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct AttachFlags(pub u32);

impl AttachFlags {
    /// No flag: one program, descendants may not attach (0).
    pub const NONE: AttachFlags = AttachFlags(0);
    /// `BPF_F_ALLOW_OVERRIDE` (1 << 0): one program, a descendant's program replaces it.
    pub const ALLOW_OVERRIDE: AttachFlags = AttachFlags(1);
    /// `BPF_F_ALLOW_MULTI` (1 << 1): up to 64 programs, descendants' programs run before these.
    pub const ALLOW_MULTI: AttachFlags = AttachFlags(2);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: AttachFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for AttachFlags {
    type Output = AttachFlags;
    fn bitor(self, rhs: AttachFlags) -> AttachFlags {
        AttachFlags(self.0 | rhs.0)
    }
}

/// Index of a cgroup in its [`CgroupTree`] arena; the root is `CgroupRef(0)`.
///
/// Its cgroup id (`cgroup_id()`, the kernfs id) is index + 1, so the root's id is 1 as in the
/// kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CgroupRef(pub u32);

impl CgroupRef {
    /// The root cgroup.
    pub const ROOT: CgroupRef = CgroupRef(0);

    /// The cgroup id (index + 1).
    pub fn id(self) -> u64 {
        u64::from(self.0) + 1
    }
}

/// Error of an attach or detach, naming the errno and the kernel/bpf/cgroup.c rule that refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachError {
    /// The flags are `BPF_F_ALLOW_OVERRIDE | BPF_F_ALLOW_MULTI` together, or unknown bits.
    ///
    /// `__cgroup_bpf_attach` returns -EINVAL.
    #[error("EINVAL: attach flags {flags:#x} are invalid (BPF_F_ALLOW_OVERRIDE and BPF_F_ALLOW_MULTI together, or unknown bits); pass NONE, ALLOW_OVERRIDE or ALLOW_MULTI")]
    InvalidFlags {
        /// The flags given.
        flags: u32,
    },
    /// An ancestor has one program without override or multi (-EPERM).
    ///
    /// The kernel's check is `hierarchy_allows_attach`.
    #[error("EPERM: cannot attach to cgroup {cgroup} hook {hook}: ancestor cgroup {ancestor} has a program attached without BPF_F_ALLOW_OVERRIDE or BPF_F_ALLOW_MULTI (hierarchy_allows_attach); attach at cgroup {ancestor} with one of those flags, or detach its program")]
    HierarchyDenies {
        /// Cgroup id attached to.
        cgroup: u64,
        /// Hook.
        hook: HookId,
        /// Cgroup id of the blocking ancestor.
        ancestor: u64,
    },
    /// Programs are attached with other flags, which cannot change while they are (-EPERM).
    #[error("EPERM: cgroup {cgroup} hook {hook} has programs attached with flags {current:#x}; flags {requested:#x} would change them while programs are attached (__cgroup_bpf_attach); use flags {current:#x} or detach every program first")]
    FlagsMismatch {
        /// Cgroup id.
        cgroup: u64,
        /// Hook.
        hook: HookId,
        /// Flags of the attached programs.
        current: u32,
        /// Flags asked for.
        requested: u32,
    },
    /// Already `BPF_CGROUP_MAX_PROGS` programs: -E2BIG.
    #[error("E2BIG: cgroup {cgroup} hook {hook} already has {max} programs (BPF_CGROUP_MAX_PROGS); detach one or attach at another level")]
    TooManyProgs {
        /// Cgroup id.
        cgroup: u64,
        /// Hook.
        hook: HookId,
        /// The limit, [`BPF_CGROUP_MAX_PROGS`].
        max: usize,
    },
    /// The program is already in this multi list: -EINVAL from `find_attach_entry`.
    #[error("EINVAL: program {prog} is already attached to cgroup {cgroup} hook {hook} (find_attach_entry: the same prog twice); attach a different program")]
    AlreadyAttached {
        /// Program id.
        prog: u64,
        /// Cgroup id.
        cgroup: u64,
        /// Hook.
        hook: HookId,
    },
    /// Detach of a program that is not attached: -ENOENT from `find_detach_entry`.
    #[error("ENOENT: program {prog} is not attached to cgroup {cgroup} hook {hook} (find_detach_entry); detach a program that is attached there")]
    NotAttached {
        /// Program id.
        prog: u64,
        /// Cgroup id.
        cgroup: u64,
        /// Hook.
        hook: HookId,
    },
    /// Hook out of range: -EINVAL (unknown attach type).
    #[error("EINVAL: hook {hook} is out of range: the tree has {hooks} hooks (0..{hooks}); use a smaller hook or build the tree with more hooks")]
    NoSuchHook {
        /// Hook asked for.
        hook: HookId,
        /// Hooks of the tree.
        hooks: u32,
    },
    /// Not a cgroup of this tree: -EBADF (bad cgroup fd).
    #[error("EBADF: no cgroup at index {index}: the tree has {count} cgroups; use a CgroupRef returned by this tree")]
    NoSuchCgroup {
        /// Index asked for.
        index: u32,
        /// Cgroups in the tree.
        count: usize,
    },
}

impl AttachError {
    /// The kernel errno the syscall would return, so callers can compare with the kernel backend.
    ///
    /// EPERM = 1, ENOENT = 2, E2BIG = 7, EBADF = 9, EINVAL = 22.
    pub fn errno(&self) -> i32 {
        match self {
            AttachError::HierarchyDenies { .. } | AttachError::FlagsMismatch { .. } => 1,
            AttachError::NotAttached { .. } => 2,
            AttachError::TooManyProgs { .. } => 7,
            AttachError::NoSuchCgroup { .. } => 9,
            AttachError::InvalidFlags { .. } | AttachError::AlreadyAttached { .. } | AttachError::NoSuchHook { .. } => {
                22
            }
        }
    }
}

/// One slot of an effective array, shaped like `struct bpf_prog_array_item` (24 bytes).
///
/// It holds the program pointer and the two cgroup-storage pointers (never used by the model,
/// always 0). `prog == None` is the NULL terminator.
#[derive(Debug, Clone)]
#[repr(C)]
pub struct ProgArrayItem {
    /// The program, or `None` for the terminating NULL slot.
    pub prog: Option<Arc<Prog>>,
    /// `cgroup_storage[MAX_BPF_CGROUP_STORAGE_TYPE]`, always 0 here.
    pub cgroup_storage: [usize; 2],
}

impl ProgArrayItem {
    /// The slot of `prog` (`None`: the NULL terminator), its cgroup storage unused.
    pub fn new(prog: Option<Arc<Prog>>) -> ProgArrayItem {
        ProgArrayItem {
            prog,
            cgroup_storage: [0; 2],
        }
    }
}

/// An effective array (`struct bpf_prog_array`): one flat, NULL-terminated allocation of items.
///
/// The `Arc` header stands where the kernel's `rcu_head` is. Arrays with no program all share
/// the tree's single `[NULL]` array, like `bpf_empty_prog_array`.
pub type EffectiveArray = Arc<[ProgArrayItem]>;

/// Attached programs of one cgroup and hook, in attach order, with their flags.
///
/// The kernel's are `cgrp->bpf.progs[atype]` and `flags[atype]`.
#[derive(Debug, Clone, Default)]
pub struct HookProgs {
    /// The attached programs.
    pub progs: Vec<Arc<Prog>>,
    /// The flags they were attached with.
    pub flags: AttachFlags,
}

/// A cgroup's place in the tree: `struct cgroup`'s hierarchy fields.
///
/// They are the parent, level, first child and next sibling (children in creation order, as
/// `css_for_each_descendant_pre` sees them) and the offset of its `ancestors[]` (itself
/// included, at index `level`) in the tree's table.
#[derive(Debug, Clone)]
pub struct CgroupNode {
    parent: Option<CgroupRef>,
    level: u32,
    ancestors_at: u32,
    first_child: Option<CgroupRef>,
    last_child: Option<CgroupRef>,
    next_sibling: Option<CgroupRef>,
}

/// The `css_set` of a task (`task->cgroups`), shared by every task in the same cgroups.
///
/// It is separately allocated; the model keeps only `dfl_cgrp`.
#[derive(Debug)]
pub struct CssSet {
    /// The task's cgroup on the default hierarchy.
    pub dfl_cgrp: CgroupRef,
}

/// A task of the cgroup models: its pointer to its css_set.
#[derive(Debug, Clone)]
pub struct CgroupTask {
    cgroups: Arc<CssSet>,
}

impl CgroupTask {
    /// A task in its own new css_set for `cgroup`.
    pub fn new(cgroup: CgroupRef) -> CgroupTask {
        CgroupTask {
            cgroups: Arc::new(CssSet { dfl_cgrp: cgroup }),
        }
    }

    /// `fork`: the child shares the css_set.
    pub fn fork(&self) -> CgroupTask {
        self.clone()
    }

    /// The task's cgroup (`task_dfl_cgroup`).
    #[inline(always)]
    pub fn cgroup(&self) -> CgroupRef {
        self.cgroups.dfl_cgrp
    }

    /// The css_set pointer.
    pub fn css_set(&self) -> &Arc<CssSet> {
        &self.cgroups
    }

    /// Adds the task's pointer ("task-pointers") and its css_set once ("css-sets").
    pub fn footprint(&self, fp: &mut Footprint) {
        fp.add("task-pointers", std::mem::size_of::<Self>() as u64);
        fp.add_once("css-sets", Arc::as_ptr(&self.cgroups) as usize, arc_bytes::<CssSet>());
    }
}

/// A cgroup hierarchy in an arena, with cgroup-bpf state per cgroup and hook.
///
/// Per cgroup `c` and hook `h`, the slot `c * hooks + h` of `effective` holds the effective
/// array pointer (the kernel's `cgrp->bpf.effective[atype]`, inline in `struct cgroup`) and of
/// `attached` the attached list and flags.
#[derive(Debug)]
pub struct CgroupTree {
    hooks: u32,
    nodes: Vec<CgroupNode>,
    ancestors: Vec<CgroupRef>,
    effective: Vec<EffectiveArray>,
    attached: Vec<HookProgs>,
    empty: EffectiveArray,
}

impl CgroupTree {
    /// A tree holding only the root cgroup, for `hooks` attach types (at least 1).
    pub fn new(hooks: u32) -> CgroupTree {
        let hooks = hooks.max(1);
        let empty: EffectiveArray = Arc::from(vec![ProgArrayItem::new(None)]);
        let mut t = CgroupTree {
            hooks,
            nodes: Vec::new(),
            ancestors: Vec::new(),
            effective: Vec::new(),
            attached: Vec::new(),
            empty,
        };
        t.push_node(None, 0);
        t
    }

    fn push_node(&mut self, parent: Option<CgroupRef>, level: u32) -> CgroupRef {
        let me = CgroupRef(self.nodes.len() as u32);
        let ancestors_at = self.ancestors.len() as u32;
        if let Some(p) = parent {
            let pn = &self.nodes[p.0 as usize];
            let from = pn.ancestors_at as usize;
            let to = from + pn.level as usize + 1;
            self.ancestors.extend_from_within(from..to);
        }
        self.ancestors.push(me);
        self.nodes.push(CgroupNode {
            parent,
            level,
            ancestors_at,
            first_child: None,
            last_child: None,
            next_sibling: None,
        });
        for _ in 0..self.hooks {
            self.effective.push(self.empty.clone());
            self.attached.push(HookProgs::default());
        }
        me
    }

    /// Hooks (attach types) of the tree.
    pub fn hooks(&self) -> u32 {
        self.hooks
    }

    /// Cgroups in the tree, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: the root exists.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn node(&self, cg: CgroupRef) -> Result<&CgroupNode, AttachError> {
        self.nodes.get(cg.0 as usize).ok_or(AttachError::NoSuchCgroup {
            index: cg.0,
            count: self.nodes.len(),
        })
    }

    /// The index of (`cg`, `hook`) in `effective` and `attached`, unchecked.
    #[inline(always)]
    fn index(&self, cg: CgroupRef, hook: HookId) -> usize {
        cg.0 as usize * self.hooks as usize + hook as usize
    }

    /// The index of (`cg`, `hook`), or the error naming whichever of the two is unknown.
    fn slot(&self, cg: CgroupRef, hook: HookId) -> Result<usize, AttachError> {
        self.node(cg)?;
        if hook >= self.hooks {
            return Err(AttachError::NoSuchHook {
                hook,
                hooks: self.hooks,
            });
        }
        Ok(self.index(cg, hook))
    }

    /// Creates a child of `parent` (mkdir) with its effective arrays computed for every hook.
    ///
    /// The computation is `cgroup_bpf_inherit`'s. Errors with [`AttachError::NoSuchCgroup`].
    pub fn add_cgroup(&mut self, parent: CgroupRef) -> Result<CgroupRef, AttachError> {
        let level = self.node(parent)?.level + 1;
        let me = self.push_node(Some(parent), level);
        let p = &mut self.nodes[parent.0 as usize];
        match p.last_child.replace(me) {
            Some(prev) => self.nodes[prev.0 as usize].next_sibling = Some(me),
            None => p.first_child = Some(me),
        }
        for hook in 0..self.hooks {
            let i = self.index(me, hook);
            self.effective[i] = self.compute_effective_progs(me, hook);
        }
        Ok(me)
    }

    /// The parent of `cg` (`cgroup_parent`), `None` for the root or an unknown cgroup.
    pub fn parent(&self, cg: CgroupRef) -> Option<CgroupRef> {
        self.nodes.get(cg.0 as usize).and_then(|n| n.parent)
    }

    /// Depth of `cg` (root = 0), `None` for an unknown cgroup.
    pub fn level(&self, cg: CgroupRef) -> Option<u32> {
        self.nodes.get(cg.0 as usize).map(|n| n.level)
    }

    /// `cgroup_is_descendant(cgrp, ancestor)`: `cgrp->ancestors[ancestor->level] == ancestor`.
    /// The check costs two dependent loads (the handle's level, then the ancestor slot).
    #[inline(always)]
    pub fn is_descendant(&self, cgrp: CgroupRef, ancestor: CgroupRef) -> bool {
        let (Some(c), Some(a)) = (self.nodes.get(cgrp.0 as usize), self.nodes.get(ancestor.0 as usize)) else {
            return false;
        };
        c.level >= a.level && self.ancestors.get((c.ancestors_at + a.level) as usize) == Some(&ancestor)
    }

    /// `css_next_descendant_pre`: the cgroup after `pos` in a pre-order walk of `root`'s subtree.
    fn next_descendant_pre(&self, pos: CgroupRef, root: CgroupRef) -> Option<CgroupRef> {
        if let Some(c) = self.nodes[pos.0 as usize].first_child {
            return Some(c);
        }
        let mut pos = pos;
        while pos != root {
            let n = &self.nodes[pos.0 as usize];
            if let Some(s) = n.next_sibling {
                return Some(s);
            }
            pos = n.parent?;
        }
        None
    }

    /// The subtree of `root` in pre-order (root first), as `css_for_each_descendant_pre` walks.
    pub fn descendants_pre(&self, root: CgroupRef) -> Vec<CgroupRef> {
        let mut v = Vec::new();
        if self.nodes.get(root.0 as usize).is_none() {
            return v;
        }
        let mut pos = Some(root);
        while let Some(p) = pos {
            v.push(p);
            pos = self.next_descendant_pre(p, root);
        }
        v
    }

    /// `hierarchy_allows_attach`: whether `cg`'s ancestors let it attach on `hook`.
    ///
    /// The walk goes from the parent up: the first ancestor with ALLOW_MULTI allows, the first
    /// with one program and no MULTI allows iff it has ALLOW_OVERRIDE. Returns the blocking
    /// ancestor on refusal.
    fn hierarchy_allows_attach(&self, cg: CgroupRef, hook: HookId) -> Result<(), CgroupRef> {
        let mut p = self.nodes[cg.0 as usize].parent;
        while let Some(pc) = p {
            let hp = &self.attached[self.index(pc, hook)];
            if hp.flags.contains(AttachFlags::ALLOW_MULTI) {
                return Ok(());
            }
            if hp.progs.len() == 1 {
                return if hp.flags.contains(AttachFlags::ALLOW_OVERRIDE) {
                    Ok(())
                } else {
                    Err(pc)
                };
            }
            p = self.nodes[pc.0 as usize].parent;
        }
        Ok(())
    }

    /// `compute_effective_progs`: the flat array of the programs in effect on `cg` for `hook`.
    ///
    /// The walk goes from `cg` up, including an ancestor's programs if nothing was counted yet or
    /// it has ALLOW_MULTI: own programs first, then the parent's, and so on, then the NULL slot
    /// (the shared empty array when nothing is in effect).
    fn compute_effective_progs(&self, cg: CgroupRef, hook: HookId) -> EffectiveArray {
        let included = |p: CgroupRef, cnt: usize| {
            let hp = &self.attached[self.index(p, hook)];
            (cnt == 0 || hp.flags.contains(AttachFlags::ALLOW_MULTI)).then_some(hp)
        };
        // Count pass.
        let mut cnt = 0;
        let mut p = Some(cg);
        while let Some(pc) = p {
            if let Some(hp) = included(pc, cnt) {
                cnt += hp.progs.len();
            }
            p = self.nodes[pc.0 as usize].parent;
        }
        if cnt == 0 {
            return self.empty.clone();
        }
        // Populate pass.
        let mut items = Vec::with_capacity(cnt + 1);
        let mut p = Some(cg);
        while let Some(pc) = p {
            if let Some(hp) = included(pc, items.len()) {
                items.extend(hp.progs.iter().map(|prog| ProgArrayItem::new(Some(prog.clone()))));
            }
            p = self.nodes[pc.0 as usize].parent;
        }
        items.push(ProgArrayItem::new(None));
        Arc::from(items)
    }

    /// `update_effective_progs`: recomputes `hook`'s array in `cg`'s subtree, returning how many.
    ///
    /// The subtree is walked in pre-order, `cg` included. The kernel computes all into
    /// `bpf.inactive` first and then activates them, to fail atomically; allocation cannot fail
    /// here, so each is installed as computed.
    fn update_effective_progs(&mut self, cg: CgroupRef, hook: HookId) -> u64 {
        let mut n = 0;
        let mut pos = Some(cg);
        while let Some(p) = pos {
            let i = self.index(p, hook);
            self.effective[i] = self.compute_effective_progs(p, hook);
            n += 1;
            pos = self.next_descendant_pre(p, cg);
        }
        n
    }

    /// `__cgroup_bpf_attach`: attaches `prog` to `cg` on `hook` with `flags`, then recomputes.
    ///
    /// Rules, in the kernel's order: OVERRIDE|MULTI is EINVAL; `hierarchy_allows_attach` (EPERM);
    /// flags cannot change while programs are attached (EPERM); at most [`BPF_CGROUP_MAX_PROGS`]
    /// (E2BIG); under MULTI the same program twice is EINVAL; without MULTI the single attached
    /// program (if any) is replaced. Returns the number of effective arrays recomputed by
    /// `update_effective_progs` (the subtree size).
    pub fn attach(
        &mut self,
        cg: CgroupRef,
        hook: HookId,
        prog: Arc<Prog>,
        flags: AttachFlags,
    ) -> Result<u64, AttachError> {
        self.attach_no_update(cg, hook, prog, flags)?;
        Ok(self.update_effective_progs(cg, hook))
    }

    /// Attaches `progs` in order and recomputes once, to build large worlds quickly.
    ///
    /// The rules are exactly [`CgroupTree::attach`]'s and the final state the same as attaching
    /// one by one; only the subtree's effective arrays are recomputed once at the end. Stops at
    /// the first refused program (those before it stay attached). Returns the number of effective
    /// arrays recomputed.
    pub fn attach_batch(
        &mut self,
        cg: CgroupRef,
        hook: HookId,
        progs: Vec<Arc<Prog>>,
        flags: AttachFlags,
    ) -> Result<u64, AttachError> {
        let mut res = Ok(());
        for p in progs {
            res = self.attach_no_update(cg, hook, p, flags);
            if res.is_err() {
                break;
            }
        }
        let n = self.update_effective_progs(cg, hook);
        res.map(|()| n)
    }

    fn attach_no_update(
        &mut self,
        cg: CgroupRef,
        hook: HookId,
        prog: Arc<Prog>,
        flags: AttachFlags,
    ) -> Result<(), AttachError> {
        let i = self.slot(cg, hook)?;
        if flags.0 & !(AttachFlags::ALLOW_OVERRIDE.0 | AttachFlags::ALLOW_MULTI.0) != 0
            || flags.contains(AttachFlags::ALLOW_OVERRIDE | AttachFlags::ALLOW_MULTI)
        {
            return Err(AttachError::InvalidFlags { flags: flags.0 });
        }
        if let Err(anc) = self.hierarchy_allows_attach(cg, hook) {
            return Err(AttachError::HierarchyDenies {
                cgroup: cg.id(),
                hook,
                ancestor: anc.id(),
            });
        }
        let hp = &mut self.attached[i];
        if !hp.progs.is_empty() && hp.flags != flags {
            return Err(AttachError::FlagsMismatch {
                cgroup: cg.id(),
                hook,
                current: hp.flags.0,
                requested: flags.0,
            });
        }
        if hp.progs.len() >= BPF_CGROUP_MAX_PROGS {
            return Err(AttachError::TooManyProgs {
                cgroup: cg.id(),
                hook,
                max: BPF_CGROUP_MAX_PROGS,
            });
        }
        if flags.contains(AttachFlags::ALLOW_MULTI) {
            if hp.progs.iter().any(|p| Arc::ptr_eq(p, &prog)) {
                return Err(AttachError::AlreadyAttached {
                    prog: prog.id(),
                    cgroup: cg.id(),
                    hook,
                });
            }
            hp.progs.push(prog);
        } else {
            hp.progs.clear();
            hp.progs.push(prog);
        }
        hp.flags = flags;
        Ok(())
    }

    /// `__cgroup_bpf_detach`: removes `prog` from `cg`'s `hook` list and recomputes the subtree.
    ///
    /// Without MULTI the single attached program is detached whatever `prog` is, for
    /// compatibility, as the kernel does; the flags reset to NONE when the list becomes empty.
    /// Returns the number of effective arrays recomputed. Errors with
    /// [`AttachError::NotAttached`] (ENOENT).
    pub fn detach(&mut self, cg: CgroupRef, hook: HookId, prog: &Arc<Prog>) -> Result<u64, AttachError> {
        let i = self.slot(cg, hook)?;
        let hp = &mut self.attached[i];
        let pos = if hp.flags.contains(AttachFlags::ALLOW_MULTI) {
            hp.progs.iter().position(|p| Arc::ptr_eq(p, prog))
        } else if hp.progs.is_empty() {
            None
        } else {
            Some(0)
        };
        let Some(pos) = pos else {
            return Err(AttachError::NotAttached {
                prog: prog.id(),
                cgroup: cg.id(),
                hook,
            });
        };
        hp.progs.remove(pos);
        if hp.progs.is_empty() {
            hp.flags = AttachFlags::NONE;
        }
        Ok(self.update_effective_progs(cg, hook))
    }

    /// The attached programs and flags of `cg` on `hook`.
    pub fn attached(&self, cg: CgroupRef, hook: HookId) -> Result<&HookProgs, AttachError> {
        Ok(&self.attached[self.slot(cg, hook)?])
    }

    /// The effective array of `cg` on `hook`, NULL slot included.
    pub fn effective(&self, cg: CgroupRef, hook: HookId) -> Result<&EffectiveArray, AttachError> {
        Ok(&self.effective[self.slot(cg, hook)?])
    }

    /// The ids of the programs in effect on `cg` for `hook`, in run order (NULL slot excluded).
    pub fn effective_ids(&self, cg: CgroupRef, hook: HookId) -> Result<Vec<u64>, AttachError> {
        Ok(self
            .effective(cg, hook)?
            .iter()
            .map_while(|it| it.prog.as_ref().map(|p| p.id()))
            .collect())
    }

    /// Fires `ctx.hook` as `task` and returns the OR of the verdicts.
    ///
    /// The array is `task->cgroups->dfl_cgrp->bpf.effective[hook]` (three dependent loads), run
    /// up to its NULL slot like `bpf_prog_run_array`. An unknown cgroup or hook runs nothing.
    #[inline]
    pub fn run<T: Tally>(&self, task: &CgroupTask, ctx: &HookCtx, tally: &mut T) -> u32 {
        if ctx.hook >= self.hooks {
            return 0;
        }
        let i = self.index(task.cgroup(), ctx.hook);
        self.effective.get(i).map_or(0, |arr| {
            let progs = arr.iter().map_while(|item| item.prog.as_ref());
            run_list(progs, ctx, tally)
        })
    }

    /// Adds the tree's cgroup-bpf metadata to `fp`, each allocation once.
    ///
    /// The components are: per cgroup and hook the effective pointer and the attached list
    /// header and flags ("cgroup-bpf"), the attached lists' buffers ("attach-lists"), and each
    /// distinct effective array including its NULL slot ("effective-arrays", the shared empty
    /// array once). Attached programs go to program bytes.
    pub fn footprint(&self, fp: &mut Footprint) {
        fp.add("cgroup-bpf", vec_bytes(&self.effective) + vec_bytes(&self.attached));
        let mut lists = 0;
        for hp in &self.attached {
            lists += vec_bytes(&hp.progs);
            for p in &hp.progs {
                fp.program(p);
            }
        }
        fp.add("attach-lists", lists);
        for arr in &self.effective {
            fp.add_once(
                "effective-arrays",
                arr.as_ptr() as usize,
                arc_slice_bytes::<ProgArrayItem>(arr.len()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Body;
    use crate::tally::{HookAccounting, NoTally};

    const M: AttachFlags = AttachFlags::ALLOW_MULTI;
    const O: AttachFlags = AttachFlags::ALLOW_OVERRIDE;
    const N: AttachFlags = AttachFlags::NONE;

    fn progs(n: usize) -> Vec<Arc<Prog>> {
        (0..n).map(|_| Prog::new(Body::Counter)).collect()
    }

    fn ids(p: &[&Arc<Prog>]) -> Vec<u64> {
        p.iter().map(|p| p.id()).collect()
    }

    /// A tree for `hooks` hooks with one new cgroup per entry of `parents`, returned in order.
    ///
    /// Entry `i` names the parent of the `i`-th cgroup created: 0 is the root, `k` the `k`-th
    /// cgroup created before it (1-based).
    fn tree<const K: usize>(hooks: u32, parents: [usize; K]) -> (CgroupTree, [CgroupRef; K]) {
        let mut t = CgroupTree::new(hooks);
        let mut made = vec![CgroupRef::ROOT];
        for parent in parents {
            made.push(t.add_cgroup(made[parent]).unwrap());
        }
        let cgroups = std::array::from_fn(|i| made[i + 1]);
        (t, cgroups)
    }

    #[test]
    fn item_is_24_bytes() {
        assert_eq!(std::mem::size_of::<ProgArrayItem>(), 24);
    }

    /// root(MULTI a) -> c1(MULTI b, c) -> c2(MULTI d) -> c3: own first, then parents'.
    #[test]
    fn multi_accumulates_over_three_levels_own_first() {
        let (mut t, [c1, c2, c3]) = tree(2, [0, 1, 2]);
        let p = progs(4);
        let (a, b, c, d) = (&p[0], &p[1], &p[2], &p[3]);
        assert_eq!(t.attach(CgroupRef::ROOT, 0, a.clone(), M).unwrap(), 4);
        assert_eq!(t.attach(c1, 0, b.clone(), M).unwrap(), 3);
        assert_eq!(t.attach(c1, 0, c.clone(), M).unwrap(), 3);
        assert_eq!(t.attach(c2, 0, d.clone(), M).unwrap(), 2);
        assert_eq!(t.effective_ids(CgroupRef::ROOT, 0).unwrap(), ids(&[a]));
        assert_eq!(t.effective_ids(c1, 0).unwrap(), ids(&[b, c, a]));
        assert_eq!(t.effective_ids(c2, 0).unwrap(), ids(&[d, b, c, a]));
        assert_eq!(t.effective_ids(c3, 0).unwrap(), ids(&[d, b, c, a]));
        assert_eq!(t.effective_ids(c3, 1).unwrap(), Vec::<u64>::new());
        let arr = t.effective(c3, 0).unwrap();
        assert_eq!(arr.len(), 5, "4 programs + NULL slot");
        assert!(arr[4].prog.is_none());

        let task = CgroupTask::new(c3);
        let acc = HookAccounting::of(|acc| t.run(&task, &HookCtx { hook: 0 }, acc));
        assert_eq!(acc, HookAccounting::new(4, 4, 0, 0));
        assert_eq!(
            p.iter().map(|x| x.run_count().unwrap()).collect::<Vec<_>>(),
            vec![1, 1, 1, 1]
        );
    }

    /// root(NONE a): a child attach is EPERM; root replaces its single program.
    #[test]
    fn none_parent_blocks_child_attach() {
        let (mut t, [_, c2]) = tree(1, [0, 1]);
        let p = progs(3);
        t.attach(CgroupRef::ROOT, 0, p[0].clone(), N).unwrap();
        let err = t.attach(c2, 0, p[1].clone(), M).unwrap_err();
        assert_eq!(
            err,
            AttachError::HierarchyDenies {
                cgroup: c2.id(),
                hook: 0,
                ancestor: 1
            }
        );
        assert_eq!(err.errno(), 1);
        assert!(err.to_string().starts_with("EPERM"));
        assert_eq!(t.effective_ids(c2, 0).unwrap(), ids(&[&p[0]]));
        // Non-MULTI attach replaces the single program.
        assert_eq!(t.attach(CgroupRef::ROOT, 0, p[2].clone(), N).unwrap(), 3);
        assert_eq!(t.attached(CgroupRef::ROOT, 0).unwrap().progs.len(), 1);
        assert_eq!(t.effective_ids(c2, 0).unwrap(), ids(&[&p[2]]));
        // Flags cannot change while attached.
        assert!(matches!(
            t.attach(CgroupRef::ROOT, 0, p[1].clone(), M),
            Err(AttachError::FlagsMismatch {
                current: 0,
                requested: 2,
                ..
            })
        ));
        assert!(matches!(
            t.attach(CgroupRef::ROOT, 0, p[1].clone(), O | M),
            Err(AttachError::InvalidFlags { flags: 3 })
        ));
    }

    /// root(OVERRIDE a) -> c1(OVERRIDE b) -> c2: c1's program replaces root's below c1.
    ///
    /// A sibling keeps root's; a NONE parent with nothing attached does not block.
    #[test]
    fn override_child_replaces_parent() {
        let (mut t, [c1, c2, sib]) = tree(1, [0, 1, 0]);
        let p = progs(3);
        t.attach(CgroupRef::ROOT, 0, p[0].clone(), O).unwrap();
        assert_eq!(t.attach(c1, 0, p[1].clone(), O).unwrap(), 2);
        assert_eq!(t.effective_ids(c1, 0).unwrap(), ids(&[&p[1]]));
        assert_eq!(t.effective_ids(c2, 0).unwrap(), ids(&[&p[1]]));
        assert_eq!(t.effective_ids(sib, 0).unwrap(), ids(&[&p[0]]));
        // c2 under c1 (OVERRIDE, one prog): allowed with NONE, and then replaces c1's.
        t.attach(c2, 0, p[2].clone(), N).unwrap();
        assert_eq!(t.effective_ids(c2, 0).unwrap(), ids(&[&p[2]]));
        // c2 (NONE, one prog) now blocks its new child.
        let c3 = t.add_cgroup(c2).unwrap();
        assert_eq!(t.effective_ids(c3, 0).unwrap(), ids(&[&p[2]]), "inherited at creation");
        assert!(
            matches!(t.attach(c3, 0, Prog::new(Body::Null), M), Err(AttachError::HierarchyDenies { ancestor, .. }) if ancestor == c2.id())
        );
    }

    /// root(OVERRIDE a) -> c1(MULTI b, c) -> c2(MULTI d): detach restores the arrays exactly.
    ///
    /// A non-MULTI ancestor's program is not included once something was counted.
    #[test]
    fn mixed_override_multi_and_detach_restores() {
        let (mut t, [c1, c2, c3]) = tree(1, [0, 1, 1]);
        let p = progs(4);
        t.attach(CgroupRef::ROOT, 0, p[0].clone(), O).unwrap();
        t.attach(c1, 0, p[1].clone(), M).unwrap();
        t.attach(c1, 0, p[2].clone(), M).unwrap();
        let before: Vec<Vec<u64>> = t
            .descendants_pre(CgroupRef::ROOT)
            .iter()
            .map(|&c| t.effective_ids(c, 0).unwrap())
            .collect();
        assert_eq!(
            before,
            vec![
                ids(&[&p[0]]),
                ids(&[&p[1], &p[2]]),
                ids(&[&p[1], &p[2]]),
                ids(&[&p[1], &p[2]])
            ]
        );
        assert_eq!(t.attach(c2, 0, p[3].clone(), M).unwrap(), 1);
        assert_eq!(t.effective_ids(c2, 0).unwrap(), ids(&[&p[3], &p[1], &p[2]]));
        assert_eq!(t.effective_ids(c3, 0).unwrap(), ids(&[&p[1], &p[2]]));
        assert_eq!(t.detach(c2, 0, &p[3]).unwrap(), 1);
        let after: Vec<Vec<u64>> = t
            .descendants_pre(CgroupRef::ROOT)
            .iter()
            .map(|&c| t.effective_ids(c, 0).unwrap())
            .collect();
        assert_eq!(after, before);
        assert_eq!(t.attached(c2, 0).unwrap().flags, N, "empty list resets flags");
        // Detaching c1's programs brings back root's overridable one.
        t.detach(c1, 0, &p[1]).unwrap();
        assert_eq!(t.detach(c1, 0, &p[2]).unwrap(), 3);
        assert_eq!(t.effective_ids(c2, 0).unwrap(), ids(&[&p[0]]));
        assert_eq!(t.attached(c1, 0).unwrap().flags, N);
        assert!(Arc::ptr_eq(
            t.effective(CgroupRef::ROOT, 0).unwrap(),
            t.effective(CgroupRef::ROOT, 0).unwrap()
        ));
        assert_eq!(t.detach(c1, 0, &p[1]).unwrap_err().errno(), 2);
        t.detach(CgroupRef::ROOT, 0, &p[0]).unwrap();
        assert!(
            Arc::ptr_eq(t.effective(c2, 0).unwrap(), &t.empty),
            "nothing in effect: the shared empty array"
        );
    }

    #[test]
    fn batch_equals_one_by_one() {
        let p = progs(6);
        let build = |batch: bool| {
            let (mut t, [c1, c2]) = tree(1, [0, 1]);
            if batch {
                assert_eq!(t.attach_batch(c1, 0, p[..3].to_vec(), M).unwrap(), 2);
                assert_eq!(t.attach_batch(c2, 0, p[3..].to_vec(), M).unwrap(), 1);
            } else {
                for x in &p[..3] {
                    t.attach(c1, 0, x.clone(), M).unwrap();
                }
                for x in &p[3..] {
                    t.attach(c2, 0, x.clone(), M).unwrap();
                }
            }
            t.effective_ids(c2, 0).unwrap()
        };
        assert_eq!(build(true), build(false));
        assert_eq!(build(true), ids(&[&p[3], &p[4], &p[5], &p[0], &p[1], &p[2]]));
    }

    #[test]
    fn cap_and_duplicate() {
        let (mut t, [c1]) = tree(1, [0]);
        let p = progs(65);
        for x in &p[..64] {
            t.attach(c1, 0, x.clone(), M).unwrap();
        }
        let err = t.attach(c1, 0, p[64].clone(), M).unwrap_err();
        assert_eq!(
            err,
            AttachError::TooManyProgs {
                cgroup: c1.id(),
                hook: 0,
                max: 64
            }
        );
        assert_eq!(err.errno(), 7);
        t.detach(c1, 0, &p[0]).unwrap();
        assert_eq!(
            t.attach(c1, 0, p[1].clone(), M).unwrap_err(),
            AttachError::AlreadyAttached {
                prog: p[1].id(),
                cgroup: c1.id(),
                hook: 0
            }
        );
        t.attach(c1, 0, p[64].clone(), M).unwrap();
        assert_eq!(t.effective_ids(c1, 0).unwrap().len(), 64);
        assert_eq!(
            t.attach(c1, 5, p[0].clone(), M).unwrap_err(),
            AttachError::NoSuchHook { hook: 5, hooks: 1 }
        );
        assert!(matches!(
            t.attach(CgroupRef(99), 0, p[0].clone(), M),
            Err(AttachError::NoSuchCgroup { index: 99, .. })
        ));
    }

    #[test]
    fn recompute_counts_whole_subtree_pre_order() {
        let (mut t, [a, b, c, d, e]) = tree(1, [0, 1, 1, 2, 0]);
        assert_eq!(t.descendants_pre(CgroupRef::ROOT), vec![CgroupRef::ROOT, a, b, d, c, e]);
        assert_eq!(t.descendants_pre(a), vec![a, b, d, c]);
        assert_eq!(t.attach(a, 0, Prog::new(Body::Null), M).unwrap(), 4);
        assert_eq!(t.attach(CgroupRef::ROOT, 0, Prog::new(Body::Null), M).unwrap(), 6);
        assert!(t.is_descendant(d, a) && t.is_descendant(d, d) && !t.is_descendant(a, d) && !t.is_descendant(e, a));
        let task = CgroupTask::new(d);
        assert_eq!(t.run(&task, &HookCtx { hook: 0 }, &mut NoTally), 0);
    }

    #[test]
    fn footprint_grows_with_cgroups_times_hooks() {
        let bytes = |cgroups: u32, hooks: u32| {
            let mut t = CgroupTree::new(hooks);
            for _ in 1..cgroups {
                t.add_cgroup(CgroupRef::ROOT).unwrap();
            }
            let mut fp = Footprint::new();
            t.footprint(&mut fp);
            fp.metadata_bytes()
        };
        let base = bytes(1, 1);
        let per = std::mem::size_of::<EffectiveArray>() + std::mem::size_of::<HookProgs>();
        // Vec capacities may exceed lengths; exact growth is checked on exact-capacity trees below.
        assert!(bytes(100, 8) >= base + (100 * 8 - 1) as u64 * per as u64);
        let (mut t, [c]) = tree(2, [0]);
        let mut fp0 = Footprint::new();
        t.footprint(&mut fp0);
        t.attach(c, 1, Prog::new(Body::Null), M).unwrap();
        let mut fp1 = Footprint::new();
        t.footprint(&mut fp1);
        let eff = |fp: &Footprint| {
            fp.breakdown()
                .into_iter()
                .find(|(n, _)| *n == "effective-arrays")
                .map(|x| x.1)
        };
        assert_eq!(
            eff(&fp1).unwrap() - eff(&fp0).unwrap(),
            arc_slice_bytes::<ProgArrayItem>(2)
        );
    }
}
