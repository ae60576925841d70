//! The request path. [`Proxy::handle`] reads as the phases every request
//! goes through:
//!
//! 0. **client**: who is asking: the peer, or the address its trusted
//!    forwarded-for header names (see [`crate::policy::forwarded`]),
//!    resolved once and used by every later phase and the access log;
//! 1. **inspect**: refuse blocked clients (`block-cidrs`,
//!    `block-user-agents`, `block-referers`), then malformed or ambiguous
//!    requests; normalise host and path;
//! 2. **route**: look the host and path up in the current table (loaded
//!    once), with the method, headers, query and listener for Gateway API
//!    conditions; on a host that checks client certificates, judge the
//!    connection's (see [`crate::policy::client_cert`]);
//! 3. **policy**: nginx's rewrite phase: redirects (from-to-www, app-root,
//!    permanent/temporal, HTTPS, a Gateway API `RequestRedirect`) and
//!    `rewrite-target` (or a Gateway API `URLRewrite` path);
//! 4. **admit**: a Gateway API `CORS` preflight, the declared body size,
//!    then the route's admission checks (CORS preflight, limits, address
//!    lists, authentication: see [`crate::policy::admission`]); only then,
//!    with `model-from-body`, is the body read: its JSON `model` goes in a
//!    header that canary rules can read (see [`model_peek`]), and the
//!    backend is picked: a Gateway API rule's weighted draw (see
//!    [`crate::route_filter`]) or a canary's (see [`crate::canary`]), as
//!    nginx's balancer runs after the access phase. A refused request's
//!    body is never read;
//! 5. **rewrite**: read what the backend's affinity and picker need
//!    (session cookie, `upstream-hash-by` key, prompt blocks, model and
//!    criticality), then turn the client request into the upstream
//!    request, for the route's backend protocol (see [`protocol`]), and
//!    apply Gateway API `RequestHeaderModifier`s;
//! 6. **forward**: pick an endpoint (the sticky one first), send, retry
//!    where allowed; an answer whose status the route's
//!    `custom-http-errors` lists is replaced by its default backend's;
//! 7. **respond**: clean the upstream response head (`hide-headers`, CORS,
//!    HSTS on HTTPS, a new session cookie, Gateway API
//!    `ResponseHeaderModifier`s) and stream its body back, or
//!    splice an upgraded connection (see [`upgrade`]); `add-headers` go on
//!    every response, the gateway's own answers included.
//!
//! Any phase can end the request early with a [`ProxyError`] (something
//! failed) or a [`Refusal`] (a policy's answer: a denial, a redirect, a
//! CORS preflight answer); [`respond`] turns either into the response, in
//! one place. docs/architecture.md draws the phases.

mod body;
mod error;
mod error_pages;
mod exchange;
mod forward;
mod headers;
mod inspect;
mod model_peek;
mod protocol;
pub(crate) mod respond;
mod route;
mod stream;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use http::header::{
    CONNECTION, CONTENT_LENGTH, HOST, HeaderName, HeaderValue, STRICT_TRANSPORT_SECURITY,
};
use http::uri::Uri;
use http::{Request, Response, StatusCode, Version};
use http_body::Body;
use hyper::body::Incoming;

pub use body::{RequestBody, RequestBodyError, ResponseBody, ResponseBodyError};
pub use error::ProxyError;
pub use exchange::Observer;
pub use headers::{X_REQUEST_ID, bench_header_work};

use crate::backend::balance::RequestSignals;
use crate::backend::balance::affinity::Sticky;
use crate::compress::Compression;
use crate::metrics;
use crate::policy;
use crate::policy::admission::{Admitted, AuthClients, Candidate};
use crate::policy::external_auth::AuthRequest;
use crate::policy::forwarded::Client;
use crate::proxy_protocol::Origin;
use crate::refusal::Refusal;
use crate::route_filter::{RouteFilters, Slot};
use crate::scheme::Scheme;
use crate::settings::{ListenerSettings, ProxySettings};
use crate::table::{Route, RouteAction, RouteTable, TableHandle};
use crate::tls::ClientTls;

/// Sent upstream with `rewrite-target` when `x-forwarded-prefix` is set.
static X_FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");
use exchange::Trace;
use route::{Routed, Routing, route};

/// A request's record while its response is being made. When the client
/// goes away first (hyper drops the handler's future), the request is
/// recorded as nginx records it: status 499, nothing sent.
struct Pending {
    exchange: Option<exchange::Exchange>,
    trace: Trace,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut exchange) = self.exchange.take() {
            exchange.trace = std::mem::take(&mut self.trace);
            exchange.status = error::CLIENT_CLOSED_REQUEST;
            exchange.finish(0);
        }
    }
}

/// What a listener tells every request it accepts: its settings and the
/// header values derived from them, built once.
#[derive(Debug)]
pub struct ListenerInfo {
    pub(crate) settings: ListenerSettings,
    scheme: HeaderValue,
    forwarded_port: HeaderValue,
}

impl ListenerInfo {
    /// The scheme and the port ingress-nginx would report (`$scheme`,
    /// `$server_port`).
    fn log_view(&self) -> (Scheme, u16) {
        (self.settings.scheme, self.settings.forwarded_port)
    }

    /// Derives the per-listener header values.
    pub fn new(settings: &ListenerSettings) -> Self {
        Self {
            scheme: HeaderValue::from_static(settings.scheme.as_str()),
            forwarded_port: HeaderValue::from(settings.forwarded_port),
            settings: *settings,
        }
    }
}

/// One client connection: who is on the other end, the limits it was
/// accepted with, and how many requests it has made.
#[derive(Debug)]
pub struct ConnInfo {
    peer: SocketAddr,
    client_ip: HeaderValue,
    listener: Arc<ListenerInfo>,
    settings: ListenerSettings,
    served: AtomicU32,
    http2: bool,
    /// The TLS server name and client certificate, on TLS connections.
    tls: Option<ClientTls>,
    /// What the connection's PROXY header said (`use-proxy-protocol`).
    origin: Option<Arc<Origin>>,
    /// `X-Forwarded-Port` when the PROXY header names the port the client
    /// connected to (nginx's `$proxy_protocol_server_port`).
    forwarded_port: Option<HeaderValue>,
}

impl ConnInfo {
    /// Records a new connection from `peer`; the client address header value
    /// is formatted here, once per connection.
    pub fn new(peer: SocketAddr, listener: Arc<ListenerInfo>, http2: bool) -> Self {
        let ip = peer.ip().to_canonical().to_string();
        Self {
            peer,
            client_ip: HeaderValue::from_str(&ip).unwrap_or_else(|_| HeaderValue::from_static("")),
            settings: listener.settings,
            listener,
            served: AtomicU32::new(0),
            http2,
            tls: None,
            origin: None,
            forwarded_port: None,
        }
    }

    /// A connection that started with a PROXY header: `peer` is already
    /// the client it names (when trusted); the client address then comes
    /// from the header, not from a forwarded-for header (unless
    /// `use-forwarded-headers`), and `X-Forwarded-Port` is the port the
    /// client connected to.
    pub fn with_origin(mut self, origin: Option<Arc<Origin>>) -> Self {
        self.forwarded_port = origin
            .as_ref()
            .and_then(|o| o.destination)
            .map(|d| HeaderValue::from(d.port()));
        self.origin = origin;
        self
    }

    /// Who the client of a request on this connection is.
    pub(crate) fn client(
        &self,
        forwarded: &policy::forwarded::Forwarded,
        headers: &http::HeaderMap,
    ) -> Client {
        if self.origin.is_some() {
            forwarded.client_behind_proxy_protocol(self.peer.ip(), headers)
        } else {
            forwarded.client(self.peer.ip(), headers)
        }
    }

    /// The `X-Forwarded-Port` of this connection's requests.
    pub(crate) fn forwarded_port(&self) -> &HeaderValue {
        self.forwarded_port
            .as_ref()
            .unwrap_or(&self.listener.forwarded_port)
    }

    /// What the connection's PROXY header said, if it had one.
    pub fn origin(&self) -> Option<&Origin> {
        self.origin.as_deref()
    }

    /// What the TLS handshake learned (server name, client certificate).
    pub fn with_tls(mut self, tls: Option<ClientTls>) -> Self {
        self.tls = tls;
        self
    }

    /// This connection's limits instead of the listener's own: the
    /// ConfigMap's, as they were when it was accepted.
    pub fn with_settings(mut self, settings: ListenerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// The client's socket address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

/// The proxy: serves requests from the current routing table.
#[derive(Debug)]
pub struct Proxy {
    table: TableHandle,
    observer: Observer,
    auth_clients: AuthClients,
}

impl Proxy {
    /// A proxy serving whatever table `table` holds at each request,
    /// recording finished requests with `observer`.
    pub fn new(table: TableHandle, observer: Observer) -> Self {
        Self {
            table,
            observer,
            auth_clients: AuthClients::default(),
        }
    }

    /// The table requests are served from.
    pub(crate) fn table(&self) -> &TableHandle {
        &self.table
    }

    /// The ConfigMap's client-connection limits in the current table.
    pub(crate) fn listener_overrides(&self) -> crate::settings::ListenerOverrides {
        self.table.load().globals().listener
    }

    /// The current table.
    pub(crate) fn current_table(&self) -> Arc<RouteTable> {
        self.table.load_full()
    }

    /// The metrics this proxy records into, if any.
    pub(crate) fn metrics(&self) -> Option<&Arc<metrics::Metrics>> {
        self.observer.metrics.as_ref()
    }

    /// Serves one request; never fails (errors become responses).
    pub async fn handle(&self, conn: &ConnInfo, req: Request<Incoming>) -> Response<ResponseBody> {
        // Cheap clones (shared bytes) kept for the error log line.
        let method = req.method().clone();
        let uri = req.uri().clone();
        let table = self.table.load_full();
        // Compression reads the request before the phases take it apart.
        let compression = table.globals().compression.as_deref();
        let asked = compression.map(|_| Compression::asked(&method, req.version(), req.headers()));
        // 0. client
        let client = conn.client(&table.globals().forwarded, req.headers());
        let mut pending = Pending {
            exchange: self.observer.begin(
                &table,
                client.socket_addr(conn.peer),
                conn.listener.log_view(),
                &req,
            ),
            trace: Trace::default(),
        };
        let mut response = match self
            .proxy(&table, conn, &client, req, &mut pending.trace)
            .await
        {
            Ok(response) => response,
            Err(error) => respond::error(error, client.socket_addr(conn.peer), &method, &uri),
        };
        // 7. respond: `add-headers` go on every response, HSTS on every
        // HTTPS response for a host with TLS, the gateway's own included,
        // and compression.
        policy::header_rules::set_all(response.headers_mut(), &table.globals().headers.to_client);
        if pending.trace.tls_host
            && conn.listener.settings.scheme == Scheme::Https
            && let Some(hsts) = &table.globals().hsts
        {
            response
                .headers_mut()
                .insert(STRICT_TRANSPORT_SECURITY, hsts.clone());
        }
        if let (Some(compression), Some(asked)) = (compression, &asked)
            && let Some(encoder) = compression.apply(asked, &mut response)
        {
            response.body_mut().encode(encoder);
        }
        let served = conn.served.fetch_add(1, Ordering::Relaxed) + 1;
        // HTTP/2 has no Connection header; its requests are streams.
        if !conn.http2
            && served >= conn.settings.keepalive_requests
            && response.status() != StatusCode::SWITCHING_PROTOCOLS
        {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        match pending.exchange.take() {
            Some(mut exchange) => {
                exchange.trace = std::mem::take(&mut pending.trace);
                exchange.respond(response.status(), response.headers());
                response.body_mut().attach(exchange);
            }
            None => self.observer.end_unrecorded(),
        }
        response
    }

    /// The phases for one request against one table.
    async fn proxy(
        &self,
        table: &RouteTable,
        conn: &ConnInfo,
        client: &Client,
        mut req: Request<Incoming>,
        trace: &mut Trace,
    ) -> Result<Response<ResponseBody>, ProxyError> {
        // 1. inspect, starting with the ConfigMap's block lists.
        if policy::block::refused(table.globals(), client.ip, req.headers()) {
            return Ok(respond::refusal(Refusal::error_page(StatusCode::FORBIDDEN)));
        }
        // 1-3. inspect, route, and the rewrite-phase policy (redirects,
        // rewrite-target). Routing borrows the request only inside `route`.
        let (found, mut target) = match route(table, conn, client, &req, trace)? {
            Routed::Respond(refusal, id) => {
                trace.route = id;
                return Ok(respond::refusal(*refusal));
            }
            Routed::Proxy { found, target } => (found, target),
        };
        // `auth-tls-*`: the gateway's `ssl-client-*` replace the client's,
        // for the auth service and the upstream alike.
        if let Some(headers) = target.client_cert.take() {
            headers.apply(req.headers_mut());
        }
        if target.error_page {
            internal_redirect(&mut req);
        }
        let route = found.route;
        trace.route = Some(found.id);
        trace.span = self.observer.span(table, route, &req, conn, client);
        let filters = route.filters.as_deref();
        // A Gateway API CORS preflight is answered before anything else.
        let gateway_cors = filters.and_then(|f| f.cors.as_ref());
        if let Some(answer) = gateway_cors.and_then(|c| c.preflight(req.method(), req.headers())) {
            return Ok(respond::refusal(answer));
        }
        let gateway_origin = gateway_cors.and_then(|c| c.allowed_origin(req.headers()));
        let main_backend = match route.action {
            RouteAction::Proxy(id) => id,
            RouteAction::Respond(code) => return Ok(respond::fixed(code)),
        };

        // 4. admit
        check_body_size(&req, &route.settings)?;
        let request_id = request_id(req.headers(), table.globals().headers.generate_request_id);
        let admitted = match &route.admission {
            None => Admitted::default(),
            Some(admission) => {
                if let Some(answer) = admission.preflight(req.method(), req.headers()) {
                    return Ok(respond::refusal(*answer));
                }
                let chain = headers::computed_forwarded_for(table.globals(), conn, req.headers());
                let candidate = candidate(
                    &req,
                    conn,
                    client,
                    &target,
                    request_id.as_ref(),
                    chain.as_ref(),
                    table.globals().headers.underscores,
                );
                match admission.admit(&self.auth_clients, &candidate).await {
                    Ok(admitted) => admitted,
                    Err(refusal) => {
                        trace.rate_limited = refusal.rate_limit_exceeding();
                        return Ok(respond::refusal(*refusal));
                    }
                }
            }
        };
        // 4a. model: the body's `model` in a header, if asked; then the
        // backend, once: a Gateway API rule's weighted draw, or the canary
        // decision; the rest is the main route's.
        model_peek::peek(&mut req, &route.settings).await?;
        let mut slot: Option<&Slot> = None;
        let backend = match filters.and_then(|f| f.split.as_ref()) {
            // A Gateway API rule's weighted backends; an invalid one
            // answers its share with 500.
            Some(split) => {
                let drawn = split.draw();
                slot = Some(drawn);
                trace.backend = drawn.backend;
                match drawn.backend.and_then(|id| table.backend(id)) {
                    Some(backend) => backend,
                    None => {
                        return Ok(respond::refusal(Refusal::error_page(
                            StatusCode::INTERNAL_SERVER_ERROR,
                        )));
                    }
                }
            }
            None => {
                let (backend, canary) = crate::canary::pick(
                    table.backend(main_backend),
                    canary_of(table, route),
                    req.headers(),
                );
                trace.canary = canary;
                backend.ok_or(ProxyError::NoRoute)?
            }
        };
        // `default-backend`: its Service answers when the route's has no pod.
        let backend = match route.fallback.and_then(|id| table.backend(id)) {
            Some(fallback) if backend.endpoints().endpoints().is_empty() => fallback,
            _ => backend,
        };
        // `--default-backend-service` without a ready endpoint: the built-in
        // 404, as ingress-nginx falls back to its own default endpoint.
        if table.is_default_route(found.id) && backend.endpoints().endpoints().is_empty() {
            return Err(ProxyError::NoRoute);
        }
        // Gateway-made errors carry CORS headers too: keep what their log
        // line needs.
        let error_context = admitted
            .cors_origin
            .is_some()
            .then(|| (req.method().clone(), req.uri().clone()));

        // 5. rewrite, once the backend's affinity has read the client's
        // request (session cookie, `upstream-hash-by` key), for the route's
        // backend protocol.
        let https = conn.listener.settings.scheme == Scheme::Https;
        let signals = RequestSignals::read(&mut req, &route.settings.signals);
        let mut sticky =
            Sticky::read(backend, &req, client.ip, https, &route.path).with_signals(signals);
        let original = error_pages::Original::read(table, route, &req, client.ip);
        let mut client_upgrade = upgrade::take(&mut req);
        let shadow = route
            .policy
            .mirror
            .as_ref()
            .and_then(|mirror| self.shadow(mirror, route, &req, conn));
        let from = headers::Upstream {
            conn,
            client,
            globals: table.globals(),
        };
        let (mut upstream_req, progress) = rewrite(req, &from, route, target, request_id);
        let wire = protocol::prepare(
            &mut upstream_req,
            &mut client_upgrade,
            &route.settings,
            conn.listener.settings.scheme,
        )?;
        headers::trace_context(upstream_req.headers_mut(), trace.span.as_deref_mut());
        if let Some(admission) = &route.admission {
            admission.to_upstream(upstream_req.headers_mut(), admitted.granted);
        }
        edit_request_headers(filters, slot, upstream_req.headers_mut());
        trace.request_body = progress.clone();
        trace.request_id = upstream_req.headers().get(&X_REQUEST_ID).cloned();
        // 5b. mirror: the copies (`mirror-target`'s, then the rule's
        // `RequestMirror`s of the request as forwarded) leave now, their
        // bodies teed from the client's.
        let mirrors = filters.map_or(&[][..], |f| &f.mirrors[..]);
        let copies = mirrors.iter().filter_map(|m| {
            let backend = table.backend(m.backend());
            m.copy(&upstream_req, backend, wire.http2, self.mirror_stats(route))
        });
        let shadows: Vec<_> = shadow.into_iter().chain(copies).collect();
        if !shadows.is_empty() {
            let has_body = !upstream_req.body().is_end_stream();
            let settings = &route.settings;
            let teed =
                crate::mirror::tee_all(shadows, has_body, |tee| upstream_req.body_mut().tee(tee));
            for (shadow, body) in teed {
                shadow.send(body, settings.connect_timeout, settings.read_timeout);
            }
        }

        // 6. forward
        let stats = table.inference(found.id);
        let destination = forward::Destination {
            backend,
            wire: &wire,
            settings: &route.settings,
        };
        let forwarded = forward::forward(
            destination,
            upstream_req,
            progress,
            trace,
            stats,
            &mut sticky,
        )
        .await;
        let mut response = match (forwarded, error_context) {
            // 6b. `custom-http-errors`: the default backend's page instead.
            (Ok(response), _) => {
                let id = trace.request_id.as_ref();
                error_pages::replace(table, route, backend, original, response, id).await
            }
            (Err(error), Some((method, uri))) => {
                respond::error(error, client.socket_addr(conn.peer), &method, &uri)
            }
            (Err(error), None) => return Err(error),
        };

        // 7. respond
        headers::to_client(response.headers_mut(), &table.globals().headers);
        if let Some(rules) = &route.policy.response
            && let Some(rate) = rules.apply(&mut response)
        {
            response.body_mut().pace(rate);
        }
        sticky.to_client(response.headers_mut());
        if let Some(admission) = &route.admission {
            admission.to_client(admitted.cors_origin, response.headers_mut());
        }
        edit_response_headers(filters, slot, response.headers_mut());
        if let (Some(cors), Some(origin)) = (gateway_cors, gateway_origin) {
            cors.apply(origin, response.headers_mut());
        }
        if let Some(permit) = admitted.permit {
            response.body_mut().hold(permit);
        }
        upgrade::splice(client_upgrade, &mut response, &route.settings);
        Ok(response)
    }
}

impl Proxy {
    /// A copy of `req` for the route's mirror, if one may go.
    fn shadow<B>(
        &self,
        mirror: &crate::mirror::Mirror,
        route: &Route,
        req: &Request<B>,
        conn: &ConnInfo,
    ) -> Option<crate::mirror::Shadow> {
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

/// Turns the request into the GET (or HEAD) without body that nginx's
/// internal redirect to an error page makes.
fn internal_redirect(req: &mut Request<Incoming>) {
    if req.method() != http::Method::HEAD {
        *req.method_mut() = http::Method::GET;
    }
    req.headers_mut().remove(CONTENT_LENGTH);
    req.headers_mut().remove(http::header::TRANSFER_ENCODING);
}

/// A Gateway API rule's `RequestHeaderModifier`, then its drawn backend's.
fn edit_request_headers(
    filters: Option<&RouteFilters>,
    slot: Option<&Slot>,
    headers: &mut http::HeaderMap,
) {
    let rule = filters.and_then(|f| f.request_headers.as_ref());
    let backend = slot.and_then(|s| s.request_headers.as_ref());
    for edits in rule.into_iter().chain(backend) {
        edits.apply(headers);
    }
}

/// A Gateway API rule's `ResponseHeaderModifier`, then its drawn backend's.
fn edit_response_headers(
    filters: Option<&RouteFilters>,
    slot: Option<&Slot>,
    headers: &mut http::HeaderMap,
) {
    let rule = filters.and_then(|f| f.response_headers.as_ref());
    let backend = slot.and_then(|s| s.response_headers.as_ref());
    for edits in rule.into_iter().chain(backend) {
        edits.apply(headers);
    }
}

/// The route's canary and its backend, if it has one that exists.
fn canary_of<'t>(
    table: &'t RouteTable,
    route: &'t Route,
) -> Option<(&'t crate::canary::Canary, &'t Arc<crate::backend::Backend>)> {
    let canary = route.canary.as_ref()?;
    Some((canary, table.backend(canary.backend)?))
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

/// A new `X-Request-ID` unless the client sent a usable one (nginx's
/// `$request_id` when ingress-nginx's `$req_id` is empty), or none when
/// `generate-request-id` is off (the client's passes through as it is).
fn request_id(headers: &http::HeaderMap, generate: bool) -> Option<HeaderValue> {
    match headers.get(&X_REQUEST_ID) {
        Some(id) if !id.is_empty() && id.len() <= 256 => None,
        _ if generate => Some(headers::new_request_id()),
        _ => None,
    }
}

/// What the admission checks read about a request, with the generated
/// `X-Request-ID` and the computed `X-Forwarded-For`, if any.
fn candidate<'a, B>(
    req: &'a Request<B>,
    conn: &'a ConnInfo,
    client: &Client,
    target: &'a Routing,
    generated_id: Option<&'a HeaderValue>,
    forwarded_for: Option<&'a HeaderValue>,
    underscores: bool,
) -> Candidate<'a> {
    let client_ip = client.ip;
    Candidate {
        client_ip,
        auth: AuthRequest {
            method: req.method(),
            scheme: conn.listener.settings.scheme.as_str(),
            host: target.auth_host.as_deref().unwrap_or(""),
            uri: req.uri(),
            headers: req.headers(),
            client_ip,
            forwarded_for,
            request_id: generated_id.or_else(|| req.headers().get(&X_REQUEST_ID)),
            underscores,
        },
    }
}

/// Builds the upstream request from the client's, moving its parts:
/// ingress-nginx's headers, `upstream-vhost`, and the `rewrite-target`
/// path with `x-forwarded-prefix`.
fn rewrite(
    req: Request<Incoming>,
    from: &headers::Upstream<'_>,
    route: &Route,
    target: Routing,
    request_id: Option<HeaderValue>,
) -> (Request<RequestBody>, Option<Arc<body::SendProgress>>) {
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
