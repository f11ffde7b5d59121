//! Calibrated tick clock: the invariant TSC when the CPU has one, else `CLOCK_MONOTONIC_RAW`.
//!
//! Source: the TSC is read the way the Linux kernel's `rdtsc_ordered()` does it (an `LFENCE`
//! before and after `RDTSC`, Intel SDM vol. 2B "RDTSC" and vol. 3B 18.17 "Time-Stamp Counter"),
//! and it is used only when `/proc/cpuinfo` advertises both `constant_tsc` and `nonstop_tsc`
//! (the kernel's `X86_FEATURE_CONSTANT_TSC` / `X86_FEATURE_NONSTOP_TSC`, i.e. the counter ticks
//! at a fixed rate in every P- and C-state). Its frequency is calibrated against
//! `CLOCK_MONOTONIC_RAW` (clock_gettime(2)), which is also the fallback clock.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Which hardware or kernel clock a [`Clock`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClockKind {
    /// The invariant time-stamp counter (`RDTSC`), ticks at [`Clock::tsc_hz`].
    #[serde(rename = "tsc")]
    Tsc,
    /// `clock_gettime(CLOCK_MONOTONIC_RAW)`; one tick is one nanosecond.
    #[serde(rename = "clock_monotonic_raw")]
    MonotonicRaw,
}

impl ClockKind {
    /// Stable name used in results and reports: `"tsc"` or `"clock_monotonic_raw"`.
    pub fn name(self) -> &'static str {
        match self {
            ClockKind::Tsc => "tsc",
            ClockKind::MonotonicRaw => "clock_monotonic_raw",
        }
    }
}

impl std::fmt::Display for ClockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why [`Clock::tsc`] could not provide a TSC clock.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum ClockError {
    /// Not an x86_64 build: there is no `RDTSC`.
    #[error("the TSC clock needs x86_64; this build is for {arch}")]
    NotX86_64 {
        /// `std::env::consts::ARCH` of this build.
        arch: &'static str,
    },
    /// `/proc/cpuinfo` could not be read.
    #[error("cannot read /proc/cpuinfo: {reason}")]
    CpuInfo {
        /// The I/O error, as text.
        reason: String,
    },
    /// The CPU flags lack `constant_tsc` or `nonstop_tsc`, so TSC ticks are not time.
    #[error("TSC is not invariant: /proc/cpuinfo flags lack {missing}")]
    NotInvariant {
        /// The missing flag names, space separated.
        missing: String,
    },
    /// The calibration against `CLOCK_MONOTONIC_RAW` gave an implausible frequency.
    #[error("TSC calibration gave {hz} Hz, outside the plausible 1e8..1e11 Hz")]
    Calibration {
        /// The median estimate, Hz.
        hz: f64,
    },
}

/// A calibrated clock: read with [`Clock::now`] (ticks), convert with [`Clock::ticks_to_ns`].
///
/// `Copy + Send + Sync`; every field is fixed after construction, so one `Clock` may be shared
/// by all measuring threads (the TSC is invariant and synchronised across CPUs when
/// `constant_tsc`/`nonstop_tsc` are set; `CLOCK_MONOTONIC_RAW` is system-wide).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Clock {
    kind: ClockKind,
    ns_per_tick: f64,
    tsc_hz: Option<f64>,
    overhead_ns: f64,
}

/// Serialisable description of a [`Clock`] for results files.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockInfo {
    /// The clock read.
    pub kind: ClockKind,
    /// Calibrated TSC frequency in Hz, `None` for `clock_monotonic_raw`.
    pub tsc_hz: Option<f64>,
    /// Median back-to-back read interval, nanoseconds (see [`Clock::overhead_ns`]).
    pub overhead_ns: f64,
}

/// Number of calibration rounds; the TSC frequency is their median.
const CALIBRATION_ROUNDS: usize = 5;
/// Length of one calibration round, nanoseconds (5 x 6 ms = 30 ms in total).
const CALIBRATION_ROUND_NS: u64 = 6_000_000;
/// Tries per paired (CLOCK_MONOTONIC_RAW, TSC) read; the tightest bracket is kept.
const PAIRED_READ_TRIES: usize = 7;
/// Back-to-back read pairs whose median gives the overhead.
const OVERHEAD_TRIALS: usize = 10_001;

impl Clock {
    /// The best clock available: the TSC if [`Clock::tsc`] succeeds, else `CLOCK_MONOTONIC_RAW`.
    ///
    /// Takes about 30 ms (TSC calibration) plus ~1 ms (overhead); see [`Clock::monotonic_raw`].
    pub fn detect() -> Clock {
        Clock::tsc().unwrap_or_else(|_| Clock::monotonic_raw())
    }

    /// A TSC clock calibrated against `CLOCK_MONOTONIC_RAW`, on x86_64 with an invariant TSC.
    ///
    /// The frequency is the median of 5 rounds of ~6 ms, each `delta_tsc / delta_ns` between two
    /// tightly bracketed paired reads.
    ///
    /// Errors: [`ClockError::NotX86_64`], [`ClockError::CpuInfo`], [`ClockError::NotInvariant`]
    /// (flags lack `constant_tsc`/`nonstop_tsc`), [`ClockError::Calibration`] (estimate
    /// non-finite or outside 1e8..1e11 Hz).
    pub fn tsc() -> Result<Clock, ClockError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(ClockError::NotX86_64 {
                arch: std::env::consts::ARCH,
            });
        }
        let cpuinfo =
            std::fs::read_to_string("/proc/cpuinfo").map_err(|e| ClockError::CpuInfo { reason: e.to_string() })?;
        let missing = missing_invariant_tsc_flags(&cpuinfo);
        if !missing.is_empty() {
            return Err(ClockError::NotInvariant {
                missing: missing.join(" "),
            });
        }
        let hz = calibrate_tsc_hz();
        if !hz.is_finite() || !(1e8..=1e11).contains(&hz) {
            return Err(ClockError::Calibration { hz });
        }
        Ok(Clock::tsc_at(hz))
    }

    /// The `clock_gettime(CLOCK_MONOTONIC_RAW)` clock (one tick = 1 ns), its overhead measured.
    ///
    /// Never fails: the clock exists on every Linux since 2.6.28.
    pub fn monotonic_raw() -> Clock {
        Clock::with_overhead(ClockKind::MonotonicRaw, 1.0, None)
    }

    /// The TSC clock at `hz` ticks per second, with its overhead measured.
    fn tsc_at(hz: f64) -> Clock {
        Clock::with_overhead(ClockKind::Tsc, 1e9 / hz, Some(hz))
    }

    /// A clock of `kind`, with the overhead of its read pair measured here.
    fn with_overhead(kind: ClockKind, ns_per_tick: f64, tsc_hz: Option<f64>) -> Clock {
        let mut clock = Clock {
            kind,
            ns_per_tick,
            tsc_hz,
            overhead_ns: 0.0,
        };
        clock.overhead_ns = clock.measure_overhead_ns();
        clock
    }

    /// The clock the harness calibrated, rebuilt in a worker from its [`ClockInfo`].
    ///
    /// Every worker thus reads the same clock without spending 30 ms recalibrating; the overhead is
    /// measured again here, in the worker's own process (about 1 ms).
    ///
    /// Falls back to [`Clock::monotonic_raw`] when `info` names a TSC without a plausible
    /// frequency or this machine is not x86_64.
    pub fn from_info(info: &ClockInfo) -> Clock {
        match (info.kind, info.tsc_hz) {
            (ClockKind::Tsc, Some(hz))
                if cfg!(target_arch = "x86_64") && hz.is_finite() && (1e8..=1e11).contains(&hz) =>
            {
                Clock::tsc_at(hz)
            }
            _ => Clock::monotonic_raw(),
        }
    }

    /// Which clock this is.
    pub fn kind(&self) -> ClockKind {
        self.kind
    }

    /// Current time in ticks (TSC cycles, or nanoseconds of `CLOCK_MONOTONIC_RAW`).
    ///
    /// Only differences between two reads of the same `Clock` are meaningful.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        match self.kind {
            ClockKind::Tsc => read_tsc_ordered(),
            ClockKind::MonotonicRaw => monotonic_raw_ns(),
        }
    }

    /// Converts a tick count (or difference) to nanoseconds.
    #[inline(always)]
    pub fn ticks_to_ns(&self, ticks: f64) -> f64 {
        ticks * self.ns_per_tick
    }

    /// Nanoseconds from tick `start` to tick `end` (both from [`Clock::now`]), never below 0.
    #[inline(always)]
    pub fn elapsed_ns(&self, start: u64, end: u64) -> f64 {
        self.ticks_to_ns(end.saturating_sub(start) as f64)
    }

    /// Nanoseconds per tick (1.0 for `clock_monotonic_raw`).
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }

    /// Calibrated TSC frequency in Hz, `None` unless the kind is [`ClockKind::Tsc`].
    pub fn tsc_hz(&self) -> Option<f64> {
        self.tsc_hz
    }

    /// Clock overhead, ns: what a zero-length interval measures, measured once at construction.
    ///
    /// It is the median of `now()`-to-`now()` intervals over 10 001 back-to-back read pairs.
    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ns
    }

    /// Serialisable description (kind, TSC Hz, overhead ns) for results files.
    pub fn info(&self) -> ClockInfo {
        ClockInfo {
            kind: self.kind,
            tsc_hz: self.tsc_hz,
            overhead_ns: self.overhead_ns,
        }
    }

    fn measure_overhead_ns(&self) -> f64 {
        let mut deltas: Vec<u64> = Vec::with_capacity(OVERHEAD_TRIALS);
        for _ in 0..OVERHEAD_TRIALS {
            let t0 = self.now();
            let t1 = self.now();
            deltas.push(t1.saturating_sub(t0));
        }
        deltas.sort_unstable();
        self.ticks_to_ns(deltas[OVERHEAD_TRIALS / 2] as f64)
    }
}

/// The invariant-TSC flags (`constant_tsc`, `nonstop_tsc`) a `/proc/cpuinfo` text lacks.
///
/// Reads the first `flags` line (both are missing if there is none). Empty means invariant TSC.
pub fn missing_invariant_tsc_flags(cpuinfo: &str) -> Vec<&'static str> {
    let flags: Vec<&str> = cpuinfo
        .lines()
        .find(|l| l.split(':').next().map(str::trim) == Some("flags"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect())
        .unwrap_or_default();
    ["constant_tsc", "nonstop_tsc"]
        .into_iter()
        .filter(|want| !flags.contains(want))
        .collect()
}

/// `clock_gettime(CLOCK_MONOTONIC_RAW)` in nanoseconds.
#[inline(always)]
pub(crate) fn monotonic_raw_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC_RAW exists since Linux
    // 2.6.28, so the call cannot fail with EINVAL, and EFAULT is impossible for a stack local.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_RAW, &mut ts) };
    debug_assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC_RAW) failed");
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// `LFENCE; RDTSC; LFENCE`, as the kernel's `rdtsc_ordered()`: a TSC read that cannot drift.
///
/// Earlier instructions complete before the read and later ones do not start before it.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unused_unsafe)]
fn read_tsc_ordered() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: RDTSC and LFENCE (SSE2) are part of the x86_64 baseline; CR4.TSD is clear on
    // Linux for user space unless a process asked prctl(PR_SET_TSC), which hookbench never does.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn read_tsc_ordered() -> u64 {
    // Never reached: `Clock::tsc` refuses non-x86_64 builds.
    monotonic_raw_ns()
}

/// One (CLOCK_MONOTONIC_RAW ns, TSC) pair, for calibrating the TSC against the monotonic clock.
///
/// The TSC read is bracketed by two monotonic reads; the tightest bracket of a few tries is kept,
/// and its midpoint.
fn paired_read() -> (f64, u64) {
    let mut best: Option<(u64, f64, u64)> = None;
    for _ in 0..PAIRED_READ_TRIES {
        let m0 = monotonic_raw_ns();
        let t = read_tsc_ordered();
        let m1 = monotonic_raw_ns();
        let width = m1.saturating_sub(m0);
        let mid = m0 as f64 + width as f64 / 2.0;
        let tighter = match best {
            Some((w, _, _)) => width < w,
            None => true,
        };
        if tighter {
            best = Some((width, mid, t));
        }
    }
    match best {
        Some((_, mid, t)) => (mid, t),
        None => (monotonic_raw_ns() as f64, read_tsc_ordered()),
    }
}

/// Median over rounds of TSC ticks per CLOCK_MONOTONIC_RAW second.
fn calibrate_tsc_hz() -> f64 {
    let mut estimates: Vec<f64> = Vec::with_capacity(CALIBRATION_ROUNDS);
    for _ in 0..CALIBRATION_ROUNDS {
        let (ns0, t0) = paired_read();
        std::thread::sleep(std::time::Duration::from_nanos(CALIBRATION_ROUND_NS));
        let (ns1, t1) = paired_read();
        let dns = ns1 - ns0;
        if dns > 0.0 {
            estimates.push(t1.wrapping_sub(t0) as f64 * 1e9 / dns);
        }
    }
    if estimates.is_empty() {
        return f64::NAN;
    }
    estimates.sort_by(f64::total_cmp);
    estimates[estimates.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Paired read of (CLOCK_MONOTONIC_RAW ns, clock ticks) with the tightest bracket of 9.
    fn paired(clock: &Clock) -> (f64, u64) {
        let mut best = (u64::MAX, 0.0, 0);
        for _ in 0..9 {
            let m0 = monotonic_raw_ns();
            let t = clock.now();
            let m1 = monotonic_raw_ns();
            if m1 - m0 < best.0 {
                best = (m1 - m0, m0 as f64 + (m1 - m0) as f64 / 2.0, t);
            }
        }
        (best.1, best.2)
    }

    fn check_against_monotonic_raw(clock: &Clock) {
        let (ns0, t0) = paired(clock);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (ns1, t1) = paired(clock);
        let reference_ns = ns1 - ns0;
        let clock_ns = clock.elapsed_ns(t0, t1);
        let rel = (clock_ns - reference_ns).abs() / reference_ns;
        assert!(
            rel < 0.02,
            "{}: {clock_ns} ns vs CLOCK_MONOTONIC_RAW {reference_ns} ns",
            clock.kind()
        );
    }

    fn check_monotonic(clock: &Clock) {
        let mut prev = clock.now();
        for _ in 0..100_000 {
            let t = clock.now();
            assert!(t >= prev, "{}: {t} after {prev}", clock.kind());
            prev = t;
        }
    }

    #[test]
    fn detected_clock_is_monotonic_and_agrees_with_monotonic_raw() {
        let clock = Clock::detect();
        check_monotonic(&clock);
        check_against_monotonic_raw(&clock);
        assert!(clock.overhead_ns() > 0.0 && clock.overhead_ns() < 100_000.0);
        assert_eq!(clock.tsc_hz().is_some(), clock.kind() == ClockKind::Tsc);
    }

    #[test]
    fn monotonic_raw_clock_is_monotonic_and_agrees() {
        let clock = Clock::monotonic_raw();
        assert_eq!(clock.kind(), ClockKind::MonotonicRaw);
        assert_eq!(clock.kind().name(), "clock_monotonic_raw");
        assert_eq!(clock.tsc_hz(), None);
        assert_eq!(clock.ticks_to_ns(1234.0), 1234.0);
        check_monotonic(&clock);
        check_against_monotonic_raw(&clock);
    }

    #[test]
    fn tsc_is_used_exactly_when_cpuinfo_says_invariant() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let invariant = cfg!(target_arch = "x86_64") && missing_invariant_tsc_flags(&cpuinfo).is_empty();
        match Clock::tsc() {
            Ok(c) => {
                assert!(invariant);
                assert_eq!(c.kind().name(), "tsc");
                let hz = c.tsc_hz().unwrap();
                assert!((c.ns_per_tick() - 1e9 / hz).abs() < 1e-12);
                assert!((c.ticks_to_ns(hz) - 1e9).abs() < 1e-3);
            }
            Err(ClockError::Calibration { .. }) => assert!(invariant),
            Err(_) => assert!(!invariant),
        }
    }

    #[test]
    fn cpuinfo_flag_parsing() {
        let both = "processor\t: 0\nflags\t\t: fpu tsc constant_tsc rep_good nonstop_tsc\n";
        assert!(missing_invariant_tsc_flags(both).is_empty());
        let one = "flags\t\t: fpu tsc constant_tsc\nflags : nonstop_tsc\n";
        assert_eq!(missing_invariant_tsc_flags(one), vec!["nonstop_tsc"]);
        // `vmx flags` (a different key) must not count as the `flags` line.
        let vmx = "vmx flags\t: constant_tsc nonstop_tsc\n";
        assert_eq!(missing_invariant_tsc_flags(vmx), vec!["constant_tsc", "nonstop_tsc"]);
        // A flag that merely contains the name is not the flag.
        let sub = "flags : xconstant_tsc nonstop_tsc_x\n";
        assert_eq!(missing_invariant_tsc_flags(sub).len(), 2);
    }

    #[test]
    fn clock_is_copy_send_sync_and_serialises_its_name() {
        fn assert_traits<T: Copy + Send + Sync>() {}
        assert_traits::<Clock>();
        let info = Clock::monotonic_raw().info();
        let json = serde_json::to_string(&info).unwrap();
        assert!(json.contains("\"clock_monotonic_raw\""), "{json}");
        let tsc = serde_json::to_string(&ClockKind::Tsc).unwrap();
        assert_eq!(tsc, "\"tsc\"");
    }
}
