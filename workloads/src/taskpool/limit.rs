//! Names the limit behind an `EAGAIN` from `clone`, as copy_process() checks them.
//!
//! A cgroup's `pids.max` (v1 or v2), `kernel.pid_max`, `kernel.threads-max` or `RLIMIT_NPROC`.

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::TaskPoolError;
use crate::cgroupfs::parse_mountinfo;

/// `pids.max` and `pids.current` of one cgroup, read when a clone failed with `EAGAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PidsReading {
    /// The cgroup directory.
    pub dir: PathBuf,
    /// `"v1"` (the pids controller's own hierarchy) or `"v2"` (the unified one).
    pub hierarchy: &'static str,
    /// `pids.max`; `None` for `max` (no limit).
    pub max: Option<u64>,
    /// `pids.current`: tasks charged to the cgroup and its descendants.
    pub current: u64,
}

/// Every cgroup whose `pids.max` can refuse a new task of this process placed in `target`.
///
/// In cgroup v2, `target` and this process's own cgroup (where a plain fork is born) with their
/// ancestors up to the mount; in cgroup v1, this process's cgroup of the `pids` hierarchy (a child
/// inherits it) with its ancestors. From `mountinfo` (/proc/self/mountinfo) and `proc_cgroup`
/// (/proc/self/cgroup, lines `ID:CONTROLLERS:PATH`, cgroups(7)). Pure.
pub fn pids_cgroups(mountinfo: &str, proc_cgroup: &str, target: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
    controller_cgroups(mountinfo, proc_cgroup, target, "pids")
}

/// [`pids_cgroups`] for any `controller` (`pids`, `memory`): whose limit can refuse this process.
///
/// In cgroup v2 the chains of `target` and of this process's own cgroup; in v1 the chain of its
/// cgroup in the hierarchy that has `controller`. Pure.
pub fn controller_cgroups(
    mountinfo: &str,
    proc_cgroup: &str,
    target: Option<&Path>,
    controller: &str,
) -> Vec<(PathBuf, &'static str)> {
    let mounts: Vec<_> = parse_mountinfo(mountinfo).collect();
    let mut out: Vec<(PathBuf, &'static str)> = Vec::new();
    let mut add_chain = |leaf: PathBuf, mount: &Path, hierarchy: &'static str| {
        let mut dir = Some(leaf.as_path());
        while let Some(d) = dir {
            if !d.starts_with(mount) {
                break;
            }
            if !out.iter().any(|(p, _)| p == d) {
                out.push((d.to_path_buf(), hierarchy));
            }
            dir = d.parent();
        }
    };
    let v2_mount = crate::cgroupfs::find_cgroup2_mount(mountinfo);
    if let (Some(t), Some(m)) = (target, &v2_mount) {
        add_chain(t.to_path_buf(), m, "v2");
    }
    for line in proc_cgroup.lines() {
        let mut f = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let rel = Path::new(path);
        if controllers.is_empty() {
            if let Some(m) = &v2_mount {
                add_chain(join_rel(m, Path::new("/"), rel), m, "v2");
            }
        } else if controllers.split(',').any(|c| c == controller) {
            // The controller hierarchy's mount whose root contains this cgroup (bind mounts of a
            // subtree have another root).
            let mount = mounts.iter().find(|m| {
                m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == controller) && rel.starts_with(&m.root)
            });
            if let Some(m) = mount {
                add_chain(join_rel(&m.mount_point, &m.root, rel), &m.mount_point, "v1");
            }
        }
    }
    out
}

/// `mount_point` joined with `path` made relative to the mount's `root`.
fn join_rel(mount_point: &Path, root: &Path, path: &Path) -> PathBuf {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    if rel.as_os_str().is_empty() {
        mount_point.to_path_buf()
    } else {
        mount_point.join(rel)
    }
}

/// `pids.max` and `pids.current` of every cgroup that can refuse a task placed in `target`.
///
/// The cgroups are [`pids_cgroups`]'s, leaf first; unreadable ones are left out.
pub fn read_pids(target: Option<&Path>) -> Vec<PidsReading> {
    let read = |p: &Path| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let mountinfo = read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
    let proc_cgroup = read(Path::new("/proc/self/cgroup")).unwrap_or_default();
    pids_cgroups(&mountinfo, &proc_cgroup, target)
        .into_iter()
        .filter_map(|(dir, hierarchy)| {
            let max = read(&dir.join("pids.max"))?;
            let current = read(&dir.join("pids.current"))?.parse().ok()?;
            let max = if max == "max" { None } else { Some(max.parse().ok()?) };
            Some(PidsReading {
                dir,
                hierarchy,
                max,
                current,
            })
        })
        .collect()
}

/// `kernel.pid_max`, `kernel.threads-max` and the threads alive now (`None` where unreadable).
///
/// The threads alive are the total of /proc/loadavg's 4th field ("running/total" scheduling
/// entities).
pub fn kernel_task_limits() -> (Option<u64>, Option<u64>, Option<u64>) {
    let read = |p: &str| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let num = |p: &str| read(p).and_then(|s| s.parse::<u64>().ok());
    let alive = read("/proc/loadavg").and_then(|s| {
        s.split_whitespace()
            .nth(3)
            .and_then(|f| f.split('/').nth(1))
            .and_then(|t| t.parse::<u64>().ok())
    });
    (
        num("/proc/sys/kernel/pid_max"),
        num("/proc/sys/kernel/threads-max"),
        alive,
    )
}

/// Names the limit behind an `EAGAIN` from `clone` of a task meant for `cgroup`.
///
/// It reads the current values before the pool's tasks are killed, so the counts are those at
/// the failure.
fn explain_eagain(cgroup: &Path) -> String {
    let pids = read_pids(Some(cgroup));
    let (pid_max, threads_max, alive) = kernel_task_limits();
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) with a valid out pointer.
    let nproc = if unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut rl) } == 0 && rl.rlim_cur != libc::RLIM_INFINITY {
        Some(rl.rlim_cur)
    } else {
        None
    };
    // SAFETY: getuid(2) takes no arguments.
    let uid = unsafe { libc::getuid() };
    name_limit(&pids, pid_max, threads_max, alive, nproc, uid)
}

/// The limit a failed clone reached, in words, from the readings copy_process() checks.
///
/// Given the `pids` readings of the task's cgroups (v1 and v2), `kernel.pid_max`,
/// `kernel.threads-max`, the threads alive, `RLIMIT_NPROC` (`None` = unknown or unlimited) and the
/// real uid. Follows copy_process() in kernel/fork.c: the pids controller's charge
/// (`pids_can_fork`), `nr_threads >= max_threads`, `alloc_pid` (pid space), and RLIMIT_NPROC,
/// which never applies to uid 0 (`INIT_USER`), nor to a task with CAP_SYS_RESOURCE or
/// CAP_SYS_ADMIN. Pure.
pub fn name_limit(
    pids: &[PidsReading],
    pid_max: Option<u64>,
    threads_max: Option<u64>,
    alive: Option<u64>,
    nproc: Option<u64>,
    uid: u32,
) -> String {
    const RESERVED_PIDS: u64 = 300; // pids below 300 are not reused after wrap-around
    let show = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
    // The deepest cgroup at its limit first (readings come leaf first).
    if let Some(r) = pids.iter().find(|r| r.max.is_some_and(|m| r.current >= m)) {
        let max = r.max.unwrap_or(0);
        return format!(
            "pids.max of {} (cgroup {} pids controller) is {max} and pids.current is {} (raise it with `echo max > \
             {}/pids.max` if that cgroup is yours)",
            r.dir.display(),
            r.hierarchy,
            r.current,
            r.dir.display()
        );
    }
    if let (Some(max), Some(n)) = (pid_max, alive) {
        if n + RESERVED_PIDS + 64 >= max {
            return format!(
                "kernel.pid_max is {max} and {n} threads are alive (raise it with `sysctl kernel.pid_max=4194304`)"
            );
        }
    }
    if let (Some(max), Some(n)) = (threads_max, alive) {
        if n + 64 >= max {
            return format!(
                "kernel.threads-max is {max} and {n} threads are alive (raise it with `sysctl kernel.threads-max=...`)"
            );
        }
    }
    let limits: Vec<String> = pids
        .iter()
        .filter_map(|r| r.max.map(|m| format!("{} {}/{m}", r.dir.display(), r.current)))
        .collect();
    let pids_text = if limits.is_empty() {
        "no pids.max is set on the task's cgroups".to_string()
    } else {
        format!("no pids.max is reached (pids.current/pids.max: {})", limits.join(", "))
    };
    match nproc {
        Some(lim) if uid != 0 => format!(
            "RLIMIT_NPROC (`ulimit -u`) is {lim} for uid {uid} and {pids_text}: raise the limit, or run as root"
        ),
        _ => format!(
            "{pids_text}, kernel.pid_max is {}, kernel.threads-max is {}, {} threads are alive{}: memory, or a limit \
             this process cannot read (a pids.max of a cgroup namespace's ancestor), is the cause",
            show(pid_max),
            show(threads_max),
            show(alive),
            if uid == 0 {
                " (RLIMIT_NPROC does not apply to uid 0)"
            } else {
                ", RLIMIT_NPROC is unlimited"
            }
        ),
    }
}

/// The error of a failed clone of task `started` of `asked` meant for `cgroup`.
///
/// The limit reached on `EAGAIN`, else the errno with what to do.
pub(super) fn clone_error(errno: Errno, asked: u32, started: u32, cgroup: &Path) -> TaskPoolError {
    if errno == Errno::EAGAIN {
        return TaskPoolError::Limit {
            asked,
            started,
            cgroup: cgroup.to_path_buf(),
            limit: explain_eagain(cgroup),
        };
    }
    let hint = match errno {
        Errno::ENOMEM => "out of memory for task structures: ask for fewer tasks",
        Errno::EBUSY | Errno::EOPNOTSUPP => {
            "the cgroup has controllers enabled in cgroup.subtree_control (no-internal-process rule) or is \
             threaded: use a leaf cgroup"
        }
        Errno::ENODEV => "the cgroup is being removed: use a live cgroup of the run",
        Errno::EPERM | Errno::EACCES => "run as root",
        _ => "check that the cgroup is a live cgroup v2 directory of the run",
    };
    TaskPoolError::Clone {
        asked,
        started,
        cgroup: cgroup.to_path_buf(),
        errno,
        hint,
    }
}
