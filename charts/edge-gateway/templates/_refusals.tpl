{{/*
Values of ingress-nginx's chart that edge-gateway cannot honour: setting one
stops `helm install` / `helm template` with every such value named at once,
each with what to do instead, rather than the value being ignored. A value
left at a setting with no effect (ingress-nginx's default, or empty) passes.
VALUES.md lists every ingress-nginx value with its status here.
*/}}
{{- define "edge-gateway.refusals" -}}
{{- $v := .Values -}}
{{- $c := .Values.controller -}}
{{- $out := list -}}

{{- /* The image: ingress-nginx's own would run nginx with edge-gateway's flags. */ -}}
{{- $image := include "edge-gateway.image" . -}}
{{- if or (contains "ingress-nginx/controller" $image) (hasPrefix "registry.k8s.io/" $image) (contains (include "edge-gateway.ingressNginxDigest" .) $image) -}}
{{- $out = append $out (printf "controller.image (%s) is ingress-nginx's image or registry: this chart runs edge-gateway, whose image is not published there. Build it with scripts/build-image.sh (then kind load image-archive edge-gateway.tar, or push it) and set controller.image.image: edge-gateway, controller.image.tag: \"\" (the chart's appVersion), controller.image.digest: \"\", and controller.image.registry or global.image.registry to your registry (empty for a locally loaded image)." $image) -}}
{{- end -}}
{{- if $c.image.chroot -}}
{{- $out = append $out "controller.image.chroot: true selects ingress-nginx's chroot image (nginx isolated from the controller); edge-gateway has one process and no such variant. Remove it." -}}
{{- end -}}
{{- if not (has $c.image.digestChroot (list "" (include "edge-gateway.ingressNginxDigestChroot" .))) -}}
{{- $out = append $out "controller.image.digestChroot pins ingress-nginx's chroot image, which edge-gateway has no counterpart of. Remove it." -}}
{{- end -}}

{{- /* nginx-only features. */ -}}
{{- if not $c.enableAnnotationValidations -}}
{{- $out = append $out "controller.enableAnnotationValidations: false would accept annotation values that fail validation; edge-gateway always parses annotations into typed values and skips an invalid one with a diagnostic. Remove it (and fix the annotations edge-gateway check reports)." -}}
{{- end -}}
{{- if $c.allowSnippetAnnotations -}}
{{- $out = append $out "controller.allowSnippetAnnotations: true would allow raw nginx configuration in *-snippet annotations; edge-gateway has no nginx.conf and refuses those annotations. Remove it; edge-gateway check lists the Ingresses that use snippets." -}}
{{- end -}}
{{- if $c.enableTopologyAwareRouting -}}
{{- $out = append $out "controller.enableTopologyAwareRouting: true asks for EndpointSlice zone hints, which edge-gateway does not use yet (it balances over every ready endpoint). Remove it." -}}
{{- end -}}
{{- if $c.reportNodeInternalIp -}}
{{- $out = append $out "controller.reportNodeInternalIp: true (--report-node-internal-ip-address) is not supported yet: Ingress status shows the node's ExternalIP, else its InternalIP. Remove it, or publish the addresses you want with controller.extraArgs.publish-status-address." -}}
{{- end -}}
{{- if ne $c.healthCheckPath "/healthz" -}}
{{- $out = append $out (printf "controller.healthCheckPath: %s: edge-gateway answers its health check at /healthz only. Set it to /healthz and point the probes there." $c.healthCheckPath) -}}
{{- end -}}
{{- if $c.healthCheckHost -}}
{{- $out = append $out "controller.healthCheckHost (--healthz-host) is not supported: the health and metrics listener binds --bind-address like the others. Remove it (or set controller.extraArgs.bind-address)." -}}
{{- end -}}
{{- if $c.maxmindLicenseKey -}}
{{- $out = append $out "controller.maxmindLicenseKey: edge-gateway has no GeoIP module. Remove it." -}}
{{- end -}}
{{- range $key, $value := $c.customTemplate -}}
{{- if $value -}}
{{- $out = append $out (printf "controller.customTemplate.%s: a custom nginx.conf template; edge-gateway has no nginx.conf. Remove it and express the settings as ConfigMap keys (controller.config) and annotations." $key) -}}
{{- end -}}
{{- end -}}
{{- if $c.extraModules -}}
{{- $out = append $out "controller.extraModules adds nginx modules; edge-gateway runs no nginx. Remove it." -}}
{{- end -}}
{{- if $v.dhParam -}}
{{- $out = append $out "dhParam: edge-gateway's TLS offers ECDHE key exchange only and needs no Diffie-Hellman parameter. Remove it." -}}
{{- end -}}
{{- if $v.rbac.scope -}}
{{- $out = append $out "rbac.scope: true drops the ClusterRole, but edge-gateway reads IngressClasses (cluster-wide) to know which Ingresses are its own. Remove it: with controller.scope.enabled the ClusterRole already holds only IngressClasses and node reads, the rest is a Role in the served namespace." -}}
{{- end -}}

{{- /* Names this chart does not know: a typo, or a value of another chart version. */ -}}
{{- range include "edge-gateway.unknownValues" (dict "values" $v "known" (include "edge-gateway.knownValues" . | fromYaml) "path" "") | splitList "\n" | compact -}}
{{- if not (has . (list "controller.revisionHistoryLimit" "controller.metrics.serviceMonitor.interval")) -}}
{{- $out = append $out (printf "%s is not a value of this chart, nor of ingress-nginx's chart v4.15 (values.yaml lists them): a typo, or a value of another version? Rename or remove it." .) -}}
{{- end -}}
{{- end -}}

{{- /* Values this chart had before it took ingress-nginx's names. */ -}}
{{- if hasKey $c "revisionHistoryLimit" -}}
{{- $out = append $out "controller.revisionHistoryLimit is now revisionHistoryLimit (top level, as in ingress-nginx's chart). Move it." -}}
{{- end -}}
{{- if hasKey $c.metrics.serviceMonitor "interval" -}}
{{- $out = append $out "controller.metrics.serviceMonitor.interval is now scrapeInterval (as in ingress-nginx's chart). Rename it." -}}
{{- end -}}

{{- /* TCP and UDP services: entries the controller would skip, and settings
       that would have no effect (_streams.tpl renders them). */ -}}
{{- $streams := include "edge-gateway.streams" . | fromYaml -}}
{{- $own := dict "controller.containerPort.http" $c.containerPort.http "controller.containerPort.https" $c.containerPort.https "controller.metrics.port" $c.metrics.port -}}
{{- if $c.admissionWebhooks.enabled -}}{{- $_ := set $own "controller.admissionWebhooks.port" $c.admissionWebhooks.port -}}{{- end -}}
{{- range $name := list "http" "https" -}}
{{- if index $c.service (printf "enable%s" (title $name)) -}}{{- $_ := set $own (printf "controller.service.ports.%s" $name) (index $c.service.ports $name) -}}{{- end -}}
{{- end -}}
{{- range $proto := list "tcp" "udp" -}}
{{- range $key, $ref := index $streams $proto -}}
{{- $ref = toString $ref -}}
{{- if not (regexMatch "^[1-9][0-9]{0,4}$" $key) | or (gt (int $key) 65535) -}}
{{- $out = append $out (printf "%s.%s: the key must be a port number (1-65535), as in \"9000\": \"default/example-svc:9000\"." $proto $key) -}}
{{- else -}}
{{- $taken := list -}}
{{- range $what, $port := $own -}}
{{- if eq (int $port) (int $key) }}{{ $taken = append $taken $what }}{{ end -}}
{{- end -}}
{{- with $taken -}}
{{- $out = append $out (printf "%s.%s: port %s is already the controller's (%s). Choose another port for the %s service." $proto $key $key (join ", " .) (upper $proto)) -}}
{{- end -}}
{{- if has (int $key) (list 442 8181 10245 10246 10247) -}}
{{- $out = append $out (printf "%s.%s: port %s is reserved by ingress-nginx (and by edge-gateway, which skips it): 442 SSL passthrough, 8181 default backend, 10245-10247 status and profiling. Choose another port." $proto $key $key) -}}
{{- end -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9]*[a-z0-9])?:[A-Za-z0-9-]{1,63}(:[^:]*){0,2}$" $ref) -}}
{{- $out = append $out (printf "%s.%s: %q is not <namespace>/<service>:<port>[:PROXY][:PROXY] (the service port a number or a name). Fix it." $proto $key $ref) -}}
{{- else if and $c.scope.enabled (ne (regexFind "^[^/]+" $ref) (include "edge-gateway.watchNamespace" $)) -}}
{{- $out = append $out (printf "%s.%s: %s is outside the namespace served (%s, controller.scope.enabled): the controller reads no Service there. Serve that namespace, or move the Service." $proto $key $ref (include "edge-gateway.watchNamespace" $)) -}}
{{- end -}}
{{- end -}}
{{- $services := dict "controller.service" $c.service "controller.service.internal" $c.service.internal -}}
{{- range $where, $s := $services -}}
{{- range $key, $_ := index ($s.nodePorts | default dict) $proto -}}
{{- if not (hasKey (index $streams $proto) (toString $key)) -}}
{{- $out = append $out (printf "%s.nodePorts.%s.%s: %s has no entry %s, so no Service port to give this node port. Add the entry to %s or remove the node port." $where $proto $key $proto $key $proto) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range $where, $s := dict "controller.service" (dict "on" (and $c.service.enabled $c.service.external.enabled) "type" $c.service.type "nodePorts" $c.service.nodePorts) "controller.service.internal" (dict "on" (and $c.service.enabled $c.service.internal.enabled) "type" ($c.service.internal.type | default $c.service.type) "nodePorts" $c.service.internal.nodePorts) -}}
{{- range $proto := list "tcp" "udp" -}}
{{- if and $s.on (eq $s.type "ClusterIP") (index ($s.nodePorts | default dict) $proto) -}}
{{- $out = append $out (printf "%s.nodePorts.%s: the Service is of type ClusterIP, which has no node ports. Use type NodePort or LoadBalancer, or remove them." $where $proto) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- range include "edge-gateway.streamPorts" . | fromYamlArray -}}
{{- if not (regexMatch "^[a-z0-9]([a-z0-9]|-[a-z0-9])*$" .name) | or (gt (len .name) 15) | or (not (regexMatch "[a-z]" .name)) -}}
{{- $out = append $out (printf "portNamePrefix: the port name %s is not a valid container port name (at most 15 characters of a-z, 0-9 and single '-'). Shorten portNamePrefix." .name) -}}
{{- end -}}
{{- end -}}

{{- /* Combinations that ingress-nginx's chart renders to nothing, silently. */ -}}
{{- if not (has $c.kind (list "Deployment" "DaemonSet" "Both")) -}}
{{- $out = append $out (printf "controller.kind: %s: use Deployment, DaemonSet or Both." $c.kind) -}}
{{- end -}}
{{- if and $c.autoscaling.enabled $c.keda.enabled -}}
{{- $out = append $out "controller.autoscaling.enabled and controller.keda.enabled: two autoscalers for one Deployment. Enable one of them." -}}
{{- end -}}
{{- if and (or $c.autoscaling.enabled $c.keda.enabled) (eq $c.kind "DaemonSet") -}}
{{- $out = append $out "controller.autoscaling / controller.keda with controller.kind: DaemonSet: a DaemonSet runs one pod per node and cannot be scaled. Use kind Deployment (or Both), or disable the autoscaler." -}}
{{- end -}}
{{- if and $c.scope.enabled $c.scope.namespaceSelector -}}
{{- $out = append $out "controller.scope.namespaceSelector is used only without controller.scope.enabled (which serves one namespace). Keep one of them." -}}
{{- end -}}
{{- if and $c.service.enabled $c.service.internal.enabled (not $c.service.internal.annotations) -}}
{{- $out = append $out "controller.service.internal.enabled needs controller.service.internal.annotations: your cloud's internal load balancer annotation (e.g. service.beta.kubernetes.io/aws-load-balancer-internal: \"true\"); without it the internal Service would be a second public load balancer." -}}
{{- end -}}
{{- if and (not $c.metrics.enabled) (or $c.metrics.serviceMonitor.enabled $c.metrics.prometheusRule.enabled) -}}
{{- $out = append $out "controller.metrics.serviceMonitor / prometheusRule need controller.metrics.enabled: true (the request metrics and the metrics Service)." -}}
{{- end -}}
{{- if and $c.containerSecurityContext (not (has "NET_BIND_SERVICE" (dig "capabilities" "add" list $c.containerSecurityContext))) -}}
{{- $out = append $out "controller.containerSecurityContext must add the NET_BIND_SERVICE capability (capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}, as ingress-nginx's chart does): the image's binary carries it as a file capability, to bind ports 80/443 as uid 101, and the kernel does not run it without." -}}
{{- end -}}
{{- if and $c.metrics.enabled $c.metrics.prometheusRule.enabled -}}
{{- $served := include "edge-gateway.servedMetrics" . | fromYamlArray -}}
{{- range $rule := $c.metrics.prometheusRule.rules -}}
{{- range $name := regexFindAll "nginx_ingress_controller_[a-zA-Z0-9_]+" (toString $rule.expr) -1 -}}
{{- if not (has (regexReplaceAll "_(bucket|sum|count)$" $name "") $served) -}}
{{- $out = append $out (printf "controller.metrics.prometheusRule.rules: %s uses %s, which edge-gateway does not serve (docs/metrics.md lists what it does): the rule would never fire. Change or remove it." (coalesce $rule.alert $rule.record "a rule") $name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- with $out -}}
{{- fail (printf "\n\nedge-gateway cannot honour these values (charts/edge-gateway/VALUES.md lists every ingress-nginx value):\n- %s\n" (join "\n- " (uniq .))) -}}
{{- end -}}
{{- end -}}

{{/*
The paths under dict "values" that dict "known" (_known_values.tpl) does
not name, one a line; "*" in known allows any key below.
*/}}
{{- define "edge-gateway.unknownValues" -}}
{{- $known := .known -}}
{{- range $key, $value := .values -}}
{{- $path := ternary $key (printf "%s.%s" $.path $key) (eq $.path "") -}}
{{- if not (hasKey $known $key) }}
{{ $path }}
{{- else if and (kindIs "map" $value) (kindIs "map" (index $known $key)) -}}
{{- include "edge-gateway.unknownValues" (dict "values" $value "known" (index $known $key) "path" $path) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* ingress-nginx v1.15.1's image digests (its chart's defaults). */}}
{{- define "edge-gateway.ingressNginxDigest" -}}sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1{{- end -}}
{{- define "edge-gateway.ingressNginxDigestChroot" -}}sha256:af31d00c9d82c612896b380a9003bd36843b7647b98e4588251c66325317bc72{{- end -}}

{{/*
The nginx_ingress_controller_* metrics edge-gateway serves (docs/metrics.md;
histograms without their _bucket/_sum/_count suffix). The image test checks
that the binary serves nothing outside this list.
*/}}
{{- define "edge-gateway.servedMetrics" -}}
{{- $names := list "requests" "request_duration_seconds" "response_duration_seconds" "header_duration_seconds" "connect_duration_seconds" "request_size" "response_size" "bytes_sent" "ingress_upstream_latency_seconds" "config_hash" "config_last_reload_successful" "config_last_reload_successful_timestamp_seconds" "success" "errors" "orphan_ingress" "ssl_expire_time_seconds" "ssl_certificate_info" "leader_election_status" "build_info" "nginx_process_connections" "nginx_process_connections_total" "nginx_process_requests_total" "nginx_process_cpu_seconds_total" "nginx_process_resident_memory_bytes" "nginx_process_virtual_memory_bytes" "nginx_process_oldest_start_time_seconds" "nginx_process_read_bytes_total" "nginx_process_write_bytes_total" "nginx_process_num_procs" -}}
{{- $out := list -}}
{{- range $names }}{{ $out = append $out (printf "nginx_ingress_controller_%s" .) }}{{ end -}}
{{- toYaml $out -}}
{{- end -}}
