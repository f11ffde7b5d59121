//! The `kmod` backend: every dispatch model inside the kernel, in hookbench.ko's `/dev/hookbench`.
//!
//! The module runs each model on one synthetic hook, with the same eBPF programs in each.
//! Mechanisms are the model names (ARCHITECTURE.md, "Names"), fired by the module's in-kernel
//! timed loop (pure dispatch cost), or with `-ioctl` appended, one FIRE ioctl per hook timed in
//! userspace (dispatch plus the syscall): `task-chain`, `task-hook-array`, `cgroup-effective`,
//! `global-filter`, `task-chain-ioctl`, ... With `-builtin` appended the measured programs are the
//! module's built-in null body (a native call, no BPF), which runs at the same speed with or
//! without a BPF JIT (User-Mode Linux has none). A `working_set` W > 1 (claim 6) has the module
//! build W copies of the worker's state and fire them in turn, in an order drawn from the cell's
//! seed; the cell records the bytes of those states beside the L2 and last-level caches. On User-Mode Linux the `-ioctl` cells are
//! skipped: its syscalls are trapped by the host's ptrace and swamp the dispatch. Hook cells run in a fresh worker process
//! (`hookbench worker kmod`) placed in the deepest cgroup of a path of `depth` cgroups of this
//! run's subtree; it opens its own session, so everything it attached goes when it exits.
//! Attach cells run in this process's own session: attach/detach of one program at a cgroup
//! with K descendants (timed by the module around `update_effective_progs`-style recompute)
//! against an install on the calling task.

use crate::backend::{cell_from_sets, plain_cell, worker_failure, Backend, CellError, CellSpec, Measured, Timing};
use crate::suite::Metric;
use hookbench_kmod::{Device, KmodProgram};
use hookbench_model::{AttachFlags, ModelKind, Params};
use hookbench_reports::{Accounting, WorkingSetBytes};
use hookbench_sys::cache::CacheSizes;
use hookbench_workloads::cgroup_bpf::wide_subtree;
use hookbench_workloads::cgroupfs::{RunTree, Shape};
use hookbench_workloads::kmod::{FireMode, KmodWorker, KmodWorkerRequest};
use hookbench_workloads::MEASURED_HOOK;
use std::os::fd::AsFd as _;
use std::path::PathBuf;

/// Name of this backend in the results.
pub const NAME: &str = "kmod";

/// Suffix of the mechanisms fired by one ioctl per hook.
pub const IOCTL_SUFFIX: &str = "-ioctl";

/// Suffix of the mechanisms whose measured programs are the module's built-in null body.
pub const BUILTIN_SUFFIX: &str = "-builtin";

/// Most samples per repetition a kmod cell takes, whatever the profile asks.
///
/// Each sample is a batch of fires; the in-kernel loop needs no more for a tight slope.
pub const MAX_KMOD_CELL_SAMPLES: usize = 2000;

/// How a kmod cell's working-set bytes are counted (its `working_set.method`).
pub const WORKING_SET_METHOD: &str = "exact: bytes hookbench.ko requested from kmalloc for the W states fired \
                                      (task entry and chain nodes, or cgroup entry and effective arrays), as its \
                                      STATS counts them; the programs, shared by every state, not counted";

/// XORed into a cell's seed to draw the order of its working set.
const WORKING_SET_SEED_SALT: u64 = 0x6b6d_6f64_5753_6574;

/// Target duration of one sample (a batch of fires), ns: long against `ktime_get_ns()`.
const SAMPLE_TARGET_NS: f64 = 20_000.0;

/// A kmod mechanism: a model and how its hook is fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KmodMechanism {
    /// The dispatch model the module runs.
    pub model: ModelKind,
    /// In-kernel loop or one ioctl per hook.
    pub mode: FireMode,
    /// The measured programs are the module's built-in null body, not BPF programs.
    pub builtin_body: bool,
}

impl KmodMechanism {
    /// Parses `task-chain`, `cgroup-effective-ioctl`, `task-chain-builtin`, ...
    ///
    /// `None` for anything else.
    pub fn parse(name: &str) -> Option<KmodMechanism> {
        let (base, mode, builtin_body) = if let Some(base) = name.strip_suffix(IOCTL_SUFFIX) {
            (base, FireMode::Ioctl, false)
        } else if let Some(base) = name.strip_suffix(BUILTIN_SUFFIX) {
            (base, FireMode::InKernel, true)
        } else {
            (name, FireMode::InKernel, false)
        };
        ModelKind::ALL
            .into_iter()
            .find(|m| m.as_str() == base)
            .map(|model| KmodMechanism {
                model,
                mode,
                builtin_body,
            })
    }
}

/// Whether hookbench.ko can be used here: `Ok` with its ABI version and limits, or why not.
///
/// Why not (device missing, not root, ABI mismatch) is in words a user can act on.
pub fn probe() -> Result<String, String> {
    let dev = Device::open().map_err(|e| e.to_string())?;
    let v = dev.version().map_err(|e| e.to_string())?;
    if v.abi_version != hookbench_kmod::abi::HB_KMOD_ABI_VERSION {
        return Err(format!(
            "hookbench.ko speaks ABI {}, this hookbench speaks {}: load the module built from this tree",
            v.abi_version,
            hookbench_kmod::abi::HB_KMOD_ABI_VERSION
        ));
    }
    Ok(format!(
        "hookbench.ko ABI {} ({} models, {} hooks, {} programs per cgroup and hook)",
        v.abi_version, v.models, v.max_hooks, v.max_progs
    ))
}

/// The kmod backend.
pub struct KmodBackend {
    exe: PathBuf,
    /// This kernel is User-Mode Linux ([`crate::env::running_on_uml`]): no ioctl cells.
    uml: bool,
    available: Result<String, String>,
    timing: Timing,
    run: Option<RunTree>,
}

impl KmodBackend {
    /// A backend running its workers as `exe worker kmod ...`, timed as `timing` says.
    ///
    /// `available` is [`probe`]'s result.
    pub fn new(exe: PathBuf, available: Result<String, String>, timing: Timing) -> KmodBackend {
        KmodBackend {
            exe,
            uml: crate::env::running_on_uml(),
            available,
            timing,
            run: None,
        }
    }

    /// This run's cgroup subtree ([`crate::backend::lazy_run_tree`]).
    fn run_tree(&mut self) -> Result<&mut RunTree, CellError> {
        crate::backend::lazy_run_tree(&mut self.run)
    }

    /// Fires per sample: enough for [`SAMPLE_TARGET_NS`] at a guessed cost per fire.
    fn batch(mode: FireMode, p: &Params) -> u32 {
        let guess_ns = match mode {
            FireMode::InKernel => 20.0,
            FireMode::Ioctl => 400.0,
        } + 10.0 * f64::from(p.programs + p.foreign);
        let cap = match mode {
            FireMode::InKernel => 4096.0,
            FireMode::Ioctl => 256.0,
        };
        (SAMPLE_TARGET_NS / guess_ns).clamp(1.0, cap) as u32
    }

    fn hook_cells(&mut self, m: KmodMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        let depth = p.depth.max(1);
        let path = self
            .run_tree()?
            .build(Shape::Deep, depth)
            .map_err(|e| CellError::Skip(e.to_string()))?;
        let leaf = path.last().cloned();
        let samples = spec.samples.clamp(1, MAX_KMOD_CELL_SAMPLES);
        let req = KmodWorkerRequest {
            model: m.model.as_str().to_string(),
            mode: m.mode,
            cgroup: leaf,
            path,
            programs: p.programs,
            foreign: p.foreign,
            hooks: p.hooks.max(1),
            body: p.body,
            builtin_body: m.builtin_body,
            samples,
            repetitions: spec.repetitions.max(1),
            batch: Self::batch(m.mode, &p),
            working_set: p.working_set,
            // the cell's seed (from its id, as the run's other seeded orders), kept apart from
            // the uses of the same seed elsewhere
            seed: spec.seed ^ WORKING_SET_SEED_SALT,
            timing: self.timing.request(samples, 0),
        };
        let name = &spec.mechanism.name;
        let report =
            hookbench_workloads::worker::spawn::<KmodWorker>(&self.exe, &req).map_err(|e| {
                match worker_failure("kmod", e) {
                    CellError::Skip(why) => CellError::Skip(format!("{name}: {why}")),
                    CellError::Fatal(e) => CellError::Skip(format!("{name}: {e}")),
                }
            })?;
        // Exact checks: every measured counter program ran once per fire, no foreign one ran.
        if let Some(c) = report.counters.iter().find(|&&c| c != report.fires) {
            return Err(CellError::Fatal(anyhow::anyhow!(
                "{name}: a measured program ran {c} times over {} fires: the module's dispatch is wrong",
                report.fires
            )));
        }
        if let Some(c) = report.foreign_counters.iter().find(|&&c| c != 0) {
            return Err(CellError::Fatal(anyhow::anyhow!(
                "{name}: a foreign program ran {c} times: the module ran a program of another hook"
            )));
        }
        let mut m_cell = cell_from_sets(
            spec,
            NAME,
            name,
            p,
            "hook_latency_ns",
            &report.samples,
            &report.baseline,
        )?;
        let nodes = match m.model {
            ModelKind::TaskChain => u64::from(p.programs + p.foreign),
            _ => u64::from(report.progs_per_fire),
        };
        m_cell.cell.accounting = Some(Accounting {
            nodes_visited: nodes,
            programs_run: u64::from(report.progs_per_fire),
            handles_checked: 0,
            map_lookups: 0,
        });
        m_cell
            .cell
            .breakdown
            .insert("session_metadata_bytes".to_string(), report.metadata_bytes);
        if report.working_set_bytes > 0 {
            let caches = CacheSizes::read();
            m_cell.cell.working_set = Some(WorkingSetBytes {
                bytes: report.working_set_bytes,
                per_slot_bytes: report.working_set_bytes / u64::from(p.working_set.max(1)),
                method: WORKING_SET_METHOD.to_string(),
                l2_bytes: caches.l2_bytes,
                llc_bytes: caches.llc_bytes,
            });
        }
        Ok(vec![m_cell])
    }

    /// Attach and detach of one program, timed by the module around the update.
    ///
    /// At the top of a subtree with `cgroups` descendants (cgroup-effective, ALLOW_MULTI: every
    /// descendant's effective array is recomputed), or at the global list (global-filter), or an
    /// install on this task (task models; no detach, as for seccomp filters).
    fn attach_cells(&mut self, m: KmodMechanism, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        if m.builtin_body {
            return Err(CellError::Skip(format!(
                "{}: update costs do not depend on the body; use the mechanism without {BUILTIN_SUFFIX}",
                spec.mechanism.name
            )));
        }
        if m.mode == FireMode::Ioctl {
            return Err(CellError::Skip(format!(
                "{}: update costs are timed in the kernel; use the mechanism without {IOCTL_SUFFIX}",
                spec.mechanism.name
            )));
        }
        let p = spec.params;
        let skip = |e: hookbench_kmod::KmodError| CellError::Skip(format!("{}: {e}", spec.mechanism.name));
        let dev = Device::open().map_err(skip)?;
        let prog = KmodProgram::load(p.body).map_err(skip)?;
        let samples = spec.samples.clamp(1, MAX_KMOD_CELL_SAMPLES);
        let top = match m.model {
            ModelKind::CgroupEffective => {
                let run = self.run_tree()?;
                let sub = wide_subtree(run, p.cgroups).map_err(|e| CellError::Skip(e.to_string()))?;
                Some(std::fs::File::open(&sub.top).map_err(|e| {
                    CellError::Skip(format!("{}: open {}: {e}", spec.mechanism.name, sub.top.display()))
                })?)
            }
            _ => None,
        };
        let max_task = hookbench_kmod::abi::HB_KMOD_MAX_TASK_PROGS as usize;
        let mut installed = 0usize;
        let mut one = |detach: bool| -> Result<u64, CellError> {
            let u = match (m.model, &top, detach) {
                (ModelKind::CgroupEffective, Some(dir), false) => {
                    dev.attach_cgroup(dir.as_fd(), prog.prog_ref(), MEASURED_HOOK, AttachFlags::ALLOW_MULTI)
                }
                (ModelKind::CgroupEffective, Some(dir), true) => {
                    dev.detach_cgroup(dir.as_fd(), prog.prog_ref(), MEASURED_HOOK)
                }
                (ModelKind::GlobalFilter, _, false) => dev.attach_global(prog.prog_ref(), MEASURED_HOOK),
                (ModelKind::GlobalFilter, _, true) => dev.detach_global(prog.prog_ref(), MEASURED_HOOK),
                (_, _, _) => {
                    // A task's chain only grows; start a new one (untimed) before the cap.
                    if installed + 1 >= max_task {
                        dev.reset().map_err(skip)?;
                        installed = 0;
                    }
                    installed += 1;
                    dev.install_task(m.model, prog.prog_ref(), MEASURED_HOOK)
                }
            }
            .map_err(skip)?;
            Ok(u.elapsed_ns)
        };
        let has_detach = matches!(m.model, ModelKind::CgroupEffective | ModelKind::GlobalFilter);
        for _ in 0..(samples / 10).clamp(1, 20) {
            one(false)?;
            if has_detach {
                one(true)?;
            }
        }
        let (mut attach, mut detach) = (Vec::new(), Vec::new());
        for _ in 0..spec.repetitions.max(1) {
            let (mut a, mut d) = (Vec::with_capacity(samples), Vec::with_capacity(samples));
            for _ in 0..samples {
                a.push(one(false)? as f64);
                if has_detach {
                    d.push(one(true)? as f64);
                }
            }
            attach.push(a);
            detach.push(d);
        }
        drop(dev);
        let params = Params { tasks: 0, ..p };
        let name = &spec.mechanism.name;
        let mut out = vec![plain_cell(
            spec,
            NAME,
            name,
            params,
            "attach_latency_ns",
            "ns",
            &attach,
        )?];
        if has_detach {
            out.push(plain_cell(
                spec,
                NAME,
                name,
                params,
                "detach_latency_ns",
                "ns",
                &detach,
            )?);
        }
        for m in &mut out {
            m.cell.batch_k = Some(1);
        }
        Ok(out)
    }
}

impl Drop for KmodBackend {
    fn drop(&mut self) {
        if let Some(run) = self.run.take() {
            if let Err(e) = run.teardown() {
                eprintln!("hookbench: warning: kmod backend: cgroup tear-down: {e} (run `hookbench cleanup`)");
            }
        }
    }
}

impl Backend for KmodBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    fn measure(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let name = &spec.mechanism.name;
        let m = KmodMechanism::parse(name)
            .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("unknown kmod mechanism {name}")))?;
        if let Err(reason) = &self.available {
            return Err(CellError::Skip(format!("hookbench.ko not usable here: {reason}")));
        }
        if self.uml && m.mode == FireMode::Ioctl {
            return Err(CellError::Skip(format!(
                "{name}: not measured on User-Mode Linux, whose syscalls are trapped by the host's ptrace \
                 (a FIRE ioctl costs microseconds there); the in-kernel loop cells measure the dispatch"
            )));
        }
        let p = spec.params;
        if p.cpus != 1 {
            return Err(CellError::Skip(format!(
                "{name}: cpus sweeps are not measured by the kmod backend in this version (cpus {})",
                p.cpus
            )));
        }
        if p.working_set != 1 && (m.mode == FireMode::Ioctl || m.model == ModelKind::GlobalFilter) {
            return Err(CellError::Skip(format!(
                "{name}: working_set {} needs the in-kernel loop and per-task or per-cgroup state: FIRE ioctls \
                 fire the caller's own state, global-filter has one list per session",
                p.working_set
            )));
        }
        match spec.suite.metric {
            Metric::HookLatency => self.hook_cells(m, spec),
            Metric::AttachLatency => self.attach_cells(m, spec),
            Metric::MetadataBytes | Metric::SetupSeconds => Err(CellError::Skip(format!(
                "{name}: the kmod backend measures hook and update latency only in this version"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_are_model_names_with_an_optional_ioctl_suffix() {
        for (name, model, mode, builtin_body) in [
            ("task-chain", ModelKind::TaskChain, FireMode::InKernel, false),
            ("task-chain-builtin", ModelKind::TaskChain, FireMode::InKernel, true),
            (
                "cgroup-effective-ioctl",
                ModelKind::CgroupEffective,
                FireMode::Ioctl,
                false,
            ),
        ] {
            let want = KmodMechanism {
                model,
                mode,
                builtin_body,
            };
            assert_eq!(KmodMechanism::parse(name), Some(want), "{name}");
        }
        assert_eq!(KmodMechanism::parse("task-chain-builtin-ioctl"), None);
        assert_eq!(KmodMechanism::parse("chain-walk"), None);
        assert_eq!(KmodMechanism::parse("effective-array"), None);
    }

    #[test]
    fn batches_shrink_with_programs_and_stay_in_the_modules_limits() {
        let p = |n: u32| Params {
            programs: n,
            ..Params::default()
        };
        let small = KmodBackend::batch(FireMode::InKernel, &p(0));
        let large = KmodBackend::batch(FireMode::InKernel, &p(4000));
        assert!(small > large && large >= 1 && small <= 4096, "{small} {large}");
        assert!(KmodBackend::batch(FireMode::Ioctl, &p(0)) <= 256);
    }

    #[test]
    fn without_the_module_every_cell_is_skipped_with_what_to_load() {
        if std::path::Path::new(hookbench_kmod::abi::HB_KMOD_DEVICE).exists() {
            return;
        }
        let reason = probe().expect_err("no /dev/hookbench here");
        assert!(reason.contains("hookbench.ko"), "{reason}");
    }
}
