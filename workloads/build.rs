//! Compiles the C attach floor `c/attach_floor.c` into `OUT_DIR/attach_floor` with the system C
//! compiler (found by the `cc` crate: `CC`, else `cc`/`gcc`), which the crate embeds
//! (`crate::attach_worker::ATTACH_FLOOR_ELF`) and the harness runs as the peer of its attach
//! worker. A machine without a C compiler or kernel UAPI headers still builds hookbench: the
//! embedded binary is then empty and `HOOKBENCH_ATTACH_FLOOR_ERROR` says why, so the floor's
//! cells are skipped with that reason.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "c/attach_floor.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("attach_floor");
    let error = match build(src, &out) {
        Ok(()) => String::new(),
        Err(e) => {
            println!("cargo:warning=the C attach floor is not built ({e}); its cells will be skipped");
            std::fs::write(&out, b"").expect("write an empty attach_floor into OUT_DIR");
            e
        }
    };
    // One line: cargo reads the variable up to the end of the line.
    let error = error.replace(['\n', '\r'], " ");
    println!("cargo:rustc-env=HOOKBENCH_ATTACH_FLOOR_ERROR={error}");
}

/// Compiles `src` into the executable `out`; `Err` says what failed.
fn build(src: &str, out: &PathBuf) -> Result<(), String> {
    let compiler = cc::Build::new()
        .opt_level(2)
        .cargo_metadata(false)
        .try_get_compiler()
        .map_err(|e| format!("no C compiler: {e}"))?;
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-O2", "-Wall", "-Wextra", "-o"]).arg(out).arg(src);
    let output = cmd
        .output()
        .map_err(|e| format!("running {}: {e}", compiler.path().display()))?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().find(|l| l.contains("error")).unwrap_or("").trim();
        Err(format!(
            "{} {src} failed ({}): {first} (install gcc and the kernel UAPI headers: apt-get install gcc linux-libc-dev)",
            compiler.path().display(),
            output.status
        ))
    }
}
