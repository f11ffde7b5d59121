//! The spawner's C peer: the embedded `setup_floor` (`workloads/c/setup_floor.c`), run and read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{inherit_mappings, SpawnerError};
use crate::worker::worker_command;

/// Marker of the C reference's one output line (`setup_s=<s> teardown_s=<s>` follows).
pub const C_REPORT_MARKER: &str = "HOOKBENCH-C-REPORT ";

/// The C reference executable built from `workloads/c/setup_floor.c` by `build.rs`.
///
/// Empty when this machine had no working C compiler at build time: see [`c_reference`].
pub const C_REFERENCE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/setup_floor"));

/// `ok`, or why `build.rs` could not build [`C_REFERENCE`].
pub(super) const C_REFERENCE_STATUS: &str = env!("HOOKBENCH_C_REFERENCE");

/// The embedded C reference, or why `build.rs` could not build it.
pub fn c_reference() -> Result<&'static [u8], String> {
    if C_REFERENCE_STATUS == "ok" && !C_REFERENCE.is_empty() {
        Ok(C_REFERENCE)
    } else {
        Err(format!(
            "the C reference (workloads/c/setup_floor.c) was not built with hookbench: {C_REFERENCE_STATUS}; install \
             a C compiler (gcc) and rebuild"
        ))
    }
}

/// Writes the embedded C reference to `dir/setup_floor` (mode 0700) and returns its path.
///
/// `dir` is created. Errors: the reason, when it was not built or cannot be written.
pub fn install_c_reference(dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let bytes = c_reference()?;
    let path = dir.join("setup_floor");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&path, bytes))
        .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("cannot write the C reference to {}: {e}", path.display()))?;
    Ok(path)
}

/// Parses the C reference's output: `setup_s=<s> teardown_s=<s>` after [`C_REPORT_MARKER`].
///
/// Pure.
pub fn parse_c_report(stdout: &str) -> Option<(Duration, Duration)> {
    let line = stdout.lines().rev().find_map(|l| l.strip_prefix(C_REPORT_MARKER))?;
    let mut setup = None;
    let mut teardown = None;
    for field in line.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        let secs: f64 = value.parse().ok()?;
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        match key {
            "setup_s" => setup = Some(Duration::from_secs_f64(secs)),
            "teardown_s" => teardown = Some(Duration::from_secs_f64(secs)),
            _ => {}
        }
    }
    Some((setup?, teardown?))
}

/// Runs the C reference `exe` with `args`; its set-up and tear-down times.
///
/// It is started with the parent-death signal, in this process's cgroup. `trimmed` (the mappings
/// this process's children do not inherit) is inherited again while the C process is started:
/// the forked child runs Rust code (the parent-death `pre_exec`) that uses the heap.
pub(super) fn run_c(
    exe: &Path,
    args: &[&str],
    trimmed: &[(usize, usize)],
) -> Result<(Duration, Duration), SpawnerError> {
    let fail = |why: String| SpawnerError::CReference {
        exe: exe.display().to_string(),
        why,
    };
    inherit_mappings(trimmed, true);
    let out = worker_command(exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output();
    inherit_mappings(trimmed, false);
    let out = out.map_err(|e| fail(format!("cannot run it: {e} (is its directory mounted noexec?)")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(format!(
            "`{} {}` exited with {}: {}",
            exe.display(),
            args.join(" "),
            out.status,
            stderr.trim()
        )));
    }
    parse_c_report(&stdout).ok_or_else(|| fail(format!("printed no {C_REPORT_MARKER:?} line: {}", stdout.trim())))
}
