//! Host tests of the qemu rig's failure paths and of `scripts/run --build-kmod`'s module build.
//!
//! `scripts/qemu-rig`: bad options exit 2 naming the value; an unreachable archive with an empty
//! cache and a missing qemu binary exit 1 saying what to do; nothing is left behind.
//! `scripts/uml-rig`: the same for bad options and an unreachable archive. The rig's
//! success path runs in `.ci/run` after the tests. `scripts/run --build-kmod`: a missing kernel
//! build directory exits 1 naming it, other arguments exit 2. The tests that run the rig need root
//! (it installs its host packages first); without root they print why and pass, unless
//! `HOOKBENCH_REQUIRE_ROOT=1` (CI as root), which makes them fail instead.

use std::path::Path;
use std::process::Command;

/// A command for `scripts/NAME` of this checkout.
fn script(name: &str) -> Command {
    Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts").join(name))
}

fn rig() -> Command {
    script("qemu-rig")
}

/// The rig installs its host packages with apt-get: two rigs at once would race for apt's lock.
static RIG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_rig_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    RIG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the rig as root, one at a time, with `--quiet --out <tmp>/out`, `args` and `envs`.
///
/// Returns its exit code and stderr, or `None` (with a printed reason) when not root; with
/// `HOOKBENCH_REQUIRE_ROOT=1` not being root fails the test instead.
fn run_root_rig(tmp: &Path, args: &[&str], envs: &[(&str, &str)]) -> Option<(Option<i32>, String)> {
    if !hookbench_sys::testing::root_or_skip("qemu-rig", "the rig installs its host packages as root first") {
        return None;
    }
    let _rig = one_rig_at_a_time();
    let out = rig()
        .args(["--quiet", "--out"])
        .arg(tmp.join("out"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("run the rig");
    Some((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// Asserts that `scripts/<name> <args>` exits 2 with `named` (the bad value) on stderr.
fn exits_2_naming(name: &str, args: &[&str], named: &str) {
    let out = script(name).args(args).output().expect("run the script");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{name} {args:?}: {err}");
    assert!(err.contains(named), "{name} {args:?}: {err}");
}

#[test]
fn bad_options_exit_2_and_name_the_value() {
    for (args, named) in [
        (vec!["--kernel", "wheezy"], "wheezy"),
        (vec!["--timeout", "soon"], "soon"),
        (vec!["--smp", "0"], "0"),
        (vec!["--frobnicate"], "--frobnicate"),
        (vec!["--kernel", "bookworm,jessie"], "jessie"),
        (vec!["--kernel", "trixie", "--kernel", "trixie"], "named twice"),
        (
            vec!["--kernel", "trixie", "--merge", "/nonexistent/run"],
            "only with several --kernel",
        ),
        (
            vec!["--kernel", "trixie,bullseye", "--merge", "/nonexistent/run"],
            "/nonexistent/run",
        ),
    ] {
        exits_2_naming("qemu-rig", &args, named);
    }
}

#[test]
fn an_unreachable_archive_with_an_empty_cache_says_which_mirror_to_fix() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cache = tmp.path().join("cache");
    let Some((code, err)) = run_root_rig(
        tmp.path(),
        &["--cache", cache.to_str().expect("utf-8 temp path")],
        &[
            ("HOOKBENCH_RIG_MIRROR", "http://127.0.0.1:9/debian"),
            ("HOOKBENCH_RIG_SECURITY_MIRROR", "none"),
        ],
    ) else {
        return;
    };
    assert_eq!(code, Some(1), "{err}");
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
    let tmp = tempfile::tempdir().expect("tempdir");
    let Some((code, err)) = run_root_rig(
        tmp.path(),
        &[],
        &[("HOOKBENCH_RIG_QEMU", "/nonexistent/qemu-system-x86_64")],
    ) else {
        return;
    };
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("/nonexistent/qemu-system-x86_64") || err.contains("HOOKBENCH_RIG_QEMU"),
        "{err}"
    );
}

#[test]
fn build_kmod_without_a_kernel_build_directory_names_it() {
    let out = script("run")
        .arg("--build-kmod")
        .env("KDIR", "/nonexistent/hookbench-kdir")
        .output()
        .expect("run scripts/run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("KDIR=/nonexistent/hookbench-kdir"), "{err}");
    assert!(err.contains("not a kernel build directory"), "{err}");
}

#[test]
fn build_kmod_with_other_arguments_exits_2() {
    exits_2_naming("run", &["--build-kmod", "--profile", "smoke"], "--profile smoke");
}

#[test]
fn uml_rig_bad_options_exit_2_and_name_the_value() {
    for (args, named) in [
        (vec!["--kernel", "wheezy"], "wheezy"),
        (vec!["--profile", "huge"], "huge"),
        (vec!["--mem", "12"], "12"),
        (vec!["--timeout", "soon"], "soon"),
        (vec!["--frobnicate"], "--frobnicate"),
    ] {
        exits_2_naming("uml-rig", &args, named);
    }
}

#[test]
fn uml_rig_with_an_unreachable_archive_and_an_empty_cache_says_which_mirror_to_fix() {
    if !hookbench_sys::testing::root_or_skip("uml-rig", "the rig installs its host packages as root first") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let scratch = tmp.path().join("tmp");
    std::fs::create_dir(&scratch).expect("scratch dir");
    let _rig = one_rig_at_a_time();
    let out = script("uml-rig")
        .args(["--quiet", "--out"])
        .arg(tmp.path().join("out"))
        .arg("--cache")
        .arg(tmp.path().join("cache"))
        .env("HOOKBENCH_RIG_MIRROR", "http://127.0.0.1:9/debian")
        .env("HOOKBENCH_RIG_SECURITY_MIRROR", "none")
        .env("TMPDIR", &scratch)
        .output()
        .expect("run the UML rig");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("127.0.0.1:9") && err.contains("HOOKBENCH_RIG_MIRROR"),
        "{err}"
    );
    let rig_json = std::fs::read_to_string(tmp.path().join("out/rig.json")).expect("rig.json written on failure");
    assert!(
        rig_json.contains("\"exit_status\": 1") && rig_json.contains("\"rig\": \"uml\""),
        "{rig_json}"
    );
    let left: Vec<_> = std::fs::read_dir(&scratch).expect("read scratch").collect();
    assert!(left.is_empty(), "the rig left temporary files: {left:?}");
}
