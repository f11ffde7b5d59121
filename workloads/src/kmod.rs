//! hookbench.ko workloads: a worker in a cgroup of the run times the module's hook, in one model.
//!
//! The worker joins the cgroup, opens its own `/dev/hookbench` session, attaches N programs on
//! the measured hook and F foreign ones in one dispatch model, and times the hook with the
//! module's in-kernel loop (RUN) or one FIRE ioctl per hook. With a working set W > 1 the
//! in-kernel loop fires W copies of the worker's state (task entry and chain, or cgroup entry and
//! effective arrays) built by the module, in the order the request's seed draws (claim 6).
//!
//! The module finds per-task state by the calling task and per-cgroup state by the calling
//! task's cgroup v2 cgroup, so the task that fires must be the one the programs were installed
//! on or the one inside the cgroup they were attached to: a fresh worker process (`hookbench
//! worker kmod '<json>'`) does everything, and its sessions (and every attachment in them) are
//! freed by the module when the worker exits, however it exits. The baseline is a second session
//! of the same worker with nothing attached (the module keeps state per session), measured
//! alternately with the programs' session, repetition by repetition.

use std::path::PathBuf;
use std::time::Duration;

use hookbench_kmod::{Device, KmodError, KmodProgram, ProgRef, WorkingSet};
use hookbench_model::{AttachFlags, Body, ModelKind};
use serde::{Deserialize, Serialize};

use hookbench_measure::{SampleSet, Speculation, TimingRequest};

use crate::world::MEASURED_HOOK;

/// Largest samples per repetition a worker takes.
pub const MAX_KMOD_SAMPLES: usize = 1 << 20;

/// Largest repetitions a worker takes.
pub const MAX_KMOD_REPETITIONS: usize = 1000;

/// How a hook is fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FireMode {
    /// The module's RUN ioctl, timed in the kernel: the pure dispatch cost.
    ///
    /// `batch` fires per sample timed with `ktime_get_ns()`, preemption disabled.
    InKernel,
    /// One FIRE ioctl per hook, `batch` of them timed in userspace: dispatch plus the syscall.
    ///
    /// The baseline, the same ioctl with nothing attached, carries the syscall.
    Ioctl,
}

/// What a kmod worker is asked to do. JSON on the worker's command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KmodWorkerRequest {
    /// The model, by its ARCHITECTURE.md name.
    ///
    /// `task-chain`, `task-hook-array`, `cgroup-effective` or `global-filter` (see "Names" in
    /// ARCHITECTURE.md).
    pub model: String,
    /// How the hook is fired.
    pub mode: FireMode,
    /// The cgroup to join first, inside a `hookbench-*` run directory of the cgroup2 mount.
    ///
    /// For cgroup-effective, the deepest of `path`.
    pub cgroup: Option<PathBuf>,
    /// cgroup-effective: the cgroups from the top of the path down to `cgroup`.
    ///
    /// Program i is attached at `path[i % path.len()]` with `BPF_F_ALLOW_MULTI` semantics.
    #[serde(default)]
    pub path: Vec<PathBuf>,
    /// Programs on the measured hook.
    pub programs: u32,
    /// Programs on other hooks (never run by the measured hook).
    pub foreign: u32,
    /// Distinct hooks in use, foreign programs spread over hooks 1..hooks-1.
    ///
    /// At least 2 when `foreign > 0`.
    pub hooks: u32,
    /// The program body.
    pub body: Body,
    /// Whether the measured programs are the module's built-in null body, not `body`'s.
    ///
    /// The null body (`prog_fd = -1`) is a native call; a BPF body is interpreted without a JIT.
    #[serde(default)]
    pub builtin_body: bool,
    /// Samples per repetition.
    pub samples: usize,
    /// Repetitions.
    pub repetitions: usize,
    /// Fires per sample (in-kernel loop).
    pub batch: u32,
    /// W: states the in-kernel loop fires in turn (1: the worker's own; see the module's RUN).
    #[serde(default = "one")]
    pub working_set: u32,
    /// Seed of the order of the W states (ignored when W is 1).
    #[serde(default)]
    pub seed: u64,
    /// The clock and CPU for the ioctl mode (timed in userspace) and the pinning of both modes.
    pub timing: TimingRequest,
}

/// What a kmod worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KmodWorkerReport {
    /// The worker's pid.
    pub pid: u32,
    /// Per repetition, ns per fire with nothing attached, measured alternately with `samples`.
    ///
    /// The baseline is a second session of the same model, task and cgroup.
    pub baseline: Vec<SampleSet>,
    /// Per repetition, ns per fire with the programs attached.
    pub samples: Vec<SampleSet>,
    /// Programs one fire of the measured hook ran (the module's count).
    pub progs_per_fire: u32,
    /// Fires of the measured hook made with the programs attached (warm-up included).
    pub fires: u64,
    /// Runs of each measured program's counter body (empty for other bodies): `fires` each.
    pub counters: Vec<u64>,
    /// Runs of each foreign program's counter body: 0 each.
    pub foreign_counters: Vec<u64>,
    /// Bytes of dispatch metadata in the session with everything attached (the module's STATS).
    pub metadata_bytes: u64,
    /// Bytes of the W states one RUN fired (W x one state's; the module's count, 0 for ioctls).
    #[serde(default)]
    pub working_set_bytes: u64,
}

/// serde's default working set: the worker's own state alone.
fn one() -> u32 {
    1
}

/// Errors of the kmod workloads.
#[derive(Debug, thiserror::Error)]
pub enum KmodWorkloadError {
    /// A request value is out of range.
    #[error("kmod worker: {what} = {value} is out of range: {why}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Its value.
        value: String,
        /// The valid range.
        why: &'static str,
    },
    /// The module refused or failed an operation.
    #[error(transparent)]
    Kmod(#[from] KmodError),
    /// The cgroup could not be joined or opened (see [`crate::cgroup_bpf::CgroupBpfError`]).
    #[error("{0} (run as root; the cgroup must be inside this run's hookbench-* subtree)")]
    Cgroup(#[from] crate::cgroup_bpf::CgroupBpfError),
    /// The module fired the working set's states in another order than the seed's permutation.
    #[error(
        "the module's digest of the states fired is {got:#x}, the seed's permutation gives {want:#x}: the working \
         set was not fired in order"
    )]
    WrongOrder {
        /// The module's `states_digest`.
        got: u64,
        /// The digest of [`hookbench_kmod::abi::working_set_permutation`].
        want: u64,
    },
    /// The module ran a number of programs other than the request's.
    #[error("the module ran {got} programs per fire, the request attached {want}: a dispatch bug")]
    WrongCount {
        /// Programs per fire the module reported.
        got: u32,
        /// Programs attached on the measured hook.
        want: u32,
    },
    /// Pinning or the sampler failed.
    #[error("timing: {0}")]
    Timing(String),
}

impl KmodWorkerRequest {
    /// The RUN working set of this request (its seed dropped when W is 1).
    pub fn working_set(&self) -> WorkingSet {
        WorkingSet::new(self.working_set, self.seed)
    }

    /// Checks every field; the model name is parsed. Errors: [`KmodWorkloadError::Invalid`].
    pub fn validate(&self) -> Result<ModelKind, KmodWorkloadError> {
        let invalid =
            |what: &'static str, value: String, why: &'static str| Err(KmodWorkloadError::Invalid { what, value, why });
        let model: ModelKind = match self.model.parse() {
            Ok(m) => m,
            Err(_) => {
                return invalid(
                    "model",
                    self.model.clone(),
                    "use task-chain, task-hook-array, cgroup-effective or global-filter",
                )
            }
        };
        let max_hooks = hookbench_kmod::abi::HB_KMOD_MAX_HOOKS;
        if self.hooks == 0 || self.hooks > max_hooks {
            return invalid("hooks", self.hooks.to_string(), "use 1..=16 (HB_KMOD_MAX_HOOKS)");
        }
        if self.foreign > 0 && self.hooks < 2 {
            return invalid("hooks", self.hooks.to_string(), "foreign programs need hooks >= 2");
        }
        if self.samples == 0 || self.samples > MAX_KMOD_SAMPLES {
            return invalid("samples", self.samples.to_string(), "use 1..=1048576");
        }
        if self.repetitions == 0 || self.repetitions > MAX_KMOD_REPETITIONS {
            return invalid("repetitions", self.repetitions.to_string(), "use 1..=1000");
        }
        hookbench_kmod::device::check_run(self.batch, self.samples)?;
        hookbench_kmod::device::check_working_set(self.working_set())?;
        if self.working_set > 1 && (self.mode == FireMode::Ioctl || model == ModelKind::GlobalFilter) {
            return invalid(
                "working_set",
                self.working_set.to_string(),
                "a working set > 1 needs the in-kernel loop and per-task or per-cgroup state (not ioctl, not \
                 global-filter)",
            );
        }
        if model == ModelKind::CgroupEffective && (self.path.is_empty() || self.cgroup.is_none()) {
            return invalid(
                "path",
                format!("{} cgroups", self.path.len()),
                "cgroup-effective needs the cgroup path and the cgroup to join",
            );
        }
        Ok(model)
    }
}

crate::worker::worker_kind! {
    /// The kmod worker kind (`hookbench worker kmod`): times hookbench.ko's hook from a cgroup.
    ///
    /// It validates the request, joins the cgroup, opens two sessions (one stays empty: the
    /// baseline), attaches the programs in the other, checks the module runs exactly `programs`
    /// per fire, measures both alternately, and reads the counters and the session's metadata
    /// bytes. Run only in a fresh process that exits afterwards: it moves the whole process into
    /// the cgroup.
    pub struct KmodWorker("kmod", KmodWorkerRequest => KmodWorkerReport, Duration::from_secs(300)) = measure;
}

/// `samples` samples of `batch` fires of the measured hook in session `dev`, ns per fire.
///
/// Also returns the number of programs one fire ran and the bytes of the states fired.
fn sample(
    dev: &Device,
    model: ModelKind,
    req: &KmodWorkerRequest,
    samples: usize,
    fires: &mut u64,
) -> Result<(SampleSet, u32, u64), KmodWorkloadError> {
    match req.mode {
        FireMode::InKernel => {
            let per = f64::from(req.batch);
            let ws = req.working_set();
            let run = dev.run_working_set(model, MEASURED_HOOK, req.batch, samples, ws)?;
            if ws.states > 1 {
                let perm = hookbench_kmod::abi::working_set_permutation(ws.states, ws.seed);
                let want = hookbench_kmod::abi::states_digest(&perm, u64::from(req.batch) * samples as u64);
                if run.summary.states_digest != want {
                    return Err(KmodWorkloadError::WrongOrder {
                        got: run.summary.states_digest,
                        want,
                    });
                }
            }
            // RUN fires once, untimed, before its loop (that fire's count is progs_per_fire).
            *fires += u64::from(req.batch) * samples as u64 + 1;
            // SAFETY: sched_getcpu takes no argument.
            let cpu = u32::try_from(unsafe { libc::sched_getcpu() }).ok();
            let set = SampleSet {
                values_ns: run.samples_ns.iter().map(|&ns| ns as f64 / per).collect(),
                batch_k: u64::from(req.batch),
                // Timed in the kernel with ktime_get_ns() around the loop, preemption disabled.
                clock_overhead_ns: 0.0,
                clock_share: 0.0,
                cpu,
                cpu_migrations: 0,
                speculation: Speculation::of_self(),
            };
            Ok((set, run.summary.progs_per_fire, run.summary.working_set_bytes))
        }
        FireMode::Ioctl => {
            let clock = req.timing.clock();
            let config = hookbench_measure::SamplerConfig {
                samples,
                ..req.timing.sampler_config()
            };
            let mut progs = 0;
            let mut failed = None;
            let m = hookbench_measure::measure(&clock, &config, &mut |k| {
                for _ in 0..k {
                    match dev.fire(model, MEASURED_HOOK) {
                        Ok(f) => progs = f.progs_run,
                        Err(e) => {
                            failed.get_or_insert(e);
                        }
                    }
                }
                *fires += k;
                u64::from(progs)
            })
            .map_err(|e| KmodWorkloadError::Timing(e.to_string()))?;
            if let Some(e) = failed {
                return Err(e.into());
            }
            Ok((SampleSet::from_measurement(&m, Speculation::of_self()), progs, 0))
        }
    }
}

fn measure(req: &KmodWorkerRequest) -> Result<KmodWorkerReport, KmodWorkloadError> {
    let model = req.validate()?;
    if let Some(cg) = &req.cgroup {
        crate::cgroup_bpf::join_run_cgroup(cg)?;
    }
    req.timing.pin().map_err(|e| KmodWorkloadError::Timing(e.to_string()))?;
    let dev = Device::open()?;
    let base = Device::open()?;
    let mut report = KmodWorkerReport {
        pid: std::process::id(),
        baseline: Vec::new(),
        samples: Vec::new(),
        progs_per_fire: 0,
        fires: 0,
        counters: Vec::new(),
        foreign_counters: Vec::new(),
        metadata_bytes: 0,
        working_set_bytes: 0,
    };
    let warm = (req.samples / 10).max(1);
    let mut unused = 0;
    let dirs: Vec<std::fs::File> = req
        .path
        .iter()
        .map(|p| crate::cgroup_bpf::open_dir(p))
        .collect::<Result<_, _>>()?;
    let attach = |prog: ProgRef<'_>, hook: u32, i: usize| -> Result<(), KmodWorkloadError> {
        match model {
            ModelKind::TaskChain | ModelKind::TaskHookArray => {
                dev.install_task(model, prog, hook)?;
            }
            ModelKind::CgroupEffective => {
                let dir = &dirs[i % dirs.len()];
                dev.attach_cgroup(std::os::fd::AsFd::as_fd(dir), prog, hook, AttachFlags::ALLOW_MULTI)?;
            }
            ModelKind::GlobalFilter => {
                dev.attach_global(prog, hook)?;
            }
        }
        Ok(())
    };
    // Foreign programs run the counter body so that a run of one shows in its counter.
    let mut foreign = Vec::with_capacity(req.foreign as usize);
    for j in 0..req.foreign as usize {
        let prog = KmodProgram::load(Body::Counter)?;
        attach(prog.prog_ref(), 1 + (j as u32 % (req.hooks - 1)), j)?;
        foreign.push(prog);
    }
    let mut programs = Vec::with_capacity(req.programs as usize);
    for i in 0..req.programs as usize {
        if req.builtin_body {
            attach(ProgRef::NullBody, MEASURED_HOOK, i)?;
        } else {
            let prog = KmodProgram::load(req.body)?;
            attach(prog.prog_ref(), MEASURED_HOOK, i)?;
            programs.push(prog);
        }
    }
    sample(&base, model, req, warm, &mut unused)?;
    let (_, got, bytes) = sample(&dev, model, req, warm, &mut report.fires)?;
    report.working_set_bytes = bytes;
    if got != req.programs {
        return Err(KmodWorkloadError::WrongCount {
            got,
            want: req.programs,
        });
    }
    report.progs_per_fire = got;
    // Baseline and programs alternate, the baseline first in even repetitions.
    for r in 0..req.repetitions {
        if r % 2 == 0 {
            report
                .baseline
                .push(sample(&base, model, req, req.samples, &mut unused)?.0);
        }
        report
            .samples
            .push(sample(&dev, model, req, req.samples, &mut report.fires)?.0);
        if r % 2 == 1 {
            report
                .baseline
                .push(sample(&base, model, req, req.samples, &mut unused)?.0);
        }
    }
    if req.body == Body::Counter && !req.builtin_body {
        report.counters = programs.iter().map(|p| p.counter()).collect::<Result<_, _>>()?;
    }
    report.foreign_counters = foreign.iter().map(|p| p.counter()).collect::<Result<_, _>>()?;
    report.metadata_bytes = dev.stats()?.bytes;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> KmodWorkerRequest {
        KmodWorkerRequest {
            model: "task-chain".into(),
            mode: FireMode::InKernel,
            cgroup: None,
            path: Vec::new(),
            programs: 4,
            foreign: 2,
            hooks: 4,
            body: Body::Counter,
            builtin_body: false,
            samples: 100,
            repetitions: 2,
            batch: 64,
            working_set: 1,
            seed: 0,
            timing: TimingRequest::new(hookbench_measure::Clock::monotonic_raw().info(), None, 100, 0),
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        assert_eq!(req().validate().ok(), Some(ModelKind::TaskChain));
        let bad = |f: fn(&mut KmodWorkerRequest), field: &str| {
            let mut r = req();
            f(&mut r);
            let e = r.validate().expect_err("invalid").to_string();
            assert!(e.contains(field), "{e}");
        };
        bad(|r| r.model = "chain".into(), "model");
        bad(|r| r.hooks = 0, "hooks");
        bad(|r| r.hooks = 17, "hooks");
        bad(|r| r.hooks = 1, "foreign programs need hooks >= 2");
        bad(|r| r.samples = 0, "samples");
        bad(|r| r.repetitions = 0, "repetitions");
        bad(|r| r.batch = 0, "batch");
        bad(|r| r.model = "cgroup-effective".into(), "path");
        bad(|r| r.working_set = 0, "working set");
        bad(|r| r.working_set = 65537, "working set");
        bad(
            |r| (r.working_set, r.mode) = (2, FireMode::Ioctl),
            "needs the in-kernel loop",
        );
        bad(
            |r| (r.working_set, r.model) = (2, "global-filter".into()),
            "needs the in-kernel loop",
        );
        let mut r = req();
        (r.working_set, r.seed) = (4096, 7);
        assert_eq!(r.validate().ok(), Some(ModelKind::TaskChain));
        assert_eq!(r.working_set(), WorkingSet { states: 4096, seed: 7 });
        r.working_set = 1;
        assert_eq!(r.working_set(), WorkingSet::ONE, "W = 1 carries no seed");
    }

    #[test]
    fn a_worker_without_the_module_says_what_to_load() {
        if !std::path::Path::new(hookbench_kmod::abi::HB_KMOD_DEVICE).exists() {
            let e = <KmodWorker as crate::worker::Worker>::run(&req()).expect_err("no module, no measurement");
            assert!(e.contains("insmod") || e.contains("hookbench.ko"), "{e}");
        }
    }
}
