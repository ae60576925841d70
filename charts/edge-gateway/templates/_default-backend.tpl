{{/*
The default backend (defaultBackend.*), as ingress-nginx's chart deploys it:
a small server answering 404 on / and 200 on /healthz, named by the
controller's --default-backend-service.
*/}}
{{- define "edge-gateway.defaultBackend.fullname" -}}
{{- printf "%s-%s" (include "edge-gateway.fullname" .) .Values.defaultBackend.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.defaultBackend.labels" -}}
{{ include "edge-gateway.labels" . }}
app.kubernetes.io/component: default-backend
{{- with .Values.defaultBackend.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "edge-gateway.defaultBackend.selectorLabels" -}}
{{ include "edge-gateway.selectorLabels" . }}
app.kubernetes.io/component: default-backend
{{- end -}}

{{- define "edge-gateway.defaultBackend.serviceAccountName" -}}
{{- $sa := .Values.defaultBackend.serviceAccount -}}
{{- if $sa.create -}}
{{- default (printf "%s-backend" (include "edge-gateway.fullname" .)) $sa.name -}}
{{- else -}}
{{- default "default-backend" $sa.name -}}
{{- end -}}
{{- end -}}

{{- define "edge-gateway.defaultBackend.image" -}}
{{- include "edge-gateway.imageRef" (dict "image" .Values.defaultBackend.image "registry" (.Values.global.image.registry | default "registry.k8s.io") "appVersion" .Chart.AppVersion) -}}
{{- end -}}
