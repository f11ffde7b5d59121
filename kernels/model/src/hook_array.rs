//! Models task-hook-array (`Mechanism::HookIndex`): per task, one program list per hook.
//!
//! The table is indexed by hook and shared across fork, like later Landlock revisions'
//! `programs[_LANDLOCK_HOOK_LAST]` in `struct landlock_prog_set`.

use crate::error::ModelError;
use crate::footprint::{arc_bytes, arc_slice_bytes, boxed_slice_bytes, Footprint};
use crate::prog::{HookCtx, HookId, Prog};
use crate::tally::{run_list, Tally};
use std::sync::Arc;

/// One hook's programs, oldest first: a flat, immutable, refcounted array (copied on install).
pub type ProgList = Arc<[Arc<Prog>]>;

/// The per-task table (`struct landlock_prog_set`): one [`ProgList`] per hook.
///
/// It is refcounted and shared by every task forked after it was built.
#[derive(Debug)]
pub struct HookTable {
    lists: Box<[ProgList]>,
}

/// A task's pointer to its [`HookTable`].
#[derive(Debug, Clone)]
pub struct HookArrayTask {
    table: Arc<HookTable>,
}

impl HookArrayTask {
    /// A task with `hooks` empty lists (all pointing at one empty list allocated here).
    pub fn new(hooks: u32) -> HookArrayTask {
        let empty: ProgList = Arc::from(Vec::<Arc<Prog>>::new());
        let lists = (0..hooks).map(|_| empty.clone()).collect::<Vec<_>>().into_boxed_slice();
        HookArrayTask {
            table: Arc::new(HookTable { lists }),
        }
    }

    /// A task whose table holds `lists[h]` on hook `h` (oldest first), built in one step.
    ///
    /// The result is the final state of installing them one by one; empty lists share one
    /// allocation.
    pub fn with_lists(lists: Vec<Vec<Arc<Prog>>>) -> HookArrayTask {
        let empty: ProgList = Arc::from(Vec::<Arc<Prog>>::new());
        let lists = lists
            .into_iter()
            .map(|l| if l.is_empty() { empty.clone() } else { Arc::from(l) })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        HookArrayTask {
            table: Arc::new(HookTable { lists }),
        }
    }

    /// `fork`: the child shares the table (one refcount).
    pub fn fork(&self) -> HookArrayTask {
        self.clone()
    }

    /// Hooks in the table.
    pub fn hooks(&self) -> u32 {
        self.table.lists.len() as u32
    }

    /// The programs on `hook`, oldest first (empty for an unknown hook).
    pub fn list(&self, hook: HookId) -> &[Arc<Prog>] {
        self.table.lists.get(hook as usize).map_or(&[], |l| &l[..])
    }

    /// The shared table (for sharing checks).
    pub fn table(&self) -> &Arc<HookTable> {
        &self.table
    }

    fn replace_list(&mut self, hook: HookId, list: ProgList) -> u64 {
        let mut lists = self.table.lists.to_vec();
        let copied = lists.len() as u64;
        lists[hook as usize] = list;
        self.table = Arc::new(HookTable {
            lists: lists.into_boxed_slice(),
        });
        copied
    }

    fn check_hook(&self, hook: HookId) -> Result<(), ModelError> {
        if hook >= self.hooks() {
            return Err(ModelError::NoSuchHook {
                hook,
                hooks: self.hooks(),
            });
        }
        Ok(())
    }

    /// Installs `prog` on `hook` for this task only, copying the table (copy-on-install).
    ///
    /// The new table (H list pointers copied) holds a new `hook` list (old entries plus `prog`).
    /// Returns the entries copied (H + new list length). Errors with [`ModelError::NoSuchHook`].
    pub fn install(&mut self, hook: HookId, prog: Arc<Prog>) -> Result<u64, ModelError> {
        self.check_hook(hook)?;
        let old = self.list(hook);
        let mut v = Vec::with_capacity(old.len() + 1);
        v.extend(old.iter().cloned());
        v.push(prog);
        let len = v.len() as u64;
        Ok(self.replace_list(hook, Arc::from(v)) + len)
    }

    /// Undoes the newest install on `hook` by copy, as the model's inverse of [`Self::install`].
    ///
    /// Returns the entries copied (H + new list length). Errors with [`ModelError::NoSuchHook`]
    /// or [`ModelError::NothingInstalled`].
    pub fn uninstall_newest(&mut self, hook: HookId) -> Result<u64, ModelError> {
        self.check_hook(hook)?;
        let old = self.list(hook);
        if old.is_empty() {
            return Err(ModelError::NothingInstalled { hook });
        }
        let v: Vec<Arc<Prog>> = old[..old.len() - 1].to_vec();
        let len = v.len() as u64;
        Ok(self.replace_list(hook, Arc::from(v)) + len)
    }

    /// Fires `ctx.hook` as this task: runs the hook's list and returns the OR of the verdicts.
    ///
    /// Loads: task -> table -> lists[hook] -> items.
    #[inline]
    pub fn run<T: Tally>(&self, ctx: &HookCtx, tally: &mut T) -> u32 {
        self.table
            .lists
            .get(ctx.hook as usize)
            .map_or(0, |list| run_list(list.iter(), ctx, tally))
    }

    /// Adds this task's metadata to `fp`, shared tables and lists once.
    ///
    /// The components are its pointer ("task-pointers"), its table ("hook-tables": the `Arc`
    /// allocation plus H list pointers) and each list ("hook-lists").
    pub fn footprint(&self, fp: &mut Footprint) {
        fp.add("task-pointers", std::mem::size_of::<Self>() as u64);
        let t = &self.table;
        let table_bytes = arc_bytes::<HookTable>() + boxed_slice_bytes(&t.lists[..]);
        if !fp.add_once("hook-tables", Arc::as_ptr(t) as usize, table_bytes) {
            return;
        }
        for list in t.lists.iter() {
            if fp.add_once(
                "hook-lists",
                list.as_ptr() as usize,
                arc_slice_bytes::<Arc<Prog>>(list.len()),
            ) {
                for p in list.iter() {
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
    fn install_copies_and_fork_shares() {
        let mut parent = HookArrayTask::new(4);
        let a = Prog::new(Body::Counter);
        assert_eq!(parent.install(0, a.clone()).unwrap(), 4 + 1);
        assert_eq!(parent.install(2, Prog::new(Body::Counter)).unwrap(), 4 + 1);
        let mut child = parent.fork();
        assert!(Arc::ptr_eq(parent.table(), child.table()));
        let b = Prog::new(Body::Counter);
        assert_eq!(child.install(0, b.clone()).unwrap(), 4 + 2);
        assert!(!Arc::ptr_eq(parent.table(), child.table()));
        assert_eq!(parent.list(0).len(), 1);
        assert_eq!(
            child.list(0).iter().map(|p| p.id()).collect::<Vec<_>>(),
            vec![a.id(), b.id()]
        );

        let ctx = HookCtx { hook: 0 };
        let acc = HookAccounting::of(|acc| child.run(&ctx, acc));
        assert_eq!(acc, HookAccounting::new(2, 2, 0, 0));
        parent.run(&ctx, &mut crate::tally::NoTally);
        assert_eq!((a.run_count(), b.run_count()), (Some(2), Some(1)));

        assert_eq!(child.uninstall_newest(0).unwrap(), 4 + 1);
        assert_eq!(child.list(0).len(), 1);
        assert_eq!(child.install(9, b), Err(ModelError::NoSuchHook { hook: 9, hooks: 4 }));
        assert_eq!(child.uninstall_newest(1), Err(ModelError::NothingInstalled { hook: 1 }));
    }
}
