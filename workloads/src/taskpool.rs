//! Task pools for the `kernel` backend: many idle processes in a run's cgroups, set-up timed.
//!
//! Their set-up and tear-down are timed, beside the kernel's floor for the same work.
//!
//! Pools and floors are made by the spawner (`crate::spawner`, `hookbench worker tasks`), a
//! small exec'd process that lives in a leaf cgroup of the run's subtree, never by the harness:
//! fork copies the parent's page tables, so the creator's size is part of every figure.
//!
//! A pool's tasks are minimal children of the spawner: each is created by a raw `clone3(2)`
//! (fork semantics, `exit_signal = SIGCHLD`, no new stack) and runs [`IDLE_COMM`]'s few raw
//! syscalls: `prctl(PR_SET_PDEATHSIG, SIGKILL)` (it dies with its creator), `getppid()` (it
//! exits at once if the creator died before that), `prctl(PR_SET_NAME, "hookbench-idle")`, then
//! `pause(2)` until it is killed ([`TaskPool::spawn_installing`]'s children first install
//! seccomp filters of their own with raw `prctl`/`seccomp` calls and report on a pipe). A child
//! that stays a plain forked copy may only make async-signal-safe calls: it never allocates,
//! never touches a Rust std lock and never returns into the caller's code.
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
//!
//! This file holds the pool, the floor and their errors; `clone` the raw, async-signal-safe
//! creation of one idle child, and `limit` the naming of the limit behind an `EAGAIN`.

mod clone;
mod limit;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::cgroupfs::RUN_PREFIX;
pub use clone::ChildSetup;
use clone::{clone3_idle, fork_idle, my_pid};
use limit::clone_error;

pub(crate) use clone::{clone3_fork, write_pid};
pub use limit::{controller_cgroups, kernel_task_limits, name_limit, pids_cgroups, read_pids, PidsReading};

/// The name (`comm`) every idle task of a pool or floor gives itself, so it can be found.
///
/// Tests and people find them in `/proc/PID/comm` (`pgrep -x hookbench-idle`). 14 bytes, under
/// `TASK_COMM_LEN`.
pub const IDLE_COMM: &str = "hookbench-idle";

/// How a pool's tasks were put into their cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `clone3(CLONE_INTO_CGROUP)` (Linux 5.7+): each task is created inside its cgroup.
    Clone3IntoCgroup,
    /// Fork, then write the pid to `<cgroup>/cgroup.procs`: a migration after creation.
    ///
    /// The fork is `clone3` without flags, or `fork(2)` where `clone3` is missing.
    ForkThenProcs,
}

/// Why a task pool (or the floor) could not be built or torn down.
///
/// Every variant names the values, path or errno involved and what to do.
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
    /// `clone3`/`fork` returned `EAGAIN`: a process limit was reached.
    ///
    /// The tasks already started were killed and reaped.
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
        /// The limit that explains it with its value, or all their values when none is reached.
        ///
        /// The limits are `pids.max` of a cgroup, `kernel.pid_max`, `kernel.threads-max` and
        /// `RLIMIT_NPROC`.
        limit: String,
    },
    /// `clone3`/`fork` failed for another reason.
    ///
    /// The tasks already started were killed and reaped.
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
    /// Writing a new task's pid to `cgroup.procs` failed (fork-then-procs placement).
    ///
    /// The task and those started before it were killed and reaped.
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
    /// A task had ended before it was killed, so the figures are not those of T live tasks.
    ///
    /// It exited or died of another signal than the `SIGKILL` of tear-down: it was not idle for the
    /// whole measurement. It was reaped, like every other.
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
    /// Tasks could not install their seccomp filters before pausing, or never said they had.
    ///
    /// See [`TaskPool::spawn_installing`]. Every task was killed and reaped.
    #[error(
        "{failed} of {tasks} tasks could not install their {filters} seccomp filter(s){errno}: check \
         /proc/sys/kernel/seccomp/actions_avail and the filter budget (every task was killed and reaped)"
    )]
    ChildSetup {
        /// Tasks that failed or never reported.
        failed: u32,
        /// Tasks asked for.
        tasks: u32,
        /// Filters each task was to install.
        filters: u32,
        /// `: <errno>` of the first failure a task reported, empty when none reported one.
        errno: String,
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

/// [`TaskPoolError::Open`] of `path` from the `io::Error` of opening it.
fn open_error(path: &Path, e: &io::Error, hint: &'static str) -> TaskPoolError {
    TaskPoolError::Open {
        path: path.to_path_buf(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        hint,
    }
}

/// What to do when a cgroup directory cannot be opened.
const HINT_OPEN: &str = "check that it is a cgroup on the cgroup2 mount, that it exists, that you are root, and that \
                         `ulimit -n` allows one fd per cgroup";
/// What to do when a `cgroup.procs` cannot be opened or written.
const HINT_PROCS: &str = "check that you are root and that the cgroup has no controllers enabled in its \
                          cgroup.subtree_control (no-internal-process rule)";

/// Opens `<cgroup>/cgroup.procs` for writing pids to.
fn open_procs(cgroup: &Path) -> Result<OwnedFd, TaskPoolError> {
    let path = cgroup.join("cgroup.procs");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map(OwnedFd::from)
        .map_err(|e| open_error(&path, &e, HINT_PROCS))
}

/// Idle children of this process, made and not yet reaped.
///
/// Dropping kills and reaps them all, best effort.
#[derive(Debug)]
struct Children {
    pids: Vec<libc::pid_t>,
    /// This process's pid, which each child checks is still its parent.
    parent: libc::pid_t,
    /// Whether this kernel has `clone3` (cleared at its first `ENOSYS`).
    have_clone3: bool,
}

impl Children {
    /// None yet, with room for `tasks`.
    fn with_capacity(tasks: u32) -> Children {
        Children {
            pids: Vec::with_capacity(tasks as usize),
            parent: my_pid(),
            have_clone3: true,
        }
    }

    /// Forks task `i` of `tasks` and places it in `cgroup` with one write of its pid to `procs`.
    ///
    /// `procs` is that cgroup's open `cgroup.procs`. The child is kept even when placing it fails,
    /// so that it is reaped.
    #[inline]
    fn fork_then_place(
        &mut self,
        procs: RawFd,
        cgroup: &Path,
        (i, tasks): (u32, u32),
        setup: &ChildSetup<'_>,
    ) -> Result<(), TaskPoolError> {
        let pid = fork_idle(&mut self.have_clone3, self.parent, setup)
            .map_err(|errno| clone_error(errno, tasks, i, cgroup))?;
        self.pids.push(pid);
        write_pid(procs, pid).map_err(|errno| TaskPoolError::Place {
            pid,
            path: cgroup.join("cgroup.procs"),
            errno,
            hint: HINT_PROCS,
        })
    }

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

/// Whether `path` is `root` or below it, with no `.`/`..` components.
fn inside(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
        && path
            .components()
            .all(|c| !matches!(c, Component::ParentDir | Component::CurDir))
}

/// Idle processes, children of this process, spread over cgroups of a run.
///
/// Dropping the pool kills and reaps every task (best effort); [`TaskPool::teardown`] does it
/// timed, with errors.
#[derive(Debug)]
pub struct TaskPool {
    children: Children,
    cgroups: Vec<PathBuf>,
    placement: Placement,
}

impl TaskPool {
    /// Creates `tasks` idle processes spread round-robin over `cgroups`, each born in its cgroup.
    ///
    /// Task `i` goes to `cgroups[i % cgroups.len()]`, created there with
    /// `clone3(CLONE_INTO_CGROUP)`; falls back to fork + writing the pid to `cgroup.procs` when
    /// the kernel refuses the first `clone3` with `ENOSYS`, `E2BIG` or `EINVAL` (see
    /// [`TaskPool::placement`]). `run_root` is the run's subtree (a `hookbench-*` directory, e.g.
    /// [`crate::cgroupfs::RunTree::root`]); every cgroup must be it or lie under it (checked on
    /// the path, `..` refused). Returns the pool and the wall-clock time from the first clone
    /// until all `tasks` exist (checks and opening one directory fd per cgroup used come before,
    /// as the floor opens its `cgroup.procs` before its loop). `tasks == 0` builds an empty pool.
    /// Call it from a small single-threaded process (the spawner): every clone copies the caller's
    /// page tables.
    ///
    /// Errors: [`TaskPoolError`] (`OutsideRun` and `NoCgroups` before anything is created). On
    /// any error every task already started is killed and reaped.
    pub fn spawn(run_root: &Path, cgroups: &[PathBuf], tasks: u32) -> Result<(TaskPool, Duration), TaskPoolError> {
        TaskPool::spawn_with(run_root, cgroups, tasks, Placement::Clone3IntoCgroup)
    }

    /// [`TaskPool::spawn`] with the placement to try (to time the pre-5.7 path on a newer kernel).
    ///
    /// [`Placement::Clone3IntoCgroup`] falls back as `spawn` does; [`Placement::ForkThenProcs`] is
    /// forced.
    pub fn spawn_with(
        run_root: &Path,
        cgroups: &[PathBuf],
        tasks: u32,
        prefer: Placement,
    ) -> Result<(TaskPool, Duration), TaskPoolError> {
        TaskPool::spawn_set_up(run_root, cgroups, tasks, prefer, &ChildSetup::NONE)
    }

    /// [`TaskPool::spawn`] whose tasks each install `count` seccomp filters of their own first.
    ///
    /// Every task sets no_new_privs and installs `count` copies of `prog` with `seccomp(2)`
    /// `flags` before it pauses, then reports on a pipe; this returns once every task has
    /// reported, so every filter exists. The duration runs to the last report. Use it from a
    /// process without filters of its own, or the tasks' chains also hold the inherited ones.
    ///
    /// Errors: as [`TaskPool::spawn`]; [`TaskPoolError::ChildSetup`] when a task could not install
    /// its filters or never reported; [`TaskPoolError::Open`] when the pipe cannot be made. Every
    /// task started is killed and reaped on every error.
    pub fn spawn_installing(
        run_root: &Path,
        cgroups: &[PathBuf],
        tasks: u32,
        (prog, count, flags): (&libc::sock_fprog, u32, libc::c_ulong),
    ) -> Result<(TaskPool, Duration), TaskPoolError> {
        let (read_end, write_end) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|errno| TaskPoolError::Open {
                path: PathBuf::from("pipe2(2)"),
                errno,
                hint: "raise `ulimit -n`",
            })?;
        let start = Instant::now();
        let setup = ChildSetup::seccomp(prog, count, flags, write_end.as_raw_fd());
        let spawned = TaskPool::spawn_set_up(run_root, cgroups, tasks, Placement::Clone3IntoCgroup, &setup);
        // Every child has its own copy of the write end and closes it once it has reported.
        drop(write_end);
        let (pool, _) = spawned?;
        let (mut ok, mut failed, mut first_errno) = (0u32, 0u32, None);
        let mut file = fs::File::from(read_end);
        let mut buf = [0u8; 4096];
        while ok + failed < tasks {
            let n = match io::Read::read(&mut file, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            for &b in &buf[..n] {
                if b == 0 {
                    ok += 1;
                } else {
                    failed += 1;
                    first_errno.get_or_insert(Errno::from_raw(i32::from(b)));
                }
            }
        }
        if ok < tasks {
            // Dropping the pool kills and reaps every task.
            return Err(TaskPoolError::ChildSetup {
                failed: tasks - ok,
                tasks,
                filters: count,
                errno: first_errno.map(|e| format!(": {e}")).unwrap_or_default(),
            });
        }
        Ok((pool, start.elapsed()))
    }

    /// [`TaskPool::spawn_with`], each task running `setup` before it pauses.
    fn spawn_set_up(
        run_root: &Path,
        cgroups: &[PathBuf],
        tasks: u32,
        prefer: Placement,
        setup: &ChildSetup<'_>,
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
        let mut children = Children::with_capacity(tasks);
        let start = Instant::now();
        for i in 0..tasks {
            let k = i as usize % used.len();
            let cgroup = &used[k];
            if placement == Placement::Clone3IntoCgroup {
                match clone3_idle(Some(dirs[k].as_raw_fd()), children.parent, setup) {
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
            children.fork_then_place(procs[k].as_raw_fd(), cgroup, (i, tasks), setup)?;
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

    /// The tasks' pids, in creation order; valid (unreaped, so not reused) until tear-down.
    ///
    /// Task `i` is in [`TaskPool::cgroup_of`]`(i)`.
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

    /// The cgroup of task `i` (round-robin over the cgroups given to spawn), if there is one.
    pub fn cgroup_of(&self, i: usize) -> Option<&Path> {
        if i >= self.len() {
            return None;
        }
        self.cgroups.get(i % self.cgroups.len()).map(PathBuf::as_path)
    }

    /// Kills every task and reaps it; returns the wall-clock time of both loops.
    ///
    /// `SIGKILL` to every task (`kill(2)`), then `waitpid(2)` on each pid. Errors: the first
    /// [`TaskPoolError::Kill`], [`TaskPoolError::Reap`] or [`TaskPoolError::EndedEarly`]; every
    /// other task is still killed and reaped (a task whose kill failed is left unreaped).
    pub fn teardown(mut self) -> Result<Duration, TaskPoolError> {
        let start = Instant::now();
        self.children.kill_and_reap()?;
        Ok(start.elapsed())
    }
}

/// The kernel's floor for a task pool's set-up and tear-down in one cgroup: the simplest loops.
///
/// Opens `<cgroup>/cgroup.procs` once, times the loop of fork (`clone3` without flags, or
/// `fork(2)` where `clone3` is missing; the child is born in the caller's cgroup) + one `write(2)`
/// of the child's pid to it, `tasks` times, then times the loop of `kill(SIGKILL)` of every child
/// followed by the loop of `waitpid` of every one. The children are the pool's ([`IDLE_COMM`],
/// parent-death signal). Returns (spawn time, tear-down time), wall clock. `cgroup` must lie
/// inside a hookbench run directory (some component named `hookbench-*`, e.g. a cgroup of a
/// [`crate::cgroupfs::RunTree`]), `..` refused; call it from a process that lives in the run's
/// subtree (the spawner), so no child is ever born outside it. Every child is killed and reaped on
/// every path, errors included. Errors: [`TaskPoolError`].
pub fn task_floor(cgroup: &Path, tasks: u32) -> Result<(Duration, Duration), TaskPoolError> {
    if !crate::cgroupfs::in_run_dir(cgroup) {
        return Err(TaskPoolError::OutsideRun {
            path: cgroup.to_path_buf(),
            root: PathBuf::from(format!("<cgroup2 mount>/{RUN_PREFIX}*")),
        });
    }
    let procs = open_procs(cgroup)?;
    let fd = procs.as_raw_fd();
    let mut children = Children::with_capacity(tasks);
    let start = Instant::now();
    for i in 0..tasks {
        children.fork_then_place(fd, cgroup, (i, tasks), &ChildSetup::NONE)?;
    }
    let spawn = start.elapsed();
    let start = Instant::now();
    children.kill_and_reap()?;
    Ok((spawn, start.elapsed()))
}
