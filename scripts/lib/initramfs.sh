# shellcheck shell=bash disable=SC2154 # the sourcing rig sets tmp, busybox, hookbench_bin, ...
# Makes the rigs' initramfs (sourced after lib/common.sh by scripts/qemu-rig and scripts/uml-rig):
# builds hookbench (unless given), then packs busybox-static with its applets, hookbench and the
# libraries it links, the module, scripts/rig/init as /init, the payload, the helpers payloads
# source (scripts/rig/payload-lib.sh as /rig/payload-lib.sh) and --include files with cpio and
# gzip.
#
# Reads the rig's `root`, `tmp`, `busybox`, `hookbench_bin`, `rigdir`, `payload`, `includes`,
# `kernel` and `kernel_rel`; the module goes to $tmp/initramfs/lib/hookbench first (the rig's
# build step).

# build_hookbench: the release binary (cargo), unless --hookbench gave one.
build_hookbench() {
    [ -z "$hookbench_bin" ] || return 0
    # shellcheck source=SCRIPTDIR/../deps.sh
    . "$root/scripts/deps.sh"
    hookbench_deps "" || fail 1 "the packages hookbench's build needs are missing (above)"
    say "building hookbench (cargo build --release --locked -p hookbench)"
    if ! cargo build --release --locked --manifest-path "$root/Cargo.toml" -p hookbench \
        --message-format=json-render-diagnostics >"$tmp/cargo.json" 2>"$tmp/cargo.log"; then
        tail -n 40 "$tmp/cargo.log" >&2
        fail 1 "cargo build of hookbench failed (above)"
    fi
    hookbench_bin=$(grep -o '"executable":"[^"]*/hookbench"' "$tmp/cargo.json" | tail -n1 | sed 's/^"executable":"//; s/"$//')
    if [ -z "$hookbench_bin" ] || [ ! -x "$hookbench_bin" ]; then fail 1 "cargo built no hookbench executable"; fi
}

# copy_libs IR FILE: copies every library ldd lists for FILE (and the loader) into initramfs IR.
copy_libs() {
    local ir=$1 f=$2 lib rest
    if ldd "$f" >/dev/null 2>&1; then
        ldd "$f" | awk '/=> not found/ { print "MISSING " $1; next } /=> \// { print $3; next } /^[[:space:]]*\// { print $1 }' |
            while read -r lib rest; do
                if [ "$lib" = MISSING ]; then
                    say "warning: $f needs $rest, which ldd cannot find"
                    continue
                fi
                [ -e "$ir$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$ir$lib"
            done
    fi
}

# make_initramfs RIG: busybox, hookbench and its libraries, the module, /init, the payload, its
# helpers and the --include files, packed into $tmp/initramfs.gz; RIG names the rig in
# /etc/os-release.
make_initramfs() {
    local rig=$1 ir="$tmp/initramfs" applet inc name f
    mkdir -p "$ir"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,tmp,run,root,out,rig/files,lib/hookbench}
    install -m 0755 "$busybox" "$ir/bin/busybox"
    "$ir/bin/busybox" --list-full | while read -r applet; do
        [ -e "$ir/$applet" ] || [ -L "$ir/$applet" ] || ln -s /bin/busybox "$ir/$applet"
    done
    [ -L "$ir/bin/sh" ] || fail 1 "busybox has no sh applet"
    install -m 0755 "$hookbench_bin" "$ir/usr/local/bin/hookbench"
    copy_libs "$ir" "$hookbench_bin"
    # The release profile keeps debug info (over 20 MB): the guest needs symbols, not line tables.
    if command -v strip >/dev/null 2>&1; then strip --strip-debug "$ir/usr/local/bin/hookbench"; fi
    install -m 0755 "$rigdir/init" "$ir/init"
    install -m 0644 "$payload" "$ir/rig/payload"
    install -m 0644 "$rigdir/payload-lib.sh" "$ir/rig/payload-lib.sh"
    for inc in "${includes[@]+"${includes[@]}"}"; do
        name=$(basename "$inc")
        cp -a "$inc" "$ir/rig/files/$name"
        while IFS= read -r -d '' f; do
            if [ -x "$f" ] && head -c 4 "$f" | grep -q 'ELF'; then copy_libs "$ir" "$f"; fi
        done < <(find "$ir/rig/files/$name" -type f -print0)
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ir/etc/passwd"
    printf 'root:x:0:\n' >"$ir/etc/group"
    printf 'hookbench-rig\n' >"$ir/etc/hostname"
    printf 'PRETTY_NAME="hookbench %s guest (%s kernel %s, host userspace)"\nNAME="hookbench-rig"\nID=hookbench-rig\n' \
        "$rig" "$kernel" "$kernel_rel" >"$ir/etc/os-release"
    (cd "$ir" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$tmp/initramfs.gz" ||
        fail 1 "cannot pack the initramfs"
    say "initramfs: $(du -h "$tmp/initramfs.gz" | cut -f1) (busybox, hookbench, $(find "$ir/lib/hookbench" -name '*.ko' | wc -l) module(s), payload $(basename "$payload"))"
}
