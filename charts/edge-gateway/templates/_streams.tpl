{{/*
TCP and UDP services, as ingress-nginx's chart renders its `tcp` / `udp`
values: a ConfigMap each (`<fullname>-tcp`, `<fullname>-udp`) named by
--tcp-services-configmap / --udp-services-configmap, and for each entry a
container port, a port of the controller Services (node port from
controller.service[.internal].nodePorts.tcp/udp) and a NetworkPolicy port.
An entry is `"<port>": "<namespace>/<service>:<port>[:PROXY][:PROXY]"`;
templates are allowed in the values, as in ingress-nginx's chart.
_refusals.tpl checks the entries.
*/}}

{{/* {tcp: {port: service}, udp: {...}} with templates rendered. */}}
{{- define "edge-gateway.streams" -}}
tcp: {{ tpl (toYaml (.Values.tcp | default dict)) . | fromYaml | toJson }}
udp: {{ tpl (toYaml (.Values.udp | default dict)) . | fromYaml | toJson }}
{{- end -}}

{{/*
The ports of the entries, TCP then UDP, each ordered by port:
[{name, port, protocol, proto, key}]; name is ingress-nginx's
`[<portNamePrefix>-]<port>-<tcp|udp>`, key the entry's key.
*/}}
{{- define "edge-gateway.streamPorts" -}}
{{- $streams := include "edge-gateway.streams" . | fromYaml -}}
{{- $prefix := ternary (printf "%s-" .Values.portNamePrefix) "" (ne (toString .Values.portNamePrefix) "") -}}
{{- $out := list -}}
{{- range $proto := list "tcp" "udp" -}}
{{- $byPort := dict -}}
{{- range $key, $_ := index $streams $proto -}}
{{- $_ := set $byPort (printf "%05d" (int $key)) $key -}}
{{- end -}}
{{- range $_, $key := $byPort -}}
{{- $out = append $out (dict "name" (printf "%s%s-%s" $prefix $key $proto) "port" (int $key) "protocol" (upper $proto) "proto" $proto "key" $key) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The namespace of the tcp or udp ConfigMap: dict "root", "proto". */}}
{{- define "edge-gateway.streamsNamespace" -}}
{{- default (include "edge-gateway.namespace" .root) (index .root.Values.controller .proto).configMapNamespace -}}
{{- end -}}

{{/*
The namespaces whose ConfigMaps the controller reads by name, once each:
those of --configmap, --tcp-services-configmap and
--udp-services-configmap as the container gets them (extraArgs included),
$(POD_NAMESPACE) being the release namespace.
*/}}
{{- define "edge-gateway.configMapNamespaces" -}}
{{- $flags := mergeOverwrite (include "edge-gateway.controller.flags" . | fromYaml) (deepCopy .Values.controller.extraArgs) -}}
{{- $out := list -}}
{{- range $name := list "configmap" "tcp-services-configmap" "udp-services-configmap" -}}
{{- with index $flags $name | default "" | toString -}}
{{- if contains "/" . -}}
{{- $out = append $out (regexFind "^[^/]+" . | replace "$(POD_NAMESPACE)" (include "edge-gateway.namespace" $)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (uniq $out) -}}
{{- end -}}

{{/* The tcp or udp ConfigMap: dict "root", "proto". */}}
{{- define "edge-gateway.streamsConfigMap" -}}
{{- $root := .root -}}
{{- with index (include "edge-gateway.streams" $root | fromYaml) .proto -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "edge-gateway.fullname" $root }}-{{ $.proto }}
  namespace: {{ include "edge-gateway.streamsNamespace" $ }}
  labels:
    {{- include "edge-gateway.controller.labels" $root | nindent 4 }}
  {{- with (index $root.Values.controller $.proto).annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
data:
  {{- range $port, $service := . }}
  {{ $port | quote }}: {{ toString $service | quote }}
  {{- end }}
{{- end -}}
{{- end -}}
