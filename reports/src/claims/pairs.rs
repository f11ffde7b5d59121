//! Which fits a claim compares: the mechanisms it pairs per trigger and the like-with-like search.
//!
//! Mechanism names are the results' `mechanism` field; the pairs are in preference order, so a
//! backend that measured several realisations of a model is compared on the first it has.

use super::Compared;
use crate::schema::{Fit, Results};
use std::collections::BTreeSet;

/// Task-chain and cgroup-effective mechanisms that ran on the same trigger, in preference order.
///
/// The model's walk and array; on the kernel, argument-loading seccomp filters timed on
/// getsockname() against cgroup/getsockname4 programs on the same call, else seccomp and
/// cgroup/sock_create programs both on socket(); hookbench.ko's models on its one hook.
pub const CHAIN_VS_EFFECTIVE: [(&str, &str); 4] = [
    ("chain-walk", "effective-array"),
    ("seccomp-getsockname", "cgroup-bpf"),
    ("seccomp-socket", "cgroup-bpf-socket"),
    ("task-chain", "cgroup-effective"),
];
/// Claim 1's pairs of a task chain and an effective array, in preference order.
///
/// The model's walk and array; on the kernel, number-first seccomp filters for another syscall
/// (libseccomp's shape) below on-hook filters against cgroup/getsockname4 programs with foreign
/// programs on other attach types, both timed on getsockname(); hookbench.ko's models.
pub const FOREIGN_PAIRS: [(&str, &str); 3] = [
    ("chain-walk", "effective-array"),
    ("seccomp-foreign-nr-first", "cgroup-bpf"),
    ("task-chain", "cgroup-effective"),
];
/// Claim 1's other seccomp shapes, reported beside the verdict with what decides them.
///
/// The argument loaded before the number check (the action cache cannot skip it), and
/// number-first filters alone (the action cache skips the chain).
pub(super) const FOREIGN_SHAPES: [(&str, &str); 2] = [
    (
        "seccomp-foreign-arg-first",
        "argument loaded before the number: the action cache cannot prove it, it runs on every syscall",
    ),
    (
        "seccomp-foreign-cached",
        "number-first filters alone: the action cache (5.11+) proves getsockname allowed and skips them",
    ),
];
/// Claim 1's Landlock chain, reported beside the verdict: no effective-array peer on `open()`.
///
/// Network-only layers above filesystem ones, timed on `open()`: whether the fs hook's cost per
/// foreign layer is flat within the suite's absolute margin, and what the kernel does with them.
pub(super) const FOREIGN_LANDLOCK: (&str, &str) = (
    "landlock-foreign-net",
    "network-only layers above the fs layers on open(): hook_file_open tests each one's fs mask in \
     landlock_get_applicable_subject and landlock_init_layer_masks, no rule lookup",
);
/// Claim 6's pairs: the model's walk and array, the kernel's rings, hookbench.ko's models.
///
/// On the kernel: W tasks each with its own seccomp chain against W tasks each in its own
/// cgroup with its own programs, both timed on getsockname() (`hookbench worker ring`). In
/// hookbench.ko: RUN over W copies of a task's chain against W copies of a cgroup's effective
/// arrays, with the built-in null body first (a native call, the dispatch alone even without a
/// BPF JIT), else the suite's BPF body.
pub(super) const WORKING_SET_PAIRS: [(&str, &str); 4] = [
    ("chain-walk", "effective-array"),
    ("seccomp-working-set", "cgroup-bpf-working-set"),
    ("task-chain-builtin", "cgroup-effective-builtin"),
    ("task-chain", "cgroup-effective"),
];
/// Claim 3's pairs: a loop over cgroup handles against one cgroup-id map lookup.
///
/// The model's; on the kernel, one global `raw_tp/sys_enter` program of either form, timed on
/// getppid() from a task in the last handle.
pub(super) const HANDLES: [(&str, &str); 2] = [
    ("handle-loop", "cgroup-id-map"),
    ("rawtp-handle-loop", "rawtp-cgroup-id-map"),
];
/// The suffix naming a claim-3 mechanism timed from a task in no handle (every other task).
///
/// E.g. `rawtp-handle-loop-outside`; its slope is said beside the verdict, which it does not change.
pub(super) const OUTSIDE_SUFFIX: &str = "-outside";
/// Claim 7's pair: argument-loading seccomp filters against number-only ones (action cache).
pub(super) const FILTER_BODIES: [(&str, &str); 1] = [("seccomp-arg-load", "seccomp-nr-only")];
/// Mechanisms realising per-cgroup effective arrays for attach, one per backend.
///
/// They are the model's, cgroup-bpf (kernel) and hookbench.ko's `cgroup-effective` (kmod).
pub(super) const EFFECTIVE_ATTACH: [&str; 3] = ["effective-array", "cgroup-bpf", "cgroup-effective"];
/// Per-task installs: the model's chain, seccomp filters and Landlock layers, hookbench.ko's.
pub(super) const TASK_INSTALL: [&str; 4] = ["chain-walk", "seccomp-arg-load", "landlock", "task-chain"];
/// Claim 5's per-cgroup metadata: the model's effective arrays, cgroup-bpf's on the kernel.
///
/// In preference order, as the other lists; the model's comes first, so its exact figure is the
/// one quoted beside another backend's.
pub(super) const METADATA_PER_CGROUP: [&str; 2] = ["effective-array", "cgroup-bpf"];
/// Claim 5's per-task metadata of chains shared across fork: the model's, seccomp's.
pub(super) const METADATA_PER_TASK: [&str; 2] = ["chain-walk", "seccomp-shared"];
/// Per-task metadata of chains every task installs itself (the kernel's reference for sharing).
pub(super) const METADATA_UNSHARED: [&str; 1] = ["seccomp-own"];
/// The metric of the hook claims (1, 2, 3, 6, 7).
pub(super) const HOOK: &str = "hook_latency_ns";

/// Fits at one CPU and a working set of one (or not swept over them): dispatch alone.
pub(super) fn at_one_cpu_w1(f: &Fit) -> bool {
    let fixed = |axis: &str| f.fixed.get(axis).and_then(|v| v.as_f64());
    fixed("working_set").is_none_or(|w| w <= 1.0) && fixed("cpus").is_none_or(|c| c <= 1.0)
}

/// The program body a fit's cells ran: `fixed["body"]`, else the one body of its cells.
pub fn fit_body(results: &Results, f: &Fit) -> Option<String> {
    if let Some(b) = f.fixed.get("body").and_then(|v| v.as_str()) {
        return Some(b.to_string());
    }
    let bodies: BTreeSet<String> = results.cells_of(f).iter().map(|c| c.params.body.to_string()).collect();
    match bodies.len() {
        1 => bodies.into_iter().next(),
        _ => None,
    }
}

/// Where fit `f` comes from, for [`Compared`] lists.
pub(super) fn compared(results: &Results, f: &Fit) -> Compared {
    Compared {
        suite: f.suite.clone(),
        backend: f.backend.clone(),
        mechanism: f.mechanism.clone(),
        body: fit_body(results, f).unwrap_or_else(|| "unknown".to_string()),
        x: f.x.clone(),
    }
}

/// Every fit on `backend` of `mechanism` for `metric` over `x` that `keep` accepts.
pub(super) fn fits_of<'a>(
    r: &'a Results,
    backend: &str,
    mechanism: &str,
    metric: &str,
    x: &str,
    keep: &dyn Fn(&Fit) -> bool,
) -> Vec<&'a Fit> {
    r.fits
        .iter()
        .filter(|f| f.backend == backend && f.mechanism == mechanism && f.metric == metric && f.x == x && keep(f))
        .collect()
}

/// The first fit on `backend` of one of `mechanisms` (in preference order).
pub(super) fn find<'a>(
    r: &'a Results,
    backend: &str,
    mechanisms: &[&str],
    metric: &str,
    x: &str,
    keep: &dyn Fn(&Fit) -> bool,
) -> Option<&'a Fit> {
    mechanisms
        .iter()
        .find_map(|m| fits_of(r, backend, m, metric, x, keep).into_iter().next())
}

/// Preference among bodies when a sweep ran several: the null body isolates dispatch.
pub(super) fn body_rank(body: &str) -> usize {
    ["null", "counter", "map-lookup"]
        .iter()
        .position(|b| *b == body)
        .unwrap_or(3)
}

/// How a pair of mechanisms was found on a backend.
pub(super) enum Pairing<'a> {
    /// Two fits with the same body (and, by the pair's choice, the same trigger).
    Found(&'a Fit, &'a Fit),
    /// Both mechanisms were measured, but never with the same body.
    Unlike(&'a Fit, &'a Fit),
    /// At least one side of every pair is missing.
    Missing,
}

/// The first pair of `pairs` with fits on `backend` that ran the same program body.
///
/// `pairs` are mechanisms on the same trigger, in preference order; the null body comes first
/// when several match.
pub(super) fn like_pair<'a>(
    r: &'a Results,
    backend: &str,
    pairs: &[(&str, &str)],
    metric: &str,
    x: &str,
    keep: &dyn Fn(&Fit) -> bool,
) -> Pairing<'a> {
    let mut unlike = None;
    for (ma, mb) in pairs {
        let fa = fits_of(r, backend, ma, metric, x, keep);
        let fb = fits_of(r, backend, mb, metric, x, keep);
        let mut best: Option<(usize, &Fit, &Fit)> = None;
        for a in &fa {
            let Some(body) = fit_body(r, a) else { continue };
            for b in &fb {
                if fit_body(r, b).as_deref() == Some(body.as_str())
                    && best.is_none_or(|(rank, _, _)| body_rank(&body) < rank)
                {
                    best = Some((body_rank(&body), *a, *b));
                }
            }
        }
        if let Some((_, a, b)) = best {
            return Pairing::Found(a, b);
        }
        if unlike.is_none() {
            if let (Some(a), Some(b)) = (fa.first(), fb.first()) {
                unlike = Some(Pairing::Unlike(a, b));
            }
        }
    }
    unlike.unwrap_or(Pairing::Missing)
}
