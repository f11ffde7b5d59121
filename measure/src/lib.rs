//! hookbench's one measurement core: clock, batched sampler, statistics and fits, CPU pinning.
//!
//! Independent of what is measured: backends hand [`sampler::measure`] a closure of shape
//! `FnMut(iterations: u64) -> u64` (or [`sampler::measure_each`] an operation and its untimed
//! undo) and get back per-invocation latencies in picoseconds, an hdrhistogram, and summaries
//! in nanoseconds. [`estimate`] turns samples into estimates with standard errors (overhead
//! over a baseline, equivalence tests), [`fitcheck`] says where a fitted line holds and
//! [`drift`](mod@drift) how far a baseline wandered over a run. See each submodule for the
//! sources it follows.
#![warn(missing_docs)]

pub mod change;
pub mod clock;
pub mod counters;
pub mod drift;
pub mod estimate;
pub mod fitcheck;
pub mod pin;
pub mod sampler;
pub mod sampleset;
pub mod stats;
#[cfg(test)]
mod test_support;

pub use clock::{Clock, ClockError, ClockInfo, ClockKind};
pub use drift::{drift, Drift};
pub use estimate::{
    combine, difference, mean_with_se, median_with_se, overhead, tost, two_sided_critical, Equivalence, Estimate,
    EstimateError, Margin, Overhead,
};
pub use fitcheck::{
    entry_cost, entry_cost_from_means, lack_of_fit, segments, slope_between, Entry, LackOfFit, Segment,
    LACK_OF_FIT_ALPHA,
};
pub use pin::{allowed_cpus, pin_current_thread, run_pinned, PinError};
pub use sampler::{
    calibrate_batch, measure, measure_each, measure_each_config, measurement_from_intervals, BatchCalibration,
    Measurement, SamplerConfig, SamplerError, Warmup,
};
pub use sampleset::{SampleSet, Speculation, TimingRequest};
pub use stats::{
    fit_linear, histogram_from_base64, histogram_to_base64, new_histogram_ps, percentile_sorted, record_ps,
    welch_t_test, FitError, HistogramCodecError, LinearFit, Summary, TTest, TTestError,
};
