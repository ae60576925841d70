"""Checks facts about manifests rendered by `helm template` from the charts.

    python3 check_rendered.py SCENARIO FILE [FILE...]

SCENARIO names the chart values the FILEs were rendered with (see test.sh).
Every scenario of a chart gets the chart's general checks, then its own.
Prints one line per failed fact and exits 1 if any failed; needs PyYAML.
"""

import sys

import yaml

CONTROLLER_CLASS = "k8s.io/ingress-nginx"
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate", "*"}
READ = {"get", "list", "watch"}

# What the controller may do cluster-wide: (apiGroup, resource) -> verbs.
# Writes: only Ingress status and Events. ConfigMaps are read (custom-headers,
# TCP/UDP services), pods only with gatewayAPI.enabled (InferencePool members).
CLUSTER_ALLOWED = {
    ("networking.k8s.io", "ingresses"): READ,
    ("networking.k8s.io", "ingressclasses"): READ,
    ("networking.k8s.io", "ingresses/status"): {"update", "patch"},
    ("", "services"): READ,
    ("", "secrets"): READ,
    ("", "configmaps"): READ,
    ("discovery.k8s.io", "endpointslices"): READ,
    ("", "nodes"): {"get"},
    ("", "namespaces"): READ,
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
    # gatewayAPI.enabled
    ("gateway.networking.k8s.io", "gatewayclasses"): READ,
    ("gateway.networking.k8s.io", "gatewayclasses/status"): {"update", "patch"},
    ("gateway.networking.k8s.io", "gateways"): READ,
    ("gateway.networking.k8s.io", "httproutes"): READ,
    ("gateway.networking.k8s.io", "grpcroutes"): READ,
    ("gateway.networking.k8s.io", "referencegrants"): READ,
    ("gateway.networking.k8s.io", "gateways/status"): {"update", "patch"},
    ("gateway.networking.k8s.io", "httproutes/status"): {"update", "patch"},
    ("gateway.networking.k8s.io", "grpcroutes/status"): {"update", "patch"},
    ("", "namespaces"): READ,
    # gatewayAPI.enabled: InferencePool backends and the Pods they select
    ("inference.networking.k8s.io", "inferencepools"): READ,
    ("inference.networking.k8s.io", "inferencepools/status"): {"update", "patch"},
    ("inference.networking.x-k8s.io", "inferenceobjectives"): READ,
    ("", "pods"): READ,
}
# In a namespace (its own, or the served one with scope): the same, plus
# leader election, its ConfigMaps and its pods.
NAMESPACE_ALLOWED = {
    **{k: v for k, v in CLUSTER_ALLOWED.items()
       if k[1] not in ("nodes", "ingressclasses", "gatewayclasses", "gatewayclasses/status", "namespaces")},
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
    ("", "configmaps"): READ,
    ("", "pods"): READ,
}

failures = []


def expect(condition, message):
    if not condition:
        failures.append(message)
    return condition


def load(files):
    docs = []
    for path in files:
        with open(path) as f:
            docs.extend(d for d in yaml.safe_load_all(f) if d)
    return docs


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind, name=None):
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    expect(len(found) == 1, f"expected one {kind}{' ' + name if name else ''}, found {len(found)}")
    return found[0] if found else {}


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container(deployment):
    return deployment["spec"]["template"]["spec"]["containers"][0]


def workloads(docs):
    return of_kind(docs, "Deployment") + of_kind(docs, "DaemonSet")


def controllers(docs):
    """The controller's Deployment and/or DaemonSet (not the default backend)."""
    return [d for d in workloads(docs) if d["metadata"]["labels"].get("app.kubernetes.io/component") == "controller"]


def flags(deployment):
    """--name=value arguments as {name: [values]}."""
    out = {}
    for arg in container(deployment).get("args", []):
        expect(arg.startswith("--"), f"argument {arg!r} is not a --flag")
        name, _, value = arg[2:].partition("=")
        out.setdefault(name, []).append(value)
    return out


def flag(deployment, name):
    values = flags(deployment).get(name, [])
    expect(len(values) <= 1, f"--{name} is given {len(values)} times")
    return values[0] if values else None


# === checks for both charts ===


def check_common(docs, namespace):
    pods = [(d["metadata"].get("namespace"), d["spec"]["template"]["metadata"]["labels"]) for d in workloads(docs)]
    for d in docs:
        meta = d["metadata"]
        expect(len(meta["name"]) <= 63, f"{d['kind']} name {meta['name']} is longer than 63")
        for key, value in meta.get("labels", {}).items():
            expect(isinstance(value, str) and len(value) <= 63, f"{d['kind']} {meta['name']}: label {key}={value!r}")
    # Every selector picks the pods of a Deployment of the render.
    for d in of_kind(docs, "Service"):
        selector = d["spec"].get("selector", {})
        expect(any(ns == d["metadata"]["namespace"] and matches(selector, labels) for ns, labels in pods),
               f"Service {d['metadata']['name']} selects no pod of the chart: {selector}")
        for port in d["spec"]["ports"]:
            target = port.get("targetPort")
            if isinstance(target, str):
                names = {p["name"] for dep in workloads(docs) for c in dep["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
                expect(target in names, f"Service {d['metadata']['name']} targets port {target!r}, which no container has")
    for d in of_kind(docs, "PodDisruptionBudget"):
        selector = d["spec"]["selector"]["matchLabels"]
        expect(any(matches(selector, labels) for _, labels in pods), f"PDB {d['metadata']['name']} selects no pod")
    for d in workloads(docs):
        expect(matches(d["spec"]["selector"]["matchLabels"], d["spec"]["template"]["metadata"]["labels"]),
               f"Deployment {d['metadata']['name']}: selector does not match its pod labels")
        expect(d["metadata"]["namespace"] == namespace, f"Deployment in {d['metadata']['namespace']}, not {namespace}")


# === edge-gateway ===


def rbac_rules(role):
    rules = []
    for rule in role.get("rules", []):
        for field in ("apiGroups", "resources", "verbs"):
            expect("*" not in rule.get(field, []), f"{role['kind']} {role['metadata']['name']}: '*' in {field}")
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                rules.append((group, resource, set(rule.get("verbs", [])), rule.get("resourceNames")))
    return rules


def check_rbac_allowlist(role, allowed):
    where = f"{role['kind']} {role['metadata']['name']}"
    for group, resource, verbs, _ in rbac_rules(role):
        key = (group, resource)
        if expect(key in allowed, f"{where}: {resource} in apiGroup {group!r} is not on the allow-list"):
            expect(verbs <= allowed[key], f"{where}: {resource} verbs {sorted(verbs - allowed[key])} not allowed")
        if resource == "secrets":
            expect(not verbs & WRITE_VERBS, f"{where}: Secrets must be read-only")


def check_edge_gateway(docs, release_ns, read_only=True):
    """General facts; returns the controller's Deployment (else its DaemonSet).
    read_only: the chart's readOnlyRootFilesystem (ingress-nginx's values say false)."""
    # The admission webhook's objects (hook Jobs, their RBAC) are checked by webhook.sh.
    docs = [d for d in docs if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "admission-webhook"]
    check_common(docs, release_ns)
    found = controllers(docs)
    expect(found, "no controller Deployment or DaemonSet")
    for dep in found[1:]:
        check_controller(docs, release_ns, dep, read_only)
    return check_controller(docs, release_ns, found[0], read_only) if found else {}


def check_controller(docs, release_ns, dep, read_only):
    name = dep["metadata"]["name"]
    pod = dep["spec"]["template"]["spec"]
    c = container(dep)

    # Security context: non-root 101, read-only root, no escalation, no capabilities.
    sc = c["securityContext"]
    expect(sc.get("runAsNonRoot") is True, "container: runAsNonRoot")
    expect(sc.get("runAsUser") == 101, "container: runAsUser 101")
    expect(sc.get("readOnlyRootFilesystem") is read_only, f"container: readOnlyRootFilesystem {read_only}")
    expect(sc.get("allowPrivilegeEscalation") is False, "container: allowPrivilegeEscalation false")
    want_caps = {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
    expect(sc.get("capabilities") == want_caps, f"container: capabilities {sc.get('capabilities')}: the image's file capability needs NET_BIND_SERVICE")
    expect(sc.get("seccompProfile") == {"type": "RuntimeDefault"}, "container: seccomp RuntimeDefault")
    expect(pod["securityContext"].get("runAsNonRoot") is True, "pod: runAsNonRoot")

    # Downward API.
    env = {e["name"]: e for e in c["env"]}
    expect(env.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name", "env POD_NAME")
    expect(env.get("POD_NAMESPACE", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.namespace", "env POD_NAMESPACE")

    # Ports: the flags, the container ports and the probes agree.
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    expect(flag(dep, "http-port") == str(ports.get("http")), f"--http-port {flag(dep, 'http-port')} vs port {ports.get('http')}")
    expect(flag(dep, "https-port") == str(ports.get("https")), "--https-port vs container port https")
    expect(flag(dep, "metrics-port") == str(ports.get("metrics")), "--metrics-port vs container port metrics")
    for probe in ("livenessProbe", "readinessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        expect(get.get("path") == "/healthz" and get.get("port") in (ports.get("metrics"), "metrics"), f"{probe}: {get}")

    # Flags that name objects name objects of the render.
    cm = flag(dep, "configmap")
    expect(cm is not None, "--configmap is set")
    cm_name = (cm or "/").split("/", 1)[1]
    one(docs, "ConfigMap", cm_name)
    # The ConfigMaps the controller reads by name (extraArgs may name one of
    # the user's) are readable where they are: a Role of their namespace
    # grants it (the ClusterRole's ConfigMap read is gone with
    # controller.scope.enabled).
    roles_by_ns = {}
    for role in of_kind(docs, "Role"):
        roles_by_ns.setdefault(role["metadata"]["namespace"], []).extend(rbac_rules(role))
    for name in ("configmap", "tcp-services-configmap", "udp-services-configmap"):
        value = flag(dep, name)
        if value is None:
            continue
        ns = value.replace("$(POD_NAMESPACE)", release_ns).partition("/")[0]
        if of_kind(docs, "Role"):
            expect(any(r[1] == "configmaps" and r[3] is None and READ <= r[2] for r in roles_by_ns.get(ns, [])),
                   f"--{name}={value}: no Role of {ns} reads its ConfigMaps")
    for p in c["ports"]:
        expect(len(p["name"]) <= 15, f"container port name {p['name']} is longer than 15 characters")
    for value in flags(dep).get("enable-metrics", []):
        expect(value in ("true", "false"), f"--enable-metrics={value}")
    expect(flag(dep, "controller-class") is not None, "--controller-class is set")
    expect(flag(dep, "election-id"), "--election-id is set")
    sa = pod.get("serviceAccountName")
    expect(bool(sa), "serviceAccountName is set")

    # IngressClass: its controller is the one the controller serves.
    for ic in of_kind(docs, "IngressClass"):
        expect(ic["spec"]["controller"] == flag(dep, "controller-class"), "IngressClass controller = --controller-class")

    # RBAC: allow-lists; no cluster-wide write but the status of Ingresses
    # (and, with gatewayAPI.enabled, of Gateway API objects and
    # InferencePools) and Events.
    status_writes = ("ingresses/status", "events", "gatewayclasses/status", "gateways/status",
                     "httproutes/status", "grpcroutes/status", "inferencepools/status")
    for role in of_kind(docs, "ClusterRole"):
        check_rbac_allowlist(role, CLUSTER_ALLOWED)
        for group, resource, verbs, _ in rbac_rules(role):
            if verbs & WRITE_VERBS:
                expect(resource in status_writes, f"ClusterRole writes {resource} cluster-wide")
    for role in of_kind(docs, "Role"):
        check_rbac_allowlist(role, NAMESPACE_ALLOWED)
    own_roles = [r for r in of_kind(docs, "Role") if r["metadata"]["namespace"] == release_ns]
    if of_kind(docs, "ClusterRole"):
        expect(len(own_roles) == 1, f"one Role in the release namespace, found {len(own_roles)}")
        rules = rbac_rules(own_roles[0]) if own_roles else []
        election = flag(dep, "election-id")
        for group, resource, verbs, names in rules:
            if resource == "leases" and verbs & {"get", "update"}:
                expect(names == [election], f"leases get/update limited to [{election}], got {names}")
            if resource == "leases" and "create" in verbs:
                expect(verbs == {"create"}, "lease create is a rule of its own")
        expect(any(r[1] == "leases" and r[3] == [election] and "update" in r[2] for r in rules), "Role can renew its Lease")
    # Bindings: to roles of the render, for the Deployment's ServiceAccount.
    roles = {(r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]) for r in of_kind(docs, "Role") + of_kind(docs, "ClusterRole")}
    for b in of_kind(docs, "RoleBinding") + of_kind(docs, "ClusterRoleBinding"):
        ref = b["roleRef"]
        ns = None if ref["kind"] == "ClusterRole" else b["metadata"]["namespace"]
        expect((ref["kind"], ns, ref["name"]) in roles, f"{b['kind']} {b['metadata']['name']} refers to a missing {ref['kind']}")
        expect(b["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": release_ns}], f"{b['kind']} subjects {b['subjects']}")
    if of_kind(docs, "ServiceAccount"):
        one(docs, "ServiceAccount", sa)

    # The published Service is the controller Service, readable by name.
    publish = flag(dep, "publish-service")
    if publish and publish.startswith("$(POD_NAMESPACE)/"):
        svc = publish.split("/", 1)[1]
        one(docs, "Service", svc)
        if own_roles:
            expect(any(r[1] == "services" and r[3] == [svc] for r in rbac_rules(own_roles[0])), f"the Role reads the published Service {svc}")

    # Prometheus Operator objects only with metrics and the ServiceMonitor enabled.
    monitors = of_kind(docs, "ServiceMonitor")
    if monitors:
        expect(flag(dep, "enable-metrics") == "true", "a ServiceMonitor without --enable-metrics=true")
        metrics_services = [s for s in of_kind(docs, "Service") if any(p["name"] == "metrics" for p in s["spec"]["ports"])]
        for m in monitors:
            sel = m["spec"]["selector"]["matchLabels"]
            expect(any(matches(sel, s["metadata"]["labels"]) for s in metrics_services), "ServiceMonitor selects the metrics Service")
            expect(m["spec"]["endpoints"][0]["port"] == "metrics", "ServiceMonitor scrapes port metrics")
    return dep


def service_ports(svc):
    return {p["name"]: p for p in svc["spec"]["ports"]}


def controller_service(docs):
    return next((s for s in of_kind(docs, "Service") if "http" in service_ports(s)), {})


def eg_default(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect(dep["metadata"]["name"] == "edge-gateway-controller", f"Deployment name {dep['metadata']['name']}")
    svc = one(docs, "Service", "edge-gateway-controller")
    expect(svc["spec"]["type"] == "NodePort", "Service type NodePort")
    ports = service_ports(svc)
    expect((ports["http"]["port"], ports["http"]["targetPort"], ports["http"].get("nodePort")) == (80, "http", 30080), f"http port {ports['http']}")
    expect((ports["https"]["port"], ports["https"]["targetPort"], ports["https"].get("nodePort")) == (443, "https", 30443), f"https port {ports['https']}")
    c = container(dep)
    expect({p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 80, "https": 443, "metrics": 10254}, "container ports 80/443/10254")
    expect(c["image"] == "edge-gateway:0.1.0", f"image {c['image']}")
    expect(c.get("lifecycle") is None and not any(e["name"] == "LD_PRELOAD" for e in c["env"]), "no preStop hook, no mimalloc by default")
    ic = one(docs, "IngressClass", "nginx")
    expect(ic["spec"]["controller"] == CONTROLLER_CLASS, "IngressClass nginx has controller k8s.io/ingress-nginx")
    expect("ingressclass.kubernetes.io/is-default-class" not in ic["metadata"].get("annotations", {}), "not the default class")
    want = {
        "configmap": "$(POD_NAMESPACE)/edge-gateway-controller",
        "controller-class": CONTROLLER_CLASS,
        "election-id": "ingress-nginx-leader",
        "enable-metrics": "true",
        "http-port": "80",
        "https-port": "443",
        "ingress-class": "nginx",
        "metrics-port": "10254",
        "publish-service": "$(POD_NAMESPACE)/edge-gateway-controller",
    }
    for name, value in want.items():
        expect(flag(dep, name) == value, f"--{name}={flag(dep, name)}, want {value}")
    for absent in ("watch-namespace", "watch-ingress-without-class", "ingress-class-by-name"):
        expect(flag(dep, absent) is None, f"--{absent} is not set by default")
    expect(dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 300, "terminationGracePeriodSeconds 300")
    expect(dep["spec"]["replicas"] == 1, "one replica")
    for kind in ("PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "DaemonSet", "HorizontalPodAutoscaler", "NetworkPolicy"):
        expect(not of_kind(docs, kind), f"no {kind} by default")
    metrics = one(docs, "Service", "edge-gateway-controller-metrics")
    expect(service_ports(metrics).get("metrics", {}).get("port") == 10254, "request metrics on by default, with their Service")
    cr = one(docs, "ClusterRole")
    resources = {r[1] for r in rbac_rules(cr)}
    expect({"ingresses", "ingressclasses", "services", "endpointslices", "secrets", "configmaps", "nodes", "ingresses/status", "events"} == resources,
           f"ClusterRole resources {sorted(resources)}")
    expect(not {"namespaces", "pods"} & resources, "no namespaces or pods cluster-wide")
    own = {(r[1], tuple(sorted(r[2]))) for r in rbac_rules(one(docs, "Role"))}
    expect(own == {("leases", ("create",)), ("leases", ("get", "update")), ("configmaps", ("get", "list", "watch")), ("pods", ("get", "list")),
                   ("services", ("get",))},
           f"Role rules {sorted(own)}")
    expect(one(docs, "ConfigMap")["data"] == {}, "empty controller ConfigMap")


def eg_loadbalancer(docs):
    check_edge_gateway(docs, "ingress-nginx")
    svc = controller_service(docs)
    spec = svc["spec"]
    expect(spec["type"] == "LoadBalancer", "Service type LoadBalancer")
    expect(spec.get("externalTrafficPolicy") == "Local", "externalTrafficPolicy Local")
    expect(spec.get("loadBalancerIP") == "203.0.113.10", "loadBalancerIP")
    expect(spec.get("loadBalancerSourceRanges") == ["10.0.0.0/8"], "loadBalancerSourceRanges")
    expect(svc["metadata"]["annotations"] == {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb", "example.com/number": "1"},
           f"Service annotations {svc['metadata'].get('annotations')}")
    expect(service_ports(svc)["http"].get("nodePort") == 30080, "node ports kept for LoadBalancer")


def eg_clusterip(docs):
    check_edge_gateway(docs, "ingress-nginx")
    svc = controller_service(docs)
    expect(svc["spec"]["type"] == "ClusterIP", "Service type ClusterIP")
    expect(all("nodePort" not in p for p in svc["spec"]["ports"]), "no nodePort on a ClusterIP Service")


def eg_metrics(docs):
    dep = check_edge_gateway(docs, "monitoring-test")
    expect(flag(dep, "enable-metrics") == "true", "--enable-metrics=true")
    svc = one(docs, "Service", f"{dep['metadata']['name']}-metrics")
    port = service_ports(svc).get("metrics", {})
    expect((port.get("port"), port.get("targetPort")) == (10254, "metrics"), f"metrics port {port}")
    expect(svc["spec"]["type"] == "ClusterIP", "metrics Service is ClusterIP")
    sm = one(docs, "ServiceMonitor")
    expect(sm.get("apiVersion") == "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
    expect(sm["metadata"]["labels"].get("release") == "kube-prometheus-stack", "ServiceMonitor additionalLabels")
    expect(sm["spec"]["endpoints"][0].get("interval") == "15s", "ServiceMonitor interval")
    expect(sm["spec"]["namespaceSelector"] == {"matchNames": ["monitoring-test"]}, "ServiceMonitor namespace")


def eg_ha(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect(dep["spec"]["replicas"] == 3, "3 replicas")
    pdb = one(docs, "PodDisruptionBudget")
    expect(pdb.get("apiVersion") == "policy/v1", "PDB policy/v1")
    expect(pdb.get("spec", {}).get("minAvailable") == 1 and "maxUnavailable" not in pdb.get("spec", {}), f"PDB {pdb.get('spec')}")


def eg_ha_max_unavailable(docs):
    check_edge_gateway(docs, "ingress-nginx")
    pdb = one(docs, "PodDisruptionBudget")
    expect(pdb.get("spec", {}).get("maxUnavailable") == "50%" and "minAvailable" not in pdb.get("spec", {}), f"PDB {pdb.get('spec')}")


def eg_scope(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect(flag(dep, "watch-namespace") == "user-1", "--watch-namespace=user-1")
    expect(flag(dep, "publish-service") is None, "no --publish-service with publishService.enabled=false")
    cr = one(docs, "ClusterRole")
    expect({r[1] for r in rbac_rules(cr)} == {"ingressclasses", "nodes"}, f"scoped ClusterRole: {sorted({r[1] for r in rbac_rules(cr)})}")
    watched = [r for r in of_kind(docs, "Role") if r["metadata"]["namespace"] == "user-1"]
    expect(len(watched) == 1, "a Role in the served namespace user-1")
    if watched:
        resources = {r[1] for r in rbac_rules(watched[0])}
        expect({"ingresses", "ingresses/status", "services", "endpointslices", "secrets", "configmaps", "events"} == resources,
               f"Role in user-1: {sorted(resources)}")
    binding = [b for b in of_kind(docs, "RoleBinding") if b["metadata"]["namespace"] == "user-1"]
    expect(len(binding) == 1, "a RoleBinding in user-1")


def eg_scope_tcp(docs):
    """eg-scope with a TCP service, the controller ConfigMap elsewhere and a
    UDP ConfigMap of the user's (extraArgs): the ConfigMaps of each
    namespace read by name are readable there."""
    eg_scope(docs)
    dep = controllers(docs)[0]
    expect(flag(dep, "tcp-services-configmap") == "$(POD_NAMESPACE)/edge-gateway-tcp", "--tcp-services-configmap")
    own = [r for r in of_kind(docs, "Role") if r["metadata"]["namespace"] == "ingress-nginx"]
    expect(len(own) == 1 and "configmaps" in {r[1] for r in rbac_rules(own[0])}, "the release namespace's Role reads the tcp ConfigMap")
    expect({r["metadata"]["namespace"] for r in of_kind(docs, "Role") if r["metadata"]["name"] == "edge-gateway-configmap"} == {"cfg", "dns"},
           "a Role reads the ConfigMaps of controller.configMapNamespace, and of the namespace extraArgs.udp-services-configmap names")


def eg_scope_own(docs):
    dep = check_edge_gateway(docs, "tenant-a")
    expect(flag(dep, "watch-namespace") == "$(POD_NAMESPACE)", "--watch-namespace=$(POD_NAMESPACE)")
    roles = of_kind(docs, "Role")
    expect(len(roles) == 1 and roles[0]["metadata"]["namespace"] == "tenant-a", "one Role, in the release namespace")
    expect("secrets" in {r[1] for r in rbac_rules(roles[0])}, "Secrets readable in the served namespace")
    expect("secrets" not in {r[1] for r in rbac_rules(one(docs, "ClusterRole"))}, "no Secrets cluster-wide")


def eg_custom(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    ic = one(docs, "IngressClass", "nginx")
    expect(ic["metadata"].get("annotations", {}).get("ingressclass.kubernetes.io/is-default-class") == "true", "default IngressClass annotation")
    cm = one(docs, "ConfigMap")
    expect(cm["data"] == {"proxy-body-size": "8m", "proxy-read-timeout": "300", "use-forwarded-headers": "true"}, f"ConfigMap data {cm['data']}")
    f = flags(dep)
    expect(f.get("log-format") == ["json"], "extraArgs log-format")
    expect(f.get("election-id") == ["custom-leader"], "extraArgs replace --election-id")
    expect(f.get("default-ssl-certificate") == ["ingress-nginx/default-cert"], "extraArgs default-ssl-certificate")
    expect(f.get("update-status-on-shutdown") == [""], "extraArgs with an empty value give a bare flag")
    expect(f.get("watch-ingress-without-class") == ["true"], "watchIngressWithoutClass")
    expect(f.get("ingress-class-by-name") == ["true"], "ingressClassByName")
    expect(f.get("shutdown-grace-period") == ["10"], "shutdownGracePeriod")
    c = container(dep)
    expect(c["image"] == "registry.example.com/ml/edge-gateway:1.2.3@sha256:" + "a" * 64, f"image {c['image']}")
    expect({"name": "RUST_LOG", "value": "info"} in c["env"], "extraEnvs")
    pod = dep["spec"]["template"]
    expect(pod["metadata"]["annotations"].get("example.com/scrape") == "true", "podAnnotations")
    expect(pod["metadata"]["labels"].get("team") == "ml", "podLabels")
    expect(pod["spec"].get("priorityClassName") == "system-cluster-critical", "priorityClassName")
    expect(pod["spec"].get("terminationGracePeriodSeconds") == 60, "terminationGracePeriodSeconds")
    expect(pod["spec"]["tolerations"][0]["key"] == "dedicated", "tolerations")
    expect("podAntiAffinity" in pod["spec"]["affinity"], "affinity")
    # Maps merge with the chart's defaults, as in every Helm chart.
    expect(pod["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux", "ingress": "true"}, f"nodeSelector {pod['spec']['nodeSelector']}")
    expect(pod["spec"]["serviceAccountName"] == "gateway", "serviceAccount.name")
    sa = one(docs, "ServiceAccount", "gateway")
    expect(sa["metadata"].get("annotations") == {"example.com/role": "gateway"}, "serviceAccount.annotations")
    expect(c["resources"] == {"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}, "resources")


def eg_ingress_nginx_values(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect(dep["metadata"]["name"] == "ingress-nginx-controller", f"ingress-nginx's name: {dep['metadata']['name']}")
    one(docs, "Service", "ingress-nginx-controller")
    expect(dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == "ingress-nginx", "ingress-nginx's name label")
    expect(flag(dep, "publish-service") == "$(POD_NAMESPACE)/ingress-nginx-controller", "publish-service")
    expect(one(docs, "ServiceMonitor")["spec"]["endpoints"][0]["interval"] == "60s", "scrapeInterval is read")


def eg_upstream_defaults(docs):
    """ingress-nginx's own default values.yaml (with the image it asks for)."""
    dep = check_edge_gateway(docs, "ingress-nginx", read_only=False)
    c = container(dep)
    svc = one(docs, "Service", "ingress-nginx-edge-gateway-controller")
    expect(svc["spec"]["type"] == "LoadBalancer", "ingress-nginx's default Service type")
    expect(svc["spec"].get("ipFamilyPolicy") == "SingleStack" and svc["spec"].get("ipFamilies") == ["IPv4"], "ingress-nginx's ip families")
    expect(all("nodePort" not in p for p in svc["spec"]["ports"]), "no node ports (ingress-nginx's empty nodePorts)")
    expect(flag(dep, "enable-metrics") == "false", "ingress-nginx's metrics.enabled: false")
    expect(flag(dep, "election-id") == "ingress-nginx-edge-gateway-leader", "electionID empty: <fullname>-leader")
    expect("lifecycle" not in c, "ingress-nginx's preStop /wait-shutdown is left out (edge-gateway drains on SIGTERM)")
    expect({"name": "LD_PRELOAD", "value": "libmimalloc.so.2"} in c["env"], "enableMimalloc: true preloads mimalloc")
    expect(c["securityContext"]["readOnlyRootFilesystem"] is False and c["securityContext"]["runAsGroup"] == 82, "ingress-nginx's image securityContext values")


def eg_cloud_internal(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    external = one(docs, "Service", "edge-gateway-controller")
    internal = one(docs, "Service", "edge-gateway-controller-internal")
    expect(external["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internet-facing", "external NLB")
    expect(internal["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == "internal", "internal NLB")
    for svc in (external, internal):
        expect(svc["spec"]["type"] == "LoadBalancer" and svc["spec"].get("externalTrafficPolicy") == "Local", f"{svc['metadata']['name']}: LoadBalancer, Local")
        expect(service_ports(svc)["http"]["targetPort"] == "http", "targets the container's http port")
    expect(internal["spec"].get("loadBalancerSourceRanges") == ["10.0.0.0/8"], "internal source ranges")
    expect(flag(dep, "publish-service") == "$(POD_NAMESPACE)/edge-gateway-controller", "the external Service is published")
    tsc = dep["spec"]["template"]["spec"]["topologySpreadConstraints"][0]
    expect(tsc["labelSelector"]["matchLabels"] == {"app.kubernetes.io/name": "edge-gateway", "app.kubernetes.io/instance": "edge-gateway",
                                                   "app.kubernetes.io/component": "controller"}, f"templated spread selector {tsc['labelSelector']}")
    expect(matches(tsc["labelSelector"]["matchLabels"], dep["spec"]["template"]["metadata"]["labels"]), "the spread selector selects the pods")
    expect(one(docs, "ConfigMap", "edge-gateway-controller")["data"]["proxy-body-size"] == "64m", "config")
    one(docs, "PodDisruptionBudget")


def eg_daemonset_hostnetwork(docs):
    ds = check_edge_gateway(docs, "ingress-nginx")
    expect(ds.get("kind") == "DaemonSet" and not of_kind(docs, "Deployment"), "a DaemonSet, no Deployment")
    pod = ds["spec"]["template"]["spec"]
    expect(pod.get("hostNetwork") is True and pod.get("dnsPolicy") == "ClusterFirstWithHostNet", "host network, cluster DNS")
    c = container(ds)
    expect((flag(ds, "http-port"), flag(ds, "https-port")) == ("80", "443"), "listens on the node's 80/443")
    expect("lifecycle" not in c, "/wait-shutdown left out")
    expect(flag(ds, "publish-service") is None, "status from node addresses")
    expect(ds["spec"].get("updateStrategy", {}).get("rollingUpdate") == {"maxUnavailable": 1}, "DaemonSet updateStrategy")
    expect(not of_kind(docs, "PodDisruptionBudget") and not of_kind(docs, "HorizontalPodAutoscaler"), "no PDB or HPA for a DaemonSet")
    expect(pod["nodeSelector"] == {"kubernetes.io/os": "linux", "node-role.kubernetes.io/edge": ""}, f"nodeSelector {pod['nodeSelector']}")


def eg_hpa_monitoring(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect("replicas" not in dep["spec"], "the HPA owns the replica count")
    hpa = one(docs, "HorizontalPodAutoscaler")
    spec = hpa.get("spec", {})
    expect(hpa.get("apiVersion") == "autoscaling/v2" and spec.get("scaleTargetRef") == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep["metadata"]["name"]},
           f"HPA target {spec.get('scaleTargetRef')}")
    expect((spec.get("minReplicas"), spec.get("maxReplicas")) == (2, 10), "HPA bounds")
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in spec.get("metrics", [])}
    expect(targets == {"cpu": 60, "memory": 80}, f"HPA targets {targets}")
    expect(spec.get("behavior", {}).get("scaleDown", {}).get("stabilizationWindowSeconds") == 300, "HPA behavior")
    expect(one(docs, "PodDisruptionBudget").get("spec", {}).get("minAvailable") == 1, "a PDB (minReplicas 2)")
    sm = one(docs, "ServiceMonitor")
    expect(sm["spec"].get("sampleLimit") == 50000, "ServiceMonitor sampleLimit")
    rule = one(docs, "PrometheusRule")
    groups = rule.get("spec", {}).get("groups", [])
    alerts = [r["alert"] for g in groups for r in g["rules"]]
    expect(alerts == ["NGINXConfigFailed", "NGINXCertificateExpiry", "NGINXTooMany500s", "NGINXTooMany400s"], f"the user's alerts: {alerts}")
    expect(rule["metadata"]["labels"].get("release") == "kube-prometheus-stack", "PrometheusRule labels")
    expect(flag(dep, "enable-metrics") == "true", "request metrics for the alerts")


def eg_keda(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect("replicas" not in dep["spec"], "KEDA owns the replica count")
    so = one(docs, "ScaledObject")
    spec = so.get("spec", {})
    expect(so.get("apiVersion") == "keda.sh/v1alpha1" and spec.get("scaleTargetRef") == {"name": dep["metadata"]["name"]}, "ScaledObject target")
    expect((spec.get("minReplicaCount"), spec.get("maxReplicaCount")) == (2, 8), "ScaledObject bounds")
    expect(spec.get("triggers", [{}])[0].get("type") == "prometheus", "the user's trigger")
    one(docs, "PodDisruptionBudget")
    expect(not of_kind(docs, "HorizontalPodAutoscaler"), "no HPA beside KEDA")


def eg_both(docs):
    """controller.kind: Both: a Deployment and a DaemonSet of the same pods."""
    check_edge_gateway(docs, "ingress-nginx")
    kinds = sorted(d["kind"] for d in controllers(docs))
    expect(kinds == ["DaemonSet", "Deployment"], f"controller workloads {kinds}")
    svc = one(docs, "Service", "edge-gateway-controller")
    expect(all(matches(svc["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"]) for d in controllers(docs)),
           "the Service selects the pods of both")
    one(docs, "PodDisruptionBudget")


def eg_headers(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    cm = one(docs, "ConfigMap", "edge-gateway-controller")["data"]
    expect(cm.get("add-headers") == "ingress-nginx/edge-gateway-custom-add-headers", f"add-headers {cm.get('add-headers')}")
    expect(cm.get("proxy-set-headers") == "ingress-nginx/edge-gateway-custom-proxy-headers", f"proxy-set-headers {cm.get('proxy-set-headers')}")
    expect(one(docs, "ConfigMap", "edge-gateway-custom-add-headers")["data"] == {"X-Frame-Options": "DENY", "Strict-Transport-Security": "max-age=63072000"}, "add-headers ConfigMap")
    expect(one(docs, "ConfigMap", "edge-gateway-custom-proxy-headers")["data"] == {"X-Forwarded-Team": "ml-platform", "X-Team": "ml-platform"}, "proxy-set-headers ConfigMap")
    # The default backend: Deployment + Service, named by the flag, selected by its Service.
    backend = flag(dep, "default-backend-service")
    expect(backend == "$(POD_NAMESPACE)/edge-gateway-defaultbackend", f"--default-backend-service={backend}")
    svc = one(docs, "Service", "edge-gateway-defaultbackend")
    db = next((d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "edge-gateway-defaultbackend"), {})
    expect(bool(db) and matches(svc["spec"]["selector"], db["spec"]["template"]["metadata"]["labels"]), "the default backend Service selects its pods")
    expect(not matches(svc["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"]), "and not the controller's")
    expect(container(db)["image"] == "registry.k8s.io/defaultbackend-amd64:1.5", "ingress-nginx's default backend image")
    one(docs, "PodDisruptionBudget", "edge-gateway-defaultbackend")
    expect(flag(dep, "default-ssl-certificate") == "ingress-nginx/wildcard-tls", "extraArgs")


def eg_norbac(docs):
    dep = check_edge_gateway(docs, "ingress-nginx")
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"):
        expect(not of_kind(docs, kind), f"no {kind} with rbac.create=false, serviceAccount.create=false")
    expect(dep["spec"]["template"]["spec"]["serviceAccountName"] == "existing-sa", "existing ServiceAccount")


# === model-serving ===


def check_model(docs, model_id, namespace):
    check_common(docs, namespace)
    name = f"model-serving-{model_id}"
    path = f"/api/v1/predict/{model_id}"
    dep = one(docs, "Deployment", name)
    svc = one(docs, "Service", name)
    if not dep or not svc:
        return
    port = service_ports(svc).get("http", {})
    expect((port.get("port"), port.get("targetPort")) == (80, "http"), f"Service port {port}")
    c = container(dep)
    expect({p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8080}, "containerPort 8080")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = c.get(probe, {}).get("httpGet", {})
        expect(get == {"path": f"{path}/health", "port": "http"}, f"{probe} {get}")
    expect(dep["spec"]["template"]["spec"].get("automountServiceAccountToken") is False, "no API token in model pods")
    expect(c["securityContext"].get("allowPrivilegeEscalation") is False, "no privilege escalation")
    expect(c.get("args", [])[:2] == ["--model", model_id], f"demo server args {c.get('args')}")


def ingress_routes(docs):
    """{(host, path): (pathType, service, port)} of every Ingress."""
    routes = {}
    for ing in of_kind(docs, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                backend = p["backend"]["service"]
                routes[(rule.get("host"), p["path"])] = (p["pathType"], backend["name"], backend["port"]["number"])
    return routes


def check_model_ingress(docs, model_id):
    ing = one(docs, "Ingress", f"model-serving-{model_id}")
    if not ing:
        return
    expect(ing["spec"].get("ingressClassName") == "nginx", "ingressClassName nginx")
    routes = ingress_routes(docs)
    want = ("Prefix", f"model-serving-{model_id}", 80)
    expect(routes.get(("localhost", f"/api/v1/predict/{model_id}")) == want, f"routes {routes}, want localhost/api/v1/predict/{model_id} -> {want}")
    names = {s["metadata"]["name"]: service_ports(s) for s in of_kind(docs, "Service")}
    for _, service, number in routes.values():
        expect(service in names and any(p["port"] == number for p in names[service].values()), f"backend {service}:{number} is a Service of the release")


def ms_default(docs):
    check_model(docs, "test-deployment-user-1", "user-1")
    expect(not of_kind(docs, "Ingress"), "no Ingress while ingress.enabled=false")


def ms_ingress(docs):
    check_model(docs, "test-deployment-user-1", "user-1")
    check_model_ingress(docs, "test-deployment-user-1")
    ing = one(docs, "Ingress")
    expect("tls" not in ing.get("spec", {}), "no TLS by default")


def ms_tls(docs):
    check_model(docs, "1", "user-1")
    ing = one(docs, "Ingress", "model-serving-1")
    expect(ing["spec"]["tls"] == [{"hosts": ["models.example.com"], "secretName": "models-tls"}], f"tls {ing['spec'].get('tls')}")
    expect(ing["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/proxy-read-timeout": "300", "nginx.ingress.kubernetes.io/proxy-body-size": "64m"},
           f"annotations {ing['metadata'].get('annotations')}")
    routes = ingress_routes(docs)
    expect(routes == {
        ("models.example.com", "/api/v1/predict/1"): ("Prefix", "model-serving-1", 80),
        ("models.example.com", "/v2/models/1/infer"): ("Exact", "model-serving-1", 80),
        (None, "/api/v1/predict/1"): ("Prefix", "model-serving-1", 80),
    }, f"routes {routes}")


def ms_two_releases(docs):
    """Several releases rendered together: no two claim one host + path."""
    seen = {}
    for ing in of_kind(docs, "Ingress"):
        who = f"{ing['metadata']['namespace']}/{ing['metadata']['name']}"
        for key in ingress_routes([ing]):
            expect(key not in seen, f"{who} and {seen.get(key)} both route {key}")
            seen[key] = who
    services = [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in of_kind(docs, "Service")]
    expect(len(services) == len(set(services)), f"Services collide: {services}")
    expect(len(of_kind(docs, "Ingress")) == 4, "four Ingresses")


def eg_gateway_api(docs):
    """gatewayAPI.enabled: the flags, and read/status RBAC for the Gateway API kinds."""
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect(flag(dep, "enable-gateway-api") == "true", "--enable-gateway-api=true")
    expect(flag(dep, "gateway-controller-name") == "example.com/gateway-controller", "--gateway-controller-name")
    rules = rbac_rules(one(docs, "ClusterRole"))
    granted = {(r[0], r[1]): r[2] for r in rules}
    for resource in ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"):
        expect({"get", "list", "watch"} <= granted.get(("gateway.networking.k8s.io", resource), set()), f"reads {resource}")
    for resource in ("gatewayclasses/status", "gateways/status", "httproutes/status", "grpcroutes/status"):
        expect("patch" in granted.get(("gateway.networking.k8s.io", resource), set()), f"patches {resource}")
    expect("referencegrants/status" not in {r[1] for r in rules}, "no ReferenceGrant status")
    expect({"get", "list", "watch"} <= granted.get(("inference.networking.k8s.io", "inferencepools"), set()), "reads InferencePools")
    expect("patch" in granted.get(("inference.networking.k8s.io", "inferencepools/status"), set()), "patches InferencePool status")
    expect({"get", "list", "watch"} <= granted.get(("inference.networking.x-k8s.io", "inferenceobjectives"), set()), "reads InferenceObjectives")
    expect({"get", "list", "watch"} <= granted.get(("", "pods"), set()), "reads Pods (InferencePool members)")
    expect({"get", "list", "watch"} <= granted.get(("", "namespaces"), set()), "reads Namespaces (allowedRoutes selectors)")


def eg_memcached(docs):
    """memcached.enabled: one memcached replica, its Service, and the ConfigMap pointing global-rate-limit at it."""
    check_edge_gateway(docs, "ingress-nginx")
    dep = one(docs, "Deployment", "edge-gateway-memcached")
    expect(dep["spec"]["replicas"] == 1, "one memcached: every gateway replica counts in the same one")
    c = container(dep)
    expect(c["image"] == "mirror.example.com/library/memcached:1.6.33-alpine", f"memcached image {c['image']}")
    expect("--memory-limit=32" in c["args"] and "--udp-port=0" in c["args"], f"memcached args {c['args']}")
    expect(c["securityContext"].get("readOnlyRootFilesystem") is True, "memcached: read-only root")
    expect(dep["spec"]["template"]["spec"]["securityContext"].get("runAsNonRoot") is True, "memcached: non-root")
    svc = one(docs, "Service", "edge-gateway-memcached")
    expect(matches(svc["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"]), "the Service selects memcached")
    expect([p["port"] for p in svc["spec"]["ports"]] == [11211], "port 11211")
    data = one(docs, "ConfigMap", "edge-gateway-controller")["data"]
    expect(data.get("global-rate-limit-memcached-host") == "edge-gateway-memcached.ingress-nginx.svc", f"memcached host {data}")
    expect(data.get("global-rate-limit-memcached-port") == "11211", f"memcached port {data}")


def eg_memcached_elsewhere(docs):
    """memcached.enabled with a host in controller.config: the operator's memcached wins."""
    check_edge_gateway(docs, "ingress-nginx")
    data = one(docs, "ConfigMap", "edge-gateway-controller")["data"]
    expect(data.get("global-rate-limit-memcached-host") == "cache.shared.svc", f"memcached host {data}")


def eg_tcp_udp(docs):
    """TCP and UDP services, as ingress-nginx's chart renders them."""
    dep = check_edge_gateway(docs, "ingress-nginx")
    expect(flag(dep, "tcp-services-configmap") == "$(POD_NAMESPACE)/edge-gateway-tcp", f"--tcp-services-configmap={flag(dep, 'tcp-services-configmap')}")
    expect(flag(dep, "udp-services-configmap") == "dns-config/edge-gateway-udp", f"--udp-services-configmap={flag(dep, 'udp-services-configmap')}")
    expect(flag(dep, "enable-ssl-passthrough") == "", "extraArgs enable-ssl-passthrough: \"\" gives a bare --enable-ssl-passthrough")
    tcp = one(docs, "ConfigMap", "edge-gateway-tcp")
    expect(tcp["metadata"]["namespace"] == "ingress-nginx", "the tcp ConfigMap is in the release namespace")
    expect(tcp["data"] == {"5432": "databases/postgres:5432", "6379": "cache/redis:6379:PROXY:PROXY"}, f"tcp data {tcp['data']}")
    expect(tcp["metadata"].get("annotations") == {"example.com/owner": "data-team"}, "controller.tcp.annotations")
    udp = one(docs, "ConfigMap", "edge-gateway-udp")
    expect(udp["metadata"]["namespace"] == "dns-config", "controller.udp.configMapNamespace")
    expect(udp["data"] == {"53": "ingress-nginx/dns:53"}, f"udp data (templated) {udp['data']}")
    want = {"yc-5432-tcp": (5432, "TCP"), "yc-6379-tcp": (6379, "TCP"), "yc-53-udp": (53, "UDP")}
    got = {p["name"]: (p["containerPort"], p["protocol"]) for p in container(dep)["ports"] if p["name"] in want}
    expect(got == want, f"container ports {got}")
    host = {p["name"]: p.get("hostPort") for p in container(dep)["ports"] if p["name"] in want}
    expect(host == {name: port for name, (port, _) in want.items()}, f"hostPort.enabled: host ports {host}")
    external = service_ports(one(docs, "Service", "edge-gateway-controller"))
    internal = service_ports(one(docs, "Service", "edge-gateway-controller-internal"))
    for svc, node_ports in ((external, {"yc-5432-tcp": 30432, "yc-53-udp": 30053}), (internal, {"yc-6379-tcp": 32379})):
        for name, (port, protocol) in want.items():
            p = svc.get(name, {})
            expect((p.get("port"), p.get("protocol"), p.get("targetPort")) == (port, protocol, name), f"Service port {name}: {p}")
            expect(p.get("nodePort") == node_ports.get(name), f"Service port {name}: nodePort {p.get('nodePort')}, want {node_ports.get(name)}")
            expect("appProtocol" not in p, f"Service port {name}: no appProtocol")
    policy = {(p["protocol"], p["port"]) for p in one(docs, "NetworkPolicy")["spec"]["ingress"][0]["ports"]}
    expect({("TCP", 5432), ("TCP", 6379), ("UDP", 53)} <= policy, f"NetworkPolicy ports {sorted(policy)}")
    role = one(docs, "Role", "edge-gateway-configmap")
    expect(role["metadata"]["namespace"] == "dns-config", "a Role reads the ConfigMaps of controller.udp.configMapNamespace")
    expect({(r[1], tuple(sorted(r[2]))) for r in rbac_rules(role)} == {("configmaps", ("get", "list", "watch"))}, "that Role reads ConfigMaps only")


SCENARIOS = {name: fn for name, fn in globals().items() if name.startswith(("eg_", "ms_")) and callable(fn)}


def main():
    if len(sys.argv) < 3 or sys.argv[1].replace("-", "_") not in SCENARIOS:
        sys.exit(f"usage: check_rendered.py {{{','.join(sorted(SCENARIOS))}}} FILE...")
    docs = load(sys.argv[2:])
    try:
        SCENARIOS[sys.argv[1].replace("-", "_")](docs)
    except (KeyError, IndexError, TypeError) as error:
        failures.append(f"unexpected shape: {type(error).__name__}: {error}")
    for failure in failures:
        print(f"  FAIL {sys.argv[1]}: {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
