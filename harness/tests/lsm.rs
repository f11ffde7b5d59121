//! End-to-end test of the kernel backend's BPF LSM mechanisms (`lsm-cgroup`, `lsm-global`,
//! `lsm-global-unmarked`): a smoke run of the `lsm` suite. Where the kernel refuses BPF
//! trampolines (this project's development host), every cell is skipped with the reason; where
//! it allows them and `bpf` is an active LSM (the qemu rig's Debian guest), the cells are measured,
//! fitted over `programs`, their counter bodies checked by the backend, and nothing is left
//! attached. In the rig, run this binary with `CARGO_BIN_EXE_hookbench` pointing at the guest's
//! `hookbench`.

use assert_cmd::Command;
use hookbench_reports::Results;

const MECHANISMS: [&str; 3] = ["lsm-cgroup", "lsm-global", "lsm-global-unmarked"];

fn hookbench() -> Command {
    Command::cargo_bin("hookbench").expect("hookbench binary is built")
}

/// `(id, type)` of every BPF program loaded in the kernel (`BPF_PROG_GET_NEXT_ID`,
/// `BPF_PROG_GET_FD_BY_ID`, `BPF_OBJ_GET_INFO_BY_FD` for the first field of `bpf_prog_info`).
fn bpf_programs() -> Vec<(u32, u32)> {
    const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
    const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    let mut out = Vec::new();
    let mut start = 0u32;
    loop {
        // union bpf_attr { start_id; next_id; open_flags; }, zero-padded.
        let mut attr = [start, 0u32, 0, 0];
        // SAFETY: `attr` is a valid, 16-byte, zero-padded bpf_attr for this command.
        let rc = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_GET_NEXT_ID, attr.as_mut_ptr(), 16u32) };
        if rc != 0 {
            break;
        }
        let id = attr[1];
        start = id;
        let mut attr = [id, 0u32, 0, 0];
        // SAFETY: as above (prog_id, next_id, open_flags).
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

/// `BPF_PROG_TYPE_LSM` (include/uapi/linux/bpf.h).
const BPF_PROG_TYPE_LSM: u32 = 29;

#[test]
fn lsm_suite_measures_bpf_lsm_programs_or_names_why_not() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("lsm");
    let lsm_before: Vec<u32> = bpf_programs()
        .into_iter()
        .filter(|&(_, t)| t == BPF_PROG_TYPE_LSM)
        .map(|(id, _)| id)
        .collect();
    hookbench()
        .args([
            "run",
            "--backend",
            "kernel",
            "--suite",
            "lsm",
            "--profile",
            "smoke",
            "--no-progress",
            "--out",
        ])
        .arg(&out)
        .assert()
        .success();
    let results = Results::read(&out.join("results.json")).expect("results.json reads");
    let cells: Vec<_> = results
        .cells
        .iter()
        .filter(|c| MECHANISMS.contains(&c.mechanism.as_str()))
        .collect();
    if cells.is_empty() {
        // Not measured: every cell names why.
        assert_eq!(results.skipped.len(), 4 * MECHANISMS.len(), "{:?}", results.skipped);
        for s in &results.skipped {
            eprintln!("skipped: {}", s.reason);
            assert!(s.reason.contains("BPF LSM programs not available here"), "{}", s.reason);
        }
        let trampolines = &results.environment["bpf_trampolines"];
        if trampolines["available"] == false && trampolines["reason"].as_str().is_some_and(|r| r.contains("EPERM")) {
            assert!(results.skipped.iter().all(|s| s.reason.contains("EPERM")));
        }
        eprintln!("SKIPPED the measured part: BPF LSM programs cannot run here");
        return;
    }
    // Measured: no skip (the backend skips a cell whose counters disagree with the calls).
    assert!(results.skipped.is_empty(), "{:?}", results.skipped);
    let emulated = results.environment.get("emulated").is_some_and(|e| !e.is_null());
    for m in MECHANISMS {
        let mine: Vec<_> = cells.iter().filter(|c| c.mechanism == m).collect();
        let programs: Vec<u32> = mine.iter().map(|c| c.params.programs).collect();
        assert_eq!(programs, vec![0, 8, 16, 32], "{m}");
        for c in &mine {
            let acc = c.accounting.expect("accounting");
            let n = u64::from(c.params.programs);
            let bodies = if m == "lsm-global-unmarked" { 0 } else { n };
            assert_eq!((acc.nodes_visited, acc.programs_run), (n, bodies), "{m} {acc:?}");
            assert!(c.overhead.is_some() && c.baseline.is_some() && c.unit == "ns", "{m}");
        }
        let model = if m == "lsm-cgroup" {
            "cgroup-effective"
        } else {
            "global-filter"
        };
        assert!(mine.iter().all(|c| c.model.as_str() == model), "{m}");
        let fits: Vec<_> = results
            .fits
            .iter()
            .filter(|f| f.suite == "lsm" && f.mechanism == m && f.x == "programs")
            .collect();
        assert_eq!(fits.len(), 1, "{m}: {fits:?}");
        let f = fits[0];
        eprintln!(
            "{m}: slope {:.2} ns/program (95% CI {:.2}..{:.2}), intercept {:.1} ns, r2 {:.3}",
            f.slope, f.slope_ci95[0], f.slope_ci95[1], f.intercept, f.r2
        );
        // Under emulation (qemu TCG) socket() takes tens of microseconds with a spread far above
        // a program's cost, so only the counters (checked by the backend) are asserted there.
        if !emulated && m != "lsm-global-unmarked" {
            assert!(f.slope_ci95[0] > 0.0, "{m}: every program costs something: {f:?}");
        }
    }
    // Nothing is left: no run cgroup of ours, no LSM program the run loaded.
    let lsm_after: Vec<u32> = bpf_programs()
        .into_iter()
        .filter(|&(id, t)| t == BPF_PROG_TYPE_LSM && !lsm_before.contains(&id))
        .map(|(id, _)| id)
        .collect();
    assert!(lsm_after.is_empty(), "LSM programs left loaded: {lsm_after:?}");
    if let Ok(cg) = hookbench_workloads::cgroupfs::Cgroup2::detect() {
        // Runs of other processes still alive (another test, another user) are not ours.
        let left = hookbench_workloads::cgroupfs::stale_run_dirs(cg.mount()).expect("mount readable");
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
