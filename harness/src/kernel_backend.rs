//! The `kernel` backend: mechanisms that shipped, measured on the running kernel: seccomp filter stacks and Landlock domains (per-task chains) against cgroup-bpf effective arrays, timed in re-exec'd worker processes.
//!
//! Seccomp filters and Landlock layers belong to the task that installs them and cannot be
//! removed, so each measurement runs in a fresh `hookbench worker KIND '<request>'` process
//! (exec'd, never a fork of the multi-threaded harness) that installs the chain and times the
//! trigger; the harness collects its samples. The worker with an empty chain (the native
//! syscall) is the baseline.

use crate::backend::{summary_cell, Backend, CellError, CellSpec, Measured};
use crate::measure::stats::{histogram_to_base64, new_histogram_ps, record_ps, Summary, PS_PER_NS};
use crate::suite::Metric;
use hookbench_model::{ModelKind, Params};
use hookbench_reports::{cell_id, Accounting, Baseline};
use hookbench_workloads::cgroup_bpf::{
    spawn_sock_worker, wide_subtree, AttachBench, CgroupBpfError, CgroupBpfTree, SockWorkerRequest, WideSubtree,
};
use hookbench_workloads::cgroupfs::{cleanup_stale, mkdir_floor, Cgroup2, RunTree, Shape};
use hookbench_workloads::landlock::{spawn_landlock_worker, LandlockWorkerRequest, LANDLOCK_MAX_NUM_LAYERS};
use hookbench_workloads::seccomp::{max_filters, spawn_worker, FilterBody, Trigger, WorkerRequest};
use hookbench_workloads::taskpool::{task_floor, TaskPool};
use std::collections::HashMap;
use std::path::PathBuf;

/// Name of this backend in the results.
pub const NAME: &str = "kernel";

/// Syscalls per timed sample in a seccomp worker (about 80 ns each natively, so a sample lasts
/// tens of microseconds: the clock's own cost is negligible).
pub const SECCOMP_BATCH: u64 = 500;

/// `open()`+`close()` pairs per timed sample in a Landlock worker (about 1 us each).
pub const LANDLOCK_BATCH: u64 = 50;

/// `socket()` calls per timed sample in a socket worker (a few us each).
pub const SOCKET_BATCH: u64 = 100;

/// Most samples per repetition the kernel backend takes, whatever the suite asks (the model's
/// profiles ask for thousands of sub-microsecond samples; a kernel sample is a batch of syscalls
/// of tens to hundreds of microseconds). Each cell's `samples` says how many were taken.
pub const KERNEL_MAX_SAMPLES: usize = 2000;

/// Samples per repetition for a kernel cell of `spec`.
fn kernel_samples(spec: &CellSpec<'_>) -> usize {
    spec.samples.clamp(1, KERNEL_MAX_SAMPLES)
}

/// The kernel backend's mechanisms, with the DESIGN.md model each realises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelMechanism {
    /// A stack of classic-BPF seccomp filters that load a syscall argument: the kernel's action
    /// cache cannot prove their result, so every filter of the chain runs on every syscall
    /// (`struct seccomp_filter`'s `prev` list, kernel/seccomp.c `seccomp_run_filters`).
    SeccompArgLoad,
    /// A stack of filters whose result depends only on the syscall number and arch: the action
    /// cache (`seccomp_cache_check_allow`) skips the whole chain.
    SeccompNrOnly,
    /// Argument-loading filters timed on `socket(AF_INET, SOCK_DGRAM)`, the trigger of
    /// `cgroup/sock_create` programs: the same-trigger comparison with cgroup-bpf.
    SeccompSocket,
    /// A Landlock domain of N stacked layers (`landlock_restrict_self`), timed on `open()` of an
    /// allowed file `depth` directories down: every layer is checked for every path component
    /// (security/landlock/fs.c `is_access_to_paths_allowed`).
    Landlock,
    /// N `cgroup/sock_create` programs attached with `BPF_F_ALLOW_MULTI` over a path of `depth`
    /// cgroups (program i at level i % depth) plus `foreign` programs on other attach types,
    /// timed on `socket()` from a task in the deepest cgroup: the kernel runs
    /// `cgroup->bpf.effective[CGROUP_INET_SOCK_CREATE]` (kernel/bpf/cgroup.c).
    CgroupBpf,
    /// `lsm_cgroup/socket_create` programs attached per cgroup (`BPF_LSM_CGROUP`: an effective
    /// array per cgroup behind a BPF trampoline). Needs a kernel that allows trampolines.
    LsmCgroup,
    /// One global `lsm/socket_create` program walking a per-task chain kept in task storage
    /// (the RFC's design expressed in BPF). Needs a kernel that allows trampolines.
    LsmGlobal,
    /// Set-up and tear-down of C cgroups (containers shape: a slice of containers, each with a
    /// few children) in a fresh run subtree, against the floor: a plain mkdir/rmdir loop.
    SetupCgroups,
    /// Set-up and tear-down of T idle tasks spread over cgroups (`clone3(CLONE_INTO_CGROUP)`),
    /// against the floor: fork + write to `cgroup.procs`, then kill + reap.
    SetupTasks,
}

impl KernelMechanism {
    /// Every kernel mechanism of this version.
    pub const ALL: [KernelMechanism; 9] = [
        KernelMechanism::SeccompArgLoad,
        KernelMechanism::SeccompNrOnly,
        KernelMechanism::SeccompSocket,
        KernelMechanism::Landlock,
        KernelMechanism::CgroupBpf,
        KernelMechanism::LsmCgroup,
        KernelMechanism::LsmGlobal,
        KernelMechanism::SetupCgroups,
        KernelMechanism::SetupTasks,
    ];

    /// The results name, e.g. "seccomp-arg-load".
    pub fn as_str(self) -> &'static str {
        match self {
            KernelMechanism::SeccompArgLoad => "seccomp-arg-load",
            KernelMechanism::SeccompNrOnly => "seccomp-nr-only",
            KernelMechanism::SeccompSocket => "seccomp-socket",
            KernelMechanism::Landlock => "landlock",
            KernelMechanism::CgroupBpf => "cgroup-bpf",
            KernelMechanism::LsmCgroup => "lsm-cgroup",
            KernelMechanism::LsmGlobal => "lsm-global",
            KernelMechanism::SetupCgroups => "setup-cgroups",
            KernelMechanism::SetupTasks => "setup-tasks",
        }
    }

    /// The dispatch model the mechanism realises: seccomp stacks and Landlock domains are
    /// per-task chains, cgroup-bpf is per-cgroup effective arrays.
    pub fn model(self) -> ModelKind {
        match self {
            KernelMechanism::CgroupBpf | KernelMechanism::LsmCgroup | KernelMechanism::SetupCgroups => {
                ModelKind::CgroupEffective
            }
            _ => ModelKind::TaskChain,
        }
    }

    /// The filter body and timed syscall of a seccomp mechanism, `None` for the others.
    fn seccomp(self) -> Option<(FilterBody, Trigger)> {
        match self {
            KernelMechanism::SeccompArgLoad => Some((FilterBody::ArgLoad, Trigger::Getppid)),
            KernelMechanism::SeccompNrOnly => Some((FilterBody::NrOnly, Trigger::Getppid)),
            KernelMechanism::SeccompSocket => Some((FilterBody::ArgLoad, Trigger::Socket)),
            KernelMechanism::Landlock
            | KernelMechanism::CgroupBpf
            | KernelMechanism::LsmCgroup
            | KernelMechanism::LsmGlobal
            | KernelMechanism::SetupCgroups
            | KernelMechanism::SetupTasks => None,
        }
    }
}

/// Checks a `[backend.kernel]` mechanism name of a suite; returns its model.
pub fn kernel_mechanism(name: &str) -> Result<ModelKind, String> {
    KernelMechanism::ALL
        .into_iter()
        .find(|m| m.as_str() == name)
        .map(KernelMechanism::model)
        .ok_or_else(|| {
            format!(
                "unknown mechanism '{name}': expected one of {}",
                KernelMechanism::ALL.map(KernelMechanism::as_str).join(", ")
            )
        })
}

/// What the machine offers the kernel backend, from the environment probe: `Err(reason)` for a
/// mechanism the kernel lacks.
#[derive(Debug, Clone)]
pub struct KernelSupport {
    /// Seccomp filters can be installed.
    pub seccomp: Result<(), String>,
    /// Landlock is enabled.
    pub landlock: Result<(), String>,
    /// cgroup-bpf programs can be loaded and attached (root, a cgroup v2 mount, BPF).
    pub cgroup_bpf: Result<(), String>,
    /// BPF trampolines (lsm, lsm_cgroup, fentry programs) are allowed; the probe's result.
    pub trampolines: Result<(), String>,
}

/// Per-repetition samples (ns) of one worker configuration.
type Reps = Vec<Vec<f64>>;

/// The kernel backend. Keeps the baselines (empty chains) it measured, keyed by what they depend
/// on, so a sweep measures each once.
pub struct KernelBackend {
    exe: PathBuf,
    support: KernelSupport,
    scratch: PathBuf,
    baselines: HashMap<(KernelMechanism, u32, usize, usize), Reps>,
    /// This run's own cgroup subtree, made at the first cgroup-bpf cell and torn down on drop.
    run: Option<RunTree>,
}

impl KernelBackend {
    /// A kernel backend whose workers are `exe` (this binary), on a machine offering `support`.
    /// Landlock workers build their directory chains under a fresh directory in the system's
    /// temporary directory, removed when the backend is dropped.
    pub fn new(exe: PathBuf, support: KernelSupport) -> KernelBackend {
        let scratch = std::env::temp_dir().join(format!(
            "hookbench-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        KernelBackend {
            exe,
            support,
            scratch,
            baselines: HashMap::new(),
            run: None,
        }
    }

    fn check_support(&self, mechanism: KernelMechanism) -> Result<(), CellError> {
        let (what, support) = match mechanism {
            KernelMechanism::Landlock => ("Landlock", &self.support.landlock),
            KernelMechanism::CgroupBpf | KernelMechanism::SetupCgroups | KernelMechanism::SetupTasks => {
                ("cgroup v2 trees", &self.support.cgroup_bpf)
            }
            KernelMechanism::LsmCgroup | KernelMechanism::LsmGlobal => ("BPF LSM programs", &self.support.trampolines),
            _ => ("seccomp filters", &self.support.seccomp),
        };
        support
            .clone()
            .map_err(|reason| CellError::Skip(format!("{what} not available here: {reason}")))
    }

    /// Runs one seccomp worker per repetition; each returns `samples` per-syscall figures (ns),
    /// or, with `install`, the time of each of its `filters` installs.
    fn seccomp_workers(
        &self,
        (body, trigger): (FilterBody, Trigger),
        filters: u32,
        spec: &CellSpec<'_>,
        install: bool,
    ) -> Result<Reps, CellError> {
        let mut reps = Vec::with_capacity(spec.repetitions);
        for _ in 0..spec.repetitions {
            let req = WorkerRequest {
                body,
                filters,
                // An install-only worker measures one syscall, to keep it short.
                samples: if install { 1 } else { kernel_samples(spec) },
                batch: match (install, trigger) {
                    (true, _) => 1,
                    (false, Trigger::Getppid) => SECCOMP_BATCH,
                    (false, Trigger::Socket) => SOCKET_BATCH,
                },
                trigger,
            };
            let report = spawn_worker(&self.exe, &["worker", "seccomp"], &req)
                .map_err(|e| CellError::Fatal(anyhow::anyhow!("seccomp worker failed: {e}")))?;
            if let Some(error) = report.error {
                // The kernel refused (e.g. the seccomp instruction budget): this cell only.
                return Err(CellError::Skip(error));
            }
            reps.push(if install { report.install_ns } else { report.samples_ns });
        }
        Ok(reps)
    }

    /// Runs Landlock workers: per repetition one worker with `layers` layers timing `samples`
    /// opens at `dir_depth`; with `install`, enough 16-layer workers to time `samples` installs.
    fn landlock_workers(
        &self,
        layers: u32,
        dir_depth: u32,
        spec: &CellSpec<'_>,
        install: bool,
    ) -> Result<Reps, CellError> {
        std::fs::create_dir_all(&self.scratch)
            .map_err(|e| CellError::Fatal(anyhow::anyhow!("cannot create {}: {e}", self.scratch.display())))?;
        let mut reps = Vec::with_capacity(spec.repetitions);
        for _ in 0..spec.repetitions {
            let wanted = kernel_samples(spec);
            let mut values = Vec::with_capacity(wanted);
            while values.len() < wanted {
                let req = LandlockWorkerRequest {
                    layers: if install { LANDLOCK_MAX_NUM_LAYERS } else { layers },
                    dir_depth: dir_depth.max(1),
                    samples: if install { 1 } else { wanted },
                    batch: LANDLOCK_BATCH,
                    root: self.scratch.clone(),
                };
                let report = spawn_landlock_worker(&self.exe, &["worker", "landlock"], &req)
                    .map_err(|e| CellError::Fatal(anyhow::anyhow!("landlock worker failed: {e}")))?;
                if let Some(error) = report.error {
                    return Err(CellError::Skip(error));
                }
                if install {
                    values.extend(report.install_ns);
                } else {
                    values = report.samples_ns;
                    break;
                }
            }
            values.truncate(wanted);
            reps.push(values);
        }
        Ok(reps)
    }

    /// This run's cgroup subtree, created on first use after removing what killed runs left.
    fn run_tree(&mut self) -> Result<&mut RunTree, CellError> {
        if self.run.is_none() {
            let cg = Cgroup2::detect().map_err(|e| CellError::Skip(e.to_string()))?;
            if let Err(e) = cleanup_stale(&cg) {
                eprintln!("hookbench: warning: could not remove stale hookbench cgroups: {e}");
            }
            let run = RunTree::create(&cg)
                .map_err(|e| CellError::Fatal(anyhow::anyhow!("cannot create this run's cgroup subtree: {e}")))?;
            self.run = Some(run);
        }
        self.run
            .as_mut()
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("the run's cgroup subtree is missing")))
    }

    /// Builds a path of `depth` cgroups with `programs` + `foreign` programs and runs one
    /// `socket()` worker per repetition in its deepest cgroup; the programs are detached (links
    /// dropped) before returning.
    fn cgroup_bpf_workers(
        &mut self,
        p: &Params,
        programs: u32,
        foreign: u32,
        spec: &CellSpec<'_>,
    ) -> Result<Reps, CellError> {
        let exe = self.exe.clone();
        let run = self.run_tree()?;
        let tree = CgroupBpfTree::build(run, p.depth.max(1), programs, foreign, p.body)
            .map_err(|e| CellError::Skip(e.to_string()))?;
        let mut reps = Vec::with_capacity(spec.repetitions);
        for _ in 0..spec.repetitions {
            let req = SockWorkerRequest {
                cgroup: tree.leaf().to_path_buf(),
                samples: kernel_samples(spec),
                batch: SOCKET_BATCH,
            };
            let report = spawn_sock_worker(&exe, &["worker", "sock"], &req)
                .map_err(|e| CellError::Fatal(anyhow::anyhow!("socket worker failed: {e}")))?;
            if let Some(error) = report.error {
                return Err(CellError::Skip(error));
            }
            reps.push(report.samples_ns);
        }
        Ok(reps)
    }

    fn hook_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        if mechanism == KernelMechanism::CgroupBpf {
            return self.cgroup_bpf_hook_cell(spec);
        }
        if p.working_set != 1 || p.cpus != 1 || p.foreign != 0 {
            return Err(CellError::Skip(format!(
                "{} cells measure one task on one CPU with every program on the hook: working_set = {}, cpus = {}, foreign = {} are not measured by this version",
                mechanism.as_str(),
                p.working_set,
                p.cpus,
                p.foreign
            )));
        }
        let depth = if mechanism == KernelMechanism::Landlock {
            p.depth
        } else {
            0
        };
        let key = (mechanism, depth, spec.samples, spec.repetitions);
        let native = self.baseline(key, |b| match mechanism.seccomp() {
            Some((_, trigger)) => b.seccomp_workers((FilterBody::NrOnly, trigger), 0, spec, false),
            None => b.landlock_workers(0, depth, spec, false),
        })?;
        let (raw, batch, runs) = match mechanism.seccomp() {
            Some(seccomp) => {
                let runs = if seccomp.0 == FilterBody::NrOnly {
                    0
                } else {
                    u64::from(p.programs)
                };
                (
                    self.seccomp_workers(seccomp, p.programs, spec, false)?,
                    if seccomp.1 == Trigger::Socket {
                        SOCKET_BATCH
                    } else {
                        SECCOMP_BATCH
                    },
                    runs,
                )
            }
            None => (
                self.landlock_workers(p.programs, depth, spec, false)?,
                LANDLOCK_BATCH,
                u64::from(p.programs),
            ),
        };
        let params = Params {
            tasks: 1,
            cgroups: 0,
            ..p
        };
        // Expected from the kernel's rules: the action cache skips a number-only chain; a
        // Landlock check visits every layer.
        hook_cell(mechanism, spec, params, (&raw, &native), batch, runs)
    }

    fn cgroup_bpf_hook_cell(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let mechanism = KernelMechanism::CgroupBpf;
        let p = spec.params;
        if p.working_set != 1 || p.cpus != 1 {
            return Err(CellError::Skip(format!(
                "cgroup-bpf cells measure one task on one CPU: working_set = {}, cpus = {} are not measured by this version",
                p.working_set, p.cpus
            )));
        }
        let key = (mechanism, p.depth, spec.samples, spec.repetitions);
        let native = self.baseline(key, |b| b.cgroup_bpf_workers(&p, 0, 0, spec))?;
        let raw = self.cgroup_bpf_workers(&p, p.programs, p.foreign, spec)?;
        let params = Params {
            tasks: 1,
            cgroups: p.depth.max(1),
            ..p
        };
        hook_cell(
            mechanism,
            spec,
            params,
            (&raw, &native),
            SOCKET_BATCH,
            u64::from(p.programs),
        )
    }

    /// A subtree with `p.cgroups` descendants to attach at, and an attach bench for one program
    /// of `p.body` that keeps one link in a sibling cgroup (so the static key stays on).
    fn attach_point(&mut self, p: &Params) -> Result<(WideSubtree, AttachBench), CellError> {
        let skip = |e: CgroupBpfError| CellError::Skip(e.to_string());
        let run = self.run_tree()?;
        let sub = wide_subtree(run, p.cgroups).map_err(skip)?;
        let keeper = wide_subtree(run, 0).map_err(skip)?;
        let mut bench = AttachBench::new(p.body).map_err(skip)?;
        bench.keep_key_enabled_at(&keeper.top).map_err(skip)?;
        Ok((sub, bench))
    }

    /// The baseline samples under `key`, measured by `measure` the first time only.
    fn baseline(
        &mut self,
        key: (KernelMechanism, u32, usize, usize),
        measure: impl FnOnce(&mut Self) -> Result<Reps, CellError>,
    ) -> Result<Reps, CellError> {
        if let Some(n) = self.baselines.get(&key) {
            return Ok(n.clone());
        }
        let n = measure(self)?;
        self.baselines.insert(key, n.clone());
        Ok(n)
    }

    /// Attach and detach latency of one `cgroup/sock_create` program at the top of a subtree
    /// with `cgroups` descendants (ALLOW_MULTI, so every descendant's effective array is
    /// recomputed), with one program kept attached in a sibling cgroup so the kernel's static
    /// key stays on and is not part of the figure.
    fn cgroup_bpf_attach_cells(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let mechanism = KernelMechanism::CgroupBpf;
        let p = spec.params;
        let (sub, mut bench) = self.attach_point(&p)?;
        let fail = |e: CgroupBpfError| CellError::Skip(e.to_string());
        let samples = kernel_samples(spec);
        let warmup = (samples / 10).clamp(1, 20);
        for _ in 0..warmup {
            bench.attach_one_at(&sub.top).map_err(fail)?;
            if let Some(r) = bench.detach_last() {
                r.map_err(fail)?;
            }
        }
        let (mut attach, mut detach): (Reps, Reps) = (Vec::new(), Vec::new());
        for _ in 0..spec.repetitions {
            let (mut a, mut d) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
            for _ in 0..samples {
                a.push(bench.attach_one_at(&sub.top).map_err(fail)?.as_nanos() as f64);
                match bench.detach_last() {
                    Some(r) => d.push(r.map_err(fail)?.as_nanos() as f64),
                    None => return Err(CellError::Fatal(anyhow::anyhow!("attach left nothing to detach"))),
                }
            }
            attach.push(a);
            detach.push(d);
        }
        drop(bench);
        let params = Params { tasks: 0, ..p };
        let mut out = Vec::with_capacity(2);
        for (metric, reps) in [("attach_latency_ns", &attach), ("detach_latency_ns", &detach)] {
            let mut m = build_cell(mechanism, spec, params, metric, reps, None)?;
            m.cell.batch_k = Some(1);
            out.push(m);
        }
        Ok(out)
    }

    /// Install cost of one program on a task: a seccomp filter or a Landlock layer. A per-task
    /// install touches only that task, so `cgroups` (descendants) does not enter; there is no
    /// detach (neither can be removed).
    fn attach_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        if mechanism == KernelMechanism::CgroupBpf {
            return self.cgroup_bpf_attach_cells(spec);
        }
        let raw = match mechanism.seccomp() {
            Some(seccomp) => {
                let n = u32::try_from(kernel_samples(spec))
                    .unwrap_or(u32::MAX)
                    .min(max_filters(seccomp.0));
                self.seccomp_workers(seccomp, n, spec, true)?
            }
            None => self.landlock_workers(LANDLOCK_MAX_NUM_LAYERS, spec.params.depth, spec, true)?,
        };
        let params = Params {
            tasks: 1,
            ..spec.params
        };
        let mut m = build_cell(mechanism, spec, params, "attach_latency_ns", &raw, None)?;
        m.cell.batch_k = Some(1);
        Ok(vec![m])
    }
}

impl KernelBackend {
    /// Set-up and tear-down seconds of C cgroups or T tasks, and the kernel's floor for the same
    /// syscalls, measured `repetitions` times (at most 3) in fresh run subtrees: four cells,
    /// `setup_seconds` and `teardown_seconds` for the mechanism and for `<mechanism>-floor`.
    fn setup_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        let cg = Cgroup2::detect().map_err(|e| CellError::Skip(e.to_string()))?;
        let fail = |what: &str, e: String| CellError::Skip(format!("{what}: {e}"));
        let reps = spec.repetitions.clamp(1, 3);
        let mut own: [Reps; 2] = [Vec::new(), Vec::new()];
        let mut floor: [Reps; 2] = [Vec::new(), Vec::new()];
        for _ in 0..reps {
            let mut run = RunTree::create(&cg).map_err(|e| fail("run subtree", e.to_string()))?;
            let (setup, teardown, floor_setup, floor_teardown) = match mechanism {
                KernelMechanism::SetupCgroups => {
                    let count = p.cgroups.max(1);
                    let shape = Shape::Containers {
                        children_per_container: 3,
                    };
                    let (_, built) = run
                        .build_timed(shape, count)
                        .map_err(|e| fail("building cgroups", e.to_string()))?;
                    let floor_parent = run.root().to_path_buf();
                    let (fm, fr) = mkdir_floor(&floor_parent, count).map_err(|e| fail("mkdir floor", e.to_string()))?;
                    let stats = run
                        .teardown()
                        .map_err(|e| fail("tearing down cgroups", e.to_string()))?;
                    (built, stats.duration, fm, fr)
                }
                _ => {
                    let tasks = p.tasks.max(1);
                    let cgroups = run
                        .build(Shape::Wide, p.cgroups.clamp(1, 1000))
                        .map_err(|e| fail("building cgroups", e.to_string()))?;
                    let (pool, spawned) =
                        TaskPool::spawn(&run, &cgroups, tasks).map_err(|e| fail("spawning tasks", e.to_string()))?;
                    let killed = pool.teardown().map_err(|e| fail("killing tasks", e.to_string()))?;
                    let (fs, fk) = task_floor(&cgroups[0], tasks).map_err(|e| fail("task floor", e.to_string()))?;
                    run.teardown()
                        .map_err(|e| fail("tearing down cgroups", e.to_string()))?;
                    (spawned, killed, fs, fk)
                }
            };
            own[0].push(vec![setup.as_secs_f64()]);
            own[1].push(vec![teardown.as_secs_f64()]);
            floor[0].push(vec![floor_setup.as_secs_f64()]);
            floor[1].push(vec![floor_teardown.as_secs_f64()]);
        }
        let params = Params {
            cgroups: p.cgroups.max(1),
            tasks: if mechanism == KernelMechanism::SetupTasks {
                p.tasks.max(1)
            } else {
                0
            },
            ..p
        };
        let mut out = Vec::with_capacity(4);
        for (suffix, values) in [("", &own), ("-floor", &floor)] {
            for (metric, reps) in [("setup_seconds", &values[0]), ("teardown_seconds", &values[1])] {
                let flat: Reps = vec![reps.iter().flatten().copied().collect()];
                let mut m = build_cell(mechanism, spec, params, metric, &flat, None)?;
                let name = format!("{}{suffix}", mechanism.as_str());
                m.cell.id = cell_id(&spec.suite.name, NAME, &name, metric, &params);
                m.cell.mechanism = name;
                m.cell.unit = "s".to_string();
                m.cell.repetitions = reps.iter().flatten().copied().collect();
                m.cell.histogram_ps = None;
                m.cell.throughput_hooks_per_sec = None;
                out.push(m);
            }
        }
        Ok(out)
    }
}

/// The kernel's slab memory now, bytes (`Slab:` of /proc/meminfo, which the kernel gives in kB).
fn slab_bytes() -> Result<i64, CellError> {
    let text = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| CellError::Skip(format!("cannot read /proc/meminfo: {e}")))?;
    text.lines()
        .find_map(|l| l.strip_prefix("Slab:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| CellError::Skip("no Slab: line in /proc/meminfo".to_string()))
}

impl KernelBackend {
    /// Kernel memory of cgroup-bpf's dispatch metadata, measured as a delta: a subtree of
    /// `cgroups` descendants is built first, then the slab total (/proc/meminfo `Slab:`) is read
    /// before and after attaching `programs` links of one `cgroup/sock_create` program at its top
    /// with ALLOW_MULTI (every descendant gets a new effective array: `bpf_prog_array_alloc`
    /// in `compute_effective_progs`), and the links are detached again. Each repetition is one
    /// sample; the slab total moves with the rest of the system, so small trees are in the noise
    /// and the fit over `cgroups` is the figure to read (bytes per cgroup).
    fn cgroup_bpf_metadata_cell(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        let programs = p.programs.clamp(1, 64);
        let (sub, mut bench) = self.attach_point(&p)?;
        let fail = |e: CgroupBpfError| CellError::Skip(e.to_string());
        let mut deltas = Vec::with_capacity(spec.repetitions.max(3));
        for _ in 0..spec.repetitions.max(3) {
            let before = slab_bytes()?;
            for _ in 0..programs {
                bench.attach_one_at(&sub.top).map_err(fail)?;
            }
            let after = slab_bytes()?;
            while let Some(r) = bench.detach_last() {
                r.map_err(fail)?;
            }
            deltas.push((after - before) as f64);
        }
        drop(bench);
        // `hooks` and `tasks` do not enter (one attach type, no tasks) but stay in the params so
        // every point of the suite's sweep keeps its own cell id.
        let params = Params { programs, ..p };
        let mut m = build_cell(
            KernelMechanism::CgroupBpf,
            spec,
            params,
            "metadata_bytes",
            &vec![deltas],
            None,
        )?;
        m.cell.unit = "bytes".to_string();
        m.cell.histogram_ps = None;
        m.cell.throughput_hooks_per_sec = None;
        m.cell.batch_k = None;
        Ok(vec![m])
    }
}

impl Drop for KernelBackend {
    /// Tears down this run's cgroup subtree (killing any worker left in it) and removes the
    /// Landlock scratch directory.
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            if let Err(e) = run.teardown() {
                eprintln!("hookbench: warning: tearing down this run's cgroups: {e}; run `hookbench cleanup`");
            }
        }
        if self.scratch.exists() {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// A `hook_latency_ns` cell from `(raw, baseline)` samples, with its batch size and the programs
/// the kernel runs per trigger (`runs`, from the kernel's rules) as the accounting.
fn hook_cell(
    mechanism: KernelMechanism,
    spec: &CellSpec<'_>,
    params: Params,
    (raw, native): (&Reps, &Reps),
    batch: u64,
    runs: u64,
) -> Result<Vec<Measured>, CellError> {
    let mut m = build_cell(mechanism, spec, params, "hook_latency_ns", raw, Some(native))?;
    m.cell.batch_k = Some(batch);
    m.cell.accounting = Some(Accounting {
        nodes_visited: runs,
        programs_run: runs,
        handles_checked: 0,
        map_lookups: 0,
    });
    Ok(vec![m])
}

/// A cell of `mechanism` from per-repetition samples (ns), less the mean of `baseline` when given
/// (each sample shifted by it, so percentiles stay ordered).
fn build_cell(
    mechanism: KernelMechanism,
    spec: &CellSpec<'_>,
    params: Params,
    metric: &str,
    raw: &Reps,
    baseline: Option<&Reps>,
) -> Result<Measured, CellError> {
    let raw_all: Vec<f64> = raw.iter().flatten().copied().collect();
    if raw_all.is_empty() {
        return Err(CellError::Skip(format!(
            "{}: the workers returned no samples",
            mechanism.as_str()
        )));
    }
    let base = baseline.map(|b| Summary::from_values_ns(&b.iter().flatten().copied().collect::<Vec<_>>()));
    let shift = base.as_ref().map(|b| b.mean_ns).unwrap_or(0.0);
    let raw_summary = Summary::from_values_ns(&raw_all);
    let points: Vec<f64> = raw_all.iter().map(|v| v - shift).collect();
    let s = Summary::from_values_ns(&points);
    let mut hist = new_histogram_ps().map_err(|e| CellError::Fatal(anyhow::anyhow!("histogram: {e}")))?;
    for v in &raw_all {
        record_ps(&mut hist, (v.max(0.0) * PS_PER_NS).round() as u64);
    }
    let mut cell = summary_cell(spec, NAME, metric, "ns", params, &s);
    cell.cv = raw_summary.cv;
    cell.baseline_subtracted = base.is_some();
    cell.baseline = base.as_ref().map(|b| Baseline {
        mean: b.mean_ns,
        p50: b.p50_ns,
        samples: b.samples,
    });
    cell.repetitions = raw
        .iter()
        .map(|r| r.iter().sum::<f64>() / r.len().max(1) as f64 - shift)
        .collect();
    cell.histogram_ps = histogram_to_base64(&hist).ok();
    cell.throughput_hooks_per_sec = (raw_summary.mean_ns > 0.0).then(|| 1e9 / raw_summary.mean_ns);
    Ok(Measured { cell, points })
}

impl Backend for KernelBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn measure(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let mechanism = KernelMechanism::ALL
            .into_iter()
            .find(|m| m.as_str() == spec.mechanism.name)
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("unknown kernel mechanism {}", spec.mechanism.name)))?;
        self.check_support(mechanism)?;
        if matches!(mechanism, KernelMechanism::LsmCgroup | KernelMechanism::LsmGlobal) {
            return Err(CellError::Skip(format!(
                "{}: this kernel allows BPF trampolines, but this version of hookbench does not measure BPF LSM programs yet",
                mechanism.as_str()
            )));
        }
        match spec.suite.metric {
            Metric::HookLatency => self.hook_cells(mechanism, spec),
            Metric::AttachLatency => self.attach_cells(mechanism, spec),
            Metric::SetupSeconds => self.setup_cells(mechanism, spec),
            Metric::MetadataBytes if mechanism == KernelMechanism::CgroupBpf => self.cgroup_bpf_metadata_cell(spec),
            Metric::MetadataBytes => Err(CellError::Skip(format!(
                "{}: kernel-side metadata is measured for cgroup-bpf only in this version",
                mechanism.as_str()
            ))),
        }
    }
}
