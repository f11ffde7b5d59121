# shellcheck shell=sh disable=SC2154 # the sourcing payload sets out
# Helpers the rigs' payloads share (busybox sh, in the guest), sourced from the payload's folder:
# scripts/lib/initramfs.sh packs this file as /rig/payload-lib.sh beside /rig/payload.
#
# Steps are named and timed (`run`), a failed step is recorded in `failed` and `finish` exits
# non-zero naming them; `run_into_out` lets a hookbench run write into the payload's own results
# directory. Reads the payload's `out` (its results directory).

kmod=${HOOKBENCH_KMOD:-/lib/hookbench/hookbench.ko}
failed=""
loaded=0

# say MESSAGE...: one line of the payload's log.
say() { echo "payload: $*"; }

# uptime_s: the guest's uptime in seconds (for step durations).
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# secs_since START: seconds from uptime START until now, one decimal.
secs_since() { awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }'; }

# cmdline_value NAME DEFAULT: the last NAME=VALUE of the kernel command line, or DEFAULT.
cmdline_value() {
    v=$(tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n1)
    echo "${v:-$2}"
}

# run NAME COMMAND...: runs a step, says how it went and how long it took, records a failure.
run() {
    name=$1
    shift
    say "$name: $*"
    start=$(uptime_s)
    "$@"
    status=$?
    secs=$(secs_since "$start")
    if [ "$status" -eq 0 ]; then
        say "$name: ok ($secs s)"
    else
        say "$name: FAILED with status $status ($secs s)"
        failed="$failed $name"
    fi
    return "$status"
}

# run_into_out COMMAND...: runs `COMMAND --out DIR` with a new DIR, then moves whatever DIR holds
# into $out (hookbench runs only into a new or empty directory, and $out already holds
# payload.log). Returns the command's status, or 1 when a move fails or a name is taken.
# shellcheck disable=SC2317 # called through run
run_into_out() {
    dir="$out/.run.$$"
    "$@" --out "$dir"
    cmd_status=$?
    [ -d "$dir" ] || return "$cmd_status"
    for f in "$dir"/* "$dir"/.[!.]*; do
        [ -e "$f" ] || continue
        if [ -e "$out/${f##*/}" ]; then
            say "cannot move $f up: $out/${f##*/} exists"
            return 1
        fi
        mv "$f" "$out/" || return 1
    done
    rmdir "$dir"
    return "$cmd_status"
}

# doctor_step: `hookbench doctor` into $out/doctor.txt and the log, as the step `doctor`.
doctor_step() {
    run doctor sh -c "hookbench doctor >'$out/doctor.txt' 2>&1; status=\$?; cat '$out/doctor.txt'; exit \$status"
}

# insmod_step: loads $kmod as the step `insmod` (a missing module fails it too); sets loaded=1
# when it is in.
insmod_step() {
    if [ ! -f "$kmod" ]; then
        say "insmod: no $kmod in this initramfs (the module build made no hookbench.ko)"
        failed="$failed insmod"
    elif run insmod insmod "$kmod"; then
        loaded=1
    fi
}

# rmmod_step: unloads the module as the step `rmmod` when insmod_step loaded it. rmmod fails
# while any /dev/hookbench session is open: every worker's must be gone.
rmmod_step() {
    [ "$loaded" -eq 0 ] || run rmmod rmmod hookbench
}

# finish: exits 1 naming the failed steps, 0 when every step passed.
finish() {
    if [ -n "$failed" ]; then
        say "failed steps:$failed"
        exit 1
    fi
    say "all steps passed"
    exit 0
}
