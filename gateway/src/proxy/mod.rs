//! The request path. [`Proxy::handle`] resolves the client and hands the
//! request to the phases, each a function in its own module, run in this
//! order over one `Scope` (the table, loaded once, the connection, the
//! client and, once routed, the route):
//!
//! 0. **client**: who is asking: the peer, or the address its trusted
//!    forwarded-for header names (see [`crate::policy::forwarded`]),
//!    resolved once and used by every later phase and the access log;
//! 1. **inspect** ([`route`]): refuse blocked clients (`block-cidrs`,
//!    `block-user-agents`, `block-referers`), then malformed or ambiguous
//!    requests ([`inspect`]); normalise host and path;
//! 2. **route** ([`route`]): look the host and path up in the table, with
//!    the method, headers, query and listener for Gateway API conditions;
//!    on a host that checks client certificates, judge the connection's
//!    (see [`crate::policy::client_cert`]);
//! 3. **redirect** ([`route`]): nginx's rewrite phase: redirects
//!    (from-to-www, app-root, permanent/temporal, HTTPS, a Gateway API
//!    `RequestRedirect`) and `rewrite-target` (or a Gateway API
//!    `URLRewrite` path);
//! 4. **admit** ([`admit`]): a Gateway API `CORS` preflight, the declared
//!    body size, then the route's admission checks (CORS preflight,
//!    limits, address lists, authentication: see
//!    [`crate::policy::admission`]). A refused request's body is never
//!    read. Then **peek** ([`model_peek`]): with `model-from-body`, the
//!    body's JSON `model` goes in a header that canary rules can read;
//! 5. **pick** ([`pick`]): the backend, once: a Gateway API rule's weighted
//!    draw or a canary's, as nginx's balancer runs after the access phase;
//! 6. **outbound** ([`outbound`]): read what the backend's affinity and
//!    picker need (session cookie, `upstream-hash-by` key, prompt blocks,
//!    model and criticality), then turn the client request into the
//!    upstream request for the route's backend protocol (see
//!    [`protocol`]); mirrored copies leave;
//! 7. **forward** ([`forward`]): pick an endpoint (the sticky one first),
//!    send, retry where allowed; an answer whose status the route's
//!    `custom-http-errors` lists is replaced by its default backend's;
//! 8. **deliver** ([`deliver`]): clean the upstream response head
//!    (`hide-headers`, CORS, a new session cookie, Gateway API
//!    `ResponseHeaderModifier`s) and stream its body back, or splice an
//!    upgraded connection (see [`upgrade`]); `add-headers`, HSTS and
//!    compression go on every response, the gateway's own answers included
//!    ([`Proxy::handle`]).
//!
//! Any phase can end the request early with a `respond::Early`: a
//! [`ProxyError`] (something failed), a [`Refusal`] (a policy's answer: a
//! denial, a redirect, a CORS preflight answer) or a route's fixed status;
//! [`respond`] turns each into the response, in one place.
//! docs/architecture.md draws the phases.

mod admit;
mod body;
mod deliver;
mod error;
mod error_pages;
mod exchange;
mod forward;
mod headers;
mod inspect;
mod model_peek;
mod outbound;
mod pick;
mod protocol;
pub(crate) mod respond;
mod route;
mod stream;
mod upgrade;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use http::header::{CONNECTION, HeaderValue, STRICT_TRANSPORT_SECURITY};
use http::{Method, Request, Response, StatusCode, Uri};
use hyper::body::Incoming;

pub use body::{RequestBody, RequestBodyError, ResponseBody, ResponseBodyError};
pub use error::ProxyError;
pub use exchange::Observer;
pub use headers::{X_REQUEST_ID, bench_header_work};

use crate::compress::Compression;
use crate::metrics;
use crate::policy;
use crate::policy::admission::AuthClients;
use crate::policy::forwarded::Client;
use crate::proxy_protocol::Origin;
use crate::route_filter::RouteFilters;
use crate::scheme::Scheme;
use crate::settings::ListenerSettings;
use crate::table::{RouteMatch, RouteTable, TableHandle};
use crate::tls::ClientTls;
use crate::upgrade_slot::UpgradeSlot;

use exchange::Trace;
use respond::Early;

/// A request's record while its response is being made. When the client
/// goes away first (hyper drops the handler's future), the request is
/// recorded as nginx records it: status 499, nothing sent.
struct Pending {
    exchange: Option<Box<exchange::Exchange>>,
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
    /// Where an upgrade waits for the socket (HTTP/1.1 connections).
    upgrades: Option<Arc<UpgradeSlot>>,
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
            upgrades: None,
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

    /// Where the connection's loop hands its socket to an upgrade.
    pub(crate) fn with_upgrades(mut self, upgrades: Option<Arc<UpgradeSlot>>) -> Self {
        self.upgrades = upgrades;
        self
    }

    /// Where an upgrade on this connection waits for the socket; none on
    /// HTTP/2.
    pub(crate) fn upgrades(&self) -> Option<&UpgradeSlot> {
        self.upgrades.as_deref()
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
        let named = (&method, &uri);
        let mut response = self
            .proxy(&table, conn, &client, req, named, &mut pending.trace)
            .await;
        // 8. deliver: `add-headers` go on every response, HSTS on every
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

    /// The phases for one request against one table, in the order they
    /// run (docs/architecture.md draws them); a phase that ends the request
    /// early returns an [`Early`], rendered by [`respond`] (an error's log
    /// line names the request by its method and URI).
    async fn proxy(
        &self,
        table: &RouteTable,
        conn: &ConnInfo,
        client: &Client,
        req: Request<Incoming>,
        (method, uri): (&Method, &Uri),
        trace: &mut Trace,
    ) -> Response<ResponseBody> {
        match self.phases(table, conn, client, req, trace).await {
            Ok(response) => response,
            Err(early) => early.render(client.socket_addr(conn.peer), method, uri),
        }
    }

    /// The phases, each a call; `?` ends the request early.
    async fn phases(
        &self,
        table: &RouteTable,
        conn: &ConnInfo,
        client: &Client,
        mut req: Request<Incoming>,
        trace: &mut Trace,
    ) -> Result<Response<ResponseBody>, Early> {
        // 1-3. inspect, route, redirect.
        let (found, target) = route::route(table, conn, client, &mut req, trace)?;
        let scope = Scope {
            table,
            conn,
            client,
            found,
        };
        trace.span = self.observer.span(table, found.route, &req, conn, client);
        // 4. admit, then peek at the body's model; 5. pick the backend.
        let mut passed = admit::admit(&scope, &req, &target, &self.auth_clients, trace).await?;
        model_peek::peek(&mut req, &found.route.settings).await?;
        let picked = pick::backend(&scope, req.headers(), passed.main_backend, trace)?;
        // 6. outbound: the upstream request; mirrored copies leave.
        let (outbound, mut carried) =
            self.outbound(&scope, req, target, &mut passed, &picked, trace)?;
        // 7. forward.
        let response =
            forward::phase(&scope, &picked, outbound, &mut carried.sticky, trace).await?;
        // 8. deliver.
        Ok(deliver::deliver(&scope, response, passed, &picked, carried))
    }
}

/// What the phases after routing share about one request: the table it is
/// served from, its connection and client, and its route.
struct Scope<'t> {
    table: &'t RouteTable,
    conn: &'t ConnInfo,
    client: &'t Client,
    found: RouteMatch<'t>,
}

impl<'t> Scope<'t> {
    /// The route's Gateway API filters, if it comes from an HTTPRoute.
    fn filters(&self) -> Option<&'t RouteFilters> {
        self.found.route.filters.as_deref()
    }
}
