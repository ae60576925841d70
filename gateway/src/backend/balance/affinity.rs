//! Stickiness, a layer in front of the backend's [`super::Algorithm`]: which
//! endpoint a request *should* go to, before the algorithm picks among the
//! rest.
//!
//! - `affinity: cookie` ([`SessionCookie`]): a request whose session cookie
//!   names an endpoint of the current set goes there while it is ready;
//!   otherwise the algorithm picks and the response sets the cookie (in
//!   `balanced` mode a key always names the ring's owner of its point, so
//!   a session whose pod left moves to the next one without a new cookie,
//!   as ingress-nginx's `sticky_balanced`). The
//!   cookie's value is `<endpoint key>|<backend key>`, 16 hex digits each,
//!   hashes rather than addresses (ingress-nginx writes md5 hashes there):
//!   the endpoint key is the endpoint's stable id (`persistent`) or a point
//!   of the backend's hash ring owned by it (`balanced`, so a new endpoint
//!   takes over its share of sessions); the backend key tells which
//!   backend set it, for canaries. After a failed attempt the retry goes
//!   to another endpoint, and with `session-cookie-change-on-failure` the
//!   cookie follows it. An endpoint at its `max-inflight-per-endpoint` cap
//!   lends the request to another without moving the session.
//! - `upstream-hash-by` ([`HashKey`]): the request's key hashed onto the
//!   ring ([`super::ring`]); the owner takes it, or the next endpoint round
//!   the ring that can (tried, or at its cap).
//!
//! A cookie setting wins over a hash key, as in ingress-nginx.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::{COOKIE, SET_COOKIE, USER_AGENT};
use http::{HeaderMap, Request};

use super::hash_key::{HashKey, RequestVars};
use super::pick::Picker;
use super::request::RequestSignals;
use super::ring::StableHash;
use super::session_cookie::{
    AffinityMode, CanaryBehavior, CookieContext, SessionCookie, samesite_none_compatible,
};
use crate::backend::{Backend, Endpoint, EndpointSet};

/// A backend's stickiness (`affinity`, `upstream-hash-by`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Affinity {
    /// None: the algorithm alone picks.
    #[default]
    None,
    /// `affinity: cookie`.
    Cookie(Arc<SessionCookie>),
    /// `upstream-hash-by`.
    Hash(Arc<HashKey>),
}

/// What one request brings to its backend's stickiness, read from the
/// client's request before it is rewritten, and the cookie to set; and
/// what it brings to the picker behind it (its prompt, model and
/// criticality: [`RequestSignals`]).
#[derive(Debug, Default)]
pub struct Sticky {
    want: Want,
    /// The session cookie's settings and what its line needs.
    cookie: Option<CookieState>,
    /// The request's prompt, model and class.
    signals: RequestSignals,
}

#[derive(Debug, Default)]
enum Want {
    #[default]
    Any,
    /// The request's `upstream-hash-by` key.
    Hash(u64),
    /// The request's key with `upstream-hash-by-subset`, and the size.
    Subset(u64, usize),
    /// The endpoint key of the request's session cookie, if it has one.
    Session(Option<u64>),
}

#[derive(Debug)]
struct CookieState {
    config: Arc<SessionCookie>,
    backend_key: u64,
    route_path: Arc<str>,
    https: bool,
    samesite_none_ok: bool,
    /// The endpoint key to send back in a new cookie.
    set: Option<u64>,
}

impl Sticky {
    /// Reads what `backend`'s stickiness needs from the client's request
    /// on a route with path `route_path`.
    pub fn read<B>(
        backend: &Backend,
        req: &Request<B>,
        remote: IpAddr,
        https: bool,
        route_path: &Arc<str>,
    ) -> Self {
        match &backend.policy().affinity {
            Affinity::None => Self::default(),
            Affinity::Hash(key) => {
                let hash = key.hash(&RequestVars {
                    uri: req.uri(),
                    headers: req.headers(),
                    remote,
                });
                let want = match key.subset_size() {
                    None => Want::Hash(hash),
                    Some(size) => Want::Subset(hash, size),
                };
                Self {
                    want,
                    cookie: None,
                    signals: RequestSignals::default(),
                }
            }
            Affinity::Cookie(config) => {
                let headers = req.headers();
                let session = cookie(headers, &config.name).and_then(|(endpoint, _)| endpoint);
                let samesite_none_ok = headers
                    .get(USER_AGENT)
                    .is_none_or(|ua| samesite_none_compatible(ua.as_bytes()));
                Self {
                    want: Want::Session(session),
                    cookie: Some(CookieState {
                        config: config.clone(),
                        backend_key: backend_key(backend),
                        route_path: route_path.clone(),
                        https,
                        samesite_none_ok,
                        set: None,
                    }),
                    signals: RequestSignals::default(),
                }
            }
        }
    }

    /// Gives the picker what the request says (see [`RequestSignals`]).
    pub fn with_signals(mut self, signals: RequestSignals) -> Self {
        self.signals = signals;
        self
    }

    /// What the request tells the picker.
    pub(crate) fn signals(&self) -> &RequestSignals {
        &self.signals
    }

    /// Adds the `Set-Cookie` line when this request started a session or
    /// moved it.
    pub fn to_client(&self, headers: &mut HeaderMap) {
        let Some(state) = &self.cookie else {
            return;
        };
        let Some(endpoint) = state.set else {
            return;
        };
        let value = format!("{endpoint:016x}|{:016x}", state.backend_key);
        let cx = CookieContext {
            route_path: &state.route_path,
            https: state.https,
            samesite_none_ok: state.samesite_none_ok,
        };
        if let Some(line) = state.config.set_cookie(&value, cx) {
            headers.append(SET_COOKIE, line);
        }
    }
}

/// The layer's pick: the sticky endpoint when there is one and it can take
/// the request, else the picker's among those `eligible` allows. `tried`
/// lists the endpoints this request already failed on; `eligible` also
/// excludes them.
pub(crate) fn pick<'e>(
    picker: &Picker<'_>,
    sticky: &mut Sticky,
    set: &'e EndpointSet,
    tried: &[SocketAddr],
    eligible: impl Fn(&Endpoint) -> bool,
) -> Option<&'e Arc<Endpoint>> {
    let endpoints = set.endpoints();
    let Sticky {
        want,
        cookie,
        signals,
    } = sticky;
    let others = |eligible: &dyn Fn(&Endpoint) -> bool| picker.pick(signals, set, eligible);
    match *want {
        Want::Any => others(&eligible),
        Want::Hash(key) => set
            .ring()
            .walk(key)
            .map(|i| &endpoints[i])
            .find(|e| eligible(e)),
        Want::Subset(key, size) => super::subset::pick(endpoints, key, size, eligible),
        Want::Session(session) => {
            let Some(state) = cookie.as_mut() else {
                return others(&eligible);
            };
            let home = session.and_then(|key| resolve(state.config.mode, set, key));
            let (picked, moves) = match home {
                Some(home) if !tried.contains(&home.addr()) => {
                    if eligible(home) {
                        return Some(home);
                    }
                    // At its cap: served elsewhere this once.
                    (others(&eligible), false)
                }
                Some(_) => (others(&eligible), state.config.change_on_failure),
                None => (others(&eligible), true),
            };
            state.set = picked
                .filter(|_| moves)
                .and_then(|e| session_key(state.config.mode, set, e));
            picked
        }
    }
}

/// Whether a request on a route with a canary stays where its session
/// cookie says, under `affinity-canary-behavior: sticky` (ingress-nginx's
/// `is_affinitized`): `Some(false)` for the main backend, `Some(true)` for
/// the canary, `None` to let the canary rule decide.
pub(crate) fn canary_affinity(
    main: &Backend,
    canary: &Backend,
    headers: &HeaderMap,
) -> Option<bool> {
    let canary_cookie = match &canary.policy().affinity {
        Affinity::Cookie(config) if config.canary_behavior == CanaryBehavior::Legacy => {
            return None;
        }
        Affinity::Cookie(config) => Some(config.clone()),
        _ => None,
    };
    let affinitized = |backend: &Backend, config: &SessionCookie| {
        cookie(headers, &config.name).is_some_and(|(_, key)| key == Some(backend_key(backend)))
    };
    if let Affinity::Cookie(config) = &main.policy().affinity
        && affinitized(main, config)
    {
        return Some(false);
    }
    canary_cookie
        .filter(|config| affinitized(canary, config))
        .map(|_| true)
}

/// The (endpoint key, backend key) of session cookie `name`, each `None`
/// when missing or not 16 hex digits.
fn cookie(headers: &HeaderMap, name: &str) -> Option<(Option<u64>, Option<u64>)> {
    let value = headers
        .get_all(COOKIE)
        .iter()
        .find_map(|line| crate::cookies::cookie_value(line.as_bytes(), name.as_bytes()))?;
    let mut parts = value.split(|b| *b == b'|');
    let endpoint = parts.next().and_then(hex);
    let backend = parts.next().and_then(hex);
    Some((endpoint, backend))
}

fn hex(digits: &[u8]) -> Option<u64> {
    if digits.len() != 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// The backend's key in its cookies: a hash of its upstream name.
fn backend_key(backend: &Backend) -> u64 {
    StableHash::of(backend.name().as_bytes())
}

/// The endpoint a session key names in the current set.
fn resolve(mode: AffinityMode, set: &EndpointSet, key: u64) -> Option<&Arc<Endpoint>> {
    match mode {
        AffinityMode::Persistent => set.endpoints().iter().find(|e| e.id() == key),
        AffinityMode::Balanced => set.ring().owner(key).map(|i| &set.endpoints()[i]),
    }
}

/// A new session key naming `endpoint`.
fn session_key(mode: AffinityMode, set: &EndpointSet, endpoint: &Arc<Endpoint>) -> Option<u64> {
    match mode {
        AffinityMode::Persistent => Some(endpoint.id()),
        AffinityMode::Balanced => {
            let index = set
                .endpoints()
                .iter()
                .position(|e| Arc::ptr_eq(e, endpoint))?;
            set.ring().key_for(index, fastrand::u64(..))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use http::HeaderValue;

    use super::*;
    use crate::backend::balance::BackendPolicy;
    use crate::backend::{BackendKey, EndpointUpdate};

    fn backend(n: u8, affinity: Affinity) -> Backend {
        let key = BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let backend = Backend::new(key, &update(1..=n));
        backend.set_policy(Arc::new(BackendPolicy {
            affinity,
            ..BackendPolicy::default()
        }));
        backend
    }

    fn update(range: std::ops::RangeInclusive<u8>) -> EndpointUpdate {
        EndpointUpdate {
            addrs: range
                .map(|i| SocketAddr::from(([10, 0, 0, i], 80)))
                .collect(),
            service_found: true,
        }
    }

    fn cookie_affinity(mode: AffinityMode, change_on_failure: bool) -> Affinity {
        Affinity::Cookie(Arc::new(SessionCookie {
            mode,
            change_on_failure,
            ..SessionCookie::default()
        }))
    }

    fn request(cookie: Option<&str>) -> Request<()> {
        let mut req = Request::get("/a?x=1").body(()).unwrap();
        if let Some(cookie) = cookie {
            req.headers_mut()
                .insert(COOKIE, HeaderValue::from_str(cookie).unwrap());
        }
        req
    }

    /// Picks once for `req`; returns the endpoint and the Set-Cookie value.
    fn once(
        backend: &Backend,
        req: &Request<()>,
        tried: &[SocketAddr],
    ) -> (SocketAddr, Option<String>) {
        let path: Arc<str> = "/a".into();
        let mut sticky = Sticky::read(backend, req, IpAddr::from([1, 2, 3, 4]), false, &path);
        let set = backend.endpoints();
        let policy = backend.policy();
        let picked = pick(&backend.picker(&policy), &mut sticky, &set, tried, |e| {
            !tried.contains(&e.addr())
        })
        .unwrap()
        .addr();
        let mut headers = HeaderMap::new();
        sticky.to_client(&mut headers);
        let line = headers
            .get(SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned());
        (picked, line)
    }

    fn cookie_of(line: &str) -> String {
        line.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn a_session_starts_then_sticks_in_both_modes() {
        for mode in [AffinityMode::Balanced, AffinityMode::Persistent] {
            let backend = backend(5, cookie_affinity(mode, false));
            let (first, line) = once(&backend, &request(None), &[]);
            let line = line.expect("the first response sets the cookie");
            assert!(line.starts_with("INGRESSCOOKIE="), "{line}");
            assert!(!line.contains("10.0.0."), "no address in {line}");
            let cookie = cookie_of(&line);
            for _ in 0..20 {
                let (again, set) = once(&backend, &request(Some(&cookie)), &[]);
                assert_eq!(again, first, "{mode:?}");
                assert_eq!(set, None);
            }
        }
    }

    #[test]
    fn a_gone_endpoint_moves_the_session() {
        for mode in [AffinityMode::Balanced, AffinityMode::Persistent] {
            let backend = backend(3, cookie_affinity(mode, false));
            let (first, line) = once(&backend, &request(None), &[]);
            let cookie = cookie_of(&line.unwrap());
            let rest: Vec<SocketAddr> = backend
                .endpoints()
                .endpoints()
                .iter()
                .map(|e| e.addr())
                .filter(|a| *a != first)
                .collect();
            backend.update(&EndpointUpdate {
                addrs: rest.clone(),
                service_found: true,
            });
            let (moved, set) = once(&backend, &request(Some(&cookie)), &[]);
            assert!(rest.contains(&moved));
            // Persistent: a new session and cookie. Balanced: the key now
            // belongs to the next point of the ring, as ingress-nginx.
            let now = match mode {
                AffinityMode::Persistent => cookie_of(&set.expect("a new cookie")),
                AffinityMode::Balanced => {
                    assert_eq!(set, None);
                    cookie.clone()
                }
            };
            for _ in 0..5 {
                assert_eq!(once(&backend, &request(Some(&now)), &[]).0, moved);
            }
        }
    }

    #[test]
    fn a_failure_moves_the_session_only_with_change_on_failure() {
        for change in [false, true] {
            let backend = backend(3, cookie_affinity(AffinityMode::Persistent, change));
            let (first, line) = once(&backend, &request(None), &[]);
            let cookie = cookie_of(&line.unwrap());
            let (retry, set) = once(&backend, &request(Some(&cookie)), &[first]);
            assert_ne!(retry, first);
            assert_eq!(set.is_some(), change);
        }
    }

    #[test]
    fn a_foreign_or_garbled_cookie_starts_a_session() {
        let backend = backend(3, cookie_affinity(AffinityMode::Persistent, false));
        for value in [
            "INGRESSCOOKIE=10.0.0.1:80",
            "INGRESSCOOKIE=",
            "INGRESSCOOKIE=0123456789abcdef|x",
        ] {
            let (_, set) = once(&backend, &request(Some(value)), &[]);
            assert!(set.is_some(), "{value}");
        }
    }

    #[test]
    fn a_hash_key_sends_equal_keys_to_one_endpoint() {
        let key = HashKey::parse("$arg_x").unwrap();
        let backend = backend(6, Affinity::Hash(Arc::new(key)));
        let (first, set) = once(&backend, &request(None), &[]);
        assert_eq!(set, None);
        for _ in 0..10 {
            assert_eq!(once(&backend, &request(None), &[]).0, first);
        }
        let (retry, _) = once(&backend, &request(None), &[first]);
        assert_ne!(retry, first);
    }

    #[test]
    fn canary_affinity_follows_the_backend_key() {
        let main = backend(2, cookie_affinity(AffinityMode::Persistent, false));
        let canary_key = BackendKey {
            namespace: "ns".into(),
            service: "next".into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let canary = Backend::new(canary_key, &update(3..=3));
        canary.set_policy(main.policy());
        let (_, line) = once(&canary, &request(None), &[]);
        let canary_cookie = cookie_of(&line.unwrap());
        let (_, line) = once(&main, &request(None), &[]);
        let main_cookie = cookie_of(&line.unwrap());
        let headers = |c: &str| request(Some(c)).headers().clone();
        assert_eq!(
            canary_affinity(&main, &canary, &headers(&canary_cookie)),
            Some(true)
        );
        assert_eq!(
            canary_affinity(&main, &canary, &headers(&main_cookie)),
            Some(false)
        );
        assert_eq!(canary_affinity(&main, &canary, &HeaderMap::new()), None);
        canary.set_policy(Arc::new(BackendPolicy {
            affinity: Affinity::Cookie(Arc::new(SessionCookie {
                canary_behavior: CanaryBehavior::Legacy,
                ..SessionCookie::default()
            })),
            ..BackendPolicy::default()
        }));
        assert_eq!(
            canary_affinity(&main, &canary, &headers(&canary_cookie)),
            None
        );
    }
}
