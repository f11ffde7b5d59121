//! The `kernel` backend: mechanisms that shipped, measured on the running kernel: seccomp filter stacks and Landlock domains (per-task chains) against cgroup-bpf and BPF LSM (`lsm_cgroup`) effective arrays and global BPF LSM programs, timed in re-exec'd worker processes.
//!
//! Seccomp filters and Landlock layers belong to the task that installs them and cannot be
//! removed, so each measurement runs in a fresh `hookbench worker KIND '<request>'` process
//! (exec'd, never a fork of the multi-threaded harness) that installs the chain and times the
//! trigger; the harness collects its samples. The worker with an empty chain (the native
//! syscall) is the baseline.
//!
//! BPF LSM programs (`lsm-cgroup`, `lsm-global`, `lsm-global-unmarked`) run behind a BPF
//! trampoline: where the kernel refuses trampolines, where `bpf` is not an active LSM (the
//! programs would attach and never run) or, for `lsm_cgroup`, before Linux 6.0, their cells are
//! skipped with the reason. With the counter body every cell checks that each program ran
//! exactly once per `socket()` of the worker (and, unmarked, never), so a cell never reports
//! programs that did not run.

use crate::backend::{cell_from_reps, Backend, CellError, CellSpec, Measured};
use crate::suite::Metric;
use hookbench_model::{Body, ModelKind, Params};
use hookbench_reports::{cell_id, Accounting};
use hookbench_workloads::cgroup_bpf::{
    spawn_sock_worker, wide_subtree, AttachBench, CgroupBpfError, CgroupBpfTree, CgroupProgram, SockWorkerRequest,
    WideSubtree,
};
use hookbench_workloads::cgroupfs::{RunTree, Shape};
use hookbench_workloads::landlock::{spawn_landlock_worker, LandlockWorkerRequest, LANDLOCK_MAX_NUM_LAYERS};
use hookbench_workloads::lsm::{
    bpf_lsm_active, lsm_cgroup_kernel_ok, GlobalLsmRequest, LsmAttachBench, LsmCgroupTree, MAX_GLOBAL_PROGRAMS,
};
use hookbench_workloads::seccomp::{max_filters, spawn_worker, FilterBody, Trigger, WorkerRequest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

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
    /// N `lsm_cgroup/socket_create` programs (`BPF_LSM_CGROUP`, Linux >= 6.0) attached with
    /// links over a path of `depth` cgroups (program i at level i % depth), timed on `socket()`
    /// from a task in the deepest cgroup: the LSM hook enters the BPF trampoline of
    /// `bpf_lsm_socket_create`, whose shim `__cgroup_bpf_run_lsm_current` runs
    /// `cgroup->bpf.effective[<the hook's lsm atype>]` (kernel/bpf/cgroup.c, bpf_lsm.c). Needs a
    /// kernel that allows trampolines, with `bpf` an active LSM.
    LsmCgroup,
    /// N global `lsm/socket_create` programs (`BPF_LSM_MAC`, N entries of the trampoline, run
    /// for every task of the machine), each checking first whether it applies to the current
    /// task (a `bpf_task_storage_get` of its own task storage, where the worker marked itself)
    /// and then running its body; timed on `socket()` from the marked worker. The programs are
    /// attached by the worker itself for as long as it measures. Needs a kernel that allows
    /// trampolines, with `bpf` an active LSM; at most `BPF_MAX_TRAMP_LINKS` (38) programs.
    LsmGlobal,
    /// The same N global programs timed from a worker that is *not* marked: every check misses
    /// and no body runs, which is what every other task of the machine pays per `socket()`.
    LsmGlobalUnmarked,
    /// Set-up and tear-down of C cgroups (containers shape: a slice of containers, each with a
    /// few children) made by the spawner in the run's subtree, against the floor (a plain
    /// mkdir/rmdir loop) and the same floor in C.
    SetupCgroups,
    /// Set-up and tear-down of T idle tasks spread over cgroups (`clone3(CLONE_INTO_CGROUP)`)
    /// by the spawner, against the floor (fork + write to `cgroup.procs`, then kill + reap) and
    /// the same floor in C.
    SetupTasks,
}

impl KernelMechanism {
    /// Every kernel mechanism of this version.
    pub const ALL: [KernelMechanism; 10] = [
        KernelMechanism::SeccompArgLoad,
        KernelMechanism::SeccompNrOnly,
        KernelMechanism::SeccompSocket,
        KernelMechanism::Landlock,
        KernelMechanism::CgroupBpf,
        KernelMechanism::LsmCgroup,
        KernelMechanism::LsmGlobal,
        KernelMechanism::LsmGlobalUnmarked,
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
            KernelMechanism::LsmGlobalUnmarked => "lsm-global-unmarked",
            KernelMechanism::SetupCgroups => "setup-cgroups",
            KernelMechanism::SetupTasks => "setup-tasks",
        }
    }

    /// The dispatch model the mechanism realises: seccomp stacks and Landlock domains are
    /// per-task chains, cgroup-bpf and `lsm_cgroup` are per-cgroup effective arrays, global BPF
    /// LSM programs that each check whether they apply (task storage) are global filters.
    pub fn model(self) -> ModelKind {
        match self {
            KernelMechanism::CgroupBpf | KernelMechanism::LsmCgroup | KernelMechanism::SetupCgroups => {
                ModelKind::CgroupEffective
            }
            KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked => ModelKind::GlobalFilter,
            _ => ModelKind::TaskChain,
        }
    }

    /// Whether the mechanism is a BPF LSM one (needs trampolines and the `bpf` LSM).
    fn is_lsm(self) -> bool {
        matches!(
            self,
            KernelMechanism::LsmCgroup | KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked
        )
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
            | KernelMechanism::LsmGlobalUnmarked
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
    /// Whether `bpf` is an active LSM, checked at the first BPF LSM cell.
    bpf_lsm: Option<Result<(), String>>,
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
            bpf_lsm: None,
        }
    }

    fn check_support(&mut self, mechanism: KernelMechanism) -> Result<(), CellError> {
        let (what, support) = match mechanism {
            KernelMechanism::Landlock => ("Landlock", &self.support.landlock),
            KernelMechanism::CgroupBpf | KernelMechanism::SetupCgroups | KernelMechanism::SetupTasks => {
                ("cgroup v2 trees", &self.support.cgroup_bpf)
            }
            KernelMechanism::LsmCgroup | KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked => {
                ("BPF LSM programs", &self.support.trampolines)
            }
            _ => ("seccomp filters", &self.support.seccomp),
        };
        let skip = |reason: String| CellError::Skip(format!("{what} not available here: {reason}"));
        support.clone().map_err(skip)?;
        if mechanism.is_lsm() {
            // Trampolines first: where they are refused that is the reason, whatever the rest.
            self.support.cgroup_bpf.clone().map_err(skip)?;
            self.bpf_lsm.get_or_insert_with(bpf_lsm_active).clone().map_err(skip)?;
            if mechanism == KernelMechanism::LsmCgroup {
                lsm_cgroup_kernel_ok().map_err(skip)?;
            }
        }
        Ok(())
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

    /// This run's cgroup subtree ([`crate::backend::lazy_run_tree`]).
    fn run_tree(&mut self) -> Result<&mut RunTree, CellError> {
        crate::backend::lazy_run_tree(&mut self.run)
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
                global_lsm: None,
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
        if mechanism.is_lsm() {
            return self.lsm_hook_cell(mechanism, spec);
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
    /// of `p.body` (cgroup-bpf's or, with [`LsmAttachBench`], `lsm_cgroup`'s) that keeps one link
    /// in a sibling cgroup (so the kernel's one-off work of a hook's first program, the static
    /// key or the trampoline shim, stays done).
    fn attach_point<P: CgroupProgram>(&mut self, p: &Params) -> Result<(WideSubtree, AttachBench<P>), CellError> {
        let skip = |e: CgroupBpfError| CellError::Skip(e.to_string());
        let run = self.run_tree()?;
        let sub = wide_subtree(run, p.cgroups).map_err(skip)?;
        let keeper = wide_subtree(run, 0).map_err(skip)?;
        let mut bench = AttachBench::<P>::new(p.body).map_err(skip)?;
        bench.keep_attached_at(&keeper.top).map_err(skip)?;
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

    /// Attach and detach latency of one `cgroup/sock_create` program (cgroup-bpf) or one
    /// `lsm_cgroup/socket_create` program (lsm-cgroup) at the top of a subtree with `cgroups`
    /// descendants (ALLOW_MULTI, so every descendant's effective array is recomputed), with the
    /// same program kept attached in a sibling cgroup so that the kernel's one-off work of a
    /// first program is not part of the figure (cgroup-bpf: the static key; lsm-cgroup: linking
    /// the hook's shim into the BPF trampoline).
    fn cgroup_attach_cells(
        &mut self,
        mechanism: KernelMechanism,
        spec: &CellSpec<'_>,
    ) -> Result<Vec<Measured>, CellError> {
        if mechanism == KernelMechanism::LsmCgroup {
            let (sub, bench): (WideSubtree, LsmAttachBench) = self.attach_point(&spec.params)?;
            Self::time_cgroup_attach(mechanism, spec, &sub, bench)
        } else {
            let (sub, bench): (WideSubtree, AttachBench) = self.attach_point(&spec.params)?;
            Self::time_cgroup_attach(mechanism, spec, &sub, bench)
        }
    }

    /// [`KernelBackend::cgroup_attach_cells`] with the subtree and bench of one kind of program.
    fn time_cgroup_attach<P: CgroupProgram>(
        mechanism: KernelMechanism,
        spec: &CellSpec<'_>,
        sub: &WideSubtree,
        mut bench: AttachBench<P>,
    ) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
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
        match mechanism {
            KernelMechanism::CgroupBpf | KernelMechanism::LsmCgroup => {
                return self.cgroup_attach_cells(mechanism, spec)
            }
            KernelMechanism::LsmGlobal | KernelMechanism::LsmGlobalUnmarked => {
                return Err(CellError::Skip(format!(
                    "{}: attaching a global lsm program regenerates the hook's trampoline and touches no cgroup, so \
                     it does not vary with descendants; not measured by this version",
                    mechanism.as_str()
                )))
            }
            _ => {}
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
    /// Set-up and tear-down seconds of C cgroups or T tasks, against the kernel's floor for the
    /// same syscalls and the same floor in plain C, measured by the spawner (`hookbench worker
    /// tasks`, exec'd fresh for the cell, so no figure depends on the harness's size; it lives in
    /// a leaf of a cgroup tree made for the cell inside the run's subtree, and everything it
    /// creates is born there and dies with it). Per repetition (the suite's, at most 5) the
    /// mechanism, the Rust floor and the C floor run in a seeded random order. Six cells:
    /// `setup_seconds` and `teardown_seconds` of `<mechanism>`, `<mechanism>-floor` and
    /// `<mechanism>-c`; the `-c` cells are left out, with a warning naming the reason, when the
    /// C reference was not built or cannot run here.
    fn setup_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        use hookbench_workloads::spawner::{install_c_reference, spawn_spawner, Peer, SpawnerJob, SpawnerRequest};
        let p = spec.params;
        let fail = |what: &str, e: String| CellError::Skip(format!("{}: {what}: {e}", mechanism.as_str()));
        let reps = spec.repetitions.clamp(1, 5) as u32;
        let c_reference = install_c_reference(&self.scratch.join("c"));
        let exe = self.exe.clone();
        let run = self.run_tree()?;
        let mut cell = RunTree::create_under(run.root()).map_err(|e| fail("the cell's cgroups", e.to_string()))?;
        let built = (|| {
            let home = cell.child("spawner")?;
            let job = match mechanism {
                KernelMechanism::SetupCgroups => SpawnerJob::Cgroups {
                    parent: cell.root().to_path_buf(),
                    cgroups: p.cgroups.max(1),
                    children_per_container: 3,
                },
                _ => SpawnerJob::Tasks {
                    cgroups: cell.build(Shape::Wide, p.cgroups.clamp(1, 1000))?,
                    tasks: p.tasks.max(1),
                    floor_cgroup: cell.child("floor")?,
                    c_cgroup: cell.child("c")?,
                },
            };
            Ok::<_, hookbench_workloads::cgroupfs::CgroupError>((home, job))
        })();
        let (home, job) = built.map_err(|e| fail("building the cell's cgroups", e.to_string()))?;
        let req = SpawnerRequest {
            home,
            job,
            repetitions: reps,
            seed: spec.seed,
            c_reference: c_reference.as_ref().ok().cloned(),
        };
        let report = spawn_spawner(&exe, &["worker", "tasks"], &req);
        // The spawner has exited (and its tasks with it): the cell's tree holds no task.
        let torn = cell.teardown();
        let report = report.map_err(|e| CellError::Fatal(anyhow::anyhow!("{}: {e}", mechanism.as_str())))?;
        if let Some(error) = report.error {
            return Err(CellError::Skip(format!("{}: {error}", mechanism.as_str())));
        }
        torn.map_err(|e| fail("tearing down the cell's cgroups", e.to_string()))?;
        let params = Params {
            cgroups: p.cgroups.max(1),
            tasks: if mechanism == KernelMechanism::SetupTasks {
                p.tasks.max(1)
            } else {
                0
            },
            ..p
        };
        let mut out = Vec::with_capacity(6);
        for (peer, times) in [
            (Peer::Mechanism, &report.mechanism),
            (Peer::Floor, &report.floor),
            (Peer::C, &report.c),
        ] {
            let name = format!("{}{}", mechanism.as_str(), peer.suffix());
            if times.setup_s.is_empty() {
                let why = match (&c_reference, &report.c_error) {
                    (Err(e), _) => e.clone(),
                    (_, Some(e)) => e.clone(),
                    _ => "the spawner measured nothing".to_string(),
                };
                eprintln!("hookbench: warning: {name} cells not measured: {why}");
                continue;
            }
            for (metric, values) in [
                ("setup_seconds", &times.setup_s),
                ("teardown_seconds", &times.teardown_s),
            ] {
                let mut m = build_cell(mechanism, spec, params, metric, &vec![values.clone()], None)?;
                m.cell.id = cell_id(&spec.suite.name, NAME, &name, metric, &params);
                m.cell.mechanism = name.clone();
                m.cell.unit = "s".to_string();
                m.cell.repetitions = values.clone();
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
        let (sub, mut bench): (WideSubtree, AttachBench) = self.attach_point(&p)?;
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

/// What the programs of an LSM cell did per `socket()`, from the kernel's rules and, with the
/// counter body, checked against the programs' counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LsmRuns {
    /// Programs entered per trigger (trampoline entries for global programs, effective-array
    /// entries for lsm_cgroup).
    entered: u64,
    /// Bodies run per trigger.
    bodies: u64,
    /// Task-storage lookups per trigger (the global programs' "does it apply" check).
    lookups: u64,
}

/// Checks the counter body's counters of one cell: every program ran its body exactly
/// `expected` times. `Err` (a skip) names the counts otherwise.
fn check_counters(mechanism: KernelMechanism, counters: &[u64], expected: u64, calls: u64) -> Result<(), CellError> {
    if counters.iter().all(|&c| c == expected) {
        return Ok(());
    }
    Err(CellError::Skip(format!(
        "{}: the counter programs' bodies ran {counters:?} times for {calls} socket() calls of the worker, \
         expected {expected} each: the kernel did not run the programs as attached, so the cell is not reported",
        mechanism.as_str()
    )))
}

impl KernelBackend {
    /// Runs one socket worker per repetition in `cgroup`, with the global programs of
    /// `global_lsm` (attached by the worker itself) if any; returns the samples per repetition,
    /// the socket() calls made in all, and the global programs' counters summed per program.
    fn lsm_sock_workers(
        &self,
        cgroup: &Path,
        global_lsm: Option<GlobalLsmRequest>,
        spec: &CellSpec<'_>,
    ) -> Result<(Reps, u64, Vec<u64>), CellError> {
        let mut reps = Vec::with_capacity(spec.repetitions);
        let mut calls = 0;
        let mut counters: Vec<u64> = Vec::new();
        for _ in 0..spec.repetitions {
            let req = SockWorkerRequest {
                cgroup: cgroup.to_path_buf(),
                samples: kernel_samples(spec),
                batch: SOCKET_BATCH,
                global_lsm,
            };
            let report = spawn_sock_worker(&self.exe, &["worker", "sock"], &req)
                .map_err(|e| CellError::Fatal(anyhow::anyhow!("socket worker failed: {e}")))?;
            if let Some(error) = report.error {
                return Err(CellError::Skip(error));
            }
            calls += report.calls;
            counters.resize(report.counters.len().max(counters.len()), 0);
            for (sum, c) in counters.iter_mut().zip(&report.counters) {
                *sum += c;
            }
            reps.push(report.samples_ns);
        }
        Ok((reps, calls, counters))
    }

    /// `lsm_cgroup` programs over a path of `depth` cgroups, timed from the leaf; with the
    /// counter body, every program's counter is checked against the worker's socket() calls.
    /// The links are dropped (detached) before returning.
    fn lsm_cgroup_workers(
        &mut self,
        p: &Params,
        programs: u32,
        spec: &CellSpec<'_>,
    ) -> Result<(Reps, LsmRuns), CellError> {
        let mechanism = KernelMechanism::LsmCgroup;
        let run = self.run_tree()?;
        let tree = LsmCgroupTree::build(run, p.depth.max(1), programs, p.body)
            .map_err(|e| CellError::Skip(format!("{}: {e}", mechanism.as_str())))?;
        let (reps, calls, _) = self.lsm_sock_workers(tree.leaf(), None, spec)?;
        if p.body == Body::Counter && programs > 0 {
            let counters = tree
                .counters()
                .map_err(|e| CellError::Skip(format!("{}: {e}", mechanism.as_str())))?;
            check_counters(mechanism, &counters, calls, calls)?;
        }
        drop(tree);
        let n = u64::from(programs);
        Ok((
            reps,
            LsmRuns {
                entered: n,
                bodies: n,
                lookups: 0,
            },
        ))
    }

    /// Global `lsm` programs attached by the worker, in a leaf of `depth` cgroups (without
    /// programs); `mark_self` says whether the programs apply to the worker. With the counter
    /// body, the counters are checked: `calls` each when marked, 0 when not.
    fn lsm_global_workers(
        &mut self,
        p: &Params,
        programs: u32,
        mark_self: bool,
        spec: &CellSpec<'_>,
    ) -> Result<(Reps, LsmRuns), CellError> {
        let mechanism = if mark_self {
            KernelMechanism::LsmGlobal
        } else {
            KernelMechanism::LsmGlobalUnmarked
        };
        let run = self.run_tree()?;
        let leaf = LsmCgroupTree::build(run, p.depth.max(1), 0, p.body)
            .map_err(|e| CellError::Skip(format!("{}: {e}", mechanism.as_str())))?
            .leaf()
            .to_path_buf();
        let global = (programs > 0).then_some(GlobalLsmRequest {
            programs,
            body: p.body,
            mark_self,
        });
        let (reps, calls, counters) = self.lsm_sock_workers(&leaf, global, spec)?;
        if p.body == Body::Counter && programs > 0 {
            if counters.len() != programs as usize {
                return Err(CellError::Skip(format!(
                    "{}: the worker reported {} counters for {programs} programs",
                    mechanism.as_str(),
                    counters.len()
                )));
            }
            check_counters(mechanism, &counters, if mark_self { calls } else { 0 }, calls)?;
        }
        let n = u64::from(programs);
        Ok((
            reps,
            LsmRuns {
                entered: n,
                bodies: if mark_self { n } else { 0 },
                lookups: n,
            },
        ))
    }

    /// A `hook_latency_ns` cell of a BPF LSM mechanism: N programs against none (the baseline,
    /// same worker and cgroup depth), one task on one CPU, every program on the measured hook.
    fn lsm_hook_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        if p.working_set != 1 || p.cpus != 1 || p.foreign != 0 {
            return Err(CellError::Skip(format!(
                "{} cells measure one task on one CPU with every program on the hook: working_set = {}, cpus = {}, \
                 foreign = {} are not measured by this version",
                mechanism.as_str(),
                p.working_set,
                p.cpus,
                p.foreign
            )));
        }
        if mechanism != KernelMechanism::LsmCgroup && p.programs > MAX_GLOBAL_PROGRAMS {
            return Err(CellError::Skip(format!(
                "{}: {} global programs on one hook: a BPF trampoline holds at most BPF_MAX_TRAMP_LINKS = \
                 {MAX_GLOBAL_PROGRAMS} (kernel/bpf/trampoline.c: bpf_trampoline_link_prog returns E2BIG)",
                mechanism.as_str(),
                p.programs
            )));
        }
        // One baseline (no program anywhere on the hook) for every LSM mechanism at this depth.
        let key = (KernelMechanism::LsmCgroup, p.depth, spec.samples, spec.repetitions);
        let native = self.baseline(key, |b| b.lsm_cgroup_workers(&p, 0, spec).map(|(r, _)| r))?;
        let (raw, runs) = match mechanism {
            KernelMechanism::LsmCgroup => self.lsm_cgroup_workers(&p, p.programs, spec)?,
            _ => self.lsm_global_workers(&p, p.programs, mechanism == KernelMechanism::LsmGlobal, spec)?,
        };
        let params = Params {
            tasks: 1,
            cgroups: p.depth.max(1),
            ..p
        };
        let mut m = build_cell(mechanism, spec, params, "hook_latency_ns", &raw, Some(&native))?;
        m.cell.batch_k = Some(SOCKET_BATCH);
        m.cell.accounting = Some(Accounting {
            nodes_visited: runs.entered,
            programs_run: runs.bodies,
            handles_checked: 0,
            map_lookups: runs.lookups,
        });
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
/// (each sample shifted by it, so percentiles stay ordered): [`cell_from_reps`] on this backend.
fn build_cell(
    mechanism: KernelMechanism,
    spec: &CellSpec<'_>,
    params: Params,
    metric: &str,
    raw: &Reps,
    baseline: Option<&Reps>,
) -> Result<Measured, CellError> {
    cell_from_reps(
        spec,
        NAME,
        mechanism.as_str(),
        params,
        metric,
        raw,
        baseline.map(Vec::as_slice),
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    const LSM_SUITE: &str = include_str!("../../suites/lsm.toml");

    #[test]
    fn lsm_mechanisms_name_their_models() {
        assert_eq!(kernel_mechanism("lsm-cgroup"), Ok(ModelKind::CgroupEffective));
        assert_eq!(kernel_mechanism("lsm-global"), Ok(ModelKind::GlobalFilter));
        assert_eq!(kernel_mechanism("lsm-global-unmarked"), Ok(ModelKind::GlobalFilter));
        let suite = Suite::parse(LSM_SUITE, "lsm.toml").expect("lsm suite parses");
        let names: Vec<&str> = suite.mechanisms_for(NAME).iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["lsm-cgroup", "lsm-global", "lsm-global-unmarked"]);
        assert!(suite.mechanisms_for("model").is_empty());
    }

    fn support_of(env: &crate::env::Environment) -> KernelSupport {
        let available = |p: &crate::env::Probe| {
            if p.available {
                Ok(())
            } else {
                Err(p.reason.clone().unwrap_or_else(|| "not available".to_string()))
            }
        };
        KernelSupport {
            seccomp: available(&env.seccomp),
            landlock: available(&env.landlock_abi),
            cgroup_bpf: if env.privileged && env.cgroup2_mount.is_some() {
                available(&env.bpf)
            } else {
                Err("needs root and a cgroup v2 mount".to_string())
            },
            trampolines: available(&env.bpf_trampolines),
        }
    }

    /// Where the kernel refuses BPF trampolines (this project's development host: EPERM), every
    /// BPF LSM cell is skipped with the probe's reason, before anything is loaded or created.
    #[test]
    fn lsm_cells_are_skipped_with_the_trampoline_probes_reason() {
        let env = crate::env::Environment::probe();
        if env.bpf_trampolines.available {
            eprintln!(
                "SKIPPED lsm_cells_are_skipped_with_the_trampoline_probes_reason: this kernel allows trampolines \
                 ({}); the lsm integration test measures them",
                env.bpf_trampolines
            );
            return;
        }
        let reason = env.bpf_trampolines.reason.clone().unwrap_or_default();
        let suite = Suite::parse(LSM_SUITE, "lsm.toml").expect("lsm suite parses");
        let exe = PathBuf::from("/nonexistent/hookbench");
        let mut backend = KernelBackend::new(exe, support_of(&env));
        for mechanism in suite.mechanisms_for(NAME) {
            let spec = CellSpec {
                suite: &suite,
                mechanism,
                params: Params {
                    programs: 8,
                    ..suite.plan("smoke").expect("smoke").points[0]
                },
                samples: 10,
                repetitions: 1,
                seed: 0,
            };
            match backend.measure(&spec) {
                Err(CellError::Skip(why)) => {
                    eprintln!("{}: {why}", mechanism.name);
                    assert!(
                        why.starts_with("BPF LSM programs not available here: ") && why.contains(&reason),
                        "{why}"
                    );
                    if reason.contains("EPERM") {
                        assert!(why.contains("refused (EPERM)"), "{why}");
                    }
                }
                Err(CellError::Fatal(e)) => panic!("{}: fatal: {e:#}", mechanism.name),
                Ok(cells) => panic!("{}: measured without trampolines: {cells:?}", mechanism.name),
            }
        }
        // Nothing was created for them.
        assert!(backend.run.is_none());
    }

    #[test]
    fn counter_check_names_the_counts() {
        assert!(check_counters(KernelMechanism::LsmCgroup, &[10, 10], 10, 10).is_ok());
        assert!(check_counters(KernelMechanism::LsmGlobalUnmarked, &[0, 0, 0], 0, 10).is_ok());
        match check_counters(KernelMechanism::LsmGlobal, &[10, 0], 10, 10) {
            Err(CellError::Skip(why)) => assert!(why.contains("[10, 0]") && why.contains("lsm-global"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
