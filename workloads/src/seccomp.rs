//! seccomp filter stacks on the running kernel: the `task-chain` dispatch model as it shipped.
//!
//! Each [`install_filters`] call pushes `n` classic-BPF filters onto the calling thread's chain
//! (`struct seccomp_filter`'s `prev` list, `kernel/seccomp.c: seccomp_attach_filter`), and every
//! syscall of that thread then runs every filter of the chain (`seccomp_run_filters`), except
//! that the action cache (`seccomp_cache_check_allow`, Linux 5.11+) skips the whole chain for a
//! syscall whose result every filter determines from the syscall number and arch alone
//! (`seccomp_cache_prepare_bitmap` / `seccomp_is_const_allow` emulate each filter at attach
//! time). The two [`FilterBody`] shapes have the same length and differ only in what they load,
//! so one is provably constant to the cache and the other is not.
//!
//! Filters are inherited across fork and cannot be removed, so measurements happen in a freshly
//! exec'd worker process ([`spawn_worker`] runs it, [`run_worker`] is its body), never in the
//! harness itself. Following the idea of the kernel's
//! `tools/testing/selftests/seccomp/seccomp_benchmark.c`, [`decompose`] splits the cost of a
//! syscall into a native part (no filter), a fixed entry part (the seccomp slow path) and a
//! per-filter part, and checks that the parts add up to what was measured.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::worker::{run_json_worker, WorkerFailure, WorkerRun};

/// Upper bound on the total instructions of a task's filter chain, counting 4 extra per filter
/// already attached (`MAX_INSNS_PER_PATH = (1 << 18) / sizeof(struct sock_filter)` in
/// `kernel/seccomp.c`; exceeding it makes `seccomp_attach_filter` return `-ENOMEM`). The kernel
/// counts each filter's length *after* conversion to eBPF (`prog->len`), see [`kernel_len`].
pub const MAX_INSNS_PER_PATH: u32 = 32768;

/// Instructions the kernel charges per attached filter on top of its own length (the
/// "4 instr penalty" of `seccomp_attach_filter`).
pub const FILTER_PENALTY_INSNS: u32 = 4;

/// Marker that prefixes the worker's JSON report on its stdout line ([`format_report_line`]), so
/// the report can be found among other output (libtest's, for instance).
pub const REPORT_MARKER: &str = "HOOKBENCH-REPORT ";

/// Default time [`spawn_worker`] lets a worker run before killing it, in seconds.
pub const WORKER_TIMEOUT_SECS: u64 = 60;

/// Largest `samples` a [`WorkerRequest`] may ask for (bounds the report's size: ~25 bytes of
/// JSON per sample).
pub const MAX_WORKER_SAMPLES: usize = 1_000_000;

/// Largest `batch` (syscalls per sample) a [`WorkerRequest`] may ask for.
pub const MAX_WORKER_BATCH: u64 = 100_000_000;

/// Offset of `seccomp_data.nr` (`include/uapi/linux/seccomp.h`).
const NR_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
/// Offset of `seccomp_data.arch`.
const ARCH_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
/// Offset of the low 32 bits of `seccomp_data.args[0]` (a 64-bit field: the low word comes first
/// on little-endian machines, second on big-endian ones).
const ARG0_LO_OFFSET: u32 =
    std::mem::offset_of!(libc::seccomp_data, args) as u32 + if cfg!(target_endian = "little") { 0 } else { 4 };

/// A syscall number no architecture uses: [`FilterBody::NrOnly`] compares `nr` with it.
const NEVER_NR: u32 = 0xffff_fff0;
/// An argument value the measured syscall never passes (it passes 0): [`FilterBody::ArgLoad`]
/// compares the low word of `args[0]` with it.
const NEVER_ARG: u32 = 0xdead_beef;

// AUDIT_ARCH_* of include/uapi/linux/audit.h: EM_* | __AUDIT_ARCH_64BIT (0x8000_0000) |
// __AUDIT_ARCH_LE (0x4000_0000). libc does not export them.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_003e; // EM_X86_64 = 62
#[cfg(target_arch = "x86")]
const AUDIT_ARCH_NATIVE: u32 = 0x4000_0003; // EM_386 = 3
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_00b7; // EM_AARCH64 = 183
#[cfg(target_arch = "arm")]
const AUDIT_ARCH_NATIVE: u32 = 0x4000_0028; // EM_ARM = 40
#[cfg(target_arch = "riscv64")]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_00f3; // EM_RISCV = 243
#[cfg(target_arch = "loongarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_0102; // EM_LOONGARCH = 258
#[cfg(target_arch = "s390x")]
const AUDIT_ARCH_NATIVE: u32 = 0x8000_0016; // EM_S390 = 22, big-endian
#[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
const AUDIT_ARCH_NATIVE: u32 = 0xc000_0015; // EM_PPC64 = 21
#[cfg(all(target_arch = "powerpc64", target_endian = "big"))]
const AUDIT_ARCH_NATIVE: u32 = 0x8000_0015; // EM_PPC64 = 21
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "loongarch64",
    target_arch = "s390x",
    target_arch = "powerpc64"
)))]
compile_error!("hookbench's seccomp workload needs the AUDIT_ARCH_* value of this architecture");

/// The `AUDIT_ARCH_*` value of the architecture this binary was built for (what the kernel puts
/// in `seccomp_data.arch` for its native syscalls, `include/uapi/linux/audit.h`).
pub const AUDIT_ARCH_CURRENT: u32 = AUDIT_ARCH_NATIVE;

/// What each installed filter does. Both shapes first check `seccomp_data.arch` against
/// [`AUDIT_ARCH_CURRENT`] (returning `SECCOMP_RET_ALLOW` for any other arch, like real filters),
/// then load one 32-bit word, compare it with a constant that never matches and return
/// `SECCOMP_RET_ALLOW` either way. Both are [`FILTER_LEN`] instructions long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterBody {
    /// `"nr-only"`: loads `seccomp_data.nr`. The action cache proves the result from the number
    /// and arch alone (`seccomp_is_const_allow` emulates loads of `nr` and `arch`), so syscalls
    /// skip the whole chain whatever its length.
    NrOnly,
    /// `"arg-load"`: loads the low 32 bits of `seccomp_data.args[0]`. The cache cannot emulate
    /// argument loads, so every filter of the chain runs on every syscall.
    ArgLoad,
}

impl FilterBody {
    /// Both bodies, in a fixed order.
    pub const ALL: [FilterBody; 2] = [FilterBody::NrOnly, FilterBody::ArgLoad];

    /// The body's name: `"nr-only"` or `"arg-load"`.
    pub fn name(self) -> &'static str {
        match self {
            FilterBody::NrOnly => "nr-only",
            FilterBody::ArgLoad => "arg-load",
        }
    }
}

impl std::fmt::Display for FilterBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FilterBody {
    type Err = SeccompError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FilterBody::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| SeccompError::UnknownBody { name: s.to_string() })
    }
}

/// Errors of installing filters, running workers and decomposing measurements.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// [`FilterBody::from_str`](std::str::FromStr) got an unknown name.
    #[error("unknown seccomp filter body {name:?}: use \"nr-only\" or \"arg-load\"")]
    UnknownBody {
        /// The name given.
        name: String,
    },
    /// `prctl(PR_SET_NO_NEW_PRIVS, 1)` failed.
    #[error("prctl(PR_SET_NO_NEW_PRIVS, 1) failed: {errno}")]
    NoNewPrivs {
        /// The errno.
        errno: Errno,
    },
    /// The kernel refused a filter with `-ENOMEM` because the chain would exceed
    /// [`MAX_INSNS_PER_PATH`].
    #[error(
        "seccomp instruction budget: {requested} {body} filters of {len} eBPF instructions do not fit in the kernel's \
         MAX_INSNS_PER_PATH = {MAX_INSNS_PER_PATH} (each filter counts its length + {FILTER_PENALTY_INSNS}); \
         at most {max} fit on an empty chain, the kernel said {errno} after {installed} were installed \
         ({inherited} inherited); ask for n <= {max}"
    )]
    InstructionBudget {
        /// The filter body.
        body: FilterBody,
        /// eBPF instructions per filter, as the kernel counts them ([`kernel_len`]).
        len: u32,
        /// Filters asked for.
        requested: u32,
        /// Largest n that fits on a task with no other filter ([`max_filters`]).
        max: u32,
        /// Filters this call installed before the kernel refused.
        installed: u32,
        /// Filters the task had before the call (from `/proc/thread-self/status`; 0 if unknown).
        inherited: u32,
        /// The errno (`ENOMEM`).
        errno: Errno,
    },
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed for another reason.
    #[error("seccomp(SECCOMP_SET_MODE_FILTER) of {body} filter {index} of {requested} failed: {errno}")]
    Install {
        /// The filter body.
        body: FilterBody,
        /// 0-based index of the failing install in this call.
        index: u32,
        /// Filters asked for.
        requested: u32,
        /// The errno (`EINVAL`: no seccomp filter support; `EACCES`: no_new_privs not set and no
        /// `CAP_SYS_ADMIN`; `EFAULT`: bad program).
        errno: Errno,
    },
    /// A worker request field is out of range.
    #[error("worker request {field} = {value} is invalid: {why}")]
    InvalidRequest {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// The accepted range.
        why: &'static str,
    },
    /// The kernel's filter count after installing is not what was installed.
    #[error(
        "after installing {installed} filters the kernel reports Seccomp_filters = {reported}, expected {expected}"
    )]
    FilterCountMismatch {
        /// Filters installed by this call.
        installed: u32,
        /// `Seccomp_filters` of `/proc/thread-self/status` after the install.
        reported: u32,
        /// The count before plus `installed`.
        expected: u32,
    },
    /// The request could not be serialized (not expected).
    #[error("cannot serialize the worker request: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The worker could not be started or waited for.
    #[error("worker {exe}: {what}: {source}")]
    WorkerIo {
        /// The worker executable.
        exe: String,
        /// What failed.
        what: &'static str,
        /// The I/O error (with its errno).
        #[source]
        source: std::io::Error,
    },
    /// The worker ran longer than the timeout and was killed.
    #[error("worker {exe} ran over {timeout_ms} ms and was killed")]
    WorkerTimeout {
        /// The worker executable.
        exe: String,
        /// The timeout, in ms.
        timeout_ms: u128,
    },
    /// The worker printed no report.
    #[error(
        "worker {exe} exited with {status} without a {REPORT_MARKER:?} line or JSON report; stderr tail: {stderr}"
    )]
    NoReport {
        /// The worker executable.
        exe: String,
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        stderr: String,
    },
    /// The worker's report is not valid JSON of a [`WorkerReport`].
    #[error("worker {exe} printed an unreadable report ({source}): {line}")]
    BadReport {
        /// The worker executable.
        exe: String,
        /// The report line (truncated).
        line: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// [`decompose`] needs samples at 0 filters.
    #[error("decompose: no samples at 0 filters, so the native cost is unknown")]
    NoBaseline,
    /// [`decompose`] needs samples at two or more filter counts >= 1 (and 3 or more samples).
    #[error("decompose: {distinct} distinct filter counts >= 1 with {samples} samples; need >= 2 counts and >= 3 samples for a slope")]
    TooFewPoints {
        /// Distinct filter counts >= 1.
        distinct: usize,
        /// Samples at those counts.
        samples: usize,
    },
    /// A sample is not a positive finite time.
    #[error("decompose: sample {index} at {filters} filters is {value} ns; samples must be finite and > 0")]
    BadSample {
        /// The filter count of the point.
        filters: u32,
        /// Index of the sample in the point.
        index: usize,
        /// Its value.
        value: f64,
    },
    /// statrs refused the t distribution (not expected for 1 or more degrees of freedom).
    #[error("decompose: Student's t distribution with {df} degrees of freedom: {why}")]
    Distribution {
        /// Degrees of freedom.
        df: f64,
        /// statrs' message.
        why: String,
    },
}

/// Instructions of every [`filter_program`] (both bodies have the same length).
pub const FILTER_LEN: u32 = 6;

/// The classic-BPF program of one filter of `body` ([`FILTER_LEN`] instructions):
///
/// ```text
/// 0: ld  [arch]                      ; seccomp_data.arch
/// 1: jeq #AUDIT_ARCH_CURRENT, 2, 5   ; other arch: allow
/// 2: ld  [nr] | [args[0] low word]   ; the only difference between the bodies
/// 3: jeq #never, 4, 5
/// 4: ret #SECCOMP_RET_ALLOW
/// 5: ret #SECCOMP_RET_ALLOW
/// ```
///
/// Every path ends in `SECCOMP_RET_ALLOW`. Pure; the loads are aligned and inside `struct
/// seccomp_data`, as `seccomp_check_filter` requires.
pub fn filter_program(body: FilterBody) -> Vec<libc::sock_filter> {
    let (offset, never) = match body {
        FilterBody::NrOnly => (NR_OFFSET, NEVER_NR),
        FilterBody::ArgLoad => (ARG0_LO_OFFSET, NEVER_ARG),
    };
    vec![
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, ARCH_OFFSET),
        jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, AUDIT_ARCH_CURRENT, 0, 3),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset),
        jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, never, 0, 1),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// `BPF_STMT` of `include/uapi/linux/filter.h` (all opcodes used here fit in 16 bits).
fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

/// `BPF_JUMP` of `include/uapi/linux/filter.h`.
fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Length in eBPF instructions of `body`'s filter once the kernel has converted it
/// (`net/core/filter.c: bpf_convert_filter`, after `seccomp_check_filter` rewrote the loads),
/// which is what `seccomp_attach_filter` counts against [`MAX_INSNS_PER_PATH`]: a 3-instruction
/// prologue (clear A, clear X, save the context), 1 per `ld [k]`, 1 per `jeq` whose `jt` or `jf`
/// is 0 plus 1 to move a negative (as `s32`) constant into a temporary register, 2 per `ret #k`
/// (move to R0, exit). 13 for both bodies (the arch and both "never" constants are negative).
pub fn kernel_len(body: FilterBody) -> u32 {
    const PROLOGUE: u32 = 3;
    filter_program(body)
        .iter()
        .map(|insn| {
            let code = u32::from(insn.code);
            if code == libc::BPF_RET | libc::BPF_K {
                2
            } else if code & 0x07 == libc::BPF_JMP && code != libc::BPF_JMP | libc::BPF_JA {
                let tmp = u32::from((insn.k as i32) < 0 && code & 0x08 == libc::BPF_K);
                let jumps = if insn.jt == 0 || insn.jf == 0 { 1 } else { 2 };
                tmp + jumps
            } else {
                1
            }
        })
        .sum::<u32>()
        + PROLOGUE
}

/// Largest number of `body` filters a task with no other filter can hold: the `n` with
/// `len + (n - 1) * (len + 4) <= MAX_INSNS_PER_PATH`, `len` = [`kernel_len`]
/// (`seccomp_attach_filter` adds the new filter's length to `len + 4` for each filter already
/// attached). 1927 for both bodies (`len` = 13).
pub fn max_filters(body: FilterBody) -> u32 {
    let len = kernel_len(body);
    (MAX_INSNS_PER_PATH - len) / (len + FILTER_PENALTY_INSNS) + 1
}

/// Sets no_new_privs (`prctl(PR_SET_NO_NEW_PRIVS, 1)`) and installs `n` copies of
/// [`filter_program`]`(body)` on the calling thread, one `seccomp(SECCOMP_SET_MODE_FILTER, 0,
/// &prog)` each, so the chain grows by `n` (`kernel/seccomp.c: seccomp_set_mode_filter`).
/// Filters apply to the calling thread and to threads and processes it creates afterwards, and
/// can never be removed: call this only in a worker process. `n = 0` does nothing.
///
/// Errors: [`SeccompError::NoNewPrivs`]; [`SeccompError::InstructionBudget`] when the kernel
/// refuses a filter with `ENOMEM` (the chain would exceed [`MAX_INSNS_PER_PATH`]; see
/// [`max_filters`]), after installing the ones that fit; [`SeccompError::Install`] for any other
/// errno.
pub fn install_filters(body: FilterBody, n: u32) -> Result<(), SeccompError> {
    install_filters_timed(body, n).map(|_| ())
}

/// [`install_filters`], returning the time of each `seccomp(SECCOMP_SET_MODE_FILTER)` call in ns,
/// in install order (the per-task install cost held against a cgroup attach).
pub fn install_filters_timed(body: FilterBody, n: u32) -> Result<Vec<f64>, SeccompError> {
    let mut times_ns = Vec::with_capacity(n as usize);
    if n == 0 {
        return Ok(times_ns);
    }
    let inherited = thread_seccomp_filters().unwrap_or(0);
    nix::sys::prctl::set_no_new_privs().map_err(|errno| SeccompError::NoNewPrivs { errno })?;
    let program = filter_program(body);
    let prog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_ptr().cast_mut(),
    };
    for index in 0..n {
        let start = Instant::now();
        // SAFETY: `prog` points at `program`, which lives until the end of the function; the
        // kernel copies the instructions and does not keep the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                0 as libc::c_ulong,
                &prog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            let errno = Errno::last();
            return Err(if errno == Errno::ENOMEM {
                SeccompError::InstructionBudget {
                    body,
                    len: kernel_len(body),
                    requested: n,
                    max: max_filters(body),
                    installed: index,
                    inherited,
                    errno,
                }
            } else {
                SeccompError::Install {
                    body,
                    index,
                    requested: n,
                    errno,
                }
            });
        }
        times_ns.push(start.elapsed().as_nanos() as f64);
    }
    Ok(times_ns)
}

/// `Seccomp_filters` of `/proc/thread-self/status` (the calling thread's chain length, Linux
/// 5.9+), or `None` when unavailable.
fn thread_seccomp_filters() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The syscall a worker times, so that the same trigger can be held against another mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// `getppid()`: the cheapest syscall, as the kernel's seccomp_benchmark.c uses.
    #[default]
    Getppid,
    /// `socket(AF_INET, SOCK_DGRAM, 0)`: the syscall that fires `cgroup/sock_create` programs, so
    /// seccomp chains and cgroup-bpf arrays are timed on the same trigger. Only `socket()` is
    /// timed; the sockets of a sample are closed after it, untimed.
    Socket,
}

/// Most sockets a `Socket` sample opens before closing them (file descriptors stay well under the
/// usual limit of 1024).
pub const MAX_SOCKET_BATCH: u64 = 512;

/// Takes `n_samples` samples of `batch` calls of `getppid()` each (after one untimed warm-up batch)
/// and returns the ns per call of each sample. Same as [`measure_trigger`] with [`Trigger::Getppid`].
pub fn measure_syscall(n_samples: usize, batch: u64) -> Vec<f64> {
    measure_trigger(Trigger::Getppid, n_samples, batch)
}

/// Takes `n_samples` samples of `batch` calls of `trigger` each (after one untimed warm-up batch),
/// timed with `Instant` (CLOCK_MONOTONIC), and returns the ns per call of each sample. For
/// [`Trigger::Socket`] the batch is capped at [`MAX_SOCKET_BATCH`] and the sockets are closed
/// after each sample, outside the timed region; a failed `socket()` is not retried (its cost,
/// usually an early EMFILE, is then what is timed).
pub fn measure_trigger(trigger: Trigger, n_samples: usize, batch: u64) -> Vec<f64> {
    let batch = match trigger {
        Trigger::Getppid => batch.max(1),
        Trigger::Socket => batch.clamp(1, MAX_SOCKET_BATCH),
    };
    let mut fds: Vec<libc::c_int> = Vec::with_capacity(batch as usize);
    let mut run = || -> f64 {
        let start = Instant::now();
        match trigger {
            Trigger::Getppid => {
                for _ in 0..batch {
                    // SAFETY: getppid takes no argument and cannot fail; the extra 0 is ignored.
                    std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid, 0 as libc::c_long) });
                }
            }
            Trigger::Socket => {
                for _ in 0..batch {
                    // SAFETY: plain socket(2) with constant arguments; the fd is closed below.
                    fds.push(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) });
                }
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / batch as f64;
        for fd in fds.drain(..) {
            if fd >= 0 {
                // SAFETY: fd was returned by socket() above and is closed once.
                unsafe { libc::close(fd) };
            }
        }
        ns
    };
    run();
    (0..n_samples).map(|_| run()).collect()
}

/// What a worker process is asked to do: install `filters` filters of `body`, then take
/// `samples` samples of `batch` syscalls each ([`measure_syscall`]). Serialized as JSON on the
/// worker's command line, e.g. `{"body":"arg-load","filters":8,"samples":200,"batch":1000}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRequest {
    /// The filter body.
    pub body: FilterBody,
    /// Filters to install (the chain length measured).
    pub filters: u32,
    /// Samples to take, 1..=[`MAX_WORKER_SAMPLES`].
    pub samples: usize,
    /// Syscalls per sample, 1..=[`MAX_WORKER_BATCH`].
    pub batch: u64,
    /// The syscall timed (default `getppid`).
    #[serde(default)]
    pub trigger: Trigger,
}

/// What a worker reports, as one JSON line on its stdout ([`format_report_line`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// The filter body of the request.
    pub body: FilterBody,
    /// The filters requested.
    pub filters: u32,
    /// Per-sample ns per syscall ([`measure_syscall`]); empty when `error` is set.
    pub samples_ns: Vec<f64>,
    /// Why the worker could not measure (a [`SeccompError`] message), if it could not.
    pub error: Option<String>,
    /// Time of each filter install, ns, in order ([`install_filters_timed`]).
    #[serde(default)]
    pub install_ns: Vec<f64>,
}

/// The worker's body: validates `req`, installs its filters into the *current* thread (and so
/// this process's future threads; see [`install_filters`]), checks the kernel's
/// `Seccomp_filters` count grew by `req.filters`, and measures. Never fails: errors are in the
/// report's `error`. Call it only in a freshly exec'd process that will exit afterwards (the
/// filters cannot be removed), such as `hookbench worker seccomp '<json>'`.
pub fn run_worker(req: &WorkerRequest) -> WorkerReport {
    let outcome = validate_request(req).and_then(|()| {
        let before = thread_seccomp_filters();
        let install_ns = install_filters_timed(req.body, req.filters)?;
        if let (Some(before), Some(after)) = (before, thread_seccomp_filters()) {
            let expected = before.saturating_add(req.filters);
            if after != expected {
                return Err(SeccompError::FilterCountMismatch {
                    installed: req.filters,
                    reported: after,
                    expected,
                });
            }
        }
        Ok((measure_trigger(req.trigger, req.samples, req.batch), install_ns))
    });
    let (samples_ns, install_ns, error) = match outcome {
        Ok((samples, install_ns)) => (samples, install_ns, None),
        Err(e) => (Vec::new(), Vec::new(), Some(e.to_string())),
    };
    WorkerReport {
        body: req.body,
        filters: req.filters,
        samples_ns,
        error,
        install_ns,
    }
}

fn validate_request(req: &WorkerRequest) -> Result<(), SeccompError> {
    if req.samples == 0 || req.samples > MAX_WORKER_SAMPLES {
        return Err(SeccompError::InvalidRequest {
            field: "samples",
            value: req.samples as u64,
            why: "use 1..=1000000",
        });
    }
    if req.batch == 0 || req.batch > MAX_WORKER_BATCH {
        return Err(SeccompError::InvalidRequest {
            field: "batch",
            value: req.batch,
            why: "use 1..=100000000",
        });
    }
    Ok(())
}

/// The line a worker prints on stdout: [`REPORT_MARKER`] followed by the report as JSON (no
/// trailing newline). Serializing a report does not fail in practice; if it did, the line
/// carries a report with no samples and the serialization error in `error`.
pub fn format_report_line(report: &WorkerReport) -> String {
    let json = serde_json::to_string(report).unwrap_or_else(|e| {
        let fallback = WorkerReport {
            body: report.body,
            filters: report.filters,
            samples_ns: Vec::new(),
            error: Some(format!("cannot serialize the report: {e}")),
            install_ns: Vec::new(),
        };
        serde_json::to_string(&fallback).unwrap_or_default()
    });
    format!("{REPORT_MARKER}{json}")
}

pub use crate::worker::worker_command;

/// Runs `exe args_prefix... <request JSON>` ([`std::process::Command`]: fork + exec, so no
/// fork-after-threads hazard), waits at most [`WORKER_TIMEOUT_SECS`] (killing it when over), and
/// parses its report: the rest of the line after the last [`REPORT_MARKER`] on stdout, or else
/// the last non-empty stdout line as bare JSON. A report whose `error` is set is returned as
/// `Ok`: the caller decides. Errors: [`SeccompError::WorkerIo`], [`SeccompError::WorkerTimeout`],
/// [`SeccompError::NoReport`], [`SeccompError::BadReport`].
pub fn spawn_worker(exe: &Path, args_prefix: &[&str], req: &WorkerRequest) -> Result<WorkerReport, SeccompError> {
    spawn_worker_with(exe, args_prefix, &[], req, Duration::from_secs(WORKER_TIMEOUT_SECS))
}

/// [`spawn_worker`] with extra environment variables `envs` for the worker and a `timeout`.
pub fn spawn_worker_with(
    exe: &Path,
    args_prefix: &[&str],
    envs: &[(&str, &str)],
    req: &WorkerRequest,
    timeout: Duration,
) -> Result<WorkerReport, SeccompError> {
    let json = serde_json::to_string(req).map_err(SeccompError::Serialize)?;
    let run = WorkerRun {
        exe,
        args_prefix,
        envs,
        timeout,
        poll: Duration::from_millis(5),
        marker: REPORT_MARKER,
        bare_json_fallback: true,
    };
    run_json_worker(&run, &json).map_err(worker_error)
}

/// Maps a worker failure into the matching [`SeccompError`] variant.
fn worker_error(f: WorkerFailure) -> SeccompError {
    match f {
        WorkerFailure::Io { exe, what, source } => SeccompError::WorkerIo { exe, what, source },
        WorkerFailure::Timeout { exe, timeout_ms } => SeccompError::WorkerTimeout { exe, timeout_ms },
        WorkerFailure::NoReport { exe, status, stderr } => SeccompError::NoReport { exe, status, stderr },
        WorkerFailure::BadReport { exe, line, source } => SeccompError::BadReport { exe, line, source },
    }
}

/// The split of a syscall's cost with a chain of n filters into
/// `native + entry + n * per_filter` (the model of the kernel's `seccomp_benchmark.c`), all in
/// ns per syscall.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decomposition {
    /// Mean ns per syscall with no filter (n = 0): the syscall itself.
    pub native_ns: f64,
    /// Fixed cost of having any filter (seccomp's slow-path entry, the action-cache check),
    /// ns: the least-squares intercept over n >= 1 minus `native_ns`.
    pub entry_ns: f64,
    /// Marginal cost per filter in the chain, ns: the least-squares slope over n >= 1.
    pub per_filter_ns: f64,
    /// 95% confidence interval of `per_filter_ns` (Student's t on samples - 2 degrees of
    /// freedom), ns.
    pub per_filter_ci95: (f64, f64),
    /// For each distinct n >= 1, ascending: (n, predicted `native + entry + n * per_filter` ns,
    /// measured mean ns).
    pub predicted_total_ns_at: Vec<(u32, f64, f64)>,
    /// Largest `|predicted - measured| / measured` over `predicted_total_ns_at` (0 = the parts
    /// add up exactly).
    pub max_relative_error: f64,
}

/// Splits per-sample syscall times at several chain lengths (`points`: (filters, samples in ns
/// per syscall); several points may share a filter count, their samples are pooled) into
/// [`Decomposition`]: native = mean at n = 0; an ordinary least-squares line through every
/// sample at n >= 1 gives the per-filter slope (95% CI from Student's t, `statrs`) and the
/// intercept, entry = intercept - native; then, as `seccomp_benchmark.c` does, checks that
/// native + entry + n * per_filter predicts each measured mean.
///
/// Errors: [`SeccompError::NoBaseline`] (no sample at n = 0), [`SeccompError::TooFewPoints`]
/// (fewer than 2 distinct n >= 1 or 3 samples there), [`SeccompError::BadSample`] (a sample not
/// finite and > 0), [`SeccompError::Distribution`].
pub fn decompose(points: &[(u32, Vec<f64>)]) -> Result<Decomposition, SeccompError> {
    for (filters, samples) in points {
        if let Some((index, &value)) = samples.iter().enumerate().find(|(_, v)| !(v.is_finite() && **v > 0.0)) {
            return Err(SeccompError::BadSample {
                filters: *filters,
                index,
                value,
            });
        }
    }
    let native: Vec<f64> = points
        .iter()
        .filter(|(n, _)| *n == 0)
        .flat_map(|(_, s)| s.iter().copied())
        .collect();
    if native.is_empty() {
        return Err(SeccompError::NoBaseline);
    }
    let native_ns = mean(&native);
    let mut counts: Vec<u32> = points.iter().map(|(n, _)| *n).filter(|&n| n >= 1).collect();
    counts.sort_unstable();
    counts.dedup();
    let (xs, ys): (Vec<f64>, Vec<f64>) = points
        .iter()
        .filter(|(n, _)| *n >= 1)
        .flat_map(|(n, s)| s.iter().map(move |&y| (f64::from(*n), y)))
        .unzip();
    if counts.len() < 2 || xs.len() < 3 {
        return Err(SeccompError::TooFewPoints {
            distinct: counts.len(),
            samples: xs.len(),
        });
    }
    let nf = xs.len() as f64;
    let x_mean = mean(&xs);
    let y_mean = mean(&ys);
    let sxx: f64 = xs.iter().map(|x| (x - x_mean).powi(2)).sum();
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - x_mean) * (y - y_mean)).sum();
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    let sse: f64 = xs
        .iter()
        .zip(&ys)
        .map(|(x, y)| (y - (intercept + slope * x)).powi(2))
        .sum();
    let df = nf - 2.0;
    let slope_stderr = (sse / df).sqrt() / sxx.sqrt();
    let t = StudentsT::new(0.0, 1.0, df)
        .map_err(|e| SeccompError::Distribution { df, why: e.to_string() })?
        .inverse_cdf(0.975);
    let entry_ns = intercept - native_ns;
    let predicted_total_ns_at: Vec<(u32, f64, f64)> = counts
        .iter()
        .map(|&n| {
            let at: Vec<f64> = points
                .iter()
                .filter(|(m, _)| *m == n)
                .flat_map(|(_, s)| s.iter().copied())
                .collect();
            (n, native_ns + entry_ns + f64::from(n) * slope, mean(&at))
        })
        .collect();
    let max_relative_error = predicted_total_ns_at
        .iter()
        .map(|&(_, p, m)| (p - m).abs() / m)
        .fold(0.0, f64::max);
    Ok(Decomposition {
        native_ns,
        entry_ns,
        per_filter_ns: slope,
        per_filter_ci95: (slope - t * slope_stderr, slope + t * slope_stderr),
        predicted_total_ns_at,
        max_relative_error,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Env var that turns [`worker_entry`] into a worker.
    const WORKER_ENV: &str = "HOOKBENCH_SECCOMP_WORKER";

    /// Serializes the tests that spawn workers, so measurements do not compete for CPUs.
    static WORKER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The worker mode of this test binary: with `HOOKBENCH_SECCOMP_WORKER` set, reads the
    /// request JSON from the last argument, runs the worker and prints its report line. Without
    /// it, does nothing (so a normal test run never installs filters in the test process).
    #[test]
    fn worker_entry() {
        if std::env::var_os(WORKER_ENV).is_none() {
            return;
        }
        let report = match std::env::args()
            .next_back()
            .map(|a| serde_json::from_str::<WorkerRequest>(&a))
        {
            Some(Ok(req)) => run_worker(&req),
            other => WorkerReport {
                body: FilterBody::NrOnly,
                filters: 0,
                samples_ns: Vec::new(),
                error: Some(format!("bad request argument: {other:?}")),
                install_ns: Vec::new(),
            },
        };
        println!("\n{}", format_report_line(&report));
    }

    fn spawn_test_worker(req: &WorkerRequest) -> WorkerReport {
        let exe = std::env::current_exe().expect("current_exe");
        spawn_worker_with(
            &exe,
            &[
                "--exact",
                "seccomp::tests::worker_entry",
                "--nocapture",
                "--test-threads=1",
            ],
            &[(WORKER_ENV, "1")],
            req,
            Duration::from_secs(WORKER_TIMEOUT_SECS),
        )
        .expect("worker ran")
    }

    /// Follows every path of a classic-BPF program with only LD/JEQ/RET (checking jumps stay
    /// inside it) and returns the RET constants reached.
    fn returns_on_all_paths(prog: &[libc::sock_filter]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![0usize];
        while let Some(pc) = stack.pop() {
            let insn = prog.get(pc).expect("pc inside the program");
            let code = u32::from(insn.code);
            match code & 0x07 {
                c if c == libc::BPF_LD => stack.push(pc + 1),
                c if c == libc::BPF_JMP => {
                    assert_eq!(code, libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K);
                    stack.push(pc + 1 + usize::from(insn.jt));
                    stack.push(pc + 1 + usize::from(insn.jf));
                }
                c if c == libc::BPF_RET => out.push(insn.k),
                other => panic!("unexpected class {other}"),
            }
        }
        out
    }

    #[test]
    fn filter_programs_have_fixed_length_and_always_allow() {
        for body in FilterBody::ALL {
            let prog = filter_program(body);
            assert_eq!(prog.len() as u32, FILTER_LEN, "{body}");
            let rets = returns_on_all_paths(&prog);
            assert_eq!(rets.len(), 3, "{body}: arch mismatch, match, no match");
            assert!(rets.iter().all(|&k| k == libc::SECCOMP_RET_ALLOW), "{body}: {rets:x?}");
            let last = prog.last().expect("non-empty");
            assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K);
            // The arch check comes first.
            assert_eq!(prog[0].k, 4);
            assert_eq!(prog[1].k, AUDIT_ARCH_CURRENT);
        }
        assert_eq!(filter_program(FilterBody::NrOnly)[2].k, 0);
        assert_eq!(
            filter_program(FilterBody::ArgLoad)[2].k,
            if cfg!(target_endian = "little") { 16 } else { 20 }
        );
        for body in FilterBody::ALL {
            assert_eq!(kernel_len(body), 13, "{body}");
            assert_eq!(max_filters(body), 1927, "{body}");
        }
    }

    #[test]
    fn body_names_round_trip() {
        for body in FilterBody::ALL {
            assert_eq!(body.to_string().parse::<FilterBody>().expect("parses"), body);
            assert_eq!(serde_json::to_string(&body).expect("json"), format!("\"{body}\""));
        }
        let err = "null".parse::<FilterBody>().expect_err("unknown");
        assert!(err.to_string().contains("\"null\""), "{err}");
    }

    #[test]
    fn decompose_recovers_exact_synthetic_parts() {
        let (native, entry, per) = (100.0, 30.0, 7.0);
        let mut points = vec![(0, vec![native; 5])];
        for n in [1u32, 8, 32, 64] {
            points.push((n, vec![native + entry + per * f64::from(n); 5]));
        }
        let d = decompose(&points).expect("decomposes");
        assert!((d.native_ns - native).abs() < 1e-9, "{d:?}");
        assert!((d.entry_ns - entry).abs() < 1e-9, "{d:?}");
        assert!((d.per_filter_ns - per).abs() < 1e-9, "{d:?}");
        assert!((d.per_filter_ci95.0 - per).abs() < 1e-6 && (d.per_filter_ci95.1 - per).abs() < 1e-6);
        assert!(d.max_relative_error < 1e-12, "{d:?}");
        assert_eq!(
            d.predicted_total_ns_at.iter().map(|p| p.0).collect::<Vec<_>>(),
            [1, 8, 32, 64]
        );
    }

    #[test]
    fn decompose_ci_covers_noisy_slope_and_refuses_bad_input() {
        let mut points = vec![(0, vec![99.0, 101.0])];
        for n in [1u32, 2, 4, 8] {
            let y = 120.0 + 3.0 * f64::from(n);
            points.push((n, vec![y - 1.0, y + 1.0, y - 0.5, y + 0.5]));
        }
        let d = decompose(&points).expect("decomposes");
        assert!(d.per_filter_ci95.0 < 3.0 && 3.0 < d.per_filter_ci95.1, "{d:?}");
        assert!((d.entry_ns - 20.0).abs() < 1e-9, "{d:?}");
        assert!(matches!(decompose(&points[1..]), Err(SeccompError::NoBaseline)));
        assert!(matches!(
            decompose(&points[..2]),
            Err(SeccompError::TooFewPoints { .. })
        ));
        let bad = vec![(0, vec![1.0]), (1, vec![f64::NAN])];
        assert!(matches!(
            decompose(&bad),
            Err(SeccompError::BadSample { filters: 1, .. })
        ));
    }

    #[test]
    fn worker_beyond_instruction_budget_reports_budget_error() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let max = max_filters(FilterBody::ArgLoad);
        let req = WorkerRequest {
            body: FilterBody::ArgLoad,
            filters: max + 1,
            samples: 1,
            batch: 1,
            trigger: Trigger::Getppid,
        };
        let report = spawn_test_worker(&req);
        let err = report.error.expect("budget error");
        eprintln!("seccomp budget: {err}");
        assert!(err.contains("seccomp instruction budget"), "{err}");
        assert!(err.contains(&format!("{} arg-load filters", max + 1)), "{err}");
        assert!(err.contains(&format!("at most {max} fit")), "{err}");
        // The kernel agrees with max_filters: it accepted exactly `max` on a fresh chain.
        assert!(
            err.contains(&format!("after {max} were installed (0 inherited)")),
            "{err}"
        );
        assert!(report.samples_ns.is_empty());
    }

    #[test]
    fn worker_rejects_invalid_request() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let req = WorkerRequest {
            body: FilterBody::NrOnly,
            filters: 1,
            samples: 0,
            batch: 1,
            trigger: Trigger::Getppid,
        };
        let report = spawn_test_worker(&req);
        assert!(
            report.error.as_deref().is_some_and(|e| e.contains("samples = 0")),
            "{report:?}"
        );
    }

    #[test]
    fn spawn_worker_reports_missing_report_and_timeout() {
        let req = WorkerRequest {
            body: FilterBody::NrOnly,
            filters: 0,
            samples: 1,
            batch: 1,
            trigger: Trigger::Getppid,
        };
        let err = spawn_worker(Path::new("/bin/true"), &[], &req).expect_err("no report");
        assert!(matches!(err, SeccompError::NoReport { .. }), "{err}");
        let err = spawn_worker_with(
            Path::new("/bin/sh"),
            &["-c", "sleep 5"],
            &[],
            &req,
            Duration::from_millis(200),
        )
        .expect_err("timeout");
        assert!(matches!(err, SeccompError::WorkerTimeout { .. }), "{err}");
        let err = spawn_worker(Path::new("/nonexistent/hookbench"), &[], &req).expect_err("spawn");
        assert!(err.to_string().contains("/nonexistent/hookbench"), "{err}");
    }

    #[test]
    fn chain_cost_grows_per_filter_unless_the_action_cache_proves_it() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        const COUNTS: [u32; 5] = [0, 1, 8, 32, 64];
        const ROUNDS: usize = 10;
        const SAMPLES_PER_ROUND: usize = 20;
        const BATCH: u64 = 1000;
        let mut points: Vec<Vec<(u32, Vec<f64>)>> = FilterBody::ALL
            .iter()
            .map(|_| COUNTS.iter().map(|&n| (n, Vec::new())).collect())
            .collect();
        // Rounds interleave every configuration, so drift over time does not bias the slope.
        for _ in 0..ROUNDS {
            for (b, body) in FilterBody::ALL.into_iter().enumerate() {
                for (i, &filters) in COUNTS.iter().enumerate() {
                    let req = WorkerRequest {
                        body,
                        filters,
                        samples: SAMPLES_PER_ROUND,
                        batch: BATCH,
                        trigger: Trigger::Getppid,
                    };
                    let report = spawn_test_worker(&req);
                    assert_eq!(report.error, None, "{req:?}");
                    assert_eq!((report.body, report.filters), (body, filters));
                    assert_eq!(report.samples_ns.len(), SAMPLES_PER_ROUND);
                    points[b][i].1.extend(report.samples_ns);
                }
            }
        }
        // 0 filters is the same configuration for both bodies: pool their baselines.
        let baseline: Vec<f64> = points.iter().flat_map(|p| p[0].1.iter().copied()).collect();
        for p in &mut points {
            p[0].1.clone_from(&baseline);
        }
        let d: Vec<Decomposition> = points.iter().map(|p| decompose(p).expect("decomposes")).collect();
        for (body, d) in FilterBody::ALL.iter().zip(&d) {
            eprintln!(
                "seccomp {body:>8}: native {:.1} ns, entry {:.1} ns, per-filter {:.2} ns [{:.2}, {:.2}] (95% CI), \
                 max relative error {:.3}",
                d.native_ns,
                d.entry_ns,
                d.per_filter_ns,
                d.per_filter_ci95.0,
                d.per_filter_ci95.1,
                d.max_relative_error
            );
            for (n, p, m) in &d.predicted_total_ns_at {
                eprintln!("seccomp {body:>8}: n = {n:>2}: predicted {p:.1} ns, measured {m:.1} ns");
            }
        }
        let (nr, arg) = (&d[0], &d[1]);
        assert!(
            arg.per_filter_ns > 0.0 && arg.per_filter_ci95.0 > 0.0,
            "arg-load: {arg:?}"
        );
        assert!(
            nr.per_filter_ns.abs() < arg.per_filter_ns / 4.0,
            "nr-only per-filter {} vs arg-load {}",
            nr.per_filter_ns,
            arg.per_filter_ns
        );
    }
}
