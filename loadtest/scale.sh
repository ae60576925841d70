#!/usr/bin/env bash
# Control-plane scale (issue 20): the gateway with N Ingresses, one model each
# (Service + EndpointSlice + Ingress, `gen-manifests`), from each source:
#   files  a manifests folder with one file per model
#   list   a manifests folder with one `kind: List` file
#   api    the (fake) Kubernetes API server, seeded with the same objects
# For each: time to ready, RSS when ready, idle CPU over --idle seconds, then
# --changes Ingress changes one after the other (each adds a
# permanent-redirect; "served" = a client gets that Location), the change
# latency (median, max) and RSS after them. Prints one table row per source.
#
# loadtest/scale.sh [--ingresses 10000] [--changes 100] [--idle 10]
#                   [--sources "files list api"] [--format yaml|json]
#                   [--gateway BIN] [--no-build]
# --gateway runs another edge-gateway binary (an earlier build, for a
# before/after table); --no-build uses the release binaries as they are.
#
# Bounded: every wait has a deadline; every process started is stopped by PID.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ingresses=10000
changes=100
idle=10
sources="files list api"
format=yaml
gateway=''
build=1
while [ $# -gt 0 ]; do
    case $1 in
    --ingresses) ingresses=$2; shift 2 ;;
    --changes) changes=$2; shift 2 ;;
    --idle) idle=$2; shift 2 ;;
    --sources) sources=$2; shift 2 ;;
    --format) format=$2; shift 2 ;;
    --gateway) gateway=$2; shift 2 ;;
    --no-build) build=''; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
hosts=$((ingresses / 10))

[ -z "$build" ] || cargo build --release --quiet -p edge-gateway -p fake-apiserver -p edge-gateway-benches --bins
bin=${CARGO_TARGET_DIR:-target}/release
gateway=${gateway:-$bin/edge-gateway}
work=$(mktemp -d)
# shellcheck source=loadtest/processes.sh
source loadtest/processes.sh

http_port=18080
metrics_port=18254
api_port=18600
ticks_per_second=$(getconf CLK_TCK)
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
rss_mib() { awk -v f="$2" '$1 == f":" {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# The List is JSON: a 10,000-model YAML List is past the YAML parser's
# default budget (250,000 nodes) that the gateway used before issue 20.
gen() {
    local f=$format
    [ "$source" = list ] && f=json
    "$bin/gen-manifests" "$@" --ingresses "$ingresses" --hosts "$hosts" --format "$f" >/dev/null
}

# location K: the Location the gateway answers for Ingress K's path.
location() {
    curl -s -o /dev/null -w '%{redirect_url}' --max-time 2 \
        -H "Host: h$(($1 % hosts)).bench.example" \
        "http://127.0.0.1:$http_port/api/v1/predict/m$1/infer" || true
}

# change SOURCE DIR K GEN: Ingress K to generation GEN, through SOURCE.
change() {
    case $1 in
    files) gen "$2" --layout files --only "$3" --change "$3:$4" ;;
    list) gen "$2" --layout list --change "$3:$4" ;;
    api)
        curl -sf -o /dev/null --max-time 10 -X PATCH \
            -H 'Content-Type: application/merge-patch+json' \
            -d "{\"metadata\":{\"annotations\":{\"nginx.ingress.kubernetes.io/permanent-redirect\":\"https://changed.example/$4\"}}}" \
            "http://127.0.0.1:$api_port/apis/networking.k8s.io/v1/namespaces/tenant-$(($3 / 10))/ingresses/model-$3"
        ;;
    esac
}

rows=()
for source in $sources; do
    dir=$work/$source
    log "$source: $ingresses Ingresses ($format)"
    case $source in
    files | api) gen "$dir" --layout files ;;
    list) gen "$dir" --layout list ;;
    *) echo "unknown source $source" >&2; exit 2 ;;
    esac
    if [ "$source" = api ]; then
        start "$bin/fake-apiserver" --port "$api_port" --kubeconfig "$work/kubeconfig" --seed "$dir" \
            --bookmark-interval-ms 10000 2>"$work/api.stderr"
        api_pid=$last_pid
        for _ in $(seq 6000); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
        [ -s "$work/kubeconfig" ] || { echo "the fake API server did not come up" >&2; exit 1; }
        from=(--kubeconfig "$work/kubeconfig")
    else
        from=(--manifests "$dir")
    fi
    started=$(now)
    start "$gateway" "${from[@]}" --bind-address 127.0.0.1 --http-port "$http_port" \
        --https-port 18443 --metrics-port "$metrics_port" --update-status=false \
        --access-log off >/dev/null 2>"$work/gateway-$source.stderr"
    gw=$last_pid
    for _ in $(seq 12000); do
        curl -sf -o /dev/null "http://127.0.0.1:$metrics_port/healthz" && break
        kill -0 "$gw" 2>/dev/null || break
        sleep 0.05
    done
    curl -sf -o /dev/null "http://127.0.0.1:$metrics_port/healthz" ||
        { echo "the gateway did not become ready" >&2; tail "$work/gateway-$source.stderr" >&2; exit 1; }
    ready=$(elapsed "$started" "$(now)")
    sleep 1
    rss_ready=$(rss_mib "$gw" VmRSS)
    t0=$(cpu_ticks "$gw")
    sleep "$idle"
    t1=$(cpu_ticks "$gw")
    idle_cpu=$(awk -v t="$((t1 - t0))" -v s="$idle" -v h="$ticks_per_second" 'BEGIN {printf "%.1f", 100 * t / h / s}')
    latencies=()
    for n in $(seq "$changes"); do
        k=$(((n * 7919) % ingresses))
        a=$(now)
        change "$source" "$dir" "$k" "$n"
        served=''
        for _ in $(seq 3000); do
            [ "$(location "$k")" = "https://changed.example/$n" ] && { served=1; break; }
            sleep 0.01
        done
        [ -n "$served" ] || { echo "change $n (Ingress $k) not served within its deadline" >&2; exit 1; }
        latencies+=("$(elapsed "$a" "$(now)")")
    done
    sleep 1
    rss_after=$(rss_mib "$gw" VmRSS)
    hwm=$(rss_mib "$gw" VmHWM)
    lat=$(printf '%s\n' "${latencies[@]}" | sort -n | awk '{a[NR] = $1} END {printf "%.2f s / %.2f s", a[int((NR + 1) / 2)], a[NR]}')
    row="| $source | $ingresses | $ready s | $rss_ready MiB | $idle_cpu% | $lat | $rss_after MiB | $hwm MiB |"
    echo "$row"
    rows+=("$row")
    stop "$gw"
    [ "$source" = api ] && stop "$api_pid"
done

echo
echo "gateway $gateway, revision $(git rev-parse --short HEAD)$(git diff --quiet || echo '+dirty'), $(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg), format $format, $changes changes"
echo
echo "| source | Ingresses | ready | RSS ready | idle CPU | change served (median / max) | RSS after changes | peak RSS |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
