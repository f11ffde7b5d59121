//! The many-CPU worker (`hookbench worker cpus`): P tasks pinned to P CPUs fire the hook at once.
//!
//! The `scaling` suite's `cpus` axis on the running kernel. The worker, an exec'd process of
//! the harness's binary, forks P tasks (never the harness); task `i` pins itself to
//! `cpus[i]` (`sched_setaffinity`), makes one AF_INET UDP socket bound to 127.0.0.1:0 and times
//! its own batches of `getsockname()` with the harness's clock through the measurement crate
//! ([`crate::trigger::time_trigger`]). All P are released together by one write to a pipe they
//! all wait on; a task that finished timing keeps firing, untimed, until every task has, so
//! every timed sample ran beside P - 1 firing CPUs. What each task carries ([`CpusChain`],
//! [`Sharing`]):
//!
//! - seccomp, `own`: the task installs N argument-loading filters itself (P chains of N);
//! - seccomp, `shared`: the worker installs them before the fork and every task inherits the
//!   same chain (`copy_seccomp` takes a reference on the same `struct seccomp_filter`);
//! - cgroup-bpf, `own`: task `i` lives in `<slots>/<i>` with N null `cgroup/getsockname4`
//!   programs of its own (P effective arrays, P x N programs);
//! - cgroup-bpf, `shared`: every task lives in `<slots>/0` with its N programs (one effective
//!   array, one set of programs run on P CPUs).
//!
//! With N = 0 the same P tasks are the baseline. With `count_fires`, before timing, the kernel's
//! run statistics are turned on and every task fires that many untimed calls: each set of
//! programs' `run_cnt` must grow by calls x N exactly. Every task is killed and reaped on every
//! path ([`Tasks`]); each set `PR_SET_PDEATHSIG(SIGKILL)` and lives in the run's subtree.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hookbench_bpf::{link_create_cgroup, raw, AttachType, MeasuredHook, RunStats};
use hookbench_measure::{SampleSet, TimingRequest};
use serde::{Deserialize, Serialize};

use crate::seccomp::FilterBody;
use crate::trigger::Trigger;

/// Most tasks (CPUs) one worker runs.
pub const MAX_CPUS: u32 = 1024;

/// Untimed calls fired per batch by a task waiting for the others to finish timing.
const KEEP_FIRING_BATCH: u64 = 256;

/// Bytes each task writes on the ready pipe: one when set up, one after the count pass.
const READY_BYTES: u32 = 2;

/// Longest the worker waits for every task to be ready, in one phase.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Name the tasks give themselves (`PR_SET_NAME`), so a leftover one is recognisable.
pub const CPUS_COMM: &str = "hookbench-cpus";

/// The dispatch state the P tasks carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CpusChain {
    /// Argument-loading seccomp filters: the task chain.
    Seccomp,
    /// Null `cgroup/getsockname4` programs: the cgroup's effective array.
    CgroupBpf,
}

/// Whether each task has its own chain or cgroup, or all share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sharing {
    /// Each task its own chain of N filters, or its own cgroup with N programs.
    Own,
    /// One chain inherited by all (one installer), or one cgroup (one effective array) for all.
    Shared,
}

/// What a cpus worker is asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpusRequest {
    /// What the tasks carry.
    pub chain: CpusChain,
    /// Own or shared.
    pub sharing: Sharing,
    /// The CPUs, one task pinned to each (P = its length, 1..=[`MAX_CPUS`], no repeats).
    pub cpus: Vec<u32>,
    /// N: filters or programs per chain or cgroup (0: the baseline).
    pub programs: u32,
    /// A cgroup of the run the worker joins before it forks (`None`: stays where it is).
    #[serde(default)]
    pub home: Option<PathBuf>,
    /// The parent of the tasks' cgroups `0..P` (required for cgroup-bpf).
    #[serde(default)]
    pub slots: Option<PathBuf>,
    /// How each task times (its `cpu` is replaced by the task's own).
    pub timing: TimingRequest,
    /// Untimed calls per task with run statistics on, before timing (cgroup-bpf, N > 0).
    #[serde(default)]
    pub count_fires: Option<u64>,
}

/// One task's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpuTaskReport {
    /// The CPU the task was pinned to.
    pub cpu: u32,
    /// Its timed batches of `getsockname()`.
    pub samples: SampleSet,
    /// Calls it made while timing (warm-up and calibration included).
    pub timed_calls: u64,
    /// Untimed calls it made after timing, while others still timed.
    pub extra_calls: u64,
    /// Its `Seccomp_filters:` (/proc/self/status) while it timed.
    pub seccomp_filters: Option<u32>,
    /// Its cgroup (the path of /proc/self/cgroup's v2 line).
    pub cgroup: String,
}

/// The run count of one set of programs: `[expected, observed]` `run_cnt` growth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetRunCount {
    /// Which tasks fire through this set (the task indices).
    pub tasks: Vec<u32>,
    /// Runs expected: their calls x N.
    pub expected: u64,
    /// Runs the kernel counted (`run_cnt` deltas of the set's programs).
    pub observed: u64,
}

/// What a cpus worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CpusReport {
    /// One report per task, in `cpus` order.
    pub tasks: Vec<CpuTaskReport>,
    /// N.
    pub programs: u32,
    /// The installer's (this worker's) `Seccomp_filters:` in the shared seccomp case.
    pub installer_filters: Option<u32>,
    /// cgroup-bpf: the effective getsockname4 program ids of each task's cgroup, in task order.
    pub effective_ids: Vec<Vec<u32>>,
    /// cgroup-bpf with `count_fires`: the run counts per set of programs, or why not counted.
    pub run_counts: Option<Result<Vec<SetRunCount>, String>>,
    /// Seconds to set the tasks and their filters or programs up.
    pub setup_s: f64,
}

crate::worker::worker_kind! {
    /// The cpus worker (`hookbench worker cpus`): P pinned tasks fire the hook at once.
    pub struct CpusWorker("cpus", CpusRequest => CpusReport, Duration::from_secs(300)) = run_cpus;
}

/// The tasks: killed and reaped when dropped, on every path.
struct Tasks {
    pids: Vec<libc::pid_t>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: kill(2) of a child this process made and has not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        for &pid in &self.pids {
            let mut status = 0;
            // SAFETY: waitpid(2) of one child with a valid status pointer.
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                && nix::errno::Errno::last() == nix::errno::Errno::EINTR
            {}
        }
    }
}

/// A pipe: (read end, write end), both close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("cpus worker: pipe2: {e}"))
}

/// One counter shared by the worker and its tasks (an anonymous shared mapping).
struct SharedCounter {
    ptr: *mut AtomicU32,
}

impl SharedCounter {
    fn new() -> Result<SharedCounter, String> {
        // SAFETY: a fresh anonymous shared mapping of one page, unmapped on drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!("cpus worker: mmap: {}", std::io::Error::last_os_error()));
        }
        Ok(SharedCounter { ptr: p.cast() })
    }

    fn get(&self) -> &AtomicU32 {
        // SAFETY: the mapping is page-aligned, zero-filled and lives as long as `self`.
        unsafe { &*self.ptr }
    }
}

impl Drop for SharedCounter {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

/// Refuses a request out of range, or asking more CPUs than this process may use.
fn check(req: &CpusRequest) -> Result<(), String> {
    let p = req.cpus.len();
    if p == 0 || p > MAX_CPUS as usize {
        return Err(format!("cpus worker: {p} CPUs asked: use 1..={MAX_CPUS}"));
    }
    let mut sorted = req.cpus.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != p {
        return Err(format!(
            "cpus worker: cpus {:?} repeats a CPU: one task per CPU",
            req.cpus
        ));
    }
    let allowed = hookbench_measure::pin::allowed_cpus().map_err(|e| format!("cpus worker: {e}"))?;
    if let Some(c) = req.cpus.iter().find(|c| !allowed.contains(&(**c as usize))) {
        return Err(format!(
            "cpus = {p}: CPU {c} is not one this process may run on (sched_getaffinity allows {} CPU(s): {allowed:?})",
            allowed.len()
        ));
    }
    let max = match req.chain {
        CpusChain::Seccomp => crate::seccomp::max_filters(FilterBody::ArgLoad),
        CpusChain::CgroupBpf => hookbench_bpf::BPF_CGROUP_MAX_PROGS as u32,
    };
    if req.programs > max {
        return Err(format!(
            "cpus worker: programs = {} is beyond the limit of {max} (the seccomp instruction budget or \
             BPF_CGROUP_MAX_PROGS)",
            req.programs
        ));
    }
    if req.chain == CpusChain::CgroupBpf && req.slots.is_none() {
        return Err("cpus worker: a cgroup-bpf request needs `slots`, the parent of its tasks' cgroups".to_string());
    }
    if req.count_fires.is_some_and(|f| f == 0 || f > 1_000_000) {
        return Err(format!(
            "cpus worker: count_fires = {:?} is invalid: use 1..=1000000",
            req.count_fires
        ));
    }
    Ok(())
}

/// The cgroup of task `i`: `<slots>/<i>` when each has its own, `<slots>/0` when shared.
fn task_cgroup(slots: &Path, sharing: Sharing, i: usize) -> PathBuf {
    slots.join(if sharing == Sharing::Own { i } else { 0 }.to_string())
}

/// The number of distinct cgroups (program sets) a request uses.
fn sets(req: &CpusRequest) -> usize {
    if req.sharing == Sharing::Own {
        req.cpus.len()
    } else {
        1
    }
}

/// Links `n` null getsockname4 programs at `cg`; the link fds (held) and the program ids.
fn link_programs(cg: &Path, n: u32) -> Result<(Vec<OwnedFd>, Vec<u32>), String> {
    let dir = std::fs::File::open(cg).map_err(|e| format!("cpus worker: open {}: {e}", cg.display()))?;
    let mut links = Vec::with_capacity(n as usize);
    let mut ids = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let prog = raw::load_null(MeasuredHook::Getsockname4).map_err(|e| format!("cpus worker: {e}"))?;
        ids.push(raw::program_id(prog.as_fd()).unwrap_or(0));
        links.push(
            link_create_cgroup(prog.as_fd(), dir.as_fd(), AttachType::Getsockname4, "hb_null")
                .map_err(|e| format!("cpus worker: {}: {e}", cg.display()))?,
        );
    }
    Ok((links, ids))
}

/// The effective getsockname4 program ids of cgroup `cg`.
fn effective(cg: &Path) -> Result<Vec<u32>, String> {
    let dir = std::fs::File::open(cg).map_err(|e| format!("cpus worker: open {}: {e}", cg.display()))?;
    hookbench_bpf::query_cgroup(dir.as_fd(), AttachType::Getsockname4, true).map_err(|e| format!("cpus worker: {e}"))
}

/// The pipes one task uses: released by `go_count`/`go_time`, answers on `ready` and `result`.
struct TaskPipes {
    ready: OwnedFd,
    go_count: OwnedFd,
    go_time: OwnedFd,
    result: OwnedFd,
}

/// The worker's body: checks, sets up, forks, releases the tasks, collects their reports.
fn run_cpus(req: &CpusRequest) -> Result<CpusReport, String> {
    check(req)?;
    if let Some(home) = &req.home {
        let cg = crate::cgroup_bpf::check_in_run(home).map_err(|e| format!("cpus worker: {e}"))?;
        std::fs::write(cg.join("cgroup.procs"), std::process::id().to_string())
            .map_err(|e| format!("cpus worker: joining {}: {e}", cg.display()))?;
    }
    let slots = match (req.chain, &req.slots) {
        (CpusChain::CgroupBpf, Some(s)) => {
            Some(crate::cgroup_bpf::check_in_run(s).map_err(|e| format!("cpus worker: {e}"))?)
        }
        _ => None,
    };
    let started = std::time::Instant::now();
    let p = req.cpus.len();
    // Programs: one set per cgroup used, held by this worker until it exits.
    let mut links = Vec::new();
    let mut set_ids: Vec<Vec<u32>> = Vec::new();
    if let Some(slots) = &slots {
        for s in 0..sets(req) {
            let (l, ids) = link_programs(&task_cgroup(slots, Sharing::Own, s), req.programs)?;
            links.extend(l);
            set_ids.push(ids);
        }
    }
    let clock = req.timing.clock();
    let mut installer_filters = None;
    if req.chain == CpusChain::Seccomp && req.sharing == Sharing::Shared {
        crate::seccomp::install_filters_ns(&clock, FilterBody::ArgLoad, req.programs, true)
            .map_err(|e| format!("cpus worker: installing the shared chain: {e}"))?;
        installer_filters = crate::seccomp::thread_seccomp_filters();
    }
    let done = SharedCounter::new()?;
    let (ready_r, ready_w) = pipe()?;
    let (count_r, count_w) = pipe()?;
    let (time_r, time_w) = pipe()?;
    let mut tasks = Tasks {
        pids: Vec::with_capacity(p),
    };
    let mut results = Vec::with_capacity(p);
    for (i, &cpu) in req.cpus.iter().enumerate() {
        let (res_r, res_w) = pipe()?;
        let cgroup = slots.as_ref().map(|s| task_cgroup(s, req.sharing, i));
        // SAFETY: this worker is single-threaded (a fresh exec'd process), so the child may
        // allocate; it never returns from `task_main`.
        match unsafe { libc::fork() } {
            0 => {
                drop(res_r);
                let pipes = (|| -> std::io::Result<TaskPipes> {
                    Ok(TaskPipes {
                        ready: ready_w.try_clone()?,
                        go_count: count_r.try_clone()?,
                        go_time: time_r.try_clone()?,
                        result: res_w,
                    })
                })();
                match pipes {
                    Ok(pipes) => task_main(req, cpu, cgroup.as_deref(), pipes, &done),
                    // SAFETY: _exit(2) ends this forked task; the worker reads no report.
                    Err(_) => unsafe { libc::_exit(1) },
                }
            }
            pid if pid < 0 => {
                return Err(format!(
                    "cpus worker: fork of task {i}: {} (a process limit: pids.max or kernel.threads-max)",
                    std::io::Error::last_os_error()
                ))
            }
            pid => {
                tasks.pids.push(pid);
                drop(res_w);
                results.push(res_r);
            }
        }
    }
    drop(ready_w);
    drop(count_r);
    drop(time_r);
    let mut ready = std::fs::File::from(ready_r);
    let wait_all = |ready: &mut std::fs::File, what: &str| wait_ready(ready, p, what);
    let release = |fd: OwnedFd| -> Result<(), String> {
        std::fs::File::from(fd)
            .write_all(&vec![1u8; p])
            .map_err(|e| format!("cpus worker: releasing the tasks: {e}"))
    };
    // A task's own error first (the others were killed without a report).
    let collect = |results: Vec<OwnedFd>| -> Result<Vec<CpuTaskReport>, String> {
        let mut out = Vec::with_capacity(p);
        let mut silent = None;
        for (i, fd) in results.into_iter().enumerate() {
            let mut s = String::new();
            let _ = std::fs::File::from(fd).read_to_string(&mut s);
            match serde_json::from_str::<Result<CpuTaskReport, String>>(&s) {
                Ok(Ok(r)) => out.push(r),
                Ok(Err(e)) => return Err(format!("cpus task {i} (CPU {}): {e}", req.cpus[i])),
                Err(e) => {
                    silent.get_or_insert_with(|| format!("cpus worker: task {i} ended without a report ({e})"));
                }
            }
        }
        silent.map_or(Ok(out), Err)
    };
    if let Err(e) = wait_all(&mut ready, "setting up") {
        drop(tasks);
        return Err(collect(results).err().unwrap_or(e));
    }
    let setup_s = started.elapsed().as_secs_f64();
    let effective_ids = match &slots {
        Some(s) => (0..p)
            .map(|i| effective(&task_cgroup(s, req.sharing, i)))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    // The run-count pass, before timing: statistics on only while the untimed calls run.
    let counting = req.count_fires.filter(|_| slots.is_some() && req.programs > 0);
    let sum = |ids: &[u32]| -> Result<u64, String> {
        ids.iter()
            .map(|&id| raw::run_count_by_id(id).map_err(|e| format!("run_cnt of program {id}: {e}")))
            .sum()
    };
    let mut run_counts = None;
    if let Some(fires) = counting {
        let before: Result<Vec<u64>, String> = set_ids.iter().map(|ids| sum(ids)).collect();
        let stats = RunStats::enable().map_err(|e| e.to_string());
        release(count_w)?;
        let counted = wait_all(&mut ready, "firing the untimed calls");
        drop(stats);
        if let Err(e) = counted {
            drop(tasks);
            return Err(collect(results).err().unwrap_or(e));
        }
        run_counts = Some(before.and_then(|before| {
            set_ids
                .iter()
                .zip(before)
                .enumerate()
                .map(|(s, (ids, b))| {
                    let members: Vec<u32> = (0..p as u32)
                        .filter(|&i| req.sharing == Sharing::Shared || i as usize == s)
                        .collect();
                    Ok(SetRunCount {
                        expected: fires * members.len() as u64 * u64::from(req.programs),
                        tasks: members,
                        observed: sum(ids)? - b,
                    })
                })
                .collect()
        }));
    } else {
        release(count_w)?;
        if let Err(e) = wait_all(&mut ready, "waiting for the release") {
            drop(tasks);
            return Err(collect(results).err().unwrap_or(e));
        }
    }
    release(time_w)?;
    let reports = collect(results);
    drop(tasks);
    drop(links);
    Ok(CpusReport {
        tasks: reports?,
        programs: req.programs,
        installer_filters,
        effective_ids,
        run_counts,
        setup_s,
    })
}

/// A task: set up, report ready, fire the count pass, time, keep firing, report; never returns.
fn task_main(req: &CpusRequest, cpu: u32, cgroup: Option<&Path>, pipes: TaskPipes, done: &SharedCounter) -> ! {
    // SAFETY: prctl(2) with constant arguments; the name is NUL-terminated.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"hookbench-cpus".as_ptr(), 0, 0, 0);
    }
    let p = req.cpus.len() as u32;
    let mut result = std::fs::File::from(pipes.result);
    let mut ready = std::fs::File::from(pipes.ready);
    let mut said = 0u32;
    let outcome = task_body(
        req,
        cpu,
        cgroup,
        (&mut ready, &mut said),
        pipes.go_count,
        pipes.go_time,
        done,
        p,
    );
    if outcome.is_err() {
        // The worker waits for two ready bytes per task and the others for every task's
        // timing: give both, so the worker reaches the reports and reads this one's error.
        let _ = ready.write_all(&vec![1u8; READY_BYTES.saturating_sub(said) as usize]);
        done.get().fetch_add(p, Ordering::AcqRel);
    }
    let line = serde_json::to_string(&outcome).unwrap_or_else(|e| format!("{{\"Err\":\"serialising: {e}\"}}"));
    let _ = result.write_all(line.as_bytes());
    drop(result);
    drop(ready);
    // SAFETY: _exit(2) ends this forked task without running the worker's exit handlers.
    unsafe { libc::_exit(0) }
}

/// Reads one ready byte per task (`p`) from `ready`, failing when a task died or time ran out.
///
/// A task that fails writes its missing bytes before it exits, so only a task killed outright
/// (or hung) ends here with an error.
fn wait_ready(ready: &mut std::fs::File, p: usize, what: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd as _;
    let deadline = std::time::Instant::now() + READY_TIMEOUT;
    let mut got = 0;
    let mut buf = vec![0u8; p];
    while got < p {
        let mut fd = libc::pollfd {
            fd: ready.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) of one valid pollfd for at most one second.
        let n = unsafe { libc::poll(&mut fd, 1, 1000) };
        if n > 0 {
            match ready.read(&mut buf[got..]) {
                Ok(0) => return Err(format!("cpus worker: every task ended while {what}")),
                Ok(k) => got += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cpus worker: reading the ready pipe while {what}: {e}")),
            }
        } else if std::time::Instant::now() > deadline {
            return Err(format!(
                "cpus worker: {} of {p} tasks were ready after {} s while {what}",
                got,
                READY_TIMEOUT.as_secs()
            ));
        }
    }
    Ok(())
}

/// Waits for one byte on `go` (the worker's release).
fn wait_go(go: OwnedFd) -> Result<(), String> {
    let mut b = [0u8; 1];
    std::fs::File::from(go)
        .read_exact(&mut b)
        .map_err(|e| format!("waiting for the release: {e}"))
}

/// The task's work (see [`task_main`]); errors say which step failed.
#[allow(clippy::too_many_arguments)]
fn task_body(
    req: &CpusRequest,
    cpu: u32,
    cgroup: Option<&Path>,
    (ready, said): (&mut std::fs::File, &mut u32),
    go_count: OwnedFd,
    go_time: OwnedFd,
    done: &SharedCounter,
    p: u32,
) -> Result<CpuTaskReport, String> {
    hookbench_measure::pin::pin_current_thread(cpu as usize).map_err(|e| format!("pinning to CPU {cpu}: {e}"))?;
    if let Some(cg) = cgroup {
        std::fs::write(cg.join("cgroup.procs"), "0").map_err(|e| format!("joining {}: {e}", cg.display()))?;
    }
    if req.chain == CpusChain::Seccomp && req.sharing == Sharing::Own {
        crate::seccomp::install_filters_ns(&req.timing.clock(), FilterBody::ArgLoad, req.programs, true)
            .map_err(|e| format!("installing its own chain: {e}"))?;
    }
    let seccomp_filters = crate::seccomp::thread_seccomp_filters();
    let cgroup_now = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("0::").map(str::to_string)))
        .unwrap_or_default();
    let mut say_ready = |ready: &mut std::fs::File| {
        *said += 1;
        ready.write_all(&[1]).map_err(|e| format!("saying ready: {e}"))
    };
    say_ready(ready)?;
    wait_go(go_count)?;
    if let Some(fires) = req
        .count_fires
        .filter(|_| req.chain == CpusChain::CgroupBpf && req.programs > 0)
    {
        crate::trigger::fire(Trigger::Getsockname, fires).map_err(|e| e.to_string())?;
    }
    say_ready(ready)?;
    wait_go(go_time)?;
    let timing = TimingRequest {
        cpu: Some(cpu),
        ..req.timing
    };
    let timed = crate::trigger::time_trigger(Trigger::Getsockname, &timing);
    done.get().fetch_add(1, Ordering::AcqRel);
    let (samples, timed_calls) = timed.map_err(|e| e.to_string())?;
    let mut extra_calls = 0;
    while done.get().load(Ordering::Acquire) < p {
        extra_calls += crate::trigger::fire(Trigger::Getsockname, KEEP_FIRING_BATCH).map_err(|e| e.to_string())?;
    }
    Ok(CpuTaskReport {
        cpu,
        samples,
        timed_calls,
        extra_calls,
        seccomp_filters,
        cgroup: cgroup_now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(chain: CpusChain, cpus: Vec<u32>, programs: u32) -> CpusRequest {
        CpusRequest {
            chain,
            sharing: Sharing::Own,
            cpus,
            programs,
            home: None,
            slots: None,
            timing: TimingRequest::new(hookbench_measure::Clock::monotonic_raw().info(), None, 10, 0),
            count_fires: None,
        }
    }

    #[test]
    fn bad_requests_are_refused_naming_the_value() {
        let e = check(&req(CpusChain::Seccomp, vec![], 1)).expect_err("no CPU");
        assert!(e.contains("0 CPUs"), "{e}");
        let e = check(&req(CpusChain::Seccomp, vec![7, 7], 1)).expect_err("repeated CPU");
        assert!(e.contains("repeats"), "{e}");
        let e = check(&req(CpusChain::Seccomp, vec![100_000], 1)).expect_err("CPU not allowed");
        assert!(e.contains("CPU 100000") && e.contains("sched_getaffinity"), "{e}");
        // A CPU this test may run on, so that only the value under test is wrong.
        let cpu = hookbench_measure::pin::allowed_cpus().expect("affinity")[0] as u32;
        let e = check(&req(CpusChain::CgroupBpf, vec![cpu], 65)).expect_err("over BPF_CGROUP_MAX_PROGS");
        assert!(e.contains("programs = 65"), "{e}");
        let e = check(&req(CpusChain::CgroupBpf, vec![cpu], 1)).expect_err("no slots");
        assert!(e.contains("slots"), "{e}");
        assert_eq!(task_cgroup(Path::new("/s"), Sharing::Own, 3), PathBuf::from("/s/3"));
        assert_eq!(task_cgroup(Path::new("/s"), Sharing::Shared, 3), PathBuf::from("/s/0"));
    }
}
