//! Redirects that answer a request instead of proxying it: a route's
//! `permanent-redirect` / `temporal-redirect`, and the server-level
//! `app-root` and `from-to-www-redirect`.
//!
//! ingress-nginx pastes these values into `return <code> <url>;`, where
//! nginx would expand `$variables` (CVE-2023-5044 abused that). Here a
//! target is a literal URL, checked when the Ingress is compiled.

use http::header::HeaderValue;
use http::{StatusCode, Uri};

/// A fixed redirect for every request of a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The `Location` value.
    pub location: HeaderValue,
    /// 301 by default for permanent, 302 for temporal; any 3xx.
    pub code: StatusCode,
}

/// Why a redirect target or code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    /// Not an absolute `http(s)://` URL or an absolute path.
    #[error("must be an absolute http(s) URL or a path starting with '/'")]
    NotAUrl,
    /// A code outside 300..=399 (ingress-nginx's range for these annotations).
    #[error("must be a redirect status between 300 and 399")]
    BadCode,
}

impl Redirect {
    /// Checks a redirect target: an absolute `http`/`https` URL or an
    /// absolute path, with no whitespace or control characters.
    pub fn new(target: &str, code: u16) -> Result<Self, RedirectError> {
        let code = StatusCode::from_u16(code)
            .ok()
            .filter(StatusCode::is_redirection)
            .ok_or(RedirectError::BadCode)?;
        let location = checked_target(target)?;
        Ok(Self { location, code })
    }
}

fn checked_target(target: &str) -> Result<HeaderValue, RedirectError> {
    if target.is_empty() || target.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(RedirectError::NotAUrl);
    }
    let uri: Uri = target.parse().map_err(|_| RedirectError::NotAUrl)?;
    let absolute_url = matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some();
    let path = uri.scheme().is_none() && target.starts_with('/') && !target.starts_with("//");
    if !(absolute_url || path) {
        return Err(RedirectError::NotAUrl);
    }
    HeaderValue::from_str(target).map_err(|_| RedirectError::NotAUrl)
}

/// `app-root`: the path a request for `/` is sent to (302), checked like a
/// rule path.
pub fn app_root(path: &str) -> Result<HeaderValue, RedirectError> {
    if !path.starts_with('/') || path.starts_with("//") {
        return Err(RedirectError::NotAUrl);
    }
    checked_target(path)
}

/// The `Location` of an `app-root` redirect: ingress-nginx's
/// `$scheme://$http_host<app-root>`.
pub(crate) fn app_root_location(
    scheme: &str,
    http_host: &str,
    root: &HeaderValue,
) -> Option<HeaderValue> {
    let root = root.to_str().ok()?;
    HeaderValue::from_str(&format!("{scheme}://{http_host}{root}")).ok()
}

/// The `Location` of a `from-to-www-redirect`: the same request on the
/// other host (`www.` added or removed).
pub(crate) fn host_location(scheme: &str, host: &str, uri: &Uri) -> Option<HeaderValue> {
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    HeaderValue::from_str(&format!("{scheme}://{host}{target}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_literal_urls_or_paths() {
        assert!(Redirect::new("https://example.com/new", 301).is_ok());
        assert!(Redirect::new("/elsewhere?x=1", 302).is_ok());
        assert_eq!(
            Redirect::new("https://example.com/$request_uri x", 301),
            Err(RedirectError::NotAUrl)
        );
        assert_eq!(
            Redirect::new("javascript:alert(1)", 301),
            Err(RedirectError::NotAUrl)
        );
        assert_eq!(
            Redirect::new("//evil.example", 301),
            Err(RedirectError::NotAUrl)
        );
        assert_eq!(
            Redirect::new("https://a.example/\r\nSet-Cookie: x", 301),
            Err(RedirectError::NotAUrl)
        );
        assert_eq!(
            Redirect::new("https://a.example/", 200),
            Err(RedirectError::BadCode)
        );
        assert_eq!(
            Redirect::new("https://a.example/", 308).unwrap().code,
            StatusCode::PERMANENT_REDIRECT
        );
    }

    #[test]
    fn app_root_and_www_locations() {
        let root = app_root("/app1").unwrap();
        assert_eq!(
            app_root_location("http", "site.com:30080", &root).unwrap(),
            "http://site.com:30080/app1"
        );
        assert!(app_root("app1").is_err());
        let uri: Uri = "/a?b=1".parse().unwrap();
        assert_eq!(
            host_location("https", "www.site.com", &uri).unwrap(),
            "https://www.site.com/a?b=1"
        );
    }
}
