//! What a timed worker is asked and what it sends back: timing requests and raw samples.
//!
//! The timing request is the one every worker kind shares; the raw samples come with the facts
//! their validity is judged on.
//!
//! Every worker (seccomp, Landlock, socket, kmod ioctl, model) measures through
//! [`crate::sampler`] with the harness's clock ([`TimingRequest::clock`]), pinned to the CPU the
//! harness chose, and returns a [`SampleSet`]: per-invocation values with the clock pair removed,
//! the batch size, the clock's share of a sample, CPU migrations seen between samples and the
//! task's speculation-mitigation state (`/proc/thread-self/status`), so that the harness can
//! flag a cell whose state differs from its baseline's.

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, ClockInfo};
use crate::pin::{pin_current_thread, PinError};
use crate::sampler::{Measurement, SamplerConfig, Warmup};
use crate::stats::PS_PER_NS;

/// How a worker times its trigger: the harness's clock, the CPU, and how many samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimingRequest {
    /// The clock the harness calibrated (the worker measures its overhead again).
    pub clock: ClockInfo,
    /// The CPU to pin the measuring thread to (`None`: leave the affinity alone).
    pub cpu: Option<u32>,
    /// Samples per repetition at least (each sample is one batch of K invocations).
    pub samples: usize,
    /// A repetition lasts at least this long, ns (samples are raised to reach it).
    pub min_duration_ns: u64,
    /// Untimed warm-up before calibrating K, ns.
    pub warmup_ns: u64,
    /// Largest share of a sample the clock-read pair may take (chooses K).
    pub max_clock_share: f64,
    /// Time exactly one invocation per sample (K = 1), for operations that cannot be batched.
    #[serde(default)]
    pub single: bool,
}

impl TimingRequest {
    /// A request for `samples` samples of at least `min_duration_ns` in all, on `cpu`.
    ///
    /// With the default warm-up (10 ms) and clock share (5%).
    pub fn new(clock: ClockInfo, cpu: Option<u32>, samples: usize, min_duration_ns: u64) -> TimingRequest {
        TimingRequest {
            clock,
            cpu,
            samples,
            min_duration_ns,
            warmup_ns: 10_000_000,
            max_clock_share: 0.05,
            single: false,
        }
    }

    /// The clock to time with: the harness's, rebuilt here ([`Clock::from_info`]).
    pub fn clock(&self) -> Clock {
        Clock::from_info(&self.clock)
    }

    /// Pins the calling thread to [`TimingRequest::cpu`], when one is set.
    ///
    /// Errors: [`PinError`] when the CPU is not allowed or `sched_setaffinity` fails.
    pub fn pin(&self) -> Result<(), PinError> {
        match self.cpu {
            Some(cpu) => pin_current_thread(cpu as usize),
            None => Ok(()),
        }
    }

    /// The sampler configuration for one repetition of this request.
    pub fn sampler_config(&self) -> SamplerConfig {
        SamplerConfig {
            warmup: Warmup::DurationNs(self.warmup_ns),
            samples: self.samples.max(1),
            repetitions: 1,
            max_clock_share: self.max_clock_share,
            min_duration_ns: self.min_duration_ns,
            max_samples: self.samples.max(200_000),
            fixed_batch: self.single.then_some(1),
            ..SamplerConfig::default()
        }
    }
}

/// The speculation-mitigation state of a task, as `/proc/PID/status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speculation {
    /// `Speculation_Store_Bypass:` (e.g. "thread vulnerable", "thread force mitigated").
    pub store_bypass: Option<String>,
    /// `SpeculationIndirectBranch:` (e.g. "conditional enabled").
    pub indirect_branch: Option<String>,
}

impl Speculation {
    /// The calling thread's state, from `/proc/thread-self/status` (empty when unreadable).
    pub fn of_self() -> Speculation {
        std::fs::read_to_string("/proc/thread-self/status")
            .map(|s| Speculation::parse(&s))
            .unwrap_or_default()
    }

    /// The state read again from an already open `/proc/thread-self/status` (from its start).
    ///
    /// For a task that can no longer open files there (a Landlock domain that allows no /proc
    /// read).
    pub fn read_from(status: &mut std::fs::File) -> Speculation {
        use std::io::{Read as _, Seek as _};
        let mut text = String::new();
        match status.rewind().and_then(|()| status.read_to_string(&mut text)) {
            Ok(_) => Speculation::parse(&text),
            Err(_) => Speculation::default(),
        }
    }

    /// The two lines of a `/proc/PID/status` text.
    pub fn parse(status: &str) -> Speculation {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        Speculation {
            store_bypass: field("Speculation_Store_Bypass:"),
            indirect_branch: field("SpeculationIndirectBranch:"),
        }
    }
}

/// Raw samples of one timed configuration, with the facts their validity is judged on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleSet {
    /// Per-invocation time of each sample, ns: (batch interval - clock pair) / K, never below 0.
    pub values_ns: Vec<f64>,
    /// Invocations per sample (K); percentiles of `values_ns` are of batch means when K > 1.
    pub batch_k: u64,
    /// The clock's read-pair overhead in this process, ns.
    pub clock_overhead_ns: f64,
    /// The clock pair's share of the median sample interval.
    pub clock_share: f64,
    /// The CPU the samples started on.
    pub cpu: Option<u32>,
    /// CPU changes between consecutive samples.
    pub cpu_migrations: u64,
    /// The measuring task's speculation-mitigation state while it measured.
    pub speculation: Speculation,
}

impl SampleSet {
    /// The samples of `m` (all repetitions) with the task's speculation state `speculation`.
    pub fn from_measurement(m: &Measurement, speculation: Speculation) -> SampleSet {
        SampleSet {
            values_ns: m.samples_ps.iter().map(|&ps| ps as f64 / PS_PER_NS).collect(),
            batch_k: m.batch_k,
            clock_overhead_ns: m.clock.overhead_ns,
            clock_share: m.clock_share,
            cpu: m.cpu,
            cpu_migrations: m.cpu_migrations,
            speculation,
        }
    }

    /// A set with no sample, for a slot that was fired untimed or not run at all.
    ///
    /// K = 1 and no clock cost, so nothing in it reads as a measurement.
    pub fn empty() -> SampleSet {
        SampleSet {
            values_ns: Vec::new(),
            batch_k: 1,
            clock_overhead_ns: 0.0,
            clock_share: 0.0,
            cpu: None,
            cpu_migrations: 0,
            speculation: Speculation::default(),
        }
    }

    /// Mean of `values_ns` (NaN when empty).
    pub fn mean_ns(&self) -> f64 {
        if self.values_ns.is_empty() {
            return f64::NAN;
        }
        self.values_ns.iter().sum::<f64>() / self.values_ns.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::measure;

    #[test]
    fn speculation_lines_are_read() {
        let status = "Name:\tx\nSpeculation_Store_Bypass:\tthread force mitigated\n\
                      SpeculationIndirectBranch:\tconditional enabled\nCpus_allowed:\t3\n";
        let s = Speculation::parse(status);
        assert_eq!(s.store_bypass.as_deref(), Some("thread force mitigated"));
        assert_eq!(s.indirect_branch.as_deref(), Some("conditional enabled"));
        assert_eq!(Speculation::parse("Name: y\n"), Speculation::default());
        // This kernel shows both lines for every task (x86).
        if cfg!(target_arch = "x86_64") {
            assert!(Speculation::of_self().store_bypass.is_some());
        }
    }

    #[test]
    fn a_request_times_with_its_clock_and_returns_raw_samples() {
        let clock = Clock::detect();
        let mut req = TimingRequest::new(clock.info(), None, 50, 0);
        req.warmup_ns = 0;
        let rebuilt = req.clock();
        assert_eq!(rebuilt.kind(), clock.kind());
        assert_eq!(rebuilt.tsc_hz(), clock.tsc_hz());
        let mut n = 0u64;
        let m = measure(&rebuilt, &req.sampler_config(), &mut |k| {
            n += k;
            std::hint::black_box(n)
        })
        .expect("measures");
        let set = SampleSet::from_measurement(&m, Speculation::of_self());
        assert_eq!(set.values_ns.len(), 50);
        assert!(set.values_ns.iter().all(|v| *v >= 0.0));
        assert!(set.batch_k > 1, "a near-free body is batched");
        assert!(set.clock_share <= 0.05 + 1e-9 || m.calibration.is_some_and(|c| c.capped));
        let single = TimingRequest { single: true, ..req };
        let m = measure(&rebuilt, &single.sampler_config(), &mut |k| k).expect("measures");
        assert_eq!(m.batch_k, 1);
    }
}
