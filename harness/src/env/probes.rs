//! Probes of the kernel's security mechanisms, perf counters, kernel config and settings.

use hookbench_sys::errno::{errno_text, io_text, last_errno};

use super::cpu::status_field;
use super::doctor::probe_short;
use super::Probe;

/// Kernel options whose values hookbench records: those the kernel mechanisms depend on.
///
/// See [`Environment::kernel_config_options`](super::Environment::kernel_config_options).
pub const KERNEL_CONFIG_OPTIONS: &[&str] = &[
    "CONFIG_BPF_LSM",
    "CONFIG_SECURITY_LANDLOCK",
    "CONFIG_CGROUP_BPF",
    "CONFIG_SECCOMP_FILTER",
    "CONFIG_BPF_JIT",
    "CONFIG_DEBUG_INFO_BTF",
];

/// A one-line setting file's value; absent with the errno (and `enoent_meaning` on ENOENT).
pub(super) fn read_setting(path: &str, enoent_meaning: &str) -> Probe {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let v = t.trim();
            if v.is_empty() {
                Probe::absent(format!("{path} is empty"))
            } else {
                Probe::yes(v)
            }
        }
        Err(e) => {
            let meaning = match e.raw_os_error() {
                Some(libc::ENOENT) => format!(": {enoent_meaning}"),
                Some(libc::EACCES) | Some(libc::EPERM) => ": not readable by this user".to_owned(),
                _ => String::new(),
            };
            Probe::absent(format!("cannot read {path}: {}{meaning}", io_text(&e)))
        }
    }
}

/// seccomp return actions (include/uapi/linux/seccomp.h), named as in `actions_avail`.
///
/// `/proc/sys/kernel/seccomp/actions_avail`.
const SECCOMP_ACTIONS: &[(u32, &str)] = &[
    (0x8000_0000, "kill_process"),
    (0x0000_0000, "kill_thread"),
    (0x0003_0000, "trap"),
    (0x0005_0000, "errno"),
    (0x7fc0_0000, "user_notif"),
    (0x7ff0_0000, "trace"),
    (0x7ffc_0000, "log"),
    (0x7fff_0000, "allow"),
];

/// Whether seccomp filters work here: this process's mode and the actions the kernel knows.
pub(super) fn probe_seccomp(status: Option<&str>) -> Probe {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    if mode < 0 {
        let e = last_errno();
        return Probe::absent(format!(
            "prctl(PR_GET_SECCOMP) failed: {}{}",
            errno_text(e),
            if e == libc::EINVAL {
                ": kernel built without CONFIG_SECCOMP"
            } else {
                ""
            }
        ));
    }
    let mut avail = Vec::new();
    let mut refused = Vec::new();
    for &(action, name) in SECCOMP_ACTIONS {
        // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from the pointer, which is valid.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_GET_ACTION_AVAIL,
                0u32,
                &action as *const u32,
            )
        };
        if r == 0 {
            avail.push(name);
        } else {
            let e = last_errno();
            if e == libc::ENOSYS {
                return Probe::absent(format!(
                    "seccomp(SECCOMP_GET_ACTION_AVAIL) failed: {}: no seccomp syscall (kernel older than 3.17)",
                    errno_text(e)
                ));
            }
            // EOPNOTSUPP: this action is unknown to the kernel; EINVAL: no GET_ACTION_AVAIL (< 4.14).
            refused.push(format!("{name}: {}", errno_text(e)));
        }
    }
    let mode_text = match mode {
        0 => "mode 0 (this process is not filtered)".to_owned(),
        1 => "mode 1 (strict)".to_owned(),
        2 => {
            let n = status.and_then(|s| status_field(s, "Seccomp_filters")).unwrap_or("?");
            format!("mode 2 (this process already runs under {n} filter(s): its chain is not empty)")
        }
        m => format!("mode {m}"),
    };
    let file = match std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail") {
        Ok(t) => t.trim().to_owned(),
        Err(e) => format!("unreadable ({})", io_text(&e)),
    };
    if !avail.contains(&"allow") {
        return Probe::absent_with_value(
            format!("{mode_text}; actions_avail {file}"),
            format!(
                "seccomp filters unusable: SECCOMP_GET_ACTION_AVAIL refused {}",
                refused.join(", ")
            ),
        );
    }
    let mut v = format!("{mode_text}; actions {}; actions_avail {file}", avail.join(" "));
    if !refused.is_empty() {
        v.push_str(&format!("; refused {}", refused.join(", ")));
    }
    Probe::yes(v)
}

/// `LANDLOCK_CREATE_RULESET_VERSION` (include/uapi/linux/landlock.h).
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1 << 0;

/// The Landlock ABI version, or why Landlock is absent.
pub(super) fn probe_landlock() -> Probe {
    // SAFETY: with a NULL attr, size 0 and the VERSION flag the kernel reads no memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if r >= 0 {
        return Probe::yes(format!("ABI {r}"));
    }
    let e = last_errno();
    let meaning = match e {
        libc::ENOSYS => ": kernel built without CONFIG_SECURITY_LANDLOCK (no landlock_create_ruleset syscall)",
        libc::EOPNOTSUPP => ": Landlock is built in but not enabled at boot (add landlock to lsm= / CONFIG_LSM)",
        libc::EINVAL => ": kernel does not know LANDLOCK_CREATE_RULESET_VERSION",
        _ => "",
    };
    Probe::absent(format!(
        "landlock_create_ruleset(NULL, 0, VERSION) failed: {}{meaning}",
        errno_text(e)
    ))
}

/// Whether a hardware cycle counter opens for this thread, or why not.
pub(super) fn probe_perf(paranoid: &Probe) -> Probe {
    use perf_event::events::Hardware;
    match perf_event::Builder::new(Hardware::CPU_CYCLES).build() {
        Ok(counter) => {
            drop(counter);
            Probe::yes("hardware cpu-cycles counter for this thread")
        }
        Err(e) => {
            let meaning = match e.raw_os_error() {
                Some(libc::ENOENT) => ": no such hardware event (no PMU exposed, e.g. a VM without vPMU)",
                Some(libc::EOPNOTSUPP) => ": the PMU does not support this event configuration",
                Some(libc::EACCES) | Some(libc::EPERM) => {
                    ": not permitted by perf_event_paranoid / missing CAP_PERFMON"
                }
                Some(libc::ENODEV) => ": no PMU for this CPU",
                Some(libc::ENOSYS) => ": kernel built without CONFIG_PERF_EVENTS",
                _ => "",
            };
            Probe::absent(format!(
                "perf_event_open(HARDWARE, CPU_CYCLES) failed: {}{meaning}; perf_event_paranoid {}",
                io_text(&e),
                probe_short(paranoid)
            ))
        }
    }
}

/// Active LSMs, in order (hookbench-sys's [`lsm_list_in`](hookbench_sys::lsm::lsm_list_in)).
pub(super) fn probe_lsm_list(mountinfo: &str) -> Probe {
    match hookbench_sys::lsm::lsm_list_in(mountinfo) {
        Ok(list) => Probe::yes(list),
        Err(reason) => Probe::absent(reason),
    }
}

/// Where the kernel configuration was read from and the values of [`KERNEL_CONFIG_OPTIONS`].
pub(super) fn probe_kernel_config(release: &str) -> (Probe, Vec<(String, String)>) {
    match hookbench_sys::kconfig::read_kernel_config(release) {
        Ok(config) => {
            let values = config.values(KERNEL_CONFIG_OPTIONS);
            (Probe::yes(config.source), values)
        }
        Err(reason) => (Probe::absent(reason), Vec::new()),
    }
}
