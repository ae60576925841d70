{{/*
A controller Service (the external one, or the internal one of
controller.service.internal): dict "root" (the chart's context), "name",
"s" (its settings: type, clusterIP, ports, nodePorts, ...), "labels",
"annotations". Service ports 80/443 go to the container's http/https ports;
NodePort 30080/30443 by default. Then a port for each TCP / UDP service
(_streams.tpl), its node port from the settings' nodePorts.tcp / .udp.
*/}}
{{- define "edge-gateway.controller.service" -}}
{{- $root := .root -}}
{{- $s := .s -}}
{{- $all := $root.Values.controller.service -}}
{{- $nodePorts := or (eq $s.type "NodePort") (eq $s.type "LoadBalancer") -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ include "edge-gateway.namespace" $root }}
  labels:
    {{- include "edge-gateway.controller.labels" $root | nindent 4 }}
    {{- with .labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .annotations }}
  annotations:
    {{- range $key, $value := . }}
    {{ $key }}: {{ tpl (toString $value) $root | quote }}
    {{- end }}
  {{- end }}
spec:
  type: {{ $s.type }}
  {{- with $s.clusterIP }}
  clusterIP: {{ . }}
  {{- end }}
  {{- with $s.clusterIPs }}
  clusterIPs:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $s.externalIPs }}
  externalIPs:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if eq $s.type "LoadBalancer" }}
  {{- with $s.loadBalancerIP }}
  loadBalancerIP: {{ . }}
  {{- end }}
  {{- with $s.loadBalancerClass }}
  loadBalancerClass: {{ . }}
  {{- end }}
  {{- with $s.loadBalancerSourceRanges }}
  loadBalancerSourceRanges:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if hasKey $s "allocateLoadBalancerNodePorts" }}
  allocateLoadBalancerNodePorts: {{ $s.allocateLoadBalancerNodePorts }}
  {{- end }}
  {{- with $s.healthCheckNodePort }}
  healthCheckNodePort: {{ . }}
  {{- end }}
  {{- end }}
  {{- if and $nodePorts $s.externalTrafficPolicy }}
  externalTrafficPolicy: {{ $s.externalTrafficPolicy }}
  {{- end }}
  {{- with $s.sessionAffinity }}
  sessionAffinity: {{ . }}
  {{- end }}
  {{- if semverCompare ">=1.31.0-0" $root.Capabilities.KubeVersion.Version }}
  {{- with $s.trafficDistribution }}
  trafficDistribution: {{ . }}
  {{- end }}
  {{- end }}
  {{- with $s.ipFamilyPolicy }}
  ipFamilyPolicy: {{ . }}
  {{- end }}
  {{- with $s.ipFamilies }}
  ipFamilies:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  ports:
    {{- range $name := list "http" "https" }}
    {{- if index $all (printf "enable%s" (title $name)) }}
    - name: {{ $name }}
      port: {{ index $s.ports $name }}
      protocol: TCP
      targetPort: {{ index $s.targetPorts $name }}
      {{- if $s.appProtocol }}
      appProtocol: {{ $name }}
      {{- end }}
      {{- if and $nodePorts (not (empty (index $s.nodePorts $name))) }}
      nodePort: {{ index $s.nodePorts $name }}
      {{- end }}
    {{- end }}
    {{- end }}
    {{- range $p := include "edge-gateway.streamPorts" $root | fromYamlArray }}
    - name: {{ $p.name }}
      port: {{ $p.port }}
      protocol: {{ $p.protocol }}
      targetPort: {{ $p.name }}
      {{- with and $nodePorts (index ($s.nodePorts | default dict) $p.proto | default dict) }}
      {{- with index . $p.key }}
      nodePort: {{ . }}
      {{- end }}
      {{- end }}
    {{- end }}
  selector:
    {{- include "edge-gateway.controller.selectorLabels" $root | nindent 4 }}
{{- end -}}
