//! `hookbench export --format F RUN`: a saved run in the format of the fleet tool that reads it.
//!
//! Continuous-benchmarking services get its cells (`bmf`, `gab`); the kernel test engines get
//! its fits and verdicts: lkp-tests one `name: value` line per stat (`lkp`), a LAVA test shell
//! one `lava-test-case` command per claim (`lava`), KernelCI's KCIDB one submission of checkouts,
//! builds and tests (`kcidb`). The files under `ci/` call it, so the logic lives here and is
//! tested here.

use hookbench_reports::claims::{deciding, ClaimResult, Deciding, Verdict};
use hookbench_reports::host::{hostname, kernel_release, HostClass};
use hookbench_reports::{Fit, Results};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Formats of `hookbench export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Bencher Metric Format: `{cell id: {metric: {value, lower_value, upper_value}}}`.
    Bmf,
    /// github-action-benchmark's `customSmallerIsBetter`: `[{name, unit, value, range}]`.
    Gab,
    /// lkp-tests stats: `hookbench.<suite>.<mechanism>.<axis>.<metric>: value`, one per line.
    Lkp,
    /// LAVA test shell: one `lava-test-case claim-N-BACKEND --result R ...` command per claim.
    Lava,
    /// A KCIDB submission (schema 4.4): the kernel as checkout and build, claims and fits tests.
    Kcidb,
}

/// The KCIDB schema version a submission declares: 4.4 added `number {value, unit, prefix}`.
pub const KCIDB_VERSION: (u32, u32) = (4, 4);

/// The origin (submitting CI system) of KCIDB objects, the prefix of every id.
pub const KCIDB_ORIGIN: &str = "hookbench";

/// The run rendered in `format`: JSON (bmf, gab, kcidb) or lines (lkp, lava), ending in a newline.
pub fn export(results: &Results, format: ExportFormat) -> String {
    let json = match format {
        ExportFormat::Bmf => bmf(results),
        ExportFormat::Gab => gab(results),
        ExportFormat::Kcidb => kcidb(results),
        ExportFormat::Lkp => return lkp(results),
        ExportFormat::Lava => return lava(results),
    };
    // A Value of finite numbers and strings always encodes; non-finite numbers became null.
    format!("{}\n", serde_json::to_string_pretty(&json).unwrap_or_default())
}

/// Bencher Metric Format: each cell's raw mean with mean -+ one standard deviation as bounds.
fn bmf(results: &Results) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for c in &results.cells {
        let mut measure = serde_json::Map::new();
        measure.insert(
            c.metric.clone(),
            serde_json::json!({"value": c.mean, "lower_value": c.mean - c.stddev, "upper_value": c.mean + c.stddev}),
        );
        out.insert(c.id.clone(), serde_json::Value::Object(measure));
    }
    serde_json::Value::Object(out)
}

/// github-action-benchmark's customSmallerIsBetter: each cell's raw mean, its stddev as range.
fn gab(results: &Results) -> serde_json::Value {
    serde_json::Value::Array(
        results
            .cells
            .iter()
            .map(|c| {
                serde_json::json!({"name": c.id, "unit": c.unit, "value": c.mean,
                                   "range": format!("± {}", c.stddev), "extra": c.metric})
            })
            .collect(),
    )
}

/// `s` with every character outside `[A-Za-z0-9_-]` replaced by `_`, for dotted stat names.
fn name_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What may tell two fits of one suite, mechanism, x and metric apart, in the order tried.
const DISAMBIGUATORS: [&str; 10] = [
    "backend",
    "working_set",
    "cpus",
    "body",
    "hooks",
    "programs",
    "foreign",
    "depth",
    "tasks",
    "cgroups",
];

/// A fit's value of a disambiguator: its backend or a fixed axis, as text (`2048`, `null`).
fn fixed_value(f: &Fit, axis: &str) -> String {
    if axis == "backend" {
        return f.backend.clone();
    }
    match f.fixed.get(axis) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// Every fit of the run with its name `<suite>.<mechanism>.<axis>`, unique within the run.
///
/// `<axis>` is the fit's x (`programs`), followed, where fits of one suite, mechanism, x and
/// metric differ only in a fixed axis, by the fewest fixed axes that tell them apart, each as
/// `-<axis><value>` (`programs-working_set2048`; the body as `-null`). Every part keeps only
/// `[A-Za-z0-9_-]`, so a name is a valid lkp stat and KCIDB path.
pub fn fit_names(results: &Results) -> Vec<(String, &Fit)> {
    let mut groups: BTreeMap<(&str, &str, &str, &str), Vec<&Fit>> = BTreeMap::new();
    for f in &results.fits {
        groups
            .entry((&f.suite, &f.mechanism, &f.x, &f.metric))
            .or_default()
            .push(f);
    }
    let mut named = Vec::new();
    for group in groups.values() {
        let differing: Vec<&str> = DISAMBIGUATORS
            .into_iter()
            .filter(|axis| {
                let first = fixed_value(group[0], axis);
                group.iter().any(|f| fixed_value(f, axis) != first)
            })
            .collect();
        // The shortest prefix of the differing axes that makes the group's names unique.
        let used = (0..=differing.len())
            .find(|&n| {
                let mut seen: Vec<Vec<String>> = group
                    .iter()
                    .map(|f| differing[..n].iter().map(|a| fixed_value(f, a)).collect())
                    .collect();
                seen.sort();
                seen.dedup();
                seen.len() == group.len()
            })
            .unwrap_or(differing.len());
        for f in group {
            let mut axis = name_part(&f.x);
            for a in &differing[..used] {
                let v = fixed_value(f, a);
                if *a == "body" || *a == "backend" {
                    let _ = write!(axis, "-{}", name_part(&v));
                } else {
                    let _ = write!(axis, "-{a}{}", name_part(&v));
                }
            }
            named.push((
                format!("{}.{}.{axis}", name_part(&f.suite), name_part(&f.mechanism)),
                *f,
            ));
        }
    }
    named
}

/// lkp-tests stats: per fit its slope and intercept, `hookbench.<fit name>.slope_<metric>: v`.
///
/// Lower is better for both (etc/index-perf-all.yaml under ci/lkp says so). Non-finite figures
/// are left out: lkp reads every value as a number.
fn lkp(results: &Results) -> String {
    let mut s = String::new();
    for (name, f) in fit_names(results) {
        for (what, v) in [("slope", f.slope), ("intercept", f.intercept)] {
            if v.is_finite() {
                let _ = writeln!(s, "hookbench.{name}.{what}_{}: {v}", name_part(&f.metric));
            }
        }
    }
    s
}

/// The LAVA test case result of a verdict: pass, fail, skip (not run) or unknown (inconclusive).
pub fn lava_result(v: Verdict) -> &'static str {
    match v {
        Verdict::Supported => "pass",
        Verdict::Refuted => "fail",
        Verdict::Inconclusive => "unknown",
        Verdict::NotRun => "skip",
    }
}

/// The claim's deciding figure when it has a finite one.
fn finite_deciding(results: &Results, claim: &ClaimResult) -> Option<Deciding> {
    deciding(results, claim).filter(|d| d.value.is_finite())
}

/// LAVA: `lava-test-case claim-N-BACKEND --result R --measurement V --units U` per claim.
///
/// The measurement is the figure that decided the verdict; a claim that did not run has none.
fn lava(results: &Results) -> String {
    let mut s = String::new();
    for c in &results.claims {
        let _ = write!(
            s,
            "lava-test-case claim-{}-{} --result {}",
            c.id,
            name_part(&c.backend),
            lava_result(c.verdict)
        );
        if let Some(d) = finite_deciding(results, c).filter(|_| c.verdict != Verdict::NotRun) {
            let _ = write!(s, " --measurement {} --units {}", d.value, name_part_unit(&d.unit));
        }
        s.push('\n');
    }
    s
}

/// A unit safe as one unquoted shell word: `[A-Za-z0-9_/-]`, anything else `_`.
fn name_part_unit(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_/-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The KCIDB status of a verdict: PASS, FAIL, DONE (inconclusive: measured, not judged), SKIP.
pub fn kcidb_status(v: Verdict) -> &'static str {
    match v {
        Verdict::Supported => "PASS",
        Verdict::Refuted => "FAIL",
        Verdict::Inconclusive => "DONE",
        Verdict::NotRun => "SKIP",
    }
}

/// A KCIDB `number`: the value, its unit, and `binary` prefixes for bytes, `metric` for seconds.
fn kcidb_number(value: f64, unit: &str) -> serde_json::Value {
    let mut n = serde_json::json!({"value": value, "unit": unit});
    if unit.starts_with("bytes") {
        n["prefix"] = "binary".into();
    } else if unit == "s" || unit.starts_with("s/") {
        n["prefix"] = "metric".into();
    }
    n
}

/// A KCIDB submission: the run's kernel as one checkout and build, claims and fits as tests.
///
/// Ids start with [`KCIDB_ORIGIN`]; a test's id is unique per host, start time and path. Claims
/// are `hookbench.claimN.BACKEND` with their verdict's status and deciding figure; fits are
/// `hookbench.<fit name>.<metric>` (see [`fit_names`]), status DONE, their slope as the number.
/// The host and its class go in every test's `environment`.
fn kcidb(results: &Results) -> serde_json::Value {
    let origin = KCIDB_ORIGIN;
    let release = kernel_release(results);
    let class = HostClass::of(results);
    let host = hostname(results);
    let checkout_id = format!("{origin}:{release}");
    let build_id = format!("{origin}:{release}:{}", class.arch);
    let run_id = format!("{origin}:{host}:{}", results.started_at);
    let environment = serde_json::json!({
        "comment": format!("{host}: {class}, kernel {release}"),
        "misc": {"hostname": host, "arch": class.arch, "cpu_model": class.cpu_model, "nr_cpus": class.nr_cpus,
                 "execution": class.execution.as_str(), "kernel_release": release,
                 "profile": results.profile, "hookbench_version": results.hookbench_version},
    });
    let start_time = (!results.started_at.is_empty()).then(|| results.started_at.clone());
    let test = |path: String, status: &str, number: Option<serde_json::Value>, comment: String, misc| {
        let mut t = serde_json::json!({
            "id": format!("{run_id}:{path}"), "build_id": build_id, "origin": origin, "path": path,
            "status": status, "environment": environment, "comment": comment, "misc": misc,
        });
        if let Some(n) = number {
            t["number"] = n;
        }
        if let Some(st) = &start_time {
            t["start_time"] = st.clone().into();
        }
        t
    };
    let mut tests = Vec::new();
    for c in &results.claims {
        let d = finite_deciding(results, c).filter(|_| c.verdict != Verdict::NotRun);
        let misc = serde_json::json!({
            "verdict": c.verdict.as_str(), "hypothesis": c.hypothesis,
            "deciding": d.as_ref().map(|d| d.name.clone()),
            "ci95": d.as_ref().and_then(|d| d.ci95), "margin": c.margin,
        });
        tests.push(test(
            format!("hookbench.claim{}.{}", c.id, name_part(&c.backend)),
            kcidb_status(c.verdict),
            d.as_ref().map(|d| kcidb_number(d.value, &d.unit)),
            c.evidence.clone(),
            without_nulls(misc),
        ));
    }
    for (name, f) in fit_names(results) {
        if !f.slope.is_finite() {
            continue;
        }
        let unit = results
            .cells_of(f)
            .first()
            .map(|c| c.unit.clone())
            .unwrap_or_else(|| f.metric.clone());
        let per = f.x.strip_suffix('s').unwrap_or(&f.x);
        let misc = serde_json::json!({
            "backend": f.backend, "slope_ci95": f.slope_ci95, "intercept": f.intercept, "r2": f.r2,
            "y": f.y, "fixed": f.fixed,
        });
        tests.push(test(
            format!("hookbench.{name}.{}", name_part(&f.metric)),
            "DONE",
            Some(kcidb_number(f.slope, &format!("{unit}/{per}"))),
            format!("{} slope over {} ({}, {})", f.metric, f.x, f.backend, f.mechanism),
            without_nulls(misc),
        ));
    }
    serde_json::json!({
        "version": {"major": KCIDB_VERSION.0, "minor": KCIDB_VERSION.1},
        "checkouts": [{"id": checkout_id, "origin": origin, "valid": true,
                       "comment": format!("the kernel hookbench measured: {release}")}],
        "builds": [{"id": build_id, "checkout_id": checkout_id, "origin": origin, "valid": true,
                    "architecture": name_part(&class.arch).to_ascii_lowercase(),
                    "comment": format!("kernel {release} ({})", class.arch)}],
        "tests": tests,
    })
}

/// `v` without null members, and non-finite numbers (JSON null) dropped: KCIDB allows no null.
fn without_nulls(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => serde_json::Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        serde_json::Value::Array(a) => serde_json::Value::Array(
            a.into_iter()
                .map(|v| if v.is_null() { "NaN".into() } else { without_nulls(v) })
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoke() -> Results {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../reports/tests/data/results-smoke.json");
        Results::read(std::path::Path::new(path)).expect("the smoke results read")
    }

    #[test]
    fn bmf_and_gab_give_raw_means() {
        let r = smoke();
        let c = &r.cells[0];
        let bmf: serde_json::Value = serde_json::from_str(&export(&r, ExportFormat::Bmf)).expect("bmf is JSON");
        assert_eq!(bmf[&c.id][&c.metric]["value"].as_f64(), Some(c.mean));
        assert_eq!(bmf[&c.id][&c.metric]["upper_value"].as_f64(), Some(c.mean + c.stddev));
        let gab: serde_json::Value = serde_json::from_str(&export(&r, ExportFormat::Gab)).expect("gab is JSON");
        assert_eq!(gab.as_array().map(Vec::len), Some(r.cells.len()));
        assert_eq!(gab[0]["name"].as_str(), Some(c.id.as_str()));
        assert_eq!(gab[0]["value"].as_f64(), Some(c.mean));
    }

    #[test]
    fn fit_names_are_unique_and_tell_working_sets_apart() {
        let r = smoke();
        let names = fit_names(&r);
        assert_eq!(names.len(), r.fits.len());
        let mut keys: Vec<(String, &str)> = names.iter().map(|(n, f)| (n.clone(), f.metric.as_str())).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), r.fits.len(), "{keys:?}");
        let ws: Vec<&str> = names
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| n.starts_with("working-set.chain-walk."))
            .collect();
        assert_eq!(
            ws,
            [
                "working-set.chain-walk.programs-working_set1",
                "working-set.chain-walk.programs-working_set2048"
            ]
        );
        // A fit alone in its group keeps the bare x.
        assert!(names.iter().any(|(n, _)| n == "programs.cgroup-bpf.programs"));
    }

    #[test]
    fn lava_lines_carry_the_verdict_and_the_deciding_figure() {
        let r = smoke();
        let text = export(&r, ExportFormat::Lava);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), r.claims.len());
        assert!(lines.contains(&"lava-test-case claim-1-kernel --result skip"), "{text}");
        let c2 = lines
            .iter()
            .find(|l| l.starts_with("lava-test-case claim-2-kernel "))
            .expect("claim 2");
        assert_eq!(
            *c2,
            "lava-test-case claim-2-kernel --result fail --measurement 14.152833758912877 --units ns/program"
        );
        assert!(lines.contains(
            &"lava-test-case claim-7-kernel --result pass --measurement -0.006241237223993667 --units ns/program"
        ));
    }

    #[test]
    fn inconclusive_is_unknown_to_lava_and_done_to_kcidb() {
        assert_eq!(lava_result(Verdict::Inconclusive), "unknown");
        assert_eq!(kcidb_status(Verdict::Inconclusive), "DONE");
        assert_eq!(kcidb_status(Verdict::Refuted), "FAIL");
    }

    #[test]
    fn nulls_are_dropped_for_kcidb() {
        let v = without_nulls(serde_json::json!({"a": null, "b": {"c": null, "d": 1}, "e": [1.0, null]}));
        assert_eq!(v, serde_json::json!({"b": {"d": 1}, "e": [1.0, "NaN"]}));
    }
}
