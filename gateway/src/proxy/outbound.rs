//! Phase 5, outbound: the upstream request. What the backend's affinity
//! and picker need is read from the client's request first (session
//! cookie, `upstream-hash-by` key, prompt blocks, model and criticality),
//! then the request is taken apart into the upstream request: ingress-nginx's
//! headers, `upstream-vhost`, the `rewrite-target` path with
//! `x-forwarded-prefix`, the route's backend protocol (see
//! [`super::protocol`]), the trace context, the auth service's granted
//! headers and Gateway API `RequestHeaderModifier`s. Mirrored copies
//! (`mirror-target`, `RequestMirror`) leave here, their bodies teed from
//! the client's.

use std::sync::Arc;

use http::header::{HOST, HeaderName, HeaderValue};
use http::uri::Uri;
use http::{HeaderMap, Method, Request, Version};
use http_body::Body;
use hyper::body::Incoming;

use crate::backend::balance::RequestSignals;
use crate::backend::balance::affinity::Sticky;
use crate::metrics;
use crate::mirror::{Mirror, Shadow};
use crate::route_filter::{RouteFilters, Slot};
use crate::scheme::Scheme;
use crate::table::Route;
use crate::upstream::Wire;

use super::admit::Passed;
use super::body::{RequestBody, SendProgress};
use super::error_pages::Original;
use super::exchange::Trace;
use super::headers::{self, X_REQUEST_ID};
use super::pick::Picked;
use super::respond::Early;
use super::route::Routing;
use super::upgrade::{self, ClientUpgrade};
use super::{ConnInfo, Proxy, Scope, model_peek, protocol};

/// Sent upstream with `rewrite-target` when `x-forwarded-prefix` is set.
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// The upstream request and what forwarding it needs.
pub(super) struct Outbound {
    /// The request to send.
    pub(super) request: Request<RequestBody>,
    /// How to reach the backend (HTTP/1.1 or 2, TLS).
    pub(super) wire: Wire,
    /// How much of the request body has been sent, for retries.
    pub(super) progress: Option<Arc<SendProgress>>,
    /// What a `custom-http-errors` page would need of the request (boxed,
    /// as the next field: rare, and the outbound request moves).
    pub(super) original: Option<Box<Original>>,
    /// The request's method and URI, when a gateway-made error must carry
    /// CORS headers (its log line names them).
    pub(super) error_context: Option<Box<(Method, Uri)>>,
}

/// What the response phase needs of the client's request.
pub(super) struct Carried {
    /// The backend's affinity, told what was picked.
    pub(super) sticky: Sticky,
    /// The client's upgrade (WebSocket), to splice to the upstream's.
    pub(super) upgrade: Option<ClientUpgrade>,
}

impl Proxy {
    /// Phase 5: turns the client's request into the upstream request and
    /// sends the route's mirrored copies.
    #[inline]
    pub(super) fn outbound(
        &self,
        scope: &Scope<'_>,
        mut req: Request<Incoming>,
        target: Routing,
        passed: &mut Passed,
        picked: &Picked<'_>,
        trace: &mut Trace,
    ) -> Result<(Outbound, Carried), Early> {
        let (conn, route) = (scope.conn, scope.found.route);
        let scheme = conn.listener.settings.scheme;
        // Gateway-made errors carry CORS headers too: keep what their log
        // line needs.
        let error_context = passed
            .admitted
            .cors_origin
            .is_some()
            .then(|| Box::new((req.method().clone(), req.uri().clone())));
        let signals = RequestSignals::read(&mut req, &route.settings.signals);
        let https = scheme == Scheme::Https;
        let sticky = Sticky::read(picked.backend, &req, scope.client.ip, https, &route.path)
            .with_signals(signals);
        let original = Original::read(scope.table, route, &req, scope.client.ip);
        let mut client_upgrade = upgrade::take(&req, conn.upgrades());
        let shadow = route
            .policy
            .mirror
            .as_ref()
            .and_then(|mirror| self.shadow(mirror, route, &req, conn));
        let from = headers::Upstream {
            conn,
            client: scope.client,
            globals: scope.table.globals(),
        };
        let request_id = passed.request_id.take();
        let (mut request, progress) = upstream_request(req, &from, route, target, request_id);
        let wire = protocol::prepare(&mut request, &mut client_upgrade, &route.settings, scheme)?;
        headers::trace_context(request.headers_mut(), trace.span.as_deref_mut());
        if let Some(admission) = &route.admission {
            admission.to_upstream(request.headers_mut(), passed.admitted.granted.take());
        }
        edit_request_headers(scope.filters(), picked.slot, request.headers_mut());
        trace.request_body = progress.clone();
        trace.request_id = request.headers().get(&X_REQUEST_ID).cloned();
        let mut outbound = Outbound {
            request,
            wire,
            progress,
            original,
            error_context,
        };
        self.mirror(scope, shadow, &mut outbound);
        let carried = Carried {
            sticky,
            upgrade: client_upgrade,
        };
        Ok((outbound, carried))
    }

    /// The copies (`mirror-target`'s, then the rule's `RequestMirror`s of
    /// the request as forwarded) leave now, their bodies teed from the
    /// client's.
    fn mirror(&self, scope: &Scope<'_>, shadow: Option<Shadow>, outbound: &mut Outbound) {
        let route = scope.found.route;
        let mirrors = scope.filters().map_or(&[][..], |f| &f.mirrors[..]);
        if shadow.is_none() && mirrors.is_empty() {
            return;
        }
        let request = &outbound.request;
        let copies = mirrors.iter().filter_map(|m| {
            let backend = scope.table.backend(m.backend());
            m.copy(
                request,
                backend,
                outbound.wire.http2,
                self.mirror_stats(route),
            )
        });
        let shadows: Vec<_> = shadow.into_iter().chain(copies).collect();
        if shadows.is_empty() {
            return;
        }
        let body = outbound.request.body_mut();
        let has_body = !body.is_end_stream();
        let settings = &route.settings;
        let teed = crate::mirror::tee_all(shadows, has_body, |tee| body.tee(tee));
        for (shadow, body) in teed {
            shadow.send(body, settings.connect_timeout, settings.read_timeout);
        }
    }

    /// A copy of `req` for the route's mirror, if one may go.
    fn shadow<B>(
        &self,
        mirror: &Mirror,
        route: &Route,
        req: &Request<B>,
        conn: &ConnInfo,
    ) -> Option<Shadow> {
        let stats = self.mirror_stats(route);
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
        mirror.copy(req, conn.listener.settings.scheme.as_str(), host, stats)
    }

    /// The mirroring series of a route's Ingress (or HTTPRoute).
    fn mirror_stats(&self, route: &Route) -> Option<Arc<metrics::MirrorStats>> {
        let (metrics, source) = self.observer.metrics.as_ref().zip(route.source.as_ref())?;
        Some(metrics.mirror(metrics::MirrorLabels {
            namespace: source.namespace.clone(),
            ingress: source.name.clone(),
        }))
    }
}

/// A Gateway API rule's `RequestHeaderModifier`, then its drawn backend's.
fn edit_request_headers(
    filters: Option<&RouteFilters>,
    slot: Option<&Slot>,
    headers: &mut HeaderMap,
) {
    let rule = filters.and_then(|f| f.request_headers.as_ref());
    let backend = slot.and_then(|s| s.request_headers.as_ref());
    for edits in rule.into_iter().chain(backend) {
        edits.apply(headers);
    }
}

/// Builds the upstream request from the client's, moving its parts:
/// ingress-nginx's headers, `upstream-vhost`, and the `rewrite-target`
/// path with `x-forwarded-prefix`.
#[inline]
fn upstream_request(
    req: Request<Incoming>,
    from: &headers::Upstream<'_>,
    route: &Route,
    target: Routing,
    request_id: Option<HeaderValue>,
) -> (Request<RequestBody>, Option<Arc<SendProgress>>) {
    let Routing {
        authority,
        rewritten,
        error_page,
        ..
    } = target;
    let (mut parts, incoming) = req.into_parts();
    let settings = &route.settings;
    let peeked = model_peek::take(&mut parts.extensions);
    let (body, progress) = if error_page || (incoming.is_end_stream() && peeked.is_empty()) {
        (RequestBody::empty(), None)
    } else {
        let (body, progress) = RequestBody::client(
            peeked,
            incoming,
            settings.max_body_size,
            settings.client_body_timeout,
        );
        (body, Some(progress))
    };
    headers::to_upstream(&mut parts.headers, from, authority, request_id, &parts.uri);
    let policy = &route.policy;
    if let Some(vhost) = &policy.upstream_vhost {
        parts.headers.insert(HOST, vhost.clone());
    }
    match rewritten {
        Some(target) => {
            parts.uri = target;
            if let Some(prefix) = &policy.x_forwarded_prefix {
                parts
                    .headers
                    .insert(X_FORWARDED_PREFIX.clone(), prefix.clone());
            }
        }
        None if parts.uri.scheme().is_some() => {
            // Absolute form from the client; origin form to the upstream.
            parts.uri = match parts.uri.path_and_query() {
                Some(origin) => Uri::from(origin.clone()),
                None => Uri::from_static("/"),
            };
        }
        None => {}
    }
    parts.version = Version::HTTP_11;
    (Request::from_parts(parts, body), progress)
}
