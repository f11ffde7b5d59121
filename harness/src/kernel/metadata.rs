//! Metadata cells of the kernel backend: claim 5's kernel bytes per cgroup and per task.
//!
//! Both are counted by object ([`hookbench_workloads::kmem`]: the kmalloc caches of
//! /proc/slabinfo right after SLUB's shrink, and BPF's vmalloc pages), never as kB totals;
//! cgroup-bpf's without the memcg-accounted `kmalloc-cg-` caches, where it allocates nothing.
//!
//! - `cgroup-bpf`: one program on each of `hooks` attach types attached at the top of a subtree
//!   of `cgroups` cgroups (every cgroup gets one effective array per type). The fit over
//!   `cgroups` is bytes per cgroup at `hooks` attach types.
//! - `seccomp-shared` / `seccomp-own`: `tasks` idle tasks holding `programs` seccomp filters,
//!   shared across fork or installed by each, made by the exec'd metadata worker, less the same
//!   tasks without filters. The fit over `tasks` is bytes per task.

use super::{KernelBackend, KernelMechanism, NAME};
use crate::backend::{interleaved, note_validity, plain_cell, worker_failure, CellError, CellSpec, Cells, Measured};
use hookbench_model::Params;
use hookbench_reports::ValidityFlag;
use hookbench_workloads::cgroupfs::{RunTree, Shape};
use hookbench_workloads::kmem::{Caches, KmemCounter, KmemDelta, QUIET_TOLERANCE_BYTES};
use hookbench_workloads::metadata::{
    EffectiveArrays, MetadataReport, MetadataRequest, MetadataWorker, Sharing, SETTLE_TIMEOUT, SETTLE_TOLERANCE_BYTES,
};

/// Fewest repetitions of a kernel metadata cell, whatever the profile says.
///
/// Each repetition is one fit point (the suite's profiles ask for more: the model's metadata is
/// exact and reads one); three let a single outlier be told from the rest.
pub const METADATA_MIN_REPETITIONS: usize = 3;

/// Bytes of one effective array with one program: a 16-byte `rcu_head` and two 24-byte items.
///
/// `bpf_prog_array_alloc(1, ...)` in kernel/bpf/core.c (the program and the NULL end): a
/// `kmalloc-64` object.
pub const ONE_PROGRAM_ARRAY_BYTES: u64 = 64;

/// How far from a cell's median a repetition may lie and still count: robust SDs (MAD).
///
/// A repetition beyond [`OUTLIER_MADS`] x 1.4826 MAD + [`OUTLIER_FLOOR_BYTES`] of the median
/// carried another process's allocations between its two readings; it is left out of the cell
/// and the note says how many were.
pub const OUTLIER_MADS: f64 = 5.0;

/// Deviation from the median always tolerated (one page), for cells whose MAD is 0.
pub const OUTLIER_FLOOR_BYTES: f64 = 4096.0;

/// Most attempts per repetition wanted, busy ones (see [`note_busy`]) included.
pub const MAX_ATTEMPTS_PER_REPETITION: usize = 2;

/// The 95% level of the notes' intervals (the claims' level).
const CONFIDENCE: f64 = 0.95;

/// The median of `values` (the lower middle value for an even count); NaN when empty.
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    hookbench_measure::stats::percentile_sorted(&v, 0.5)
}

/// `name +bytes` of the largest changes, for a validity note.
fn caches_text(by_cache: &[(String, i64)]) -> String {
    by_cache
        .iter()
        .take(4)
        .map(|(c, b)| format!("{c} {b:+}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The cell of one value per repetition, a minority of outliers left out, with notes on how.
///
/// `per_unit` is what one unit of the cell's x is made of (`(cgroups + 1) x hooks` effective
/// arrays, or `tasks`): the second note gives the mean per unit with its 95% CI half-width.
fn metadata_cell(
    spec: &CellSpec<'_>,
    mechanism: KernelMechanism,
    params: Params,
    values: &[f64],
    (per_unit, unit): (f64, &str),
    how: String,
) -> Result<Measured, CellError> {
    let (mut kept, mut dropped) = hookbench_measure::estimate::mad_inliers(values, OUTLIER_MADS, OUTLIER_FLOOR_BYTES);
    // Outliers are a minority by definition: keep everything when fewer than half, or than
    // three, would remain.
    if kept.len() < 3 || 2 * kept.len() <= values.len() {
        (kept, dropped) = (values.to_vec(), 0);
    }
    let reps: Vec<Vec<f64>> = kept.iter().map(|v| vec![*v]).collect();
    let mut m = plain_cell(spec, NAME, mechanism.as_str(), params, "metadata_bytes", "bytes", &reps)?;
    note_validity(&mut m.cell, how);
    let spread = match hookbench_measure::estimate::mean_with_se(&kept) {
        Ok(e) if per_unit > 0.0 => {
            let (v, hw) = (e.value / per_unit, e.half_width(CONFIDENCE) / per_unit);
            format!(
                "mean {v:.2} bytes per {unit}, 95% CI half-width {hw:.2} ({:.2}% of the value)",
                100.0 * hw / v.abs()
            )
        }
        _ => "too few repetitions kept for an interval".to_string(),
    };
    note_validity(
        &mut m.cell,
        format!(
            "{spread}; {dropped} of {} repetitions left out as outliers (beyond {OUTLIER_MADS} x 1.4826 MAD + \
             {OUTLIER_FLOOR_BYTES} bytes of the median: other processes' allocations between the readings)",
            values.len()
        ),
    );
    Ok(m)
}

/// Busy repetitions to keep: none when the quiet ones reach [`METADATA_MIN_REPETITIONS`].
///
/// Else the busy ones fill up to `reps`.
fn busy_to_keep(quiet: usize, busy: usize, reps: usize) -> usize {
    if quiet >= METADATA_MIN_REPETITIONS {
        0
    } else {
        busy.min(reps.saturating_sub(quiet))
    }
}

/// The `n` measurements of `busy` whose null windows changed least, by background bytes.
fn quietest<T>(mut busy: Vec<(i64, T)>, n: usize) -> impl Iterator<Item = T> {
    busy.sort_by_key(|(background, _)| *background);
    busy.into_iter().take(n).map(|(_, t)| t)
}

/// Says how many of `attempts` were measured while others were busy, and flags any kept.
///
/// An attempt is busy when a null window beside it changed the counted bytes by more than
/// [`QUIET_TOLERANCE_BYTES`]; busy ones are measured again, and kept (`busy_kept`, flagged
/// `busy-system`) only when too few quiet ones came in `attempts`.
fn note_busy(cell: &mut hookbench_reports::Cell, attempts: usize, kept: usize, busy_kept: usize) {
    note_validity(
        cell,
        format!(
            "{attempts} attempt(s) for {kept} repetition(s): an attempt whose 50 ms null windows (before and after) \
             saw the counted bytes change by more than {QUIET_TOLERANCE_BYTES} bytes (other processes) was measured \
             again"
        ),
    );
    if busy_kept > 0 {
        cell.validity.flags.push(ValidityFlag {
            code: "busy-system".into(),
            why: format!(
                "{busy_kept} of {kept} repetitions were measured while other processes changed kernel memory by more \
                 than {QUIET_TOLERANCE_BYTES} bytes in a null window beside them"
            ),
        });
    }
}

impl KernelBackend {
    /// Kernel bytes of the effective arrays of `hooks` attach types over `cgroups` cgroups.
    ///
    /// The cell builds its own tree in the run: a keeper cgroup where every program stays
    /// attached (so no static key flips inside a measurement) and one subtree per repetition,
    /// a top with `cgroups` children. After the counted memory has settled, each repetition
    /// reads it, attaches the `hooks` programs at its subtree's top (one `BPF_LINK_CREATE` each:
    /// `(cgroups + 1) x hooks` new arrays), and reads it again, between two null windows
    /// ([`KmemCounter::measure`]); a repetition whose null windows were busy is taken again on
    /// a fresh subtree. Links stay attached until every repetition is done, so nothing is freed
    /// in between; the harness makes no other allocation between the two readings. Then the
    /// links are closed and the tree removed.
    pub(super) fn cgroup_bpf_metadata_cell(&mut self, spec: &CellSpec<'_>) -> Cells {
        let p = spec.params;
        let mechanism = KernelMechanism::CgroupBpf;
        let skip = |what: &str, e: String| CellError::Skip(format!("{}: {what}: {e}", mechanism.as_str()));
        // Nothing of a cgroup-bpf attach is memcg-accounted: the kmalloc-cg- caches, where other
        // processes' churn is, stay out.
        let counter =
            KmemCounter::new(Caches::Unaccounted).map_err(|e| skip("counting kernel memory", e.to_string()))?;
        let reps = spec.repetitions.max(METADATA_MIN_REPETITIONS);
        let run = self.run_tree()?;
        let mut cell = RunTree::create_under(run.root()).map_err(|e| skip("the cell's cgroups", e.to_string()))?;
        let keeper = cell
            .child("keeper")
            .map_err(|e| skip("the keeper cgroup", e.to_string()))?;
        let arrays = EffectiveArrays::load(p.hooks, p.body, &keeper).map_err(|e| skip("loading", e.to_string()))?;
        let mut subtrees = Vec::with_capacity(reps);
        for _ in 0..reps {
            let mut sub = RunTree::create_under(cell.root()).map_err(|e| skip("a subtree", e.to_string()))?;
            sub.build(Shape::Wide, p.cgroups)
                .map_err(|e| skip("the subtree's cgroups", e.to_string()))?;
            subtrees.push(sub);
        }
        let settle = || {
            counter
                .settle(SETTLE_TOLERANCE_BYTES, SETTLE_TIMEOUT)
                .map_err(|e| skip("counting kernel memory", e.to_string()))
        };
        settle()?;
        let (mut quiet, mut busy): (Vec<KmemDelta>, Vec<(i64, KmemDelta)>) = (Vec::with_capacity(reps), Vec::new());
        let mut held = Vec::with_capacity(reps);
        while quiet.len() < reps && held.len() < MAX_ATTEMPTS_PER_REPETITION * reps {
            if held.len() == subtrees.len() {
                // A busy attempt used its subtree up: another one, and time to settle after the mkdirs.
                let mut sub = RunTree::create_under(cell.root()).map_err(|e| skip("a subtree", e.to_string()))?;
                sub.build(Shape::Wide, p.cgroups)
                    .map_err(|e| skip("the subtree's cgroups", e.to_string()))?;
                subtrees.push(sub);
                settle()?;
            }
            let top = subtrees[held.len()].root().to_path_buf();
            let (m, links) = counter
                .measure(|| arrays.attach_at(&top))
                .map_err(|e| skip("attaching and counting", e.to_string()))?;
            held.push(links);
            if m.quiet() {
                quiet.push(m.delta);
            } else {
                busy.push((m.background_bytes, m.delta));
            }
        }
        let attempts = held.len();
        drop(held);
        drop(arrays);
        for sub in subtrees {
            sub.teardown().map_err(|e| skip("removing a subtree", e.to_string()))?;
        }
        cell.teardown()
            .map_err(|e| skip("removing the cell's cgroups", e.to_string()))?;
        let busy_kept = busy_to_keep(quiet.len(), busy.len(), reps);
        let deltas: Vec<KmemDelta> = quiet.into_iter().chain(quietest(busy, busy_kept)).collect();
        let values: Vec<f64> = deltas.iter().map(|d| d.bytes as f64).collect();
        let arrays_made = (u64::from(p.cgroups) + 1) * u64::from(p.hooks);
        let mid = median(&values);
        let k64 = |d: &KmemDelta| {
            d.by_cache
                .iter()
                .find(|(c, _)| c == "kmalloc-64")
                .map_or(0, |(_, b)| *b)
        };
        let mid_delta = deltas.iter().min_by(|a, b| {
            ((a.bytes as f64) - mid)
                .abs()
                .total_cmp(&((b.bytes as f64) - mid).abs())
        });
        let how = format!(
            "counted by object: the unaccounted kmalloc caches (not kmalloc-cg-) of /proc/slabinfo after SLUB \
             shrink, plus bpf_* vmalloc pages, before and after {hooks} BPF_LINK_CREATE(s) at the top of {c} cgroups ({arrays_made} effective arrays of \
             {ONE_PROGRAM_ARRAY_BYTES} bytes expected, {exp} bytes); median of {n} repetitions {mid:.0} bytes = \
             {per:.1} per cgroup and attach type; in the median repetition kmalloc-64 grew {k} bytes ({objs} \
             objects); largest changes: {top}",
            hooks = p.hooks,
            n = values.len(),
            c = p.cgroups,
            exp = arrays_made * ONE_PROGRAM_ARRAY_BYTES,
            per = mid / arrays_made.max(1) as f64,
            k = mid_delta.map_or(0, k64),
            objs = mid_delta.map_or(0, |d| k64(d) / ONE_PROGRAM_ARRAY_BYTES as i64),
            top = mid_delta.map(|d| caches_text(&d.by_cache)).unwrap_or_default(),
        );
        // One program on each attach type: the measured hook's and hooks - 1 foreign ones.
        let params = Params {
            programs: 1,
            foreign: p.hooks.saturating_sub(1),
            tasks: 0,
            ..p
        };
        let unit = (arrays_made as f64, "cgroup and attach type");
        let mut m = metadata_cell(spec, mechanism, params, &values, unit, how)?;
        note_busy(&mut m.cell, attempts, values.len(), busy_kept);
        Ok(vec![m])
    }

    /// Kernel bytes of `tasks` tasks' seccomp chains, shared across fork or installed by each.
    ///
    /// Per repetition the exec'd metadata worker runs twice in a seeded order, in a leaf cgroup
    /// made for the cell: with `programs` filters (installed before its fork for
    /// `seccomp-shared`, by every task for `seccomp-own`) and without any. Each counts kernel
    /// memory before its tasks exist and once all hold their filters, between two null windows,
    /// then kills and reaps them; the cell's value is the difference of the two, so the tasks'
    /// own structures cancel. A pair with a busy null window is measured again.
    pub(super) fn seccomp_metadata_cell(&mut self, mechanism: KernelMechanism, spec: &CellSpec<'_>) -> Cells {
        let p = spec.params;
        let skip = |what: &str, e: String| CellError::Skip(format!("{}: {what}: {e}", mechanism.as_str()));
        if let Err(why) = &self.support.cgroup_bpf {
            return Err(skip(
                "needs root and a cgroup v2 mount (reads /proc/slabinfo; keeps its tasks in the run's cgroups)",
                why.clone(),
            ));
        }
        let sharing = if mechanism == KernelMechanism::SeccompShared {
            Sharing::Shared
        } else {
            Sharing::Own
        };
        let reps = spec.repetitions.max(METADATA_MIN_REPETITIONS);
        let tasks = p.tasks.max(1);
        let exe = self.exe.clone();
        let run = self.run_tree()?;
        let mut cell = RunTree::create_under(run.root()).map_err(|e| skip("the cell's cgroups", e.to_string()))?;
        let home = cell
            .child("tasks")
            .map_err(|e| skip("the tasks' cgroup", e.to_string()))?;
        let worker = |filters: u32| -> Result<MetadataReport, CellError> {
            let req = MetadataRequest {
                home: home.clone(),
                tasks,
                filters,
                sharing,
            };
            let r = hookbench_workloads::worker::spawn::<MetadataWorker>(&exe, &req)
                .map_err(|e| worker_failure("metadata", e))?;
            if let Some(seen) = r.filters_seen.iter().find(|n| **n != filters) {
                return Err(skip(
                    "checking the tasks' chains",
                    format!(
                        "a task holds {seen} seccomp filters (Seccomp_filters of /proc/PID/status), {filters} expected"
                    ),
                ));
            }
            Ok(r)
        };
        // Pairs (without, with) whose null windows were quiet; busy ones are measured again.
        let quiet_report = |r: &MetadataReport| r.background_bytes <= QUIET_TOLERANCE_BYTES;
        let (mut pairs, mut busy): (Vec<_>, Vec<(i64, _)>) = (Vec::with_capacity(reps), Vec::new());
        let mut attempts = 0;
        let mut measured = Ok(());
        while pairs.len() < reps && attempts < MAX_ATTEMPTS_PER_REPETITION * reps {
            let want = reps - pairs.len();
            let round = interleaved(spec.seed.wrapping_add(attempts as u64), want, |baseline| {
                worker(if baseline { 0 } else { p.programs })
            });
            let (base, with) = match round {
                Ok(r) => r,
                Err(e) => {
                    measured = Err(e);
                    break;
                }
            };
            attempts += want;
            for pair in base.into_iter().zip(with) {
                if quiet_report(&pair.0) && quiet_report(&pair.1) {
                    pairs.push(pair);
                } else {
                    busy.push((pair.0.background_bytes.max(pair.1.background_bytes), pair));
                }
            }
        }
        // The workers have exited and their tasks with them: the cell's tree holds no task.
        let torn = cell.teardown();
        measured?;
        torn.map_err(|e| skip("removing the cell's cgroups", e.to_string()))?;
        let busy_kept = busy_to_keep(pairs.len(), busy.len(), reps);
        pairs.extend(quietest(busy, busy_kept));
        let (base, with): (Vec<MetadataReport>, Vec<MetadataReport>) = pairs.into_iter().unzip();
        let values: Vec<f64> = with
            .iter()
            .zip(&base)
            .map(|(w, b)| (w.bytes - b.bytes) as f64)
            .collect();
        let mid = median(&values);
        let mid_rep = with.iter().zip(&base).min_by(|a, b| {
            ((a.0.bytes - a.1.bytes) as f64 - mid)
                .abs()
                .total_cmp(&((b.0.bytes - b.1.bytes) as f64 - mid).abs())
        });
        let how = format!(
            "counted by object (kmalloc caches after SLUB shrink, bpf_* vmalloc pages) by the exec'd metadata worker \
             before and after creating {tasks} tasks, {} filters ({}) less the same without: median of {n} \
             repetitions {mid:.0} bytes = {:.2} per task; median repetition with filters: slab {:+}, bpf vmalloc \
             {:+} bytes ({}); without: {:+} bytes",
            p.programs,
            match sharing {
                Sharing::Shared => "installed before the fork, shared",
                Sharing::Own => "installed by every task",
            },
            mid / f64::from(tasks),
            mid_rep.map_or(0, |r| r.0.slab_bytes),
            mid_rep.map_or(0, |r| r.0.bpf_vmalloc_bytes),
            mid_rep.map(|r| caches_text(&r.0.by_cache)).unwrap_or_default(),
            mid_rep.map_or(0, |r| r.1.bytes),
            n = values.len(),
        );
        // The tasks live in one cgroup.
        let params = Params {
            tasks,
            foreign: 0,
            cgroups: 1,
            ..p
        };
        let unit = (f64::from(tasks), "task");
        let mut m = metadata_cell(spec, mechanism, params, &values, unit, how)?;
        note_busy(&mut m.cell, attempts, values.len(), busy_kept);
        Ok(vec![m])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    /// More attach types than hookbench has programs for are refused, naming the limit.
    ///
    /// The shipped suite keeps each kernel mechanism on its own axes.
    #[test]
    fn metadata_sweeps_stay_within_the_attach_types_and_on_their_axes() {
        let text = "name = \"t\"\nhypothesis = \"h\"\nmetric = \"metadata_bytes\"\n[backend.kernel]\n\
                    mechanisms = [\"cgroup-bpf\"]\n[profiles.smoke]\nsamples = 1\nrepetitions = 1\n\
                    sweep.hooks = [2, 8]\nsweep.cgroups = [16, 256]\n";
        let e = Suite::parse(text, "t.toml").expect_err("8 attach types").to_string();
        assert!(
            e.contains("'cgroup-bpf' for hooks = 8")
                && e.contains("getsockname4, sock_create, sysctl, getsockopt, dev")
                && e.contains("max.cgroup-bpf.hooks = 5"),
            "{e}"
        );
        let over =
            text.replace("[2, 8]", "[2, 5]").replace("cgroup-bpf", "seccomp-own") + "sweep.programs = [4, 2000]\n";
        let e = Suite::parse(&over, "t.toml").expect_err("2,000 filters").to_string();
        assert!(e.contains("MAX_INSNS_PER_PATH"), "{e}");
        let shipped = Suite::parse(include_str!("../../../suites/metadata.toml"), "metadata.toml").expect("parses");
        let plan = shipped.plan("quick").expect("quick");
        let admitted = |name: &str| {
            let m = shipped
                .mechanisms_for(NAME)
                .iter()
                .find(|m| m.name == name)
                .expect("named");
            plan.points.iter().filter(|p| m.admits(p)).count()
        };
        // cgroup-bpf: 2 attach-type counts x 4 cgroup counts; seccomp: 3 task counts each.
        assert_eq!(
            (
                admitted("cgroup-bpf"),
                admitted("seccomp-shared"),
                admitted("seccomp-own")
            ),
            (8, 3, 3)
        );
    }

    #[test]
    fn busy_repetitions_fill_in_only_when_too_few_are_quiet() {
        assert_eq!(busy_to_keep(7, 5, 7), 0);
        assert_eq!(busy_to_keep(3, 5, 7), 0);
        assert_eq!(busy_to_keep(1, 5, 7), 5);
        assert_eq!(busy_to_keep(1, 9, 7), 6);
        let kept: Vec<&str> = quietest(vec![(900, "a"), (20, "b"), (300, "c")], 2).collect();
        assert_eq!(kept, ["b", "c"]);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.0);
        assert!(median(&[]).is_nan());
        assert_eq!(
            caches_text(&[("kmalloc-64".into(), 640), ("kmalloc-cg-256".into(), -256)]),
            "kmalloc-64 +640, kmalloc-cg-256 -256"
        );
    }
}
