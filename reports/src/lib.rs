//! hookbench's results contract and the renderers that read saved results (`evidence.txt`, HTML).
#![warn(missing_docs)]

pub mod claims;
pub mod evidence;
pub mod host;
pub mod html;
pub mod merged;
pub mod schema;

pub use schema::{
    cell_id, Accounting, Agreement, Baseline, Cell, CellName, CpuLatency, Decomposition, DriftEntry, Fit, FitSubject,
    Overhead, PercentileBasis, ReadError, Results, Skipped, SuiteInfo, Validity, ValidityFlag, WorkingSetBytes, SCHEMA,
};
