//! Claim 5 on the kernel: effective arrays over H attach types, and T tasks' seccomp chains.
//!
//! Both sides are counted with [`crate::kmem`] (kmalloc objects and BPF's vmalloc pages).
//!
//! - Per cgroup: [`EffectiveArrays`] holds one program on each of H cgroup-bpf attach types
//!   ([`attach_kinds`]) and attaches all of them at the top of a subtree (`BPF_LINK_CREATE`,
//!   ALLOW_MULTI semantics), which gives every cgroup of the subtree one new effective array per
//!   attach type. Nothing is timed or forked, so the harness does it.
//! - Per task: the metadata worker (`hookbench worker metadata '<request>'`, [`MetadataWorker`])
//!   moves into a leaf cgroup of the run, then creates T idle tasks that hold N seccomp filters:
//!   forked after the worker installed its N filters ([`Sharing::Shared`], the chain shared
//!   across fork), or each installing N of its own ([`Sharing::Own`]). It counts kernel memory
//!   before the tasks exist and once they all hold their filters, then kills and reaps every
//!   task (on every path: the pool kills and reaps what it started when it is dropped) and
//!   reports the change, with what changed in the null windows beside it (other processes). The harness runs it once with N filters and once with none, and takes
//!   the difference, so the tasks' own structures cancel.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hookbench_bpf::{link_create_cgroup, ForeignHook, MeasuredHook, ProgKind, ProgramInstance};
use hookbench_model::Body;
use serde::{Deserialize, Serialize};

use crate::cgroup_bpf::{bpf_err, sock_body, CgroupBpfError};
use crate::kmem::{Caches, KmemCounter, KmemDelta};
use crate::seccomp::{filter_program, max_filters, FilterBody, SECCOMP_FILTER_FLAG_SPEC_ALLOW};
use crate::taskpool::TaskPool;

/// Cgroup-bpf attach types hookbench has programs for, so the most `hooks` a metadata cell takes.
pub const MAX_ATTACH_TYPES: u32 = 5;

/// Most tasks one metadata worker creates.
pub const MAX_TASKS: u32 = 100_000;

/// Largest change of the counted bytes between two readings that counts as settled.
pub const SETTLE_TOLERANCE_BYTES: i64 = 16 << 10;

/// Longest wait for the kernel's deferred frees before a reading ([`KmemCounter::settle`]).
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The program kinds of [`EffectiveArrays`] with `hooks` attach types, the measured ones first.
///
/// `cgroup/getsockname4` and `cgroup/sock_create` with `body`, then the foreign `cgroup/sysctl`,
/// `cgroup/getsockopt` and `cgroup/dev` programs. Errors: `hooks` is 0 or over
/// [`MAX_ATTACH_TYPES`] (the message names the types there are).
pub fn attach_kinds(hooks: u32, body: Body) -> Result<Vec<ProgKind>, CgroupBpfError> {
    let sock = sock_body(body);
    let all = [
        ProgKind::Measured(MeasuredHook::Getsockname4, sock),
        ProgKind::Measured(MeasuredHook::SockCreate, sock),
        ProgKind::Foreign(ForeignHook::Sysctl),
        ProgKind::Foreign(ForeignHook::Getsockopt),
        ProgKind::Foreign(ForeignHook::Device),
    ];
    if hooks == 0 || hooks > MAX_ATTACH_TYPES {
        return Err(CgroupBpfError::Invalid {
            what: "hooks (cgroup-bpf attach types)",
            value: u64::from(hooks),
            why: "use 1..=5: hookbench has programs for getsockname4, sock_create, sysctl, getsockopt and dev",
        });
    }
    Ok(all[..hooks as usize].to_vec())
}

/// One loaded program on each of H attach types, each also kept attached at a keeper cgroup.
///
/// The keeper attaches keep every type's `cgroup_bpf_enabled_key` on, so a measured attach
/// allocates only what the attach itself needs.
#[derive(Debug)]
pub struct EffectiveArrays {
    // Field order is drop order: the keepers' links before the programs.
    keepers: Vec<OwnedFd>,
    programs: Vec<ProgramInstance>,
}

impl EffectiveArrays {
    /// Loads a program per kind of [`attach_kinds`]`(hooks, body)` and attaches each at `keeper`.
    ///
    /// `keeper` is a cgroup of the run outside the measured subtrees. Errors:
    /// [`CgroupBpfError::Invalid`] for `hooks`, [`CgroupBpfError::Bpf`], [`CgroupBpfError::Io`].
    pub fn load(hooks: u32, body: Body, keeper: &Path) -> Result<EffectiveArrays, CgroupBpfError> {
        let programs = attach_kinds(hooks, body)?
            .into_iter()
            .map(|k| ProgramInstance::load(k).map_err(bpf_err(keeper)))
            .collect::<Result<Vec<_>, _>>()?;
        let mut arrays = EffectiveArrays {
            keepers: Vec::with_capacity(programs.len()),
            programs,
        };
        arrays.keepers = arrays.attach_at(keeper)?;
        Ok(arrays)
    }

    /// Attaches every program once at `top` (one raw `BPF_LINK_CREATE` each); returns the links.
    ///
    /// Each attach recomputes the effective arrays of `top` and every descendant for its type.
    /// Dropping a returned link detaches it. Errors: [`CgroupBpfError::Io`] (the directory),
    /// [`CgroupBpfError::Bpf`] (the attach).
    pub fn attach_at(&self, top: &Path) -> Result<Vec<OwnedFd>, CgroupBpfError> {
        let dir = std::fs::File::open(top).map_err(|source| CgroupBpfError::Io {
            op: "open",
            path: top.to_path_buf(),
            source,
        })?;
        let mut links = Vec::with_capacity(self.programs.len());
        for p in &self.programs {
            let prog = p.fd().ok_or_else(|| CgroupBpfError::Invalid {
                what: "program fd",
                value: u64::from(p.id()),
                why: "the loaded program lost its fd",
            })?;
            let kind = p.kind();
            let link =
                link_create_cgroup(prog, dir.as_fd(), kind.attach_type(), kind.prog_name()).map_err(bpf_err(top))?;
            links.push(link);
        }
        Ok(links)
    }

    /// The attach types, one per program.
    pub fn len(&self) -> usize {
        self.programs.len()
    }

    /// Whether there is no program (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
    }
}

/// How the T tasks of a seccomp metadata cell come by their N filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// The worker installs N filters, then forks the tasks: one chain, shared across fork.
    Shared,
    /// The worker forks the tasks, then each installs N filters of its own.
    Own,
}

/// The request of `hookbench worker metadata '<json>'`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataRequest {
    /// The leaf cgroup of the run the worker moves into; its tasks are born there.
    pub home: PathBuf,
    /// Idle tasks to create (1..=[`MAX_TASKS`]).
    pub tasks: u32,
    /// Argument-loading seccomp filters per task's chain (0 for the baseline).
    pub filters: u32,
    /// Who installs them.
    pub sharing: Sharing,
}

/// What the metadata worker counted: the change from before the tasks to once they all exist.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetadataReport {
    /// The worker's pid.
    pub pid: u32,
    /// Bytes counted (kmalloc caches and BPF's vmalloc pages) with the tasks, less without.
    pub bytes: i64,
    /// The kmalloc caches' part.
    pub slab_bytes: i64,
    /// BPF's vmalloc pages' part.
    pub bpf_vmalloc_bytes: i64,
    /// The kmalloc caches that changed, largest change first (the ten largest).
    pub by_cache: Vec<(String, i64)>,
    /// `Seccomp_filters` of the first and the last task (checks they hold N filters).
    pub filters_seen: Vec<u32>,
    /// Seconds spent waiting for the kernel to settle before the first reading.
    pub settle_s: f64,
    /// The largest change of the counted bytes in the null windows beside the measurement.
    ///
    /// Other processes' work: the harness measures again when it is over
    /// [`crate::kmem::QUIET_TOLERANCE_BYTES`].
    #[serde(default)]
    pub background_bytes: i64,
}

crate::worker::worker_kind! {
    /// The metadata worker (`hookbench worker metadata`): T idle tasks with shared or own filters.
    pub struct MetadataWorker("metadata", MetadataRequest => MetadataReport, Duration::from_secs(300)) = count_tasks;
}

/// `Seccomp_filters:` of `/proc/<pid>/status` (Linux 5.9+); `None` when it is not shown.
fn seccomp_filters_of(pid: libc::pid_t) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The metadata worker's body: see the module doc. Errors: the reason, in words.
fn count_tasks(req: &MetadataRequest) -> Result<MetadataReport, String> {
    let body = FilterBody::ArgLoad;
    if req.tasks == 0 || req.tasks > MAX_TASKS {
        return Err(format!(
            "metadata worker: tasks = {} is invalid: use 1..={MAX_TASKS}",
            req.tasks
        ));
    }
    if req.filters > max_filters(body) {
        return Err(format!(
            "metadata worker: filters = {} is over the seccomp instruction budget of {} such filters per task",
            req.filters,
            max_filters(body)
        ));
    }
    if !crate::cgroupfs::in_run_dir(&req.home) {
        return Err(format!(
            "metadata worker: {} is not a cgroup of a hookbench run: it only creates tasks inside the run",
            req.home.display()
        ));
    }
    let procs = req.home.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .map_err(|e| format!("metadata worker: cannot move into {}: {e}", procs.display()))?;
    // A seccomp program's `bpf_prog_aux` is memcg-accounted: every kmalloc cache counts.
    let counter = KmemCounter::new(Caches::All).map_err(|e| e.to_string())?;
    let shared = req.sharing == Sharing::Shared && req.filters > 0;
    if shared {
        let clock = hookbench_measure::Clock::monotonic_raw();
        crate::seccomp::install_filters_ns(&clock, body, req.filters, true).map_err(|e| e.to_string())?;
    }
    let program = filter_program(body);
    let prog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    let cgroups = [req.home.clone()];
    let settle_start = Instant::now();
    counter
        .settle(SETTLE_TOLERANCE_BYTES, SETTLE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let settle_s = settle_start.elapsed().as_secs_f64();
    let (measured, (pool, _)) = counter
        .measure(|| {
            if shared || req.filters == 0 {
                TaskPool::spawn(&req.home, &cgroups, req.tasks)
            } else {
                TaskPool::spawn_installing(
                    &req.home,
                    &cgroups,
                    req.tasks,
                    (&prog, req.filters, SECCOMP_FILTER_FLAG_SPEC_ALLOW),
                )
            }
        })
        .map_err(|e| e.to_string())?;
    // On any error below, dropping the pool kills and reaps every task.
    let pids = pool.pids();
    let filters_seen = [pids.first(), pids.last()]
        .into_iter()
        .flatten()
        .filter_map(|&pid| seccomp_filters_of(pid))
        .collect();
    pool.teardown().map_err(|e| e.to_string())?;
    let KmemDelta {
        bytes,
        slab_bytes,
        bpf_vmalloc_bytes,
        mut by_cache,
    } = measured.delta;
    by_cache.truncate(10);
    Ok(MetadataReport {
        pid: std::process::id(),
        bytes,
        slab_bytes,
        bpf_vmalloc_bytes,
        by_cache,
        filters_seen,
        settle_s,
        background_bytes: measured.background_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_kinds_stop_at_the_types_there_are() {
        let kinds = attach_kinds(5, Body::Null).expect("five");
        assert_eq!(kinds.len(), 5);
        let types: std::collections::BTreeSet<_> = kinds.iter().map(|k| k.attach_type().name()).collect();
        assert_eq!(types.len(), 5, "five distinct attach types");
        assert_eq!(
            attach_kinds(1, Body::Counter).expect("one")[0].attach_type().name(),
            "BPF_CGROUP_INET4_GETSOCKNAME"
        );
        let e = attach_kinds(6, Body::Null).expect_err("six");
        assert!(e.to_string().contains("use 1..=5"), "{e}");
        assert!(attach_kinds(0, Body::Null).is_err());
    }

    /// A new run tree for root test `test`, which reads /proc/slabinfo (`bpf`: loads programs).
    ///
    /// `None` after saying why it is skipped.
    fn slab_run_or_skip(test: &str, bpf: bool) -> Option<crate::cgroupfs::RunTree> {
        let needs = if bpf {
            "needs root for cgroups, BPF and /proc/slabinfo"
        } else {
            "needs root for cgroups and /proc/slabinfo"
        };
        crate::test_support::run_tree_or_skip(test, needs).map(|(_, run)| run)
    }

    /// Attaching one program on each of two attach types above C cgroups adds bytes per cgroup.
    ///
    /// A sanity check without timing (root, cgroup v2): the change from 16 to 1,040 cgroups is
    /// positive, and the kmalloc-64 cache grew by at least one object per array in the larger.
    #[test]
    fn attaching_above_c_cgroups_adds_bytes_per_cgroup() {
        use crate::cgroupfs::{RunTree, Shape};
        let Some(mut run) = slab_run_or_skip("attaching_above_c_cgroups_adds_bytes_per_cgroup", true) else {
            return;
        };
        let keeper = run.child("keeper").expect("keeper");
        let arrays = EffectiveArrays::load(2, Body::Null, &keeper).expect("programs");
        let counter = KmemCounter::new(Caches::Unaccounted).expect("kmalloc caches");
        let (mut deltas, mut links, mut subtrees) = (Vec::new(), Vec::new(), Vec::new());
        for c in [16u32, 1040] {
            let mut sub = RunTree::create_under(run.root()).expect("subtree");
            sub.build(Shape::Wide, c).expect("cgroups");
            counter.settle(SETTLE_TOLERANCE_BYTES, SETTLE_TIMEOUT).expect("settles");
            let (m, made) = counter.measure(|| arrays.attach_at(sub.root())).expect("attaches");
            links.push(made);
            deltas.push((c, m.delta));
            subtrees.push(sub);
        }
        drop(links);
        drop(arrays);
        for sub in subtrees {
            sub.teardown().expect("subtree teardown");
        }
        run.teardown().expect("teardown");
        let per_cgroup = (deltas[1].1.bytes - deltas[0].1.bytes) as f64 / 1024.0;
        eprintln!("bytes per cgroup at 2 attach types: {per_cgroup:.1}; {deltas:?}");
        assert!(per_cgroup > 0.0, "{deltas:?}");
        let k64 = deltas[1]
            .1
            .by_cache
            .iter()
            .find(|(c, _)| c == "kmalloc-64")
            .map_or(0, |(_, b)| *b);
        assert!(k64 >= 1041 * 2 * 64, "kmalloc-64 grew {k64} bytes: {deltas:?}");
    }

    /// The worker's tasks hold the chain they should, and none is left when it has exited.
    ///
    /// Root and cgroup v2; shared (inherited), own (installed by each) and none.
    #[test]
    fn the_metadata_worker_checks_its_tasks_chains_and_reaps_them() {
        let Some(mut run) = slab_run_or_skip("the_metadata_worker_checks_its_tasks_chains_and_reaps_them", false)
        else {
            return;
        };
        let home = run.child("tasks").expect("home");
        for (sharing, filters) in [(Sharing::Shared, 2), (Sharing::Own, 2), (Sharing::Own, 0)] {
            let req = MetadataRequest {
                home: home.clone(),
                tasks: 8,
                filters,
                sharing,
            };
            let r = crate::test_support::spawn_test::<MetadataWorker>(&req).expect("measured");
            assert_eq!(r.filters_seen, [filters, filters], "{sharing:?}");
            let procs = std::fs::read_to_string(home.join("cgroup.procs")).expect("procs");
            assert!(procs.trim().is_empty(), "{sharing:?}: left {procs}");
        }
        assert_eq!(run.teardown().expect("teardown").processes_killed, 0);
    }

    #[test]
    fn requests_are_checked_before_anything_is_made() {
        let req = |tasks, filters, home: &str| MetadataRequest {
            home: PathBuf::from(home),
            tasks,
            filters,
            sharing: Sharing::Own,
        };
        let e = count_tasks(&req(0, 1, "/sys/fs/cgroup/hookbench-1-2/t")).expect_err("no tasks");
        assert!(e.contains("tasks = 0"), "{e}");
        let e = count_tasks(&req(1, 100_000, "/sys/fs/cgroup/hookbench-1-2/t")).expect_err("too many filters");
        assert!(e.contains("filters = 100000"), "{e}");
        let e = count_tasks(&req(1, 1, "/sys/fs/cgroup/user.slice")).expect_err("outside a run");
        assert!(e.contains("not a cgroup of a hookbench run"), "{e}");
    }
}
