use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Request};
use opentelemetry::Value;
use tokio::sync::mpsc;

use super::*;
use crate::path::PathKind;
use crate::table::RouteAction;
use crate::tracing_config::{SamplerKind, TracingConfig};

const SAMPLED_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const UNSAMPLED_PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";

fn route() -> Route {
    Route {
        source: Some(RouteSource {
            namespace: "models".into(),
            name: "llm".into(),
        }),
        host: "api.example".into(),
        path: "/api".into(),
        path_kind: PathKind::Prefix,
        action: RouteAction::Proxy(crate::ids::BackendId(0)),
        settings: Arc::default(),
        policy: Arc::default(),
        admission: None,
        stats: None,
        rewrite: None,
        fallback: None,
        canary: None,
        filters: None,
    }
}

fn pipeline(sampler: SamplerKind, parent_based: bool) -> (Arc<Pipeline>, mpsc::Receiver<SpanData>) {
    let (pipeline, spans) = Pipeline::for_tests(TracingConfig {
        sampler,
        parent_based,
        ..TracingConfig::default()
    });
    (Arc::new(pipeline), spans)
}

fn request(traceparent: Option<&'static str>) -> Request<()> {
    let mut req = Request::post("/api/v1/predict/7?stream=1")
        .header("host", "api.example:8080")
        .header("user-agent", "curl/8")
        .header("tracestate", "congo=t61rcWkgMzE")
        .body(())
        .unwrap();
    if let Some(tp) = traceparent {
        req.headers_mut()
            .insert("traceparent", HeaderValue::from_static(tp));
    }
    req
}

fn arrival() -> Arrival<'static> {
    Arrival {
        client: "10.0.0.9:51000".parse::<SocketAddr>().unwrap(),
        scheme: "http",
        port: 80,
        service: None,
    }
}

fn start(
    pipeline: &Arc<Pipeline>,
    tracing: &RouteTracing,
    traceparent: Option<&'static str>,
) -> RequestSpan {
    RequestSpan::start(
        pipeline,
        tracing,
        &route(),
        &request(traceparent),
        arrival(),
    )
}

fn traced() -> RouteTracing {
    RouteTracing {
        enabled: true,
        ..RouteTracing::default()
    }
}

#[test]
fn parent_based_follows_a_trusted_parent() {
    let (off, _) = pipeline(SamplerKind::AlwaysOff, true);
    let span = start(&off, &traced(), Some(SAMPLED_PARENT));
    assert!(span.ids().sampled, "a sampled parent wins over AlwaysOff");
    assert_eq!(
        span.ids().trace_id,
        TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736u128)
    );
    let (on, _) = pipeline(SamplerKind::AlwaysOn, true);
    assert!(!start(&on, &traced(), Some(UNSAMPLED_PARENT)).ids().sampled);
    // Without parent-based, the root sampler decides alone.
    let (on, _) = pipeline(SamplerKind::AlwaysOn, false);
    assert!(start(&on, &traced(), Some(UNSAMPLED_PARENT)).ids().sampled);
}

#[test]
fn an_untrusted_parent_starts_a_new_trace() {
    let (off, _) = pipeline(SamplerKind::AlwaysOff, true);
    let untrusted = RouteTracing {
        trust_incoming: false,
        ..traced()
    };
    let mut span = start(&off, &untrusted, Some(SAMPLED_PARENT));
    assert!(!span.ids().sampled);
    assert_ne!(
        span.ids().trace_id,
        TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736u128)
    );
    let mut headers = request(Some(SAMPLED_PARENT)).headers().clone();
    span.inject(&mut headers);
    let sent = Parent::from_headers(&headers).unwrap();
    assert_eq!(sent, span.ids());
    assert!(
        headers.get("tracestate").is_none(),
        "the client's state is dropped"
    );
}

#[test]
fn ratio_sampling_is_near_the_ratio() {
    let (half, _) = pipeline(SamplerKind::Ratio(0.5), true);
    let sampled = (0..4000)
        .filter(|_| start(&half, &traced(), None).ids().sampled)
        .count();
    assert!((1600..=2400).contains(&sampled), "{sampled} of 4000");
    let (none, _) = pipeline(SamplerKind::Ratio(0.0), true);
    assert!((0..200).all(|_| !start(&none, &traced(), None).ids().sampled));
}

fn attribute<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[test]
fn a_sampled_span_maps_the_exchange() {
    let (on, mut spans) = pipeline(SamplerKind::AlwaysOn, true);
    let mut span = start(&on, &traced(), Some(SAMPLED_PARENT));
    let mut headers = HeaderMap::new();
    span.inject(&mut headers);
    assert_eq!(headers.get("tracestate").unwrap(), "congo=t61rcWkgMzE");
    span.chunk();
    span.chunk();
    let started = Instant::now();
    let upstream: SocketAddr = "10.1.0.5:8000".parse().unwrap();
    span.finish(&Ended {
        started,
        status: 503,
        upstream: Some((upstream, Some(Instant::now()))),
        upstream_status: Some(503),
        sent: 42,
    });
    let data = spans.try_recv().unwrap();
    assert_eq!(data.name, "/api", "the default name is the Ingress path");
    assert_eq!(data.span_kind, SpanKind::Server);
    assert_eq!(data.parent_span_id, SpanId::from(0x00f067aa0ba902b7u64));
    assert!(data.parent_span_is_remote);
    assert!(matches!(data.status, Status::Error { .. }));
    for (key, value) in [
        ("http.request.method", Value::from("POST")),
        ("url.path", Value::from("/api/v1/predict/7")),
        ("url.query", Value::from("stream=1")),
        ("url.scheme", Value::from("http")),
        ("server.address", Value::from("api.example")),
        ("network.peer.address", Value::from("10.0.0.9")),
        ("user_agent.original", Value::from("curl/8")),
        ("http.response.status_code", Value::I64(503)),
        ("http.status_code", Value::I64(503)),
        ("http.target", Value::from("/api/v1/predict/7?stream=1")),
        ("k8s.namespace.name", Value::from("models")),
        ("k8s.ingress.name", Value::from("llm")),
        ("upstream.address", Value::from("10.1.0.5:8000")),
    ] {
        assert_eq!(attribute(&data, key), Some(&value), "{key}");
    }
    let events: Vec<_> = data.events.iter().map(|e| e.name.as_ref()).collect();
    assert_eq!(
        events,
        ["upstream.request", "response.first_byte", "response.end"]
    );
    let end = &data.events.events[2];
    assert!(
        end.attributes
            .contains(&KeyValue::new("edge_gateway.response.chunks", 2i64))
    );
    assert!(
        end.attributes
            .contains(&KeyValue::new("edge_gateway.response.bytes", 42i64))
    );
}

#[test]
fn an_unsampled_span_records_nothing() {
    let (off, mut spans) = pipeline(SamplerKind::AlwaysOff, true);
    let mut span = start(&off, &traced(), None);
    let mut headers = HeaderMap::new();
    span.inject(&mut headers);
    assert!(
        headers
            .get("traceparent")
            .unwrap()
            .to_str()
            .unwrap()
            .ends_with("-00")
    );
    span.finish(&Ended {
        started: Instant::now(),
        status: 200,
        upstream: None,
        upstream_status: None,
        sent: 0,
    });
    assert!(spans.try_recv().is_err());
}

#[test]
fn a_full_queue_drops_and_counts() {
    let (pipeline, _spans) = Pipeline::for_tests(TracingConfig {
        max_queue: 1,
        ..TracingConfig::default()
    });
    let pipeline = Arc::new(pipeline);
    let before = crate::metrics::OTEL_SPANS_DROPPED.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..3 {
        start(&pipeline, &traced(), None).finish(&Ended {
            started: Instant::now(),
            status: 200,
            upstream: None,
            upstream_status: None,
            sent: 0,
        });
    }
    let after = crate::metrics::OTEL_SPANS_DROPPED.load(std::sync::atomic::Ordering::Relaxed);
    assert!(after - before >= 2, "{before} -> {after}");
}
