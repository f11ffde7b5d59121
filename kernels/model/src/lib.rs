//! Userspace model backend of hookbench: every dispatch model of DESIGN.md with the kernel's data shapes.

pub mod names;
pub use names::{Body, Mechanism, ModelKind, Params, UnknownName, NUMERIC_AXES};
