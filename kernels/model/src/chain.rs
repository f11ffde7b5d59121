//! Models task-chain (`Mechanism::ChainWalk`): one linked list of every hook's programs per task.
//!
//! The list runs newest first and is shared across fork, like `struct seccomp_filter` in
//! kernel/seccomp.c and the chain of Landlock RFC v2.

use crate::footprint::{arc_bytes, Footprint};
use crate::prog::{HookCtx, HookId, Prog};
use crate::tally::{Step, Tally};
use std::sync::Arc;

/// One node of a task chain (`struct seccomp_filter`: `prev` plus the program).
///
/// Each node is separately heap-allocated and refcounted; it is immutable once installed, so
/// every task forked after it shares it.
#[derive(Debug)]
pub struct ChainNode {
    /// The next-older node (`filter->prev`), `None` at the oldest.
    pub prev: Option<Arc<ChainNode>>,
    /// The program.
    pub prog: Arc<Prog>,
    /// The hook the program was installed for; the walk runs the node only on this hook.
    pub hook: HookId,
}

impl Drop for ChainNode {
    /// Releases the older nodes in a loop, so dropping a chain of 100 000 nodes does not recurse.
    ///
    /// The kernel's `__put_seccomp_filter` loops over `prev` the same way.
    fn drop(&mut self) {
        let mut prev = self.prev.take();
        while let Some(node) = prev {
            match Arc::try_unwrap(node) {
                Ok(mut owned) => prev = owned.prev.take(),
                Err(_shared) => break,
            }
        }
    }
}

/// A task's view of its chain (`task->seccomp.filter`): a pointer to the newest node.
#[derive(Debug, Clone, Default)]
pub struct ChainTask {
    filter: Option<Arc<ChainNode>>,
}

impl ChainTask {
    /// A task with no programs.
    pub fn new() -> ChainTask {
        ChainTask::default()
    }

    /// `fork`: the child points at the same newest node, sharing every node.
    ///
    /// Each node takes one more refcount (`get_seccomp_filter` in `copy_seccomp`).
    pub fn fork(&self) -> ChainTask {
        self.clone()
    }

    /// Installs `prog` for `hook` on this task only, as a new newest node.
    ///
    /// This is `seccomp_attach_filter`: `filter->prev = current->seccomp.filter;
    /// current->seccomp.filter = filter`. Tasks forked earlier (and the parent) keep their
    /// chains. Returns the work done: 1 node allocated.
    pub fn install(&mut self, hook: HookId, prog: Arc<Prog>) -> u64 {
        let prev = self.filter.take();
        self.filter = Some(Arc::new(ChainNode { prev, prog, hook }));
        1
    }

    /// Undoes the newest install, so the task points at the previous node again (model only).
    ///
    /// The kernel never removes a filter. Returns the removed node, `None` if the chain is empty.
    pub fn uninstall_newest(&mut self) -> Option<Arc<ChainNode>> {
        let newest = self.filter.take()?;
        self.filter = newest.prev.clone();
        Some(newest)
    }

    /// The newest node.
    pub fn head(&self) -> Option<&Arc<ChainNode>> {
        self.filter.as_ref()
    }

    /// Nodes in the chain (all hooks).
    pub fn len(&self) -> usize {
        let mut n = 0;
        let mut node = self.filter.as_deref();
        while let Some(x) = node {
            n += 1;
            node = x.prev.as_deref();
        }
        n
    }

    /// Whether the chain is empty.
    pub fn is_empty(&self) -> bool {
        self.filter.is_none()
    }

    /// Fires `ctx.hook` as this task and returns the OR of the verdicts.
    ///
    /// The walk covers the whole chain newest to oldest (as `seccomp_run_filters` does) and runs
    /// every node whose hook matches. Every node is a dependent pointer load.
    #[inline]
    pub fn run<T: Tally>(&self, ctx: &HookCtx, tally: &mut T) -> u32 {
        let mut ret = 0;
        let mut node = self.filter.as_deref();
        while let Some(n) = node {
            tally.count(Step::Node);
            if n.hook == ctx.hook {
                tally.count(Step::Prog);
                ret |= n.prog.run(ctx);
            }
            node = n.prev.as_deref();
        }
        ret
    }

    /// Adds this task's dispatch metadata to `fp`, shared nodes once.
    ///
    /// The components are its pointer ("task-pointers") and every node not yet counted
    /// ("chain-nodes", one `Arc<ChainNode>` allocation each); the walk stops at the first node
    /// already counted, since older nodes are then shared and counted too. Programs go to the
    /// footprint's program bytes.
    pub fn footprint(&self, fp: &mut Footprint) {
        fp.add("task-pointers", std::mem::size_of::<Self>() as u64);
        let mut node = self.filter.as_ref();
        while let Some(n) = node {
            if !fp.add_once("chain-nodes", Arc::as_ptr(n) as usize, arc_bytes::<ChainNode>()) {
                break;
            }
            fp.program(&n.prog);
            node = n.prev.as_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::Body;
    use crate::tally::HookAccounting;

    fn ids(t: &ChainTask) -> Vec<u64> {
        let mut v = Vec::new();
        let mut node = t.head().map(|n| n.as_ref());
        while let Some(n) = node {
            v.push(n.prog.id());
            node = n.prev.as_deref();
        }
        v
    }

    #[test]
    fn fork_shares_and_child_install_is_private() {
        let mut parent = ChainTask::new();
        let a = Prog::new(Body::Counter);
        let b = Prog::new(Body::Counter);
        parent.install(0, a.clone());
        parent.install(1, b.clone());
        let mut child = parent.fork();
        let shared = Arc::downgrade(parent.head().unwrap());
        assert_eq!(shared.strong_count(), 2, "parent and child hold the newest node");
        assert!(Arc::ptr_eq(parent.head().unwrap(), child.head().unwrap()));

        let c = Prog::new(Body::Counter);
        assert_eq!(child.install(0, c.clone()), 1);
        assert_eq!(ids(&parent), vec![b.id(), a.id()]);
        assert_eq!(ids(&child), vec![c.id(), b.id(), a.id()]);
        // The child's new node points at the shared one: still 2 strong refs (parent + child's node).
        assert_eq!(shared.strong_count(), 2);

        let ctx = HookCtx { hook: 0 };
        let acc = HookAccounting::of(|acc| parent.run(&ctx, acc));
        assert_eq!(acc, HookAccounting::new(2, 1, 0, 0));
        assert_eq!(c.run_count(), Some(0), "the parent never runs the child's program");
        let acc = HookAccounting::of(|acc| child.run(&ctx, acc));
        assert_eq!(acc, HookAccounting::new(3, 2, 0, 0));
        assert_eq!(c.run_count(), Some(1));
        assert_eq!(a.run_count(), Some(2));
        assert_eq!(b.run_count(), Some(0), "hook-1 program never runs on hook 0");

        drop(parent);
        assert_eq!(shared.strong_count(), 1, "only the child's chain holds it now");
        drop(child);
        assert_eq!(shared.strong_count(), 0, "released when the last task drops");
        assert_eq!(Arc::strong_count(&a), 1, "nodes released their programs");
    }

    #[test]
    fn long_chain_drops_without_recursion() {
        let prog = Prog::new(Body::Null);
        let mut t = ChainTask::new();
        for _ in 0..300_000 {
            t.install(1, prog.clone());
        }
        assert_eq!(t.len(), 300_000);
        drop(t);
        assert_eq!(Arc::strong_count(&prog), 1);
    }

    #[test]
    fn footprint_counts_shared_nodes_once() {
        let mut t = ChainTask::new();
        for h in 0..10 {
            t.install(h % 3, Prog::new(Body::Null));
        }
        let mut one = Footprint::new();
        t.footprint(&mut one);
        let forks: Vec<ChainTask> = (0..5).map(|_| t.fork()).collect();
        let mut six = Footprint::new();
        t.footprint(&mut six);
        for f in &forks {
            f.footprint(&mut six);
        }
        assert_eq!(one.metadata_bytes(), 8 + 10 * arc_bytes::<ChainNode>());
        assert_eq!(six.metadata_bytes() - one.metadata_bytes(), 5 * 8);
        assert_eq!(six.program_bytes(), one.program_bytes());
    }
}
