#!/usr/bin/env bash
# The CPU cost of request metrics and the access log: the release gateway
# under the same oha load (keep-alive, GET /api/v1/predict/1/health), once
# with both off (--enable-metrics=false --access-log off) and once with both
# on (--enable-metrics --access-log json, stdout to /dev/null), interleaved,
# for N rounds. Reports req/s and the gateway's CPU time per request
# (utime + stime from /proc/<pid>/stat) for each run, the medians, and the
# difference.
#
#   loadtest/observability-cost.sh [--duration 15s] [--connections 50] [--rounds 3]
#
# Bounded: each oha run stops after --duration; every process started here
# is stopped by PID. Loopback only (ports 30080, 30443, 10254). Needs oha
# (cargo install oha --locked).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=15s
connections=50
rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
PATH=$PATH:$HOME/.cargo/bin
command -v oha >/dev/null || { echo "oha is missing: cargo install oha --locked" >&2; exit 1; }

source loadtest/common.sh

url=http://127.0.0.1:30080/api/v1/predict/1/health
# Model 1's replicas (examples/manifests/model-1.yaml), in their own process
# so the gateway's CPU is its own.
start "$bin/demo-model" --model 1 --listen 127.0.0.11:8080 --listen 127.0.0.12:8080 >/dev/null
model=$last_pid
for _ in $(seq 50); do curl -sf http://127.0.0.11:8080/health >/dev/null && break; sleep 0.1; done
kill -0 "$model" 2>/dev/null || { echo "demo-model did not start (127.0.0.11:8080 in use?)" >&2; exit 1; }

cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
ticks_per_second=$(getconf CLK_TCK)

ready() {
    curl -sf http://127.0.0.1:10254/healthz >/dev/null &&
        curl -sf -H "Host: localhost" "$url" >/dev/null
}

results=$work/results
: >"$results"

# run MODE ROUND FLAGS...: one gateway, warmed up, then measured under oha.
run() {
    local mode=$1 round=$2
    shift 2
    start "$bin/edge-gateway" --manifests examples/manifests --bind-address 127.0.0.1 \
        --http-port 30080 --https-port 30443 --metrics-port 10254 "$@" \
        >/dev/null 2>"$work/gateway-$mode-$round.err"
    local gateway=$last_pid
    for _ in $(seq 100); do ready && break; sleep 0.1; done
    ready || { echo "the gateway ($mode) did not come up" >&2; cat "$work/gateway-$mode-$round.err" >&2; exit 1; }
    # Warm-up: connections to the replicas, allocator, page cache.
    oha -z 2s -c "$connections" --no-tui --output-format json --host localhost "$url" >/dev/null
    local before after
    before=$(cpu_ticks "$gateway")
    oha -z "$duration" -c "$connections" -w --no-tui --output-format json --host localhost \
        "$url" >"$work/oha-$mode-$round.json"
    after=$(cpu_ticks "$gateway")
    local counted=-
    if [ "$mode" = on ]; then
        counted=$(curl -sf http://127.0.0.1:10254/metrics |
            awk '/^nginx_ingress_controller_requests\{/ {n += $NF} END {print n + 0}')
    fi
    stop "$gateway"
    python3 - "$work/oha-$mode-$round.json" "$mode" "$round" "$before" "$after" \
        "$ticks_per_second" "$counted" >>"$results" <<'PY'
import json, sys
path, mode, rnd, before, after, hz, counted = sys.argv[1:]
report = json.load(open(path))
statuses = report.get("statusCodeDistribution", {})
errors = sum(report.get("errorDistribution", {}).values())
total = sum(statuses.values())
non2xx = sum(n for code, n in statuses.items() if not code.startswith("2"))
cpu = (float(after) - float(before)) / float(hz)
rps = report["summary"]["requestsPerSec"]
print(mode, rnd, total, f"{rps:.0f}", f"{cpu:.2f}", f"{cpu / max(total, 1) * 1e6:.2f}",
      non2xx + errors, counted)
PY
    tail -n 1 "$results" | awk '{printf "round %s %-3s  %8s requests  %6s req/s  %6s s CPU  %6s us/request  failures %s  metrics counted %s (with warm-up)\n", $2, $1, $3, $4, $5, $6, $7, $8}'
}

echo "oha -z $duration -c $connections (keep-alive) on $url; $rounds rounds, interleaved"
for round in $(seq 1 "$rounds"); do
    run off "$round" --enable-metrics=false --access-log off
    run on "$round" --enable-metrics --access-log json
done

python3 - "$results" <<'PY'
import statistics, sys
runs = [line.split() for line in open(sys.argv[1])]
def median(mode, column):
    return statistics.median(float(r[column]) for r in runs if r[0] == mode)
rps_off, rps_on = median("off", 3), median("on", 3)
us_off, us_on = median("off", 5), median("on", 5)
failures = sum(int(r[6]) for r in runs)
print()
print(f"median off (no metrics, no access log): {rps_off:8.0f} req/s  {us_off:6.2f} us CPU/request")
print(f"median on  (metrics + JSON access log): {rps_on:8.0f} req/s  {us_on:6.2f} us CPU/request")
print(f"difference:                              {rps_on - rps_off:+8.0f} req/s ({(rps_on / rps_off - 1) * 100:+.1f}%)"
      f"  {us_on - us_off:+6.2f} us CPU/request ({(us_on / us_off - 1) * 100:+.1f}%)")
print(f"failed requests (non-2xx or errors): {failures}")
sys.exit(1 if failures else 0)
PY
