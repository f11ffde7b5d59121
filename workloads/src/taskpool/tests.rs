//! Task pools and floors: placement, tear-down, refusals and limits (the placing tests need root).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::clone::fmt_pid;
use super::*;
use crate::cgroupfs::{Cgroup2, RunTree, Shape};

/// The cgroup2 mount and a new run tree in it for root test `test`, if it can run.
///
/// `None` after saying why it is skipped.
fn run_tree(test: &str) -> Option<(Cgroup2, RunTree)> {
    crate::test_support::run_tree_or_skip(test, "needs root to create cgroups and place tasks")
}

fn procs_of(cgroup: &Path) -> Vec<i32> {
    let mut v: Vec<i32> = fs::read_to_string(cgroup.join("cgroup.procs"))
        .expect("read cgroup.procs")
        .lines()
        .map(|l| l.trim().parse().expect("pid"))
        .collect();
    v.sort_unstable();
    v
}

fn ppid_of(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    // Fields after the last ')' of comm: state, ppid, ...
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    rest.split(' ').nth(1).expect("ppid").parse().expect("ppid number")
}

fn gone(pid: i32) -> bool {
    // SAFETY: signal 0 only checks existence.
    unsafe { libc::kill(pid, 0) == -1 && Errno::last() == Errno::ESRCH }
}

/// Children (zombies included) of the calling thread, from /proc (CONFIG_PROC_CHILDREN).
fn my_thread_children() -> Option<Vec<i32>> {
    // SAFETY: gettid has no arguments.
    let tid = unsafe { libc::gettid() };
    let s = fs::read_to_string(format!("/proc/self/task/{tid}/children")).ok()?;
    Some(s.split_whitespace().filter_map(|p| p.parse().ok()).collect())
}

/// `/proc/PID/comm` of `pid` once it has named itself, waiting at most 2 s.
///
/// The child runs after clone returns.
fn comm_of(pid: i32) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == IDLE_COMM || Instant::now() > deadline {
            return comm.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn check_pool(run: &RunTree, paths: &[PathBuf], tasks: u32, prefer: Placement) {
    let (pool, took) = TaskPool::spawn_with(run.root(), paths, tasks, prefer).expect("spawn");
    assert_eq!(pool.len(), tasks as usize);
    if prefer == Placement::ForkThenProcs {
        assert_eq!(pool.placement(), Placement::ForkThenProcs);
    }
    eprintln!("spawn {tasks} over {} ({:?}): {took:?}", paths.len(), pool.placement());
    let per = tasks as usize / paths.len();
    for (k, p) in paths.iter().enumerate() {
        let got = procs_of(p);
        let mut want: Vec<i32> = (0..pool.len())
            .filter(|i| i % paths.len() == k)
            .map(|i| pool.pids()[i])
            .collect();
        want.sort_unstable();
        assert_eq!(got.len(), per, "{}", p.display());
        assert_eq!(got, want, "{}", p.display());
        for &pid in &got {
            assert_eq!(ppid_of(pid), std::process::id() as i32, "pid {pid} is not our child");
            assert_eq!(comm_of(pid), IDLE_COMM, "pid {pid} did not name itself");
        }
    }
    let pids = pool.pids().to_vec();
    let td = pool.teardown().expect("teardown");
    assert!(td > Duration::ZERO);
    for pid in pids {
        assert!(gone(pid), "pid {pid} still exists after teardown");
    }
    if let Some(kids) = my_thread_children() {
        assert!(kids.is_empty(), "children left: {kids:?}");
    }
}

#[test]
fn taskpool_50_over_5_wide() {
    let Some((_, mut run)) = run_tree("taskpool_50_over_5_wide") else {
        return;
    };
    let root = run.root().to_path_buf();
    let paths = run.build(Shape::Wide, 5).expect("build");
    check_pool(&run, &paths, 50, Placement::Clone3IntoCgroup);
    // Kernel 5.7+ must have used CLONE_INTO_CGROUP.
    let (pool, _) = TaskPool::spawn(run.root(), &paths, 5).expect("spawn");
    eprintln!("placement: {:?}", pool.placement());
    assert_eq!(pool.placement(), Placement::Clone3IntoCgroup);
    pool.teardown().expect("teardown");
    let stats = run.teardown().expect("run teardown");
    assert_eq!((stats.cgroups_removed, stats.processes_killed), (6, 0));
    assert!(!root.exists());
}

/// `Seccomp_filters` of `/proc/<pid>/status`.
fn seccomp_filters(pid: i32) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Tasks that install filters of their own hold them all once the pool is returned.
///
/// A program the kernel refuses is named with its errno, and every task is killed and reaped.
#[test]
fn taskpool_tasks_install_their_own_filters() {
    let Some((_, mut run)) = run_tree("taskpool_tasks_install_their_own_filters") else {
        return;
    };
    let paths = run.build(Shape::Wide, 1).expect("build");
    let program = crate::seccomp::filter_program(crate::seccomp::FilterBody::ArgLoad);
    let prog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    let flags = crate::seccomp::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    let (pool, _) = TaskPool::spawn_installing(run.root(), &paths, 20, (&prog, 3, flags)).expect("spawn");
    assert_eq!(pool.len(), 20);
    for &pid in pool.pids() {
        assert_eq!(seccomp_filters(pid), Some(3), "task {pid}");
    }
    pool.teardown().expect("teardown");
    // An empty program: seccomp(2) refuses it with EINVAL in every task.
    let empty = libc::sock_fprog {
        len: 0,
        filter: program.as_ptr().cast_mut(),
    };
    let e = TaskPool::spawn_installing(run.root(), &paths, 4, (&empty, 1, flags)).expect_err("refused");
    assert!(
        matches!(
            e,
            TaskPoolError::ChildSetup {
                failed: 4,
                tasks: 4,
                ..
            }
        ) && e.to_string().contains("EINVAL"),
        "{e}"
    );
    assert!(procs_of(&paths[0]).is_empty(), "every task was reaped");
    assert_eq!(run.teardown().expect("run teardown").processes_killed, 0);
}

#[test]
fn taskpool_fork_then_procs() {
    let Some((_, mut run)) = run_tree("taskpool_fork_then_procs") else {
        return;
    };
    let paths = run.build(Shape::Balanced { fanout: 2 }, 6).expect("build");
    let leaves = run.leaves();
    check_pool(&run, &leaves, 20, Placement::ForkThenProcs);
    let _ = paths;
    assert_eq!(run.teardown().expect("run teardown").processes_killed, 0);
}

#[test]
fn taskpool_drop_kills_and_reaps() {
    let Some((_, mut run)) = run_tree("taskpool_drop_kills_and_reaps") else {
        return;
    };
    let paths = run.build(Shape::Wide, 3).expect("build");
    let (pool, _) = TaskPool::spawn(run.root(), &paths, 10).expect("spawn");
    let pids = pool.pids().to_vec();
    assert_eq!(pool.cgroup_of(4), Some(paths[1].as_path()));
    assert_eq!(pool.cgroup_of(10), None);
    drop(pool);
    for pid in pids {
        assert!(gone(pid), "pid {pid} survived drop");
    }
    // Run tree torn down first, pool dropped after: still clean.
    let (pool, _) = TaskPool::spawn(run.root(), &paths, 6).expect("spawn");
    let pids = pool.pids().to_vec();
    assert_eq!(run.teardown().expect("run teardown").processes_killed, 6);
    pool.teardown().expect("teardown after run teardown");
    for pid in pids {
        assert!(gone(pid), "pid {pid} survived");
    }
}

#[test]
fn taskpool_refuses_outside() {
    let Some((cg, mut run)) = run_tree("taskpool_refuses_outside") else {
        return;
    };
    let paths = run.build(Shape::Wide, 1).expect("build");
    for bad in [
        cg.mount().to_path_buf(),
        run.root().join(".."),
        run.root().join("../other"),
        PathBuf::from("/tmp"),
    ] {
        let cgroups = [paths[0].clone(), bad.clone()];
        match TaskPool::spawn(run.root(), &cgroups, 4) {
            Err(e @ TaskPoolError::OutsideRun { .. }) => {
                assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
            }
            other => panic!("{} accepted: {other:?}", bad.display()),
        }
    }
    assert_eq!(procs_of(&paths[0]), Vec::<i32>::new());
    assert!(matches!(
        TaskPool::spawn(run.root(), &[], 3),
        Err(TaskPoolError::NoCgroups { tasks: 3 })
    ));
    let (empty, _) = TaskPool::spawn(run.root(), &[], 0).expect("empty pool");
    assert!(empty.is_empty());
    assert!(matches!(
        task_floor(cg.mount(), 1),
        Err(TaskPoolError::OutsideRun { .. })
    ));
    assert!(matches!(
        task_floor(&run.root().join("../x"), 1),
        Err(TaskPoolError::OutsideRun { .. })
    ));
    run.teardown().expect("run teardown");
}

#[test]
fn taskpool_floor_200() {
    let Some((_, mut run)) = run_tree("taskpool_floor_200") else {
        return;
    };
    let paths = run.build(Shape::Wide, 1).expect("build");
    let (sp, td) = task_floor(&paths[0], 200).expect("task_floor");
    eprintln!("task_floor(200): spawn {sp:?}, teardown {td:?}");
    assert!(sp > Duration::ZERO && td > Duration::ZERO);
    assert!(procs_of(&paths[0]).is_empty());
    if let Some(kids) = my_thread_children() {
        assert!(kids.is_empty(), "task_floor left children: {kids:?}");
    }
    assert_eq!(run.teardown().expect("run teardown").processes_killed, 0);
}

fn reading(dir: &str, hierarchy: &'static str, max: Option<u64>, current: u64) -> PidsReading {
    PidsReading {
        dir: PathBuf::from(dir),
        hierarchy,
        max,
        current,
    }
}

#[test]
fn taskpool_limit_names() {
    let none: &[PidsReading] = &[];
    let s = name_limit(none, Some(32768), Some(192730), Some(32500), None, 0);
    assert!(s.contains("kernel.pid_max is 32768"), "{s}");
    let s = name_limit(none, Some(4_194_304), Some(1000), Some(990), None, 0);
    assert!(s.contains("kernel.threads-max is 1000"), "{s}");
    // RLIMIT_NPROC is named for an ordinary user only (uid 0 is exempt in copy_process).
    let s = name_limit(none, Some(32768), Some(192730), Some(100), Some(50), 1000);
    assert!(
        s.contains("RLIMIT_NPROC") && s.contains("50") && s.contains("uid 1000"),
        "{s}"
    );
    let s = name_limit(none, Some(32768), Some(192730), Some(100), Some(50), 0);
    assert!(!s.contains("RLIMIT_NPROC (`ulimit"), "{s}");
    assert!(s.contains("does not apply to uid 0"), "{s}");
    let s = name_limit(none, Some(32768), None, Some(100), None, 0);
    assert!(s.contains("32768") && s.contains("unknown"), "{s}");
    // A v1 pids.max at its limit is the cause, even with RLIMIT_NPROC set, and for root.
    let v1 = [
        reading("/sys/fs/cgroup/pids/user.slice/job", "v1", Some(5000), 5000),
        reading("/sys/fs/cgroup/pids/user.slice", "v1", None, 5002),
    ];
    for uid in [0, 1000] {
        let s = name_limit(&v1, Some(32768), Some(192730), Some(5100), Some(4096), uid);
        assert!(
            s.starts_with("pids.max of /sys/fs/cgroup/pids/user.slice/job (cgroup v1 pids controller) is 5000"),
            "{s}"
        );
        assert!(s.contains("pids.current is 5000"), "{s}");
        assert!(!s.contains("RLIMIT_NPROC") && !s.contains("exempt"), "{s}");
    }
    // The deepest cgroup at its limit is named, v2 as well.
    let v2 = [
        reading("/sys/fs/cgroup/unified/hookbench-1-2/w0_0", "v2", None, 10),
        reading("/sys/fs/cgroup/unified/hookbench-1-2", "v2", Some(10), 10),
    ];
    let s = name_limit(&v2, Some(32768), Some(192730), Some(100), None, 0);
    assert!(s.contains("hookbench-1-2 (cgroup v2") && s.contains("is 10"), "{s}");
    // Limits that are not reached are listed, not blamed.
    let below = [reading("/sys/fs/cgroup/pids/a", "v1", Some(100), 40)];
    let s = name_limit(&below, Some(32768), Some(192730), Some(100), None, 0);
    assert!(
        s.contains("no pids.max is reached") && s.contains("/sys/fs/cgroup/pids/a 40/100"),
        "{s}"
    );
    let mut buf = [0u8; 16];
    assert_eq!(fmt_pid(0, &mut buf), b"0");
    assert_eq!(fmt_pid(4_194_304, &mut buf), b"4194304");
}

const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

#[test]
fn pids_cgroups_follow_v1_and_v2() {
    let proc_cgroup = "9:name=systemd:/\n8:pids:/user.slice/job\n4:memory:/x\n0::/hookbench-1-2/spawner-1\n";
    let target = Path::new("/sys/fs/cgroup/unified/hookbench-1-2/w0_3");
    let got = pids_cgroups(HYBRID_MOUNTINFO, proc_cgroup, Some(target));
    let show: Vec<(String, &str)> = got.iter().map(|(p, h)| (p.display().to_string(), *h)).collect();
    assert_eq!(
        show,
        [
            ("/sys/fs/cgroup/unified/hookbench-1-2/w0_3".to_string(), "v2"),
            ("/sys/fs/cgroup/unified/hookbench-1-2".to_string(), "v2"),
            ("/sys/fs/cgroup/unified".to_string(), "v2"),
            ("/sys/fs/cgroup/pids/user.slice/job".to_string(), "v1"),
            ("/sys/fs/cgroup/pids/user.slice".to_string(), "v1"),
            ("/sys/fs/cgroup/pids".to_string(), "v1"),
            ("/sys/fs/cgroup/unified/hookbench-1-2/spawner-1".to_string(), "v2"),
        ]
    );
    // A pids hierarchy co-mounted with other controllers, bind-mounted from a subtree.
    let mi = "50 1 0:40 /lxc/c1 /sys/fs/cgroup/cpu,pids rw - cgroup cgroup rw,cpu,pids\n";
    let got = pids_cgroups(mi, "3:cpu,pids:/lxc/c1/app\n", None);
    assert_eq!(
        got,
        [
            (PathBuf::from("/sys/fs/cgroup/cpu,pids/app"), "v1"),
            (PathBuf::from("/sys/fs/cgroup/cpu,pids"), "v1")
        ]
    );
    assert!(pids_cgroups("", "", None).is_empty());
}

#[test]
fn taskpool_timing_10k() {
    let Some((_, mut run)) = run_tree("taskpool_timing_10k") else {
        return;
    };
    let one = run.build(Shape::Wide, 1).expect("build");
    let hundred = run.build(Shape::Wide, 100).expect("build 100");
    let total = Instant::now();
    // Warm-up (pid allocation, slabs, page tables), not reported.
    task_floor(&one[0], 10_000).expect("warm-up task_floor 10k");
    let (pool, sp) = TaskPool::spawn(run.root(), &one, 10_000).expect("spawn 10k");
    let placement = pool.placement();
    assert_eq!(pool.len(), 10_000);
    let td = pool.teardown().expect("teardown 10k");
    let (fsp, ftd) = task_floor(&one[0], 10_000).expect("task_floor 10k");
    let (pool, sp100) = TaskPool::spawn(run.root(), &hundred, 10_000).expect("spawn 10k over 100");
    let td100 = pool.teardown().expect("teardown 10k over 100");
    let (pool, spf) =
        TaskPool::spawn_with(run.root(), &one, 10_000, Placement::ForkThenProcs).expect("spawn 10k fork+procs");
    let tdf = pool.teardown().expect("teardown 10k fork+procs");
    eprintln!(
        "10,000 tasks: TaskPool::spawn ({placement:?}, 1 cgroup) {sp:?}, teardown {td:?}; task_floor spawn \
         {fsp:?}, teardown {ftd:?}; spawn over 100 cgroups {sp100:?}, teardown {td100:?}; ForkThenProcs \
         {spf:?}, teardown {tdf:?} (test total {:?})",
        total.elapsed()
    );
    assert_eq!(run.teardown().expect("run teardown").processes_killed, 0);
}
