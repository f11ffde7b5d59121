//! What a run skipped, grouped by reason: the reason once, how many cells, and the cells under it.
//!
//! The runner records a skipped cell as `<cell id>: <reason>`; cells skipped for the same reason
//! on the same backend form one group. Each cell is named by its suite, mechanism and the axes
//! that vary within its group (its full id is its tooltip); a skip that names no cell (a whole
//! backend, a fit) is listed by suite and mechanism.

use super::page::esc;
use crate::schema::Skipped;
use std::fmt::Write as _;

/// One skipped entry split into the cell it concerns (when its reason names one) and the reason.
struct Entry<'a> {
    /// The cell id the reason starts with, when it starts with one of this entry's cells.
    cell: Option<&'a str>,
    /// The reason without the cell id.
    reason: &'a str,
    skipped: &'a Skipped,
}

/// `s` split into its cell id and its reason when the reason starts with `suite/backend/mech/`.
fn split(s: &Skipped) -> Entry<'_> {
    let prefix = format!(
        "{}/{}/{}/",
        s.suite.as_deref().unwrap_or_default(),
        s.backend,
        s.mechanism
    );
    match s.reason.split_once(": ") {
        Some((id, reason)) if s.suite.is_some() && id.starts_with(&prefix) && !id.contains(' ') => Entry {
            cell: Some(id),
            reason,
            skipped: s,
        },
        _ => Entry {
            cell: None,
            reason: &s.reason,
            skipped: s,
        },
    }
}

/// The `axis=value` pairs of a cell id (its last `/` part).
fn axes(id: &str) -> Vec<&str> {
    id.rsplit('/')
        .next()
        .map(|a| a.split(',').collect())
        .unwrap_or_default()
}

/// How a cell of a group is named: suite, mechanism and the axes whose value differs in the group.
fn cell_name(e: &Entry<'_>, varying: &[&str]) -> String {
    let s = e.skipped;
    let mut name = format!("{} {}", s.suite.as_deref().unwrap_or("(every suite)"), s.mechanism);
    if let Some(id) = e.cell {
        for a in axes(id) {
            let axis = a.split('=').next().unwrap_or(a);
            if varying.contains(&axis) {
                let _ = write!(name, " {a}");
            }
        }
    }
    name
}

/// The skipped section: one item per (backend, reason) with its count and its cells.
///
/// Groups come in the order their first cell was skipped; nothing is written when nothing was
/// skipped.
pub(crate) fn skipped_section(h: &mut String, skipped: &[Skipped]) {
    if skipped.is_empty() {
        return;
    }
    let entries: Vec<Entry<'_>> = skipped.iter().map(split).collect();
    let mut groups: Vec<((&str, &str), Vec<&Entry<'_>>)> = Vec::new();
    for e in &entries {
        let key = (e.skipped.backend.as_str(), e.reason);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(e),
            None => groups.push((key, vec![e])),
        }
    }
    let _ = writeln!(
        h,
        "<h2 id=\"skipped\">Skipped</h2><p>{} cell(s) or fits not measured, for {} reason(s).</p><ul class=\"skipped\">",
        skipped.len(),
        groups.len()
    );
    for ((backend, reason), members) in &groups {
        // The axes whose value differs between the group's cells name them apart.
        let ids: Vec<Vec<&str>> = members.iter().filter_map(|e| e.cell).map(axes).collect();
        let varying: Vec<&str> = ids
            .first()
            .map(|first| {
                first
                    .iter()
                    .filter(|a| ids.iter().any(|other| !other.contains(a)))
                    .map(|a| a.split('=').next().unwrap_or(a))
                    .collect()
            })
            .unwrap_or_default();
        let _ = write!(
            h,
            "<li><b>{} {}</b> on {}: {}<ul class=\"cells\">",
            members.len(),
            if members.len() == 1 { "cell" } else { "cells" },
            esc(backend),
            esc(reason)
        );
        for e in members {
            let _ = write!(
                h,
                "<li title=\"{}\">{}</li>",
                esc(e.cell.unwrap_or(&e.skipped.reason)),
                esc(&cell_name(e, &varying))
            );
        }
        h.push_str("</ul></li>\n");
    }
    h.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip(suite: &str, mechanism: &str, point: &str, reason: &str) -> Skipped {
        Skipped {
            backend: "kernel".into(),
            mechanism: mechanism.into(),
            suite: Some(suite.into()),
            reason: format!("{suite}/kernel/{mechanism}/hook_latency_ns/{point},body=null: {reason}"),
        }
    }

    #[test]
    fn cells_skipped_for_one_reason_are_one_group_with_their_count() {
        let why = "BPF LSM programs not available here: trampolines refused (EPERM)";
        let mut skipped: Vec<Skipped> = [1, 8, 32]
            .iter()
            .map(|n| skip("programs", "lsm-cgroup", &format!("programs={n},foreign=0"), why))
            .collect();
        skipped.push(skip("programs", "lsm-global", "programs=8,foreign=0", why));
        skipped.push(skip("foreign", "cgroup-bpf", "programs=1,foreign=4", "a <limit> hit"));
        skipped.push(Skipped {
            backend: "kmod".into(),
            mechanism: "*".into(),
            suite: None,
            reason: "hookbench.ko is not loaded: build and insmod kernels/kmod".into(),
        });
        let mut h = String::new();
        skipped_section(&mut h, &skipped);
        assert!(
            h.contains("<p>6 cell(s) or fits not measured, for 3 reason(s).</p>"),
            "{h}"
        );
        assert_eq!(h.matches(why).count(), 1, "the reason once: {h}");
        let group = h.lines().find(|l| l.contains(why)).expect("group");
        assert!(group.starts_with("<li><b>4 cells</b> on kernel: BPF LSM"), "{group}");
        for name in [
            "programs lsm-cgroup programs=1<",
            "programs lsm-cgroup programs=32<",
            "programs lsm-global programs=8<",
        ] {
            assert!(group.contains(name), "{name} in {group}");
        }
        assert!(
            !group.contains("foreign=0<"),
            "axes that do not vary are left out: {group}"
        );
        assert!(h.contains("<b>1 cell</b> on kernel: a &lt;limit&gt; hit"), "{h}");
        assert!(h.contains("<b>1 cell</b> on kmod: hookbench.ko is not loaded"), "{h}");
        assert!(h.contains(">(every suite) *</li>"), "{h}");
        let mut none = String::new();
        skipped_section(&mut none, &[]);
        assert!(none.is_empty());
    }
}
