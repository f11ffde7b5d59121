#!/bin/sh
# Kernel-matrix payload of scripts/qemu-rig (runs in the guest, busybox sh, as root, from /out).
#
# Claim 7 on the guest's kernel: `hookbench doctor` into /out/doctor.txt, then the kernel
# backend's `seccomp` suite (smoke profile) into /out itself, so the rig's DIR/results.json is
# that run and `hookbench merge` of several kernels' DIRs sets the action cache's effect side by
# side. Loads no module (use it with --no-kmod). Exits non-zero when the run fails (a failing
# doctor is only logged).
out=${1:-${HOOKBENCH_OUT:-/out}}
# shellcheck source=SCRIPTDIR/payload-lib.sh
. "$(dirname "$0")/payload-lib.sh"

say "kernel $(uname -r), accel ${HOOKBENCH_RIG_ACCEL:-unknown}, emulated ${HOOKBENCH_EMULATED:-unknown}"
hookbench doctor >"$out/doctor.txt" 2>&1
say "doctor: status $? (doctor.txt)"

run seccomp-run run_into_out hookbench run --backend kernel --suite seccomp --profile smoke --no-progress
finish
