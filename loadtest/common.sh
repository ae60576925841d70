# Shared by the load-test scripts (sourced, not run): builds the release
# binaries, makes a work folder, and stops every process started through
# `start` when the script exits, by PID.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet -p edge-gateway -p demo-model
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
pids=()
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
