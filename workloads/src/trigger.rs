//! The syscalls that fire a measured hook, and timing them in a worker with [`hookbench_measure`].
//!
//! A trigger is the same syscall whatever mechanism it serves, so a claim can compare two
//! mechanisms on the same trigger: seccomp filters run on every syscall entry, a
//! `cgroup/getsockname4` program on `getsockname()`, a `cgroup/sock_create` program on
//! `socket()`. Triggers that need no undo (`getppid()`, `getsockname()`) are batched (K calls
//! per timed sample, K chosen for a 5% clock share); `socket()` is timed one call at a time with
//! the `close()` outside the timed interval.
//!
//! `getsockname()` needs a socket: [`time_trigger`] and [`fire`] create one AF_INET UDP socket
//! bound to 127.0.0.1:0 before the first call (untimed) and close it after the last. A
//! getsockname4 program runs from the effective array of the cgroup the socket was *created* in
//! (`sk->sk_cgrp_data`, kernel/cgroup/cgroup.c `cgroup_sk_alloc`), so a worker must join its
//! cgroup before it triggers, as the socket worker does.

use hookbench_measure::{measure, measure_each_config, SampleSet, Speculation, TimingRequest};
use serde::{Deserialize, Serialize};

/// A syscall that fires the measured hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// `getppid()`: the cheapest syscall with no side effect (seccomp runs on its entry).
    #[default]
    Getppid,
    /// `socket(AF_INET, SOCK_DGRAM)`, closed untimed: fires socket-creation programs.
    ///
    /// These are `cgroup/sock_create` programs (`BPF_CGROUP_INET_SOCK_CREATE`) and the
    /// `socket_create` LSM hook.
    Socket,
    /// `getsockname()` on one AF_INET UDP socket bound to 127.0.0.1:0, made before timing:
    /// fires `cgroup/getsockname4` programs (`BPF_CGROUP_INET4_GETSOCKNAME`, Linux 5.8+,
    /// `inet_getname()`); a cheap syscall (an fd lookup and a copy), batched like `getppid()`.
    Getsockname,
}

impl Trigger {
    /// The trigger's name, as in requests and cell labels.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Getppid => "getppid",
            Trigger::Socket => "socket",
            Trigger::Getsockname => "getsockname",
        }
    }

    /// The number of the syscall the trigger times (`seccomp_data.nr` of its calls).
    pub fn syscall_nr(self) -> u32 {
        let nr = match self {
            Trigger::Getppid => libc::SYS_getppid,
            Trigger::Socket => libc::SYS_socket,
            Trigger::Getsockname => libc::SYS_getsockname,
        };
        nr as u32
    }
}

/// One AF_INET UDP socket bound to 127.0.0.1:0, closed on drop, for `getsockname()` calls.
#[derive(Debug)]
struct BoundSocket {
    fd: std::os::fd::OwnedFd,
}

impl BoundSocket {
    /// `socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC)` + `bind(127.0.0.1:0)`.
    fn new() -> Result<BoundSocket, TriggerError> {
        use std::os::fd::FromRawFd as _;
        let raw = raw_bound_socket().map_err(|(call, errno)| TriggerError::Syscall {
            call,
            source: std::io::Error::from_raw_os_error(errno),
        })?;
        // SAFETY: `raw` is a fresh fd owned by nobody else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        Ok(BoundSocket { fd })
    }

    /// One `getsockname()`; `Err` with the errno when it fails (a program that denied it).
    #[inline(always)]
    fn getsockname(&self) -> Result<u32, std::io::Error> {
        use std::os::fd::AsRawFd as _;
        raw_getsockname(self.fd.as_raw_fd()).map_err(std::io::Error::from_raw_os_error)
    }
}

/// The bound socket of [`BoundSocket::new`] with raw calls only, safe between fork and exit.
///
/// Returns the fd (the caller closes it), or the call that failed and its errno (a socket whose
/// bind failed is closed). It allocates nothing and takes no lock: the ring's tasks
/// (`crate::ring`) make their socket with it.
pub(crate) fn raw_bound_socket() -> Result<std::os::fd::RawFd, (&'static str, i32)> {
    // SAFETY: plain socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(("socket(AF_INET, SOCK_DGRAM)", nix::errno::Errno::last_raw()));
    }
    if raw_bind_loopback(fd) != 0 {
        let errno = nix::errno::Errno::last_raw();
        // SAFETY: `fd` came from socket() above and is closed once.
        unsafe { libc::close(fd) };
        return Err(("bind(127.0.0.1:0)", errno));
    }
    Ok(fd)
}

/// `bind(fd, 127.0.0.1:0)` with a raw call: its return value (errno set on -1). Safe after a fork.
///
/// The one loopback bind of the socket triggers and of Landlock's network check
/// (`crate::landlock::verify_net_restricted`); it allocates nothing and takes no lock.
pub(crate) fn raw_bind_loopback(fd: std::os::fd::RawFd) -> libc::c_int {
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_in of the length given; bind(2) does not keep it.
    unsafe {
        libc::bind(
            fd,
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    }
}

/// One `getsockname()` on `fd` with a raw call: the port, or the errno. Safe after a fork.
#[inline(always)]
pub(crate) fn raw_getsockname(fd: std::os::fd::RawFd) -> Result<u32, i32> {
    // SAFETY: sockaddr_in is plain data; zero is valid.
    let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: `addr` and `len` outlive the call, `len` is `addr`'s size.
    let rc = unsafe { libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len) };
    if rc == 0 {
        Ok(u32::from(addr.sin_port))
    } else {
        Err(nix::errno::Errno::last_raw())
    }
}

/// Fires `trigger` exactly `n` times, untimed; returns the calls made (`n`).
///
/// For an untimed pass that counts program runs, e.g. with run statistics on.
///
/// Errors: [`TriggerError::Syscall`] when a call (or the socket's set-up) fails.
pub fn fire(trigger: Trigger, n: u64) -> Result<u64, TriggerError> {
    match trigger {
        Trigger::Getppid => {
            for _ in 0..n {
                // SAFETY: getppid takes no argument and cannot fail.
                std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
            }
        }
        Trigger::Getsockname => {
            let sock = BoundSocket::new()?;
            for _ in 0..n {
                std::hint::black_box(sock.getsockname()).map_err(|source| TriggerError::Syscall {
                    call: "getsockname()",
                    source,
                })?;
            }
        }
        Trigger::Socket => {
            for _ in 0..n {
                // SAFETY: plain socket(2) with constant arguments; the fd is closed at once.
                let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
                if fd < 0 {
                    return Err(TriggerError::Syscall {
                        call: "socket()",
                        source: std::io::Error::last_os_error(),
                    });
                }
                // SAFETY: fd came from socket() just before and is closed once.
                unsafe { libc::close(fd) };
            }
        }
    }
    Ok(n)
}

/// Why a trigger could not be timed.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The sampler refused its configuration (a request out of range).
    #[error("sampler: {0}")]
    Sampler(#[from] hookbench_measure::SamplerError),
    /// Pinning to the requested CPU failed.
    #[error("pinning to CPU {cpu:?}: {source}; ask for a CPU this process may run on")]
    Pin {
        /// The CPU asked for.
        cpu: Option<u32>,
        /// The cause.
        #[source]
        source: hookbench_measure::PinError,
    },
    /// The syscall failed (e.g. `socket()` with EMFILE).
    #[error("{call} failed: {source}")]
    Syscall {
        /// The call.
        call: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Times `trigger` as `timing` asks (pinned, the harness's clock); also the calls made.
///
/// The calls count the warm-up's.
///
/// Errors: [`TriggerError`].
pub fn time_trigger(trigger: Trigger, timing: &TimingRequest) -> Result<(SampleSet, u64), TriggerError> {
    timing.pin().map_err(|source| TriggerError::Pin {
        cpu: timing.cpu,
        source,
    })?;
    let clock = timing.clock();
    let config = timing.sampler_config();
    let mut calls = 0u64;
    let m = match trigger {
        Trigger::Getppid => measure(&clock, &config, &mut |k| {
            let mut acc = 0i64;
            for _ in 0..k {
                // SAFETY: getppid takes no argument and cannot fail.
                acc = acc.wrapping_add(unsafe { libc::syscall(libc::SYS_getppid) });
            }
            calls += k;
            acc as u64
        })?,
        Trigger::Getsockname => {
            // Made before timing (and after the worker joined its cgroup: the socket's cgroup
            // is the one whose programs run); closed when `sock` goes out of scope.
            let sock = BoundSocket::new()?;
            let mut failed: Option<std::io::Error> = None;
            let m = measure(&clock, &config, &mut |k| {
                let mut acc = 0u64;
                for _ in 0..k {
                    match sock.getsockname() {
                        Ok(port) => acc = acc.wrapping_add(u64::from(port)),
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                }
                calls += k;
                acc
            })?;
            if let Some(source) = failed {
                return Err(TriggerError::Syscall {
                    call: "getsockname()",
                    source,
                });
            }
            m
        }
        Trigger::Socket => {
            let mut failed: Option<std::io::Error> = None;
            let fd = std::cell::Cell::new(-1);
            let m = measure_each_config(
                &clock,
                &config,
                || {
                    // SAFETY: plain socket(2) with constant arguments; the fd is closed by the undo.
                    fd.set(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) });
                    fd.get() as u64
                },
                || {
                    calls += 1;
                    if fd.get() < 0 {
                        failed.get_or_insert_with(std::io::Error::last_os_error);
                    } else {
                        // SAFETY: fd came from socket() just before and is closed once.
                        unsafe { libc::close(fd.get()) };
                    }
                    fd.set(-1);
                },
            )?;
            if let Some(source) = failed {
                return Err(TriggerError::Syscall {
                    call: "socket()",
                    source,
                });
            }
            m
        }
    };
    Ok((SampleSet::from_measurement(&m, Speculation::of_self()), calls))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookbench_measure::Clock;

    /// Whether every sample is positive and the typical one is a syscall's time.
    ///
    /// A preempted sample on a loaded machine may take milliseconds: the median, not the maximum,
    /// is checked.
    fn plausible(values: &[f64]) -> bool {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        v.iter().all(|x| *x > 0.0) && v.get(v.len() / 2).is_some_and(|m| *m < 1e5)
    }

    #[test]
    fn getppid_and_getsockname_are_batched_and_socket_is_timed_alone() {
        let clock = Clock::detect();
        let timing = TimingRequest {
            warmup_ns: 1_000_000,
            ..TimingRequest::new(clock.info(), None, 200, 2_000_000)
        };
        let (set, calls) = time_trigger(Trigger::Getppid, &timing).expect("getppid");
        assert!(set.batch_k > 1, "a ~100 ns syscall is batched for a 5% clock share");
        assert!(set.values_ns.len() >= 200);
        assert!(calls >= set.batch_k * set.values_ns.len() as u64);
        assert!(plausible(&set.values_ns));
        let (set, calls) = time_trigger(Trigger::Getsockname, &timing).expect("getsockname");
        assert!(set.batch_k > 1, "getsockname() is batched");
        assert!(calls >= set.batch_k * set.values_ns.len() as u64);
        assert!(plausible(&set.values_ns));
        assert_eq!(fire(Trigger::Getsockname, 10).expect("fire"), 10);
        let (set, calls) = time_trigger(Trigger::Socket, &timing).expect("socket");
        assert_eq!(set.batch_k, 1);
        assert!(calls >= set.values_ns.len() as u64);
        // Every socket was closed: the process has no more fds than before plus a few.
        let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
        assert!(fds < 64, "{fds} fds open: sockets leaked");
    }
}
