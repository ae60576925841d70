//! `affinity: cookie`: the session cookie's settings and its `Set-Cookie`
//! line, as ingress-nginx's `balancer/sticky.lua` writes it with
//! lua-resty-cookie: `name=value; Expires=..; Max-Age=..; Domain=..;
//! Path=..; Secure; HttpOnly; SameSite=..`.

use http::HeaderValue;

/// ingress-nginx's default cookie name.
pub const DEFAULT_NAME: &str = "INGRESSCOOKIE";

/// `affinity-mode`: what a session cookie names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AffinityMode {
    /// A point on the backend's hash ring: when endpoints are added, the
    /// sessions of the arcs they take move to them (rebalancing).
    #[default]
    Balanced,
    /// The endpoint itself: a session stays on it as long as it is ready.
    Persistent,
}

/// `affinity-canary-behavior`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CanaryBehavior {
    /// A request whose cookie was set by the main or the canary backend
    /// stays with that backend, whatever the canary rule says.
    #[default]
    Sticky,
    /// The canary rule decides every request; affinity applies only
    /// within the backend it picks.
    Legacy,
}

/// `session-cookie-samesite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=None`.
    None,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=Strict`.
    Strict,
}

impl SameSite {
    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Lax => "Lax",
            Self::Strict => "Strict",
        }
    }
}

/// A backend's session cookie (`affinity: cookie` and `session-cookie-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionCookie {
    /// `session-cookie-name` (a cookie-name token; `INGRESSCOOKIE`).
    pub name: Box<str>,
    /// `affinity-mode`.
    pub mode: AffinityMode,
    /// `session-cookie-path`; the route's path when unset.
    pub path: Option<Box<str>>,
    /// `session-cookie-domain`.
    pub domain: Option<Box<str>>,
    /// `session-cookie-expires`, seconds from now.
    pub expires: Option<u64>,
    /// `session-cookie-max-age`, seconds.
    pub max_age: Option<u64>,
    /// `session-cookie-secure`; unset: `Secure` on HTTPS only.
    pub secure: Option<bool>,
    /// `session-cookie-samesite`.
    pub samesite: Option<SameSite>,
    /// `session-cookie-conditional-samesite-none`: leave `SameSite=None`
    /// out for browsers known to reject it.
    pub conditional_samesite_none: bool,
    /// `session-cookie-change-on-failure`: a failed attempt moves the
    /// session to the endpoint that served the retry.
    pub change_on_failure: bool,
    /// `affinity-canary-behavior`.
    pub canary_behavior: CanaryBehavior,
}

impl Default for SessionCookie {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.into(),
            mode: AffinityMode::Balanced,
            path: None,
            domain: None,
            expires: None,
            max_age: None,
            secure: None,
            samesite: None,
            conditional_samesite_none: false,
            change_on_failure: false,
            canary_behavior: CanaryBehavior::Sticky,
        }
    }
}

/// What the `Set-Cookie` line depends on besides the settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CookieContext<'a> {
    /// The route's path, the default `Path`.
    pub route_path: &'a str,
    /// Whether the client came over HTTPS.
    pub https: bool,
    /// Whether the client's browser accepts `SameSite=None`.
    pub samesite_none_ok: bool,
}

impl SessionCookie {
    /// The `Set-Cookie` value carrying `value`; `None` if it would not be
    /// a valid header (the parsers keep that from happening).
    pub(crate) fn set_cookie(&self, value: &str, cx: CookieContext<'_>) -> Option<HeaderValue> {
        let mut line = format!("{}={value}", self.name);
        if let Some(seconds) = self.expires {
            let at = jiff::Timestamp::now()
                .checked_add(jiff::SignedDuration::from_secs(
                    i64::try_from(seconds).unwrap_or(i64::MAX),
                ))
                .unwrap_or(jiff::Timestamp::MAX);
            line.push_str(&format!(
                "; Expires={}",
                at.strftime("%a, %d %b %Y %H:%M:%S GMT")
            ));
        }
        if let Some(seconds) = self.max_age {
            line.push_str(&format!("; Max-Age={seconds}"));
        }
        if let Some(domain) = &self.domain {
            line.push_str(&format!("; Domain={domain}"));
        }
        let path = self.path.as_deref().unwrap_or(cx.route_path);
        line.push_str(&format!("; Path={path}"));
        if self.secure.unwrap_or(cx.https) {
            line.push_str("; Secure");
        }
        line.push_str("; HttpOnly");
        let samesite = self.samesite.filter(|s| {
            *s != SameSite::None || !self.conditional_samesite_none || cx.samesite_none_ok
        });
        if let Some(samesite) = samesite {
            line.push_str(&format!("; SameSite={}", samesite.as_str()));
        }
        HeaderValue::from_str(&line).ok()
    }
}

/// Whether a browser accepts `SameSite=None` (ingress-nginx's
/// `util/same_site.lua`, after Chromium's list of incompatible clients):
/// not Chrome / Chromium 51 to 66, not UC Browser before 12.13.2, not
/// Safari and embedded browsers on iOS 12 or macOS 10.14.
pub(crate) fn samesite_none_compatible(user_agent: &[u8]) -> bool {
    let Ok(ua) = std::str::from_utf8(user_agent) else {
        return true;
    };
    let ios12 = ua.contains("iPhone OS 12_") || ua.contains("iPad; CPU OS 12_");
    let macos_1014_safari = ua.contains("Macintosh; Intel Mac OS X 10_14")
        && ua.contains("Version/")
        && ua.contains("Safari")
        && !ua.contains("Chrom");
    let old_chrome = ["Chrome/", "Chromium/"].iter().any(|marker| {
        version_after(ua, marker)
            .is_some_and(|v| (51..=66).contains(&v.first().copied().unwrap_or(0)))
    });
    let old_uc =
        version_after(ua, "UCBrowser/").is_some_and(|v| v.as_slice() < [12, 13, 2].as_slice());
    !(ios12 || macos_1014_safari || old_chrome || old_uc)
}

/// The dotted version numbers after `marker`, e.g. `[66, 0, 3359]`.
fn version_after(ua: &str, marker: &str) -> Option<Vec<u32>> {
    let start = ua.find(marker)? + marker.len();
    let version = ua[start..]
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let numbers: Vec<u32> = version
        .split('.')
        .map_while(|n| n.parse().ok())
        .take(3)
        .collect();
    (!numbers.is_empty()).then_some(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(https: bool) -> CookieContext<'static> {
        CookieContext {
            route_path: "/app",
            https,
            samesite_none_ok: true,
        }
    }

    #[test]
    fn default_cookie_is_a_session_cookie_on_the_route_path() {
        let line = SessionCookie::default().set_cookie("v", cx(false)).unwrap();
        assert_eq!(line, "INGRESSCOOKIE=v; Path=/app; HttpOnly");
        let tls = SessionCookie::default().set_cookie("v", cx(true)).unwrap();
        assert_eq!(tls, "INGRESSCOOKIE=v; Path=/app; Secure; HttpOnly");
    }

    #[test]
    fn every_attribute_in_lua_resty_cookie_order() {
        let cookie = SessionCookie {
            name: "route".into(),
            path: Some("/".into()),
            domain: Some("example.com".into()),
            expires: Some(3600),
            max_age: Some(60),
            secure: Some(false),
            samesite: Some(SameSite::Strict),
            ..SessionCookie::default()
        };
        let line = cookie.set_cookie("v", cx(true)).unwrap();
        let line = line.to_str().unwrap();
        assert!(line.starts_with("route=v; Expires="), "{line}");
        assert!(
            line.contains(
                " GMT; Max-Age=60; Domain=example.com; Path=/; HttpOnly; SameSite=Strict"
            ),
            "{line}"
        );
    }

    #[test]
    fn conditional_samesite_none_drops_it_for_incompatible_browsers() {
        let cookie = SessionCookie {
            samesite: Some(SameSite::None),
            conditional_samesite_none: true,
            ..SessionCookie::default()
        };
        let old = CookieContext {
            samesite_none_ok: false,
            ..cx(true)
        };
        assert!(
            !cookie
                .set_cookie("v", old)
                .unwrap()
                .to_str()
                .unwrap()
                .contains("SameSite")
        );
        assert!(
            cookie
                .set_cookie("v", cx(true))
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("SameSite=None")
        );
    }

    #[test]
    fn browsers_that_reject_samesite_none() {
        for bad in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/66.0.3359.181 Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 12_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/12.0.3 Safari/605.1.15",
            "Mozilla/5.0 (Linux; U; Android 8.0.0;) AppleWebKit/537.36 (KHTML, like Gecko) UCBrowser/12.13.0.1207 Mobile Safari/537.36",
        ] {
            assert!(!samesite_none_compatible(bad.as_bytes()), "{bad}");
        }
        for good in [
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            "Mozilla/5.0 (Linux; U; Android 8.0.0;) AppleWebKit/537.36 (KHTML, like Gecko) UCBrowser/12.13.2.1207 Mobile Safari/537.36",
            "curl/8.5.0",
            "",
        ] {
            assert!(samesite_none_compatible(good.as_bytes()), "{good}");
        }
    }
}
