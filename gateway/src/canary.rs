//! ingress-nginx canaries: a second Ingress for the same host and path,
//! marked `canary: "true"`, whose Service takes a share of the route's
//! requests (a new model version beside the current one).
//!
//! A route with a canary carries a [`Canary`]: the canary's backend and
//! the [`CanaryRule`] that decides, once per request in the route phase,
//! which of the two backends serves it. Everything else about the request
//! (redirects, admission, timeouts, retries) is the main route's, as in
//! ingress-nginx, where the canary only swaps the upstream of the main
//! Ingress's `location`.
//!
//! The rule mirrors `route_to_alternative_balancer` in ingress-nginx's
//! `rootfs/etc/nginx/lua/balancer.lua`:
//!
//! 1. a canary with no ready endpoint is never chosen (ingress-nginx has no
//!    balancer for it then), unless its backend holds requests while it
//!    scales from zero (`hold-when-no-endpoints`);
//! 2. `canary-by-header`, when the request has that header: with
//!    `canary-by-header-value`, that exact value → canary; else with
//!    `canary-by-header-pattern`, a match anywhere in the value → canary (a
//!    pattern that cannot run → main); else `always` → canary, `never` →
//!    main; any other value falls through;
//! 3. `canary-by-cookie`, when the request has that cookie: `always` →
//!    canary, `never` → main; any other value falls through;
//! 4. `canary-weight` out of `canary-weight-total`: a uniform draw in
//!    `1..=total` at most `weight` → canary.
//!
//! Before the rule, with session affinity (`affinity-canary-behavior:
//! sticky`, the default), a request whose session cookie was set by the
//! main backend stays on it, and one set by the canary goes to the canary
//! (ingress-nginx's `is_affinitized`); see [`crate::backend::balance::affinity`].
//!
//! A route without a canary pays one `Option` check.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderMap;
use http::header::{COOKIE, HeaderName};
use regex::bytes::{Regex, RegexBuilder};

use crate::backend::Backend;
use crate::backend::balance::affinity;
use crate::cookies::cookie_value;
use crate::ids::BackendId;
use crate::metrics::RouteStats;

/// Compiled size limit of a `canary-by-header-pattern` expression.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;

/// ingress-nginx's weight total when `canary-weight-total` is unset, and
/// its floor: `balancer.lua` only uses a configured total above 100.
pub const DEFAULT_WEIGHT_TOTAL: u32 = 100;

/// A route's canary: where its chosen requests go, and when.
#[derive(Clone, Debug)]
pub struct Canary {
    /// The canary Service's backend (ingress-nginx's alternative backend).
    pub backend: BackendId,
    /// The canary backend's upstream name (`<namespace>-<service>-<port>`):
    /// the `canary` label of request metrics and
    /// `$proxy_alternative_upstream_name` in the access log.
    pub upstream: Arc<str>,
    /// When a request goes to the canary.
    pub rule: CanaryRule,
    /// Where the requests the canary served are counted (the main route's
    /// labels plus `canary`), set when published with request metrics on.
    pub stats: Option<Arc<RouteStats>>,
}

/// How a request is matched against the header of `canary-by-header`.
#[derive(Clone, Debug)]
pub enum HeaderMatch {
    /// No value or pattern: `always` → canary, `never` → main, any other
    /// value falls through.
    AlwaysNever,
    /// `canary-by-header-value`: this exact value → canary, any other falls
    /// through.
    Value(Box<[u8]>),
    /// `canary-by-header-pattern`: a match anywhere in the value → canary,
    /// no match falls through.
    Pattern(Regex),
    /// A pattern that could not be compiled: the header sends the request
    /// to the main backend, as ingress-nginx does when `ngx.re.match` fails.
    Unusable,
}

impl HeaderMatch {
    /// Compiles a `canary-by-header-pattern` as `ngx.re.match` runs it:
    /// case-sensitive, unanchored, on the value's bytes; size-limited and
    /// linear-time, so no header can stall the gateway.
    pub fn pattern(pattern: &str) -> Result<Self, CanaryError> {
        RegexBuilder::new(pattern)
            .unicode(false)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map(Self::Pattern)
            .map_err(|e| CanaryError::Pattern(e.to_string()))
    }
}

/// Why a canary setting could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CanaryError {
    /// The pattern does not compile (or is too large).
    #[error("invalid regular expression: {0}")]
    Pattern(String),
}

/// The header rule of a canary.
#[derive(Clone, Debug)]
struct ByHeader {
    name: HeaderName,
    matching: HeaderMatch,
}

/// What a request must carry, or what share of requests, to go to the
/// canary (see the module documentation for the order).
#[derive(Clone, Debug)]
pub struct CanaryRule {
    header: Option<ByHeader>,
    /// The cookie name of `canary-by-cookie`.
    cookie: Option<Box<[u8]>>,
    /// Draws at most this go to the canary (0: none; `total`: all).
    weight: u32,
    /// Draws are uniform in `1..=total`.
    total: u32,
}

/// What one step of the rule says.
enum Step {
    Canary,
    Main,
    Next,
}

impl CanaryRule {
    /// A rule sending `weight` out of `total` requests to the canary, as
    /// ingress-nginx reads its integers: a negative weight is 0, a weight
    /// above the total is all; a total of 100 or less is 100.
    pub fn weighted(weight: i64, total: i64) -> Self {
        let total = u32::try_from(total.max(i64::from(DEFAULT_WEIGHT_TOTAL))).unwrap_or(u32::MAX);
        let weight = u32::try_from(weight.clamp(0, i64::from(total))).unwrap_or(total);
        Self {
            header: None,
            cookie: None,
            weight,
            total,
        }
    }

    /// Adds `canary-by-header`, read as `matching` says.
    pub fn by_header(mut self, name: HeaderName, matching: HeaderMatch) -> Self {
        self.header = Some(ByHeader { name, matching });
        self
    }

    /// Adds `canary-by-cookie` (the name is matched case-insensitively, as
    /// nginx's `$cookie_` variables).
    pub fn by_cookie(mut self, name: &str) -> Self {
        self.cookie = Some(name.as_bytes().into());
        self
    }

    /// The weight and total the draw uses, after ingress-nginx's rules.
    pub fn weight(&self) -> (u32, u32) {
        (self.weight, self.total)
    }

    /// Whether a request with `headers` goes to the canary, drawing the
    /// weight at random.
    pub fn decide(&self, headers: &HeaderMap) -> bool {
        self.decide_with(headers, |total| fastrand::u32(1..=total))
    }

    /// [`CanaryRule::decide`] with the draw made by `draw(total)`, which
    /// must return a number in `1..=total`.
    pub fn decide_with(&self, headers: &HeaderMap, draw: impl FnOnce(u32) -> u32) -> bool {
        let step = self
            .header
            .as_ref()
            .map_or(Step::Next, |rule| by_header(rule, headers));
        let step = match step {
            Step::Next => self
                .cookie
                .as_deref()
                .map_or(Step::Next, |name| by_cookie(name, headers)),
            decided => decided,
        };
        match step {
            Step::Canary => true,
            Step::Main => false,
            Step::Next if self.weight == 0 => false,
            Step::Next if self.weight >= self.total => true,
            Step::Next => draw(self.total) <= self.weight,
        }
    }
}

/// The header step: nginx's `$http_<name>`, which joins repeated header
/// lines with `, ` (the only case that allocates).
fn by_header(rule: &ByHeader, headers: &HeaderMap) -> Step {
    let mut values = headers.get_all(&rule.name).iter();
    let Some(first) = values.next() else {
        return Step::Next;
    };
    let value: Cow<'_, [u8]> = match values.next() {
        None => Cow::Borrowed(first.as_bytes()),
        Some(second) => {
            let mut joined = first.as_bytes().to_vec();
            for more in std::iter::once(second).chain(values) {
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(more.as_bytes());
            }
            Cow::Owned(joined)
        }
    };
    match &rule.matching {
        HeaderMatch::Value(wanted) if *value == **wanted => Step::Canary,
        HeaderMatch::Value(_) => Step::Next,
        HeaderMatch::Pattern(regex) if regex.is_match(&value) => Step::Canary,
        HeaderMatch::Pattern(_) => Step::Next,
        HeaderMatch::Unusable => Step::Main,
        HeaderMatch::AlwaysNever => always_never(&value),
    }
}

/// The cookie step: nginx's `$cookie_<name>`, the first cookie of that
/// name in any Cookie header.
fn by_cookie(name: &[u8], headers: &HeaderMap) -> Step {
    headers
        .get_all(COOKIE)
        .iter()
        .find_map(|line| cookie_value(line.as_bytes(), name))
        .map_or(Step::Next, always_never)
}

fn always_never(value: &[u8]) -> Step {
    match value {
        b"always" => Step::Canary,
        b"never" => Step::Main,
        _ => Step::Next,
    }
}

/// The route phase's last step: the backend a request goes to, the main
/// one (`main_backend`) unless the route's canary (`canary`, with its
/// backend) takes it; and whether the canary did.
pub(crate) fn pick<'t>(
    main_backend: Option<&'t Arc<Backend>>,
    canary: Option<(&Canary, &'t Arc<Backend>)>,
    headers: &HeaderMap,
) -> (Option<&'t Arc<Backend>>, bool) {
    if let Some((canary, backend)) = canary
        && available(backend)
    {
        let sticky = main_backend.and_then(|m| affinity::canary_affinity(m, backend, headers));
        if sticky.unwrap_or_else(|| canary.rule.decide(headers)) {
            return (Some(backend), true);
        }
    }
    (main_backend, false)
}

/// Whether a canary backend can take requests: it has a ready endpoint, or
/// it holds requests until one is ready.
fn available(backend: &Backend) -> bool {
    !backend.endpoints().endpoints().is_empty() || backend.policy().hold.is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::balance::BackendPolicy;
    use crate::backend::{BackendKey, EndpointUpdate};
    use crate::ids::ServerId;
    use crate::path::{PathKind, PathRule};
    use crate::table::{Route, RouteAction, RouteTableBuilder};
    use http::HeaderValue;
    use std::net::SocketAddr;
    use std::time::Duration;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn name(n: &'static str) -> HeaderName {
        HeaderName::from_static(n)
    }

    /// Decides with a draw that must not happen.
    fn without_draw(rule: &CanaryRule, h: &HeaderMap) -> bool {
        rule.decide_with(h, |_| panic!("no draw expected"))
    }

    #[test]
    fn weight_draws_one_to_total_inclusive() {
        let rule = CanaryRule::weighted(30, 100);
        let none = HeaderMap::new();
        assert!(rule.decide_with(&none, |_| 1));
        assert!(rule.decide_with(&none, |_| 30));
        assert!(!rule.decide_with(&none, |_| 31));
        assert!(!rule.decide_with(&none, |_| 100));
        // Exactly `weight` of the `total` possible draws go to the canary.
        let taken = (1..=100)
            .filter(|d| rule.decide_with(&none, |_| *d))
            .count();
        assert_eq!(taken, 30);
        let total = CanaryRule::weighted(1, 1000);
        let mut asked = 0;
        assert!(total.decide_with(&none, |t| {
            asked = t;
            1
        }));
        assert_eq!(asked, 1000);
    }

    #[test]
    fn weight_edges_need_no_draw() {
        let none = HeaderMap::new();
        assert!(!without_draw(&CanaryRule::weighted(0, 100), &none));
        assert!(!without_draw(&CanaryRule::weighted(-5, 100), &none));
        assert!(without_draw(&CanaryRule::weighted(100, 100), &none));
        assert!(without_draw(&CanaryRule::weighted(250, 100), &none));
    }

    #[test]
    fn totals_of_100_or_less_are_100() {
        assert_eq!(CanaryRule::weighted(5, 10).weight(), (5, 100));
        assert_eq!(CanaryRule::weighted(5, 0).weight(), (5, 100));
        assert_eq!(CanaryRule::weighted(5, 1000).weight(), (5, 1000));
        assert_eq!(
            CanaryRule::weighted(i64::MAX, i64::MAX).weight(),
            (u32::MAX, u32::MAX)
        );
    }

    #[test]
    fn header_always_never_and_fall_through() {
        let rule =
            CanaryRule::weighted(100, 100).by_header(name("x-canary"), HeaderMatch::AlwaysNever);
        assert!(without_draw(&rule, &headers(&[("x-canary", "always")])));
        assert!(!without_draw(&rule, &headers(&[("x-canary", "never")])));
        // Case matters for the value; other values fall through to weight.
        assert!(without_draw(&rule, &headers(&[("x-canary", "Never")])));
        assert!(without_draw(&rule, &headers(&[("x-canary", "")])));
        assert!(without_draw(&rule, &HeaderMap::new()));
        let zero =
            CanaryRule::weighted(0, 100).by_header(name("x-canary"), HeaderMatch::AlwaysNever);
        assert!(without_draw(&zero, &headers(&[("X-Canary", "always")])));
        assert!(!without_draw(&zero, &headers(&[("x-canary", "yes")])));
    }

    #[test]
    fn header_value_replaces_always_never() {
        let rule = CanaryRule::weighted(0, 100).by_header(
            name("x-user"),
            HeaderMatch::Value(b"beta".as_slice().into()),
        );
        assert!(without_draw(&rule, &headers(&[("x-user", "beta")])));
        assert!(!without_draw(&rule, &headers(&[("x-user", "Beta")])));
        assert!(!without_draw(&rule, &headers(&[("x-user", "always")])));
        // `never` is just another value: it falls through, here to 100%.
        let all = CanaryRule::weighted(100, 100).by_header(
            name("x-user"),
            HeaderMatch::Value(b"beta".as_slice().into()),
        );
        assert!(without_draw(&all, &headers(&[("x-user", "never")])));
        // Repeated lines are joined with ", " as nginx's $http_ variable.
        let joined = CanaryRule::weighted(0, 100).by_header(
            name("x-user"),
            HeaderMatch::Value(b"a, b".as_slice().into()),
        );
        assert!(without_draw(
            &joined,
            &headers(&[("x-user", "a"), ("x-user", "b")])
        ));
    }

    #[test]
    fn header_pattern_searches_unanchored() {
        let pattern = HeaderMatch::pattern("^v2|canary").unwrap();
        let rule = CanaryRule::weighted(0, 100).by_header(name("x-version"), pattern);
        assert!(without_draw(&rule, &headers(&[("x-version", "v2.1")])));
        assert!(without_draw(
            &rule,
            &headers(&[("x-version", "is-canary-user")])
        ));
        assert!(!without_draw(&rule, &headers(&[("x-version", "av2")])));
        assert!(!without_draw(&rule, &headers(&[("x-version", "CANARY")])));
        assert!(!without_draw(&rule, &headers(&[("x-version", "always")])));
        assert!(HeaderMatch::pattern("(unclosed").is_err());
        assert!(
            HeaderMatch::pattern("a{1000}{1000}").is_err(),
            "size-limited"
        );
    }

    #[test]
    fn unusable_pattern_sends_the_header_to_main() {
        let rule = CanaryRule::weighted(100, 100)
            .by_header(name("x-version"), HeaderMatch::Unusable)
            .by_cookie("canary");
        let h = headers(&[("x-version", "x"), ("cookie", "canary=always")]);
        assert!(!without_draw(&rule, &h));
        assert!(without_draw(
            &rule,
            &headers(&[("cookie", "canary=always")])
        ));
    }

    #[test]
    fn header_beats_cookie_beats_weight() {
        let rule = CanaryRule::weighted(50, 100)
            .by_header(name("x-canary"), HeaderMatch::AlwaysNever)
            .by_cookie("canary");
        let both = headers(&[("x-canary", "never"), ("cookie", "canary=always")]);
        assert!(!without_draw(&rule, &both));
        let other = headers(&[("x-canary", "maybe"), ("cookie", "canary=always")]);
        assert!(without_draw(&rule, &other));
        let cookie_never = headers(&[("x-canary", "maybe"), ("cookie", "canary=never")]);
        assert!(!without_draw(&rule, &cookie_never));
        let neither = headers(&[("cookie", "canary=perhaps")]);
        assert!(rule.decide_with(&neither, |_| 50));
        assert!(!rule.decide_with(&neither, |_| 51));
    }

    #[test]
    fn cookies_are_read_as_nginx_does() {
        let v = |line: &str, name: &str| {
            cookie_value(line.as_bytes(), name.as_bytes())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(
            v("a=1; canary=always; b=2", "canary").as_deref(),
            Some("always")
        );
        assert_eq!(v("Canary=never", "canary").as_deref(), Some("never"));
        assert_eq!(
            v("canary = always;x=1", "canary").as_deref(),
            Some("always")
        );
        assert_eq!(
            v("canaryx=always; canary=never", "canary").as_deref(),
            Some("never")
        );
        assert_eq!(v("x=canary=always", "canary"), None);
        assert_eq!(v("a=1,canary=always", "canary").as_deref(), Some("always"));
        assert_eq!(v("canary=always ;", "canary").as_deref(), Some("always "));
        assert_eq!(v("", "canary"), None);
        assert_eq!(v("canary", "canary"), None);
        // The first cookie header that has it decides.
        let rule = CanaryRule::weighted(0, 100).by_cookie("canary");
        let h = headers(&[("cookie", "a=1"), ("cookie", "canary=always")]);
        assert!(without_draw(&rule, &h));
    }

    #[test]
    fn pick_skips_a_canary_without_endpoints_unless_it_holds() {
        let key = |service: &str| BackendKey {
            namespace: "m".into(),
            service: service.into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let update = |addrs: &[u8]| EndpointUpdate {
            addrs: addrs
                .iter()
                .map(|last| SocketAddr::from(([127, 0, 0, *last], 80)))
                .collect(),
            service_found: true,
        };
        let mut b = RouteTableBuilder::default();
        let main = b.backend(key("main"), &update(&[1]));
        let up = b.backend(key("up"), &update(&[2]));
        let down = b.backend(key("down"), &update(&[]));
        let held = b.backend(key("held"), &update(&[]));
        b.set_backend_policy(
            held,
            Arc::new(BackendPolicy {
                hold: Some(Duration::from_secs(30)),
                ..BackendPolicy::default()
            }),
        );
        let mut ids = Vec::new();
        for (i, canary) in [up, down, held].into_iter().enumerate() {
            let path = format!("/{i}");
            let route = Route {
                source: None,
                host: "".into(),
                path: path.as_str().into(),
                path_kind: PathKind::Prefix,
                action: RouteAction::Proxy(main),
                settings: Arc::default(),
                policy: Arc::default(),
                admission: None,
                stats: None,
                rewrite: None,
                fallback: None,
                canary: None,
                filters: None,
            };
            let rule = PathRule::new(PathKind::Prefix, &path).unwrap();
            let id = b.add_route(ServerId::DEFAULT, rule, route).unwrap();
            let name = b.backend_name(canary).unwrap().into();
            b.set_canary(
                id,
                Canary {
                    backend: canary,
                    upstream: name,
                    rule: CanaryRule::weighted(100, 100),
                    stats: None,
                },
            );
            ids.push(path);
        }
        let table = b.build();
        let picked = |path: &str| {
            let m = table.lookup(None, path.as_bytes()).unwrap();
            let canary = m
                .route
                .canary
                .as_ref()
                .and_then(|c| Some((&**c, table.backend(c.backend)?)));
            let (backend, canary) = pick(table.backend(main), canary, &HeaderMap::new());
            (backend.unwrap().key().service.to_string(), canary)
        };
        assert_eq!(picked(&ids[0]), ("up".to_owned(), true));
        assert_eq!(picked(&ids[1]), ("main".to_owned(), false), "no endpoint");
        assert_eq!(picked(&ids[2]), ("held".to_owned(), true), "it holds");
    }
}
