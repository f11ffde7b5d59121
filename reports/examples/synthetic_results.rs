//! Writes a small synthetic schema-2 `results.json`, the fixture of the renderers' golden tests.
//!
//! The fixture (`tests/data/results-smoke.json`) imitates a smoke run of the model and kernel
//! backends on a 2-vCPU Xeon VM (the environment is that machine's), but every sample is drawn from
//! a seeded generator: cells' raw percentiles, interleaved baselines and overheads, fits (with
//! lack-of-fit, segments and entry costs), drift and claims are all computed from those samples
//! with the measurement crate, exactly as a run computes them, so the file is self-consistent.
//! Decompositions and validity flags are set by hand, one disagreement and a few flags included.
//! Replace the fixture with a real run's `results.json` when one is at hand (then re-accept the
//! snapshot):
//!
//! ```sh
//! cargo run -p hookbench-reports --example synthetic_results > reports/tests/data/results-smoke.json
//! ```

use hookbench_measure::drift::drift;
use hookbench_measure::estimate::{overhead, trimmed_mean_with_se, Estimate, TRIM};
use hookbench_measure::fitcheck::entry_cost;
use hookbench_measure::stats::{fit_linear, Summary};
use hookbench_model::{Body, ModelKind, Params};
use hookbench_reports::claims::HYPOTHESES;
use hookbench_reports::schema::{
    Agreement, Baseline, Cell, CellName, Decomposition, DriftEntry, Fit, FitSubject, Overhead, PercentileBasis,
    Validity, ValidityFlag,
};
use hookbench_reports::{Results, Skipped, SuiteInfo, SCHEMA};
use std::collections::BTreeMap;
use std::error::Error;

/// splitmix64: small, seeded, the same everywhere.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unif(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn gauss(&mut self) -> f64 {
        let (u1, u2) = (self.unif(), self.unif());
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// `n` latencies around `center` with spread `sd`, like timed samples of one cell.
    ///
    /// A rare interrupt tail is added, and none is below half the center.
    fn latencies(&mut self, n: usize, center: f64, sd: f64) -> Vec<f64> {
        (0..n)
            .map(|_| {
                let tail = if self.unif() < 0.01 {
                    sd * (5.0 + 20.0 * self.unif())
                } else {
                    0.0
                };
                (center + sd * self.gauss() + tail).max(center / 2.0)
            })
            .collect()
    }
}

/// One cell to measure: where it is, and the cost it should show.
struct Spec {
    suite: &'static str,
    backend: &'static str,
    model: ModelKind,
    mechanism: &'static str,
    metric: &'static str,
    params: Params,
    /// Cost over the baseline (or the whole cost without one), ns.
    cost_ns: f64,
    timing: Timing,
    flags: Vec<ValidityFlag>,
}

/// How a cell is timed: its baseline, spread, batch and sample counts.
#[derive(Clone, Copy)]
struct Timing {
    /// The trigger's own cost (the baseline), ns; `None` for cells without a baseline.
    native_ns: Option<f64>,
    /// Per-sample spread, ns.
    sd_ns: f64,
    batch_k: u64,
    samples: usize,
    repetitions: usize,
    /// Baseline drift over the run, fraction per second.
    drift_per_s: f64,
}

impl Timing {
    /// The timing of `counts`: `samples` samples of `batch_k` calls over `repetitions`.
    ///
    /// They spread `sd_ns` around the baseline `native_ns` (if any), which drifts `drift_per_s`.
    fn of(native_ns: Option<f64>, sd_ns: f64, counts: (u64, usize, usize), drift_per_s: f64) -> Timing {
        let (batch_k, samples, repetitions) = counts;
        Timing {
            native_ns,
            sd_ns,
            batch_k,
            samples,
            repetitions,
            drift_per_s,
        }
    }
}

/// Where a cell is: suite, backend, mechanism, its model and metric.
type Place = (&'static str, &'static str, &'static str, ModelKind, &'static str);

impl Spec {
    /// A cell at `place` and `params` costing `cost_ns`, timed as `timing`, with validity `flags`.
    fn at(place: Place, params: Params, cost_ns: f64, timing: Timing, flags: Vec<ValidityFlag>) -> Spec {
        let (suite, backend, mechanism, model, metric) = place;
        Spec {
            suite,
            backend,
            model,
            mechanism,
            metric,
            params,
            cost_ns,
            timing,
            flags,
        }
    }
}

/// A scenario point: `[programs, foreign, hooks, depth, cgroups, tasks, working set]`, one CPU.
fn params(axes: [u32; 7], body: Body) -> Params {
    let [programs, foreign, hooks, depth, cgroups, tasks, working_set] = axes;
    Params {
        programs,
        foreign,
        hooks,
        depth,
        cgroups,
        tasks,
        working_set,
        cpus: 1,
        body,
    }
}

/// The validity flag `code` (with `why`) of the point `x == at`, none at the others.
fn flag_at(x: u32, at: u32, code: &str, why: &str) -> Vec<ValidityFlag> {
    if x != at {
        return Vec::new();
    }
    vec![ValidityFlag {
        code: code.to_string(),
        why: why.to_string(),
    }]
}

fn specs() -> Vec<Spec> {
    use ModelKind::{CgroupEffective, TaskChain};
    let mut out = Vec::new();
    let hook = "hook_latency_ns";
    let model_timing = Timing::of(Some(2.06), 0.35, (16, 300, 2), 0.0);
    let model_hook = |mechanism, model, suite, p: Params, cost: f64, flags: Vec<ValidityFlag>| {
        Spec::at((suite, "model", mechanism, model, hook), p, cost, model_timing, flags)
    };
    // Claim 1, model: the chain walks foreign nodes, the effective array does not.
    for x in [0, 8, 16, 32] {
        let p = params([4, x, 8, 2, 0, 1, 1], Body::Counter);
        let c = 4.0 * 4.87 + 0.75 * f64::from(x);
        out.push(model_hook("chain-walk", TaskChain, "foreign", p, c, vec![]));
        let p = params([4, x, 8, 2, 3, 1, 1], Body::Counter);
        out.push(model_hook(
            "effective-array",
            CgroupEffective,
            "foreign",
            p,
            1.5 + 4.0 * 5.03,
            vec![],
        ));
    }
    // Claim 2, model.
    for x in [0, 8, 16, 32] {
        let flags = flag_at(
            x,
            0,
            "expensive-clock",
            "the clock-read pair is 9.1% of a sample (limit 5%): K was capped at 16",
        );
        let p = params([x, 0, 4, 2, 0, 1, 1], Body::Counter);
        let c = 0.5 + 4.87 * f64::from(x);
        out.push(model_hook("chain-walk", TaskChain, "programs", p, c, flags));
        let p = params([x, 0, 4, 2, 3, 1, 1], Body::Counter);
        let c = 1.5 + 5.03 * f64::from(x);
        out.push(model_hook("effective-array", CgroupEffective, "programs", p, c, vec![]));
    }
    // Claim 6, model: slopes at W = 1 and W = 2048.
    for (w, chain, effective) in [(1, 5.5, 5.2), (2048, 7.9, 5.9)] {
        for x in [0, 8, 16, 32] {
            let p = params([x, 0, 4, 2, 0, w, w], Body::Counter);
            let c = 0.5 + chain * f64::from(x);
            out.push(model_hook("chain-walk", TaskChain, "working-set", p, c, vec![]));
            let p = params([x, 0, 4, 2, 2 * w + 1, w, w], Body::Counter);
            let c = 1.5 + effective * f64::from(x);
            out.push(model_hook(
                "effective-array",
                CgroupEffective,
                "working-set",
                p,
                c,
                vec![],
            ));
        }
    }
    // Claim 4: attach against descendants (raw, one operation per sample).
    let attach = |backend, mechanism, model, descendants: u32, cost: f64, sd_ns: f64| {
        let timing = Timing::of(None, sd_ns, (1, 120, 2), 0.0);
        let p = params([4, 0, 4, 1, descendants, 0, 1], Body::Counter);
        Spec::at(
            ("attach", backend, mechanism, model, "attach_latency_ns"),
            p,
            cost,
            timing,
            vec![],
        )
    };
    for d in [0, 64, 256, 1024] {
        let x = f64::from(d);
        let (cost, sd) = (900.0 + 111.5 * x, 20.0 + 0.03 * 111.5 * x);
        out.push(attach("model", "effective-array", CgroupEffective, d, cost, sd));
        out.push(attach("model", "chain-walk", TaskChain, d, 45.0, 3.0));
        let (cost, sd) = (2100.0 + 180.0 * x, 150.0 + 0.05 * 180.0 * x);
        out.push(attach("kernel", "cgroup-bpf", CgroupEffective, d, cost, sd));
        out.push(attach("kernel", "seccomp-arg-load", TaskChain, d, 1900.0, 150.0));
    }
    // Kernel hooks on getsockname() (one call per sample: 400 ns against a 14.6 ns clock pair).
    let sock_timing = Timing::of(Some(402.0), 25.0, (1, 2000, 2), 0.0001);
    let sock = |suite, mechanism, model, p: Params, cost: f64, flags: Vec<ValidityFlag>| {
        Spec::at((suite, "kernel", mechanism, model, hook), p, cost, sock_timing, flags)
    };
    for x in [0, 8, 16, 32] {
        let p = params([4, x, 8, 2, 2, 1, 1], Body::Null);
        let c = 30.0 + 4.0 * 6.1 + 0.02 * f64::from(x);
        out.push(sock("foreign", "cgroup-bpf", CgroupEffective, p, c, vec![]));
    }
    for x in [0, 8, 16, 32] {
        let xf = f64::from(x);
        let p = params([x, 0, 4, 2, 0, 1, 1], Body::Null);
        let seccomp = if x == 0 { 0.0 } else { 18.0 + 20.6 * xf };
        out.push(sock("programs", "seccomp-getsockname", TaskChain, p, seccomp, vec![]));
        let flags = flag_at(
            x,
            16,
            "cpu-migration",
            "3 CPU migrations during the samples (pinned to CPU 1)",
        );
        let p = params([x, 0, 4, 2, 2, 1, 1], Body::Null);
        let cgroup = if x == 0 { 0.0 } else { 30.0 + 6.1 * xf };
        out.push(sock("programs", "cgroup-bpf", CgroupEffective, p, cgroup, flags));
    }
    // Claim 7: seccomp filters on getppid() (88 ns: K = 4 for a 5% clock share); the
    // argument-loading cost bends above 8 filters, the number-only cost stays at the cache check.
    let nr_only = [
        (1, 0.6),
        (2, 2.4),
        (4, 1.2),
        (8, 1.0),
        (16, 1.3),
        (32, 0.8),
        (64, 1.1),
        (128, 1.2),
    ];
    for (x, flat) in nr_only {
        let xf = f64::from(x);
        let arg = if x <= 8 {
            15.0 + 20.8 * xf
        } else {
            15.0 + 20.8 * 8.0 + 26.0 * (xf - 8.0)
        };
        let seccomp = |mechanism, cost: f64, flags: Vec<ValidityFlag>| {
            let timing = Timing::of(Some(88.1), 4.0 + 0.02 * cost, (4, 1000, 5), 0.001);
            let p = params([x, 0, 1, 1, 0, 1, 1], Body::Null);
            Spec::at(
                ("seccomp", "kernel", mechanism, TaskChain, hook),
                p,
                cost,
                timing,
                flags,
            )
        };
        let flags = flag_at(
            x,
            128,
            "mitigation-differs",
            "Speculation_Store_Bypass 'thread force mitigated' against the baseline's 'thread vulnerable'",
        );
        out.push(seccomp("seccomp-arg-load", arg, flags));
        out.push(seccomp("seccomp-nr-only", flat, vec![]));
    }
    out
}

/// A measured cell, with its overhead samples (each sample less its baseline's mean) for fits.
struct Measured {
    cell: Cell,
    ys: Vec<f64>,
    overhead: Option<Estimate>,
}

fn measure(rng: &mut Rng, s: &Spec, order: u64, at_s: f64) -> Result<Measured, Box<dyn Error>> {
    let t = s.timing;
    let native = t.native_ns.map(|n| n * (1.0 + t.drift_per_s * at_s));
    let center = native.unwrap_or(0.0) + s.cost_ns;
    let values = rng.latencies(t.samples, center, t.sd_ns);
    let base_values = native.map(|n| rng.latencies(t.samples, n, t.sd_ns * 0.9));
    let sum = Summary::from_values_ns(&values);
    let reps: Vec<f64> = values
        .chunks(t.samples.div_ceil(t.repetitions))
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect();
    let (baseline, over, ys, est) = match &base_values {
        Some(b) => {
            let bs = Summary::from_values_ns(b);
            let o = overhead(&values, b)?;
            let baseline = Baseline {
                mean: bs.mean_ns,
                stddev: bs.stddev_ns,
                p50: bs.p50_ns,
                p90: bs.p90_ns,
                p99: bs.p99_ns,
                p999: bs.p999_ns,
                max: bs.max_ns,
                trimmed_mean: trimmed_mean_with_se(b, TRIM).map_or(bs.mean_ns, |e| e.value),
                samples: bs.samples,
            };
            let over = Overhead {
                mean_ns: o.mean.value,
                mean_ci95_ns: o.mean.ci(0.95),
                p50_ns: o.p50.value,
                p50_ci95_ns: o.p50.ci(0.95),
            };
            let ys = values.iter().map(|v| v - bs.mean_ns).collect();
            (Some(baseline), Some(over), ys, Some(o.mean))
        }
        None => (None, None, values.clone(), None),
    };
    let kernel = s.backend == "kernel";
    let validity = Validity {
        flags: s.flags.clone(),
        notes: Vec::new(),
        speculation_store_bypass: kernel.then(|| "thread vulnerable".to_string()),
        speculation_indirect_branch: kernel.then(|| "conditional enabled".to_string()),
        baseline_speculation: (kernel && baseline.is_some())
            .then(|| ["thread vulnerable".to_string(), "conditional enabled".to_string()]),
        cpu_migrations: Some(if s.flags.iter().any(|f| f.code == "cpu-migration") {
            3
        } else {
            0
        }),
        clock_share: Some(14.6 / (t.batch_k as f64 * center.max(1.0))),
        program_runs: None,
    };
    let name = CellName {
        suite: s.suite,
        backend: s.backend,
        model: s.model,
        mechanism: s.mechanism,
        metric: s.metric,
    };
    let cell = Cell {
        percentile_basis: if t.batch_k > 1 {
            PercentileBasis::BatchMeans
        } else {
            PercentileBasis::Calls
        },
        baseline,
        overhead: over,
        batch_k: (t.batch_k > 1).then_some(t.batch_k),
        repetitions: reps,
        validity,
        order: Some(order),
        measured_at_s: Some(at_s),
        ..Cell::from_summary(name, "ns", s.params, &sum)
    };
    Ok(Measured {
        cell,
        ys,
        overhead: est,
    })
}

/// Which fit: (suite, backend, mechanism, metric).
type FitKey<'a> = (&'a str, &'a str, &'a str, &'a str);

/// The fit of the cells `key` names, over `x` (read from `x_axis`), as the runner makes it.
///
/// The cells are one mechanism's of one suite, backend and metric, at the fixed point `same`
/// accepts.
fn fit(
    all: &[Measured],
    key: FitKey,
    x: &str,
    x_axis: &str,
    same: impl Fn(&Cell) -> bool,
) -> Result<Fit, Box<dyn Error>> {
    let (suite, backend, mechanism, metric) = key;
    let mine: Vec<&Measured> = all
        .iter()
        .filter(|m| {
            let c = &m.cell;
            c.suite == suite && c.backend == backend && c.mechanism == mechanism && c.metric == metric && same(c)
        })
        .collect();
    let xv = |m: &Measured| m.cell.params.axis(x_axis).map_or(f64::NAN, f64::from);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for m in &mine {
        xs.extend(std::iter::repeat_n(xv(m), m.ys.len()));
        ys.extend(&m.ys);
    }
    let line = fit_linear(&xs, &ys)?;
    let mut with_entry: Vec<(f64, Estimate)> = mine
        .iter()
        .filter(|m| xv(m) >= 1.0)
        .filter_map(|m| m.overhead.map(|o| (xv(m), o)))
        .collect();
    with_entry.sort_by(|a, b| a.0.total_cmp(&b.0));
    let entry = match with_entry.as_slice() {
        [(x1, o1), (x2, o2), ..] => Some(entry_cost(*x1, *o1, *x2, *o2)),
        _ => None,
    };
    let first = &mine.first().ok_or("no cell for a fit")?.cell;
    let mut fixed = BTreeMap::new();
    for axis in hookbench_model::NUMERIC_AXES.iter().filter(|a| **a != x_axis) {
        if let Some(v) = first.params.axis(axis) {
            fixed.insert(axis.to_string(), serde_json::json!(v));
        }
    }
    fixed.insert("body".to_string(), serde_json::json!(first.params.body.as_str()));
    let subject = FitSubject {
        name: CellName {
            suite,
            backend,
            model: first.model,
            mechanism,
            metric,
        },
        x,
        x_axis,
    };
    let overhead = first.baseline.is_some();
    Ok(Fit {
        entry,
        ..Fit::new(subject, fixed, overhead, (&xs, &ys), &line, 0.05)
    })
}

fn suite(name: &str, claim: Option<u32>, hypothesis: &str, x: &str, margin: Option<(f64, f64)>) -> SuiteInfo {
    SuiteInfo {
        name: name.to_string(),
        claim,
        hypothesis: hypothesis.to_string(),
        fit_x: vec![x.to_string()],
        margin: margin.map(|(abs, rel)| hookbench_measure::estimate::Margin { abs, rel }),
    }
}

/// A kernel decomposition of `(mechanism, method)` and how it agrees with the other method's.
///
/// The parts are `(native, (entry, clamped))` + N x `(per program, its 95% CI)` over N in
/// `range`, adding up within `max_relative_error`.
fn decomposition(
    (mechanism, method): (&str, &str),
    (native_ns, (entry_ns, entry_clamped)): (f64, (f64, bool)),
    (per_program_ns, per_program_ci95): (f64, [f64; 2]),
    (range, max_relative_error): ([u32; 2], f64),
    agreement: Agreement,
) -> Decomposition {
    Decomposition {
        backend: "kernel".into(),
        mechanism: mechanism.into(),
        method: method.into(),
        native_ns,
        entry_ns,
        entry_clamped,
        per_program_ns,
        per_program_ci95,
        range,
        max_relative_error,
        agreement: Some(agreement),
    }
}

fn environment() -> serde_json::Value {
    serde_json::json!({
        "bpf_jit": {"available": true, "reason": null, "value": "1"},
        "clock": "tsc",
        "clock_info": {"kind": "tsc", "overhead_ns": 14.6, "tsc_hz": 2_599_998_889.9},
        "clock_overhead_ns": 14.6,
        "cpu_model": "Intel(R) Xeon(R) Processor",
        "governor": {"available": false, "reason": "cannot read /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor: ENOENT (No such file or directory): no cpufreq driver for cpu0 (usual in VMs): the CPU frequency is not under this kernel's control", "value": null},
        "hostname": "example",
        "kernel_config": {"available": true, "reason": null, "value": "/proc/config.gz"},
        "kernel_config_options": [["CONFIG_BPF_LSM", "y"], ["CONFIG_SECURITY_LANDLOCK", "y"], ["CONFIG_CGROUP_BPF", "y"],
                                  ["CONFIG_SECCOMP_FILTER", "y"], ["CONFIG_BPF_JIT", "y"], ["CONFIG_DEBUG_INFO_BTF", "y"]],
        "kernel_release": "6.18.44-fc-v669",
        "lsm_list": {"available": true, "reason": null, "value": "lockdown,capability,landlock,bpf"},
        "machine": "x86_64",
        "mitigations": [["meltdown", "Not affected"], ["retbleed", "Vulnerable"], ["spec_store_bypass", "Vulnerable"],
                        ["spectre_v1", "Mitigation: usercopy/swapgs barriers and __user pointer sanitization"],
                        ["spectre_v2", "Mitigation: Retpolines; STIBP: disabled; RSB filling; PBRSB-eIBRS: Not affected; BHI: Retpoline"]],
        "nr_cpus": 2,
        "privileged": true,
        "virtualization": {"available": true, "reason": null, "value": "hypervisor CPU flag"}
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let seed = 0x5eed_2026_u64;
    let mut rng = Rng(seed);
    let specs = specs();
    // The run's order: a seeded shuffle (Fisher-Yates), 0.9 s per cell.
    let mut order: Vec<usize> = (0..specs.len()).collect();
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let all: Vec<Measured> = order
        .iter()
        .enumerate()
        .map(|(pos, &i)| measure(&mut rng, &specs[i], pos as u64, 0.5 + 0.9 * pos as f64))
        .collect::<Result<_, _>>()?;
    let hook = "hook_latency_ns";
    // Every fit, in the runner's order: (suite, backend, mechanism, metric), x and its axis, and
    // the working set of its cells (`None`: all of them).
    let mut wanted: Vec<(FitKey, &str, &str, Option<u32>)> = Vec::new();
    for m in ["chain-walk", "effective-array"] {
        wanted.push((("foreign", "model", m, hook), "foreign", "foreign", None));
        wanted.push((("programs", "model", m, hook), "programs", "programs", None));
        for w in [1, 2048] {
            wanted.push((("working-set", "model", m, hook), "programs", "programs", Some(w)));
        }
    }
    wanted.push((("foreign", "kernel", "cgroup-bpf", hook), "foreign", "foreign", None));
    for m in ["seccomp-getsockname", "cgroup-bpf"] {
        wanted.push((("programs", "kernel", m, hook), "programs", "programs", None));
    }
    for (backend, m) in [
        ("model", "effective-array"),
        ("model", "chain-walk"),
        ("kernel", "cgroup-bpf"),
        ("kernel", "seccomp-arg-load"),
    ] {
        wanted.push((
            ("attach", backend, m, "attach_latency_ns"),
            "descendants",
            "cgroups",
            None,
        ));
    }
    for m in ["seccomp-arg-load", "seccomp-nr-only"] {
        wanted.push((("seccomp", "kernel", m, hook), "programs", "programs", None));
    }
    let fits: Vec<Fit> = wanted
        .into_iter()
        .map(|(key, x, axis, w)| fit(&all, key, x, axis, |c| w.is_none_or(|w| c.params.working_set == w)))
        .collect::<Result<_, _>>()?;
    // Drift: the baseline medians of each (backend, mechanism, trigger) over the run.
    let mut drifts = Vec::new();
    for (backend, mechanism, label) in [
        ("kernel", "cgroup-bpf", "getsockname, depth 2"),
        ("kernel", "seccomp-arg-load", "getppid"),
        ("model", "chain-walk", "hook 0, depth 2"),
    ] {
        let points: Vec<[f64; 2]> = all
            .iter()
            .filter(|m| m.cell.backend == backend && m.cell.mechanism == mechanism)
            .filter_map(|m| Some([m.cell.measured_at_s?, m.cell.baseline?.p50]))
            .collect();
        let pairs: Vec<(f64, f64)> = points.iter().map(|p| (p[0], p[1])).collect();
        if let Some(d) = drift(&pairs) {
            drifts.push(DriftEntry {
                backend: backend.to_string(),
                mechanism: mechanism.to_string(),
                label: label.to_string(),
                points,
                drift: d,
            });
        }
    }
    let arg_load = fits
        .iter()
        .find(|f| f.mechanism == "seccomp-arg-load" && f.suite == "seccomp")
        .ok_or("no arg-load fit")?;
    let agreement = |other_method: &str, other_mechanism: &str, pp: f64, entry: f64| Agreement {
        other_method: other_method.to_string(),
        other_mechanism: other_mechanism.to_string(),
        per_program_rel_diff: pp,
        entry_rel_diff: entry,
        limit: 0.15,
        entry_paths_differ: false,
        total_rel_diff: None,
        agrees: pp <= 0.15 && (entry.is_nan() || entry <= 0.15),
    };
    // How far the fit's per-program cost is from the selftest's (20.1 ns), relative to each.
    let (fit_off, selftest_off) = ((arg_load.slope - 20.1) / 20.1, (arg_load.slope - 20.1) / arg_load.slope);
    let decompositions = vec![
        decomposition(
            ("seccomp-arg-load", "fit"),
            (88.1, arg_load.entry.map_or((f64::NAN, false), |e| (e.entry, e.clamped))),
            (arg_load.slope, arg_load.slope_ci95),
            ([1, 128], 0.35),
            agreement("selftest", "seccomp-selftest-split", fit_off, 0.02),
        ),
        decomposition(
            ("seccomp-selftest-split", "selftest"),
            (87.9, (15.2, false)),
            (20.1, [19.2, 21.0]),
            ([0, 4], 0.021),
            agreement("fit", "seccomp-arg-load", selftest_off, 0.02),
        ),
        decomposition(
            ("seccomp-getsockname", "fit"),
            (402.0, (18.3, false)),
            (20.6, [19.9, 21.3]),
            ([8, 32], 0.012),
            agreement("selftest", "seccomp-selftest-split", 0.025, 0.11),
        ),
    ];
    let mut results = Results {
        schema: SCHEMA.to_string(),
        hookbench_version: "0.1.0".to_string(),
        command_line: [
            "./target/release/hookbench",
            "run",
            "--backend",
            "auto",
            "--profile",
            "smoke",
            "--out",
            "/tmp/hb",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        started_at: "2026-12-06T04:00:00Z".to_string(),
        finished_at: Some("2026-12-06T04:02:12Z".to_string()),
        complete: true,
        profile: "smoke".to_string(),
        suites: [
            ("foreign", 1, "foreign", Some((0.5, 0.10))),
            ("programs", 2, "programs", Some((0.5, 0.10))),
            ("attach", 4, "descendants", Some((5.0, 0.10))),
            ("working-set", 6, "programs", None),
            ("seccomp", 7, "programs", Some((1.0, 0.10))),
        ]
        .into_iter()
        .map(|(name, claim, x, margin)| suite(name, Some(claim), HYPOTHESES[claim as usize - 1].1, x, margin))
        .collect(),
        environment: environment(),
        cells: all.into_iter().map(|m| m.cell).collect(),
        fits,
        skipped: vec![
            Skipped {
                backend: "kernel".into(),
                mechanism: "lsm-cgroup".into(),
                suite: Some("programs".into()),
                reason: "BPF LSM programs not available here: BPF trampolines refused (EPERM) by this kernel".into(),
            },
            Skipped {
                backend: "kmod".into(),
                mechanism: "*".into(),
                suite: None,
                reason: "hookbench.ko is not loaded (/dev/hookbench: ENOENT): build and insmod kernels/kmod".into(),
            },
        ],
        claims: Vec::new(),
        order_seed: seed,
        drift: drifts,
        decompositions,
    };
    results.claims = hookbench_reports::claims::evaluate(&results);
    println!("{}", serde_json::to_string_pretty(&results)?);
    Ok(())
}
