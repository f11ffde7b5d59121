//! The CPU, memory and credentials, CPU vulnerability mitigations, virtualization and emulation.

use hookbench_sys::errno::{errno_text, io_text, last_errno};

use super::Probe;

/// Capability bit numbers (include/uapi/linux/capability.h).
pub(super) const CAP_SYS_ADMIN: u32 = 21;
pub(super) const CAP_BPF: u32 = 39;

/// First `key : value` line of a `/proc/cpuinfo`-style text.
pub(super) fn cpuinfo_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// `Key:\tvalue` line of `/proc/self/status`.
pub(super) fn status_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim())
    })
}

/// Online CPUs (`sysconf`), 1 with a note when unknown.
pub(crate) fn online_cpus(notes: &mut Vec<String>) -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n >= 1 {
        return usize::try_from(n).unwrap_or(1);
    }
    notes.push(format!(
        "sysconf(_SC_NPROCESSORS_ONLN) failed: {}; nr_cpus set to 1",
        errno_text(last_errno())
    ));
    1
}

/// CPUs this process may run on (`sched_getaffinity`), `fallback` with a note when unknown.
pub(super) fn allowed_cpus(notes: &mut Vec<String>, fallback: usize) -> usize {
    // SAFETY: cpu_set_t is plain data; the size passed is its size.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r == 0 {
        // SAFETY: `set` was filled by the kernel.
        let n = unsafe { libc::CPU_COUNT(&set) };
        if let Ok(n) = usize::try_from(n) {
            if n >= 1 {
                return n;
            }
        }
    }
    notes.push(format!(
        "sched_getaffinity failed: {} (EINVAL: more than {} CPUs); allowed_cpus set to nr_cpus",
        errno_text(last_errno()),
        libc::CPU_SETSIZE
    ));
    fallback
}

/// Physical memory in bytes (`sysconf`), 0 with a note when unknown.
pub(super) fn physical_memory_bytes(notes: &mut Vec<String>) -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    match (u64::try_from(pages), u64::try_from(page)) {
        (Ok(p), Ok(s)) if p > 0 && s > 0 => p.saturating_mul(s),
        _ => {
            notes.push(format!(
                "sysconf(_SC_PHYS_PAGES/_SC_PAGESIZE) failed: {}; memory_bytes unknown (0)",
                errno_text(last_errno())
            ));
            0
        }
    }
}

/// `(name, status)` of every CPU vulnerability file, sorted; empty with a note when unreadable.
pub(super) fn read_mitigations(notes: &mut Vec<String>) -> Vec<(String, String)> {
    let dir = "/sys/devices/system/cpu/vulnerabilities";
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            notes.push(format!("cannot list {dir}: {}", io_text(&e)));
            return Vec::new();
        }
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let status = match std::fs::read_to_string(e.path()) {
                Ok(t) => t.trim().to_owned(),
                Err(err) => format!("unreadable: {}", io_text(&err)),
            };
            (name, status)
        })
        .collect();
    out.sort();
    out
}

/// What says the CPU is emulated (timings not comparable with bare metal), or `None`. Pure.
///
/// From the kernel command line (the hookbench qemu rig passes `hookbench_rig.emulated=1
/// hookbench_rig.accel=tcg`) and the CPU model (qemu's TCG models are named "QEMU TCG CPU ...").
pub fn detect_emulation(cmdline: &str, cpu_model: Option<&str>) -> Option<String> {
    let param = |name: &str| {
        cmdline
            .split_whitespace()
            .filter_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .next_back()
    };
    if param("hookbench_rig.emulated") == Some("1") {
        let accel = param("hookbench_rig.accel").unwrap_or("tcg");
        return Some(format!("qemu {accel} (hookbench rig guest)"));
    }
    cpu_model
        .filter(|m| m.contains("QEMU TCG"))
        .map(|m| format!("qemu tcg (CPU model '{m}')"))
}

/// The host line of a User-Mode Linux kernel's `/proc/cpuinfo`; `None` for other kernels. Pure.
///
/// arch/um's `show_cpuinfo` writes `vendor_id : User Mode Linux`, `model name : UML` and
/// `host : <the host's uname>`; the host line is returned (`"unknown host"` when missing).
pub fn detect_uml(cpuinfo: &str) -> Option<String> {
    (cpuinfo_field(cpuinfo, "vendor_id") == Some("User Mode Linux"))
        .then(|| cpuinfo_field(cpuinfo, "host").unwrap_or("unknown host").to_owned())
}

/// Whether this kernel is User-Mode Linux ([`detect_uml`] on `/proc/cpuinfo`).
pub fn running_on_uml() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| detect_uml(&t))
        .is_some()
}

/// Whether a hypervisor runs this machine: the CPU flag, with what DMI says of the machine.
pub(super) fn probe_virtualization(flags: Option<&[&str]>) -> Probe {
    let dmi = |f: &str| -> Result<String, String> {
        let path = format!("/sys/class/dmi/id/{f}");
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(format!("{f} {}", t.trim())),
            Err(e) => Err(format!(
                "{}{}",
                io_text(&e),
                if e.raw_os_error() == Some(libc::ENOENT) {
                    ": no DMI tables, e.g. a microVM"
                } else {
                    ""
                }
            )),
        }
    };
    let dmi_text = match (dmi("sys_vendor"), dmi("product_name")) {
        (Ok(v), Ok(p)) => format!("{v}; {p}"),
        (Ok(v), Err(e)) => format!("{v}; product_name unreadable ({e})"),
        (Err(e), Ok(p)) => format!("sys_vendor unreadable ({e}); {p}"),
        (Err(a), Err(b)) if a == b => format!("/sys/class/dmi/id unreadable ({a})"),
        (Err(a), Err(b)) => format!("sys_vendor unreadable ({a}); product_name unreadable ({b})"),
    };
    match flags {
        Some(f) if f.contains(&"hypervisor") => Probe::yes(format!("hypervisor CPU flag; {dmi_text}")),
        Some(_) => Probe::absent_with_value(
            dmi_text,
            "no hypervisor flag in /proc/cpuinfo (bare metal, or a hypervisor hiding the CPUID bit)",
        ),
        None => Probe::absent_with_value(dmi_text, "no x86 flags line in /proc/cpuinfo: hypervisor flag unknown"),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn uml_is_told_by_its_cpuinfo_not_by_a_real_cpu() {
        let uml = "processor\t: 0\nvendor_id\t: User Mode Linux\nmodel name\t: UML\nmode\t\t: skas\nhost\t\t: Linux box 6.1.0 #1 SMP x86_64\n";
        assert_eq!(detect_uml(uml).as_deref(), Some("Linux box 6.1.0 #1 SMP x86_64"));
        let real = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n";
        assert_eq!(detect_uml(real), None);
        assert_eq!(
            detect_uml("vendor_id\t: User Mode Linux\n").as_deref(),
            Some("unknown host")
        );
    }

    use super::*;

    #[test]
    fn emulation_is_told_by_the_rig_or_the_cpu_model() {
        assert_eq!(
            detect_emulation("console=ttyS0 hookbench_rig.accel=tcg hookbench_rig.emulated=1", None).as_deref(),
            Some("qemu tcg (hookbench rig guest)")
        );
        assert_eq!(
            detect_emulation(
                "hookbench_rig.accel=kvm hookbench_rig.emulated=0",
                Some("Intel(R) Xeon(R)")
            ),
            None
        );
        assert!(detect_emulation("", Some("QEMU TCG CPU version 2.5+")).is_some_and(|e| e.contains("tcg")));
        assert_eq!(detect_emulation("quiet", Some("AMD EPYC 7763")), None);
    }
}
