//! Task pools for the `kernel` backend: many idle processes placed in a run's cgroups, with
//! their set-up and tear-down timed, and the kernel's floor for the same work.
//!
//! Pools and floors are made by the spawner (`crate::spawner`, `hookbench worker tasks`), a
//! small exec'd process that lives in a leaf cgroup of the run's subtree, never by the harness:
//! fork copies the parent's page tables, so the creator's size is part of every figure.
//!
//! A pool's tasks are minimal children of the spawner: each is created by a raw `clone3(2)`
//! (fork semantics, `exit_signal = SIGCHLD`, no new stack) and runs [`IDLE_COMM`]'s few raw
//! syscalls: `prctl(PR_SET_PDEATHSIG, SIGKILL)` (it dies with its creator), `getppid()` (it
//! exits at once if the creator died before that), `prctl(PR_SET_NAME, "hookbench-idle")`, then
//! `pause(2)` until it is killed. A child that stays a plain forked copy may only make
//! async-signal-safe calls: it never allocates, never touches a Rust std lock and never returns
//! into the caller's code.
//!
//! Placement: each task is put directly into its cgroup at creation with
//! `clone3(CLONE_INTO_CGROUP)` (Linux 5.7+), passing an `O_RDONLY` fd of the cgroup directory in
//! `clone_args.cgroup`; the task never runs anywhere else and no migration happens. When the
//! kernel refuses that (`ENOSYS`: no `clone3`, before 5.3; `E2BIG`/`EINVAL`: no
//! `CLONE_INTO_CGROUP`, 5.3 to 5.6), the pool falls back to fork + writing the new pid to
//! `<cgroup>/cgroup.procs` (a migration, which takes `cgroup_threadgroup_rwsem` for writing),
//! and records which [`Placement`] it used.
//!
//! Tear-down sends `SIGKILL` to every pid with `kill(2)` and reaps every one with `waitpid(2)`
//! (only the pool's own pids, never `waitpid(-1)`, so other children of the creator are left to
//! their owners). Dropping a pool does the same, best effort: a pool never leaves a live child
//! or a zombie behind. If the creator dies, the parent-death signal kills its tasks; they are
//! in the run's cgroup subtree anyway, where `cgroupfs::cleanup_stale` (`cgroup.kill`, 5.14+,
//! else `SIGKILL` per pid of `cgroup.procs`) finds them.
//!
//! Kernel interfaces used: `clone3(2)` with `CLONE_INTO_CGROUP`, `fork(2)` (where `clone3` is
//! missing), `prctl(2)` (`PR_SET_PDEATHSIG`, `PR_SET_NAME`), `getppid(2)`, `cgroup.procs`,
//! `pause(2)`, `kill(2)`, `waitpid(2)`; to name the limit behind an `EAGAIN`: `pids.max` and
//! `pids.current` of the task's cgroups (v2, and v1 from `/proc/self/cgroup` and
//! `/proc/self/mountinfo`), `/proc/sys/kernel/pid_max`, `/proc/sys/kernel/threads-max`,
//! `/proc/loadavg`, `getrlimit(RLIMIT_NPROC)`.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::cgroupfs::{parse_mountinfo, RUN_PREFIX};

/// The name (`comm`, `/proc/PID/comm`) every idle task of a pool or floor gives itself, so that
/// tests and people can find them (`pgrep -x hookbench-idle`). 14 bytes, under `TASK_COMM_LEN`.
pub const IDLE_COMM: &str = "hookbench-idle";

/// [`IDLE_COMM`] NUL-terminated, for `prctl(PR_SET_NAME)`.
const IDLE_COMM_C: &[u8; 15] = b"hookbench-idle\0";

/// How a pool's tasks were put into their cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `clone3(CLONE_INTO_CGROUP)` (Linux 5.7+): each task is created inside its cgroup.
    Clone3IntoCgroup,
    /// Fork (`clone3` without flags, or `fork(2)` where `clone3` is missing), then the pid is
    /// written to `<cgroup>/cgroup.procs` (a migration after creation).
    ForkThenProcs,
}

/// Why a task pool (or the floor) could not be built or torn down. Every variant names the
/// values, path or errno involved and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskPoolError {
    /// A cgroup outside the run's own subtree was given.
    #[error(
        "{path} is not inside the run's cgroup subtree {root}: hookbench only places tasks in its own cgroups; \
         pass paths returned by RunTree::build (or RunTree::root), without `..`"
    )]
    OutsideRun {
        /// The path refused.
        path: PathBuf,
        /// The run's root (for [`task_floor`]: the required `hookbench-*` run directory).
        root: PathBuf,
    },
    /// Tasks were asked for but no cgroup to put them in.
    #[error("{tasks} tasks asked for but no cgroups given: pass at least one cgroup of the run")]
    NoCgroups {
        /// The number of tasks asked for.
        tasks: u32,
    },
    /// Opening a cgroup directory or its `cgroup.procs` failed.
    #[error("open {path} failed: {errno}; {hint}")]
    Open {
        /// The directory or file.
        path: PathBuf,
        /// The errno of `open(2)`.
        errno: Errno,
        /// What to do about it.
        hint: &'static str,
    },
    /// `clone3`/`fork` returned `EAGAIN`: a process limit was reached. The tasks already started
    /// were killed and reaped.
    #[error(
        "creating task {started} of {asked} in {cgroup} failed with EAGAIN: {limit}; ask for fewer tasks or raise \
         that limit (the {started} task(s) started were killed and reaped)"
    )]
    Limit {
        /// Tasks asked for.
        asked: u32,
        /// Tasks created before the failure.
        started: u32,
        /// The cgroup the failing task was meant for.
        cgroup: PathBuf,
        /// The limit that explains it, with its value (`pids.max` of a cgroup, `kernel.pid_max`,
        /// `kernel.threads-max`, `RLIMIT_NPROC`), or all of their values when none is reached.
        limit: String,
    },
    /// `clone3`/`fork` failed for another reason. The tasks already started were killed and
    /// reaped.
    #[error(
        "creating task {started} of {asked} in {cgroup} failed: {errno}; {hint} (the {started} task(s) started \
         were killed and reaped)"
    )]
    Clone {
        /// Tasks asked for.
        asked: u32,
        /// Tasks created before the failure.
        started: u32,
        /// The cgroup the failing task was meant for.
        cgroup: PathBuf,
        /// The errno of `clone3`/`fork`.
        errno: Errno,
        /// What to do about it.
        hint: &'static str,
    },
    /// Writing a new task's pid to `cgroup.procs` failed (fork-then-procs placement). The task
    /// and those started before it were killed and reaped.
    #[error("write {pid} to {path} failed: {errno}; {hint} (the task(s) started were killed and reaped)")]
    Place {
        /// The task's pid.
        pid: i32,
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// The errno of `write(2)`.
        errno: Errno,
        /// What to do about it.
        hint: &'static str,
    },
    /// `kill(pid, SIGKILL)` failed with something other than `ESRCH`; that task was not reaped.
    #[error(
        "kill({pid}, SIGKILL) failed: {errno}; the task was left unreaped: kill it by hand (`kill -9 {pid}`) or \
         let cgroupfs::cleanup_stale remove the run's subtree"
    )]
    Kill {
        /// The pid.
        pid: i32,
        /// The errno of `kill(2)`.
        errno: Errno,
    },
    /// A task had ended before it was killed (it exited or died of another signal than the
    /// `SIGKILL` of tear-down): it was not idle for the whole measurement, so the figures are not
    /// those of T live tasks. It was reaped, like every other.
    #[error(
        "task {pid} ended before tear-down killed it ({how}): an idle task must pause until killed; report this \
         as a hookbench bug with the kernel version"
    )]
    EndedEarly {
        /// The pid.
        pid: i32,
        /// How it ended ("exit status N" or "signal N").
        how: String,
    },
    /// `waitpid(pid)` failed with something other than `EINTR`/`ECHILD`.
    #[error("waitpid({pid}) failed: {errno}; check /proc/{pid}/status and reap it by hand")]
    Reap {
        /// The pid.
        pid: i32,
        /// The errno of `waitpid(2)`.
        errno: Errno,
    },
}

/// `CLONE_INTO_CGROUP` from `<linux/sched.h>` (Linux 5.7+).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `<linux/sched.h>`, `CLONE_ARGS_SIZE_VER2` (88 bytes, with `cgroup`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What a child does: dies with `parent` (`PR_SET_PDEATHSIG`, then `getppid()`: if the parent
/// already died, the signal will never come, so it exits), names itself [`IDLE_COMM`] and waits
/// to be killed. Raw syscalls only (async-signal-safe), no allocation, never returns.
fn idle_child(parent: libc::pid_t) -> ! {
    // SAFETY: prctl(2), getppid(2), _exit(2) and pause(2) take plain values or a pointer to a
    // static NUL-terminated name; none allocates or takes a lock.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
        libc::prctl(libc::PR_SET_NAME, IDLE_COMM_C.as_ptr(), 0, 0, 0);
        loop {
            libc::pause();
        }
    }
}

/// This process's pid, for [`idle_child`]'s check.
fn my_pid() -> libc::pid_t {
    // SAFETY: getpid(2) takes no arguments.
    unsafe { libc::getpid() }
}

/// `clone3` with fork semantics (no new stack, `SIGCHLD` on exit); `into` places the child in
/// that cgroup directory fd with `CLONE_INTO_CGROUP`. The child runs [`idle_child`] of `parent`
/// (this process's pid) and never returns.
fn clone3_idle(into: Option<RawFd>, parent: libc::pid_t) -> Result<libc::pid_t, Errno> {
    let args = CloneArgs {
        flags: if into.is_some() { CLONE_INTO_CGROUP } else { 0 },
        exit_signal: libc::SIGCHLD as u64,
        cgroup: into.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM and with stack 0
    // the child runs on a private copy of this stack, like fork(2). The child only calls
    // idle_child (raw syscalls), never returning into Rust code that could take a lock or
    // allocate.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => idle_child(parent),
        r if r < 0 => Err(Errno::last()),
        // A pid always fits pid_t.
        r => Ok(r as libc::pid_t),
    }
}

/// Fork semantics: `clone3` without flags, or `fork(2)` where the kernel has no `clone3`
/// (`*have_clone3` caches that). The child runs [`idle_child`] of `parent`.
fn fork_idle(have_clone3: &mut bool, parent: libc::pid_t) -> Result<libc::pid_t, Errno> {
    if *have_clone3 {
        match clone3_idle(None, parent) {
            Err(Errno::ENOSYS) => *have_clone3 = false,
            other => return other,
        }
    }
    // SAFETY: the child only calls idle_child (async-signal-safe raw syscalls).
    match unsafe { libc::fork() } {
        0 => idle_child(parent),
        r if r < 0 => Err(Errno::last()),
        r => Ok(r),
    }
}

/// Decimal digits of `pid` at the end of `buf`, no allocation.
fn fmt_pid(pid: libc::pid_t, buf: &mut [u8; 16]) -> &[u8] {
    let mut v = pid.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Writes `pid` to an open `cgroup.procs` fd (one `write(2)`).
fn write_pid(fd: RawFd, pid: libc::pid_t) -> Result<(), Errno> {
    let mut buf = [0u8; 16];
    let s = fmt_pid(pid, &mut buf);
    // SAFETY: `s` is valid for `s.len()` bytes; `fd` is open for the call.
    let n = unsafe { libc::write(fd, s.as_ptr().cast(), s.len()) };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn open_error(path: &Path, e: &io::Error, hint: &'static str) -> TaskPoolError {
    TaskPoolError::Open {
        path: path.to_path_buf(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        hint,
    }
}

const HINT_OPEN: &str = "check that it is a cgroup on the cgroup2 mount, that it exists, that you are root, and that \
                         `ulimit -n` allows one fd per cgroup";
const HINT_PROCS: &str = "check that you are root and that the cgroup has no controllers enabled in its \
                          cgroup.subtree_control (no-internal-process rule)";

fn open_procs(cgroup: &Path) -> Result<OwnedFd, TaskPoolError> {
    let path = cgroup.join("cgroup.procs");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|e| open_error(&path, &e, HINT_PROCS))
}

/// Unreaped children of this process. Dropping kills and reaps them all, best effort.
#[derive(Debug)]
struct Children {
    pids: Vec<libc::pid_t>,
}

impl Children {
    /// `SIGKILL` to every pid, then `waitpid` on every pid that could be killed; clears the list.
    /// Returns the first error (the others are still attempted).
    fn kill_and_reap(&mut self) -> Result<(), TaskPoolError> {
        let mut first: Option<TaskPoolError> = None;
        let mut killed = vec![true; self.pids.len()];
        for (i, &pid) in self.pids.iter().enumerate() {
            // SAFETY: kill(2) on a pid this process created and has not reaped (so not reused).
            if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
                let errno = Errno::last();
                // ESRCH: already reaped by someone else; nothing to wait for either.
                if errno != Errno::ESRCH {
                    killed[i] = false;
                    first.get_or_insert(TaskPoolError::Kill { pid, errno });
                }
            }
        }
        for (i, &pid) in self.pids.iter().enumerate() {
            if !killed[i] {
                continue;
            }
            loop {
                let mut status = 0;
                // SAFETY: waitpid(2) on one specific pid with a valid status pointer.
                if unsafe { libc::waitpid(pid, &mut status, 0) } >= 0 {
                    if !(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL) {
                        let how = if libc::WIFSIGNALED(status) {
                            format!("signal {}", libc::WTERMSIG(status))
                        } else {
                            format!("exit status {}", libc::WEXITSTATUS(status))
                        };
                        first.get_or_insert(TaskPoolError::EndedEarly { pid, how });
                    }
                    break;
                }
                match Errno::last() {
                    Errno::EINTR => continue,
                    Errno::ECHILD => break, // reaped elsewhere: not a zombie of ours
                    errno => {
                        first.get_or_insert(TaskPoolError::Reap { pid, errno });
                        break;
                    }
                }
            }
        }
        self.pids.clear();
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        if let Err(e) = self.kill_and_reap() {
            eprintln!("hookbench: task pool clean-up: {e}");
        }
    }
}

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

/// Every cgroup whose `pids.max` can refuse a new task of this process placed in `target`: in
/// cgroup v2, `target` and this process's own cgroup (where a plain fork is born) with their
/// ancestors up to the mount; in cgroup v1, this process's cgroup of the `pids` hierarchy (a
/// child inherits it) with its ancestors. From `mountinfo` (/proc/self/mountinfo) and
/// `proc_cgroup` (/proc/self/cgroup, lines `ID:CONTROLLERS:PATH`, cgroups(7)). Pure.
pub fn pids_cgroups(mountinfo: &str, proc_cgroup: &str, target: Option<&Path>) -> Vec<(PathBuf, &'static str)> {
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
        } else if controllers.split(',').any(|c| c == "pids") {
            // The pids hierarchy's mount whose root contains this cgroup (bind mounts of a
            // subtree have another root).
            let mount = mounts.iter().find(|m| {
                m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == "pids") && rel.starts_with(&m.root)
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

/// Names the limit behind an `EAGAIN` from `clone` of a task meant for `cgroup`, reading the
/// current values (before the pool's tasks are killed, so the counts are those at the failure).
fn explain_eagain(cgroup: &Path) -> String {
    let read = |p: &Path| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let num = |p: &Path| read(p).and_then(|s| s.parse::<u64>().ok());
    let mountinfo = read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
    let proc_cgroup = read(Path::new("/proc/self/cgroup")).unwrap_or_default();
    let pids: Vec<PidsReading> = pids_cgroups(&mountinfo, &proc_cgroup, Some(cgroup))
        .into_iter()
        .filter_map(|(dir, hierarchy)| {
            let max = read(&dir.join("pids.max"))?;
            let current = num(&dir.join("pids.current"))?;
            let max = if max == "max" { None } else { Some(max.parse().ok()?) };
            Some(PidsReading {
                dir,
                hierarchy,
                max,
                current,
            })
        })
        .collect();
    let pid_max = num(Path::new("/proc/sys/kernel/pid_max"));
    let threads_max = num(Path::new("/proc/sys/kernel/threads-max"));
    // /proc/loadavg's 4th field is "running/total" scheduling entities (threads) alive.
    let alive = read(Path::new("/proc/loadavg")).and_then(|s| {
        s.split_whitespace()
            .nth(3)
            .and_then(|f| f.split('/').nth(1))
            .and_then(|t| t.parse::<u64>().ok())
    });
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

/// The limit reached, given the `pids` readings of the task's cgroups (v1 and v2),
/// `kernel.pid_max`, `kernel.threads-max`, the threads alive, `RLIMIT_NPROC` (`None` = unknown
/// or unlimited) and the real uid. Follows copy_process() in kernel/fork.c: the pids
/// controller's charge (`pids_can_fork`), `nr_threads >= max_threads`, `alloc_pid` (pid space),
/// and RLIMIT_NPROC, which never applies to uid 0 (`INIT_USER`), nor to a task with
/// CAP_SYS_RESOURCE or CAP_SYS_ADMIN. Pure.
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

/// Whether `path` is `root` or below it, with no `.`/`..` components.
fn inside(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
        && path
            .components()
            .all(|c| !matches!(c, Component::ParentDir | Component::CurDir))
}

fn clone_error(errno: Errno, asked: u32, started: u32, cgroup: &Path) -> TaskPoolError {
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

/// Idle processes, children of this process, spread over cgroups of a run. Dropping the pool
/// kills and reaps every task (best effort); [`TaskPool::teardown`] does it timed, with errors.
#[derive(Debug)]
pub struct TaskPool {
    children: Children,
    cgroups: Vec<PathBuf>,
    placement: Placement,
}

impl TaskPool {
    /// Creates `tasks` idle processes spread round-robin over `cgroups` (task `i` goes to
    /// `cgroups[i % cgroups.len()]`), each created directly in its cgroup with
    /// `clone3(CLONE_INTO_CGROUP)`; falls back to fork + writing the pid to `cgroup.procs` when
    /// the kernel refuses the first `clone3` with `ENOSYS`, `E2BIG` or `EINVAL` (see
    /// [`TaskPool::placement`]). `run_root` is the run's subtree (a `hookbench-*` directory,
    /// e.g. [`crate::cgroupfs::RunTree::root`]); every cgroup must be it or lie under it
    /// (checked on the path, `..` refused). Returns the pool and the wall-clock time from the
    /// first clone until all `tasks` exist (checks and opening one directory fd per cgroup used
    /// come before, as the floor opens its `cgroup.procs` before its loop). `tasks == 0` builds
    /// an empty pool. Call it from a small single-threaded process (the spawner): every clone
    /// copies the caller's page tables.
    ///
    /// Errors: [`TaskPoolError::OutsideRun`], [`TaskPoolError::NoCgroups`] (before anything is
    /// created); [`TaskPoolError::Open`]; [`TaskPoolError::Limit`] on `EAGAIN` (`pids.max`,
    /// `kernel.pid_max`, `kernel.threads-max`, `RLIMIT_NPROC`), [`TaskPoolError::Clone`],
    /// [`TaskPoolError::Place`]. On any error every task already started is killed and reaped.
    pub fn spawn(run_root: &Path, cgroups: &[PathBuf], tasks: u32) -> Result<(TaskPool, Duration), TaskPoolError> {
        TaskPool::spawn_with(run_root, cgroups, tasks, Placement::Clone3IntoCgroup)
    }

    /// [`TaskPool::spawn`] with the placement to try: [`Placement::Clone3IntoCgroup`] (falls
    /// back as `spawn` does) or [`Placement::ForkThenProcs`] (forced, e.g. to measure the
    /// pre-5.7 path on a newer kernel).
    pub fn spawn_with(
        run_root: &Path,
        cgroups: &[PathBuf],
        tasks: u32,
        prefer: Placement,
    ) -> Result<(TaskPool, Duration), TaskPoolError> {
        let bad_root = !crate::cgroupfs::in_run_dir(run_root);
        if let Some(bad) = cgroups.iter().find(|c| bad_root || !inside(c, run_root)) {
            return Err(TaskPoolError::OutsideRun {
                path: bad.clone(),
                root: run_root.to_path_buf(),
            });
        }
        if tasks > 0 && cgroups.is_empty() {
            return Err(TaskPoolError::NoCgroups { tasks });
        }
        // Only the cgroups that get a task.
        let used = &cgroups[..cgroups.len().min(tasks as usize)];
        let mut placement = prefer;
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut procs: Vec<OwnedFd> = Vec::new();
        if placement == Placement::Clone3IntoCgroup {
            dirs.reserve(used.len());
            for c in used {
                let f = fs::File::open(c).map_err(|e| open_error(c, &e, HINT_OPEN))?;
                dirs.push(OwnedFd::from(f));
            }
        } else {
            for c in used {
                procs.push(open_procs(c)?);
            }
        }
        let mut children = Children {
            pids: Vec::with_capacity(tasks as usize),
        };
        let mut have_clone3 = true;
        let parent = my_pid();
        let start = Instant::now();
        for i in 0..tasks {
            let k = i as usize % used.len();
            let cgroup = &used[k];
            if placement == Placement::Clone3IntoCgroup {
                match clone3_idle(Some(dirs[k].as_raw_fd()), parent) {
                    Ok(pid) => {
                        children.pids.push(pid);
                        continue;
                    }
                    Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL) if i == 0 => {
                        placement = Placement::ForkThenProcs;
                        dirs.clear();
                        for c in used {
                            procs.push(open_procs(c)?);
                        }
                    }
                    Err(errno) => return Err(clone_error(errno, tasks, i, cgroup)),
                }
            }
            let pid = fork_idle(&mut have_clone3, parent).map_err(|errno| clone_error(errno, tasks, i, cgroup))?;
            children.pids.push(pid);
            write_pid(procs[k].as_raw_fd(), pid).map_err(|errno| TaskPoolError::Place {
                pid,
                path: cgroup.join("cgroup.procs"),
                errno,
                hint: HINT_PROCS,
            })?;
        }
        let elapsed = start.elapsed();
        Ok((
            TaskPool {
                children,
                cgroups: used.to_vec(),
                placement,
            },
            elapsed,
        ))
    }

    /// How the tasks were placed in their cgroups.
    pub fn placement(&self) -> Placement {
        self.placement
    }

    /// The tasks' pids (`pid_t`), in creation order: task `i` is in
    /// [`TaskPool::cgroup_of`]`(i)`. They stay valid (unreaped, so not reused) until tear-down.
    pub fn pids(&self) -> &[libc::pid_t] {
        &self.children.pids
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.children.pids.len()
    }

    /// Whether the pool has no task.
    pub fn is_empty(&self) -> bool {
        self.children.pids.is_empty()
    }

    /// The cgroup of task `i` (round-robin over the cgroups given to spawn); `None` when `i` is
    /// out of range.
    pub fn cgroup_of(&self, i: usize) -> Option<&Path> {
        if i >= self.len() {
            return None;
        }
        self.cgroups.get(i % self.cgroups.len()).map(PathBuf::as_path)
    }

    /// Sends `SIGKILL` to every task (`kill(2)`), then reaps every one (`waitpid(2)` on each
    /// pid); returns the wall-clock time of both loops. Errors: the first
    /// [`TaskPoolError::Kill`], [`TaskPoolError::Reap`] or [`TaskPoolError::EndedEarly`] (a
    /// task that was not alive until killed; every other task is still killed and reaped; a
    /// task whose kill failed is left unreaped).
    pub fn teardown(mut self) -> Result<Duration, TaskPoolError> {
        let start = Instant::now();
        self.children.kill_and_reap()?;
        Ok(start.elapsed())
    }
}

/// The kernel's floor for a task pool's set-up and tear-down in one cgroup: opens
/// `<cgroup>/cgroup.procs` once, times the simplest loop of fork (`clone3` without flags, or
/// `fork(2)` where `clone3` is missing; the child is born in the caller's cgroup) + one
/// `write(2)` of the child's pid to it, `tasks` times, then times the loop of `kill(SIGKILL)`
/// of every child followed by the loop of `waitpid` of every one. The children are the pool's
/// ([`IDLE_COMM`], parent-death signal). Returns (spawn time, tear-down time), wall clock.
/// `cgroup` must lie inside a hookbench run directory (some component named `hookbench-*`, e.g.
/// a cgroup of a [`crate::cgroupfs::RunTree`]), `..` refused; call it from a process that lives
/// in the run's subtree (the spawner), so no child is ever born outside it. Every child is
/// killed and reaped on every path, errors included.
/// Errors: [`TaskPoolError::OutsideRun`], [`TaskPoolError::Open`], [`TaskPoolError::Limit`],
/// [`TaskPoolError::Clone`], [`TaskPoolError::Place`], [`TaskPoolError::Kill`],
/// [`TaskPoolError::Reap`].
pub fn task_floor(cgroup: &Path, tasks: u32) -> Result<(Duration, Duration), TaskPoolError> {
    if !crate::cgroupfs::in_run_dir(cgroup) {
        return Err(TaskPoolError::OutsideRun {
            path: cgroup.to_path_buf(),
            root: PathBuf::from(format!("<cgroup2 mount>/{RUN_PREFIX}*")),
        });
    }
    let procs = open_procs(cgroup)?;
    let fd = procs.as_raw_fd();
    let mut children = Children {
        pids: Vec::with_capacity(tasks as usize),
    };
    let mut have_clone3 = true;
    let parent = my_pid();
    let start = Instant::now();
    for i in 0..tasks {
        let pid = fork_idle(&mut have_clone3, parent).map_err(|errno| clone_error(errno, tasks, i, cgroup))?;
        children.pids.push(pid);
        write_pid(fd, pid).map_err(|errno| TaskPoolError::Place {
            pid,
            path: cgroup.join("cgroup.procs"),
            errno,
            hint: HINT_PROCS,
        })?;
    }
    let spawn = start.elapsed();
    let start = Instant::now();
    children.kill_and_reap()?;
    Ok((spawn, start.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroupfs::{Cgroup2, RunTree, Shape};

    fn v2_or_skip(test: &str) -> Option<Cgroup2> {
        crate::cgroupfs::cgroup2_or_skip(test, "needs root to create cgroups and place tasks")
    }

    fn procs_of(cgroup: &Path) -> Vec<i32> {
        let mut v: Vec<i32> = fs::read_to_string(cgroup.join("cgroup.procs"))
            .expect("read cgroup.procs")
            .lines()
            .map(|l| l.trim().parse().expect("pid"))
            .collect();
        v.sort_unstable();
        v
    }

    fn ppid_of(pid: i32) -> i32 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
        // Fields after the last ')' of comm: state, ppid, ...
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        rest.split(' ').nth(1).expect("ppid").parse().expect("ppid number")
    }

    fn gone(pid: i32) -> bool {
        // SAFETY: signal 0 only checks existence.
        unsafe { libc::kill(pid, 0) == -1 && Errno::last() == Errno::ESRCH }
    }

    /// Children (zombies included) of the calling thread, from /proc (CONFIG_PROC_CHILDREN).
    fn my_thread_children() -> Option<Vec<i32>> {
        // SAFETY: gettid has no arguments.
        let tid = unsafe { libc::gettid() };
        let s = fs::read_to_string(format!("/proc/self/task/{tid}/children")).ok()?;
        Some(s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
    }

    /// `/proc/PID/comm` of `pid` once it has named itself (the child runs after clone returns),
    /// waiting at most 2 s.
    fn comm_of(pid: i32) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == IDLE_COMM || Instant::now() > deadline {
                return comm.trim().to_string();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn check_pool(run: &RunTree, paths: &[PathBuf], tasks: u32, prefer: Placement) {
        let (pool, took) = TaskPool::spawn_with(run.root(), paths, tasks, prefer).expect("spawn");
        assert_eq!(pool.len(), tasks as usize);
        if prefer == Placement::ForkThenProcs {
            assert_eq!(pool.placement(), Placement::ForkThenProcs);
        }
        eprintln!("spawn {tasks} over {} ({:?}): {took:?}", paths.len(), pool.placement());
        let per = tasks as usize / paths.len();
        for (k, p) in paths.iter().enumerate() {
            let got = procs_of(p);
            let mut want: Vec<i32> = (0..pool.len())
                .filter(|i| i % paths.len() == k)
                .map(|i| pool.pids()[i])
                .collect();
            want.sort_unstable();
            assert_eq!(got.len(), per, "{}", p.display());
            assert_eq!(got, want, "{}", p.display());
            for &pid in &got {
                assert_eq!(ppid_of(pid), std::process::id() as i32, "pid {pid} is not our child");
                assert_eq!(comm_of(pid), IDLE_COMM, "pid {pid} did not name itself");
            }
        }
        let pids = pool.pids().to_vec();
        let td = pool.teardown().expect("teardown");
        assert!(td > Duration::ZERO);
        for pid in pids {
            assert!(gone(pid), "pid {pid} still exists after teardown");
        }
        if let Some(kids) = my_thread_children() {
            assert!(kids.is_empty(), "children left: {kids:?}");
        }
    }

    #[test]
    fn taskpool_50_over_5_wide() {
        let Some(cg) = v2_or_skip("taskpool_50_over_5_wide") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let root = run.root().to_path_buf();
        let paths = run.build(Shape::Wide, 5).expect("build");
        check_pool(&run, &paths, 50, Placement::Clone3IntoCgroup);
        // Kernel 5.7+ must have used CLONE_INTO_CGROUP.
        let (pool, _) = TaskPool::spawn(run.root(), &paths, 5).expect("spawn");
        eprintln!("placement: {:?}", pool.placement());
        assert_eq!(pool.placement(), Placement::Clone3IntoCgroup);
        pool.teardown().expect("teardown");
        let stats = run.teardown().expect("run teardown");
        assert_eq!((stats.cgroups_removed, stats.processes_killed), (6, 0));
        assert!(!root.exists());
    }

    #[test]
    fn taskpool_fork_then_procs() {
        let Some(cg) = v2_or_skip("taskpool_fork_then_procs") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let paths = run.build(Shape::Balanced { fanout: 2 }, 6).expect("build");
        let leaves = run.leaves();
        check_pool(&run, &leaves, 20, Placement::ForkThenProcs);
        let _ = paths;
        assert_eq!(run.teardown().expect("run teardown").processes_killed, 0);
    }

    #[test]
    fn taskpool_drop_kills_and_reaps() {
        let Some(cg) = v2_or_skip("taskpool_drop_kills_and_reaps") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let paths = run.build(Shape::Wide, 3).expect("build");
        let (pool, _) = TaskPool::spawn(run.root(), &paths, 10).expect("spawn");
        let pids = pool.pids().to_vec();
        assert_eq!(pool.cgroup_of(4), Some(paths[1].as_path()));
        assert_eq!(pool.cgroup_of(10), None);
        drop(pool);
        for pid in pids {
            assert!(gone(pid), "pid {pid} survived drop");
        }
        // Run tree torn down first, pool dropped after: still clean.
        let (pool, _) = TaskPool::spawn(run.root(), &paths, 6).expect("spawn");
        let pids = pool.pids().to_vec();
        assert_eq!(run.teardown().expect("run teardown").processes_killed, 6);
        pool.teardown().expect("teardown after run teardown");
        for pid in pids {
            assert!(gone(pid), "pid {pid} survived");
        }
    }

    #[test]
    fn taskpool_refuses_outside() {
        let Some(cg) = v2_or_skip("taskpool_refuses_outside") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let paths = run.build(Shape::Wide, 1).expect("build");
        for bad in [
            cg.mount().to_path_buf(),
            run.root().join(".."),
            run.root().join("../other"),
            PathBuf::from("/tmp"),
        ] {
            let cgroups = [paths[0].clone(), bad.clone()];
            match TaskPool::spawn(run.root(), &cgroups, 4) {
                Err(e @ TaskPoolError::OutsideRun { .. }) => {
                    assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
                }
                other => panic!("{} accepted: {other:?}", bad.display()),
            }
        }
        assert_eq!(procs_of(&paths[0]), Vec::<i32>::new());
        assert!(matches!(
            TaskPool::spawn(run.root(), &[], 3),
            Err(TaskPoolError::NoCgroups { tasks: 3 })
        ));
        let (empty, _) = TaskPool::spawn(run.root(), &[], 0).expect("empty pool");
        assert!(empty.is_empty());
        assert!(matches!(
            task_floor(cg.mount(), 1),
            Err(TaskPoolError::OutsideRun { .. })
        ));
        assert!(matches!(
            task_floor(&run.root().join("../x"), 1),
            Err(TaskPoolError::OutsideRun { .. })
        ));
        run.teardown().expect("run teardown");
    }

    #[test]
    fn taskpool_floor_200() {
        let Some(cg) = v2_or_skip("taskpool_floor_200") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let paths = run.build(Shape::Wide, 1).expect("build");
        let (sp, td) = task_floor(&paths[0], 200).expect("task_floor");
        eprintln!("task_floor(200): spawn {sp:?}, teardown {td:?}");
        assert!(sp > Duration::ZERO && td > Duration::ZERO);
        assert!(procs_of(&paths[0]).is_empty());
        if let Some(kids) = my_thread_children() {
            assert!(kids.is_empty(), "task_floor left children: {kids:?}");
        }
        assert_eq!(run.teardown().expect("run teardown").processes_killed, 0);
    }

    fn reading(dir: &str, hierarchy: &'static str, max: Option<u64>, current: u64) -> PidsReading {
        PidsReading {
            dir: PathBuf::from(dir),
            hierarchy,
            max,
            current,
        }
    }

    #[test]
    fn taskpool_limit_names() {
        let none: &[PidsReading] = &[];
        let s = name_limit(none, Some(32768), Some(192730), Some(32500), None, 0);
        assert!(s.contains("kernel.pid_max is 32768"), "{s}");
        let s = name_limit(none, Some(4_194_304), Some(1000), Some(990), None, 0);
        assert!(s.contains("kernel.threads-max is 1000"), "{s}");
        // RLIMIT_NPROC is named for an ordinary user only (uid 0 is exempt in copy_process).
        let s = name_limit(none, Some(32768), Some(192730), Some(100), Some(50), 1000);
        assert!(
            s.contains("RLIMIT_NPROC") && s.contains("50") && s.contains("uid 1000"),
            "{s}"
        );
        let s = name_limit(none, Some(32768), Some(192730), Some(100), Some(50), 0);
        assert!(!s.contains("RLIMIT_NPROC (`ulimit"), "{s}");
        assert!(s.contains("does not apply to uid 0"), "{s}");
        let s = name_limit(none, Some(32768), None, Some(100), None, 0);
        assert!(s.contains("32768") && s.contains("unknown"), "{s}");
        // A v1 pids.max at its limit is the cause, even with RLIMIT_NPROC set, and for root.
        let v1 = [
            reading("/sys/fs/cgroup/pids/user.slice/job", "v1", Some(5000), 5000),
            reading("/sys/fs/cgroup/pids/user.slice", "v1", None, 5002),
        ];
        for uid in [0, 1000] {
            let s = name_limit(&v1, Some(32768), Some(192730), Some(5100), Some(4096), uid);
            assert!(
                s.starts_with("pids.max of /sys/fs/cgroup/pids/user.slice/job (cgroup v1 pids controller) is 5000"),
                "{s}"
            );
            assert!(s.contains("pids.current is 5000"), "{s}");
            assert!(!s.contains("RLIMIT_NPROC") && !s.contains("exempt"), "{s}");
        }
        // The deepest cgroup at its limit is named, v2 as well.
        let v2 = [
            reading("/sys/fs/cgroup/unified/hookbench-1-2/w0_0", "v2", None, 10),
            reading("/sys/fs/cgroup/unified/hookbench-1-2", "v2", Some(10), 10),
        ];
        let s = name_limit(&v2, Some(32768), Some(192730), Some(100), None, 0);
        assert!(s.contains("hookbench-1-2 (cgroup v2") && s.contains("is 10"), "{s}");
        // Limits that are not reached are listed, not blamed.
        let below = [reading("/sys/fs/cgroup/pids/a", "v1", Some(100), 40)];
        let s = name_limit(&below, Some(32768), Some(192730), Some(100), None, 0);
        assert!(
            s.contains("no pids.max is reached") && s.contains("/sys/fs/cgroup/pids/a 40/100"),
            "{s}"
        );
        let mut buf = [0u8; 16];
        assert_eq!(fmt_pid(0, &mut buf), b"0");
        assert_eq!(fmt_pid(4_194_304, &mut buf), b"4194304");
    }

    const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn pids_cgroups_follow_v1_and_v2() {
        let proc_cgroup = "9:name=systemd:/\n8:pids:/user.slice/job\n4:memory:/x\n0::/hookbench-1-2/spawner-1\n";
        let target = Path::new("/sys/fs/cgroup/unified/hookbench-1-2/w0_3");
        let got = pids_cgroups(HYBRID_MOUNTINFO, proc_cgroup, Some(target));
        let show: Vec<(String, &str)> = got.iter().map(|(p, h)| (p.display().to_string(), *h)).collect();
        assert_eq!(
            show,
            [
                ("/sys/fs/cgroup/unified/hookbench-1-2/w0_3".to_string(), "v2"),
                ("/sys/fs/cgroup/unified/hookbench-1-2".to_string(), "v2"),
                ("/sys/fs/cgroup/unified".to_string(), "v2"),
                ("/sys/fs/cgroup/pids/user.slice/job".to_string(), "v1"),
                ("/sys/fs/cgroup/pids/user.slice".to_string(), "v1"),
                ("/sys/fs/cgroup/pids".to_string(), "v1"),
                ("/sys/fs/cgroup/unified/hookbench-1-2/spawner-1".to_string(), "v2"),
            ]
        );
        // A pids hierarchy co-mounted with other controllers, bind-mounted from a subtree.
        let mi = "50 1 0:40 /lxc/c1 /sys/fs/cgroup/cpu,pids rw - cgroup cgroup rw,cpu,pids\n";
        let got = pids_cgroups(mi, "3:cpu,pids:/lxc/c1/app\n", None);
        assert_eq!(
            got,
            [
                (PathBuf::from("/sys/fs/cgroup/cpu,pids/app"), "v1"),
                (PathBuf::from("/sys/fs/cgroup/cpu,pids"), "v1")
            ]
        );
        assert!(pids_cgroups("", "", None).is_empty());
    }

    #[test]
    fn taskpool_timing_10k() {
        let Some(cg) = v2_or_skip("taskpool_timing_10k") else {
            return;
        };
        let mut run = RunTree::create(&cg).expect("create run tree");
        let one = run.build(Shape::Wide, 1).expect("build");
        let hundred = run.build(Shape::Wide, 100).expect("build 100");
        let total = Instant::now();
        // Warm-up (pid allocation, slabs, page tables), not reported.
        task_floor(&one[0], 10_000).expect("warm-up task_floor 10k");
        let (pool, sp) = TaskPool::spawn(run.root(), &one, 10_000).expect("spawn 10k");
        let placement = pool.placement();
        assert_eq!(pool.len(), 10_000);
        let td = pool.teardown().expect("teardown 10k");
        let (fsp, ftd) = task_floor(&one[0], 10_000).expect("task_floor 10k");
        let (pool, sp100) = TaskPool::spawn(run.root(), &hundred, 10_000).expect("spawn 10k over 100");
        let td100 = pool.teardown().expect("teardown 10k over 100");
        let (pool, spf) =
            TaskPool::spawn_with(run.root(), &one, 10_000, Placement::ForkThenProcs).expect("spawn 10k fork+procs");
        let tdf = pool.teardown().expect("teardown 10k fork+procs");
        eprintln!(
            "10,000 tasks: TaskPool::spawn ({placement:?}, 1 cgroup) {sp:?}, teardown {td:?}; task_floor spawn \
             {fsp:?}, teardown {ftd:?}; spawn over 100 cgroups {sp100:?}, teardown {td100:?}; ForkThenProcs \
             {spf:?}, teardown {tdf:?} (test total {:?})",
            total.elapsed()
        );
        assert_eq!(run.teardown().expect("run teardown").processes_killed, 0);
    }
}
