//! hookbench.ko workloads: a worker process that joins a cgroup of the run, opens its own `/dev/hookbench` session, attaches N programs on the measured hook and F foreign ones in one dispatch model, and times the hook with the module's in-kernel loop (RUN) or one FIRE ioctl per hook.
//!
//! The module finds per-task state by the calling task and per-cgroup state by the calling
//! task's cgroup v2 cgroup, so the task that fires must be the one the programs were installed
//! on or the one inside the cgroup they were attached to: a fresh worker process (`hookbench
//! worker kmod '<json>'`) does everything, and its session (and every attachment in it) is freed
//! by the module when the worker exits, however it exits.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hookbench_kmod::{AttachFlags, Device, KmodError, KmodProgram, Model};
use hookbench_model::Body;
use serde::{Deserialize, Serialize};

use crate::worker::{run_json_worker, WorkerFailure, WorkerRun};

/// The hook every measured program is attached to; foreign programs go to hooks 1..hooks-1.
pub const MEASURED_HOOK: u32 = 0;

/// Marker before the worker's JSON report on stdout.
pub const KMOD_REPORT_MARKER: &str = "hookbench-kmod-report: ";

/// Longest a kmod worker may run.
pub const KMOD_WORKER_TIMEOUT: Duration = Duration::from_secs(300);

/// Largest samples per repetition a worker takes.
pub const MAX_KMOD_SAMPLES: usize = 1 << 20;

/// Largest repetitions a worker takes.
pub const MAX_KMOD_REPETITIONS: usize = 1000;

/// How a hook is fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FireMode {
    /// The module's RUN ioctl: `batch` fires per sample timed with `ktime_get_ns()` in the
    /// kernel, preemption disabled: the pure dispatch cost.
    InKernel,
    /// One FIRE ioctl per hook, `batch` of them timed in userspace: dispatch plus the syscall
    /// (the baseline, the same ioctl with nothing attached, carries the syscall).
    Ioctl,
}

/// What a kmod worker is asked to do. JSON on the worker's command line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KmodWorkerRequest {
    /// The model, by its DESIGN.md name (`task-chain`, `task-hook-array`, `cgroup-effective`,
    /// `global-filter`).
    pub model: String,
    /// How the hook is fired.
    pub mode: FireMode,
    /// The cgroup to join first (the deepest of `path` for cgroup-effective); inside a
    /// `hookbench-*` run directory of the cgroup2 mount.
    pub cgroup: Option<PathBuf>,
    /// cgroup-effective: the cgroups from the top of the path down to `cgroup`; program i is
    /// attached at `path[i % path.len()]` with `BPF_F_ALLOW_MULTI` semantics.
    #[serde(default)]
    pub path: Vec<PathBuf>,
    /// Programs on the measured hook.
    pub programs: u32,
    /// Programs on other hooks (never run by the measured hook).
    pub foreign: u32,
    /// Distinct hooks in use (foreign programs spread over hooks 1..hooks-1); at least 2 when
    /// `foreign > 0`.
    pub hooks: u32,
    /// The program body.
    pub body: Body,
    /// Samples per repetition.
    pub samples: usize,
    /// Repetitions.
    pub repetitions: usize,
    /// Fires per sample.
    pub batch: u32,
}

/// What a kmod worker reports, one JSON line on stdout after [`KMOD_REPORT_MARKER`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct KmodWorkerReport {
    /// The worker's pid.
    pub pid: u32,
    /// ns per fire with nothing attached (same model, same task/cgroup), per repetition.
    pub baseline_ns: Vec<Vec<f64>>,
    /// ns per fire with the programs attached, per repetition.
    pub samples_ns: Vec<Vec<f64>>,
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
    /// Why it could not measure, if it could not.
    pub error: Option<String>,
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
    /// A cgroup file could not be used.
    #[error("{op} {path}: {source} (run as root; the cgroup must be inside this run's hookbench-* subtree)")]
    Io {
        /// What was done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The module ran a number of programs other than the request's.
    #[error("the module ran {got} programs per fire, the request attached {want}: a dispatch bug")]
    WrongCount {
        /// Programs per fire the module reported.
        got: u32,
        /// Programs attached on the measured hook.
        want: u32,
    },
    /// The worker could not be run or gave no report.
    #[error("kmod worker {exe}: {what}")]
    Worker {
        /// The executable.
        exe: String,
        /// What went wrong.
        what: String,
    },
    /// The request could not be encoded.
    #[error("cannot encode the kmod worker request: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl KmodWorkerRequest {
    /// Checks every field; the model name is parsed. Errors: [`KmodWorkloadError::Invalid`].
    pub fn validate(&self) -> Result<Model, KmodWorkloadError> {
        let invalid =
            |what: &'static str, value: String, why: &'static str| Err(KmodWorkloadError::Invalid { what, value, why });
        let model: Model = match self.model.parse() {
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
        if model == Model::CgroupEffective && (self.path.is_empty() || self.cgroup.is_none()) {
            return invalid(
                "path",
                format!("{} cgroups", self.path.len()),
                "cgroup-effective needs the cgroup path and the cgroup to join",
            );
        }
        Ok(model)
    }
}

/// The worker's body: validates `req`, joins `req.cgroup`, opens a session, measures the
/// baseline (nothing attached), attaches the programs, checks the module runs exactly
/// `programs` per fire, measures, and reads the counters and the session's metadata bytes.
/// Never fails: errors go to the report. Call it only in a fresh process that exits afterwards
/// (`hookbench worker kmod '<json>'`): it moves the whole process into the cgroup.
pub fn run_kmod_worker(req: &KmodWorkerRequest) -> KmodWorkerReport {
    let mut report = KmodWorkerReport {
        pid: std::process::id(),
        ..Default::default()
    };
    if let Err(e) = measure(req, &mut report) {
        report.error = Some(e.to_string());
        report.samples_ns.clear();
        report.baseline_ns.clear();
    }
    report
}

fn join_cgroup(cgroup: &Path) -> Result<(), KmodWorkloadError> {
    let real = crate::cgroup_bpf::check_in_run(cgroup).map_err(|e| KmodWorkloadError::Io {
        op: "check",
        path: cgroup.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let procs = real.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string()).map_err(|source| KmodWorkloadError::Io {
        op: "write",
        path: procs,
        source,
    })
}

fn open_dir(path: &Path) -> Result<std::fs::File, KmodWorkloadError> {
    std::fs::File::open(path).map_err(|source| KmodWorkloadError::Io {
        op: "open",
        path: path.to_path_buf(),
        source,
    })
}

/// `samples` samples of `batch` fires of the measured hook, as ns per fire.
fn sample(
    dev: &Device,
    model: Model,
    mode: FireMode,
    batch: u32,
    samples: usize,
    fires: &mut u64,
) -> Result<(Vec<f64>, u32), KmodWorkloadError> {
    let per = f64::from(batch);
    match mode {
        FireMode::InKernel => {
            let run = dev.run(model, MEASURED_HOOK, batch, samples)?;
            // RUN fires once, untimed, before its loop (that fire's count is progs_per_fire).
            *fires += u64::from(batch) * samples as u64 + 1;
            Ok((
                run.samples_ns.iter().map(|&ns| ns as f64 / per).collect(),
                run.summary.progs_per_fire,
            ))
        }
        FireMode::Ioctl => {
            let mut out = Vec::with_capacity(samples);
            let mut progs = 0;
            for _ in 0..samples {
                let start = Instant::now();
                for _ in 0..batch {
                    progs = dev.fire(model, MEASURED_HOOK)?.progs_run;
                }
                out.push(start.elapsed().as_nanos() as f64 / per);
            }
            *fires += u64::from(batch) * samples as u64;
            Ok((out, progs))
        }
    }
}

fn measure(req: &KmodWorkerRequest, report: &mut KmodWorkerReport) -> Result<(), KmodWorkloadError> {
    let model = req.validate()?;
    if let Some(cg) = &req.cgroup {
        join_cgroup(cg)?;
    }
    let dev = Device::open()?;
    let warm = (req.samples / 10).max(1);
    let mut unused = 0;
    // Baseline: the same model, task and cgroup with nothing attached.
    sample(&dev, model, req.mode, req.batch, warm, &mut unused)?;
    for _ in 0..req.repetitions {
        report
            .baseline_ns
            .push(sample(&dev, model, req.mode, req.batch, req.samples, &mut unused)?.0);
    }
    let dirs: Vec<std::fs::File> = req.path.iter().map(|p| open_dir(p)).collect::<Result<_, _>>()?;
    let attach = |prog: &KmodProgram, hook: u32, i: usize| -> Result<(), KmodWorkloadError> {
        match model {
            Model::TaskChain | Model::TaskHookArray => {
                dev.install_task(model, prog.prog_ref(), hook)?;
            }
            Model::CgroupEffective => {
                let dir = &dirs[i % dirs.len()];
                dev.attach_cgroup(
                    std::os::fd::AsFd::as_fd(dir),
                    prog.prog_ref(),
                    hook,
                    AttachFlags::AllowMulti,
                )?;
            }
            Model::GlobalFilter => {
                dev.attach_global(prog.prog_ref(), hook)?;
            }
        }
        Ok(())
    };
    // Foreign programs run the counter body so that a run of one shows in its counter.
    let mut foreign = Vec::with_capacity(req.foreign as usize);
    for j in 0..req.foreign as usize {
        let prog = KmodProgram::load(Body::Counter)?;
        attach(&prog, 1 + (j as u32 % (req.hooks - 1)), j)?;
        foreign.push(prog);
    }
    let mut programs = Vec::with_capacity(req.programs as usize);
    for i in 0..req.programs as usize {
        let prog = KmodProgram::load(req.body)?;
        attach(&prog, MEASURED_HOOK, i)?;
        programs.push(prog);
    }
    let (_, got) = sample(&dev, model, req.mode, req.batch, warm, &mut report.fires)?;
    if got != req.programs {
        return Err(KmodWorkloadError::WrongCount {
            got,
            want: req.programs,
        });
    }
    report.progs_per_fire = got;
    for _ in 0..req.repetitions {
        let (s, _) = sample(&dev, model, req.mode, req.batch, req.samples, &mut report.fires)?;
        report.samples_ns.push(s);
    }
    if req.body == Body::Counter {
        report.counters = programs.iter().map(|p| p.counter()).collect::<Result<_, _>>()?;
    }
    report.foreign_counters = foreign.iter().map(|p| p.counter()).collect::<Result<_, _>>()?;
    report.metadata_bytes = dev.stats()?.bytes;
    Ok(())
}

/// The worker's stdout line: [`KMOD_REPORT_MARKER`] + the report as JSON.
pub fn format_kmod_report_line(report: &KmodWorkerReport) -> String {
    match serde_json::to_string(report) {
        Ok(json) => format!("{KMOD_REPORT_MARKER}{json}"),
        Err(e) => format!(
            "{KMOD_REPORT_MARKER}{{\"pid\":{},\"baseline_ns\":[],\"samples_ns\":[],\"progs_per_fire\":0,\"fires\":0,\
             \"counters\":[],\"foreign_counters\":[],\"metadata_bytes\":0,\"error\":{:?}}}",
            report.pid,
            e.to_string()
        ),
    }
}

/// Runs `exe args_prefix... <request JSON>` (fork + exec; killed with its parent), waits at most
/// [`KMOD_WORKER_TIMEOUT`] and parses the report. A report with `error` set is `Ok`: the caller
/// decides. Errors: [`KmodWorkloadError::Worker`], [`KmodWorkloadError::Serialize`].
pub fn spawn_kmod_worker(
    exe: &Path,
    args_prefix: &[&str],
    req: &KmodWorkerRequest,
) -> Result<KmodWorkerReport, KmodWorkloadError> {
    let json = serde_json::to_string(req)?;
    let run = WorkerRun {
        exe,
        args_prefix,
        envs: &[],
        timeout: KMOD_WORKER_TIMEOUT,
        poll: Duration::from_millis(2),
        marker: KMOD_REPORT_MARKER,
        bare_json_fallback: false,
    };
    run_json_worker(&run, &json).map_err(|f| {
        let (exe, what) = match f {
            WorkerFailure::Io { exe, what, source } => (exe, format!("{what} failed: {source}")),
            WorkerFailure::Timeout { exe, timeout_ms } => (exe, format!("killed after {timeout_ms} ms")),
            WorkerFailure::NoReport { exe, status, stderr } => (exe, format!("no report ({status}): {stderr}")),
            WorkerFailure::BadReport { exe, line, source } => (exe, format!("bad report '{line}': {source}")),
        };
        KmodWorkloadError::Worker { exe, what }
    })
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
            samples: 100,
            repetitions: 2,
            batch: 64,
        }
    }

    #[test]
    fn requests_are_checked_field_by_field() {
        assert_eq!(req().validate().ok(), Some(Model::TaskChain));
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
    }

    #[test]
    fn the_report_line_round_trips_and_a_worker_without_the_module_says_what_to_load() {
        let rep = KmodWorkerReport {
            pid: 7,
            samples_ns: vec![vec![1.5, 2.5]],
            ..Default::default()
        };
        let line = format_kmod_report_line(&rep);
        let json = line.strip_prefix(KMOD_REPORT_MARKER).expect("marker");
        assert_eq!(serde_json::from_str::<KmodWorkerReport>(json).expect("parses"), rep);
        if !Path::new(hookbench_kmod::abi::HB_KMOD_DEVICE).exists() {
            let r = run_kmod_worker(&req());
            let e = r.error.expect("no module, no measurement");
            assert!(e.contains("insmod") || e.contains("hookbench.ko"), "{e}");
            assert!(r.samples_ns.is_empty());
        }
    }
}
