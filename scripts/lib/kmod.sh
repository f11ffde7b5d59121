# shellcheck shell=bash
# Builds hookbench.ko (kernels/kmod/) out of tree, sourced after lib/common.sh: scripts/qemu-rig
# builds it against a downloaded Debian kernel (on the host, or in a build chroot of the kernel's
# release), scripts/run --build-kmod against the running kernel; both through `kmod_build`, so
# the module that CI boots is built the way a developer builds it.

# kmod_compiler HDIR: prints the compiler that built the kernel of headers HDIR (gcc-NN: the CC of
# its .kernelvariables, else the start of CONFIG_CC_VERSION_TEXT); nothing when neither says.
kmod_compiler() {
    local cc
    cc=$(sed -n 's/^CC = .*\(gcc-[0-9][0-9]*\)[[:space:]]*$/\1/p' "$1/.kernelvariables" 2>/dev/null | head -n1 || true)
    if [ -z "$cc" ]; then
        cc=$(sed -n 's/^CONFIG_CC_VERSION_TEXT="\(gcc-[0-9][0-9]*\) .*/\1/p' "$1/.config" 2>/dev/null | head -n1 || true)
    fi
    printf '%s' "$cc"
}

# kmod_host_problem HDIR [CC]: prints why this host cannot build against headers HDIR (the
# kernel's compiler CC missing, no kbuild fixdep, kbuild's programs not running with the host's C
# library); nothing when it can.
kmod_host_problem() {
    local hdir=$1 cc=${2:-} fixdep=$1/scripts/basic/fixdep out
    if [ -n "$cc" ] && ! command -v "$cc" >/dev/null 2>&1; then
        printf 'the kernel was built with %s, which this host lacks' "$cc"
        return 0
    fi
    if [ ! -f "$fixdep" ]; then
        printf 'no kbuild fixdep in the headers'
        return 0
    fi
    out=$("$fixdep" 2>&1 || true)
    if grep -q -e 'not found' -e 'No such file' <<<"$out"; then
        printf "kbuild's programs need a newer C library than the host's"
    fi
}

# kmod_copy_src SRC DEST: copies the module source without build products (a developer's in-tree
# build, the Rust crate's target/).
kmod_copy_src() {
    tar -C "$1" --exclude=./target --exclude=.git --exclude='*.o' --exclude='*.ko' \
        --exclude='*.mod' --exclude='*.mod.c' --exclude='.*.cmd' --exclude=Module.symvers \
        --exclude=modules.order -cf - . | tar -C "$2" -xf -
}

# kmod_build SRC WORK HDIR LOG [ROOT]: copies SRC to WORK/kmod and runs kbuild's `modules` there
# against headers HDIR; with ROOT, inside `chroot ROOT` (WORK and HDIR then lie under ROOT). LOG
# gets make's output with WORK's path removed. Sets `kmod_status` (make's status), `kmod_kos`
# (the .ko files built) and `kmod_warnings` (the compiler's warning lines); prints the log's
# tail on a failure and the warnings, and leaves judging them to the caller.
kmod_build() {
    local src=$1 work=$2 hdir=$3 log=$4 root=${5:-} bsrc raw seen
    bsrc="$work/kmod"
    raw="$work/kmod-build.raw.log"
    mkdir -p "$bsrc"
    kmod_copy_src "$src" "$bsrc"
    kmod_status=0
    if [ -z "$root" ]; then
        seen=$work
        make -C "$hdir" M="$bsrc" -j"$(nproc)" modules >"$raw" 2>&1 || kmod_status=$?
    else
        seen=${work#"$root"}
        chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
            make -C "${hdir#"$root"}" M="${bsrc#"$root"}" -j"$(nproc)" modules >"$raw" 2>&1 || kmod_status=$?
    fi
    sed -e "s#$seen/##g" "$raw" >"$log"
    kmod_warnings=$(grep -E -i -e '(^|[^a-z])warning:' "$log" || true)
    mapfile -t kmod_kos < <(find "$bsrc" -name '*.ko' -type f)
    if [ "$kmod_status" -ne 0 ]; then
        tail -n 40 "$log" >&2
    elif [ -n "$kmod_warnings" ]; then
        printf '%s\n' "$kmod_warnings" >&2
    fi
}

# kmod_buildroot DIST CC: a minimal Debian chroot of DIST with make, the kernel's compiler CC and
# kbuild's libraries (debootstrap --variant=minbase, made once under $cache/buildroot), holding
# the headers of kernel `kernel_rel` from `kdir` (lib/kernel.sh). Sets `kmod_br`, its path. Needs
# root, `cache`, `tmp` and `out` (debootstrap.log goes there when it fails); `debootstrap_tmp`
# names the chroot being made, for the caller's clean-up.
kmod_buildroot() {
    local dist=$1 cc=$2 br have missing_pkg=0 p inc deb want
    : "${cache:?}" "${tmp:?}" "${out:?}" "${kdir:?}" "${kroot:?}" "${kheaders:?}" "${kernel_rel:?}"
    : "${keyring:?lib/kernel.sh first}" "${mirror:?lib/kernel.sh first}"
    ensure_packages "to make a $dist build chroot" debootstrap:debootstrap
    read -r -a want <<<"$({ printf '%s\n' make "$cc"; tr ' ' '\n' <"$kdir/build-deps"; } | grep . | sort -u | tr '\n' ' ')"
    br="$cache/buildroot/$dist"
    have=$(cat "$br/.hookbench-rig-packages" 2>/dev/null || true)
    for p in "${want[@]}"; do grep -qx "$p" <<<"$have" || missing_pkg=1; done
    if [ "$missing_pkg" -eq 1 ]; then
        step="build-chroot"
        say "making a $dist build chroot with ${want[*]} (debootstrap --variant=minbase; once, cached in $br)"
        debootstrap_tmp="$br.tmp"
        safe_rm "$debootstrap_tmp"
        safe_rm "$br"
        mkdir -p "$(dirname "$br")"
        inc=$(IFS=,; echo "${want[*]}")
        if ! debootstrap --variant=minbase --include="$inc" --keyring="$keyring" "$dist" "$debootstrap_tmp" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
            tail -n 30 "$tmp/debootstrap.log" >&2
            cp "$tmp/debootstrap.log" "$out/debootstrap.log"
            fail 1 "debootstrap of a $dist chroot failed (log: $out/debootstrap.log)"
        fi
        umount_under "$debootstrap_tmp" || fail 1 "cannot unmount what debootstrap mounted under $debootstrap_tmp"
        rm -rf "$debootstrap_tmp/var/cache/apt/archives"/*.deb
        printf '%s\n' "${want[@]}" >"$debootstrap_tmp/.hookbench-rig-packages"
        mv "$debootstrap_tmp" "$br"
        debootstrap_tmp=
        # shellcheck disable=SC2034 # step: named by fail (lib/common.sh)
        step="module-build"
    fi
    if [ ! -f "$br/.hookbench-rig-headers-$kernel_rel" ]; then
        rm -rf "$br"/usr/src/linux-headers-* "$br"/usr/lib/linux-kbuild-* "$br"/.hookbench-rig-headers-*
        for deb in "$kdir/debs"/*.deb; do
            case "$(basename "$deb")" in linux-*) dpkg-deb -x "$deb" "$br" || fail 1 "cannot extract $deb into $br" ;; esac
        done
        cp "$kroot/$kheaders/Makefile" "$br/$kheaders/Makefile"
        touch "$br/.hookbench-rig-headers-$kernel_rel"
    fi
    # shellcheck disable=SC2034 # the result, read by the caller
    kmod_br=$br
}

# kmod_build_host SRC DEST WORK: builds SRC against the running kernel's build directory (KDIR
# when set, else /lib/modules/$(uname -r)/build) in scratch directory WORK; DEST gets the .ko
# files and kmod-build.log. Fails (status 1) saying what is missing: the build directory, make,
# the kernel's compiler (installed with apt-get as root), kbuild's programs.
kmod_build_host() {
    local src=$1 dest=$2 work=$3 hdir cc why_not
    hdir=${KDIR:-/lib/modules/$(uname -r)/build}
    if [ ! -f "$hdir/Makefile" ]; then
        if [ -n "${KDIR:-}" ]; then
            fail 1 "KDIR=$hdir is not a kernel build directory (no Makefile there)"
        fi
        fail 1 "no build directory for the running kernel $(uname -r): $hdir is missing; install its headers (Debian, Ubuntu: apt-get install linux-headers-$(uname -r)) or set KDIR to the kernel's build tree"
    fi
    cc=$(kmod_compiler "$hdir")
    ensure_packages "to build the module against $hdir" make:make "${cc:-gcc}:${cc:-gcc}"
    why_not=$(kmod_host_problem "$hdir" "$cc")
    case "$why_not" in
        '') ;;
        *fixdep*) fail 1 "cannot build the module against $hdir: $why_not (in a kernel tree: make modules_prepare)" ;;
        *) fail 1 "cannot build the module against $hdir: $why_not" ;;
    esac
    mkdir -p "$dest"
    say "building $src against $hdir (${cc:-gcc})"
    kmod_build "$src" "$work" "$hdir" "$dest/kmod-build.log"
    if [ "$kmod_status" -ne 0 ]; then
        fail 1 "the module build against $hdir failed (make status $kmod_status; log: $dest/kmod-build.log)"
    fi
    [ "${#kmod_kos[@]}" -gt 0 ] || fail 1 "the module build against $hdir produced no .ko (log: $dest/kmod-build.log)"
    if [ -n "$kmod_warnings" ]; then say "warning: the module build printed warnings (above)"; fi
    rm -f "$dest"/*.ko
    cp "${kmod_kos[@]}" "$dest/"
}
