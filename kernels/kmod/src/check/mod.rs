//! In-guest checks of hookbench.ko, run as root with the module loaded (in CI, in the qemu guest).
//!
//! Each function returns a [`CheckReport`] instead of panicking, so a CLI can print it and exit
//! non-zero on failure.
//!
//! - [`check_dispatch`] (`dispatch.rs`, `cgroup.rs`): every model runs exactly the expected
//!   programs: per-program counters (each program is its own instance with its own counter map)
//!   and the module's programs-run counts, on hand-built cgroup trees (the scenarios of
//!   hookbench-model's cgroup tests: ALLOW_MULTI accumulation, NONE blocking, OVERRIDE
//!   replacing, detach restoring, the 64-program cap, subtree recompute) and on forked tasks (a
//!   child inherits its parent's chain; a later install in the parent does not reach it; exit
//!   releases it), plus the hook context, sessions, and program references dropped on RESET and
//!   close.
//! - the working-set checks (`working_set.rs`, part of [`check_dispatch`]): RUN over W copies
//!   of the caller's state runs every program once per fire, follows the seed's permutation
//!   (the module's digest), reports W times one state's bytes, refuses what does not fit, frees
//!   the copies on every exit (EFAULT, a signal) and serves an ABI 1 caller's RUN.
//! - [`check_bad_args`] (`bad_args.rs`): every ioctl with a wrong ABI version, non-zero reserved
//!   fields, unknown models and hooks, bad fds and flags, oversized counts and bad addresses
//!   returns the documented errno, and the module stays usable after each.
//! - [`check_fuzz`] (`fuzz.rs`): random (seeded) ioctls, forks, cgroup moves and sessions for a
//!   bounded time; afterwards the module must still work and the kernel must not be tainted by a
//!   warning, oops or lockup.
//!
//! Cgroups are created in a private subtree (`fixtures.rs`) of the cgroup2 mount found in
//! `/proc/self/mountinfo` (one is mounted on a temporary directory if there is none) and removed
//! afterwards; the process is moved back to its own cgroup; every forked child is reaped.

use std::fmt;
use std::fs;
use std::time::{Duration, Instant};

use hookbench_model::ModelKind;
use nix::errno::Errno;

use crate::abi::{HbKmodStats, HB_KMOD_VERDICT_ALLOW};
use crate::device::Device;
use crate::progs::{KmodProgram, ProgKind};
use crate::KmodError;

/// `ensure!(cond, "format", args...)`: returns `Err(format!(...))` from a check when `cond` fails.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

mod bad_args;
mod cgroup;
mod dispatch;
mod fixtures;
mod fuzz;
mod report;
mod working_set;

pub use bad_args::check_bad_args;
pub use dispatch::check_dispatch;
pub use fuzz::check_fuzz;
pub use report::{CheckReport, CheckResult};

/// Options of [`run_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckOptions {
    /// How long [`check_fuzz`] runs (zero skips it).
    pub fuzz: Duration,
    /// The fuzz loop's seed.
    pub seed: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            fuzz: Duration::from_secs(10),
            seed: 1,
        }
    }
}

/// What one check returns: what was seen when it passed, what differed when it failed.
type Check = Result<String, String>;

/// Taint bits that mean something went wrong in the kernel.
///
/// D (oops, 1 << 7), W (warning, 1 << 9), L (soft lockup, 1 << 14), B (bad page, 1 << 5),
/// M (machine check, 1 << 4).
pub const BAD_TAINT: u64 = (1 << 4) | (1 << 5) | (1 << 7) | (1 << 9) | (1 << 14);

/// `/proc/sys/kernel/tainted`, if readable.
pub fn kernel_taint() -> Option<u64> {
    fs::read_to_string("/proc/sys/kernel/tainted").ok()?.trim().parse().ok()
}

/// Runs every check, then checks that the kernel picked up no warning, oops or lockup taint.
///
/// [`check_dispatch`], [`check_bad_args`], then [`check_fuzz`] unless `opts.fuzz` is zero.
pub fn run_all(opts: &CheckOptions) -> CheckReport {
    let taint0 = kernel_taint();
    let mut report = check_dispatch();
    report.extend(check_bad_args());
    if !opts.fuzz.is_zero() {
        report.extend(check_fuzz(opts.fuzz, opts.seed));
    }
    report.record("kernel/taint", || taint_unchanged(taint0));
    report
}

/// Whether the kernel gained a [`BAD_TAINT`] bit since `before`.
fn taint_unchanged(before: Option<u64>) -> Check {
    match (before, kernel_taint()) {
        (Some(b), Some(a)) => {
            let new = (a & !b) & BAD_TAINT;
            ensure!(
                new == 0,
                "/proc/sys/kernel/tainted went from {b:#x} to {a:#x}: new bits {new:#x} (warning, oops or lockup; see dmesg)"
            );
            Ok(format!("no new warning/oops/lockup taint (tainted = {a:#x})"))
        }
        _ => Ok("/proc/sys/kernel/tainted not readable; not checked".into()),
    }
}

// ----------------------------------------------------------------------------------------------
// Helpers of every check.

/// Opens a new session, its error as text.
fn open_device() -> Result<Device, String> {
    Device::open().map_err(|e| e.to_string())
}

/// `r` with its error as text prefixed by `what`.
fn ctx<T>(what: &str, r: Result<T, KmodError>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// `Ok` when `r` is an ioctl refused with errno `want`; otherwise what happened instead.
fn expect_errno<T: fmt::Debug>(what: &str, r: Result<T, KmodError>, want: Errno) -> Result<(), String> {
    match r {
        Err(KmodError::Ioctl { errno, .. }) if errno == want => Ok(()),
        Err(e) => Err(format!("{what}: expected {want}, got error {e}")),
        Ok(v) => Err(format!("{what}: expected {want}, got success {v:?}")),
    }
}

/// Loads one program instance, its error as text.
fn load(kind: ProgKind) -> Result<KmodProgram, String> {
    KmodProgram::load_kind(kind).map_err(|e| e.to_string())
}

/// `n` counter programs, each its own instance.
fn counters(n: usize) -> Result<Vec<KmodProgram>, String> {
    (0..n).map(|_| load(ProgKind::Counter)).collect()
}

/// The run counter of each program.
fn counts(progs: &[KmodProgram]) -> Result<Vec<u64>, String> {
    progs.iter().map(|p| p.counter().map_err(|e| e.to_string())).collect()
}

/// Runs `f` and returns its result with how far each program's counter moved meanwhile.
fn with_deltas<T>(progs: &[KmodProgram], f: impl FnOnce() -> Result<T, String>) -> Result<(T, Vec<u64>), String> {
    let before = counts(progs)?;
    let out = f()?;
    let after = counts(progs)?;
    Ok((out, after.iter().zip(&before).map(|(a, b)| a - b).collect()))
}

/// Fires `hook` once in `model` and checks each program of `progs` ran exactly `deltas` times.
///
/// Also checks the module's count of programs run is their sum and the verdict is allow;
/// returns that count.
fn fire_expect(
    dev: &Device,
    model: ModelKind,
    hook: u32,
    progs: &[KmodProgram],
    deltas: &[u64],
) -> Result<u32, String> {
    let (f, got) = with_deltas(progs, || {
        ctx(&format!("fire {model} hook {hook}"), dev.fire(model, hook))
    })?;
    let want: u64 = deltas.iter().sum();
    ensure!(
        u64::from(f.progs_run) == want,
        "fire {model} hook {hook}: {} programs ran, expected {want}",
        f.progs_run
    );
    ensure!(
        got == deltas,
        "fire {model} hook {hook}: per-program runs {got:?}, expected {deltas:?}"
    );
    ensure!(
        f.verdict == HB_KMOD_VERDICT_ALLOW,
        "fire {model} hook {hook}: verdict {}",
        f.verdict
    );
    Ok(f.progs_run)
}

/// The session's STATS, its error as text.
fn stats(dev: &Device) -> Result<HbKmodStats, String> {
    ctx("stats", dev.stats())
}

/// Waits up to 5 s for `cond` (deferred frees run after an RCU grace period).
fn eventually(what: &str, mut cond: impl FnMut() -> Result<bool, String>) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if cond()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{what}: still not true after 5 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The calling thread's id, as the module puts it in the hook context.
fn gettid() -> u64 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u64 }
}
