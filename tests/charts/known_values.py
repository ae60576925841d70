"""Writes charts/edge-gateway/templates/_known_values.tpl from values.yaml.

    python3 known_values.py VALUES_YAML TPL [--check]

The template holds the tree of value names the chart knows (every value of
ingress-nginx's chart v4.15 and the chart's own), so that a value it does not
know (a typo, a value of another chart version) stops `helm install` with its
name instead of being ignored (_refusals.tpl). Maps whose keys are the user's
(labels, annotations, ConfigMap entries, Kubernetes objects passed through)
are marked "*": any key. --check exits 1 when TPL is not what it would write.
"""

import sys

import yaml

# Maps the user fills with keys of their own, whatever their default.
FREE_FORM = {
    "commonLabels", "controller.config", "controller.configAnnotations", "controller.proxySetHeaders",
    "controller.addHeaders", "controller.dnsConfig", "controller.hostname", "controller.image.seccompProfile",
    "controller.containerPort", "controller.hostPort.ports", "controller.ingressClassResource.annotations",
    "controller.ingressClassResource.parameters", "controller.podLabels", "controller.podSecurityContext",
    "controller.sysctls", "controller.containerSecurityContext", "controller.tcp.annotations",
    "controller.udp.annotations", "controller.extraArgs", "controller.annotations", "controller.labels",
    "controller.updateStrategy", "controller.affinity", "controller.nodeSelector", "controller.livenessProbe",
    "controller.readinessProbe", "controller.startupProbe", "controller.podAnnotations", "controller.resources",
    "controller.autoscaling.annotations", "controller.autoscaling.behavior", "controller.keda.fallback",
    "controller.keda.scaledObject.annotations", "controller.keda.behavior", "controller.service.external.labels",
    "controller.service.annotations", "controller.service.labels", "controller.service.nodePorts.tcp",
    "controller.service.nodePorts.udp", "controller.service.internal.labels", "controller.service.internal.annotations",
    "controller.service.internal.ports", "controller.service.internal.targetPorts",
    "controller.service.internal.nodePorts.tcp", "controller.service.internal.nodePorts.udp",
    "controller.metrics.service.annotations", "controller.metrics.service.labels",
    "controller.metrics.serviceMonitor.additionalLabels", "controller.metrics.serviceMonitor.annotations",
    "controller.metrics.serviceMonitor.namespaceSelector", "controller.metrics.prometheusRule.additionalLabels",
    "controller.metrics.prometheusRule.annotations", "controller.lifecycle",
    "controller.admissionWebhooks.annotations", "controller.admissionWebhooks.labels",
    "controller.admissionWebhooks.namespaceSelector", "controller.admissionWebhooks.objectSelector",
    "controller.admissionWebhooks.service.annotations", "controller.admissionWebhooks.certManager.issuerRef",
    "controller.admissionWebhooks.patch.podAnnotations", "controller.admissionWebhooks.patch.nodeSelector",
    "controller.admissionWebhooks.patch.labels", "controller.admissionWebhooks.patch.securityContext",
    "controller.admissionWebhooks.createSecretJob.securityContext",
    "controller.admissionWebhooks.createSecretJob.resources",
    "controller.admissionWebhooks.patchWebhookJob.securityContext",
    "controller.admissionWebhooks.patchWebhookJob.resources",
    "defaultBackend.image.seccompProfile", "defaultBackend.extraArgs", "defaultBackend.livenessProbe",
    "defaultBackend.readinessProbe", "defaultBackend.updateStrategy", "defaultBackend.affinity",
    "defaultBackend.podSecurityContext", "defaultBackend.containerSecurityContext", "defaultBackend.podLabels",
    "defaultBackend.nodeSelector", "defaultBackend.podAnnotations", "defaultBackend.resources",
    "defaultBackend.autoscaling.annotations", "defaultBackend.service.annotations", "defaultBackend.labels",
    "serviceAccount.annotations", "tcp", "udp",
}
# Values the templates read that values.yaml leaves unset (as ingress-nginx's does).
EXTRA = {"controller.service.allocateLoadBalancerNodePorts",
         "controller.service.internal.allocateLoadBalancerNodePorts", "controller.startupProbe"}


def known(values, path=""):
    tree = {}
    for key, value in values.items():
        name = f"{path}.{key}" if path else str(key)
        if name in FREE_FORM:
            tree[key] = "*"
        elif isinstance(value, dict) and value:
            tree[key] = known(value, name)
        elif isinstance(value, dict):
            sys.exit(f"known_values.py: {name} is an empty map: add it to FREE_FORM, or give it its keys")
        else:
            tree[key] = ""
    return tree


def main():
    values_file, tpl = sys.argv[1:3]
    tree = known(yaml.safe_load(open(values_file)))
    for name in EXTRA:
        node = tree
        *parents, last = name.split(".")
        for parent in parents:
            node = node[parent]
        node.setdefault(last, "*" if name in FREE_FORM else "")
    body = yaml.safe_dump(tree, sort_keys=True, width=1000)
    text = ("{{/* Generated by tests/charts/known_values.py from values.yaml; do not edit.\n"
            "     The names of the values this chart knows (\"*\": any key below). */}}\n"
            "{{- define \"edge-gateway.knownValues\" -}}\n" + body + "{{- end -}}\n")
    if "--check" in sys.argv[3:]:
        if open(tpl).read() != text:
            sys.exit(f"{tpl} is out of date: python3 tests/charts/known_values.py {values_file} {tpl}")
    else:
        open(tpl, "w").write(text)


if __name__ == "__main__":
    main()
