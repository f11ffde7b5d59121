//! Real cgroup v2 trees for the `kernel` backend: each run builds and removes its own subtree.
//!
//! Every run owns exactly one directory directly under the cgroup2 mount,
//! `<mount>/hookbench-<pid>-<nanos>` ([`RunTree`]); nothing outside it is ever written, and the
//! root cgroup is only touched to `mkdir`/`rmdir` that directory. Tear-down kills every process in
//! the subtree (`cgroup.kill` on 5.14+, else `SIGKILL` to each pid of every `cgroup.procs`), waits
//! for `cgroup.events` to say `populated 0`, then `rmdir`s bottom-up. A tree known to hold no
//! task ([`RunTree::teardown_unpopulated`]) is removed by the `rmdir` loop alone, as fast as the
//! kernel's floor. Subtrees left behind by crashed runs are collected by [`cleanup_stale`], which
//! only touches `hookbench-<pid>-*` directories whose `<pid>` is no longer alive.
//!
//! Workers of a run may make trees of their own inside the run's subtree
//! ([`RunTree::create_under`]): `<run>/.../hookbench-<worker pid>-<nanos>`, removed with the run.
//!
//! The files: `tree` (the run tree: plan, create, build, move, tear down), `teardown` (killing
//! and removing a subtree), `limits` (`cgroup.max.*` against what a build needs), `stale`
//! (subtrees of dead runs), `floor` (the kernel's bare mkdir/rmdir loop). The mount table is
//! parsed by `hookbench_sys::mountinfo`, re-exported here.
//!
//! Kernel interfaces used: `/proc/self/mountinfo`, `mkdir(2)`/`rmdir(2)`/`unlinkat(2)` on
//! cgroupfs, `cgroup.procs`, `cgroup.kill`, `cgroup.events`, `cgroup.stat` (`nr_descendants`,
//! `nr_dying_descendants`), `cgroup.max.depth`, `cgroup.max.descendants`, `kill(2)`,
//! `/proc/<pid>`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hookbench_sys::errno::errno_of;
use hookbench_sys::mountinfo::SELF_MOUNTINFO;
use nix::errno::Errno;

mod floor;
mod limits;
mod stale;
mod teardown;
#[cfg(test)]
mod tests;
mod tree;

pub use floor::mkdir_floor;
pub use hookbench_sys::mountinfo::{find_cgroup2_mount, parse_mountinfo, unescape_octal, MountEntry};
pub use stale::{cleanup_stale, cleanup_stale_scratch, stale_run_dirs};
pub use teardown::{remove_subtree, settle_dying, TeardownStats};
pub use tree::{in_run_dir, RunTree, Shape};

/// Prefix of every directory hookbench creates directly under the cgroup2 mount.
pub const RUN_PREFIX: &str = "hookbench-";

/// How long tear-down waits for a killed subtree to empty and for its rmdirs to succeed: 5 s.
///
/// Killed processes must leave the subtree (`cgroup.events` reporting `populated 0`) and `rmdir`
/// stop returning `EBUSY` within it.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest cgroup path (bytes) [`RunTree::build`] will create, to stay below `PATH_MAX`.
///
/// Paths are passed to `mkdir(2)` whole, and the kernel refuses paths of 4096 bytes or more.
pub const MAX_PATH_BYTES: usize = 4000;

/// Why a cgroup operation failed. Every variant names the path involved and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CgroupError {
    /// No `cgroup2` filesystem in the mount table.
    #[error(
        "no cgroup v2 mount found in {mountinfo}: mount one with `mount -t cgroup2 none /sys/fs/cgroup/unified` \
         (or boot with systemd.unified_cgroup_hierarchy=1)"
    )]
    NoMount {
        /// The mount table that was read.
        mountinfo: PathBuf,
    },
    /// A system call on a path failed.
    #[error("{op} {path} failed: {errno}; {hint}")]
    Sys {
        /// The operation (`mkdir`, `rmdir`, `read`, `write`, `open`, `kill`).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The errno the kernel returned.
        errno: Errno,
        /// What to do about it.
        hint: &'static str,
    },
    /// The tree asked for exceeds a hierarchy limit of an ancestor cgroup.
    #[error(
        "{limit} of {ancestor} is {max}, but the tree needs {asked}: ask for fewer or shallower cgroups, or raise it \
         with `echo max > {ancestor}/{limit}` (only if that cgroup is yours)"
    )]
    Limit {
        /// `cgroup.max.depth` or `cgroup.max.descendants`.
        limit: &'static str,
        /// The ancestor cgroup whose limit is exceeded.
        ancestor: PathBuf,
        /// The limit's value.
        max: u64,
        /// What the tree would need of the limit: a depth or a number of descendants.
        ///
        /// The depth below `ancestor` (for `cgroup.max.depth`) or the number of descendants of
        /// `ancestor` (for `cgroup.max.descendants`).
        asked: u64,
    },
    /// `mkdir` was refused with `EAGAIN` or `ENOSPC` and no readable limit explains it.
    #[error(
        "mkdir {path} failed: {errno} after {created} of {asked} cgroups: the kernel refused more cgroups \
         (cgroup.max.depth / cgroup.max.descendants of an ancestor outside the run, or out of cgroup ids or \
         memory); ask for fewer cgroups or free some"
    )]
    Refused {
        /// The cgroup that could not be created.
        path: PathBuf,
        /// `EAGAIN` or `ENOSPC`.
        errno: Errno,
        /// Cgroups of this build created before the failure.
        created: u32,
        /// Cgroups this build asked for.
        asked: u32,
    },
    /// A path outside the run's own subtree was given.
    #[error(
        "{path} is not inside the run's cgroup subtree {root}: hookbench only touches its own cgroups; pass a \
         path returned by RunTree::build or RunTree::root"
    )]
    OutsideRun {
        /// The path refused.
        path: PathBuf,
        /// The run's root.
        root: PathBuf,
    },
    /// A shape or count that cannot be built.
    #[error("{what} is invalid: {why}")]
    Invalid {
        /// The parameter and its value.
        what: String,
        /// Why, and what to use instead.
        why: &'static str,
    },
    /// A cgroup file held something unexpected.
    #[error("{path} holds {content:?}, which is not what the kernel writes there; is {path} on a cgroup2 mount?")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held (trimmed).
        content: String,
    },
    /// Killed processes did not leave the subtree in time.
    #[error(
        "{remaining} process(es) still in {path} after {waited:?} of SIGKILL: they may be in uninterruptible \
         sleep (D state, see `cat {path}/cgroup.procs` and /proc/<pid>/stack); retry later with cleanup_stale"
    )]
    StillPopulated {
        /// The subtree's root.
        path: PathBuf,
        /// How long tear-down waited.
        waited: Duration,
        /// Processes still listed in the subtree's `cgroup.procs` files.
        remaining: usize,
    },
}

impl CgroupError {
    /// A [`CgroupError::Sys`] of `op` on `path` from an I/O error.
    fn sys(op: &'static str, path: &Path, err: &io::Error, hint: &'static str) -> Self {
        CgroupError::Sys {
            op,
            path: path.to_path_buf(),
            errno: errno_of(err),
            hint,
        }
    }
}

const HINT_ROOT: &str = "run as root (or with CAP_SYS_ADMIN and write access to the cgroup2 mount)";
const HINT_READ: &str = "check that the path is a cgroup on a cgroup2 mount and that you may read it";
const HINT_PROCS: &str = "check that the pid is alive, that you are root, and that the cgroup has no controllers \
                          enabled in cgroup.subtree_control (no-internal-process rule)";
const HINT_RMDIR: &str = "the cgroup may still hold processes or children; see its cgroup.procs and retry \
                          cleanup_stale";

/// A cgroup v2 (unified hierarchy) mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup2 {
    mount: PathBuf,
}

impl Cgroup2 {
    /// The cgroup2 mount of this process's mount namespace, from `/proc/self/mountinfo`.
    ///
    /// Works on unified and hybrid hosts alike (e.g. `/sys/fs/cgroup/unified`). Errors:
    /// [`CgroupError::Sys`] (mount table unreadable), [`CgroupError::NoMount`].
    pub fn detect() -> Result<Cgroup2, CgroupError> {
        let mi = Path::new(SELF_MOUNTINFO);
        let text = fs::read_to_string(mi).map_err(|e| CgroupError::sys("read", mi, &e, "is /proc mounted?"))?;
        find_cgroup2_mount(&text)
            .map(|mount| Cgroup2 { mount })
            .ok_or_else(|| CgroupError::NoMount {
                mountinfo: mi.to_path_buf(),
            })
    }

    /// Uses `mount` as the cgroup2 mount point unchecked (e.g. one found in another mount table).
    pub fn at(mount: impl Into<PathBuf>) -> Cgroup2 {
        Cgroup2 { mount: mount.into() }
    }

    /// The mount point (the root cgroup's directory).
    pub fn mount(&self) -> &Path {
        &self.mount
    }
}

/// The error of a failed `mkdir` of `path`: refused (out of cgroups), not permitted, or other.
fn mkdir_error(path: &Path, e: &io::Error, created: u32, asked: u32) -> CgroupError {
    let errno = errno_of(e);
    match errno {
        Errno::EAGAIN | Errno::ENOSPC => CgroupError::Refused {
            path: path.to_path_buf(),
            errno,
            created,
            asked,
        },
        Errno::EACCES | Errno::EPERM | Errno::EROFS => CgroupError::sys("mkdir", path, e, HINT_ROOT),
        Errno::ENAMETOOLONG => CgroupError::sys("mkdir", path, e, "the path is too long; build a shallower tree"),
        _ => CgroupError::sys("mkdir", path, e, "check that the parent is a cgroup on a cgroup2 mount"),
    }
}

/// A cgroup file's text.
fn read_file(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|e| CgroupError::sys("read", path, &e, HINT_READ))
}

/// Writes `data` to a cgroup file in one `write(2)`, as the kernel's interface files want.
fn write_file(path: &Path, data: &[u8], hint: &'static str) -> Result<(), CgroupError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| CgroupError::sys("open", path, &e, hint))?;
    f.write_all(data).map_err(|e| CgroupError::sys("write", path, &e, hint))
}

/// `<parent>/hookbench-<pid>-<tag><nanos>`: a directory name no other run or call can have.
fn fresh_dir(parent: &Path, tag: &str) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    parent.join(format!("{RUN_PREFIX}{}-{tag}{nanos}", std::process::id()))
}

/// For tests that need root and a cgroup2 mount: the mount, or `None` after saying why not.
///
/// Prints `SKIPPED <test>: <needs_root>` (not root) or `SKIPPED <test>: <why>` (no mount) on
/// stderr.
#[cfg(test)]
pub(crate) fn cgroup2_or_skip(test: &str, needs_root: &str) -> Option<Cgroup2> {
    if !hookbench_sys::testing::root_or_skip(test, needs_root) {
        return None;
    }
    match Cgroup2::detect() {
        Ok(cg) => Some(cg),
        Err(e) => {
            eprintln!("SKIPPED {test}: {e}");
            None
        }
    }
}
