//! Environment probes: what the machine and kernel offer hookbench's backends, and why not.
//!
//! [`Environment::probe`] records the kernel, CPU, cgroup layout and the kernel mechanisms the
//! `kernel` backend needs (seccomp, Landlock, BPF, BPF trampolines, cgroup v2), plus the
//! measurement conditions (perf counters, cpufreq governor, TSC flags, CPU vulnerability
//! mitigations). It never fails: every field records its own failure, and every capability that is
//! absent carries the reason (the errno and what it means), never a silent zero.
//!
//! Probing is side-effect free: every file descriptor is closed, the BPF programs it loads to test
//! availability are never attached and are freed when their fd is closed.
//!
//! The files: this one (the [`Environment`] record and its probe), `probes` (seccomp, Landlock,
//! LSMs, perf, kernel config, one-line settings), `bpf` (raw `bpf(2)` loads and the BTF
//! parser), `cpu` (CPUs, memory, credentials, mitigations, virtualization) and `doctor` (what
//! `hookbench doctor` prints, and which mechanism needs what). System facts shared with the
//! other crates (mountinfo, the LSM list, uname, errno text, kconfig) come from `hookbench_sys`.
//!
//! The pure parsers ([`parse_btf_func_id`], [`detect_emulation`], and hookbench-sys's) are
//! public so that they can be tested on hand-written input.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Instant;

use hookbench_sys::errno::{errno_text, io_text};
use hookbench_sys::lsm::lsm_list_has_bpf;
use hookbench_sys::mountinfo::{cgroup_layout, find_cgroup2_mount, parse_mountinfo};

mod bpf;
pub(crate) mod cpu;
mod doctor;
mod probes;
#[cfg(test)]
mod tests;

pub use bpf::{parse_btf_func_id, BtfError, TRAMPOLINE_PROBE_FUNC};
pub use cpu::{detect_emulation, detect_uml, running_on_uml};
pub use doctor::KernelFamily;
pub use hookbench_sys::mountinfo::CgroupLayout;
pub use probes::KERNEL_CONFIG_OPTIONS;

use bpf::{probe_bpf, probe_trampolines};
use cpu::{
    allowed_cpus, cpuinfo_field, online_cpus, physical_memory_bytes, probe_virtualization, read_mitigations,
    status_field, CAP_BPF, CAP_SYS_ADMIN,
};
use probes::{probe_kernel_config, probe_landlock, probe_lsm_list, probe_perf, probe_seccomp, read_setting};

// ---------------------------------------------------------------------------------------------
// Probe
// ---------------------------------------------------------------------------------------------

/// The outcome of probing one capability: available, or absent with the reason.
///
/// An available capability may carry a value (e.g. an ABI version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Whether the capability is present and usable by this process.
    pub available: bool,
    /// What was found (a version, a setting, the source file), if anything.
    pub value: Option<String>,
    /// Why the capability is absent (errno and meaning); `None` when available.
    pub reason: Option<String>,
}

impl Probe {
    /// An available capability with the value found (e.g. `"ABI 6"`).
    pub fn yes(value: impl Into<String>) -> Probe {
        Probe {
            available: true,
            value: Some(value.into()),
            reason: None,
        }
    }

    /// An available capability with nothing more to say.
    pub fn yes_bare() -> Probe {
        Probe {
            available: true,
            value: None,
            reason: None,
        }
    }

    /// A probe result read from a file written before the probe existed.
    pub fn unknown() -> Probe {
        Probe::absent("not probed by the hookbench that wrote this file")
    }

    /// An absent capability and the reason (errno and what it means).
    pub fn absent(reason: impl Into<String>) -> Probe {
        Probe {
            available: false,
            value: None,
            reason: Some(reason.into()),
        }
    }

    /// An absent capability that still has something to report (e.g. a setting read).
    pub fn absent_with_value(value: impl Into<String>, reason: impl Into<String>) -> Probe {
        Probe {
            available: false,
            value: Some(value.into()),
            reason: Some(reason.into()),
        }
    }

    /// The value when available, else `None`.
    pub fn value_if_available(&self) -> Option<&str> {
        if self.available {
            self.value.as_deref()
        } else {
            None
        }
    }
}

impl fmt::Display for Probe {
    /// `yes`, `yes (ABI 6)` or `absent: <reason>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.available {
            match &self.value {
                Some(v) => write!(f, "yes ({v})"),
                None => write!(f, "yes"),
            }
        } else {
            let reason = self.reason.as_deref().unwrap_or("no reason recorded");
            write!(f, "absent: {reason}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------

/// [`CgroupLayout`] in results as its lowercase name (`"unified"`, `"hybrid"`, ...).
mod layout_serde {
    use super::CgroupLayout;
    use serde::{Deserialize, Deserializer, Serializer};

    /// `"unified"`, `"hybrid"`, `"legacy"` or `"none"`.
    pub fn serialize<S: Serializer>(layout: &CgroupLayout, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(layout)
    }

    /// One of the names [`serialize`] writes; any other is an error naming the four.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CgroupLayout, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// TSC flags from the `flags` line of `/proc/cpuinfo` (x86 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TscFlags {
    /// `constant_tsc`: the TSC ticks at a constant rate regardless of frequency changes.
    pub constant_tsc: bool,
    /// `nonstop_tsc`: the TSC keeps ticking in deep C-states.
    pub nonstop_tsc: bool,
}

/// Everything hookbench records about the machine and kernel a run happened on.
///
/// Scalar fields that cannot really fail (CPU counts, memory) are plain values; if one did fail,
/// the failure is listed in [`Environment::notes`]. Every `Option` field that is `None` also has
/// a note saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Kernel release, `uname -r` (`utsname.release`).
    pub kernel_release: String,
    /// Kernel build version string, `uname -v` (`utsname.version`).
    pub kernel_version: String,
    /// Machine architecture, `uname -m` (`utsname.machine`).
    pub machine: String,
    /// Host name (gethostname).
    pub hostname: Option<String>,
    /// CPU model: `model name` of the first processor in `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// Online CPUs, `sysconf(_SC_NPROCESSORS_ONLN)`.
    pub nr_cpus: usize,
    /// CPUs this process may run on, the count of `sched_getaffinity(0)`.
    pub allowed_cpus: usize,
    /// Physical memory in bytes, `sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE)`.
    pub memory_bytes: u64,
    /// Effective user id (geteuid).
    pub euid: u32,
    /// Effective capability mask, `CapEff` of `/proc/self/status` (hex as printed there).
    pub cap_effective_hex: Option<String>,
    /// Whether the cgroup and BPF mechanisms of the `kernel` backend can run here.
    ///
    /// euid is 0 AND CAP_SYS_ADMIN (21) or CAP_BPF (39) is in the effective set.
    pub privileged: bool,
    /// Mount point of the cgroup v2 hierarchy (fstype `cgroup2` in `/proc/self/mountinfo`).
    pub cgroup2_mount: Option<String>,
    /// Mount points of cgroup v1 hierarchies (fstype `cgroup`).
    pub cgroup_v1_mounts: Vec<String>,
    /// Whether cgroups are mounted unified (v2 only), hybrid (v1 + v2), legacy (v1) or not at all.
    #[serde(with = "layout_serde")]
    pub cgroup_layout: CgroupLayout,
    /// This process's cgroup v2 path, relative to the cgroup2 mount.
    ///
    /// The `0::` line of `/proc/self/cgroup`.
    pub own_cgroup_v2: Option<String>,
    /// `cgroup.max.depth` of the cgroup v2 root (`max` = unlimited).
    pub cgroup_max_depth: Probe,
    /// `cgroup.max.descendants` of the cgroup v2 root (`max` = unlimited).
    pub cgroup_max_descendants: Probe,
    /// `/proc/sys/kernel/pid_max`: the ceiling on tasks a scenario can create.
    pub pid_max: Probe,
    /// seccomp filters, the per-task chain mechanism: this process's mode and the actions known.
    ///
    /// From `prctl(PR_GET_SECCOMP)`, the actions the `seccomp(SECCOMP_GET_ACTION_AVAIL)` syscall
    /// accepts, `/proc/sys/kernel/seccomp/actions_avail` and `Seccomp_filters` of
    /// `/proc/self/status` (kernel/seccomp.c).
    pub seccomp: Probe,
    /// Landlock ABI version, `ABI <n>`: which Landlock rules the kernel backend may use.
    ///
    /// From `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`
    /// (security/landlock/syscalls.c).
    pub landlock_abi: Probe,
    /// Whether this process may load BPF programs at all.
    ///
    /// `bpf(BPF_PROG_LOAD)` of a 2-instruction BPF_PROG_TYPE_SOCKET_FILTER program
    /// (kernel/bpf/syscall.c: bpf_prog_load).
    pub bpf: Probe,
    /// `/proc/sys/net/core/bpf_jit_enable` (0 = interpreter, 1 = JIT, 2 = JIT with debug).
    pub bpf_jit: Probe,
    /// `/proc/sys/kernel/unprivileged_bpf_disabled`: whether BPF needs root here.
    ///
    /// 0 = allowed, 1 = disabled for good, 2 = disabled, root may re-enable.
    pub unprivileged_bpf_disabled: Probe,
    /// BPF trampolines, which lsm, lsm_cgroup and fentry programs need: which types load.
    ///
    /// Loads of BPF_PROG_TYPE_LSM (BPF_LSM_MAC, BPF_LSM_CGROUP) and BPF_PROG_TYPE_TRACING
    /// (BPF_TRACE_FENTRY) programs attached by BTF id to `bpf_lsm_file_open` (found in
    /// `/sys/kernel/btf/vmlinux`); kernel/bpf/syscall.c: bpf_prog_load, kernel/bpf/verifier.c:
    /// bpf_check_attach_target.
    pub bpf_trampolines: Probe,
    /// Active LSMs, in order: BPF LSM programs run only when `bpf` is among them.
    ///
    /// `<securityfs>/lsm`, else the `lsm_list_modules` syscall (security/lsm_syscalls.c).
    pub lsm_list: Probe,
    /// Whether cycles can be counted beside the clock: a hardware perf counter for this thread.
    ///
    /// perf_event_open of PERF_TYPE_HARDWARE / PERF_COUNT_HW_CPU_CYCLES.
    pub perf_counters: Probe,
    /// `/proc/sys/kernel/perf_event_paranoid`.
    pub perf_event_paranoid: Probe,
    /// CPU vulnerability mitigations, which add to every syscall: `(name, status)` sorted by name.
    ///
    /// One per file of `/sys/devices/system/cpu/vulnerabilities/`.
    pub mitigations: Vec<(String, String)>,
    /// cpufreq governor of cpu0, `/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor`.
    pub governor: Probe,
    /// TSC flags from `/proc/cpuinfo` (`None` on non-x86 or when unreadable; see notes).
    pub tsc: Option<TscFlags>,
    /// Whether this runs under a hypervisor, whose effects are in every timing.
    ///
    /// The `hypervisor` CPU flag of `/proc/cpuinfo`, with `/sys/class/dmi/id/sys_vendor` and
    /// `product_name` when readable.
    pub virtualization: Probe,
    /// hookbench.ko (`/dev/hookbench`), the kmod backend: ABI version and limits, or why not.
    ///
    /// Why not: not loaded, not root, ABI mismatch.
    #[serde(default = "Probe::unknown")]
    pub kmod: Probe,
    /// What said the CPU is emulated (qemu TCG), whose timings are not comparable with bare metal.
    ///
    /// The hookbench rig's `hookbench_rig.emulated=1` on the kernel command line, or a
    /// `QEMU TCG` CPU model; `None` on real or hardware-virtualized CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulated: Option<String>,
    /// What a User-Mode Linux kernel changes in the figures; `None` on any other kernel.
    ///
    /// Set when `/proc/cpuinfo` says `User Mode Linux` ([`detect_uml`]): reports mark such runs
    /// `uml` (reports::host), not emulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uml: Option<UmlInfo>,
    /// Where the kernel configuration was read from, or why it could not be.
    ///
    /// `/proc/config.gz` or `/boot/config-<release>`.
    pub kernel_config: Probe,
    /// Values (`y`, `m`, `not set`) of the kernel options the mechanisms need.
    ///
    /// The options are [`KERNEL_CONFIG_OPTIONS`] (`CONFIG_BPF_LSM`, ...).
    ///
    /// Empty when [`Environment::kernel_config`] is absent.
    pub kernel_config_options: Vec<(String, String)>,
    /// Wall time `Environment::probe` took, in microseconds.
    pub probe_duration_us: u64,
    /// Failures met while probing plain or `Option` fields: why one is `None` or a fallback.
    pub notes: Vec<String>,
}

/// Kernel options that say how a User-Mode Linux kernel's figures compare with bare metal's.
pub const UML_CONFIG_OPTIONS: &[&str] = &[
    "CONFIG_BPF_JIT",
    "CONFIG_BPF_EVENTS",
    "CONFIG_PERF_EVENTS",
    "CONFIG_SMP",
    "CONFIG_PREEMPT",
    "CONFIG_HZ",
];

/// How to read figures taken in a User-Mode Linux kernel beside bare-metal and TCG figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UmlInfo {
    /// The UML kernel's release (`uname -r`) and version string (`uname -v`).
    pub release: String,
    /// The host UML runs on, as UML's `/proc/cpuinfo` says (the host's uname).
    pub host: String,
    /// Whether instructions run natively on the host's CPU: always true (no emulator).
    pub native_cpu: bool,
    /// CPUs of the guest: 1 (UML has no SMP).
    pub cpus: usize,
    /// How BPF bodies run: `interpreted` (no BPF JIT in UML) or `jit`.
    pub bpf_bodies: String,
    /// What syscalls cost here: ptrace-trapped, so only in-kernel timed loops compare.
    ///
    /// Userspace-timed figures (one ioctl per hook) carry the host's ptrace round trips.
    pub syscalls: String,
    /// Where the UML kernel's configuration was read, or why it could not be.
    pub config_source: String,
    /// Values of [`UML_CONFIG_OPTIONS`] in that configuration (empty when unreadable).
    pub config_options: Vec<(String, String)>,
}

impl UmlInfo {
    /// The UML facts of a probe: the release, the host line, CPUs, the BPF JIT probe, the config.
    fn new(release: &str, version: &str, host: String, cpus: usize, bpf_jit: &Probe, config: &Probe) -> UmlInfo {
        let jit_on = bpf_jit.value_if_available().is_some_and(|v| v.trim() != "0");
        let (config_source, config_options) = match hookbench_sys::kconfig::read_kernel_config(release) {
            Ok(c) => (c.source.clone(), c.values(UML_CONFIG_OPTIONS)),
            Err(_) => (config.to_string(), Vec::new()),
        };
        UmlInfo {
            release: format!("{release} {version}"),
            host,
            native_cpu: true,
            cpus,
            bpf_bodies: if jit_on { "jit" } else { "interpreted" }.to_owned(),
            syscalls: "ptrace-trapped by the host: only in-kernel timed loops measure the kernel".to_owned(),
            config_source,
            config_options,
        }
    }
}

/// The text of `path`, or `None` with a note saying why it could not be read.
fn read_noted(path: &str, notes: &mut Vec<String>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) => {
            notes.push(format!("cannot read {path}: {}", io_text(&e)));
            None
        }
    }
}

impl Environment {
    /// Probes the running machine. Never fails: each field records its own failure.
    ///
    /// Side-effect free (every fd closed, nothing left loaded) and fast (well under 200 ms).
    pub fn probe() -> Environment {
        let start = Instant::now();
        let mut notes = Vec::new();

        // uname
        let (kernel_release, kernel_version, machine) = match hookbench_sys::release::uname() {
            Ok(u) => (u.release, u.version, u.machine),
            Err(e) => {
                notes.push(format!("uname failed: {}", errno_text(e as i32)));
                (String::new(), String::new(), String::new())
            }
        };

        let hostname = match hostname::get() {
            Ok(h) => Some(h.to_string_lossy().into_owned()),
            Err(e) => {
                notes.push(format!("gethostname failed: {}", io_text(&e)));
                None
            }
        };

        // /proc/cpuinfo
        let cpuinfo = read_noted("/proc/cpuinfo", &mut notes);
        let cpu_model = cpuinfo
            .as_deref()
            .and_then(|t| cpuinfo_field(t, "model name"))
            .map(str::to_owned);
        if cpu_model.is_none() && cpuinfo.is_some() {
            notes.push("no \"model name\" line in /proc/cpuinfo (not x86?)".to_owned());
        }
        let flags: Option<Vec<&str>> = cpuinfo
            .as_deref()
            .and_then(|t| cpuinfo_field(t, "flags"))
            .map(|f| f.split_whitespace().collect());
        let tsc = flags.as_ref().map(|f| TscFlags {
            constant_tsc: f.contains(&"constant_tsc"),
            nonstop_tsc: f.contains(&"nonstop_tsc"),
        });
        if tsc.is_none() && cpuinfo.is_some() {
            notes.push("no x86 \"flags\" line in /proc/cpuinfo: TSC flags unknown".to_owned());
        }

        let nr_cpus = online_cpus(&mut notes);
        let allowed_cpus = allowed_cpus(&mut notes, nr_cpus);
        let memory_bytes = physical_memory_bytes(&mut notes);

        // credentials
        // SAFETY: geteuid has no preconditions and cannot fail.
        let euid = unsafe { libc::geteuid() };
        let status = read_noted("/proc/self/status", &mut notes);
        let cap_effective_hex = status
            .as_deref()
            .and_then(|s| status_field(s, "CapEff"))
            .map(str::to_owned);
        let cap_eff = cap_effective_hex
            .as_deref()
            .and_then(|h| u64::from_str_radix(h, 16).ok());
        if cap_eff.is_none() && status.is_some() {
            notes.push("no parsable CapEff line in /proc/self/status: capabilities unknown".to_owned());
        }
        let has_cap = |bit: u32| cap_eff.map(|c| c & (1u64 << bit) != 0).unwrap_or(false);
        let privileged = euid == 0 && (has_cap(CAP_SYS_ADMIN) || has_cap(CAP_BPF));

        // cgroups
        let mountinfo = read_noted("/proc/self/mountinfo", &mut notes);
        let mi = mountinfo.as_deref().unwrap_or("");
        let cgroup2_mount = find_cgroup2_mount(mi).map(|p| p.to_string_lossy().into_owned());
        if cgroup2_mount.is_none() && mountinfo.is_some() {
            notes.push("no cgroup2 line in /proc/self/mountinfo: cgroup v2 not mounted".to_owned());
        }
        let cgroup_v1_mounts: Vec<String> = parse_mountinfo(mi)
            .filter(|m| m.fstype == "cgroup")
            .map(|m| m.mount_point.to_string_lossy().into_owned())
            .collect();
        let cgroup_layout = cgroup_layout(mi);
        let own_cgroup_v2 = match std::fs::read_to_string("/proc/self/cgroup") {
            Ok(t) => {
                let p = t.lines().find_map(|l| l.strip_prefix("0::")).map(str::to_owned);
                if p.is_none() {
                    notes.push("no \"0::\" line in /proc/self/cgroup: not in a cgroup v2 hierarchy".to_owned());
                }
                p
            }
            Err(e) => {
                notes.push(format!("cannot read /proc/self/cgroup: {}", io_text(&e)));
                None
            }
        };
        let (cgroup_max_depth, cgroup_max_descendants) = match &cgroup2_mount {
            Some(m) => (
                read_setting(
                    &format!("{m}/cgroup.max.depth"),
                    "cgroup.max.depth is not on the root cgroup of this kernel (root is unlimited)",
                ),
                read_setting(
                    &format!("{m}/cgroup.max.descendants"),
                    "cgroup.max.descendants is not on the root cgroup of this kernel (root is unlimited)",
                ),
            ),
            None => (Probe::absent("no cgroup v2 mount"), Probe::absent("no cgroup v2 mount")),
        };
        let pid_max = read_setting("/proc/sys/kernel/pid_max", "procfs not mounted at /proc?");

        // security mechanisms
        let seccomp = probe_seccomp(status.as_deref());
        let landlock_abi = probe_landlock();
        let bpf = probe_bpf();
        let bpf_jit = read_setting(
            "/proc/sys/net/core/bpf_jit_enable",
            "kernel built without CONFIG_BPF_JIT",
        );
        let unprivileged_bpf_disabled = read_setting(
            "/proc/sys/kernel/unprivileged_bpf_disabled",
            "kernel built without CONFIG_BPF_SYSCALL",
        );
        let bpf_trampolines = probe_trampolines(&bpf);
        let lsm_list = probe_lsm_list(mi);

        // measurement conditions
        let perf_event_paranoid = read_setting(
            "/proc/sys/kernel/perf_event_paranoid",
            "kernel built without CONFIG_PERF_EVENTS",
        );
        let perf_counters = probe_perf(&perf_event_paranoid);
        let mitigations = read_mitigations(&mut notes);
        let governor = read_setting(
            "/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor",
            "no cpufreq driver for cpu0 (usual in VMs): the CPU frequency is not under this kernel's control",
        );
        let virtualization = probe_virtualization(flags.as_deref());
        let kmod = match crate::kmod_backend::probe() {
            Ok(v) => Probe::yes(v),
            Err(reason) => Probe::absent(reason),
        };
        let emulated = detect_emulation(
            &std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
            cpu_model.as_deref(),
        );
        let (kernel_config, kernel_config_options) = probe_kernel_config(&kernel_release);
        let uml = cpuinfo.as_deref().and_then(detect_uml).map(|host| {
            UmlInfo::new(
                &kernel_release,
                &kernel_version,
                host,
                nr_cpus,
                &bpf_jit,
                &kernel_config,
            )
        });

        let probe_duration_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        Environment {
            kernel_release,
            kernel_version,
            machine,
            hostname,
            cpu_model,
            nr_cpus,
            allowed_cpus,
            memory_bytes,
            euid,
            cap_effective_hex,
            privileged,
            cgroup2_mount,
            cgroup_v1_mounts,
            cgroup_layout,
            own_cgroup_v2,
            cgroup_max_depth,
            cgroup_max_descendants,
            pid_max,
            seccomp,
            landlock_abi,
            bpf,
            bpf_jit,
            unprivileged_bpf_disabled,
            bpf_trampolines,
            lsm_list,
            perf_counters,
            perf_event_paranoid,
            mitigations,
            governor,
            tsc,
            virtualization,
            kmod,
            emulated,
            uml,
            kernel_config,
            kernel_config_options,
            probe_duration_us,
            notes,
        }
    }

    /// The Landlock ABI version as a number, when Landlock is available.
    pub fn landlock_abi_version(&self) -> Option<u32> {
        self.landlock_abi
            .value_if_available()
            .and_then(|v| v.strip_prefix("ABI "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Whether `bpf` is among the active LSMs (BPF_PROG_TYPE_LSM programs only run if so).
    pub fn bpf_lsm_active(&self) -> Option<bool> {
        self.lsm_list.value_if_available().map(lsm_list_has_bpf)
    }

    /// Whether this process can attach cgroup-bpf programs and build cgroup trees; else why not.
    ///
    /// What the kernel backend's `cgroup-bpf` and set-up mechanisms need: `Err` lists everything
    /// missing of root (CAP_SYS_ADMIN and CAP_BPF), a cgroup v2 mount and `bpf()`.
    pub fn cgroup_bpf_support(&self) -> Result<(), String> {
        let mut missing = Vec::new();
        if !self.privileged {
            missing.push(format!(
                "needs root (CAP_SYS_ADMIN and CAP_BPF) to load and attach cgroup programs (euid {})",
                self.euid
            ));
        }
        if self.cgroup2_mount.is_none() {
            missing.push("no cgroup v2 mount in /proc/self/mountinfo".to_string());
        }
        // Without root, bpf() fails for that reason; say it once.
        if self.privileged && !self.bpf.available {
            missing.push(format!("BPF {}", self.bpf));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join("; "))
        }
    }
}
