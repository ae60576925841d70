//! The Gateway API `CORS` filter (`HTTPCORSFilter`), which differs from
//! ingress-nginx's `enable-cors` ([`crate::policy::cors`]) in its origin
//! wildcards, its preflight test and its defaults:
//!
//! - an origin entry is `*` (every origin) or `scheme://host[:port]`
//!   whose host may start with `*`, matching any number of labels (`*` can
//!   stand for `a.b`); ports default to 80 and 443 by scheme, and scheme,
//!   host and port must all match (case-insensitively);
//! - a preflight is an `OPTIONS` request with `Origin` and
//!   `Access-Control-Request-Method`: it is answered at once with 204,
//!   with the CORS headers when the origin is allowed and without them
//!   when it is not (the spec lets either happen);
//! - any other request with an allowed `Origin` is proxied and its
//!   response gets `Access-Control-Allow-Origin` (the request's origin),
//!   `-Allow-Credentials` (when on) and `-Expose-Headers` (when set);
//! - wildcards (`*` in methods, headers, expose headers) are sent as `*`
//!   without credentials; with credentials they echo what the request
//!   asked for (methods, headers) or are left out (expose headers), as the
//!   spec requires; `Access-Control-Max-Age` defaults to 5 seconds.
//!
//! Every response whose CORS headers depend on the origin carries `Vary:
//! Origin`.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, HeaderMap, HeaderValue, ORIGIN,
    VARY,
};
use http::{Method, StatusCode};

use crate::refusal::Refusal;

/// The spec's default `maxAge`, in seconds.
pub const DEFAULT_MAX_AGE: u32 = 5;

/// Why a CORS filter value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorsFilterError {
    /// An origin that is not `*` or `scheme://host[:port]`.
    #[error("allowOrigins: {0:?} is not * or http(s)://host[:port]")]
    Origin(String),
    /// A method, header name or list that cannot be sent in a header.
    #[error("{0}: {1:?} is not a valid value")]
    Value(&'static str, String),
}

/// One `allowOrigins` entry other than `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: Box<str>,
    /// The host, lower case; with `wildcard`, what follows the `*`
    /// (`.bar.com`, or empty for a bare `*`).
    host: Box<str>,
    wildcard: bool,
    port: u16,
}

impl Origin {
    fn parse(entry: &str) -> Result<Self, CorsFilterError> {
        let bad = || CorsFilterError::Origin(entry.to_owned());
        let (scheme, rest) = entry.split_once("://").ok_or_else(bad)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(bad()),
        };
        let (host, port) = split_port(rest).ok_or_else(bad)?;
        let port = port.unwrap_or(default_port);
        let host = host.to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix('*') {
            Some(rest) => (true, rest.to_owned()),
            None => (false, host),
        };
        let valid = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid
            || (!wildcard && host.is_empty())
            || (wildcard && !host.is_empty() && !host.starts_with('.'))
        {
            return Err(bad());
        }
        Ok(Self {
            scheme: scheme.into(),
            host: host.into(),
            wildcard,
            port,
        })
    }

    fn matches(&self, origin: &RequestOrigin<'_>) -> bool {
        if !self.scheme.eq_ignore_ascii_case(origin.scheme) || self.port != origin.port {
            return false;
        }
        if self.wildcard {
            let host = origin.host.as_bytes();
            let suffix = self.host.as_bytes();
            host.len() > suffix.len()
                && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        } else {
            origin.host.eq_ignore_ascii_case(&self.host)
        }
    }
}

/// A request's `Origin`, taken apart.
struct RequestOrigin<'a> {
    scheme: &'a str,
    host: &'a str,
    port: u16,
}

impl<'a> RequestOrigin<'a> {
    fn parse(value: &'a str) -> Option<Self> {
        let (scheme, rest) = value.split_once("://")?;
        let default_port = if scheme.eq_ignore_ascii_case("https") {
            443
        } else if scheme.eq_ignore_ascii_case("http") {
            80
        } else {
            return None;
        };
        let (host, port) = split_port(rest)?;
        Some(Self {
            scheme,
            host,
            port: port.unwrap_or(default_port),
        })
    }
}

/// `host[:port]`: the host and the port, if any.
fn split_port(rest: &str) -> Option<(&str, Option<u16>)> {
    if rest.is_empty() || rest.contains('/') {
        return None;
    }
    match rest.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((rest, None)),
    }
}

/// A list field: every value, or `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum List {
    Values(HeaderValue),
    Wildcard,
    Empty,
}

impl List {
    fn parse(field: &'static str, values: &[String]) -> Result<Self, CorsFilterError> {
        if values.iter().any(|v| v == "*") {
            return Ok(Self::Wildcard);
        }
        if values.is_empty() {
            return Ok(Self::Empty);
        }
        let valid = |v: &String| {
            !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        if let Some(bad) = values.iter().find(|v| !valid(v)) {
            return Err(CorsFilterError::Value(field, bad.clone()));
        }
        HeaderValue::from_str(&values.join(", "))
            .map(Self::Values)
            .map_err(|_| CorsFilterError::Value(field, values.join(", ")))
    }
}

/// What the `CORS` filter of a rule allows (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsFilter {
    any_origin: bool,
    origins: Vec<Origin>,
    credentials: bool,
    methods: List,
    headers: List,
    expose: List,
    max_age: HeaderValue,
}

/// The fields of an `HTTPCORSFilter`, as written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsSpec {
    /// `allowOrigins`.
    pub allow_origins: Vec<String>,
    /// `allowCredentials`.
    pub allow_credentials: bool,
    /// `allowMethods`.
    pub allow_methods: Vec<String>,
    /// `allowHeaders`.
    pub allow_headers: Vec<String>,
    /// `exposeHeaders`.
    pub expose_headers: Vec<String>,
    /// `maxAge` in seconds; `None`: the default (5).
    pub max_age: Option<u32>,
}

impl CorsFilter {
    /// Compiles a filter, refusing any value that could not be sent.
    pub fn new(spec: &CorsSpec) -> Result<Self, CorsFilterError> {
        let any_origin = spec.allow_origins.iter().any(|o| o == "*");
        let origins = spec
            .allow_origins
            .iter()
            .filter(|o| *o != "*")
            .map(|o| Origin::parse(o))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            any_origin,
            origins,
            credentials: spec.allow_credentials,
            methods: List::parse("allowMethods", &spec.allow_methods)?,
            headers: List::parse("allowHeaders", &spec.allow_headers)?,
            expose: List::parse("exposeHeaders", &spec.expose_headers)?,
            max_age: HeaderValue::from(spec.max_age.unwrap_or(DEFAULT_MAX_AGE)),
        })
    }

    /// The request's `Origin` when this filter allows it.
    pub fn allowed_origin(&self, request: &HeaderMap) -> Option<HeaderValue> {
        let value = request.get(ORIGIN)?;
        let origin = RequestOrigin::parse(value.to_str().ok()?)?;
        (self.any_origin || self.origins.iter().any(|o| o.matches(&origin))).then(|| value.clone())
    }

    /// The answer to a preflight request (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`); `None` for any other request.
    pub fn preflight(&self, method: &Method, request: &HeaderMap) -> Option<Refusal> {
        if method != Method::OPTIONS
            || !request.contains_key(ORIGIN)
            || !request.contains_key(ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        let mut response = Refusal::empty(StatusCode::NO_CONTENT);
        let headers = response.headers_mut();
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        let Some(origin) = self.allowed_origin(request) else {
            return Some(response);
        };
        self.apply(origin, headers);
        let echo = |name| request.get(name).cloned();
        let methods = match &self.methods {
            List::Values(v) => Some(v.clone()),
            List::Wildcard if self.credentials => echo(ACCESS_CONTROL_REQUEST_METHOD),
            List::Wildcard => Some(HeaderValue::from_static("*")),
            List::Empty => None,
        };
        let allowed_headers = match &self.headers {
            List::Values(v) => Some(v.clone()),
            List::Wildcard if self.credentials => echo(ACCESS_CONTROL_REQUEST_HEADERS),
            List::Wildcard => Some(HeaderValue::from_static("*")),
            List::Empty => None,
        };
        if let Some(methods) = methods {
            headers.insert(ACCESS_CONTROL_ALLOW_METHODS, methods);
        }
        if let Some(allowed) = allowed_headers {
            headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, allowed);
        }
        headers.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        Some(response)
    }

    /// Adds the headers every response to an allowed origin carries.
    pub fn apply(&self, origin: HeaderValue, response: &mut HeaderMap) {
        response.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.credentials {
            response.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        match &self.expose {
            List::Values(v) => {
                response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
            }
            List::Wildcard if !self.credentials => {
                response.insert(ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("*"));
            }
            List::Wildcard | List::Empty => {}
        }
        response.append(VARY, HeaderValue::from_static("Origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(origins: &[&str]) -> CorsSpec {
        CorsSpec {
            allow_origins: origins.iter().map(|s| (*s).to_owned()).collect(),
            ..CorsSpec::default()
        }
    }

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, HeaderValue::from_static(v));
        }
        map
    }

    fn allows(filter: &CorsFilter, origin: &'static str) -> bool {
        filter
            .allowed_origin(&request(&[("origin", origin)]))
            .is_some()
    }

    #[test]
    fn origins_exact_wildcard_any_depth_and_ports() {
        let f = CorsFilter::new(&spec(&[
            "https://www.foo.com",
            "https://*.bar.com",
            "http://a.test:8080",
        ]))
        .unwrap();
        assert!(allows(&f, "https://www.foo.com"));
        assert!(allows(&f, "https://WWW.foo.com:443"));
        assert!(!allows(&f, "http://www.foo.com"));
        assert!(!allows(&f, "https://www.foo.com:8443"));
        assert!(allows(&f, "https://www.bar.com"));
        assert!(allows(&f, "https://xpto.www.bar.com"));
        assert!(!allows(&f, "https://bar.com"));
        assert!(!allows(&f, "https://foobar.com"));
        assert!(allows(&f, "http://a.test:8080"));
        assert!(!allows(&f, "http://a.test"));
        assert!(!allows(&f, "null"));
        let any = CorsFilter::new(&spec(&["*"])).unwrap();
        assert!(allows(&any, "https://anything.example"));
        for bad in [
            "ftp://x.com",
            "https://",
            "https://a b",
            "x.com",
            "https://a.com/p",
        ] {
            assert!(CorsFilter::new(&spec(&[bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn preflight_lists_and_credentials() {
        let f = CorsFilter::new(&CorsSpec {
            allow_origins: vec!["https://www.foo.com".into()],
            allow_credentials: true,
            allow_methods: vec!["GET".into(), "OPTIONS".into()],
            allow_headers: vec!["x-header-1".into(), "x-header-2".into()],
            expose_headers: vec!["x-header-3".into()],
            max_age: Some(3600),
        })
        .unwrap();
        let preflight = request(&[
            ("origin", "https://www.foo.com"),
            ("access-control-request-method", "GET"),
        ]);
        let r = f.preflight(&Method::OPTIONS, &preflight).unwrap();
        assert_eq!(r.status(), 204);
        let h = r.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://www.foo.com");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "GET, OPTIONS");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-header-1, x-header-2");
        assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "x-header-3");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "3600");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        // Not a preflight: no Access-Control-Request-Method, or not OPTIONS.
        assert!(
            f.preflight(
                &Method::OPTIONS,
                &request(&[("origin", "https://www.foo.com")])
            )
            .is_none()
        );
        assert!(f.preflight(&Method::GET, &preflight).is_none());
        // A foreign origin: answered, without CORS headers.
        let foreign = request(&[
            ("origin", "https://evil.com"),
            ("access-control-request-method", "GET"),
        ]);
        let r = f.preflight(&Method::OPTIONS, &foreign).unwrap();
        assert!(r.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    }

    #[test]
    fn wildcards_with_and_without_credentials() {
        let wild = |credentials| {
            CorsFilter::new(&CorsSpec {
                allow_origins: vec!["*".into()],
                allow_credentials: credentials,
                allow_methods: vec!["*".into()],
                allow_headers: vec!["*".into()],
                expose_headers: vec!["*".into()],
                max_age: None,
            })
            .unwrap()
        };
        let req = request(&[
            ("origin", "https://a.example"),
            ("access-control-request-method", "PATCH"),
            ("access-control-request-headers", "x-a, x-b"),
        ]);
        let open = wild(false).preflight(&Method::OPTIONS, &req).unwrap();
        let h = open.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "https://a.example");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "*");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "*");
        assert_eq!(h[ACCESS_CONTROL_EXPOSE_HEADERS], "*");
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "5");
        let auth = wild(true).preflight(&Method::OPTIONS, &req).unwrap();
        let h = auth.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], "PATCH");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], "x-a, x-b");
        assert!(h.get(ACCESS_CONTROL_EXPOSE_HEADERS).is_none());
        let no_headers = request(&[
            ("origin", "https://a.example"),
            ("access-control-request-method", "GET"),
        ]);
        let auth = wild(true).preflight(&Method::OPTIONS, &no_headers).unwrap();
        assert!(auth.headers().get(ACCESS_CONTROL_ALLOW_HEADERS).is_none());
    }

    #[test]
    fn bad_lists_are_refused() {
        let bad = CorsSpec {
            allow_origins: vec!["*".into()],
            allow_headers: vec!["x\r\ny".into()],
            ..CorsSpec::default()
        };
        assert!(CorsFilter::new(&bad).is_err());
    }
}
