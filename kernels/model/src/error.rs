//! Errors of the task and global-filter models, so callers see which errno the kernel would give.
//!
//! The cgroup attach rules have their own `AttachError`.

use crate::htab::HtabError;
use crate::prog::HookId;

/// Error of a task-hook-array or global-filter operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The hook number is not below the structure's hook count.
    #[error("EINVAL: hook {hook} is out of range: this structure was built for {hooks} hooks (0..{hooks}); use a smaller hook or build with more hooks")]
    NoSuchHook {
        /// The hook asked for.
        hook: HookId,
        /// Hooks the structure has.
        hooks: u32,
    },
    /// Nothing to remove on that hook.
    #[error("ENOENT: hook {hook} has no program to remove; install one first")]
    NothingInstalled {
        /// The hook asked for.
        hook: HookId,
    },
    /// The cgroup-id map is full.
    #[error(transparent)]
    Map(#[from] HtabError),
}
