//! Landlock cells of the kernel backend: `open()` under N stacked layers, and layer installs.
//!
//! The hook cells time `open()` under the layers against the same `open()` with no domain.
//! `landlock-foreign-net` (claim 1) adds `foreign` network-only layers above the `programs`
//! filesystem ones: layers the `open()` hook does not decide with (see the workloads' landlock.rs
//! for what `hook_file_open` does with them); its worker counts the domain's layers afterwards.

use super::seccomp::install_cell;
use super::{every_node_runs, kernel_samples, one_task_hook_cell, KernelBackend, KernelMechanism};
use crate::backend::{interleaved, note_validity, worker_failure, CellError, CellSpec, Cells};
use hookbench_measure::SampleSet;
use hookbench_reports::Accounting;
use hookbench_workloads::landlock::{LandlockReport, LandlockRequest, LandlockWorker, LANDLOCK_MAX_NUM_LAYERS};

/// Most layer installs timed per repetition (ten 16-layer workers).
pub const MAX_LANDLOCK_INSTALLS: usize = 160;

impl KernelBackend {
    /// One Landlock worker: `layers` fs layers (+ `foreign_net` network-only), a file deep down.
    ///
    /// The file is `dir_depth` directories beneath the scratch root.
    ///
    /// With foreign layers the worker also counts its domain's layers after the opens.
    fn landlock_worker(
        &self,
        layers: u32,
        foreign_net: u32,
        dir_depth: u32,
        spec: &CellSpec<'_>,
        installs_only: bool,
    ) -> Result<LandlockReport, CellError> {
        std::fs::create_dir_all(&self.scratch)
            .map_err(|e| CellError::Fatal(anyhow::anyhow!("cannot create {}: {e}", self.scratch.display())))?;
        let req = LandlockRequest {
            layers,
            dir_depth: dir_depth.max(1),
            root: self.scratch.clone(),
            timing: self.timing_for(spec),
            installs_only,
            prestack: 0,
            foreign_net,
            count_layers: foreign_net > 0,
        };
        hookbench_workloads::worker::spawn::<LandlockWorker>(&self.exe, &req).map_err(|e| worker_failure("landlock", e))
    }

    /// A hook cell: `open()` under N layers (+ F network-only) against no domain, alternating.
    pub(super) fn landlock_hook_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let p = spec.params;
        let foreign = if mechanism == KernelMechanism::LandlockForeignNet {
            p.foreign
        } else {
            0
        };
        // The registry's limit keeps suites inside it; a hand-made point is skipped here.
        if p.programs + foreign > LANDLOCK_MAX_NUM_LAYERS {
            return Err(CellError::Skip(format!(
                "{}: {} filesystem + {foreign} network-only layers asked for; a domain stacks at most \
                 LANDLOCK_MAX_NUM_LAYERS = {LANDLOCK_MAX_NUM_LAYERS} (security/landlock/limits.h)",
                mechanism.as_str(),
                p.programs
            )));
        }
        let mut counted = Vec::new();
        let (base, cell) = interleaved(
            spec.seed,
            spec.repetitions,
            |baseline| -> Result<SampleSet, CellError> {
                let (layers, net) = if baseline { (0, 0) } else { (p.programs, foreign) };
                let report = self.landlock_worker(layers, net, p.depth, spec, false)?;
                if net > 0 {
                    counted.push(report.domain_layers);
                }
                report
                    .samples
                    .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("the landlock worker returned no samples")))
            },
        )?;
        let mut m = one_task_hook_cell(spec, mechanism, 0, &cell, &base)?;
        // Every filesystem layer is checked for the path (security/landlock/fs.c); the network-only
        // layers are visited (two mask tests each) but decide nothing.
        m.cell.accounting = Some(Accounting {
            nodes_visited: u64::from(p.programs + foreign),
            ..every_node_runs(u64::from(p.programs))
        });
        if foreign > 0 {
            // The worker refuses a domain of another size, so every count here is the expected one.
            let expected = p.programs + foreign;
            if counted.iter().any(|&c| c != Some(expected)) {
                return Err(CellError::Fatal(anyhow::anyhow!(
                    "{}: the workers counted {counted:?} domain layers, {expected} expected",
                    mechanism.as_str()
                )));
            }
            note_validity(
                &mut m.cell,
                format!(
                    "domain of {expected} layers ({} filesystem + {foreign} network-only, youngest last) in each \
                     of {} workers, counted by stacking until E2BIG after the opens; TCP bind() denied with EACCES",
                    p.programs,
                    counted.len()
                ),
            );
        }
        Ok(vec![m])
    }

    /// Install cost of one Landlock layer, timed over 16-layer workers.
    ///
    /// Enough workers per repetition to time the samples asked for, at most
    /// [`MAX_LANDLOCK_INSTALLS`].
    pub(super) fn landlock_install_cells(&mut self, spec: &CellSpec<'_>) -> Cells {
        let wanted = kernel_samples(spec).min(MAX_LANDLOCK_INSTALLS);
        let mut reps = Vec::with_capacity(spec.repetitions);
        for _ in 0..spec.repetitions.max(1) {
            let mut values = Vec::with_capacity(wanted);
            while values.len() < wanted {
                let report = self.landlock_worker(LANDLOCK_MAX_NUM_LAYERS, 0, spec.params.depth, spec, true)?;
                if report.install_ns.is_empty() {
                    return Err(CellError::Fatal(anyhow::anyhow!(
                        "the landlock worker installed no layer"
                    )));
                }
                values.extend(report.install_ns);
            }
            values.truncate(wanted);
            reps.push(values);
        }
        install_cell(spec, KernelMechanism::Landlock.as_str(), &reps)
    }
}
