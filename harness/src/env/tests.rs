//! Probes of this machine: every probe says why when absent, the doctor, no fd left open.

use super::*;

#[test]
fn probe_display() {
    assert_eq!(Probe::yes("ABI 6").to_string(), "yes (ABI 6)");
    assert_eq!(Probe::yes_bare().to_string(), "yes");
    assert_eq!(
        Probe::absent("ENOSYS (Function not implemented)").to_string(),
        "absent: ENOSYS (Function not implemented)"
    );
    assert_eq!(Probe::absent_with_value("x", "why").to_string(), "absent: why");
    let p: Probe = serde_json::from_str(&serde_json::to_string(&Probe::yes("v")).unwrap()).unwrap();
    assert_eq!(p, Probe::yes("v"));
}

fn all_probes(env: &Environment) -> Vec<(&'static str, &Probe)> {
    vec![
        ("cgroup_max_depth", &env.cgroup_max_depth),
        ("cgroup_max_descendants", &env.cgroup_max_descendants),
        ("pid_max", &env.pid_max),
        ("seccomp", &env.seccomp),
        ("landlock_abi", &env.landlock_abi),
        ("bpf", &env.bpf),
        ("bpf_jit", &env.bpf_jit),
        ("unprivileged_bpf_disabled", &env.unprivileged_bpf_disabled),
        ("bpf_trampolines", &env.bpf_trampolines),
        ("lsm_list", &env.lsm_list),
        ("perf_counters", &env.perf_counters),
        ("perf_event_paranoid", &env.perf_event_paranoid),
        ("governor", &env.governor),
        ("virtualization", &env.virtualization),
        ("kernel_config", &env.kernel_config),
    ]
}

/// Serialises the tests that call `Environment::probe` (the fd test counts open fds).
static PROBE_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn probe_this_machine() {
    let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let start = Instant::now();
    let env = Environment::probe();
    let took = start.elapsed();
    for (label, value) in env.doctor_lines() {
        eprintln!("{label:>22}: {value}");
    }
    assert!(env.nr_cpus >= 1);
    assert!(env.allowed_cpus >= 1 && env.allowed_cpus <= env.nr_cpus.max(env.allowed_cpus));
    assert!(!env.kernel_release.is_empty());
    assert!(env.memory_bytes > 0);
    // A hang guard, not a performance target (the probe loads test BPF programs; under load it
    // takes a few hundred ms).
    assert!(took.as_secs() < 10, "probe took {took:?}");

    // The cgroup2 mount agrees with the pure parser on the live mountinfo.
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let parsed = find_cgroup2_mount(&mi).map(|p| p.to_string_lossy().into_owned());
    assert_eq!(env.cgroup2_mount, parsed);
    assert_eq!(env.cgroup_layout, cgroup_layout(&mi));
    if env.privileged
        && mi
            .lines()
            .any(|l| l.contains(" /sys/fs/cgroup/unified ") && l.contains(" - cgroup2 "))
    {
        assert_eq!(env.cgroup2_mount.as_deref(), Some("/sys/fs/cgroup/unified"));
    }

    // Perf counters: available, or a non-empty reason.
    assert!(env.perf_counters.available || env.perf_counters.reason.as_deref().is_some_and(|r| !r.is_empty()));

    // Every probe that is not available says why; available ones carry no reason.
    for (name, p) in all_probes(&env) {
        if p.available {
            assert!(p.reason.is_none(), "{name} available but has a reason");
        } else {
            assert!(
                p.reason.as_deref().is_some_and(|r| !r.is_empty()),
                "{name} absent without a reason"
            );
        }
    }
    if env.kernel_config.available {
        assert_eq!(env.kernel_config_options.len(), KERNEL_CONFIG_OPTIONS.len());
    }
    if env.landlock_abi.available {
        assert!(env.landlock_abi_version().is_some_and(|v| v >= 1));
    }

    // Serde round trip.
    let json = serde_json::to_string(&env).unwrap();
    let back: Environment = serde_json::from_str(&json).unwrap();
    assert_eq!(back, env);
    assert!(json.contains("\"cgroup_layout\":\""));
}

#[test]
fn doctor_says_what_each_mechanism_family_needs_and_that_seccomp_and_landlock_need_no_root() {
    let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut env = Environment::probe();
    env.privileged = false;
    env.euid = 65534;
    env.seccomp = Probe::yes("mode 0");
    env.landlock_abi = Probe::yes("ABI 7");
    env.cgroup2_mount = Some("/sys/fs/cgroup".to_string());
    env.bpf = Probe::absent("EPERM");
    env.lsm_list = Probe::yes("lockdown,capability,landlock,bpf");
    let families = env.kernel_families();
    let status = |name: &str| {
        families
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.status.clone())
            .unwrap_or_else(|| panic!("no family {name}"))
    };
    assert_eq!(status("seccomp"), Ok(String::new()));
    assert_eq!(status("Landlock"), Ok("ABI 7".to_string()));
    let why = status("cgroup-bpf").expect_err("needs root");
    assert!(
        why.contains("needs root") && why.contains("euid 65534") && !why.contains("EPERM"),
        "{why}"
    );
    assert!(status("BPF LSM").expect_err("needs root").contains("needs root"));
    let lines = env.doctor_lines();
    let line = |label: &str| {
        lines
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {label} line in {lines:?}"))
    };
    let root = line("root");
    assert!(
        root.contains("measures seccomp, Landlock without root") && !root.contains("model backend only"),
        "{root}"
    );
    assert!(line("kernel: seccomp").starts_with("yes for this user: seccomp-arg-load"));
    assert!(line("kernel: Landlock").starts_with("yes for this user (ABI 7): landlock, landlock-foreign-net; needs"));
    let cgroup_bpf = line("kernel: cgroup-bpf");
    assert!(
        cgroup_bpf.starts_with("NO for this user: cgroup-bpf") && cgroup_bpf.contains("here: needs root"),
        "{cgroup_bpf}"
    );
    // As root, with bpf not an active LSM: cgroup-bpf is there, BPF LSM says what to boot with.
    env.privileged = true;
    env.euid = 0;
    env.bpf = Probe::yes_bare();
    env.bpf_trampolines = Probe::yes_bare();
    env.lsm_list = Probe::yes("lockdown,capability,landlock");
    let families = env.kernel_families();
    assert!(families
        .iter()
        .find(|f| f.name == "cgroup-bpf")
        .is_some_and(|f| f.status.is_ok()));
    let lsm = families.iter().find(|f| f.name == "BPF LSM").expect("BPF LSM family");
    assert!(
        lsm.status.as_ref().expect_err("no bpf LSM").contains("lsm=...,bpf"),
        "{lsm:?}"
    );
    // Every mechanism that needs something of the machine is on exactly one doctor line.
    for m in crate::mechanism::REGISTRY
        .iter()
        .filter(|m| m.family != crate::mechanism::Family::Model)
    {
        let owners = families.iter().filter(|f| f.mechanisms.contains(&m.name)).count();
        assert_eq!(owners, 1, "{}", m.name);
    }
}

#[test]
fn probe_leaves_no_fds_open() {
    let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let count = || std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
    let _ = Environment::probe(); // warm-up: lazily opened fds in libraries
                                  // Other tests of this binary open files on their own threads meanwhile: a probe that
                                  // leaks leaks every time, so one of five probes with no growth clears it.
    let mut seen = Vec::new();
    for _ in 0..5 {
        let before = count();
        let _ = Environment::probe();
        let after = count();
        if after <= before {
            return;
        }
        seen.push((before, after));
    }
    panic!("every probe left fds open: (before, after) = {seen:?}");
}
