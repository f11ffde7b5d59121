//! The header of `evidence.txt`: the machine, kernel and run, one `name: value` line each.

use super::fmt_num;
use super::text::Out;
use crate::schema::Results;
use std::collections::BTreeSet;

/// The header: the machine, kernel and run, one `name: value` line each.
pub(super) fn header(out: &mut Out, r: &Results) {
    let env = &r.environment;
    out.line(format!("hookbench {} evidence ({})", r.hookbench_version, r.schema));
    out.line(format!(
        "kernel: {} ({})",
        r.env_str("kernel_release"),
        r.env_str("machine")
    ));
    let config = config_options(env);
    out.line(format!(
        "config: {}",
        if config.is_empty() {
            format!("unknown ({})", probe_text(env.get("kernel_config")))
        } else {
            config.join(" ")
        }
    ));
    out.line(format!("cpu: {} x {}", r.env_str("nr_cpus"), r.env_str("cpu_model")));
    let mitigations: Vec<String> = env
        .get("mitigations")
        .and_then(|v| v.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|m| Some((m.get(0)?.as_str()?, m.get(1)?.as_str()?)))
                .filter(|(_, status)| *status != "Not affected")
                .map(|(name, status)| format!("{name}: {status};"))
                .collect()
        })
        .unwrap_or_default();
    out.line(format!(
        "mitigations: {}",
        if mitigations.is_empty() {
            "none reported (every entry 'Not affected', or unreadable)".to_string()
        } else {
            mitigations.join(" ").trim_end_matches(';').to_string()
        }
    ));
    // The governor's reason ends with what it means ("...: the CPU frequency is not under this
    // kernel's control"); the errno and path before it are in results.json.
    let governor = probe_text(env.get("governor"));
    let governor = match governor.strip_prefix("n/a (") {
        Some(reason) => format!("n/a ({}", reason.rsplit(": ").next().unwrap_or(reason)),
        None => governor,
    };
    out.line(format!("governor: {governor}"));
    out.line(format!(
        "bpf jit: {}, lsm: {}",
        probe_text(env.get("bpf_jit")),
        probe_text(env.get("lsm_list"))
    ));
    out.line(format!(
        "clock: {} (overhead {} ns), privileged: {}",
        r.env_str("clock"),
        fmt_num(env.get("clock_overhead_ns").and_then(|v| v.as_f64())),
        r.env_str("privileged")
    ));
    let virt = env
        .get("virtualization")
        .and_then(|v| v.get("available"))
        .and_then(|v| v.as_bool())
        .map(|v| {
            if v {
                "yes (timings include hypervisor effects)"
            } else {
                "no"
            }
        })
        .unwrap_or("unknown");
    out.line(format!("virtualized: {virt}"));
    if let Some(e) = env.get("emulated").and_then(|v| v.as_str()) {
        out.line(format!("emulated: {e} (timings not comparable with bare metal)"));
    }
    if let Some(u) = env.get("uml").filter(|u| u.is_object()) {
        let field = |k: &str| u.get(k).and_then(|v| v.as_str()).unwrap_or("unknown");
        out.line(format!(
            "uml: User-Mode Linux {}: native CPU, 1 CPU, BPF bodies {}; read only its in-kernel loop cells \
             (kmod, not -ioctl) beside bare metal's; syscalls are ptrace-trapped",
            field("release"),
            field("bpf_bodies")
        ));
    }
    let backends: BTreeSet<&str> = r.cells.iter().map(|c| c.backend.as_str()).collect();
    let backends: Vec<&str> = backends.into_iter().collect();
    out.line(format!(
        "backend: {}{}",
        if backends.is_empty() {
            "none".to_string()
        } else {
            backends.join(", ")
        },
        if backends == ["model"] {
            " (userspace model of the dispatch models, not kernel timings)"
        } else {
            ""
        }
    ));
    out.line(format!(
        "hookbench: {}, profile {}, {}",
        r.hookbench_version,
        r.profile,
        if r.complete { "complete" } else { "INCOMPLETE (stopped)" }
    ));
    out.line(format!(
        "order: seed {}: sweep points in a shuffled order, each cell's repetitions alternating \
         with its baseline's",
        r.order_seed
    ));
    out.line(format!("command: {}", r.command_line.join(" ")));
}

/// An environment probe (`{"available", "value", "reason"}`) as text: its value, or "n/a (why)".
fn probe_text(p: Option<&serde_json::Value>) -> String {
    let Some(p) = p else {
        return "unknown".to_string();
    };
    match p.get("value").and_then(|v| v.as_str()) {
        Some(v) if p.get("available").and_then(|a| a.as_bool()) != Some(false) => v.to_string(),
        _ => format!(
            "n/a ({})",
            p.get("reason").and_then(|r| r.as_str()).unwrap_or("no reason recorded")
        ),
    }
}

/// The kernel config options a run recorded, `NAME=value` without `CONFIG_`, in their order.
pub(super) fn config_options(env: &serde_json::Value) -> Vec<String> {
    env.get("kernel_config_options")
        .and_then(|v| v.as_array())
        .map(|opts| {
            opts.iter()
                .filter_map(|o| {
                    let name = o.get(0)?.as_str()?;
                    let value = o.get(1)?.as_str()?;
                    Some(format!("{}={value}", name.trim_start_matches("CONFIG_")))
                })
                .collect()
        })
        .unwrap_or_default()
}
