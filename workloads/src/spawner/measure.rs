//! The spawner's measuring body: it moves into its home, warms every peer up, then times them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::c_reference::run_c;
use super::{
    trim_inherited_mappings, validate, Peer, PeerTimes, SpawnerError, SpawnerJob, SpawnerReport, SpawnerRequest,
    SETTLE_PAUSE, SETTLE_TIMEOUT, WARMUP_COUNT,
};
use crate::cgroupfs::{mkdir_floor, settle_dying, Cgroup2, CgroupError, RunTree, Shape};
use crate::taskpool::{task_floor, Placement, TaskPool};

/// What one peer of a job does, once.
struct Job<'a> {
    req: &'a SpawnerRequest,
    run: PathBuf,
    placement: Option<Placement>,
    /// What [`trim_inherited_mappings`] marked.
    trimmed: Vec<(usize, usize)>,
}

impl Job<'_> {
    /// Times `peer` once with `count` tasks or cgroups (the job's own when `None`).
    fn once(&mut self, peer: Peer, count: Option<u32>) -> Result<(Duration, Duration), SpawnerError> {
        match &self.req.job {
            SpawnerJob::Tasks {
                cgroups,
                tasks,
                floor_cgroup,
                c_cgroup,
            } => {
                let n = count.unwrap_or(*tasks);
                match peer {
                    Peer::Mechanism => {
                        let (pool, setup) = TaskPool::spawn(&self.run, cgroups, n)?;
                        self.placement = Some(pool.placement());
                        let teardown = pool.teardown()?;
                        Ok((setup, teardown))
                    }
                    Peer::Floor => Ok(task_floor(floor_cgroup, n)?),
                    Peer::C => self.c(&["tasks", &c_cgroup.to_string_lossy(), &n.to_string()]),
                }
            }
            SpawnerJob::Cgroups {
                parent,
                cgroups,
                children_per_container,
            } => {
                let n = count.unwrap_or(*cgroups);
                match peer {
                    Peer::Mechanism => {
                        let mut tree = RunTree::create_under(parent)?;
                        let shape = Shape::Containers {
                            children_per_container: *children_per_container,
                        };
                        let (_, setup) = tree.build_timed(shape, n)?;
                        let stats = tree.teardown_unpopulated()?;
                        Ok((setup, stats.duration))
                    }
                    Peer::Floor => Ok(mkdir_floor(parent, n)?),
                    Peer::C => self.c(&["cgroups", &parent.to_string_lossy(), &n.to_string()]),
                }
            }
        }
    }

    /// Runs the C reference with `args`, or says it was not asked for.
    fn c(&self, args: &[&str]) -> Result<(Duration, Duration), SpawnerError> {
        match &self.req.c_reference {
            Some(exe) => run_c(exe, args, &self.trimmed),
            None => Err(SpawnerError::CReference {
                exe: "<none>".to_string(),
                why: "not asked for".to_string(),
            }),
        }
    }

    /// Where removed cgroups die: the cgroups job's parent, else the run's subtree.
    fn settle_point(&self) -> &Path {
        match &self.req.job {
            SpawnerJob::Cgroups { parent, .. } => parent,
            SpawnerJob::Tasks { .. } => &self.run,
        }
    }
}

/// The spawner's body: times its peers for `req` and reports what it measured; never fails.
///
/// Validates `req`, moves this process into `req.home`, warms every peer up, then times the peers
/// `req.repetitions` times in a seeded random order. Errors go to the report (`error` stops the
/// measurement, `c_error` only drops the C peer). Call it only in a fresh single-threaded process
/// that exits afterwards (`hookbench worker tasks '<json>'`): it moves the whole process into
/// another cgroup and forks thousands of times.
pub fn run_spawner(req: &SpawnerRequest) -> SpawnerReport {
    let mut report = SpawnerReport {
        pid: std::process::id(),
        home: req.home.clone(),
        ..SpawnerReport::default()
    };
    if let Err(e) = measure(req, &mut report) {
        report.error = Some(e.to_string());
    }
    report
}

/// [`run_spawner`]'s steps, filling `report` as it goes; the error that stopped it.
fn measure(req: &SpawnerRequest, report: &mut SpawnerReport) -> Result<(), SpawnerError> {
    let cg = Cgroup2::detect()?;
    let run = validate(req, cg.mount())?;
    let procs = req.home.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string()).map_err(|e| {
        SpawnerError::Cgroup(CgroupError::Sys {
            op: "write",
            path: procs.clone(),
            errno: nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            hint: "the spawner's home must be a leaf cgroup of the run (no controllers in its parent's \
                   cgroup.subtree_control for threaded or domain-invalid trees); run as root",
        })
    })?;
    let trimmed = trim_inherited_mappings();
    report.trimmed_mappings = trimmed.len() as u32;
    let mut job = Job {
        req,
        run,
        placement: None,
        trimmed,
    };
    let mut peers = vec![Peer::Mechanism, Peer::Floor];
    if req.c_reference.is_some() {
        peers.push(Peer::C);
    } else {
        report.c_error = Some("the C reference was not asked for".to_string());
    }
    // Warm-up: page cache of the C binary, slabs, pid and cgroup id allocation.
    let warm = req.job.count().min(WARMUP_COUNT);
    for &peer in &peers.clone() {
        match job.once(peer, Some(warm)) {
            Ok(_) => {}
            Err(e) if peer == Peer::C => {
                report.c_error = Some(e.to_string());
                peers.retain(|&p| p != Peer::C);
            }
            Err(e) => return Err(e),
        }
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(req.seed);
    for _ in 0..req.repetitions {
        let mut order = peers.clone();
        order.shuffle(&mut rng);
        for peer in order {
            let waited = std::time::Instant::now();
            settle_dying(job.settle_point(), SETTLE_TIMEOUT)?;
            std::thread::sleep(SETTLE_PAUSE);
            report.settle_s += waited.elapsed().as_secs_f64();
            match job.once(peer, None) {
                Ok(times) => {
                    report.order.push(peer);
                    match peer {
                        Peer::Mechanism => report.mechanism.push(times),
                        Peer::Floor => report.floor.push(times),
                        Peer::C => report.c.push(times),
                    }
                }
                Err(e) if peer == Peer::C => {
                    // The C peer stops; the others go on.
                    report.c_error = Some(e.to_string());
                    report.c = PeerTimes::default();
                    report.order.retain(|&p| p != Peer::C);
                    peers.retain(|&p| p != Peer::C);
                }
                Err(e) => return Err(e),
            }
        }
    }
    report.placement = job.placement.map(|p| match p {
        Placement::Clone3IntoCgroup => "clone3-into-cgroup".to_string(),
        Placement::ForkThenProcs => "fork-then-procs".to_string(),
    });
    Ok(())
}
