//! One task of the ring: made by a raw fork, set up and run with raw syscalls only.
//!
//! Between fork and exit a task makes only async-signal-safe calls (it may be the child of a
//! process with other threads, a test binary's): it never allocates, never takes a Rust std lock
//! and never returns into the caller's code. Everything it needs is prepared by the worker
//! before the fork ([`TaskPlan`]): its slot and successor in the ring, the `cgroup.procs` it
//! joins, the seccomp program it installs (the worker's memory, copied into the child by the
//! fork). Its cgroup-bpf programs are attached by the worker before the fork and reach the task
//! as inherited link fds, so they are detached when the task dies, however it dies.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use hookbench_measure::Clock;
use nix::errno::Errno;

use super::shared::{futex_wait, futex_wake, Shared};

/// The name every ring task gives itself (`comm`), so it can be found: `pgrep -x hookbench-ring`.
pub const RING_COMM: &str = "hookbench-ring";

/// [`RING_COMM`] NUL-terminated, for `prctl(PR_SET_NAME)`.
const RING_COMM_C: &[u8; 15] = b"hookbench-ring\0";

/// The setup step of a task that failed, as its slot records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Stage {
    /// Writing `0` to its cgroup's `cgroup.procs` (joining its cgroup).
    JoinCgroup = 1,
    /// `socket(AF_INET, SOCK_DGRAM)`.
    Socket = 2,
    /// `bind(127.0.0.1:0)`.
    Bind = 3,
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
    NoNewPrivs = 4,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` of one of its filters.
    Seccomp = 5,
}

impl Stage {
    /// The stage recorded as `code` (0 or an unknown code: none).
    pub fn from_code(code: u32) -> Option<Stage> {
        [
            Stage::JoinCgroup,
            Stage::Socket,
            Stage::Bind,
            Stage::NoNewPrivs,
            Stage::Seccomp,
        ]
        .into_iter()
        .find(|s| *s as u32 == code)
    }

    /// The step in words, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Stage::JoinCgroup => "joining its cgroup (write 0 to cgroup.procs)",
            Stage::Socket => "socket(AF_INET, SOCK_DGRAM)",
            Stage::Bind => "bind(127.0.0.1:0)",
            Stage::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS, 1)",
            Stage::Seccomp => "seccomp(SECCOMP_SET_MODE_FILTER) of one of its filters",
        }
    }
}

/// Everything task `index` needs, prepared by the worker before the fork.
pub(super) struct TaskPlan<'a> {
    /// The ring's shared state.
    pub shared: &'a Shared,
    /// This task's slot.
    pub index: usize,
    /// The task that follows it in the ring.
    pub next: usize,
    /// The worker's pid: the task dies with it.
    pub parent: libc::pid_t,
    /// The task's own cgroup, open as a directory and its `cgroup.procs`, if it has one.
    ///
    /// It is born there (`CLONE_INTO_CGROUP`), or joins it first where the kernel cannot do
    /// that; `None`: it stays in the worker's cgroup.
    pub cgroup: Option<(RawFd, RawFd)>,
    /// Seccomp filters to install, oldest first (empty: none): filter `i` of a probed chain.
    ///
    /// Each is `seccomp::probe_filter_program(ArgLoad, i)`, so the task can probe its chain.
    pub seccomp: &'a [libc::sock_fprog],
    /// The clock the turns are timed with.
    pub clock: &'a Clock,
}

/// Forks task `plan.index`, born in its cgroup when it has one; the child never returns.
///
/// A raw `clone3` with `CLONE_INTO_CGROUP` (Linux 5.7+; no migration, no atfork handlers), else
/// a raw `clone(SIGCHLD)` after which the task joins its cgroup itself. The parent gets the pid.
///
/// Errors: the errno of `clone3`/`clone` (`EAGAIN`: a process limit).
pub(super) fn fork_task(plan: &TaskPlan<'_>) -> Result<libc::pid_t, Errno> {
    // SAFETY: the child only runs task_main, which makes raw async-signal-safe syscalls and never
    // returns into Rust code that could allocate or lock.
    match unsafe { crate::taskpool::clone3_fork(plan.cgroup.map(|(dir, _)| dir)) } {
        Ok(0) => task_main(plan, None),
        Ok(pid) => Ok(pid),
        Err(Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL) => {
            // SAFETY: clone with only an exit signal and no new stack is fork(2); the child runs
            // task_main as above.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    libc::SIGCHLD as libc::c_ulong,
                    0usize,
                    0usize,
                    0usize,
                    0usize,
                )
            };
            match ret {
                0 => task_main(plan, plan.cgroup.map(|(_, procs)| procs)),
                r if r < 0 => Err(Errno::last()),
                // A pid always fits pid_t.
                r => Ok(r as libc::pid_t),
            }
        }
        Err(e) => Err(e),
    }
}

/// The child: set up, say ready, then take turns until killed. Never returns.
///
/// It joins the cgroup of `join`, a `cgroup.procs`, first when it was not born there.
fn task_main(plan: &TaskPlan<'_>, join: Option<RawFd>) -> ! {
    // SAFETY: prctl(2) and getppid(2) with plain values and a static NUL-terminated name.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != plan.parent {
            libc::_exit(0);
        }
        libc::prctl(libc::PR_SET_NAME, RING_COMM_C.as_ptr(), 0, 0, 0);
    }
    let sock = match setup(plan, join) {
        Ok(fd) => fd,
        Err((stage, errno)) => fail(plan, stage, errno),
    };
    let slot = plan.shared.slot(plan.index);
    let header = plan.shared.header();
    // SAFETY: getpid(2) takes no argument.
    slot.pid.store(unsafe { libc::getpid() }, Ordering::Relaxed);
    header.ready.fetch_add(1, Ordering::AcqRel);
    futex_wake(&header.ready);
    turns(plan, sock)
}

/// Joins the cgroup if asked, makes the bound socket and installs the filters; returns the socket.
fn setup(plan: &TaskPlan<'_>, join: Option<RawFd>) -> Result<RawFd, (Stage, i32)> {
    let err = |stage: Stage| (stage, Errno::last_raw());
    if let Some(fd) = join {
        // SAFETY: one write(2) of a static buffer to an open fd.
        let n = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        if n != 1 {
            return Err(err(Stage::JoinCgroup));
        }
    }
    if let Some((dir, procs)) = plan.cgroup {
        // SAFETY: the fds are this task's copies; closing them does not touch the worker's.
        unsafe {
            libc::close(dir);
            libc::close(procs);
        }
    }
    let sock = crate::trigger::raw_bound_socket().map_err(|(call, errno)| {
        let stage = if call.starts_with("socket") {
            Stage::Socket
        } else {
            Stage::Bind
        };
        (stage, errno)
    })?;
    if !plan.seccomp.is_empty() {
        // SAFETY: prctl(2) with plain values.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(err(Stage::NoNewPrivs));
        }
        for prog in plan.seccomp {
            // SAFETY: `prog` points at the worker's filter program, copied into this task by the
            // fork and alive for the call; the kernel copies it.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                    crate::seccomp::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                    prog as *const libc::sock_fprog,
                )
            };
            if rc != 0 {
                return Err(err(Stage::Seccomp));
            }
        }
    }
    Ok(sock)
}

/// Records why the setup failed, says so to the worker, and waits to be killed.
fn fail(plan: &TaskPlan<'_>, stage: Stage, errno: i32) -> ! {
    let slot = plan.shared.slot(plan.index);
    let header = plan.shared.header();
    slot.errno.store(errno, Ordering::Relaxed);
    slot.stage.store(stage as u32, Ordering::Relaxed);
    header.failed.fetch_add(1, Ordering::AcqRel);
    header.ready.fetch_add(1, Ordering::AcqRel);
    futex_wake(&header.ready);
    loop {
        // SAFETY: pause(2) takes no argument.
        unsafe { libc::pause() };
    }
}

/// The turns: wait for the token, time the phase's calls, record them, pass the token on.
fn turns(plan: &TaskPlan<'_>, sock: RawFd) -> ! {
    let shared = plan.shared;
    let header = shared.header();
    let mine = shared.slot(plan.index);
    let next = shared.slot(plan.next);
    let clock = plan.clock;
    loop {
        while mine.go.load(Ordering::Acquire) == 0 {
            futex_wait(&mine.go, 0, None);
        }
        mine.go.store(0, Ordering::Relaxed);
        let t = header.turn.load(Ordering::Acquire);
        let calls = header.calls.load(Ordering::Relaxed);
        let end = header.end.load(Ordering::Relaxed);
        let probe = header.probe.load(Ordering::Relaxed);
        if probe > 0 {
            probe_chain(mine, probe);
        }
        let calls = if probe > 0 { 0 } else { calls };
        let mut failed = 0i32;
        let t0 = clock.now();
        for _ in 0..calls {
            if let Err(errno) = crate::trigger::raw_getsockname(sock) {
                failed = errno;
            }
        }
        let t1 = clock.now();
        if failed != 0 {
            header.call_errors.fetch_add(1, Ordering::Relaxed);
            let _ = header
                .call_errno
                .compare_exchange(0, failed, Ordering::Relaxed, Ordering::Relaxed);
        }
        // SAFETY: sched_getcpu takes no argument (vDSO); -1 on failure.
        let cpu = unsafe { libc::sched_getcpu() };
        shared.record(t, t1.saturating_sub(t0), u32::try_from(cpu + 1).unwrap_or(0));
        header.turn.store(t + 1, Ordering::Release);
        if t + 1 >= end {
            header.done.fetch_add(1, Ordering::AcqRel);
            futex_wake(&header.done);
        } else {
            next.go.store(1, Ordering::Release);
            futex_wake(&next.go);
        }
    }
}

/// Asks filters `0..filters` of this task's chain for their own answers; records them in `mine`.
///
/// Raw syscalls only ([`crate::seccomp::probe_filter`]); out of every timed turn.
fn probe_chain(mine: &super::shared::Slot, filters: u32) {
    let mut answered = 0;
    for index in 0..filters {
        match crate::seccomp::probe_filter(index) {
            Ok(()) => answered += 1,
            Err(got) => {
                if mine.probe_miss.load(Ordering::Relaxed) == 0 {
                    mine.probe_got.store(got, Ordering::Relaxed);
                    mine.probe_miss.store(index + 1, Ordering::Relaxed);
                }
            }
        }
    }
    mine.probe_answered.store(answered, Ordering::Relaxed);
}
