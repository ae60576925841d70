//! The external authentication's configuration: the annotation values
//! (`auth-url`, `auth-method`, `auth-signin`, `auth-response-headers`,
//! `auth-cache-key`, `auth-cache-duration`, ...) parsed and checked once,
//! when the table is built, with the message an invalid one is refused
//! with.

use std::time::Duration;

use http::header::HeaderName;
use http::{Method, Uri};

use super::*;

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

/// The `auth-url`: a constant URL, parsed once, or a template whose scheme
/// is fixed and whose rest is filled in per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthUrl {
    pub(super) template: Template,
    pub(super) fixed: Option<Target>,
}

impl AuthUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        self.template.as_str()
    }
}

/// Where a subrequest goes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Target {
    pub(super) https: bool,
    /// The host as in the URL (`[::1]` keeps its brackets): the Host header.
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) path_and_query: String,
}

impl Target {
    pub(super) fn from_uri(uri: &Uri) -> Result<Target, &'static str> {
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

    pub(super) fn from_bytes(url: Vec<u8>) -> Result<Target, &'static str> {
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

pub(super) fn parse_template(
    annotation: &'static str,
    value: &str,
) -> Result<Template, ExternalAuthError> {
    let error = |error| ExternalAuthError::Template {
        annotation,
        value: value.to_owned(),
        error,
    };
    let template = Template::parse(value).map_err(error)?;
    template.check_no_controls().map_err(error)?;
    Ok(template)
}

pub(super) fn default_cache_rules() -> Vec<CacheRule> {
    vec![CacheRule {
        statuses: Some(vec![200, 202, 401]),
        ttl: Duration::from_secs(300),
    }]
}

/// One nginx time (`500ms`, `30s`, `5m`, `1h`, `2d`, `1w`, `1M`, `1y`).
pub(super) fn parse_nginx_time(word: &str) -> Option<Duration> {
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
