//! The working-set ring (`hookbench worker ring`): W tasks on one CPU take turns firing the hook.
//!
//! Claim 6 asks what a hook costs when the CPU's caches hold the metadata of thousands of tasks
//! or cgroups rather than one. The ring builds exactly that on the running kernel. The worker,
//! an exec'd process pinned to the run's worker CPU, forks W tasks (they inherit the pinning);
//! each carries its own dispatch state ([`RingChain`]):
//!
//! - `seccomp`: its own chain of N argument-loading seccomp filters (installed by the task
//!   itself, `SECCOMP_FILTER_FLAG_SPEC_ALLOW`): the task chain;
//! - `cgroup-bpf`: its own cgroup `<slots>/<i>` with N null `cgroup/getsockname4` programs,
//!   loaded and linked by the worker before the fork and held by the task (inherited link fds):
//!   the cgroup's effective array.
//!
//! Every task makes one AF_INET UDP socket bound to 127.0.0.1:0 (in its cgroup: a getsockname4
//! program runs from the socket's cgroup), then sleeps on its token, a futex word in a shared
//! mapping (`shared`). The worker hands the token to the first task of a seeded rotation
//! ([`rotation`]); each task, when woken, times one `getsockname()` with the harness's clock,
//! records the interval and the CPU, and wakes its successor. Between two turns of one task the
//! CPU ran the W - 1 others, so with thousands of tasks the hook finds its metadata cold. A
//! warm-up of one rotation (at least [`MIN_WARMUP_TURNS`] turns: each task's first turn faults
//! its pages in) is discarded; the timed turns are at least the request's samples, one rotation
//! and enough for `min_duration_ns` of timed calls. With N = 0 the same ring is the baseline. For
//! cgroup-bpf, a last pass with the kernel's run statistics on has every task fire `count_fires`
//! untimed calls and reads every program's `run_cnt` by id.
//!
//! Tasks are made by a raw fork of this small process, never of the harness, and every one is
//! killed and reaped at the end on every path ([`Tasks`]'s drop); each also set
//! `PR_SET_PDEATHSIG(SIGKILL)`, and the worker itself was started with it, so a killed run leaves
//! no task (they live in the run's cgroup subtree, `home`, where `hookbench cleanup` finds them).
//! `task` holds the tasks' side, `footprint` the bytes a rotation reads, `limits` the machine
//! limits a ring must stay within.

mod footprint;
mod limits;
mod shared;
mod task;
#[cfg(test)]
mod tests;

use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hookbench_bpf::{link_create_cgroup, raw, AttachType, MeasuredHook, RunStats};
use hookbench_measure::{measurement_from_intervals, Clock, SampleSet, Speculation, TimingRequest};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

pub use footprint::{kernel_footprint, Footprint, KERNEL_METHOD, LINE_BYTES};
pub use limits::{program_bytes, ring_limit, MachineLimits, MemoryReading, RingLimit, TASK_BYTES};
pub use shared::rotation;
pub use task::{Stage, RING_COMM};

use shared::{futex_wait, Shared};
use task::{fork_task, TaskPlan};

/// Most tasks one ring may have.
pub const MAX_TASKS: u32 = 100_000;

/// Most timed turns of one ring (the sample slots are mapped before the fork).
pub const MAX_TIMED_TURNS: u64 = 200_000;

/// Fewest warm-up turns, whatever the ring's size.
pub const MIN_WARMUP_TURNS: u64 = 1000;

/// Rotations of the warm-up, and the fewest rotations timed.
pub const ROTATIONS: u64 = 1;

/// Longest a phase of the ring may take before the worker gives up on it.
pub const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

/// How often the worker, asleep while the ring runs, checks that no task died.
const POLL_NS: u64 = 100_000_000;

/// The dispatch state every task of a ring carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RingChain {
    /// Its own chain of argument-loading seccomp filters: the task chain.
    Seccomp,
    /// Its own cgroup with null `cgroup/getsockname4` programs: the effective array.
    CgroupBpf,
}

/// What a ring worker is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingRequest {
    /// What each task carries.
    pub chain: RingChain,
    /// W: tasks in the ring (1..=[`MAX_TASKS`]).
    pub tasks: u32,
    /// N: filters or programs per task (0: the baseline ring).
    pub programs: u32,
    /// A cgroup of the run the worker joins before it forks; `None` leaves it where it is.
    ///
    /// Every task is then born inside the run's subtree; `None` is for a machine without
    /// cgroup v2.
    #[serde(default)]
    pub home: Option<PathBuf>,
    /// The parent of the tasks' cgroups: task `i` joins `<slots>/<i>` (required for cgroup-bpf).
    #[serde(default)]
    pub slots: Option<PathBuf>,
    /// How to time: the clock, the CPU, samples and duration of the timed turns.
    pub timing: TimingRequest,
    /// Seed of the rotation order.
    pub seed: u64,
    /// Run-count pass (cgroup-bpf with N > 0): untimed calls per task with run statistics on.
    #[serde(default)]
    pub count_fires: Option<u64>,
    /// Probe pass (seccomp with N > 0): every task asks each filter for its answer, untimed.
    ///
    /// It runs after the timed turns ([`crate::seccomp::probe_filter`]).
    #[serde(default)]
    pub probe: bool,
}

/// What the probe pass of a seccomp ring found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingProbe {
    /// Tasks probed (every task of the ring).
    pub tasks: u32,
    /// Filters each task asked: its whole chain.
    pub filters: u32,
    /// Tasks every one of whose filters gave its own answer.
    pub complete_tasks: u32,
    /// The first task (by index) with a filter that did not, and that filter.
    pub first_miss: Option<(u32, crate::seccomp::ProbeMiss)>,
    /// Whether the first task's action cache lets `getsockname()` skip its chain.
    ///
    /// From /proc/PID/seccomp_cache (`CONFIG_SECCOMP_CACHE_DEBUG`); `None`: not available.
    pub cache_skips_trigger: Option<bool>,
}

/// What the run-count pass of a cgroup-bpf ring found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingRunCount {
    /// Statistics were on for `calls` calls in all; the programs ran `observed` times.
    Counted {
        /// Calls fired (every task's).
        calls: u64,
        /// Runs expected: calls x N.
        expected: u64,
        /// Runs counted by the kernel (`run_cnt` deltas of every program).
        observed: u64,
    },
    /// The pass could not count: why (e.g. `BPF_ENABLE_STATS` refused).
    Unavailable(String),
}

/// What a ring worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RingReport {
    /// One sample per timed turn: one `getsockname()` of a task that waited for the others.
    pub samples: SampleSet,
    /// W.
    pub tasks: u32,
    /// N.
    pub programs: u32,
    /// Turns discarded as warm-up.
    pub warmup_turns: u64,
    /// Turns timed.
    pub timed_turns: u64,
    /// Seconds to make the tasks and their filters or programs.
    pub setup_s: f64,
    /// The run-count pass, when asked.
    pub run_count: Option<RingRunCount>,
    /// The fewest and most `Seccomp_filters` the tasks' /proc/PID/status showed (seccomp).
    pub seccomp_filters: Option<[u32; 2]>,
    /// The probe pass, when asked.
    #[serde(default)]
    pub probe: Option<RingProbe>,
}

crate::worker::worker_kind! {
    /// The ring worker (`hookbench worker ring`): W tasks take turns firing the hook on one CPU.
    pub struct RingWorker("ring", RingRequest => RingReport, Duration::from_secs(900)) = run_ring;
}

/// The ring's tasks: killed and reaped when dropped, on every path.
struct Tasks {
    pids: Vec<libc::pid_t>,
}

impl Tasks {
    /// `SIGKILL` to every task, then `waitpid` on each; clears the list.
    fn kill_and_reap(&mut self) {
        for &pid in &self.pids {
            // SAFETY: kill(2) of a child this process made and has not reaped (not reused).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &self.pids {
            let mut status = 0;
            // SAFETY: waitpid(2) of one child with a valid status pointer.
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 && Errno::last() == Errno::EINTR {}
        }
        self.pids.clear();
    }

    /// Whether a task has ended (it must live until killed).
    fn one_ended(&self) -> Option<libc::pid_t> {
        let mut status = 0;
        // SAFETY: waitpid(2) of any child, not blocking; the ring's tasks are this process's
        // only children.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        (pid > 0).then_some(pid)
    }
}

impl Drop for Tasks {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// The worker's body: checks, forks, runs the phases, reports (the tasks die on every path).
fn run_ring(req: &RingRequest) -> Result<RingReport, String> {
    check(req)?;
    if let Some(home) = &req.home {
        join(home)?;
    }
    req.timing
        .pin()
        .map_err(|e| format!("ring worker: pinning to CPU {:?}: {e}", req.timing.cpu))?;
    let clock = req.timing.clock();
    let w = req.tasks;
    let (order, next) = rotation(w, req.seed);
    let warmup = (ROTATIONS * u64::from(w)).max(MIN_WARMUP_TURNS);
    let shared = Shared::new(w as usize, (warmup + MAX_TIMED_TURNS) as usize)
        .map_err(|e| format!("ring worker: mapping the shared ring: {e}"))?;
    // Made before the fork, where every task finds them: filter i of every task's chain is the
    // probed program i (the timed path is the argument-loading filter's).
    let n = if req.chain == RingChain::Seccomp {
        req.programs
    } else {
        0
    };
    let filters: Vec<Vec<libc::sock_filter>> = (0..n)
        .map(|i| {
            crate::seccomp::probe_filter_program(crate::seccomp::FilterBody::ArgLoad, i)
                .ok_or_else(|| "ring worker: the argument-loading filter cannot be probed".to_string())
        })
        .collect::<Result<_, _>>()?;
    let fprogs: Vec<libc::sock_fprog> = filters
        .iter()
        .map(|f| libc::sock_fprog {
            len: f.len() as libc::c_ushort,
            filter: f.as_ptr().cast_mut(),
        })
        .collect();
    let mut tasks = Tasks {
        pids: Vec::with_capacity(w as usize),
    };
    let started = Instant::now();
    let mut program_ids = Vec::new();
    // Checked once: `<slots>/<i>` cannot leave it.
    let slots = match (req.chain, &req.slots) {
        (RingChain::CgroupBpf, Some(slots)) => {
            Some(crate::cgroup_bpf::check_in_run(slots).map_err(|e| format!("ring worker: {e}"))?)
        }
        _ => None,
    };
    for (i, &successor) in next.iter().enumerate() {
        let cgroup = match &slots {
            Some(slots) => Some(slot_cgroup(&slots.join(i.to_string()), req.programs)?),
            None => None,
        };
        let plan = TaskPlan {
            shared: &shared,
            index: i,
            next: successor as usize,
            // SAFETY: getpid(2) takes no argument.
            parent: unsafe { libc::getpid() },
            cgroup: cgroup.as_ref().map(|c| (c.dir.as_raw_fd(), c.procs.as_raw_fd())),
            seccomp: &fprogs,
            clock: &clock,
        };
        let pid = fork_task(&plan).map_err(|errno| {
            format!(
                "ring worker: making task {i} of {w} failed: {errno}{}",
                if errno == Errno::EAGAIN {
                    " (a process limit: pids.max, kernel.pid_max or kernel.threads-max)"
                } else {
                    ""
                }
            )
        })?;
        tasks.pids.push(pid);
        if let Some(c) = cgroup {
            program_ids.extend(c.ids);
        }
    }
    let ring = Ring {
        shared: &shared,
        order: &order,
        tasks: &tasks,
    };
    ring.wait_ready(w)?;
    let setup_s = started.elapsed().as_secs_f64();
    ring.phase(warmup, 1)?;
    let warm = shared.turns(0, warmup);
    let timed = timed_turns(&req.timing, w, &warm, &clock);
    ring.phase(timed, 1)?;
    let turns = shared.turns(warmup, warmup + timed);
    let header = shared.header();
    if header.call_errors.load(Ordering::Relaxed) > 0 {
        return Err(format!(
            "ring worker: getsockname() failed in {} turn(s): {}",
            header.call_errors.load(Ordering::Relaxed),
            Errno::from_raw(header.call_errno.load(Ordering::Relaxed))
        ));
    }
    let run_count = match req.count_fires {
        Some(fires) if req.chain == RingChain::CgroupBpf && req.programs > 0 => {
            Some(ring.count_runs(fires, &program_ids, req.programs))
        }
        _ => None,
    };
    let seccomp_filters = (req.chain == RingChain::Seccomp)
        .then(|| filters_seen(&tasks.pids))
        .flatten();
    let probe = if req.probe && n > 0 { Some(ring.probe(n)?) } else { None };
    let speculation = tasks
        .pids
        .first()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .map(|s| Speculation::parse(&s))
        .unwrap_or_default();
    // Every task is killed and reaped here (and on every error path above, when `tasks` goes).
    drop(tasks);
    let intervals: Vec<f64> = turns
        .iter()
        .map(|(ticks, _)| clock.ticks_to_ns(*ticks as f64))
        .collect();
    let cpus: Vec<Option<u32>> = turns.iter().map(|(_, c)| c.checked_sub(1)).collect();
    let m = measurement_from_intervals(&clock, 1, &intervals, &cpus).map_err(|e| format!("ring worker: {e}"))?;
    Ok(RingReport {
        samples: SampleSet::from_measurement(&m, speculation),
        tasks: w,
        programs: req.programs,
        warmup_turns: warmup,
        timed_turns: timed,
        setup_s,
        run_count,
        seccomp_filters,
        probe,
    })
}

/// Refuses a request out of range before anything is made.
fn check(req: &RingRequest) -> Result<(), String> {
    let bad = |what: &str, value: u64, why: &str| Err(format!("ring worker: {what} = {value} is invalid: {why}"));
    if req.tasks == 0 || req.tasks > MAX_TASKS {
        return bad("tasks", u64::from(req.tasks), "use 1..=100000");
    }
    let max = match req.chain {
        RingChain::Seccomp => crate::seccomp::max_filters(crate::seccomp::FilterBody::ArgLoad),
        RingChain::CgroupBpf => hookbench_bpf::BPF_CGROUP_MAX_PROGS as u32,
    };
    if req.programs > max {
        return bad(
            "programs",
            u64::from(req.programs),
            "at most the seccomp instruction budget's 1927 filters, or BPF_CGROUP_MAX_PROGS = 64 programs",
        );
    }
    if req.chain == RingChain::CgroupBpf && req.slots.is_none() {
        return Err("ring worker: a cgroup-bpf ring needs `slots`, the parent of its tasks' cgroups".to_string());
    }
    if req.count_fires.is_some_and(|f| f == 0 || f > 1_000_000) {
        return bad("count_fires", req.count_fires.unwrap_or(0), "use 1..=1000000");
    }
    Ok(())
}

/// Moves this process into `home`, a cgroup of a hookbench run.
fn join(home: &std::path::Path) -> Result<(), String> {
    let cg = crate::cgroup_bpf::check_in_run(home).map_err(|e| format!("ring worker: {e}"))?;
    let procs = cg.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .map_err(|e| format!("ring worker: joining {}: {e}", cg.display()))
}

/// A task's cgroup, readied before its fork: the directory, its `cgroup.procs`, the links.
struct SlotCgroup {
    dir: OwnedFd,
    procs: OwnedFd,
    /// Held until the task has its own copies (dropped after the fork).
    _links: Vec<OwnedFd>,
    ids: Vec<u32>,
}

/// Opens `cg` (a cgroup of the run) and links `programs` null getsockname4 programs there.
fn slot_cgroup(cg: &std::path::Path, programs: u32) -> Result<SlotCgroup, String> {
    let open = |p: PathBuf, write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open(&p)
            .map(OwnedFd::from)
            .map_err(|e| format!("ring worker: open {}: {e}", p.display()))
    };
    let dir = open(cg.to_path_buf(), false)?;
    let procs = open(cg.join("cgroup.procs"), true)?;
    let mut links = Vec::with_capacity(programs as usize);
    let mut ids = Vec::with_capacity(programs as usize);
    for _ in 0..programs {
        let prog = raw::load_null(MeasuredHook::Getsockname4).map_err(|e| format!("ring worker: {e}"))?;
        ids.push(raw::program_id(prog.as_fd()).unwrap_or(0));
        let link = link_create_cgroup(prog.as_fd(), dir.as_fd(), AttachType::Getsockname4, "hb_null")
            .map_err(|e| format!("ring worker: {}: {e}", cg.display()))?;
        links.push(link);
    }
    Ok(SlotCgroup {
        dir,
        procs,
        _links: links,
        ids,
    })
}

/// Timed turns: the samples asked, a rotation, and enough for `min_duration_ns` of calls.
///
/// The duration is estimated from the warm-up turns' mean interval; the count is capped at
/// [`MAX_TIMED_TURNS`].
fn timed_turns(timing: &TimingRequest, tasks: u32, warm: &[(u64, u32)], clock: &Clock) -> u64 {
    let mean_ns = if warm.is_empty() {
        0.0
    } else {
        warm.iter().map(|(t, _)| clock.ticks_to_ns(*t as f64)).sum::<f64>() / warm.len() as f64
    };
    let for_duration = if mean_ns > 0.0 {
        (timing.min_duration_ns as f64 / mean_ns).ceil() as u64
    } else {
        0
    };
    (timing.samples as u64)
        .max(ROTATIONS * u64::from(tasks))
        .max(for_duration)
        .min(MAX_TIMED_TURNS)
}

/// The smallest and largest `Seccomp_filters:` of the tasks' status (`None` when unreadable).
fn filters_seen(pids: &[libc::pid_t]) -> Option<[u32; 2]> {
    let counts: Vec<u32> = pids
        .iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Seccomp_filters:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect();
    if counts.len() != pids.len() {
        return None;
    }
    Some([*counts.iter().min()?, *counts.iter().max()?])
}

/// The running ring, as the worker drives it.
struct Ring<'a> {
    shared: &'a Shared,
    order: &'a [u32],
    tasks: &'a Tasks,
}

impl Ring<'_> {
    /// Waits until every task is set up; the first failed task's reason when one failed.
    fn wait_ready(&self, w: u32) -> Result<(), String> {
        let header = self.shared.header();
        let deadline = Instant::now() + PHASE_TIMEOUT;
        loop {
            let ready = header.ready.load(Ordering::Acquire);
            if ready >= w {
                break;
            }
            self.check_alive(deadline, "setting the tasks up")?;
            futex_wait(&header.ready, ready, Some(POLL_NS));
        }
        if header.failed.load(Ordering::Acquire) == 0 {
            return Ok(());
        }
        let (i, slot) = (0..w as usize)
            .map(|i| (i, self.shared.slot(i)))
            .find(|(_, s)| s.stage.load(Ordering::Relaxed) != 0)
            .ok_or("ring worker: a task failed its setup without saying how")?;
        let errno = Errno::from_raw(slot.errno.load(Ordering::Relaxed));
        let stage = Stage::from_code(slot.stage.load(Ordering::Relaxed));
        let budget = if stage == Some(Stage::Seccomp) && errno == Errno::ENOMEM {
            " (the seccomp instruction budget, MAX_INSNS_PER_PATH: ask for fewer filters)"
        } else {
            ""
        };
        Err(format!(
            "ring task {i}: {} failed: {errno}{budget}",
            stage.map_or("its setup", Stage::what)
        ))
    }

    /// Runs `turns` more turns of `calls` calls each, from where the last phase stopped.
    fn phase(&self, turns: u64, calls: u64) -> Result<(), String> {
        let header = self.shared.header();
        let start = header.turn.load(Ordering::Acquire);
        header.end.store(start + turns, Ordering::Relaxed);
        header.calls.store(calls, Ordering::Relaxed);
        let done = header.done.load(Ordering::Acquire);
        let first = self.order[(start % self.order.len() as u64) as usize] as usize;
        let token = &self.shared.slot(first).go;
        token.store(1, Ordering::Release);
        shared::futex_wake(token);
        let deadline = Instant::now() + PHASE_TIMEOUT;
        while header.done.load(Ordering::Acquire) == done {
            self.check_alive(deadline, "running the ring")?;
            futex_wait(&header.done, done, Some(POLL_NS));
        }
        Ok(())
    }

    /// Fails when a task ended or `deadline` passed.
    fn check_alive(&self, deadline: Instant, what: &str) -> Result<(), String> {
        if let Some(pid) = self.tasks.one_ended() {
            return Err(format!("ring worker: task {pid} ended while {what}"));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "ring worker: {what} took longer than {} s",
                PHASE_TIMEOUT.as_secs()
            ));
        }
        Ok(())
    }

    /// The probe pass: one untimed turn per task, in which it asks its `filters` for answers.
    fn probe(&self, filters: u32) -> Result<RingProbe, String> {
        let header = self.shared.header();
        header.probe.store(filters, Ordering::Relaxed);
        let done = self.phase(self.order.len() as u64, 0);
        header.probe.store(0, Ordering::Relaxed);
        done?;
        let tasks = self.order.len() as u32;
        let mut probe = RingProbe {
            tasks,
            filters,
            complete_tasks: 0,
            first_miss: None,
            cache_skips_trigger: self.tasks.pids.first().and_then(|pid| {
                crate::seccomp::cache_allows(&pid.to_string(), crate::trigger::Trigger::Getsockname.syscall_nr())
            }),
        };
        for i in 0..tasks {
            let slot = self.shared.slot(i as usize);
            if slot.probe_answered.load(Ordering::Relaxed) == filters {
                probe.complete_tasks += 1;
            } else if probe.first_miss.is_none() {
                let miss = slot.probe_miss.load(Ordering::Relaxed);
                let index = miss.saturating_sub(1);
                probe.first_miss = Some((
                    i,
                    crate::seccomp::ProbeMiss {
                        index,
                        expected: crate::seccomp::probe_errno(index),
                        got: slot.probe_got.load(Ordering::Relaxed),
                    },
                ));
            }
        }
        Ok(probe)
    }

    /// The run-count pass: statistics on, `fires` calls per task, every program's `run_cnt`.
    fn count_runs(&self, fires: u64, ids: &[u32], programs: u32) -> RingRunCount {
        let sum = || -> Result<u64, String> {
            ids.iter()
                .map(|&id| raw::run_count_by_id(id).map_err(|e| format!("run_cnt of program {id}: {e}")))
                .sum()
        };
        let before = match sum() {
            Ok(b) => b,
            Err(e) => return RingRunCount::Unavailable(e),
        };
        let stats = match RunStats::enable() {
            Ok(s) => s,
            Err(e) => return RingRunCount::Unavailable(e.to_string()),
        };
        let fired = self.phase(self.order.len() as u64, fires);
        drop(stats);
        if let Err(e) = fired {
            return RingRunCount::Unavailable(e);
        }
        let calls = fires * self.order.len() as u64;
        match sum() {
            Ok(after) => RingRunCount::Counted {
                calls,
                expected: calls * u64::from(programs),
                observed: after - before,
            },
            Err(e) => RingRunCount::Unavailable(e),
        }
    }
}
