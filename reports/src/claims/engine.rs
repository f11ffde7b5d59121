//! What each claim compares, and the evaluation of every claim on every backend of a run.

use super::pairs::{
    at_one_cpu_w1, body_rank, compared, find, fit_body, fits_of, like_pair, Pairing, CHAIN_VS_EFFECTIVE,
    EFFECTIVE_ATTACH, FILTER_BODIES, HANDLES, HOOK, METADATA_PER_CGROUP, METADATA_PER_TASK, METADATA_UNSHARED,
    TASK_INSTALL, WORKING_SET_PAIRS,
};
use super::verdict::{beyond, grows, grows_vs_flat, not_run, record, slope_estimate, the_same, unpaired, Outcome};
use super::{ClaimResult, Verdict, CONFIDENCE, HYPOTHESES};
use crate::schema::{Fit, Results};
use hookbench_measure::estimate::combine;
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
        1 => match like_pair(r, b, &CHAIN_VS_EFFECTIVE, HOOK, "foreign", &at_one_cpu_w1) {
            Pairing::Found(c, e) => grows_vs_flat(r, c, e, ("task-chain", "cgroup-effective")),
            other => {
                let found: Vec<&str> = CHAIN_VS_EFFECTIVE
                    .iter()
                    .flat_map(|(a, b)| [*a, *b])
                    .filter(|m| !fits_of(r, b, m, HOOK, "foreign", &at_one_cpu_w1).is_empty())
                    .collect();
                let mut what =
                    "fits over foreign of a task chain and an effective array on the same trigger and body".to_string();
                if b == "kernel" {
                    what.push_str(" (seccomp filters for other syscalls are not measured yet)");
                }
                if !found.is_empty() {
                    what.push_str(&format!("; measured: {}", found.join(", ")));
                }
                unpaired(r, other, &CHAIN_VS_EFFECTIVE, &what)
            }
        },
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
            Pairing::Found(h, m) => grows_vs_flat(r, h, m, ("handle-loop", "cgroup-id-map")),
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

/// Claim 5: bytes per cgroup grow with hooks; bytes per forked task are 0 within the margin.
///
/// The margin is relative to the bytes per cgroup at the most hooks (shared chains). The evidence also gives the bytes per cgroup and hook at the most hooks, beside the model's
/// exact figure at the same hooks when the run has it, and what a task that installs its own
/// chain adds (seccomp-own) when it was measured.
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

/// Claim 6: the rise of the per-program slope from the smallest to the largest working set is
/// larger for the task chain than for the effective array (95% CI of the difference of the
/// rises above 0); fits of the same body only.
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
    let evidence = format!(
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
    Outcome {
        verdict,
        evidence,
        numbers: nums,
        compared: vec![compared(r, c1), compared(r, cw), compared(r, e1), compared(r, ew)],
        margin: None,
    }
}
