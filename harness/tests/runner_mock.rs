//! Runner tests with a mock backend of known answers: journaling, fits, skips, a failed run.
//!
//! The failed run fails mid-way and keeps what it measured.

use hookbench::backend::{base_cell, Backend, CellError, CellSpec, Measured};
use hookbench::output::{RunDir, CELLS_JSONL, EVIDENCE_FULL_TXT, EVIDENCE_TXT, RESULTS_JSON};
use hookbench::runner::{run, RunConfig};
use hookbench::suite::{Suite, SuiteMechanism};
use hookbench_reports::{Cell, Results};

/// Latency = 5 + 2 * programs + 0.5 * foreign ns, with deterministic +-0.1 ns noise per sample;
/// fails (fatally) on programs == `fail_at`, skips programs == `skip_at`.
///
/// With `depths`, it resolves `cgroups` from `depth` as the kernel backend's cgroup-bpf cells do
/// (latency = 5 + 3 * depth ns), measuring only the depths listed (skipping the others). With
/// `floorless`, each cell comes with a derived `<mechanism>-c` peer it could not measure (a C
/// floor that did not build), for the runner to record in `skipped`.
#[derive(Default)]
struct Mock {
    fail_at: Option<u32>,
    skip_at: Option<u32>,
    depths: Option<Vec<u32>>,
    floorless: bool,
    skipped: Vec<(String, String)>,
}

/// Samples around `truth`, +-0.1 ns alternately.
fn noisy(truth: f64, samples: usize) -> Vec<f64> {
    (0..samples)
        .map(|i| truth + if i % 2 == 0 { 0.1 } else { -0.1 })
        .collect()
}

impl Backend for Mock {
    fn name(&self) -> &'static str {
        "mock"
    }
    fn mechanisms<'s>(&self, suite: &'s Suite) -> &'s [SuiteMechanism] {
        suite.mechanisms_for("model")
    }
    fn measure(&mut self, spec: &CellSpec<'_>) -> Result<Vec<Measured>, CellError> {
        let p = spec.params;
        if let Some(depths) = &self.depths {
            if !depths.contains(&p.depth) {
                return Err(CellError::Skip(format!("mock: depth {} not measured", p.depth)));
            }
        }
        if self.floorless {
            self.skipped = vec![(
                format!("{}-c", spec.mechanism.name),
                "the C floor was not built: no C compiler".to_string(),
            )];
        }
        if Some(p.programs) == self.fail_at {
            return Err(CellError::Fatal(anyhow::anyhow!("mock failure")));
        }
        if Some(p.programs) == self.skip_at {
            return Err(CellError::Skip("mock limit reached: programs".into()));
        }
        let scale = if spec.mechanism.name == "chain-walk" { 2.0 } else { 1.0 };
        let truth = 5.0 + scale * f64::from(p.programs) + 0.5 * f64::from(p.foreign);
        let points = noisy(truth, spec.samples);
        let summary = hookbench::measure::stats::Summary::from_values_ns(&points);
        let mut cell = base_cell(
            spec,
            "mock",
            &spec.mechanism.name,
            spec.suite.metric.as_str(),
            "ns",
            p,
            &summary,
        );
        cell.repetitions = vec![truth];
        let mut m = Measured { cell, points };
        if self.depths.is_some() {
            let truth = 5.0 + 3.0 * f64::from(p.depth);
            m.cell.params.cgroups = p.depth;
            m.cell.mean = truth;
            m.points = noisy(truth, m.points.len());
        }
        Ok(vec![m])
    }
    fn take_skipped(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.skipped)
    }
}

/// Runs `config` with `mock` as the only backend into a new run directory `<tmp>/run`.
fn run_mock(mock: Mock, config: &RunConfig) -> (tempfile::TempDir, anyhow::Result<Results>) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut dir = RunDir::create(&tmp.path().join("run")).expect("run dir");
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(mock)];
    let results = run(config, &mut backends, &mut dir);
    (tmp, results)
}

fn suite() -> Suite {
    Suite::parse(
        r#"name = "mock"
claim = 2
hypothesis = "slopes are what the mock says"
metric = "hook_latency_ns"
[backend.model]
mechanisms = ["chain-walk", "effective-array"]
[[fit]]
axis = "programs"
[profiles.smoke]
samples = 10
repetitions = 1
sweep.programs = [0, 4, 8, 16]
sweep.foreign = [0, 32]
"#,
        "mock.toml",
    )
    .expect("suite parses")
}

fn config() -> RunConfig {
    RunConfig {
        suites: vec![suite()],
        profile: "smoke".into(),
        command_line: vec!["hookbench".into(), "run".into()],
        environment: serde_json::json!({"kernel_release": "test", "cpu_model": "mock", "nr_cpus": 1,
            "privileged": false, "clock": "mock", "clock_overhead_ns": 1.0}),
        progress: false,
        stop: Default::default(),
        order_seed: 42,
    }
}

#[test]
fn fits_recover_the_mock_slopes_per_group() {
    let (tmp, results) = run_mock(Mock::default(), &config());
    let results = results.expect("run");
    assert!(results.complete);
    assert_eq!(results.cells.len(), 2 * 8);
    // One fit per mechanism per foreign value.
    assert_eq!(results.fits.len(), 4);
    for f in &results.fits {
        let want = if f.mechanism == "chain-walk" { 2.0 } else { 1.0 };
        assert!((f.slope - want).abs() < 0.05, "{} slope {}", f.mechanism, f.slope);
        assert!(f.slope_ci95[0] < want && want < f.slope_ci95[1], "{:?}", f.slope_ci95);
        let foreign = f.fixed["foreign"].as_f64().expect("foreign fixed");
        assert!(
            (f.intercept - (5.0 + 0.5 * foreign)).abs() < 0.1,
            "intercept {}",
            f.intercept
        );
        assert_eq!(f.x, "programs");
        assert_eq!(f.n, 40);
    }
    let saved = Results::read(&tmp.path().join("run").join(RESULTS_JSON)).expect("results.json reads back");
    assert_eq!(saved, results);
    let journal = std::fs::read_to_string(tmp.path().join("run").join(CELLS_JSONL)).expect("journal");
    assert_eq!(journal.lines().count(), 16);
    let evidence = std::fs::read_to_string(tmp.path().join("run").join(EVIDENCE_FULL_TXT)).expect("evidence");
    assert!(evidence.lines().all(|l| l.chars().count() <= 72));
    assert!(evidence.contains("hook (ns) vs programs"), "{evidence}");
    let row = evidence
        .lines()
        .find(|l| l.trim_start().starts_with("chain-walk ") && l.contains("+-"))
        .unwrap_or_else(|| panic!("no table row for chain-walk:\n{evidence}"));
    // The label may carry qualifiers (`chain-walk foreign=4`); the slope is the first number.
    let slope: f64 = row
        .split_whitespace()
        .find_map(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no slope in {row}"));
    assert!((slope - 2.0).abs() < 0.05, "{row}");
}

#[test]
fn a_skip_is_recorded_and_the_run_goes_on() {
    let mock = Mock {
        skip_at: Some(8),
        ..Mock::default()
    };
    let results = run_mock(mock, &config()).1.expect("run");
    assert!(results.complete);
    assert_eq!(results.cells.len(), 12);
    assert_eq!(results.skipped.len(), 4);
    assert!(results.skipped.iter().all(|s| s.reason.contains("mock limit reached")));
}

#[test]
fn a_failed_run_keeps_what_it_measured() {
    let mock = Mock {
        fail_at: Some(16),
        ..Mock::default()
    };
    let (tmp, results) = run_mock(mock, &config());
    let run_dir = tmp.path().join("run");
    let err = results.expect_err("fails");
    assert!(format!("{err:#}").contains("mock failure"));
    // The cells measured before the first programs = 16 cell (in the seeded order) are kept.
    let journal = std::fs::read_to_string(run_dir.join(CELLS_JSONL)).expect("journal");
    let cells: Vec<Cell> = journal
        .lines()
        .map(|l| serde_json::from_str(l).expect("each journal line is a cell"))
        .collect();
    assert!(!cells.is_empty() && cells.len() < 16, "{} cells", cells.len());
    assert!(cells.iter().all(|c| c.params.programs != 16));
    let saved = Results::read(&run_dir.join(RESULTS_JSON)).expect("partial results.json reads");
    assert!(!saved.complete);
    assert_eq!(saved.cells, cells);
    assert!(!run_dir.join(EVIDENCE_TXT).exists() && !run_dir.join(EVIDENCE_FULL_TXT).exists());
}

/// The order of a sweep is a seeded shuffle, saved with the run.
///
/// The same seed gives the same order, another seed another one, every cell records its place,
/// and the seed is saved.
#[test]
fn sweep_points_run_in_a_seeded_random_order() {
    let order_of = |seed: u64| -> Vec<String> {
        let config = RunConfig {
            order_seed: seed,
            ..config()
        };
        let results = run_mock(Mock::default(), &config).1.expect("run");
        assert_eq!(results.order_seed, seed);
        let orders: Vec<u64> = results.cells.iter().map(|c| c.order.expect("order")).collect();
        assert_eq!(orders, (0..16).collect::<Vec<u64>>());
        assert!(results.cells.iter().all(|c| c.measured_at_s.is_some()));
        results.cells.iter().map(|c| c.id.clone()).collect()
    };
    let a = order_of(1);
    assert_eq!(a, order_of(1));
    let b = order_of(2);
    assert_ne!(a, b);
    let (mut sa, mut sb) = (a.clone(), b);
    sa.sort();
    sb.sort();
    assert_eq!(sa, sb, "the same cells, in another order");
    // Not the sweep order: programs do not come out ascending for one mechanism.
    let ascending = a
        .iter()
        .filter(|id| id.contains("/chain-walk/"))
        .collect::<Vec<_>>()
        .windows(2)
        .all(|w| w[0] <= w[1]);
    assert!(!ascending, "{a:?}");
}

/// A mock measuring only `depths`, with cgroups following depth.
fn depth_mock(depths: &[u32]) -> Mock {
    Mock {
        depths: Some(depths.to_vec()),
        ..Mock::default()
    }
}

fn depth_config(sweep: &str) -> RunConfig {
    let suite = Suite::parse(
        &format!(
            "name = \"depth\"\nhypothesis = \"h\"\nmetric = \"hook_latency_ns\"\n[backend.model]\n\
             mechanisms = [\"effective-array\"]\n[[fit]]\naxis = \"depth\"\n[profiles.smoke]\nsamples = 10\n\
             repetitions = 1\n{sweep}\n"
        ),
        "depth.toml",
    )
    .expect("suite parses");
    RunConfig {
        suites: vec![suite],
        ..config()
    }
}

#[test]
fn a_fit_over_depth_ignores_the_cgroups_the_backend_derives_from_depth() {
    let config = depth_config("sweep.depth = [1, 2, 4, 8]");
    let results = run_mock(depth_mock(&[1, 2, 4, 8]), &config).1.expect("run");
    assert_eq!(results.fits.len(), 1, "skipped: {:?}", results.skipped);
    let f = &results.fits[0];
    assert!((f.slope - 3.0).abs() < 0.05, "slope {}", f.slope);
    assert_eq!(f.n, 40);
    assert!(!f.fixed.contains_key("cgroups"), "cgroups follows depth: {:?}", f.fixed);
    assert_eq!(results.cells_of(f).len(), 4);
    assert!(results.skipped.is_empty(), "{:?}", results.skipped);
}

/// Asserts that `results` have no fit; returns the skip that says why there is none over depth.
fn no_fit_over_depth(results: &Results) -> &hookbench_reports::Skipped {
    assert!(results.fits.is_empty());
    results
        .skipped
        .iter()
        .find(|s| s.reason.contains("no fit of hook_latency_ns over depth"))
        .unwrap_or_else(|| panic!("no fit reason in {:?}", results.skipped))
}

#[test]
fn a_fit_that_cannot_be_made_is_reported_with_the_reason() {
    // Only one depth measured: no line through one x.
    let (tmp, results) = run_mock(depth_mock(&[2]), &depth_config("sweep.depth = [1, 2, 4]"));
    let results = results.expect("run");
    let why = no_fit_over_depth(&results);
    let reason = &why.reason;
    assert!(reason.contains("every measured cell has depth = 2"), "{reason}");
    assert_eq!(why.mechanism, "effective-array");
    assert_eq!(why.suite.as_deref(), Some("depth"));
    let evidence = std::fs::read_to_string(tmp.path().join("run").join(EVIDENCE_FULL_TXT)).expect("evidence");
    assert!(evidence.contains("no fit of hook_latency_ns over depth"), "{evidence}");

    // The suite sweeps cgroups too, but the backend ties it to depth: no two cells differ in
    // depth alone, and the reason names the tied axis.
    let config = depth_config("sweep.depth = [1, 2, 4]\nsweep.cgroups = [1, 2, 4]");
    let results = run_mock(depth_mock(&[1, 2, 4]), &config).1.expect("run");
    let reason = &no_fit_over_depth(&results).reason;
    assert!(
        reason.contains("also differ in cgroups") && reason.contains("(3 of 3 groups)"),
        "{reason}"
    );
}

#[test]
fn derived_cells_a_backend_could_not_measure_are_skipped_with_the_reason() {
    let mock = Mock {
        floorless: true,
        ..Mock::default()
    };
    let results = run_mock(mock, &config()).1.expect("run");
    assert_eq!(results.cells.len(), 2 * 8, "the mechanism's own cells are kept");
    let floors: Vec<_> = results.skipped.iter().filter(|s| s.mechanism.ends_with("-c")).collect();
    assert_eq!(floors.len(), 2 * 8, "one skip per measured cell");
    for s in floors {
        assert!(
            s.reason.contains("no C compiler") && s.reason.starts_with("mock/mock/") && s.reason.contains("-c/"),
            "{}",
            s.reason
        );
        assert_eq!(s.suite.as_deref(), Some("mock"));
    }
}
