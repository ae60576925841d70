//! What is recorded about each request, for metrics and the access log.
//!
//! An [`Exchange`] starts when the request arrives, collects what the
//! phases learn (the route, the upstream, its timings) in a [`Trace`], rides
//! along in the response body, and is finished when the body ends or is
//! dropped: only then are the response size and the request time known.
//! An exchange dropped before it has a response (the client left while the
//! upstream was still working) ends its in-flight count all the same.
//! Nothing is recorded (and the request head is not copied) when request
//! metrics and the access log are both off.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use http::header::{HOST, REFERER, USER_AGENT};
use http::{Method, Request, Uri, Version};
use tokio::time::Instant;

use super::body::SendProgress;
use crate::access_log::{AccessLog, Entry};
use crate::ids::{BackendId, RouteId};
use crate::metrics::{Metrics, Observation};
use crate::table::{RouteAction, RouteTable};

/// Where finished requests go.
#[derive(Debug, Default, Clone)]
pub struct Observer {
    /// Metrics (request series only when enabled; process counters always).
    pub metrics: Option<Arc<Metrics>>,
    /// The access log, when on.
    pub access_log: Option<Arc<AccessLog>>,
    /// ConfigMap `enable-access-log-for-default-backend` (false): log
    /// requests that matched no route.
    pub log_default_backend: bool,
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
    pub(crate) request_body: Option<Arc<SendProgress>>,
    /// The `X-Request-ID` sent upstream (the client's or a generated one).
    pub(crate) request_id: Option<http::HeaderValue>,
    /// Whether the request's host has a TLS section: its HTTPS answers,
    /// the gateway's own included, carry HSTS.
    pub(crate) tls_host: bool,
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
    host: Option<http::HeaderValue>,
    referer: Option<http::HeaderValue>,
    user_agent: Option<http::HeaderValue>,
    bytes: u64,
}

impl Observer {
    /// Starts recording a request, if anything records; with metrics, also
    /// counts it among the process's requests and in flight until the
    /// exchange is finished or dropped.
    pub(crate) fn begin<B>(
        &self,
        table: &Arc<RouteTable>,
        client: SocketAddr,
        req: &Request<B>,
    ) -> Option<Exchange> {
        if let Some(metrics) = &self.metrics {
            let c = metrics.connections();
            c.requests.fetch_add(1, Ordering::Relaxed);
            c.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let records = self.access_log.is_some()
            || self.metrics.as_ref().is_some_and(|m| m.records_requests());
        if !records && self.metrics.is_none() {
            return None;
        }
        let headers = req.headers();
        Some(Exchange {
            observer: self.clone(),
            table: table.clone(),
            started: Instant::now(),
            client,
            head: records.then(|| Head {
                method: req.method().clone(),
                uri: req.uri().clone(),
                version: req.version(),
                host: headers.get(HOST).cloned(),
                referer: headers.get(REFERER).cloned(),
                user_agent: headers.get(USER_AGENT).cloned(),
                bytes: head_bytes(req),
            }),
            ended: false,
            trace: Trace::default(),
            status: 0,
        })
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

    /// Records the finished request: `sent` body bytes went to the client.
    pub(crate) fn finish(mut self, sent: u64) {
        let ended = Instant::now();
        self.end();
        let Some(head) = self.head.take() else {
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
        // Requests that matched no rule, whether the built-in 404 or
        // `--default-backend-service` answered them.
        let default_backend = self
            .trace
            .route
            .is_some_and(|id| self.table.is_default_route(id));
        let logged = match route {
            Some(r) if !default_backend => r.policy.access_log,
            _ => self.observer.log_default_backend,
        };
        if !logged {
            return;
        }
        let drawn = self.trace.backend.and_then(|id| self.table.backend(id));
        let backend = drawn.or_else(|| {
            route.and_then(|r| match r.action {
                RouteAction::Proxy(id) => self.table.backend(id),
                RouteAction::Respond(_) => None,
            })
        });
        let source = route.and_then(|r| r.source.as_ref());
        log.log(Entry {
            time: SystemTime::now(),
            client: self.client,
            method: head.method,
            uri: head.uri,
            version: head.version,
            host: head.host,
            status: self.status,
            body_bytes: sent,
            request_bytes,
            request_time,
            referer: head.referer,
            user_agent: head.user_agent,
            request_id: self.trace.request_id.take(),
            namespace: source.map(|s| s.namespace.clone()),
            ingress: source.map(|s| s.name.clone()),
            service: backend.map(|b| b.key().service.clone()),
            upstream_name: backend.map(|b| b.name().into()),
            alternative_upstream_name: canary.map(|c| c.upstream.clone()),
            upstream_addr: self.trace.upstream,
            upstream_status: self.trace.upstream_status,
            upstream_response_time: upstream_time,
        });
    }
}

impl Drop for Exchange {
    /// A request cancelled before its response (the client went away) is
    /// no longer in flight.
    fn drop(&mut self) {
        self.end();
    }
}
