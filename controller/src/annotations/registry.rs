//! Every `nginx.ingress.kubernetes.io/*` annotation ingress-nginx documents,
//! with what edge-gateway does with it. This table is the one source of
//! truth: `docs/compatibility.md` shows it (a test fails when the page and
//! the table differ), unknown keys are reported, and `edge-gateway check`
//! reads it.

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
        }
    }

    /// The explanation, if any.
    pub fn note(self) -> &'static str {
        match self {
            Self::Supported => "",
            Self::Differs(n) | Self::Refused(n) | Self::Ignored(n) | Self::NotYet(n) => n,
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
}

pub(crate) const fn s(name: &'static str) -> Known {
    Known {
        name,
        support: Support::Supported,
    }
}

pub(crate) const fn d(name: &'static str, note: &'static str) -> Known {
    Known {
        name,
        support: Support::Differs(note),
    }
}

pub(crate) const fn r(name: &'static str, note: &'static str) -> Known {
    Known {
        name,
        support: Support::Refused(note),
    }
}

pub(crate) const fn i(name: &'static str, note: &'static str) -> Known {
    Known {
        name,
        support: Support::Ignored(note),
    }
}

pub(crate) const fn n(name: &'static str, note: &'static str) -> Known {
    Known {
        name,
        support: Support::NotYet(note),
    }
}

const SNIPPET: &str = "raw nginx configuration text: never pasted into anything here; the Ingress is not served (ingress-nginx refuses it too by default, above annotations-risk-level)";
const NO_TRACING: &str = "no tracing exporter yet; requests are served without spans";
const PENDING: &str = "not applied yet: the route is served without it";
const BUFFERS: &str = "nginx buffer tuning; bodies stream here without these buffers";

/// The annotations, alphabetically.
pub const ANNOTATIONS: &[Known] = &[
    d(
        "affinity",
        "`cookie`; as in ingress-nginx it belongs to the Service port and the first Ingress (oldest first) that sets an affinity gives it, but every path routed to that port then sets the cookie (ingress-nginx: only the annotated Ingress's paths). The cookie's value is a hash naming the pod and the Service port, not ingress-nginx's md5 format, so sessions restart once after a migration",
    ),
    s("affinity-canary-behavior"),
    s("affinity-mode"),
    s("allowlist-source-range"),
    s("app-root"),
    n("auth-always-set-cookie", PENDING),
    s("auth-cache-duration"),
    s("auth-cache-key"),
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
    s("auth-method"),
    n(
        "auth-proxy-set-headers",
        "the auth subrequest carries the client's headers; extra headers from a ConfigMap are not added",
    ),
    s("auth-realm"),
    s("auth-request-redirect"),
    s("auth-response-headers"),
    d(
        "auth-secret",
        "only a Secret in the Ingress's own namespace is read (ingress-nginx's allow-cross-namespace-resources: false); another namespace denies the routes (503)",
    ),
    s("auth-secret-type"),
    s("auth-signin"),
    s("auth-signin-redirect-param"),
    r("auth-snippet", SNIPPET),
    n(
        "auth-tls-error-page",
        "client certificate authentication is not built yet; requests are served without it",
    ),
    n(
        "auth-tls-match-cn",
        "client certificate authentication is not built yet; requests are served without it",
    ),
    n(
        "auth-tls-pass-certificate-to-upstream",
        "client certificate authentication is not built yet; requests are served without it",
    ),
    n(
        "auth-tls-secret",
        "client certificate authentication is not built yet; requests are served without it",
    ),
    n(
        "auth-tls-verify-client",
        "client certificate authentication is not built yet; requests are served without it",
    ),
    n(
        "auth-tls-verify-depth",
        "client certificate authentication is not built yet; requests are served without it",
    ),
    d(
        "auth-type",
        "basic only; digest is refused and denies the routes (503) rather than serving them unprotected",
    ),
    d(
        "auth-url",
        "an HTTPS auth service's certificate is verified against the system CAs (nginx does not verify by default); the default timeout is 5 s; Set-Cookie of a 2xx auth answer is not passed to the client",
    ),
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
    s("denylist-source-range"),
    s("enable-access-log"),
    s("enable-cors"),
    n(
        "enable-global-auth",
        "there is no global-auth-url yet, so nothing to disable",
    ),
    i(
        "enable-influxdb",
        "InfluxDB export is not supported; use the Prometheus metrics",
    ),
    n(
        "enable-modsecurity",
        "no WAF; requests are served unfiltered",
    ),
    i("enable-opentelemetry", NO_TRACING),
    i("enable-opentracing", NO_TRACING),
    n(
        "enable-owasp-core-rules",
        "no WAF; requests are served unfiltered",
    ),
    i(
        "enable-rewrite-log",
        "rewrites are visible in the access log",
    ),
    s("force-ssl-redirect"),
    s("from-to-www-redirect"),
    n(
        "global-rate-limit",
        "only per-replica limits (limit-rps, limit-rpm, limit-connections)",
    ),
    n("global-rate-limit-ignored-cidrs", "only per-replica limits"),
    n("global-rate-limit-key", "only per-replica limits"),
    n("global-rate-limit-window", "only per-replica limits"),
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
    s("load-balance"),
    s("mirror-host"),
    d(
        "mirror-request-body",
        "the body is copied as the upstream reads it; a copy that falls 64 frames behind is abandoned (counted dropped), never waited for",
    ),
    d(
        "mirror-target",
        "an http:// or https:// URL (TLS not verified, as nginx's proxy_pass); variables $request_uri, $uri, $args, $is_args, $host and $scheme in its path (others are refused with a diagnostic and no mirror); without a path the client's URI is sent. Fire and forget: the client's answer is never delayed (nginx's mirror can delay it); at most 64 copies per Ingress in flight, more are dropped; each copy is bounded by the route's connect and read timeouts; carries the client's headers, Host (mirror-host or the target's host) and X-Original-URI; counted in edge_gateway_mirror_requests_total",
    ),
    r("modsecurity-snippet", SNIPPET),
    n("modsecurity-transaction-id", "no WAF"),
    i("opentelemetry-operation-name", NO_TRACING),
    i("opentelemetry-trust-incoming-span", NO_TRACING),
    i("opentracing-trust-incoming-span", NO_TRACING),
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
    i(
        "proxy-ssl-verify-depth",
        "the chain is verified up to ca.crt whatever its length (nginx's default depth is 1)",
    ),
    s("rewrite-target"),
    n(
        "satisfy",
        "basic and external auth both apply when both are set (satisfy all)",
    ),
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
    s("whitelist-source-range"),
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
    fn every_snippet_is_refused() {
        for k in ANNOTATIONS.iter().filter(|k| k.name.ends_with("-snippet")) {
            assert!(matches!(k.support, Support::Refused(_)), "{}", k.name);
        }
    }

    /// docs/compatibility.md shows this table between markers.
    #[test]
    fn the_compatibility_page_shows_this_table() {
        crate::generated_docs::check_section("annotations", &markdown());
    }
}
