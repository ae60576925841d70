#!/usr/bin/env bash
# What the gateway's heap holds at N Ingresses from a manifests folder (one
# file per model), before and after --changes Ingress changes: the gateway on
# the system allocator (heaptrack sees only malloc) under heaptrack, run twice,
# once without changes and once with them (each change as loadtest/scale.sh
# makes it). Prints RSS when ready and after the changes, heaptrack's peak, the
# heap still live at the end of each run, and where the live heap of the run
# with changes differs from the one without, summed by the innermost frame in
# our code. Tells live data growing from allocator pages kept after whole-table
# recompiles (RSS growing while the live heap does not).
#
# loadtest/heap-profile.sh [--ingresses 10000] [--changes 100] [--no-build]
#
# The system-allocator binary is built into target/sysalloc (`cargo build
# --release -p edge-gateway --no-default-features`); --no-build uses the one
# there. gen-manifests comes from target/release (built unless --no-build).
# Bounded: every wait has a deadline; the processes started are stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."

ingresses=10000
changes=100
build=1
while [ $# -gt 0 ]; do
    case $1 in
    --ingresses) ingresses=$2; shift 2 ;;
    --changes) changes=$2; shift 2 ;;
    --no-build) build=''; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
hosts=$((ingresses / 10))
command -v heaptrack >/dev/null || { apt-get update -qq && apt-get install -y -qq heaptrack; }
if [ -n "$build" ]; then
    cargo build --release --quiet -p edge-gateway-benches --bin gen-manifests
    CARGO_TARGET_DIR=target/sysalloc cargo build --release --quiet -p edge-gateway --no-default-features
fi
gateway=target/sysalloc/release/edge-gateway
gen=target/release/gen-manifests
if [ ! -x "$gateway" ] || [ ! -x "$gen" ]; then
    echo "missing $gateway or $gen (run without --no-build)" >&2
    exit 1
fi

work=$(mktemp -d)
out=loadtest/results/heap-profile-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$out"
# shellcheck source=loadtest/processes.sh
source loadtest/processes.sh

http_port=18080
metrics_port=18254
rss_mib() { awk '$1 == "VmRSS:" {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
location() {
    curl -s -o /dev/null -w '%{redirect_url}' --max-time 2 -H "Host: h$(($1 % hosts)).bench.example" \
        "http://127.0.0.1:$http_port/api/v1/predict/m$1/infer" || true
}

# profile N: one heaptrack run with N changes; writes $out/run-N.zst.
profile() {
    local n_changes=$1 dir=$work/models-$1
    "$gen" "$dir" --layout files --ingresses "$ingresses" --hosts "$hosts" --format yaml >/dev/null
    start heaptrack -o "$out/run-$n_changes" "$gateway" --manifests "$dir" --bind-address 127.0.0.1 \
        --http-port "$http_port" --https-port 18443 --metrics-port "$metrics_port" --update-status=false \
        --access-log off >"$out/heaptrack-$n_changes.log" 2>&1
    local tracker=$last_pid gw=''
    for _ in $(seq 1200); do
        curl -sf -o /dev/null "http://127.0.0.1:$metrics_port/healthz" && break
        sleep 0.1
    done
    gw=$(pgrep -P "$tracker" -f "$gateway" | head -n 1 || true)
    [ -n "$gw" ] || { echo "the gateway did not start under heaptrack" >&2; tail "$out/heaptrack-$n_changes.log" >&2; exit 1; }
    sleep 2
    local ready after
    ready=$(rss_mib "$gw")
    for n in $(seq "$n_changes"); do
        local k=$(((n * 7919) % ingresses)) served=''
        "$gen" "$dir" --layout files --only "$k" --change "$k:$n" --ingresses "$ingresses" --hosts "$hosts" \
            --format yaml >/dev/null
        for _ in $(seq 3000); do
            [ "$(location "$k")" = "https://changed.example/$n" ] && { served=1; break; }
            sleep 0.01
        done
        [ -n "$served" ] || { echo "change $n (Ingress $k) not served within its deadline" >&2; exit 1; }
    done
    sleep 3
    after=$(rss_mib "$gw")
    kill -TERM "$gw"
    for _ in $(seq 300); do kill -0 "$tracker" 2>/dev/null || break; sleep 0.1; done
    stop "$tracker"
    echo "$n_changes changes: RSS ready $ready MiB, after $after MiB (system allocator, heaptrack's overhead included)"
    heaptrack_print -f "$out/run-$n_changes.zst" -p 0 -a 0 -T 0 -l 0 \
        -F "$out/live-$n_changes.txt" --flamegraph-cost-type leaked 2>/dev/null |
        grep -E '^(peak heap memory consumption|total memory leaked)' || true
}

profile 0
profile "$changes"

/usr/bin/python3 - "$out/live-0.txt" "$out/live-$changes.txt" <<'PY'
import collections, re, sys
OURS = ("controller::", "gateway::", "edge_gateway::")
LEGACY = {"$u7b$": "{", "$u7d$": "}", "$LT$": "<", "$GT$": ">", "$u20$": " ", "$C$": ",", "$RF$": "&"}
def readable(frame):
    frame = re.sub(r"::h[0-9a-f]{16}", "", frame)
    for code, char in LEGACY.items():
        frame = frame.replace(code, char)
    return frame
def live(path):
    by_frame = collections.Counter()
    for line in open(path):
        stack, _, cost = line.rstrip().rpartition(" ")
        frames = stack.split(";")
        ours = [f for f in frames if f.startswith(OURS)]
        by_frame[readable(ours[-1] if ours else frames[-1])[:110]] += int(cost)
    return by_frame
before, after = live(sys.argv[1]), live(sys.argv[2])
total = lambda c: sum(c.values()) / 2**20
print(f"live at the end: {total(before):.1f} MiB without changes, {total(after):.1f} MiB with them")
print("where the run with changes holds more (or less), by the innermost frame in our code:")
diff = {k: after[k] - before[k] for k in set(before) | set(after)}
for frame, d in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:12]:
    if abs(d) >= 16 * 1024:
        print(f"  {d / 2**20:+8.2f} MiB  {frame}")
PY
echo "heaptrack files in $out (heaptrack_print -f $out/run-$changes.zst --print-massif FILE: the heap over time)"
