//! One request's span: its ids and sampling decision, taken once the
//! route is known, the W3C headers it puts on the upstream request, and,
//! when sampled, what it records until the response body ends, when it
//! becomes the SDK's [`SpanData`] and goes to the export queue.
//!
//! Attributes follow the OpenTelemetry HTTP server conventions
//! (`http.request.method`, `url.path`, `url.scheme`, `server.address`,
//! `http.response.status_code`, `network.peer.address`,
//! `user_agent.original`, ...), with the names ingress-nginx's nginx
//! module writes beside them (`http.method`, `http.target`,
//! `http.status_code`, `net.peer.ip`, ...) so that existing trace queries
//! keep working, and the Ingress's namespace, name and Service. A request
//! that reached an upstream gets three events: `upstream.request` (the
//! wait for a slot or a ready replica before it), `response.first_byte`
//! (time to first byte, a model's first token) and `response.end`
//! (bytes and chunks streamed).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Request, Version};
use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    SamplingDecision, ShouldSample as _, SpanData, SpanEvents, SpanLinks,
};
use tokio::time::Instant;

use super::context::{Parent, TRACEPARENT, TRACESTATE, trace_state};
use super::export::Pipeline;
use crate::backend::BackendKey;
use crate::table::{Route, RouteSource};
use crate::tracing_config::RouteTracing;
use crate::tracing_config::{NameFacts, OperationName};

/// What a span's start reads besides the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival<'a> {
    /// The client (after `use-forwarded-headers`/PROXY protocol).
    pub(crate) client: SocketAddr,
    /// `http` or `https`.
    pub(crate) scheme: &'static str,
    /// The port the client connected to, as ingress-nginx reports it.
    pub(crate) port: u16,
    /// The route's Service, when it proxies.
    pub(crate) service: Option<&'a BackendKey>,
}

/// A traced request.
#[derive(Debug)]
pub(crate) struct RequestSpan {
    /// This span's ids and sampling flag, as sent upstream.
    own: Parent,
    /// The incoming `tracestate`, passed on with a trusted parent.
    state: Option<http::HeaderValue>,
    /// What a sampled span records; `None` when not sampled.
    recording: Option<Box<Recording>>,
}

/// What a sampled span records.
#[derive(Debug)]
struct Recording {
    pipeline: Arc<Pipeline>,
    parent: Option<Parent>,
    name: Option<Arc<OperationName>>,
    attributes: Vec<KeyValue>,
    method: String,
    path: String,
    request_uri: String,
    host: String,
    scheme: &'static str,
    location: Arc<str>,
    source: Option<RouteSource>,
    service: Option<(Arc<str>, Arc<str>)>,
    /// When the request left for the balancer (the upstream phase).
    forwarding: Option<Instant>,
    first_byte: Option<Instant>,
    chunks: u64,
}

/// What the end of the exchange tells a span.
#[derive(Debug)]
pub(crate) struct Ended {
    /// When the request arrived.
    pub(crate) started: Instant,
    /// The status the client got (499: it went away first).
    pub(crate) status: u16,
    /// The endpoint that answered, and when that attempt began.
    pub(crate) upstream: Option<(SocketAddr, Option<Instant>)>,
    /// The upstream's status.
    pub(crate) upstream_status: Option<u16>,
    /// Response body bytes sent.
    pub(crate) sent: u64,
}

impl RequestSpan {
    /// Starts the span of a request on `route`: its parent (a trusted,
    /// valid `traceparent`) or a new trace, then the sampler's decision.
    pub(crate) fn start<B>(
        pipeline: &Arc<Pipeline>,
        tracing: &RouteTracing,
        route: &Route,
        req: &Request<B>,
        arrival: Arrival<'_>,
    ) -> RequestSpan {
        let parent = if tracing.trust_incoming {
            Parent::from_headers(req.headers())
        } else {
            None
        };
        let trace_id = parent.map_or_else(new_trace_id, |p| p.trace_id);
        let parent_cx = parent.map(|p| {
            Context::new().with_remote_span_context(SpanContext::new(
                p.trace_id,
                p.span_id,
                p.flags(),
                true,
                TraceState::default(),
            ))
        });
        let decision = pipeline
            .sampler
            .should_sample(
                parent_cx.as_ref(),
                trace_id,
                "",
                &SpanKind::Server,
                &[],
                &[],
            )
            .decision;
        let own = Parent {
            trace_id,
            span_id: new_span_id(),
            sampled: decision == SamplingDecision::RecordAndSample,
        };
        let state = parent.and_then(|_| trace_state(req.headers()));
        let recording = own.sampled.then(|| {
            Box::new(Recording::new(
                pipeline.clone(),
                parent,
                tracing,
                route,
                req,
                arrival,
            ))
        });
        RequestSpan {
            own,
            state,
            recording,
        }
    }

    /// Puts this span's context on the upstream request: `traceparent`
    /// names it; `tracestate` is the trusted parent's, or none.
    pub(crate) fn inject(&mut self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT.clone(), self.own.header());
        match &self.state {
            Some(state) => {
                headers.insert(TRACESTATE.clone(), state.clone());
            }
            None => {
                headers.remove(&TRACESTATE);
            }
        }
        if let Some(recording) = &mut self.recording {
            recording.forwarding = Some(Instant::now());
        }
    }

    /// A response body chunk went to the client.
    pub(crate) fn chunk(&mut self) {
        if let Some(recording) = &mut self.recording {
            recording.chunks += 1;
            recording.first_byte.get_or_insert_with(Instant::now);
        }
    }

    /// The trace id (for tests).
    #[cfg(test)]
    fn ids(&self) -> Parent {
        self.own
    }

    /// Ends the span and queues it for export, if sampled.
    pub(crate) fn finish(self, ended: &Ended) {
        let Some(recording) = self.recording else {
            return;
        };
        let pipeline = recording.pipeline.clone();
        let data = recording.into_data(self.own, self.state.as_ref(), ended);
        pipeline.submit(data);
    }
}

impl Recording {
    fn new<B>(
        pipeline: Arc<Pipeline>,
        parent: Option<Parent>,
        tracing: &RouteTracing,
        route: &Route,
        req: &Request<B>,
        arrival: Arrival<'_>,
    ) -> Recording {
        let headers = req.headers();
        let text = |name: http::header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let request_uri = req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| text(http::header::HOST))
            .unwrap_or_default();
        let host = authority
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(authority.as_str(), |(host, _)| host)
            .to_owned();
        let flavor = match req.version() {
            Version::HTTP_10 => "1.0",
            Version::HTTP_2 => "2",
            Version::HTTP_3 => "3",
            _ => "1.1",
        };
        let peer_ip = arrival.client.ip().to_canonical().to_string();
        let peer_port = i64::from(arrival.client.port());
        let port = i64::from(arrival.port);
        let mut attributes = vec![
            KeyValue::new("http.request.method", method.clone()),
            KeyValue::new("url.path", path.clone()),
            KeyValue::new("url.scheme", arrival.scheme),
            KeyValue::new("server.address", host.clone()),
            KeyValue::new("server.port", port),
            KeyValue::new("network.peer.address", peer_ip.clone()),
            KeyValue::new("network.peer.port", peer_port),
            KeyValue::new("network.protocol.version", flavor),
            KeyValue::new("http.route", route.path.to_string()),
            // ingress-nginx's nginx module's names.
            KeyValue::new("http.method", method.clone()),
            KeyValue::new("http.target", request_uri.clone()),
            KeyValue::new("http.flavor", flavor),
            KeyValue::new("http.scheme", arrival.scheme),
            KeyValue::new("http.host", authority),
            KeyValue::new("net.host.port", port),
            KeyValue::new("net.peer.ip", peer_ip),
            KeyValue::new("net.peer.port", peer_port),
        ];
        if let Some(query) = req.uri().query() {
            attributes.push(KeyValue::new("url.query", query.to_owned()));
        }
        if let Some(agent) = text(http::header::USER_AGENT) {
            attributes.push(KeyValue::new("user_agent.original", agent.clone()));
            attributes.push(KeyValue::new("http.user_agent", agent));
        }
        if let Some(source) = &route.source {
            attributes.push(KeyValue::new(
                "k8s.namespace.name",
                source.namespace.to_string(),
            ));
            attributes.push(KeyValue::new("k8s.ingress.name", source.name.to_string()));
        }
        let service = arrival
            .service
            .map(|key| (key.service.clone(), key.port.clone()));
        if let Some((name, port)) = &service {
            attributes.push(KeyValue::new("k8s.service.name", name.to_string()));
            attributes.push(KeyValue::new("k8s.service.port", port.to_string()));
        }
        Recording {
            pipeline,
            parent,
            name: tracing.operation.clone(),
            attributes,
            method,
            path,
            request_uri,
            host,
            scheme: arrival.scheme,
            location: route.path.clone(),
            source: route.source.clone(),
            service,
            forwarding: None,
            first_byte: None,
            chunks: 0,
        }
    }

    fn into_data(self, own: Parent, state: Option<&http::HeaderValue>, ended: &Ended) -> SpanData {
        let now = Instant::now();
        let wall = SystemTime::now();
        let at = |instant: Instant| wall - now.saturating_duration_since(instant);
        let name = self.span_name();
        let mut attributes = self.attributes;
        let status = i64::from(ended.status);
        attributes.push(KeyValue::new("http.response.status_code", status));
        attributes.push(KeyValue::new("http.status_code", status));
        let mut events = SpanEvents::default();
        if let Some((addr, began)) = ended.upstream {
            attributes.push(KeyValue::new("upstream.address", addr.to_string()));
            if let Some(code) = ended.upstream_status {
                attributes.push(KeyValue::new("upstream.status_code", i64::from(code)));
            }
            if let Some(began) = began {
                let waited = self
                    .forwarding
                    .map_or(Duration::ZERO, |f| began.saturating_duration_since(f));
                events.events.push(Event::new(
                    "upstream.request",
                    at(began),
                    vec![KeyValue::new(
                        "edge_gateway.wait_seconds",
                        waited.as_secs_f64(),
                    )],
                    0,
                ));
                if let Some(first) = self.first_byte {
                    let ttfb = first.saturating_duration_since(began);
                    events.events.push(Event::new(
                        "response.first_byte",
                        at(first),
                        vec![KeyValue::new(
                            "edge_gateway.time_to_first_byte_seconds",
                            ttfb.as_secs_f64(),
                        )],
                        0,
                    ));
                }
            }
            events.events.push(Event::new(
                "response.end",
                wall,
                vec![
                    KeyValue::new("edge_gateway.response.bytes", ended.sent as i64),
                    KeyValue::new("edge_gateway.response.chunks", self.chunks as i64),
                ],
                0,
            ));
        }
        let trace_state = state
            .and_then(|s| s.to_str().ok())
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        SpanData {
            span_context: SpanContext::new(
                own.trace_id,
                own.span_id,
                own.flags(),
                false,
                trace_state,
            ),
            parent_span_id: self.parent.map_or(SpanId::INVALID, |p| p.span_id),
            parent_span_is_remote: self.parent.is_some(),
            span_kind: SpanKind::Server,
            name: Cow::Owned(name),
            start_time: at(ended.started),
            end_time: wall,
            attributes,
            dropped_attributes_count: 0,
            events,
            links: SpanLinks::default(),
            status: if ended.status >= 500 {
                Status::error(format!("status {}", ended.status))
            } else {
                Status::Unset
            },
            instrumentation_scope: self.pipeline.scope.clone(),
        }
    }

    /// `opentelemetry-operation-name`, or the route's path.
    fn span_name(&self) -> String {
        let Some(name) = &self.name else {
            return self.location.to_string();
        };
        let (service, port) = self
            .service
            .as_ref()
            .map_or(("", ""), |(s, p)| (&**s, &**p));
        let (namespace, ingress) = self
            .source
            .as_ref()
            .map_or(("", ""), |s| (&*s.namespace, &*s.name));
        name.render(&NameFacts {
            method: &self.method,
            path: &self.path,
            request_uri: &self.request_uri,
            host: &self.host,
            scheme: self.scheme,
            namespace,
            ingress,
            service,
            port,
            location: &self.location,
        })
    }
}

fn new_trace_id() -> TraceId {
    TraceId::from(fastrand::u128(1..))
}

fn new_span_id() -> SpanId {
    SpanId::from(fastrand::u64(1..))
}

#[cfg(test)]
mod tests;
