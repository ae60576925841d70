//! `RequestRedirect`: answer with a redirect built from the request.
//!
//! The `Location` is `scheme://host[:port]path[?query]`, each part the
//! filter's when it sets one, else the request's (spec,
//! `HTTPRequestRedirectFilter`):
//! - scheme: the filter's, else the listener's;
//! - host: the filter's hostname, else the request's host without its port;
//! - port: the filter's; else the well-known port of the filter's scheme
//!   (80, 443) when it sets one; else the port of the Gateway listener
//!   the route is attached to. It is left out when it is the scheme's
//!   well-known port;
//! - path: the filter's modifier applied to the normalised path, else the
//!   path as the client sent it; the query string is kept.

use http::StatusCode;
use http::header::HeaderValue;

use super::rewrite::PathModifier;
use crate::scheme::Scheme;

/// A compiled `RequestRedirect` filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRedirect {
    /// `scheme`.
    pub scheme: Option<Scheme>,
    /// `hostname`.
    pub hostname: Option<Box<str>>,
    /// `path`.
    pub path: Option<PathModifier>,
    /// `port`.
    pub port: Option<u16>,
    /// `statusCode` (302 by default).
    pub status: StatusCode,
    /// The port of the Gateway listener the route is attached to.
    pub listener_port: u16,
}

/// What a redirect reads from the request.
#[derive(Clone, Copy, Debug)]
pub struct RedirectRequest<'r> {
    /// The listener's scheme.
    pub scheme: Scheme,
    /// The request's host, normalised (no port).
    pub host: &'r str,
    /// The path as the client sent it.
    pub raw_path: &'r str,
    /// The normalised path (the one the route matched).
    pub normalised: &'r [u8],
    /// The query string, without `?`.
    pub query: Option<&'r str>,
}

impl RequestRedirect {
    /// The `Location` for a request; `None` if it would not be a valid
    /// header value (a host the request sent that cannot be echoed).
    pub fn location(&self, req: &RedirectRequest<'_>) -> Option<HeaderValue> {
        let scheme = self.scheme.unwrap_or(req.scheme);
        let port = match (self.port, self.scheme) {
            (Some(port), _) => port,
            (None, Some(scheme)) => well_known(scheme),
            (None, None) => self.listener_port,
        };
        let host = self.hostname.as_deref().unwrap_or(req.host);
        let mut location = format!("{}://{host}", scheme.as_str());
        if port != well_known(scheme) {
            location.push(':');
            location.push_str(&port.to_string());
        }
        match &self.path {
            Some(modifier) => location.push_str(&modifier.path(req.normalised)),
            None => location.push_str(req.raw_path),
        }
        if let Some(query) = req.query {
            location.push('?');
            location.push_str(query);
        }
        HeaderValue::from_str(&location).ok()
    }
}

fn well_known(scheme: Scheme) -> u16 {
    match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect() -> RequestRedirect {
        RequestRedirect {
            scheme: None,
            hostname: None,
            path: None,
            port: None,
            status: StatusCode::FOUND,
            listener_port: 80,
        }
    }

    fn req<'r>(raw: &'r str, query: Option<&'r str>) -> RedirectRequest<'r> {
        RedirectRequest {
            scheme: Scheme::Http,
            host: "example.org",
            raw_path: raw,
            normalised: raw.as_bytes(),
            query,
        }
    }

    fn at(r: &RequestRedirect, path: &str, query: Option<&str>) -> String {
        r.location(&req(path, query))
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn defaults_keep_the_request() {
        assert_eq!(
            at(&redirect(), "/a/b", Some("x=1")),
            "http://example.org/a/b?x=1"
        );
        let on_8080 = RequestRedirect {
            listener_port: 8080,
            ..redirect()
        };
        assert_eq!(at(&on_8080, "/", None), "http://example.org:8080/");
    }

    #[test]
    fn scheme_port_and_host_rules() {
        let https = RequestRedirect {
            scheme: Some(Scheme::Https),
            listener_port: 8080,
            ..redirect()
        };
        assert_eq!(
            at(&https, "/", None),
            "https://example.org/",
            "443 left out"
        );
        let https_8443 = RequestRedirect {
            port: Some(8443),
            ..https
        };
        assert_eq!(at(&https_8443, "/", None), "https://example.org:8443/");
        let http_port_443 = RequestRedirect {
            port: Some(443),
            ..redirect()
        };
        assert_eq!(at(&http_port_443, "/", None), "http://example.org:443/");
        let host = RequestRedirect {
            hostname: Some("other.example".into()),
            ..redirect()
        };
        assert_eq!(at(&host, "/p", None), "http://other.example/p");
    }

    #[test]
    fn path_modifiers() {
        let full = RequestRedirect {
            path: Some(PathModifier::Full("/new".into())),
            ..redirect()
        };
        assert_eq!(at(&full, "/old/x", Some("q")), "http://example.org/new?q");
        let prefix = RequestRedirect {
            path: Some(PathModifier::Prefix {
                matched: "/old".into(),
                replacement: "/new".into(),
            }),
            ..redirect()
        };
        assert_eq!(at(&prefix, "/old/x", None), "http://example.org/new/x");
    }
}
