//! The machine limits a ring must stay within, read once, and the check of a ring against them.
//!
//! A ring of W tasks needs W + 1 pids (the tasks and the worker) under every `pids.max` of the
//! harness's cgroups, `kernel.pid_max` and `kernel.threads-max`; a cgroup-bpf ring also W + 4
//! cgroups under the cgroup2 mount's `cgroup.max.descendants` (the run, the cell, the worker's
//! home, the slots' parent, and one per task); and kernel memory for W tasks and W x N programs,
//! at most half of what is available (`MemAvailable`, and what every `memory.max` or
//! `memory.limit_in_bytes` of the harness's cgroups leaves). [`MachineLimits::read`] reads them
//! up front; [`ring_limit`] is pure and names the first one a ring would go beyond, with the
//! largest W that fits.

use std::path::{Path, PathBuf};

use super::RingChain;
use crate::taskpool::{controller_cgroups, kernel_task_limits, read_pids, PidsReading};

/// Kernel memory one ring task takes, bytes, whatever its programs: a generous upper bound.
///
/// On this project's VM (Linux 6.18, x86-64, 2026-12) the drop of `MemAvailable` while a ring of
/// 4,096 tasks ran was 25 to 165 KiB per task (noisy: other jobs ran): `task_struct`, kernel
/// stack, page tables and the rest of a forked process. The check would rather refuse a ring
/// that fits than run the machine out of memory.
pub const TASK_BYTES: u64 = 160 << 10;

/// Kernel memory one filter or program of a ring takes, bytes, by chain: a generous upper bound.
///
/// Measured as [`TASK_BYTES`] was, with 16 per task: 6 to 9 KiB each (a seccomp filter is a
/// `struct seccomp_filter` and a `bpf_prog`, a vmalloc'd page with its JIT image; a cgroup-bpf
/// program a `bpf_prog` with its aux data, its link and its effective-array slot).
pub fn program_bytes(chain: RingChain) -> u64 {
    match chain {
        RingChain::Seccomp => 16 << 10,
        RingChain::CgroupBpf => 32 << 10,
    }
}

/// Threads `copy_process` keeps free of `kernel.pid_max` (pids below 300 are not reused).
const RESERVED_PIDS: u64 = 300;

/// Slack left below every task limit, for the rest of the machine.
const SLACK_TASKS: u64 = 64;

/// One memory limit of the harness's cgroups: the directory, its limit and its usage, bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryReading {
    /// The cgroup directory.
    pub dir: PathBuf,
    /// `memory.max` (v2) or `memory.limit_in_bytes` (v1).
    pub max: u64,
    /// `memory.current` (v2) or `memory.usage_in_bytes` (v1).
    pub current: u64,
}

/// Every limit a ring is checked against, as read up front.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineLimits {
    /// `kernel.pid_max`.
    pub pid_max: Option<u64>,
    /// `kernel.threads-max`.
    pub threads_max: Option<u64>,
    /// Threads alive when read.
    pub threads_alive: Option<u64>,
    /// `pids.max` and `pids.current` of the harness's cgroups (v1 and v2), leaf first.
    pub pids: Vec<PidsReading>,
    /// `cgroup.max.descendants` of the cgroup2 mount's top cgroup and its `nr_descendants`:
    /// `(dir, max, current)`, when it has a limit.
    pub descendants: Option<(PathBuf, u64, u64)>,
    /// `MemAvailable` of /proc/meminfo, bytes.
    pub mem_available_bytes: Option<u64>,
    /// Memory limits of the harness's cgroups that are set.
    pub memory: Vec<MemoryReading>,
}

impl MachineLimits {
    /// Reads every limit now, for a ring made under the cgroup2 `mount` (if there is one).
    pub fn read(mount: Option<&Path>) -> MachineLimits {
        let read = |p: &Path| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
        let num = |p: &Path| read(p).and_then(|s| s.parse::<u64>().ok());
        let (pid_max, threads_max, threads_alive) = kernel_task_limits();
        let descendants = mount.and_then(|m| {
            let max = num(&m.join("cgroup.max.descendants"))?;
            let stat = read(&m.join("cgroup.stat"))?;
            let current = stat
                .lines()
                .find_map(|l| l.strip_prefix("nr_descendants "))
                .and_then(|v| v.trim().parse().ok())?;
            Some((m.to_path_buf(), max, current))
        });
        let mountinfo = read(Path::new("/proc/self/mountinfo")).unwrap_or_default();
        let proc_cgroup = read(Path::new("/proc/self/cgroup")).unwrap_or_default();
        let memory = controller_cgroups(&mountinfo, &proc_cgroup, None, "memory")
            .into_iter()
            .filter_map(|(dir, hierarchy)| {
                let (max, current) = match hierarchy {
                    "v1" => ("memory.limit_in_bytes", "memory.usage_in_bytes"),
                    _ => ("memory.max", "memory.current"),
                };
                // "max", and v1's page-rounded LONG_MAX, mean no limit.
                let max = num(&dir.join(max)).filter(|m| *m < 1 << 62)?;
                let current = num(&dir.join(current))?;
                Some(MemoryReading { dir, max, current })
            })
            .collect();
        let mem_available_bytes = read(Path::new("/proc/meminfo")).and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib << 10)
        });
        MachineLimits {
            pid_max,
            threads_max,
            threads_alive,
            pids: read_pids(None),
            descendants,
            mem_available_bytes,
            memory,
        }
    }
}

/// A ring beyond a machine limit: the axis, the largest value that fits, and the limit in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingLimit {
    /// The axis: `working_set`.
    pub axis: &'static str,
    /// The largest W that fits.
    pub max: u32,
    /// The limit, with its value and what uses it.
    pub why: String,
}

/// The first limit of `l` a ring of `tasks` tasks with `programs` each would go beyond. Pure.
pub fn ring_limit(chain: RingChain, tasks: u32, programs: u32, l: &MachineLimits) -> Option<RingLimit> {
    let w = u64::from(tasks);
    let over = |fits: u64, why: String| {
        (w > fits).then(|| RingLimit {
            axis: "working_set",
            max: u32::try_from(fits).unwrap_or(u32::MAX),
            why,
        })
    };
    let mut found: Vec<Option<RingLimit>> = Vec::new();
    for r in &l.pids {
        if let Some(max) = r.max {
            // The tasks and their worker.
            let fits = max.saturating_sub(r.current).saturating_sub(1);
            found.push(over(
                fits,
                format!(
                    "pids.max of {} ({}) is {max} with {} in use: a ring needs W + 1 more",
                    r.dir.display(),
                    r.hierarchy,
                    r.current
                ),
            ));
        }
    }
    let alive = l.threads_alive.unwrap_or(0);
    if let Some(max) = l.pid_max {
        let fits = max.saturating_sub(alive + RESERVED_PIDS + SLACK_TASKS + 1);
        found.push(over(
            fits,
            format!("kernel.pid_max is {max} with {alive} threads alive: a ring needs W + 1 more"),
        ));
    }
    if let Some(max) = l.threads_max {
        let fits = max.saturating_sub(alive + SLACK_TASKS + 1);
        found.push(over(
            fits,
            format!("kernel.threads-max is {max} with {alive} threads alive: a ring needs W + 1 more"),
        ));
    }
    if let (RingChain::CgroupBpf, Some((dir, max, current))) = (chain, &l.descendants) {
        found.push(over(
            max.saturating_sub(current + 4),
            format!(
                "cgroup.max.descendants of {} is {max} with {current} descendants: a cgroup-bpf ring needs W + 4 \
                 more cgroups",
                dir.display()
            ),
        ));
    }
    let per_task = TASK_BYTES + u64::from(programs) * program_bytes(chain);
    let mut budgets: Vec<(u64, String)> = Vec::new();
    if let Some(avail) = l.mem_available_bytes {
        budgets.push((avail / 2, format!("half of MemAvailable ({} MiB)", avail >> 20)));
    }
    for m in &l.memory {
        budgets.push((
            m.max.saturating_sub(m.current) / 2,
            format!(
                "half of what the memory limit of {} leaves ({} of {} MiB in use)",
                m.dir.display(),
                m.current >> 20,
                m.max >> 20
            ),
        ));
    }
    for (budget, what) in budgets {
        found.push(over(
            budget / per_task,
            format!(
                "kernel memory: a ring takes about {} KiB per task with {programs} programs each, and {what} holds \
                 {} such tasks",
                per_task >> 10,
                budget / per_task
            ),
        ));
    }
    found.into_iter().flatten().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roomy() -> MachineLimits {
        MachineLimits {
            pid_max: Some(4_194_304),
            threads_max: Some(200_000),
            threads_alive: Some(300),
            pids: Vec::new(),
            descendants: None,
            mem_available_bytes: Some(24 << 30),
            memory: Vec::new(),
        }
    }

    #[test]
    fn a_ring_within_every_limit_passes() {
        let l = roomy();
        assert_eq!(ring_limit(RingChain::CgroupBpf, 10_000, 16, &l), None);
        assert_eq!(ring_limit(RingChain::Seccomp, 4096, 16, &l), None);
    }

    #[test]
    fn each_limit_is_named_with_the_largest_ring_that_fits() {
        let per_task = TASK_BYTES + 16 * program_bytes(RingChain::CgroupBpf);
        /// What the machine has, the ring asked for, the largest W that fits, the limit named.
        type Case = (MachineLimits, (RingChain, u32, u32), u64, &'static str);
        let cases: [Case; 4] = [
            (
                MachineLimits {
                    pids: vec![PidsReading {
                        dir: PathBuf::from("/sys/fs/cgroup/pids/job"),
                        hierarchy: "v1",
                        max: Some(1000),
                        current: 99,
                    }],
                    ..roomy()
                },
                (RingChain::Seccomp, 4096, 0),
                900,
                "pids.max of /sys/fs/cgroup/pids/job (v1) is 1000",
            ),
            (
                MachineLimits {
                    pid_max: Some(32_768),
                    ..roomy()
                },
                (RingChain::Seccomp, 40_000, 0),
                32_768 - 300 - 300 - 64 - 1,
                "kernel.pid_max is 32768",
            ),
            (
                MachineLimits {
                    descendants: Some((PathBuf::from("/sys/fs/cgroup"), 5000, 10)),
                    ..roomy()
                },
                (RingChain::CgroupBpf, 10_000, 4),
                4986,
                "cgroup.max.descendants of /sys/fs/cgroup is 5000",
            ),
            (
                MachineLimits {
                    memory: vec![MemoryReading {
                        dir: PathBuf::from("/sys/fs/cgroup/job"),
                        max: 1 << 30,
                        current: 0,
                    }],
                    ..roomy()
                },
                (RingChain::CgroupBpf, 10_000, 16),
                (512 << 20) / per_task,
                "memory limit of /sys/fs/cgroup/job",
            ),
        ];
        for (l, (chain, tasks, programs), fits, named) in cases {
            let e = ring_limit(chain, tasks, programs, &l).expect(named);
            assert_eq!((e.axis, u64::from(e.max)), ("working_set", fits), "{named}");
            assert!(e.why.contains(named), "{}", e.why);
            assert!(
                ring_limit(chain, e.max, programs, &l).is_none(),
                "{named}: {} fits",
                e.max
            );
        }
        // A seccomp ring makes no cgroup per task.
        let l = MachineLimits {
            descendants: Some((PathBuf::from("/sys/fs/cgroup"), 5000, 10)),
            ..roomy()
        };
        assert!(ring_limit(RingChain::Seccomp, 10_000, 4, &l).is_none());
    }

    #[test]
    fn the_live_limits_read() {
        let l = MachineLimits::read(None);
        assert!(l.pid_max.is_some_and(|m| m > 0));
        assert!(l.mem_available_bytes.is_some_and(|m| m > 0));
        assert!(ring_limit(RingChain::Seccomp, 1, 0, &l).is_none(), "{l:?}");
    }
}
