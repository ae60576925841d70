#!/usr/bin/env bash
# Load the demo route with oha while the manifests folder changes N times
# (models added and removed, the loaded model's endpoints changed), and
# report failures, throughput and the gateway's CPU time per request.
#
#   loadtest/reload-under-load.sh [--duration 60s] [--connections 50] [--changes 200]
#
# Bounded: oha stops after --duration; every process started here is stopped
# by PID on exit. Loopback only. Needs oha (cargo install oha --locked).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=60s
connections=50
changes=200
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) duration=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --changes) changes=$2; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v oha >/dev/null || { echo "oha is missing: cargo install oha --locked" >&2; exit 1; }

source loadtest/common.sh

manifests=$work/manifests
cp -r examples/manifests "$manifests"
# Model replicas in their own processes, so the gateway's CPU is its own.
start "$bin/demo-model" --model 1 --listen 127.0.0.11:8080 --listen 127.0.0.12:8080 --listen 127.0.0.13:8080 >/dev/null
start "$bin/demo-model" --model 2 --listen 127.0.0.21:8080 >/dev/null
start "$bin/edge-gateway" --manifests "$manifests" --bind-address 127.0.0.1 \
    --http-port 30080 --metrics-port 10254 >"$work/gateway.out" 2>"$work/gateway.err"
gateway=$last_pid
ready() {
    curl -sf http://127.0.0.1:10254/healthz >/dev/null &&
        curl -sf -H "Host: localhost" http://127.0.0.1:30080/api/v1/predict/1/health >/dev/null
}
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || { echo "the gateway or the model replicas did not come up" >&2; cat "$work/gateway.err" >&2; exit 1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

# The loaded route's endpoints alternate between {11,12} and {11,12,13}
# (all alive); other models come and go.
slice() { # $1 = endpoint addresses
    local endpoints=""
    for ip in $1; do endpoints="$endpoints  - addresses: [\"$ip\"]\n"; done
    printf 'apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: model-serving-1-abcde\n  namespace: user-1\n  labels:\n    kubernetes.io/service-name: model-serving-1\naddressType: IPv4\nports:\n- name: http\n  port: 8080\nendpoints:\n%b' "$endpoints"
}
extra_model() { # $1 = id
    sed -e "s/model-serving-2/model-serving-$1/g" -e "s#/api/v1/predict/2#/api/v1/predict/$1#" \
        "$manifests/model-2.yaml"
}
write() { # atomic: $1 = file name, stdin = content
    cat >"$manifests/.$1.tmp" && mv "$manifests/.$1.tmp" "$manifests/$1"
}
change() { # $1 = change number
    case $(($1 % 4)) in
        0) slice "127.0.0.11 127.0.0.12 127.0.0.13" | write slice-1.yaml ;;
        1) extra_model $((100 + $1 % 10)) | write "model-$((100 + $1 % 10)).yaml" ;;
        2) slice "127.0.0.11 127.0.0.12" | write slice-1.yaml ;;
        3) rm -f "$manifests/model-$((100 + ($1 - 2) % 10)).yaml" ;;
    esac
}
# The example's slice lives in model-1.yaml; move it to its own file.
python3 - "$manifests/model-1.yaml" <<'PY'
import sys
path = sys.argv[1]
docs = open(path).read().split("\n---\n")
open(path, "w").write("\n---\n".join(d for d in docs if "kind: EndpointSlice" not in d))
PY
slice "127.0.0.11 127.0.0.12" | write slice-1.yaml
sleep 1

cpu_before=$(cpu_ticks "$gateway")
oha -z "$duration" -c "$connections" -w --no-tui --output-format json --host localhost \
    http://127.0.0.1:30080/api/v1/predict/1/health >"$work/oha.json" &
oha=$!
seconds=${duration%s}
interval=$(python3 -c "print(max(0.01, ($seconds - 4) / $changes))")
sleep 1
for i in $(seq 1 "$changes"); do
    change "$i"
    sleep "$interval"
done
wait "$oha"
cpu_after=$(cpu_ticks "$gateway")
applied=$(grep -c "configuration applied" "$work/gateway.err" || true)

python3 - "$work/oha.json" "$cpu_before" "$cpu_after" "$ticks_per_second" "$changes" "$applied" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
before, after, hz, changes, applied = (float(x) for x in sys.argv[2:])
summary = report["summary"]
statuses = report.get("statusCodeDistribution", {})
errors = report.get("errorDistribution", {})
total = sum(statuses.values())
non2xx = sum(n for code, n in statuses.items() if not code.startswith("2"))
cpu = (after - before) / hz
print(f"requests:           {total}")
print(f"req/s:              {summary['requestsPerSec']:.0f}")
print(f"status codes:       {statuses}")
print(f"non-2xx:            {non2xx}")
print(f"connection errors:  {sum(errors.values())} {errors if errors else ''}")
print(f"folder changes:     {int(changes)} (recompiles logged: {int(applied)})")
print(f"gateway CPU:        {cpu:.2f} s = {cpu / max(total, 1) * 1e6:.1f} us/request")
lat = report.get("latencyPercentiles", {})
if lat:
    print("latency p50/p99/p99.9: " + " / ".join(f"{lat[k] * 1e3:.2f} ms" for k in ("p50", "p99", "p99.9") if k in lat))
sys.exit(1 if non2xx or errors else 0)
PY
