//! Builds `c/setup_floor.c` (the C reference of the set-up and tear-down floors) into an
//! executable `OUT_DIR/setup_floor` with the C compiler the `cc` crate finds (`CC`, else `cc`),
//! which `spawner::C_REFERENCE` embeds. A machine without a working C compiler still builds
//! hookbench: the file is left empty and `HOOKBENCH_C_REFERENCE` names the reason, so the runs
//! skip their `-c` cells saying why.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let exe = out.join("setup_floor");
    let src = PathBuf::from("c/setup_floor.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=CC");
    let status = match build(&src, &exe) {
        Ok(()) => "ok".to_string(),
        Err(why) => {
            println!("cargo:warning=the C reference {} was not built: {why}", src.display());
            // An empty file: include_bytes! still finds it, and the spawner reports why.
            let _ = std::fs::write(&exe, b"");
            why.replace(['\n', '\r'], " ")
        }
    };
    println!("cargo:rustc-env=HOOKBENCH_C_REFERENCE={status}");
}

/// Compiles `src` into the executable `exe`, or says why it could not.
fn build(src: &PathBuf, exe: &PathBuf) -> Result<(), String> {
    let compiler = cc::Build::new()
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .cargo_metadata(false)
        .try_get_compiler()
        .map_err(|e| format!("no C compiler: {e}"))?;
    let mut cmd: Command = compiler.to_command();
    cmd.arg("-o").arg(exe).arg(src);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run the C compiler {}: {e}", compiler.path().display()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "`{cmd:?}` failed ({}): {}",
            output.status,
            stderr.chars().take(500).collect::<String>()
        ));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("cargo:warning={line}");
    }
    Ok(())
}
