//! The attach worker (`hookbench worker attach`): the update cost of cgroup-bpf programs.
//!
//! The update cost of cgroup-bpf and `lsm_cgroup` programs, timed in an exec'd worker with the
//! measurement crate's sampler, and its C peer, the attach floor (`workloads/c/attach_floor.c`),
//! run through the same worker protocol.
//!
//! The harness builds the subtree (a cgroup with K descendants,
//! [`crate::cgroup_bpf::wide_subtree`]) and a keeper sibling; the worker loads one program, keeps
//! one link of it in the keeper (so the kernel's one-off work of a hook's first program, the
//! `cgroup_bpf_enabled_key` static key or the `lsm_cgroup` trampoline shim, is never part of a
//! figure), then times attach (`BPF_LINK_CREATE` through libbpf: `__cgroup_bpf_attach` ->
//! `update_effective_progs` over the top and its K descendants, kernel/bpf/cgroup.c) and detach
//! (`BPF_LINK_DETACH`: `cgroup_bpf_detach` -> the same recomputation) at the top, pinned to the
//! harness's CPU and with the harness's clock ([`hookbench_measure::measure_each`]: one timed
//! operation, then its untimed undo). Its links die with it, so nothing stays attached however it
//! ends.
//!
//! The attach floor does the same two syscalls in plain C with raw `bpf(2)` and a
//! two-instruction program, nothing around them; `build.rs` compiles it and this crate embeds
//! it ([`ATTACH_FLOOR_ELF`]). [`run_attach_floor`] runs it from a scratch directory with the
//! worker protocol's launcher (parent-death signal, timeout) and reads its report line.

use std::cell::RefCell;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hookbench_bpf::lsm::LsmProgram;
use hookbench_bpf::{MeasuredHook, ProgramInstance};
use hookbench_measure::{measure_each, SampleSet, Speculation, TimingRequest};
use hookbench_model::Body;
use serde::{Deserialize, Serialize};

use crate::cgroup_bpf::{check_in_run, open_dir, AttachBench, CgroupBpfError, CgroupProgram};
use crate::trigger::TriggerError;
use crate::worker::{spawn_with, Launch, WorkerError};

/// The program an attach worker attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachProgram {
    /// A `cgroup/getsockname4` program (`BPF_CGROUP_INET4_GETSOCKNAME`): cgroup-bpf's.
    Getsockname4,
    /// A `cgroup/sock_create` program (`BPF_CGROUP_INET_SOCK_CREATE`): cgroup-bpf-socket's.
    SockCreate,
    /// An `lsm_cgroup/socket_create` program (`BPF_LSM_CGROUP`): lsm-cgroup's.
    LsmCgroup,
}

impl AttachProgram {
    /// The attach floor's first argument for this program's attach type, if the floor loads it.
    ///
    /// `None` for `lsm_cgroup`, which the floor does not load (it would need the kernel's BTF).
    pub fn floor_arg(self) -> Option<&'static str> {
        match self {
            AttachProgram::Getsockname4 => Some("getsockname4"),
            AttachProgram::SockCreate => Some("sock_create"),
            AttachProgram::LsmCgroup => None,
        }
    }
}

/// What an attach worker is asked: attach and detach one program of `body` at `top`.
///
/// `timing.samples` timed rounds of each after `warmup` untimed ones, keeping one link of it in
/// `keeper`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachRequest {
    /// The program to attach.
    pub program: AttachProgram,
    /// Its body.
    pub body: Body,
    /// The attach point: the top of the measured subtree (inside a `hookbench-*` run).
    pub top: PathBuf,
    /// A cgroup outside the subtree where one link stays while the worker measures.
    pub keeper: PathBuf,
    /// Untimed rounds before each series.
    pub warmup: usize,
    /// The clock, the CPU and the number of timed rounds (`samples`) of each series.
    pub timing: TimingRequest,
}

/// What an attach worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttachReport {
    /// The worker's pid.
    pub pid: u32,
    /// The kernel id of the program it attached (freed when the worker exited).
    pub program_id: u32,
    /// Attach times, one per timed round (K = 1).
    pub attach: SampleSet,
    /// Detach times, one per timed round (K = 1).
    pub detach: SampleSet,
}

/// 100,000 descendants cost tens of ms per attach; a full-profile series takes minutes.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(900);

crate::worker::worker_kind! {
    /// The attach worker kind (`hookbench worker attach`).
    pub struct AttachWorker("attach", AttachRequest => AttachReport, ATTACH_TIMEOUT) = run_attach;
}

/// The attach worker's body: times attaches and detaches of one program at the top.
///
/// Loads the program, keeps one link in the keeper, times the attach series and then the detach
/// series at the top, and detaches everything.
fn run_attach(req: &AttachRequest) -> Result<AttachReport, CgroupBpfError> {
    match req.program {
        AttachProgram::Getsockname4 => time_attach::<ProgramInstance>(MeasuredHook::Getsockname4, req),
        AttachProgram::SockCreate => time_attach::<ProgramInstance>(MeasuredHook::SockCreate, req),
        AttachProgram::LsmCgroup => time_attach::<LsmProgram>((), req),
    }
}

/// The body of [`run_attach`] for one program type.
fn time_attach<P: CgroupProgram>(hook: P::Hook, req: &AttachRequest) -> Result<AttachReport, CgroupBpfError> {
    let top = check_in_run(&req.top)?;
    let keeper = check_in_run(&req.keeper)?;
    req.timing.pin().map_err(|source| {
        CgroupBpfError::Trigger(TriggerError::Pin {
            cpu: req.timing.cpu,
            source,
        })
    })?;
    let clock = req.timing.clock();
    let samples = req.timing.samples.max(1);
    let mut bench = AttachBench::<P>::new(hook, req.body)?;
    bench.keep_attached_at(&keeper)?;
    let program_id = bench.program_id();
    let dir = open_dir(&top)?;
    let bench = RefCell::new(bench);
    let failed: RefCell<Option<CgroupBpfError>> = RefCell::new(None);
    let fail = |e: CgroupBpfError| {
        failed.borrow_mut().get_or_insert(e);
    };
    let attach = || {
        if let Err(e) = bench.borrow_mut().attach_at(dir.as_fd(), &top) {
            fail(e);
        }
        0
    };
    let detach = || {
        match bench.borrow_mut().detach_last() {
            Some(Err(e)) => fail(e),
            None => fail(CgroupBpfError::Invalid {
                what: "outstanding attaches",
                value: 0,
                why: "a detach needs an attach before it (an attach failed)",
            }),
            Some(Ok(())) => {}
        }
        0
    };
    let release = || bench.borrow_mut().release_detached();
    let sampler = |e| CgroupBpfError::Trigger(TriggerError::Sampler(e));
    // Attach series: each timed attach is followed by an untimed detach and close.
    let a = measure_each(&clock, samples, req.warmup, &attach, || {
        detach();
        release();
    })
    .map_err(sampler)?;
    // Detach series: one attach is outstanding before each timed detach.
    attach();
    let d = measure_each(&clock, samples, req.warmup, &detach, || {
        release();
        attach();
    })
    .map_err(sampler)?;
    detach();
    release();
    if let Some(e) = failed.into_inner() {
        return Err(e);
    }
    let speculation = Speculation::of_self();
    Ok(AttachReport {
        pid: std::process::id(),
        program_id,
        attach: SampleSet::from_measurement(&a, speculation.clone()),
        detach: SampleSet::from_measurement(&d, speculation),
    })
}

/// The C attach floor (`workloads/c/attach_floor.c`) compiled by `build.rs`.
///
/// Empty when it could not be built ([`attach_floor_available`] says why).
pub static ATTACH_FLOOR_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/attach_floor"));

/// Why `build.rs` could not build the attach floor (empty when it did).
const ATTACH_FLOOR_ERROR: &str = env!("HOOKBENCH_ATTACH_FLOOR_ERROR");

/// Whether the attach floor was built into this binary; `Err` says why not and what to do.
pub fn attach_floor_available() -> Result<(), String> {
    if ATTACH_FLOOR_ELF.is_empty() {
        Err(format!(
            "the C attach floor (workloads/c/attach_floor.c) was not built into this hookbench: {}",
            if ATTACH_FLOOR_ERROR.is_empty() {
                "no reason recorded; rebuild with a C compiler"
            } else {
                ATTACH_FLOOR_ERROR
            }
        ))
    } else {
        Ok(())
    }
}

/// Writes the attach floor into `dir` as `attach_floor`, mode 0700, and returns its path.
///
/// `dir` must exist. Errors: the reason, when it was not built or cannot be written.
pub fn install_attach_floor(dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    attach_floor_available()?;
    let path = dir.join("attach_floor");
    std::fs::write(&path, ATTACH_FLOOR_ELF)
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("cannot write the C attach floor to {}: {e}", path.display()))?;
    Ok(path)
}

/// What the attach floor is asked: an [`AttachRequest`]'s attach point, keeper and rounds.
///
/// On the CPU `cpu`.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorRequest {
    /// The program's attach type ([`AttachProgram::floor_arg`]).
    pub program: AttachProgram,
    /// The attach point.
    pub top: PathBuf,
    /// Where the floor keeps its one link.
    pub keeper: PathBuf,
    /// Timed rounds.
    pub samples: usize,
    /// Untimed rounds first.
    pub warmup: usize,
    /// The CPU to pin to (`None`: leave the affinity alone).
    pub cpu: Option<u32>,
}

/// What the attach floor reports (its JSON report line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloorReport {
    /// Its pid.
    pub pid: u32,
    /// The id of its program.
    pub prog_id: u32,
    /// The median cost of a `CLOCK_MONOTONIC_RAW` read pair, ns, taken off every value.
    pub clock_overhead_ns: f64,
    /// The CPU it started on.
    #[serde(default)]
    pub cpu: Option<u32>,
    /// CPU changes between rounds.
    pub cpu_migrations: u64,
    /// Attach times, ns.
    pub attach_ns: Vec<f64>,
    /// Detach times, ns.
    pub detach_ns: Vec<f64>,
}

impl FloorReport {
    /// The attach and detach times as sample sets (K = 1), as the worker's are.
    pub fn sample_sets(&self) -> (SampleSet, SampleSet) {
        let set = |values: &[f64]| {
            let mut sorted = values.to_vec();
            sorted.sort_by(f64::total_cmp);
            let median = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0) + self.clock_overhead_ns;
            SampleSet {
                values_ns: values.to_vec(),
                batch_k: 1,
                clock_overhead_ns: self.clock_overhead_ns,
                clock_share: if median > 0.0 {
                    (self.clock_overhead_ns / median).min(1.0)
                } else {
                    0.0
                },
                cpu: self.cpu,
                cpu_migrations: self.cpu_migrations,
                speculation: Speculation::default(),
            }
        };
        (set(&self.attach_ns), set(&self.detach_ns))
    }
}

crate::worker::worker_kind! {
    /// The worker protocol's view of the attach floor: its report type and timeout.
    ///
    /// The floor is a C program, not a `hookbench worker` kind: it is not in
    /// [`crate::worker::KINDS`], and [`Worker::run`](crate::worker::Worker::run) refuses.
    struct AttachFloorProtocol("attach-floor", () => FloorReport, ATTACH_TIMEOUT) = |(): &()| {
        Err::<FloorReport, _>("the attach floor is the C program workloads/c/attach_floor.c: run it with run_attach_floor")
    };
}

/// Runs the attach floor `exe` (installed by [`install_attach_floor`]) on `req`; its report.
///
/// Errors: [`WorkerError::Refused`] when the attach point is outside a hookbench run, the program
/// has no floor, or the floor says why it could not measure (a refused `bpf(2)`); the other
/// variants when it could not be run.
pub fn run_attach_floor(exe: &Path, req: &FloorRequest) -> Result<FloorReport, WorkerError> {
    let refused = |e: CgroupBpfError| WorkerError::Refused(e.to_string());
    let top = check_in_run(&req.top).map_err(refused)?;
    let keeper = check_in_run(&req.keeper).map_err(refused)?;
    let program = req.program.floor_arg().ok_or_else(|| {
        WorkerError::Refused(format!(
            "the C attach floor loads no {:?} program (it would need the kernel's BTF)",
            req.program
        ))
    })?;
    let cpu = req.cpu.map(i64::from).unwrap_or(-1).to_string();
    let (samples, warmup) = (req.samples.max(1).to_string(), req.warmup.to_string());
    let (top, keeper) = (top.to_string_lossy(), keeper.to_string_lossy());
    let args: [&str; 6] = [program, &top, &keeper, &samples, &warmup, &cpu];
    spawn_with::<AttachFloorProtocol>(
        &Launch {
            exe,
            args_prefix: &args,
            envs: &[],
            timeout: None,
        },
        &(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup_bpf::{wide_subtree, WideSubtree};
    use crate::cgroupfs::{Cgroup2, RunTree};
    use crate::test_support::{median, spawn_test, Scratch};
    use hookbench_bpf::prog_exists;
    use hookbench_measure::Clock;
    use std::sync::MutexGuard;

    /// Serializes the root tests of this file (they time and check for leftovers).
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// [`LOCK`], the cgroup2 mount, a run tree and a keeper cgroup in it for root test `test`.
    ///
    /// The keeper has no descendants. `None` after saying why the test is skipped.
    fn root_run(test: &str) -> Option<(MutexGuard<'static, ()>, Cgroup2, RunTree, WideSubtree)> {
        let (guard, cg, mut run) = crate::test_support::root_run(&LOCK, test, "needs root (cgroups and BPF programs)")?;
        let keeper = wide_subtree(&mut run, 0).expect("keeper");
        Some((guard, cg, run, keeper))
    }

    fn request(program: AttachProgram, top: &Path, keeper: &Path, samples: usize) -> AttachRequest {
        AttachRequest {
            program,
            body: Body::Null,
            top: top.to_path_buf(),
            keeper: keeper.to_path_buf(),
            warmup: 5,
            timing: TimingRequest::new(Clock::detect().info(), None, samples, 0),
        }
    }

    /// The attach floor in a new scratch directory `tag`, removed with it.
    ///
    /// It is built where the README's gcc is installed.
    fn installed_floor(tag: &str) -> (Scratch, PathBuf) {
        attach_floor_available().expect("the C floor is built where the README's gcc is installed");
        let dir = Scratch::new(tag);
        let exe = install_attach_floor(dir.path()).expect("install");
        (dir, exe)
    }

    /// The attach floor's request for a cgroup/getsockname4 program at `top`, 5 rounds of warm-up.
    fn floor_request(top: &Path, keeper: &Path, samples: usize, cpu: Option<u32>) -> FloorRequest {
        FloorRequest {
            program: AttachProgram::Getsockname4,
            top: top.to_path_buf(),
            keeper: keeper.to_path_buf(),
            samples,
            warmup: 5,
            cpu,
        }
    }

    #[test]
    fn attach_worker_times_attach_and_detach_and_leaves_nothing() {
        let Some((_g, cg, mut run, keeper)) = root_run("attach_worker_times_attach_and_detach_and_leaves_nothing")
        else {
            return;
        };
        let sub = wide_subtree(&mut run, 10).expect("K=10");
        for program in [AttachProgram::Getsockname4, AttachProgram::SockCreate] {
            let r = spawn_test::<AttachWorker>(&request(program, &sub.top, &keeper.top, 50)).expect("worker ran");
            assert_eq!(r.attach.values_ns.len(), 50, "{program:?}");
            assert_eq!(r.detach.values_ns.len(), 50, "{program:?}");
            assert_eq!((r.attach.batch_k, r.detach.batch_k), (1, 1));
            // An attach is a syscall that recomputes 11 effective arrays: microseconds.
            let (mut a, mut d) = (r.attach.values_ns.clone(), r.detach.values_ns.clone());
            let (a, d) = (median(&mut a), median(&mut d));
            eprintln!("attach worker {program:?} at K=10: median attach {a:.0} ns, detach {d:.0} ns");
            assert!(a > 200.0 && a < 5e6 && d > 200.0 && d < 5e6, "{a} {d}");
            // The worker's program is gone: nothing of it stays attached.
            assert!(r.program_id > 0 && !prog_exists(r.program_id), "{}", r.program_id);
        }
        // Nothing is attached at the top or the keeper.
        for cgroup in [&sub.top, &keeper.top] {
            let dir = open_dir(cgroup).expect("open");
            for hook in MeasuredHook::ALL {
                let ids = hookbench_bpf::query_cgroup(dir.as_fd(), hook.attach_type(), false).expect("query");
                assert!(ids.is_empty(), "{} still has {ids:?}", cgroup.display());
            }
        }
        // Outside a run, the worker refuses.
        let e = spawn_test::<AttachWorker>(&request(AttachProgram::Getsockname4, cg.mount(), &keeper.top, 1))
            .expect_err("refused");
        assert!(e.to_string().contains("not inside"), "{e}");
        crate::test_support::teardown_leaves_nothing(run);
    }

    #[test]
    fn attach_floor_reports_and_leaves_nothing() {
        let Some((_g, _, mut run, keeper)) = root_run("attach_floor_reports_and_leaves_nothing") else {
            return;
        };
        let sub = wide_subtree(&mut run, 10).expect("K=10");
        let (_dir, exe) = installed_floor("attach-floor");
        let req = floor_request(&sub.top, &keeper.top, 40, None);
        let r = run_attach_floor(&exe, &req).expect("floor ran");
        assert_eq!((r.attach_ns.len(), r.detach_ns.len()), (40, 40));
        assert!(r.attach_ns.iter().all(|&v| v > 0.0), "{:?}", r.attach_ns);
        assert!(r.prog_id > 0 && !prog_exists(r.prog_id));
        let (a, d) = r.sample_sets();
        assert_eq!((a.values_ns.len(), d.batch_k), (40, 1));
        // Its refusals come back as reasons.
        let bad = FloorRequest {
            top: PathBuf::from("/tmp"),
            ..req.clone()
        };
        assert!(matches!(run_attach_floor(&exe, &bad), Err(WorkerError::Refused(_))));
        let lsm = FloorRequest {
            program: AttachProgram::LsmCgroup,
            ..req
        };
        match run_attach_floor(&exe, &lsm) {
            Err(WorkerError::Refused(why)) => assert!(why.contains("BTF"), "{why}"),
            other => panic!("{other:?}"),
        }
        run.teardown().expect("teardown");
    }

    /// The floor check: the worker's attach and detach are within 1.25x of the C floor's.
    ///
    /// Medians at K = 0 and K = 1000, runs interleaved (worker, floor, worker, floor, ...) and
    /// medians of the per-run medians compared.
    #[test]
    fn attach_worker_is_within_1_25x_of_the_c_floor() {
        let Some((_g, _, mut run, keeper)) = root_run("attach_worker_is_within_1_25x_of_the_c_floor") else {
            return;
        };
        let (_dir, exe) = installed_floor("attach-floor-ratio");
        let cpu = hookbench_measure::pin::allowed_cpus()
            .ok()
            .and_then(|c| c.last().copied())
            .and_then(|c| u32::try_from(c).ok());
        for k in [0u32, 1000] {
            let sub = wide_subtree(&mut run, k).expect("subtree");
            let samples = if k == 0 { 400 } else { 100 };
            let (mut worker, mut floor) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
            for _ in 0..5 {
                let mut req = request(AttachProgram::Getsockname4, &sub.top, &keeper.top, samples);
                req.timing.cpu = cpu;
                let r = spawn_test::<AttachWorker>(&req).expect("worker");
                worker[0].push(median(&mut r.attach.values_ns.clone()));
                worker[1].push(median(&mut r.detach.values_ns.clone()));
                let f = run_attach_floor(&exe, &floor_request(&sub.top, &keeper.top, samples, cpu)).expect("floor");
                floor[0].push(median(&mut f.attach_ns.clone()));
                floor[1].push(median(&mut f.detach_ns.clone()));
            }
            for (i, what) in ["attach", "detach"].into_iter().enumerate() {
                let (w, c) = (median(&mut worker[i]), median(&mut floor[i]));
                eprintln!(
                    "K={k}: {what} median: worker {:.2} us, C floor {:.2} us, ratio {:.3}",
                    w / 1e3,
                    c / 1e3,
                    w / c
                );
                assert!(
                    w <= 1.25 * c,
                    "K={k}: worker {what} {w:.0} ns over 1.25x the C floor's {c:.0} ns"
                );
            }
        }
        run.teardown().expect("teardown");
    }
}
