//! Host classes and kernel identities of runs, so figures from different hardware never mix.
//!
//! Two runs are comparable as "one machine" only when their host class is the same: the same
//! architecture, CPU model and CPU count, and the same kind of execution (bare metal, a
//! hardware-virtualized guest, an emulated TCG guest, or a User-Mode Linux kernel). `merge`
//! groups runs by it and `compare` refuses to set runs of different classes against each other
//! unless asked. This is the one definition both use.

use crate::Results;
use serde::{Deserialize, Serialize};

/// How a run's CPU executed the kernel: what decides whether its timings are native.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Execution {
    /// No hypervisor CPU flag: native timings.
    BareMetal,
    /// A hardware-virtualized guest (KVM, PVM, a cloud VM): native instructions, virtual exits.
    Virtualized,
    /// An emulated CPU (qemu TCG): timings describe the emulator, not the kernel.
    Emulated,
    /// A User-Mode Linux kernel: native instructions, ptrace-based syscalls, interpreted BPF.
    Uml,
}

impl Execution {
    /// The kebab-case name used in reports and CLI messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Execution::BareMetal => "bare-metal",
            Execution::Virtualized => "virtualized",
            Execution::Emulated => "emulated",
            Execution::Uml => "uml",
        }
    }

    /// How a run's environment says it executed (`uml`, `emulated`, `virtualization` fields).
    pub fn of_environment(env: &serde_json::Value) -> Execution {
        let present = |key: &str| match env.get(key) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(_) => true,
        };
        if present("uml") {
            Execution::Uml
        } else if present("emulated") {
            Execution::Emulated
        } else if env
            .get("virtualization")
            .and_then(|v| v.get("value"))
            .is_some_and(|v| !v.is_null())
        {
            Execution::Virtualized
        } else {
            Execution::BareMetal
        }
    }
}

/// The hardware class of a run's host: runs of one class are compared as one machine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostClass {
    /// `uname -m` (`x86_64`, `aarch64`).
    pub arch: String,
    /// The CPU model string from /proc/cpuinfo.
    pub cpu_model: String,
    /// Online CPUs.
    pub nr_cpus: u64,
    /// Bare metal, virtualized, emulated or UML.
    pub execution: Execution,
}

impl HostClass {
    /// The host class a run's environment describes (missing fields read as `unknown`/0).
    pub fn of(results: &Results) -> HostClass {
        let env = &results.environment;
        let text = |key: &str| {
            env.get(key)
                .and_then(|v| v.as_str())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .unwrap_or("unknown")
                .to_string()
        };
        HostClass {
            arch: text("machine"),
            cpu_model: text("cpu_model"),
            nr_cpus: env.get("nr_cpus").and_then(|v| v.as_u64()).unwrap_or(0),
            execution: Execution::of_environment(env),
        }
    }

    /// A one-line label: `x86_64, 2 CPUs, Intel(R) Xeon(R) Processor, virtualized`.
    pub fn label(&self) -> String {
        format!(
            "{}, {} CPU{}, {}, {}",
            self.arch,
            self.nr_cpus,
            if self.nr_cpus == 1 { "" } else { "s" },
            self.cpu_model,
            self.execution.as_str()
        )
    }
}

impl std::fmt::Display for HostClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// The kernel a run measured: its release string (`uname -r`), or `unknown`.
pub fn kernel_release(results: &Results) -> &str {
    results
        .environment
        .get("kernel_release")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
}

/// The host name a run recorded, or `unknown`.
pub fn hostname(results: &Results) -> &str {
    results
        .environment
        .get("hostname")
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(extra: serde_json::Value) -> serde_json::Value {
        let mut e = json!({"machine": "x86_64", "cpu_model": "Xeon", "nr_cpus": 2,
                           "virtualization": {"available": true, "value": null}});
        if let (Some(m), Some(x)) = (e.as_object_mut(), extra.as_object()) {
            m.extend(x.clone());
        }
        e
    }

    #[test]
    fn execution_is_read_from_the_most_specific_flag() {
        assert_eq!(Execution::of_environment(&env(json!({}))), Execution::BareMetal);
        let virt = json!({"virtualization": {"available": true, "value": "hypervisor CPU flag"}});
        assert_eq!(Execution::of_environment(&env(virt.clone())), Execution::Virtualized);
        let mut tcg = virt.clone();
        tcg["emulated"] = json!("hookbench_rig.emulated=1");
        assert_eq!(Execution::of_environment(&env(tcg)), Execution::Emulated);
        let mut uml = virt;
        uml["uml"] = json!({"release": "6.1.0"});
        uml["emulated"] = json!(null);
        assert_eq!(Execution::of_environment(&env(uml)), Execution::Uml);
        // An empty string or `false` is not a flag.
        assert_eq!(
            Execution::of_environment(&env(json!({"emulated": ""}))),
            Execution::BareMetal
        );
        assert_eq!(
            Execution::of_environment(&env(json!({"uml": false}))),
            Execution::BareMetal
        );
    }

    #[test]
    fn classes_differ_by_cpu_count_and_label_names_every_part() {
        let a: Results = serde_json::from_value(json!({
            "schema": crate::SCHEMA, "hookbench_version": "0", "command_line": [],
            "started_at": "", "finished_at": null, "complete": true, "profile": "smoke",
            "suites": [], "environment": env(json!({})), "cells": [], "fits": [], "skipped": []}))
        .expect("a minimal run");
        let mut b = a.clone();
        b.environment["nr_cpus"] = json!(64);
        assert_ne!(HostClass::of(&a), HostClass::of(&b));
        assert_eq!(HostClass::of(&a), HostClass::of(&a.clone()));
        assert_eq!(HostClass::of(&a).label(), "x86_64, 2 CPUs, Xeon, bare-metal");
        assert_eq!(kernel_release(&a), "unknown");
    }
}
