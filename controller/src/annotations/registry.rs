//! Every `nginx.ingress.kubernetes.io/*` annotation ingress-nginx documents,
//! with what edge-gateway does with it. This table is the one source of
//! truth: `docs/compatibility.md` shows it (a test fails when the page and
//! the table differ), unknown keys are reported, and `edge-gateway check`
//! reads it.
//!
//! Keys marked [`Known::protective`] restrict who gets in (authentication,
//! client certificates, address lists, WAF, `satisfy`, global auth). The
//! rule, tested below: a protective key is enforced
//! ([`Support::Supported`] or [`Support::Differs`]) or it fails closed
//! ([`Support::FailsClosed`]: the routes it covers answer 503 with a
//! diagnostic); it is never "not yet", "ignored" or silently dropped.

/// How an annotation is supported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Behaves as in ingress-nginx.
    Supported,
    /// Supported, with a deliberate difference (the note says how).
    Differs(&'static str),
    /// Refused: an Ingress carrying it is not served (the note says why).
    Refused(&'static str),
    /// Read and ignored: it has no effect here (the note says why that is
    /// harmless).
    Ignored(&'static str),
    /// Not built yet: the annotation has no effect (the note says what
    /// happens instead).
    NotYet(&'static str),
    /// Not built, and protective: the routes it covers answer 503 with a
    /// `LocationDenied` diagnostic rather than serve without it (the note
    /// says when it applies).
    FailsClosed(&'static str),
}

impl Support {
    /// The one-word status for tables.
    pub fn label(self) -> &'static str {
        match self {
            Self::Supported => "supported",
            Self::Differs(_) => "differs",
            Self::Refused(_) => "refused",
            Self::Ignored(_) => "ignored",
            Self::NotYet(_) => "not yet",
            Self::FailsClosed(_) => "fails closed",
        }
    }

    /// The explanation, if any.
    pub fn note(self) -> &'static str {
        match self {
            Self::Supported => "",
            Self::Differs(n)
            | Self::Refused(n)
            | Self::Ignored(n)
            | Self::NotYet(n)
            | Self::FailsClosed(n) => n,
        }
    }
}

/// One known annotation (without the prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    /// The name after `nginx.ingress.kubernetes.io/`.
    pub name: &'static str,
    /// What edge-gateway does with it.
    pub support: Support,
    /// Whether its purpose is to restrict who gets in; such a key is
    /// enforced or fails closed (see the module documentation).
    pub protective: bool,
}

const fn known_as(name: &'static str, support: Support) -> Known {
    Known {
        name,
        support,
        protective: false,
    }
}

pub(crate) const fn s(name: &'static str) -> Known {
    known_as(name, Support::Supported)
}

pub(crate) const fn d(name: &'static str, note: &'static str) -> Known {
    known_as(name, Support::Differs(note))
}

pub(crate) const fn r(name: &'static str, note: &'static str) -> Known {
    known_as(name, Support::Refused(note))
}

pub(crate) const fn i(name: &'static str, note: &'static str) -> Known {
    known_as(name, Support::Ignored(note))
}

pub(crate) const fn n(name: &'static str, note: &'static str) -> Known {
    known_as(name, Support::NotYet(note))
}

/// A protective key that is not built: it fails closed.
pub(crate) const fn f(name: &'static str, note: &'static str) -> Known {
    Known {
        name,
        support: Support::FailsClosed(note),
        protective: true,
    }
}

/// Marks a key protective.
pub(crate) const fn p(known: Known) -> Known {
    Known {
        protective: true,
        ..known
    }
}

/// Whether the table keeps the rule: every protective key is enforced or
/// fails closed, and only protective keys fail closed. Returns the keys
/// that break it.
pub fn rule_breakers(table: &[Known]) -> Vec<&'static str> {
    table
        .iter()
        .filter(|k| {
            let enforced_or_closed = matches!(
                k.support,
                Support::Supported | Support::Differs(_) | Support::FailsClosed(_)
            );
            (k.protective && !enforced_or_closed)
                || (!k.protective && matches!(k.support, Support::FailsClosed(_)))
        })
        .map(|k| k.name)
        .collect()
}

const SNIPPET: &str = "raw nginx configuration text: never pasted into anything here; the Ingress is not served (ingress-nginx refuses it too by default, above annotations-risk-level)";
const OPENTRACING: &str = "OpenTracing was removed from ingress-nginx (v1.10); use enable-opentelemetry (see docs/tracing.md)";
const PENDING: &str = "not applied yet: the route is served without it";
/// `load-balance` here and in the ConfigMap.
pub(crate) const LOAD_BALANCE: &str = "round_robin (default) as ingress-nginx; ewma as ingress-nginx except that an endpoint stalled on its requests (no first byte since its last one, or a silent stream) scores at least its stall, where ingress-nginx keeps its last score; least_request, p2c and peak_ewma too (see the edge-gateway.io/ keys)";
const BUFFERS: &str = "nginx buffer tuning; bodies stream here without these buffers";
const WAF: &str = "no WAF (ModSecurity) here: a route the WAF would cover (this annotation true, or the ConfigMap's enable-modsecurity unless the Ingress sets enable-modsecurity: \"false\") answers 503, unless the ConfigMap says edge-gateway.io/serve-without-waf: \"true\" (then it is served without the WAF, with a warning)";

/// The annotations, alphabetically.
pub const ANNOTATIONS: &[Known] = &[
    d(
        "affinity",
        "`cookie`; as in ingress-nginx it belongs to the Service port and the first Ingress (oldest first) that sets an affinity gives it, but every path routed to that port then sets the cookie (ingress-nginx: only the annotated Ingress's paths). The cookie's value is a hash naming the pod and the Service port, not ingress-nginx's md5 format, so sessions restart once after a migration",
    ),
    s("affinity-canary-behavior"),
    s("affinity-mode"),
    p(s("allowlist-source-range")),
    s("app-root"),
    n("auth-always-set-cookie", PENDING),
    p(s("auth-cache-duration")),
    p(s("auth-cache-key")),
    i(
        "auth-keepalive",
        "keep-alive to the auth service is the auth client's own business",
    ),
    i(
        "auth-keepalive-requests",
        "keep-alive to the auth service is the auth client's own business",
    ),
    i(
        "auth-keepalive-share-vars",
        "keep-alive to the auth service is the auth client's own business",
    ),
    i(
        "auth-keepalive-timeout",
        "keep-alive to the auth service is the auth client's own business",
    ),
    p(s("auth-method")),
    f(
        "auth-proxy-set-headers",
        "the ConfigMap of headers for the auth subrequest is not read (that would need ConfigMaps watched in every Ingress namespace): the Ingress's routes answer 503 rather than ask the auth service without them",
    ),
    p(s("auth-realm")),
    p(s("auth-request-redirect")),
    p(s("auth-response-headers")),
    p(d(
        "auth-secret",
        "only a Secret in the Ingress's own namespace is read (ingress-nginx's allow-cross-namespace-resources: false); another namespace denies the routes (503)",
    )),
    p(s("auth-secret-type")),
    p(s("auth-signin")),
    p(s("auth-signin-redirect-param")),
    f(
        "auth-snippet",
        "raw nginx configuration for the auth subrequest, never applied: the Ingress's routes answer 503",
    ),
    p(d(
        "auth-tls-error-page",
        "a URL: a 302 to it, as nginx; a path: served by the host's route for that path as a GET without body (nginx's internal redirect; that route's redirects and rewrite-target are not applied); a named location (@name) or a value ingress-nginx rejects denies the routes (503)",
    )),
    p(d(
        "auth-tls-match-cn",
        "matched anywhere in the subject (RFC 2253), as nginx's `$ssl_client_s_dn !~`, but with Rust regex syntax (no look-around or back-references); a value without CN= or that does not compile denies the routes (503); without auth-tls-secret it denies them too (ingress-nginx ignores it)",
    )),
    p(s("auth-tls-pass-certificate-to-upstream")),
    p(d(
        "auth-tls-secret",
        "ca.crt (every certificate in it a trust anchor) and, when present, ca.crl; the oldest Ingress of a host with this key decides the host's client certificates, as ingress-nginx. Only the Ingress's own namespace; a missing Secret, no ca.crt (ingress-nginx then serves without client certificates) or an unusable ca.crt/ca.crl denies the Ingress's routes and every host whose client certificates it decides (503). Every ssl-client-* header a client sends is replaced on these hosts",
    )),
    p(d(
        "auth-tls-verify-client",
        "on, optional, optional_no_ca, off as nginx (400 \"No required SSL certificate was sent\" / \"The SSL certificate error\", nginx's 496/495); a CA change applies to open connections' next request; over plain HTTP a request counts as sent without a certificate (ingress-nginx does not check there), so on answers 400 after the HTTPS redirect; without auth-tls-secret any value but off denies the routes",
    )),
    p(s("auth-tls-verify-depth")),
    p(d(
        "auth-type",
        "basic only; digest is refused and denies the routes (503) rather than serving them unprotected. Password hashes run at most one per core at a time (at least 2): a request that finds no free slot within 2 s gets 503 with Retry-After: 1 (nginx hashes in its worker); an unknown user costs the verification of the file's costliest hash, so no timing tells users apart; successful checks are remembered",
    )),
    p(d(
        "auth-url",
        "an HTTPS auth service's certificate is verified against the system CAs (nginx does not verify by default); the default timeout is 5 s; Set-Cookie of a 2xx auth answer is not passed to the client",
    )),
    d(
        "backend-protocol",
        "HTTP, HTTPS, GRPC (h2c), GRPCS and AUTO_HTTP (nginx's $scheme); FCGI is refused as an invalid value and HTTP applies",
    ),
    d(
        "canary",
        "the canary splits only the route with its host, path and pathType (ingress-nginx attaches it to the main Service's upstream, so other paths to that Service are split too: ingress-nginx#4667, #8689); while the main Service has no ready endpoint the canary still takes its share (ingress-nginx answers 503); a canary without ready endpoints is skipped, unless its backend holds requests (hold-when-no-endpoints)",
    ),
    s("canary-by-cookie"),
    s("canary-by-header"),
    d(
        "canary-by-header-pattern",
        "Rust regex syntax, not PCRE (no look-around or back-references); a pattern that does not compile sends requests carrying the header to the main backend, as ingress-nginx does when a pattern fails",
    ),
    s("canary-by-header-value"),
    s("canary-weight"),
    s("canary-weight-total"),
    i("client-body-buffer-size", BUFFERS),
    r("configuration-snippet", SNIPPET),
    i(
        "connection-proxy-header",
        "the upstream Connection header is managed per connection (keep-alive)",
    ),
    s("cors-allow-credentials"),
    s("cors-allow-headers"),
    s("cors-allow-methods"),
    d(
        "cors-allow-origin",
        "an origin must match the whole Origin header (nginx's regex is anchored at the end only), and responses for an origin list carry Vary: Origin",
    ),
    s("cors-expose-headers"),
    s("cors-max-age"),
    d(
        "custom-headers",
        "a ConfigMap of the Ingress's own namespace (`name` or `namespace/name`), re-read when it changes; as ingress-nginx 1.12+ every header must be listed exactly in the controller ConfigMap's global-allowed-response-headers, and names and values must match its patterns, else (or when the ConfigMap is missing) the routes answer 503 with a diagnostic. Set on the upstream's responses (not on the gateway's own error pages)",
    ),
    d(
        "custom-http-errors",
        "the upstream's answers with these codes are replaced by the default-backend annotation's Service, else --default-backend-service's (path /, X-Code, X-Format, X-Original-URI, X-Namespace, X-Ingress-Name, X-Service-Name, X-Service-Port, X-Request-ID), sent with the upstream's status code; with neither they pass through; if the default backend cannot answer, the upstream's answer is sent",
    ),
    s("default-backend"),
    p(s("denylist-source-range")),
    s("enable-access-log"),
    s("enable-cors"),
    p(s("enable-global-auth")),
    i(
        "enable-influxdb",
        "InfluxDB export is not supported; use the Prometheus metrics",
    ),
    f("enable-modsecurity", WAF),
    d(
        "enable-opentelemetry",
        "as ingress-nginx, over the ConfigMap's enable-opentelemetry either way: a server span per request exported over OTLP/gRPC to otlp-collector-host, W3C traceparent/tracestate sent upstream; the span starts once the request is routed (a redirect or refusal made before routing has none) and external auth requests carry no traceparent (docs/tracing.md)",
    ),
    i("enable-opentracing", OPENTRACING),
    f("enable-owasp-core-rules", WAF),
    i(
        "enable-rewrite-log",
        "rewrites are visible in the access log",
    ),
    s("force-ssl-redirect"),
    s("from-to-www-redirect"),
    d(
        "global-rate-limit",
        "counted in the ConfigMap's memcached with ingress-nginx's sliding window; without global-rate-limit-memcached-host the routes answer 503 with a diagnostic (ingress-nginx turns the limit off); while memcached fails, each replica counts the limit on its own (ingress-nginx lets everything through) and edge_gateway_global_rate_limit_store_errors_total counts the failures; a value that does not parse makes the routes answer 503",
    ),
    d(
        "global-rate-limit-ignored-cidrs",
        "a list that does not parse makes the routes answer 503",
    ),
    d(
        "global-rate-limit-key",
        "literal text with $remote_addr, $host, $scheme, $request_method, $uri, $request_uri, $http_*, $cookie_*, $arg_*; another variable is a diagnostic and $remote_addr applies",
    ),
    d(
        "global-rate-limit-window",
        "a Go duration, in whole seconds as ingress-nginx; one that does not parse makes the routes answer 503",
    ),
    i(
        "http2-push-preload",
        "HTTP/2 server push is obsolete and ignored by browsers",
    ),
    i("influxdb-host", "InfluxDB export is not supported"),
    i("influxdb-measurement", "InfluxDB export is not supported"),
    i("influxdb-port", "InfluxDB export is not supported"),
    i("influxdb-server-name", "InfluxDB export is not supported"),
    s("limit-burst-multiplier"),
    s("limit-connections"),
    d(
        "limit-rate",
        "kilobytes per second, per request, as nginx's limit_rate (one second's worth goes at once); applies whether proxy-buffering is on or off",
    ),
    s("limit-rate-after"),
    s("limit-rpm"),
    s("limit-rps"),
    s("limit-whitelist"),
    d("load-balance", LOAD_BALANCE),
    s("mirror-host"),
    d(
        "mirror-request-body",
        "the body is copied as the upstream reads it; a copy that falls 64 frames behind is abandoned (counted dropped), never waited for",
    ),
    d(
        "mirror-target",
        "an http:// or https:// URL (TLS not verified, as nginx's proxy_pass); variables $request_uri, $uri, $args, $is_args, $host and $scheme in its path (others are refused with a diagnostic and no mirror); without a path the client's URI is sent. Fire and forget: the client's answer is never delayed (nginx's mirror can delay it); at most 64 copies per Ingress in flight, more are dropped; each copy is bounded by the route's connect and read timeouts; carries the client's headers, Host (mirror-host or the target's host) and X-Original-URI; counted in edge_gateway_mirror_requests_total",
    ),
    f(
        "modsecurity-snippet",
        "raw ModSecurity rules, never applied: the Ingress's routes answer 503 unless the ConfigMap says edge-gateway.io/serve-without-waf: \"true\"",
    ),
    f(
        "modsecurity-transaction-id",
        "no WAF: the Ingress's routes answer 503 unless the ConfigMap says edge-gateway.io/serve-without-waf: \"true\"",
    ),
    s("opentelemetry-operation-name"),
    s("opentelemetry-trust-incoming-span"),
    i("opentracing-trust-incoming-span", OPENTRACING),
    s("permanent-redirect"),
    s("permanent-redirect-code"),
    s("preserve-trailing-slash"),
    s("proxy-body-size"),
    i("proxy-buffer-size", BUFFERS),
    d(
        "proxy-buffering",
        "responses always stream (ingress-nginx's default, off); \"on\" is accepted and streams too",
    ),
    i("proxy-buffers-number", BUFFERS),
    s("proxy-connect-timeout"),
    d(
        "proxy-cookie-domain",
        "literal values: a value using an nginx variable is refused with a diagnostic (the default applies)",
    ),
    d(
        "proxy-cookie-path",
        "literal values: a value using an nginx variable is refused with a diagnostic (the default applies)",
    ),
    d(
        "proxy-http-version",
        "1.0 sends HTTP/1.0 with Connection: close, except for a streamed request body of unknown length, which goes over HTTP/1.1 (nginx buffers it first)",
    ),
    i("proxy-max-temp-file-size", BUFFERS),
    s("proxy-next-upstream"),
    s("proxy-next-upstream-timeout"),
    s("proxy-next-upstream-tries"),
    s("proxy-read-timeout"),
    d(
        "proxy-redirect-from",
        "a literal, case-sensitive prefix of Location and Refresh URLs (no regex, no nginx variables: refused with a diagnostic); `off` and `default` rewrite nothing (`default` names ingress-nginx's internal upstream, which no upstream sends)",
    ),
    d(
        "proxy-redirect-to",
        "literal text (no nginx variables); only with proxy-redirect-from",
    ),
    d(
        "proxy-request-buffering",
        "request bodies always stream to the upstream; \"on\" (ingress-nginx's default) is accepted and streams too",
    ),
    s("proxy-send-timeout"),
    n(
        "proxy-ssl-ciphers",
        "upstream TLS uses rustls' cipher suites",
    ),
    s("proxy-ssl-name"),
    n("proxy-ssl-protocols", "upstream TLS offers TLS 1.2 and 1.3"),
    d(
        "proxy-ssl-secret",
        "the Ingress's own namespace only; ca.crt required, tls.crt/tls.key as client certificate; an unusable Secret answers 503 as ingress-nginx",
    ),
    s("proxy-ssl-server-name"),
    s("proxy-ssl-verify"),
    s("proxy-ssl-verify-depth"),
    s("rewrite-target"),
    p(d(
        "satisfy",
        "`all` (the default): the address lists, basic and external auth (the Ingress's or the global one) must all let a request in; `any`: one of them suffices, as nginx's `satisfy any` (401 before 403 when none does, an auth service failure is a 500 at once); another value is `all`, with a diagnostic",
    )),
    s("server-alias"),
    r("server-snippet", SNIPPET),
    s("service-upstream"),
    d(
        "session-cookie-change-on-failure",
        "a retry after a failed attempt always goes to another pod (ingress-nginx retries the cookie's pod unless this is true); this setting decides whether the cookie follows it",
    ),
    s("session-cookie-conditional-samesite-none"),
    s("session-cookie-domain"),
    s("session-cookie-expires"),
    s("session-cookie-max-age"),
    s("session-cookie-name"),
    s("session-cookie-path"),
    s("session-cookie-samesite"),
    s("session-cookie-secure"),
    i(
        "ssl-ciphers",
        "TLS cipher suites are the gateway's (AEAD only)",
    ),
    d(
        "ssl-passthrough",
        "with --enable-ssl-passthrough, TLS connections whose ClientHello names the host are spliced undecrypted to the backend of the host's / path (or default backend): its Service's ready endpoints (ingress-nginx: its ClusterIP), the next endpoint on a failed connect; exact hosts only, as ingress-nginx matches them literally; the ClientHello must arrive within client-header-timeout and 16.5 KiB. Plain HTTP for the host is routed as usual. Without the flag, or for a wildcard host or one without a / backend, a diagnostic says so and TLS is terminated (ingress-nginx: silently)",
    ),
    i(
        "ssl-prefer-server-ciphers",
        "TLS cipher suites are the gateway's (AEAD only)",
    ),
    s("ssl-redirect"),
    r("stream-snippet", SNIPPET),
    s("temporal-redirect"),
    s("temporal-redirect-code"),
    d(
        "upstream-hash-by",
        "text and the variables `$request_uri`, `$remote_addr`, `$host`, `$http_<name>`, `$cookie_<name>` and `$arg_<name>`, parsed once (another variable is refused with a diagnostic); a consistent-hash ring of 160 points per pod like nginx's, with its own hash, so a key maps to another pod than under ingress-nginx, the same on every replica",
    ),
    d(
        "upstream-hash-by-subset",
        "endpoints in set order cut into subsets (the last filled up from the first), a key consistently mapped to one subset (rendezvous hashing; ingress-nginx: a ring over the subset names, so a key maps to another subset than under ingress-nginx), a random endpoint of it taking the request",
    ),
    s("upstream-hash-by-subset-size"),
    s("upstream-vhost"),
    s("use-regex"),
    p(s("whitelist-source-range")),
    s("x-forwarded-prefix"),
];

/// The entry for an annotation name (without prefix).
pub fn known(name: &str) -> Option<&'static Known> {
    ANNOTATIONS
        .binary_search_by(|k| k.name.cmp(name))
        .ok()
        .and_then(|i| ANNOTATIONS.get(i))
}

/// The table as Markdown, for docs/compatibility.md.
pub fn markdown() -> String {
    let mut out = String::from(
        "| Annotation (`nginx.ingress.kubernetes.io/…`) | Status | Notes |\n|---|---|---|\n",
    );
    for k in ANNOTATIONS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            k.name,
            k.support.label(),
            k.support.note()
        ));
    }
    out
}

/// One of edge-gateway's own keys (`edge-gateway.io/<name>` on an Ingress,
/// `<name>` in the controller ConfigMap), which ingress-nginx ignores:
/// where it can be set and what it does (docs/traffic.md has the details).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeKey {
    /// The name after `edge-gateway.io/`, and the ConfigMap key.
    pub name: &'static str,
    /// Whether an Ingress annotation sets it.
    pub annotation: bool,
    /// Whether the controller ConfigMap sets its default.
    pub config_map: bool,
    /// What it does, in a line.
    pub summary: &'static str,
}

const fn both(name: &'static str, summary: &'static str) -> EdgeKey {
    EdgeKey {
        name,
        annotation: true,
        config_map: true,
        summary,
    }
}

const fn ingress_only(name: &'static str, summary: &'static str) -> EdgeKey {
    EdgeKey {
        name,
        annotation: true,
        config_map: false,
        summary,
    }
}

/// edge-gateway's own keys, alphabetically.
pub const EDGE_KEYS: &[EdgeKey] = &[
    both(
        "criticality",
        "`critical`, `standard` or `sheddable`: the class of the route's requests under saturation (sheddable: 429 at once; critical: queued first)",
    ),
    both(
        "criticality-header",
        "a request header whose value (a class name) overrides `criticality`",
    ),
    both(
        "endpoint-metrics",
        "`off`, `vllm`, `sglang`, `trtllm`, `tgi` or `triton`: scrape each endpoint's model-server metrics (queue, running, KV cache, LoRA adapters) and pick by them",
    ),
    both(
        "endpoint-metrics-interval",
        "time between two scrapes of an endpoint (500ms, at least 50ms)",
    ),
    both(
        "endpoint-metrics-max-age",
        "how long a scrape's values count (2s); older or failed: the gateway's own view",
    ),
    both(
        "endpoint-metrics-names",
        "`waiting=…;running=…;kv-cache=…;lora=…`: metric selectors replacing the preset's",
    ),
    both("endpoint-metrics-path", "the metrics path (`/metrics`)"),
    both(
        "endpoint-metrics-port",
        "the metrics port (the endpoint's own)",
    ),
    both(
        "endpoint-metrics-timeout",
        "connect, answer and body of one scrape (500ms; pages up to 1 MiB)",
    ),
    both(
        "hold-when-no-endpoints",
        "how long a request waits for a ready endpoint (scale from zero)",
    ),
    both(
        "load-balance",
        "`round_robin`, `ewma`, `least_request`, `p2c` or `peak_ewma`",
    ),
    both(
        "max-inflight-per-endpoint",
        "requests one endpoint serves at once",
    ),
    both(
        "max-pending",
        "requests held while no endpoint is ready (1000)",
    ),
    both("max-queue", "requests waiting for a slot (1000)"),
    ingress_only(
        "model-body-peek",
        "the most body bytes read for `model-from-body`, `prefix-affinity` or LoRA affinity (16Ki, at most 1Mi)",
    ),
    ingress_only(
        "model-from-body",
        "a header set from a JSON body's top-level `model`, before the canary decision",
    ),
    both(
        "prefix-affinity",
        "`on`/`off`: prefer the endpoint that recently served the start of the request's prompt",
    ),
    both(
        "prefix-affinity-slack",
        "how many more requests than the balancer's pick the prompt's endpoint may have (2)",
    ),
    both(
        "proxy-first-byte-timeout",
        "the longest wait for the first response byte",
    ),
    both(
        "queue-overflow-status",
        "`503` or `429` for a full or slow queue",
    ),
    both("queue-timeout", "the longest wait for a slot (60s)"),
    both("request-deadline", "the whole exchange, waits included"),
    both(
        "saturation-kv-cache",
        "KV-cache use from which an endpoint counts as saturated (0.8)",
    ),
    both(
        "saturation-queue",
        "requests waiting from which an endpoint counts as saturated (5)",
    ),
    both(
        "stream-idle-timeout",
        "the longest gap between two response chunks",
    ),
];

/// The edge-gateway keys as Markdown, for docs/compatibility.md.
pub fn edge_markdown() -> String {
    let mut out = String::from(
        "| Key (`edge-gateway.io/…` on an Ingress) | Annotation | ConfigMap | What it does |\n|---|---|---|---|\n",
    );
    let yes = |b: bool| if b { "yes" } else { "no" };
    for k in EDGE_KEYS {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            k.name,
            yes(k.annotation),
            yes(k.config_map),
            k.summary
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_and_unique() {
        for pair in ANNOTATIONS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        assert!(known("rewrite-target").is_some());
        assert!(known("no-such-thing").is_none());
    }

    #[test]
    fn every_snippet_is_refused_or_fails_closed() {
        for k in ANNOTATIONS.iter().filter(|k| k.name.ends_with("-snippet")) {
            assert!(
                matches!(k.support, Support::Refused(_) | Support::FailsClosed(_)),
                "{}",
                k.name
            );
        }
    }

    /// The fail-closed rule: a protective annotation is enforced or fails
    /// closed, never "not yet" or "ignored" (see the module documentation;
    /// `compile::tests` checks that failing closed really answers 503).
    #[test]
    fn no_protective_annotation_is_dropped() {
        assert_eq!(rule_breakers(ANNOTATIONS), Vec::<&str>::new());
        let protective: Vec<&str> = ANNOTATIONS
            .iter()
            .filter(|k| k.protective)
            .map(|k| k.name)
            .collect();
        for name in [
            "auth-tls-secret",
            "auth-url",
            "auth-type",
            "whitelist-source-range",
            "denylist-source-range",
            "enable-modsecurity",
            "satisfy",
            "enable-global-auth",
        ] {
            assert!(
                protective.contains(&name),
                "{name} is not marked protective"
            );
        }
        // The check itself catches a protective key left "not yet".
        let dropped = [p(n("auth-x", "later")), p(i("auth-y", "no")), s("fine")];
        assert_eq!(rule_breakers(&dropped), ["auth-x", "auth-y"]);
    }

    /// docs/compatibility.md shows this table between markers.
    #[test]
    fn the_compatibility_page_shows_this_table() {
        crate::generated_docs::check_section("annotations", &markdown());
    }

    /// The edge-gateway keys: sorted, the ones the parsers read, and shown
    /// on docs/compatibility.md.
    #[test]
    fn the_edge_keys_are_the_parsed_ones_and_shown() {
        for pair in EDGE_KEYS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        let listed = |f: fn(&EdgeKey) -> bool| -> Vec<&str> {
            EDGE_KEYS.iter().filter(|k| f(k)).map(|k| k.name).collect()
        };
        let mut annotations: Vec<&str> = super::super::traffic::annotation_keys().collect();
        annotations.sort_unstable();
        assert_eq!(listed(|k| k.annotation), annotations);
        let mut config: Vec<&str> = super::super::traffic::config_keys().collect();
        config.sort_unstable();
        assert_eq!(listed(|k| k.config_map), config);
        crate::generated_docs::check_section("edge-keys", &edge_markdown());
    }
}
