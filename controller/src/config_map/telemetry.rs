//! The OpenTelemetry keys, with ingress-nginx's defaults:
//! `enable-opentelemetry` (false), `opentelemetry-trust-incoming-span`
//! (true) and `opentelemetry-operation-name` (the default of every
//! Ingress, see [`crate::annotations::tracing`]); the collector
//! (`otlp-collector-host`, `otlp-collector-port` 4317, OTLP/gRPC; or
//! OTLP/HTTP with `edge-gateway.io/otlp-collector-protocol: http/protobuf`,
//! port 4318 unless set), the
//! resource's `otel-service-name` (`nginx`), the sampler (`otel-sampler`
//! `AlwaysOn`, `otel-sampler-ratio` 0.01, `otel-sampler-parent-based`
//! true) and the batch (`otel-max-queuesize` 2048,
//! `otel-schedule-delay-millis` 5000, `otel-max-export-batch-size` 512).
//! Without a collector host nothing is traced (ingress-nginx's module has
//! nowhere to send either). A value that does not parse keeps its default,
//! with a diagnostic.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gateway::telemetry::{OperationName, OtlpProtocol, SamplerKind, TracingConfig};

use super::{GlobalConfig, KeyError};
use crate::annotations::values::boolean;

/// The keys [`read`] reads.
#[cfg(test)]
pub(super) const KEYS: &[&str] = &[
    "edge-gateway.io/otlp-collector-protocol",
    "enable-opentelemetry",
    "opentelemetry-operation-name",
    "opentelemetry-trust-incoming-span",
    "otel-max-export-batch-size",
    "otel-max-queuesize",
    "otel-sampler",
    "otel-sampler-parent-based",
    "otel-sampler-ratio",
    "otel-schedule-delay-millis",
    "otel-service-name",
    "otlp-collector-host",
    "otlp-collector-port",
];

/// edge-gateway's key for the OTLP transport (`grpc`, `http/protobuf`).
const PROTOCOL_KEY: &str = "edge-gateway.io/otlp-collector-protocol";

/// The largest export queue: bounds the memory spans waiting for a slow
/// collector can take.
const MAX_QUEUE: u64 = 1 << 20;

/// Reads the keys into `config`'s route defaults and globals.
pub(super) fn read(
    data: &BTreeMap<String, String>,
    config: &mut GlobalConfig,
    errors: &mut Vec<KeyError>,
) {
    let value = |key: &str| data.get(key).map(|v| v.trim());
    let mut error = |key: &str, value: &str, message: String| {
        errors.push(KeyError {
            key: key.to_owned(),
            value: value.to_owned(),
            message,
        });
    };
    let tracing = &mut config.policy.tracing;
    let flag =
        |key: &str, default: bool, error: &mut dyn FnMut(&str, &str, String)| match value(key) {
            None => default,
            Some(v) => boolean(v).unwrap_or_else(|message| {
                error(key, v, message);
                default
            }),
        };
    tracing.enabled = flag("enable-opentelemetry", false, &mut error);
    tracing.trust_incoming = flag("opentelemetry-trust-incoming-span", true, &mut error);
    let mut exporter = TracingConfig {
        parent_based: flag("otel-sampler-parent-based", true, &mut error),
        ..TracingConfig::default()
    };
    if let Some(name) = value("opentelemetry-operation-name").filter(|v| !v.is_empty()) {
        match OperationName::parse(name) {
            Ok(name) => tracing.operation = Some(Arc::new(name)),
            Err(message) => error(
                "opentelemetry-operation-name",
                name,
                format!("{message}; spans are named after the Ingress path"),
            ),
        }
    }
    exporter.protocol = match value(PROTOCOL_KEY) {
        None | Some("" | "grpc") => OtlpProtocol::Grpc,
        Some("http/protobuf") => OtlpProtocol::HttpProtobuf,
        Some(other) => {
            error(
                PROTOCOL_KEY,
                other,
                "must be grpc or http/protobuf; grpc applies".to_owned(),
            );
            OtlpProtocol::Grpc
        }
    };
    let mut number =
        |key: &str, default: u64, range: std::ops::RangeInclusive<u64>| match value(key)
            .filter(|v| !v.is_empty())
        {
            None => default,
            Some(v) => match v.parse::<u64>() {
                Ok(n) if range.contains(&n) => n,
                _ => {
                    error(
                        key,
                        v,
                        format!(
                            "must be a whole number from {} to {}; {default} applies",
                            range.start(),
                            range.end()
                        ),
                    );
                    default
                }
            },
        };
    let port = exporter.protocol.default_port();
    exporter.port = number("otlp-collector-port", port.into(), 1..=65535) as u16;
    exporter.max_queue = number("otel-max-queuesize", 2048, 1..=MAX_QUEUE) as usize;
    exporter.schedule_delay =
        Duration::from_millis(number("otel-schedule-delay-millis", 5000, 0..=600_000));
    exporter.max_batch = number("otel-max-export-batch-size", 512, 1..=MAX_QUEUE) as usize;
    if exporter.max_batch > exporter.max_queue {
        // The default batch (512) quietly follows a smaller queue; a batch
        // size the ConfigMap gives is reported.
        if let Some(given) = value("otel-max-export-batch-size").filter(|v| !v.is_empty()) {
            error(
                "otel-max-export-batch-size",
                given,
                "must not exceed otel-max-queuesize; batches of otel-max-queuesize spans are sent"
                    .to_owned(),
            );
        }
        exporter.max_batch = exporter.max_queue;
    }
    if let Some(name) = value("otel-service-name") {
        if name.is_empty() || name.len() > 255 || name.bytes().any(|b| b.is_ascii_control()) {
            error(
                "otel-service-name",
                name,
                "must be a non-empty name without control characters; nginx applies".to_owned(),
            );
        } else {
            exporter.service_name = name.to_owned();
        }
    }
    let ratio = match value("otel-sampler-ratio") {
        None => 0.01,
        Some(v) => match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                error(
                    "otel-sampler-ratio",
                    v,
                    "must be a number from 0 to 1; 0.01 applies".to_owned(),
                );
                0.01
            }
        },
    };
    exporter.sampler = match value("otel-sampler") {
        None | Some("AlwaysOn") => SamplerKind::AlwaysOn,
        Some("AlwaysOff") => SamplerKind::AlwaysOff,
        Some("TraceIdRatioBased") => SamplerKind::Ratio(ratio),
        Some(other) => {
            error(
                "otel-sampler",
                other,
                "must be AlwaysOn, AlwaysOff or TraceIdRatioBased; AlwaysOn applies".to_owned(),
            );
            SamplerKind::AlwaysOn
        }
    };
    match value("otlp-collector-host").filter(|v| !v.is_empty()) {
        Some(host) if valid_host(host) => {
            exporter.host = host.to_owned();
            config.globals.tracing = Some(Arc::new(exporter));
        }
        Some(host) => error(
            "otlp-collector-host",
            host,
            "must be a host name or an IP address (no scheme, port or path); nothing is traced"
                .to_owned(),
        ),
        None if tracing.enabled => error(
            "enable-opentelemetry",
            "true",
            "needs otlp-collector-host (the OTLP collector); nothing is traced".to_owned(),
        ),
        None => {}
    }
}

/// A DNS name or an IP address (IPv6 bare or in brackets).
fn valid_host(host: &str) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    crate::endpoints::is_dns_name(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_keys(pairs: &[(&str, &str)]) -> (GlobalConfig, Vec<KeyError>) {
        let data = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut config = GlobalConfig::default();
        let mut errors = Vec::new();
        read(&data, &mut config, &mut errors);
        (config, errors)
    }

    #[test]
    fn defaults_are_ingress_nginx_s() {
        let (config, errors) = read_keys(&[("otlp-collector-host", "otel.observability.svc")]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(!config.policy.tracing.enabled);
        assert!(config.policy.tracing.trust_incoming);
        let exporter = config.globals.tracing.unwrap();
        assert_eq!(exporter.endpoint(), "http://otel.observability.svc:4317");
        assert_eq!(exporter.service_name, "nginx");
        assert_eq!(exporter.sampler, SamplerKind::AlwaysOn);
        assert!(exporter.parent_based);
        assert_eq!((exporter.max_queue, exporter.max_batch), (2048, 512));
        assert_eq!(exporter.schedule_delay, Duration::from_secs(5));
    }

    #[test]
    fn http_protobuf_posts_to_v1_traces_on_4318_unless_a_port_is_set() {
        let host = ("otlp-collector-host", "collector");
        let http = (PROTOCOL_KEY, "http/protobuf");
        let (config, errors) = read_keys(&[host, http]);
        assert!(errors.is_empty(), "{errors:?}");
        let exporter = config.globals.tracing.unwrap();
        assert_eq!(exporter.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(exporter.endpoint(), "http://collector:4318/v1/traces");
        let (config, _) = read_keys(&[host, http, ("otlp-collector-port", "9411")]);
        let exporter = config.globals.tracing.unwrap();
        assert_eq!(exporter.endpoint(), "http://collector:9411/v1/traces");
        let (config, errors) = read_keys(&[host, (PROTOCOL_KEY, "http/json")]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].key, PROTOCOL_KEY);
        let exporter = config.globals.tracing.unwrap();
        assert_eq!(exporter.protocol, OtlpProtocol::Grpc);
        assert_eq!(exporter.endpoint(), "http://collector:4317");
    }

    #[test]
    fn a_small_queue_takes_the_default_batch_down_quietly() {
        let host = ("otlp-collector-host", "collector");
        let (config, errors) = read_keys(&[host, ("otel-max-queuesize", "1")]);
        assert!(errors.is_empty(), "{errors:?}");
        let exporter = config.globals.tracing.unwrap();
        assert_eq!((exporter.max_queue, exporter.max_batch), (1, 1));
        let batch = ("otel-max-export-batch-size", "8");
        let (config, errors) = read_keys(&[host, ("otel-max-queuesize", "4"), batch]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].key.as_str(), errors[0].value.as_str()), batch);
        let exporter = config.globals.tracing.unwrap();
        assert_eq!((exporter.max_queue, exporter.max_batch), (4, 4));
    }

    #[test]
    fn keys_apply() {
        let (config, errors) = read_keys(&[
            ("enable-opentelemetry", "true"),
            ("opentelemetry-trust-incoming-span", "false"),
            (
                "opentelemetry-operation-name",
                "HTTP $request_method $service_name $uri",
            ),
            ("otlp-collector-host", "fd00::1"),
            ("otlp-collector-port", "4319"),
            ("otel-service-name", "edge"),
            ("otel-sampler", "TraceIdRatioBased"),
            ("otel-sampler-ratio", "0.25"),
            ("otel-sampler-parent-based", "false"),
            ("otel-max-queuesize", "64"),
            ("otel-schedule-delay-millis", "100"),
            ("otel-max-export-batch-size", "16"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(config.policy.tracing.enabled);
        assert!(!config.policy.tracing.trust_incoming);
        assert!(config.policy.tracing.operation.is_some());
        let exporter = config.globals.tracing.unwrap();
        assert_eq!(exporter.endpoint(), "http://[fd00::1]:4319");
        assert_eq!(exporter.sampler, SamplerKind::Ratio(0.25));
        assert!(!exporter.parent_based);
        assert_eq!((exporter.max_queue, exporter.max_batch), (64, 16));
        assert_eq!(exporter.schedule_delay, Duration::from_millis(100));
        assert_eq!(exporter.service_name, "edge");
    }

    #[test]
    fn bad_values_keep_defaults_with_a_diagnostic() {
        let (config, errors) = read_keys(&[
            ("enable-opentelemetry", "true"),
            ("opentelemetry-operation-name", "HTTP $cookie_x"),
            ("otlp-collector-host", "http://collector:4317"),
            ("otel-sampler", "Sometimes"),
            ("otel-sampler-ratio", "2"),
            ("otel-max-queuesize", "0"),
        ]);
        let keys: Vec<_> = errors.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "opentelemetry-operation-name",
                "otel-max-queuesize",
                "otel-sampler-ratio",
                "otel-sampler",
                "otlp-collector-host"
            ]
        );
        assert!(config.policy.tracing.operation.is_none());
        assert_eq!(config.globals.tracing, None);
        let (_, errors) = read_keys(&[("enable-opentelemetry", "true")]);
        assert_eq!(errors[0].key, "enable-opentelemetry");
        assert!(errors[0].message.contains("otlp-collector-host"));
    }
}
