//! The cgroupfs tests: pure planning and naming, then real trees (as root, on a cgroup2 mount).

use super::stale::{pid_alive, run_dir_pid};
use super::teardown::{remove_subtree_with, walk};
use super::tree::plan;
use super::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};

#[test]
fn run_dir_names() {
    assert_eq!(run_dir_pid(b"hookbench-123-456"), Some(123));
    assert_eq!(run_dir_pid(b"hookbench-123-floor9"), Some(123));
    assert_eq!(run_dir_pid(b"hookbench-123-"), None);
    assert_eq!(run_dir_pid(b"hookbench-12a-4"), None);
    assert_eq!(run_dir_pid(b"hookbench--4"), None);
    assert_eq!(run_dir_pid(b"other-123-4"), None);
    assert_eq!(run_dir_pid(b"hookbench-123"), None);
}

#[test]
fn plan_shapes() {
    let p = plan(Shape::Balanced { fanout: 4 }, 50, 0).expect("plan");
    let per_level = |d| p.iter().filter(|x| x.depth == d).count();
    assert_eq!((per_level(1), per_level(2), per_level(3), per_level(4)), (4, 16, 30, 0));
    let p = plan(Shape::Deep, 50, 0).expect("plan");
    assert_eq!(p.last().map(|x| x.depth), Some(50));
    let p = plan(
        Shape::Containers {
            children_per_container: 4,
        },
        12,
        0,
    )
    .expect("plan");
    let rels: Vec<String> = p.iter().map(|x| x.rel.display().to_string()).collect();
    assert_eq!(
        rels,
        [
            "slice0",
            "slice0/c0",
            "slice0/c0/t0",
            "slice0/c0/t1",
            "slice0/c0/t2",
            "slice0/c0/t3",
            "slice0/c1",
            "slice0/c1/t0",
            "slice0/c1/t1",
            "slice0/c1/t2",
            "slice0/c1/t3",
            "slice0/c2"
        ]
    );
    assert!(plan(Shape::Balanced { fanout: 0 }, 3, 0).is_err());
    assert!(plan(Shape::Wide, 0, 0).expect("plan").is_empty());
}

/// The cgroup2 mount when running as root with one, else an explanation on stderr.
fn v2_or_skip(test: &str) -> Option<Cgroup2> {
    crate::cgroupfs::cgroup2_or_skip(test, "needs root to create cgroups")
}

/// [`v2_or_skip`] and a fresh run tree on the mount.
fn run_or_skip(test: &str) -> Option<(Cgroup2, RunTree)> {
    crate::test_support::run_tree_or_skip(test, "needs root to create cgroups")
}

/// Kills and reaps a child on every exit path.
struct ChildGuard(Child);
impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes a hand-made subtree on every exit path.
struct DirGuard(PathBuf);
impl Drop for DirGuard {
    fn drop(&mut self) {
        let _ = remove_subtree(&self.0);
    }
}

fn sleeper() -> ChildGuard {
    ChildGuard(Command::new("sleep").arg("30").spawn().expect("spawn sleep"))
}

fn depth_below(root: &Path, p: &Path) -> usize {
    p.strip_prefix(root).expect("under root").components().count()
}

#[test]
fn shapes_build_move_teardown() {
    let Some(cg) = v2_or_skip("shapes_build_move_teardown") else {
        return;
    };
    for shape in [
        Shape::Wide,
        Shape::Deep,
        Shape::Balanced { fanout: 4 },
        Shape::Containers {
            children_per_container: 4,
        },
    ] {
        let mut run = RunTree::create(&cg).expect("create run tree");
        let root = run.root().to_path_buf();
        let paths = run.build(shape, 50).expect("build");
        assert_eq!(paths.len(), 50, "{shape:?}");
        for (i, p) in paths.iter().enumerate() {
            assert!(p.is_dir(), "{}", p.display());
            let parent = p.parent().expect("parent");
            assert!(
                parent == root || paths[..i].iter().any(|q| q == parent),
                "parent first: {}",
                p.display()
            );
        }
        let depths: Vec<usize> = paths.iter().map(|p| depth_below(&root, p)).collect();
        let level = |d| depths.iter().filter(|&&x| x == d).count();
        match shape {
            Shape::Wide => assert_eq!(level(1), 50),
            Shape::Deep => assert_eq!(depths.iter().max(), Some(&50)),
            Shape::Balanced { .. } => assert_eq!((level(1), level(2), level(3)), (4, 16, 30)),
            Shape::Containers { .. } => {
                assert_eq!((level(1), level(2), level(3)), (1, 10, 39));
            }
        }
        let leaves = run.leaves();
        match shape {
            Shape::Wide => assert_eq!(leaves.len(), 50),
            Shape::Deep => assert_eq!(leaves, vec![paths[49].clone()]),
            Shape::Balanced { .. } => assert_eq!(leaves.len(), 38), // parents: all 4 of level 1, 8 of level 2
            Shape::Containers { .. } => assert_eq!(leaves.len(), 39),
        }
        let mut child = sleeper();
        let leaf = leaves.last().expect("a leaf").clone();
        run.move_pid(child.0.id(), &leaf).expect("move pid");
        let procs = fs::read_to_string(leaf.join("cgroup.procs")).expect("read procs");
        assert_eq!(procs.trim(), child.0.id().to_string());
        let stats = run.teardown().expect("teardown");
        assert_eq!(stats.cgroups_removed, 51, "{shape:?}");
        assert_eq!(stats.processes_killed, 1);
        assert!(!root.exists(), "{} still exists", root.display());
        let status = child.0.wait().expect("reap");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{shape:?}: child was not killed");
    }
}

#[test]
fn move_pid_refuses_outside() {
    let Some((cg, run)) = run_or_skip("move_pid_refuses_outside") else {
        return;
    };
    let me = std::process::id();
    for p in [
        cg.mount().to_path_buf(),
        run.root().join(".."),
        run.root().join("../other"),
    ] {
        match run.move_pid(me, &p) {
            Err(CgroupError::OutsideRun { .. }) => {}
            other => panic!("{} accepted: {other:?}", p.display()),
        }
    }
    run.teardown().expect("teardown");
}

#[test]
fn limits_are_named() {
    let Some((_, mut run)) = run_or_skip("limits_are_named") else {
        return;
    };
    // The run root's own limit files are the run's to set.
    fs::write(run.root().join("cgroup.max.depth"), "2").expect("set max.depth");
    match run.build(Shape::Deep, 5) {
        Err(CgroupError::Limit {
            limit: "cgroup.max.depth",
            max: 2,
            asked: 5,
            ..
        }) => {}
        other => panic!("expected a depth limit error, got {other:?}"),
    }
    fs::write(run.root().join("cgroup.max.descendants"), "3").expect("set max.descendants");
    let e = run.build(Shape::Wide, 5).expect_err("over max.descendants");
    assert!(e.to_string().contains("cgroup.max.descendants"), "{e}");
    assert!(matches!(e, CgroupError::Limit { max: 3, asked: 5, .. }), "{e:?}");
    assert_eq!(run.build(Shape::Wide, 3).expect("within limits").len(), 3);
    assert_eq!(run.teardown().expect("teardown").cgroups_removed, 4);
}

#[test]
fn cleanup_stale_spares_live_runs() {
    let Some(cg) = v2_or_skip("cleanup_stale_spares_live_runs") else {
        return;
    };
    // A pid that is certainly dead: a reaped child's.
    let mut t = Command::new("true").spawn().expect("spawn true");
    let dead = t.id();
    t.wait().expect("reap true");
    assert!(!pid_alive(dead));
    let stale = DirGuard(cg.mount().join(format!("hookbench-{dead}-1")));
    let live = DirGuard(cg.mount().join(format!("hookbench-{}-2", std::process::id())));
    for g in [&stale, &live] {
        fs::create_dir(&g.0).expect("mkdir run dir");
        fs::create_dir(g.0.join("child")).expect("mkdir child");
    }
    let mut child = sleeper();
    fs::write(stale.0.join("child/cgroup.procs"), child.0.id().to_string()).expect("move sleeper");
    let removed = cleanup_stale(&cg).expect("cleanup_stale");
    assert!(removed.contains(&stale.0), "{removed:?}");
    assert!(!removed.iter().any(|p| p == &live.0));
    assert!(!stale.0.exists());
    assert!(live.0.join("child").is_dir(), "live run disturbed");
    let status = child.0.wait().expect("reap");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    let stats = remove_subtree(&live.0).expect("remove live dir");
    assert_eq!(stats.cgroups_removed, 2);
    assert!(!live.0.exists());
}

#[test]
fn teardown_without_cgroup_kill() {
    let Some((_, mut run)) = run_or_skip("teardown_without_cgroup_kill") else {
        return;
    };
    let paths = run.build(Shape::Balanced { fanout: 2 }, 7).expect("build");
    let mut kids = [sleeper(), sleeper(), sleeper()];
    for (k, p) in kids.iter().zip([&paths[1], &paths[5], &paths[6]]) {
        run.move_pid(k.0.id(), p).expect("move pid");
    }
    let root = run.root().to_path_buf();
    let stats = remove_subtree_with(&root, false, None).expect("SIGKILL teardown");
    assert_eq!((stats.cgroups_removed, stats.processes_killed), (8, 3));
    assert!(!root.exists());
    for k in &mut kids {
        assert_eq!(k.0.wait().expect("reap").signal(), Some(libc::SIGKILL));
    }
}

#[test]
fn run_dir_paths() {
    assert!(in_run_dir(Path::new("/sys/fs/cgroup/unified/hookbench-1-2/w0_0")));
    assert!(in_run_dir(Path::new("/sys/fs/cgroup/unified/hookbench-1-2")));
    assert!(!in_run_dir(Path::new("/sys/fs/cgroup/unified/hookbench-1-2/../x")));
    assert!(!in_run_dir(Path::new("./hookbench-1-2/x")));
    assert!(!in_run_dir(Path::new("/sys/fs/cgroup/unified/system.slice")));
}

/// Nested trees, named leaves, the tear-down without reads and its fallback, and settling.
///
/// Nested trees are a worker's, inside the run; the tear-down without reads is of a tree known to
/// be empty, its fallback for when a task is still there.
#[test]
fn nested_trees_and_unpopulated_teardown() {
    let Some((cg, mut run)) = run_or_skip("nested_trees_and_unpopulated_teardown") else {
        return;
    };
    let home = run.child("spawner-1").expect("named leaf");
    assert_eq!(home, run.root().join("spawner-1"));
    assert!(home.is_dir());
    for bad in ["", "a/b", "..", ".", "cgroup.procs", "x\0y"] {
        assert!(
            matches!(run.child(bad), Err(CgroupError::Invalid { .. })),
            "{bad:?} accepted"
        );
    }
    assert!(matches!(
        RunTree::create_under(cg.mount()),
        Err(CgroupError::OutsideRun { .. })
    ));
    // Known empty: removed by the rmdir loop alone.
    let mut nested = RunTree::create_under(run.root()).expect("nested tree");
    let nested_root = nested.root().to_path_buf();
    assert!(nested_root.starts_with(run.root()) && in_run_dir(&nested_root));
    let shape = Shape::Containers {
        children_per_container: 3,
    };
    assert_eq!(nested.build(shape, 50).expect("build").len(), 50);
    let stats = nested.teardown_unpopulated().expect("unpopulated teardown");
    assert_eq!((stats.cgroups_removed, stats.processes_killed), (51, 0));
    assert!(!nested_root.exists());
    assert_eq!(settle_dying(run.root(), KILL_TIMEOUT).expect("settle"), 0);
    // Not empty after all: the careful path takes over and kills what is there.
    let mut nested = RunTree::create_under(run.root()).expect("nested tree");
    let leaves = nested.build(shape, 9).expect("build");
    let mut child = sleeper();
    nested.move_pid(child.0.id(), &leaves[8]).expect("move pid");
    let stats = nested.teardown_unpopulated().expect("fallback teardown");
    assert_eq!((stats.processes_killed, stats.cgroups_removed), (1, 10));
    assert_eq!(child.0.wait().expect("reap").signal(), Some(libc::SIGKILL));
    // The run keeps only what it recorded.
    let stats = run.teardown().expect("teardown");
    assert_eq!((stats.cgroups_removed, stats.processes_killed), (2, 0));
}

#[test]
fn mkdir_floor_200() {
    let Some((_, run)) = run_or_skip("mkdir_floor_200") else {
        return;
    };
    let (mk, rm) = mkdir_floor(run.root(), 200).expect("mkdir_floor");
    assert!(mk > Duration::ZERO && rm > Duration::ZERO);
    eprintln!("mkdir_floor(200): mkdir {mk:?}, rmdir {rm:?}");
    assert_eq!(
        walk(run.root()).expect("walk").len(),
        1,
        "mkdir_floor left cgroups behind"
    );
    assert_eq!(run.teardown().expect("teardown").cgroups_removed, 1);
}

#[test]
fn wide_10k_timing() {
    let Some((cg, mut run)) = run_or_skip("wide_10k_timing") else {
        return;
    };
    let root = run.root().to_path_buf();
    let (paths, build) = run.build_timed(Shape::Wide, 10_000).expect("build 10k");
    assert_eq!(paths.len(), 10_000);
    let stats = run.teardown().expect("teardown");
    assert_eq!(stats.cgroups_removed, 10_001);
    assert!(!root.exists());
    let floor_run = RunTree::create(&cg).expect("create run tree");
    let (fmk, frm) = mkdir_floor(floor_run.root(), 10_000).expect("mkdir_floor 10k");
    floor_run.teardown().expect("teardown");
    eprintln!(
        "10,000 Wide cgroups: build {build:?}, teardown {:?}; mkdir_floor: mkdir {fmk:?}, rmdir {frm:?}",
        stats.duration
    );
}
