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
# shellcheck source=SCRIPTDIR/payload-lib.sh
. "$(dirname "$0")/payload-lib.sh"

say "kernel $(uname -r), accel ${HOOKBENCH_RIG_ACCEL:-unknown}, emulated ${HOOKBENCH_EMULATED:-unknown}"
doctor_step

# Every step is required: a missing module, subcommand, backend or suite fails the payload
# (it would otherwise pass without testing anything).
insmod_step

if [ "$loaded" -eq 1 ]; then
    run kmod-check hookbench kmod-check --fuzz-secs "${HOOKBENCH_RIG_FUZZ_SECS:-10}"
    # The kmod backend's smoke run goes to /out itself, so DIR/results.json is the kmod run.
    run kmod-smoke run_into_out hookbench run --backend kmod --profile smoke --no-progress
fi

# The kernel backend's BPF LSM mechanisms (trampolines are allowed on this kernel).
run lsm-smoke hookbench run --backend kernel --suite lsm --profile smoke --no-progress --out "$out/lsm"

rmmod_step
finish
