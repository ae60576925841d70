#!/usr/bin/env bash
# Model-aware balancing (issue 9): the release gateway in front of fake model
# replicas (demo-model --config), every balancing algorithm in turn, in three
# scenarios:
#   a  linkerd's classic, scaled down: 11 replicas at ~167 ms (JSON), one stuck
#      at 2 s for half the run; success within a 1 s client timeout
#      (anchor: ~95% round robin, 99% least-loaded, 99.9% peak EWMA).
#   b  8 replicas with 4 slots and a FIFO queue each, one 5x slower, SSE
#      streams: p50/p99/p99.9, time to first byte p99, 10 s client timeout.
#   c  scale from zero: N requests held (edge-gateway.io/hold-when-no-endpoints)
#      while the model has no endpoint; its EndpointSlice is written into the
#      manifests folder after T s: errors and added latency.
#
#   loadtest/model-balancing.sh [--quick] [--algorithms "round_robin ewma ..."]
#       [--scenarios "a b c"] [--out DIR] [--record | --no-record]
#
# Full mode (default): 60 s open-loop runs (a: 1000 req/s, b: 60 req/s), 1000
# held requests released after 10 s; results in loadtest/results/model-balancing
# and the "Model-aware balancing (issue 9)" section of loadtest/RESULTS.md.
# --quick: a few seconds per run, results in loadtest/results/model-balancing-quick,
# RESULTS.md untouched unless --record.
#
# Every process starts fresh per run (replicas, then the gateway) and is
# stopped by PID. The gateway is pinned to CPU 0, oha and the replicas to CPU 1.
# Bounded: every oha run has -z or -n, and -t. Loopback only: the gateway on
# 127.0.0.1:31080 (HTTPS 31443, metrics 11254), replicas on 127.0.{2,3,4}.x:9000.
# Needs oha (cargo install oha --locked); plots need python3-matplotlib
# (installed with apt-get when missing, skipped if that fails).
set -euo pipefail
cd "$(dirname "$0")/.."

command_line="loadtest/model-balancing.sh${*:+ $*}"
quick=false
algorithms="round_robin ewma least_request p2c peak_ewma"
scenarios="a b c"
out=""
record=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=true; shift ;;
        --algorithms) algorithms=$2; shift 2 ;;
        --scenarios) scenarios=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --record) record=true; shift ;;
        --no-record) record=false; shift ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
PATH=$PATH:$HOME/.cargo/bin
command -v oha >/dev/null || { echo "oha is missing: cargo install oha --locked" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset is missing (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs: the gateway on one, load and replicas on the other" >&2; exit 1; }

if $quick; then
    a_rate=200 a_duration=8 a_stuck_after_ms=3000 a_stuck_for_ms=4000 a_connections=100
    b_rate=25 b_duration=8 b_connections=100
    c_requests=200 c_start=3
    out=${out:-loadtest/results/model-balancing-quick}
    record=${record:-false}
else
    a_rate=1000 a_duration=60 a_stuck_after_ms=15000 a_stuck_for_ms=30000 a_connections=400
    b_rate=60 b_duration=60 b_connections=300
    c_requests=1000 c_start=10
    out=${out:-loadtest/results/model-balancing}
    record=${record:-true}
fi
http_port=31080 https_port=31443 metrics_port=11254
gateway_url=http://127.0.0.1:$http_port

# The plots need matplotlib for the system python.
plot_python=/usr/bin/python3
if ! "$plot_python" -c 'import matplotlib' 2>/dev/null; then
    apt-get install -y python3-matplotlib >/dev/null 2>&1 ||
        echo "python3-matplotlib could not be installed: no plots" >&2
fi
"$plot_python" -c 'import matplotlib' 2>/dev/null || plot_python=python3

# shellcheck source=SCRIPTDIR/common.sh
source loadtest/common.sh
# common.sh builds with cargo, which honours CARGO_TARGET_DIR.
bin=${CARGO_TARGET_DIR:-target}/release

mkdir -p "$out"
: >"$out/runs.txt"
rm -f "$out"/*.png "$out/results.md"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

cpu_seconds() { # utime + stime of PID, in seconds
    sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{print ($12 + $13) / hz}'
}

# ---- manifests -------------------------------------------------------------

# The Service and the EndpointSlice of model-serving-1 (namespace bench) with
# these replica addresses (port 9000).
service_yaml() {
    cat <<'EOF'
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
spec:
  controller: k8s.io/ingress-nginx
---
apiVersion: v1
kind: Service
metadata:
  name: model-serving-1
  namespace: bench
spec:
  type: ClusterIP
  ports:
  - name: http
    port: 80
    targetPort: 9000
EOF
}
slice_yaml() { # $@ = addresses
    cat <<'EOF'
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: model-serving-1-bench
  namespace: bench
  labels:
    kubernetes.io/service-name: model-serving-1
addressType: IPv4
ports:
- name: http
  port: 9000
  protocol: TCP
endpoints:
EOF
    for ip in "$@"; do
        printf '  - addresses: ["%s"]\n    conditions:\n      ready: true\n' "$ip"
    done
}
# The Ingress routing /api/v1/predict/1 to model-serving-1, with the
# algorithm's annotation (ingress-nginx's key for its own values, the
# edge-gateway.io key for ours) and any extra annotation lines.
ingress_yaml() { # $1 = algorithm, $2 = extra annotation lines
    local key=edge-gateway.io/load-balance
    case "$1" in round_robin|ewma) key=nginx.ingress.kubernetes.io/load-balance ;; esac
    cat <<EOF
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: model-serving-1
  namespace: bench
  annotations:
    $key: "$1"
$2
spec:
  ingressClassName: nginx
  rules:
  - host: localhost
    http:
      paths:
      - path: /api/v1/predict/1
        pathType: Prefix
        backend:
          service:
            name: model-serving-1
            port:
              number: 80
EOF
}

# ---- fake replicas -----------------------------------------------------------

# replicas_json SEED "ADDR=PROFILE ..." PROFILES_JSON: a demo-model --config file.
replicas_json() {
    local list="" sep="" entry
    for entry in $2; do
        list="$list$sep{\"listen\": \"${entry%%=*}:9000\", \"profile\": \"${entry#*=}\"}"
        sep=$',\n    '
    done
    printf '{\n  "seed": %s,\n  "profiles": %s,\n  "replicas": [\n    %s\n  ]\n}\n' "$1" "$3" "$list"
}

# ready ROUTED: the gateway has loaded its configuration and, if ROUTED is
# true, routes to the replicas.
ready() {
    curl -sf "http://127.0.0.1:$metrics_port/healthz" >/dev/null || return 1
    "$1" || return 0
    curl -sf -H "Host: localhost" "$gateway_url/api/v1/predict/1/health" >/dev/null
}

# ---- one run -----------------------------------------------------------------

# run SCENARIO ALGORITHM: replicas, gateway, oha, scrape, stop.
run() {
    local scenario=$1 algorithm=$2
    local dir=$out/$scenario-$algorithm tmp=$work/$scenario-$algorithm
    rm -rf "$dir"
    mkdir -p "$dir" "$tmp/manifests"
    local entries profiles extra="" ips=() slice_now=true
    case $scenario in
        a)
            local normal='"ttft_ms": {"lognormal": {"median": 167, "p99": 179}}, "inter_token_ms": 0, "output_tokens": 1, "slots": 10000, "max_queue": 0'
            profiles="{\"normal\": {$normal}, \"stuck\": {$normal, \"stuck\": {\"after_ms\": $a_stuck_after_ms, \"for_ms\": $a_stuck_for_ms, \"latency_ms\": 2000}}}"
            entries="127.0.2.1=stuck"
            for i in $(seq 2 11); do entries="$entries 127.0.2.$i=normal"; done
            ;;
        b)
            local normal='"ttft_ms": {"lognormal": {"median": 40, "p99": 120}}, "inter_token_ms": 10, "output_tokens": {"uniform": {"min": 10, "max": 50}}, "slots": 4, "max_queue": 256'
            profiles="{\"normal\": {$normal}, \"slow\": {$normal, \"slow_factor\": 5}}"
            entries="127.0.3.1=slow"
            for i in $(seq 2 8); do entries="$entries 127.0.3.$i=normal"; done
            ;;
        c)
            profiles='{"normal": {"ttft_ms": 20, "inter_token_ms": 0, "output_tokens": 1, "slots": 1000, "max_queue": 1000}}'
            entries="127.0.4.1=normal 127.0.4.2=normal"
            extra=$'    edge-gateway.io/hold-when-no-endpoints: "60s"\n    edge-gateway.io/max-pending: "5000"'
            slice_now=false
            ;;
    esac
    for entry in $entries; do ips+=("${entry%%=*}"); done
    replicas_json 42 "$entries" "$profiles" >"$dir/replicas.json"
    service_yaml >"$tmp/manifests/service.yaml"
    ingress_yaml "$algorithm" "$extra" >"$tmp/manifests/ingress.yaml"
    if $slice_now; then slice_yaml "${ips[@]}" >"$tmp/manifests/slice.yaml"; fi
    cp "$tmp/manifests/ingress.yaml" "$dir/ingress.yaml"

    start taskset -c 1 "$bin/demo-model" --config "$dir/replicas.json" >"$tmp/replicas.out" 2>&1
    local replicas=$last_pid
    local ip
    for ip in "${ips[@]}"; do
        for _ in $(seq 50); do curl -sf "http://$ip:9000/health" >/dev/null && break; sleep 0.1; done
        curl -sf "http://$ip:9000/health" >/dev/null ||
            { echo "replica $ip did not start:" >&2; cat "$tmp/replicas.out" >&2; exit 1; }
    done
    start taskset -c 0 "$bin/edge-gateway" --manifests "$tmp/manifests" --bind-address 127.0.0.1 \
        --http-port "$http_port" --https-port "$https_port" --metrics-port "$metrics_port" \
        --access-log off >/dev/null 2>"$tmp/gateway.log"
    local gateway=$last_pid
    for _ in $(seq 100); do ready "$slice_now" && break; sleep 0.1; done
    ready "$slice_now" || { echo "the gateway did not come up:" >&2; cat "$tmp/gateway.log" >&2; exit 1; }

    local cpu_before started
    cpu_before=$(cpu_seconds "$gateway")
    started=$(date +%s.%N)
    local oha=(taskset -c 1 oha --no-tui --output-format json -o "$dir/oha.json"
        --db-url "$tmp/requests.db" --stats-success-breakdown --host localhost)
    case $scenario in
        a)
            "${oha[@]}" -q "$a_rate" -z "${a_duration}s" --latency-correction -c "$a_connections" -w \
                -t 1s -m POST -d '{}' -T application/json \
                "$gateway_url/api/v1/predict/1" >"$tmp/oha.out" 2>&1 &
            ;;
        b)
            "${oha[@]}" -q "$b_rate" -z "${b_duration}s" --latency-correction -c "$b_connections" -w \
                -t 10s "$gateway_url/api/v1/predict/1/stream" >"$tmp/oha.out" 2>&1 &
            ;;
        c)
            "${oha[@]}" -n "$c_requests" -c "$c_requests" -t 60s -m POST -d '{}' -T application/json \
                "$gateway_url/api/v1/predict/1" >"$tmp/oha.out" 2>&1 &
            ;;
    esac
    local load=$!
    if [ "$scenario" = c ]; then
        sleep "$c_start"
        # The backend "starts": its EndpointSlice appears, written atomically.
        slice_yaml "${ips[@]}" >"$tmp/manifests/.slice.tmp"
        mv "$tmp/manifests/.slice.tmp" "$tmp/manifests/slice.yaml"
    fi
    wait "$load" || { echo "oha failed:" >&2; cat "$tmp/oha.out" >&2; exit 1; }
    local cpu_after load_after
    cpu_after=$(cpu_seconds "$gateway")
    load_after=$(cut -d' ' -f1 /proc/loadavg)

    # What each replica did (counted by the replicas themselves).
    : >"$dir/replicas.prom"
    for entry in $entries; do
        echo "# replica ${entry%%=*} ${entry#*=}" >>"$dir/replicas.prom"
        curl -sf "http://${entry%%=*}:9000/metrics" >>"$dir/replicas.prom" || true
    done
    curl -sf "http://127.0.0.1:$metrics_port/metrics" >"$dir/gateway.prom" || true
    stop "$gateway"
    stop "$replicas"
    # The gateway's log, its repeated lines (one per failed request) counted.
    sed -E 's/^[0-9T:.-]+Z +//; s/client=[0-9.:]+ //' "$tmp/gateway.log" | sort | uniq -c |
        sort -rn | head -50 >"$dir/gateway-log-summary.txt"

    # Per-request status and latency in ms (scheduled start to last byte),
    # gzipped, for the report; oha's database itself is too large to keep.
    python3 - "$tmp/requests.db" "$dir/latencies.txt.gz" <<'PY'
import gzip, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute(
    "select status, end - coalesce(start_latency_correction, start) from oha order by start")
with gzip.open(sys.argv[2], "wt", compresslevel=9) as out:
    for status, seconds in rows:
        out.write(f"{status} {seconds * 1e3:.1f}\n")
PY
    local wall
    wall=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$started" "$(date +%s.%N)")
    cat >"$dir/meta.json" <<EOF
{"scenario": "$scenario", "algorithm": "$algorithm", "load_average": $load_after, "gateway_cpu_seconds": $(python3 -c "print(round($cpu_after - $cpu_before, 3))"),
 "wall_seconds": $wall, "a_rate": $a_rate, "a_duration": $a_duration, "a_stuck_for_ms": $a_stuck_for_ms,
 "b_rate": $b_rate, "b_duration": $b_duration, "c_requests": $c_requests, "c_start": $c_start}
EOF
    echo "$scenario-$algorithm" >>"$out/runs.txt"
    echo "  $scenario $algorithm: done in ${wall}s"
}

for scenario in $scenarios; do
    for algorithm in $algorithms; do
        run "$scenario" "$algorithm"
    done
done

machine="$(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -sr), load average before the run: $load_before"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
report=(loadtest/model_balancing_report.py --results "$out" --command "$command_line"
    --machine "$machine" --revision "$revision" --quick "$quick")
if $record; then report+=(--record loadtest/RESULTS.md); fi
"$plot_python" "${report[@]}"
