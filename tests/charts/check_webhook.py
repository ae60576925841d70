"""Checks the admission webhook's objects in a render of charts/edge-gateway.

    python3 check_webhook.py SCENARIO FILE

SCENARIO (see webhook.sh) says which values the FILE was rendered with.
The webhook configuration, its Service, the controller's flags, port and
certificate volume must agree; the certificate comes from the hook Jobs
(least-privilege RBAC, hook annotations) or from cert-manager. Prints one
line per failed fact and exits 1 if any failed; needs PyYAML.
"""

import sys

import yaml

failures = []
HOOK_ANNOTATIONS = {"helm.sh/hook", "helm.sh/hook-delete-policy"}


def expect(condition, message):
    if not condition:
        failures.append(message)
    return condition


def of_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def named(docs, kind, name):
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    expect(len(found) == 1, f"expected one {kind} {name}, found {len(found)}")
    return found[0] if found else {}


def component(doc):
    return doc["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def controller(docs):
    deps = [d for d in of_kind(docs, "Deployment") if component(d) == "controller"]
    expect(len(deps) == 1, f"one controller Deployment, found {len(deps)}")
    return deps[0]


def flags(dep):
    out = {}
    for arg in dep["spec"]["template"]["spec"]["containers"][0].get("args", []):
        name, _, value = arg[2:].partition("=")
        out[name] = value
    return out


def rules(role):
    return [(g, r, tuple(sorted(rule["verbs"])), tuple(rule.get("resourceNames") or ()))
            for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]]


def check_disabled(docs):
    for kind in ("ValidatingWebhookConfiguration", "Job", "Certificate", "Issuer"):
        expect(not of_kind(docs, kind), f"{kind} rendered with the webhook off")
    expect(not any(component(d) == "admission-webhook" for d in docs), "webhook objects with the webhook off")
    dep = controller(docs)
    expect(not any(f.startswith("validating-webhook") for f in flags(dep)), "webhook flags with the webhook off")
    expect("namespaces" not in {r[1] for role in of_kind(docs, "ClusterRole") for r in rules(role)},
           "namespaces are read only with --watch-namespace-selector")


def check_enabled(docs, scenario):
    dep = controller(docs)
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    f = flags(dep)
    ns = dep["metadata"]["namespace"]

    vwcs = of_kind(docs, "ValidatingWebhookConfiguration")
    expect(len(vwcs) == 1, f"one ValidatingWebhookConfiguration, found {len(vwcs)}")
    if not vwcs:
        return
    vwc = vwcs[0]
    vwc_name = vwc["metadata"]["name"]
    (hook,) = vwc["webhooks"]
    expect(hook["name"] == "validate.nginx.ingress.kubernetes.io", f"webhook name {hook['name']}")
    expect(hook["rules"] == [{"apiGroups": ["networking.k8s.io"], "apiVersions": ["v1"],
                              "operations": ["CREATE", "UPDATE"], "resources": ["ingresses"]}], f"rules {hook['rules']}")
    expect(hook["matchPolicy"] == "Equivalent", "matchPolicy Equivalent")
    expect(hook["sideEffects"] == "None", "sideEffects None")
    expect(hook["admissionReviewVersions"] == ["v1"], "admissionReviewVersions [v1]")

    # clientConfig -> Service -> container port -> the controller's flag.
    ref = hook["clientConfig"]["service"]
    expect(ref["path"] == "/networking/v1/ingresses", f"path {ref['path']}")
    expect(ref["namespace"] == ns, f"webhook Service namespace {ref['namespace']}")
    svc = named(docs, "Service", ref["name"])
    if svc:
        (port,) = svc["spec"]["ports"]
        expect(port["port"] == ref["port"], f"Service port {port['port']} vs clientConfig port {ref['port']}")
        expect(port["targetPort"] == "webhook", "Service targets the container port named webhook")
        labels = dep["spec"]["template"]["metadata"]["labels"]
        expect(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), "the webhook Service selects the controller pods")
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    expect(f.get("validating-webhook") == f":{ports.get('webhook')}", f"--validating-webhook={f.get('validating-webhook')} vs port {ports.get('webhook')}")
    expect(len(set(ports.values())) == len(ports), f"container ports collide: {ports}")

    # The certificate Secret is mounted where the flags read it.
    secret = vwc_name  # <fullname>-admission, as in ingress-nginx's chart
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    vol = volumes.get("webhook-cert", {})
    expect(vol.get("secret", {}).get("secretName") == secret, f"webhook-cert volume: {vol}")
    mount = mounts.get("webhook-cert", {}).get("mountPath", "")
    for flag, key in (("validating-webhook-certificate", "cert"), ("validating-webhook-key", "key")):
        expect(f.get(flag) == mount + key, f"--{flag}={f.get(flag)} vs the mount {mount}")
    expect(mounts.get("webhook-cert", {}).get("readOnly") is True, "the certificate is mounted read-only")

    if scenario == "eg-webhook":
        expect(hook["failurePolicy"] == "Ignore", "failurePolicy from values")
        expect(hook.get("timeoutSeconds") == 29, "timeoutSeconds from values")
        selector = hook.get("namespaceSelector", {}).get("matchExpressions", [{}])
        expect(selector[0].get("values") == ["kube-system"], "namespaceSelector from values")
        expect(hook.get("objectSelector") == {"matchLabels": {"ingress-validation": "on"}}, "objectSelector from values")
        expect(vwc["metadata"].get("annotations", {}).get("team") == "platform", "annotations from values")
        expect(vwc["metadata"]["labels"].get("webhook") == "edge", "labels from values")
    else:
        expect(hook["failurePolicy"] == "Fail", "failurePolicy defaults to Fail, as ingress-nginx")
        expect("timeoutSeconds" not in hook, "no timeoutSeconds unless set")

    jobs = of_kind(docs, "Job")
    if scenario == "eg-webhook-cert-manager":
        expect(not jobs, "no hook Jobs with cert-manager")
        annotations = vwc["metadata"].get("annotations", {})
        expect(annotations.get("cert-manager.io/inject-ca-from") == f"{ns}/{secret}", f"inject-ca-from: {annotations}")
        cert = named(docs, "Certificate", secret)
        if cert:
            expect(cert["spec"]["secretName"] == secret, "the Certificate writes the mounted Secret")
            expect(f"{ref['name']}.{ns}.svc" in cert["spec"]["dnsNames"], f"dnsNames {cert['spec']['dnsNames']}")
            expect(cert["spec"]["issuerRef"] == {"name": "cluster-ca", "kind": "ClusterIssuer"}, "issuerRef from values")
            expect(cert["spec"]["duration"] == "2160h0m0s" and cert["spec"]["revisionHistoryLimit"] == 2, "admissionCert values")
        expect(not of_kind(docs, "Issuer"), "no self-signed Issuer with an issuerRef")
        items = vol.get("secret", {}).get("items", [])
        expect({(i["key"], i["path"]) for i in items} == {("tls.crt", "cert"), ("tls.key", "key")}, f"items {items}")
        return

    # The hook Jobs make the certificate, then patch the CA in.
    by_hook = {j["metadata"]["annotations"]["helm.sh/hook"]: j for j in jobs}
    expect(set(by_hook) == {"pre-install,pre-upgrade", "post-install,post-upgrade"}, f"hook Jobs {sorted(by_hook)}")
    custom_image = scenario == "eg-webhook-certgen-image"
    for hook_name, job in by_hook.items():
        spec = job["spec"]["template"]["spec"]
        (jc,) = spec["containers"]
        args = jc["args"]
        if custom_image:
            expect(jc["image"].startswith("registry.k8s.io/ingress-nginx/kube-webhook-certgen:v1.6.9@sha256:"), f"image {jc['image']}")
            expect(args[0] in ("create", "patch"), f"kube-webhook-certgen's arguments: {args}")
        else:
            expect(jc["image"] == c["image"], f"the Jobs run the controller's image, not {jc['image']}")
            expect(args[0] == "webhook-certgen", f"edge-gateway webhook-certgen: {args}")
            args = args[1:]
        expect(f"--secret-name={secret}" in args, f"{hook_name}: secret {args}")
        expect("--namespace=$(POD_NAMESPACE)" in args, f"{hook_name}: namespace {args}")
        expect(spec["restartPolicy"] == "OnFailure", "restartPolicy OnFailure")
        sc = jc.get("securityContext", {})
        expect(sc.get("runAsNonRoot") is True and sc.get("readOnlyRootFilesystem") is True
               and sc.get("allowPrivilegeEscalation") is False, f"Job container security context {sc}")
        if args[0] == "create":
            expect(f"--host={ref['name']},{ref['name']}.$(POD_NAMESPACE).svc" in args, f"create hosts: {args}")
        else:
            expect(f"--webhook-name={vwc_name}" in args, f"patch names the configuration: {args}")
            expect(f"--patch-failure-policy={hook['failurePolicy']}" in args, f"patch failure policy: {args}")
            expect("--patch-mutating=false" in args, "no mutating webhook to patch")
        if scenario == "eg-webhook":
            env = {e["name"]: e.get("value") for e in jc["env"]}
            expect(env.get("RUST_LOG") == "debug", "extraEnvs in the Jobs")
            expect(spec.get("priorityClassName") == "system-cluster-critical", "priorityClassName")
            if args[0] == "create":
                expect(job["spec"]["activeDeadlineSeconds"] == 120, "createSecretJob.activeDeadlineSeconds")

    # Their RBAC: the Secret (get, create) and this configuration only.
    sa = {j["spec"]["template"]["spec"]["serviceAccountName"] for j in jobs}
    expect(len(sa) == 1, f"one ServiceAccount for the Jobs: {sa}")
    sa = sa.pop() if sa else ""
    if custom_image:
        expect(sa == "certgen", f"serviceAccount.name from values: {sa}")
    hook_docs = [d for d in docs if component(d) == "admission-webhook" and d["kind"] != "ValidatingWebhookConfiguration"]
    for d in hook_docs:
        expect(HOOK_ANNOTATIONS <= set(d["metadata"].get("annotations", {})), f"{d['kind']} {d['metadata']['name']} is a hook")
    named(docs, "ServiceAccount", sa)
    cr = [r for r in of_kind(docs, "ClusterRole") if component(r) == "admission-webhook"]
    role = [r for r in of_kind(docs, "Role") if component(r) == "admission-webhook"]
    expect(len(cr) == 1 and len(role) == 1, f"one ClusterRole and one Role for the Jobs: {len(cr)}, {len(role)}")
    if cr:
        expect(rules(cr[0]) == [("admissionregistration.k8s.io", "validatingwebhookconfigurations", ("get", "update"), (vwc_name,))],
               f"Jobs' ClusterRole: {rules(cr[0])}")
    if role:
        expect(rules(role[0]) == [("", "secrets", ("create", "get"), ())], f"Jobs' Role: {rules(role[0])}")
    for b in of_kind(docs, "RoleBinding") + of_kind(docs, "ClusterRoleBinding"):
        if component(b) == "admission-webhook":
            expect(b["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": ns}], f"{b['kind']} subjects {b['subjects']}")
    # The controller gains no permission from the webhook.
    for r in of_kind(docs, "ClusterRole") + of_kind(docs, "Role"):
        if component(r) != "admission-webhook":
            expect(not any(rule[1] in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations") for rule in rules(r)),
                   f"{r['kind']} {r['metadata']['name']} touches webhook configurations")
    policies = of_kind(docs, "NetworkPolicy")
    expect(len(policies) == (1 if scenario == "eg-webhook" else 0), f"NetworkPolicy only when asked: {len(policies)}")
    namespaces = [r for role in of_kind(docs, "ClusterRole") for r in rules(role) if r[1] == "namespaces"]
    if scenario == "eg-webhook-certgen-image":
        expect(namespaces == [("", "namespaces", ("get", "list", "watch"), ())], f"--watch-namespace-selector needs namespaces: {namespaces}")
    else:
        expect(not namespaces, f"namespaces read without a selector: {namespaces}")


def main():
    scenario, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if scenario == "eg-webhook-off":
        check_disabled(docs)
    else:
        check_enabled(docs, scenario)
    for failure in failures:
        print(f"{scenario}: {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
