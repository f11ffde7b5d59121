//! hookbench-kmod: the Rust side of `hookbench.ko`, the kernel module of every dispatch model.
//!
//! The module (kernels/kmod/*.c) implements hookbench's four dispatch models (`task-chain`,
//! `task-hook-array`, `cgroup-effective`, `global-filter`, hookbench-model's `ModelKind`) on one
//! synthetic hook and runs the same eBPF programs in each.
//!
//! - [`abi`]: `#[repr(C)]` mirrors of `uapi/hookbench_kmod.h` (checked against the header by a
//!   test that compiles it with the host's C compiler), the ioctl numbers, and the conversions
//!   of hookbench-model's models and attach flags to the ABI's numbers.
//! - [`device`]: `/dev/hookbench` ([`Device`]): attach/detach at cgroups, install on the calling
//!   task, global lists, fire once, the in-kernel timed loop, reset, stats.
//! - [`progs`]: the raw_tp program bodies (null, counter, map-lookup) the module runs, one
//!   loaded instance per attachment ([`KmodProgram`]).
//! - [`check`]: the in-guest tests (dispatch expectations on real cgroup trees and forked
//!   tasks, bad arguments, a seeded fuzz loop), run as root with the module loaded.
//!
//! Building and loading the module: `make -C kernels/kmod KDIR=/lib/modules/$(uname -r)/build`
//! (copy the directory elsewhere first to keep the tree clean), then `insmod hookbench.ko`.

#![warn(missing_docs)]

pub mod abi;
pub mod check;
pub mod device;
pub mod progs;

use std::path::PathBuf;

use nix::errno::Errno;

pub use device::{Device, Fire, ProgRef, Run, RunSummary, Update, WorkingSet};
pub use progs::{BodyProgType, KmodProgram, ProgKind};

/// Errors of the module's Rust side; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    /// `/dev/hookbench` does not exist: the module is not loaded.
    #[error(
        "{path} does not exist: load hookbench.ko first (`cp -r kernels/kmod /tmp/hb-kmod && make -C /tmp/hb-kmod \
         KDIR=/lib/modules/$(uname -r)/build && insmod /tmp/hb-kmod/hookbench.ko`, as root); kernels without \
         module support cannot run the kmod backend (scripts/qemu-rig runs it in a Debian guest)"
    )]
    DeviceMissing {
        /// The path tried.
        path: PathBuf,
    },
    /// Opening the device was refused.
    #[error("opening {path} was refused ({source}): the device is root-only (mode 0600, CAP_SYS_ADMIN); run as root")]
    DeviceDenied {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Opening the device failed otherwise.
    #[error("opening {path} failed: {source}")]
    Open {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not answer the VERSION ioctl: it is not hookbench.ko's device.
    #[error(
        "{path} is not hookbench.ko's device (VERSION ioctl refused with ENOTTY); load the module built from this tree"
    )]
    NotHookbench {
        /// The path.
        path: PathBuf,
    },
    /// The module speaks another ABI version.
    #[error(
        "hookbench.ko speaks ABI version {kernel}, this hookbench speaks {ours}: rebuild the module from this tree and \
         reload it (`rmmod hookbench`, then build and insmod it as `hookbench doctor` says)"
    )]
    AbiMismatch {
        /// The module's version.
        kernel: u32,
        /// This crate's.
        ours: u32,
    },
    /// An ioctl failed.
    #[error("hookbench.ko {op} failed: {errno}: {hint}")]
    Ioctl {
        /// The operation that failed, by its name in messages (e.g. `attach`, `fire`, `version`).
        op: &'static str,
        /// The errno the module returned.
        errno: Errno,
        /// What it means here.
        hint: &'static str,
    },
    /// An argument outside the ABI's bounds (checked before any ioctl).
    #[error("invalid argument: {what}: {why}")]
    InvalidArgument {
        /// The argument and its value.
        what: String,
        /// The rule, and what to use instead.
        why: &'static str,
    },
    /// libbpf failed on the program object.
    #[error(
        "{what} of BPF program {prog} failed: {source} (run as root on a kernel with BPF; see dmesg for the verifier)"
    )]
    Bpf {
        /// The program.
        prog: &'static str,
        /// The step.
        what: &'static str,
        /// libbpf's error.
        #[source]
        source: libbpf_rs::Error,
    },
    /// The compiled object lacks a program or map (a build bug).
    #[error("the BPF object has no {what} named {name}: rebuild hookbench-kmod")]
    BpfMissing {
        /// "program" or "map".
        what: &'static str,
        /// Its name.
        name: &'static str,
    },
}

impl KmodError {
    /// The errno of a failed ioctl, if this is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            KmodError::Ioctl { errno, .. } => Some(*errno),
            _ => None,
        }
    }
}
