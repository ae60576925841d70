#!/usr/bin/env bash
# Full TLS handshakes per CPU-second: edge-gateway next to nginx configured
# with ingress-nginx's TLS defaults, in one run, interleaved, for RSA-2048
# and ECDSA P-256 certificates.
#
#   loadtest/tls-handshakes.sh [--seconds 10] [--rounds 3]
#
# The server under test is pinned to CPU 0, the client (openssl s_time, new
# session for every connection, GET /healthz) to CPU 1. The figure is the
# server's CPU time (utime+stime from /proc) per completed connection, so
# the client's own speed does not matter. Loopback only; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
if ! command -v nginx >/dev/null; then
    apt-get update -qq && apt-get install -y -qq nginx-light
fi

source loadtest/common.sh

# Certificates.
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -keyout "$work/rsa.key" -out "$work/rsa.crt" 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=bench.test \
    -addext subjectAltName=DNS:bench.test -keyout "$work/ecdsa.key" -out "$work/ecdsa.crt" 2>/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

start_gateway() { # $1 = rsa|ecdsa
    mkdir -p "$work/manifests-$1"
    python3 - "$work/$1.crt" "$work/$1.key" > "$work/manifests-$1/secret.json" <<'PY'
import json, sys
print(json.dumps({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
    "metadata": {"name": "bench", "namespace": "bench"},
    "stringData": {"tls.crt": open(sys.argv[1]).read(), "tls.key": open(sys.argv[2]).read()}}))
PY
    start taskset -c 0 "$bin/edge-gateway" --manifests "$work/manifests-$1" --bind-address 127.0.0.1 \
        --http-port 0 --https-port 18443 --metrics-port 0 --default-ssl-certificate bench/bench \
        >/dev/null 2>"$work/gateway-$1.err"
    server_pid=$last_pid
}

start_nginx() { # $1 = rsa|ecdsa; ingress-nginx's TLS defaults
    mkdir -p "$work/nginx-$1/logs"
    cat > "$work/nginx-$1/nginx.conf" <<CONF
daemon off;
worker_processes 1;
error_log $work/nginx-$1/logs/error.log;
pid $work/nginx-$1/nginx.pid;
events { worker_connections 16384; }
http {
    access_log off;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_ciphers 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384';
    ssl_prefer_server_ciphers on;
    ssl_ecdh_curve auto;
    ssl_session_cache shared:SSL:10m;
    ssl_session_timeout 10m;
    ssl_session_tickets off;
    ssl_buffer_size 4k;
    server {
        listen 127.0.0.1:18443 ssl;
        http2 on;
        ssl_certificate $work/$1.crt;
        ssl_certificate_key $work/$1.key;
        location /healthz { return 200; }
    }
}
CONF
    # nginx 1.22 knows "http2" only as a listen parameter.
    if ! nginx -t -p "$work/nginx-$1" -c nginx.conf >/dev/null 2>&1; then
        sed -i -e 's/listen 127.0.0.1:18443 ssl;/listen 127.0.0.1:18443 ssl http2;/' -e '/^        http2 on;/d' "$work/nginx-$1/nginx.conf"
    fi
    start taskset -c 0 nginx -p "$work/nginx-$1" -c nginx.conf
    local master=$last_pid
    for _ in $(seq 50); do
        server_pid=$(pgrep -P "$master" | head -1 || true)
        [ -n "$server_pid" ] && break
        sleep 0.1
    done
}

wait_port() {
    for _ in $(seq 100); do
        (echo > /dev/tcp/127.0.0.1/18443) 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 18443" >&2
    exit 1
}

measure() { # $1 = peer, $2 = rsa|ecdsa; prints "peer key connections cpu_seconds"
    "start_$1" "$2"
    wait_port
    local before after out connections
    before=$(cpu_ticks "$server_pid")
    out=$(taskset -c 1 openssl s_time -connect 127.0.0.1:18443 -new -www /healthz -time "$seconds" 2>/dev/null || true)
    after=$(cpu_ticks "$server_pid")
    connections=$(echo "$out" | awk '/connections in/ && /real seconds/ {print $1; exit}')
    echo "$1 $2 ${connections:-0} $(( after - before ))" >> "$work/results.txt"
    kill "$server_pid" 2>/dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}

for round in $(seq "$rounds"); do
    for key in rsa ecdsa; do
        measure gateway "$key"
        measure nginx "$key"
    done
    echo "round $round done" >&2
done

python3 - "$work/results.txt" "$hz" "$seconds" <<'PY'
import statistics, sys
hz = float(sys.argv[2])
seconds = float(sys.argv[3])
rows = {}
for line in open(sys.argv[1]):
    peer, key, connections, ticks = line.split()
    connections, cpu = int(connections), int(ticks) / hz
    rows.setdefault((peer, key), []).append((connections / seconds, connections / cpu if cpu else 0.0, cpu * 1e6 / max(connections, 1)))
print(f"{'peer':8} {'key':6} {'conn/s':>8} {'handshakes/CPU-s':>17} {'CPU us/handshake':>17}  (medians of {len(next(iter(rows.values())))}; spread = min..max handshakes/CPU-s)")
for key in ("rsa", "ecdsa"):
    for peer in ("gateway", "nginx"):
        r = rows[(peer, key)]
        rate = statistics.median(x[0] for x in r)
        per_cpu = [x[1] for x in r]
        us = statistics.median(x[2] for x in r)
        print(f"{peer:8} {key:6} {rate:8.0f} {statistics.median(per_cpu):17.0f} {us:17.1f}  ({min(per_cpu):.0f}..{max(per_cpu):.0f})")
    g = statistics.median(x[1] for x in rows[("gateway", key)])
    n = statistics.median(x[1] for x in rows[("nginx", key)])
    print(f"  {key}: gateway / nginx handshakes per CPU-second = {g / n:.2f}")
PY
