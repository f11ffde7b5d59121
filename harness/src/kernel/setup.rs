//! Set-up and tear-down cells of the kernel backend: C cgroups or T tasks, against two floors.
//!
//! They are made by the exec'd spawner inside the run's subtree, against the kernel's floor for
//! the same syscalls and the same floor in plain C.

use super::{KernelBackend, KernelMechanism, NAME};
use crate::backend::{plain_cell, worker_failure, CellError, CellSpec, Cells};
use hookbench_model::Params;
use hookbench_workloads::cgroupfs::{RunTree, Shape};
use hookbench_workloads::spawner::{install_c_reference, Peer, SpawnerJob, SpawnerRequest, SpawnerWorker};

impl KernelBackend {
    /// Set-up and tear-down seconds of C cgroups or T tasks, against two floors.
    ///
    /// The floors are the kernel's floor for the same syscalls and the same floor in plain C; all
    /// are measured by the spawner (`hookbench worker tasks`, exec'd fresh for the cell, so no
    /// figure depends on the harness's size; it lives in a leaf of a cgroup tree made for the
    /// cell inside the run's subtree, and everything it creates is born there and dies with it).
    /// Per repetition (the suite's, at most 5) the mechanism, the Rust floor and the C floor run
    /// in a seeded random order. Six cells: `setup_seconds` and `teardown_seconds` of
    /// `<mechanism>`, `<mechanism>-floor` and `<mechanism>-c`; the `-c` cells are left out, with
    /// a warning naming the reason, when the C reference was not built or cannot run here.
    pub(super) fn setup_cells(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
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
        let report = hookbench_workloads::worker::spawn::<SpawnerWorker>(&exe, &req);
        // The spawner has exited (and its tasks with it): the cell's tree holds no task.
        let torn = cell.teardown();
        let report = report.map_err(|e| worker_failure("spawner", e))?;
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
                let per_rep: Vec<Vec<f64>> = values.iter().map(|&v| vec![v]).collect();
                out.push(plain_cell(spec, NAME, &name, params, metric, "s", &per_rep)?);
            }
        }
        Ok(out)
    }
}
