//! One idle child, made with raw syscalls only: `clone3` (into a cgroup) or `fork`.
//!
//! And the one `write(2)` of its pid that places it when `clone3` cannot.
//!
//! Between fork and exec a child may only make async-signal-safe calls: nothing here allocates
//! or takes a lock.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// [`IDLE_COMM`](super::IDLE_COMM) NUL-terminated, for `prctl(PR_SET_NAME)`.
const IDLE_COMM_C: &[u8; 15] = b"hookbench-idle\0";

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

/// What an idle child does before it pauses, prepared by its parent before the fork.
///
/// Nothing ([`ChildSetup::NONE`]), or install seccomp filters of its own and say so on a pipe
/// ([`ChildSetup::seccomp`]). Only plain values and borrowed memory of the parent, so that the
/// child needs raw syscalls alone.
#[derive(Debug, Clone, Copy)]
pub struct ChildSetup<'a> {
    /// The program to install, how many times, with which `seccomp(2)` flags.
    filters: Option<(&'a libc::sock_fprog, u32, libc::c_ulong)>,
    /// The write end of the pipe the child reports on (one byte: 0, or the errno that stopped it).
    ready: RawFd,
}

impl<'a> ChildSetup<'a> {
    /// Nothing before the pause.
    pub const NONE: ChildSetup<'static> = ChildSetup {
        filters: None,
        ready: -1,
    };

    /// Install `count` copies of `prog`, then write one status byte to `ready` and close it.
    ///
    /// The child sets no_new_privs and calls `seccomp(SECCOMP_SET_MODE_FILTER, flags, prog)`
    /// `count` times. The byte is 0 when every filter was installed, else the errno that stopped it (at least
    /// 1, truncated to a byte). `prog` must stay alive until every child has reported.
    pub fn seccomp(prog: &'a libc::sock_fprog, count: u32, flags: libc::c_ulong, ready: RawFd) -> ChildSetup<'a> {
        ChildSetup {
            filters: Some((prog, count, flags)),
            ready,
        }
    }

    /// Runs the set-up in a freshly forked child: raw syscalls only, no allocation, no lock.
    fn run_in_child(&self) {
        let Some((prog, count, flags)) = self.filters else {
            return;
        };
        // SAFETY: prctl(2), seccomp(2), write(2) and close(2) take plain values or pointers to
        // memory the parent keeps alive (`prog`, a local byte); __errno_location returns this
        // thread's errno slot. None allocates or takes a lock.
        unsafe {
            let errno = || (*libc::__errno_location()).clamp(1, 255) as u8;
            let mut status = 0u8;
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                status = errno();
            }
            for _ in 0..count {
                if status != 0 {
                    break;
                }
                let rc = libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                    flags,
                    prog as *const libc::sock_fprog,
                );
                if rc != 0 {
                    status = errno();
                }
            }
            libc::write(self.ready, (&status as *const u8).cast(), 1);
            libc::close(self.ready);
        }
    }
}

/// What a child does: dies with `parent`, runs `setup`, names itself and waits to be killed.
///
/// `PR_SET_PDEATHSIG`, then `getppid()`: if the parent already died, the signal will never
/// come, so it exits. Its name is [`IDLE_COMM`](super::IDLE_COMM). Raw syscalls only
/// (async-signal-safe), no allocation, never returns.
fn idle_child(parent: libc::pid_t, setup: &ChildSetup<'_>) -> ! {
    // SAFETY: prctl(2), getppid(2), _exit(2) and pause(2) take plain values or a pointer to a
    // static NUL-terminated name; none allocates or takes a lock.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(0);
        }
        setup.run_in_child();
        libc::prctl(libc::PR_SET_NAME, IDLE_COMM_C.as_ptr(), 0, 0, 0);
        loop {
            libc::pause();
        }
    }
}

/// This process's pid, for [`idle_child`]'s check.
pub(super) fn my_pid() -> libc::pid_t {
    // SAFETY: getpid(2) takes no arguments.
    unsafe { libc::getpid() }
}

/// `clone3` with fork semantics, born in the cgroup open as `into` (`CLONE_INTO_CGROUP`) if any.
///
/// Returns 0 in the child and the child's pid in the caller, like fork(2).
///
/// Errors: the errno (`ENOSYS`: no `clone3`; `E2BIG`/`EINVAL`: no `CLONE_INTO_CGROUP`).
///
/// # Safety
///
/// In the child (return value 0), the caller may only make async-signal-safe calls (raw
/// syscalls: no allocation, no lock) and must never return into code that would: the child is a
/// copy of a process that may have other threads.
pub(crate) unsafe fn clone3_fork(into: Option<RawFd>) -> Result<libc::pid_t, Errno> {
    let args = CloneArgs {
        flags: if into.is_some() { CLONE_INTO_CGROUP } else { 0 },
        exit_signal: libc::SIGCHLD as u64,
        cgroup: into.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed; without CLONE_VM and with stack 0
    // the child runs on a private copy of this stack, like fork(2); what the child may do is the
    // caller's contract.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        r if r < 0 => Err(Errno::last()),
        // A pid always fits pid_t.
        r => Ok(r as libc::pid_t),
    }
}

/// `clone3` with fork semantics whose child runs [`idle_child`] of `parent` with `setup`.
///
/// `into` places the child in that cgroup directory fd with `CLONE_INTO_CGROUP`.
pub(super) fn clone3_idle(
    into: Option<RawFd>,
    parent: libc::pid_t,
    setup: &ChildSetup<'_>,
) -> Result<libc::pid_t, Errno> {
    // SAFETY: the child only runs idle_child (async-signal-safe raw syscalls) and never returns.
    match unsafe { clone3_fork(into) }? {
        0 => idle_child(parent, setup),
        pid => Ok(pid),
    }
}

/// Fork semantics: `clone3` without flags, or `fork(2)` where the kernel has no `clone3`
/// (`*have_clone3` caches that). The child runs [`idle_child`] of `parent` after `setup`.
pub(super) fn fork_idle(
    have_clone3: &mut bool,
    parent: libc::pid_t,
    setup: &ChildSetup<'_>,
) -> Result<libc::pid_t, Errno> {
    if *have_clone3 {
        match clone3_idle(None, parent, setup) {
            Err(Errno::ENOSYS) => *have_clone3 = false,
            other => return other,
        }
    }
    // SAFETY: the child only calls idle_child (async-signal-safe raw syscalls).
    match unsafe { libc::fork() } {
        0 => idle_child(parent, setup),
        r if r < 0 => Err(Errno::last()),
        r => Ok(r),
    }
}

/// Decimal digits of `pid` at the end of `buf`, no allocation.
pub(super) fn fmt_pid(pid: libc::pid_t, buf: &mut [u8; 16]) -> &[u8] {
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
pub(crate) fn write_pid(fd: RawFd, pid: libc::pid_t) -> Result<(), Errno> {
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
