{{/*
The controller pod, shared by the Deployment and the DaemonSet
(controller.kind), with ingress-nginx's chart's values.
*/}}

{{/* The container's securityContext built from controller.image.* (ingress-nginx's, least privilege). */}}
{{- define "edge-gateway.controller.containerSecurityContext" -}}
{{- $image := .Values.controller.image -}}
runAsNonRoot: {{ $image.runAsNonRoot }}
runAsUser: {{ $image.runAsUser }}
runAsGroup: {{ $image.runAsGroup }}
allowPrivilegeEscalation: {{ $image.allowPrivilegeEscalation }}
readOnlyRootFilesystem: {{ $image.readOnlyRootFilesystem }}
{{- with $image.seccompProfile }}
seccompProfile:
  {{- toYaml . | nindent 2 }}
{{- end }}
# The image's binary has the file capability cap_net_bind_service (ports
# 80/443 as uid 101, as ingress-nginx's image); the kernel runs it only when
# the container keeps that capability.
capabilities:
  drop:
    - ALL
  add:
    - NET_BIND_SERVICE
{{- end -}}

{{/* The lifecycle hooks, without ingress-nginx's /wait-shutdown (edge-gateway drains on SIGTERM). */}}
{{- define "edge-gateway.controller.lifecycle" -}}
{{- $lifecycle := deepCopy (.Values.controller.lifecycle | default dict) -}}
{{- if eq (toJson (dig "preStop" "exec" "command" list $lifecycle)) (toJson (list "/wait-shutdown")) -}}
{{- $_ := unset $lifecycle "preStop" -}}
{{- end -}}
{{- with $lifecycle }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{- define "edge-gateway.controller.podTemplate" -}}
{{- $c := .Values.controller -}}
metadata:
  labels:
    {{- include "edge-gateway.controller.labels" . | nindent 4 }}
    {{- with $c.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    # Roll the pods when the controller ConfigMap changes.
    checksum/config: {{ include (print $.Template.BasePath "/controller-configmap.yaml") . | sha256sum }}
    {{- range $key, $value := $c.podAnnotations }}
    {{ $key }}: {{ $value | toString | quote }}
    {{- end }}
spec:
  serviceAccountName: {{ include "edge-gateway.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  terminationGracePeriodSeconds: {{ $c.terminationGracePeriodSeconds }}
  dnsPolicy: {{ $c.dnsPolicy }}
  {{- if $c.hostNetwork }}
  hostNetwork: true
  {{- end }}
  {{- with $c.dnsConfig }}
  dnsConfig:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.hostAliases }}
  hostAliases:
    {{- tpl (toYaml .) $ | nindent 4 }}
  {{- end }}
  {{- with $c.hostname }}
  hostname: {{ . }}
  {{- end }}
  {{- with $c.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  {{- with $c.runtimeClassName }}
  runtimeClassName: {{ . | quote }}
  {{- end }}
  {{- if $c.shareProcessNamespace }}
  shareProcessNamespace: true
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- if $c.podSecurityContext }}
    {{- toYaml $c.podSecurityContext | nindent 4 }}
    {{- else }}
    runAsNonRoot: {{ $c.image.runAsNonRoot }}
    runAsUser: {{ $c.image.runAsUser }}
    runAsGroup: {{ $c.image.runAsGroup }}
    seccompProfile:
      type: RuntimeDefault
    {{- end }}
    {{- with $c.sysctls }}
    sysctls:
      {{- range $name, $value := . }}
      - name: {{ $name | quote }}
        value: {{ $value | toString | quote }}
      {{- end }}
    {{- end }}
  {{- with $c.extraInitContainers }}
  initContainers:
    {{- tpl (toYaml .) $ | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ $c.containerName }}
      image: {{ include "edge-gateway.image" . | quote }}
      imagePullPolicy: {{ $c.image.pullPolicy }}
      # Flags keep ingress-nginx's names; extraArgs replace or add to them.
      args:
        {{- include "edge-gateway.controller.args" . | trim | nindent 8 }}
      {{- with include "edge-gateway.controller.lifecycle" . }}
      lifecycle:
        {{- . | nindent 8 }}
      {{- end }}
      env:
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: POD_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        {{- if $c.enableMimalloc }}
        # The image's /lib/x86_64-linux-gnu/libmimalloc.so.2: by name, as the
        # loader runs in secure mode for a binary with a file capability.
        - name: LD_PRELOAD
          value: libmimalloc.so.2
        {{- end }}
        {{- with $c.extraEnvs }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        {{- range $name, $port := $c.containerPort }}
        - name: {{ $name }}
          containerPort: {{ $port }}
          protocol: TCP
          {{- if $c.hostPort.enabled }}
          hostPort: {{ index $c.hostPort.ports $name | default $port }}
          {{- end }}
        {{- end }}
        - name: {{ $c.metrics.portName }}
          containerPort: {{ $c.metrics.port }}
          protocol: TCP
        {{- with include "edge-gateway.admissionWebhooks.containerPort" . }}{{ . | nindent 8 }}{{ end }}
        {{- range include "edge-gateway.streamPorts" . | fromYamlArray }}
        - name: {{ .name }}
          containerPort: {{ .port }}
          protocol: {{ .protocol }}
          {{- if $c.hostPort.enabled }}
          hostPort: {{ .port }}
          {{- end }}
        {{- end }}
      {{- with $c.startupProbe }}
      startupProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.livenessProbe }}
      livenessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.readinessProbe }}
      readinessProbe:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $c.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if semverCompare ">=1.33.0-0" .Capabilities.KubeVersion.Version }}
      {{- with $c.resizePolicy }}
      resizePolicy:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- end }}
      securityContext:
        {{- if $c.containerSecurityContext }}
        {{- toYaml $c.containerSecurityContext | nindent 8 }}
        {{- else }}
        {{- include "edge-gateway.controller.containerSecurityContext" . | nindent 8 }}
        {{- end }}
      {{- $webhookMounts := include "edge-gateway.admissionWebhooks.volumeMounts" . }}
      {{- if or $webhookMounts $c.extraVolumeMounts }}
      volumeMounts:
        {{- with $webhookMounts }}{{ . | nindent 8 }}{{ end }}
        {{- with $c.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
    {{- with $c.extraContainers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- $webhookVolumes := include "edge-gateway.admissionWebhooks.volumes" . }}
  {{- if or $webhookVolumes $c.extraVolumes }}
  volumes:
    {{- with $webhookVolumes }}{{ . | nindent 4 }}{{ end }}
    {{- with $c.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  {{- with $c.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.affinity }}
  affinity:
    {{- tpl (toYaml .) $ | nindent 4 }}
  {{- end }}
  {{- with $c.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- tpl (toYaml .) $ | nindent 4 }}
  {{- end }}
{{- end -}}
