//! Compiles `src/bpf/kmod.bpf.c`, the raw_tp program bodies hookbench.ko runs, with clang.
//!
//! Into `OUT_DIR/kmod.bpf.o` and its skeleton through libbpf-cargo's `SkeletonBuilder`, as
//! `kernels/bpf/build.rs` does (including the multiarch `<asm/types.h>` directory that
//! `clang -target bpf` does not search by itself). The shared maps and bodies (`hb_bodies.h`)
//! and the ABI header (`hookbench.h`) come from `kernels/bpf/src/bpf`, added with `-I`.

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let triple_arch = match arch.as_str() {
        "x86" => "i386",
        "powerpc64" => "powerpc64le",
        other => other,
    };
    let multiarch = std::path::PathBuf::from(format!("/usr/include/{triple_arch}-linux-gnu"));
    let manifest =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let shared = manifest.join("../bpf/src/bpf");
    let mut args = vec![format!("-I{}", shared.display())];
    if multiarch.join("asm/types.h").exists() {
        args.push(format!("-I{}", multiarch.display()));
    }
    println!("cargo:rerun-if-changed=src/bpf");
    println!("cargo:rerun-if-changed={}", shared.display());
    println!("cargo:rerun-if-changed=uapi/hookbench_kmod.h");
    libbpf_cargo::SkeletonBuilder::new()
        .source("src/bpf/kmod.bpf.c")
        .obj(out.join("kmod.bpf.o"))
        .clang_args(args)
        .build_and_generate(out.join("kmod.skel.rs"))
        .expect("building src/bpf/kmod.bpf.c (needs clang and linux-libc-dev; libelf-dev, zlib1g-dev, pkg-config)");
}
