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

/// How spans travel to the collector (`edge-gateway.io/otlp-collector-protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`grpc`, the default, as ingress-nginx's module sends).
    #[default]
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`): `POST /v1/traces`.
    HttpProtobuf,
}

impl OtlpProtocol {
    /// The protocol's name as `OTEL_EXPORTER_OTLP_PROTOCOL` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }

    /// The collector port the protocol is served on by convention (4317,
    /// 4318).
    pub fn default_port(self) -> u16 {
        match self {
            OtlpProtocol::Grpc => 4317,
            OtlpProtocol::HttpProtobuf => 4318,
        }
    }
}

/// The ConfigMap's exporter and sampler settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TracingConfig {
    /// `otlp-collector-host`.
    pub host: String,
    /// `otlp-collector-port` (4317 for gRPC, 4318 for HTTP).
    pub port: u16,
    /// `edge-gateway.io/otlp-collector-protocol`.
    pub protocol: OtlpProtocol,
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
            protocol: OtlpProtocol::Grpc,
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
    /// The collector's URL: `http://host:port` for gRPC, with the
    /// traces path `/v1/traces` for HTTP.
    pub fn endpoint(&self) -> String {
        let path = match self.protocol {
            OtlpProtocol::Grpc => "",
            OtlpProtocol::HttpProtobuf => "/v1/traces",
        };
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("http://[{}]:{}{path}", self.host, self.port)
        } else {
            format!("http://{}:{}{path}", self.host, self.port)
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
