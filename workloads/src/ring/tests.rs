//! Tests of the ring: requests it refuses, how many turns it times, and small live rings.

use super::*;
use crate::cgroupfs::RunTree;
use crate::test_support::{root_test, spawn_test};
use hookbench_measure::Clock;

/// Serializes the tests that start rings (they look for leftover ring tasks).
static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn request(chain: RingChain, tasks: u32, programs: u32) -> RingRequest {
    RingRequest {
        chain,
        tasks,
        programs,
        home: None,
        slots: None,
        timing: TimingRequest::new(Clock::detect().info(), None, 100, 0),
        seed: 3,
        count_fires: None,
        probe: false,
    }
}

/// Pids of live processes named [`RING_COMM`] (ring tasks).
fn ring_tasks_alive() -> Vec<String> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == RING_COMM)
                        && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z "))
                })
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn requests_out_of_range_are_refused_before_anything_is_made() {
    let e = check(&request(RingChain::Seccomp, 0, 1)).expect_err("no tasks");
    assert!(e.contains("tasks = 0"), "{e}");
    let e = check(&request(RingChain::Seccomp, 4, 1928)).expect_err("over the budget");
    assert!(e.contains("programs = 1928"), "{e}");
    let e = check(&request(RingChain::CgroupBpf, 4, 65)).expect_err("over 64");
    assert!(e.contains("BPF_CGROUP_MAX_PROGS"), "{e}");
    let e = check(&request(RingChain::CgroupBpf, 4, 1)).expect_err("no slots");
    assert!(e.contains("slots"), "{e}");
    assert!(check(&request(RingChain::Seccomp, 4, 1927)).is_ok());
}

#[test]
fn timed_turns_cover_the_samples_a_rotation_and_the_duration() {
    let clock = Clock::monotonic_raw();
    let mut timing = TimingRequest::new(clock.info(), None, 100, 0);
    // 1 ns per tick: warm-up turns of 500 ns.
    let warm = vec![(500u64, 1u32); 10];
    assert_eq!(timed_turns(&timing, 1, &warm, &clock), 100);
    assert_eq!(timed_turns(&timing, 4096, &warm, &clock), 4096);
    timing.min_duration_ns = 20_000_000;
    assert_eq!(timed_turns(&timing, 1, &warm, &clock), 40_000);
    timing.min_duration_ns = u64::MAX;
    assert_eq!(timed_turns(&timing, 1, &warm, &clock), MAX_TIMED_TURNS);
    assert_eq!(timed_turns(&timing, 1, &[], &clock), 100);
}

/// A seccomp ring of four tasks (no root needed) reports its samples and leaves no task.
///
/// Every task holds its filters, every timed turn gives a sample, no task outlives the worker.
#[test]
fn a_small_seccomp_ring_reports_samples_and_leaves_no_task() {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let req = RingRequest {
        probe: true,
        ..request(RingChain::Seccomp, 4, 3)
    };
    let report = spawn_test::<RingWorker>(&req).expect("ring ran");
    eprintln!(
        "seccomp ring W=4 N=3: {} timed turns, median {:.0} ns, setup {:.3} s",
        report.timed_turns,
        crate::test_support::median(&mut report.samples.values_ns.clone()),
        report.setup_s
    );
    assert_eq!((report.tasks, report.programs), (4, 3));
    assert_eq!(report.warmup_turns, MIN_WARMUP_TURNS);
    assert_eq!(report.samples.values_ns.len() as u64, report.timed_turns);
    assert!(report.timed_turns >= 100);
    assert_eq!(report.samples.batch_k, 1);
    assert!(report.samples.values_ns.iter().all(|v| *v >= 0.0));
    assert_eq!(report.seccomp_filters, Some([3, 3]));
    // Every filter of every task's chain gave its own answer after the timed turns.
    let probe = report.probe.expect("probe pass");
    assert_eq!(
        (probe.tasks, probe.filters, probe.complete_tasks),
        (4, 3, 4),
        "{probe:?}"
    );
    assert_eq!(probe.first_miss, None);
    assert_ne!(
        probe.cache_skips_trigger,
        Some(true),
        "arg-load filters are never cached"
    );
    assert_eq!(report.run_count, None);
    assert!(
        ring_tasks_alive().is_empty(),
        "ring tasks left: {:?}",
        ring_tasks_alive()
    );
}

/// A cgroup-bpf ring of four tasks in their own cgroups (root) runs its programs, leaves nothing.
///
/// The programs ran once per call and task, the tasks are gone, and no program is left
/// attached to their cgroups, which can be removed.
#[test]
fn a_small_cgroup_ring_runs_its_programs_and_leaves_nothing() {
    let Some((_g, cg)) = root_test(
        &LOCK,
        "a_small_cgroup_ring_runs_its_programs_and_leaves_nothing",
        "needs root (cgroups and BPF programs)",
    ) else {
        return;
    };
    let mut run = RunTree::create(&cg).expect("run tree");
    let home = run.child("ring").expect("home");
    let slots = crate::cgroup_bpf::wide_subtree(&mut run, 4).expect("slots").top;
    let req = RingRequest {
        home: Some(home),
        slots: Some(slots.clone()),
        count_fires: Some(10),
        ..request(RingChain::CgroupBpf, 4, 3)
    };
    let report = spawn_test::<RingWorker>(&req).expect("ring ran");
    eprintln!("cgroup ring W=4 N=3: {:?}", report.run_count);
    assert_eq!(report.samples.values_ns.len() as u64, report.timed_turns);
    match report.run_count {
        Some(RingRunCount::Counted {
            calls,
            expected,
            observed,
        }) => assert_eq!((calls, expected, observed), (40, 120, 120)),
        Some(RingRunCount::Unavailable(why)) => eprintln!("run counts not checked: {why}"),
        None => panic!("no run-count pass"),
    }
    assert!(
        ring_tasks_alive().is_empty(),
        "ring tasks left: {:?}",
        ring_tasks_alive()
    );
    // No task and no link holds the slots: each effective array is empty again.
    for i in 0..4 {
        let dir = std::fs::File::open(slots.join(i.to_string())).expect("slot");
        let ids = hookbench_bpf::query_cgroup(dir.as_fd(), AttachType::Getsockname4, false).expect("query");
        assert!(ids.is_empty(), "slot {i} still has programs {ids:?}");
    }
    let root = run.root().to_path_buf();
    run.teardown().expect("teardown");
    assert!(!root.exists());
}
