#!/usr/bin/env bash
# Time to first byte of a streamed (SSE) response, through the gateway and
# direct to the model replica, measured alternately in one run.
#
#   loadtest/ttfb.sh [--samples 500]
#
# Each sample is one curl on a new connection (so both paths pay one TCP
# handshake; the gateway's upstream connection is pooled). Prints p50/p90/p99
# of each and the difference. Loopback only; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

samples=500
while [ $# -gt 0 ]; do
    case "$1" in
        --samples) samples=$2; shift 2 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

source loadtest/common.sh

start "$bin/demo-model" --model 1 --listen 127.0.0.11:8080 >/dev/null
mkdir "$work/manifests"
cp examples/manifests/ingress-class.yaml examples/manifests/model-1.yaml "$work/manifests/"
# One replica only, so both paths reach the same process.
sed -i '/127.0.0.12/,+2d' "$work/manifests/model-1.yaml"
start "$bin/edge-gateway" --manifests "$work/manifests" --bind-address 127.0.0.1 \
    --http-port 30080 --metrics-port 10254 2>"$work/gateway.err" >/dev/null

stream='/api/v1/predict/1/stream?tokens=2&interval_ms=1'
gateway_url="http://127.0.0.1:30080$stream"
direct_url="http://127.0.0.11:8080$stream"
ttfb() { curl -s -o /dev/null -H "Host: localhost" -w '%{time_starttransfer}\n' "$1"; }
for _ in $(seq 100); do
    curl -sf -o /dev/null -H "Host: localhost" "$gateway_url" && break
    sleep 0.1
done
for _ in $(seq 20); do ttfb "$gateway_url" >/dev/null; ttfb "$direct_url" >/dev/null; done
for _ in $(seq "$samples"); do
    ttfb "$gateway_url" >>"$work/gateway.txt"
    ttfb "$direct_url" >>"$work/direct.txt"
done
python3 - "$work/gateway.txt" "$work/direct.txt" <<'PY'
import sys
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]
gateway = [float(x) * 1e3 for x in open(sys.argv[1])]
direct = [float(x) * 1e3 for x in open(sys.argv[2])]
print(f"samples: {len(gateway)} each (new connection per request)")
for name, values in (("through gateway", gateway), ("direct", direct)):
    print(f"{name:16} p50 {pct(values, 50):.3f} ms  p90 {pct(values, 90):.3f} ms  p99 {pct(values, 99):.3f} ms")
print(f"{'added by gateway':16} p50 {pct(gateway, 50) - pct(direct, 50):+.3f} ms")
PY
