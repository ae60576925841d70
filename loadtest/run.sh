#!/usr/bin/env bash
# edge-gateway side by side with nginx (configured like ingress-nginx's
# generated nginx.conf) and haproxy, in ONE run, interleaved, with the same
# workloads and the same CPU pinning, plus the benchmark figures of issue 10.
#
#   loadtest/run.sh [--quick] [--duration SECONDS] [--repeats N] [--out DIR]
#                   [--no-build] [--no-callgrind] [--no-figures]
#
# Peers (each one worker thread, pinned with the upstream to CPU 0; the
# client, oha or openssl s_time, pinned to CPU 1):
#   gateway   edge-gateway, TOKIO_WORKER_THREADS=1, --enable-metrics,
#             JSON access log on stdout (to /dev/null)
#   nginx     ingress-nginx's generated config without its Lua: upstream
#             keepalive 320, proxy_http_version 1.1, the ingress proxy
#             headers, $request_id, proxy_buffering off,
#             proxy_request_buffering on, proxy_buffer_size 4k, its TLS
#             defaults, upstreaminfo access log (to /dev/null)
#   nginx64k  the same with 64k proxy buffers (1 MiB workload only)
#   haproxy   nbthread 1, keep-alive, http-reuse always, option
#             http-no-delay, the same request headers, log to stdout (/dev/null)
# Workloads: small GET keep-alive, 1 KiB POST keep-alive, 1 MiB response,
# new connection per request, HTTPS keep-alive, full TLS handshakes (RSA-2048
# and ECDSA P-256, openssl s_time -new), SSE time to first event (against
# direct). Each measurement records req/s, p50/p99/p99.9, errors and the
# proxy's CPU time (utime+stime of all its threads from /proc/PID/stat,
# before/after) per completed request; repeats interleave the peers in a
# rotating order; the report gives medians, min..max spread and ratios to
# nginx. Also: the gateway's RSS with 10,000 Ingresses (manifests folder),
# bench-figures (lookup, compile, endpoint update, header work) and
# loadtest/callgrind.sh (instructions per request).
#
# Output: a results folder (default loadtest/results/<UTC stamp>) with raw
# output, summary.md and PNG plots; the summary and plots are copied into
# loadtest/RESULTS.md (between the proxy-comparison markers) and
# loadtest/plots/. Bounded (every load run has a duration or a count),
# loopback only; stops only what it started, by PID.
#
# --quick: 2 s runs, 1 repeat, fewer samples, callgrind with fewer
# requests: a smoke run (its numbers are not for RESULTS.md comparisons).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

quick=0
duration=10
warmup=2
repeats=3
out=
build=1
callgrind=1
figures=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --duration) duration=$2; shift 2 ;;
        --repeats) repeats=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --no-callgrind) callgrind=0; shift ;;
        --no-figures) figures=0; shift ;;
        -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
sse_samples=200
handshake_seconds=$duration
if [ "$quick" = 1 ]; then
    duration=2
    warmup=1
    repeats=1
    sse_samples=30
    handshake_seconds=2
fi
keepalive_connections=50
large_connections=10
newconn_connections=20

# ---------------------------------------------------------------- setup
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
bin=$CARGO_TARGET_DIR/release
if [ "$build" = 1 ]; then
    cargo build --release --quiet -p edge-gateway -p edge-gateway-benches --bins
fi
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v valgrind >/dev/null || missing+=(valgrind)
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || missing+=(python3-matplotlib)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PATH=$PATH:$HOME/.cargo/bin
command -v oha >/dev/null || cargo install oha --locked
if [ "$(nproc)" -lt 2 ]; then
    echo "needs 2 CPUs (proxy on CPU 0, client on CPU 1)" >&2
    exit 1
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${out:-$root/loadtest/results/$stamp}
mkdir -p "$out/raw"
work=$(mktemp -d)
# shellcheck source=loadtest/peers.sh
source "$root/loadtest/peers.sh"
hz=$(getconf CLK_TCK)

# Ports: per peer HTTP, HTTPS (RSA) and HTTPS (ECDSA); the upstream on 19000.
declare -A http_port=([gateway]=18080 [nginx]=28080 [nginx64k]=29080 [haproxy]=24080)
declare -A rsa_port=([gateway]=18443 [nginx]=28443 [haproxy]=24443)
declare -A ecdsa_port=([gateway]=18444 [nginx]=28444 [haproxy]=24444)
# The process whose CPU time counts, per peer.
declare -A cpu_pid=()

make_certs
head -c 1024 /dev/zero | tr '\0' 'a' >"$work/body-1k"

# ---------------------------------------------------------------- peers
log "starting peers (proxies and upstream on CPU 0, clients on CPU 1)"
start taskset -c 0 "$bin/bench-upstream" --listen "127.0.0.1:$upstream_port" --sse-gap-ms 20
wait_http "http://127.0.0.1:$upstream_port/"

start_gateway() { # NAME HTTP HTTPS ADMIN SECRET
    local dir=$work/$1
    gateway_manifests "$dir"
    # shellcheck disable=SC2046 # gateway_args prints words on purpose
    start env TOKIO_WORKER_THREADS=1 taskset -c 0 "$bin/edge-gateway" $(gateway_args "$2" "$3" "$4" "$5" "$dir") \
        >/dev/null 2>"$out/raw/$1.stderr"
    cpu_pid[$1]=$last_pid
    wait_http "http://127.0.0.1:$4/healthz"
    wait_http "http://127.0.0.1:$2/"
}
start_gateway gateway "${http_port[gateway]}" "${rsa_port[gateway]}" 18254 rsa
# A second gateway serves the ECDSA certificate (one HTTPS port per process).
start_gateway gateway-ecdsa 18081 "${ecdsa_port[gateway]}" 18255 ecdsa

start_nginx() { # NAME HTTP HTTPS_RSA HTTPS_ECDSA BUFFER
    nginx_conf "$work/$1" "$2" "$3" "$4" "$5"
    cat "$work/$1/nginx.conf" "$work/$1/locations.conf" >"$out/raw/$1.conf"
    start taskset -c 0 nginx -p "$work/$1" -c nginx.conf
    cpu_pid[$1]=$(child_of "$last_pid")
    [ -n "${cpu_pid[$1]}" ] || { echo "nginx ($1) has no worker" >&2; exit 1; }
    wait_http "http://127.0.0.1:$2/"
}
start_nginx nginx "${http_port[nginx]}" "${rsa_port[nginx]}" "${ecdsa_port[nginx]}" 4k
start_nginx nginx64k "${http_port[nginx64k]}" 29443 29444 64k

haproxy_cfg "$work/haproxy" "${http_port[haproxy]}" "${rsa_port[haproxy]}" "${ecdsa_port[haproxy]}"
cp "$work/haproxy/haproxy.cfg" "$out/raw/"
start taskset -c 0 haproxy -db -f "$work/haproxy/haproxy.cfg" >/dev/null
cpu_pid[haproxy]=$last_pid
wait_http "http://127.0.0.1:${http_port[haproxy]}/"

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command: loadtest/run.sh $([ "$quick" = 1 ] && echo --quick) (duration ${duration}s, warm-up ${warmup}s, repeats $repeats)"
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    rev=${EDGE_GATEWAY_REV:-}
    if [ -z "$rev" ] && rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null); then
        git -C "$root" diff --quiet HEAD 2>/dev/null || rev="$rev with uncommitted changes"
    fi
    echo "edge-gateway: ${rev:-unknown revision}, TOKIO_WORKER_THREADS=1, --enable-metrics --access-log json (stdout to /dev/null)"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*version: //'), 1 worker, upstreaminfo access log to /dev/null"
    echo "haproxy: $(haproxy -v | head -1 | awk '{print $3}'), nbthread 1, log to stdout (/dev/null)"
    echo "oha: $(oha --version | awk '{print $2}'), openssl: $(openssl version | awk '{print $2}')"
} >"$out/meta.txt"

# ---------------------------------------------------------------- measurement
runs=$out/runs.tsv
printf 'repeat\tpeer\tworkload\tkind\tfile\tcpu_ticks\textra\n' >"$runs"

# oha_run REPEAT PEER WORKLOAD URL CONNECTIONS OHA-ARGS...
oha_run() {
    local repeat=$1 peer=$2 workload=$3 url=$4 connections=$5
    shift 5
    local pid=${cpu_pid[$peer]} file="raw/$workload-$peer-$repeat.json"
    taskset -c 1 oha -z "${warmup}s" -c "$connections" --no-tui --output-format json "$@" "$url" >/dev/null
    local before after
    before=$(cpu_ticks "$pid")
    taskset -c 1 oha -z "${duration}s" -w -c "$connections" --no-tui --output-format json "$@" "$url" >"$out/$file"
    after=$(cpu_ticks "$pid")
    printf '%s\t%s\t%s\toha\t%s\t%s\t\n' "$repeat" "$peer" "$workload" "$file" "$((after - before))" >>"$runs"
}

# handshake_run REPEAT PEER KEY: full handshakes with openssl s_time -new.
handshake_run() {
    local repeat=$1 peer=$2 key=$3 port pid
    if [ "$key" = rsa ]; then port=${rsa_port[$peer]}; else port=${ecdsa_port[$peer]}; fi
    pid=${cpu_pid[$peer]}
    if [ "$peer" = gateway ] && [ "$key" = ecdsa ]; then pid=${cpu_pid[gateway-ecdsa]}; fi
    local file="raw/tls-$key-$peer-$repeat.txt" before after
    taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -www /healthz -time 1 >/dev/null 2>&1 || true
    before=$(cpu_ticks "$pid")
    taskset -c 1 openssl s_time -connect "127.0.0.1:$port" -new -www /healthz -time "$handshake_seconds" \
        >"$out/$file" 2>&1 || true
    after=$(cpu_ticks "$pid")
    printf '%s\t%s\ttls-%s\ts_time\t%s\t%s\t%s\n' "$repeat" "$peer" "$key" "$file" "$((after - before))" "$handshake_seconds" >>"$runs"
}

# sse_run REPEAT PEER: time to the first event, new connection per sample.
sse_run() {
    local repeat=$1 peer=$2 port file="raw/sse-$2-$1.txt"
    if [ "$peer" = direct ]; then port=$upstream_port; else port=${http_port[$peer]}; fi
    taskset -c 1 "$bin/sse-probe" --addr "127.0.0.1:$port" --samples 20 >/dev/null || true
    taskset -c 1 "$bin/sse-probe" --addr "127.0.0.1:$port" --samples "$sse_samples" >"$out/$file" || true
    printf '%s\t%s\tsse\tsse\t%s\t0\t\n' "$repeat" "$peer" "$file" >>"$runs"
}

# Each repeat rotates the peer order, so no peer always runs first.
rotate() { # N ITEMS...: the items rotated left by N
    local n=$1
    shift
    local items=("$@") i
    for i in "${!items[@]}"; do echo "${items[$(((i + n) % ${#items[@]}))]}"; done
}

for repeat in $(seq "$repeats"); do
    mapfile -t peers < <(rotate "$((repeat - 1))" gateway nginx haproxy)
    mapfile -t large_peers < <(rotate "$((repeat - 1))" gateway nginx nginx64k haproxy)
    mapfile -t sse_peers < <(rotate "$((repeat - 1))" direct gateway nginx haproxy)
    log "repeat $repeat/$repeats: order ${peers[*]}"
    for peer in "${peers[@]}"; do
        oha_run "$repeat" "$peer" get "http://127.0.0.1:${http_port[$peer]}/" "$keepalive_connections"
    done
    for peer in "${peers[@]}"; do
        oha_run "$repeat" "$peer" post1k "http://127.0.0.1:${http_port[$peer]}/" "$keepalive_connections" \
            -m POST -D "$work/body-1k" -T application/octet-stream
    done
    for peer in "${large_peers[@]}"; do
        oha_run "$repeat" "$peer" get1m "http://127.0.0.1:${http_port[$peer]}/1m" "$large_connections"
    done
    for peer in "${peers[@]}"; do
        oha_run "$repeat" "$peer" newconn "http://127.0.0.1:${http_port[$peer]}/" "$newconn_connections" \
            --disable-keepalive
    done
    for peer in "${peers[@]}"; do
        oha_run "$repeat" "$peer" https "https://127.0.0.1:${rsa_port[$peer]}/" "$keepalive_connections" --insecure
    done
    for key in rsa ecdsa; do
        for peer in "${peers[@]}"; do handshake_run "$repeat" "$peer" "$key"; done
    done
    for peer in "${sse_peers[@]}"; do sse_run "$repeat" "$peer"; done
done

# ---------------------------------------------------------------- memory
log "RSS with 10,000 Ingresses"
"$bin/gen-manifests" "$work/fleet-10k" --ingresses 10000 --hosts 1000 --mix mixed >"$out/raw/rss-manifests.txt"
cp "$work/gateway/bench.json" "$work/fleet-10k/"
started=$(date +%s.%N)
# shellcheck disable=SC2046 # gateway_args prints words on purpose
start env TOKIO_WORKER_THREADS=1 taskset -c 0 "$bin/edge-gateway" $(gateway_args 17080 17443 17254 rsa "$work/fleet-10k") \
    >/dev/null 2>"$out/raw/rss-gateway.stderr"
rss_pid=$last_pid
for _ in $(seq 1200); do curl -sf -o /dev/null http://127.0.0.1:17254/healthz && break; sleep 0.05; done
ready=$(date +%s.%N)
wait_http http://127.0.0.1:17080/
taskset -c 1 oha -z "${warmup}s" -c 50 --no-tui --output-format json http://127.0.0.1:17080/ >"$out/raw/rss-load.json"
sleep 1
grep -E '^(VmRSS|VmHWM)' "/proc/$rss_pid/status" >"$out/raw/rss-10k.txt"
awk -v a="$started" -v b="$ready" 'BEGIN {printf "ready_seconds %.2f\n", b - a}' >>"$out/raw/rss-10k.txt"
curl -s http://127.0.0.1:17254/metrics | grep -c '^nginx_ingress_controller_' >"$out/raw/rss-metric-lines.txt" || true
stop "$rss_pid"

# ---------------------------------------------------------------- figures, callgrind
for peer in "${!cpu_pid[@]}"; do
    echo "$peer ${cpu_pid[$peer]}"
done >"$out/raw/pids.txt"
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

if [ "$figures" = 1 ]; then
    log "bench-figures (lookup, compile, endpoint update, header work)"
    quick_flag=()
    [ "$quick" = 1 ] && quick_flag=(--quick)
    taskset -c 0 "$bin/bench-figures" "${quick_flag[@]}" | tee "$out/raw/figures.txt"
fi
if [ "$callgrind" = 1 ]; then
    log "callgrind: instructions per request"
    requests=20000
    [ "$quick" = 1 ] && requests=3000
    "$root/loadtest/callgrind.sh" --no-build --requests "$requests" --out "$out/callgrind" \
        | tee "$out/raw/callgrind.txt"
fi

# ---------------------------------------------------------------- report
log "report"
/usr/bin/python3 "$root/loadtest/report.py" "$out" "$hz"
plots=$root/loadtest/plots
mkdir -p "$plots"
cp "$out"/proxy-*.png "$plots/"
/usr/bin/python3 - "$root/loadtest/RESULTS.md" "$out/summary.md" <<'PY'
import sys
path, summary = sys.argv[1:]
begin, end = "<!-- proxy-comparison:begin -->", "<!-- proxy-comparison:end -->"
section = begin + "\n" + open(summary).read().rstrip() + "\n" + end
try:
    text = open(path).read()
except FileNotFoundError:
    text = "# Load-test results\n"
if begin in text and end in text:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    text = head + section + tail
else:
    text = text.rstrip() + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
log "done: $out/summary.md, loadtest/RESULTS.md"
