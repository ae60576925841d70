//! A route's admission checks, run after nginx's rewrite phase and before
//! the request is proxied, in the order ingress-nginx's generated
//! configuration runs them:
//!
//! 1. the CORS preflight (`enable-cors`): ingress-nginx answers `OPTIONS`
//!    with an `if` in the location's rewrite phase, so a preflight is
//!    answered before any limit or authentication;
//! 2. the request limits: `global-rate-limit` (ingress-nginx's Lua in the
//!    rewrite phase), then `limit-rps`, `limit-rpm`, `limit-connections`
//!    (nginx's pre-access phase);
//! 3. the address lists (`whitelist-source-range`, `denylist-source-range`):
//!    the access phase's `allow` / `deny`;
//! 4. basic authentication (`auth-type: basic`);
//! 5. external authentication (`auth-url`, or the ConfigMap's global
//!    auth), nginx's `auth_request`.
//!
//! Steps 3 to 5 are nginx's access phase. Under `satisfy all` (the
//! default) each must let the request in; under `satisfy any` the first
//! that allows it ends the phase, and when none does the answer is 401 if
//! one asked for credentials, else 403; an invalid address list (503) or a
//! failing auth service (500) answers at once, as nginx finalizes on any
//! other status ([`Admission::admit`]).
//!
//! What the checks learn and the request needs later (the allowed CORS
//! origin, a held connection slot, headers granted by the auth service)
//! comes back in [`Admitted`].

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};

use super::access::{AccessList, Judged};
use super::basic_auth::{self, BasicAuth};
use super::cors::Cors;
use super::external_auth::{AuthClient, AuthDecision, AuthRequest, ExternalAuth};
use super::global_limit::GlobalLimit;
use super::limits::{ConnectionPermit, RateLimiter};
use crate::refusal::Refusal;

/// The admission checks of one route; built by the control plane from the
/// Ingress's annotations and shared by the routes of that Ingress.
#[derive(Debug, Default)]
pub struct Admission {
    /// `enable-cors` and its `cors-*` settings.
    pub cors: Option<Cors>,
    /// `global-rate-limit`: counted in the store every replica shares.
    pub global: Option<Arc<GlobalLimit>>,
    /// The Ingress's limiter (one per Ingress, kept across table rebuilds
    /// so that a reload does not reset the buckets).
    pub limiter: Option<RateLimiter>,
    /// The address allow and deny lists.
    pub access: AccessList,
    /// `auth-type: basic` with the users of `auth-secret`.
    pub basic_auth: Option<Arc<BasicAuth>>,
    /// `auth-url` and its `auth-*` settings.
    pub external_auth: Option<Arc<ExternalAuth>>,
    /// `satisfy: any`: one passing access check suffices.
    pub satisfy_any: bool,
}

/// What an admitted request carries on to the later phases.
#[derive(Debug, Default)]
pub struct Admitted {
    /// The `Access-Control-Allow-Origin` to set on the response, when CORS
    /// applies to the request.
    pub cors_origin: Option<HeaderValue>,
    /// The client's slot under `limit-connections`, held until the
    /// response ends.
    pub permit: Option<ConnectionPermit>,
    /// Headers the auth service granted (`auth-response-headers`), to set
    /// on the upstream request.
    pub granted: Option<Vec<(HeaderName, HeaderValue)>>,
}

/// The request facts the checks read, borrowed from the request before it
/// is turned into the upstream request.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    /// The client's address.
    pub client_ip: IpAddr,
    /// What the external auth service is told about the request.
    pub auth: AuthRequest<'a>,
}

/// The client for auth services, shared by every route and built on first
/// use (it reads the system's CA certificates).
#[derive(Debug, Default)]
pub struct AuthClients {
    client: OnceLock<Option<AuthClient>>,
}

impl AuthClients {
    fn get(&self) -> Option<&AuthClient> {
        self.client
            .get_or_init(|| match AuthClient::new() {
                Ok(client) => Some(client),
                Err(error) => {
                    tracing::error!(%error, "no client for auth-url services: the system CA certificates did not load");
                    None
                }
            })
            .as_ref()
    }
}

impl Admission {
    /// Whether any check is configured; a route without one skips the
    /// phase.
    pub fn is_empty(&self) -> bool {
        self.cors.is_none()
            && self.global.is_none()
            && self.limiter.is_none()
            && self.access.is_open()
            && self.basic_auth.is_none()
            && self.external_auth.is_none()
    }

    /// The CORS preflight answer, when CORS is on and applies to the
    /// request.
    pub fn preflight(&self, method: &Method, headers: &HeaderMap) -> Option<Box<Refusal>> {
        self.cors
            .as_ref()
            .and_then(|cors| cors.preflight(method, headers))
            .map(Box::new)
    }

    /// Runs the checks after the preflight, in the module's order.
    pub async fn admit(
        &self,
        clients: &AuthClients,
        request: &Candidate<'_>,
    ) -> Result<Admitted, Box<Refusal>> {
        let headers = request.auth.headers;
        let mut admitted = Admitted {
            cors_origin: self.cors.as_ref().and_then(|c| c.allowed_origin(headers)),
            ..Admitted::default()
        };
        if let Some(global) = &self.global
            && let Err(limited) = global.check(&request.auth, request.client_ip).await
        {
            let mut refusal = self.refuse(limited.status, &admitted);
            refusal.set_rate_limit_exceeding(limited.exceeding);
            return Err(refusal);
        }
        if let Some(limiter) = &self.limiter {
            admitted.permit = limiter
                .check(request.client_ip)
                .map_err(|status| self.refuse(status, &admitted))?;
        }
        if self.satisfy_any {
            return self.admit_any(clients, request, admitted).await;
        }
        self.access
            .check(request.client_ip)
            .map_err(|status| self.refuse(status, &admitted))?;
        if let Some(basic) = &self.basic_auth {
            basic_auth::check_offloaded(basic, headers)
                .await
                .map_err(|r| self.decorate(r, &admitted))?;
        }
        if let Some(external) = &self.external_auth {
            let Some(client) = clients.get() else {
                return Err(self.refuse(StatusCode::INTERNAL_SERVER_ERROR, &admitted));
            };
            match external.check(client, &request.auth).await {
                AuthDecision::Allow(granted) => admitted.granted = Some(granted),
                AuthDecision::Deny(response) => return Err(self.decorate(response, &admitted)),
            }
        }
        Ok(admitted)
    }

    /// The access checks under `satisfy any`: the address lists, basic
    /// auth, then external auth, the first that allows the request ending
    /// them; a 401 (or the `auth-signin` redirect standing for it) wins
    /// over a 403 when none does, as nginx keeps the access code.
    async fn admit_any(
        &self,
        clients: &AuthClients,
        request: &Candidate<'_>,
        mut admitted: Admitted,
    ) -> Result<Admitted, Box<Refusal>> {
        let mut unauthorized: Option<Box<Refusal>> = None;
        let mut forbidden = false;
        match self.access.judge(request.client_ip) {
            Ok(Judged::Allowed) => return Ok(self.without_auth(admitted)),
            Ok(Judged::NoRule) => {}
            Err(StatusCode::FORBIDDEN) => forbidden = true,
            Err(status) => return Err(self.refuse(status, &admitted)),
        }
        if let Some(basic) = &self.basic_auth {
            match basic_auth::check_offloaded(basic, request.auth.headers).await {
                Ok(()) => return Ok(self.without_auth(admitted)),
                Err(refusal) if refusal.status() == StatusCode::UNAUTHORIZED => {
                    unauthorized = Some(refusal);
                }
                Err(refusal) => return Err(self.decorate(refusal, &admitted)),
            }
        }
        if let Some(external) = &self.external_auth {
            let Some(client) = clients.get() else {
                return Err(self.refuse(StatusCode::INTERNAL_SERVER_ERROR, &admitted));
            };
            match external.check(client, &request.auth).await {
                AuthDecision::Allow(granted) => {
                    admitted.granted = Some(granted);
                    return Ok(admitted);
                }
                AuthDecision::Deny(refusal) => match refusal.status() {
                    // 302: the `auth-signin` redirect of a 401.
                    StatusCode::UNAUTHORIZED | StatusCode::FOUND => unauthorized = Some(refusal),
                    StatusCode::FORBIDDEN => forbidden = true,
                    _ => return Err(self.decorate(refusal, &admitted)),
                },
            }
        }
        match unauthorized {
            Some(refusal) => Err(self.decorate(refusal, &admitted)),
            None if forbidden => Err(self.refuse(StatusCode::FORBIDDEN, &admitted)),
            None => Ok(self.without_auth(admitted)),
        }
    }

    /// A request let in without asking the auth service: the headers it
    /// would grant are still cleared upstream (nginx sets them to the
    /// empty answer's values).
    fn without_auth(&self, mut admitted: Admitted) -> Admitted {
        if self.external_auth.is_some() {
            admitted.granted = Some(Vec::new());
        }
        admitted
    }

    /// Rewrites the upstream request's headers for the checks that passed:
    /// basic authentication's `Authorization` is not sent on (ingress-nginx:
    /// `proxy_set_header Authorization ""`), granted auth headers are.
    pub fn to_upstream(
        &self,
        headers: &mut HeaderMap,
        granted: Option<Vec<(HeaderName, HeaderValue)>>,
    ) {
        if self.basic_auth.is_some() {
            basic_auth::strip_authorization(headers);
        }
        if let (Some(external), Some(granted)) = (&self.external_auth, granted) {
            external.set_upstream_headers(headers, granted);
        }
    }

    /// Sets the CORS headers on a response (any status), when CORS applies.
    pub fn to_client(&self, origin: Option<HeaderValue>, headers: &mut HeaderMap) {
        if let (Some(cors), Some(origin)) = (&self.cors, origin) {
            cors.apply(origin, headers);
        }
    }

    fn refuse(&self, status: StatusCode, admitted: &Admitted) -> Box<Refusal> {
        self.decorate(Box::new(Refusal::error_page(status)), admitted)
    }

    fn decorate(&self, mut response: Box<Refusal>, admitted: &Admitted) -> Box<Refusal> {
        self.to_client(admitted.cors_origin.clone(), response.headers_mut());
        response
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use http::Uri;
    use http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, ORIGIN};

    use super::*;
    use crate::policy::cors::{CorsConfig, parse_origins};
    use crate::policy::htpasswd::Htpasswd;
    use crate::policy::limits::LimitConfig;

    fn candidate<'a>(headers: &'a HeaderMap, uri: &'a Uri, ip: [u8; 4]) -> Candidate<'a> {
        let client_ip = IpAddr::V4(Ipv4Addr::from(ip));
        Candidate {
            client_ip,
            auth: AuthRequest {
                method: &Method::GET,
                scheme: "http",
                host: "api.example.com",
                uri,
                headers,
                client_ip,
                forwarded_for: None,
                request_id: None,
                underscores: false,
            },
        }
    }

    fn status(result: Result<Admitted, Box<Refusal>>) -> u16 {
        match result {
            Ok(_) => 200,
            Err(response) => response.status().as_u16(),
        }
    }

    #[tokio::test]
    async fn limits_run_before_address_lists_and_auth() {
        let (users, _) = Htpasswd::parse("alice:{PLAIN}secret\n");
        let admission = Admission {
            limiter: Some(RateLimiter::new(LimitConfig {
                connections: 1,
                ..LimitConfig::default()
            })),
            access: AccessList::from_values(Some("10.0.0.0/8"), None),
            basic_auth: Some(Arc::new(BasicAuth::new("r", Arc::new(users)))),
            ..Admission::default()
        };
        let clients = AuthClients::default();
        let uri: Uri = "/".parse().unwrap();
        let none = HeaderMap::new();
        let mut alice = HeaderMap::new();
        alice.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0"),
        );
        assert_eq!(
            status(
                admission
                    .admit(&clients, &candidate(&none, &uri, [192, 0, 2, 1]))
                    .await
            ),
            403
        );
        assert_eq!(
            status(
                admission
                    .admit(&clients, &candidate(&none, &uri, [10, 0, 0, 1]))
                    .await
            ),
            401
        );
        let held = admission
            .admit(&clients, &candidate(&alice, &uri, [10, 0, 0, 1]))
            .await;
        assert!(held.as_ref().is_ok_and(|a| a.permit.is_some()));
        assert_eq!(
            status(
                admission
                    .admit(&clients, &candidate(&alice, &uri, [10, 0, 0, 1]))
                    .await
            ),
            503,
            "the one connection is held"
        );
        drop(held);
        assert_eq!(
            status(
                admission
                    .admit(&clients, &candidate(&alice, &uri, [10, 0, 0, 1]))
                    .await
            ),
            200
        );
    }

    #[tokio::test]
    async fn satisfy_any_lets_in_on_one_passing_check() {
        let (users, _) = Htpasswd::parse("alice:{PLAIN}secret\n");
        let admission = Admission {
            access: AccessList::from_values(Some("10.0.0.0/8"), Some("10.9.0.0/16")),
            basic_auth: Some(Arc::new(BasicAuth::new("r", Arc::new(users)))),
            satisfy_any: true,
            ..Admission::default()
        };
        let clients = AuthClients::default();
        let uri: Uri = "/".parse().unwrap();
        let none = HeaderMap::new();
        let mut alice = HeaderMap::new();
        alice.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0"),
        );
        for (headers, ip, want, why) in [
            (&none, [10, 0, 0, 1], 200, "allow list"),
            (&alice, [192, 0, 2, 1], 200, "password"),
            (
                &none,
                [192, 0, 2, 1],
                401,
                "401 wins over the allow list's 403",
            ),
            (
                &alice,
                [10, 9, 0, 1],
                200,
                "a denied address with a password",
            ),
        ] {
            let answer = admission
                .admit(&clients, &candidate(headers, &uri, ip))
                .await;
            assert_eq!(status(answer), want, "{why}");
        }
        let lists_only = Admission {
            access: AccessList::from_values(Some("10.0.0.0/8"), None),
            satisfy_any: true,
            ..Admission::default()
        };
        let uri: Uri = "/".parse().unwrap();
        let refused = lists_only
            .admit(&clients, &candidate(&none, &uri, [192, 0, 2, 1]))
            .await;
        assert_eq!(status(refused), 403);
        let invalid = Admission {
            access: AccessList::Invalid("bad".to_owned()),
            basic_auth: admission.basic_auth.clone(),
            satisfy_any: true,
            ..Admission::default()
        };
        let answer = invalid
            .admit(&clients, &candidate(&alice, &uri, [10, 0, 0, 1]))
            .await;
        assert_eq!(status(answer), 503, "an invalid list is never skipped");
    }

    #[tokio::test]
    async fn refusals_carry_cors_headers_and_upstream_loses_credentials() {
        let (users, _) = Htpasswd::parse("alice:{PLAIN}secret\n");
        let admission = Admission {
            cors: Some(Cors::new(CorsConfig {
                allow_origin: parse_origins("https://app.example.com").unwrap(),
                ..CorsConfig::default()
            })),
            basic_auth: Some(Arc::new(BasicAuth::new("r", Arc::new(users)))),
            ..Admission::default()
        };
        let uri: Uri = "/".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, HeaderValue::from_static("https://app.example.com"));
        let preflight = admission.preflight(&Method::OPTIONS, &headers).unwrap();
        assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
        let refused = admission
            .admit(
                &AuthClients::default(),
                &candidate(&headers, &uri, [10, 0, 0, 1]),
            )
            .await
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            refused.headers()[ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0"),
        );
        let admitted = admission
            .admit(
                &AuthClients::default(),
                &candidate(&headers, &uri, [10, 0, 0, 1]),
            )
            .await
            .unwrap();
        admission.to_upstream(&mut headers, admitted.granted);
        assert!(!headers.contains_key(AUTHORIZATION));
        assert!(Admission::default().is_empty() && !admission.is_empty());
    }
}
