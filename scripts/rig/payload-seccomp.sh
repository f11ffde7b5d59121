#!/bin/sh
# Kernel-matrix payload of scripts/qemu-rig (runs in the guest, busybox sh, as root, from /out).
#
# Claim 7 on the guest's kernel: `hookbench doctor` into /out/doctor.txt, then the kernel
# backend's `seccomp` suite (smoke profile) into /out itself, so the rig's DIR/results.json is
# that run and `hookbench merge` of several kernels' DIRs sets the action cache's effect side by
# side. Loads no module (use it with --no-kmod). Exits non-zero when the run fails.
out=${1:-${HOOKBENCH_OUT:-/out}}


say() { echo "payload: $*"; }

say "kernel $(uname -r), accel ${HOOKBENCH_RIG_ACCEL:-unknown}, emulated ${HOOKBENCH_EMULATED:-unknown}"
hookbench doctor >"$out/doctor.txt" 2>&1
say "doctor: status $? (doctor.txt)"

# hookbench runs only into a new or empty directory and /out holds payload.log: run into a fresh
# one, then move its files up.
dir="$out/.run.$$"
start=$(cut -d' ' -f1 /proc/uptime)
hookbench run --backend kernel --suite seccomp --profile smoke --no-progress --out "$dir"
status=$?
secs=$(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')
say "seccomp run: status $status ($secs s)"
for f in "$dir"/* "$dir"/.[!.]*; do
    [ -e "$f" ] || continue
    if [ -e "$out/${f##*/}" ]; then
        say "cannot move $f up: $out/${f##*/} exists"
        exit 1
    fi
    mv "$f" "$out/" || exit 1
done
rmdir "$dir" 2>/dev/null
exit "$status"
