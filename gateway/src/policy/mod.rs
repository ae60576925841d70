//! What happens to a request before it is proxied, per route ([`Policy`])
//! and gateway-wide ([`Globals`]), in nginx's phase order:
//!
//! 1. rewrite phase: the server's `app-root` and `from-to-www-redirect`
//!    (server level), then the route's `permanent-redirect` /
//!    `temporal-redirect`, then the HTTPS redirect (ingress-nginx does it in
//!    Lua at the end of the rewrite phase);
//! 2. the rest (CORS preflight, limits, access lists, authentication):
//!    [`admission`], run by the proxy's admit phase.

pub mod access;
pub mod admission;
pub mod basic_auth;
pub mod block;
pub mod client_cert;
pub mod cors;
pub mod custom_errors;
pub mod external_auth;
pub mod forwarded;
pub mod global_limit;
pub mod header_rules;
pub mod htpasswd;
pub mod limits;
pub mod redirect;
pub mod response;

use std::sync::Arc;

use http::header::HeaderValue;
use http::{StatusCode, Uri};

pub use custom_errors::CustomErrors;
pub use redirect::Redirect;

use crate::settings::ListenerOverrides;

/// The path ACME HTTP-01 challenges use; never redirected to HTTPS.
const ACME_CHALLENGE: &str = "/.well-known/acme-challenge";

/// Per-route policy, from the Ingress's annotations and the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `ssl-redirect` (default true): plain HTTP requests for a host with a
    /// TLS section are redirected to HTTPS.
    pub ssl_redirect: bool,
    /// `force-ssl-redirect` (default false): redirect even without TLS.
    pub force_ssl_redirect: bool,
    /// `preserve-trailing-slash` (default false): keep a trailing `/` in
    /// the redirect.
    pub preserve_trailing_slash: bool,
    /// `enable-access-log` (default true): write access log lines for this
    /// route's requests.
    pub access_log: bool,
    /// `permanent-redirect` / `temporal-redirect`: answer every request of
    /// the route with a redirect instead of proxying.
    pub redirect: Option<Arc<Redirect>>,
    /// `upstream-vhost`: the Host header sent upstream.
    pub upstream_vhost: Option<HeaderValue>,
    /// `x-forwarded-prefix` (sent only with `rewrite-target`, as ingress-nginx).
    pub x_forwarded_prefix: Option<HeaderValue>,
    /// `custom-http-errors`: upstream answers with these codes are replaced
    /// by the route's default backend's.
    pub custom_errors: Option<Arc<CustomErrors>>,
    /// `proxy-redirect-*`, `proxy-cookie-*`, `custom-headers`,
    /// `limit-rate*`: what happens to the upstream's answer.
    pub response: Option<Arc<response::ResponseRules>>,
    /// `mirror-target`: where copies of the requests go.
    pub mirror: Option<Arc<crate::mirror::Mirror>>,
    /// `enable-opentelemetry` and its trust and span name settings.
    pub tracing: crate::tracing_config::RouteTracing,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            ssl_redirect: true,
            force_ssl_redirect: false,
            preserve_trailing_slash: false,
            access_log: true,
            redirect: None,
            upstream_vhost: None,
            x_forwarded_prefix: None,
            custom_errors: None,
            response: None,
            mirror: None,
            tracing: crate::tracing_config::RouteTracing::default(),
        }
    }
}

impl Policy {
    /// The HTTPS redirect for a plain-HTTP request, if one is due: its
    /// `Location` is `https://<host><request target>` without a port (as
    /// ingress-nginx, whose HTTPS port is 443 in the pod), with a trailing
    /// `/` stripped unless `preserve_trailing_slash`.
    pub fn https_redirect(&self, host_has_tls: bool, host: &str, uri: &Uri) -> Option<HeaderValue> {
        let due = self.force_ssl_redirect || (self.ssl_redirect && host_has_tls);
        if !due || uri.path().starts_with(ACME_CHALLENGE) {
            return None;
        }
        let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
        let target = match target.strip_suffix('/') {
            Some(stripped) if !self.preserve_trailing_slash && !stripped.is_empty() => stripped,
            _ => target,
        };
        HeaderValue::from_str(&format!("https://{host}{target}")).ok()
    }
}

/// Gateway-wide settings that travel with the routing table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Globals {
    /// `http-redirect-code` (308): the status of HTTPS redirects.
    pub redirect_code: StatusCode,
    /// The `Strict-Transport-Security` value sent on HTTPS responses for
    /// hosts with TLS (`hsts`, `hsts-max-age`, `hsts-include-subdomains`,
    /// `hsts-preload`); `None` when HSTS is off.
    pub hsts: Option<HeaderValue>,
    /// `block-cidrs`: clients refused with 403 before anything else, as
    /// nginx's `deny` at the `http` level.
    pub block: Vec<access::Cidr>,
    /// `block-user-agents`: `User-Agent`s refused with 403 before routing.
    pub block_user_agents: Option<block::Blocklist>,
    /// `block-referers`: `Referer`s refused with 403 before routing.
    pub block_referers: Option<block::Blocklist>,
    /// Whose forwarded headers count, and so who the client is.
    pub forwarded: forwarded::Forwarded,
    /// Headers added, removed or passed beyond ingress-nginx's fixed set.
    pub headers: header_rules::HeaderRules,
    /// Client-connection limits (`keep-alive`, `client-header-timeout`,
    /// `use-http2`, ...), applied to each new connection.
    pub listener: ListenerOverrides,
    /// The access log's format, target and filters.
    pub access_log: crate::log_format::AccessLogConfig,
    /// TCP/UDP services' timeouts and retries (`proxy-stream-*`).
    pub streams: crate::stream_services::StreamSettings,
    /// `use-gzip`, `enable-brotli` and their settings; `None`: off.
    pub compression: Option<Arc<crate::compress::Compression>>,
    /// `ssl-reject-handshake`: refuse TLS handshakes whose server name is
    /// no host of the table (and those without one).
    pub reject_unknown_sni: bool,
    /// `enable-ocsp`: staple each certificate's OCSP response to its
    /// handshakes (see [`crate::tls::ocsp`]).
    pub ocsp_stapling: bool,
    /// The OpenTelemetry collector, sampler and batching; `None`: no
    /// collector (`otlp-collector-host` unset), nothing is traced.
    pub tracing: Option<Arc<crate::tracing_config::TracingConfig>>,
}

impl Default for Globals {
    fn default() -> Self {
        Self {
            redirect_code: StatusCode::PERMANENT_REDIRECT,
            hsts: Some(HeaderValue::from_static(
                "max-age=31536000; includeSubDomains",
            )),
            block: Vec::new(),
            block_user_agents: None,
            block_referers: None,
            forwarded: forwarded::Forwarded::default(),
            headers: header_rules::HeaderRules::default(),
            listener: ListenerOverrides::default(),
            access_log: crate::log_format::AccessLogConfig::default(),
            streams: crate::stream_services::StreamSettings::default(),
            compression: None,
            reject_unknown_sni: false,
            ocsp_stapling: false,
            tracing: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(policy: &Policy, tls: bool, target: &str) -> Option<String> {
        let uri: Uri = target.parse().unwrap();
        policy
            .https_redirect(tls, "api.example.com", &uri)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn redirects_like_ingress_nginx() {
        let default = Policy::default();
        assert_eq!(
            redirect(&default, true, "/a?b=1").as_deref(),
            Some("https://api.example.com/a?b=1")
        );
        assert_eq!(
            redirect(&default, true, "/a/").as_deref(),
            Some("https://api.example.com/a")
        );
        assert_eq!(
            redirect(&default, true, "/").as_deref(),
            Some("https://api.example.com/")
        );
        assert_eq!(
            redirect(&default, false, "/a"),
            None,
            "no TLS section, no redirect"
        );
        assert_eq!(
            redirect(&default, true, "/.well-known/acme-challenge/token"),
            None
        );
        let forced = Policy {
            force_ssl_redirect: true,
            ..Policy::default()
        };
        assert!(redirect(&forced, false, "/a").is_some());
        let off = Policy {
            ssl_redirect: false,
            ..Policy::default()
        };
        assert_eq!(redirect(&off, true, "/a"), None);
        let keep = Policy {
            preserve_trailing_slash: true,
            ..Policy::default()
        };
        assert_eq!(
            redirect(&keep, true, "/a/").as_deref(),
            Some("https://api.example.com/a/")
        );
    }
}
