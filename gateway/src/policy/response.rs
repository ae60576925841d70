//! What a route does to its upstream's response head on the way to the
//! client, as ingress-nginx configures nginx per location:
//!
//! - `proxy-redirect-from` / `-to` (`proxy_redirect from to`): a
//!   `Location` or `Refresh` URL starting with `from` (case-sensitive) has
//!   that prefix replaced by `to`;
//! - `proxy-cookie-domain` (`proxy_cookie_domain from to`): a Set-Cookie
//!   `domain` equal to `from` (case-insensitive, a leading dot ignored and
//!   kept) becomes `to`;
//! - `proxy-cookie-path` (`proxy_cookie_path from to`): a Set-Cookie
//!   `path` starting with `from` (case-sensitive) has that prefix replaced;
//! - `custom-headers`: headers set on every response (`more_set_headers`);
//! - `limit-rate` / `limit-rate-after`: the body is paced
//!   ([`crate::body_filter`]).
//!
//! Values are literal text: nginx variables are refused when parsed.

use http::Response;
use http::header::{HeaderMap, HeaderName, HeaderValue, LOCATION, SET_COOKIE};

use crate::body_filter::RateLimit;

/// `Refresh`, which `proxy_redirect` rewrites like `Location`.
static REFRESH: HeaderName = HeaderName::from_static("refresh");

/// A prefix replacement (`proxy_redirect`, `proxy_cookie_path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replace {
    /// The text replaced.
    pub from: Box<str>,
    /// The replacement.
    pub to: Box<str>,
}

impl Replace {
    /// `from` and `to`, refusing nginx variables and control characters.
    pub fn new(from: &str, to: &str) -> Result<Self, String> {
        for part in [from, to] {
            if part.contains('$') {
                return Err(format!(
                    "{part:?} uses an nginx variable, which is not substituted here"
                ));
            }
            if part.bytes().any(|b| b.is_ascii_control() || b == b' ') {
                return Err(format!("{part:?} contains a space or control character"));
            }
        }
        if from.is_empty() {
            return Err("the text to replace is empty".to_owned());
        }
        Ok(Self {
            from: from.into(),
            to: to.into(),
        })
    }

    /// `value` with the prefix replaced, if it starts with it.
    fn prefix(&self, value: &str) -> Option<String> {
        value
            .strip_prefix(&*self.from)
            .map(|rest| format!("{}{rest}", self.to))
    }
}

/// A route's response rules; `None` fields do nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseRules {
    /// `proxy-redirect-from` / `-to`.
    pub redirect: Option<Replace>,
    /// `proxy-cookie-domain`.
    pub cookie_domain: Option<Replace>,
    /// `proxy-cookie-path`.
    pub cookie_path: Option<Replace>,
    /// `custom-headers`: set on every response of the route.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `limit-rate` / `limit-rate-after`.
    pub rate: Option<RateLimit>,
}

impl ResponseRules {
    /// Whether the rules change nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the rules to an upstream response's head; returns the pace
    /// its body must keep (`limit-rate`), which the caller sets.
    pub(crate) fn apply<B>(&self, response: &mut Response<B>) -> Option<RateLimit> {
        let headers = response.headers_mut();
        if let Some(redirect) = &self.redirect {
            rewrite_redirects(headers, redirect);
        }
        if self.cookie_domain.is_some() || self.cookie_path.is_some() {
            self.rewrite_cookies(headers);
        }
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        self.rate
    }

    fn rewrite_cookies(&self, headers: &mut HeaderMap) {
        let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        if cookies.is_empty() {
            return;
        }
        headers.remove(SET_COOKIE);
        for cookie in cookies {
            let rewritten = cookie
                .to_str()
                .ok()
                .and_then(|c| self.rewrite_cookie(c))
                .and_then(|c| HeaderValue::from_str(&c).ok());
            headers.append(SET_COOKIE, rewritten.unwrap_or(cookie));
        }
    }

    /// One Set-Cookie value with its domain and path rewritten; `None`
    /// when nothing changed.
    fn rewrite_cookie(&self, cookie: &str) -> Option<String> {
        let mut changed = false;
        let parts: Vec<String> = cookie
            .split(';')
            .enumerate()
            .map(|(i, part)| {
                // The first part is the cookie itself, never an attribute.
                let attribute = (i > 0).then(|| part.split_once('=')).flatten();
                let Some((name, value)) = attribute else {
                    return part.to_owned();
                };
                let key = name.trim();
                let new = if key.eq_ignore_ascii_case("domain") {
                    self.cookie_domain.as_ref().and_then(|r| domain(r, value))
                } else if key.eq_ignore_ascii_case("path") {
                    self.cookie_path.as_ref().and_then(|r| r.prefix(value))
                } else {
                    None
                };
                match new {
                    Some(new) => {
                        changed = true;
                        format!("{name}={new}")
                    }
                    None => part.to_owned(),
                }
            })
            .collect();
        changed.then(|| parts.join(";"))
    }
}

/// `proxy_cookie_domain`: the whole domain, any case, a leading dot kept.
fn domain(replace: &Replace, value: &str) -> Option<String> {
    let (dot, name) = match value.strip_prefix('.') {
        Some(name) => (".", name),
        None => ("", value),
    };
    let from = replace.from.strip_prefix('.').unwrap_or(&replace.from);
    name.eq_ignore_ascii_case(from)
        .then(|| format!("{dot}{}", replace.to))
}

/// `proxy_redirect`: `Location`, and the URL of `Refresh: <n>; url=<url>`.
fn rewrite_redirects(headers: &mut HeaderMap, replace: &Replace) {
    let location = headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| replace.prefix(v))
        .and_then(|v| HeaderValue::from_str(&v).ok());
    if let Some(location) = location {
        headers.insert(LOCATION, location);
    }
    let refresh = headers
        .get(&REFRESH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let at = v.to_ascii_lowercase().find("url=")? + 4;
            let rewritten = replace.prefix(&v[at..])?;
            HeaderValue::from_str(&format!("{}{rewritten}", &v[..at])).ok()
        });
    if let Some(refresh) = refresh {
        headers.insert(REFRESH.clone(), refresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ResponseBody;

    fn rules() -> ResponseRules {
        ResponseRules {
            redirect: Some(
                Replace::new("http://backend.local:8080/", "https://app.example/api/").unwrap(),
            ),
            cookie_domain: Some(Replace::new("backend.local", "app.example").unwrap()),
            cookie_path: Some(Replace::new("/", "/api/").unwrap()),
            headers: vec![(
                HeaderName::from_static("x-team"),
                HeaderValue::from_static("models"),
            )],
            rate: None,
        }
    }

    fn apply(rules: &ResponseRules, pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut response = Response::new(ResponseBody::empty());
        for (name, value) in pairs {
            response
                .headers_mut()
                .append(*name, HeaderValue::from_static(value));
        }
        rules.apply(&mut response);
        response.into_parts().0.headers
    }

    #[test]
    fn redirects_are_rewritten_like_proxy_redirect() {
        let h = apply(
            &rules(),
            &[
                ("location", "http://backend.local:8080/login?next=/"),
                ("refresh", "5; URL=http://backend.local:8080/home"),
            ],
        );
        assert_eq!(h["location"], "https://app.example/api/login?next=/");
        assert_eq!(h["refresh"], "5; URL=https://app.example/api/home");
        // Case-sensitive prefix, as nginx compares it.
        let h = apply(&rules(), &[("location", "HTTP://backend.local:8080/x")]);
        assert_eq!(h["location"], "HTTP://backend.local:8080/x");
        let h = apply(&rules(), &[("location", "/relative")]);
        assert_eq!(h["location"], "/relative");
    }

    #[test]
    fn cookies_are_rewritten_like_proxy_cookie() {
        let h = apply(
            &rules(),
            &[
                (
                    "set-cookie",
                    "a=1; Domain=.Backend.LOCAL; Path=/x; HttpOnly",
                ),
                ("set-cookie", "b=2; domain=other.example; path=/"),
                ("set-cookie", "path=/; c=3"),
            ],
        );
        let cookies: Vec<&str> = h
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            cookies,
            [
                "a=1; Domain=.app.example; Path=/api/x; HttpOnly",
                "b=2; domain=other.example; path=/api/",
                "path=/; c=3",
            ]
        );
    }

    #[test]
    fn custom_headers_replace_the_upstream_ones() {
        let h = apply(&rules(), &[("x-team", "upstream")]);
        assert_eq!(h.get_all("x-team").iter().count(), 1);
        assert_eq!(h["x-team"], "models");
    }

    #[test]
    fn values_are_literal() {
        assert!(Replace::new("http://$host/", "/").is_err());
        assert!(Replace::new("", "/").is_err());
        assert!(Replace::new("/a b", "/").is_err());
        assert!(ResponseRules::default().is_empty());
    }
}
