//! The syscalls that fire a measured hook, and timing them in a worker with the one measurement
//! core ([`hookbench_measure`]).
//!
//! A trigger is the same syscall whatever mechanism it serves, so a claim can compare two
//! mechanisms on the same trigger: seccomp filters run on every syscall entry, a
//! `cgroup/sock_create` program on `socket()`. Triggers that need no undo are batched (K calls
//! per timed sample, K chosen for a 5% clock share); `socket()` is timed one call at a time with
//! the `close()` outside the timed interval.

use hookbench_measure::{measure, measure_each_config, SampleSet, Speculation, TimingRequest};
use serde::{Deserialize, Serialize};

/// A syscall that fires the measured hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// `getppid()`: the cheapest syscall with no side effect (seccomp runs on its entry).
    #[default]
    Getppid,
    /// `socket(AF_INET, SOCK_DGRAM)`, closed untimed: fires `cgroup/sock_create` programs
    /// (`BPF_CGROUP_INET_SOCK_CREATE`) and the `socket_create` LSM hook.
    Socket,
}

impl Trigger {
    /// The trigger's name, as in requests and cell labels.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Getppid => "getppid",
            Trigger::Socket => "socket",
        }
    }
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

/// Times `trigger` as `timing` asks (pinned, the harness's clock), counting the calls made,
/// warm-up included.
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

    #[test]
    fn getppid_is_batched_and_socket_is_timed_alone() {
        let clock = Clock::detect();
        let timing = TimingRequest {
            warmup_ns: 1_000_000,
            ..TimingRequest::new(clock.info(), None, 200, 2_000_000)
        };
        let (set, calls) = time_trigger(Trigger::Getppid, &timing).expect("getppid");
        assert!(set.batch_k > 1, "a ~100 ns syscall is batched for a 5% clock share");
        assert!(set.values_ns.len() >= 200);
        assert!(calls >= set.batch_k * set.values_ns.len() as u64);
        assert!(set.values_ns.iter().all(|v| *v > 0.0 && *v < 1e6));
        let (set, calls) = time_trigger(Trigger::Socket, &timing).expect("socket");
        assert_eq!(set.batch_k, 1);
        assert!(calls >= set.values_ns.len() as u64);
        // Every socket was closed: the process has no more fds than before plus a few.
        let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
        assert!(fds < 64, "{fds} fds open: sockets leaked");
    }
}
