//! The first phase of a request: refuse what is malformed or ambiguous
//! before anything is routed or forwarded, and work out the normalised host
//! and path that routing matches on.
//!
//! hyper has already parsed the head and rejected much (bad syntax, differing
//! Content-Lengths, oversize heads). What it lets through and a proxy must
//! not is refused here: transfer codings other than a single `chunked`,
//! a repeated Transfer-Encoding, a missing or repeated
//! Host on HTTP/1.1, a path that climbs above the root.

use std::borrow::Cow;

use http::header::{HOST, HeaderValue, TRANSFER_ENCODING};
use http::{Method, Request, Version};

use super::error::ProxyError;
use crate::host::normalize_request_host;
use crate::path::normalize_path;

/// Where a request is going, normalised for the route lookup.
#[derive(Debug)]
pub(crate) struct Target<'r> {
    /// The lower-case host without port; `None` for an HTTP/1.0 request
    /// without Host, which goes to the default server.
    pub(crate) host: Option<Cow<'r, str>>,
    /// The normalised path (see [`crate::path::normalize_path`]).
    pub(crate) path: Cow<'r, [u8]>,
    /// The authority of an absolute-form request target, which replaces the
    /// Host header upstream (RFC 9112 §3.2.2).
    pub(crate) authority: Option<HeaderValue>,
}

/// Checks a request and extracts its target. `max_line_bytes` is one
/// `large-client-header-buffers` buffer: a longer request target is 414, a
/// longer header line (`name: value`) 431; `max_head_bytes` all of them:
/// a longer head is 431. (The listener reads heads somewhat larger than
/// that, so that a long target is told apart from many headers.)
pub(crate) fn inspect<B>(
    req: &Request<B>,
    max_line_bytes: usize,
    max_head_bytes: usize,
) -> Result<Target<'_>, ProxyError> {
    check_framing(req)?;
    if req.method() == Method::CONNECT {
        return Err(ProxyError::MethodNotAllowed);
    }
    let uri = req.uri();
    let target_len = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > max_line_bytes {
        return Err(ProxyError::UriTooLong);
    }
    let mut head = target_len;
    for (name, value) in req.headers() {
        let line = name.as_str().len() + value.len() + 2;
        head += line;
        if line > max_line_bytes || head > max_head_bytes {
            return Err(ProxyError::HeaderTooLarge);
        }
    }

    let (host, authority) = match uri.authority() {
        Some(authority) => {
            let value = HeaderValue::from_str(authority.as_str())
                .map_err(|_| ProxyError::BadRequest("invalid authority"))?;
            (Some(authority.as_str()), Some(value))
        }
        None => (host_header(req)?, None),
    };
    let host = host
        .map(normalize_request_host)
        .transpose()
        .map_err(|_| ProxyError::BadRequest("invalid host"))?;
    let path = normalize_path(uri.path().as_bytes())
        .map_err(|_| ProxyError::BadRequest("invalid path"))?;
    Ok(Target {
        host,
        path,
        authority,
    })
}

/// Refuses message framing that two HTTP parsers could read differently.
/// (Transfer-Encoding together with Content-Length never gets here: hyper
/// drops the Content-Length, reads the body as chunked and closes the
/// connection after the response, as RFC 9112 §6.1 prescribes.)
fn check_framing<B>(req: &Request<B>) -> Result<(), ProxyError> {
    let headers = req.headers();
    let mut codings = headers.get_all(TRANSFER_ENCODING).iter();
    if let Some(coding) = codings.next() {
        if codings.next().is_some() {
            return Err(ProxyError::BadRequest("repeated Transfer-Encoding"));
        }
        if !coding
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"chunked")
        {
            return Err(ProxyError::NotImplemented);
        }
    }
    Ok(())
}

/// The Host header: required once on HTTP/1.1, optional on HTTP/1.0.
fn host_header<B>(req: &Request<B>) -> Result<Option<&str>, ProxyError> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => return Err(ProxyError::BadRequest("repeated Host")),
        (Some(host), None) => host,
        (None, _) if req.version() <= Version::HTTP_10 => return Ok(None),
        (None, _) => return Err(ProxyError::BadRequest("missing Host")),
    };
    host.to_str()
        .map(Some)
        .map_err(|_| ProxyError::BadRequest("invalid host"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn status(r: &Request<()>) -> u16 {
        match inspect(r, 8192, 32 * 1024) {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn extracts_host_and_path() {
        let r = req("/a//b/../c?q=1", &[("host", "API.example.com:30080")]);
        let t = inspect(&r, 8192, 32 * 1024).unwrap();
        assert_eq!(t.host.as_deref(), Some("api.example.com"));
        assert_eq!(&*t.path, b"/a/c");
        assert!(t.authority.is_none());
    }

    #[test]
    fn absolute_form_authority_wins() {
        let r = req("http://real.example/x", &[("host", "other.example")]);
        let t = inspect(&r, 8192, 32 * 1024).unwrap();
        assert_eq!(t.host.as_deref(), Some("real.example"));
        assert_eq!(t.authority.unwrap(), "real.example");
    }

    #[test]
    fn refuses_ambiguous_framing() {
        let h = [("host", "x")];
        assert_eq!(status(&req("/", &h)), 200);
        let te = |v| req("/", &[("host", "x"), ("transfer-encoding", v)]);
        assert_eq!(status(&te("chunked")), 200);
        assert_eq!(status(&te("Chunked ")), 200);
        assert_eq!(status(&te("gzip, chunked")), 501);
        assert_eq!(status(&te("chunked, chunked")), 501);
        assert_eq!(status(&te("identity")), 501);
        let twice = req(
            "/",
            &[
                ("host", "x"),
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "chunked"),
            ],
        );
        assert_eq!(status(&twice), 400);
    }

    #[test]
    fn refuses_bad_hosts_and_paths() {
        assert_eq!(status(&req("/", &[])), 400);
        assert_eq!(status(&req("/", &[("host", "a"), ("host", "b")])), 400);
        assert_eq!(status(&req("/", &[("host", "a/b")])), 400);
        assert_eq!(status(&req("/..", &[("host", "a")])), 400);
        assert_eq!(status(&req("/%zz", &[("host", "a")])), 400);
        let long = format!("/{}", "a".repeat(9000));
        assert_eq!(status(&req(&long, &[("host", "a")])), 414);
        let at_limit = "v".repeat(8192 - "x-big: ".len());
        assert_eq!(
            status(&req("/", &[("host", "a"), ("x-big", &at_limit)])),
            200
        );
        let over = format!("{at_limit}v");
        assert_eq!(status(&req("/", &[("host", "a"), ("x-big", &over)])), 431);
        let mut http10 = req("/", &[]);
        *http10.version_mut() = Version::HTTP_10;
        assert!(inspect(&http10, 8192, 32 * 1024).unwrap().host.is_none());
        let mut connect = req("/", &[("host", "a")]);
        *connect.method_mut() = Method::CONNECT;
        assert_eq!(status(&connect), 405);
    }
}
