#!/usr/bin/env bash
# Resident memory per idle keep-alive HTTP/1.1 client connection, and how
# much of it comes back once they close (the issue's target: ≤ 8 KiB RSS
# per idle keep-alive HTTP/1 connection at 2,000 connections, returned after
# they close), for edge-gateway and for nginx configured like ingress-nginx,
# side by side in one run: the same configurations as loadtest/run.sh
# (loadtest/peers.sh), one process each, the same upstream (bench-upstream),
# the peers and the upstream on CPU 0, the client on CPU 1.
#
#   loadtest/idle-connections.sh [--connections 2000] [--peers "gateway nginx"]
#                                [--out DIR] [--no-build | --build]
#                                [--idle-wait 2] [--close-wait 3] [--concurrency 1]
#   loadtest/idle-connections.sh --report-only DIR   # the summary of an earlier run
#
# For each peer, one after the other (loadtest/idle_connections.py): start
# it; 200 warm-up requests on 10 keep-alive connections, closed; read the
# memory of its serving process (VmRSS, RssAnon from /proc/PID/status, Pss
# from /proc/PID/smaps_rollup); open N connections one after another, each
# with one `GET / HTTP/1.1` (Host 127.0.0.1:PORT, as oha sends it) whose
# response is read to its end (Content-Length or chunked), and leave them
# open and idle; after --idle-wait s read the memory again; close them all,
# wait until the peer holds none of them (20 s at most) and at least
# --close-wait s, read it once more; then 100 requests on one connection
# (an allocator may give memory back lazily, on its next allocations) and
# a last reading; stop the peer.
#   KiB per idle connection = (RSS with N idle - RSS before) / N
#   returned = (RSS with N idle - RSS after close) / (growth), in %
# What is read: edge-gateway, its one process (all its threads share the
# figure: TOKIO_WORKER_THREADS=1, so mimalloc's per-thread heaps are those
# of its one worker and its helper threads); nginx, its one worker
# (worker_processes 1 in peers.sh; the master holds no client connection:
# its RSS is recorded, not summed). Kernel socket buffers are not in RSS.
# One request in flight at a time (--concurrency 1): each proxy keeps one
# upstream connection, so the growth is the idle client connections' cost
# alone; --concurrency K opens K at a time with their K requests in flight
# together, so the growth also holds what the burst left behind (upstream
# connections kept alive, allocator high-water).
# Fails (exit 1) when a response is not a framed keep-alive 200, when the
# peer does not hold all N connections while they are idle, or when its RSS
# does not grow. Writes DIR/summary.md, DIR/<peer>.json, DIR/meta.txt and
# the peers' stderr (default DIR: loadtest/results/idle-connections-<stamp>).
# Default: no build (--build: cargo build the release binaries first).
# Loopback only; bounded; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

connections=2000
peers="gateway nginx"
out=
build=0
report_only=
idle_wait=2
close_wait=3
concurrency=1
while [ $# -gt 0 ]; do
    case "$1" in
        --connections) connections=$2; shift 2 ;;
        --peers) peers=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --build) build=1; shift ;;
        --no-build) build=0; shift ;;
        --idle-wait) idle_wait=$2; shift 2 ;;
        --close-wait) close_wait=$2; shift 2 ;;
        --concurrency) concurrency=$2; shift 2 ;;
        --report-only) report_only=$2; shift 2 ;;
        -h|--help) sed -n '2,45p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
py=$root/loadtest/idle_connections.py
if [ -n "$report_only" ]; then
    # shellcheck disable=SC2086 # the peer list is words on purpose
    /usr/bin/python3 "$py" report "$report_only" $peers
    exit 0
fi
case "$connections" in
    '' | *[!0-9]*) echo "--connections needs a number" >&2; exit 2 ;;
esac
for peer in $peers; do
    case "$peer" in
        gateway | nginx) ;;
        *) echo "unknown peer $peer (gateway, nginx)" >&2; exit 2 ;;
    esac
done

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
bin=$CARGO_TARGET_DIR/release
if [ "$build" = 1 ]; then
    cargo build --release --quiet -p edge-gateway -p edge-gateway-benches --bins
fi
for binary in edge-gateway bench-upstream; do
    [ -x "$bin/$binary" ] || { echo "$bin/$binary is missing (run with --build)" >&2; exit 1; }
done
if ! command -v nginx >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "needs 2 CPUs (peer on CPU 0, client on CPU 1)" >&2
    exit 1
fi

# Descriptors: the client holds N sockets, edge-gateway N plus its own
# (it inherits this limit); nginx's worker sets its own (worker_rlimit_nofile).
want=$((connections + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want" ]; then
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
        echo "open-files hard limit $hard < $want needed for $connections connections" >&2
        exit 1
    fi
    ulimit -n "$want"
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=${out:-$root/loadtest/results/idle-connections-$stamp}
mkdir -p "$out"
work=$(mktemp -d)
upstream_port=19700
# shellcheck source=loadtest/peers.sh
source "$root/loadtest/peers.sh"
# A signal ends the script through its EXIT trap (cleanup: stops by PID).
trap 'exit 130' INT TERM
make_certs

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "command: loadtest/idle-connections.sh --connections $connections --peers \"$peers\" (idle wait ${idle_wait}s, close wait ${close_wait}s, $concurrency in flight at a time)"
    echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
    rev=${EDGE_GATEWAY_REV:-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)}
    echo "edge-gateway: binary built $(date -u -r "$bin/edge-gateway" '+%Y-%m-%d %H:%M UTC') (tree at $rev), TOKIO_WORKER_THREADS=1, --enable-metrics --access-log json (stdout to /dev/null); RSS of its process"
    echo "nginx: $(nginx -v 2>&1 | sed 's/.*version: //'), master + 1 worker, upstreaminfo access log to /dev/null; RSS of its worker"
} >"$out/meta.txt"

start taskset -c 0 "$bin/bench-upstream" --listen "127.0.0.1:$upstream_port"
wait_http "http://127.0.0.1:$upstream_port/"

# process_name PID: the command name of PID (empty once it is gone).
process_name() { cat "/proc/$1/comm" 2>/dev/null || true; }

# measure PEER: starts PEER, runs the measurement against it, stops it;
# PEER goes to done_peers or, when the measurement fails, to failed.
measure() {
    local peer=$1 port pid master='' also=() metrics=()
    case "$peer" in
        gateway)
            port=19780
            gateway_manifests "$work/gateway"
            # shellcheck disable=SC2046 # gateway_args prints words on purpose
            start env TOKIO_WORKER_THREADS=1 taskset -c 0 "$bin/edge-gateway" \
                $(gateway_args "$port" 19743 19754 rsa "$work/gateway") \
                >/dev/null 2>"$out/gateway.stderr"
            pid=$last_pid
            wait_http http://127.0.0.1:19754/healthz
            metrics=(--metrics-url http://127.0.0.1:19754/metrics)
            ;;
        nginx)
            port=19880
            nginx_conf "$work/nginx" "$port" 19843 19844 4k
            cat "$work/nginx/nginx.conf" "$work/nginx/locations.conf" >"$out/nginx.conf"
            start taskset -c 0 nginx -p "$work/nginx" -c nginx.conf 2>"$out/nginx.stderr"
            master=$last_pid
            pid=$(child_of "$master")
            [ -n "$pid" ] || { echo "nginx has no worker" >&2; exit 1; }
            also=(--also-pid "$master")
            ;;
    esac
    wait_http "http://127.0.0.1:$port/"
    local name
    name=$(process_name "$pid")
    case "$peer:$name" in
        gateway:edge-gateway | nginx:nginx) ;;
        *) echo "$peer: PID $pid is '$name', not the peer" >&2; exit 1 ;;
    esac
    log "$peer: measuring $connections idle connections (PID $pid)"
    local rc=0
    taskset -c 1 timeout --foreground 600 /usr/bin/python3 "$py" measure --peer "$peer" --port "$port" \
        --pid "$pid" "${also[@]}" "${metrics[@]}" --connections "$connections" \
        --idle-wait "$idle_wait" --close-wait "$close_wait" --concurrency "$concurrency" --out "$out/$peer.json" || rc=$?
    stop "${master:-$pid}"
    if [ "$rc" = 0 ]; then
        done_peers+=("$peer")
    else
        failed+=("$peer")
    fi
}

done_peers=()
failed=()
for peer in $peers; do
    measure "$peer"
done

if [ "${#done_peers[@]}" -gt 0 ]; then
    /usr/bin/python3 "$py" report "$out" "${done_peers[@]}"
fi
log "results in $out"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "measurement failed for: ${failed[*]}" >&2
    exit 1
fi
