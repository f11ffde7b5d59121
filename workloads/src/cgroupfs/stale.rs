//! Subtrees and scratch directories of runs that died: found by their pid, removed.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::teardown::remove_subtree;
use super::{Cgroup2, CgroupError, HINT_READ, RUN_PREFIX};

/// Whether a process `pid` exists (`/proc/<pid>`), in this PID namespace.
pub(super) fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// The `<pid>` of a run directory name `hookbench-<pid>-<rest>` (`rest` non-empty).
pub(super) fn run_dir_pid(name: &[u8]) -> Option<u32> {
    let rest = name.strip_prefix(RUN_PREFIX.as_bytes())?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let (pid, tail) = (&rest[..dash], &rest[dash + 1..]);
    if pid.is_empty() || tail.is_empty() || !pid.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(pid).ok()?.parse().ok()
}

/// Removes the run subtrees that dead runs left under the cgroup2 mount; the run roots removed.
///
/// Those are the `hookbench-<pid>-*` directories directly under the mount whose `<pid>` is not
/// a live process (no `/proc/<pid>`); their processes are killed and their cgroups removed
/// bottom-up ([`remove_subtree`]). Directories of live runs (this
/// one included) and anything not named `hookbench-<digits>-…` are never touched. A stale
/// directory whose pid has been reused by an unrelated process is left alone (conservative).
/// Caveat: in a PID namespace, runs of other namespaces look dead. Errors: the first failure
/// (reading the mount, or tearing down one directory; earlier removals are done).
pub fn cleanup_stale(cg: &Cgroup2) -> Result<Vec<PathBuf>, CgroupError> {
    let stale = stale_run_dirs(&cg.mount).map_err(|e| CgroupError::sys("read", &cg.mount, &e, HINT_READ))?;
    let mut removed = Vec::new();
    for dir in stale {
        remove_subtree(&dir)?;
        removed.push(dir);
    }
    Ok(removed)
}

/// The `hookbench-<pid>-*` directories under `parent` that runs which died left, sorted.
///
/// Those whose `<pid>` is neither this process nor a live one: run subtrees under the cgroup2
/// mount, scratch directories under the temporary directory. Errors: reading `parent`.
pub fn stale_run_dirs(parent: &Path) -> io::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for entry in fs::read_dir(parent)? {
        let entry = entry?;
        if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        if let Some(pid) = run_dir_pid(entry.file_name().as_bytes()) {
            if pid != std::process::id() && !pid_alive(pid) {
                stale.push(entry.path());
            }
        }
    }
    stale.sort();
    Ok(stale)
}

/// Removes the scratch directories under `tmp` of runs that are no longer alive; what it removed.
///
/// Scratch directories are `hookbench-<pid>-*` (e.g. the kernel backend's Landlock file trees).
/// Errors: reading `tmp` or removing one directory (earlier removals are done).
pub fn cleanup_stale_scratch(tmp: &Path) -> io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for dir in stale_run_dirs(tmp)? {
        fs::remove_dir_all(&dir)?;
        removed.push(dir);
    }
    Ok(removed)
}
