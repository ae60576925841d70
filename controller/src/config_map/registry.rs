//! Every key of ingress-nginx's controller ConfigMap that its documentation
//! lists (`docs/user-guide/nginx-configuration/configmap.md`), with what
//! edge-gateway does with it. Like the annotation registry, this is the one
//! source of truth: `docs/compatibility.md` shows it (a test fails when they
//! differ), the ConfigMap reader reports keys by it, and `edge-gateway check`
//! reads it.
//!
//! Protective keys follow the annotation registry's rule (enforced or
//! failing closed, never dropped); for a ConfigMap key "fails closed" means
//! the Ingress routes it covers answer 503, each with a `LocationDenied`
//! diagnostic, and so does a protective key whose value does not parse.

use crate::annotations::registry::{Known, d, f, i, n, p, r, s};

const SNIPPET: &str = "raw nginx configuration text: never applied; the key is reported and ignored, everything else in the ConfigMap applies";
const NGINX_TUNING: &str = "nginx worker, buffer or hash-table tuning with no counterpart here";
const NO_TRACING: &str = "OpenTracing (Jaeger, Zipkin, Datadog) was removed from ingress-nginx (v1.10); use enable-opentelemetry and the otel keys (docs/tracing.md)";
const COMPRESSION: &str = "as nginx's gzip / ngx_brotli: statuses 200, 403 and 404 of a listed type (text/html always) and at least the minimum length; never a HEAD, an already encoded body or a range (206) response; Vary: Accept-Encoding on eligible responses; Content-Length and Accept-Ranges removed, ETag weakened. Each upstream chunk is compressed and flushed at once, so streams (SSE, token streams) stay streams; the Accept-Encoding q-values choose between br and gzip (brotli on a tie; nginx takes brotli whenever accepted)";
const LITERAL: &str = "literal values: a value using an nginx variable is refused with a diagnostic (the default applies)";
const HEADER_MAP: &str = "names a ConfigMap (`namespace/name`) of header name → value, re-read when it changes; values are sent as written: a value using an nginx variable (`$host`, `${...}`, `$1`) is refused with a diagnostic, not substituted, as are invalid names and values (that header is skipped); from the Kubernetes API the named ConfigMap must be in the controller ConfigMap's namespace";
const BLOCK_LIST: &str = "plain entries and `~` / `~*` patterns as nginx's `map`, 403; patterns use Rust regex syntax (no look-around or backreferences): a pattern that does not compile makes every Ingress route answer 503 (diagnostic) rather than serve unblocked";
const STREAM_LOG: &str = "TCP/UDP services and SSL passthrough write no access log lines; they are counted in the edge_gateway_stream_* metrics";
const LOGS: &str =
    "the gateway's own log goes to stderr, as ingress-nginx's error.log symlink does";
const TLS_FIXED: &str = "TLS 1.2 and 1.3 with rustls' AEAD suites and curves, ingress-nginx's defaults in effect; not configurable";
const GLOBAL_AUTH: &str = "as ingress-nginx, for every route of an Ingress without its own auth-url nor enable-global-auth: \"false\", except no-auth-locations; a value that does not parse makes those routes answer 503 (ingress-nginx drops global auth instead)";
const WAF: &str = "no WAF (ModSecurity) here: while it is on, every Ingress route answers 503 (but those of Ingresses with enable-modsecurity: \"false\"), unless this ConfigMap also says edge-gateway.io/serve-without-waf: \"true\" (served without the WAF, with a warning)";
const CLIENT_ADDRESS: &str = "decides the client address the address lists judge: a value that does not parse makes every route with an allow or deny list answer 503";

/// The keys, alphabetically.
pub const KEYS: &[Known] = &[
    i(
        "access-log-params",
        "nginx's buffer=, flush= and gzip are not applied: lines are buffered per worker and written every 10 ms (see docs/metrics.md)",
    ),
    d(
        "access-log-path",
        "the access log's path unless http-access-log-path is set; /var/log/nginx/access.log (the default, ingress-nginx's symlink) and /dev/stdout mean stdout; there is no stream log",
    ),
    d("add-headers", HEADER_MAP),
    s("allow-backend-server-header"),
    p(d(
        "allow-cross-namespace-resources",
        "always false here: auth-secret, proxy-ssl-secret and TLS Secrets are read from the Ingress's own namespace only; true is not applied, so a Secret named in another namespace still makes the routes answer 503",
    )),
    d(
        "allow-snippet-annotations",
        "snippets are always refused, whatever this says",
    ),
    i(
        "annotation-value-word-blocklist",
        "annotation values are parsed into typed settings, never pasted into configuration",
    ),
    i(
        "annotations-risk-level",
        "every annotation is parsed or refused by the registry; snippets are refused",
    ),
    d(
        "bind-address",
        "the --bind-address flag sets the listening address",
    ),
    p(s("block-cidrs")),
    p(d("block-referers", BLOCK_LIST)),
    p(d("block-user-agents", BLOCK_LIST)),
    s("brotli-level"),
    s("brotli-min-length"),
    s("brotli-types"),
    i("client-body-buffer-size", NGINX_TUNING),
    s("client-body-timeout"),
    i("client-header-buffer-size", NGINX_TUNING),
    d(
        "client-header-timeout",
        "applies to new client connections: the TLS handshake and the first request head; a later head on a kept-alive connection must arrive within keep-alive instead",
    ),
    p(d("compute-full-forwarded-for", CLIENT_ADDRESS)),
    d(
        "custom-http-errors",
        "the default for Ingresses without the annotation; it applies on routes with a default-backend annotation, or on every route with --default-backend-service (without either, upstream errors pass through)",
    ),
    n("datadog-collector-host", NO_TRACING),
    n("datadog-collector-port", NO_TRACING),
    n("datadog-environment", NO_TRACING),
    n("datadog-operation-name-override", NO_TRACING),
    n("datadog-priority-sampling", NO_TRACING),
    n("datadog-sample-rate", NO_TRACING),
    n("datadog-service-name", NO_TRACING),
    i("debug-connections", NGINX_TUNING),
    i("default-type", "error pages carry their own Content-Type"),
    p(s("denylist-source-range")),
    s("disable-access-log"),
    d(
        "disable-ipv6",
        "the listeners bind --bind-address (0.0.0.0 by default: IPv4 only, where ingress-nginx also listens on [::]; `--bind-address ::` listens on both); with disable-ipv6 true, connections (and UDP datagrams) from IPv6 peers are dropped at accept, for new connections",
    ),
    i(
        "disable-ipv6-dns",
        "no DNS resolver: endpoints come from EndpointSlices",
    ),
    d(
        "edge-gateway.io/client-send-timeout",
        "edge-gateway only (ingress-nginx has no key for nginx's send_timeout, fixed at 60 s): seconds a write to a client may stall before the connection closes, releasing its upstream connection; default 60; applies to new connections",
    ),
    d(
        "edge-gateway.io/otlp-collector-protocol",
        "edge-gateway only (ingress-nginx's module sends OTLP/gRPC): grpc (the default) or http/protobuf, which POSTs to http://otlp-collector-host:otlp-collector-port/v1/traces (port 4318 unless otlp-collector-port says otherwise)",
    ),
    s("enable-access-log-for-default-backend"),
    d("enable-brotli", COMPRESSION),
    f("enable-modsecurity", WAF),
    i("enable-multi-accept", NGINX_TUNING),
    d(
        "enable-ocsp",
        "staples each served certificate's OCSP response (responder from its Authority Information Access, http:// only; issuer the next certificate in tls.crt; response signed by the issuer or its delegated responder, status good, current): fetched as soon as a certificate is served rather than after its first handshake, refreshed halfway to nextUpdate (at most daily; hourly without one) and never stapled past nextUpdate (ingress-nginx keeps every response three days); a responder that is down means no staple once the last good response runs out (edge_gateway_ocsp_fetches_total counts fetches by result); at most 4096 distinct certificates are stapled",
    ),
    d(
        "enable-opentelemetry",
        "a server span per request of every Ingress (those with enable-opentelemetry: \"false\" excepted), exported over OTLP/gRPC; W3C traceparent/tracestate sent upstream; the span starts once the request is routed (a redirect or refusal made before routing has none) and external auth requests carry no traceparent; attributes use the current HTTP conventions beside the nginx module's names (docs/tracing.md)",
    ),
    n("enable-opentracing", NO_TRACING),
    f("enable-owasp-modsecurity-crs", WAF),
    p(d("enable-real-ip", CLIENT_ADDRESS)),
    d(
        "enable-syslog",
        "access log lines go to syslog over UDP in nginx's message form (`<190>Mmm dd hh:mm:ss host nginx: line`); the gateway's own log stays on stderr",
    ),
    s("enable-underscores-in-headers"),
    i("error-log-level", "RUST_LOG filters the log lines"),
    i("error-log-path", LOGS),
    s("force-ssl-redirect"),
    p(d(
        "forwarded-for-header",
        "any header name; `proxy_protocol` is refused as a header name (use-proxy-protocol takes the client address from the PROXY header); a value that does not parse makes every route with an allow or deny list answer 503",
    )),
    i(
        "forwarded-for-proxy-protocol-header",
        "with use-proxy-protocol and use-forwarded-headers the client address is resolved directly, without this intermediate request header (which ingress-nginx also sends upstream)",
    ),
    s("generate-request-id"),
    d(
        "global-allowed-response-headers",
        "the headers custom-headers may set, compared exactly (as ingress-nginx); a name that is not a header name is a diagnostic and the list is not applied",
    ),
    n(
        "global-auth-always-set-cookie",
        "not applied yet: Set-Cookie of a 2xx auth answer is not passed to the client (as auth-always-set-cookie)",
    ),
    p(d("global-auth-cache-duration", GLOBAL_AUTH)),
    p(d("global-auth-cache-key", GLOBAL_AUTH)),
    p(d("global-auth-method", GLOBAL_AUTH)),
    p(d("global-auth-request-redirect", GLOBAL_AUTH)),
    p(d("global-auth-response-headers", GLOBAL_AUTH)),
    p(d("global-auth-signin", GLOBAL_AUTH)),
    p(d("global-auth-signin-redirect-param", GLOBAL_AUTH)),
    f(
        "global-auth-snippet",
        "raw nginx configuration for the global auth subrequest, never applied: the routes global auth covers answer 503",
    ),
    p(d("global-auth-url", GLOBAL_AUTH)),
    d(
        "global-rate-limit-memcached-connect-timeout",
        "milliseconds (50) for the connection and again for each command; a call that takes longer counts as a store failure",
    ),
    d(
        "global-rate-limit-memcached-host",
        "without it an Ingress's global-rate-limit makes its routes answer 503 with a diagnostic (ingress-nginx turns the limit off); while memcached fails, each replica counts the limits on its own (not everything let through) for a second at a time",
    ),
    s("global-rate-limit-memcached-max-idle-timeout"),
    d(
        "global-rate-limit-memcached-pool-size",
        "connections in use and kept idle at most, per replica; a call waiting for one counts against its timeout",
    ),
    s("global-rate-limit-memcached-port"),
    s("global-rate-limit-status-code"),
    d(
        "gzip-disable",
        "User-Agent patterns in Rust regex syntax, case-insensitive (`msie6` as nginx); a pattern that does not compile is a diagnostic and nothing is disabled",
    ),
    s("gzip-level"),
    s("gzip-min-length"),
    s("gzip-types"),
    s("hide-headers"),
    s("hsts"),
    s("hsts-include-subdomains"),
    s("hsts-max-age"),
    s("hsts-preload"),
    d(
        "http-access-log-path",
        "an absolute path, appended to; reopened on SIGUSR1 (nginx's reopen) and when the path names another file (rotation)",
    ),
    s("http-redirect-code"),
    r("http-snippet", SNIPPET),
    s("http2-max-concurrent-streams"),
    i(
        "http2-max-field-size",
        "deprecated in ingress-nginx; large-client-header-buffers governs",
    ),
    i(
        "http2-max-header-size",
        "deprecated in ingress-nginx; large-client-header-buffers governs",
    ),
    i("http2-max-requests", "deprecated in ingress-nginx"),
    d(
        "ignore-invalid-headers",
        "requests with invalid header names are refused with 400 (hyper's parser), never silently passed",
    ),
    n("jaeger-baggage-header", NO_TRACING),
    n("jaeger-collector-host", NO_TRACING),
    n("jaeger-collector-port", NO_TRACING),
    n("jaeger-debug-header", NO_TRACING),
    n("jaeger-endpoint", NO_TRACING),
    n("jaeger-propagation-format", NO_TRACING),
    n("jaeger-sampler-host", NO_TRACING),
    n("jaeger-sampler-param", NO_TRACING),
    n("jaeger-sampler-port", NO_TRACING),
    n("jaeger-sampler-type", NO_TRACING),
    n("jaeger-service-name", NO_TRACING),
    n("jaeger-trace-baggage-header-prefix", NO_TRACING),
    n("jaeger-trace-context-header-name", NO_TRACING),
    d(
        "keep-alive",
        "applies to new client connections: for HTTP/1 the wait for each request head after the first, counted from the previous response (0 turns keep-alive off); an HTTP/2 connection with no open stream for this long is closed (GOAWAY) whether or not it answers pings",
    ),
    s("keep-alive-requests"),
    d(
        "large-client-header-buffers",
        "applies to new client connections; a request target longer than one buffer gets 414, a longer header line or a head larger than all buffers 431 (nginx answers 400); at most 1m in all",
    ),
    s("limit-conn-status-code"),
    i(
        "limit-conn-zone-variable",
        "limits are keyed on the client address, ingress-nginx's default",
    ),
    d(
        "limit-rate",
        "the default of the annotation, in kilobytes per second as ingress-nginx applies it (its documentation says bytes; its template writes `limit_rate <n>k`)",
    ),
    d(
        "limit-rate-after",
        "the default of the annotation, in kilobytes as ingress-nginx applies it",
    ),
    s("limit-req-status-code"),
    d("load-balance", crate::annotations::registry::LOAD_BALANCE),
    r("location-snippet", SNIPPET),
    s("log-format-escape-json"),
    s("log-format-escape-none"),
    i("log-format-stream", STREAM_LOG),
    d(
        "log-format-upstream",
        "compiled once into a typed template; a variable nginx does not know, or one edge-gateway does not provide, is refused by name and upstreaminfo applies (docs/metrics.md lists the variables); times are UTC; --access-log json writes the gateway's JSON line instead",
    ),
    i("lua-shared-dicts", "no Lua"),
    r("main-snippet", SNIPPET),
    i("map-hash-bucket-size", NGINX_TUNING),
    d(
        "max-worker-connections",
        "a cap per listener (HTTP, HTTPS) on open client connections, default 16384 as ingress-nginx's per worker; more are closed as soon as accepted, as nginx closes what it cannot serve, and counted in edge_gateway_refused_connections_total; 0 sets no cap (ingress-nginx derives one from max-worker-open-files); applies to new connections",
    ),
    i("max-worker-open-files", NGINX_TUNING),
    f(
        "modsecurity-snippet",
        "raw ModSecurity rules, never applied: every Ingress route answers 503 (but those of Ingresses with enable-modsecurity: \"false\"), unless edge-gateway.io/serve-without-waf: \"true\"",
    ),
    p(d(
        "nginx-status-ipv4-whitelist",
        "there is no /nginx_status page here to protect; metrics are on :10254/metrics",
    )),
    p(d(
        "nginx-status-ipv6-whitelist",
        "there is no /nginx_status page here to protect; metrics are on :10254/metrics",
    )),
    p(d(
        "no-auth-locations",
        "as ingress-nginx: a route whose Ingress path starts with a listed path skips authentication (basic, the Ingress's auth-url and global auth); default /.well-known/acme-challenge",
    )),
    d(
        "no-tls-redirect-locations",
        "/.well-known/acme-challenge is exempt from the HTTPS redirect, the default; other values are not applied",
    ),
    d(
        "opentelemetry-config",
        "no configuration file is written or read: the otel keys apply directly, so this path has no effect",
    ),
    d(
        "opentelemetry-operation-name",
        "nginx variables $request_method, $uri, $request_uri, $host, $scheme, $namespace, $ingress_name, $service_name, $service_port and $location_path; another variable is refused with a diagnostic (spans are then named after the Ingress path, nginx's location name, as without the key)",
    ),
    s("opentelemetry-trust-incoming-span"),
    n("opentracing-location-operation-name", NO_TRACING),
    n("opentracing-operation-name", NO_TRACING),
    s("otel-max-export-batch-size"),
    d(
        "otel-max-queuesize",
        "at most 1048576; when full, spans are dropped and counted in edge_gateway_otel_spans_dropped_total (so are spans whose export fails or passes 10 s); a request never waits for the collector",
    ),
    s("otel-sampler"),
    s("otel-sampler-parent-based"),
    s("otel-sampler-ratio"),
    s("otel-schedule-delay-millis"),
    s("otel-service-name"),
    d(
        "otlp-collector-host",
        "OTLP/gRPC without TLS, as ingress-nginx's module; each export is bounded by 10 s; the OTEL_EXPORTER_OTLP_ENDPOINT variable does not override it (it does in ingress-nginx's module)",
    ),
    s("otlp-collector-port"),
    i("plugins", "no Lua plugins"),
    s("proxy-add-original-uri-header"),
    s("proxy-body-size"),
    i("proxy-buffer-size", NGINX_TUNING),
    i(
        "proxy-buffering",
        "responses always stream (ingress-nginx's default, off)",
    ),
    i("proxy-buffers-number", NGINX_TUNING),
    s("proxy-connect-timeout"),
    d("proxy-cookie-domain", LITERAL),
    d("proxy-cookie-path", LITERAL),
    i("proxy-headers-hash-bucket-size", NGINX_TUNING),
    i("proxy-headers-hash-max-size", NGINX_TUNING),
    s("proxy-next-upstream"),
    s("proxy-next-upstream-timeout"),
    s("proxy-next-upstream-tries"),
    d(
        "proxy-protocol-header-timeout",
        "bounds the PROXY header on the HTTP and HTTPS listeners and on TCP services with :PROXY (nginx uses client-header-timeout there; ingress-nginx applies this key to its SSL passthrough listener only); a Go duration, at most 1h",
    ),
    s("proxy-read-timeout"),
    p(d("proxy-real-ip-cidr", CLIENT_ADDRESS)),
    d(
        "proxy-redirect-from",
        "the default of the annotations, with proxy-redirect-to: a literal prefix of Location and Refresh URLs (no nginx variables)",
    ),
    d(
        "proxy-request-buffering",
        "request bodies stream to the upstream (ingress-nginx buffers them by default); proxy-body-size still applies",
    ),
    s("proxy-send-timeout"),
    d("proxy-set-headers", HEADER_MAP),
    n("proxy-ssl-location-only", "not applied yet"),
    s("proxy-stream-next-upstream"),
    s("proxy-stream-next-upstream-timeout"),
    s("proxy-stream-next-upstream-tries"),
    s("proxy-stream-responses"),
    s("proxy-stream-timeout"),
    s("retry-non-idempotent"),
    i("reuse-port", NGINX_TUNING),
    i("server-name-hash-bucket-size", NGINX_TUNING),
    i("server-name-hash-max-size", NGINX_TUNING),
    r("server-snippet", SNIPPET),
    d(
        "server-tokens",
        "no Server header is sent; error pages name edge-gateway without a version",
    ),
    n(
        "service-upstream",
        "not applied yet: the per-Ingress annotation works",
    ),
    s("skip-access-log-urls"),
    d("ssl-buffer-size", TLS_FIXED),
    d("ssl-ciphers", TLS_FIXED),
    i("ssl-dh-param", "no DHE suites: ECDHE only"),
    d(
        "ssl-early-data",
        "TLS 1.3 early data is off, ingress-nginx's default",
    ),
    d("ssl-ecdh-curve", TLS_FIXED),
    d("ssl-protocols", TLS_FIXED),
    s("ssl-redirect"),
    d(
        "ssl-reject-handshake",
        "handshakes naming no host of an Ingress (exact, wildcard or server-alias), and those without SNI, are refused; other names, hosts without a TLS section included, get their certificate or the default one",
    ),
    d("ssl-session-cache", "rustls' in-memory session cache is on"),
    d("ssl-session-cache-size", TLS_FIXED),
    i(
        "ssl-session-ticket-key",
        "session tickets are off, ingress-nginx's default",
    ),
    d(
        "ssl-session-tickets",
        "session tickets are off, ingress-nginx's default",
    ),
    d("ssl-session-timeout", TLS_FIXED),
    i("stream-access-log-path", STREAM_LOG),
    r("stream-snippet", SNIPPET),
    s("syslog-host"),
    s("syslog-port"),
    s("upstream-keepalive-connections"),
    s("upstream-keepalive-requests"),
    s("upstream-keepalive-time"),
    s("upstream-keepalive-timeout"),
    p(d(
        "use-forwarded-headers",
        "X-Forwarded-Proto, -Host and -Port are trusted only from peers in proxy-real-ip-cidr (ingress-nginx trusts them from any peer; the same with the default 0.0.0.0/0 for IPv4 peers); the client address follows nginx's realip module; a value that does not parse makes every route with an allow or deny list answer 503",
    )),
    n("use-geoip", "no GeoIP"),
    n("use-geoip2", "no GeoIP"),
    d("use-gzip", COMPRESSION),
    s("use-http2"),
    d(
        "use-proxy-protocol",
        "PROXY protocol v1 and v2 on the HTTP and HTTPS listeners, read before TLS and before SSL passthrough; applies to new connections. A missing or broken header closes the connection; LOCAL (v2) and UNKNOWN (v1) keep the TCP peer. The header's address is the client (address lists, limits, X-Real-IP, X-Forwarded-For, the access log) when the TCP peer is in proxy-real-ip-cidr, as nginx's realip module; with use-forwarded-headers a trusted header address lets X-Forwarded-For name the client (ingress-nginx's X-Forwarded-For-Proxy-Protocol). X-Forwarded-Port is the header's destination port. v2 TLVs read: authority, unique id, AWS VPC endpoint id (at most 4 KiB of header)",
    ),
    i("variables-hash-bucket-size", NGINX_TUNING),
    i("variables-hash-max-size", NGINX_TUNING),
    p(s("whitelist-source-range")),
    i("worker-cpu-affinity", NGINX_TUNING),
    i(
        "worker-processes",
        "the runtime uses one worker thread per CPU",
    ),
    d(
        "worker-shutdown-timeout",
        "--drain-timeout (240 s) bounds how long open connections get after shutdown starts; there are no reloads",
    ),
    n("zipkin-collector-host", NO_TRACING),
    n("zipkin-collector-port", NO_TRACING),
    n("zipkin-sample-rate", NO_TRACING),
    n("zipkin-service-name", NO_TRACING),
];

/// edge-gateway's own ConfigMap keys (defaults of the `edge-gateway.io/`
/// annotations), listed with the annotations in
/// [`crate::annotations::registry::EDGE_KEYS`].
pub fn edge_keys() -> impl Iterator<Item = &'static crate::annotations::registry::EdgeKey> {
    crate::annotations::registry::EDGE_KEYS
        .iter()
        .filter(|k| k.config_map)
}

/// The entry for a ConfigMap key.
pub fn known(key: &str) -> Option<&'static Known> {
    KEYS.binary_search_by(|k| k.name.cmp(key))
        .ok()
        .and_then(|i| KEYS.get(i))
}

/// The table as Markdown, for docs/compatibility.md.
pub fn markdown() -> String {
    let mut out = String::from("| ConfigMap key | Status | Notes |\n|---|---|---|\n");
    for k in KEYS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            k.name,
            k.support.label(),
            k.support.note()
        ));
    }
    out
}
