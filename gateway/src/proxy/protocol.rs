//! The upstream protocol of a request (`backend-protocol`): the wire it
//! goes out on (HTTP/1.1 or HTTP/2, TCP or TLS), and the request shaped
//! for it: HTTP/2 requests carry their authority in the URI, gRPC ones
//! `te: trailers` (as nginx's `grpc_pass` sends), a WebSocket request its
//! `Upgrade` again, and with `proxy-http-version: 1.0` a request whose body
//! length is known goes out as HTTP/1.0 with `Connection: close` (HTTP/1.0
//! cannot carry a streamed body of unknown length, which nginx buffers
//! first; such a request stays HTTP/1.1).

use http::header::{CONNECTION, HOST, HeaderValue, TE};
use http::uri::{Authority, PathAndQuery, Uri};
use http::{Request, Version};
use http_body::Body;

use super::RequestBody;
use super::error::ProxyError;
use super::upgrade::ClientUpgrade;
use crate::scheme::Scheme;
use crate::settings::ProxySettings;
use crate::upstream::{ConnectError, Wire};
use crate::upstream_tls::UpstreamTls;

/// Picks the wire for `settings.protocol` (for a client that came in over
/// `scheme`) and shapes `req` for it. A client upgrade is kept only on
/// HTTP/1.1.
pub(crate) fn prepare(
    req: &mut Request<RequestBody>,
    upgrade: &mut Option<ClientUpgrade>,
    settings: &ProxySettings,
    scheme: Scheme,
) -> Result<Wire, ProxyError> {
    let protocol = settings.protocol;
    let tls = if protocol.uses_tls(scheme) {
        let tls = settings.upstream_tls.clone().or_else(UpstreamTls::insecure);
        Some(tls.ok_or_else(|| {
            ProxyError::Connect(ConnectError::Tls(std::io::Error::other(
                "no upstream TLS configuration",
            )))
        })?)
    } else {
        None
    };
    let http2 = protocol.is_http2();
    if http2 {
        *upgrade = None;
        to_http2(req, if tls.is_some() { "https" } else { "http" });
    } else if let Some(upgrade) = upgrade {
        let headers = req.headers_mut();
        headers.insert(http::header::UPGRADE, upgrade.protocol.clone());
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else if settings.http_10 && req.body().size_hint().exact().is_some() {
        *req.version_mut() = Version::HTTP_10;
        req.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(Wire { http2, tls })
}

/// An HTTP/2 request: the Host header becomes the URI's authority (the
/// `:authority` pseudo-header), and gRPC's `te: trailers` is sent.
fn to_http2(req: &mut Request<RequestBody>, scheme: &'static str) {
    let authority = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok());
    if let Some(authority) = authority {
        let path = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let absolute = Uri::builder()
            .scheme(scheme)
            .authority(authority)
            .path_and_query(path)
            .build();
        if let Ok(uri) = absolute {
            *req.uri_mut() = uri;
            req.headers_mut().remove(HOST);
        }
    }
    *req.version_mut() = Version::HTTP_2;
    req.headers_mut()
        .insert(TE, HeaderValue::from_static("trailers"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::BackendProtocol;

    fn request() -> Request<RequestBody> {
        Request::post("/pkg.Svc/Call?x=1")
            .header(HOST, "grpc.example:50051")
            .body(RequestBody::empty())
            .unwrap()
    }

    fn settings(protocol: BackendProtocol) -> ProxySettings {
        ProxySettings {
            protocol,
            ..ProxySettings::default()
        }
    }

    #[test]
    fn grpc_goes_out_as_h2c_with_authority_and_te() {
        let mut req = request();
        let wire = prepare(
            &mut req,
            &mut None,
            &settings(BackendProtocol::Grpc),
            Scheme::Https,
        )
        .unwrap();
        assert!(wire.http2 && wire.tls.is_none());
        assert_eq!(req.uri(), "http://grpc.example:50051/pkg.Svc/Call?x=1");
        assert_eq!(req.version(), Version::HTTP_2);
        assert_eq!(req.headers()[TE], "trailers");
        assert!(req.headers().get(HOST).is_none());
    }

    #[test]
    fn http_10_only_with_a_known_body_length() {
        let settings = ProxySettings {
            http_10: true,
            ..ProxySettings::default()
        };
        let mut req = request();
        prepare(&mut req, &mut None, &settings, Scheme::Http).unwrap();
        assert_eq!(req.version(), Version::HTTP_10);
        assert_eq!(req.headers()[CONNECTION], "close");
        let mut req = request();
        prepare(&mut req, &mut None, &ProxySettings::default(), Scheme::Http).unwrap();
        assert_eq!(req.version(), Version::HTTP_11);
        assert!(req.headers().get(CONNECTION).is_none());
    }

    #[test]
    fn tls_protocols_and_auto_http() {
        let mut req = request();
        let wire = prepare(
            &mut req,
            &mut None,
            &settings(BackendProtocol::Grpcs),
            Scheme::Http,
        )
        .unwrap();
        assert!(wire.http2 && wire.tls.is_some());
        assert!(req.uri().to_string().starts_with("https://"));
        let auto = settings(BackendProtocol::AutoHttp);
        let mut req = request();
        let plain = prepare(&mut req, &mut None, &auto, Scheme::Http).unwrap();
        assert!(!plain.http2 && plain.tls.is_none());
        assert_eq!(req.uri(), "/pkg.Svc/Call?x=1");
        let secure = prepare(&mut request(), &mut None, &auto, Scheme::Https).unwrap();
        assert!(!secure.http2 && secure.tls.is_some());
    }
}
