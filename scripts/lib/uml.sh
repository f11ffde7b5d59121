# shellcheck shell=bash disable=SC2154 # apt_opts and mirror come from lib/kernel.sh
# Builds a User-Mode Linux kernel for scripts/uml-rig (sourced after lib/common.sh and
# lib/kernel.sh): Debian's linux-source package, downloaded without touching the host's apt
# configuration (lib/kernel.sh's private apt state), patched with kernels/kmod/uml-*.patch,
# configured with `make ARCH=um defconfig` plus kernels/kmod/uml.config and built once, cached
# under CACHE/uml/<key> where the key hashes the source package's version, the patches, the config
# fragment and the compiler; an interrupted build is redone.
#
# uml-xstate.patch: UML 6.1 moves its processes' FPU state with PTRACE_GETREGSET/SETREGSET of a fixed
# 2696-byte XSAVE buffer; a host with a larger XSAVE area (AMX) refuses the set with EFAULT and
# every guest process dies ("ptrace set fp regs failed, errno = 14"). Patched, the registers go
# through a buffer of the host's whole area; UML keeps its 2696 bytes per thread (everything up to
# PKRU), the rest (AMX tiles, which no UML process can enable) stays the host process's. (Using
# the FXSAVE registers instead is not enough: guest programs then compute wrong results.)
# uml-kernel-flush-remap.patch: UML's kernel TLB flush maps a present page over its old mapping
# instead of unmapping it and mapping it again; in that gap a timer signal faulted for ever on the
# running task's thread_info (its stack is vmalloc memory) and the guest livelocked, 1 run in 4 to
# 6 (the patch's header has the evidence). uml-kernel-flush-irqs.patch: the flush's walk runs
# with interrupts off (a guard against a nested flush from a handler; alone it did not help).
#
# Needs `tmp` (the script's temporary directory) and `is_root` (lib/common.sh).

# uml_source_package DIST: the linux-source package of DIST's kernel (bookworm: linux-source-6.1).
uml_source_package() {
    case "$1" in
        bookworm) printf 'linux-source-6.1' ;;
        trixie) printf 'linux-source-6.12' ;;
        *) fail 2 "no UML source package known for '$1' (bookworm or trixie)" ;;
    esac
}

# uml_source_version DIST CACHE PKG: sets `uml_src_version`, PKG's version in a fresh DIST index,
# else (archive unreachable) the newest version cached under CACHE/uml/src, else fails.
uml_source_version() {
    local dist=$1 cache=$2 pkg=$3 cached
    : "${tmp:?needs the temporary directory}"
    debian_apt_setup "$dist" "$cache/apt/$dist"
    uml_src_version=
    if apt-get "${apt_opts[@]}" -qq update >"$tmp/apt-update.log" 2>&1 && ! grep -q '^[WE]:' "$tmp/apt-update.log"; then
        uml_src_version=$(apt-cache "${apt_opts[@]}" show "$pkg" 2>/dev/null | awk '$1 == "Version:" { print $2 }' | sort -V | tail -n1)
    fi
    if [ -z "$uml_src_version" ]; then
        cat "$tmp/apt-update.log" >&2
        cached=$(find "$cache/uml/src" -mindepth 2 -maxdepth 2 -name complete -path "*/${pkg}_*" 2>/dev/null | sed 's#/complete$##; s#.*/[^_]*_##' | sort -V | tail -n1 || true)
        [ -n "$cached" ] || fail 1 "could not read $pkg's version from the $dist index at $mirror (above; set HOOKBENCH_RIG_MIRROR) and no source is cached in $cache/uml/src"
        say "warning: could not refresh the $dist package index; using the cached $pkg $cached"
        uml_src_version=$cached
    fi
}

# uml_source_fetch DIST CACHE PKG: downloads PKG (version `uml_src_version`) into
# CACHE/uml/src/PKG_VERSION (the .tar.xz only) unless it is there; sets `uml_src_tar`.
uml_source_fetch() {
    local dist=$1 cache=$2 pkg=$3 sdir old
    sdir="$cache/uml/src/${pkg}_$uml_src_version"
    uml_src_tar="$sdir/$pkg.tar.xz"
    [ -f "$sdir/complete" ] && return 0
    say "downloading $pkg $uml_src_version (about 140 MB) from $mirror"
    rm -rf "$sdir"
    mkdir -p "$sdir/debs"
    if ! (cd "$sdir/debs" && apt-get "${apt_opts[@]}" -qq download "$pkg=$uml_src_version") >"$tmp/apt-download.log" 2>&1; then
        cat "$tmp/apt-download.log" >&2
        rm -rf "$sdir"
        fail 1 "apt-get download of $pkg $uml_src_version failed (above)"
    fi
    dpkg-deb --fsys-tarfile "$sdir"/debs/*.deb | tar -x -O "./usr/src/$pkg.tar.xz" >"$uml_src_tar" ||
        fail 1 "no usr/src/$pkg.tar.xz in the $pkg package"
    rm -rf "$sdir/debs"
    touch "$sdir/complete"
    for old in "$cache/uml/src/${pkg}"_*/; do
        old=${old%/}
        [ "$old" = "$sdir" ] || rm -rf "$old"
    done
}

# uml_config_apply TREE FRAGMENT: `make ARCH=um defconfig`, FRAGMENT's options (CONFIG_X=y|n),
# olddefconfig; fails naming an option the kernel did not take (a missing dependency).
uml_config_apply() {
    local tree=$1 frag=$2 line opt val
    make -C "$tree" ARCH=um defconfig >"$tmp/uml-config.log" 2>&1 || { cat "$tmp/uml-config.log" >&2; fail 1 "make ARCH=um defconfig failed (above)"; }
    while IFS= read -r line; do
        [[ $line =~ ^CONFIG_([A-Z0-9_]+)=([yn])$ ]] || continue
        opt=${BASH_REMATCH[1]}
        val=${BASH_REMATCH[2]}
        if [ "$val" = y ]; then "$tree/scripts/config" --file "$tree/.config" --enable "$opt"; else "$tree/scripts/config" --file "$tree/.config" --disable "$opt"; fi
    done <"$frag"
    make -C "$tree" ARCH=um olddefconfig >>"$tmp/uml-config.log" 2>&1 || { cat "$tmp/uml-config.log" >&2; fail 1 "make ARCH=um olddefconfig failed (above)"; }
    while IFS= read -r line; do
        [[ $line =~ ^CONFIG_([A-Z0-9_]+)=([yn])$ ]] || continue
        opt=${BASH_REMATCH[1]}
        val=${BASH_REMATCH[2]}
        if [ "$val" = y ]; then
            grep -qx "CONFIG_$opt=y" "$tree/.config" || fail 1 "the UML kernel config did not take CONFIG_$opt=y (a dependency is missing; see $frag)"
        else
            ! grep -qx "CONFIG_$opt=y" "$tree/.config" || fail 1 "the UML kernel config kept CONFIG_$opt=y though $frag turns it off"
        fi
    done <"$frag"
}

# uml_kernel DIST CACHE FRAGMENT: the UML kernel of DIST's linux-source with FRAGMENT's options
# and the uml-*.patch files beside FRAGMENT, built unless CACHE/uml/<key> holds it. Sets `uml_tree` (the built tree: linux, .config,
# Module.symvers), `uml_key`, `uml_src_version`, `uml_pkg`, `uml_built` (1 when built now) and
# `uml_build_s` (the build's seconds, from the cache's build-seconds when it was cached).
uml_kernel() {
    local dist=$1 cache=$2 frag=$3 cc_ver kdir t0 old p
    local -a patches
    uml_pkg=$(uml_source_package "$dist")
    uml_source_version "$dist" "$cache" "$uml_pkg"
    cc_ver=$(gcc --version 2>/dev/null | head -n1)
    mapfile -t patches < <(find "$(dirname "$frag")" -maxdepth 1 -name 'uml-*.patch' | LC_ALL=C sort)
    uml_key=$(printf '%s\n%s\n%s\n%s\n' "$uml_pkg $uml_src_version" "$cc_ver" "$(cat "$frag")" \
        "$(cat "${patches[@]+"${patches[@]}"}" /dev/null)" | sha256sum | cut -c1-16)
    kdir="$cache/uml/$uml_key"
    uml_tree="$kdir/${uml_pkg}"
    uml_built=0
    if [ -f "$kdir/complete" ] && [ -x "$uml_tree/linux" ]; then
        uml_build_s=$(cat "$kdir/build-seconds" 2>/dev/null || echo null)
        return 0
    fi
    t0=$(now)
    uml_source_fetch "$dist" "$cache" "$uml_pkg"
    # shellcheck disable=SC2034 # step: named by fail (lib/common.sh)
    step="uml-kernel-build"
    rm -rf "$kdir"
    mkdir -p "$kdir"
    say "extracting $uml_pkg $uml_src_version into $kdir"
    tar -C "$kdir" -xJf "$uml_src_tar" || fail 1 "cannot extract $uml_src_tar"
    [ -d "$uml_tree" ] || fail 1 "$uml_src_tar has no $uml_pkg/ directory"
    for p in "${patches[@]+"${patches[@]}"}"; do
        patch -d "$uml_tree" -p1 --forward --quiet <"$p" >"$tmp/uml-patch.log" 2>&1 ||
            { cat "$tmp/uml-patch.log" >&2; fail 1 "cannot apply $p to $uml_pkg $uml_src_version (above)"; }
    done
    uml_config_apply "$uml_tree" "$frag"
    say "building the UML kernel (make ARCH=um -j$(nproc); log: $kdir/build.log; several minutes)"
    if ! make -C "$uml_tree" ARCH=um -j"$(nproc)" >"$kdir/build.log" 2>&1; then
        tail -n 40 "$kdir/build.log" >&2
        fail 1 "the UML kernel build failed (log: $kdir/build.log)"
    fi
    if [ ! -x "$uml_tree/linux" ] || [ ! -f "$uml_tree/Module.symvers" ]; then fail 1 "the UML kernel build made no linux or Module.symvers (log: $kdir/build.log)"; fi
    uml_build_s=$(elapsed "$t0")
    printf '%s\n' "$uml_build_s" >"$kdir/build-seconds"
    printf '%s %s\n' "$uml_pkg" "$uml_src_version" >"$kdir/source"
    touch "$kdir/complete"
    # shellcheck disable=SC2034 # a result, read by the caller
    uml_built=1
    # Older keys (another source version or config) are not used again.
    for old in "$cache/uml"/*/; do
        old=${old%/}
        case "$(basename "$old")" in src | apt | "$uml_key") ;; *) rm -rf "$old" ;; esac
    done
}
