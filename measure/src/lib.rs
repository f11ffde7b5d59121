//! hookbench's one measurement core: calibrated clock, batched sampler, statistics and fits, CPU pinning.
//!
//! Independent of what is measured: backends hand [`sampler::measure`] a closure of shape
//! `FnMut(iterations: u64) -> u64` (or [`sampler::measure_each`] an operation and its untimed
//! undo) and get back per-invocation latencies in picoseconds, an hdrhistogram, and summaries
//! in nanoseconds. See each submodule for the sources it follows.
#![warn(missing_docs)]

pub mod clock;
pub mod counters;
pub mod pin;
pub mod sampler;
pub mod sampleset;
pub mod stats;

pub use clock::{Clock, ClockError, ClockInfo, ClockKind};
pub use pin::{allowed_cpus, pin_current_thread, run_pinned, PinError};
pub use sampler::{
    calibrate_batch, measure, measure_each, measure_each_config, BatchCalibration, Measurement, SamplerConfig, SamplerError, Warmup,
};
pub use sampleset::{SampleSet, Speculation, TimingRequest};
pub use stats::{
    fit_linear, histogram_from_base64, histogram_to_base64, new_histogram_ps, percentile_sorted, record_ps,
    welch_t_test, FitError, HistogramCodecError, LinearFit, Summary, TTest, TTestError,
};
