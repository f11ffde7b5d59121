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
kmod=${HOOKBENCH_KMOD:-/lib/hookbench/hookbench.ko}
profile=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^hookbench_rig.profile=//p' | tail -n1)
profile=${profile:-smoke}
suites=$(tr ' ' '\n' </proc/cmdline | sed -n 's/^hookbench_rig.suites=//p' | tail -n1)
[ "$suites" != all ] || suites=""
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

say "kernel $(uname -r), accel ${HOOKBENCH_RIG_ACCEL:-unknown}, profile $profile, suites ${suites:-all}"
run doctor sh -c "hookbench doctor >'$out/doctor.txt' 2>&1; status=\$?; cat '$out/doctor.txt'; exit \$status"

if [ ! -f "$kmod" ]; then
    say "insmod: no $kmod in this initramfs (the module build made no hookbench.ko)"
    failed="$failed insmod"
elif run insmod insmod "$kmod"; then
    loaded=1
    say "body program type: $(cat /sys/module/hookbench/parameters/body_prog_type 2>/dev/null || echo unknown)"
fi

if [ "$loaded" -eq 1 ]; then
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
    # rmmod fails while any /dev/hookbench session is open: every worker's must be gone.
    run rmmod rmmod hookbench
fi

if [ -n "$failed" ]; then
    say "failed steps:$failed"
    exit 1
fi
say "all steps passed"
exit 0
