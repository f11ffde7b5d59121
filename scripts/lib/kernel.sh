# shellcheck shell=bash
# Fetches a Debian distribution kernel for scripts/qemu-rig (sourced after lib/common.sh): the
# newest image, headers, kbuild and busybox-static of a release, downloaded without installing
# them and without touching the host's apt configuration (apt-get download with a private sources
# list and state directory, then dpkg-deb -x), cached under the rig's cache directory.
#
# Needs `tmp` (the script's temporary directory, for apt's logs) and `is_root` (lib/common.sh).
# HOOKBENCH_RIG_MIRROR and HOOKBENCH_RIG_SECURITY_MIRROR ("none" to skip) choose the archive.

keyring=/usr/share/keyrings/debian-archive-keyring.gpg
mirror="${HOOKBENCH_RIG_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${HOOKBENCH_RIG_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

# debian_apt_setup DIST APTDIR: writes DIST's private sources list under APTDIR and sets
# `apt_opts`, the apt-get/apt-cache options that use it and nothing of the host's apt state.
debian_apt_setup() {
    local dist=$1 aptdir=$2
    : "${is_root:?lib/common.sh first}"
    mkdir -p "$aptdir/state/lists/partial" "$aptdir/cache/archives/partial"
    {
        echo "deb [signed-by=$keyring] $mirror $dist main"
        if [ "$security_mirror" != none ]; then echo "deb [signed-by=$keyring] $security_mirror $dist-security main"; fi
    } >"$aptdir/sources.list"
    apt_opts=(
        -o "Dir::Etc::SourceList=$aptdir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
        -o "Dir::State=$aptdir/state" -o "Dir::Cache=$aptdir/cache" -o Dir::State::status=/dev/null
        -o APT::Architecture=amd64 -o APT::Architectures=amd64
        -o Acquire::Retries=2 -o Acquire::http::Timeout=30 -o Acquire::Languages=none
    )
    if [ "$is_root" -eq 1 ]; then apt_opts+=(-o APT::Sandbox::User=root); fi
}

# debian_kernel_release DIST CACHE: sets `kernel_rel` to the release linux-image-amd64 depends on
# in a fresh index, else (archive unreachable) to DIST's kernel cached in CACHE, else fails.
debian_kernel_release() {
    local dist=$1 cache=$2 kbase=$2/kernels/$1 meta
    : "${tmp:?needs the temporary directory}"
    if apt-get "${apt_opts[@]}" -qq update >"$tmp/apt-update.log" 2>&1 && ! grep -q '^[WE]:' "$tmp/apt-update.log"; then
        meta=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
        if [ -n "$meta" ]; then
            kernel_rel=${meta#linux-image-}
            return 0
        fi
    fi
    cat "$tmp/apt-update.log" >&2
    if [ -f "$kbase/current" ] && [ -f "$kbase/$(cat "$kbase/current")/complete" ]; then
        kernel_rel=$(cat "$kbase/current")
        say "warning: could not refresh the $dist package index from $mirror (above); using the cached kernel $kernel_rel"
    else
        fail 1 "could not download the $dist package index from $mirror (above; set HOOKBENCH_RIG_MIRROR to a reachable Debian mirror) and no kernel is cached in $cache"
    fi
}

# debian_kernel_download DIST KDIR: downloads kernel `kernel_rel` of DIST with busybox-static and
# extracts them into KDIR (made in KDIR.tmp, moved into place when complete): root/ (the image's
# /boot, the headers, kbuild, busybox), version (the headers' package version) and build-deps
# (what a build chroot needs besides the kernel packages).
debian_kernel_download() {
    local dist=$1 kdir=$2 hdr_deps common kbuild build_deps deb mk hdr_deb
    say "downloading $dist kernel $kernel_rel (image, headers, kbuild, busybox-static) from $mirror"
    hdr_deps=$(apt-cache "${apt_opts[@]}" depends "linux-headers-$kernel_rel" 2>/dev/null |
        awk '$1 == "Depends:" { print $2 }')
    common=$(grep -m1 '^linux-headers-.*-common' <<<"$hdr_deps" || true)
    kbuild=$(grep -m1 '^linux-kbuild-' <<<"$hdr_deps" || true)
    if [ -z "$common" ] || [ -z "$kbuild" ]; then
        fail 1 "cannot read linux-headers-$kernel_rel's dependencies from the $dist index (common: '$common', kbuild: '$kbuild')"
    fi
    # What a build chroot needs besides the kernel packages: the compiler, make and kbuild's libraries.
    build_deps=$( { printf '%s\n' "$hdr_deps"; apt-cache "${apt_opts[@]}" depends "$kbuild" 2>/dev/null | awk '$1 == "Depends:" { print $2 }'; } |
        grep -v -e '^linux-' -e '^<' | sort -u | tr '\n' ' ')
    rm -rf "$kdir.tmp"
    mkdir -p "$kdir.tmp/debs" "$kdir.tmp/root"
    if ! (cd "$kdir.tmp/debs" && apt-get "${apt_opts[@]}" -qq download "linux-image-$kernel_rel" \
        "linux-headers-$kernel_rel" "$common" "$kbuild" busybox-static) >"$tmp/apt-download.log" 2>&1; then
        cat "$tmp/apt-download.log" >&2
        rm -rf "$kdir.tmp"
        fail 1 "apt-get download of the $dist kernel packages failed (above)"
    fi
    # shellcheck disable=SC2034 # step: named by fail (lib/common.sh)
    step="kernel-extract"
    for deb in "$kdir.tmp/debs"/*.deb; do
        case "$(basename "$deb")" in
            linux-image-*) dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$kdir.tmp/root" --wildcards './boot/*' ;;
            *) dpkg-deb -x "$deb" "$kdir.tmp/root" ;;
        esac || fail 1 "cannot extract $deb"
    done
    rm -f "$kdir.tmp/debs"/linux-image-*.deb
    # The headers' Makefile includes the common headers by absolute path: make it relative to
    # itself so the tree works wherever it is extracted (here, or inside a build chroot).
    mk="$kdir.tmp/root/usr/src/linux-headers-$kernel_rel/Makefile"
    [ -f "$mk" ] || fail 1 "linux-headers-$kernel_rel has no Makefile at usr/src/linux-headers-$kernel_rel"
    # shellcheck disable=SC2016 # $(...) is make syntax, written literally
    sed -i -E 's#^include /usr/src/([^/]+)/Makefile$#include $(dir $(lastword $(MAKEFILE_LIST)))../\1/Makefile#' "$mk"
    grep -q 'MAKEFILE_LIST' "$mk" || fail 1 "unexpected $mk: $(head -c 200 "$mk")"
    hdr_deb=("$kdir.tmp/debs/linux-headers-${kernel_rel}_"*.deb)
    dpkg-deb -f "${hdr_deb[0]}" Version >"$kdir.tmp/version"
    printf '%s\n' "$build_deps" >"$kdir.tmp/build-deps"
    rm -rf "$kdir"
    mv "$kdir.tmp" "$kdir"
    touch "$kdir/complete"
}

# kernel_fetch DIST CACHE: the newest kernel of DIST, downloaded into CACHE unless it is there
# already (only the newest kernel of each distribution is kept). Sets `kernel_rel`,
# `kernel_version` (package version), `kdir` (its cache directory, with build-deps), `kroot` (the
# extracted tree), `kheaders` (the headers' path inside kroot), `vmlinuz` and `busybox`.
kernel_fetch() {
    local dist=$1 cache=$2 kbase old b
    debian_apt_setup "$dist" "$cache/apt/$dist"
    kbase="$cache/kernels/$dist"
    debian_kernel_release "$dist" "$cache"
    kdir="$kbase/$kernel_rel"
    kroot="$kdir/root"
    # shellcheck disable=SC2034 # a result, read by the caller
    kheaders="usr/src/linux-headers-$kernel_rel"
    if [ ! -f "$kdir/complete" ]; then
        debian_kernel_download "$dist" "$kdir"
        for old in "$kbase"/*/; do
            old=${old%/}
            [ "$old" = "$kdir" ] || rm -rf "$old"
        done
    fi
    echo "$kernel_rel" >"$kbase/current"
    # shellcheck disable=SC2034 # a result, read by the caller
    kernel_version=$(cat "$kdir/version")
    vmlinuz="$kroot/boot/vmlinuz-$kernel_rel"
    [ -f "$vmlinuz" ] || fail 1 "no $vmlinuz in the extracted image package"
    busybox=
    for b in "$kroot/bin/busybox" "$kroot/usr/bin/busybox"; do
        if [ -f "$b" ] && [ -x "$b" ]; then busybox=$b; break; fi
    done
    [ -n "$busybox" ] || fail 1 "no bin/busybox in the extracted busybox-static package"
}
