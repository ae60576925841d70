//! Header rewriting in both directions, as ingress-nginx's generated
//! location block does it: hop-by-hop headers removed, `X-Forwarded-*`
//! set from the connection (client-sent values are not trusted), a request
//! id passed through or generated.

use http::header::{
    CONNECTION, CONTENT_LENGTH, EXPECT, HOST, HeaderMap, HeaderName, HeaderValue, SERVER, TE,
    TRAILER, TRANSFER_ENCODING, UPGRADE,
};

use super::ConnInfo;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_ORIGINAL_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-original-forwarded-for");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_ORIGINAL_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-original-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_SCHEME: HeaderName = HeaderName::from_static("x-forwarded-scheme");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
/// The request id header, passed through or generated.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static PROXY: HeaderName = HeaderName::from_static("proxy");
static X_PAD: HeaderName = HeaderName::from_static("x-pad");

/// Headers that describe one hop and never cross the proxy.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == CONNECTION
        || name == TRANSFER_ENCODING
        || name == UPGRADE
        || name == TE
        || name == TRAILER
        || name == KEEP_ALIVE
        || name == PROXY_CONNECTION
}

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

/// Rewrites the client's request headers for the upstream, in place.
/// `host` replaces the Host header when the request named its authority in
/// the request line (absolute form); `request_id` is set when generated.
pub(crate) fn to_upstream(
    headers: &mut HeaderMap,
    conn: &ConnInfo,
    host: Option<HeaderValue>,
    request_id: Option<HeaderValue>,
) {
    // ingress-nginx drops header names with underscores
    // (`enable-underscores-in-headers: false`), so that `X_Auth_User`
    // cannot pose as `X-Auth-User` behind a CGI-style backend.
    strip(headers, |name| {
        name == PROXY || name == EXPECT || name.as_str().contains('_')
    });
    if let Some(host) = host {
        headers.insert(HOST, host);
    }
    let host = headers.get(HOST).cloned();

    if let Some(original) = headers.remove(&X_FORWARDED_FOR) {
        headers.insert(X_ORIGINAL_FORWARDED_FOR.clone(), original);
    }
    headers.insert(X_FORWARDED_FOR.clone(), conn.client_ip.clone());
    headers.insert(X_REAL_IP.clone(), conn.client_ip.clone());
    if let Some(original) = headers.remove(&X_FORWARDED_HOST) {
        headers.insert(X_ORIGINAL_FORWARDED_HOST.clone(), original);
    }
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    let listener = &conn.listener;
    headers.insert(X_FORWARDED_PORT.clone(), listener.forwarded_port.clone());
    headers.insert(X_FORWARDED_PROTO.clone(), listener.scheme.clone());
    headers.insert(X_FORWARDED_SCHEME.clone(), listener.scheme.clone());
    headers.insert(X_SCHEME.clone(), listener.scheme.clone());
    if let Some(id) = request_id {
        headers.insert(X_REQUEST_ID.clone(), id);
    }
}

/// Rewrites an upstream response's headers for the client, in place:
/// hop-by-hop headers go, and so do the headers nginx hides by default
/// (`Server`, `X-Pad`, `X-Accel-*`).
pub(crate) fn to_client(headers: &mut HeaderMap) {
    strip(headers, |name| {
        name == SERVER || name == X_PAD || name.as_str().starts_with("x-accel-")
    });
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

/// The header work of one proxied request, for the criterion benchmarks in
/// `benches/` only (the proxy itself calls the parts): a request id made
/// when the client sent none, the client's request headers rewritten for the
/// upstream, and the upstream's response headers cleaned for the client.
#[doc(hidden)]
pub fn bench_header_work(conn: &ConnInfo, request: &mut HeaderMap, response: &mut HeaderMap) {
    let request_id = match request.get(&X_REQUEST_ID) {
        Some(id) if !id.is_empty() && id.len() <= 256 => None,
        _ => Some(new_request_id()),
    };
    to_upstream(request, conn, None, request_id);
    to_client(response);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ListenerInfo;
    use crate::settings::{ListenerSettings, Scheme};
    use std::net::SocketAddr;
    use std::sync::Arc;

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
        to_upstream(&mut h, &conn(), None, Some(HeaderValue::from_static("abc")));
        let get = |k: &str| h.get(k).map(|v| v.to_str().unwrap().to_owned());
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
    }

    #[test]
    fn absolute_form_authority_replaces_host() {
        let mut h = map(&[("host", "other")]);
        to_upstream(
            &mut h,
            &conn(),
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
        to_client(&mut h);
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
