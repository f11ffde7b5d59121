//! Suites: TOML files that sweep the scenario axes for one claim, parsed and checked here.
//!
//! The shipped ones are in `suites/`, embedded in the binary. A suite names its claim and
//! hypothesis, the metric it measures, the mechanisms per backend, the axes its fits run over, a
//! base point (`[params]`) and, per profile (`smoke`, `quick`, `full`), the sweep (`sweep.AXIS =
//! [values]`, expanded as a cartesian product), the number of samples per repetition and the
//! number of repetitions. See `suites/foreign.toml` for an example. `max.MECHANISM.AXIS = N`
//! under `[backend.NAME]` stops one mechanism's sweep at N; a kernel mechanism's planned points
//! must stay inside its known limits. Mechanism names, their models, the metrics they measure and
//! their limits come from the one registry, `crate::mechanism`.

use crate::error::UsageError;
pub use crate::mechanism::{AxisLimit, Metric};
use hookbench_model::{Body, ModelKind, Params, NUMERIC_AXES};
use std::collections::BTreeMap;
use std::path::Path;

/// The suites shipped with hookbench, as (file name, TOML text): the default of `hookbench run`.
///
/// One per claim of ARCHITECTURE.md ("Names") that the model can answer (1-6), in claim order,
/// then `scaling` (throughput at P CPUs), then the kernel backend's `seccomp` (claim 7), set-up
/// and `lsm` (BPF LSM programs) suites. Each backend runs the mechanisms a suite names for it.
pub const EMBEDDED: [(&str, &str); 11] = [
    ("foreign.toml", include_str!("../../suites/foreign.toml")),
    ("programs.toml", include_str!("../../suites/programs.toml")),
    ("cgroup-handles.toml", include_str!("../../suites/cgroup-handles.toml")),
    ("attach.toml", include_str!("../../suites/attach.toml")),
    ("metadata.toml", include_str!("../../suites/metadata.toml")),
    ("working-set.toml", include_str!("../../suites/working-set.toml")),
    ("scaling.toml", include_str!("../../suites/scaling.toml")),
    ("seccomp.toml", include_str!("../../suites/seccomp.toml")),
    ("setup-cgroups.toml", include_str!("../../suites/setup-cgroups.toml")),
    ("setup-tasks.toml", include_str!("../../suites/setup-tasks.toml")),
    ("lsm.toml", include_str!("../../suites/lsm.toml")),
];

/// The profiles every shipped suite defines, from the quickest to the largest.
///
/// `smoke` (whole default suite in under 30 s), `quick` (the default, under 3 minutes on 2
/// cores), `full` (bare-metal runners).
pub const PROFILES: [&str; 3] = ["smoke", "quick", "full"];

/// One axis a suite's fits run over: the params axis and the name it carries in the results' `x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FitAxis {
    /// The params axis the x values come from, e.g. "cgroups".
    pub axis: String,
    /// The name in the results, e.g. "descendants" (defaults to `axis`).
    pub label: String,
}

/// A profile of a suite, resolved: every point of the sweep and the sampling plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The points, in sweep order: the cartesian product of the swept axes.
    ///
    /// The axes are taken in alphabetical order, the last varying fastest.
    pub points: Vec<Params>,
    /// Timed samples per repetition (batches for hook latency, operations for attach).
    pub samples: usize,
    /// Repetitions of each cell.
    pub repetitions: usize,
}

/// A parsed and validated suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// Suite name, e.g. "foreign".
    pub name: String,
    /// The number of the ARCHITECTURE.md claim it answers (1-7, listed under "Names").
    pub claim: Option<u32>,
    /// The claim's hypothesis.
    pub hypothesis: String,
    /// What it measures.
    pub metric: Metric,
    /// The mechanisms to measure, by backend name (`[backend.NAME] mechanisms = [...]`).
    pub mechanisms: BTreeMap<String, Vec<SuiteMechanism>>,
    /// The axes fits run over.
    pub fits: Vec<FitAxis>,
    /// Resolved plans by profile name.
    pub profiles: BTreeMap<String, Plan>,
    /// Where the suite came from ("embedded:foreign.toml" or a path).
    pub source: String,
    /// Axes a backend overrides in every point, so a claim compares the same body everywhere.
    ///
    /// Written `[backend.NAME] params = { body = "null" }`, so that a claim compares the same
    /// program body across mechanisms.
    pub backend_params: BTreeMap<String, toml::Table>,
    /// The equivalence margin of the suite's claim (`margin = { abs = 0.5, rel = 0.10 }`).
    ///
    /// Two slopes are "the same", or a slope "flat", within max(abs, rel x the reference slope).
    pub margin: Option<hookbench_measure::estimate::Margin>,
}

/// A mechanism a suite names for one backend, with the dispatch model it realises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteMechanism {
    /// The mechanism's results name, e.g. "chain-walk" (model backend).
    pub name: String,
    /// The dispatch model it realises.
    pub model: ModelKind,
    /// The largest value of an axis this mechanism is swept to, by axis name.
    ///
    /// Written `max.MECHANISM.AXIS = N` under `[backend.NAME]`: points above it are not planned
    /// for this mechanism, e.g. Landlock's sweep stops at its 16 layers while the suite's other
    /// mechanisms go on.
    pub max: BTreeMap<String, u32>,
}

impl SuiteMechanism {
    /// Whether point `p` is within this mechanism's `max` on every axis it names.
    pub fn admits(&self, p: &Params) -> bool {
        self.max
            .iter()
            .all(|(axis, &max)| p.axis(axis).is_none_or(|v| v <= max))
    }
}

/// Upper bounds on every axis; a value above them is rejected as absurd (exit code 2).
/// (`cpus` is further limited at run time to the CPUs this process may use.)
pub fn axis_range(axis: &str) -> (u32, u32) {
    match axis {
        "programs" | "foreign" => (0, 100_000),
        "hooks" => (1, 4096),
        "depth" => (1, 1000),
        "cgroups" | "tasks" => (0, 1_000_000),
        "working_set" => (1, 1_000_000),
        "cpus" => (1, 1024),
        _ => (0, 0),
    }
}

/// Largest `samples` per repetition and `repetitions` a suite may ask for.
pub const MAX_SAMPLES: i64 = 10_000_000;
/// Largest number of repetitions.
pub const MAX_REPETITIONS: i64 = 1000;
/// Largest number of model objects one point may need, estimated by [`objects_estimate`].
///
/// It keeps a typo from allocating the machine away (about 100 bytes an object: a few GiB at
/// the limit).
pub const MAX_OBJECTS: u64 = 20_000_000;
/// Largest number of timed samples of one cell (`samples x repetitions`), each kept in memory.
pub const MAX_SAMPLES_PER_CELL: i64 = 10_000_000;
/// Largest number of points a profile's sweep may expand to.
pub const MAX_POINTS: usize = 100_000;
/// Largest suite file hookbench reads, in bytes.
pub const MAX_SUITE_FILE_BYTES: u64 = 1 << 20;

/// Objects a point needs in the largest model world, to keep a point within [`MAX_OBJECTS`].
///
/// Programs and chain nodes or array items for every slot at every level of its cgroup path
/// (`working_set x cpus x depth x (programs + foreign)`), one effective array per cgroup and
/// hook (`cgroups x hooks`), and one task each (`tasks`).
pub fn objects_estimate(q: &Params) -> u64 {
    let slots = u64::from(q.working_set) * u64::from(q.cpus);
    slots * u64::from(q.depth.max(1)) * (u64::from(q.programs) + u64::from(q.foreign))
        + u64::from(q.cgroups) * u64::from(q.hooks)
        + u64::from(q.tasks)
}

impl Suite {
    /// Parses and validates a suite from TOML text; `source` names it in error messages.
    ///
    /// Errors ([`UsageError`], exit code 2): malformed TOML, unknown keys, unknown metric,
    /// mechanism, axis or body, values out of [`axis_range`], empty sweeps, fits over an axis that
    /// is not swept in some profile, a `max` naming an unlisted mechanism, a point beyond a
    /// mechanism's limit.
    pub fn parse(text: &str, source: &str) -> Result<Suite, UsageError> {
        let raw: RawSuite =
            toml::from_str(text).map_err(|e| UsageError::new(format!("suite {source} is not valid: {e}")))?;
        let bad = |what: String| UsageError::new(format!("suite {source}: {what}"));
        let metric = Metric::parse(&raw.metric).ok_or_else(|| {
            bad(format!(
                "unknown metric '{}': expected hook_latency_ns, attach_latency_ns, metadata_bytes or setup_seconds",
                raw.metric
            ))
        })?;
        let mut mechanisms = BTreeMap::new();
        let mut backend_params = BTreeMap::new();
        for (backend, table) in &raw.backend {
            // The backend must exist even when it lists no mechanism.
            crate::mechanism::find(backend, "").map(|_| ()).or_else(|e| {
                if e.starts_with("unknown backend") {
                    Err(bad(format!("[backend.{backend}]: {e}")))
                } else {
                    Ok(())
                }
            })?;
            if let Some(dup) = first_duplicate(&table.mechanisms) {
                return Err(bad(format!("[backend.{backend}] lists mechanism '{dup}' twice")));
            }
            let mut list = Vec::new();
            for m in &table.mechanisms {
                let info = crate::mechanism::find(backend, m).map_err(|e| bad(format!("[backend.{backend}] {e}")))?;
                if !info.metrics.contains(&metric) {
                    return Err(bad(format!(
                        "[backend.{backend}] '{m}' does not measure {}: it measures {}",
                        metric.as_str(),
                        info.metrics.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(", ")
                    )));
                }
                let model = info.model;
                let max = mechanism_max(&table.max, m).map_err(|e| bad(format!("[backend.{backend}] {e}")))?;
                list.push(SuiteMechanism {
                    name: m.clone(),
                    model,
                    max,
                });
            }
            if let Some(name) = table.max.keys().find(|k| !table.mechanisms.contains(k)) {
                return Err(bad(format!(
                    "[backend.{backend}] max.{name}: '{name}' is not one of the mechanisms listed there ({})",
                    table.mechanisms.join(", ")
                )));
            }
            let mut probe = Params::default();
            for (key, value) in &table.params {
                apply(&mut probe, key, value).map_err(|e| bad(format!("[backend.{backend}] params: {e}")))?;
            }
            if !list.is_empty() {
                mechanisms.insert(backend.clone(), list);
                if !table.params.is_empty() {
                    backend_params.insert(backend.clone(), table.params.clone());
                }
            }
        }
        if mechanisms.is_empty() {
            return Err(bad("no mechanisms: add [backend.model] mechanisms = [...]".into()));
        }
        if raw.name.trim().is_empty() {
            return Err(bad("name = \"\" is empty: give the suite a name".into()));
        }
        if let Some(dup) = first_duplicate(&raw.fit.iter().map(|f| f.axis.as_str()).collect::<Vec<_>>()) {
            return Err(bad(format!("[[fit]] axis '{dup}' is given twice")));
        }
        let mut base = Params::default();
        for (key, value) in &raw.params {
            apply(&mut base, key, value).map_err(|e| bad(format!("[params] {e}")))?;
        }
        let fits: Vec<FitAxis> = raw
            .fit
            .iter()
            .map(|f| {
                if !NUMERIC_AXES.contains(&f.axis.as_str()) {
                    return Err(bad(format!(
                        "[[fit]] axis '{}' is not one of {}",
                        f.axis,
                        NUMERIC_AXES.join(", ")
                    )));
                }
                Ok(FitAxis {
                    axis: f.axis.clone(),
                    label: f.label.clone().unwrap_or_else(|| f.axis.clone()),
                })
            })
            .collect::<Result<_, _>>()?;
        let mut profiles = BTreeMap::new();
        for (pname, p) in &raw.profiles {
            let ctx = |e: String| bad(format!("[profiles.{pname}] {e}"));
            if !PROFILES.contains(&pname.as_str()) {
                return Err(bad(format!(
                    "unknown profile [profiles.{pname}]: expected {}",
                    PROFILES.join(", ")
                )));
            }
            if !(1..=MAX_SAMPLES).contains(&p.samples) {
                return Err(ctx(format!(
                    "samples = {} must be between 1 and {MAX_SAMPLES}",
                    p.samples
                )));
            }
            if !(1..=MAX_REPETITIONS).contains(&p.repetitions) {
                return Err(ctx(format!(
                    "repetitions = {} must be between 1 and {MAX_REPETITIONS}",
                    p.repetitions
                )));
            }
            if p.samples * p.repetitions > MAX_SAMPLES_PER_CELL {
                return Err(ctx(format!(
                    "samples {} x repetitions {} = {} samples per cell, more than {MAX_SAMPLES_PER_CELL}: lower one of them",
                    p.samples,
                    p.repetitions,
                    p.samples * p.repetitions
                )));
            }
            let mut n_points: usize = 1;
            for (axis, values) in &p.sweep {
                let arr = values
                    .as_array()
                    .ok_or_else(|| ctx(format!("sweep.{axis} must be an array of values")))?;
                if arr.is_empty() {
                    return Err(ctx(format!("sweep.{axis} is empty")));
                }
                if let Some(dup) = first_duplicate(arr) {
                    return Err(ctx(format!("sweep.{axis} lists {dup} twice")));
                }
                n_points = n_points.saturating_mul(arr.len());
            }
            if n_points > MAX_POINTS {
                return Err(ctx(format!(
                    "the sweep expands to {n_points} points, more than {MAX_POINTS}: sweep fewer values"
                )));
            }
            let mut points = vec![base];
            for (axis, values) in &p.sweep {
                let arr = values.as_array().map(Vec::as_slice).unwrap_or_default();
                let mut next = Vec::with_capacity(points.len() * arr.len());
                for point in &points {
                    for v in arr {
                        let mut q = *point;
                        apply(&mut q, axis, v).map_err(|e| ctx(format!("sweep: {e}")))?;
                        next.push(q);
                    }
                }
                points = next;
            }
            for q in &points {
                let objects = objects_estimate(q);
                if objects > MAX_OBJECTS {
                    return Err(ctx(format!(
                        "working_set {} x cpus {} x depth {} x (programs {} + foreign {}) + cgroups {} x hooks {} + tasks {} = {objects} objects, more than {MAX_OBJECTS}: lower one of them",
                        q.working_set, q.cpus, q.depth, q.programs, q.foreign, q.cgroups, q.hooks, q.tasks
                    )));
                }
                if q.foreign > 0 && q.hooks < 2 {
                    return Err(ctx(format!(
                        "foreign = {} needs hooks >= 2 (foreign programs sit on other hooks), got hooks = {}",
                        q.foreign, q.hooks
                    )));
                }
            }
            for f in &fits {
                if !p.sweep.contains_key(&f.axis) {
                    return Err(ctx(format!(
                        "fits run over '{}' but this profile does not sweep it: add sweep.{} = [...]",
                        f.axis, f.axis
                    )));
                }
            }
            profiles.insert(
                pname.clone(),
                Plan {
                    points,
                    samples: p.samples as usize,
                    repetitions: p.repetitions as usize,
                },
            );
        }
        if profiles.is_empty() {
            return Err(bad(
                "no profiles: add [profiles.smoke], [profiles.quick], [profiles.full]".into(),
            ));
        }
        check_limits(&mechanisms, metric, &profiles).map_err(bad)?;
        if let Some(c) = raw.claim.filter(|c| !(1..=7).contains(c)) {
            return Err(bad(format!(
                "claim = {c}: ARCHITECTURE.md has claims 1 to 7; leave `claim` out for a suite that answers none"
            )));
        }
        let margin = match raw.margin {
            Some(m) if m.abs.is_finite() && m.rel.is_finite() && m.abs >= 0.0 && (0.0..1.0).contains(&m.rel) => {
                Some(hookbench_measure::estimate::Margin { abs: m.abs, rel: m.rel })
            }
            Some(m) => {
                return Err(bad(format!(
                    "margin = {{ abs = {}, rel = {} }}: abs must be >= 0 and rel in [0, 1)",
                    m.abs, m.rel
                )))
            }
            None => None,
        };
        Ok(Suite {
            name: raw.name,
            claim: raw.claim,
            hypothesis: raw.hypothesis,
            metric,
            mechanisms,
            fits,
            profiles,
            source: source.to_string(),
            backend_params,
            margin,
        })
    }

    /// `point` with the axes `backend` overrides applied (`[backend.NAME] params`).
    pub fn params_for(&self, backend: &str, point: &Params) -> Params {
        let mut p = *point;
        if let Some(table) = self.backend_params.get(backend) {
            for (key, value) in table {
                // Checked when the suite was parsed.
                let _ = apply(&mut p, key, value);
            }
        }
        p
    }

    /// The mechanisms this suite names for `backend` (empty when it names none).
    pub fn mechanisms_for(&self, backend: &str) -> &[SuiteMechanism] {
        self.mechanisms.get(backend).map(Vec::as_slice).unwrap_or_default()
    }

    /// The plan for `profile`, or a [`UsageError`] naming the profiles this suite has.
    pub fn plan(&self, profile: &str) -> Result<&Plan, UsageError> {
        self.profiles.get(profile).ok_or_else(|| {
            UsageError::new(format!(
                "suite '{}' ({}) has no profile '{profile}'; it has: {}",
                self.name,
                self.source,
                self.profiles.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// Every shipped suite, parsed, in claim order.
///
/// Errors: a shipped suite that does not parse (a bug in hookbench; reported as bad input).
pub fn embedded() -> Result<Vec<Suite>, UsageError> {
    EMBEDDED
        .iter()
        .map(|(file, text)| Suite::parse(text, &format!("embedded:{file}")))
        .collect()
}

/// Resolves `--suite NAME|FILE` into the suites to run.
///
/// `None` is the default suite (every shipped one); a value naming an existing file, or ending
/// in `.toml`, or containing `/`, is read as a file; anything else must be a shipped suite's
/// name.
///
/// Errors: unknown name (the message lists the known ones), unreadable or invalid file.
pub fn resolve(arg: Option<&str>) -> Result<Vec<Suite>, UsageError> {
    let shipped = embedded()?;
    let Some(arg) = arg else { return Ok(shipped) };
    let path = Path::new(arg);
    if path.exists() || arg.ends_with(".toml") || arg.contains('/') {
        if path.is_dir() {
            return Err(UsageError::new(format!(
                "--suite {arg} is a directory; give a suite TOML file or a suite name"
            )));
        }
        let meta =
            std::fs::metadata(path).map_err(|e| UsageError::new(format!("cannot read suite file {arg}: {e}")))?;
        if !meta.is_file() {
            return Err(UsageError::new(format!(
                "--suite {arg} is not a regular file; give a suite TOML file or a suite name"
            )));
        }
        if meta.len() > MAX_SUITE_FILE_BYTES {
            return Err(UsageError::new(format!(
                "--suite {arg} is {} bytes, more than a suite file's {MAX_SUITE_FILE_BYTES}: is it the right file?",
                meta.len()
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| UsageError::new(format!("cannot read suite file {arg}: {e}")))?;
        return Ok(vec![Suite::parse(&text, arg)?]);
    }
    match shipped.into_iter().find(|s| s.name == arg) {
        Some(s) => Ok(vec![s]),
        None => Err(UsageError::new(format!(
            "unknown suite '{arg}': expected a suite file or one of {}",
            EMBEDDED
                .iter()
                .map(|(f, _)| f.trim_end_matches(".toml"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The `max.MECHANISM` table of a `[backend.NAME]` for `mechanism`, checked like sweep values.
///
/// The table maps axis names to their largest values.
fn mechanism_max(max: &toml::Table, mechanism: &str) -> Result<BTreeMap<String, u32>, String> {
    let Some(value) = max.get(mechanism) else {
        return Ok(BTreeMap::new());
    };
    let table = value
        .as_table()
        .ok_or_else(|| format!("max.{mechanism} = {value} must be a table of AXIS = largest value"))?;
    let mut out = BTreeMap::new();
    for (axis, v) in table {
        let mut p = Params::default();
        apply(&mut p, axis, v).map_err(|e| format!("max.{mechanism}: {e}"))?;
        let v = p
            .axis(axis)
            .ok_or_else(|| format!("max.{mechanism}.{axis}: only numeric axes take a largest value"))?;
        out.insert(axis.clone(), v);
    }
    Ok(out)
}

/// Checks that every point planned for a mechanism stays within its known limits.
///
/// The limits are [`crate::mechanism::MechanismInfo::limit`]'s: the kernel refuses such a point
/// on every machine, so a sweep that asks for it measures nothing there.
///
/// Errors: the profile, mechanism and point, the limit, and the `max` line that keeps the sweep
/// inside it.
fn check_limits(
    mechanisms: &BTreeMap<String, Vec<SuiteMechanism>>,
    metric: Metric,
    profiles: &BTreeMap<String, Plan>,
) -> Result<(), String> {
    for (backend, list) in mechanisms {
        for m in list {
            let Ok(info) = crate::mechanism::find(backend, &m.name) else {
                continue;
            };
            for (profile, plan) in profiles {
                let over = plan
                    .points
                    .iter()
                    .filter(|p| m.admits(p))
                    .find_map(|p| info.limit(metric, p).map(|limit| (p, limit)));
                if let Some((p, limit)) = over {
                    return Err(format!(
                        "[profiles.{profile}] asks {backend} mechanism '{}' for {} = {} (depth = {}), beyond its \
                         limit: {}; add `max.{}.{} = {}` under [backend.{backend}] (or sweep less)",
                        m.name,
                        limit.axis,
                        p.axis(limit.axis).unwrap_or(0),
                        p.depth,
                        limit.why,
                        m.name,
                        limit.axis,
                        limit.max
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The first value that appears twice in `items`, if any.
fn first_duplicate<T: PartialEq + std::fmt::Display>(items: &[T]) -> Option<String> {
    items
        .iter()
        .enumerate()
        .find(|(i, a)| items[..*i].contains(a))
        .map(|(_, a)| a.to_string())
}

/// Sets one axis (or `body`) of `p` from a TOML value, checking its range.
fn apply(p: &mut Params, key: &str, value: &toml::Value) -> Result<(), String> {
    if key == "body" {
        let s = value
            .as_str()
            .ok_or_else(|| format!("body = {value} must be a string (null, counter, map-lookup)"))?;
        p.body = s.parse::<Body>().map_err(|e| e.to_string())?;
        return Ok(());
    }
    if !NUMERIC_AXES.contains(&key) {
        return Err(format!(
            "unknown axis '{key}': expected one of {}, body",
            NUMERIC_AXES.join(", ")
        ));
    }
    let v = value
        .as_integer()
        .ok_or_else(|| format!("{key} = {value} must be an integer"))?;
    let (lo, hi) = axis_range(key);
    if v < i64::from(lo) || v > i64::from(hi) {
        return Err(format!("{key} = {v} is out of range: must be between {lo} and {hi}"));
    }
    // The range check above guarantees the value fits in u32.
    p.set_axis(key, v as u32);
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: String,
    claim: Option<u32>,
    hypothesis: String,
    metric: String,
    #[serde(default)]
    backend: BTreeMap<String, RawBackend>,
    #[serde(default)]
    fit: Vec<RawFit>,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
    #[serde(default)]
    margin: Option<RawMargin>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMargin {
    abs: f64,
    rel: f64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    mechanisms: Vec<String>,
    #[serde(default)]
    params: toml::Table,
    #[serde(default)]
    max: toml::Table,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFit {
    axis: String,
    label: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    samples: i64,
    repetitions: i64,
    #[serde(default)]
    sweep: toml::Table,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_suite_parses_with_all_profiles() {
        let suites = embedded().expect("shipped suites parse");
        assert_eq!(suites.len(), 11);
        for s in &suites {
            for p in PROFILES {
                let plan = s.plan(p).expect("profile present");
                assert!(plan.points.len() >= 3, "{} {p}", s.name);
            }
        }
        let claims: Vec<_> = suites.iter().filter_map(|s| s.claim).collect();
        assert_eq!(claims, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn sweep_is_a_cartesian_product_over_the_base_point() {
        let s = Suite::parse(
            r#"name = "t"
hypothesis = "h"
metric = "hook_latency_ns"
[backend.model]
mechanisms = ["chain-walk"]
[[fit]]
axis = "programs"
[params]
hooks = 3
[profiles.smoke]
samples = 5
repetitions = 1
sweep.programs = [1, 2]
sweep.working_set = [1, 10, 100]
"#,
            "test",
        )
        .expect("parses");
        let plan = s.plan("smoke").expect("smoke");
        assert_eq!(plan.points.len(), 6);
        assert!(plan.points.iter().all(|p| p.hooks == 3));
        let pairs: Vec<(u32, u32)> = plan.points.iter().map(|p| (p.programs, p.working_set)).collect();
        assert!(pairs.contains(&(2, 100)) && pairs.contains(&(1, 1)));
        assert!(s.plan("full").is_err());
    }

    fn err_of(text: &str) -> String {
        match Suite::parse(text, "t.toml") {
            Ok(_) => panic!("expected an error for {text}"),
            Err(e) => e.to_string(),
        }
    }

    const HEAD: &str = "name = \"t\"\nhypothesis = \"h\"\nmetric = \"hook_latency_ns\"\n[backend.model]\nmechanisms = [\"chain-walk\"]\n";

    /// Asserts that every suite text of `cases` is refused with an error containing its string.
    fn assert_refused(cases: &[(String, &str)]) {
        for (text, wanted) in cases {
            let e = err_of(text);
            assert!(e.contains(wanted), "{wanted}: {e}");
        }
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        let smoke = "[profiles.smoke]\nsamples = 5\nrepetitions = 1\n";
        assert_refused(&[
            (format!("{HEAD}{smoke}sweep.programs = [-1]\n"), "programs = -1"),
            (
                format!("{HEAD}[profiles.smoke]\nsamples = 0\nrepetitions = 1\n"),
                "samples = 0",
            ),
            (
                format!("{HEAD}{smoke}sweep.cgroups = [99999999999]\n"),
                "cgroups = 99999999999",
            ),
            (format!("{HEAD}{smoke}sweep.wrokers = [1]\n"), "unknown axis 'wrokers'"),
            (
                format!("{HEAD}{smoke}sweep.working_set = [1000000]\nsweep.programs=[100]\n"),
                "objects",
            ),
            (HEAD.replace("chain-walk", "chain-wlak") + smoke, "chain-wlak"),
            ("name = \"t\"\nthis is not toml".to_string(), "not valid"),
            (
                format!("{HEAD}[[fit]]\naxis = \"foreign\"\n{smoke}sweep.programs = [1]\n"),
                "does not sweep",
            ),
            (format!("claim = 99\n{HEAD}{smoke}sweep.programs = [1]\n"), "claim = 99"),
            (
                format!(
                    "{}{smoke}",
                    HEAD.replace("[backend.model]", "[backend.kmod]")
                        .replace("chain-walk", "bogus-mech")
                ),
                "'bogus-mech'",
            ),
        ]);
    }

    #[test]
    fn sizes_that_would_exhaust_the_machine_and_silent_typos_are_refused() {
        let prof = "[profiles.smoke]\nsamples = 5\nrepetitions = 1\n";
        let many: Vec<String> = (1..=100).map(|v| v.to_string()).collect();
        let many = many.join(", ");
        assert_refused(&[
            (
                format!("{HEAD}[profiles.smoke]\nsamples = 10000000\nrepetitions = 1000\n"),
                "samples per cell",
            ),
            (
                format!(
                    "{HEAD}{prof}sweep.programs = [{many}]\nsweep.foreign = [{many}]\nsweep.tasks = [{many}]\n\
                     sweep.hooks = [{many}]\n"
                ),
                "100000000 points",
            ),
            (
                format!("{HEAD}[params]\nhooks = 4096\n{prof}sweep.cgroups = [1000000]\n"),
                "cgroups 1000000 x hooks 4096",
            ),
            (
                format!("{HEAD}[params]\nprograms = 64000\ndepth = 1000\n{prof}"),
                "depth 1000",
            ),
            (
                format!("{HEAD}[backend.kernel]\nmechanisms = [\"chain-walk\"]\n{prof}"),
                "[backend.kernel] unknown mechanism 'chain-walk'",
            ),
            (
                format!("{HEAD}[backend.bogus]\nmechanisms = [\"x\"]\n{prof}"),
                "[backend.bogus]: unknown backend",
            ),
            (
                format!("{HEAD}{prof}[profiles.smok]\nsamples = 5\nrepetitions = 1\n"),
                "unknown profile [profiles.smok]",
            ),
            (
                format!("{HEAD}{prof}sweep.programs = [1, 1, 2]\n"),
                "sweep.programs lists 1 twice",
            ),
            (
                HEAD.replace("[\"chain-walk\"]", "[\"chain-walk\", \"chain-walk\"]"),
                "'chain-walk' twice",
            ),
            (
                format!("{}{prof}", HEAD.replace("name = \"t\"", "name = \"\"")),
                "empty",
            ),
        ]);
    }

    #[test]
    fn a_sweep_beyond_a_kernel_limit_is_refused_unless_the_mechanism_stops_below_it() {
        let suite = |max: &str| {
            format!(
                "name = \"t\"\nhypothesis = \"h\"\nmetric = \"hook_latency_ns\"\n[backend.kernel]\n\
                 mechanisms = [\"landlock\", \"cgroup-bpf\"]\n{max}\n[profiles.smoke]\nsamples = 5\nrepetitions = 1\n\
                 sweep.programs = [0, 8, 16, 32]\n"
            )
        };
        let e = err_of(&suite(""));
        assert!(
            e.contains("'landlock' for programs = 32")
                && e.contains("LANDLOCK_MAX_NUM_LAYERS = 16")
                && e.contains("max.landlock.programs = 16"),
            "{e}"
        );
        let s = Suite::parse(&suite("max.landlock.programs = 16"), "t.toml").expect("within the limit");
        let plan = s.plan("smoke").expect("smoke");
        let landlock = &s.mechanisms_for("kernel")[0];
        let cgroup_bpf = &s.mechanisms_for("kernel")[1];
        let admitted = |m: &SuiteMechanism| plan.points.iter().filter(|p| m.admits(p)).count();
        assert_eq!((admitted(landlock), admitted(cgroup_bpf)), (3, 4));
        assert_refused(&[
            (
                suite("max.landlok.programs = 16"),
                "max.landlok: 'landlok' is not one of the mechanisms",
            ),
            (suite("max.landlock.wrokers = 16"), "unknown axis 'wrokers'"),
            (suite("max.landlock.programs = -1"), "programs = -1"),
            (suite("max.landlock = 16"), "max.landlock = 16 must be a table"),
        ]);
    }

    #[test]
    fn shipped_profiles_stay_within_the_limits() {
        for s in embedded().expect("shipped suites parse") {
            for plan in s.profiles.values() {
                assert!(
                    plan.points.iter().all(|q| objects_estimate(q) <= MAX_OBJECTS),
                    "{}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn resolve_names_files_and_unknowns() {
        assert_eq!(resolve(None).expect("default").len(), 11);
        assert_eq!(resolve(Some("attach")).expect("by name")[0].name, "attach");
        let e = resolve(Some("nosuch")).expect_err("unknown");
        assert!(e.to_string().contains("unknown suite 'nosuch'"));
        let e = resolve(Some("/nonexistent/x.toml")).expect_err("missing file");
        assert!(e.to_string().contains("/nonexistent/x.toml"));
        let e = resolve(Some("/dev/zero")).expect_err("a device is not a suite");
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    /// The registry decides which mechanisms a suite may name and with which metric.
    #[test]
    fn mechanisms_and_their_metrics_come_from_the_registry() {
        let suite = |backend: &str, mechanism: &str, metric: &str| {
            format!(
                "name = \"s\"\nhypothesis = \"h\"\nmetric = \"{metric}\"\n[backend.{backend}]\n\
                 mechanisms = [\"{mechanism}\"]\n[profiles.smoke]\nsamples = 1\nrepetitions = 1\n\
                 sweep.programs = [0, 1]\n"
            )
        };
        let ok = Suite::parse(&suite("kernel", "seccomp-arg-load", "hook_latency_ns"), "s.toml").expect("parses");
        assert_eq!(ok.mechanisms["kernel"][0].model, ModelKind::TaskChain);
        let e = Suite::parse(&suite("kernel", "setup-tasks", "hook_latency_ns"), "s.toml").expect_err("metric");
        assert!(
            e.to_string().contains("'setup-tasks' does not measure hook_latency_ns"),
            "{e}"
        );
        let e = Suite::parse(&suite("kmod", "task-chain-ioctl", "attach_latency_ns"), "s.toml").expect_err("metric");
        assert!(e.to_string().contains("measures hook_latency_ns"), "{e}");
        let e = Suite::parse(&suite("kernel", "chain-walk", "hook_latency_ns"), "s.toml").expect_err("backend");
        assert!(e.to_string().contains("unknown mechanism 'chain-walk'"), "{e}");
        let e = Suite::parse(&suite("cloud", "x", "hook_latency_ns"), "s.toml").expect_err("no such backend");
        assert!(e.to_string().contains("[backend.cloud]"), "{e}");
    }
}
