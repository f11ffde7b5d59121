//! Builds the C peers the runs measure themselves against, with the `cc` crate's C compiler.
//!
//! The compiler is `CC`, else `cc`/`gcc`: `c/setup_floor.c` (the set-up and tear-down floors,
//! embedded as `spawner::C_REFERENCE`) and `c/attach_floor.c` (the cgroup-bpf attach floor,
//! embedded as `attach_worker::ATTACH_FLOOR_ELF`). A machine without a working C compiler (or
//! kernel UAPI headers) still builds hookbench: the missing binary is left empty and an
//! environment variable names the reason, so the runs skip those cells saying why.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `(source, output name, variable naming the outcome, its value on success)`.
const PEERS: [(&str, &str, &str, &str); 2] = [
    ("c/setup_floor.c", "setup_floor", "HOOKBENCH_C_REFERENCE", "ok"),
    ("c/attach_floor.c", "attach_floor", "HOOKBENCH_ATTACH_FLOOR_ERROR", ""),
];

fn main() {
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=CC");
    for (src, name, var, ok) in PEERS {
        println!("cargo:rerun-if-changed={src}");
        let exe = out_dir.join(name);
        let outcome = match build(Path::new(src), &exe) {
            Ok(()) => ok.to_string(),
            Err(why) => {
                println!("cargo:warning={src} was not built ({why}); its cells will be skipped");
                // An empty file: include_bytes! still finds it, and the run says why.
                std::fs::write(&exe, b"").expect("write an empty binary into OUT_DIR");
                // One line: cargo reads the variable up to the end of the line.
                why.replace(['\n', '\r'], " ")
            }
        };
        println!("cargo:rustc-env={var}={outcome}");
    }
}

/// Compiles `src` into the executable `exe`; `Err` says what failed and what to install.
fn build(src: &Path, exe: &Path) -> Result<(), String> {
    let compiler = cc::Build::new()
        .opt_level(2)
        .cargo_metadata(false)
        .try_get_compiler()
        .map_err(|e| format!("no C compiler: {e}"))?;
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-O2", "-Wall", "-Wextra", "-o"]).arg(exe).arg(src);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run the C compiler {}: {e}", compiler.path().display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let first = stderr.lines().find(|l| l.contains("error")).unwrap_or("").trim();
        return Err(format!(
            "{} {} failed ({}): {first} (install gcc and the kernel UAPI headers: apt-get install gcc \
             linux-libc-dev)",
            compiler.path().display(),
            src.display(),
            output.status
        ));
    }
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning={line}");
    }
    Ok(())
}
