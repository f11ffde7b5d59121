//! The socket worker (`hookbench worker sock`): times a trigger from inside a cgroup of a run.
//!
//! It joins the cgroup and times `getsockname()` or `socket()` there, for cgroup-bpf and BPF LSM
//! programs attached along its cgroup path or globally; or fires the trigger a fixed number of
//! times untimed, for a pass that counts program runs.
//!
//! cgroup-bpf and `lsm_cgroup` programs run for the tasks of the cgroups they are attached
//! above, so the worker first writes its own pid to `<cgroup>/cgroup.procs` (refusing any cgroup
//! outside a `hookbench-*` run directory: `crate::cgroup_bpf::join_run_cgroup`). Global BPF LSM
//! programs run for every task of the machine, so the worker attaches them itself, after joining
//! its cgroup, and they are detached when it exits however it exits (the links die with it).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cgroup_bpf::{join_run_cgroup, CgroupBpfError};
use crate::trigger::{fire, time_trigger, Trigger};

/// What a socket worker is asked: join `cgroup`, attach any `global_lsm` programs, time `trigger`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SockRequest {
    /// The cgroup to join (inside a `hookbench-*` run directory of the cgroup2 mount).
    pub cgroup: PathBuf,
    /// The syscall that fires the programs.
    pub trigger: Trigger,
    /// How to time it.
    pub timing: hookbench_measure::TimingRequest,
    /// Global BPF LSM programs the worker attaches itself (lsm-global cells); none when absent.
    ///
    /// It attaches them after joining `cgroup` and before measuring, and detaches them when done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global_lsm: Option<crate::lsm::GlobalLsmRequest>,
    /// Fire the trigger exactly this many times, untimed, instead of timing it.
    ///
    /// `timing` then only pins: the report's `samples` are empty and `calls` is this number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fire: Option<u64>,
}

/// What a socket worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SockReport {
    /// The worker's pid (it was in the cgroup while measuring).
    pub pid: u32,
    /// The trigger's samples (empty for a `fire` request).
    pub samples: hookbench_measure::SampleSet,
    /// Trigger calls made in the cgroup, warm-up included (what counter programs must count).
    pub calls: u64,
    /// The counters of the request's global BPF LSM programs, read after measuring.
    ///
    /// Runs of the counter body: `calls` each when the worker marked itself, else 0; empty without
    /// global programs.
    #[serde(default)]
    pub counters: Vec<u64>,
}

crate::worker::worker_kind! {
    /// The socket worker kind (`hookbench worker sock`).
    pub struct SockWorker("sock", SockRequest => SockReport, Duration::from_secs(120)) = run_sock;
}

/// The socket worker's body: joins the cgroup, attaches the global programs, measures.
///
/// The whole process moves into the cgroup; the global programs' counters are read at the end.
fn run_sock(req: &SockRequest) -> Result<SockReport, CgroupBpfError> {
    let pid = std::process::id();
    join_run_cgroup(&req.cgroup)?;
    // Global programs run for every task of the machine: attached only now, detached when
    // `global` is dropped at the end of this function (or by the kernel if the worker dies).
    let global = req.global_lsm.as_ref().map(crate::lsm::worker_setup).transpose()?;
    let (samples, calls) = match req.fire {
        None => time_trigger(req.trigger, &req.timing).map_err(CgroupBpfError::Trigger)?,
        Some(n) => {
            let calls = fire(req.trigger, n).map_err(CgroupBpfError::Trigger)?;
            (hookbench_measure::SampleSet::empty(), calls)
        }
    };
    let counters = match &global {
        Some(g) => g.counters()?,
        None => Vec::new(),
    };
    Ok(SockReport {
        pid,
        samples,
        calls,
        counters,
    })
}
