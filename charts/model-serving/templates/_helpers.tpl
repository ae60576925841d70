{{/*
The model's id: model.id, else <release>-<namespace>. It names the model's
objects (model-serving-<id>) and its path (<ingress.basePath>/<id>), so it
must be a DNS label and model-serving-<id> at most 63 characters.
*/}}
{{- define "model-serving.id" -}}
{{- $id := toString (default (printf "%s-%s" .Release.Name .Release.Namespace) .Values.model.id) -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $id) -}}
{{- fail (printf "model id %q is not a DNS label (lowercase letters, digits and '-'): set model.id" $id) -}}
{{- end -}}
{{- if gt (len $id) 49 -}}
{{- fail (printf "model id %q is longer than 49 characters, so model-serving-<id> would not fit a 63-character name: set a shorter model.id" $id) -}}
{{- end -}}
{{- $id -}}
{{- end -}}

{{/* model-serving-<id>: the Deployment, Service and Ingress. */}}
{{- define "model-serving.fullname" -}}
{{- printf "model-serving-%s" (include "model-serving.id" .) -}}
{{- end -}}

{{/* The model's path: <ingress.basePath>/<id>. */}}
{{- define "model-serving.path" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.ingress.basePath) (include "model-serving.id" .) -}}
{{- end -}}

{{- define "model-serving.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "model-serving.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "model-serving.labels" -}}
helm.sh/chart: {{ include "model-serving.chart" . }}
{{ include "model-serving.selectorLabels" . }}
app.kubernetes.io/component: model
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
model-serving/id: {{ include "model-serving.id" . | quote }}
{{- end -}}

{{- define "model-serving.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion (toString .Values.image.tag)) -}}
{{- end -}}
