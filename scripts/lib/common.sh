# shellcheck shell=bash
# Helpers shared by scripts/qemu-rig and scripts/run (sourced, never run): messages and failures
# that name the step, timing, unmounting and removing a tree that held a chroot, and installing
# missing host packages with apt-get.
#
# The sourcing script sets `prog` (the prefix of every message) and keeps `step` (the step being
# run, named by every failure) up to date; it may define `on_fail STATUS`, which `fail` calls
# before exiting (the rig writes rig.json there). Optional: `tmp`, the script's temporary
# directory (scratch files go there when set), and `path_hint`, what to check when a command is
# still missing after its package was installed (default: PATH).

: "${prog:=hookbench}"
: "${step:=start}"
: "${path_hint:=PATH}"
is_root=0
[ "$(id -u)" -eq 0 ] && is_root=1

# say MESSAGE...: one line on stderr, prefixed with the script's name.
say() { printf '%s: %s\n' "$prog" "$*" >&2; }

# fail STATUS MESSAGE...: says which step failed and why, runs the script's on_fail, exits STATUS.
fail() {
    local status=$1
    shift
    say "FAILED at step '$step': $*"
    if declare -F on_fail >/dev/null; then on_fail "$status"; fi
    exit "$status"
}

# now: the current time in seconds, for `elapsed`.
now() { printf '%s' "$EPOCHREALTIME"; }

# elapsed START: seconds since START (from `now`), one decimal.
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# umount_under DIR: unmounts whatever is mounted under DIR (debootstrap mounts proc and sys in its
# target), deepest first; returns non-zero when something stays mounted.
umount_under() {
    local dir m
    dir=$(realpath -m "$1")
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
        while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
        done
    ! awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { f = 1 } END { exit !f }' /proc/self/mounts
}

# safe_rm DIR: removes a tree that may have held a chroot, never through a mount point.
safe_rm() {
    [ -e "$1" ] || return 0
    if ! umount_under "$1"; then
        say "warning: something is still mounted under $1; not removing it"
        return 0
    fi
    rm -rf --one-file-system "$1"
}

# missing_packages CMD:PACKAGE...: prints the packages whose command (or /file) is missing.
missing_packages() {
    local spec c p
    for spec in "$@"; do
        c=${spec%%:*}
        p=${spec#*:}
        if [[ $c == /* ]]; then [ -e "$c" ] && continue; else command -v "$c" >/dev/null 2>&1 && continue; fi
        printf '%s\n' "$p"
    done | sort -u
}

# ensure_packages WHY CMD:PACKAGE...: installs the packages whose command is missing (apt-get, as
# root; it waits for apt's locks, so a second script installing at the same time does not fail);
# as another user it fails with the exact command to run.
ensure_packages() {
    local why=$1 missing log
    shift
    missing=$(missing_packages "$@" | tr '\n' ' ')
    missing=${missing% }
    [ -n "$missing" ] || return 0
    if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-deb >/dev/null 2>&1; then
        fail 1 "missing $missing ($why), and this host has no apt-get/dpkg-deb: $prog needs a Debian or Ubuntu host"
    fi
    if [ "$is_root" -ne 1 ]; then
        fail 1 "missing packages ($why); run: sudo apt-get update && sudo apt-get install -y --no-install-recommends $missing"
    fi
    say "installing $missing ($why)"
    log=$(mktemp "${tmp:-${TMPDIR:-/tmp}}/apt-install.XXXXXX")
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            --no-install-recommends $missing >/dev/null; } 2>"$log"; then
        cat "$log" >&2
        rm -f "$log"
        fail 1 "could not install $missing with apt-get (see above)"
    fi
    rm -f "$log"
    missing=$(missing_packages "$@" | tr '\n' ' ')
    [ -z "$missing" ] || fail 1 "installed the packages but still missing: ${missing% } (check $path_hint)"
}
