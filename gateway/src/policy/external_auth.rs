//! External authentication (`auth-url` and its annotations), as
//! ingress-nginx does it with nginx's `auth_request`: before a request is
//! proxied, a subrequest without a body goes to the auth service with the
//! client's headers and the `X-Original-*` headers; a 2xx lets the request
//! through (copying the `auth-response-headers` to the upstream request),
//! 401 and 403 go back to the client (401 with the service's
//! `WWW-Authenticate`, or as a 302 to `auth-signin`), and anything else, a
//! failure or a timeout is a 500. Decisions can be cached per
//! `auth-cache-key` for the `auth-cache-duration`.
//!
//! The annotation values that nginx interpolates (`auth-url`,
//! `auth-signin`, `auth-request-redirect`, `auth-cache-key`) are
//! [`Template`]s over a documented subset of nginx variables; nothing is
//! ever pasted into configuration text.
//!
//! Differences from ingress-nginx: the subrequest has its own timeout
//! ([`DEFAULT_TIMEOUT`], not the route's proxy timeouts); HTTPS auth services
//! have their certificates verified (nginx's `proxy_ssl_verify` is off);
//! `auth-method: CONNECT` is refused; the cache honours the auth response's
//! `Cache-Control` (`no-store`, `no-cache`, `private`, `max-age`),
//! `X-Accel-Expires` and `Set-Cookie` like nginx's cache, but not `Expires`,
//! and caches only the statuses `auth-cache-duration` lists.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, COOKIE, EXPECT, HOST, HeaderMap, HeaderName,
    HeaderValue, LOCATION, SET_COOKIE, VARY, WWW_AUTHENTICATE,
};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::basic_auth::basic_credentials;
use crate::header_names::{PROXY, is_hop_by_hop};
use crate::refusal::Refusal;

/// How long a whole subrequest (connect, request, response) may take by
/// default before the request gets a 500.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long connecting to the auth service (resolve, TCP, TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `auth-signin-redirect-param`'s default.
pub const DEFAULT_SIGNIN_REDIRECT_PARAM: &str = "rd";

/// `auth-cache-duration`'s default (ingress-nginx's `DefaultCacheDuration`).
pub const DEFAULT_CACHE_DURATION: &str = "200 202 401 5m";

/// The most decisions one route's cache holds; the oldest go first.
pub const CACHE_ENTRIES: usize = 10_000;

/// The most bytes of an auth response body read (and thrown away) so that
/// its connection can be reused; a longer body closes the connection.
const MAX_DRAINED_BODY: usize = 64 * 1024;

/// Idle connections kept per auth service, and how long.
const POOL_IDLE_PER_SERVICE: usize = 8;
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Auth services pooled at once (a templated `auth-url` can name many).
const POOL_SERVICES: usize = 64;

/// `set_escape_uri`'s set: everything but `A-Za-z0-9-._~`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

static X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_SENT_FROM: HeaderName = HeaderName::from_static("x-sent-from");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_AUTH_REQUEST_REDIRECT: HeaderName = HeaderName::from_static("x-auth-request-redirect");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static X_SCHEME: HeaderName = HeaderName::from_static("x-scheme");
static X_ACCEL_EXPIRES: HeaderName = HeaderName::from_static("x-accel-expires");

/// Why an annotation value was refused; the message names the annotation
/// and the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExternalAuthError {
    /// `auth-url` is not an absolute http(s) URL.
    #[error("auth-url {value:?}: {reason}")]
    Url {
        /// The annotation value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `auth-method` is not a method ingress-nginx accepts.
    #[error(
        "auth-method {0:?}: expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE"
    )]
    Method(String),
    /// An `auth-response-headers` entry is not a header name.
    #[error(
        "auth-response-headers: {0:?} is not a header name (letters, digits, '-' and '_' only)"
    )]
    ResponseHeader(String),
    /// `auth-signin` would not make a valid Location.
    #[error("auth-signin {value:?}: {reason}")]
    Signin {
        /// The annotation value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// `auth-signin-redirect-param` is not a plain query parameter name.
    #[error(
        "auth-signin-redirect-param {0:?}: expected a query parameter name (letters, digits, '-', '_', '.')"
    )]
    RedirectParam(String),
    /// `auth-cache-duration` is not `[code ...] time [time ...]` entries.
    #[error("auth-cache-duration {value:?}: {reason}")]
    CacheDuration {
        /// The annotation value.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A template with an unknown variable or a stray `$`.
    #[error("{annotation} {value:?}: {error}")]
    Template {
        /// The annotation.
        annotation: &'static str,
        /// The annotation value.
        value: String,
        /// What is wrong.
        error: TemplateError,
    },
}

/// What is wrong with a [`Template`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// A variable this gateway does not provide.
    #[error(
        "unknown variable ${0} (supported: $http_<name>, $cookie_<name>, $arg_<name>, $remote_addr, $remote_user, $host, $http_host, $request_uri, $escaped_request_uri, $uri, $args, $scheme, $request_method, $request_id)"
    )]
    UnknownVariable(String),
    /// A `$` without a variable name after it.
    #[error("'$' at byte {0} is not followed by a variable name")]
    StrayDollar(usize),
    /// `${` without its `}`.
    #[error("'${{' at byte {0} is not closed")]
    Unclosed(usize),
    /// White space or a control character, which no URL or header may hold.
    #[error("white space or control character at byte {0}")]
    Control(usize),
}

// === Templates ===

/// A string with nginx variables (`$name` or `${name}`), filled in per
/// request. The supported variables: `$http_<name>` (a request header,
/// `_` for `-`), `$cookie_<name>`, `$arg_<name>` (a query parameter),
/// `$remote_addr`, `$remote_user` (the Basic user), `$host`, `$http_host`,
/// `$request_uri`, `$escaped_request_uri`, `$uri` (the path), `$args`,
/// `$scheme` (also as `$pass_access_scheme`), `$request_method` and
/// `$request_id`; any other is an error when parsed, never at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Var),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Var {
    Header(HeaderName),
    Cookie(String),
    Arg(String),
    RemoteAddr,
    RemoteUser,
    Host,
    HttpHost,
    RequestUri,
    EscapedRequestUri,
    Path,
    Args,
    Scheme,
    Method,
    RequestId,
}

impl Var {
    fn from_name(name: &str) -> Option<Var> {
        let var = match name {
            "remote_addr" | "the_real_ip" => Var::RemoteAddr,
            "remote_user" => Var::RemoteUser,
            "host" => Var::Host,
            "http_host" | "best_http_host" => Var::HttpHost,
            "request_uri" => Var::RequestUri,
            "escaped_request_uri" => Var::EscapedRequestUri,
            "uri" | "document_uri" => Var::Path,
            "args" | "query_string" => Var::Args,
            "scheme" | "pass_access_scheme" => Var::Scheme,
            "request_method" => Var::Method,
            "request_id" | "req_id" => Var::RequestId,
            _ => {
                if let Some(header) = name.strip_prefix("http_") {
                    let header = header.replace('_', "-");
                    return HeaderName::from_bytes(header.as_bytes())
                        .ok()
                        .map(Var::Header);
                }
                if let Some(cookie) = name.strip_prefix("cookie_").filter(|c| !c.is_empty()) {
                    return Some(Var::Cookie(cookie.to_owned()));
                }
                if let Some(arg) = name.strip_prefix("arg_").filter(|a| !a.is_empty()) {
                    return Some(Var::Arg(arg.to_owned()));
                }
                return None;
            }
        };
        Some(var)
    }

    /// Appends the variable's value for `request` (empty when it has none).
    fn render(&self, request: &AuthRequest<'_>, out: &mut Vec<u8>) {
        match self {
            Var::Header(name) => {
                let separator: &[u8] = if *name == COOKIE { b"; " } else { b", " };
                for (index, value) in request.headers.get_all(name).iter().enumerate() {
                    if index > 0 {
                        out.extend_from_slice(separator);
                    }
                    out.extend_from_slice(value.as_bytes());
                }
            }
            Var::Cookie(wanted) => {
                let found = request
                    .headers
                    .get_all(COOKIE)
                    .iter()
                    .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
                    .filter_map(|pair| {
                        let pair = pair.trim_ascii();
                        let at = pair.iter().position(|b| *b == b'=')?;
                        Some((&pair[..at], &pair[at + 1..]))
                    })
                    .find(|(name, _)| name.eq_ignore_ascii_case(wanted.as_bytes()));
                if let Some((_, value)) = found {
                    out.extend_from_slice(value);
                }
            }
            Var::Arg(wanted) => {
                let query = request.uri.query().unwrap_or_default();
                let found = query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(name, _)| name.eq_ignore_ascii_case(wanted));
                if let Some((_, value)) = found {
                    out.extend_from_slice(value.as_bytes());
                }
            }
            Var::RemoteAddr => {
                out.extend_from_slice(request.client_ip.to_canonical().to_string().as_bytes());
            }
            Var::RemoteUser => {
                if let Some((user, _)) = basic_credentials(request.headers) {
                    out.extend_from_slice(user.as_bytes());
                }
            }
            Var::Host => out.extend_from_slice(request.host.as_bytes()),
            Var::HttpHost => out.extend_from_slice(request.http_host()),
            Var::RequestUri => out.extend_from_slice(request.request_uri().as_bytes()),
            Var::EscapedRequestUri => {
                let escaped = percent_encode(request.request_uri().as_bytes(), URI_COMPONENT);
                for chunk in escaped {
                    out.extend_from_slice(chunk.as_bytes());
                }
            }
            Var::Path => out.extend_from_slice(request.uri.path().as_bytes()),
            Var::Args => out.extend_from_slice(request.uri.query().unwrap_or_default().as_bytes()),
            Var::Scheme => out.extend_from_slice(request.scheme.as_bytes()),
            Var::Method => out.extend_from_slice(request.method.as_str().as_bytes()),
            Var::RequestId => {
                if let Some(id) = request.request_id {
                    out.extend_from_slice(id.as_bytes());
                }
            }
        }
    }
}

impl Template {
    /// Parses `source`; `$name` takes the longest run of letters, digits and
    /// `_`, as nginx does, and `${name}` delimits a name explicitly.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let bytes = source.as_bytes();
        let mut parts = Vec::new();
        let mut text_start = 0;
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] != b'$' {
                at += 1;
                continue;
            }
            if at > text_start {
                parts.push(Part::Text(source[text_start..at].to_owned()));
            }
            let (name, end) = if bytes.get(at + 1) == Some(&b'{') {
                let close = source[at + 2..]
                    .find('}')
                    .ok_or(TemplateError::Unclosed(at))?;
                (&source[at + 2..at + 2 + close], at + 3 + close)
            } else {
                let len = bytes[at + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                (&source[at + 1..at + 1 + len], at + 1 + len)
            };
            if name.is_empty() {
                return Err(TemplateError::StrayDollar(at));
            }
            let var = Var::from_name(name)
                .ok_or_else(|| TemplateError::UnknownVariable(name.to_owned()))?;
            parts.push(Part::Var(var));
            at = end;
            text_start = end;
        }
        if text_start < bytes.len() {
            parts.push(Part::Text(source[text_start..].to_owned()));
        }
        Ok(Template {
            source: source.to_owned(),
            parts,
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the template has variables (is not a constant).
    pub fn has_variables(&self) -> bool {
        self.parts.iter().any(|part| matches!(part, Part::Var(_)))
    }

    /// The template filled in for `request`.
    fn render(&self, request: &AuthRequest<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.source.len() + 64);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.extend_from_slice(text.as_bytes()),
                Part::Var(var) => var.render(request, &mut out),
            }
        }
        out
    }

    /// A digest of the filled-in template in which every part is
    /// length-prefixed, so that no two different sets of values can share
    /// a key by concatenating the same way (`$http_a$http_b` with `ab`,`c`
    /// and `a`,`bc`).
    fn digest(&self, request: &AuthRequest<'_>) -> [u8; 32] {
        let mut hasher = Sha256::new();
        let mut value = Vec::new();
        for part in &self.parts {
            value.clear();
            match part {
                Part::Text(text) => value.extend_from_slice(text.as_bytes()),
                Part::Var(var) => var.render(request, &mut value),
            }
            hasher.update((value.len() as u64).to_le_bytes());
            hasher.update(&value);
        }
        hasher.finalize().into()
    }

    /// Refuses white space and control characters outside the variables.
    fn check_no_controls(&self) -> Result<(), TemplateError> {
        match self
            .source
            .bytes()
            .position(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        {
            Some(at) => Err(TemplateError::Control(at)),
            None => Ok(()),
        }
    }
}

// === Configuration ===

/// The `auth-url`: a constant URL, parsed once, or a template whose scheme
/// is fixed and whose rest is filled in per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUrl {
    template: Template,
    fixed: Option<Target>,
}

impl AuthUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        self.template.as_str()
    }
}

/// Where a subrequest goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Target {
    https: bool,
    /// The host as in the URL (`[::1]` keeps its brackets): the Host header.
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    fn from_uri(uri: &Uri) -> Result<Target, &'static str> {
        let https = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => true,
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => false,
            _ => return Err("not an absolute http:// or https:// URL"),
        };
        let authority = uri.authority().ok_or("no host")?;
        if authority.as_str().contains('@') {
            return Err("user information in the URL is not supported");
        }
        let host = authority.host();
        if host.is_empty() {
            return Err("no host");
        }
        Ok(Target {
            https,
            host: host.to_ascii_lowercase(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            path_and_query: uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned(),
        })
    }

    fn from_bytes(url: Vec<u8>) -> Result<Target, &'static str> {
        let uri = Uri::try_from(url).map_err(|_| "not a valid URL")?;
        Target::from_uri(&uri)
    }
}

/// One `auth-cache-duration` entry: the statuses it covers and how long
/// they are cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRule {
    /// The statuses; `None` is nginx's `any`.
    pub statuses: Option<Vec<u16>>,
    /// How long a decision with one of these statuses is reused.
    pub ttl: Duration,
}

/// An `auth-url` setup as the annotations give it; [`ExternalAuth::new`]
/// turns it into the per-route checker. Each `parse_*` function reads one
/// annotation value and names what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalAuthConfig {
    /// `auth-url`.
    pub url: AuthUrl,
    /// `auth-method`; `None` sends GET without the `X-Original-URI` and
    /// `X-Scheme` headers ingress-nginx adds when a method is set.
    pub method: Option<Method>,
    /// `auth-signin`: where a 401 redirects to.
    pub signin: Option<Template>,
    /// `auth-signin-redirect-param` (default `rd`).
    pub signin_redirect_param: String,
    /// `auth-response-headers`: copied from a 2xx auth response to the
    /// upstream request.
    pub response_headers: Vec<HeaderName>,
    /// `auth-request-redirect`: the `X-Auth-Request-Redirect` value
    /// (default: the request URI).
    pub request_redirect: Option<Template>,
    /// `auth-cache-key`: caching is on when set.
    pub cache_key: Option<Template>,
    /// `auth-cache-duration` (default `200 202 401 5m`).
    pub cache_duration: Vec<CacheRule>,
    /// The whole subrequest's timeout.
    pub timeout: Duration,
}

impl ExternalAuthConfig {
    /// A configuration for `url` with every other annotation at its default.
    pub fn new(url: AuthUrl) -> Self {
        Self {
            url,
            method: None,
            signin: None,
            signin_redirect_param: DEFAULT_SIGNIN_REDIRECT_PARAM.to_owned(),
            response_headers: Vec::new(),
            request_redirect: None,
            cache_key: None,
            cache_duration: default_cache_rules(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `auth-url`: an absolute `http://` or `https://` URL with a host,
    /// which may hold variables (`https://$host/oauth2/auth`). Beware that
    /// a variable in the host part lets whoever controls it (a client's
    /// Host header on a catch-all route) choose the auth service.
    pub fn parse_url(value: &str) -> Result<AuthUrl, ExternalAuthError> {
        let error = |reason| ExternalAuthError::Url {
            value: value.to_owned(),
            reason,
        };
        let template = parse_template("auth-url", value)?;
        if template.has_variables() {
            let lower = value.to_ascii_lowercase();
            let scheme_len = if lower.starts_with("https://") {
                8
            } else if lower.starts_with("http://") {
                7
            } else {
                return Err(error("not an absolute http:// or https:// URL"));
            };
            if value.len() == scheme_len || value[scheme_len..].starts_with('/') {
                return Err(error("no host"));
            }
            return Ok(AuthUrl {
                template,
                fixed: None,
            });
        }
        let uri: Uri = value.parse().map_err(|_| error("not a valid URL"))?;
        let fixed = Target::from_uri(&uri).map_err(error)?;
        Ok(AuthUrl {
            template,
            fixed: Some(fixed),
        })
    }

    /// `auth-method`: one of ingress-nginx's methods, upper case (CONNECT,
    /// which it also accepts, makes no sense for a subrequest and is
    /// refused).
    pub fn parse_method(value: &str) -> Result<Method, ExternalAuthError> {
        const METHODS: [&str; 8] = [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
        ];
        if !METHODS.contains(&value) {
            return Err(ExternalAuthError::Method(value.to_owned()));
        }
        Method::from_bytes(value.as_bytes())
            .map_err(|_| ExternalAuthError::Method(value.to_owned()))
    }

    /// `auth-signin`: a URL (absolute or not) which may hold variables
    /// (`https://auth.example.com/start?rd=$escaped_request_uri`). Unless
    /// its query already has the redirect parameter, the redirect adds
    /// `<param>=$scheme://$http_host$escaped_request_uri`, as
    /// ingress-nginx's `buildAuthSignURL` does.
    pub fn parse_signin(value: &str) -> Result<Template, ExternalAuthError> {
        let template = parse_template("auth-signin", value)?;
        if value.is_empty() {
            return Err(ExternalAuthError::Signin {
                value: value.to_owned(),
                reason: "empty",
            });
        }
        Ok(template)
    }

    /// `auth-signin-redirect-param`: a query parameter name.
    pub fn parse_signin_redirect_param(value: &str) -> Result<String, ExternalAuthError> {
        let valid = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if valid {
            Ok(value.to_owned())
        } else {
            Err(ExternalAuthError::RedirectParam(value.to_owned()))
        }
    }

    /// `auth-response-headers`: comma-separated header names (ingress-nginx
    /// allows letters, digits, `-` and `_`); empty entries are skipped.
    pub fn parse_response_headers(value: &str) -> Result<Vec<HeaderName>, ExternalAuthError> {
        let mut names = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let valid = entry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            let name = HeaderName::from_bytes(entry.as_bytes())
                .ok()
                .filter(|_| valid)
                .ok_or_else(|| ExternalAuthError::ResponseHeader(entry.to_owned()))?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// `auth-request-redirect`: the `X-Auth-Request-Redirect` value, which
    /// may hold variables (`$scheme://$http_host$request_uri`).
    pub fn parse_request_redirect(value: &str) -> Result<Template, ExternalAuthError> {
        parse_template("auth-request-redirect", value)
    }

    /// `auth-cache-key`: a template naming what makes two requests' auth
    /// decisions the same (`$remote_user$http_authorization`).
    pub fn parse_cache_key(value: &str) -> Result<Template, ExternalAuthError> {
        let template = Template::parse(value).map_err(|error| ExternalAuthError::Template {
            annotation: "auth-cache-key",
            value: value.to_owned(),
            error,
        })?;
        Ok(template)
    }

    /// `auth-cache-duration`: comma-separated entries of status codes (or
    /// `any`) followed by a time (`200 202 10m, 401 30s`); several times in
    /// one entry add up (`1h 30m`). Units are nginx's: `ms`, `s`, `m`, `h`,
    /// `d`, `w`, `M` (30 days), `y` (365 days). An entry without codes
    /// covers 200, 301 and 302, as `proxy_cache_valid` does. Empty: the
    /// default, `200 202 401 5m`.
    pub fn parse_cache_duration(value: &str) -> Result<Vec<CacheRule>, ExternalAuthError> {
        let error = |reason: String| ExternalAuthError::CacheDuration {
            value: value.to_owned(),
            reason,
        };
        let mut rules = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let mut statuses: Option<Vec<u16>> = Some(Vec::new());
            let mut ttl: Option<Duration> = None;
            for word in entry.split_ascii_whitespace() {
                if word == "any" || (word.len() == 3 && word.bytes().all(|b| b.is_ascii_digit())) {
                    if ttl.is_some() {
                        return Err(error(format!("status {word:?} after the time")));
                    }
                    if word == "any" {
                        statuses = None;
                    } else {
                        let code: u16 = word.parse().unwrap_or_default();
                        if !(100..=599).contains(&code) {
                            return Err(error(format!("{code} is not an HTTP status")));
                        }
                        if let Some(codes) = statuses.as_mut() {
                            codes.push(code);
                        }
                    }
                    continue;
                }
                let time = parse_nginx_time(word).ok_or_else(|| {
                    error(format!(
                        "{word:?} is neither a status code nor a time like 5m"
                    ))
                })?;
                ttl = Some(ttl.unwrap_or_default().saturating_add(time));
            }
            let ttl = ttl.ok_or_else(|| error(format!("entry {entry:?} has no time")))?;
            let statuses = statuses.map(|codes| {
                if codes.is_empty() {
                    vec![200, 301, 302]
                } else {
                    codes
                }
            });
            rules.push(CacheRule { statuses, ttl });
        }
        if rules.is_empty() {
            rules = default_cache_rules();
        }
        Ok(rules)
    }
}

fn parse_template(annotation: &'static str, value: &str) -> Result<Template, ExternalAuthError> {
    let error = |error| ExternalAuthError::Template {
        annotation,
        value: value.to_owned(),
        error,
    };
    let template = Template::parse(value).map_err(error)?;
    template.check_no_controls().map_err(error)?;
    Ok(template)
}

fn default_cache_rules() -> Vec<CacheRule> {
    vec![CacheRule {
        statuses: Some(vec![200, 202, 401]),
        ttl: Duration::from_secs(300),
    }]
}

/// One nginx time (`500ms`, `30s`, `5m`, `1h`, `2d`, `1w`, `1M`, `1y`).
fn parse_nginx_time(word: &str) -> Option<Duration> {
    let digits = word.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = word.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "ms" => return Some(Duration::from_millis(number)),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "M" => 30 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(number.saturating_mul(seconds)))
}

// === The check ===

/// What the request path knows about a request when it asks for a
/// decision. The headers are the client's, as received (before the proxy
/// rewrites them for the upstream).
#[derive(Clone, Copy, Debug)]
pub struct AuthRequest<'a> {
    /// The request method.
    pub method: &'a Method,
    /// `http` or `https`: how the client reached the gateway (nginx's
    /// `$scheme`).
    pub scheme: &'a str,
    /// The normalised host name, lower case without port (`$host`).
    pub host: &'a str,
    /// The request target as received (`$request_uri` is its path and query).
    pub uri: &'a Uri,
    /// The client's request headers.
    pub headers: &'a HeaderMap,
    /// The client address (`$remote_addr`, `X-Real-IP`).
    pub client_ip: IpAddr,
    /// The `X-Forwarded-For` value the upstream gets when it is more than
    /// the client address (`compute-full-forwarded-for`); `None` sends the
    /// client address.
    pub forwarded_for: Option<&'a HeaderValue>,
    /// The request id the upstream gets (`X-Request-ID`, `$request_id`).
    pub request_id: Option<&'a HeaderValue>,
    /// `enable-underscores-in-headers`: pass client header names with `_`
    /// (dropped otherwise, as nginx's `ignore_invalid_headers` does).
    pub underscores: bool,
}

impl AuthRequest<'_> {
    /// `$request_uri`: the path and query as received.
    fn request_uri(&self) -> &str {
        self.uri.path_and_query().map_or("/", |pq| pq.as_str())
    }

    /// `$http_host`: the Host header, or the authority of an absolute-form
    /// or HTTP/2 request, or the host name.
    fn http_host(&self) -> &[u8] {
        if let Some(host) = self.headers.get(HOST) {
            return host.as_bytes();
        }
        match self.uri.authority() {
            Some(authority) => authority.as_str().as_bytes(),
            None => self.host.as_bytes(),
        }
    }
}

/// The outcome of [`ExternalAuth::check`].
#[derive(Debug)]
pub enum AuthDecision {
    /// Proxy the request, with these headers from the auth response set on
    /// the upstream request (see [`ExternalAuth::set_upstream_headers`]).
    Allow(Vec<(HeaderName, HeaderValue)>),
    /// Answer the client with this instead (boxed: `Allow` is the common
    /// case).
    Deny(Box<Refusal>),
}

/// External authentication for one route.
#[derive(Debug)]
pub struct ExternalAuth {
    url: AuthUrl,
    method: Option<Method>,
    signin: Option<Template>,
    response_headers: Vec<HeaderName>,
    request_redirect: Option<Template>,
    cache: Option<AuthCache>,
    timeout: Duration,
}

/// What an auth response said, as far as the decision goes; cached as is.
#[derive(Debug)]
struct Outcome {
    status: StatusCode,
    /// The `auth-response-headers` the response had.
    granted: Vec<(HeaderName, HeaderValue)>,
    www_authenticate: Vec<HeaderValue>,
    set_cookie: Vec<HeaderValue>,
    freshness: Freshness,
}

impl ExternalAuth {
    /// The checker for one route.
    pub fn new(config: ExternalAuthConfig) -> Self {
        let signin = config
            .signin
            .map(|signin| signin_with_redirect(signin, &config.signin_redirect_param));
        let cache = config.cache_key.map(|key| AuthCache {
            key,
            rules: config.cache_duration,
            entries: Mutex::default(),
        });
        Self {
            url: config.url,
            method: config.method,
            signin,
            response_headers: config.response_headers,
            request_redirect: config.request_redirect,
            cache,
            timeout: config.timeout,
        }
    }

    /// Asks the auth service (or the cache) about `request`. Never fails:
    /// a failure of the auth service is a `Deny` with a 500.
    pub async fn check(&self, client: &AuthClient, request: &AuthRequest<'_>) -> AuthDecision {
        let cached = self.cache.as_ref().map(|cache| {
            let key = cache.key.digest(request);
            (cache, key, cache.get(&key))
        });
        let outcome = match cached {
            Some((_, _, Some(outcome))) => outcome,
            _ => {
                let asked = tokio::time::timeout(self.timeout, self.ask(client, request)).await;
                let outcome = match asked {
                    Ok(Ok(outcome)) => Arc::new(outcome),
                    Ok(Err(error)) => return self.failed(request, &error),
                    Err(_) => return self.failed(request, &AuthError::Timeout(self.timeout)),
                };
                if let Some((cache, key, None)) = cached {
                    cache.insert(key, &outcome);
                }
                outcome
            }
        };
        self.decide(&outcome, request)
    }

    /// Sets the granted headers on the upstream request, first removing
    /// every header named in `auth-response-headers` that the client sent,
    /// so that a client cannot pose as an authenticated user when the auth
    /// response lacks one (nginx's `proxy_set_header` with an empty value
    /// does the same). Call it after the proxy's own header rewriting,
    /// which drops names with `_`.
    pub fn set_upstream_headers(
        &self,
        headers: &mut HeaderMap,
        granted: Vec<(HeaderName, HeaderValue)>,
    ) {
        for name in &self.response_headers {
            headers.remove(name);
        }
        for (name, value) in granted {
            headers.append(name, value);
        }
    }

    fn decide(&self, outcome: &Outcome, request: &AuthRequest<'_>) -> AuthDecision {
        let status = outcome.status;
        if status.is_success() {
            return AuthDecision::Allow(outcome.granted.clone());
        }
        let response = match status {
            StatusCode::UNAUTHORIZED => match &self.signin {
                Some(signin) => self.signin_redirect(signin, outcome, request),
                None => {
                    let mut response = Refusal::error_page(status);
                    for value in &outcome.www_authenticate {
                        response
                            .headers_mut()
                            .append(WWW_AUTHENTICATE, value.clone());
                    }
                    response
                }
            },
            StatusCode::FORBIDDEN => Refusal::error_page(status),
            _ => {
                tracing::warn!(
                    auth_url = self.url.as_str(),
                    %status,
                    uri = %request.uri,
                    "external auth answered neither 2xx, 401 nor 403"
                );
                Refusal::error_page(StatusCode::INTERNAL_SERVER_ERROR)
            }
        };
        AuthDecision::Deny(Box::new(response))
    }

    fn signin_redirect(
        &self,
        signin: &Template,
        outcome: &Outcome,
        request: &AuthRequest<'_>,
    ) -> Refusal {
        let Ok(location) = HeaderValue::from_bytes(&signin.render(request)) else {
            tracing::warn!(
                auth_signin = signin.as_str(),
                uri = %request.uri,
                "auth-signin made an invalid Location"
            );
            return Refusal::error_page(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let mut response = Refusal::error_page(StatusCode::FOUND);
        let headers = response.headers_mut();
        headers.insert(LOCATION, location);
        for cookie in &outcome.set_cookie {
            headers.append(SET_COOKIE, cookie.clone());
        }
        response
    }

    fn failed(&self, request: &AuthRequest<'_>, error: &AuthError) -> AuthDecision {
        tracing::warn!(
            auth_url = self.url.as_str(),
            uri = %request.uri,
            %error,
            "external auth failed"
        );
        AuthDecision::Deny(Box::new(Refusal::error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
        )))
    }

    /// One subrequest.
    async fn ask(
        &self,
        client: &AuthClient,
        request: &AuthRequest<'_>,
    ) -> Result<Outcome, AuthError> {
        let target = match &self.url.fixed {
            Some(target) => target.clone(),
            None => {
                let url = self.url.template.render(request);
                Target::from_bytes(url).map_err(AuthError::Url)?
            }
        };
        let method = self.method.clone().unwrap_or(Method::GET);
        let headers = self.subrequest_headers(request, &target);
        let (status, response_headers) = client.send(&target, &method, &headers).await?;
        Ok(self.outcome(status, &response_headers))
    }

    /// The client's headers minus the hop-by-hop and body ones, plus
    /// ingress-nginx's auth location headers.
    fn subrequest_headers(&self, request: &AuthRequest<'_>, target: &Target) -> HeaderMap {
        let nominated: Vec<HeaderName> = request
            .headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect();
        let mut headers = HeaderMap::with_capacity(request.headers.len() + 12);
        for (name, value) in request.headers {
            let dropped = is_hop_by_hop(name)
                || name == CONTENT_LENGTH
                || name == EXPECT
                || name == HOST
                || name == PROXY
                || name == X_FORWARDED_PROTO
                || (!request.underscores && name.as_str().contains('_'))
                || nominated.contains(name);
            if !dropped {
                headers.append(name.clone(), value.clone());
            }
        }
        let mut set = |name: &HeaderName, value: Vec<u8>| {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                headers.insert(name.clone(), value);
            }
        };
        set(&HOST, target.host.clone().into_bytes());
        let request_uri = request.request_uri().as_bytes();
        let mut original_url = Vec::with_capacity(request_uri.len() + 64);
        original_url.extend_from_slice(request.scheme.as_bytes());
        original_url.extend_from_slice(b"://");
        original_url.extend_from_slice(request.http_host());
        original_url.extend_from_slice(request_uri);
        set(&X_ORIGINAL_URL, original_url);
        set(
            &X_ORIGINAL_METHOD,
            request.method.as_str().as_bytes().to_vec(),
        );
        set(&X_SENT_FROM, b"nginx-ingress-controller".to_vec());
        let client_ip = request.client_ip.to_canonical().to_string().into_bytes();
        set(&X_REAL_IP, client_ip.clone());
        let forwarded_for = request
            .forwarded_for
            .map_or(client_ip, |value| value.as_bytes().to_vec());
        set(&X_FORWARDED_FOR, forwarded_for);
        let redirect = match &self.request_redirect {
            Some(template) => template.render(request),
            None => request_uri.to_vec(),
        };
        set(&X_AUTH_REQUEST_REDIRECT, redirect);
        if let Some(id) = request.request_id {
            set(&X_REQUEST_ID, id.as_bytes().to_vec());
        }
        if self.method.is_some() {
            set(&X_ORIGINAL_URI, request_uri.to_vec());
            set(&X_SCHEME, request.scheme.as_bytes().to_vec());
        }
        headers
    }

    fn outcome(&self, status: StatusCode, headers: &HeaderMap) -> Outcome {
        let mut granted = Vec::new();
        if status.is_success() {
            for name in &self.response_headers {
                if let Some(value) = joined(headers, name) {
                    granted.push((name.clone(), value));
                }
            }
        }
        Outcome {
            status,
            granted,
            www_authenticate: headers.get_all(WWW_AUTHENTICATE).iter().cloned().collect(),
            set_cookie: headers.get_all(SET_COOKIE).iter().cloned().collect(),
            freshness: Freshness::of(headers),
        }
    }
}

/// All values of a header joined with `, ` (nginx's `$upstream_http_*`).
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<HeaderValue> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut joined = first.as_bytes().to_vec();
    for value in values {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(value.as_bytes());
    }
    HeaderValue::from_bytes(&joined).ok()
}

/// Adds the redirect parameter to an `auth-signin` template unless its
/// query already has it with a value (ingress-nginx's `buildAuthSignURL`).
fn signin_with_redirect(signin: Template, param: &str) -> Template {
    let source = signin.as_str();
    let query = source
        .split_once('?')
        .map(|(_, query)| query.split('#').next().unwrap_or_default());
    let has_param = query.is_some_and(|query| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .any(|(name, value)| name == param && !value.is_empty())
    });
    if has_param {
        return signin;
    }
    let separator = match query {
        None => "?",
        Some(_) if source.ends_with('?') || source.ends_with('&') => "",
        Some(_) => "&",
    };
    let Template {
        mut source,
        mut parts,
    } = signin;
    let added = [
        Part::Text(format!("{separator}{param}=")),
        Part::Var(Var::Scheme),
        Part::Text("://".to_owned()),
        Part::Var(Var::HttpHost),
        Part::Var(Var::EscapedRequestUri),
    ];
    source.push_str(&format!(
        "{separator}{param}=$scheme://$http_host$escaped_request_uri"
    ));
    parts.extend(added);
    Template { source, parts }
}

// === The cache ===

/// What an auth response's own headers say about caching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freshness {
    /// `auth-cache-duration` decides.
    Default,
    /// The response says how long.
    For(Duration),
    /// The response may not be cached.
    Never,
}

impl Freshness {
    /// nginx's rules: `X-Accel-Expires` first, then `Cache-Control`
    /// (`no-store`, `no-cache`, `private`, `max-age`); `Set-Cookie` or
    /// `Vary: *` forbid caching.
    fn of(headers: &HeaderMap) -> Freshness {
        if headers.contains_key(SET_COOKIE)
            || headers.get_all(VARY).iter().any(|v| {
                v.as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii() == b"*")
            })
        {
            return Freshness::Never;
        }
        if let Some(seconds) = headers
            .get(&X_ACCEL_EXPIRES)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return match seconds {
                0 => Freshness::Never,
                s => Freshness::For(Duration::from_secs(s)),
            };
        }
        let mut freshness = Freshness::Default;
        for directive in headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let directive = directive.trim().to_ascii_lowercase();
            if matches!(directive.as_str(), "no-store" | "no-cache" | "private") {
                return Freshness::Never;
            }
            if let Some(seconds) = directive.strip_prefix("max-age=") {
                freshness = match seconds.trim_matches('"').parse::<u64>() {
                    Ok(0) | Err(_) => Freshness::Never,
                    Ok(s) => Freshness::For(Duration::from_secs(s)),
                };
            }
        }
        freshness
    }
}

/// Decisions per cache key, bounded, oldest evicted first.
#[derive(Debug)]
struct AuthCache {
    key: Template,
    rules: Vec<CacheRule>,
    entries: Mutex<CacheEntries>,
}

#[derive(Debug, Default)]
struct CacheEntries {
    by_key: HashMap<[u8; 32], CacheEntry>,
    /// Insertion sequence number to key, oldest first.
    order: BTreeMap<u64, [u8; 32]>,
    next: u64,
}

#[derive(Debug)]
struct CacheEntry {
    outcome: Arc<Outcome>,
    expires: Instant,
    sequence: u64,
}

impl AuthCache {
    /// How long an outcome may be reused: its status must be listed in
    /// `auth-cache-duration`, and its own headers may shorten, lengthen or
    /// forbid that (first matching rule wins, as in nginx).
    fn ttl(&self, outcome: &Outcome) -> Option<Duration> {
        let status = outcome.status.as_u16();
        let rule = self.rules.iter().find(|rule| {
            rule.statuses
                .as_ref()
                .is_none_or(|codes| codes.contains(&status))
        })?;
        match outcome.freshness {
            Freshness::Never => None,
            Freshness::For(ttl) => Some(ttl),
            Freshness::Default => Some(rule.ttl).filter(|ttl| !ttl.is_zero()),
        }
    }

    fn get(&self, key: &[u8; 32]) -> Option<Arc<Outcome>> {
        let mut entries = self.lock();
        let entry = entries.by_key.get(key)?;
        if entry.expires > Instant::now() {
            return Some(entry.outcome.clone());
        }
        let sequence = entry.sequence;
        entries.by_key.remove(key);
        entries.order.remove(&sequence);
        None
    }

    fn insert(&self, key: [u8; 32], outcome: &Arc<Outcome>) {
        let Some(ttl) = self.ttl(outcome) else {
            return;
        };
        let Some(expires) = Instant::now().checked_add(ttl) else {
            return;
        };
        let mut entries = self.lock();
        let sequence = entries.next;
        entries.next += 1;
        let entry = CacheEntry {
            outcome: outcome.clone(),
            expires,
            sequence,
        };
        if let Some(old) = entries.by_key.insert(key, entry) {
            entries.order.remove(&old.sequence);
        }
        entries.order.insert(sequence, key);
        while entries.by_key.len() > CACHE_ENTRIES {
            let Some((_, oldest)) = entries.order.pop_first() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === The client ===

/// Why a subrequest failed (the client gets a 500; this goes to the log).
#[derive(Debug, thiserror::Error)]
enum AuthError {
    #[error("auth URL: {0}")]
    Url(&'static str),
    #[error("resolving {host}: {source}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    #[error("TLS handshake: {0}")]
    Tls(#[source] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[source] hyper::Error),
    #[error("invalid request: {0}")]
    Request(#[source] http::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

type Sender = http1::SendRequest<Empty<Bytes>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PoolKey {
    https: bool,
    host: String,
    port: u16,
}

#[derive(Debug)]
struct IdleConn {
    sender: Sender,
    since: Instant,
}

/// A small HTTP/1.1 client for auth subrequests, shared by every route:
/// plain HTTP and HTTPS (rustls with the aws-lc-rs provider, certificates
/// verified against the system's trust store, which `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` can point at a cluster CA), host names resolved per
/// connection (cluster DNS), and a few idle keep-alive connections per
/// auth service.
pub struct AuthClient {
    tls: TlsConnector,
    connect_timeout: Duration,
    pool: Mutex<HashMap<PoolKey, Vec<IdleConn>>>,
}

impl std::fmt::Debug for AuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthClient")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl AuthClient {
    /// A client trusting the system's certificate authorities (loaded now;
    /// certificates that fail to load are logged and skipped).
    pub fn new() -> Result<Self, rustls::Error> {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!(%error, "loading system CA certificates for external auth");
        }
        let mut roots = rustls::RootCertStore::empty();
        let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
        tracing::debug!(added, ignored, "system CA certificates for external auth");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self::with_tls_config(Arc::new(config)))
    }

    /// A client with its own TLS configuration (another trust store, a
    /// client certificate).
    pub fn with_tls_config(config: Arc<ClientConfig>) -> Self {
        Self {
            tls: TlsConnector::from(config),
            connect_timeout: CONNECT_TIMEOUT,
            pool: Mutex::default(),
        }
    }

    /// Sets the connect timeout (resolve, TCP and TLS together).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sends one bodiless request and reads the response head (the body is
    /// drained so that the connection can be reused). A pooled connection
    /// that turns out dead is replaced once.
    async fn send(
        &self,
        target: &Target,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<(StatusCode, HeaderMap), AuthError> {
        let key = PoolKey {
            https: target.https,
            host: target.host.clone(),
            port: target.port,
        };
        let build = || {
            let mut request = Request::builder()
                .method(method.clone())
                .uri(target.path_and_query.as_str())
                .body(Empty::<Bytes>::new())
                .map_err(AuthError::Request)?;
            *request.headers_mut() = headers.clone();
            Ok::<_, AuthError>(request)
        };
        let (mut sender, response) = match self.checkout(&key) {
            Some(mut sender) => match sender.send_request(build()?).await {
                Ok(response) => (sender, response),
                Err(error) => {
                    tracing::debug!(%error, host = %key.host, "pooled auth connection failed; retrying");
                    let mut sender = self.connect(&key).await?;
                    let response = sender
                        .send_request(build()?)
                        .await
                        .map_err(AuthError::Http)?;
                    (sender, response)
                }
            },
            None => {
                let mut sender = self.connect(&key).await?;
                let response = sender
                    .send_request(build()?)
                    .await
                    .map_err(AuthError::Http)?;
                (sender, response)
            }
        };
        let (parts, mut body) = response.into_parts();
        let mut drained = 0usize;
        let mut reusable = true;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(AuthError::Http)?;
            drained += frame.data_ref().map_or(0, Bytes::len);
            if drained > MAX_DRAINED_BODY {
                reusable = false;
                break;
            }
        }
        if reusable && is_ready_now(&mut sender) {
            self.checkin(key, sender);
        }
        Ok((parts.status, parts.headers))
    }

    fn checkout(&self, key: &PoolKey) -> Option<Sender> {
        let mut pool = self.lock();
        let idle = pool.get_mut(key)?;
        while let Some(IdleConn { mut sender, since }) = idle.pop() {
            if since.elapsed() < POOL_IDLE_TIMEOUT && is_ready_now(&mut sender) {
                return Some(sender);
            }
        }
        None
    }

    fn checkin(&self, key: PoolKey, sender: Sender) {
        let mut pool = self.lock();
        if !pool.contains_key(&key) && pool.len() >= POOL_SERVICES {
            pool.retain(|_, idle| !idle.is_empty());
            if pool.len() >= POOL_SERVICES {
                return;
            }
        }
        let idle = pool.entry(key).or_default();
        idle.retain(|conn| conn.since.elapsed() < POOL_IDLE_TIMEOUT);
        if idle.len() < POOL_IDLE_PER_SERVICE {
            idle.push(IdleConn {
                sender,
                since: Instant::now(),
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PoolKey, Vec<IdleConn>>> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Resolves, connects (to each address in turn), does TLS for https,
    /// and hands the connection to a task; all within the connect timeout.
    async fn connect(&self, key: &PoolKey) -> Result<Sender, AuthError> {
        let timeout = self.connect_timeout;
        tokio::time::timeout(timeout, self.connect_inner(key))
            .await
            .map_err(|_| AuthError::ConnectTimeout(timeout))?
    }

    async fn connect_inner(&self, key: &PoolKey) -> Result<Sender, AuthError> {
        let host = key.host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, key.port))
            .await
            .map_err(|source| AuthError::Resolve {
                host: host.to_owned(),
                source,
            })?
            .collect();
        let mut last_error = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let stream = match (stream, last_error) {
            (Some(stream), _) => stream,
            (None, Some(error)) => return Err(AuthError::Connect(error)),
            (None, None) => return Err(AuthError::NoAddress(host.to_owned())),
        };
        // Best effort: a failure only costs latency.
        let _ = stream.set_nodelay(true);
        if key.https {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|_| AuthError::ServerName(host.to_owned()))?;
            let tls = self
                .tls
                .connect(name, stream)
                .await
                .map_err(AuthError::Tls)?;
            handshake(TokioIo::new(tls), key).await
        } else {
            handshake(TokioIo::new(stream), key).await
        }
    }
}

async fn handshake<T>(io: T, key: &PoolKey) -> Result<Sender, AuthError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::Builder::new()
        .handshake(io)
        .await
        .map_err(AuthError::Http)?;
    let host = key.host.clone();
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%host, %error, "auth connection ended with an error");
        }
    });
    Ok(sender)
}

/// Whether a connection can take a request now, without waiting.
fn is_ready_now(sender: &mut Sender) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Response;
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http_body_util::Full;
    use hyper::body::Incoming;
    use hyper::service::service_fn;
    use proptest::prelude::*;
    use tokio::net::TcpListener;

    // === A tiny auth service ===

    #[derive(Clone, Debug)]
    struct Seen {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
    }

    #[derive(Default)]
    struct ServerState {
        seen: Mutex<Vec<Seen>>,
        connections: AtomicUsize,
    }

    struct AuthServer {
        addr: SocketAddr,
        state: Arc<ServerState>,
    }

    impl AuthServer {
        fn hits(&self) -> usize {
            self.state.seen.lock().unwrap().len()
        }

        fn last(&self) -> Seen {
            self.state.seen.lock().unwrap().last().cloned().unwrap()
        }

        fn url(&self, path: &str) -> AuthUrl {
            ExternalAuthConfig::parse_url(&format!("http://{}{path}", self.addr)).unwrap()
        }
    }

    /// Answers by the `x-test-mode` request header (the client's headers
    /// reach the auth service, so the test client chooses).
    async fn answer(
        req: Request<Incoming>,
        state: Arc<ServerState>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        state.seen.lock().unwrap().push(Seen {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
        });
        let mode = req
            .headers()
            .get("x-test-mode")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("allow")
            .to_owned();
        let mut response = Response::builder();
        let mut body = Bytes::from_static(b"auth says hello");
        response = match mode.as_str() {
            "allow" => response
                .status(200)
                .header("x-auth-user", "alice")
                .header("x-auth-groups", "a")
                .header("x-auth-groups", "b")
                .header("x-unlisted", "no"),
            "allow-202" => response.status(202).header("x-auth-user", "bob"),
            "no-store" => response
                .status(200)
                .header("cache-control", "no-store")
                .header("x-auth-user", "alice"),
            "big" => {
                body = Bytes::from(vec![b'x'; 100 * 1024]);
                response.status(200)
            }
            "401" => response
                .status(401)
                .header("www-authenticate", "Bearer realm=\"auth\""),
            "401-cookie" => response
                .status(401)
                .header("www-authenticate", "Bearer realm=\"auth\"")
                .header("set-cookie", "session=; Max-Age=0"),
            "403" => response.status(403),
            "302" => response.status(302).header("location", "/elsewhere"),
            "500" => response.status(500),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                response.status(200)
            }
            other => panic!("unknown test mode {other}"),
        };
        Ok(response.body(Full::new(body)).unwrap())
    }

    async fn auth_server() -> AuthServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ServerState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        AuthServer { addr, state }
    }

    // === The client request ===

    struct ClientRequest {
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        request_id: HeaderValue,
    }

    impl ClientRequest {
        fn new(mode: &str) -> Self {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_static("app.example.com"));
            headers.insert("x-test-mode", HeaderValue::from_str(mode).unwrap());
            Self {
                method: Method::GET,
                uri: Uri::from_static("/api/v1/predict/1?x=1&y=a%20b"),
                headers,
                request_id: HeaderValue::from_static("0123456789abcdef0123456789abcdef"),
            }
        }

        fn header(mut self, name: &'static str, value: &'static str) -> Self {
            self.headers.append(name, HeaderValue::from_static(value));
            self
        }

        fn auth(&self) -> AuthRequest<'_> {
            AuthRequest {
                method: &self.method,
                scheme: "https",
                host: "app.example.com",
                uri: &self.uri,
                headers: &self.headers,
                client_ip: IpAddr::from([10, 1, 2, 3]),
                forwarded_for: None,
                request_id: Some(&self.request_id),
                underscores: false,
            }
        }
    }

    fn client() -> AuthClient {
        AuthClient::new().unwrap()
    }

    fn config(server: &AuthServer) -> ExternalAuthConfig {
        ExternalAuthConfig::new(server.url("/auth?from=test"))
    }

    async fn status_of(decision: AuthDecision) -> (StatusCode, HeaderMap, String) {
        let AuthDecision::Deny(response) = decision else {
            panic!("expected a denial, got {decision:?}");
        };
        let (parts, body) = crate::proxy::respond::refusal(*response).into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        (
            parts.status,
            parts.headers,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    // === Branches ===

    #[tokio::test]
    async fn a_2xx_allows_and_grants_the_listed_headers() {
        let server = auth_server().await;
        let mut config = config(&server);
        config.response_headers =
            ExternalAuthConfig::parse_response_headers("X-Auth-User, x-auth-groups,X-Auth-Email")
                .unwrap();
        let auth = ExternalAuth::new(config);
        let request = ClientRequest::new("allow");
        let AuthDecision::Allow(granted) = auth.check(&client(), &request.auth()).await else {
            panic!("denied");
        };
        assert_eq!(
            granted,
            [
                (
                    HeaderName::from_static("x-auth-user"),
                    HeaderValue::from_static("alice")
                ),
                (
                    HeaderName::from_static("x-auth-groups"),
                    HeaderValue::from_static("a, b")
                ),
            ]
        );

        // The client's own copies of the listed headers never reach the upstream.
        let mut upstream = HeaderMap::new();
        upstream.insert("x-auth-user", HeaderValue::from_static("mallory"));
        upstream.insert("x-auth-email", HeaderValue::from_static("spoofed"));
        upstream.insert("x-kept", HeaderValue::from_static("1"));
        auth.set_upstream_headers(&mut upstream, granted);
        assert_eq!(upstream["x-auth-user"], "alice");
        assert_eq!(upstream["x-auth-groups"], "a, b");
        assert!(upstream.get("x-auth-email").is_none());
        assert_eq!(upstream["x-kept"], "1");

        let request = ClientRequest::new("allow-202");
        assert!(matches!(
            auth.check(&client(), &request.auth()).await,
            AuthDecision::Allow(_)
        ));
    }

    #[tokio::test]
    async fn the_auth_service_gets_ingress_nginx_headers() {
        let server = auth_server().await;
        let auth = ExternalAuth::new(config(&server));
        let mut request = ClientRequest::new("allow")
            .header("authorization", "Bearer token")
            .header("content-type", "application/json")
            .header("content-length", "5")
            .header("connection", "x-hop")
            .header("x-hop", "1")
            .header("x-forwarded-proto", "http")
            .header("x-original-url", "https://spoofed/")
            .header("x-under_score", "1")
            .header("cookie", "a=1");
        request.method = Method::POST;
        let decision = auth.check(&client(), &request.auth()).await;
        assert!(matches!(decision, AuthDecision::Allow(_)), "{decision:?}");
        let seen = server.last();
        assert_eq!(seen.method, Method::GET, "auth-method defaults to GET");
        assert_eq!(seen.uri, "/auth?from=test");
        let h = &seen.headers;
        assert_eq!(
            h[HOST], "127.0.0.1",
            "the auth URL's host name, as ingress-nginx"
        );
        assert_eq!(
            h["x-original-url"],
            "https://app.example.com/api/v1/predict/1?x=1&y=a%20b"
        );
        assert_eq!(h["x-original-method"], "POST");
        assert_eq!(h["x-sent-from"], "nginx-ingress-controller");
        assert_eq!(h["x-real-ip"], "10.1.2.3");
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(
            h["x-auth-request-redirect"],
            "/api/v1/predict/1?x=1&y=a%20b"
        );
        assert_eq!(h["x-request-id"], "0123456789abcdef0123456789abcdef");
        assert_eq!(h["authorization"], "Bearer token", "client headers pass");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["cookie"], "a=1");
        for absent in [
            "content-length",
            "x-hop",
            "x-forwarded-proto",
            "x-under_score",
            "x-original-uri",
            "x-scheme",
            "transfer-encoding",
        ] {
            assert!(h.get(absent).is_none(), "{absent} sent: {h:?}");
        }
    }

    #[tokio::test]
    async fn auth_method_and_request_redirect_are_applied() {
        let server = auth_server().await;
        let mut config = config(&server);
        config.method = Some(ExternalAuthConfig::parse_method("POST").unwrap());
        config.request_redirect = Some(
            ExternalAuthConfig::parse_request_redirect("$scheme://$http_host$request_uri").unwrap(),
        );
        let auth = ExternalAuth::new(config);
        let forwarded = HeaderValue::from_static("192.0.2.1, 10.1.2.3");
        let request = ClientRequest::new("allow").header("x_team", "a");
        let mut auth_request = request.auth();
        auth_request.forwarded_for = Some(&forwarded);
        auth_request.underscores = true;
        assert!(matches!(
            auth.check(&client(), &auth_request).await,
            AuthDecision::Allow(_)
        ));
        let seen = server.last();
        assert_eq!(seen.method, Method::POST);
        let h = &seen.headers;
        assert_eq!(
            h["x-auth-request-redirect"],
            "https://app.example.com/api/v1/predict/1?x=1&y=a%20b"
        );
        assert_eq!(h["x-original-uri"], "/api/v1/predict/1?x=1&y=a%20b");
        assert_eq!(h["x-scheme"], "https");
        assert_eq!(h["x_team"], "a", "enable-underscores-in-headers");
        assert_eq!(h["x-forwarded-for"], "192.0.2.1, 10.1.2.3");
        assert!(h.get("content-length").is_none() || h["content-length"] == "0");
    }

    #[tokio::test]
    async fn a_401_or_403_goes_back_to_the_client() {
        let server = auth_server().await;
        let auth = ExternalAuth::new(config(&server));
        let (status, headers, body) = status_of(
            auth.check(&client(), &ClientRequest::new("401").auth())
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[WWW_AUTHENTICATE], "Bearer realm=\"auth\"");
        assert!(headers.get(SET_COOKIE).is_none());
        assert!(body.contains("401 Unauthorized"), "{body}");
        assert!(
            !body.contains("auth says hello"),
            "nginx's page, not the service's body"
        );

        let (status, headers, _) = status_of(
            auth.check(&client(), &ClientRequest::new("403").auth())
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(headers.get(WWW_AUTHENTICATE).is_none());
    }

    #[tokio::test]
    async fn any_other_status_is_a_500() {
        let server = auth_server().await;
        let auth = ExternalAuth::new(config(&server));
        for mode in ["500", "302"] {
            let (status, _, _) = status_of(
                auth.check(&client(), &ClientRequest::new(mode).auth())
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{mode}");
        }
        // A body too long to drain still gives a decision.
        let request = ClientRequest::new("big");
        assert!(matches!(
            auth.check(&client(), &request.auth()).await,
            AuthDecision::Allow(_)
        ));
    }

    #[tokio::test]
    async fn signin_turns_a_401_into_a_redirect() {
        let server = auth_server().await;
        let cases = [
            (
                "https://auth.example.com/oauth2/start",
                None,
                "https://auth.example.com/oauth2/start?rd=https://app.example.com%2Fapi%2Fv1%2Fpredict%2F1%3Fx%3D1%26y%3Da%2520b",
            ),
            (
                "https://auth.example.com/start?a=b",
                Some("redirect_to"),
                "https://auth.example.com/start?a=b&redirect_to=https://app.example.com%2Fapi%2Fv1%2Fpredict%2F1%3Fx%3D1%26y%3Da%2520b",
            ),
            (
                "https://$host/oauth2/start?rd=$escaped_request_uri",
                None,
                "https://app.example.com/oauth2/start?rd=%2Fapi%2Fv1%2Fpredict%2F1%3Fx%3D1%26y%3Da%2520b",
            ),
        ];
        for (signin, param, expected) in cases {
            let mut config = config(&server);
            config.signin = Some(ExternalAuthConfig::parse_signin(signin).unwrap());
            if let Some(param) = param {
                config.signin_redirect_param =
                    ExternalAuthConfig::parse_signin_redirect_param(param).unwrap();
            }
            let auth = ExternalAuth::new(config);
            let (status, headers, _) = status_of(
                auth.check(&client(), &ClientRequest::new("401-cookie").auth())
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::FOUND, "{signin}");
            assert_eq!(headers[LOCATION], expected, "{signin}");
            assert_eq!(
                headers[SET_COOKIE], "session=; Max-Age=0",
                "the auth cookie is passed"
            );
            // A 403 is not redirected.
            let (status, _, _) = status_of(
                auth.check(&client(), &ClientRequest::new("403").auth())
                    .await,
            )
            .await;
            assert_eq!(status, StatusCode::FORBIDDEN);
        }
    }

    #[tokio::test]
    async fn failures_and_timeouts_are_500s() {
        let server = auth_server().await;
        let mut config = config(&server);
        config.timeout = Duration::from_millis(300);
        let auth = ExternalAuth::new(config);
        let started = Instant::now();
        let (status, _, _) = status_of(
            auth.check(&client(), &ClientRequest::new("slow").auth())
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );

        // Nothing listens on a port just freed.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = ExternalAuthConfig::parse_url(&format!("http://127.0.0.1:{port}/auth")).unwrap();
        let auth = ExternalAuth::new(ExternalAuthConfig::new(url));
        let (status, _, _) = status_of(
            auth.check(&client(), &ClientRequest::new("allow").auth())
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

        let url = ExternalAuthConfig::parse_url("http://no-such-host.invalid/auth").unwrap();
        let mut config = ExternalAuthConfig::new(url);
        config.timeout = Duration::from_secs(2);
        let auth = ExternalAuth::new(config);
        let (status, _, _) = status_of(
            auth.check(&client(), &ClientRequest::new("allow").auth())
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_templated_url_is_filled_in_per_request() {
        let server = auth_server().await;
        let url = ExternalAuthConfig::parse_url(
            "http://$http_x_auth_host/check?uri=$escaped_request_uri",
        )
        .unwrap();
        let auth = ExternalAuth::new(ExternalAuthConfig::new(url));
        let mut request = ClientRequest::new("allow");
        let host = HeaderValue::from_str(&server.addr.to_string()).unwrap();
        request.headers.insert("x-auth-host", host);
        assert!(matches!(
            auth.check(&client(), &request.auth()).await,
            AuthDecision::Allow(_)
        ));
        assert_eq!(
            server.last().uri,
            "/check?uri=%2Fapi%2Fv1%2Fpredict%2F1%3Fx%3D1%26y%3Da%2520b"
        );
        // A value that makes no URL is a 500, not a panic.
        let mut request = ClientRequest::new("allow");
        request
            .headers
            .insert("x-auth-host", HeaderValue::from_static("bad host/"));
        let (status, _, _) = status_of(auth.check(&client(), &request.auth()).await).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn connections_are_kept_alive() {
        let server = auth_server().await;
        let auth = ExternalAuth::new(config(&server));
        let client = client();
        for _ in 0..3 {
            let request = ClientRequest::new("allow");
            assert!(matches!(
                auth.check(&client, &request.auth()).await,
                AuthDecision::Allow(_)
            ));
        }
        assert_eq!(server.hits(), 3);
        assert_eq!(server.state.connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_check_future_can_run_on_any_worker() {
        fn is_send<T: Send>(_: &T) {}
        let auth = ExternalAuth::new(ExternalAuthConfig::new(
            ExternalAuthConfig::parse_url("http://auth/verify").unwrap(),
        ));
        let client = client();
        let request = ClientRequest::new("allow");
        let auth_request = request.auth();
        is_send(&auth.check(&client, &auth_request));
    }

    // === The cache ===

    #[tokio::test]
    async fn decisions_are_cached_per_key_for_the_listed_statuses() {
        let server = auth_server().await;
        let mut config = config(&server);
        config.cache_key =
            Some(ExternalAuthConfig::parse_cache_key("$http_authorization").unwrap());
        config.response_headers =
            ExternalAuthConfig::parse_response_headers("x-auth-user").unwrap();
        let auth = ExternalAuth::new(config);
        let client = client();
        let alice = ClientRequest::new("allow").header("authorization", "Bearer alice");
        for _ in 0..3 {
            let AuthDecision::Allow(granted) = auth.check(&client, &alice.auth()).await else {
                panic!("denied");
            };
            assert_eq!(granted[0].1, "alice", "cached with its headers");
        }
        assert_eq!(server.hits(), 1, "answered from the cache");
        let bob = ClientRequest::new("allow").header("authorization", "Bearer bob");
        auth.check(&client, &bob.auth()).await;
        assert_eq!(server.hits(), 2, "another key asks again");

        // 401 is in the default list; 403 is not.
        let denied = ClientRequest::new("401").header("authorization", "Bearer carol");
        for _ in 0..2 {
            let (status, headers, _) = status_of(auth.check(&client, &denied.auth()).await).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(headers[WWW_AUTHENTICATE], "Bearer realm=\"auth\"");
        }
        assert_eq!(server.hits(), 3, "401 cached");
        // A response that sets a cookie is never cached (nginx's rule).
        let cookie = ClientRequest::new("401-cookie").header("authorization", "Bearer dave");
        auth.check(&client, &cookie.auth()).await;
        auth.check(&client, &cookie.auth()).await;
        assert_eq!(server.hits(), 5);
    }

    #[tokio::test]
    async fn uncachable_answers_are_asked_every_time() {
        let server = auth_server().await;
        let mut config = config(&server);
        config.cache_key =
            Some(ExternalAuthConfig::parse_cache_key("$remote_user$http_authorization").unwrap());
        let auth = ExternalAuth::new(config);
        let client = client();
        for mode in ["403", "no-store", "500"] {
            let request = ClientRequest::new(mode).header("authorization", "Basic YTpi");
            let before = server.hits();
            auth.check(&client, &request.auth()).await;
            auth.check(&client, &request.auth()).await;
            assert_eq!(server.hits(), before + 2, "{mode} is not cached");
        }

        // Listing 403 caches it.
        let mut config = self::config(&server);
        config.cache_key =
            Some(ExternalAuthConfig::parse_cache_key("$http_authorization").unwrap());
        config.cache_duration = ExternalAuthConfig::parse_cache_duration("200 1m, 403 1m").unwrap();
        let auth = ExternalAuth::new(config);
        let request = ClientRequest::new("403").header("authorization", "Bearer x");
        let before = server.hits();
        auth.check(&client, &request.auth()).await;
        auth.check(&client, &request.auth()).await;
        assert_eq!(server.hits(), before + 1);
    }

    #[tokio::test]
    async fn cached_decisions_expire() {
        let server = auth_server().await;
        let mut config = config(&server);
        config.cache_key = Some(ExternalAuthConfig::parse_cache_key("$host").unwrap());
        config.cache_duration = ExternalAuthConfig::parse_cache_duration("200 300ms").unwrap();
        let auth = ExternalAuth::new(config);
        let client = client();
        let request = ClientRequest::new("allow");
        auth.check(&client, &request.auth()).await;
        auth.check(&client, &request.auth()).await;
        assert_eq!(server.hits(), 1);
        tokio::time::sleep(Duration::from_millis(400)).await;
        auth.check(&client, &request.auth()).await;
        assert_eq!(server.hits(), 2);
    }

    #[test]
    fn the_cache_is_bounded_oldest_first() {
        let cache = AuthCache {
            key: Template::parse("$host").unwrap(),
            rules: default_cache_rules(),
            entries: Mutex::default(),
        };
        let outcome = Arc::new(Outcome {
            status: StatusCode::OK,
            granted: Vec::new(),
            www_authenticate: Vec::new(),
            set_cookie: Vec::new(),
            freshness: Freshness::Default,
        });
        let key = |i: usize| {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            key
        };
        for i in 0..CACHE_ENTRIES + 5 {
            cache.insert(key(i), &outcome);
        }
        // Re-inserting a key makes it the newest.
        cache.insert(key(10), &outcome);
        cache.insert(key(CACHE_ENTRIES + 5), &outcome);
        assert_eq!(cache.lock().by_key.len(), CACHE_ENTRIES);
        assert_eq!(cache.lock().order.len(), CACHE_ENTRIES);
        assert!(cache.get(&key(0)).is_none());
        assert!(cache.get(&key(5)).is_none());
        assert!(cache.get(&key(6)).is_some());
        assert!(cache.get(&key(10)).is_some());
    }

    #[test]
    fn response_headers_rule_freshness() {
        let map = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, HeaderValue::from_static(value));
            }
            headers
        };
        let cases = [
            (map(&[]), Freshness::Default),
            (
                map(&[("cache-control", "public, max-age=60")]),
                Freshness::For(Duration::from_secs(60)),
            ),
            (map(&[("cache-control", "max-age=0")]), Freshness::Never),
            (map(&[("cache-control", "No-Store")]), Freshness::Never),
            (map(&[("cache-control", "private")]), Freshness::Never),
            (
                map(&[("x-accel-expires", "5"), ("cache-control", "no-cache")]),
                Freshness::For(Duration::from_secs(5)),
            ),
            (map(&[("x-accel-expires", "0")]), Freshness::Never),
            (
                map(&[("set-cookie", "a=1"), ("x-accel-expires", "5")]),
                Freshness::Never,
            ),
            (map(&[("vary", "accept, *")]), Freshness::Never),
        ];
        for (headers, expected) in cases {
            assert_eq!(Freshness::of(&headers), expected, "{headers:?}");
        }
    }

    // === HTTPS ===

    #[tokio::test]
    async fn https_auth_services_are_verified() {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = certified.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(ServerState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |req| answer(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let url = ExternalAuthConfig::parse_url(&format!("https://localhost:{port}/auth")).unwrap();
        let auth = ExternalAuth::new(ExternalAuthConfig::new(url));
        let request = ClientRequest::new("allow");

        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let trusting = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let trusting = AuthClient::with_tls_config(Arc::new(trusting));
        let decision = auth.check(&trusting, &request.auth()).await;
        assert!(matches!(decision, AuthDecision::Allow(_)), "{decision:?}");
        assert_eq!(state.seen.lock().unwrap()[0].headers[HOST], "localhost");

        // The system's roots do not know this certificate.
        let (status, _, _) = status_of(auth.check(&client(), &request.auth()).await).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(state.seen.lock().unwrap().len(), 1);
    }

    // === Annotation values ===

    #[test]
    fn auth_urls() {
        for good in [
            "http://auth.default.svc.cluster.local/verify",
            "https://auth.example.com:8443/oauth2/auth?x=1",
            "http://10.0.0.1",
            "http://[::1]:9000/a",
            "https://$host/oauth2/auth",
            "http://auth/check?uri=$escaped_request_uri",
        ] {
            ExternalAuthConfig::parse_url(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        let fixed = ExternalAuthConfig::parse_url("http://[::1]:9000/a").unwrap();
        assert_eq!(
            fixed.fixed,
            Some(Target {
                https: false,
                host: "[::1]".to_owned(),
                port: 9000,
                path_and_query: "/a".to_owned()
            })
        );
        for bad in [
            "",
            "auth.example.com/verify",
            "/verify",
            "ftp://auth/verify",
            "http://",
            "http:///path",
            "http://user:pw@auth/verify",
            "http://auth/ verify",
            "http://auth/verify\nX: y",
            "http://auth/$unknown",
            "$scheme://auth/verify",
            "http:///$host",
        ] {
            let error = ExternalAuthConfig::parse_url(bad).expect_err(bad);
            assert!(
                error.to_string().starts_with("auth-url") || error.to_string().contains("auth-url"),
                "{error}"
            );
        }
    }

    #[test]
    fn methods_headers_params() {
        assert_eq!(
            ExternalAuthConfig::parse_method("POST").unwrap(),
            Method::POST
        );
        for bad in ["get", "CONNECT", "FOO", ""] {
            assert!(ExternalAuthConfig::parse_method(bad).is_err(), "{bad}");
        }
        assert_eq!(
            ExternalAuthConfig::parse_response_headers(" X-User ,,X_Group, x-user").unwrap(),
            [
                HeaderName::from_static("x-user"),
                HeaderName::from_static("x_group")
            ]
        );
        let error = ExternalAuthConfig::parse_response_headers("X-User, X User").unwrap_err();
        assert_eq!(
            error.to_string(),
            "auth-response-headers: \"X User\" is not a header name (letters, digits, '-' and '_' only)"
        );
        assert!(ExternalAuthConfig::parse_response_headers("X:User").is_err());
        assert!(ExternalAuthConfig::parse_signin_redirect_param("redirect_uri").is_ok());
        for bad in ["", "a=b", "a&b", "a b"] {
            assert!(
                ExternalAuthConfig::parse_signin_redirect_param(bad).is_err(),
                "{bad}"
            );
        }
        assert!(ExternalAuthConfig::parse_signin("").is_err());
        assert!(ExternalAuthConfig::parse_signin("https://a/b?rd=$nope").is_err());
    }

    #[test]
    fn cache_durations() {
        let parse = ExternalAuthConfig::parse_cache_duration;
        let rule = |statuses: Option<Vec<u16>>, secs: u64| CacheRule {
            statuses,
            ttl: Duration::from_secs(secs),
        };
        assert_eq!(parse("").unwrap(), [rule(Some(vec![200, 202, 401]), 300)]);
        assert_eq!(parse(DEFAULT_CACHE_DURATION).unwrap(), parse("").unwrap());
        assert_eq!(
            parse("200 202 10m, 401 30s").unwrap(),
            [rule(Some(vec![200, 202]), 600), rule(Some(vec![401]), 30)]
        );
        assert_eq!(
            parse("1h 30m").unwrap(),
            [rule(Some(vec![200, 301, 302]), 5400)]
        );
        assert_eq!(parse("any 1d").unwrap(), [rule(None, 86_400)]);
        assert_eq!(
            parse("200 1w, 403 1M,404 1y").unwrap(),
            [
                rule(Some(vec![200]), 604_800),
                rule(Some(vec![403]), 2_592_000),
                rule(Some(vec![404]), 31_536_000)
            ]
        );
        assert_eq!(
            parse("200 250ms").unwrap()[0].ttl,
            Duration::from_millis(250)
        );
        for bad in [
            "200",
            "5m 200",
            "200 5",
            "200 5x",
            "200 foo 5m",
            "999 5m",
            "20 5m",
            "200 m",
        ] {
            let error = parse(bad).expect_err(bad);
            assert!(
                error.to_string().starts_with("auth-cache-duration"),
                "{error}"
            );
        }
    }

    #[test]
    fn templates() {
        let request = ClientRequest::new("allow")
            .header("authorization", "Basic YWxpY2U6czNjcmV0")
            .header("cookie", "_oauth2_proxy=abc; other=1")
            .header("x-multi", "1")
            .header("x-multi", "2");
        let render = |source: &str| {
            let template = Template::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
            String::from_utf8(template.render(&request.auth())).unwrap()
        };
        assert_eq!(render("plain"), "plain");
        assert_eq!(render(""), "");
        assert_eq!(render("$remote_user:$remote_addr"), "alice:10.1.2.3");
        assert_eq!(render("${host}x$uri"), "app.example.comx/api/v1/predict/1");
        assert_eq!(render("$http_x_multi|$http_missing|"), "1, 2||");
        assert_eq!(render("$cookie__oauth2_proxy"), "abc");
        assert_eq!(render("$arg_y/$arg_x/$args"), "a%20b/1/x=1&y=a%20b");
        assert_eq!(
            render("$request_method $scheme $request_id"),
            "GET https 0123456789abcdef0123456789abcdef"
        );
        assert_eq!(
            render("$http_host$request_uri"),
            "app.example.com/api/v1/predict/1?x=1&y=a%20b"
        );
        assert_eq!(
            render("$escaped_request_uri"),
            "%2Fapi%2Fv1%2Fpredict%2F1%3Fx%3D1%26y%3Da%2520b"
        );
    }

    #[test]
    fn template_errors() {
        assert_eq!(
            Template::parse("a$").unwrap_err(),
            TemplateError::StrayDollar(1)
        );
        assert_eq!(
            Template::parse("$ x").unwrap_err(),
            TemplateError::StrayDollar(0)
        );
        assert_eq!(
            Template::parse("${host").unwrap_err(),
            TemplateError::Unclosed(0)
        );
        assert_eq!(
            Template::parse("$hostname").unwrap_err(),
            TemplateError::UnknownVariable("hostname".to_owned())
        );
        assert_eq!(
            Template::parse("$cookie_").unwrap_err(),
            TemplateError::UnknownVariable("cookie_".to_owned())
        );
        let error = ExternalAuthConfig::parse_cache_key("$remote_user$nope").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("auth-cache-key \"$remote_user$nope\": unknown variable $nope"),
            "{error}"
        );
    }

    #[test]
    fn cache_keys_do_not_collide_by_concatenation() {
        let template = Template::parse("$http_a$http_b").unwrap();
        let one = ClientRequest::new("allow")
            .header("a", "ab")
            .header("b", "c");
        let two = ClientRequest::new("allow")
            .header("a", "a")
            .header("b", "bc");
        assert_ne!(template.digest(&one.auth()), template.digest(&two.auth()));
        let three = ClientRequest::new("allow")
            .header("a", "ab")
            .header("b", "c");
        assert_eq!(template.digest(&one.auth()), template.digest(&three.auth()));
    }

    #[test]
    fn signin_redirect_parameter() {
        let with = |signin: &str, param: &str| {
            signin_with_redirect(Template::parse(signin).unwrap(), param)
                .as_str()
                .to_owned()
        };
        let rd = "rd=$scheme://$http_host$escaped_request_uri";
        assert_eq!(
            with("https://a/start", "rd"),
            format!("https://a/start?{rd}")
        );
        assert_eq!(
            with("https://a/start?x=1", "rd"),
            format!("https://a/start?x=1&{rd}")
        );
        assert_eq!(
            with("https://a/start?", "rd"),
            format!("https://a/start?{rd}")
        );
        assert_eq!(
            with("https://a/start?rd=", "rd"),
            format!("https://a/start?rd=&{rd}")
        );
        assert_eq!(with("https://a/start?rd=/x", "rd"), "https://a/start?rd=/x");
        assert_eq!(
            with("https://a/start?rd=/x", "next"),
            "https://a/start?rd=/x&next=$scheme://$http_host$escaped_request_uri"
        );
    }

    proptest! {
        #[test]
        fn template_parsing_never_panics(source in "\\PC{0,40}") {
            let _ = Template::parse(&source);
        }

        #[test]
        fn dollar_heavy_templates_never_panic(source in "[$a-z_{}é]{0,30}") {
            if let Ok(template) = Template::parse(&source) {
                let request = ClientRequest::new("allow");
                let _ = template.render(&request.auth());
            }
        }

        #[test]
        fn cache_duration_parsing_never_panics(value in "[0-9a-zMs ,]{0,30}") {
            let _ = ExternalAuthConfig::parse_cache_duration(&value);
        }
    }
}
