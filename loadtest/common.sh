# Shared by the load-test scripts (sourced, not run): builds the release
# binaries, makes a work folder, and stops every process started through
# `start` when the script exits, by PID.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --quiet -p edge-gateway -p demo-model
bin=${CARGO_TARGET_DIR:-target}/release
work=$(mktemp -d)
# shellcheck source=loadtest/processes.sh
source loadtest/processes.sh
