//! Removing a cgroup subtree: kill what runs in it, wait until it is empty, rmdir bottom-up.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hookbench_sys::errno::errno_of;
use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::limits::read_stat_key;
use super::{write_file, CgroupError, HINT_READ, HINT_RMDIR, HINT_ROOT, KILL_TIMEOUT, RUN_PREFIX};

/// What a tear-down did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TeardownStats {
    /// Cgroup directories removed, the subtree's root included.
    pub cgroups_removed: u64,
    /// Processes found in the subtree's `cgroup.procs` files and killed.
    pub processes_killed: u64,
    /// Wall-clock time of the whole tear-down (kill, wait, rmdir).
    pub duration: Duration,
}

/// Waits until the kernel has freed the cgroups removed below `cgroup`, so phases don't overlap.
///
/// Polls `<cgroup>/cgroup.stat` every millisecond for at most `timeout` until it reports
/// `nr_dying_descendants 0` (freed by `css_release_work_fn`, after an RCU grace period, in
/// kernel/cgroup/cgroup.c). Call it between timed phases, so that one phase's rmdirs do not
/// leave work in the kernel's workqueues that the next phase pays for. Returns the dying
/// descendants left (0 when settled). Errors: [`CgroupError::Sys`], [`CgroupError::Parse`].
pub fn settle_dying(cgroup: &Path, timeout: Duration) -> Result<u64, CgroupError> {
    let stat = cgroup.join("cgroup.stat");
    let deadline = Instant::now() + timeout;
    loop {
        let dying = read_stat_key(&stat, "nr_dying_descendants")?;
        if dying == 0 || Instant::now() >= deadline {
            return Ok(dying);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every cgroup directory of the subtree at `root`, `root` first, parents before children.
///
/// Iterative pre-order, so arbitrarily deep chains do not overflow the stack.
pub(super) fn walk(root: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            // Removed concurrently (e.g. by the run's own Drop): nothing below it.
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => continue,
            Err(e) => return Err(CgroupError::sys("open", &dir, &e, HINT_READ)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| CgroupError::sys("read", &dir, &e, HINT_READ))?;
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(entry.path());
            }
        }
        out.push(dir);
    }
    Ok(out)
}

/// The pids in `<cgroup>/cgroup.procs`; none when the cgroup is gone.
fn read_pids(cgroup: &Path) -> Result<Vec<i32>, CgroupError> {
    let path = cgroup.join("cgroup.procs");
    match fs::read_to_string(&path) {
        Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(CgroupError::sys("read", &path, &e, HINT_READ)),
    }
}

/// Whether any task is left in the subtree: the root's `cgroup.events`, else every `cgroup.procs`.
fn populated(root: &Path, cgroups: &[PathBuf]) -> Result<bool, CgroupError> {
    let events = root.join("cgroup.events");
    match fs::read_to_string(&events) {
        Ok(s) => Ok(s.lines().any(|l| l.trim() == "populated 1")),
        Err(_) => {
            for c in cgroups {
                if !read_pids(c)?.is_empty() {
                    return Ok(true);
                }
            }
            Ok(false)
        }
    }
}

/// Kills every process in the hookbench subtree at `root` and removes its cgroups, `root` too.
///
/// Cgroups go deepest first. Kill: writes `1` to `<root>/cgroup.kill` when the file exists (Linux
/// 5.14+, race-free against forks), else sends `SIGKILL` to every pid in every `cgroup.procs`,
/// repeatedly until empty; then waits up to [`KILL_TIMEOUT`] for `<root>/cgroup.events` to read
/// `populated 0`, and retries `rmdir` on `EBUSY` within the same bound. Refuses (with
/// [`CgroupError::Invalid`]) a `root` whose name does not start with [`RUN_PREFIX`], so it can
/// never remove anything hookbench did not create. Processes are not reaped: a parent still has
/// to `wait` for its killed children.
pub fn remove_subtree(root: &Path) -> Result<TeardownStats, CgroupError> {
    remove_subtree_with(root, true, None)
}

/// [`remove_subtree`], with the kill mechanism and the list of cgroups chosen by the caller.
///
/// `prefer_kill_file: false` forces the pre-5.14 `SIGKILL` loop; `known` is the subtree's
/// cgroups with every parent before its children (root first), when the caller knows them all,
/// else the directories are walked.
pub(super) fn remove_subtree_with(
    root: &Path,
    prefer_kill_file: bool,
    known: Option<Vec<PathBuf>>,
) -> Result<TeardownStats, CgroupError> {
    let start = Instant::now();
    let named = root
        .file_name()
        .map(|n| n.as_bytes().starts_with(RUN_PREFIX.as_bytes()))
        .unwrap_or(false);
    if !named {
        return Err(CgroupError::Invalid {
            what: format!("subtree {}", root.display()),
            why: "hookbench only removes cgroups named hookbench-*; remove others by hand",
        });
    }
    if !root.exists() {
        return Ok(TeardownStats {
            duration: start.elapsed(),
            ..TeardownStats::default()
        });
    }
    let cgroups = match known {
        Some(list) => list,
        None => walk(root)?,
    };
    let deadline = start + KILL_TIMEOUT;

    // Kill.
    let mut seen: HashSet<i32> = HashSet::new();
    if populated(root, &cgroups)? {
        for c in &cgroups {
            seen.extend(read_pids(c)?);
        }
    }
    let kill_file = root.join("cgroup.kill");
    let use_kill_file =
        prefer_kill_file && !seen.is_empty() && kill_file.exists() && write_file(&kill_file, b"1", HINT_ROOT).is_ok();
    let mut sleep = Duration::from_micros(200);
    loop {
        // One read of the root's cgroup.events first: an empty tree needs no per-cgroup read.
        if !populated(root, &cgroups)? {
            break;
        }
        if !use_kill_file {
            for c in &cgroups {
                for pid in read_pids(c)? {
                    seen.insert(pid);
                    match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(errno) => {
                            return Err(CgroupError::Sys {
                                op: "kill",
                                path: c.join("cgroup.procs"),
                                errno,
                                hint: "run as root to kill the run's processes",
                            })
                        }
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            let mut remaining = 0;
            for c in &cgroups {
                remaining += read_pids(c)?.len();
            }
            return Err(CgroupError::StillPopulated {
                path: root.to_path_buf(),
                waited: start.elapsed(),
                remaining,
            });
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(20));
    }

    // Remove bottom-up: the reverse of a pre-order has every descendant before its ancestor.
    let mut removed = 0u64;
    for c in cgroups.iter().rev() {
        loop {
            match fs::remove_dir(c) {
                Ok(()) => {
                    removed += 1;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if errno_of(&e) == Errno::EBUSY && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(CgroupError::sys("rmdir", c, &e, HINT_RMDIR)),
            }
        }
    }
    Ok(TeardownStats {
        cgroups_removed: removed,
        processes_killed: seen.len() as u64,
        duration: start.elapsed(),
    })
}
