//! seccomp filter stacks on the running kernel: the `task-chain` dispatch model as it shipped.
//!
//! Each [`install_filters_ns`] call pushes `n` classic-BPF filters onto the calling thread's chain
//! (`struct seccomp_filter`'s `prev` list, `kernel/seccomp.c: seccomp_attach_filter`), and every
//! syscall of that thread then runs every filter of the chain (`seccomp_run_filters`), except
//! that the action cache (`seccomp_cache_check_allow`, Linux 5.11+) skips the whole chain for a
//! syscall whose result every filter determines from the syscall number and arch alone
//! (`seccomp_cache_prepare_bitmap` / `seccomp_is_const_allow` emulate each filter at attach
//! time). The two [`FilterBody`] shapes have the same length and differ only in what they load,
//! so one is provably constant to the cache and the other is not.
//!
//! Filters are inherited across fork and cannot be removed, so measurements happen in a freshly
//! exec'd worker process ([`SeccompWorker`], `hookbench worker seccomp`), never in the harness
//! itself. A request is a list of steps that grow the chain, each timed on a trigger: one step
//! for an ordinary cell, and the steps of the kernel's
//! `tools/testing/selftests/seccomp/seccomp_benchmark.c` (native, one and two cacheable
//! filters, a third and fourth full filter) for its native + entry + per-filter split, which the
//! harness computes.

use std::time::Duration;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

/// Most instructions a task's filter chain may hold in all, the kernel's `MAX_INSNS_PER_PATH`.
///
/// Each filter already attached counts 4 extra (`MAX_INSNS_PER_PATH = (1 << 18) / sizeof(struct
/// sock_filter)` in `kernel/seccomp.c`; exceeding it makes `seccomp_attach_filter` return
/// `-ENOMEM`). The kernel counts each filter's length *after* conversion to eBPF (`prog->len`),
/// see [`kernel_len_insns`].
pub const MAX_INSNS_PER_PATH: u32 = 32768;

/// Instructions the kernel charges per attached filter on top of its own length.
///
/// This is the "4 instr penalty" of `seccomp_attach_filter`.
pub const FILTER_PENALTY_INSNS: u32 = 4;

/// Offset of `seccomp_data.nr` (`include/uapi/linux/seccomp.h`).
const NR_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, nr) as u32;
/// Offset of `seccomp_data.arch`.
const ARCH_OFFSET: u32 = std::mem::offset_of!(libc::seccomp_data, arch) as u32;
/// Offset of the low 32 bits of `seccomp_data.args[0]`, by endianness.
///
/// `args[0]` is a 64-bit field: the low word comes first on little-endian machines, second on
/// big-endian ones.
const ARG0_LO_OFFSET: u32 =
    std::mem::offset_of!(libc::seccomp_data, args) as u32 + if cfg!(target_endian = "little") { 0 } else { 4 };

/// A syscall number no architecture uses: [`FilterBody::NrOnly`] compares `nr` with it.
const NEVER_NR: u32 = 0xffff_fff0;
/// An argument value the measured syscall never passes (it passes 0).
///
/// [`FilterBody::ArgLoad`] compares the low word of `args[0]` with it.
const NEVER_ARG: u32 = 0xdead_beef;

/// `__AUDIT_ARCH_64BIT` of include/uapi/linux/audit.h.
const AUDIT_ARCH_64BIT: u32 = 0x8000_0000;
/// `__AUDIT_ARCH_LE` of include/uapi/linux/audit.h.
const AUDIT_ARCH_LE: u32 = 0x4000_0000;

/// The `EM_*` value (include/uapi/linux/elf-em.h) of Rust architecture `arch`.
///
/// Fails the build for an architecture hookbench has no value for.
const fn em_of(arch: &str) -> u32 {
    match arch.as_bytes() {
        b"x86_64" => 62,
        b"x86" => 3,
        b"aarch64" => 183,
        b"arm" => 40,
        b"riscv64" => 243,
        b"loongarch64" => 258,
        b"s390x" => 22,
        b"powerpc64" => 21,
        _ => panic!("hookbench's seccomp workload needs the EM_* value of this architecture"),
    }
}

/// The `AUDIT_ARCH_*` value of the architecture this binary was built for.
///
/// It is what the kernel puts in `seccomp_data.arch` for its native syscalls: `EM_* |
/// __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE` as include/uapi/linux/audit.h defines them (for example
/// `AUDIT_ARCH_X86_64` = 0xc000_003e).
pub const AUDIT_ARCH_CURRENT: u32 = em_of(std::env::consts::ARCH)
    | if cfg!(target_pointer_width = "64") {
        AUDIT_ARCH_64BIT
    } else {
        0
    }
    | if cfg!(target_endian = "little") {
        AUDIT_ARCH_LE
    } else {
        0
    };

/// What each installed filter does, and so whether the action cache can skip it.
///
/// Every shape first checks `seccomp_data.arch` against [`AUDIT_ARCH_CURRENT`] (returning
/// `SECCOMP_RET_ALLOW` for any other arch, like real filters). The two own-hook shapes then load
/// one 32-bit word, compare it with a constant that never matches and return
/// `SECCOMP_RET_ALLOW` either way ([`FILTER_INSNS`] instructions each); the two foreign shapes act
/// on [`FOREIGN_NR`] only (see [`filter_program`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterBody {
    /// `"nr-only"`: loads `seccomp_data.nr`, so the action cache skips the whole chain.
    ///
    /// The cache proves the result from the number and arch alone (`seccomp_is_const_allow`
    /// emulates loads of `nr` and `arch`), so syscalls skip the chain whatever its length.
    NrOnly,
    /// `"arg-load"`: loads the low 32 bits of `seccomp_data.args[0]`, so every filter runs.
    ///
    /// The cache cannot emulate argument loads, so every filter of the chain runs on every syscall.
    ArgLoad,
    /// `"foreign-nr-first"`: a filter for another syscall in libseccomp's shape.
    ///
    /// Arch check, then `nr` compared with [`FOREIGN_NR`], the argument checked only on that
    /// branch. For every other syscall the result is a constant ALLOW that the action cache can
    /// prove, so a chain of these alone is skipped; behind a filter the cache cannot prove for
    /// the syscall, every one of them runs (5 instructions on the measured path).
    ForeignNrFirst,
    /// `"foreign-arg-first"`: the same filter with `args[0]` loaded before the number check.
    ///
    /// The action cache cannot emulate that load, so it runs on every syscall (7 instructions on
    /// the measured path).
    ForeignArgFirst,
}

impl FilterBody {
    /// Both bodies, in a fixed order.
    pub const ALL: [FilterBody; 4] = [
        FilterBody::NrOnly,
        FilterBody::ArgLoad,
        FilterBody::ForeignNrFirst,
        FilterBody::ForeignArgFirst,
    ];

    /// The body's name: `"nr-only"` or `"arg-load"`.
    pub fn name(self) -> &'static str {
        match self {
            FilterBody::NrOnly => "nr-only",
            FilterBody::ArgLoad => "arg-load",
            FilterBody::ForeignNrFirst => "foreign-nr-first",
            FilterBody::ForeignArgFirst => "foreign-arg-first",
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
    #[error(
        "unknown seccomp filter body {name:?}: use \"nr-only\", \"arg-load\", \"foreign-nr-first\" or \
         \"foreign-arg-first\""
    )]
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
    /// The kernel refused a filter with `-ENOMEM`: the chain would exceed [`MAX_INSNS_PER_PATH`].
    #[error(
        "seccomp instruction budget: {requested} {body} filters of {len_insns} eBPF instructions do not fit in the kernel's \
         MAX_INSNS_PER_PATH = {MAX_INSNS_PER_PATH} (each filter counts its length + {FILTER_PENALTY_INSNS}); \
         at most {max} fit on an empty chain, the kernel said {errno} after {installed} were installed \
         ({inherited} inherited); ask for n <= {max}"
    )]
    InstructionBudget {
        /// The filter body.
        body: FilterBody,
        /// eBPF instructions per filter, as the kernel counts them ([`kernel_len_insns`]).
        len_insns: u32,
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
        /// The errno: `EINVAL` (no seccomp filter support), `EACCES`, `EFAULT` (bad program).
        ///
        /// `EACCES` means no_new_privs is not set and the task lacks `CAP_SYS_ADMIN`.
        errno: Errno,
    },
    /// A request field is out of range.
    #[error("seccomp worker request {field} = {value} is invalid: {why}")]
    InvalidRequest {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// What is required.
        why: &'static str,
    },
    /// The kernel reports a filter count other than the one installed.
    #[error(
        "after installing {installed} filters the kernel reports Seccomp_filters = {reported}, expected {expected}"
    )]
    FilterCountMismatch {
        /// Filters installed by this worker.
        installed: u32,
        /// `Seccomp_filters` of /proc/thread-self/status.
        reported: u32,
        /// What it should be.
        expected: u32,
    },
    /// The trigger could not be timed.
    #[error(transparent)]
    Trigger(#[from] crate::trigger::TriggerError),
}

/// Instructions of the own-hook filters, [`FilterBody::NrOnly`] and [`FilterBody::ArgLoad`].
pub const FILTER_INSNS: u32 = 6;

/// The classic-BPF program of one filter of `body`.
///
/// The own-hook bodies ([`FILTER_INSNS`] instructions):
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
/// Every path of these ends in `SECCOMP_RET_ALLOW`. The foreign bodies return
/// `SECCOMP_RET_ERRNO | EPERM` for [`FOREIGN_NR`] with `args[0]` = a value no caller passes,
/// `SECCOMP_RET_ALLOW` otherwise: [`FilterBody::ForeignNrFirst`] checks the number before
/// loading the argument (8 instructions), [`FilterBody::ForeignArgFirst`] loads the argument
/// into X first (`tax`), then checks the number (10). Pure; the loads are aligned and inside
/// `struct seccomp_data`, as `seccomp_check_filter` requires.
pub fn filter_program(body: FilterBody) -> Vec<libc::sock_filter> {
    let never = match body {
        FilterBody::NrOnly => NEVER_NR,
        _ => NEVER_ARG,
    };
    let on_match = match body {
        FilterBody::NrOnly | FilterBody::ArgLoad => libc::SECCOMP_RET_ALLOW,
        FilterBody::ForeignNrFirst | FilterBody::ForeignArgFirst => SECCOMP_RET_EPERM,
    };
    program_of(body, never, on_match)
}

/// The program of filter `index` of a probed chain: `body`'s shape, answering its own probe.
///
/// The same instructions as [`filter_program`]`(body)` (same length, same kernel length, same
/// path on every call the filter does not match), with the constant compared with `args[0]`
/// replaced by [`probe_arg`]`(index)` and the return of that match by `SECCOMP_RET_ERRNO |`
/// [`probe_errno`]`(index)`. So `getpeername(probe_arg(index), NULL, NULL)` fails with
/// `probe_errno(index)` when, and only when, filter `index` is in the chain and evaluates
/// ([`probe_chain`]). `None` for [`FilterBody::NrOnly`], which loads no argument.
pub fn probe_filter_program(body: FilterBody, index: u32) -> Option<Vec<libc::sock_filter>> {
    (body != FilterBody::NrOnly)
        .then(|| program_of(body, probe_arg(index), libc::SECCOMP_RET_ERRNO | probe_errno(index)))
}

/// `body`'s program comparing with `never` and returning `on_match` when that compare matches.
fn program_of(body: FilterBody, never: u32, on_match: u32) -> Vec<libc::sock_filter> {
    let ld = |offset| stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    let jeq = |k, jt, jf| jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, k, jt, jf);
    let allow = stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW);
    let matched = stmt(libc::BPF_RET | libc::BPF_K, on_match);
    // Every filter checks the architecture first and allows another's calls: the jump skips
    // `checks` (at most 7 instructions) to the final allow.
    let arch_first = |checks: Vec<libc::sock_filter>| {
        let mut prog = vec![ld(ARCH_OFFSET), jeq(AUDIT_ARCH_CURRENT, 0, checks.len() as u8)];
        prog.extend(checks);
        prog.push(allow);
        prog
    };
    match body {
        FilterBody::NrOnly => arch_first(vec![ld(NR_OFFSET), jeq(never, 0, 1), matched]),
        FilterBody::ArgLoad => arch_first(vec![ld(ARG0_LO_OFFSET), jeq(never, 0, 1), matched]),
        // 2: nr; 4: the argument, only for FOREIGN_NR; 6: the match; 7: allow.
        FilterBody::ForeignNrFirst => arch_first(vec![
            ld(NR_OFFSET),
            jeq(FOREIGN_NR, 0, 3),
            ld(ARG0_LO_OFFSET),
            jeq(never, 0, 1),
            matched,
        ]),
        // 2: the argument, kept in X; 4: nr; 6: the argument back for FOREIGN_NR.
        FilterBody::ForeignArgFirst => arch_first(vec![
            ld(ARG0_LO_OFFSET),
            stmt(libc::BPF_MISC | libc::BPF_TAX, 0),
            ld(NR_OFFSET),
            jeq(FOREIGN_NR, 0, 3),
            stmt(libc::BPF_MISC | libc::BPF_TXA, 0),
            jeq(never, 0, 1),
            matched,
        ]),
    }
}

/// The `args[0]` low word filter `index` of a probed chain recognises (`0xdea0_0003 + 4 index`).
///
/// Not 4-byte aligned and far above any file descriptor, so no call of a worker but the probe
/// passes it; negative as `s32`, like [`NEVER_ARG`], so the kernel's length is unchanged.
pub fn probe_arg(index: u32) -> u32 {
    PROBE_ARG_BASE.wrapping_add((index % PROBE_SLOTS) << 2)
}

/// The errno filter `index` of a probed chain answers its probe with (1024 + index).
///
/// Above every errno the kernel itself returns (< 600) and at most `MAX_ERRNO` = 4095, which
/// `__seccomp_filter` caps `SECCOMP_RET_DATA` at; distinct for the first [`PROBE_SLOTS`]
/// filters, more than the instruction budget lets any chain hold ([`max_filters`]).
pub fn probe_errno(index: u32) -> u32 {
    PROBE_ERRNO_BASE + index % PROBE_SLOTS
}

/// First `args[0]` value of [`probe_arg`].
const PROBE_ARG_BASE: u32 = 0xdea0_0003;
/// First errno of [`probe_errno`].
const PROBE_ERRNO_BASE: u32 = 1024;
/// Filters a probed chain can tell apart: the errnos from 1024 up to `MAX_ERRNO` = 4095.
pub const PROBE_SLOTS: u32 = 4096 - PROBE_ERRNO_BASE;

/// The syscall every foreign filter is for: `getpeername`, which no worker calls.
///
/// A neighbour of the measured `getsockname()`.
pub const FOREIGN_NR: u32 = libc::SYS_getpeername as u32;

/// `SECCOMP_RET_ERRNO | EPERM`: what a foreign filter returns when its own check matches.
const SECCOMP_RET_EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

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

/// Length in eBPF instructions of `body`'s filter once the kernel has converted it.
///
/// This is what `seccomp_attach_filter` counts against [`MAX_INSNS_PER_PATH`], after
/// `seccomp_check_filter` rewrote the loads and `net/core/filter.c: bpf_convert_filter` converted
/// the program: a 3-instruction prologue (clear A, clear X, save the context), 1 per `ld [k]`, 1
/// per `jeq` whose `jt` or `jf` is 0 plus 1 to move a negative (as `s32`) constant into a
/// temporary register, 2 per `ret #k` (move to R0, exit), 1 per `tax`/`txa`. 13 for the own-hook
/// bodies (the arch and both "never" constants are negative), 15 for `foreign-nr-first`, 17 for
/// `foreign-arg-first`.
pub fn kernel_len_insns(body: FilterBody) -> u32 {
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

/// Largest number of `body` filters a task with no other filter can hold (1927 for own-hook).
///
/// It is the `n` with `len + (n - 1) * (len + 4) <= MAX_INSNS_PER_PATH`, `len` =
/// [`kernel_len_insns`] (`seccomp_attach_filter` adds the new filter's length to `len + 4` for
/// each filter already attached).
pub fn max_filters(body: FilterBody) -> u32 {
    let len = kernel_len_insns(body);
    (MAX_INSNS_PER_PATH - len) / (len + FILTER_PENALTY_INSNS) + 1
}

/// Most filters one worker request may add in all, which bounds the report.
///
/// The kernel's own budget, [`max_filters`], is lower for every shipped body.
pub const MAX_REQUEST_FILTERS: u32 = 100_000;

/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW` (include/uapi/linux/seccomp.h): keep the mitigation state.
///
/// It installs without forcing the speculative-store-bypass mitigation on the task
/// (`arch_seccomp_spec_mitigate`), so a measured chain and its baseline run in the same
/// mitigation state.
pub const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;

/// Installs `n` copies of `body`'s filter on the calling thread; the time of each install, ns.
///
/// Sets no_new_privs (`prctl(PR_SET_NO_NEW_PRIVS, 1)`), then one
/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)` per copy of [`filter_program`]`(body)` (with
/// `SECCOMP_FILTER_FLAG_SPEC_ALLOW` when `spec_allow`), so the chain grows by `n`
/// (`kernel/seccomp.c: seccomp_set_mode_filter`); each install is timed with `clock`. Filters
/// apply to the calling thread and to what it creates afterwards, and can never be removed: call
/// this only in a worker process. `n = 0` does nothing.
///
/// Errors: [`SeccompError::NoNewPrivs`]; [`SeccompError::InstructionBudget`] when the kernel
/// refuses a filter with `ENOMEM` (the chain would exceed [`MAX_INSNS_PER_PATH`]; see
/// [`max_filters`]), after installing the ones that fit; [`SeccompError::Install`] for any other
/// errno.
pub fn install_filters_ns(
    clock: &hookbench_measure::Clock,
    body: FilterBody,
    n: u32,
    spec_allow: bool,
) -> Result<Vec<f64>, SeccompError> {
    let program = filter_program(body);
    install_programs_ns(clock, body, n, spec_allow, |_| program.clone())
}

/// As [`install_filters_ns`], with filters `first..first + n` of a probed chain.
///
/// Filter `first + k` is [`probe_filter_program`]`(body, first + k)`, so [`probe_chain`] can
/// ask each one for its own answer afterwards. A [`FilterBody::NrOnly`] body, which cannot be
/// probed, is installed as [`filter_program`] makes it.
///
/// Errors: those of [`install_filters_ns`].
pub fn install_probed_filters_ns(
    clock: &hookbench_measure::Clock,
    body: FilterBody,
    first: u32,
    n: u32,
    spec_allow: bool,
) -> Result<Vec<f64>, SeccompError> {
    install_programs_ns(clock, body, n, spec_allow, |k| {
        probe_filter_program(body, first + k).unwrap_or_else(|| filter_program(body))
    })
}

/// Installs `n` filters of `body`, the `k`-th being `program(k)`; the time of each install, ns.
fn install_programs_ns(
    clock: &hookbench_measure::Clock,
    body: FilterBody,
    n: u32,
    spec_allow: bool,
    program: impl Fn(u32) -> Vec<libc::sock_filter>,
) -> Result<Vec<f64>, SeccompError> {
    let mut times_ns = Vec::with_capacity(n as usize);
    if n == 0 {
        return Ok(times_ns);
    }
    let inherited = thread_seccomp_filters().unwrap_or(0);
    nix::sys::prctl::set_no_new_privs().map_err(|errno| SeccompError::NoNewPrivs { errno })?;
    let flags = if spec_allow { SECCOMP_FILTER_FLAG_SPEC_ALLOW } else { 0 };
    for index in 0..n {
        let program = program(index);
        let prog = libc::sock_fprog {
            len: program.len() as libc::c_ushort,
            filter: program.as_ptr().cast_mut(),
        };
        let t0 = clock.now();
        // SAFETY: `prog` points at `program`, which lives until the end of the iteration; the
        // kernel copies the instructions and does not keep the pointer.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as libc::c_ulong,
                flags,
                &prog as *const libc::sock_fprog,
            )
        };
        let t1 = clock.now();
        if rc != 0 {
            let errno = Errno::last();
            return Err(if errno == Errno::ENOMEM {
                SeccompError::InstructionBudget {
                    body,
                    len_insns: kernel_len_insns(body),
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
        times_ns.push((clock.elapsed_ns(t0, t1) - clock.overhead_ns()).max(0.0));
    }
    Ok(times_ns)
}

/// The length of the calling thread's chain, `None` when the kernel does not show it.
///
/// It is `Seccomp_filters:` of `/proc/thread-self/status` (Linux 5.9+).
pub fn thread_seccomp_filters() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/thread-self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Seccomp_filters:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Asks filter `index` of the calling thread's probed chain for its own answer.
///
/// One `getpeername(probe_arg(index), NULL, NULL)`: the filter installed as
/// [`probe_filter_program`]`(_, index)` fails it with [`probe_errno`]`(index)`; without that
/// filter the call reaches the kernel and fails with `EBADF`. Every filter of the chain is
/// evaluated on the call (getpeername's result is not constant for the foreign filters, so the
/// action cache cannot skip it), and with stacked filters the kernel keeps the first (newest)
/// filter's return among equal actions (`seccomp_run_filters`), so asking one filter at a time,
/// with the one value only it matches, is what tells the answers apart. `Err` with the errno
/// the call got instead (0: it succeeded). A raw syscall only: safe between fork and exit.
pub fn probe_filter(index: u32) -> Result<(), i32> {
    // SAFETY: getpeername(2) with null address pointers fails before touching them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_getpeername,
            libc::c_long::from(probe_arg(index)),
            0usize,
            0usize,
        )
    };
    let got = if rc == 0 { 0 } else { Errno::last_raw() };
    if got == probe_errno(index) as i32 {
        Ok(())
    } else {
        Err(got)
    }
}

/// A filter of a probed chain that did not give its own answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeMiss {
    /// The filter's place in the chain (0: the oldest).
    pub index: u32,
    /// The errno its probe should have got ([`probe_errno`]).
    pub expected: u32,
    /// The errno it got (0: the call succeeded; `EBADF`: no filter answered).
    pub got: i32,
}

/// What asking every probed filter of a chain for its own answer found ([`probe_chain`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProbe {
    /// Filters asked.
    pub probed: u32,
    /// Filters that answered with their own errno.
    pub answered: u32,
    /// The first filter that did not, when one did not.
    pub first_miss: Option<ProbeMiss>,
    /// Whether the action cache lets the timed syscall skip the chain.
    ///
    /// Read from `/proc/thread-self/seccomp_cache` (`CONFIG_SECCOMP_CACHE_DEBUG`) for the
    /// newest filter, whose bitmap is the one `seccomp_run_filters` checks; `None` when the
    /// kernel has no such file or it could not be read.
    pub cache_skips_trigger: Option<bool>,
}

/// Probes filters `indices` of the calling thread's chain, then reads the cache for `trigger_nr`.
///
/// See [`probe_filter`]; run it after the timed calls, never between them.
pub fn probe_chain(indices: impl IntoIterator<Item = u32>, trigger_nr: u32) -> ChainProbe {
    let mut probe = ChainProbe {
        probed: 0,
        answered: 0,
        first_miss: None,
        cache_skips_trigger: cache_allows("thread-self", trigger_nr),
    };
    for index in indices {
        probe.probed += 1;
        match probe_filter(index) {
            Ok(()) => probe.answered += 1,
            Err(got) => {
                probe.first_miss.get_or_insert(ProbeMiss {
                    index,
                    expected: probe_errno(index),
                    got,
                });
            }
        }
    }
    probe
}

/// Whether task `task`'s action cache allows native syscall `nr` without running the filters.
///
/// `task` is a pid or `thread-self`. `/proc/<task>/seccomp_cache` (`CONFIG_SECCOMP_CACHE_DEBUG`,
/// root) prints `<arch> <nr> ALLOW|FILTER` per syscall, the native arch first
/// (`proc_pid_seccomp_cache`); `None` when the file is absent or unreadable.
pub fn cache_allows(task: &str, nr: u32) -> Option<bool> {
    let text = std::fs::read_to_string(format!("/proc/{task}/seccomp_cache")).ok()?;
    parse_cache_line(&text, nr)
}

/// The verdict of the first `<arch> <nr> ALLOW|FILTER` line for `nr` in `text`.
fn parse_cache_line(text: &str, nr: u32) -> Option<bool> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace().skip(1);
        let n: u32 = words.next()?.parse().ok()?;
        (n == nr).then(|| words.next() == Some("ALLOW"))
    })
}

/// One step of a seccomp worker: add `add` filters of `body`, then time the trigger.
///
/// The trigger is timed under the whole chain, when the request times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompStep {
    /// The filters' shape.
    pub body: FilterBody,
    /// Filters to add at this step (0 = time the chain as it is: the native cost first).
    pub add: u32,
}

/// What a seccomp worker is asked: steps that grow its chain, each timed on `trigger`.
///
/// One step is an ordinary cell; the kernel selftest's method is five steps (native, one and two
/// cacheable filters, a third and fourth full filter) in one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeccompRequest {
    /// The steps, in order.
    pub steps: Vec<SeccompStep>,
    /// The syscall timed after each step.
    pub trigger: crate::trigger::Trigger,
    /// How to time it (and the clock the installs are timed with).
    pub timing: hookbench_measure::TimingRequest,
    /// Time only the installs, not the trigger (attach cells).
    #[serde(default)]
    pub installs_only: bool,
    /// Time the trigger after the last step only (a chain built in several shapes).
    #[serde(default)]
    pub time_last_only: bool,
    /// Install with `SECCOMP_FILTER_FLAG_SPEC_ALLOW` (the default), keeping the baseline's state.
    ///
    /// The task's speculation-mitigation state then stays the baseline's.
    #[serde(default = "yes")]
    pub spec_allow: bool,
    /// Install a probed chain and ask every filter for its answer after the timed calls.
    ///
    /// Filters are numbered over all steps, oldest first ([`install_probed_filters_ns`]);
    /// the report's `probe` says what [`probe_chain`] found.
    #[serde(default)]
    pub probe: bool,
}

fn yes() -> bool {
    true
}

/// What one step measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeccompStepReport {
    /// Filters in the chain after the step (the kernel's count when it shows one).
    pub filters: u32,
    /// Time of each install of the step, ns.
    pub install_ns: Vec<f64>,
    /// The trigger's samples under the chain, when the request timed it.
    pub samples: Option<hookbench_measure::SampleSet>,
}

/// What a seccomp worker reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeccompReport {
    /// One entry per step of the request.
    pub steps: Vec<SeccompStepReport>,
    /// What probing the chain found, when the request asked for it.
    #[serde(default)]
    pub probe: Option<ChainProbe>,
}

crate::worker::worker_kind! {
    /// The seccomp worker (`hookbench worker seccomp`): grows its own chain and times under it.
    pub struct SeccompWorker("seccomp", SeccompRequest => SeccompReport, Duration::from_secs(120)) = run_seccomp;
}

/// The worker's body: checks the request, then per step installs and (optionally) times.
fn run_seccomp(req: &SeccompRequest) -> Result<SeccompReport, SeccompError> {
    let total: u64 = req.steps.iter().map(|s| u64::from(s.add)).sum();
    if req.steps.is_empty() || total > u64::from(MAX_REQUEST_FILTERS) {
        return Err(SeccompError::InvalidRequest {
            field: "steps",
            value: total,
            why: "give 1 or more steps adding at most 100000 filters in all",
        });
    }
    let t = &req.timing;
    t.pin()
        .map_err(|source| crate::trigger::TriggerError::Pin { cpu: t.cpu, source })?;
    let clock = t.clock();
    let mut steps = Vec::with_capacity(req.steps.len());
    let mut installed = 0u32;
    let before = thread_seccomp_filters();
    let mut probed = Vec::new();
    for (i, step) in req.steps.iter().enumerate() {
        let install_ns = if req.probe {
            if step.body != FilterBody::NrOnly {
                probed.extend(installed..installed + step.add);
            }
            install_probed_filters_ns(&clock, step.body, installed, step.add, req.spec_allow)?
        } else {
            install_filters_ns(&clock, step.body, step.add, req.spec_allow)?
        };
        installed += step.add;
        let filters = match (before, thread_seccomp_filters()) {
            (Some(b), Some(after)) => {
                if after != b + installed {
                    return Err(SeccompError::FilterCountMismatch {
                        installed,
                        reported: after,
                        expected: b + installed,
                    });
                }
                after
            }
            _ => installed,
        };
        let last = i + 1 == req.steps.len();
        let samples = if req.installs_only || (req.time_last_only && !last) {
            None
        } else {
            Some(crate::trigger::time_trigger(req.trigger, t)?.0)
        };
        steps.push(SeccompStepReport {
            filters,
            install_ns,
            samples,
        });
    }
    // After every timed call: the probe's calls are not the measured syscall.
    let probe = req.probe.then(|| probe_chain(probed, req.trigger.syscall_nr()));
    Ok(SeccompReport { steps, probe })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_forked_child_exits_0, spawn_test};
    use crate::trigger::Trigger;
    use crate::worker::WorkerError;
    use hookbench_measure::{Clock, TimingRequest};

    /// Serializes the tests that spawn workers, so measurements do not compete for CPUs.
    static WORKER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The RET constants reached on every path of a classic-BPF program with only LD/JEQ/RET.
    ///
    /// Checks that jumps stay inside the program.
    fn returns_on_all_paths(prog: &[libc::sock_filter]) -> Vec<u32> {
        let mut out = Vec::new();
        let mut stack = vec![0usize];
        while let Some(pc) = stack.pop() {
            let insn = prog.get(pc).expect("pc inside the program");
            let code = u32::from(insn.code);
            match code & 0x07 {
                c if c == libc::BPF_LD || c == libc::BPF_MISC => stack.push(pc + 1),
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
        for body in [FilterBody::NrOnly, FilterBody::ArgLoad] {
            let prog = filter_program(body);
            assert_eq!(prog.len() as u32, FILTER_INSNS, "{body}");
            let rets = returns_on_all_paths(&prog);
            assert_eq!(rets.len(), 3, "{body}: arch mismatch, match, no match");
            assert!(rets.iter().all(|&k| k == libc::SECCOMP_RET_ALLOW), "{body}: {rets:x?}");
            let last = prog.last().expect("non-empty");
            assert_eq!(u32::from(last.code), libc::BPF_RET | libc::BPF_K);
            // The arch check comes first.
            assert_eq!(prog[0].k, 4);
            assert_eq!(prog[1].k, AUDIT_ARCH_CURRENT);
        }
        if cfg!(target_arch = "x86_64") {
            assert_eq!(AUDIT_ARCH_CURRENT, 0xc000_003e, "AUDIT_ARCH_X86_64");
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(AUDIT_ARCH_CURRENT, 0xc000_00b7, "AUDIT_ARCH_AARCH64");
        }
        assert_eq!(filter_program(FilterBody::NrOnly)[2].k, 0);
        assert_eq!(
            filter_program(FilterBody::ArgLoad)[2].k,
            if cfg!(target_endian = "little") { 16 } else { 20 }
        );
        for body in [FilterBody::NrOnly, FilterBody::ArgLoad] {
            assert_eq!(kernel_len_insns(body), 13, "{body}");
            assert_eq!(max_filters(body), 1927, "{body}");
        }
    }

    #[test]
    fn foreign_filters_deny_only_their_syscall_and_check_the_number_where_the_shape_says() {
        let nr_first = filter_program(FilterBody::ForeignNrFirst);
        let arg_first = filter_program(FilterBody::ForeignArgFirst);
        assert_eq!((nr_first.len(), arg_first.len()), (8, 10));
        for prog in [&nr_first, &arg_first] {
            let mut rets = returns_on_all_paths(prog);
            rets.sort_unstable();
            rets.dedup();
            assert_eq!(rets, vec![SECCOMP_RET_EPERM, libc::SECCOMP_RET_ALLOW]);
            assert!(prog.iter().any(|i| i.k == FOREIGN_NR), "compares nr with FOREIGN_NR");
        }
        // Number first: the first load after the arch check is nr; argument first: args[0].
        assert_eq!(nr_first[2].k, NR_OFFSET);
        assert_eq!(arg_first[2].k, ARG0_LO_OFFSET);
        assert_eq!(kernel_len_insns(FilterBody::ForeignNrFirst), 15);
        assert_eq!(kernel_len_insns(FilterBody::ForeignArgFirst), 17);
        assert!(max_filters(FilterBody::ForeignArgFirst) < max_filters(FilterBody::ForeignNrFirst));
    }

    #[test]
    fn probed_programs_keep_the_shape_and_answer_only_their_own_argument() {
        for body in [
            FilterBody::ArgLoad,
            FilterBody::ForeignNrFirst,
            FilterBody::ForeignArgFirst,
        ] {
            let plain = filter_program(body);
            for index in [0, 1, 1926] {
                let probed = probe_filter_program(body, index).expect("probe-able");
                assert_eq!(probed.len(), plain.len(), "{body}");
                // Same opcodes and jumps: the same path on every call the filter does not match.
                for (a, b) in plain.iter().zip(&probed) {
                    assert_eq!((a.code, a.jt, a.jf), (b.code, b.jt, b.jf), "{body}");
                }
                let mut rets = returns_on_all_paths(&probed);
                rets.sort_unstable();
                rets.dedup();
                assert_eq!(
                    rets,
                    vec![libc::SECCOMP_RET_ERRNO | probe_errno(index), libc::SECCOMP_RET_ALLOW],
                    "{body}"
                );
                assert!(probed.iter().any(|i| i.k == probe_arg(index)), "{body}");
            }
            // The kernel charges a probed filter what it charges the plain one.
            assert!((probe_arg(0) as i32) < 0 && (probe_arg(1926) as i32) < 0);
        }
        assert_eq!(probe_filter_program(FilterBody::NrOnly, 0), None);
        // Distinct answers and arguments for every filter a chain can hold, within MAX_ERRNO.
        let most = FilterBody::ALL.into_iter().map(max_filters).max().expect("bodies");
        assert!(most <= PROBE_SLOTS, "{most}");
        assert_eq!(probe_errno(PROBE_SLOTS - 1), 4095);
        assert_ne!(probe_arg(0), probe_arg(1));
        assert_ne!(probe_arg(0) & 3, 0, "never a 4-byte aligned address");
    }

    #[test]
    fn the_cache_line_of_the_timed_syscall_is_read_from_proc() {
        let text = "x86_64 50 ALLOW\nx86_64 51 FILTER\nx86_64 52 ALLOW\ni386 51 ALLOW\n";
        assert_eq!(parse_cache_line(text, 51), Some(false));
        assert_eq!(parse_cache_line(text, 52), Some(true));
        assert_eq!(parse_cache_line(text, 999), None);
        assert_eq!(parse_cache_line("", 51), None);
    }

    #[test]
    fn a_probed_chain_with_a_filter_left_out_is_found_out() {
        for body in [
            FilterBody::ArgLoad,
            FilterBody::ForeignNrFirst,
            FilterBody::ForeignArgFirst,
        ] {
            // The child installs filters and makes raw syscalls.
            assert_forked_child_exits_0(
                || {
                    (|| {
                        let clock = Clock::detect();
                        // Filters 0, 1 and 3: filter 2 is left out.
                        install_probed_filters_ns(&clock, body, 0, 2, true).ok()?;
                        install_probed_filters_ns(&clock, body, 3, 1, true).ok()?;
                        let answers: Vec<Result<(), i32>> = (0..4).map(probe_filter).collect();
                        let whole = answers[0].is_ok() && answers[1].is_ok() && answers[3].is_ok();
                        let found = answers[2] == Err(libc::EBADF);
                        // A wrong argument (no filter's) is not answered either.
                        let wrong = probe_filter(4) == Err(libc::EBADF);
                        Some(i32::from(!whole) + 2 * i32::from(!found) + 4 * i32::from(!wrong))
                    })()
                    .unwrap_or(8)
                },
                &format!(
                    "{body}: 1 = an installed filter did not answer, 2 = the missing one seemed to, \
                     4 = a wrong argument was answered, 8 = install failed"
                ),
            );
        }
    }

    #[test]
    fn the_worker_probes_every_filter_of_a_foreign_chain_after_timing() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        for (foreign, on_hook) in [
            (FilterBody::ForeignArgFirst, 2),
            (FilterBody::ForeignNrFirst, 2),
            (FilterBody::ForeignNrFirst, 0),
        ] {
            let req = SeccompRequest {
                steps: vec![
                    SeccompStep {
                        body: FilterBody::ArgLoad,
                        add: on_hook,
                    },
                    SeccompStep { body: foreign, add: 3 },
                ],
                trigger: Trigger::Getsockname,
                time_last_only: true,
                probe: true,
                ..one_step(FilterBody::NrOnly, 0, 50)
            };
            let report = spawn_test::<SeccompWorker>(&req).expect("worker ran");
            let probe = report.probe.expect("probed");
            let filters = on_hook + 3;
            assert_eq!(
                (probe.probed, probe.answered),
                (filters, filters),
                "{foreign}: {probe:?}"
            );
            assert_eq!(probe.first_miss, None);
            // Where the kernel shows its cache, it agrees with the shape.
            if let Some(skips) = probe.cache_skips_trigger {
                assert_eq!(
                    skips,
                    on_hook == 0 && foreign == FilterBody::ForeignNrFirst,
                    "{foreign}"
                );
            }
            assert!(report.steps[1].samples.is_some());
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

    fn timing(samples: usize) -> TimingRequest {
        TimingRequest {
            warmup_ns: 2_000_000,
            ..TimingRequest::new(Clock::detect().info(), None, samples, 5_000_000)
        }
    }

    fn one_step(body: FilterBody, add: u32, samples: usize) -> SeccompRequest {
        SeccompRequest {
            steps: vec![SeccompStep { body, add }],
            trigger: Trigger::Getppid,
            timing: timing(samples.max(1)),
            installs_only: samples == 0,
            time_last_only: false,
            spec_allow: true,
            probe: false,
        }
    }

    #[test]
    fn worker_beyond_instruction_budget_is_refused_with_the_budget() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let max = max_filters(FilterBody::ArgLoad);
        let err = spawn_test::<SeccompWorker>(&one_step(FilterBody::ArgLoad, max + 1, 0)).expect_err("budget");
        let WorkerError::Refused(err) = err else {
            panic!("{err}")
        };
        eprintln!("seccomp budget: {err}");
        assert!(err.contains("seccomp instruction budget"), "{err}");
        assert!(err.contains(&format!("{} arg-load filters", max + 1)), "{err}");
        assert!(err.contains(&format!("at most {max} fit")), "{err}");
        // The kernel agrees with max_filters: it accepted exactly `max` on a fresh chain.
        assert!(
            err.contains(&format!("after {max} were installed (0 inherited)")),
            "{err}"
        );
    }

    #[test]
    fn kernel_accepts_foreign_filters_within_their_own_budget() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let body = FilterBody::ForeignArgFirst;
        let max = max_filters(body);
        let err = spawn_test::<SeccompWorker>(&one_step(body, max + 1, 0)).expect_err("budget");
        let WorkerError::Refused(err) = err else {
            panic!("{err}")
        };
        // The kernel counts this body as kernel_len_insns says: exactly `max` fit on a fresh chain.
        assert!(
            err.contains(&format!("after {max} were installed (0 inherited)")),
            "{err}"
        );
    }

    #[test]
    fn foreign_filters_act_on_their_syscall_only() {
        for body in [FilterBody::ForeignNrFirst, FilterBody::ForeignArgFirst] {
            // The child only installs a filter and makes raw syscalls.
            assert_forked_child_exits_0(
                || {
                    (|| {
                        let clock = Clock::detect();
                        install_filters_ns(&clock, body, 1, true).ok()?;
                        let call = |fd: libc::c_long| {
                            // SAFETY: getpeername with null address pointers fails before use.
                            let rc = unsafe { libc::syscall(libc::SYS_getpeername, fd, 0usize, 0usize) };
                            if rc == 0 {
                                0
                            } else {
                                Errno::last() as i32
                            }
                        };
                        let denied = call(libc::c_long::from(NEVER_ARG as i32)) == libc::EPERM;
                        let allowed = call(-1) == libc::EBADF;
                        Some(if denied && allowed { 0 } else { 1 + i32::from(denied) })
                    })()
                    .unwrap_or(3)
                },
                &format!("{body}: 1 = not denied, 2 = -1 not EBADF, 3 = install failed"),
            );
        }
    }

    #[test]
    fn worker_rejects_an_empty_request() {
        let req = SeccompRequest {
            steps: Vec::new(),
            ..one_step(FilterBody::NrOnly, 0, 0)
        };
        let err = run_seccomp(&req).expect_err("no steps");
        assert!(err.to_string().contains("steps = 0"), "{err}");
    }

    #[test]
    fn steps_grow_the_chain_and_keep_the_mitigation_state() {
        let _guard = WORKER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let req = SeccompRequest {
            steps: vec![
                SeccompStep {
                    body: FilterBody::NrOnly,
                    add: 0,
                },
                SeccompStep {
                    body: FilterBody::NrOnly,
                    add: 2,
                },
                SeccompStep {
                    body: FilterBody::ArgLoad,
                    add: 3,
                },
            ],
            ..one_step(FilterBody::NrOnly, 0, 100)
        };
        let report = spawn_test::<SeccompWorker>(&req).expect("worker ran");
        let filters: Vec<u32> = report.steps.iter().map(|s| s.filters).collect();
        assert_eq!(filters, [0, 2, 5]);
        assert_eq!(report.steps[2].install_ns.len(), 3);
        let sets: Vec<_> = report.steps.iter().map(|s| s.samples.clone().expect("timed")).collect();
        assert!(sets.iter().all(|s| s.values_ns.len() >= 100));
        // SPEC_ALLOW: installing filters leaves the store-bypass state as it was natively.
        assert_eq!(sets[0].speculation, sets[2].speculation);
        // Five full filters cost more than none (medians: a loaded machine's preempted samples
        // can swing a mean either way).
        let median = |s: &hookbench_measure::SampleSet| {
            hookbench_measure::estimate::median_with_se(&s.values_ns)
                .expect("median")
                .value
        };
        assert!(
            median(&sets[2]) > median(&sets[0]),
            "{} vs {}",
            median(&sets[2]),
            median(&sets[0])
        );
    }
}
