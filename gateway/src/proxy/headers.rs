//! Header rewriting in both directions, as ingress-nginx's generated
//! location block does it: hop-by-hop headers removed, `X-Forwarded-*`
//! set from the connection (client-sent values count only from trusted
//! peers with `use-forwarded-headers`, see [`crate::policy::forwarded`]),
//! a request id passed through or generated, and the ConfigMap's header
//! rules ([`crate::policy::header_rules`]).

use std::net::IpAddr;
use std::sync::LazyLock;

use http::Uri;
use http::header::{
    CONNECTION, CONTENT_LENGTH, EXPECT, HOST, HeaderMap, HeaderName, HeaderValue, SERVER,
};

use super::ConnInfo;
use crate::header_names::{PROXY, is_hop_by_hop};
use crate::policy::Globals;
use crate::policy::forwarded::{Client, full_forwarded_for};
use crate::policy::header_rules::{HeaderRules, set_all};
use crate::scheme::Scheme;
use crate::telemetry::RequestSpan;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_ORIGINAL_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-original-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_ORIGINAL_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-original-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_SCHEME: HeaderName = HeaderName::from_static("x-forwarded-scheme");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
/// The request id header, passed through or generated.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_PAD: HeaderName = HeaderName::from_static("x-pad");

/// Removes the hop-by-hop headers, the headers the `Connection` header
/// nominates, and any header `drop_also` selects, in one pass over the names.
fn strip(headers: &mut HeaderMap, drop_also: impl Fn(&HeaderName) -> bool) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        if is_hop_by_hop(name) || drop_also(name) {
            doomed.push(name.clone());
        }
    }
    if doomed.is_empty() {
        return;
    }
    for value in headers.get_all(CONNECTION) {
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',') {
            if let Ok(name) = HeaderName::from_bytes(token.trim().as_bytes()) {
                // A peer may not strip the fields that frame and route the
                // message by nominating them.
                if name != HOST && name != CONTENT_LENGTH {
                    doomed.push(name);
                }
            }
        }
    }
    for name in &doomed {
        headers.remove(name);
    }
}

/// What the upstream request's headers are made from, besides the
/// client's own: the connection, the client resolved from it, and the
/// gateway-wide header settings.
pub(crate) struct Upstream<'a> {
    pub(crate) conn: &'a ConnInfo,
    pub(crate) client: &'a Client,
    pub(crate) globals: &'a Globals,
}

/// Rewrites the client's request headers for the upstream, in place, as
/// ingress-nginx's location block: `host` replaces the Host header when
/// the request named its authority in the request line (absolute form);
/// `request_id` is set when generated; `request_uri` is the client's
/// request target (for `X-Original-URI`).
pub(crate) fn to_upstream(
    headers: &mut HeaderMap,
    from: &Upstream<'_>,
    host: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
    request_uri: &Uri,
) {
    let rules = &from.globals.headers;
    let forwarded = &from.globals.forwarded;
    // ingress-nginx drops header names with underscores unless
    // `enable-underscores-in-headers`, so that `X_Auth_User` cannot pose
    // as `X-Auth-User` behind a CGI-style backend.
    let underscores = rules.underscores;
    strip(headers, |name| {
        name == PROXY || name == EXPECT || (!underscores && name.as_str().contains('_'))
    });
    if let Some(host) = host {
        headers.insert(HOST, host);
    }
    let client = from.client;
    let listener = &from.conn.listener;
    let trusted =
        |headers: &HeaderMap, name: &HeaderName| trusted_value(client, headers, name).cloned();
    let proto = trusted(headers, &X_FORWARDED_PROTO).unwrap_or_else(|| listener.scheme.clone());
    let port =
        trusted(headers, &X_FORWARDED_PORT).unwrap_or_else(|| from.conn.forwarded_port().clone());
    let original_host = headers.remove(&X_FORWARDED_HOST);
    let best_host = original_host
        .as_ref()
        .filter(|v| client.trust_forwarded && !v.is_empty())
        .cloned()
        .or_else(|| headers.get(HOST).cloned());

    let client_ip = if client.is_peer() {
        from.conn.client_ip.clone()
    } else {
        ip_value(client.ip)
    };
    let forwarded_for = computed_forwarded_for(from.globals, from.conn, headers);
    // `X-Original-Forwarded-For`: the client's forwarded-for header.
    let original_for = if forwarded.forwarded_for_header == X_FORWARDED_FOR {
        headers.remove(&X_FORWARDED_FOR)
    } else {
        headers.remove(&X_FORWARDED_FOR);
        headers.get(&forwarded.forwarded_for_header).cloned()
    };
    if let Some(original) = original_for.filter(|v| !v.is_empty()) {
        headers.insert(X_ORIGINAL_FORWARDED_FOR.clone(), original);
    }
    headers.insert(
        X_FORWARDED_FOR.clone(),
        forwarded_for.unwrap_or_else(|| client_ip.clone()),
    );
    headers.insert(X_REAL_IP.clone(), client_ip);
    if let Some(original) = original_host {
        headers.insert(X_ORIGINAL_FORWARDED_HOST.clone(), original);
    }
    if let Some(host) = best_host {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    headers.insert(X_FORWARDED_PORT.clone(), port);
    headers.insert(X_FORWARDED_PROTO.clone(), proto.clone());
    headers.insert(X_FORWARDED_SCHEME.clone(), proto.clone());
    headers.insert(X_SCHEME.clone(), proto);
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID.clone(), id);
    }
    if rules.original_uri {
        let target = request_uri.path_and_query().map_or("/", |pq| pq.as_str());
        if let Ok(value) = HeaderValue::from_str(target) {
            headers.insert(X_ORIGINAL_URI.clone(), value);
        }
    }
    set_all(headers, &rules.to_upstream);
}

/// Puts a traced request's span context on its upstream request
/// (`traceparent`, and the trusted parent's `tracestate` or none); an
/// untraced route's request keeps the client's headers as they are.
pub(crate) fn trace_context(headers: &mut HeaderMap, span: Option<&mut RequestSpan>) {
    if let Some(span) = span {
        span.inject(headers);
    }
}

/// ingress-nginx's `$full_x_forwarded_for` (the client's chain, then the
/// peer), sent as `X-Forwarded-For` upstream and to external auth when
/// both `use-forwarded-headers` and `compute-full-forwarded-for` are on;
/// `None` otherwise (the client address is sent).
pub(crate) fn computed_forwarded_for(
    globals: &Globals,
    conn: &ConnInfo,
    headers: &HeaderMap,
) -> Option<HeaderValue> {
    let forwarded = &globals.forwarded;
    (forwarded.use_forwarded_headers && forwarded.compute_full_forwarded_for)
        .then(|| full_forwarded_for(&headers.get_all(&X_FORWARDED_FOR), &conn.client_ip))
}

/// An address as a header value (formatted only when the client is not
/// the connection's peer).
fn ip_value(ip: IpAddr) -> HeaderValue {
    HeaderValue::from_str(&ip.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Rewrites an upstream response's headers for the client, in place:
/// hop-by-hop headers go, and so do the headers nginx hides by default
/// (`Server` unless `allow-backend-server-header`, `X-Pad`, `X-Accel-*`)
/// and those `hide-headers` names.
pub(crate) fn to_client(headers: &mut HeaderMap, rules: &HeaderRules) {
    let server = !rules.backend_server_header;
    strip(headers, |name| {
        (server && name == SERVER)
            || name == X_PAD
            || name.as_str().starts_with("x-accel-")
            || rules.hide.contains(name)
    });
}

/// The client's non-empty header `name` if its forwarded headers count
/// (nothing is looked up otherwise).
fn trusted_value<'h>(
    client: &Client,
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Option<&'h HeaderValue> {
    if !client.trust_forwarded {
        return None;
    }
    headers.get(name).filter(|v| !v.is_empty())
}

/// Whether the client's request, seen from the gateway, was plain HTTP
/// (`$pass_access_scheme` is `http`): the listener's scheme, or the
/// trusted `X-Forwarded-Proto`.
pub(crate) fn plain_http(client: &Client, listener: Scheme, headers: &HeaderMap) -> bool {
    match trusted_value(client, headers, &X_FORWARDED_PROTO) {
        Some(proto) => proto == "http",
        None => listener == Scheme::Http,
    }
}

/// The host an HTTPS redirect names: the trusted `X-Forwarded-Host`
/// without its port (`$best_http_host`), else the request's host.
pub(crate) fn redirect_host<'h>(client: &Client, headers: &'h HeaderMap, host: &'h str) -> &'h str {
    trusted_value(client, headers, &X_FORWARDED_HOST)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(':').next())
        .filter(|v| !v.is_empty())
        .unwrap_or(host)
}

/// A generated request id: 32 lower-case hex characters, like nginx's
/// `$request_id`, from a fast thread-local generator (not a secret).
pub(crate) fn new_request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut n = fastrand::u128(..);
    let mut buf = [0u8; 32];
    for b in buf.iter_mut() {
        *b = HEX[(n & 0xf) as usize];
        n >>= 4;
    }
    HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// A new `X-Request-ID` unless the client sent a usable one (nginx's
/// `$request_id` when ingress-nginx's `$req_id` is empty), or none when
/// `generate-request-id` is off (the client's passes through as it is).
pub(super) fn request_id(headers: &http::HeaderMap, generate: bool) -> Option<HeaderValue> {
    match headers.get(&X_REQUEST_ID) {
        Some(id) if !id.is_empty() && id.len() <= 256 => None,
        _ if generate => Some(new_request_id()),
        _ => None,
    }
}

/// The header work of one proxied request, for the criterion benchmarks in
/// `benches/` only (the proxy itself calls the parts): a request id made
/// when the client sent none, the client's request headers rewritten for the
/// upstream, and the upstream's response headers cleaned for the client.
#[doc(hidden)]
pub fn bench_header_work(conn: &ConnInfo, request: &mut HeaderMap, response: &mut HeaderMap) {
    static DEFAULTS: LazyLock<Globals> = LazyLock::new(Globals::default);
    let globals = &*DEFAULTS;
    let client = globals.forwarded.client(conn.peer.ip(), request);
    let request_id = request_id(request, globals.headers.generate_request_id);
    let from = Upstream {
        conn,
        client: &client,
        globals,
    };
    to_upstream(request, &from, None, request_id, &Uri::from_static("/"));
    to_client(response, &globals.headers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::access::parse_cidrs;
    use crate::policy::header_rules::header_pair;
    use crate::proxy::ListenerInfo;
    use crate::settings::ListenerSettings;
    use std::net::SocketAddr;
    use std::sync::Arc;

    /// `to_upstream` for a request from `conn()` under `globals`.
    fn upstream(
        h: &mut HeaderMap,
        globals: &Globals,
        host: Option<HeaderValue>,
        request_id: Option<HeaderValue>,
    ) {
        let conn = conn();
        let client = globals.forwarded.client(conn.peer.ip(), h);
        let from = Upstream {
            conn: &conn,
            client: &client,
            globals,
        };
        to_upstream(h, &from, host, request_id, &Uri::from_static("/a?b=1"));
    }

    fn get(h: &HeaderMap, k: &str) -> Option<String> {
        h.get(k).map(|v| v.to_str().unwrap().to_owned())
    }

    /// Globals trusting forwarded headers from 10.0.0.0/8.
    fn trusting() -> Globals {
        let mut g = Globals::default();
        g.forwarded.use_forwarded_headers = true;
        g.forwarded.trusted = parse_cidrs("10.0.0.0/8").unwrap();
        g
    }

    fn conn() -> ConnInfo {
        let listener = Arc::new(ListenerInfo::new(&ListenerSettings::new(Scheme::Http)));
        ConnInfo::new(SocketAddr::from(([10, 1, 2, 3], 5555)), listener, false)
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn upstream_headers_match_ingress_nginx() {
        let mut h = map(&[
            ("host", "api.example.com"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-host", "evil"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
            ("connection", "keep-alive, x-secret, host, content-length"),
            ("content-length", "0"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy", "http://evil"),
            ("x_auth_user", "admin"),
            ("expect", "100-continue"),
            ("x-keep", "yes"),
        ]);
        upstream(
            &mut h,
            &Globals::default(),
            None,
            Some(HeaderValue::from_static("abc")),
        );
        let get = |k: &str| get(&h, k);
        assert_eq!(get("host").as_deref(), Some("api.example.com"));
        assert_eq!(get("x-forwarded-for").as_deref(), Some("10.1.2.3"));
        assert_eq!(get("x-original-forwarded-for").as_deref(), Some("6.6.6.6"));
        assert_eq!(get("x-real-ip").as_deref(), Some("10.1.2.3"));
        assert_eq!(get("x-forwarded-host").as_deref(), Some("api.example.com"));
        assert_eq!(get("x-original-forwarded-host").as_deref(), Some("evil"));
        assert_eq!(get("x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(get("x-forwarded-scheme").as_deref(), Some("http"));
        assert_eq!(get("x-scheme").as_deref(), Some("http"));
        assert_eq!(get("x-forwarded-port").as_deref(), Some("80"));
        assert_eq!(get("x-request-id").as_deref(), Some("abc"));
        assert_eq!(get("x-keep").as_deref(), Some("yes"));
        assert_eq!(get("content-length").as_deref(), Some("0"));
        for gone in [
            "connection",
            "x-secret",
            "keep-alive",
            "te",
            "upgrade",
            "proxy",
            "x_auth_user",
            "expect",
        ] {
            assert!(h.get(gone).is_none(), "{gone} was forwarded");
        }
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert!(h.get("x-original-uri").is_none());
    }

    #[test]
    fn trusted_forwarded_headers_pass_through() {
        let incoming = [
            ("host", "internal:30080"),
            ("x-forwarded-for", "203.0.113.7, 10.9.9.9"),
            ("x-forwarded-host", "public.example"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-port", "443"),
        ];
        let mut h = map(&incoming);
        upstream(&mut h, &trusting(), None, None);
        assert_eq!(get(&h, "x-real-ip").as_deref(), Some("203.0.113.7"));
        assert_eq!(get(&h, "x-forwarded-for").as_deref(), Some("203.0.113.7"));
        assert_eq!(
            get(&h, "x-original-forwarded-for").as_deref(),
            Some("203.0.113.7, 10.9.9.9")
        );
        assert_eq!(
            get(&h, "x-forwarded-host").as_deref(),
            Some("public.example")
        );
        assert_eq!(
            get(&h, "x-original-forwarded-host").as_deref(),
            Some("public.example")
        );
        assert_eq!(get(&h, "x-forwarded-proto").as_deref(), Some("https"));
        assert_eq!(get(&h, "x-forwarded-scheme").as_deref(), Some("https"));
        assert_eq!(get(&h, "x-scheme").as_deref(), Some("https"));
        assert_eq!(get(&h, "x-forwarded-port").as_deref(), Some("443"));

        let mut full = trusting();
        full.forwarded.compute_full_forwarded_for = true;
        let mut h = map(&incoming);
        upstream(&mut h, &full, None, None);
        assert_eq!(
            get(&h, "x-forwarded-for").as_deref(),
            Some("203.0.113.7, 10.9.9.9, 10.1.2.3")
        );
        assert_eq!(get(&h, "x-real-ip").as_deref(), Some("203.0.113.7"));

        // Not trusted: the connection's view, as by default.
        let mut elsewhere = trusting();
        elsewhere.forwarded.trusted = parse_cidrs("192.168.0.0/16").unwrap();
        let mut h = map(&incoming);
        upstream(&mut h, &elsewhere, None, None);
        assert_eq!(get(&h, "x-real-ip").as_deref(), Some("10.1.2.3"));
        assert_eq!(
            get(&h, "x-forwarded-host").as_deref(),
            Some("internal:30080")
        );
        assert_eq!(get(&h, "x-forwarded-proto").as_deref(), Some("http"));
        assert_eq!(get(&h, "x-forwarded-port").as_deref(), Some("80"));
    }

    #[test]
    fn compute_full_needs_use_forwarded_headers() {
        let mut g = Globals::default();
        g.forwarded.compute_full_forwarded_for = true;
        let mut h = map(&[("host", "a"), ("x-forwarded-for", "1.1.1.1")]);
        upstream(&mut h, &g, None, None);
        assert_eq!(get(&h, "x-forwarded-for").as_deref(), Some("10.1.2.3"));
    }

    #[test]
    fn another_forwarded_for_header() {
        let mut g = Globals::default();
        g.forwarded.enable_real_ip = true;
        g.forwarded.forwarded_for_header = HeaderName::from_static("cf-connecting-ip");
        let mut h = map(&[
            ("host", "a"),
            ("x-forwarded-for", "6.6.6.6"),
            ("cf-connecting-ip", "198.51.100.4"),
            ("x-forwarded-proto", "https"),
        ]);
        upstream(&mut h, &g, None, None);
        assert_eq!(get(&h, "x-real-ip").as_deref(), Some("198.51.100.4"));
        assert_eq!(get(&h, "x-forwarded-for").as_deref(), Some("198.51.100.4"));
        assert_eq!(
            get(&h, "x-original-forwarded-for").as_deref(),
            Some("198.51.100.4")
        );
        assert_eq!(
            get(&h, "x-forwarded-proto").as_deref(),
            Some("http"),
            "enable-real-ip alone trusts only the address"
        );
    }

    #[test]
    fn header_rules_apply_upstream() {
        let mut g = Globals::default();
        g.headers.underscores = true;
        g.headers.original_uri = true;
        g.headers.to_upstream = vec![
            header_pair("X-Team", "models").unwrap(),
            header_pair("X-Real-IP", "fixed").unwrap(),
        ];
        let mut h = map(&[("host", "a"), ("x_auth_user", "u")]);
        upstream(&mut h, &g, None, None);
        assert_eq!(get(&h, "x_auth_user").as_deref(), Some("u"));
        assert_eq!(get(&h, "x-original-uri").as_deref(), Some("/a?b=1"));
        assert_eq!(get(&h, "x-team").as_deref(), Some("models"));
        assert_eq!(
            get(&h, "x-real-ip").as_deref(),
            Some("fixed"),
            "proxy-set-headers come last"
        );
    }

    #[test]
    fn response_rules() {
        let mut rules = HeaderRules {
            backend_server_header: true,
            hide: vec![HeaderName::from_static("x-powered-by")],
            ..HeaderRules::default()
        };
        let mut h = map(&[
            ("server", "gunicorn"),
            ("x-powered-by", "php"),
            ("x-ok", "1"),
        ]);
        to_client(&mut h, &rules);
        assert_eq!(get(&h, "server").as_deref(), Some("gunicorn"));
        assert!(h.get("x-powered-by").is_none());
        assert_eq!(get(&h, "x-ok").as_deref(), Some("1"));
        rules.backend_server_header = false;
        to_client(&mut h, &rules);
        assert!(h.get("server").is_none());
    }

    #[test]
    fn pass_access_scheme_and_redirect_host() {
        let g = trusting();
        let peer = "10.0.0.5".parse().unwrap();
        let h = map(&[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "pub.example:8443"),
        ]);
        let trusted = g.forwarded.client(peer, &h);
        assert!(!plain_http(&trusted, Scheme::Http, &h));
        assert_eq!(redirect_host(&trusted, &h, "internal"), "pub.example");
        let h2 = map(&[("x-forwarded-proto", "http")]);
        assert!(plain_http(&trusted, Scheme::Https, &h2));
        let untrusted = Globals::default().forwarded.client(peer, &h);
        assert!(plain_http(&untrusted, Scheme::Http, &h));
        assert!(!plain_http(&untrusted, Scheme::Https, &h));
        assert_eq!(redirect_host(&untrusted, &h, "internal"), "internal");
    }

    #[test]
    fn absolute_form_authority_replaces_host() {
        let mut h = map(&[("host", "other")]);
        upstream(
            &mut h,
            &Globals::default(),
            Some(HeaderValue::from_static("real.example")),
            None,
        );
        assert_eq!(h["host"], "real.example");
        assert_eq!(h["x-forwarded-host"], "real.example");
    }

    #[test]
    fn response_headers_hide_server_and_hop_by_hop() {
        let mut h = map(&[
            ("server", "gunicorn"),
            ("connection", "close, x-internal"),
            ("x-internal", "1"),
            ("transfer-encoding", "chunked"),
            ("x-accel-buffering", "no"),
            ("content-type", "text/event-stream"),
        ]);
        to_client(&mut h, &HeaderRules::default());
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["content-type"], "text/event-stream");
    }

    #[test]
    fn request_ids_are_32_hex_and_differ() {
        let a = new_request_id();
        let b = new_request_id();
        assert_eq!(a.len(), 32);
        assert!(a.to_str().unwrap().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
