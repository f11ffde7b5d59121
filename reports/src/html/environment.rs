//! The environment of a run as a two-column table grouped by topic, every value in words.
//!
//! A run's `environment` is the JSON of the harness's environment probe plus the clock. Here each
//! field gets a label and a readable value: probes (`{available, reason, value}`) as their value
//! or `absent: reason`, lists as lists, `(name, value)` pairs as `name: value`, sizes, times and
//! frequencies with their units. Fields this renderer does not know (from a newer hookbench) go
//! under "Other", rendered the same way, so nothing recorded is hidden and nothing shows as JSON.

use super::page::esc;
use crate::evidence::fmt_num;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// A topic of the environment table: its heading and its fields, `(key, label)`, in order.
type Topic = (&'static str, &'static [(&'static str, &'static str)]);

/// The topics in the order the table shows them; the last takes the rows the caller adds.
const TOPICS: [Topic; 6] = [
    (
        "Kernel",
        &[
            ("kernel_release", "release (uname -r)"),
            ("kernel_version", "build (uname -v)"),
            ("machine", "architecture"),
            ("kernel_config", "configuration read from"),
            ("kernel_config_options", "options the mechanisms need"),
            ("lsm_list", "active LSMs"),
            ("seccomp", "seccomp"),
            ("landlock_abi", "Landlock"),
            ("kmod", "hookbench.ko"),
            ("pid_max", "pid_max"),
            ("uml", "User-Mode Linux"),
        ],
    ),
    (
        "CPU and mitigations",
        &[
            ("cpu_model", "CPU model"),
            ("nr_cpus", "online CPUs"),
            ("allowed_cpus", "CPUs this process may use"),
            ("memory_bytes", "memory"),
            ("mitigations", "vulnerability mitigations"),
            ("governor", "cpufreq governor (cpu0)"),
            ("tsc", "TSC flags"),
            ("virtualization", "hypervisor"),
            ("emulated", "emulated CPU"),
            ("perf_counters", "perf cycle counter"),
            ("perf_event_paranoid", "perf_event_paranoid"),
        ],
    ),
    (
        "BPF",
        &[
            ("bpf", "program loads (bpf())"),
            ("bpf_jit", "JIT (bpf_jit_enable)"),
            ("unprivileged_bpf_disabled", "unprivileged_bpf_disabled"),
            ("bpf_trampolines", "trampolines (lsm, lsm_cgroup, fentry)"),
        ],
    ),
    (
        "cgroups",
        &[
            ("cgroup_layout", "layout"),
            ("cgroup2_mount", "cgroup v2 mount"),
            ("cgroup_v1_mounts", "cgroup v1 mounts"),
            ("own_cgroup_v2", "this process's cgroup"),
            ("cgroup_max_depth", "root cgroup.max.depth"),
            ("cgroup_max_descendants", "root cgroup.max.descendants"),
        ],
    ),
    (
        "Clock",
        &[
            ("clock", "clock"),
            ("clock_overhead_ns", "cost of one read"),
            ("clock_info", "calibration"),
        ],
    ),
    (
        "Host and run",
        &[
            ("hostname", "host name"),
            ("euid", "effective uid"),
            ("cap_effective_hex", "effective capabilities (CapEff, hex)"),
            ("privileged", "privileged (root with CAP_SYS_ADMIN or CAP_BPF)"),
            ("probe_duration_us", "environment probe took"),
            ("notes", "probe notes"),
        ],
    ),
];

/// The environment table: one `<tbody>` per topic, a label and a value in words per field.
///
/// `run_rows` are `(label, HTML value)` rows added to the last topic (e.g. the order seed).
/// Fields of `env` no topic names go under "Other"; a non-object `env` gives a note.
pub(crate) fn environment_table(env: &Value, run_rows: &[(&str, String)]) -> String {
    let Some(map) = env.as_object() else {
        return "<p class=\"note\">No environment recorded in this run.</p>\n".to_string();
    };
    let mut h = String::from("<table class=\"env\">\n");
    for (i, (topic, fields)) in TOPICS.iter().enumerate() {
        let mut rows: Vec<String> = fields
            .iter()
            .filter_map(|(key, label)| Some(row(key, label, map.get(*key)?)))
            .collect();
        if i + 1 == TOPICS.len() {
            rows.extend(
                run_rows
                    .iter()
                    .map(|(label, html)| format!("<tr><th>{}</th><td>{html}</td></tr>", esc(label))),
            );
        }
        group(&mut h, topic, &rows);
    }
    let known = |k: &str| TOPICS.iter().any(|(_, fields)| fields.iter().any(|(key, _)| *key == k));
    let other: Vec<String> = map
        .iter()
        .filter(|(k, _)| !known(k))
        .map(|(k, v)| row(k, &label(k), v))
        .collect();
    group(&mut h, "Other", &other);
    h.push_str("</table>\n");
    h
}

/// Appends a topic's heading row and its rows as one `<tbody>`, nothing when it has no rows.
fn group(h: &mut String, topic: &str, rows: &[String]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<tbody><tr><th class=\"group\" colspan=\"2\">{}</th></tr>{}</tbody>",
        esc(topic),
        rows.join("")
    );
}

/// One row: the label, with the results field's name as its tooltip, and the value in words.
fn row(key: &str, label: &str, v: &Value) -> String {
    format!(
        "<tr><th title=\"{}\">{}</th><td>{}</td></tr>",
        esc(key),
        esc(label),
        value_html(key, v)
    )
}

/// A field name as words: units dropped from the name (they go with the value), `_` as spaces.
fn label(key: &str) -> String {
    let words = if let Some(k) = key.strip_suffix("_hz") {
        format!("{k} frequency")
    } else {
        ["_ns", "_us", "_bytes", "_hex"]
            .iter()
            .find_map(|u| key.strip_suffix(u))
            .unwrap_or(key)
            .to_string()
    };
    words.replace('_', " ")
}

/// Whether `o` is a probe's outcome: `available` and nothing but `value` and `reason` beside it.
fn is_probe(o: &Map<String, Value>) -> bool {
    o.get("available").is_some_and(Value::is_boolean)
        && o.keys().all(|k| matches!(k.as_str(), "available" | "value" | "reason"))
}

/// A probe as words: its value (or `yes`) when available, else `absent: reason`.
///
/// An absent probe that still read a value says it after the reason.
fn probe_html(o: &Map<String, Value>) -> String {
    let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    if o.get("available").and_then(Value::as_bool) == Some(true) {
        return esc(text("value").unwrap_or("yes"));
    }
    let reason = text("reason").unwrap_or("no reason recorded");
    match text("value") {
        Some(v) => format!("absent: {} (read: {})", esc(reason), esc(v)),
        None => format!("absent: {}", esc(reason)),
    }
}

/// A count of bytes in binary units beside the exact figure (`7.7 GiB (8271601664 bytes)`).
fn bytes_text(b: f64) -> String {
    const UNITS: [(&str, f64); 3] = [
        ("GiB", 1024.0 * 1024.0 * 1024.0),
        ("MiB", 1024.0 * 1024.0),
        ("KiB", 1024.0),
    ];
    match UNITS.iter().find(|(_, size)| b.abs() >= *size) {
        Some((unit, size)) => format!("{:.1} {unit} ({b:.0} bytes)", b / size),
        None => format!("{b:.0} bytes"),
    }
}

/// A number of field `key` with the unit its name carries (`_ns`, `_us`, `_bytes`, `_hz`).
fn number_text(key: &str, v: f64) -> String {
    if key.ends_with("_bytes") {
        bytes_text(v)
    } else if key.ends_with("_ns") {
        format!("{} ns", fmt_num(Some(v)))
    } else if key.ends_with("_us") {
        if v >= 1000.0 {
            format!("{} ms", fmt_num(Some(v / 1000.0)))
        } else {
            format!("{} &micro;s", fmt_num(Some(v)))
        }
    } else if key.ends_with("_hz") {
        if v >= 1e9 {
            format!("{:.3} GHz", v / 1e9)
        } else {
            format!("{:.3} MHz", v / 1e6)
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        fmt_num(Some(v))
    }
}

/// The status the kernel gives a vulnerability the CPU does not have.
const NOT_AFFECTED: &str = "Not affected";

/// CPU vulnerabilities as a list: each that applies with its status, then the others on one line.
///
/// The ones that apply (mitigated or vulnerable) are what adds to every syscall.
fn mitigations_html(items: &[Value]) -> String {
    let pairs: Vec<(&str, &str)> = items
        .iter()
        .filter_map(|m| Some((m.get(0)?.as_str()?, m.get(1)?.as_str()?)))
        .collect();
    let mut lis: String = pairs
        .iter()
        .filter(|(_, status)| *status != NOT_AFFECTED)
        .map(|(name, status)| format!("<li>{}: {}</li>", esc(name), esc(status)))
        .collect();
    let unaffected: Vec<String> = pairs
        .iter()
        .filter(|(_, status)| *status == NOT_AFFECTED)
        .map(|(name, _)| esc(name))
        .collect();
    if !unaffected.is_empty() {
        let _ = write!(
            lis,
            "<li>{}: {}</li>",
            NOT_AFFECTED.to_lowercase(),
            unaffected.join(", ")
        );
    }
    format!("<ul>{lis}</ul>")
}

/// The value of environment field `key` as HTML in words, never as JSON.
///
/// `null` is `none`, booleans `yes`/`no`, probes as [`probe_html`], `(name, value)` pairs as
/// `name: value`, other lists as `<ul>` lists (`none` when empty), objects as `label: value`
/// lists.
pub(crate) fn value_html(key: &str, v: &Value) -> String {
    match v {
        Value::Null => "none".to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
        Value::Number(n) => n.as_f64().map_or_else(|| esc(&n.to_string()), |x| number_text(key, x)),
        Value::String(s) if s.is_empty() => "(empty)".to_string(),
        Value::String(s) => esc(s),
        Value::Array(items) if items.is_empty() => "none".to_string(),
        Value::Array(items) if key == "mitigations" => mitigations_html(items),
        Value::Array(items) => {
            let lis: String = items
                .iter()
                .map(|item| match item.as_array().map(Vec::as_slice) {
                    Some([Value::String(name), value]) => {
                        format!("<li>{}: {}</li>", esc(name), value_html(name, value))
                    }
                    _ => format!("<li>{}</li>", value_html(key, item)),
                })
                .collect();
            format!("<ul>{lis}</ul>")
        }
        Value::Object(o) if is_probe(o) => probe_html(o),
        Value::Object(o) if o.is_empty() => "none".to_string(),
        Value::Object(o) => {
            let lis: String = o
                .iter()
                .map(|(k, v)| format!("<li>{}: {}</li>", esc(&label(k)), value_html(k, v)))
                .collect();
            format!("<ul>{lis}</ul>")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probes_lists_and_units_read_as_words() {
        let probe = |available: bool, value: Option<&str>, reason: Option<&str>| json!({"available": available, "value": value, "reason": reason});
        assert_eq!(value_html("bpf_jit", &probe(true, Some("1"), None)), "1");
        assert_eq!(value_html("bpf", &probe(true, None, None)), "yes");
        assert_eq!(
            value_html("governor", &probe(false, None, Some("no cpufreq <driver>"))),
            "absent: no cpufreq &lt;driver&gt;"
        );
        assert_eq!(
            value_html("pid_max", &probe(false, Some("32768"), Some("too low"))),
            "absent: too low (read: 32768)"
        );
        assert_eq!(
            value_html(
                "mitigations",
                &json!([
                    ["mds", "Not affected"],
                    ["meltdown", "Not affected"],
                    ["retbleed", "Vulnerable"]
                ])
            ),
            "<ul><li>retbleed: Vulnerable</li><li>not affected: mds, meltdown</li></ul>"
        );
        assert_eq!(
            value_html("kernel_config_options", &json!([["CONFIG_BPF_LSM", "y"]])),
            "<ul><li>CONFIG_BPF_LSM: y</li></ul>"
        );
        assert_eq!(value_html("cgroup_v1_mounts", &json!([])), "none");
        assert_eq!(value_html("notes", &json!(["a", "b"])), "<ul><li>a</li><li>b</li></ul>");
        assert_eq!(
            value_html("memory_bytes", &json!(8_589_934_592u64)),
            "8.0 GiB (8589934592 bytes)"
        );
        assert_eq!(value_html("clock_overhead_ns", &json!(14.6)), "14.60 ns");
        assert_eq!(value_html("probe_duration_us", &json!(48_211)), "48.21 ms");
        assert_eq!(
            value_html(
                "clock_info",
                &json!({"kind": "tsc", "overhead_ns": 14.6, "tsc_hz": 2_599_998_889.9})
            ),
            "<ul><li>kind: tsc</li><li>overhead: 14.60 ns</li><li>tsc frequency: 2.600 GHz</li></ul>"
        );
        assert_eq!(value_html("privileged", &json!(false)), "no");
        assert_eq!(value_html("hostname", &Value::Null), "none");
    }

    #[test]
    fn the_table_groups_fields_by_topic_and_keeps_unknown_ones() {
        let env = json!({
            "kernel_release": "6.12.0", "cpu_model": "Xeon", "bpf_jit": {"available": true, "value": "1", "reason": null},
            "cgroup_layout": "unified", "clock": "tsc", "hostname": "h", "new_field_from_later": {"x": [1, 2]},
        });
        let t = environment_table(&env, &[("order seed", "42".to_string())]);
        let at = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s} not in {t}"));
        assert!(at(">Kernel<") < at("6.12.0") && at("6.12.0") < at(">CPU and mitigations<"));
        assert!(at(">CPU and mitigations<") < at("Xeon") && at("Xeon") < at(">BPF<"));
        assert!(at(">BPF<") < at(">cgroups<") && at(">cgroups<") < at("unified") && at("unified") < at(">Clock<"));
        assert!(at(">Host and run<") < at(">order seed<") && at(">order seed<") < at(">Other<"));
        assert!(t.contains("<th title=\"new_field_from_later\">new field from later</th><td><ul><li>x: <ul><li>1</li>"));
        assert!(!t.contains("{\"") && !t.contains("\":") && !t.contains(">["), "{t}");
        let bare = environment_table(&json!({"clock": "tsc"}), &[]);
        assert!(
            bare.contains(">Clock<") && !bare.contains(">Kernel<"),
            "no empty topic: {bare}"
        );
        assert!(environment_table(&json!("x"), &[]).contains("No environment"));
    }
}
