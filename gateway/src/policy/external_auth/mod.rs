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

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{
    CONNECTION, CONTENT_LENGTH, EXPECT, HOST, HeaderMap, HeaderName, HeaderValue, LOCATION,
    SET_COOKIE, WWW_AUTHENTICATE,
};
use http::{Method, StatusCode, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

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

mod cache;
mod client;
mod config;
mod template;

use cache::*;
pub use client::AuthClient;
use client::*;
pub use config::*;
pub use template::*;

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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http::{Request, Response};
    use hyper_util::rt::TokioIo;
    use rustls::ClientConfig;
    use std::convert::Infallible;
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use http_body_util::{BodyExt as _, Full};
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
