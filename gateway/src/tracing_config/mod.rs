//! Tracing settings: the ConfigMap's collector, sampler and batch keys
//! ([`TracingConfig`], gateway-wide) and each route's switch, trust and
//! span name ([`RouteTracing`]).

mod name;

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_sdk::trace::Sampler;

pub(crate) use name::NameFacts;
pub use name::OperationName;

/// `otel-sampler`: how root spans are sampled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerKind {
    /// `AlwaysOn` (ingress-nginx's default).
    AlwaysOn,
    /// `AlwaysOff`.
    AlwaysOff,
    /// `TraceIdRatioBased` with `otel-sampler-ratio`, clamped to 0..=1.
    Ratio(f64),
}

/// The ConfigMap's exporter and sampler settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TracingConfig {
    /// `otlp-collector-host`.
    pub host: String,
    /// `otlp-collector-port` (4317): OTLP over gRPC.
    pub port: u16,
    /// `otel-service-name` (`nginx`): the resource's `service.name`.
    pub service_name: String,
    /// `otel-sampler` with `otel-sampler-ratio`.
    pub sampler: SamplerKind,
    /// `otel-sampler-parent-based` (true): a trusted parent's decision wins.
    pub parent_based: bool,
    /// `otel-max-queuesize` (2048): spans waiting for export; more are
    /// dropped and counted.
    pub max_queue: usize,
    /// `otel-schedule-delay-millis` (5000): the longest a span waits for
    /// its batch.
    pub schedule_delay: Duration,
    /// `otel-max-export-batch-size` (512).
    pub max_batch: usize,
    /// The bound on one export call (the OpenTelemetry SDKs' 10 s).
    pub export_timeout: Duration,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 4317,
            service_name: "nginx".to_owned(),
            sampler: SamplerKind::AlwaysOn,
            parent_based: true,
            max_queue: 2048,
            schedule_delay: Duration::from_millis(5000),
            max_batch: 512,
            export_timeout: Duration::from_secs(10),
        }
    }
}

// Internal: the ratio is a parsed number clamped to 0..=1, never NaN, so
// equality is total (the table's globals compare with `Eq`).
impl Eq for SamplerKind {}
impl Eq for TracingConfig {}

impl TracingConfig {
    /// The OTLP/gRPC endpoint.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }

    /// The SDK sampler these settings describe.
    pub fn sampler(&self) -> Sampler {
        let root = match self.sampler {
            SamplerKind::AlwaysOn => Sampler::AlwaysOn,
            SamplerKind::AlwaysOff => Sampler::AlwaysOff,
            SamplerKind::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio.clamp(0.0, 1.0)),
        };
        if self.parent_based {
            Sampler::ParentBased(Box::new(root))
        } else {
            root
        }
    }
}

/// One route's tracing (the ConfigMap's `enable-opentelemetry`,
/// `opentelemetry-trust-incoming-span` and `opentelemetry-operation-name`,
/// or its Ingress's annotations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTracing {
    /// Whether the route's requests get spans and a `traceparent`.
    pub enabled: bool,
    /// Whether an incoming `traceparent` is the span's parent; when not,
    /// the trace starts here and the incoming headers are replaced.
    pub trust_incoming: bool,
    /// The span name; `None`: the route's path (nginx's location name).
    pub operation: Option<Arc<OperationName>>,
}

impl Default for RouteTracing {
    fn default() -> Self {
        Self {
            enabled: false,
            trust_incoming: true,
            operation: None,
        }
    }
}
