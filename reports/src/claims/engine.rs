//! What each claim compares, and the evaluation of every claim on every backend of a run.

use super::pairs::{
    at_one_cpu_w1, body_rank, compared, find, fit_body, fits_of, like_pair, Pairing, CHAIN_VS_EFFECTIVE,
    EFFECTIVE_ATTACH, FILTER_BODIES, FOREIGN_LANDLOCK, FOREIGN_PAIRS, FOREIGN_SHAPES, HANDLES, HOOK,
    METADATA_PER_CGROUP, METADATA_PER_TASK, METADATA_UNSHARED, OUTSIDE_SUFFIX, TASK_INSTALL, WORKING_SET_PAIRS,
};
use super::verdict::{
    beyond, grows, grows_vs_flat, not_run, record, slope_estimate, suite_margin, the_same, unpaired, Outcome,
};
use super::{ClaimResult, Verdict, CONFIDENCE, HYPOTHESES};
use crate::schema::{Fit, Results, WorkingSetBytes};
use hookbench_measure::estimate::{combine, tost, Estimate};
use std::collections::BTreeMap;

/// Evaluates every claim on every backend that has cells in `results`.
pub fn evaluate(results: &Results) -> Vec<ClaimResult> {
    let mut backends: Vec<&str> = results.cells.iter().map(|c| c.backend.as_str()).collect();
    backends.sort_unstable();
    backends.dedup();
    let mut out = Vec::new();
    for backend in backends {
        for (id, hypothesis) in HYPOTHESES {
            let o = evaluate_one(results, backend, id);
            out.push(ClaimResult {
                id,
                hypothesis: hypothesis.to_string(),
                backend: backend.to_string(),
                verdict: o.verdict,
                evidence: o.evidence,
                numbers: o.numbers,
                compared: o.compared,
                margin: o.margin,
            });
        }
    }
    out
}

/// Claim `id` on backend `b`: which fits it pairs and which test it applies to them.
fn evaluate_one(r: &Results, b: &str, id: u32) -> Outcome {
    match id {
        1 => claim_1(r, b),
        2 => {
            let in_suite = |f: &Fit| f.suite == "programs" && at_one_cpu_w1(f);
            match like_pair(r, b, &CHAIN_VS_EFFECTIVE, HOOK, "programs", &in_suite) {
                Pairing::Found(c, e) => the_same(r, c, e),
                other => unpaired(
                    r,
                    other,
                    &CHAIN_VS_EFFECTIVE,
                    "no like-with-like pair: fits over programs in the programs suite of a task chain and \
                     an effective array with the same body on the same trigger",
                ),
            }
        }
        3 => match like_pair(r, b, &HANDLES, HOOK, "handles", &at_one_cpu_w1) {
            Pairing::Found(h, m) => {
                let mut o = grows_vs_flat(r, h, m, ("handle-loop", "cgroup-id-map"));
                with_outside(r, &mut o, [(h, "handle-loop"), (m, "cgroup-id-map")]);
                o
            }
            other => unpaired(
                r,
                other,
                &HANDLES,
                "fits over handles for the handle loop and the cgroup-id map with the same body",
            ),
        },
        4 => {
            let a = "attach_latency_ns";
            match (
                find(r, b, &EFFECTIVE_ATTACH, a, "descendants", &|_| true),
                find(r, b, &TASK_INSTALL, a, "descendants", &|_| true),
            ) {
                (Some(e), Some(t)) => grows_vs_flat(r, e, t, ("cgroup attach", "task install")),
                _ => not_run("attach fits over descendants for a cgroup and a task mechanism"),
            }
        }
        5 => claim_5(r, b),
        6 => claim_6(r, b),
        7 => match like_pair(r, b, &FILTER_BODIES, HOOK, "programs", &|_| true) {
            Pairing::Found(a, n) => grows_vs_flat(r, a, n, ("argument-loading filters", "number-only filters")),
            other => unpaired(
                r,
                other,
                &FILTER_BODIES,
                "seccomp fits over programs for both filter bodies (kernel backend)",
            ),
        },
        _ => not_run("unknown claim"),
    }
}

/// Claim 1: the chain's pair grows with foreign programs, the array's is flat.
///
/// On the kernel, the other seccomp shapes' slopes follow the verdict with what decides them,
/// and Landlock's foreign layers' slope follows it (or the missing pair) whenever measured.
fn claim_1(r: &Results, b: &str) -> Outcome {
    let mut o = match like_pair(r, b, &FOREIGN_PAIRS, HOOK, "foreign", &at_one_cpu_w1) {
        Pairing::Found(c, e) => grows_vs_flat(r, c, e, ("task-chain", "cgroup-effective")),
        other => {
            let found: Vec<&str> = FOREIGN_PAIRS
                .iter()
                .flat_map(|(a, b)| [*a, *b])
                .filter(|m| !fits_of(r, b, m, HOOK, "foreign", &at_one_cpu_w1).is_empty())
                .collect();
            let mut what =
                "fits over foreign of a task chain and an effective array on the same trigger and body".to_string();
            if !found.is_empty() {
                what.push_str(&format!("; measured: {}", found.join(", ")));
            }
            let mut o = unpaired(r, other, &FOREIGN_PAIRS, &what);
            foreign_landlock(r, b, &mut o);
            return o;
        }
    };
    for (mechanism, why) in FOREIGN_SHAPES {
        if let Some(f) = fits_of(r, b, mechanism, HOOK, "foreign", &at_one_cpu_w1)
            .into_iter()
            .next()
        {
            o.evidence.push_str(&format!(
                "; {mechanism}: {:+.3} [{:.3}, {:.3}] ns per foreign ({why})",
                f.slope, f.slope_ci95[0], f.slope_ci95[1]
            ));
            o.numbers.insert(format!("{mechanism}_slope"), f.slope);
            o.compared.push(compared(r, f));
        }
    }
    foreign_landlock(r, b, &mut o);
    o
}

/// Adds claim 1's Landlock line to `o`: its slope per network-only layer and whether it is flat.
///
/// Flat: the slope's 90% CI lies inside the suite's absolute margin (TOST against 0, as the
/// verdict's flat side); grows: its 95% CI is above 0. The verdict stays the pair's: `open()` has
/// no effective-array peer.
fn foreign_landlock(r: &Results, b: &str, o: &mut Outcome) {
    let (mechanism, why) = FOREIGN_LANDLOCK;
    let Some(f) = fits_of(r, b, mechanism, HOOK, "foreign", &at_one_cpu_w1)
        .into_iter()
        .next()
    else {
        return;
    };
    let m = suite_margin(r, &f.suite).abs;
    let zero = Estimate {
        value: 0.0,
        se: 0.0,
        df: f64::INFINITY,
    };
    let eq = tost(slope_estimate(f), zero, m);
    let shape = if eq.equivalent {
        format!("flat within +-{m} ns (90% CI [{:.3}, {:.3}])", eq.ci90[0], eq.ci90[1])
    } else if grows(f) {
        "grows".to_string()
    } else {
        format!("neither flat within +-{m} ns nor growing")
    };
    o.evidence.push_str(&format!(
        "; {mechanism}: {:+.3} [{:.3}, {:.3}] ns per foreign layer, {shape} ({why})",
        f.slope, f.slope_ci95[0], f.slope_ci95[1]
    ));
    o.numbers.insert(format!("{mechanism}_slope"), f.slope);
    o.numbers.insert(format!("{mechanism}_tost_p"), eq.p_value);
    o.compared.push(compared(r, f));
}

/// Adds claim 3's `-outside` peers of `fits` (same body and axis), where measured, to `o`.
///
/// The same program timed from a task in no handle: what every other task pays. Their slopes
/// go into the evidence and the numbers (`<name>-outside_*`); the verdict stays the pair's.
fn with_outside(r: &Results, o: &mut Outcome, fits: [(&Fit, &str); 2]) {
    let mut said = Vec::new();
    for (f, name) in fits {
        let peer = format!("{}{OUTSIDE_SUFFIX}", f.mechanism);
        let body = fit_body(r, f);
        let same_body = |p: &&Fit| fit_body(r, p) == body;
        let Some(p) = fits_of(r, &f.backend, &peer, HOOK, &f.x, &at_one_cpu_w1)
            .into_iter()
            .find(same_body)
        else {
            continue;
        };
        record(&mut o.numbers, &format!("{name}{OUTSIDE_SUFFIX}"), p);
        said.push(format!(
            "{} {:+.3} [{:.3}, {:.3}]",
            p.mechanism, p.slope, p.slope_ci95[0], p.slope_ci95[1]
        ));
    }
    if !said.is_empty() {
        o.evidence.push_str(&format!(
            "; from a task in no handle (what every other task pays): {} per {}",
            said.join(", "),
            fits[0].0.x
        ));
    }
}

/// Claim 5: bytes per cgroup grow with hooks; bytes per forked task are 0 within the margin.
///
/// The margin is relative to the bytes per cgroup at the most hooks (shared chains). The
/// evidence also gives the bytes per cgroup and hook at the most hooks, beside the model's exact
/// figure at the same hooks when the run has it, and what a task that installs its own chain
/// adds (seccomp-own) when it was measured.
fn claim_5(r: &Results, b: &str) -> Outcome {
    let m = "metadata_bytes";
    let per_cgroup = METADATA_PER_CGROUP
        .iter()
        .map(|mech| fits_of(r, b, mech, m, "cgroups", &|_| true))
        .find(|fits| !fits.is_empty())
        .unwrap_or_default();
    let task = find(r, b, &METADATA_PER_TASK, m, "tasks", &|_| true);
    let hooks = |f: &Fit| f.fixed.get("hooks").and_then(|v| v.as_f64()).unwrap_or(0.0);
    let few = per_cgroup.iter().copied().min_by(|a, b| hooks(a).total_cmp(&hooks(b)));
    let many = per_cgroup.iter().copied().max_by(|a, b| hooks(a).total_cmp(&hooks(b)));
    let (Some(t), Some(few), Some(many)) = (task, few, many) else {
        return not_run("metadata fits over cgroups (effective arrays) and over tasks (task chains)");
    };
    let mut o = grows_vs_flat(r, many, t, ("per_cgroup_many_hooks", "per_task"));
    record(&mut o.numbers, "per_cgroup_few_hooks", few);
    o.numbers.insert("few_hooks".into(), hooks(few));
    o.numbers.insert("many_hooks".into(), hooks(many));
    let margin = o.margin.unwrap_or(f64::NAN);
    let t_ci = slope_estimate(t).ci(CONFIDENCE);
    let grows_with_hooks = hooks(many) > hooks(few) && many.slope_ci95[0] > few.slope_ci95[1];
    let shrinks_with_hooks = hooks(many) > hooks(few) && many.slope_ci95[1] < few.slope_ci95[0];
    let task_flat = o.numbers.get("tost_p").is_some_and(|p| *p < 0.05);
    let (verdict, why) = if grows(few) && grows_with_hooks && task_flat {
        (
            Verdict::Supported,
            "bytes per cgroup grow with hooks; a forked task adds bytes within the margin".to_string(),
        )
    } else if beyond(t_ci, margin) || shrinks_with_hooks || few.slope_ci95[1] <= 0.0 {
        (
            Verdict::Refuted,
            "a forked task adds more than the margin, or bytes per cgroup do not grow (with hooks)".to_string(),
        )
    } else {
        (
            Verdict::Inconclusive,
            "intervals too wide for the margin, or too few hook counts to see the growth".to_string(),
        )
    };
    o.verdict = verdict;
    let per_hook = |f: &Fit| {
        let h = hooks(f).max(1.0);
        (f.slope / h, f.slope_ci95[0] / h, f.slope_ci95[1] / h)
    };
    let (ph, ph_lo, ph_hi) = per_hook(many);
    o.numbers.insert("per_cgroup_per_hook".into(), ph);
    o.numbers.insert("per_cgroup_per_hook_ci95_lo".into(), ph_lo);
    o.numbers.insert("per_cgroup_per_hook_ci95_hi".into(), ph_hi);
    let mut extra = format!(
        "; per cgroup and hook {ph:.1} [{ph_lo:.1}, {ph_hi:.1}] at {} hooks",
        hooks(many)
    );
    let model = fits_of(r, "model", METADATA_PER_CGROUP[0], m, "cgroups", &|f| {
        hooks(f) == hooks(many)
    })
    .into_iter()
    .next()
    .filter(|_| b != "model");
    if let Some(mf) = model {
        let (exact, _, _) = per_hook(mf);
        o.numbers.insert("model_per_cgroup_per_hook".into(), exact);
        // The model's extra cgroups hang off its root, outside every attach point: its figure is
        // their per-hook slots (array pointer, attached-list header), not arrays.
        extra.push_str(&format!(
            " (the model's exact figure: {exact:.1} at {} hooks, its slots of cgroups without programs)",
            hooks(mf)
        ));
    }
    let unshared = find(r, b, &METADATA_UNSHARED, m, "tasks", &|_| true);
    if let Some(u) = unshared {
        record(&mut o.numbers, "unshared_per_task", u);
        extra.push_str(&format!(
            "; a task installing its own chain adds {:.0} [{:.0}, {:.0}]",
            u.slope, u.slope_ci95[0], u.slope_ci95[1]
        ));
    }
    o.evidence = format!(
        "bytes per cgroup {:.0} at {} hooks, {:.0} at {} hooks; bytes per forked task {:.1} [{:.1}, {:.1}]{extra}; \
         margin +-{:.1}: {}",
        few.slope,
        hooks(few),
        many.slope,
        hooks(many),
        t.slope,
        t.slope_ci95[0],
        t.slope_ci95[1],
        margin,
        why
    );
    o.compared = [Some(few), Some(many), Some(t), model, unshared]
        .into_iter()
        .flatten()
        .map(|f| compared(r, f))
        .collect();
    o
}

/// Claim 6: the per-program slope rises more with the working set for the chain than the array.
///
/// The rise is from the smallest to the largest working set; "more" means the 95% CI of the
/// difference of the rises lies above 0. Only fits of the same body are compared.
fn claim_6(r: &Results, b: &str) -> Outcome {
    let ws = |f: &Fit| f.fixed.get("working_set").and_then(|v| v.as_f64()).unwrap_or(1.0);
    let in_suite = |f: &Fit| f.suite == "working-set";
    // The smallest and the largest working set of one mechanism's fits of one body.
    let extremes = |mech: &str, body: &str| -> Option<(&Fit, &Fit)> {
        let fits: Vec<&Fit> = fits_of(r, b, mech, HOOK, "programs", &in_suite)
            .into_iter()
            .filter(|f| fit_body(r, f).as_deref() == Some(body))
            .collect();
        let lo = fits.iter().copied().min_by(|a, b| ws(a).total_cmp(&ws(b)))?;
        let hi = fits.iter().copied().max_by(|a, b| ws(a).total_cmp(&ws(b)))?;
        (ws(hi) > ws(lo)).then_some((lo, hi))
    };
    let mut bodies: Vec<String> = r
        .fits
        .iter()
        .filter(|f| f.backend == b && in_suite(f))
        .filter_map(|f| fit_body(r, f))
        .collect();
    bodies.sort_by_key(|x| body_rank(x));
    bodies.dedup();
    let found = WORKING_SET_PAIRS.iter().find_map(|(mc, me)| {
        bodies
            .iter()
            .find_map(|body| Some((extremes(mc, body)?, extremes(me, body)?)))
    });
    let Some(((c1, cw), (e1, ew))) = found else {
        return not_run("working-set fits over programs at two working sets for both models, with the same body");
    };
    let rise = combine(&[
        (1.0, slope_estimate(cw)),
        (-1.0, slope_estimate(c1)),
        (-1.0, slope_estimate(ew)),
        (1.0, slope_estimate(e1)),
    ]);
    let ci = rise.ci(CONFIDENCE);
    let rise_c = cw.slope - c1.slope;
    let rise_e = ew.slope - e1.slope;
    let mut nums = BTreeMap::new();
    record(&mut nums, "chain_w1", c1);
    record(&mut nums, "chain_wmax", cw);
    record(&mut nums, "effective_w1", e1);
    record(&mut nums, "effective_wmax", ew);
    nums.insert("chain_rise".into(), rise_c);
    nums.insert("effective_rise".into(), rise_e);
    nums.insert("rise_difference".into(), rise.value);
    nums.insert("rise_difference_se".into(), rise.se);
    nums.insert("rise_difference_ci95_lo".into(), ci[0]);
    nums.insert("rise_difference_ci95_hi".into(), ci[1]);
    let verdict = if ci[0] > 0.0 {
        Verdict::Supported
    } else if ci[1] < 0.0 {
        Verdict::Refuted
    } else {
        Verdict::Inconclusive
    };
    let why = match verdict {
        Verdict::Supported => "the chain's rises more",
        Verdict::Refuted => "the effective array's rises more",
        _ => "intervals too wide: the 95% CI of the difference holds 0",
    };
    let mut evidence = format!(
        "per-program slope rise from W={} to W={}: task-chain ({}) {:+.3} ns, cgroup-effective ({}) {:+.3} ns; \
         difference {:+.3} [{:.3}, {:.3}]: {}",
        ws(c1),
        ws(cw),
        c1.mechanism,
        rise_c,
        e1.mechanism,
        rise_e,
        rise.value,
        ci[0],
        ci[1],
        why
    );
    if let (Some(chain), Some(array)) = (largest_working_set(r, cw), largest_working_set(r, ew)) {
        evidence.push_str(&cache_sentence(ws(cw), &chain, &array));
        for (name, w) in [("chain_wmax", &chain), ("effective_wmax", &array)] {
            nums.insert(format!("{name}_bytes"), w.bytes as f64);
        }
        if let Some(llc) = chain.llc_bytes {
            nums.insert("llc_bytes".into(), llc as f64);
        }
        if let Some(l2) = chain.l2_bytes {
            nums.insert("l2_bytes".into(), l2 as f64);
        }
    }
    Outcome {
        verdict,
        evidence,
        numbers: nums,
        compared: vec![compared(r, c1), compared(r, cw), compared(r, e1), compared(r, ew)],
        margin: None,
    }
}

/// The working set of the cell of fit `f` with the most programs, when its cells recorded one.
fn largest_working_set(r: &Results, f: &Fit) -> Option<WorkingSetBytes> {
    r.cells_of(f)
        .into_iter()
        .filter_map(|c| c.working_set.as_ref().map(|w| (c.params.programs, w)))
        .max_by_key(|(programs, _)| *programs)
        .map(|(_, w)| w.clone())
}

/// "; at W=4096 the chain reads 16.5 MiB, the array 9.2 MiB ...: past the L2, within the LLC".
///
/// It says whether the sweep's largest working set went past the last-level cache: the rise is
/// a cold-cache rise only as far as the rotation's bytes exceed the caches.
fn cache_sentence(w: f64, chain: &WorkingSetBytes, array: &WorkingSetBytes) -> String {
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20));
    let caches = match (chain.l2_bytes, chain.llc_bytes) {
        (Some(l2), Some(llc)) => format!(" (L2 {}, LLC {})", mib(l2), mib(llc)),
        _ => String::new(),
    };
    let level = if chain.level() == array.level() {
        format!("both {}", chain.level())
    } else {
        format!("chain {}, array {}", chain.level(), array.level())
    };
    format!(
        "; at W={w} a rotation reads {} through the chains and {} through the arrays of dispatch metadata and \
         programs{caches}: {level}",
        mib(chain.bytes),
        mib(array.bytes)
    )
}
