//! Set-up and tear-down cells of the kernel backend: C cgroups and T tasks against the
//! kernel's floor for the same syscalls.

use super::{KernelBackend, KernelMechanism, NAME};
use crate::backend::{plain_cell, CellError, CellSpec, Measured};
use hookbench_model::Params;
use hookbench_workloads::cgroupfs::{mkdir_floor, Cgroup2, RunTree, Shape};
use hookbench_workloads::taskpool::{task_floor, TaskPool};

impl KernelBackend {
    /// Set-up and tear-down seconds of C cgroups or T tasks, and the kernel's floor for the same
    /// syscalls, measured `repetitions` times (at most 3) in fresh run subtrees: four cells,
    /// `setup_seconds` and `teardown_seconds` for the mechanism and for `<mechanism>-floor`.
    pub(super) fn setup_cells(
        &mut self,
        mechanism: KernelMechanism,
        spec: &CellSpec<'_>,
    ) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        let cg = Cgroup2::detect().map_err(|e| CellError::Skip(e.to_string()))?;
        let fail = |what: &str, e: String| CellError::Skip(format!("{what}: {e}"));
        let reps = spec.repetitions.clamp(1, 3);
        let mut own: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut floor: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
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
            own[0].push(setup.as_secs_f64());
            own[1].push(teardown.as_secs_f64());
            floor[0].push(floor_setup.as_secs_f64());
            floor[1].push(floor_teardown.as_secs_f64());
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
                let name = format!("{}{suffix}", mechanism.as_str());
                let per_rep: Vec<Vec<f64>> = reps.iter().map(|&v| vec![v]).collect();
                out.push(plain_cell(spec, NAME, &name, params, metric, "s", &per_rep)?);
            }
        }
        Ok(out)
    }
}
