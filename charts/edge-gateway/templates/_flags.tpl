{{/*
The controller's flags as a dict (flag name -> value), before extraArgs,
named as ingress-nginx's chart names them (templates/_params.tpl there). The
container gets POD_NAMESPACE from the downward API; Kubernetes expands
$(POD_NAMESPACE) in args.
*/}}
{{- define "edge-gateway.controller.flags" -}}
{{- $c := .Values.controller -}}
{{- $flags := dict -}}
{{- if include "edge-gateway.publishesService" . -}}
{{- $_ := set $flags "publish-service" (include "edge-gateway.publishServicePath" .) -}}
{{- end -}}
{{- if .Values.defaultBackend.enabled -}}
{{- $_ := set $flags "default-backend-service" (printf "$(POD_NAMESPACE)/%s" (include "edge-gateway.defaultBackend.fullname" .)) -}}
{{- end -}}
{{- $_ := set $flags "election-id" (include "edge-gateway.electionID" .) -}}
{{- with $c.electionTTL -}}
{{- $_ := set $flags "election-ttl" . -}}
{{- end -}}
{{- if $c.disableLeaderElection -}}
{{- $_ := set $flags "disable-leader-election" "true" -}}
{{- end -}}
{{- $_ := set $flags "controller-class" $c.ingressClassResource.controllerValue -}}
{{- with $c.ingressClass -}}
{{- $_ := set $flags "ingress-class" . -}}
{{- end -}}
{{- $_ := set $flags "configmap" (printf "%s/%s" (default "$(POD_NAMESPACE)" $c.configMapNamespace) (include "edge-gateway.controller.fullname" .)) -}}
{{- $streams := include "edge-gateway.streams" . | fromYaml -}}
{{- range $proto := list "tcp" "udp" -}}
{{- if index $streams $proto -}}
{{- $_ := set $flags (printf "%s-services-configmap" $proto) (printf "%s/%s-%s" (default "$(POD_NAMESPACE)" (index $c $proto).configMapNamespace) (include "edge-gateway.fullname" $) $proto) -}}
{{- end -}}
{{- end -}}
{{- if $c.watchIngressWithoutClass -}}
{{- $_ := set $flags "watch-ingress-without-class" "true" -}}
{{- end -}}
{{- if $c.ingressClassByName -}}
{{- $_ := set $flags "ingress-class-by-name" "true" -}}
{{- end -}}
{{- if $c.scope.enabled -}}
{{- $_ := set $flags "watch-namespace" (default "$(POD_NAMESPACE)" $c.scope.namespace) -}}
{{- else if $c.scope.namespaceSelector -}}
{{- $_ := set $flags "watch-namespace-selector" $c.scope.namespaceSelector -}}
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
{{- $flags = mergeOverwrite $flags (include "edge-gateway.admissionWebhooks.flags" . | fromYaml) -}}
{{- toYaml $flags -}}
{{- end -}}

{{/* The flags with extraArgs applied, as container args. */}}
{{- define "edge-gateway.controller.args" -}}
{{- $flags := include "edge-gateway.controller.flags" . | fromYaml -}}
{{- $flags = mergeOverwrite $flags (deepCopy .Values.controller.extraArgs) -}}
{{- range $name, $value := $flags }}
{{- if kindIs "slice" $value }}
{{- range $value }}
- {{ printf "--%s=%s" $name (toString .) | quote }}
{{- end }}
{{- else if or (kindIs "invalid" $value) (eq (toString $value) "") }}
- {{ printf "--%s" $name | quote }}
{{- else }}
- {{ printf "--%s=%s" $name (toString $value) | quote }}
{{- end }}
{{- end }}
{{- end -}}
