{{/*
The memcached that global-rate-limit counts in (memcached.enabled): one
replica, since every gateway replica must count in the same one.
*/}}
{{- define "edge-gateway.memcached.fullname" -}}
{{- printf "%s-memcached" (include "edge-gateway.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.memcached.labels" -}}
{{ include "edge-gateway.labels" . }}
app.kubernetes.io/component: memcached
{{- end -}}

{{- define "edge-gateway.memcached.selectorLabels" -}}
{{ include "edge-gateway.selectorLabels" . }}
app.kubernetes.io/component: memcached
{{- end -}}

{{- define "edge-gateway.memcached.image" -}}
{{- include "edge-gateway.imageRef" (dict "image" .Values.memcached.image "registry" (.Values.global.image.registry | default "docker.io") "appVersion" .Chart.AppVersion) -}}
{{- end -}}

{{/* The host the ConfigMap's global-rate-limit-memcached-host names. */}}
{{- define "edge-gateway.memcached.host" -}}
{{- printf "%s.%s.svc" (include "edge-gateway.memcached.fullname" .) (include "edge-gateway.namespace" .) -}}
{{- end -}}
