//! The qemu rig's own failure paths on the host (`scripts/qemu-rig`): bad options exit 2 naming the value, an unreachable archive with an empty cache and a missing qemu binary exit 1 saying what to do; nothing is left behind. The rig's success path runs in `.ci/run` after the tests.

use std::path::Path;
use std::process::Command;

fn rig() -> Command {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/qemu-rig"))
}

/// The rig installs its host packages with apt-get: two rigs at once would race for apt's lock.
static RIG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_rig_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    RIG.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn bad_options_exit_2_and_name_the_value() {
    for (args, named) in [
        (vec!["--kernel", "wheezy"], "wheezy"),
        (vec!["--timeout", "soon"], "soon"),
        (vec!["--smp", "0"], "0"),
        (vec!["--frobnicate"], "--frobnicate"),
    ] {
        let out = rig().args(&args).output().expect("run the rig");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
}

#[test]
fn an_unreachable_archive_with_an_empty_cache_says_which_mirror_to_fix() {
    if !is_root() {
        eprintln!("skipped: the rig installs its host packages as root first; run as root");
        return;
    }
    let _rig = one_rig_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = rig()
        .args(["--quiet", "--cache"])
        .arg(tmp.path().join("cache"))
        .arg("--out")
        .arg(tmp.path().join("out"))
        .env("HOOKBENCH_RIG_MIRROR", "http://127.0.0.1:9/debian")
        .env("HOOKBENCH_RIG_SECURITY_MIRROR", "none")
        .output()
        .expect("run the rig");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("127.0.0.1:9") && err.contains("HOOKBENCH_RIG_MIRROR"),
        "{err}"
    );
    let left = std::process::Command::new("pgrep")
        .arg("-f")
        .arg("qemu-system")
        .output();
    if let Ok(l) = left {
        assert!(
            !String::from_utf8_lossy(&l.stdout).contains(&tmp.path().display().to_string()),
            "a qemu of this test is left"
        );
    }
}

#[test]
fn a_missing_qemu_binary_is_named() {
    if !is_root() {
        eprintln!("skipped: the rig installs its host packages as root first; run as root");
        return;
    }
    let _rig = one_rig_at_a_time();
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = rig()
        .args(["--quiet", "--out"])
        .arg(tmp.path().join("out"))
        .env("HOOKBENCH_RIG_QEMU", "/nonexistent/qemu-system-x86_64")
        .output()
        .expect("run the rig");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/nonexistent/qemu-system-x86_64") || err.contains("HOOKBENCH_RIG_QEMU"),
        "{err}"
    );
}
