//! The results schema on hand-made cells and fits: what a fit and a cell record, and how.

use super::*;

#[test]
fn a_fit_takes_its_figures_from_the_line_and_its_points_from_the_samples() {
    let xs = [4.0, 1.0, 1.0, 4.0, 2.0, 2.0];
    let ys = [13.0, 4.0, 6.0, 15.0, 7.0, 9.0];
    let line = hookbench_measure::stats::fit_linear(&xs, &ys).expect("fits");
    let subject = FitSubject {
        name: CellName {
            suite: "programs",
            backend: "model",
            model: ModelKind::TaskChain,
            mechanism: "chain-walk",
            metric: "hook_latency_ns",
        },
        x: "programs",
        x_axis: "programs",
    };
    let fit = Fit::new(subject, BTreeMap::new(), true, (&xs, &ys), &line, 0.05);
    assert_eq!((fit.n, fit.y.as_str(), fit.slope), (6, "overhead", line.slope));
    assert_eq!(fit.points, vec![[1.0, 5.0], [2.0, 8.0], [4.0, 14.0]]);
    assert_eq!(
        (fit.suite.as_str(), fit.x_axis.as_str(), fit.entry),
        ("programs", "programs", None)
    );
}

#[test]
fn non_finite_figures_survive_a_round_trip_as_nan() {
    let base = Baseline {
        mean: 1.0,
        stddev: 0.0,
        p50: 1.0,
        p90: 1.0,
        p99: 1.0,
        p999: 1.0,
        max: 1.0,
        trimmed_mean: 1.0,
        samples: 3,
    };
    let mut v = serde_json::to_value(base).expect("encodes");
    v["mean"] = serde_json::Value::Null;
    let back: Baseline = serde_json::from_value(v).expect("null reads as NaN");
    assert!(back.mean.is_nan());
    assert_eq!(back.p50, 1.0);
    // serde_json writes NaN as null; reading it back must not fail.
    let text = serde_json::to_string(&Baseline {
        mean: f64::NAN,
        p50: 2.0,
        samples: 1,
        ..base
    })
    .expect("encodes");
    assert!(text.contains("null"), "{text}");
    let back: Baseline = serde_json::from_str(&text).expect("reads");
    assert!(back.mean.is_nan() && back.p50 == 2.0);
}

#[test]
fn a_working_set_stands_against_the_caches_and_old_cells_have_none() {
    let ws = |bytes: u64, l2: Option<u64>, llc: Option<u64>| WorkingSetBytes {
        bytes,
        per_slot_bytes: bytes,
        method: "exact".into(),
        l2_bytes: l2,
        llc_bytes: llc,
    };
    let (l2, llc) = (Some(2 << 20), Some(480 << 20));
    assert_eq!(ws(1 << 20, l2, llc).level(), "within the L2");
    assert_eq!(ws(16 << 20, l2, llc).level(), "past the L2, within the LLC");
    assert_eq!(ws(600 << 20, l2, llc).level(), "past the LLC");
    assert_eq!(ws(600 << 20, None, llc).level(), "past the LLC");
    assert_eq!(ws(1, None, None).level(), "cache sizes unknown");
    // A cell saved before the field existed still reads, without one.
    let cell: Cell = serde_json::from_value(serde_json::json!({
        "id": "x", "suite": "s", "backend": "model", "model": "task-chain", "mechanism": "chain-walk",
        "metric": "hook_latency_ns", "unit": "ns",
        "params": {"programs": 1, "foreign": 0, "hooks": 1, "depth": 1, "cgroups": 0, "tasks": 1,
                   "working_set": 1, "cpus": 1, "body": "null"},
        "samples": 1, "mean": 1.0, "stddev": 0.0, "cv": 0.0, "p50": 1.0, "p90": 1.0, "p99": 1.0,
        "p999": 1.0, "max": 1.0}))
    .expect("an old cell reads");
    assert_eq!(cell.working_set, None);
    assert!(!serde_json::to_string(&cell)
        .expect("encodes")
        .contains("working_set\":{"));
}
