# shellcheck shell=bash
# Process bookkeeping shared by the load-test scripts (sourced by common.sh
# and peers.sh, not run): every process started through `start` is stopped,
# by PID, when the script exits, and the scratch folder $work is removed.
: "${work:?set work to a scratch folder before sourcing processes.sh}"
pids=()

# log MESSAGE...: a timestamped line on stderr.
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# start CMD ARGS...: runs CMD in the background and remembers its PID in $last_pid.
start() {
    "$@" &
    last_pid=$!
    pids+=("$last_pid")
}

# stop PID: stops a process started with `start`, waits for it, forgets it.
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local kept=() pid
    for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
    pids=("${kept[@]}")
}
