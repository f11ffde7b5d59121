//! Task pools for the `kernel` backend: many idle processes placed in a run's cgroups, with
//! their set-up and tear-down timed, and the kernel's floor for the same work.
//!
//! A pool's tasks are minimal children of the harness: each is created by a raw `clone3(2)`
//! (fork semantics, `exit_signal = SIGCHLD`, no new stack) and then does nothing but loop on
//! `pause(2)` until it is killed. The harness may be multi-threaded, so a child that stays a
//! plain forked copy may only make async-signal-safe calls: it never allocates, never touches a
//! Rust std lock and never returns into the caller's code.
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
//! (only the pool's own pids, never `waitpid(-1)`, so other children of the harness are left to
//! their owners). Dropping a pool does the same, best effort: a pool never leaves a live child
//! or a zombie behind. If the harness itself dies, its tasks stay in the run's cgroup subtree,
//! where `cgroupfs::cleanup_stale` (`cgroup.kill`, 5.14+, else `SIGKILL` per pid of
//! `cgroup.procs`) kills them.
//!
//! Kernel interfaces used: `clone3(2)` with `CLONE_INTO_CGROUP`, `fork(2)` (where `clone3` is
//! missing), `cgroup.procs`, `pause(2)`, `kill(2)`, `waitpid(2)`, `pids.max`/`pids.current`,
//! `/proc/sys/kernel/pid_max`, `/proc/sys/kernel/threads-max`, `/proc/loadavg`,
//! `getrlimit(RLIMIT_NPROC)` (the last five only to name the limit behind an `EAGAIN`).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::cgroupfs::{RunTree, RUN_PREFIX};

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

/// What a child does: nothing, until it is killed. Raw syscalls only (async-signal-safe).
fn idle_forever() -> ! {
    loop {
        // SAFETY: pause(2) takes no arguments and touches no memory.
        unsafe {
            libc::pause();
        }
    }
}

/// `clone3` with fork semantics (no new stack, `SIGCHLD` on exit); `into` places the child in
/// that cgroup directory fd with `CLONE_INTO_CGROUP`. The child never returns.
fn clone3_idle(into: Option<RawFd>) -> Result<libc::pid_t, Errno> {
    let args = CloneArgs {
        flags: if into.is_some() { CLONE_INTO_CGROUP } else { 0 },
        exit_signal: libc::SIGCHLD as u64,
        cgroup: into.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM and with stack 0
    // the child runs on a private copy of this stack, like fork(2). The child only calls
    // idle_forever (raw syscalls), never returning into Rust code that could take a lock or
    // allocate.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        0 => idle_forever(),
        r if r < 0 => Err(Errno::last()),
        // A pid always fits pid_t.
        r => Ok(r as libc::pid_t),
    }
}

/// Fork semantics: `clone3` without flags, or `fork(2)` where the kernel has no `clone3`
/// (`*have_clone3` caches that).
fn fork_idle(have_clone3: &mut bool) -> Result<libc::pid_t, Errno> {
    if *have_clone3 {
        match clone3_idle(None) {
            Err(Errno::ENOSYS) => *have_clone3 = false,
            other => return other,
        }
    }
    // SAFETY: the child only calls idle_forever (async-signal-safe raw syscalls).
    match unsafe { libc::fork() } {
        0 => idle_forever(),
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

/// Names the limit behind an `EAGAIN` from `clone`, reading the current values (before the
/// pool's tasks are killed, so the counts are those at the failure).
fn explain_eagain(cgroup: &Path) -> String {
    let read = |p: &Path| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let num = |p: &Path| read(p).and_then(|s| s.parse::<u64>().ok());
    // pids.max of the cgroup and its ancestors (only where the pids controller is enabled).
    let mut dir = Some(cgroup);
    while let Some(d) = dir {
        if !d.join("cgroup.controllers").exists() {
            break;
        }
        if let (Some(max), Some(cur)) = (num(&d.join("pids.max")), num(&d.join("pids.current"))) {
            if cur >= max {
                return format!(
                    "pids.max of {} is {max} and pids.current is {cur} (raise it with `echo max > {}/pids.max` if \
                     that cgroup is the run's)",
                    d.display(),
                    d.display()
                );
            }
        }
        dir = d.parent();
    }
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
    name_limit(pid_max, threads_max, alive, nproc)
}

/// The limit reached given `kernel.pid_max`, `kernel.threads-max`, the threads alive and
/// `RLIMIT_NPROC` (`None` = unknown / unlimited). Pure.
fn name_limit(pid_max: Option<u64>, threads_max: Option<u64>, alive: Option<u64>, nproc: Option<u64>) -> String {
    const RESERVED_PIDS: u64 = 300; // pids below 300 are not reused after wrap-around
    let show = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
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
    if let Some(lim) = nproc {
        return format!(
            "RLIMIT_NPROC (`ulimit -u`) is {lim} for this user (root with CAP_SYS_RESOURCE is exempt); raise it"
        );
    }
    format!(
        "no pids.max of the run is reached, kernel.pid_max is {}, kernel.threads-max is {}, {} threads are alive, \
         RLIMIT_NPROC is unlimited: a pids.max outside the run (e.g. a systemd unit's TasksMax or a v1 pids \
         cgroup of this process) or memory is the limit",
        show(pid_max),
        show(threads_max),
        show(alive)
    )
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
    /// [`TaskPool::placement`]). Every cgroup must be the run root or lie under it (checked on
    /// the path, `..` refused). Returns the pool and the wall-clock time of the whole spawn
    /// (checks, opening one directory fd per cgroup used, and every clone). `tasks == 0` builds
    /// an empty pool.
    ///
    /// Errors: [`TaskPoolError::OutsideRun`], [`TaskPoolError::NoCgroups`] (before anything is
    /// created); [`TaskPoolError::Open`]; [`TaskPoolError::Limit`] on `EAGAIN` (`pids.max`,
    /// `kernel.pid_max`, `kernel.threads-max`, `RLIMIT_NPROC`), [`TaskPoolError::Clone`],
    /// [`TaskPoolError::Place`]. On any error every task already started is killed and reaped.
    pub fn spawn(run: &RunTree, cgroups: &[PathBuf], tasks: u32) -> Result<(TaskPool, Duration), TaskPoolError> {
        TaskPool::spawn_with(run, cgroups, tasks, Placement::Clone3IntoCgroup)
    }

    /// [`TaskPool::spawn`] with the placement to try: [`Placement::Clone3IntoCgroup`] (falls
    /// back as `spawn` does) or [`Placement::ForkThenProcs`] (forced, e.g. to measure the
    /// pre-5.7 path on a newer kernel).
    pub fn spawn_with(
        run: &RunTree,
        cgroups: &[PathBuf],
        tasks: u32,
        prefer: Placement,
    ) -> Result<(TaskPool, Duration), TaskPoolError> {
        let start = Instant::now();
        if let Some(bad) = cgroups.iter().find(|c| !inside(c, run.root())) {
            return Err(TaskPoolError::OutsideRun {
                path: bad.clone(),
                root: run.root().to_path_buf(),
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
        for i in 0..tasks {
            let k = i as usize % used.len();
            let cgroup = &used[k];
            if placement == Placement::Clone3IntoCgroup {
                match clone3_idle(Some(dirs[k].as_raw_fd())) {
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
            let pid = fork_idle(&mut have_clone3).map_err(|errno| clone_error(errno, tasks, i, cgroup))?;
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
    /// [`TaskPoolError::Kill`] or [`TaskPoolError::Reap`] (every other task is still killed and
    /// reaped; a task whose kill failed is left unreaped).
    pub fn teardown(mut self) -> Result<Duration, TaskPoolError> {
        let start = Instant::now();
        self.children.kill_and_reap()?;
        Ok(start.elapsed())
    }
}

/// The kernel's floor for a task pool's set-up and tear-down in one cgroup: opens
/// `<cgroup>/cgroup.procs` once, times the simplest loop of fork (`clone3` without flags, or
/// `fork(2)` where `clone3` is missing) + one `write(2)` of the child's pid to it, `tasks`
/// times, then times the loop of `kill(SIGKILL)` of every child followed by the loop of
/// `waitpid` of every one. Returns (spawn time, tear-down time), wall clock. `cgroup` must lie
/// inside a hookbench run directory (some component named `hookbench-*`, e.g. a cgroup of a
/// [`RunTree`]), `..` refused. Every child is killed and reaped on every path, errors included.
/// Errors: [`TaskPoolError::OutsideRun`], [`TaskPoolError::Open`], [`TaskPoolError::Limit`],
/// [`TaskPoolError::Clone`], [`TaskPoolError::Place`], [`TaskPoolError::Kill`],
/// [`TaskPoolError::Reap`].
pub fn task_floor(cgroup: &Path, tasks: u32) -> Result<(Duration, Duration), TaskPoolError> {
    let in_run = cgroup.ancestors().any(|a| {
        a.file_name()
            .map(|n| n.to_string_lossy().starts_with(RUN_PREFIX))
            .unwrap_or(false)
    });
    if !in_run || !inside(cgroup, Path::new("/")) {
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
    let start = Instant::now();
    for i in 0..tasks {
        let pid = fork_idle(&mut have_clone3).map_err(|errno| clone_error(errno, tasks, i, cgroup))?;
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
    use crate::cgroupfs::{Cgroup2, Shape};

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

    fn check_pool(run: &RunTree, paths: &[PathBuf], tasks: u32, prefer: Placement) {
        let (pool, took) = TaskPool::spawn_with(run, paths, tasks, prefer).expect("spawn");
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
        let (pool, _) = TaskPool::spawn(&run, &paths, 5).expect("spawn");
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
        let (pool, _) = TaskPool::spawn(&run, &paths, 10).expect("spawn");
        let pids = pool.pids().to_vec();
        assert_eq!(pool.cgroup_of(4), Some(paths[1].as_path()));
        assert_eq!(pool.cgroup_of(10), None);
        drop(pool);
        for pid in pids {
            assert!(gone(pid), "pid {pid} survived drop");
        }
        // Run tree torn down first, pool dropped after: still clean.
        let (pool, _) = TaskPool::spawn(&run, &paths, 6).expect("spawn");
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
            match TaskPool::spawn(&run, &cgroups, 4) {
                Err(e @ TaskPoolError::OutsideRun { .. }) => {
                    assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
                }
                other => panic!("{} accepted: {other:?}", bad.display()),
            }
        }
        assert_eq!(procs_of(&paths[0]), Vec::<i32>::new());
        assert!(matches!(
            TaskPool::spawn(&run, &[], 3),
            Err(TaskPoolError::NoCgroups { tasks: 3 })
        ));
        let (empty, _) = TaskPool::spawn(&run, &[], 0).expect("empty pool");
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

    #[test]
    fn taskpool_limit_names() {
        let s = name_limit(Some(32768), Some(192730), Some(32500), None);
        assert!(s.contains("kernel.pid_max is 32768"), "{s}");
        let s = name_limit(Some(4_194_304), Some(1000), Some(990), None);
        assert!(s.contains("kernel.threads-max is 1000"), "{s}");
        let s = name_limit(Some(32768), Some(192730), Some(100), Some(50));
        assert!(s.contains("RLIMIT_NPROC") && s.contains("50"), "{s}");
        let s = name_limit(Some(32768), None, Some(100), None);
        assert!(s.contains("32768") && s.contains("unknown"), "{s}");
        let mut buf = [0u8; 16];
        assert_eq!(fmt_pid(0, &mut buf), b"0");
        assert_eq!(fmt_pid(4_194_304, &mut buf), b"4194304");
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
        let (pool, sp) = TaskPool::spawn(&run, &one, 10_000).expect("spawn 10k");
        let placement = pool.placement();
        assert_eq!(pool.len(), 10_000);
        let td = pool.teardown().expect("teardown 10k");
        let (fsp, ftd) = task_floor(&one[0], 10_000).expect("task_floor 10k");
        let (pool, sp100) = TaskPool::spawn(&run, &hundred, 10_000).expect("spawn 10k over 100");
        let td100 = pool.teardown().expect("teardown 10k over 100");
        let (pool, spf) =
            TaskPool::spawn_with(&run, &one, 10_000, Placement::ForkThenProcs).expect("spawn 10k fork+procs");
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
