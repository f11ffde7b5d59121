//! Landlock cells of the kernel backend: `open()` under N stacked layers, and layer installs.
//!
//! The hook cells time `open()` under the layers against the same `open()` with no domain.

use super::seccomp::install_cell;
use super::{every_node_runs, kernel_samples, one_task_hook_cell, KernelBackend, KernelMechanism};
use crate::backend::{interleaved, worker_failure, CellError, CellSpec, Cells};
use hookbench_measure::SampleSet;
use hookbench_workloads::landlock::{LandlockReport, LandlockRequest, LandlockWorker, LANDLOCK_MAX_NUM_LAYERS};

/// Most layer installs timed per repetition (ten 16-layer workers).
pub const MAX_LANDLOCK_INSTALLS: usize = 160;

impl KernelBackend {
    /// One Landlock worker: `layers` layers, a file `dir_depth` directories down.
    fn landlock_worker(
        &self,
        layers: u32,
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
        };
        hookbench_workloads::worker::spawn::<LandlockWorker>(&self.exe, &req).map_err(|e| worker_failure("landlock", e))
    }

    /// A hook cell: `open()` under N layers against no domain, alternating repetitions.
    pub(super) fn landlock_hook_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let p = spec.params;
        if p.programs > LANDLOCK_MAX_NUM_LAYERS {
            return Err(CellError::Skip(format!(
                "landlock: {} layers asked for; a domain stacks at most LANDLOCK_MAX_NUM_LAYERS = \
                 {LANDLOCK_MAX_NUM_LAYERS} (security/landlock/limits.h)",
                p.programs
            )));
        }
        let (base, cell) = interleaved(
            spec.seed,
            spec.repetitions,
            |baseline| -> Result<SampleSet, CellError> {
                let layers = if baseline { 0 } else { p.programs };
                self.landlock_worker(layers, p.depth, spec, false)?
                    .samples
                    .ok_or_else(|| CellError::Fatal(anyhow::anyhow!("the landlock worker returned no samples")))
            },
        )?;
        let mut m = one_task_hook_cell(spec, mechanism, 0, &cell, &base)?;
        // Every layer is checked for the path (security/landlock/fs.c).
        m.cell.accounting = Some(every_node_runs(u64::from(p.programs)));
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
                let report = self.landlock_worker(LANDLOCK_MAX_NUM_LAYERS, spec.params.depth, spec, true)?;
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
