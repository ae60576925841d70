#!/usr/bin/env bash
# Instructions per request (valgrind --tool=callgrind; user space only),
# counted after a warm-up, for small GET and 1 KiB POST keep-alive requests,
# through edge-gateway (request metrics and JSON access log on) and through
# nginx configured like ingress-nginx (upstreaminfo access log on), and
# haproxy for reference: the same configurations as loadtest/run.sh
# (loadtest/peers.sh), one process each, the same oha load; gateway-bare and
# nginx-nolog are the same two with the access log (and the gateway's request
# metrics) off, for what those cost each.
# Deterministic enough to compare from commit to commit.
#
#   loadtest/callgrind.sh [--requests 20000] [--warmup 3000] [--connections 50]
#                         [--peers "gateway gateway-bare nginx nginx-nolog haproxy"] [--out DIR] [--no-build]
#                         [--tracing off|unsampled|sampled]
#   loadtest/callgrind.sh --report-only DIR   # the summary of an earlier run
#
# For each peer and workload: start the proxy under callgrind with
# instrumentation off, send --warmup requests, `callgrind_control -i on`,
# send exactly --requests requests (oha -n), `callgrind_control -i off`,
# stop it; instructions/request = the collected Ir / requests. Prints a
# table, the ratios to nginx, and edge-gateway's top functions (self cost),
# also grouped by crate. Writes DIR/summary.tsv, DIR/top-*.txt and the
# callgrind.out files (default DIR: loadtest/results/callgrind-<stamp>).
# --tracing turns the gateway's OpenTelemetry tracing on (ConfigMap
# enable-opentelemetry, otel-sampler AlwaysOff or AlwaysOn) towards a
# collector port where nothing listens: spans are made, queued and their
# export fails (dropped and counted), so the figure has the request-side
# cost without the protobuf encoding.
# Loopback only; bounded by the request counts; stops what it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

requests=20000
warmup=3000
connections=50
peers="gateway gateway-bare nginx nginx-nolog haproxy"
out=
build=1
report_only=
tracing=off
while [ $# -gt 0 ]; do
    case "$1" in
        --requests) requests=$2; shift 2 ;;
        --warmup) warmup=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --peers) peers=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        --report-only) report_only=$2; shift 2 ;;
        --tracing) tracing=$2; shift 2 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

# report DIR: the table, the ratios to nginx and edge-gateway's top functions.
report() {
    /usr/bin/python3 - "$1/summary.tsv" "$1" <<'PY'
import collections, re, sys
summary, out = sys.argv[1:]
rows = [line.rstrip("\n").split("\t") for line in open(summary)][1:]
per = {(r[0], r[1]): float(r[4]) for r in rows}
print(f"{'peer':13} {'workload':8} {'instructions/request':>21} {'vs nginx':>9}")
for (peer, workload), value in per.items():
    base = per.get(("nginx", workload))
    ratio = f"{value / base:.2f}x" if base else "-"
    print(f"{peer:13} {workload:8} {value:21,.0f} {ratio:>9}")
# edge-gateway's top functions and a per-crate grouping of self cost.
line_re = re.compile(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(.*)$")
for workload in ("get", "post1k"):
    try:
        text = open(f"{out}/top-gateway-{workload}.txt").read().splitlines()
    except FileNotFoundError:
        continue
    entries = []
    started = False
    for line in text:
        if "file:function" in line:
            started = True
            continue
        if not started or line.startswith("-"):
            continue
        if not line.strip():
            break
        m = line_re.match(line)
        if m:
            entries.append((int(m.group(1).replace(",", "")), m.group(2).strip()))
    total = per.get(("gateway", workload), 0)
    count = next((float(r[2]) for r in rows if r[0] == "gateway" and r[1] == workload), 1.0)
    print(f"\nedge-gateway, {workload}: top functions (self instructions per request)")
    for ir, name in entries[:25]:
        print(f"{ir / count:9.0f}  {name[:150]}")
    groups = collections.Counter()
    for ir, name in entries:
        obj = name.rsplit("[", 1)[-1] if name.endswith("]") else ""
        if "libc.so" in obj or "ld-linux" in obj:
            groups["libc (malloc, memcpy, ...)"] += ir
            continue
        fn = name.split(":", 1)[-1].lstrip("<")
        crate = re.split(r"::|[ <(\[]", fn, maxsplit=1)[0] or "?"
        groups[crate] += ir
    print(f"edge-gateway, {workload}: self instructions per request by crate (of {total:.0f})")
    for crate, ir in groups.most_common(14):
        print(f"{ir / count:9.0f}  {crate}")
    # Where the instructions go, inclusive of callees.
    inclusive = collections.Counter()
    try:
        for line in open(f"{out}/inclusive-gateway-{workload}.txt"):
            m = line_re.match(line)
            if not m or ":" not in m.group(2):
                continue
            fn = m.group(2).split(":", 1)[1].split(" [", 1)[0].strip()
            inclusive[fn] = max(inclusive[fn], int(m.group(1).replace(",", "")))
    except FileNotFoundError:
        pass
    parts = [
        ("tokio worker thread, all of it", "tokio::runtime::scheduler::multi_thread::worker::run"),
        ("client connection task (hyper server + proxy)", "gateway::server::Connection::serve::{{closure}}"),
        ("Proxy::phases (route, admit, pick, outbound, forward, deliver)", "gateway::proxy::Proxy::phases::{{closure}}"),
        ("upstream request (headers, X-Forwarded-*, request id)", "gateway::proxy::outbound::upstream_request"),
        # The names before the request path was split into phase modules,
        # for a --report-only of an earlier run.
        ("Proxy::proxy (before the phase split)", "gateway::proxy::Proxy::proxy::{{closure}}"),
        ("request rewrite (before the phase split)", "gateway::proxy::rewrite"),
        ("inspect (normalise host and path)", "gateway::proxy::inspect::inspect"),
        ("RouteTable::find", "gateway::table::RouteTable::find"),
        ("response end (metrics, log record hand-off)", "gateway::proxy::body::ResponseBody::finish"),
        ("access-log thread (format + write)", "gateway::access_log::write_loop"),
        ("  of which JSON line formatting", "gateway::access_log::json_line::{{closure}}"),
    ]
    if inclusive:
        print(f"edge-gateway, {workload}: inclusive instructions per request")
        for label, fn in parts:
            if fn in inclusive:
                print(f"{inclusive[fn] / count:9.0f}  {label}  ({fn})")
PY
}
if [ -n "$report_only" ]; then
    report "$report_only"
    exit 0
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
bin=$CARGO_TARGET_DIR/release
if [ "$build" = 1 ]; then
    cargo build --release --quiet -p edge-gateway -p edge-gateway-benches --bins
fi
missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PATH=$PATH:$HOME/.cargo/bin
command -v oha >/dev/null || cargo install oha --locked

out=${out:-$root/loadtest/results/callgrind-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
work=$(mktemp -d)
upstream_port=19100
# shellcheck source=loadtest/peers.sh
source "$root/loadtest/peers.sh"
make_certs
head -c 1024 /dev/zero | tr '\0' 'a' >"$work/body-1k"

start taskset -c 1 "$bin/bench-upstream" --listen "127.0.0.1:$upstream_port"
wait_http "http://127.0.0.1:$upstream_port/"

# Valgrind is slow: wait longer for a peer to come up.
wait_slow() {
    local _
    for _ in $(seq 600); do
        curl -sf -o /dev/null --max-time 5 "$1" && return 0
        sleep 0.2
    done
    echo "no answer from $1" >&2
    return 1
}

grind=(valgrind --tool=callgrind --instr-atstart=no --dump-instr=no --vgdb=yes)
summary=$out/summary.tsv
printf 'peer\tworkload\trequests\tinstructions\tper_request\n' >"$summary"

# tracing_config_map DIR unsampled|sampled: the ConfigMap bench/otel
# turning tracing on, its collector a port where nothing listens.
tracing_config_map() {
    local sampler=AlwaysOff
    [ "$2" = sampled ] && sampler=AlwaysOn
    cat >"$1/otel.json" <<JSON
{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "otel", "namespace": "bench"},
 "data": {"enable-opentelemetry": "true", "otlp-collector-host": "127.0.0.1",
          "otlp-collector-port": "19999", "otel-sampler": "$sampler"}}
JSON
}

# measure PEER WORKLOAD
measure() {
    local peer=$1 workload=$2 port file="$out/callgrind.$1.$2.out"
    case "$peer" in
        gateway | gateway-bare)
            port=19180
            gateway_manifests "$work/gateway"
            local extra=()
            [ "$peer" = gateway ] || extra=(--enable-metrics=false --access-log off)
            if [ "$tracing" != off ]; then
                tracing_config_map "$work/gateway" "$tracing"
                extra+=(--configmap bench/otel)
            fi
            # shellcheck disable=SC2046 # gateway_args prints words on purpose
            start env TOKIO_WORKER_THREADS=1 taskset -c 0 "${grind[@]}" --callgrind-out-file="$file" \
                "$bin/edge-gateway" $(gateway_args "$port" 19443 19254 rsa "$work/gateway") "${extra[@]}" \
                >/dev/null 2>"$out/$peer.$workload.stderr"
            ;;
        nginx | nginx-nolog)
            port=19280
            nginx_conf "$work/$peer" "$port" 19543 19544 4k single
            if [ "$peer" = nginx-nolog ]; then
                sed -i 's|^\( *\)access_log /dev/null upstreaminfo .*$|\1access_log off;|' "$work/$peer/nginx.conf"
                if grep -q 'upstreaminfo if=' "$work/$peer/nginx.conf"; then
                    echo "nginx-nolog: the access log is still on" >&2
                    exit 1
                fi
            fi
            start taskset -c 0 "${grind[@]}" --callgrind-out-file="$file" \
                nginx -p "$work/$peer" -c nginx.conf 2>"$out/$peer.$workload.stderr"
            ;;
        haproxy)
            port=19380
            haproxy_cfg "$work/haproxy" "$port" 19643 19644
            start taskset -c 0 "${grind[@]}" --callgrind-out-file="$file" \
                haproxy -db -f "$work/haproxy/haproxy.cfg" >/dev/null 2>"$out/$peer.$workload.stderr"
            ;;
        *) echo "unknown peer $peer" >&2; exit 2 ;;
    esac
    local pid=$last_pid url="http://127.0.0.1:$port/" args=()
    [ "$workload" = post1k ] && args=(-m POST -D "$work/body-1k" -T application/octet-stream)
    wait_slow "$url"
    taskset -c 1 oha -n "$warmup" -c "$connections" --no-tui --output-format json "${args[@]}" "$url" >/dev/null
    callgrind_control -i on "$pid" >/dev/null
    taskset -c 1 oha -n "$requests" -c "$connections" --no-tui --output-format json "${args[@]}" "$url" \
        >"$out/oha.$peer.$workload.json"
    callgrind_control -i off "$pid" >/dev/null
    stop "$pid"
    local total
    total=$(awk '/^(summary|totals):/ {if ($2 > max) max = $2} END {print max + 0}' "$file")
    /usr/bin/python3 - "$out/oha.$peer.$workload.json" "$peer" "$workload" "$total" >>"$summary" <<'PY'
import json, sys
path, peer, workload, total = sys.argv[1:]
report = json.load(open(path))
done = sum(report.get("statusCodeDistribution", {}).values())
ok = sum(n for code, n in report.get("statusCodeDistribution", {}).items() if code.startswith("2"))
if ok != done or done == 0:
    print(f"warning: {peer} {workload}: {done - ok} non-2xx of {done}", file=sys.stderr)
print(f"{peer}\t{workload}\t{done}\t{total}\t{int(total) / max(done, 1):.0f}")
PY
    if [ "$peer" = gateway ]; then
        callgrind_annotate --auto=no --inclusive=no --threshold=99 "$file" >"$out/top-$peer-$workload.txt" 2>/dev/null || true
        callgrind_annotate --auto=no --inclusive=yes --threshold=99 "$file" >"$out/inclusive-$peer-$workload.txt" 2>/dev/null || true
    fi
    log "$peer $workload: $(tail -n 1 "$summary" | cut -f5) instructions/request"
}

for workload in get post1k; do
    for peer in $peers; do
        measure "$peer" "$workload"
    done
done

report "$out"
