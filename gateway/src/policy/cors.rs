//! Cross-origin resource sharing as ingress-nginx does it: `enable-cors`
//! with `cors-allow-origin`, `cors-allow-methods`, `cors-allow-headers`,
//! `cors-expose-headers`, `cors-allow-credentials` and `cors-max-age`.
//!
//! ingress-nginx's template (`nginx.tmpl`, `define "CORS"`, and
//! `buildCorsOriginRegex` in `template.go`) decides once per request
//! whether CORS applies ("`$cors = true`"):
//!
//! - with the origin list `*`, always, and the allowed origin sent is `*`
//!   (even with credentials on, which browsers then refuse: ingress-nginx
//!   does the same);
//! - with a list, when the request's `Origin` matches an entry, and the
//!   allowed origin sent is that `Origin`; otherwise nothing is added.
//!
//! When CORS applies, an `OPTIONS` request (any, not only one carrying
//! `Access-Control-Request-Method`) is answered at once with 204 and the
//! CORS headers ([`Cors::preflight`]); any other response gets the same
//! headers, replacing the upstream's own (`more_set_headers`), on every
//! status ([`Cors::decorate`]): `Access-Control-Allow-Origin`,
//! `-Allow-Credentials` (when on), `-Allow-Methods`, `-Allow-Headers`,
//! `-Expose-Headers` (when set) and `-Max-Age`.
//!
//! Origin entries are `scheme://host[:port]`, `scheme://*.host[:port]`
//! (the `*` stands for exactly one DNS label), `null` or `*`; scheme, host
//! and port must all match, compared without regard to case (nginx's
//! `~*`). Two deliberate differences: the match is anchored at both ends
//! (nginx's regex is anchored only at the end, which no real browser
//! `Origin` can exploit), and a response whose CORS headers depend on the
//! `Origin` (an origin list, not `*`) carries `Vary: Origin`, so that a
//! cache in front of the gateway cannot serve one origin's answer to
//! another.
//!
//! Every value is validated when parsed, with ingress-nginx's character
//! sets minus anything that could end a header line: a bad value is an
//! error naming the annotation, never text pasted into a response.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, ORIGIN, VARY,
};
use http::{Method, StatusCode};

use crate::refusal::Refusal;

/// `cors-allow-methods` default.
pub const DEFAULT_ALLOW_METHODS: &str = "GET, PUT, POST, DELETE, PATCH, OPTIONS";

/// `cors-allow-headers` default.
pub const DEFAULT_ALLOW_HEADERS: &str = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization";

/// `cors-max-age` default, in seconds (20 days).
pub const DEFAULT_MAX_AGE: i64 = 1_728_000;

/// The longest value accepted for any CORS annotation.
const MAX_VALUE_LEN: usize = 4096;

/// Why a CORS annotation value was refused; each names its annotation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorsError {
    /// An origin entry is not `scheme://host[:port]`,
    /// `scheme://*.host[:port]`, `null` or `*`.
    #[error(
        "cors-allow-origin: {0:?} is not an origin (scheme://host[:port], scheme://*.host[:port], null or *)"
    )]
    Origin(String),
    /// `cors-allow-methods` is not a list of method names.
    #[error("cors-allow-methods: {0:?} is not a comma-separated list of method names")]
    Methods(String),
    /// `cors-allow-headers` is not a list of header names.
    #[error("cors-allow-headers: {0:?} is not a comma-separated list of header names")]
    Headers(String),
    /// `cors-expose-headers` is not a list of header names or `*`.
    #[error("cors-expose-headers: {0:?} is not a comma-separated list of header names or *")]
    ExposeHeaders(String),
    /// `cors-allow-credentials` is not a boolean.
    #[error("cors-allow-credentials: {0:?} is not true or false")]
    Credentials(String),
    /// `cors-max-age` is not an integer.
    #[error("cors-max-age: {0:?} is not an integer number of seconds")]
    MaxAge(String),
    /// The value is empty (or only separators).
    #[error("{0}: the value is empty")]
    Empty(&'static str),
}

/// One `cors-allow-origin` entry other than `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OriginPattern {
    /// An exact origin (`https://app.example.com:8443`, or `null`), lower-case.
    Exact(String),
    /// `scheme://*.rest`: `prefix` is `scheme://`, `suffix` is `.rest`
    /// (host and port), both lower-case; one DNS label goes between.
    Wildcard {
        /// `scheme://`.
        prefix: String,
        /// `.parent.domain[:port]`.
        suffix: String,
    },
}

impl OriginPattern {
    /// Whether a request's `Origin` value matches, ignoring ASCII case.
    pub fn matches(&self, origin: &[u8]) -> bool {
        match self {
            Self::Exact(exact) => origin.eq_ignore_ascii_case(exact.as_bytes()),
            Self::Wildcard { prefix, suffix } => {
                let (prefix, suffix) = (prefix.as_bytes(), suffix.as_bytes());
                if origin.len() <= prefix.len() + suffix.len() {
                    return false;
                }
                let (head, rest) = origin.split_at(prefix.len());
                let (label, tail) = rest.split_at(rest.len() - suffix.len());
                head.eq_ignore_ascii_case(prefix)
                    && tail.eq_ignore_ascii_case(suffix)
                    && label
                        .iter()
                        .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            }
        }
    }
}

/// `cors-allow-origin`: any origin, or a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowOrigin {
    /// `*` (the default): CORS headers on every request, origin `*`.
    Any,
    /// Only these origins; the request's `Origin` is echoed back.
    List(Vec<OriginPattern>),
}

/// The parsed CORS annotations of a location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsConfig {
    /// `cors-allow-origin` (default `*`).
    pub allow_origin: AllowOrigin,
    /// `cors-allow-methods`, as written (default [`DEFAULT_ALLOW_METHODS`]).
    pub allow_methods: HeaderValue,
    /// `cors-allow-headers`, as written (default [`DEFAULT_ALLOW_HEADERS`]).
    pub allow_headers: HeaderValue,
    /// `cors-expose-headers`, as written (default none).
    pub expose_headers: Option<HeaderValue>,
    /// `cors-allow-credentials` (default true).
    pub allow_credentials: bool,
    /// `cors-max-age` in seconds (default [`DEFAULT_MAX_AGE`]).
    pub max_age: i64,
}

impl Default for CorsConfig {
    /// ingress-nginx's defaults.
    fn default() -> Self {
        Self {
            allow_origin: AllowOrigin::Any,
            allow_methods: HeaderValue::from_static(DEFAULT_ALLOW_METHODS),
            allow_headers: HeaderValue::from_static(DEFAULT_ALLOW_HEADERS),
            expose_headers: None,
            allow_credentials: true,
            max_age: DEFAULT_MAX_AGE,
        }
    }
}

/// Parses `cors-allow-origin`: comma-separated entries, each trimmed; `*`
/// anywhere makes it [`AllowOrigin::Any`] (as ingress-nginx); empty entries
/// are skipped. Any malformed entry is an error naming it (ingress-nginx
/// skips such entries with a log line; the caller decides).
pub fn parse_origins(value: &str) -> Result<AllowOrigin, CorsError> {
    check_length(value, CorsError::Origin)?;
    let mut list = Vec::new();
    for entry in value.split(',').map(str::trim) {
        match entry {
            "" => {}
            "*" => return Ok(AllowOrigin::Any),
            _ => list.push(parse_origin(entry)?),
        }
    }
    if list.is_empty() {
        return Err(CorsError::Empty("cors-allow-origin"));
    }
    Ok(AllowOrigin::List(list))
}

/// One origin entry: `null`, or `scheme://[*.]host[:port]` with a
/// lower-case scheme (`[a-z]+`), a host of letters, digits, `-` and `.`,
/// and a decimal port.
fn parse_origin(entry: &str) -> Result<OriginPattern, CorsError> {
    let bad = || CorsError::Origin(entry.to_owned());
    if entry == "null" {
        return Ok(OriginPattern::Exact(entry.to_owned()));
    }
    let (scheme, authority) = entry.split_once("://").ok_or_else(bad)?;
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(bad());
    }
    let (wildcard, authority) = match authority.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, authority),
    };
    let (host, port) = match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if !host_ok || !port_ok {
        return Err(bad());
    }
    let lower = entry.to_ascii_lowercase();
    Ok(if wildcard {
        // `scheme://*` + `.host[:port]`
        let star = scheme.len() + 3;
        OriginPattern::Wildcard {
            prefix: lower[..star].to_owned(),
            suffix: lower[star + 1..].to_owned(),
        }
    } else {
        OriginPattern::Exact(lower)
    })
}

/// Parses `cors-allow-methods`: method names (letters) separated by commas
/// and single spaces, as ingress-nginx's `^([A-Za-z]+,?\s?)+$` (without
/// its CR and LF). The value is sent as written, trimmed.
pub fn parse_methods(value: &str) -> Result<HeaderValue, CorsError> {
    list_value(value, "cors-allow-methods", CorsError::Methods, |token| {
        token.bytes().all(|b| b.is_ascii_alphabetic())
    })
}

/// Parses `cors-allow-headers`: header names of letters, digits, `-` and
/// `_`, separated by commas and spaces (ingress-nginx's
/// `^[A-Za-z0-9-_, ]*$`). The value is sent as written, trimmed.
pub fn parse_headers(value: &str) -> Result<HeaderValue, CorsError> {
    list_value(
        value,
        "cors-allow-headers",
        CorsError::Headers,
        is_header_name,
    )
}

/// Parses `cors-expose-headers`: header names or `*`, separated by commas
/// and spaces (ingress-nginx's `^(([A-Za-z0-9\-\_]+|\*),?\s?)+$`).
pub fn parse_expose_headers(value: &str) -> Result<HeaderValue, CorsError> {
    list_value(
        value,
        "cors-expose-headers",
        CorsError::ExposeHeaders,
        |token| token == "*" || is_header_name(token),
    )
}

/// Parses `cors-allow-credentials` as Go's `strconv.ParseBool`
/// (`true`, `1`, `t`, `T`, `TRUE`, `True`, and the same for false).
pub fn parse_credentials(value: &str) -> Result<bool, CorsError> {
    match value.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(CorsError::Credentials(other.to_owned())),
    }
}

/// Parses `cors-max-age`: a decimal integer with an optional sign, as Go's
/// `strconv.Atoi` (ingress-nginx sends negative values as written).
pub fn parse_max_age(value: &str) -> Result<i64, CorsError> {
    let text = value.trim();
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CorsError::MaxAge(text.to_owned()));
    }
    text.parse().map_err(|_| CorsError::MaxAge(text.to_owned()))
}

fn is_header_name(token: &str) -> bool {
    token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_length(value: &str, error: fn(String) -> CorsError) -> Result<(), CorsError> {
    if value.len() > MAX_VALUE_LEN {
        let shown: String = value.chars().take(64).collect();
        return Err(error(format!("{shown}…")));
    }
    Ok(())
}

/// A comma- or space-separated list of tokens, each accepted by `token_ok`,
/// with nothing but commas, spaces and tabs between them; at least one
/// token. Returns the trimmed value as a header value.
fn list_value(
    value: &str,
    annotation: &'static str,
    error: fn(String) -> CorsError,
    token_ok: impl Fn(&str) -> bool,
) -> Result<HeaderValue, CorsError> {
    check_length(value, error)?;
    let text = value.trim_matches([' ', '\t']);
    let bad = || error(text.to_owned());
    let mut tokens = 0;
    for token in text.split([',', ' ', '\t']) {
        if token.is_empty() {
            continue;
        }
        if !token_ok(token) {
            return Err(bad());
        }
        tokens += 1;
    }
    if tokens == 0 {
        return Err(CorsError::Empty(annotation));
    }
    // Every byte is now a token character, a comma, a space or a tab.
    HeaderValue::from_str(text).map_err(|_| bad())
}

/// A location's CORS behaviour, with its header values built once.
#[derive(Clone, Debug)]
pub struct Cors {
    origins: AllowOrigin,
    allow_methods: HeaderValue,
    allow_headers: HeaderValue,
    expose_headers: Option<HeaderValue>,
    allow_credentials: bool,
    max_age: HeaderValue,
}

/// `Content-Type` of the preflight answer, as ingress-nginx writes it
/// (without the `;`).
const PREFLIGHT_CONTENT_TYPE: &str = "text/plain charset=UTF-8";

impl Cors {
    /// Prepares the headers of `config`.
    pub fn new(config: CorsConfig) -> Self {
        Self {
            origins: config.allow_origin,
            allow_methods: config.allow_methods,
            allow_headers: config.allow_headers,
            expose_headers: config.expose_headers,
            allow_credentials: config.allow_credentials,
            max_age: HeaderValue::from(config.max_age),
        }
    }

    /// The `Access-Control-Allow-Origin` value for a request, or `None`
    /// when CORS does not apply to it (an origin list and no matching
    /// `Origin`). Capture it before the request is moved upstream and hand
    /// it to [`Cors::apply`] with the response.
    pub fn allowed_origin(&self, request_headers: &HeaderMap) -> Option<HeaderValue> {
        match &self.origins {
            AllowOrigin::Any => Some(HeaderValue::from_static("*")),
            AllowOrigin::List(patterns) => {
                let origin = request_headers.get(ORIGIN)?;
                patterns
                    .iter()
                    .any(|p| p.matches(origin.as_bytes()))
                    .then(|| origin.clone())
            }
        }
    }

    /// The answer to an `OPTIONS` request when CORS applies to it: 204 with
    /// the CORS headers, `Content-Type: text/plain charset=UTF-8` and
    /// `Content-Length: 0`, as ingress-nginx. `None` for other methods, or
    /// when the `Origin` does not match (the request then goes upstream,
    /// as with ingress-nginx).
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Refusal> {
        if method != Method::OPTIONS {
            return None;
        }
        let origin = self.allowed_origin(headers)?;
        let mut response = Refusal::empty(StatusCode::NO_CONTENT);
        let headers = response.headers_mut();
        self.apply(origin, headers);
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(PREFLIGHT_CONTENT_TYPE),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        Some(response)
    }

    /// Adds the CORS headers to a response when CORS applies to the
    /// request: [`Cors::allowed_origin`] then [`Cors::apply`].
    pub fn decorate(&self, request_headers: &HeaderMap, response_headers: &mut HeaderMap) {
        if let Some(origin) = self.allowed_origin(request_headers) {
            self.apply(origin, response_headers);
        }
    }

    /// Sets the CORS headers on a response, replacing any the upstream
    /// sent, for the allowed origin `origin` (from
    /// [`Cors::allowed_origin`]).
    pub fn apply(&self, origin: HeaderValue, response_headers: &mut HeaderMap) {
        response_headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if self.allow_credentials {
            response_headers.insert(
                ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        response_headers.insert(ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        response_headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, self.allow_headers.clone());
        if let Some(expose) = &self.expose_headers {
            response_headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, expose.clone());
        }
        response_headers.insert(ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        if matches!(self.origins, AllowOrigin::List(_)) && !varies_by_origin(response_headers) {
            response_headers.append(VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// Whether the response's `Vary` already names `Origin` (or is `*`).
fn varies_by_origin(headers: &HeaderMap) -> bool {
    headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|name| name == "*" || name.eq_ignore_ascii_case("origin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    fn cors_for(origins: &str) -> Cors {
        Cors::new(CorsConfig {
            allow_origin: parse_origins(origins).unwrap(),
            ..CorsConfig::default()
        })
    }

    fn matches(origins: &str, origin: &str) -> bool {
        cors_for(origins)
            .allowed_origin(&request(Some(origin)))
            .is_some()
    }

    #[test]
    fn defaults_are_ingress_nginx_defaults() {
        let config = CorsConfig::default();
        assert_eq!(config.allow_origin, AllowOrigin::Any);
        assert_eq!(
            config.allow_methods,
            "GET, PUT, POST, DELETE, PATCH, OPTIONS"
        );
        assert_eq!(
            config.allow_headers,
            "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
        );
        assert_eq!(config.expose_headers, None);
        assert!(config.allow_credentials);
        assert_eq!(config.max_age, 1_728_000);
    }

    #[test]
    fn preflight_gets_204_with_every_header() {
        let cors = Cors::new(CorsConfig::default());
        let mut headers = request(Some("https://app.example.com"));
        headers.insert(
            "access-control-request-method",
            HeaderValue::from_static("PUT"),
        );
        let response = cors.preflight(&Method::OPTIONS, &headers).unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let h = response.headers();
        assert_eq!(h[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(h[ACCESS_CONTROL_ALLOW_METHODS], DEFAULT_ALLOW_METHODS);
        assert_eq!(h[ACCESS_CONTROL_ALLOW_HEADERS], DEFAULT_ALLOW_HEADERS);
        assert_eq!(h[ACCESS_CONTROL_MAX_AGE], "1728000");
        assert_eq!(h[CONTENT_TYPE], "text/plain charset=UTF-8");
        assert_eq!(h[CONTENT_LENGTH], "0");
        assert!(h.get(ACCESS_CONTROL_EXPOSE_HEADERS).is_none());
        assert!(h.get(VARY).is_none(), "no Vary for *");
    }

    #[test]
    fn any_origin_answers_every_options_request() {
        let cors = Cors::new(CorsConfig::default());
        // No Origin, no Access-Control-Request-Method: still 204, as
        // ingress-nginx sets `$cors` unconditionally for `*`.
        assert!(
            cors.preflight(&Method::OPTIONS, &HeaderMap::new())
                .is_some()
        );
        assert!(cors.preflight(&Method::GET, &HeaderMap::new()).is_none());
        assert!(
            cors.preflight(&Method::POST, &request(Some("https://a.b")))
                .is_none()
        );
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let cors = cors_for("https://app.example.com, https://*.example.org:8443");
        let origin = "https://app.example.com";
        let response = cors
            .preflight(&Method::OPTIONS, &request(Some(origin)))
            .unwrap();
        assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], origin);
        assert_eq!(response.headers()[VARY], "Origin");
        // Not listed: no preflight answer (it goes upstream), no headers.
        for other in [Some("https://evil.com"), None] {
            assert!(cors.preflight(&Method::OPTIONS, &request(other)).is_none());
            let mut response_headers = HeaderMap::new();
            cors.decorate(&request(other), &mut response_headers);
            assert!(response_headers.is_empty(), "{other:?}");
        }
    }

    #[test]
    fn wildcard_matches_exactly_one_label() {
        let list = "https://*.example.com";
        assert!(matches(list, "https://api.example.com"));
        assert!(matches(list, "https://API-2.Example.COM"));
        assert!(!matches(list, "https://a.b.example.com"));
        assert!(!matches(list, "https://example.com"));
        assert!(!matches(list, "https://.example.com"));
        assert!(!matches(list, "https://a_b.example.com"));
        assert!(!matches(list, "http://api.example.com"), "scheme differs");
        assert!(
            !matches(list, "https://api.example.com:8443"),
            "port differs"
        );
        assert!(!matches(list, "https://api.example.com.evil.net"));
        assert!(!matches(list, "https://apiexample.com"));
        let with_port = "https://*.example.com:8443";
        assert!(matches(with_port, "https://api.example.com:8443"));
        assert!(!matches(with_port, "https://api.example.com"));
        assert!(!matches(with_port, "https://api.example.com:84430"));
    }

    #[test]
    fn exact_origins_match_scheme_host_and_port() {
        let list = "http://localhost:3000,https://app.example.com";
        assert!(matches(list, "http://localhost:3000"));
        assert!(matches(list, "HTTPS://APP.EXAMPLE.COM"));
        assert!(!matches(list, "http://localhost"));
        assert!(!matches(list, "http://localhost:30000"));
        assert!(!matches(list, "https://localhost:3000"));
        assert!(!matches(list, "https://app.example.com:443"));
        assert!(!matches(list, "xhttps://app.example.com"), "anchored");
        assert!(matches("null", "null"));
        assert!(matches("myapp://*.local", "myapp://device.local"));
    }

    #[test]
    fn a_star_anywhere_allows_any_origin() {
        assert_eq!(parse_origins("https://a.com, *").unwrap(), AllowOrigin::Any);
        assert_eq!(parse_origins(" * ").unwrap(), AllowOrigin::Any);
    }

    #[test]
    fn bad_origins_are_refused() {
        for bad in [
            "https://",
            "example.com",
            "HTTPS://example.com",
            "https://exa mple.com",
            "https://example.com/",
            "https://example.com/path",
            "https://example.com:",
            "https://example.com:80a",
            "https://example.com:123456",
            "https://user@example.com",
            "https://*.*.example.com",
            "https://a.*.example.com",
            "https://*example.com",
            "https://example.com\r\nSet-Cookie: a=b",
            "https://example.com'",
            "$http_host",
            "nul",
        ] {
            assert!(
                matches!(parse_origins(bad), Err(CorsError::Origin(_))),
                "{bad:?} accepted"
            );
        }
        assert_eq!(
            parse_origins(" , ").unwrap_err(),
            CorsError::Empty("cors-allow-origin")
        );
        let error = parse_origins("https://ok.com, bad").unwrap_err();
        assert!(
            error.to_string().starts_with("cors-allow-origin:"),
            "{error}"
        );
        assert!(error.to_string().contains("bad"), "{error}");
    }

    #[test]
    fn methods_and_headers_are_validated() {
        assert_eq!(parse_methods("POST, GET").unwrap(), "POST, GET");
        assert_eq!(parse_methods(" GET,POST ").unwrap(), "GET,POST");
        assert_eq!(parse_methods("get put").unwrap(), "get put");
        for bad in [
            "",
            " , ",
            "GET;POST",
            "GET\r\nX: y",
            "GET\n",
            "G3T",
            "GET, *",
        ] {
            assert!(parse_methods(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_headers("DNT, X-Custom_1").unwrap(), "DNT, X-Custom_1");
        for bad in ["", "X-A: b", "X-A\r\nSet-Cookie: x", "*", "X-A;", "Ü"] {
            assert!(parse_headers(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            parse_expose_headers("*, X-Total-Count").unwrap(),
            "*, X-Total-Count"
        );
        for bad in ["", "X-A\nX-B", "X-A=1", "**"] {
            assert!(parse_expose_headers(bad).is_err(), "{bad:?} accepted");
        }
        let error = parse_headers("X-A\r\nEvil: 1").unwrap_err();
        assert!(
            error.to_string().starts_with("cors-allow-headers:"),
            "{error}"
        );
        let long = "A,".repeat(3000);
        assert!(parse_headers(&long).is_err());
    }

    #[test]
    fn credentials_and_max_age_parse_like_go() {
        for yes in ["true", "True", "TRUE", "t", "T", "1"] {
            assert_eq!(parse_credentials(yes), Ok(true));
        }
        for no in ["false", "False", "FALSE", "f", "F", "0"] {
            assert_eq!(parse_credentials(no), Ok(false));
        }
        for bad in ["yes", "", "tRuE", "2"] {
            assert!(parse_credentials(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_max_age("600"), Ok(600));
        assert_eq!(parse_max_age("+5"), Ok(5));
        assert_eq!(parse_max_age("-1"), Ok(-1));
        for bad in ["", "1.5", "10s", "- 1", "99999999999999999999"] {
            assert!(parse_max_age(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decorate_replaces_upstream_headers_and_honours_options() {
        let cors = Cors::new(CorsConfig {
            allow_origin: parse_origins("https://app.example.com").unwrap(),
            allow_methods: parse_methods("GET").unwrap(),
            allow_headers: parse_headers("X-Token").unwrap(),
            expose_headers: Some(parse_expose_headers("X-Total").unwrap()),
            allow_credentials: false,
            max_age: parse_max_age("60").unwrap(),
        });
        let mut response = HeaderMap::new();
        response.insert(
            ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("https://other.com"),
        );
        response.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        response.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        cors.decorate(&request(Some("https://app.example.com")), &mut response);
        assert_eq!(
            response.get_all(ACCESS_CONTROL_ALLOW_ORIGIN).iter().count(),
            1
        );
        assert_eq!(
            response[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        // Credentials off: ingress-nginx adds nothing (the upstream's stays).
        assert_eq!(response[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(response[ACCESS_CONTROL_ALLOW_METHODS], "GET");
        assert_eq!(response[ACCESS_CONTROL_ALLOW_HEADERS], "X-Token");
        assert_eq!(response[ACCESS_CONTROL_EXPOSE_HEADERS], "X-Total");
        assert_eq!(response[ACCESS_CONTROL_MAX_AGE], "60");
        let vary: Vec<_> = response.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        // Applying twice adds no second Vary.
        cors.decorate(&request(Some("https://app.example.com")), &mut response);
        assert_eq!(response.get_all(VARY).iter().count(), 2);
    }

    #[test]
    fn any_origin_decorates_every_response() {
        let cors = Cors::new(CorsConfig::default());
        let mut response = HeaderMap::new();
        cors.decorate(&HeaderMap::new(), &mut response);
        assert_eq!(response[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert_eq!(response[ACCESS_CONTROL_ALLOW_CREDENTIALS], "true");
        assert_eq!(response[ACCESS_CONTROL_MAX_AGE], "1728000");
        assert!(response.get(VARY).is_none());
    }
}
