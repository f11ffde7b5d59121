//! Helpers the workloads tests share, so each test file says only what it tests.
//!
//! Running workers from the test binary, the root-test preamble, scratch directories, and checks
//! for what a test left behind.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use hookbench_measure::{Clock, TimingRequest};

use crate::attach_worker::{AttachProgram, AttachRequest, AttachWorker};
use crate::cgroup_bpf::wide_subtree;
use crate::cgroupfs::{cgroup2_or_skip, Cgroup2, RunTree, RUN_PREFIX};
use crate::sock_worker::{SockReport, SockRequest, SockWorker};
use crate::trigger::Trigger;
use crate::worker::{dispatch, report_line, spawn_with, Envelope, Launch, Worker, WorkerError};

/// Env var naming the worker kind [`worker_entry`] runs.
pub(crate) const KIND_ENV: &str = "HOOKBENCH_TEST_WORKER";

/// Arguments that make this test binary run only [`worker_entry`] (the request follows).
pub(crate) const WORKER_ARGS: [&str; 4] = [
    "--exact",
    "test_support::worker_entry",
    "--nocapture",
    "--test-threads=1",
];

/// A command that runs `req` in a worker of kind `W` from this test binary.
///
/// For tests that manage the process themselves (to kill it, to place it first).
pub(crate) fn test_worker_command<W: Worker>(req: &W::Request) -> std::process::Command {
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = crate::worker::worker_command(&exe);
    cmd.args(WORKER_ARGS)
        .arg(serde_json::to_string(req).expect("request"))
        .env(KIND_ENV, W::KIND);
    cmd
}

/// The worker mode of this test binary: dispatches like `hookbench worker KIND`.
///
/// Does nothing without `HOOKBENCH_TEST_WORKER`; reads the request from the last argument.
#[test]
fn worker_entry() {
    let Some(kind) = std::env::var_os(KIND_ENV) else { return };
    let request = std::env::args().next_back().unwrap_or_default();
    match dispatch(&kind.to_string_lossy(), &request) {
        Ok(line) => println!("\n{line}"),
        Err(e) => println!("\n{}", report_line(&Envelope::<()>::Refused(e.to_string()))),
    }
}

/// Runs `req` in a worker of kind `W` started from this test binary, with extra `envs`.
pub(crate) fn spawn_test_with<W: Worker>(
    req: &W::Request,
    envs: &[(&str, &str)],
    timeout: Option<Duration>,
) -> Result<W::Report, WorkerError> {
    let exe = std::env::current_exe().expect("current_exe");
    let mut all: Vec<(&str, &str)> = vec![(KIND_ENV, W::KIND)];
    all.extend_from_slice(envs);
    spawn_with::<W>(
        &Launch {
            exe: &exe,
            args_prefix: &WORKER_ARGS,
            envs: &all,
            timeout,
        },
        req,
    )
}

/// Runs `req` in a worker of kind `W` started from this test binary.
pub(crate) fn spawn_test<W: Worker>(req: &W::Request) -> Result<W::Report, WorkerError> {
    spawn_test_with::<W>(req, &[], None)
}

/// A socket worker in `cgroup` timing `socket()` for at least `samples` samples.
///
/// It attaches the global BPF LSM programs of `global_lsm` first.
pub(crate) fn spawn_sock(
    cgroup: &Path,
    samples: usize,
    global_lsm: Option<crate::lsm::GlobalLsmRequest>,
) -> Result<SockReport, WorkerError> {
    spawn_sock_with(cgroup, Trigger::Socket, samples, global_lsm)
}

/// A socket worker in `cgroup` timing `trigger` for at least `samples` samples.
///
/// It attaches the global BPF LSM programs of `global_lsm` first.
pub(crate) fn spawn_sock_with(
    cgroup: &Path,
    trigger: Trigger,
    samples: usize,
    global_lsm: Option<crate::lsm::GlobalLsmRequest>,
) -> Result<SockReport, WorkerError> {
    spawn_test::<SockWorker>(&SockRequest {
        cgroup: cgroup.to_path_buf(),
        trigger,
        timing: TimingRequest {
            warmup_ns: 1_000_000,
            ..TimingRequest::new(Clock::detect().info(), None, samples, 0)
        },
        global_lsm,
        fire: None,
    })
}

/// A socket worker in `cgroup` that fires `trigger` exactly `n` times, untimed.
pub(crate) fn spawn_fire(cgroup: &Path, trigger: Trigger, n: u64) -> Result<SockReport, WorkerError> {
    spawn_test::<SockWorker>(&SockRequest {
        cgroup: cgroup.to_path_buf(),
        trigger,
        timing: TimingRequest::new(Clock::detect().info(), None, 1, 0),
        global_lsm: None,
        fire: Some(n),
    })
}

/// Least-squares slope of `(x, y)` points, with the measurement crate's fit.
pub(crate) fn slope(points: &[(f64, f64)]) -> f64 {
    let (xs, ys): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    hookbench_measure::fit_linear(&xs, &ys).expect("fit").slope
}

/// Median of `v` (sorted in place).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Takes `lock` and the cgroup2 mount for root test `test`, if it can run.
///
/// A file's root tests run one at a time under `lock`. `None` after saying why it is skipped
/// (`needs`: what it needs root for).
pub(crate) fn root_test(
    lock: &'static Mutex<()>,
    test: &str,
    needs: &str,
) -> Option<(MutexGuard<'static, ()>, Cgroup2)> {
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let cg = cgroup2_or_skip(test, needs)?;
    Some((guard, cg))
}

/// [`root_test`] with a new run tree in the cgroup2 mount.
pub(crate) fn root_run(
    lock: &'static Mutex<()>,
    test: &str,
    needs: &str,
) -> Option<(MutexGuard<'static, ()>, Cgroup2, RunTree)> {
    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let (cg, run) = run_tree_or_skip(test, needs)?;
    Some((guard, cg, run))
}

/// The cgroup2 mount and a new run tree in it for root test `test`, if it can run (no lock).
///
/// `None` after saying why it is skipped (`needs`: what it needs root for).
pub(crate) fn run_tree_or_skip(test: &str, needs: &str) -> Option<(Cgroup2, RunTree)> {
    let cg = cgroup2_or_skip(test, needs)?;
    let run = RunTree::create(&cg).expect("run tree");
    Some((cg, run))
}

/// Tears the run's tree down and checks that nothing of it is left.
pub(crate) fn teardown_leaves_nothing(run: RunTree) {
    let root = run.root().to_path_buf();
    run.teardown().expect("teardown");
    assert!(!root.exists(), "{} left behind", root.display());
}

/// Drops `links`, tears the run down and checks that no cgroup nor program `ids` is left.
///
/// `links` is what keeps the programs attached.
pub(crate) fn teardown_unloads<L>(run: RunTree, links: L, ids: &[u32]) {
    drop(links);
    teardown_leaves_nothing(run);
    let alive: Vec<u32> = ids
        .iter()
        .copied()
        .filter(|&id| hookbench_bpf::prog_exists(id))
        .collect();
    assert!(alive.is_empty(), "programs still loaded (attached): {alive:?}");
}

/// Checks that attaching `program` over `k` descendants in `run` costs more than over 0.
///
/// Detaching too when `detach_too`; then tears `run` down. Each subtree is timed by one attach
/// worker (`samples` rounds after `warmup`), with one keeper cgroup beside them; every worker's
/// program must be gone when it exits.
pub(crate) fn check_attach_grows(
    mut run: RunTree,
    program: AttachProgram,
    k: u32,
    warmup: usize,
    samples: usize,
    detach_too: bool,
) {
    let subs = [0, k].map(|k| wide_subtree(&mut run, k).expect("subtree"));
    let keeper = wide_subtree(&mut run, 0).expect("keeper");
    let [small, big] = subs.map(|sub| {
        let req = AttachRequest {
            program,
            body: hookbench_model::Body::Null,
            top: sub.top,
            keeper: keeper.top.clone(),
            warmup,
            timing: TimingRequest::new(Clock::detect().info(), None, samples, 0),
        };
        let r = spawn_test::<AttachWorker>(&req).expect("attach worker");
        let a = median(&mut r.attach.values_ns.clone());
        let d = median(&mut r.detach.values_ns.clone());
        let k = sub.descendants;
        eprintln!(
            "{program:?} attach at K={k}: median attach {:.1} us, detach {:.1} us",
            a / 1e3,
            d / 1e3
        );
        assert!(
            !hookbench_bpf::prog_exists(r.program_id),
            "the worker's program outlived it"
        );
        (a, d)
    });
    assert!(big.0 > small.0, "{program:?} attach K={k} {big:?} vs K=0 {small:?}");
    if detach_too {
        assert!(big.1 > small.1, "{program:?} detach K={k} {big:?} vs K=0 {small:?}");
    }
    teardown_leaves_nothing(run);
}

/// A scratch directory `$TMPDIR/hookbench-<pid>-<tag>`, removed on drop.
///
/// It is named like a run's, so `hookbench cleanup` removes it if the test is killed.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Creates the directory of `tag`.
    pub(crate) fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{RUN_PREFIX}{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `run` in a forked child that `_exit`s with its code, and asserts that the code is 0.
///
/// For checks that change the task for good (a seccomp filter stays on it); `codes` is the
/// failure message, saying what each non-zero code means.
pub(crate) fn assert_forked_child_exits_0(run: impl FnOnce() -> i32, codes: &str) {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    // SAFETY: the child runs `run` and _exits without returning into the test harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = run();
            // SAFETY: _exit in the forked child.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            let status = waitpid(child, None).expect("waitpid");
            assert_eq!(status, WaitStatus::Exited(child, 0), "{codes}");
        }
    }
}
