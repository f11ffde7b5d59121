//! hookbench's harness library: CLI, runner, measurement core, environment probe, suites and run output.
#![warn(missing_docs)]

pub mod analysis;
pub mod backend;
pub mod cli;
pub mod compare;
pub mod env;
pub mod error;
pub mod kernel;
pub mod kmod_backend;
pub mod mechanism;
/// The measurement core lives in its own crate so that workers use the same clock, sampler and
/// statistics as the harness.
pub use hookbench_measure as measure;
pub mod model_backend;
pub mod output;
pub mod runner;
pub mod suite;
