#!/bin/sh
# Default payload of scripts/uml-rig (runs in the User-Mode Linux guest, busybox sh, as root, from
# /out).
#
# Loads hookbench.ko, runs the module's checks (`hookbench kmod-check`; checks that cannot apply
# on UML say so and are skipped), the kmod backend's run at the rig's profile and suites
# (hookbench_rig.profile and hookbench_rig.suites on the kernel command line) into /out itself, so
# that the rig's DIR/results.json is the kmod run (with several suites: one run per suite, into
# /out/<suite>/), and unloads the module. No BPF LSM run: UML has
# no BPF_LSM (it needs BPF trampolines, hence a JIT). Exits non-zero when any step fails.
out=${1:-${HOOKBENCH_OUT:-/out}}
# shellcheck source=SCRIPTDIR/payload-lib.sh
. "$(dirname "$0")/payload-lib.sh"

profile=$(cmdline_value hookbench_rig.profile smoke)
suites=$(cmdline_value hookbench_rig.suites "")
[ "$suites" != all ] || suites=""

say "kernel $(uname -r), accel ${HOOKBENCH_RIG_ACCEL:-unknown}, profile $profile, suites ${suites:-all}"
doctor_step

insmod_step
if [ "$loaded" -eq 1 ]; then
    say "body program type: $(cat /sys/module/hookbench/parameters/body_prog_type 2>/dev/null || echo unknown)"
    run kmod-check hookbench kmod-check --fuzz-secs "${HOOKBENCH_RIG_FUZZ_SECS:-5}"
    case "$suites" in
        "") run kmod-run run_into_out hookbench run --backend kmod --profile "$profile" --no-progress ;;
        *,*) # `hookbench run` takes one --suite: one run directory per suite, /out/<suite>/
            for s in $(echo "$suites" | tr ',' ' '); do
                run "kmod-run-$s" hookbench run --backend kmod --profile "$profile" --suite "$s" --no-progress --out "$out/$s"
            done
            ;;
        *) run kmod-run run_into_out hookbench run --backend kmod --profile "$profile" --suite "$suites" --no-progress ;;
    esac
fi

rmmod_step
finish
