//! Tests of the worlds and attach benches: accounting, runs, metadata, attach work, bad params.

use super::*;

/// The default params with `programs`, `foreign` and `hooks` set.
fn params(programs: u32, foreign: u32, hooks: u32) -> Params {
    Params {
        programs,
        foreign,
        hooks,
        ..Params::default()
    }
}

/// `base` with the numeric axes `axes` (names of [`hookbench_model::NUMERIC_AXES`]) set.
fn with(base: Params, axes: &[(&str, u32)]) -> Params {
    let mut p = base;
    for &(name, value) in axes {
        assert!(p.set_axis(name, value), "unknown axis {name}");
    }
    p
}

/// The world of `m` for `p` (seed 0), which must build.
fn world(m: Mechanism, p: Params) -> Box<dyn World> {
    build_world(m, &p, 0).unwrap_or_else(|e| panic!("{m} with {p:?}: {e}"))
}

/// The attach bench of `m` for `p` (seed 0), which must build.
fn bench(m: Mechanism, p: Params) -> Box<dyn AttachBench> {
    build_attach_bench(m, &p, 0).unwrap_or_else(|e| panic!("{m} with {p:?}: {e}"))
}

fn acc(nodes: u64, progs: u64, handles: u64, lookups: u64) -> HookAccounting {
    HookAccounting {
        nodes_visited: nodes,
        programs_run: progs,
        handles_checked: handles,
        map_lookups: lookups,
    }
}

#[test]
fn chain_walk_visits_foreign_nodes() {
    for (n, f) in [(0, 0), (1, 0), (4, 12), (8, 64)] {
        let w = world(Mechanism::ChainWalk, with(params(n, f, 4), &[("working_set", 3)]));
        for s in 0..3 {
            assert_eq!(w.accounting(s), acc((n + f).into(), n.into(), 0, 0), "n={n} f={f}");
        }
    }
}

#[test]
fn indexed_mechanisms_ignore_foreign() {
    for m in [Mechanism::HookIndex, Mechanism::EffectiveArray] {
        for (n, f, depth) in [(4, 0, 1), (4, 12, 1), (10, 30, 3), (64, 64, 1)] {
            let w = world(m, with(params(n, f, 4), &[("depth", depth), ("working_set", 2)]));
            assert_eq!(
                w.accounting(1),
                acc(n.into(), n.into(), 0, 0),
                "{m} n={n} f={f} depth={depth}"
            );
        }
    }
}

#[test]
fn handle_loop_checks_every_container() {
    // cgroups = 0: one container per slot.
    let w = world(Mechanism::HandleLoop, with(params(3, 2, 2), &[("working_set", 5)]));
    assert_eq!(w.params().cgroups, 1 + 5 + 5);
    for s in 0..5 {
        assert_eq!(w.accounting(s), acc(3, 3, 3 * 5, 0));
    }
    // cgroups = 100, depth 2, 2 slots: containers = 100 - 1 - 4 = 95.
    let p = with(params(4, 0, 2), &[("cgroups", 100), ("depth", 2), ("working_set", 2)]);
    let w = world(Mechanism::HandleLoop, p);
    assert_eq!(w.params().cgroups, 100);
    assert_eq!(w.accounting(1), acc(4, 4, 4 * 95, 0));
}

#[test]
fn cgroup_id_map_is_one_lookup() {
    for cgroups in [0, 10, 1000] {
        let w = world(
            Mechanism::CgroupIdMap,
            with(params(5, 3, 3), &[("cgroups", cgroups), ("working_set", 2)]),
        );
        assert_eq!(w.accounting(0), acc(1 + 5, 5, 0, 1), "cgroups={cgroups}");
    }
    let w = world(Mechanism::CgroupIdMap, params(0, 0, 2));
    assert_eq!(w.accounting(0), acc(0, 0, 0, 0), "no programs: no global program");
}

#[test]
fn trigger_runs_each_program_as_expected() {
    for m in Mechanism::ALL {
        let w = world(m, with(params(3, 6, 3), &[("working_set", 4), ("cpus", 2)]));
        assert_eq!(w.slots(), 8);
        // Slots 0..8, slot 5 twice more: 100 hooks.
        let order: Vec<u32> = vec![0, 1, 2, 3, 4, 5, 6, 7, 5, 5];
        assert_eq!(w.trigger(&order, 100), 0, "all programs allow");
        for s in 0..8u32 {
            let rc = w.run_counts(s).unwrap();
            let hooks_as_s = if s == 5 { 30 } else { 10 };
            let expected = if m == Mechanism::HandleLoop {
                100 * 3
            } else {
                hooks_as_s * 3
            };
            assert_eq!(
                rc,
                RunCounts {
                    measured: expected,
                    foreign: 0
                },
                "{m} slot {s}"
            );
        }
        // Accounting runs the real walk once: counters agree with programs_run.
        let before = w.run_counts(2).unwrap().measured;
        let a = w.accounting(2);
        assert_eq!(w.run_counts(2).unwrap().measured - before, a.programs_run, "{m}");
    }
    let null = Params {
        body: Body::Null,
        ..params(2, 0, 1)
    };
    let w = world(Mechanism::ChainWalk, null);
    assert_eq!(w.run_counts(0), None);
    assert_eq!(w.trigger(&[], 10), 0);
}

#[test]
fn map_lookup_body_allows_and_null_body_runs() {
    for m in Mechanism::ALL {
        for body in [Body::Null, Body::MapLookup] {
            let w = world(
                m,
                Params {
                    body,
                    ..params(8, 0, 2)
                },
            );
            assert_eq!(w.trigger(&[0], 50), 0);
            assert_eq!(w.accounting(0).programs_run, 8, "{m} {body}");
        }
    }
}

fn component(w: &dyn World, name: &str) -> u64 {
    w.metadata_breakdown()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |x| x.1)
}

#[test]
fn breakdown_sums_to_total() {
    for m in Mechanism::ALL {
        let w = world(m, with(params(4, 4, 3), &[("tasks", 10), ("working_set", 3)]));
        let sum: u64 = w.metadata_breakdown().iter().map(|x| x.1).sum();
        assert_eq!(sum, w.metadata_bytes(), "{m}");
        assert!(w.metadata_bytes() > 0 && w.program_bytes() > 0, "{m}");
    }
}

#[test]
fn effective_metadata_grows_with_cgroups_times_hooks() {
    let bytes = |cgroups: u32, hooks: u32| {
        let w = world(
            Mechanism::EffectiveArray,
            with(params(4, 4, hooks), &[("cgroups", cgroups)]),
        );
        assert_eq!(w.params().cgroups, cgroups);
        component(w.as_ref(), "cgroup-bpf")
    };
    let per_cgroup_hook = (bytes(1002, 2) - bytes(2, 2)) as f64 / (1000.0 * 2.0);
    let per_cgroup_hook_8 = (bytes(1002, 8) - bytes(2, 8)) as f64 / (1000.0 * 8.0);
    // Vec capacity doubling makes the per-unit figure vary a little; it stays within 2x.
    assert!(
        per_cgroup_hook >= 16.0 && per_cgroup_hook_8 >= 16.0,
        "{per_cgroup_hook} {per_cgroup_hook_8}"
    );
    assert!(bytes(4002, 8) > 3 * bytes(1002, 8));
    assert!(bytes(1002, 8) > 3 * bytes(1002, 2));
}

#[test]
fn chain_metadata_shared_across_fork() {
    let chain = |axes: &[(&str, u32)]| world(Mechanism::ChainWalk, with(params(4, 4, 4), axes));
    let meta = |tasks: u32| chain(&[("tasks", tasks)]).metadata_bytes();
    let ptr = std::mem::size_of::<usize>() as u64;
    assert_eq!(meta(1001) - meta(1), 1000 * ptr, "each forked task adds one pointer");
    let nodes = component(chain(&[("tasks", 1001)]).as_ref(), "chain-nodes");
    let nodes1 = component(chain(&[]).as_ref(), "chain-nodes");
    assert_eq!(nodes, nodes1);
    // Slots are distinct tasks with their own chains: nodes grow with the working set.
    let w = chain(&[("working_set", 10)]);
    assert_eq!(component(w.as_ref(), "chain-nodes"), 10 * nodes1);
}

#[test]
fn attach_work_grows_with_descendants_for_cgroups_only() {
    let work = |m: Mechanism, cgroups: u32| {
        let mut b = bench(m, with(params(4, 0, 4), &[("cgroups", cgroups)]));
        let a = b.attach();
        let d = b.detach();
        (a, d)
    };
    assert_eq!(work(Mechanism::EffectiveArray, 0), (1, 1));
    assert_eq!(work(Mechanism::EffectiveArray, 100), (101, 101));
    assert_eq!(work(Mechanism::EffectiveArray, 1000), (1001, 1001));
    assert_eq!(work(Mechanism::ChainWalk, 0), (1, 1));
    assert_eq!(work(Mechanism::ChainWalk, 1000), (1, 1));
    assert_eq!(work(Mechanism::HookIndex, 1000), (4 + 5, 4 + 4));
    assert_eq!(work(Mechanism::HandleLoop, 1000), (5 + 1, 4));
    assert_eq!(work(Mechanism::CgroupIdMap, 1000), (5, 4));
}

#[test]
fn effective_attach_respects_cap() {
    let mut b = bench(Mechanism::EffectiveArray, with(params(62, 0, 1), &[("cgroups", 3)]));
    assert_eq!(b.attach(), 4);
    assert_eq!(b.attach(), 4);
    assert_eq!(b.attach(), 0, "64 attached: nothing more");
    assert_eq!(b.detach(), 4);
    assert_eq!(b.detach(), 4);
    assert_eq!(b.detach(), 0, "nothing outstanding");
    assert!(matches!(
        build_attach_bench(Mechanism::EffectiveArray, &params(64, 0, 1), 0),
        Err(BuildError::CgroupCap { max: 64, .. })
    ));
    let mut c = bench(Mechanism::ChainWalk, params(2, 0, 1));
    assert_eq!(c.detach(), 0, "the pre-installed chain is not undone");
}

#[test]
fn attach_benches_undo_only_their_own_attaches() {
    for m in Mechanism::ALL {
        let p = with(params(3, 2, 3), &[("cgroups", 2)]);
        let mut b = bench(m, p);
        assert_eq!((b.mechanism(), b.params()), (m, p));
        assert_eq!(b.detach(), 0, "{m}: nothing outstanding yet");
        let attached = (b.attach(), b.attach());
        assert!(attached.0 > 0 && attached.1 > 0, "{m}");
        assert!(b.detach() > 0 && b.detach() > 0, "{m}");
        assert_eq!(b.detach(), 0, "{m}: the pre-attached programs are not undone");
        assert_eq!(b.attach(), attached.0, "{m}: back to the built state");
    }
}

#[test]
fn bad_params_are_errors() {
    let bad = |m: Mechanism, p: Params| match build_world(m, &p, 0) {
        Ok(_) => panic!("{m} built with {p:?}"),
        Err(e) => e,
    };
    let base = params(1, 0, 2);
    // The errors whose message names the bad value.
    let named: [(Mechanism, Params, &[&str]); 6] = [
        (Mechanism::ChainWalk, params(200_000, 0, 2), &["programs = 200000"]),
        (Mechanism::ChainWalk, params(1, 1, 1), &["hooks = 1", "hooks >= 2"]),
        (
            Mechanism::EffectiveArray,
            with(base, &[("cgroups", 2_000_000)]),
            &["cgroups = 2000000"],
        ),
        (
            Mechanism::EffectiveArray,
            with(base, &[("working_set", 1000), ("cpus", 2000)]),
            &["working_set x cpus = 2000000"],
        ),
        (
            Mechanism::HandleLoop,
            with(base, &[("working_set", 0)]),
            &["working_set = 0"],
        ),
        (Mechanism::CgroupIdMap, with(base, &[("depth", 0)]), &["depth = 0"]),
    ];
    for (m, p, words) in named {
        let e = bad(m, p);
        for word in words {
            assert!(e.to_string().contains(word), "{m}: {e}");
        }
    }
    let e = bad(
        Mechanism::EffectiveArray,
        with(base, &[("cgroups", 5), ("working_set", 3), ("depth", 2)]),
    );
    assert_eq!(
        e,
        BuildError::TooFewCgroups {
            requested: 5,
            needed: 7,
            why: e_why(&e)
        }
    );
    assert!(e.to_string().contains("cgroups = 5") && e.to_string().contains("7"));
    let e = bad(Mechanism::EffectiveArray, params(65, 0, 2));
    assert!(
        matches!(
            e,
            BuildError::CgroupCap {
                needed: 65,
                min_depth: 2,
                ..
            }
        ),
        "{e}"
    );
    assert!(build_world(Mechanism::EffectiveArray, &with(params(65, 0, 2), &[("depth", 2)]), 0).is_ok());
    let e = bad(Mechanism::HookIndex, with(base, &[("tasks", 3), ("working_set", 4)]));
    assert_eq!(
        e,
        BuildError::TooFewTasks {
            requested: 3,
            needed: 4
        }
    );
    let e = bad(Mechanism::HandleLoop, with(base, &[("cgroups", 3), ("depth", 2)]));
    assert!(
        matches!(
            e,
            BuildError::TooFewCgroups {
                requested: 3,
                needed: 4,
                ..
            }
        ),
        "{e}"
    );
    let e = bad(
        Mechanism::ChainWalk,
        with(params(50_000, 0, 2), &[("working_set", 1000)]),
    );
    assert!(matches!(e, BuildError::TooLarge { max: 20_000_000, .. }), "{e}");
}

fn e_why(e: &BuildError) -> String {
    match e {
        BuildError::TooFewCgroups { why, .. } => why.clone(),
        _ => String::new(),
    }
}

#[test]
fn resolved_params() {
    let base = params(1, 0, 2);
    let w = world(
        Mechanism::EffectiveArray,
        with(base, &[("working_set", 3), ("depth", 2)]),
    );
    assert_eq!((w.params().cgroups, w.params().tasks), (7, 3));
    let p = with(base, &[("working_set", 3), ("cgroups", 50), ("tasks", 10)]);
    let w = world(Mechanism::EffectiveArray, p);
    assert_eq!((w.params().cgroups, w.params().tasks), (50, 10));
    let w = world(Mechanism::ChainWalk, with(base, &[("cgroups", 50)]));
    assert_eq!(
        (w.params().cgroups, w.params().tasks, w.mechanism()),
        (50, 1, Mechanism::ChainWalk)
    );
}
