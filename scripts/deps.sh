#!/usr/bin/env bash
# Installs the system packages hookbench needs, once (idempotent): apt-get or dnf when root,
# otherwise prints the exact command to run. Sourced by scripts/run and scripts/test.
set -euo pipefail

# Debian/Ubuntu package names (clang builds the BPF C programs; libelf and zlib headers are
# needed by libbpf-rs's bundled libbpf); dnf names follow in DNF_PACKAGES.
APT_PACKAGES=(gcc libc6-dev pkg-config clang libelf-dev zlib1g-dev)
DNF_PACKAGES=(gcc glibc-devel pkgconf-pkg-config clang elfutils-libelf-devel zlib-devel)
# Only the tests need these (`hookbench_deps test`): chromium is the headless browser that
# harness/tests/chromium.rs opens report.html in.
TEST_APT_PACKAGES=(chromium)
TEST_DNF_PACKAGES=(chromium)

# hookbench_build: builds the release binary (quietly) and prints its path, which is under
# CARGO_TARGET_DIR when that is set (cargo takes a relative one from the current directory, as
# this does), else under the checkout's target/.
hookbench_build() {
    local top
    top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cargo build --release --locked --quiet --manifest-path "$top/Cargo.toml" -p hookbench >&2
    printf '%s/release/hookbench\n' "${CARGO_TARGET_DIR:-$top/target}"
}

# hookbench_deps [test]: installs what hookbench needs to build and run; with "test", also what
# the test suite needs.
hookbench_deps() {
    if [ "${1:-}" = test ]; then
        APT_PACKAGES+=("${TEST_APT_PACKAGES[@]}")
        DNF_PACKAGES+=("${TEST_DNF_PACKAGES[@]}")
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "hookbench: cargo not found: install the Rust toolchain (https://rustup.rs) and retry" >&2
        return 1
    fi
    local missing=()
    if command -v dpkg-query >/dev/null 2>&1; then
        local p
        for p in "${APT_PACKAGES[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        if [ "$(id -u)" -eq 0 ]; then
            echo "hookbench: installing ${missing[*]}" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
        else
            echo "hookbench: missing packages; run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
            return 1
        fi
    elif command -v rpm >/dev/null 2>&1; then
        local p
        for p in "${DNF_PACKAGES[@]}"; do
            rpm -q "$p" >/dev/null 2>&1 || missing+=("$p")
        done
        [ ${#missing[@]} -eq 0 ] && return 0
        if [ "$(id -u)" -eq 0 ]; then
            dnf install -y "${missing[@]}"
        else
            echo "hookbench: missing packages; run: sudo dnf install -y ${missing[*]}" >&2
            return 1
        fi
    else
        echo "hookbench: neither dpkg nor rpm found; make sure a C toolchain (gcc, libc headers) and pkg-config are installed" >&2
    fi
}
