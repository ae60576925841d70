//! What is recorded about each request, for metrics and the access log.
//!
//! An [`Exchange`] starts when the request arrives, collects what the
//! phases learn (the route, the upstream, its timings) in a [`Trace`], rides
//! along in the response body, and is finished when the body ends or is
//! dropped: only then are the response size and the request time known.
//! An exchange dropped before it has a response (the client left while the
//! upstream was still working) ends its in-flight count all the same.
//! Nothing is recorded (and the request head is not copied) when request
//! metrics and the access log are both off. A traced request's span
//! ([`crate::telemetry`]) rides in the [`Trace`] and ends with it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use http::{Method, Request, Uri, Version};
use tokio::time::Instant;

use super::body::SendProgress;
use crate::access_log::render::{Attempt, Captured, Record};
use crate::access_log::{self, AccessLog};
use crate::ids::{BackendId, RouteId};
use crate::metrics::{Metrics, Observation};
use crate::policy::forwarded::Client;
use crate::scheme::Scheme;
use crate::table::{Route, RouteAction, RouteTable};
use crate::telemetry::{Arrival, Ended, RequestSpan, Telemetry};

/// Where finished requests go.
#[derive(Debug, Default, Clone)]
pub struct Observer {
    /// Metrics (request series only when enabled; process counters always).
    pub metrics: Option<Arc<Metrics>>,
    /// The access log, when on.
    pub access_log: Option<Arc<AccessLog>>,
    /// OpenTelemetry tracing, when the process may trace.
    pub telemetry: Option<Arc<Telemetry>>,
}

/// What the phases learn about a request on its way through.
#[derive(Debug, Default)]
pub(crate) struct Trace {
    pub(crate) route: Option<RouteId>,
    /// Whether the route's canary served the request.
    pub(crate) canary: bool,
    /// The backend a Gateway API rule's weighted split drew, if any.
    pub(crate) backend: Option<BackendId>,
    pub(crate) upstream: Option<SocketAddr>,
    pub(crate) upstream_started: Option<Instant>,
    pub(crate) connect: Option<Duration>,
    pub(crate) header: Option<Duration>,
    pub(crate) upstream_status: Option<u16>,
    /// The attempts before the last one, when the request was retried.
    pub(crate) retried: Vec<Attempt>,
    pub(crate) request_body: Option<Arc<SendProgress>>,
    /// The `X-Request-ID` sent upstream (the client's or a generated one).
    pub(crate) request_id: Option<http::HeaderValue>,
    /// `$global_rate_limit_exceeding`: `y` refused, `c` refused by the
    /// cached decision, else `n`.
    pub(crate) rate_limited: Option<u8>,
    /// Whether the request's host has a TLS section: its HTTPS answers,
    /// the gateway's own included, carry HSTS.
    pub(crate) tls_host: bool,
    /// The request's span, on a traced route.
    pub(crate) span: Option<Box<RequestSpan>>,
}

impl Trace {
    /// Keeps the attempt that just ended for the log, before a retry:
    /// `status` is the upstream's, or the one nginx records for a failed
    /// attempt (502, 504).
    pub(crate) fn retrying(&mut self, status: Option<u16>) {
        if let Some(addr) = self.upstream.take() {
            self.retried.push(Attempt {
                addr,
                status: self.upstream_status.take().or(status),
                response_time: self.upstream_started.take().map(|s| s.elapsed()),
                connect_time: self.connect.take(),
                header_time: self.header.take(),
                length: Some(0),
            });
        }
    }
}

/// One request being recorded, or only counted in flight.
#[derive(Debug)]
pub(crate) struct Exchange {
    observer: Observer,
    table: Arc<RouteTable>,
    started: Instant,
    client: SocketAddr,
    /// What the records need; `None` when nothing records.
    head: Option<Head>,
    /// Whether the in-flight count has been ended.
    ended: bool,
    pub(crate) trace: Trace,
    pub(crate) status: u16,
}

/// The request head, as the access log and the request series need it.
#[derive(Debug)]
struct Head {
    method: Method,
    uri: Uri,
    version: Version,
    bytes: u64,
    scheme: Scheme,
    port: u16,
    /// The request headers the log format reads.
    captured: Captured,
    /// The response headers the log format reads.
    sent: Captured,
    /// The response head's size, when the log format reads `$bytes_sent`.
    sent_head_bytes: u64,
}

impl Observer {
    /// Starts recording a request that came in on a listener of `scheme`
    /// (whose port ingress-nginx would report is `port`), if anything
    /// records; with metrics, also counts it among the process's requests
    /// and in flight until the exchange is finished or dropped.
    pub(crate) fn begin<B>(
        &self,
        table: &Arc<RouteTable>,
        client: SocketAddr,
        (scheme, port): (Scheme, u16),
        req: &Request<B>,
    ) -> Option<Box<Exchange>> {
        if let Some(metrics) = &self.metrics {
            let c = metrics.connections();
            c.requests.fetch_add(1, Ordering::Relaxed);
            c.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let records = self.access_log.is_some()
            || self.metrics.as_ref().is_some_and(|m| m.records_requests());
        if !records && self.metrics.is_none() && self.telemetry.is_none() {
            return None;
        }
        let captured = match &self.access_log {
            Some(log) => access_log::capture(log.format(table).headers(), req.headers()),
            None => Captured::new(),
        };
        Some(Box::new(Exchange {
            observer: self.clone(),
            table: table.clone(),
            started: Instant::now(),
            client,
            head: records.then(|| Head {
                method: req.method().clone(),
                uri: req.uri().clone(),
                version: req.version(),
                bytes: head_bytes(req),
                scheme,
                port,
                captured,
                sent: Captured::new(),
                sent_head_bytes: 0,
            }),
            ended: false,
            trace: Trace::default(),
            status: 0,
        }))
    }

    /// Starts the span of a request routed to `route`, if it is traced.
    pub(crate) fn span<B>(
        &self,
        table: &RouteTable,
        route: &Route,
        req: &Request<B>,
        conn: &super::ConnInfo,
        client: &Client,
    ) -> Option<Box<RequestSpan>> {
        let telemetry = self.telemetry.as_ref()?;
        if !route.policy.tracing.enabled {
            return None;
        }
        let (scheme, port) = conn.listener.log_view();
        let service = match route.action {
            RouteAction::Proxy(id) => table.backend(id).map(|b| b.key()),
            RouteAction::Respond(_) => None,
        };
        let arrival = Arrival {
            client: client.socket_addr(conn.peer),
            scheme: scheme.as_str(),
            port,
            service,
        };
        telemetry.start(table, route, req, arrival)
    }

    /// Ends the in-flight count of a request that was not recorded.
    pub(crate) fn end_unrecorded(&self) {
        if let Some(metrics) = &self.metrics {
            metrics
                .connections()
                .in_flight
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// `$request_length` without the body: request line and header fields.
fn head_bytes<B>(req: &Request<B>) -> u64 {
    let line = req.method().as_str().len()
        + req.uri().path_and_query().map_or(1, |pq| pq.as_str().len())
        + 12;
    let fields: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    (line + fields + 2) as u64
}

impl Exchange {
    /// Ends the in-flight count, once.
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.observer.end_unrecorded();
        }
    }

    /// Takes note of the response head the client gets: its status, and
    /// what the log format reads of it.
    pub(crate) fn respond(&mut self, status: http::StatusCode, headers: &http::HeaderMap) {
        self.status = status.as_u16();
        let (Some(head), Some(log)) = (&mut self.head, &self.observer.access_log) else {
            return;
        };
        let format = log.format(&self.table);
        if !format.sent_headers().is_empty() {
            head.sent = access_log::capture(format.sent_headers(), headers);
        }
        if format.reads_bytes_sent() {
            // Status line, fields, the `date` hyper adds, the blank line.
            let fields: usize = headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum();
            head.sent_head_bytes = (17 + fields + 37 + 2) as u64;
        }
    }

    /// A response body chunk went to the client (counted by a span).
    pub(crate) fn chunk(&mut self) {
        if let Some(span) = &mut self.trace.span {
            span.chunk();
        }
    }

    /// Records the finished request: `sent` body bytes went to the client.
    pub(crate) fn finish(mut self: Box<Self>, sent: u64) {
        let ended = Instant::now();
        self.end();
        if let Some(span) = self.trace.span.take() {
            span.finish(&Ended {
                started: self.started,
                status: self.status,
                upstream: self
                    .trace
                    .upstream
                    .map(|a| (a, self.trace.upstream_started)),
                upstream_status: self.trace.upstream_status,
                sent,
            });
        }
        let Some(head) = self.head.as_ref() else {
            return;
        };
        let route = self
            .trace
            .route
            .and_then(|id| self.table.routes().get(id.0));
        let request_bytes =
            head.bytes + self.trace.request_body.as_ref().map_or(0, |b| b.received());
        // Status line and headers are not counted exactly; nginx's
        // `$bytes_sent` counts them, so add a typical head size.
        let response_bytes = sent + 128;
        let request_time = ended.saturating_duration_since(self.started);
        let upstream_time = self
            .trace
            .upstream_started
            .map(|s| ended.saturating_duration_since(s));
        let canary = route
            .and_then(|r| r.canary.as_deref())
            .filter(|_| self.trace.canary);
        let stats = match canary {
            Some(canary) => canary.stats.as_ref(),
            None => route.and_then(|r| r.stats.as_ref()),
        };
        if let (Some(stats), Some(metrics)) = (stats, &self.observer.metrics)
            && metrics.records_requests()
        {
            stats.record(
                &head.method,
                self.status,
                &Observation {
                    request: request_time,
                    response: upstream_time,
                    header: self.trace.header,
                    connect: self.trace.connect,
                    request_bytes,
                    response_bytes,
                },
            );
        }
        let Some(log) = &self.observer.access_log else {
            return;
        };
        let config = &self.table.globals().access_log;
        // Requests that matched no rule, whether the built-in 404 or
        // `--default-backend-service` answered them.
        let default_backend = self
            .trace
            .route
            .is_none_or(|id| self.table.is_default_route(id));
        let logged = match route {
            Some(r) if !default_backend => r.policy.access_log,
            _ => config.default_backend,
        };
        let request_uri = head.uri.path_and_query().map_or("/", |pq| pq.as_str());
        if !logged || config.disabled || access_log::skipped(config, request_uri.as_bytes()) {
            return;
        }
        let mut upstreams = std::mem::take(&mut self.trace.retried);
        if let Some(addr) = self.trace.upstream {
            upstreams.push(Attempt {
                addr,
                status: self.trace.upstream_status,
                response_time: upstream_time,
                connect_time: self.trace.connect,
                header_time: self.trace.header,
                length: Some(sent),
            });
        }
        let record = Record {
            now: SystemTime::now(),
            client: self.client,
            method: &head.method,
            uri: &head.uri,
            version: head.version,
            headers: &head.captured,
            sent_headers: &head.sent,
            scheme: head.scheme,
            server_port: head.port,
            status: self.status,
            body_bytes: sent,
            head_bytes: head.sent_head_bytes,
            request_bytes,
            request_time,
            request_id: self.trace.request_id.as_ref(),
            alternative_upstream: canary.map(|c| &*c.upstream),
            upstreams: &upstreams,
            rate_limited: self.trace.rate_limited.unwrap_or(b'n'),
        };
        log.write(&self.table, self.trace.route, self.trace.backend, &record);
    }
}

impl Drop for Exchange {
    /// A request cancelled before its response (the client went away) is
    /// no longer in flight.
    fn drop(&mut self) {
        self.end();
    }
}
