//! Global-filter programs on the running kernel: the raw tracepoint worker and its cgroup handles.
//!
//! Claim 3 on the `kernel` backend: a global program on `sys_enter`
//! ([`hookbench_bpf::global`]) finds whether it applies to the current task by looping over H
//! cgroup handles (`bpf_current_task_under_cgroup`, RFC v2 patch 09/10's shape) or by one
//! lookup of the task's cgroup id in a hash map of H ids. Both act only on `getppid()` (the
//! syscall number is compared first), so only the dispatch differs.
//!
//! - [`HandleCgroups::build`] makes, inside the run's subtree, a directory of H handle cgroups
//!   `<dir>/0 .. <dir>/H-1` and an `outside` cgroup that is none of them; the harness builds it
//!   once per cell and tears it down after the cell's workers have exited.
//! - The worker, `hookbench worker rawtp` ([`RawTpWorker`]), joins the cgroup it is given (the
//!   last handle: the loop's worst case, it matches at the end; or `outside`: no handle
//!   matches, what every other task that calls `getppid()` pays), loads one program with the
//!   H handles, attaches it, times `getppid()` with the measurement crate like every hook worker,
//!   reads the program's counter and exits. Without a program it is the baseline: the same
//!   trigger in the same cgroup, nothing attached.
//!
//! A raw tracepoint on `sys_enter` runs for every task of the machine: the program is attached
//! only inside the worker, for as long as it measures. Its link is a bpf_link fd held by the
//! worker alone, so the kernel detaches it when the worker exits, also when it is killed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hookbench_bpf::global::{Dispatch, GlobalError, GlobalProgram};
use hookbench_bpf::libbpf_rs::Link;
use hookbench_measure::{SampleSet, TimingRequest};
use hookbench_model::Body;
use serde::{Deserialize, Serialize};

use crate::cgroup_bpf::{check_in_run, open_dir, sock_body, wide_subtree, CgroupBpfError};
use crate::cgroupfs::{CgroupError, RunTree};
use crate::trigger::{time_trigger, Trigger, TriggerError};

/// The syscall the programs act on, and the one the worker times.
pub const TRIGGER: Trigger = Trigger::Getppid;

/// The name of the cgroup of [`HandleCgroups`] that is no handle.
const OUTSIDE: &str = "outside";

/// How the worker's global program finds whether it applies ([`Dispatch`], in requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandleDispatch {
    /// A loop over the H handles ([`Dispatch::HandleLoop`]).
    HandleLoop,
    /// One cgroup-id lookup in a map of H ids ([`Dispatch::CgroupIdMap`]).
    CgroupIdMap,
}

impl HandleDispatch {
    /// The BPF program's form.
    pub fn bpf(self) -> Dispatch {
        match self {
            HandleDispatch::HandleLoop => Dispatch::HandleLoop,
            HandleDispatch::CgroupIdMap => Dispatch::CgroupIdMap,
        }
    }
}

/// The program a worker attaches for itself: its dispatch and body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawTpProgram {
    /// The loop or the map.
    pub dispatch: HandleDispatch,
    /// The body run when the program applies.
    pub body: Body,
}

/// What a raw tracepoint worker is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawTpRequest {
    /// The directory of the handle cgroups, `<handles_dir>/<i>` for i in 0..`handles`.
    pub handles_dir: PathBuf,
    /// H.
    pub handles: u32,
    /// The cgroup the worker joins (inside a `hookbench-*` run directory).
    pub home: PathBuf,
    /// The program to attach while measuring; `None` for the baseline.
    pub program: Option<RawTpProgram>,
    /// How to time [`TRIGGER`].
    pub timing: TimingRequest,
}

/// What a raw tracepoint worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawTpReport {
    /// The worker's pid.
    pub pid: u32,
    /// The trigger's samples.
    pub samples: SampleSet,
    /// Trigger calls made, warm-up included (what a counter body applying to the worker counts).
    pub calls: u64,
    /// The program's counter after the samples (`None` without a program).
    pub counter: Option<u64>,
    /// The program's kernel id (`None` without a program).
    pub program_id: Option<u32>,
}

/// Why a raw tracepoint worker could not measure.
#[derive(Debug, thiserror::Error)]
pub enum RawTpError {
    /// A cgroup was refused (outside the run) or could not be opened.
    #[error(transparent)]
    Cgroup(#[from] CgroupBpfError),
    /// Writing the worker's pid to `cgroup.procs` failed.
    #[error("joining {path}: {source}")]
    Join {
        /// The `cgroup.procs` file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Loading, filling or attaching the program failed.
    #[error("raw tracepoint program: {0}")]
    Program(#[from] GlobalError),
    /// Timing the trigger failed.
    #[error(transparent)]
    Trigger(#[from] TriggerError),
}

/// The handle cgroup `i` of the handles directory `dir` (the naming of [`wide_subtree`]).
pub fn handle_path(dir: &Path, i: u32) -> PathBuf {
    dir.join(i.to_string())
}

/// H handle cgroups and one `outside` cgroup, in a tree of their own inside a run's subtree.
///
/// Dropping it removes them (best effort); [`HandleCgroups::teardown`] says what failed.
#[derive(Debug)]
pub struct HandleCgroups {
    tree: RunTree,
    dir: PathBuf,
    handles: u32,
    outside: PathBuf,
}

impl HandleCgroups {
    /// Creates H handle cgroups and one `outside` cgroup in a nested tree under `run`'s root.
    ///
    /// The handles are `<dir>/0 .. <dir>/H-1`, one `mkdir(2)` per cgroup
    /// ([`RunTree::create_under`], [`wide_subtree`]). Errors: those of [`wide_subtree`] (H over
    /// its limit, `mkdir` failures), [`CgroupBpfError::Cgroup`].
    pub fn build(run: &RunTree, handles: u32) -> Result<HandleCgroups, CgroupBpfError> {
        let mut tree = RunTree::create_under(run.root())?;
        let dir = wide_subtree(&mut tree, handles)?.top;
        let outside = tree.child(OUTSIDE)?;
        Ok(HandleCgroups {
            tree,
            dir,
            handles,
            outside,
        })
    }

    /// The directory of the handles.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// H.
    pub fn handles(&self) -> u32 {
        self.handles
    }

    /// The last handle, where the loop matches at its end (`None` when H = 0).
    pub fn last(&self) -> Option<PathBuf> {
        self.handles.checked_sub(1).map(|i| handle_path(&self.dir, i))
    }

    /// The cgroup that is no handle.
    pub fn outside(&self) -> &Path {
        &self.outside
    }

    /// Removes the handles and the nested tree; every task must have left them.
    ///
    /// `rmdir` of each handle first (the tree's own tear-down then knows every cgroup left and
    /// needs no directory walk); on the first that fails, the careful tear-down
    /// ([`RunTree::teardown`]: kill, wait, walk, rmdir) removes the rest. Errors: its errors.
    pub fn teardown(self) -> Result<(), CgroupError> {
        for i in (0..self.handles).rev() {
            match std::fs::remove_dir(handle_path(&self.dir, i)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(_) => break,
            }
        }
        self.tree.teardown().map(|_| ())
    }
}

crate::worker::worker_kind! {
    /// The raw tracepoint worker (`hookbench worker rawtp`): joins `home`, attaches, times.
    pub struct RawTpWorker("rawtp", RawTpRequest => RawTpReport, Duration::from_secs(300)) = run_rawtp;
}

/// The worker's body; the program and its link go when it returns (or with the process).
fn run_rawtp(req: &RawTpRequest) -> Result<RawTpReport, RawTpError> {
    let pid = std::process::id();
    let home = check_in_run(&req.home)?;
    let dir = check_in_run(&req.handles_dir)?;
    let procs = home.join("cgroup.procs");
    std::fs::write(&procs, pid.to_string()).map_err(|source| RawTpError::Join { path: procs, source })?;
    // Attached only now, in this process: detached when `attached` is dropped at return, or
    // by the kernel if the worker dies first.
    let attached = req.program.map(|p| attach_program(p, &dir, req.handles)).transpose()?;
    let (samples, calls) = time_trigger(TRIGGER, &req.timing)?;
    let counter = match &attached {
        Some((_, p)) => Some(p.counter()?),
        None => None,
    };
    Ok(RawTpReport {
        pid,
        samples,
        calls,
        counter,
        program_id: attached.as_ref().map(|(_, p)| p.id()),
    })
}

/// Loads the program of `p` for the `handles` cgroups of `dir`, fills its map and attaches it.
///
/// The link comes first in the pair, so it is dropped (detached) before the program is closed.
fn attach_program(p: RawTpProgram, dir: &Path, handles: u32) -> Result<(Link, GlobalProgram), RawTpError> {
    let nr = u64::try_from(libc::SYS_getppid).unwrap_or_default();
    let prog = GlobalProgram::load(p.dispatch.bpf(), sock_body(p.body), handles, nr)?;
    for i in 0..handles {
        let cgroup: File = open_dir(&handle_path(dir, i))?;
        prog.add_cgroup(i, &cgroup)?;
    }
    Ok((prog.attach()?, prog))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{root_test, spawn_test, test_worker_command};
    use hookbench_bpf::global::loaded_global_program_ids;
    use hookbench_measure::Clock;
    use std::time::Instant;

    /// Serializes this file's root tests (they compare the machine's global program ids).
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The root tests' preamble: the lock, a run tree with `handles` handles, the programs before.
    ///
    /// The last are the global programs loaded already; `None` after saying why the test is skipped.
    fn root_setup(
        test: &str,
        handles: u32,
    ) -> Option<(std::sync::MutexGuard<'static, ()>, RunTree, HandleCgroups, Vec<u32>)> {
        let (guard, cg) = root_test(&LOCK, test, "cgroups and BPF")?;
        let run = RunTree::create(&cg).expect("run tree");
        let h = HandleCgroups::build(&run, handles).expect("handles");
        Some((guard, run, h, loaded_global_program_ids()))
    }

    /// A request for a worker in `home` with `program`, timing at least `samples` samples.
    fn request(h: &HandleCgroups, home: &Path, program: Option<RawTpProgram>, samples: usize) -> RawTpRequest {
        RawTpRequest {
            handles_dir: h.dir().to_path_buf(),
            handles: h.handles(),
            home: home.to_path_buf(),
            program,
            timing: TimingRequest {
                warmup_ns: 1_000_000,
                ..TimingRequest::new(Clock::detect().info(), None, samples, 0)
            },
        }
    }

    /// Waits up to 5 s for `ids` to leave the kernel (links go after an RCU grace period).
    fn gone_soon(ids: &[u32]) -> Vec<u32> {
        let start = Instant::now();
        loop {
            let alive: Vec<u32> = loaded_global_program_ids()
                .into_iter()
                .filter(|id| ids.contains(id))
                .collect();
            if alive.is_empty() || start.elapsed() > Duration::from_secs(5) {
                return alive;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_worker_outside_any_run_is_refused_before_it_joins() {
        let req = RawTpRequest {
            handles_dir: PathBuf::from("/tmp"),
            handles: 1,
            home: PathBuf::from("/tmp"),
            program: None,
            timing: TimingRequest::new(Clock::detect().info(), None, 1, 0),
        };
        let json = serde_json::to_string(&req).expect("encode");
        assert_eq!(serde_json::from_str::<RawTpRequest>(&json).expect("decode"), req);
        let Err(e) = run_rawtp(&req) else {
            panic!("a worker outside the run measured");
        };
        assert!(matches!(e, RawTpError::Cgroup(_)), "{e}");
    }

    /// Both forms run their body only for the task in the last handle, and go with the worker.
    ///
    /// Once per `getppid()` there, never for the task outside; no program is left after the
    /// worker exits.
    #[test]
    fn programs_run_for_the_targeted_task_only_and_go_with_the_worker() {
        let Some((_g, run, h, before)) = root_setup("programs_run_for_the_targeted_task_only", 64) else {
            return;
        };
        let last = h.last().expect("H > 0");
        let base = spawn_test::<RawTpWorker>(&request(&h, &last, None, 50)).expect("baseline");
        assert_eq!((base.counter, base.program_id), (None, None));
        let mut ids = Vec::new();
        for dispatch in [HandleDispatch::HandleLoop, HandleDispatch::CgroupIdMap] {
            for (home, targeted) in [(last.as_path(), true), (h.outside(), false)] {
                let program = RawTpProgram {
                    dispatch,
                    body: Body::Counter,
                };
                let r = spawn_test::<RawTpWorker>(&request(&h, home, Some(program), 50)).expect("worker");
                eprintln!(
                    "{dispatch:?} targeted {targeted}: {} getppid() calls, counter {:?}",
                    r.calls, r.counter
                );
                assert!(r.calls >= 50, "{r:?}");
                assert_eq!(
                    r.counter,
                    Some(if targeted { r.calls } else { 0 }),
                    "{dispatch:?} {targeted}"
                );
                ids.extend(r.program_id);
            }
        }
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert!(ids.iter().all(|id| !before.contains(id)), "{ids:?} vs {before:?}");
        let alive = gone_soon(&ids);
        assert!(alive.is_empty(), "programs outlived their workers: {alive:?}");
        h.teardown().expect("teardown");
        let root = run.root().to_path_buf();
        run.teardown().expect("run teardown");
        assert!(!root.exists(), "{} left behind", root.display());
    }

    /// A worker killed with SIGKILL while its program is attached leaves no program behind.
    #[test]
    fn a_killed_worker_leaves_no_program_attached() {
        // 2048 handles: ~25 us a call outside them all, so even the sampler's largest sample count
        // keeps the worker measuring for seconds, well past the kill.
        let Some((_g, run, h, before)) = root_setup("a_killed_worker_leaves_no_program_attached", 2048) else {
            return;
        };
        let mut req = request(&h, h.outside(), None, 1);
        req.program = Some(RawTpProgram {
            dispatch: HandleDispatch::HandleLoop,
            body: Body::Null,
        });
        // Long enough that it is still measuring when killed.
        req.timing.min_duration_ns = 60_000_000_000;
        let mut child = test_worker_command::<RawTpWorker>(&req)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn worker");
        let start = Instant::now();
        let new = loop {
            let new: Vec<u32> = loaded_global_program_ids()
                .into_iter()
                .filter(|id| !before.contains(id))
                .collect();
            if !new.is_empty() || start.elapsed() > Duration::from_secs(20) {
                break new;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // Loaded; attached a few microseconds later, then measuring: kill it while it measures.
        std::thread::sleep(Duration::from_millis(300));
        child.kill().expect("SIGKILL");
        let status = child.wait().expect("reap");
        assert!(!status.success(), "{status}");
        assert!(!new.is_empty(), "the worker never loaded its program");
        let alive = gone_soon(&new);
        assert!(alive.is_empty(), "programs outlived the killed worker: {alive:?}");
        h.teardown().expect("teardown");
        run.teardown().expect("run teardown");
    }
}
