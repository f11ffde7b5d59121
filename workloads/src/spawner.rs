//! The spawner (`hookbench worker tasks`): times task and cgroup set-up against floors and C.
//!
//! A small exec'd worker (`hookbench worker tasks '<request>'`) that times the set-up and
//! tear-down of tasks or cgroups against their floors and the C reference, inside the run's
//! cgroup subtree.
//!
//! Why a worker: fork copies the creating process's page tables and each child's exit tears its
//! copy down, so tasks forked from the harness (whose address space grows during a run) measure
//! the harness. The spawner is exec'd fresh for every cell, so its size does not depend on what
//! ran before, and it makes raw `clone3`/`fork` calls and nothing else.
//!
//! What it does, in order:
//!
//! 1. Moves itself into [`SpawnerRequest::home`], a leaf cgroup of the run's subtree (one write
//!    of its pid to `cgroup.procs`), so that everything it creates is born inside the subtree.
//! 2. Warms each peer up once, untimed, with at most [`WARMUP_COUNT`] tasks or cgroups.
//! 3. Per repetition, runs the peers in a seeded random order ([`SpawnerRequest::seed`]):
//!    - tasks: the pool ([`TaskPool::spawn`]: `clone3(CLONE_INTO_CGROUP)` spread over the
//!      cgroups, then kill + waitpid of each), the floor ([`task_floor`]: fork + write of the pid
//!      to one `cgroup.procs`, then kill + waitpid) and the C reference (`setup_floor tasks`);
//!    - cgroups: the mechanism (a containers-shaped tree built by [`RunTree::build_timed`] in a
//!      tree nested in the run, removed by [`RunTree::teardown_unpopulated`]), the floor
//!      ([`mkdir_floor`]) and the C reference (`setup_floor cgroups`).
//!
//!    Before each timed peer it waits for the kernel to free the cgroups removed so far
//!    ([`settle_dying`]) and for [`SETTLE_PAUSE`], so no peer pays for the previous one's
//!    deferred work (the RCU and workqueue half of `rmdir` and of task exit).
//! 4. Prints its [`SpawnerReport`] through the one worker protocol (`crate::worker`) and exits.
//!
//! Every task it creates dies with it: pool and floor children set `PR_SET_PDEATHSIG(SIGKILL)`
//! (see `crate::taskpool`), the C reference is started with the same signal, and the spawner
//! itself is started by the harness with it ([`crate::worker::worker_command`]). So a SIGKILL
//! of the run at any moment leaves at most tasks that are already dying, inside the run's
//! subtree, where `hookbench cleanup` finds them.
//!
//! The C reference (`workloads/c/setup_floor.c`) is compiled by `build.rs` and embedded
//! ([`C_REFERENCE`]); the harness writes it into the run's scratch directory
//! ([`install_c_reference`]) and names it in [`SpawnerRequest::c_reference`].
//!
//! This file holds the request, the report and their checks; `measure` the measuring body,
//! `c_reference` the C peer and `mappings` what the spawner's children do not inherit.

mod c_reference;
mod mappings;
mod measure;
#[cfg(test)]
mod tests;

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cgroupfs::{in_run_dir, CgroupError};
use crate::taskpool::TaskPoolError;

pub use c_reference::{c_reference, install_c_reference, parse_c_report, C_REFERENCE, C_REPORT_MARKER};
pub use mappings::{dontfork_ranges, inherit_mappings, trim_inherited_mappings};
pub use measure::run_spawner;

#[cfg(doc)]
use crate::cgroupfs::{mkdir_floor, settle_dying, RunTree};
#[cfg(doc)]
use crate::taskpool::{task_floor, TaskPool};

/// Longest a spawner may run before the harness kills it: 15 minutes.
///
/// Enough for 3 peers x 20 repetitions of 100,000 tasks on a slow machine.
pub const SPAWNER_TIMEOUT: Duration = Duration::from_secs(900);

/// Most repetitions a [`SpawnerRequest`] may ask for.
pub const MAX_REPETITIONS: u32 = 20;

/// Most tasks or cgroups per peer a [`SpawnerRequest`] may ask for (the C reference's limit too).
pub const MAX_COUNT: u32 = 1_000_000;

/// Most cgroups a tasks job may spread its pool over (one directory fd each).
pub const MAX_POOL_CGROUPS: usize = 100_000;

/// Tasks or cgroups of each peer's untimed warm-up (fewer when the job asks for fewer).
pub const WARMUP_COUNT: u32 = 1000;

/// Pause before each timed peer, so none pays for the previous one's deferred work.
///
/// It comes after the dying cgroups are freed and lets the RCU callbacks of the previous peer's
/// task exits and rmdirs run (a grace period is a few ms).
pub const SETTLE_PAUSE: Duration = Duration::from_millis(20);

/// Longest wait for the kernel to free removed cgroups before a timed peer ([`settle_dying`]).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the spawner could not measure. Every variant names the value or path and what to do.
#[derive(Debug, thiserror::Error)]
pub enum SpawnerError {
    /// A count or size of the request is out of range; nothing was created.
    #[error("spawner request: {what} = {value} is invalid: {why}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Its value.
        value: String,
        /// The accepted range.
        why: &'static str,
    },
    /// A path of the request is not a cgroup of `home`'s hookbench run; nothing was created.
    #[error(
        "spawner request: {path} is not inside the run's cgroup subtree {run}: the spawner only creates tasks and \
         cgroups inside the run it belongs to; pass cgroups of that run (no `..`)"
    )]
    OutsideRun {
        /// The path refused.
        path: PathBuf,
        /// The run's subtree (`<cgroup2 mount>/hookbench-*`) of `home`, or the mount when `home`
        /// itself is outside.
        run: PathBuf,
    },
    /// A cgroup operation failed (moving itself, building or removing a tree, the floor).
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// Creating, killing or reaping tasks failed (every task started was killed and reaped).
    #[error(transparent)]
    Tasks(#[from] TaskPoolError),
    /// The C reference is missing, could not run or printed no figures.
    #[error("C reference {exe}: {why}")]
    CReference {
        /// The executable (or `<embedded>`).
        exe: String,
        /// What went wrong, and what to do.
        why: String,
    },
}

/// One of the things a spawner times side by side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Peer {
    /// What hookbench does: the task pool, or the containers-shaped cgroup tree.
    Mechanism,
    /// The kernel's floor in Rust: the simplest loop of the same syscalls.
    Floor,
    /// The same floor in plain C (`workloads/c/setup_floor.c`).
    C,
}

impl Peer {
    /// The suffix of the peer's cells' mechanism name: "", "-floor", "-c".
    pub fn suffix(self) -> &'static str {
        match self {
            Peer::Mechanism => "",
            Peer::Floor => "-floor",
            Peer::C => "-c",
        }
    }
}

/// What a spawner times.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SpawnerJob {
    /// `tasks` idle tasks in the run's cgroups, one set per peer.
    ///
    /// The pool spreads them round-robin over `cgroups`; the floor writes every pid to
    /// `floor_cgroup`, the C reference to `c_cgroup` (empty leaves of the run).
    Tasks {
        /// Cgroups of the pool (leaves of the run).
        cgroups: Vec<PathBuf>,
        /// Tasks per peer.
        tasks: u32,
        /// The Rust floor's cgroup.
        floor_cgroup: PathBuf,
        /// The C reference's cgroup.
        c_cgroup: PathBuf,
    },
    /// `cgroups` cgroups made and removed under `parent` (a cgroup of the run).
    ///
    /// The mechanism as a slice of containers with `children_per_container` children each (in a
    /// tree nested under `parent`), the floor and the C reference as numbered children of a fresh
    /// directory.
    Cgroups {
        /// Where the trees are made.
        parent: PathBuf,
        /// Cgroups per peer.
        cgroups: u32,
        /// Children of each container cgroup of the mechanism's tree.
        children_per_container: u32,
    },
}

/// The request of `hookbench worker tasks '<json>'`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpawnerRequest {
    /// The leaf cgroup of the run the spawner moves into before creating anything.
    pub home: PathBuf,
    /// What to time.
    pub job: SpawnerJob,
    /// Timed repetitions of every peer (1..=[`MAX_REPETITIONS`]).
    pub repetitions: u32,
    /// Seed of the order of the peers within each repetition.
    pub seed: u64,
    /// The C reference executable; `None` measures the mechanism and the floor only.
    pub c_reference: Option<PathBuf>,
}

/// Set-up and tear-down seconds of one peer, one entry per repetition, in the order measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerTimes {
    /// Seconds from the first clone (or mkdir) until all exist.
    pub setup_s: Vec<f64>,
    /// Seconds of the kill + waitpid loops (or of the rmdirs).
    pub teardown_s: Vec<f64>,
}

impl PeerTimes {
    /// Appends one repetition's set-up and tear-down.
    fn push(&mut self, (setup, teardown): (Duration, Duration)) {
        self.setup_s.push(setup.as_secs_f64());
        self.teardown_s.push(teardown.as_secs_f64());
    }
}

/// The spawner's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpawnerReport {
    /// The spawner's pid.
    pub pid: u32,
    /// The cgroup it lived in.
    pub home: PathBuf,
    /// The pool or the cgroup tree.
    pub mechanism: PeerTimes,
    /// The Rust floor.
    pub floor: PeerTimes,
    /// The C reference (empty when not measured: see `c_error`).
    pub c: PeerTimes,
    /// Why the C reference was not measured (not asked for, missing, or it failed).
    pub c_error: Option<String>,
    /// The timed peers in the order they ran (warm-ups excluded).
    pub order: Vec<Peer>,
    /// How the pool placed its tasks: "clone3-into-cgroup" or "fork-then-procs" (tasks jobs).
    pub placement: Option<String>,
    /// Seconds spent waiting for the kernel to settle before the timed peers, in all.
    pub settle_s: f64,
    /// Mappings of the spawner its pool and floor children do not inherit.
    ///
    /// See [`trim_inherited_mappings`].
    #[serde(default)]
    pub trimmed_mappings: u32,
    /// Why it stopped before the end, if it did (what was measured before is kept).
    pub error: Option<String>,
}

/// The run's subtree of `path`: `<mount>/<first component>`, when that is a `hookbench-*` run.
///
/// `None` otherwise, or when `path` has a `.`/`..` component.
fn run_of(mount: &Path, path: &Path) -> Option<PathBuf> {
    if !in_run_dir(path) {
        return None;
    }
    let rel = path.strip_prefix(mount).ok()?;
    match rel.components().next() {
        Some(Component::Normal(first)) if first.to_string_lossy().starts_with(crate::cgroupfs::RUN_PREFIX) => {
            Some(mount.join(first))
        }
        _ => None,
    }
}

/// [`SpawnerError::Invalid`] for field `what` of value `value`, accepted range `why`.
fn invalid(what: &'static str, value: u64, why: &'static str) -> SpawnerError {
    SpawnerError::Invalid {
        what,
        value: value.to_string(),
        why,
    }
}

impl SpawnerJob {
    /// Tasks or cgroups the job asks of each peer.
    fn count(&self) -> u32 {
        match self {
            SpawnerJob::Tasks { tasks, .. } => *tasks,
            SpawnerJob::Cgroups { cgroups, .. } => *cgroups,
        }
    }

    /// The cgroups of the run the job uses.
    ///
    /// The pool's, the floor's and the C reference's, or the parent of its trees.
    fn cgroups(&self) -> Vec<&PathBuf> {
        match self {
            SpawnerJob::Tasks {
                cgroups,
                floor_cgroup,
                c_cgroup,
                ..
            } => cgroups.iter().chain([floor_cgroup, c_cgroup]).collect(),
            SpawnerJob::Cgroups { parent, .. } => vec![parent],
        }
    }

    /// Checks the job's counts against their limits. Errors: [`SpawnerError::Invalid`].
    fn check_counts(&self) -> Result<(), SpawnerError> {
        let what = match self {
            SpawnerJob::Tasks { .. } => "tasks",
            SpawnerJob::Cgroups { .. } => "cgroups",
        };
        let n = self.count();
        if n == 0 || n > MAX_COUNT {
            return Err(invalid(what, u64::from(n), "use 1..=1000000"));
        }
        match self {
            SpawnerJob::Tasks { cgroups, .. } if cgroups.is_empty() || cgroups.len() > MAX_POOL_CGROUPS => {
                Err(invalid("cgroups", cgroups.len() as u64, "give 1..=100000 cgroups"))
            }
            SpawnerJob::Cgroups {
                children_per_container: children,
                ..
            } if *children > MAX_COUNT => Err(invalid(
                "children_per_container",
                u64::from(*children),
                "use 0..=1000000",
            )),
            _ => Ok(()),
        }
    }
}

/// Checks `req` against the cgroup2 `mount` before anything is created; returns the run's subtree.
///
/// Pure. Errors: [`SpawnerError::Invalid`], [`SpawnerError::OutsideRun`].
pub fn validate(req: &SpawnerRequest, mount: &Path) -> Result<PathBuf, SpawnerError> {
    if req.repetitions == 0 || req.repetitions > MAX_REPETITIONS {
        return Err(invalid("repetitions", u64::from(req.repetitions), "use 1..=20"));
    }
    let run = run_of(mount, &req.home).ok_or_else(|| SpawnerError::OutsideRun {
        path: req.home.clone(),
        run: mount.to_path_buf(),
    })?;
    req.job.check_counts()?;
    if let Some(bad) = req
        .job
        .cgroups()
        .into_iter()
        .find(|p| run_of(mount, p).as_ref() != Some(&run))
    {
        return Err(SpawnerError::OutsideRun { path: bad.clone(), run });
    }
    Ok(run)
}

crate::worker::worker_kind! {
    /// The spawner worker kind (`hookbench worker tasks`), which always answers with a report.
    ///
    /// Its report keeps what was measured before a failure (`SpawnerReport::error`).
    pub struct SpawnerWorker("tasks", SpawnerRequest => SpawnerReport, SPAWNER_TIMEOUT) = |req| {
        Ok::<_, std::convert::Infallible>(run_spawner(req))
    };
}
