//! Phase 4, admit: whether the routed request may go on. A Gateway API
//! `CORS` preflight is answered first; a route with a fixed answer gives it;
//! a body declared larger than `proxy-body-size` is refused before a byte of
//! it is read; then the route's admission checks run (CORS preflight,
//! limits, address lists, authentication: see [`crate::policy::admission`]).
//! A refused request's body is never read.

use http::Request;
use http::header::{CONTENT_LENGTH, HeaderValue};
use hyper::body::Incoming;

use crate::ids::BackendId;
use crate::policy::admission::{Admitted, AuthClients, Candidate};
use crate::policy::external_auth::AuthRequest;
use crate::settings::ProxySettings;
use crate::table::RouteAction;

use super::Scope;
use super::error::ProxyError;
use super::exchange::Trace;
use super::headers::{self, X_REQUEST_ID};
use super::respond::Early;
use super::route::Routing;

/// What admission decided for a request that may go on.
pub(super) struct Passed {
    /// The route's own backend (a canary or a weighted draw may replace it).
    pub(super) main_backend: BackendId,
    /// The `X-Request-ID` the gateway made, if the client sent none.
    pub(super) request_id: Option<HeaderValue>,
    /// What the admission checks hand on (CORS origin, connection permit,
    /// granted headers).
    pub(super) admitted: Admitted,
    /// The origin a Gateway API `CORS` filter allows, for the response.
    pub(super) gateway_origin: Option<HeaderValue>,
}

/// Phase 4: admits the request or answers it.
pub(super) async fn admit(
    scope: &Scope<'_>,
    req: &Request<Incoming>,
    target: &Routing,
    auth_clients: &AuthClients,
    trace: &mut Trace,
) -> Result<Passed, Early> {
    let route = scope.found.route;
    let globals = scope.table.globals();
    // A Gateway API CORS preflight is answered before anything else.
    let gateway_cors = scope.filters().and_then(|f| f.cors.as_ref());
    if let Some(answer) = gateway_cors.and_then(|c| c.preflight(req.method(), req.headers())) {
        return Err(answer.into());
    }
    let gateway_origin = gateway_cors.and_then(|c| c.allowed_origin(req.headers()));
    let main_backend = match route.action {
        RouteAction::Proxy(id) => id,
        RouteAction::Respond(code) => return Err(Early::Fixed(code)),
    };
    check_body_size(req, &route.settings)?;
    let request_id = headers::request_id(req.headers(), globals.headers.generate_request_id);
    let admitted = match &route.admission {
        None => Admitted::default(),
        Some(admission) => {
            if let Some(answer) = admission.preflight(req.method(), req.headers()) {
                return Err(answer.into());
            }
            let chain = headers::computed_forwarded_for(globals, scope.conn, req.headers());
            let candidate = candidate(scope, req, target, request_id.as_ref(), chain.as_ref());
            // Boxed: the checks' future (external authentication's client
            // included) would otherwise make every request's larger.
            match Box::pin(admission.admit(auth_clients, &candidate)).await {
                Ok(admitted) => admitted,
                Err(refusal) => {
                    trace.rate_limited = refusal.rate_limit_exceeding();
                    return Err(refusal.into());
                }
            }
        }
    };
    Ok(Passed {
        main_backend,
        request_id,
        admitted,
        gateway_origin,
    })
}

/// Refuses a body that declares itself larger than the route allows, before
/// any byte of it is read (and so before `100 Continue` is sent).
fn check_body_size(req: &Request<Incoming>, settings: &ProxySettings) -> Result<(), ProxyError> {
    let Some(limit) = settings.max_body_size else {
        return Ok(());
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(ProxyError::BodyTooLarge(limit)),
        _ => Ok(()),
    }
}

/// What the admission checks read about a request, with the generated
/// `X-Request-ID` and the computed `X-Forwarded-For`, if any.
fn candidate<'a>(
    scope: &'a Scope<'_>,
    req: &'a Request<Incoming>,
    target: &'a Routing,
    generated_id: Option<&'a HeaderValue>,
    forwarded_for: Option<&'a HeaderValue>,
) -> Candidate<'a> {
    let client_ip = scope.client.ip;
    Candidate {
        client_ip,
        auth: AuthRequest {
            method: req.method(),
            scheme: scope.conn.listener.settings.scheme.as_str(),
            host: target.auth_host.as_deref().unwrap_or(""),
            uri: req.uri(),
            headers: req.headers(),
            client_ip,
            forwarded_for,
            request_id: generated_id.or_else(|| req.headers().get(&X_REQUEST_ID)),
            underscores: scope.table.globals().headers.underscores,
        },
    }
}
