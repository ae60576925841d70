#!/usr/bin/env bash
# Inference-aware endpoint picking (issue 17): the release gateway in front of
# fake LLM replicas (demo-model --config), under seeded open-loop Poisson load
# (model-load: the same arrivals, output lengths and prompts for every picker),
# every picker side by side in one run, four scenarios:
#   d  slow decoder: 6 replicas × 4 slots + FIFO queue, one 4x slower per token;
#      output lengths log-normal, median 30, p99 200, at most 400 tokens; SSE;
#      ~70% of capacity; 10 s client timeout.
#   e  mid-run hang: 6 replicas, one accepts and answers nothing for 20 s from
#      20 s into the run; the replicas count who arrived during the hang.
#   f  prefix sharing: 4 replicas with a simulated prefix cache (1 ms prefill per
#      uncached 64-byte block, 320 blocks held), 16 groups of requests sharing
#      a 4 KiB prompt prefix; least_request with and without prefix-affinity.
#   g  KV cache full: 6 replicas, one reports vllm:kv_cache_usage_perc 0.97 (and
#      is 3x slower, as a preempting replica is); with and without
#      endpoint-metrics: vllm.
#
#   loadtest/inference-picking.sh [--quick] [--scenarios "d e f g"] [--out DIR]
#       [--seed 42] [--record | --no-record]
#
# Full mode: 60 s of arrivals per run; results in loadtest/results/inference-picking
# and the "Inference-aware picking (issue 17)" section of loadtest/RESULTS.md.
# --quick: 15 s per run (the hang from 5 s for 8 s), RESULTS.md untouched unless
# --record. Every process starts fresh per run (replicas, then the gateway) and
# is stopped by PID; the gateway is pinned to CPU 0, the replicas and the load
# generator to CPU 1. Bounded: arrivals stop after the duration and every
# request after its 10 s timeout. Loopback only: gateway on 127.0.0.1:32080
# (metrics 12254), replicas on 127.0.5.x:9000.
set -euo pipefail
cd "$(dirname "$0")/.."

command_line="loadtest/inference-picking.sh${*:+ $*}"
quick=false
scenarios="d e f g"
out=""
record=""
seed=42
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=true; shift ;;
        --scenarios) scenarios=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --record) record=true; shift ;;
        --no-record) record=false; shift ;;
        -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v taskset >/dev/null || { echo "taskset is missing (util-linux)" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs: the gateway on one, load and replicas on the other" >&2; exit 1; }

if $quick; then
    duration=15 hang_after_ms=5000 hang_for_ms=8000
    out=${out:-loadtest/results/inference-picking-quick}
    record=${record:-false}
else
    duration=60 hang_after_ms=20000 hang_for_ms=20000
    out=${out:-loadtest/results/inference-picking}
    record=${record:-true}
fi
http_port=32080 https_port=32443 metrics_port=12254
timeout=10

# shellcheck source=SCRIPTDIR/common.sh
source loadtest/common.sh
bin=${CARGO_TARGET_DIR:-target}/release

mkdir -p "$out"
: >"$out/runs.txt"
rm -f "$out/results.md"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

cpu_seconds() { # utime + stime of PID, in seconds
    sed 's/^.*) //' "/proc/$1/stat" | awk -v hz="$(getconf CLK_TCK)" '{print ($12 + $13) / hz}'
}

# ---- manifests ----------------------------------------------------------------

manifests() { # $1 = folder, $2 = annotation lines, $3.. = replica addresses
    local dir=$1 annotations=$2
    shift 2
    cat >"$dir/objects.yaml" <<EOF
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
  name: llm
  namespace: bench
spec:
  ports:
  - name: http
    port: 80
    targetPort: 9000
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: llm
  namespace: bench
  annotations:
$annotations
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
            name: llm
            port:
              number: 80
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: llm-1
  namespace: bench
  labels:
    kubernetes.io/service-name: llm
addressType: IPv4
ports:
- name: http
  port: 9000
  protocol: TCP
endpoints:
EOF
    local ip
    for ip in "$@"; do
        printf '  - addresses: ["%s"]\n    conditions:\n      ready: true\n' "$ip" >>"$dir/objects.yaml"
    done
}

# annotations PICKER: the Ingress annotations of a picker name such as
# `least_request+prefix` (the algorithm, then the layers turned on).
annotations() {
    local algorithm=${1%%+*} key=edge-gateway.io/load-balance
    case "$algorithm" in round_robin|ewma) key=nginx.ingress.kubernetes.io/load-balance ;; esac
    printf '    %s: "%s"\n' "$key" "$algorithm"
    case "$1" in *+prefix*) printf '    edge-gateway.io/prefix-affinity: "on"\n' ;; esac
    case "$1" in *+metrics*)
        printf '    edge-gateway.io/endpoint-metrics: "vllm"\n'
        printf '    edge-gateway.io/endpoint-metrics-interval: "200ms"\n' ;;
    esac
}

# profile TTFT_MS INTER_TOKEN_MS [EXTRA]: one replica profile (demo-model
# --config): 4 slots, a FIFO queue, the output length the request asks for.
profile() {
    printf '{"ttft_ms": %s, "inter_token_ms": %s, "slots": 4, "max_queue": 256, "tokens_from_request": true, "headers": "admission"%s}' \
        "$1" "$2" "${3:+, $3}"
}

# ---- one run --------------------------------------------------------------------

# run SCENARIO PICKER: replicas, gateway, model-load, scrape, stop.
run() {
    local scenario=$1 picker=$2
    local dir=$out/$scenario-$picker tmp=$work/$scenario-$picker
    rm -rf "$dir"
    mkdir -p "$dir" "$tmp/manifests"
    local ttft='{"lognormal": {"median": 40, "p99": 120}}'
    local profiles n=6 odd=normal load_args=(--tokens-median 30 --tokens-p99 200 --max-tokens 400)
    local rate
    case $scenario in
        d)  # capacity ≈ 5 × 4/0.46 s + 4/1.71 s ≈ 46 req/s
            profiles="{\"normal\": $(profile "$ttft" 10), \"odd\": $(profile "$ttft" 40)}"
            odd=odd rate=32 ;;
        e)  # capacity ≈ 6 × 4/0.46 s ≈ 52 req/s
            local hang="\"hang\": {\"after_ms\": $hang_after_ms, \"for_ms\": $hang_for_ms}"
            profiles="{\"normal\": $(profile "$ttft" 10), \"odd\": $(profile "$ttft" 10 "$hang")}"
            odd=odd rate=36 ;;
        f)  # 4 replicas; capacity ≈ 4 × 4/0.5 s ≈ 32 req/s
            local cache='"prefix_cache": {"block_bytes": 64, "capacity_blocks": 320, "prefill_ms_per_block": 1}'
            profiles="{\"normal\": $(profile 20 10 "$cache")}"
            n=4 rate=22
            load_args+=(--prefix-groups 16 --prefix-bytes 4096 --suffix-bytes 256) ;;
        g)  # the odd replica: 3x slower, KV cache reported full
            profiles="{\"normal\": $(profile "$ttft" 10), \"odd\": $(profile "$ttft" 10 '"slow_factor": 3, "kv_cache_usage": 0.97')}"
            odd=odd rate=30 ;;
    esac
    local entries="" ips=() i
    for i in $(seq 1 "$n"); do
        local profile=normal
        [ "$i" = 1 ] && profile=$odd
        entries="$entries 127.0.5.$i=$profile"
        ips+=("127.0.5.$i")
    done
    local list="" sep="" entry
    for entry in $entries; do
        list="$list$sep{\"listen\": \"${entry%%=*}:9000\", \"profile\": \"${entry#*=}\"}"
        sep=", "
    done
    printf '{"seed": %s, "profiles": %s, "replicas": [%s]}\n' "$seed" "$profiles" "$list" >"$dir/replicas.json"
    manifests "$tmp/manifests" "$(annotations "$picker")" "${ips[@]}"
    cp "$tmp/manifests/objects.yaml" "$dir/objects.yaml"

    start taskset -c 1 "$bin/demo-model" --config "$dir/replicas.json" >"$tmp/replicas.out" 2>&1
    local replicas=$last_pid ip
    for ip in "${ips[@]}"; do
        for _ in $(seq 50); do curl -sf "http://$ip:9000/health" >/dev/null && break; sleep 0.1; done
        curl -sf "http://$ip:9000/health" >/dev/null ||
            { echo "replica $ip did not start:" >&2; cat "$tmp/replicas.out" >&2; exit 1; }
    done
    start taskset -c 0 "$bin/edge-gateway" --manifests "$tmp/manifests" --bind-address 127.0.0.1 \
        --http-port "$http_port" --https-port "$https_port" --metrics-port "$metrics_port" \
        --enable-metrics --access-log off >/dev/null 2>"$tmp/gateway.log"
    local gateway=$last_pid
    for _ in $(seq 100); do
        curl -sf -H "Host: localhost" "http://127.0.0.1:$http_port/api/v1/predict/1/health" >/dev/null && break
        sleep 0.1
    done
    curl -sf -H "Host: localhost" "http://127.0.0.1:$http_port/api/v1/predict/1/health" >/dev/null ||
        { echo "the gateway did not come up:" >&2; cat "$tmp/gateway.log" >&2; exit 1; }

    # The hang and the replicas' clocks start at their bind: load starts now,
    # so the hang's offset into the load is the time the replicas ran before.
    local cpu_before started
    cpu_before=$(cpu_seconds "$gateway")
    started=$(date +%s.%N)
    taskset -c 1 "$bin/model-load" --addr "127.0.0.1:$http_port" --host localhost \
        --path /api/v1/predict/1/stream --stream --rate "$rate" --duration "$duration" \
        --timeout "$timeout" --seed "$seed" "${load_args[@]}" --out "$tmp/requests.jsonl" \
        >"$tmp/load.out" 2>&1 || { echo "model-load failed:" >&2; cat "$tmp/load.out" >&2; exit 1; }
    local cpu_after
    cpu_after=$(cpu_seconds "$gateway")

    : >"$dir/replicas.prom"
    for entry in $entries; do
        echo "# replica ${entry%%=*} ${entry#*=}" >>"$dir/replicas.prom"
        curl -sf "http://${entry%%=*}:9000/metrics" >>"$dir/replicas.prom" || true
    done
    curl -sf "http://127.0.0.1:$metrics_port/metrics" | grep '^edge_gateway_' >"$dir/gateway.prom" || true
    stop "$gateway"
    stop "$replicas"
    gzip -9 -c "$tmp/requests.jsonl" >"$dir/requests.jsonl.gz"
    sed -E 's/^[0-9T:.-]+Z +//' "$tmp/gateway.log" | sort | uniq -c | sort -rn | head -30 >"$dir/gateway-log-summary.txt"
    cat >"$dir/meta.json" <<EOF
{"scenario": "$scenario", "picker": "$picker", "rate": $rate, "duration": $duration, "timeout": $timeout,
 "seed": $seed, "replicas": $n, "hang_after_ms": $hang_after_ms, "hang_for_ms": $hang_for_ms,
 "gateway_cpu_seconds": $(python3 -c "print(round($cpu_after - $cpu_before, 3))"),
 "load_average": $(cut -d' ' -f1 /proc/loadavg), "loaded_at": $started}
EOF
    echo "$scenario-$picker" >>"$out/runs.txt"
    echo "  $scenario $picker: $(cat "$tmp/load.out")"
}

for scenario in $scenarios; do
    case $scenario in
        d|e) pickers="round_robin ewma least_request p2c peak_ewma" ;;
        f) pickers="round_robin least_request least_request+prefix peak_ewma+prefix" ;;
        g) pickers="least_request least_request+metrics p2c+metrics peak_ewma+metrics" ;;
        *) echo "unknown scenario $scenario" >&2; exit 2 ;;
    esac
    for picker in $pickers; do
        run "$scenario" "$picker"
    done
done

machine="$(nproc) vCPU $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -sr), load average before the run: $load_before"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
report=(loadtest/inference_picking_report.py --results "$out" --command "$command_line"
    --machine "$machine" --revision "$revision")
if $record; then report+=(--record loadtest/RESULTS.md); fi
python3 "${report[@]}"
