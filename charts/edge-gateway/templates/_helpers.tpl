{{/*
Names follow ingress-nginx's chart:
  edge-gateway.name                  chart name (or nameOverride)
  edge-gateway.fullname              <release>-<name>, or <release> when it already
                                     contains <name>, or fullnameOverride
  edge-gateway.controller.fullname   <fullname>-controller: Deployment, Service,
                                     ConfigMap, PodDisruptionBudget
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

{{- define "edge-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

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

{{/* Labels that select the release's objects (Service and PDB selectors add component). */}}
{{- define "edge-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edge-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the controller's objects, and the selector of its pods. */}}
{{- define "edge-gateway.controller.labels" -}}
{{ include "edge-gateway.labels" . }}
app.kubernetes.io/component: controller
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

{{/* registry/image:tag@digest; the tag defaults to the chart's appVersion. */}}
{{- define "edge-gateway.image" -}}
{{- $image := .Values.controller.image -}}
{{- $repository := $image.image -}}
{{- if $image.registry -}}
{{- $repository = printf "%s/%s" $image.registry $image.image -}}
{{- end -}}
{{- $ref := printf "%s:%s" $repository (default .Chart.AppVersion ($image.tag | toString)) -}}
{{- if $image.digest -}}
{{- $ref = printf "%s@%s" $ref $image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* <namespace>/<service> given to --publish-service. */}}
{{- define "edge-gateway.publishServicePath" -}}
{{- $default := printf "$(POD_NAMESPACE)/%s" (include "edge-gateway.controller.fullname" .) -}}
{{- default $default .Values.controller.publishService.pathOverride -}}
{{- end -}}

{{/* The namespace served with controller.scope.enabled. */}}
{{- define "edge-gateway.watchNamespace" -}}
{{- default .Release.Namespace .Values.controller.scope.namespace -}}
{{- end -}}

{{/* Name of the Lease used for leader election (extraArgs.election-id wins, as on the command line). */}}
{{- define "edge-gateway.electionID" -}}
{{- $fromArgs := index .Values.controller.extraArgs "election-id" | default "" | toString -}}
{{- coalesce $fromArgs .Values.controller.electionID (printf "%s-leader" (include "edge-gateway.fullname" .)) -}}
{{- end -}}

{{/*
The controller's flags as a dict (flag name -> value), before extraArgs.
The container gets POD_NAMESPACE from the downward API; Kubernetes expands
$(POD_NAMESPACE) in args.
*/}}
{{- define "edge-gateway.controller.flags" -}}
{{- $c := .Values.controller -}}
{{- $flags := dict -}}
{{- if and $c.publishService.enabled (or $c.service.enabled $c.publishService.pathOverride) -}}
{{- $_ := set $flags "publish-service" (include "edge-gateway.publishServicePath" .) -}}
{{- end -}}
{{- $_ := set $flags "election-id" (include "edge-gateway.electionID" .) -}}
{{- $_ := set $flags "controller-class" $c.ingressClassResource.controllerValue -}}
{{- $_ := set $flags "ingress-class" $c.ingressClass -}}
{{- $_ := set $flags "configmap" (printf "$(POD_NAMESPACE)/%s" (include "edge-gateway.controller.fullname" .)) -}}
{{- if $c.watchIngressWithoutClass -}}
{{- $_ := set $flags "watch-ingress-without-class" "true" -}}
{{- end -}}
{{- if $c.ingressClassByName -}}
{{- $_ := set $flags "ingress-class-by-name" "true" -}}
{{- end -}}
{{- if $c.scope.enabled -}}
{{- $_ := set $flags "watch-namespace" (default "$(POD_NAMESPACE)" $c.scope.namespace) -}}
{{- end -}}
{{- $_ := set $flags "http-port" ($c.containerPort.http | toString) -}}
{{- $_ := set $flags "https-port" ($c.containerPort.https | toString) -}}
{{- $_ := set $flags "metrics-port" ($c.metrics.port | toString) -}}
{{- $_ := set $flags "enable-metrics" ($c.metrics.enabled | toString) -}}
{{- $_ := set $flags "shutdown-grace-period" ($c.shutdownGracePeriod | toString) -}}
{{- $_ := set $flags "drain-timeout" ($c.drainTimeout | toString) -}}
{{- if .Values.gatewayAPI.enabled -}}
{{- $_ := set $flags "enable-gateway-api" "true" -}}
{{- $_ := set $flags "gateway-controller-name" .Values.gatewayAPI.controllerName -}}
{{- end -}}
{{- toYaml $flags -}}
{{- end -}}
