{{/*
RBAC rules, least privilege: what the controller's Kubernetes source
(controller/src/cluster) reads and writes, no more. Nothing uses '*', and the
only writes outside the controller's own namespace are Ingress status and
Events.

edge-gateway.rbac.watchedRules: what serving the Ingresses of a namespace
needs. In the ClusterRole normally; with controller.scope.enabled, in a Role
of the served namespace instead.
*/}}
{{- define "edge-gateway.rbac.watchedRules" -}}
# Ingresses are the routes.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "list", "watch"]
# The leader writes the published address into Ingress status (a merge patch
# of the status subresource; ingress-nginx updates it, hence both verbs).
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses/status"]
  verbs: ["update", "patch"]
# Services resolve backend ports, and the published Service's address.
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch"]
# Secrets hold the TLS certificates that Ingresses name (spec.tls[].secretName)
# in their own namespaces. Read only, and only Secrets of type
# kubernetes.io/tls are listed (a field selector; RBAC cannot narrow by type).
# ingress-nginx's ClusterRole grants the same; controller.scope.enabled
# narrows it to the one served namespace.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# ConfigMaps named by Ingresses (custom-headers) and by the command line
# (--tcp-services-configmap, --udp-services-configmap): read only, and only
# the named ones are used. ingress-nginx's ClusterRole grants the same.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
# Traffic goes to pod addresses from EndpointSlices, not to ClusterIPs.
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch"]
# Events report skipped rules and conflicts on the Ingress they concern
# (events.k8s.io; core kept for ingress-nginx parity).
- apiGroups: ["", "events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.gatewayAPI.enabled }}
# gatewayAPI.enabled: Gateways, routes and ReferenceGrants are read; the
# leader writes the status of Gateways and routes (merge patches).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways", "httproutes", "grpcroutes", "referencegrants"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gateways/status", "httproutes/status", "grpcroutes/status"]
  verbs: ["update", "patch"]
# InferencePools (Gateway API Inference Extension) as HTTPRoute backends,
# read when their CRD is installed: the pools, their InferenceObjectives and
# the Pods they select (only labels, addresses and readiness are kept); the
# leader writes pool status.
- apiGroups: ["inference.networking.k8s.io"]
  resources: ["inferencepools"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["inference.networking.k8s.io"]
  resources: ["inferencepools/status"]
  verbs: ["update", "patch"]
- apiGroups: ["inference.networking.x-k8s.io"]
  resources: ["inferenceobjectives"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end -}}

{{/* Cluster-scoped objects: always in the ClusterRole. */}}
{{- define "edge-gateway.rbac.clusterRules" -}}
# IngressClasses decide which Ingresses are ours (spec.controller).
- apiGroups: ["networking.k8s.io"]
  resources: ["ingressclasses"]
  verbs: ["get", "list", "watch"]
# The controller's node address is the Ingress status when no Service or
# address is published (controller.publishService.enabled=false).
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get"]
{{- if .Values.gatewayAPI.enabled }}
# gatewayAPI.enabled: GatewayClasses (and their status, written by the
# leader).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gatewayclasses"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["gatewayclasses/status"]
  verbs: ["update", "patch"]
{{- end }}
{{- if or .Values.gatewayAPI.enabled (and (not .Values.controller.scope.enabled) .Values.controller.scope.namespaceSelector) (index .Values.controller.extraArgs "watch-namespace-selector") }}
# Namespaces' labels: --watch-namespace-selector, and the Gateway API's
# allowedRoutes selectors.
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- end -}}

{{/* The controller ConfigMap (--configmap), the ConfigMaps its
     proxy-set-headers and add-headers keys name, and the TCP / UDP services
     (--tcp-services-configmap, --udp-services-configmap): the ConfigMaps of
     their namespaces (as ingress-nginx's Role), never cluster-wide. */}}
{{- define "edge-gateway.rbac.configMapRules" -}}
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch"]
{{- end -}}
