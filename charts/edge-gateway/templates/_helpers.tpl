{{/*
Names follow ingress-nginx's chart:
  edge-gateway.name                  chart name (or nameOverride)
  edge-gateway.fullname              <release>-<name>, or <release> when it already
                                     contains <name>, or fullnameOverride
  edge-gateway.controller.fullname   <fullname>-controller: Deployment, DaemonSet,
                                     Services, ConfigMap, PodDisruptionBudget, ...
  edge-gateway.namespace             namespaceOverride, else the release namespace
All are truncated to 63 characters (DNS label).
*/}}
{{- define "edge-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "edge-gateway.controller.fullname" -}}
{{- printf "%s-%s" (include "edge-gateway.fullname" .) .Values.controller.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
ingress-nginx's template names, for values that embed Helm templates
(affinity, topologySpreadConstraints, extraInitContainers, hostAliases,
config, Service annotations): an ingress-nginx values file that says
'{{ include "ingress-nginx.name" . }}' renders the same here.
*/}}
{{- define "ingress-nginx.name" -}}{{ include "edge-gateway.name" . }}{{- end -}}
{{- define "ingress-nginx.fullname" -}}{{ include "edge-gateway.fullname" . }}{{- end -}}
{{- define "ingress-nginx.controller.fullname" -}}{{ include "edge-gateway.controller.fullname" . }}{{- end -}}
{{- define "ingress-nginx.namespace" -}}{{ include "edge-gateway.namespace" . }}{{- end -}}
{{- define "ingress-nginx.selectorLabels" -}}{{ include "edge-gateway.selectorLabels" . }}{{- end -}}
{{- define "ingress-nginx.labels" -}}{{ include "edge-gateway.labels" . }}{{- end -}}

{{/* Labels of every object. */}}
{{- define "edge-gateway.labels" -}}
helm.sh/chart: {{ include "edge-gateway.chart" . }}
{{ include "edge-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: {{ include "edge-gateway.name" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the release's objects (selectors add component). */}}
{{- define "edge-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edge-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the controller's objects and pods: controller.labels too, as in ingress-nginx's chart. */}}
{{- define "edge-gateway.controller.labels" -}}
{{ include "edge-gateway.labels" . }}
app.kubernetes.io/component: controller
{{- with .Values.controller.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "edge-gateway.controller.selectorLabels" -}}
{{ include "edge-gateway.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "edge-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "edge-gateway.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference from {repository, registry, image, tag, digest} and a
default registry: repository wins over registry/image; the tag defaults to
the chart's appVersion.
*/}}
{{- define "edge-gateway.imageRef" -}}
{{- $image := .image -}}
{{- $repository := $image.repository | default "" -}}
{{- if not $repository -}}
{{- $registry := $image.registry | default .registry -}}
{{- $repository = ternary (printf "%s/%s" $registry $image.image) $image.image (ne $registry "") -}}
{{- end -}}
{{- $ref := printf "%s:%s" $repository (default .appVersion ($image.tag | toString)) -}}
{{- with $image.digest -}}
{{- $ref = printf "%s@%s" $ref . -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{- define "edge-gateway.image" -}}
{{- include "edge-gateway.imageRef" (dict "image" .Values.controller.image "registry" .Values.global.image.registry "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* <namespace>/<service> given to --publish-service. */}}
{{- define "edge-gateway.publishServicePath" -}}
{{- $service := include "edge-gateway.controller.fullname" . -}}
{{- if not .Values.controller.service.external.enabled -}}
{{- $service = printf "%s-internal" $service -}}
{{- end -}}
{{- default (printf "$(POD_NAMESPACE)/%s" $service) .Values.controller.publishService.pathOverride -}}
{{- end -}}

{{/* Whether a Service of the chart is published (--publish-service). */}}
{{- define "edge-gateway.publishesService" -}}
{{- $s := .Values.controller.service -}}
{{- if and .Values.controller.publishService.enabled (or .Values.controller.publishService.pathOverride (and $s.enabled (or $s.external.enabled $s.internal.enabled))) -}}
true
{{- end -}}
{{- end -}}

{{/* The namespace served with controller.scope.enabled. */}}
{{- define "edge-gateway.watchNamespace" -}}
{{- default (include "edge-gateway.namespace" .) .Values.controller.scope.namespace -}}
{{- end -}}

{{/* The namespace of the controller ConfigMap. */}}
{{- define "edge-gateway.configMapNamespace" -}}
{{- default (include "edge-gateway.namespace" .) .Values.controller.configMapNamespace -}}
{{- end -}}

{{/* Name of the Lease used for leader election (extraArgs.election-id wins, as on the command line). */}}
{{- define "edge-gateway.electionID" -}}
{{- $fromArgs := index .Values.controller.extraArgs "election-id" | default "" | toString -}}
{{- coalesce $fromArgs .Values.controller.electionID (printf "%s-leader" (include "edge-gateway.fullname" .)) -}}
{{- end -}}

{{/* The workload kinds rendered for controller.kind. */}}
{{- define "edge-gateway.controller.kinds" -}}
{{- if eq .Values.controller.kind "Both" -}}
[Deployment, DaemonSet]
{{- else -}}
[{{ .Values.controller.kind }}]
{{- end -}}
{{- end -}}

{{/* Whether a Deployment is rendered. */}}
{{- define "edge-gateway.controller.hasDeployment" -}}
{{- if has "Deployment" (include "edge-gateway.controller.kinds" . | fromYamlArray) -}}
true
{{- end -}}
{{- end -}}

{{/* The most pods the Deployment keeps at the least: what the PDB protects. */}}
{{- define "edge-gateway.controller.minReplicas" -}}
{{- $c := .Values.controller -}}
{{- if $c.autoscaling.enabled -}}
{{- $c.autoscaling.minReplicas -}}
{{- else if $c.keda.enabled -}}
{{- $c.keda.minReplicas -}}
{{- else -}}
{{- $c.replicaCount -}}
{{- end -}}
{{- end -}}
