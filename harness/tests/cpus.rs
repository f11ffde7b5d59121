//! End-to-end tests of the kernel `scaling` cells: P tasks pinned to P CPUs, own against shared.
//!
//! Root only (cgroup-bpf needs it). A smoke run of the kernel's `scaling` suite must give, for
//! every cell, one set of per-CPU figures per pinned CPU, the shared cgroup-bpf cells one
//! effective array for all tasks and the own ones one per task, every set of programs run
//! exactly its tasks' calls, and nothing left behind; under `taskset -c 0` the shipped suite's
//! P = 2 cells are skipped naming the CPU limit while the run goes on.

mod common;

use common::{assert_no_stale_runs, bpf_prog_ids, hookbench, processes, results_of, root_with_cgroup2};
use hookbench_reports::{Cell, Results};
use std::path::Path;

/// Held by each test's run, so that the two go one at a time.
///
/// Two runs on 2 CPUs disturb each other.
static RUNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The untimed calls per task of a cgroup-bpf cell's run-count pass (harness/src/kernel/cpus.rs).
const COUNT_FIRES: u64 = 1000;

/// A kernel smoke run of `suite` into `out` (under `taskset -c CPUS` when given): its results.
fn run(suite: &str, out: &Path, taskset: Option<&str>) -> Results {
    let exe = assert_cmd::cargo::cargo_bin("hookbench");
    let mut cmd = match taskset {
        Some(cpus) => {
            let mut c = assert_cmd::Command::new("taskset");
            c.args(["-c", cpus]).arg(&exe);
            c
        }
        None => hookbench(),
    };
    cmd.args([
        "run",
        "--backend",
        "kernel",
        "--suite",
        suite,
        "--profile",
        "smoke",
        "--no-progress",
        "--out",
    ])
    .arg(out)
    .assert()
    .success();
    results_of(out)
}

/// A validity note of `c` containing `needle`, if any.
fn note<'a>(c: &'a Cell, needle: &str) -> Option<&'a String> {
    c.validity.notes.iter().find(|n| n.contains(needle))
}

#[test]
fn scaling_cells_pin_one_task_per_cpu_share_what_they_say_and_count_every_run() {
    let Some(cg) = root_with_cgroup2() else {
        return;
    };
    let _one = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let allowed = hookbench_measure::pin::allowed_cpus().expect("affinity").len();
    let ids_before = bpf_prog_ids();
    let tmp = tempfile::tempdir().expect("tempdir");
    let results = run("scaling", &tmp.path().join("run"), None);
    let cells: Vec<&Cell> = results.cells.iter().filter(|c| c.backend == "kernel").collect();
    for m in [
        "seccomp-cpus-own",
        "seccomp-cpus-shared",
        "cgroup-bpf-cpus-own",
        "cgroup-bpf-cpus-shared",
    ] {
        let mine: Vec<&&Cell> = cells.iter().filter(|c| c.mechanism == m).collect();
        let ps: std::collections::BTreeSet<u32> = mine.iter().map(|c| c.params.cpus).collect();
        let expect: Vec<u32> = [1, 2].into_iter().filter(|&p| p as usize <= allowed).collect();
        assert_eq!(ps.into_iter().collect::<Vec<_>>(), expect, "{m}: {:?}", results.skipped);
        for c in mine {
            let p = c.params.cpus as usize;
            let n = u64::from(c.params.programs);
            // One task per CPU, each on its own CPU, each with raw, non-negative figures.
            assert_eq!(c.per_cpu.len(), p, "{m}: {:?}", c.per_cpu);
            let distinct: std::collections::BTreeSet<u32> = c.per_cpu.iter().map(|x| x.cpu).collect();
            assert_eq!(distinct.len(), p, "{m}: {:?}", c.per_cpu);
            assert!(c
                .per_cpu
                .iter()
                .all(|x| x.p50 >= 0.0 && x.p99 >= x.p50 && x.samples > 0));
            let sum: f64 = c.per_cpu.iter().map(|x| x.throughput_hooks_per_sec).sum();
            assert_eq!(c.throughput_hooks_per_sec, Some(sum), "{m}");
            assert!(
                c.validity.flags.iter().all(|f| f.code != "programs-not-run"),
                "{m}: {:?}",
                c.validity
            );
            if m.starts_with("seccomp") {
                let filters = format!("showed Seccomp_filters: {n},");
                assert!(note(c, &filters).is_some(), "{m} N={n}: {:?}", c.validity.notes);
                let how = if m.ends_with("shared") {
                    "inherited"
                } else {
                    "installed by the task itself"
                };
                assert!(note(c, how).is_some(), "{m}: {:?}", c.validity.notes);
                continue;
            }
            // cgroup-bpf: one cgroup and one array when shared, P of each when own.
            let (cgroups, arrays) = if m.ends_with("shared") {
                (1, 1)
            } else {
                (p, if n == 0 { 1 } else { p })
            };
            let want = format!("were in {cgroups} cgroup(s) whose getsockname4 effective arrays held {n} programs each, {arrays} distinct");
            assert!(note(c, &want).is_some(), "{m} P={p} N={n}: {:?}", c.validity.notes);
            if n > 0 {
                // Every task's calls ran every program of its set, exactly.
                let runs = c.validity.program_runs.expect("run_cnt counted");
                assert_eq!(runs, [p as u64 * COUNT_FIRES * n; 2], "{m} P={p} N={n}");
            }
        }
    }
    // Nothing left: no task, no cgroup, no program of the run.
    assert!(
        processes().iter().all(|(_, comm, _)| comm != "hookbench-cpus"),
        "a cpus task outlived the run"
    );
    assert_no_stale_runs(cg.mount(), "scaling run");
    let left: Vec<u32> = bpf_prog_ids().difference(&ids_before).copied().collect();
    let still: Vec<u32> = left.into_iter().filter(|id| hookbench_bpf::prog_exists(*id)).collect();
    assert!(still.is_empty(), "programs left loaded: {still:?}");
}

#[test]
fn under_a_one_cpu_taskset_the_two_cpu_cells_are_skipped_naming_the_limit_and_the_run_goes_on() {
    if root_with_cgroup2().is_none() {
        return;
    }
    let _one = RUNS.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().expect("tempdir");
    // The shipped suite: its points beyond this machine are skipped at run time (a user's suite
    // asking for them is refused before the run, exit 2).
    let results = run("scaling", &tmp.path().join("run"), Some("0"));
    let p1: Vec<&Cell> = results.cells.iter().filter(|c| c.params.cpus == 1).collect();
    // 4 mechanisms x programs 0 and 8 (the smoke sweep below the kernel's 16).
    assert_eq!(p1.len(), 8, "the one-CPU cells still run: {:?}", results.skipped);
    assert!(
        p1.iter().all(|c| c.per_cpu.len() == 1 && c.per_cpu[0].cpu == 0),
        "{p1:?}"
    );
    assert!(results.cells.iter().all(|c| c.params.cpus == 1));
    let skipped: Vec<_> = results
        .skipped
        .iter()
        .filter(|s| s.mechanism.contains("-cpus-"))
        .collect();
    let names: std::collections::BTreeSet<&str> = skipped.iter().map(|s| s.mechanism.as_str()).collect();
    assert_eq!(names.len(), 4, "{:?}", results.skipped);
    assert!(
        skipped
            .iter()
            .all(|s| s.reason.contains("cpus = 2 but this process may run on 1 CPU(s)")),
        "{skipped:?}"
    );
}
