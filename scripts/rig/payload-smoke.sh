#!/bin/sh
# Default payload of scripts/qemu-rig (runs in the guest, busybox sh, as root, from /out).
#
# The rig's smoke test: load hookbench.ko, run the module's in-guest tests (`hookbench
# kmod-check`, HOOKBENCH_RIG_FUZZ_SECS seconds of random ioctls, default 10), the kmod backend's
# smoke run into /out itself (so the rig's DIR/results.json is the kmod run; hookbench runs only
# into a new or empty directory and /out already holds payload.log, so it runs into a fresh one
# whose files then move up), the kernel backend's BPF LSM smoke run into /out/lsm, and unload the
# module. Exits non-zero when any step fails. Also /out/doctor.txt.
out=${1:-${HOOKBENCH_OUT:-/out}}
kmod=${HOOKBENCH_KMOD:-/lib/hookbench/hookbench.ko}
failed=""
loaded=0

say() { echo "payload: $*"; }
run() { # run NAME COMMAND...: runs a step, records a failure
    name=$1
    shift
    say "$name: $*"
    start=$(cut -d' ' -f1 /proc/uptime)
    "$@"
    status=$?
    secs=$(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN { printf "%.1f", b - a }')
    if [ "$status" -eq 0 ]; then
        say "$name: ok ($secs s)"
    else
        say "$name: FAILED with status $status ($secs s)"
        failed="$failed $name"
    fi
    return "$status"
}

# run_into_out COMMAND...: runs `COMMAND --out DIR` with a new DIR, then moves DIR's files into
# $out; fails when the command or a move fails, or a name is taken.
# shellcheck disable=SC2317 # called through run
run_into_out() {
    dir="$out/.run.$$"
    "$@" --out "$dir" || return
    for f in "$dir"/* "$dir"/.[!.]*; do
        [ -e "$f" ] || continue
        if [ -e "$out/${f##*/}" ]; then
            say "cannot move $f up: $out/${f##*/} exists"
            return 1
        fi
        mv "$f" "$out/" || return
    done
    rmdir "$dir"
}

say "kernel $(uname -r), accel ${HOOKBENCH_RIG_ACCEL:-unknown}, emulated ${HOOKBENCH_EMULATED:-unknown}"
run doctor sh -c "hookbench doctor >'$out/doctor.txt' 2>&1; status=\$?; cat '$out/doctor.txt'; exit \$status"

# Every step is required: a missing module, subcommand, backend or suite fails the payload
# (it would otherwise pass without testing anything).
if [ ! -f "$kmod" ]; then
    say "insmod: no $kmod in this initramfs (the module build made no hookbench.ko)"
    failed="$failed insmod"
elif run insmod insmod "$kmod"; then
    loaded=1
fi

if [ "$loaded" -eq 1 ]; then
    run kmod-check hookbench kmod-check --fuzz-secs "${HOOKBENCH_RIG_FUZZ_SECS:-10}"
    # The kmod backend's smoke run goes to /out itself, so DIR/results.json is the kmod run.
    run kmod-smoke run_into_out hookbench run --backend kmod --profile smoke --no-progress
fi

# The kernel backend's BPF LSM mechanisms (trampolines are allowed on this kernel).
run lsm-smoke hookbench run --backend kernel --suite lsm --profile smoke --no-progress --out "$out/lsm"

if [ "$loaded" -eq 1 ]; then
    # rmmod fails while any /dev/hookbench session is open: every worker's must be gone.
    run rmmod rmmod hookbench
fi

if [ -n "$failed" ]; then
    say "failed steps:$failed"
    exit 1
fi
say "all steps passed"
exit 0
