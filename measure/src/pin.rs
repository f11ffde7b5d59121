//! CPU pinning: pin the calling thread, list the allowed CPUs, run pinned threads together.
//!
//! `run_pinned` starts one pinned thread per CPU, all released at once.
//!
//! Source: sched_setaffinity(2) / sched_getaffinity(2) with pid 0 (the calling thread), via
//! `nix::sched`; the allowed set already reflects cpuset cgroups and `taskset`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use thiserror::Error;

/// Why pinning failed.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum PinError {
    /// The CPU is not in the calling thread's allowed set.
    ///
    /// It is offline, outside the cpuset cgroup, excluded by `taskset`, or beyond the kernel's CPU
    /// count.
    #[error("cannot pin to CPU {cpu}: not in the allowed set {allowed:?}")]
    NotAllowed {
        /// The requested CPU.
        cpu: usize,
        /// The allowed CPUs at the time of the request.
        allowed: Vec<usize>,
    },
    /// sched_setaffinity(2) failed.
    #[error("sched_setaffinity to CPU {cpu} failed: {errno} (allowed set {allowed:?})")]
    SetAffinity {
        /// The requested CPU.
        cpu: usize,
        /// The allowed CPUs at the time of the request.
        allowed: Vec<usize>,
        /// The error returned.
        errno: nix::errno::Errno,
    },
    /// sched_getaffinity(2) failed.
    #[error("sched_getaffinity failed: {0}")]
    GetAffinity(nix::errno::Errno),
    /// A thread for CPU `cpu` could not be spawned.
    #[error("cannot spawn the thread for CPU {cpu}: {reason}")]
    Spawn {
        /// The CPU the thread was for.
        cpu: usize,
        /// The I/O error, as text.
        reason: String,
    },
}

/// CPUs the calling thread may run on (its sched_getaffinity(2) mask), ascending.
///
/// Errors: [`PinError::GetAffinity`].
pub fn allowed_cpus() -> Result<Vec<usize>, PinError> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(PinError::GetAffinity)?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

/// Restricts the calling thread to exactly `cpu` (sched_setaffinity(2) with pid 0).
///
/// Affects this thread only; threads it spawns later inherit the mask.
///
/// Errors: [`PinError::NotAllowed`] if `cpu` is not in [`allowed_cpus`],
/// [`PinError::SetAffinity`] if the kernel refuses, [`PinError::GetAffinity`].
pub fn pin_current_thread(cpu: usize) -> Result<(), PinError> {
    let allowed = allowed_cpus()?;
    if !allowed.contains(&cpu) {
        return Err(PinError::NotAllowed { cpu, allowed });
    }
    let mut set = CpuSet::new();
    let result = set.set(cpu).and_then(|()| sched_setaffinity(Pid::from_raw(0), &set));
    result.map_err(|errno| PinError::SetAffinity { cpu, allowed, errno })
}

/// Start gate of [`run_pinned`]: threads report ready, the coordinator opens it or aborts.
///
/// `Some(true)` is open, `Some(false)` aborted.
struct Gate {
    state: Mutex<(usize, Option<bool>)>,
    cv: Condvar,
}

impl Gate {
    fn arrive_and_wait(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.0 += 1;
        self.cv.notify_all();
        loop {
            if let Some(go) = st.1 {
                return go;
            }
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn wait_ready(&self, n: usize) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while st.0 < n {
            st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn open(&self, go: bool) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.1 = Some(go);
        self.cv.notify_all();
    }
}

/// Runs `f(index)` on one scoped thread per CPU of `cpus`, all released together once pinned.
///
/// Thread `index` is pinned to `cpus[index]`. Returns the results in `cpus` order. The caller's
/// own affinity is unchanged. An empty `cpus` gives an empty vector.
///
/// If any CPU cannot be pinned (or a thread cannot be spawned), no thread runs `f` and the
/// first error in `cpus` order is returned. A panic in `f` is propagated to the caller after
/// all threads have finished.
///
/// Errors: [`PinError::NotAllowed`] (checked before spawning), [`PinError::SetAffinity`],
/// [`PinError::GetAffinity`], [`PinError::Spawn`].
pub fn run_pinned<T, F>(cpus: &[usize], f: F) -> Result<Vec<T>, PinError>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let allowed = allowed_cpus()?;
    if let Some(&cpu) = cpus.iter().find(|c| !allowed.contains(c)) {
        return Err(PinError::NotAllowed { cpu, allowed });
    }
    let gate = Gate {
        state: Mutex::new((0, None)),
        cv: Condvar::new(),
    };
    let pin_failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(cpus.len());
        let mut spawn_error = None;
        for (index, &cpu) in cpus.iter().enumerate() {
            let (gate, pin_failed, f) = (&gate, &pin_failed, &f);
            let spawned = std::thread::Builder::new()
                .name(format!("hookbench-cpu{cpu}"))
                .spawn_scoped(scope, move || {
                    let pinned = pin_current_thread(cpu);
                    if pinned.is_err() {
                        pin_failed.store(true, Ordering::SeqCst);
                    }
                    let go = gate.arrive_and_wait();
                    pinned?;
                    Ok(if go { Some(f(index)) } else { None })
                });
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    spawn_error = Some(PinError::Spawn {
                        cpu,
                        reason: e.to_string(),
                    });
                    break;
                }
            }
        }
        if spawn_error.is_none() {
            gate.wait_ready(handles.len());
        }
        gate.open(spawn_error.is_none() && !pin_failed.load(Ordering::SeqCst));
        let joined: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        let mut results = Vec::with_capacity(joined.len());
        let mut first_error = spawn_error;
        for j in joined {
            match j {
                Err(payload) => std::panic::resume_unwind(payload),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Ok(Ok(Some(v))) => results.push(v),
                Ok(Ok(None)) => {}
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(results),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn allowed_cpus_is_sorted_nonempty_and_fits_the_machine() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
        // SAFETY: sysconf(3) has no preconditions.
        let configured = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) } as usize;
        assert!(cpus.iter().all(|&c| c < configured.max(1)), "{cpus:?} vs {configured}");
    }

    #[test]
    fn pin_current_thread_restricts_to_one_cpu() {
        let cpus = allowed_cpus().unwrap();
        let cpu = *cpus.last().unwrap();
        let (mask, running_on) = std::thread::spawn(move || {
            pin_current_thread(cpu).unwrap();
            (allowed_cpus().unwrap(), nix::sched::sched_getcpu().unwrap())
        })
        .join()
        .unwrap();
        assert_eq!(mask, vec![cpu]);
        assert_eq!(running_on, cpu);
        // This thread's mask is untouched.
        assert_eq!(allowed_cpus().unwrap(), cpus);
    }

    #[test]
    fn pinning_outside_the_allowed_set_names_cpu_and_set() {
        let allowed = allowed_cpus().unwrap();
        let err = pin_current_thread(100_000).unwrap_err();
        assert_eq!(
            err,
            PinError::NotAllowed {
                cpu: 100_000,
                allowed: allowed.clone()
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("100000") && text.contains(&format!("{allowed:?}")),
            "{text}"
        );
    }

    #[test]
    fn run_pinned_runs_each_index_on_its_cpu_in_order() {
        let cpus = allowed_cpus().unwrap();
        let results = run_pinned(&cpus, |index| {
            (index, nix::sched::sched_getcpu().unwrap(), allowed_cpus().unwrap())
        })
        .unwrap();
        assert_eq!(results.len(), cpus.len());
        for (i, (index, running_on, mask)) in results.into_iter().enumerate() {
            assert_eq!(index, i);
            assert_eq!(running_on, cpus[i]);
            assert_eq!(mask, vec![cpus[i]]);
        }
        // The same CPU twice is allowed (two threads share it).
        let twice = run_pinned(&[cpus[0], cpus[0]], |i| i * 10).unwrap();
        assert_eq!(twice, vec![0, 10]);
        assert!(run_pinned(&[], |i| i).unwrap().is_empty());
    }

    #[test]
    fn run_pinned_with_a_bad_cpu_runs_nothing() {
        let cpus = allowed_cpus().unwrap();
        let calls = AtomicUsize::new(0);
        let err = run_pinned(&[cpus[0], 100_000], |_| calls.fetch_add(1, Ordering::SeqCst)).unwrap_err();
        assert!(matches!(err, PinError::NotAllowed { cpu: 100_000, .. }));
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn run_pinned_propagates_panics() {
        let cpus = allowed_cpus().unwrap();
        let r = std::panic::catch_unwind(|| {
            run_pinned(&cpus, |i| {
                if i == 0 {
                    panic!("boom from index 0");
                }
                i
            })
        });
        let payload = r.unwrap_err();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom from index 0"));
    }
}
