//! hookbench's harness library: the CLI, suites, runner, backends and run output.
//!
//! With the environment probe, the analysis, `hookbench compare` and `export`, and the measurement core
//! re-exported as [`measure`].
#![warn(missing_docs)]

pub mod analysis;
pub mod backend;
pub mod cli;
pub mod compare;
pub mod env;
pub mod error;
pub mod export;
pub mod kernel;
pub mod kmod_backend;
pub mod mechanism;
/// The measurement core, in its own crate so that workers time exactly as the harness does.
///
/// Workers use the same clock, sampler and statistics as the harness.
pub use hookbench_measure as measure;
pub mod model_backend;
pub mod output;
pub mod runner;
pub mod suite;
