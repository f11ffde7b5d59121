//! Hardware performance counters (cycles, instructions) around a measured loop, via perf-event2.
//!
//! They are read through perf_event_open. On machines without a PMU (most VMs) opening fails:
//! callers record the counters as absent, with the reason, and never as zero.

use perf_event::events::Hardware;
use perf_event::{Builder, Counter, Group};
use std::collections::BTreeMap;

/// A perf event group counting CPU cycles and retired instructions of the calling thread.
pub struct HwCounters {
    group: Group,
    cycles: Counter,
    instructions: Counter,
}

impl HwCounters {
    /// Opens the group for the calling thread (any CPU).
    ///
    /// Errors: the perf_event_open failure as text, e.g. "ENOENT: no such hardware event" on a
    /// machine without a PMU, or EACCES under a restrictive `perf_event_paranoid`.
    pub fn open() -> Result<HwCounters, String> {
        let describe = |what: &str, e: std::io::Error| format!("perf_event_open({what}) failed: {e}");
        let mut group = Group::new().map_err(|e| describe("group", e))?;
        let cycles = group
            .add(&Builder::new(Hardware::CPU_CYCLES))
            .map_err(|e| describe("CPU_CYCLES", e))?;
        let instructions = group
            .add(&Builder::new(Hardware::INSTRUCTIONS))
            .map_err(|e| describe("INSTRUCTIONS", e))?;
        Ok(HwCounters {
            group,
            cycles,
            instructions,
        })
    }

    /// Runs `f` once with the counters enabled, and returns the counts divided by `per`
    /// (the number of invocations `f` made): keys "cycles" and "instructions", per invocation.
    ///
    /// Errors: enabling, disabling or reading the group failed.
    pub fn count_per<T>(&mut self, per: u64, f: impl FnOnce() -> T) -> std::io::Result<(T, BTreeMap<String, f64>)> {
        self.group.reset()?;
        self.group.enable()?;
        let out = f();
        self.group.disable()?;
        let data = self.group.read()?;
        let per = per.max(1) as f64;
        let mut counts = BTreeMap::new();
        counts.insert("cycles".to_string(), data[&self.cycles] as f64 / per);
        counts.insert("instructions".to_string(), data[&self.instructions] as f64 / per);
        Ok((out, counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_either_count_a_loop_or_explain_why_not() {
        match HwCounters::open() {
            Ok(mut c) => {
                let (sum, counts) = c
                    .count_per(1000, || (0..1000u64).map(std::hint::black_box).sum::<u64>())
                    .expect("counting works once opened");
                assert_eq!(sum, 499_500);
                assert!(counts["instructions"] >= 1.0, "{counts:?}");
                assert!(counts["cycles"] > 0.0, "{counts:?}");
            }
            Err(reason) => assert!(reason.contains("perf_event_open"), "{reason}"),
        }
    }
}
