#!/usr/bin/env bash
# The fake API server as Helm, kubectl and the official Python client see a
# cluster:
#   - helm install / status / upgrade / uninstall of charts/model-serving and
#     charts/edge-gateway (defaults, and every values file under
#     tests/charts/values that renders), objects checked with kubectl, and
#     nothing left behind;
#   - the Python `kubernetes` client creating, listing and deleting an
#     Ingress (DELETE answers a Status it can parse; a bad Ingress is a 422);
#   - the README's fake-API-server walkthrough, run as written: its shell
#     block is read from README.md and its lines run in order (`cargo run
#     ... --` lines use the binaries `cargo test --workspace` built, in
#     debug; background lines are waited for until they serve), ending with
#     its `curl` answering from the demo model.
#
#   bash tests/fake-apiserver/helm.sh
#
# Helm (v4) and kubectl come from scripts/get-helm.sh, the Python client
# from PyPI into a venv, both cached in $EDGE_GATEWAY_TOOLS. The walkthrough
# needs its ports free (6443, 8080 on 127.0.0.50, 30080, 30443, 10254).
# Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/tests/fake-apiserver

export EDGE_GATEWAY_TOOLS=${EDGE_GATEWAY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-gateway/tools}
python_client_version=37.0.2

work=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

passed=0
failed=0
section() { printf '\n== %s\n' "$*"; }

# check NAME COMMAND...: passes when COMMAND exits 0; its output is shown
# only when it fails.
check() {
    local name=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        passed=$((passed + 1))
        printf 'ok   %s\n' "$name"
    else
        failed=$((failed + 1))
        printf 'FAIL %s\n' "$name"
        sed 's/^/     | /' "$work/out" | tail -n 40
    fi
}

# eventually SECONDS COMMAND...: runs COMMAND every 0.2 s until it exits 0,
# at most SECONDS long; the last output is shown when it never did.
eventually() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >"$work/eventually" 2>&1; do
        if ((SECONDS >= deadline)); then
            cat "$work/eventually"
            return 1
        fi
        sleep 0.2
    done
}

# === tools ====================================================================
section "tools"
bin=$("$root/scripts/get-helm.sh")
export PATH="$bin:$PATH"
venv=$EDGE_GATEWAY_TOOLS/venv-kubernetes
if ! "$venv/bin/python3" -c "import kubernetes, sys; sys.exit(kubernetes.__version__ != '$python_client_version')" 2>/dev/null; then
    echo "installing the kubernetes Python client $python_client_version into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes==$python_client_version"
fi
cargo build --locked --quiet -p fake-apiserver -p demo-model -p edge-gateway
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug
echo "$(helm version --short), $(kubectl version --client | head -n 1), Python kubernetes $python_client_version"

# fake [ARGS...]: starts a fake API server on a free port; sets $kc to its
# kubeconfig.
fake() {
    local n=${#pids[@]}
    kc=$work/kubeconfig-$n
    "$target/fake-apiserver" --port 0 --kubeconfig "$kc" "$@" >"$work/fake-$n.log" 2>&1 &
    pids+=($!)
    eventually 20 grep -q '^listening' "$work/fake-$n.log"
}

# === charts ===================================================================
section "helm against the fake API server"
fake --pod-ip 127.0.0.1
kubectl --kubeconfig "$kc" apply -f "$here/fixtures/operator-crds.yaml" >/dev/null
kubectl --kubeconfig "$kc" create namespace user-1 >/dev/null
kubectl --kubeconfig "$kc" create namespace user-2 >/dev/null

model_serving() {
    local k=(kubectl --kubeconfig "$kc" -n user-1)
    local svc=service/model-serving-test-deployment-user-1
    helm --kubeconfig "$kc" install test-deployment charts/model-serving --set ingress.enabled=true \
        --set service.annotations.team=models --namespace user-1
    helm --kubeconfig "$kc" status test-deployment --namespace user-1 | grep -q 'STATUS: deployed'
    "${k[@]}" get deployment,service,ingress model-serving-test-deployment-user-1 -o name
    [[ $("${k[@]}" get "$svc" -o 'jsonpath={.metadata.annotations.team}') == models ]]
    helm --kubeconfig "$kc" upgrade test-deployment charts/model-serving --set ingress.enabled=true \
        --set replicaCount=2 --namespace user-1 --wait --timeout 60s
    [[ $("${k[@]}" get deployment model-serving-test-deployment-user-1 -o 'jsonpath={.status.readyReplicas}') == 2 ]]
    # Server-side apply: the annotation the upgrade no longer sets is gone.
    [[ -z $("${k[@]}" get "$svc" -o 'jsonpath={.metadata.annotations.team}') ]]
    [[ $("${k[@]}" get pods -o name | wc -l) == 2 ]]
    helm --kubeconfig "$kc" status test-deployment --namespace user-1 | grep -q 'REVISION: 2'
    helm --kubeconfig "$kc" uninstall test-deployment --namespace user-1 --wait --timeout 60s
    [[ -z $("${k[@]}" get deployments,services,ingresses,pods,endpointslices,secrets -o name) ]]
}
check "model-serving: install, status, upgrade --wait (a dropped value leaves), uninstall" model_serving

# edge_gateway NAME [HELM ARGS...]: installs charts/edge-gateway as release
# NAME into namespace NAME (--wait), then uninstalls it; nothing of it may
# remain, cluster-scoped objects included.
edge_gateway() {
    local name=$1
    shift
    helm --kubeconfig "$kc" install "$name" charts/edge-gateway --namespace "$name" --create-namespace \
        --wait --timeout 60s "$@"
    helm --kubeconfig "$kc" status "$name" --namespace "$name" | grep -q 'STATUS: deployed'
    [[ -n $(kubectl --kubeconfig "$kc" -n "$name" get deployments,daemonsets -o name) ]]
    kubectl --kubeconfig "$kc" get ingressclasses -o name | grep -q .
    helm --kubeconfig "$kc" uninstall "$name" --namespace "$name" --wait --timeout 60s
    local left
    left=$(kubectl --kubeconfig "$kc" get all,configmaps,serviceaccounts,roles,rolebindings,secrets \
        -n "$name" -o name | grep -v 'configmap/kube-root-ca.crt' || true)
    [[ -z $left ]] || { echo "left in $name: $left"; return 1; }
    left=$(kubectl --kubeconfig "$kc" get ingressclasses,clusterroles,clusterrolebindings,validatingwebhookconfigurations -o name)
    [[ -z $left ]] || { echo "left: $left"; return 1; }
}
check "edge-gateway defaults: install --wait, uninstall" edge_gateway eg-defaults
for values in tests/charts/values/eg-*.yaml; do
    name=$(basename "$values" .yaml)
    # Values the chart refuses are tests/charts/test.sh's business.
    if helm template "$name" charts/edge-gateway --namespace "$name" -f "$values" >/dev/null 2>&1; then
        check "edge-gateway $name: install --wait, uninstall" edge_gateway "$name" -f "$values"
    fi
done

# === Python client ============================================================
section "the official Python client"
python_client() {
    "$venv/bin/python3" - "$kc" <<'EOF'
import sys
from kubernetes import client, config
from kubernetes.client.rest import ApiException

config.load_kube_config(sys.argv[1])
net = client.NetworkingV1Api()
backend = {"service": {"name": "web", "port": {"number": 80}}}
ingress = {
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
    "metadata": {"name": "web", "namespace": "user-2"},
    "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example", "http": {"paths": [
        {"path": "/api", "pathType": "Prefix", "backend": backend}]}}]},
}
created = net.create_namespaced_ingress("user-2", ingress)
assert created.metadata.uid and created.spec.rules[0].host == "a.example", created
listed = net.list_namespaced_ingress("user-2")
assert [i.metadata.name for i in listed.items] == ["web"], listed
# The client hands a DELETE's answer back as parsed JSON: a Status, as the
# real registry answers for Ingresses, which its V1Status model reads.
answer = net.delete_namespaced_ingress("web", "user-2")
status = client.V1Status.from_dict(answer)
assert answer["kind"] == "Status" and status.status == "Success", answer
assert status.details.name == "web" and status.details.kind == "ingresses", answer
assert status.details.uid == created.metadata.uid, answer
try:
    net.read_namespaced_ingress("web", "user-2")
    raise AssertionError("the Ingress is still there")
except ApiException as e:
    assert e.status == 404, e
# A relative path passes the client's own checks; the server refuses it.
bad = dict(ingress)
bad["spec"] = {"rules": [{"http": {"paths": [{"path": "api", "pathType": "Prefix", "backend": backend}]}}]}
try:
    net.create_namespaced_ingress("user-2", bad)
    raise AssertionError("an Ingress with a relative path was accepted")
except ApiException as e:
    assert e.status == 422 and "must be an absolute path" in e.body, e.body
print("ok")
EOF
}
check "create, list, delete an Ingress (a Status back); 404 after; 422 for a bad one" python_client

# === README walkthrough =======================================================
section "README: the fake API server walkthrough"
# The shell block after "To try it without a cluster" in README.md.
awk '/^To try it without a cluster/ {found=1} found && /^```sh$/ {inside=1; next} inside && /^```$/ {exit} inside' \
    README.md >"$work/walkthrough.sh"

# run_line LINE: one line of the block. `cargo run [--release] [-p PKG] --
# ARGS` runs the already built binary; a line ending in `&` runs in the
# background and is waited for until it serves.
run_line() {
    local line=$1 background=false cmd
    line=${line%%#*}
    line=${line%"${line##*[![:space:]]}"}
    [[ -n $line ]] || return 0
    if [[ $line == *'&' ]]; then
        background=true
        line=${line%&}
    fi
    cmd=$(sed -E -e 's#^cargo run( --release)? -p ([a-z-]+) --#'"$target"'/\2#' \
        -e 's#^cargo run( --release)? --#'"$target"'/edge-gateway#' <<<"$line")
    echo "\$ $line"
    if ! $background; then
        eval "$cmd"
        return
    fi
    # `exec`: the background job is the process itself, so cleanup's kill
    # reaches it.
    eval "exec $cmd" >"$work/bg-${#pids[@]}.log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    case $line in
        *fake-apiserver*) eventually 30 kubectl --kubeconfig /tmp/fake.kubeconfig get --raw /healthz ;;
        *demo-model*) eventually 30 curl -sf http://127.0.0.50:8080/health ;;
        *) eventually 60 curl -sf http://localhost:10254/healthz ;;
    esac
    # What answered must be this process, not one left from elsewhere.
    kill -0 "$pid" 2>/dev/null || {
        echo "\$ $line exited:"
        cat "$work/bg-$((${#pids[@]} - 1)).log"
        return 1
    }
}

# in_use HOST PORT: whether something listens there.
in_use() {
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

walkthrough() {
    local line out addr
    for addr in 127.0.0.1/6443 127.0.0.50/8080 127.0.0.1/30080 127.0.0.1/30443 127.0.0.1/10254; do
        if in_use "${addr%/*}" "${addr#*/}"; then
            echo "${addr%/*}:${addr#*/} is in use: the walkthrough needs it free"
            return 1
        fi
    done
    while IFS= read -r line; do
        case $line in
            curl*)
                # The gateway picks up the new Ingress and endpoints within a
                # second; the line as written must then answer.
                eventually 20 eval "${line%%#*} -sf"
                out=$(eval "${line%%#*}")
                echo "$out"
                grep -q '"status":"ok"' <<<"$out"
                ;;
            kubectl*)
                eventually 20 bash -c "${line%%#*} | grep -q 127.0.0.1"
                eval "${line%%#*}"
                ;;
            *) run_line "$line" ;;
        esac
    done <"$work/walkthrough.sh"
}
check "walkthrough as written: helm install, then curl answers from the demo model" walkthrough

echo
echo "$passed passed, $failed failed"
[[ $failed == 0 ]]
