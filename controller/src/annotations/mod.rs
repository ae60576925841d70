//! `nginx.ingress.kubernetes.io/*` annotations, parsed into typed settings.
//!
//! Every value is parsed or rejected; nothing is ever pasted into
//! configuration text. An unparseable value keeps the default and yields a
//! diagnostic naming the annotation and the value, as ingress-nginx does
//! for these keys. Annotations that would need raw configuration text
//! (`*-snippet`) make the whole Ingress refused. Protective annotations
//! that are not built fail closed ([`fail_closed`]). Unknown keys under the
//! prefix are reported, not fatal. [`registry`] lists every annotation with
//! its support status.

pub mod admission;
pub(crate) mod affinity;
pub mod canary;
pub mod client_auth;
pub mod defaults;
pub mod fail_closed;
pub(crate) mod inference;
pub(crate) mod mirror;
pub mod prefix;
pub mod registry;
pub mod response;
pub(crate) mod tracing;
pub mod traffic;
pub mod upstream;
pub(crate) mod values;

use std::collections::BTreeMap;

use gateway::host::HostPattern;
use gateway::policy::{CustomErrors, Policy, Redirect};
use gateway::settings::ProxySettings;
use http::HeaderValue;

pub use registry::{ANNOTATIONS, Known, Support, known};
use values::{body_size, boolean, header_value, host_and_port, seconds, status_code, tries};

/// The annotation prefix ingress-nginx reads.
pub const PREFIX: &str = "nginx.ingress.kubernetes.io/";

/// An annotation whose value could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationError {
    /// The full annotation key.
    pub key: String,
    /// The value found.
    pub value: String,
    /// Why it was refused.
    pub message: String,
}

/// What an Ingress's annotations say about routing (used by `compile()`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Routing {
    /// `use-regex`: this Ingress's host goes to regex mode.
    pub use_regex: bool,
    /// `rewrite-target`: also puts the host in regex mode.
    pub rewrite_target: Option<String>,
    /// `app-root` (server level: the oldest Ingress of the host decides).
    pub app_root: Option<HeaderValue>,
    /// `from-to-www-redirect`.
    pub from_to_www: bool,
    /// `server-alias`: more names for this Ingress's hosts.
    pub server_alias: Vec<HostPattern>,
    /// `default-backend`: the Service answering when the route's has no
    /// ready endpoint.
    pub default_backend: Option<String>,
    /// `service-upstream`: proxy to the Service's ClusterIP, not its pods.
    pub service_upstream: bool,
    /// `ssl-passthrough`: TLS connections for this Ingress's hosts go to
    /// the host's `/` backend undecrypted (with `--enable-ssl-passthrough`).
    pub ssl_passthrough: bool,
}

impl IngressAnnotations {
    /// Applies the controller ConfigMap's defaults for what the admission
    /// annotations leave unset.
    pub fn with_admission_defaults(mut self, defaults: &defaults::AdmissionDefaults) -> Self {
        self.admission.apply_defaults(defaults);
        self
    }
}

impl Routing {
    /// Whether this Ingress puts its hosts in regex mode.
    pub fn regex_mode(&self) -> bool {
        self.use_regex || self.rewrite_target.is_some()
    }
}

/// Everything an Ingress's annotations say.
#[derive(Clone, Debug, Default)]
pub struct IngressAnnotations {
    /// Proxy settings: the defaults with the annotations applied.
    pub proxy: ProxySettings,
    /// Policy: the defaults with the annotations applied.
    pub policy: Policy,
    /// Routing options.
    pub routing: Routing,
    /// CORS, limits, address lists and authentication.
    pub admission: admission::AdmissionSpec,
    /// `auth-tls-*`: client certificates; `Err` denies the routes.
    pub client_auth: Option<Result<client_auth::ClientAuthSpec, AnnotationError>>,
    /// `canary: "true"` and its rule: the Ingress is a canary of the
    /// routes with the same host and path.
    pub canary: Option<canary::CanarySpec>,
    /// Balancing, queue and hold settings for the Ingress's backends
    /// (`edge-gateway.io/*`, `load-balance`); its timeouts are in `proxy`.
    pub traffic: traffic::Traffic,
    /// `proxy-ssl-*`: TLS to the upstream, with its Secret still to read.
    pub upstream_tls: Option<upstream::UpstreamTlsSpec>,
    /// `custom-headers`: the ConfigMap of response headers, still to read.
    pub custom_headers: Option<crate::objects::NsName>,
    /// Values that did not parse (their defaults apply).
    pub errors: Vec<AnnotationError>,
    /// Refused annotations present: the Ingress is not served.
    pub refused: Vec<String>,
    /// Keys under the prefix this gateway does not know.
    pub unknown: Vec<String>,
    /// Whether proxy settings or policy differ from the defaults.
    pub customized: bool,
}

/// How one annotation changes a settings value of type `T`.
type Apply<T> = fn(&mut T, &str) -> Result<(), String>;

/// The proxy annotations (without prefix) and their parsers.
const PROXY_ANNOTATIONS: [(&str, Apply<ProxySettings>); 9] = [
    ("proxy-connect-timeout", |s, v| {
        s.connect_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-read-timeout", |s, v| {
        s.read_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-send-timeout", |s, v| {
        s.send_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-body-size", |s, v| {
        s.max_body_size = body_size(v)?;
        Ok(())
    }),
    ("proxy-next-upstream-tries", |s, v| {
        s.next_upstream_tries = tries(v)?;
        Ok(())
    }),
    ("proxy-next-upstream", |s, v| {
        let (next, non_idempotent) = upstream::next_upstream(v)?;
        s.next_upstream = next;
        // The ConfigMap's `retry-non-idempotent` still applies, as
        // ingress-nginx's `buildNextUpstream` adds it.
        s.retry_non_idempotent |= non_idempotent;
        Ok(())
    }),
    ("proxy-next-upstream-timeout", |s, v| {
        s.next_upstream_timeout = upstream::next_upstream_timeout(v)?;
        Ok(())
    }),
    ("backend-protocol", |s, v| {
        s.protocol = upstream::backend_protocol(v)?;
        Ok(())
    }),
    ("proxy-http-version", |s, v| {
        s.http_10 = upstream::http_10(v)?;
        Ok(())
    }),
];

/// The policy annotations with a value of their own.
const POLICY_ANNOTATIONS: [(&str, Apply<Policy>); 7] = [
    ("ssl-redirect", |p, v| {
        p.ssl_redirect = boolean(v)?;
        Ok(())
    }),
    ("force-ssl-redirect", |p, v| {
        p.force_ssl_redirect = boolean(v)?;
        Ok(())
    }),
    ("preserve-trailing-slash", |p, v| {
        p.preserve_trailing_slash = boolean(v)?;
        Ok(())
    }),
    ("enable-access-log", |p, v| {
        p.access_log = boolean(v)?;
        Ok(())
    }),
    ("upstream-vhost", |p, v| {
        p.upstream_vhost = Some(host_and_port(v)?);
        Ok(())
    }),
    ("x-forwarded-prefix", |p, v| {
        p.x_forwarded_prefix = Some(header_value(v)?);
        Ok(())
    }),
    ("custom-http-errors", |p, v| {
        p.custom_errors = CustomErrors::parse(v)?.map(std::sync::Arc::new);
        Ok(())
    }),
];

/// The routing annotations.
const ROUTING_ANNOTATIONS: [(&str, Apply<Routing>); 8] = [
    ("use-regex", |r, v| {
        r.use_regex = boolean(v)?;
        Ok(())
    }),
    ("rewrite-target", |r, v| {
        r.rewrite_target = Some(v.to_owned());
        Ok(())
    }),
    ("app-root", |r, v| {
        r.app_root = Some(gateway::policy::redirect::app_root(v).map_err(|e| e.to_string())?);
        Ok(())
    }),
    ("from-to-www-redirect", |r, v| {
        r.from_to_www = boolean(v)?;
        Ok(())
    }),
    ("server-alias", |r, v| {
        r.server_alias = v
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| HostPattern::parse(h).map_err(|e| format!("{h:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(())
    }),
    ("default-backend", |r, v| {
        if !is_dns_label(v) {
            return Err("must be the name of a Service in the Ingress's namespace".to_owned());
        }
        r.default_backend = Some(v.to_owned());
        Ok(())
    }),
    ("service-upstream", |r, v| {
        r.service_upstream = boolean(v)?;
        Ok(())
    }),
    ("ssl-passthrough", |r, v| {
        r.ssl_passthrough = boolean(v)?;
        Ok(())
    }),
];

/// Parses the annotations of one Ingress, starting from the defaults;
/// `default_backend_service`: whether `--default-backend-service` is set
/// (it serves `custom-http-errors` without a `default-backend` annotation).
/// A bare `custom-headers` name is in namespace `default`; see
/// [`parse_in`].
pub fn parse(
    annotations: Option<&BTreeMap<String, String>>,
    proxy_defaults: &ProxySettings,
    policy_defaults: &Policy,
    default_backend_service: bool,
) -> IngressAnnotations {
    parse_in(
        "default",
        annotations,
        proxy_defaults,
        policy_defaults,
        default_backend_service,
    )
}

/// [`parse`] for an Ingress of `namespace`.
pub fn parse_in(
    namespace: &str,
    annotations: Option<&BTreeMap<String, String>>,
    proxy_defaults: &ProxySettings,
    policy_defaults: &Policy,
    default_backend_service: bool,
) -> IngressAnnotations {
    let mut parsed = IngressAnnotations {
        proxy: proxy_defaults.clone(),
        policy: policy_defaults.clone(),
        ..IngressAnnotations::default()
    };
    let Some(annotations) = annotations else {
        return parsed;
    };
    let (errors, unknown) = (&mut parsed.errors, &mut parsed.unknown);
    parsed.traffic = traffic::parse(annotations, &mut parsed.proxy, errors, unknown);
    parsed.customized = parsed.proxy != *proxy_defaults;
    let ours: BTreeMap<&str, &str> = annotations
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(PREFIX)?, v.as_str())))
        .collect();
    if ours.is_empty() {
        return parsed;
    }
    for name in ours.keys() {
        match known(name).map(|k| k.support) {
            None => parsed.unknown.push(format!("{PREFIX}{name}")),
            Some(Support::Refused(_)) => parsed.refused.push(format!("{PREFIX}{name}")),
            Some(_) => {}
        }
    }
    let mut errors = std::mem::take(&mut parsed.errors);
    apply_all(&PROXY_ANNOTATIONS, &mut parsed.proxy, &ours, &mut errors);
    apply_all(&POLICY_ANNOTATIONS, &mut parsed.policy, &ours, &mut errors);
    apply_all(
        &ROUTING_ANNOTATIONS,
        &mut parsed.routing,
        &ours,
        &mut errors,
    );
    parsed.policy.redirect = redirect(&ours, &mut errors).map(std::sync::Arc::new);
    if response::KEYS.iter().any(|k| ours.contains_key(k)) {
        let spec = response::parse(
            &ours,
            namespace,
            policy_defaults.response.as_deref(),
            &mut errors,
        );
        parsed.policy.response = (!spec.rules.is_empty()).then(|| std::sync::Arc::new(spec.rules));
        parsed.custom_headers = spec.custom_headers;
    }
    parsed.policy.mirror = mirror::parse(&ours, &mut errors);
    parsed.policy.tracing = tracing::parse(&ours, &policy_defaults.tracing, &mut errors);
    parsed.admission = admission::parse(&ours, &mut errors);
    parsed.client_auth = client_auth::parse(&ours, &mut errors);
    parsed.canary = canary::parse(&ours, &mut errors);
    let regex_mode = parsed.routing.regex_mode();
    parsed
        .traffic
        .set_affinity(affinity::parse(&ours, regex_mode, &mut errors));
    if parsed.policy.custom_errors.is_some()
        && ours.contains_key("custom-http-errors")
        && parsed.routing.default_backend.is_none()
        && !default_backend_service
    {
        errors.push(error(
            "custom-http-errors",
            ours["custom-http-errors"],
            "has no effect without a default-backend annotation or \
             --default-backend-service; upstream errors pass through"
                .to_owned(),
        ));
    }
    parsed.upstream_tls = upstream::tls(&ours, &mut errors);
    parsed.errors = errors;
    parsed.customized = parsed.proxy != *proxy_defaults
        || parsed.policy != *policy_defaults
        || parsed.upstream_tls.is_some();
    parsed
}

fn apply_all<T>(
    table: &[(&str, Apply<T>)],
    target: &mut T,
    annotations: &BTreeMap<&str, &str>,
    errors: &mut Vec<AnnotationError>,
) {
    for (name, apply) in table {
        let Some(value) = annotations.get(name) else {
            continue;
        };
        if let Err(message) = apply(target, value.trim()) {
            errors.push(error(name, value, message));
        }
    }
}

fn error(name: &str, value: &str, message: String) -> AnnotationError {
    AnnotationError {
        key: format!("{PREFIX}{name}"),
        value: value.to_owned(),
        message,
    }
}

/// `temporal-redirect` (checked first, code 302 unless
/// `temporal-redirect-code`), else `permanent-redirect` (301 unless
/// `permanent-redirect-code`), as ingress-nginx's redirect parser.
fn redirect(
    annotations: &BTreeMap<&str, &str>,
    errors: &mut Vec<AnnotationError>,
) -> Option<Redirect> {
    for (name, code_name, default_code) in [
        ("temporal-redirect", "temporal-redirect-code", 302),
        ("permanent-redirect", "permanent-redirect-code", 301),
    ] {
        let Some(target) = annotations
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let code = match annotations.get(code_name) {
            None => default_code,
            Some(value) => status_code(value.trim()).unwrap_or_else(|message| {
                errors.push(error(code_name, value, message));
                default_code
            }),
        };
        match Redirect::new(target, code) {
            Ok(redirect) => return Some(redirect),
            Err(e) => errors.push(error(name, target, e.to_string())),
        }
    }
    None
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse_pairs(pairs: &[(&str, &str)]) -> IngressAnnotations {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect();
        parse(
            Some(&map),
            &ProxySettings::default(),
            &Policy::default(),
            false,
        )
    }

    fn error_keys(parsed: &IngressAnnotations) -> Vec<&str> {
        parsed
            .errors
            .iter()
            .map(|e| e.key.trim_start_matches(PREFIX))
            .collect()
    }

    #[test]
    fn proxy_values_override_defaults() {
        let p = parse_pairs(&[
            ("proxy-connect-timeout", "2"),
            ("proxy-read-timeout", " 120 "),
            ("proxy-send-timeout", "30"),
            ("proxy-body-size", "8m"),
            ("proxy-next-upstream-tries", "1"),
        ]);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.proxy.connect_timeout, Duration::from_secs(2));
        assert_eq!(p.proxy.read_timeout, Duration::from_secs(120));
        assert_eq!(p.proxy.send_timeout, Duration::from_secs(30));
        assert_eq!(p.proxy.max_body_size, Some(8 << 20));
        assert_eq!(p.proxy.next_upstream_tries, 1);
        assert!(p.customized);
    }

    #[test]
    fn upstream_protocol_and_retry_conditions() {
        let p = parse_pairs(&[
            ("backend-protocol", "GRPCS"),
            ("proxy-next-upstream", "error http_503 non_idempotent"),
            ("proxy-next-upstream-timeout", "7"),
            ("proxy-http-version", "1.0"),
        ]);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.proxy.protocol, gateway::settings::BackendProtocol::Grpcs);
        assert!(!p.proxy.next_upstream.timeout && p.proxy.retry_non_idempotent);
        assert_eq!(p.proxy.next_upstream_timeout, Some(Duration::from_secs(7)));
        assert!(p.proxy.http_10);
        let bad = parse_pairs(&[
            ("backend-protocol", "FCGI"),
            ("proxy-next-upstream", "sometimes"),
        ]);
        assert_eq!(bad.proxy, ProxySettings::default());
        assert_eq!(
            error_keys(&bad),
            ["proxy-next-upstream", "backend-protocol"]
        );
    }

    #[test]
    fn invalid_values_keep_defaults_and_are_reported() {
        let p = parse_pairs(&[
            ("proxy-read-timeout", "60s"),
            ("proxy-connect-timeout", "0"),
            ("proxy-body-size", "lots"),
            ("ssl-redirect", "yes"),
            ("upstream-vhost", "a b\r\n"),
        ]);
        assert_eq!(p.proxy, ProxySettings::default());
        assert_eq!(p.policy, Policy::default());
        assert_eq!(
            error_keys(&p),
            [
                "proxy-connect-timeout",
                "proxy-read-timeout",
                "proxy-body-size",
                "ssl-redirect",
                "upstream-vhost"
            ]
        );
        assert!(!p.customized);
    }

    #[test]
    fn custom_http_errors_and_affinity_are_read() {
        let p = parse_pairs(&[
            ("custom-http-errors", "503,404"),
            ("default-backend", "pages"),
            ("affinity", "cookie"),
        ]);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let codes = p.policy.custom_errors.as_ref().unwrap();
        assert_eq!(codes.to_string(), "404,503");
        assert!(!p.traffic.is_empty());
        let p = parse_pairs(&[
            ("custom-http-errors", "503,5xx"),
            ("default-backend", "pages"),
        ]);
        assert_eq!(p.policy.custom_errors, None);
        assert_eq!(error_keys(&p), ["custom-http-errors"]);
        // Without a default backend to ask, the list is reported unused.
        let p = parse_pairs(&[("custom-http-errors", "503")]);
        assert_eq!(error_keys(&p), ["custom-http-errors"]);
        assert!(p.errors[0].message.contains("default-backend"));
        // --default-backend-service serves them.
        let map: BTreeMap<String, String> =
            [(format!("{PREFIX}custom-http-errors"), "503".to_owned())]
                .into_iter()
                .collect();
        let p = parse(
            Some(&map),
            &ProxySettings::default(),
            &Policy::default(),
            true,
        );
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.policy.custom_errors.is_some());
        // With use-regex the cookie's default Path is the regex: reported.
        let p = parse_pairs(&[("affinity", "cookie"), ("use-regex", "true")]);
        assert_eq!(error_keys(&p), ["session-cookie-path"]);
        let p = parse_pairs(&[
            ("affinity", "cookie"),
            ("use-regex", "true"),
            ("session-cookie-path", "/"),
        ]);
        assert!(p.errors.is_empty());
    }

    #[test]
    fn redirects_temporal_first_and_literal() {
        let p = parse_pairs(&[
            ("permanent-redirect", "https://new.example/"),
            ("temporal-redirect", "https://tmp.example/"),
            ("temporal-redirect-code", "307"),
        ]);
        let r = p.policy.redirect.unwrap();
        assert_eq!(
            (r.location.to_str().unwrap(), r.code.as_u16()),
            ("https://tmp.example/", 307)
        );
        let p = parse_pairs(&[
            ("permanent-redirect", "https://new.example/$1"),
            ("permanent-redirect-code", "999"),
        ]);
        assert_eq!(p.policy.redirect.as_ref().unwrap().code.as_u16(), 301);
        assert_eq!(error_keys(&p), ["permanent-redirect-code"]);
        let p = parse_pairs(&[("permanent-redirect", "not a url")]);
        assert!(p.policy.redirect.is_none());
        assert_eq!(error_keys(&p), ["permanent-redirect"]);
    }

    #[test]
    fn routing_options() {
        let p = parse_pairs(&[
            ("rewrite-target", "/$2"),
            ("app-root", "/app1"),
            ("server-alias", "a.example.com, *.b.example.com"),
            ("from-to-www-redirect", "true"),
            ("default-backend", "fallback"),
            ("service-upstream", "true"),
        ]);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.routing.regex_mode());
        assert_eq!(p.routing.server_alias.len(), 2);
        assert_eq!(p.routing.app_root.unwrap(), "/app1");
        assert!(p.routing.from_to_www && p.routing.service_upstream);
        let bad = parse_pairs(&[
            ("server-alias", "ok.com, bad host"),
            ("default-backend", "Bad_Name"),
        ]);
        assert_eq!(error_keys(&bad), ["server-alias", "default-backend"]);
    }

    #[test]
    fn snippets_are_refused_and_unknown_keys_reported() {
        let p = parse_pairs(&[
            ("configuration-snippet", "more_set_headers \"x: y\";"),
            ("server-snippet", "location /x {}"),
            ("made-up-annotation", "1"),
            ("ssl-redirect", "false"),
        ]);
        assert_eq!(
            p.refused,
            [
                format!("{PREFIX}configuration-snippet"),
                format!("{PREFIX}server-snippet")
            ]
        );
        assert_eq!(p.unknown, [format!("{PREFIX}made-up-annotation")]);
        assert!(!p.policy.ssl_redirect);
    }

    #[test]
    fn other_prefixes_are_not_ours() {
        let map = BTreeMap::from([("kubernetes.io/ingress.class".to_owned(), "nginx".to_owned())]);
        let p = parse(
            Some(&map),
            &ProxySettings::default(),
            &Policy::default(),
            false,
        );
        assert!(p.unknown.is_empty() && !p.customized);
    }
}
