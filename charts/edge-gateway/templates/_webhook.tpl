{{/*
The validating admission webhook (controller.admissionWebhooks.*), named as
in ingress-nginx's chart:
  edge-gateway.admissionWebhooks.fullname   <fullname>-<admissionWebhooks.name>:
                                            the ValidatingWebhookConfiguration,
                                            the certificate Secret, the hook
                                            Jobs' RBAC
  <controller.fullname>-admission           the webhook Service
The certificate comes from the hook Jobs (`edge-gateway webhook-certgen`, or
kube-webhook-certgen when admissionWebhooks.patch.image names it) or from
cert-manager (admissionWebhooks.certManager.enabled).
*/}}
{{- define "edge-gateway.admissionWebhooks.fullname" -}}
{{- printf "%s-%s" (include "edge-gateway.fullname" .) .Values.controller.admissionWebhooks.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.admissionWebhooks.serviceName" -}}
{{- printf "%s-admission" (include "edge-gateway.controller.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.admissionWebhooks.createSecretJob.fullname" -}}
{{- printf "%s-%s" (include "edge-gateway.admissionWebhooks.fullname" .) .Values.controller.admissionWebhooks.createSecretJob.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.admissionWebhooks.patchWebhookJob.fullname" -}}
{{- printf "%s-%s" (include "edge-gateway.admissionWebhooks.fullname" .) .Values.controller.admissionWebhooks.patchWebhookJob.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "edge-gateway.admissionWebhooks.patch.serviceAccountName" -}}
{{- $sa := .Values.controller.admissionWebhooks.patch.serviceAccount -}}
{{- if $sa.create -}}
{{- default (include "edge-gateway.admissionWebhooks.fullname" .) $sa.name -}}
{{- else -}}
{{- default "default" $sa.name -}}
{{- end -}}
{{- end -}}

{{/* Whether the hook Jobs make the certificate (no cert-manager). */}}
{{- define "edge-gateway.admissionWebhooks.jobs" -}}
{{- $w := .Values.controller.admissionWebhooks -}}
{{- if and $w.enabled $w.patch.enabled (not $w.certManager.enabled) -}}true{{- end -}}
{{- end -}}

{{/*
The hook Jobs' image and command: the controller's image running
`edge-gateway webhook-certgen`, unless admissionWebhooks.patch.image names
another (ingress-nginx's kube-webhook-certgen takes the same arguments;
its registry defaults as in ingress-nginx's chart: global.image.registry,
else registry.k8s.io).
*/}}
{{- define "edge-gateway.admissionWebhooks.image" -}}
{{- $i := .Values.controller.admissionWebhooks.patch.image -}}
{{- if $i.repository -}}
{{- printf "%s:%s" $i.repository (toString $i.tag) -}}{{- if $i.digest -}}@{{ $i.digest }}{{- end -}}
{{- else if $i.image -}}
{{- $global := (.Values.global | default dict).image | default dict -}}
{{- $registry := $i.registry | default $global.registry | default "registry.k8s.io" -}}
{{- printf "%s/%s:%s" $registry $i.image (toString $i.tag) -}}{{- if $i.digest -}}@{{ $i.digest }}{{- end -}}
{{- else -}}
{{- include "edge-gateway.image" . -}}
{{- end -}}
{{- end -}}

{{- define "edge-gateway.admissionWebhooks.command" -}}
{{- $i := .Values.controller.admissionWebhooks.patch.image -}}
{{- if not (or $i.repository $i.image) -}}
- webhook-certgen
{{- end -}}
{{- end -}}

{{/* The controller flags the webhook adds (merged into the controller's). */}}
{{- define "edge-gateway.admissionWebhooks.flags" -}}
{{- $w := .Values.controller.admissionWebhooks -}}
{{- if $w.enabled -}}
validating-webhook: {{ printf ":%v" $w.port | quote }}
validating-webhook-certificate: {{ $w.certificate | quote }}
validating-webhook-key: {{ $w.key | quote }}
{{- end -}}
{{- end -}}

{{/* The controller container's webhook port. */}}
{{- define "edge-gateway.admissionWebhooks.containerPort" -}}
{{- $w := .Values.controller.admissionWebhooks -}}
{{- if $w.enabled -}}
{{- if or (eq (int $w.port) (int .Values.controller.containerPort.http)) (eq (int $w.port) (int .Values.controller.containerPort.https)) (eq (int $w.port) (int .Values.controller.metrics.port)) -}}
{{- fail (printf "controller.admissionWebhooks.port %v is already a port of the controller (containerPort.http/https, metrics.port): choose another, e.g. 8443" $w.port) -}}
{{- end }}
- name: webhook
  containerPort: {{ $w.port }}
  protocol: TCP
{{- end -}}
{{- end -}}

{{/* The certificate Secret, mounted where the flags read it. */}}
{{- define "edge-gateway.admissionWebhooks.volumeMounts" -}}
{{- if .Values.controller.admissionWebhooks.enabled -}}
- name: webhook-cert
  mountPath: /usr/local/certificates/
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "edge-gateway.admissionWebhooks.volumes" -}}
{{- $w := .Values.controller.admissionWebhooks -}}
{{- if $w.enabled -}}
- name: webhook-cert
  secret:
    secretName: {{ include "edge-gateway.admissionWebhooks.fullname" . }}
    {{- if $w.certManager.enabled }}
    items:
      - key: tls.crt
        path: cert
      - key: tls.key
        path: key
    {{- end }}
{{- end -}}
{{- end -}}

{{/* Labels of the webhook's objects. */}}
{{- define "edge-gateway.admissionWebhooks.labels" -}}
{{ include "edge-gateway.labels" . }}
app.kubernetes.io/component: admission-webhook
{{- with .Values.controller.admissionWebhooks.patch.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* A line of NOTES.txt. */}}
{{- define "edge-gateway.admissionWebhooks.notes" -}}
{{- $w := .Values.controller.admissionWebhooks -}}
{{- if $w.enabled -}}
The admission webhook judges every Ingress create and update (failurePolicy {{ $w.failurePolicy }}): kubectl prints why one is refused.
{{- else -}}
The admission webhook is off (ingress-nginx's chart turns it on by default): set controller.admissionWebhooks.enabled=true to refuse broken Ingresses at kubectl apply.
{{- end -}}
{{- end -}}
