//! Compiles hookbench-bpf's two BPF objects with clang and generates their skeletons.
//!
//! `src/bpf/hookbench.bpf.c` becomes `OUT_DIR/hookbench.bpf.o` and `OUT_DIR/hookbench.skel.rs`;
//! the BPF LSM programs `src/bpf/lsm.bpf.c` a separate object, `OUT_DIR/lsm.bpf.o` and
//! `OUT_DIR/lsm.skel.rs`. libbpf-cargo passes libbpf's bundled `bpf/*.h` with `-I`; the UAPI
//! `<linux/bpf.h>` comes from the system (linux-libc-dev), whose `<asm/types.h>` lives in the
//! multiarch directory (`/usr/include/<triple>`), which `clang -target bpf` does not search by
//! itself: it is added here when it exists.

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let multiarch = std::path::PathBuf::from(format!("/usr/include/{}-linux-gnu", debian_arch(&arch)));
    let mut args = Vec::new();
    if multiarch.join("asm/types.h").exists() {
        args.push(format!("-I{}", multiarch.display()));
    }
    println!("cargo:rerun-if-changed=src/bpf");
    // Every object: cgroup-bpf's, the BPF LSM's and the raw_tp global-filter programs' (global.bpf.c).
    for name in ["hookbench", "lsm", "global"] {
        libbpf_cargo::SkeletonBuilder::new()
            .source(format!("src/bpf/{name}.bpf.c"))
            .obj(out.join(format!("{name}.bpf.o")))
            .clang_args(args.clone())
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|e| {
                panic!(
                    "building src/bpf/{name}.bpf.c (needs clang and linux-libc-dev; libelf-dev, zlib1g-dev, \
                     pkg-config for libbpf-sys): {e}"
                )
            });
    }
}

/// The multiarch triple's first part for a Rust target arch (Debian's naming).
fn debian_arch(arch: &str) -> &str {
    match arch {
        "x86" => "i386",
        "arm" => "arm",
        "powerpc64" => "powerpc64le",
        other => other,
    }
}
