//! What the end-to-end tests share, so each test says only what it checks.
//!
//! Starting `hookbench`, reading a run, waiting, and finding what a run may leave behind (cgroups,
//! workers, idle tasks, BPF programs).
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hookbench_reports::Results;

/// The `hookbench` binary of this build, as an `assert_cmd` command.
pub fn hookbench() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("hookbench").expect("hookbench binary is built")
}

/// The `hookbench` binary of this build, as a process to start and signal.
pub fn hookbench_process() -> std::process::Command {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("hookbench"))
}

/// Runs `hookbench run ARGS --profile smoke --no-progress --out OUT`, asserting it succeeds.
pub fn run_smoke_with(args: &[&str], out: impl AsRef<Path>) {
    hookbench()
        .arg("run")
        .args(args)
        .args(["--profile", "smoke", "--no-progress", "--out"])
        .arg(out.as_ref())
        .assert()
        .success();
}

/// Runs a smoke run of `suite` on `backend` into `out` ([`run_smoke_with`]).
pub fn run_smoke(backend: &str, suite: &str, out: impl AsRef<Path>) {
    run_smoke_with(&["--backend", backend, "--suite", suite], out);
}

/// The `results.json` of the run directory `dir`.
pub fn results_of(dir: &Path) -> Results {
    Results::read(&dir.join("results.json")).expect("results.json reads")
}

/// Calls `probe` every `step` until `done` accepts its value or `timeout` passes: the last value.
pub fn poll<T>(timeout: Duration, step: Duration, mut probe: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + timeout;
    let mut value = probe();
    while !done(&value) && Instant::now() < deadline {
        std::thread::sleep(step);
        value = probe();
    }
    value
}

/// The lines of the journal `cells.jsonl` of run directory `out` (0 before it exists).
pub fn journaled_cells(out: &Path) -> usize {
    std::fs::read_to_string(out.join("cells.jsonl"))
        .map(|j| j.lines().count())
        .unwrap_or(0)
}

/// The cgroup v2 mount when this test runs as root with one; else `None`, saying why it skips.
pub fn root_with_cgroup2() -> Option<hookbench_workloads::cgroupfs::Cgroup2> {
    let Ok(cg) = hookbench_workloads::cgroupfs::Cgroup2::detect() else {
        eprintln!("SKIPPED: no cgroup v2 mount");
        return None;
    };
    if !hookbench_sys::testing::root_or_skip("root_with_cgroup2", "cgroup-bpf needs root") {
        return None;
    }
    Some(cg)
}

/// The run directories (`hookbench-<pid>-*`) of process `pid` in `dir`.
///
/// `dir` is the cgroup v2 mount, or the temporary directory for scratch directories.
pub fn run_dirs_of(dir: &Path, pid: u32) -> Vec<PathBuf> {
    let prefix = format!("hookbench-{pid}-");
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that no run of a dead process left its cgroup subtree under `mount`.
///
/// Runs of other processes still alive (another test, another user) are not ours.
pub fn assert_no_stale_runs(mount: &Path, what: &str) {
    let left = hookbench_workloads::cgroupfs::stale_run_dirs(mount).expect("mount readable");
    assert!(left.is_empty(), "{what}: left behind: {left:?}");
}

/// Every live process as (pid, comm, cgroup v2 path), to find what a run left alive.
///
/// The path is the `0::` line of /proc/PID/cgroup; processes that vanish while being read are left
/// out.
pub fn processes() -> Vec<(u32, String, String)> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter_map(|pid| {
                    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
                    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
                    let v2 = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.to_string();
                    Some((pid, comm.trim().to_string(), v2))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of processes whose command line is a hookbench worker.
pub fn hookbench_workers() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| {
                            let args: Vec<&[u8]> = c.split(|&b| b == 0).collect();
                            args.len() > 1 && args[0].ends_with(b"hookbench") && args[1] == b"worker"
                        })
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `BPF_PROG_GET_NEXT_ID` of include/uapi/linux/bpf.h.
const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
/// `BPF_PROG_GET_FD_BY_ID`.
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
/// `BPF_OBJ_GET_INFO_BY_FD`.
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;

/// Ids of every BPF program loaded in the kernel (`BPF_PROG_GET_NEXT_ID`).
pub fn bpf_prog_ids() -> std::collections::BTreeSet<u32> {
    let mut ids = std::collections::BTreeSet::new();
    // union bpf_attr { start_id; next_id; open_flags; }, zero-padded.
    let mut attr = [0u32; 4];
    loop {
        attr[1] = 0;
        // SAFETY: `attr` is a valid, 16-byte, zero-padded bpf_attr for this command.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_GET_NEXT_ID, attr.as_mut_ptr(), 16u32) };
        if rc != 0 {
            break;
        }
        ids.insert(attr[1]);
        attr[0] = attr[1];
    }
    ids
}

/// `(id, type)` of every BPF program loaded in the kernel; one freed meanwhile is left out.
///
/// The ids of [`bpf_prog_ids`], then `BPF_PROG_GET_FD_BY_ID` and `BPF_OBJ_GET_INFO_BY_FD` for the
/// first field of `bpf_prog_info`.
pub fn bpf_programs() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    for id in bpf_prog_ids() {
        let mut attr = [id, 0u32, 0, 0];
        // SAFETY: `attr` is a valid, 16-byte, zero-padded bpf_attr (prog_id, next_id, open_flags).
        let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_GET_FD_BY_ID, attr.as_mut_ptr(), 16u32) };
        if fd < 0 {
            continue;
        }
        let mut info = [0u32; 2];
        // info: { bpf_fd u32, info_len u32, info u64 }.
        let mut attr = [fd as u64 | (8u64 << 32), info.as_mut_ptr() as u64];
        // SAFETY: `attr` points at `info`, 8 bytes, which outlives the call.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, attr.as_mut_ptr(), 16u32) };
        // SAFETY: `fd` is ours.
        unsafe { libc::close(fd as libc::c_int) };
        if rc == 0 {
            out.push((id, info[0]));
        }
    }
    out
}

/// Three runs to merge under `dir`: a model smoke run and two edited copies of its results.json.
///
/// `base`: the run as measured. `kernel`: the same host on kernel `5.10.0-test`, another start
/// time and seed, with the slope and CI of claim 3's `handle-loop` fit tripled (a change beyond
/// its CI). `other`: another host class (64 CPUs of another model, an emulated TCG guest),
/// `complete: false`. Returns their directories in that order.
pub fn runs_to_merge(dir: &Path) -> [PathBuf; 3] {
    let base = dir.join("base");
    run_smoke_with(&["--backend", "model"], &base);
    let text = std::fs::read_to_string(base.join("results.json")).expect("results.json");
    let original: serde_json::Value = serde_json::from_str(&text).expect("results.json is JSON");
    let write = |name: &str, v: &serde_json::Value| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).expect("copy dir");
        std::fs::write(d.join("results.json"), serde_json::to_string(v).expect("encodes")).expect("copy written");
        d
    };
    let mut kernel = original.clone();
    kernel["environment"]["kernel_release"] = "5.10.0-test".into();
    kernel["started_at"] = "2000-01-01T00:00:00Z".into();
    kernel["order_seed"] = 12345.into();
    let fits = kernel["fits"].as_array_mut().expect("fits");
    let loop_fit = fits
        .iter_mut()
        .find(|f| f["mechanism"] == "handle-loop" && f["x"] == "handles" && f["fixed"]["body"] == "counter")
        .expect("a handle-loop fit over handles");
    let slope = loop_fit["slope"].as_f64().expect("slope");
    let ci: Vec<f64> = loop_fit["slope_ci95"]
        .as_array()
        .expect("ci")
        .iter()
        .map(|v| v.as_f64().expect("ci bound"))
        .collect();
    loop_fit["slope"] = (3.0 * slope).into();
    loop_fit["slope_ci95"] = serde_json::json!([ci[0] + 2.0 * slope, ci[1] + 2.0 * slope]);
    let mut other = original.clone();
    other["environment"]["cpu_model"] = "Other CPU Model 9000".into();
    other["environment"]["nr_cpus"] = 64.into();
    other["environment"]["hostname"] = "other-host".into();
    other["environment"]["emulated"] = "hookbench_rig.emulated=1".into();
    other["started_at"] = "2000-01-02T00:00:00Z".into();
    other["complete"] = false.into();
    [base, write("kernel", &kernel), write("other", &other)]
}
