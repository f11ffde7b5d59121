//! End-to-end test of the kernel backend's BPF LSM mechanisms: a smoke run of the `lsm` suite.
//!
//! The mechanisms are `lsm-cgroup`, `lsm-global` and `lsm-global-unmarked`. Where the kernel
//! refuses BPF trampolines (this project's development host), every cell is skipped with the
//! reason; where it allows them and `bpf` is an active LSM (the qemu rig's Debian guest), the
//! cells are measured, fitted over `programs`, their counter bodies checked by the backend, and
//! nothing is left attached. In the rig, run this binary with `CARGO_BIN_EXE_hookbench` pointing
//! at the guest's `hookbench`.

mod common;

use common::{bpf_programs, results_of, run_smoke};

const MECHANISMS: [&str; 3] = ["lsm-cgroup", "lsm-global", "lsm-global-unmarked"];

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
    run_smoke("kernel", "lsm", &out);
    let results = results_of(&out);
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
        common::assert_no_stale_runs(cg.mount(), "lsm run");
    }
}
