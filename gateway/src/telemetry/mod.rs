//! OpenTelemetry tracing, as ingress-nginx's `enable-opentelemetry`:
//! a server span per request of a traced route, W3C `traceparent` /
//! `tracestate` on the upstream request, spans exported over OTLP/gRPC.
//!
//! - **Which requests**: those of routes whose [`RouteTracing`] is
//!   enabled (the ConfigMap's `enable-opentelemetry`, or the Ingress's
//!   annotation), once routed; the rest cost one branch.
//! - **Parent**: a valid incoming `traceparent` when the route trusts it
//!   (`opentelemetry-trust-incoming-span`, default true); otherwise a new
//!   trace, and the client's `traceparent` / `tracestate` are replaced.
//! - **Sampling**: the SDK's samplers (`otel-sampler`,
//!   `otel-sampler-ratio`, `otel-sampler-parent-based`). An unsampled
//!   request still sends a `traceparent` (flags `00`), as the nginx
//!   module does, and records nothing.
//! - **Export** ([`export`]): bounded and off the request path; drops are
//!   counted (`edge_gateway_otel_spans_dropped_total`).
//!
//! A change of the ConfigMap's exporter settings builds a new pipeline on
//! the next traced request; the old one exports what it holds and ends.

mod context;
mod export;
mod span;

use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwapOption;
use http::Request;

pub use crate::tracing_config::{
    OperationName, OtlpProtocol, RouteTracing, SamplerKind, TracingConfig,
};
pub use context::{Parent, TRACEPARENT, TRACESTATE};
pub(crate) use span::{Arrival, Ended, RequestSpan};

use crate::table::{Route, RouteTable};
use export::Pipeline;

/// The process's tracing: the pipeline of the current settings.
#[derive(Debug, Default)]
pub struct Telemetry {
    current: ArcSwapOption<Pipeline>,
    /// Held while a pipeline is built; remembers settings that failed.
    building: Mutex<Option<Arc<TracingConfig>>>,
}

impl Telemetry {
    /// Tracing with no pipeline yet: one is built, on the current Tokio
    /// runtime, when a traced request first needs it.
    pub fn new() -> Arc<Telemetry> {
        Arc::new(Telemetry::default())
    }

    /// The span of a request on `route`, if the route is traced and the
    /// table names a collector.
    pub(crate) fn start<B>(
        &self,
        table: &RouteTable,
        route: &Route,
        req: &Request<B>,
        arrival: Arrival<'_>,
    ) -> Option<Box<RequestSpan>> {
        let tracing = &route.policy.tracing;
        if !tracing.enabled {
            return None;
        }
        let pipeline = self.pipeline(table.globals().tracing.as_ref()?)?;
        Some(Box::new(RequestSpan::start(
            &pipeline, tracing, route, req, arrival,
        )))
    }

    /// Drops the pipeline: its task exports what is queued, then ends.
    pub fn close(&self) {
        self.current.store(None);
    }

    fn pipeline(&self, config: &Arc<TracingConfig>) -> Option<Arc<Pipeline>> {
        let same = |p: &Pipeline| Arc::ptr_eq(&p.config, config) || *p.config == **config;
        if let Some(current) = &*self.current.load()
            && same(current)
        {
            return Some(current.clone());
        }
        let mut failed = self.building.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = &*self.current.load()
            && same(current)
        {
            return Some(current.clone());
        }
        if failed.as_deref() == Some(&**config) {
            return None;
        }
        match Pipeline::start(config.clone()) {
            Ok(pipeline) => {
                let pipeline = Arc::new(pipeline);
                self.current.store(Some(pipeline.clone()));
                *failed = None;
                Some(pipeline)
            }
            Err(error) => {
                tracing::warn!(%error, endpoint = %config.endpoint(), "cannot build the OTLP exporter; requests are not traced");
                *failed = Some(config.clone());
                None
            }
        }
    }
}
