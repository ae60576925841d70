//! OpenTelemetry tracing (`enable-opentelemetry` and the otel keys)
//! against a real OTLP receiver: gRPC frames over HTTP/2, or OTLP/HTTP
//! protobuf bodies over HTTP/1.1, decoded with `opentelemetry-proto`'s
//! generated messages, as a collector does.
//! Span names and attributes, the parent from a trusted `traceparent`
//! (and not from an untrusted one), the context sent upstream, sampling,
//! and a dead collector that costs requests nothing.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use testkit::{EchoBackend, IngressBuilder, SilentBackend, eventually, request, scrape};
use tokio::net::TcpListener;

use crate::config_map::config_map;
use crate::{Setup, service_for};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A span as the collector received it, with its resource's service name.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<String> {
        let value = self.span.attributes.iter().find(|kv| kv.key == key)?;
        Some(match value.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
    }

    fn trace_id(&self) -> String {
        hex(&self.span.trace_id)
    }

    fn span_id(&self) -> String {
        hex(&self.span.span_id)
    }

    fn ingress(&self) -> String {
        self.attribute("k8s.ingress.name").unwrap_or_default()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How the collector takes spans.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    /// OTLP/gRPC: `TraceService/Export` over HTTP/2.
    Grpc,
    /// OTLP/HTTP: `POST /v1/traces` with a protobuf body, over HTTP/1.1.
    Http,
}

/// An OTLP trace receiver on a free port.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start(ip: [u8; 4]) -> Collector {
        Collector::start_with(ip, Transport::Grpc).await
    }

    async fn start_with(ip: [u8; 4], transport: Transport) -> Collector {
        let listener = TcpListener::bind(SocketAddr::from((ip, 0)))
            .await
            .expect("bind the collector");
        let addr = listener.local_addr().expect("collector address");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let store = spans.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let store = store.clone();
                        async move {
                            Ok::<_, Infallible>(match transport {
                                Transport::Grpc => export(req, &store).await,
                                Transport::Http => export_http(req, &store).await,
                            })
                        }
                    });
                    let io = TokioIo::new(stream);
                    let _ = match transport {
                        Transport::Grpc => {
                            hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, service)
                                .await
                        }
                        Transport::Http => {
                            hyper::server::conn::http1::Builder::new()
                                .serve_connection(io, service)
                                .await
                        }
                    };
                });
            }
        });
        Collector { addr, spans, task }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("spans").clone()
    }

    fn clear(&self) {
        self.spans.lock().expect("spans").clear();
    }

    /// Waits for the span of `ingress` whose trace `traceparent` (as the
    /// upstream received it) names.
    async fn span_for(&self, ingress: &str, traceparent: &str) -> Received {
        let trace = traceparent.split('-').nth(1).unwrap_or_default();
        eventually(Duration::from_secs(15), || {
            let found = self
                .spans()
                .into_iter()
                .find(|r| r.ingress() == ingress && r.trace_id() == trace);
            let missing = format!("no span of {ingress} in trace {trace}");
            async move { found.ok_or(missing) }
        })
        .await
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One `TraceService/Export` call: the request decoded, an empty answer
/// with `grpc-status: 0`.
async fn export(
    req: http::Request<Incoming>,
    store: &Mutex<Vec<Received>>,
) -> http::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    assert_eq!(
        req.uri().path(),
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
    );
    let mut body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // The gRPC frame: uncompressed flag, 4-byte length, the message.
    assert_eq!(body.first(), Some(&0), "uncompressed gRPC frame");
    body.advance(1);
    let length = body.get_u32() as usize;
    keep(&body[..length], store);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(answer.len() as u32).to_be_bytes());
    frame.extend_from_slice(&answer);
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    let body = Full::new(Bytes::from(frame))
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    http::Response::builder()
        .header("content-type", "application/grpc")
        .body(body)
        .expect("response")
}

/// One OTLP/HTTP export: `POST /v1/traces`, a protobuf
/// `ExportTraceServiceRequest`; answered with an empty
/// `ExportTraceServiceResponse`.
async fn export_http(
    req: http::Request<Incoming>,
    store: &Mutex<Vec<Received>>,
) -> http::Response<http_body_util::combinators::BoxBody<Bytes, Infallible>> {
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.uri().path(), "/v1/traces");
    assert_eq!(
        req.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/x-protobuf")
    );
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    keep(&body, store);
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    http::Response::builder()
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(answer)).boxed())
        .expect("response")
}

/// Decodes an `ExportTraceServiceRequest` into `store`.
fn keep(message: &[u8], store: &Mutex<Vec<Received>>) {
    let decoded = ExportTraceServiceRequest::decode(message).expect("OTLP protobuf");
    let mut spans = store.lock().expect("spans");
    for resource in decoded.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| match &kv.value {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                spans.push(Received {
                    service: service.clone(),
                    span,
                });
            }
        }
    }
}

/// Three Ingresses on `backend`: `traced` (the ConfigMap's tracing),
/// `untrusted` (its own: a new trace, span named `predict`), `quiet`
/// (tracing off).
fn ingresses(backend: &EchoBackend) -> Vec<String> {
    let mut docs = service_for("otel", "svc", &[backend]);
    let ingress = |name: &str| {
        IngressBuilder::new("otel", name)
            .class("nginx")
            .host(&format!("{name}.test"))
            .path("/", "Prefix", "svc", 80)
    };
    docs.push(ingress("traced").build());
    docs.push(
        ingress("untrusted")
            .annotation("nginx.ingress.kubernetes.io/enable-opentelemetry", "true")
            .annotation(
                "nginx.ingress.kubernetes.io/opentelemetry-trust-incoming-span",
                "false",
            )
            .annotation(
                "nginx.ingress.kubernetes.io/opentelemetry-operation-name",
                "predict",
            )
            .build(),
    );
    docs.push(
        ingress("quiet")
            .annotation("nginx.ingress.kubernetes.io/enable-opentelemetry", "false")
            .build(),
    );
    docs
}

/// The ConfigMap turning tracing on towards `collector`, plus `extra`.
fn tracing_on(collector: SocketAddr, extra: &[(&str, &str)]) -> String {
    let (host, port) = (collector.ip().to_string(), collector.port().to_string());
    let mut data = vec![
        ("enable-opentelemetry", "true"),
        ("otlp-collector-host", host.as_str()),
        ("otlp-collector-port", port.as_str()),
        ("otel-schedule-delay-millis", "20"),
    ];
    data.extend_from_slice(extra);
    config_map(&data)
}

/// Sends GET `/v1/predict?x=1` to `host` with `headers`; returns the
/// `traceparent` and `tracestate` the upstream received.
async fn send(
    s: &Setup,
    backend: &EchoBackend,
    host: &str,
    headers: &[(&str, &str)],
) -> (Option<String>, Option<String>) {
    let response = request(
        s.http(),
        "GET",
        host,
        "/v1/predict?x=1",
        headers,
        Vec::new(),
    )
    .await;
    assert_eq!(response.status, 200, "{host}");
    let seen = backend
        .last_request()
        .expect("the upstream got the request");
    (seen.header("traceparent"), seen.header("tracestate"))
}

#[tokio::test]
async fn spans_name_the_request_and_the_trace_goes_upstream() {
    let backend = EchoBackend::start([127, 0, 230, 1]).await;
    let collector = Collector::start([127, 0, 230, 2]).await;
    let mut docs = ingresses(&backend);
    docs.push(tracing_on(
        collector.addr,
        &[("otel-service-name", "edge-test")],
    ));
    let s = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;
    let incoming = [
        ("traceparent", TRACEPARENT),
        ("tracestate", "congo=t61rcWkgMzE"),
        ("user-agent", "otel-test/1"),
    ];

    // Off for this Ingress: the client's context passes through untouched.
    let (quiet, _) = send(&s, &backend, "quiet.test", &incoming).await;
    assert_eq!(quiet.as_deref(), Some(TRACEPARENT));

    // Trusted: the client's span is the parent; the upstream gets ours.
    let (sent, state) = send(&s, &backend, "traced.test", &incoming).await;
    let sent = sent.expect("a traceparent upstream");
    let span = collector.span_for("traced", &sent).await;
    assert_eq!(span.trace_id(), TRACE_ID);
    assert_eq!(hex(&span.span.parent_span_id), PARENT_ID);
    assert_eq!(
        sent,
        format!("00-{TRACE_ID}-{}-01", span.span_id()),
        "the upstream's parent is the gateway's span"
    );
    assert_eq!(state.as_deref(), Some("congo=t61rcWkgMzE"));
    assert_eq!(span.span.name, "/", "named after the Ingress path");
    assert_eq!(span.span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(span.service, "edge-test");
    for (key, value) in [
        ("http.request.method", "GET"),
        ("url.path", "/v1/predict"),
        ("url.query", "x=1"),
        ("url.scheme", "http"),
        ("server.address", "traced.test"),
        ("http.response.status_code", "200"),
        ("http.status_code", "200"),
        ("user_agent.original", "otel-test/1"),
        ("network.peer.address", "127.0.0.1"),
        ("k8s.namespace.name", "otel"),
        ("k8s.ingress.name", "traced"),
        ("k8s.service.name", "svc"),
    ] {
        assert_eq!(span.attribute(key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(
        span.attribute("upstream.address"),
        Some(backend.addr().to_string())
    );
    let events: Vec<_> = span.span.events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        events,
        ["upstream.request", "response.first_byte", "response.end"]
    );
    assert!(
        !collector.spans().iter().any(|r| r.ingress() == "quiet"),
        "an Ingress with enable-opentelemetry: \"false\" has no spans"
    );

    // Untrusted: a new trace, no parent, the client's headers replaced.
    let (sent, state) = send(&s, &backend, "untrusted.test", &incoming).await;
    let sent = sent.expect("a traceparent upstream");
    assert!(!sent.contains(TRACE_ID), "{sent}");
    assert_eq!(state, None, "the client's tracestate is not passed on");
    let span = collector.span_for("untrusted", &sent).await;
    assert_eq!(span.span.name, "predict");
    assert!(span.span.parent_span_id.is_empty(), "no parent");
    assert_eq!(
        sent,
        format!("00-{}-{}-01", span.trace_id(), span.span_id())
    );

    // TraceIdRatioBased 0.5: about half of 400 new traces are sampled,
    // and exactly those are exported.
    s.dir.write(
        "cm.yaml",
        &tracing_on(
            collector.addr,
            &[
                ("otel-sampler", "TraceIdRatioBased"),
                ("otel-sampler-ratio", "0.5"),
                ("otel-service-name", "edge-ratio"),
            ],
        ),
    );
    eventually(Duration::from_secs(10), || async {
        send(&s, &backend, "traced.test", &[]).await;
        match collector.spans().last() {
            Some(r) if r.service == "edge-ratio" => Ok(()),
            _ => Err("the new settings are not applied yet".to_owned()),
        }
    })
    .await;
    collector.clear();
    let (mut sampled, mut unsampled) = (Vec::new(), Vec::new());
    for _ in 0..400 {
        let (sent, _) = send(&s, &backend, "traced.test", &[]).await;
        let sent = sent.expect("a traceparent upstream");
        if sent.ends_with("-01") {
            sampled.push(sent);
        } else {
            assert!(sent.ends_with("-00"), "{sent}");
            unsampled.push(sent);
        }
    }
    assert!(
        (140..=260).contains(&sampled.len()),
        "{} of 400 sampled at 0.5",
        sampled.len()
    );
    let last = sampled.last().expect("some sampled").clone();
    collector.span_for("traced", &last).await;
    // Exactly the sampled traces were exported (a span of the request that
    // saw the new settings may still arrive after `clear`: traces decide).
    let trace_of = |traceparent: &String| traceparent.split('-').nth(1).unwrap_or("").to_owned();
    let exported: std::collections::HashSet<String> =
        collector.spans().iter().map(Received::trace_id).collect();
    for sent in &sampled {
        assert!(exported.contains(&trace_of(sent)), "{sent} not exported");
    }
    for sent in &unsampled {
        assert!(!exported.contains(&trace_of(sent)), "{sent} exported");
    }

    // AlwaysOff (parent-based): nothing, unless a trusted parent is sampled.
    s.dir.write(
        "cm.yaml",
        &tracing_on(collector.addr, &[("otel-sampler", "AlwaysOff")]),
    );
    // Applied once 20 new traces in a row are unsampled (the ratio sampler
    // before it gives that by chance once in a million).
    eventually(Duration::from_secs(10), || async {
        for _ in 0..20 {
            match send(&s, &backend, "traced.test", &[]).await.0 {
                Some(sent) if sent.ends_with("-00") => {}
                other => return Err(format!("still sampled: {other:?}")),
            }
        }
        Ok(())
    })
    .await;
    collector.clear();
    for _ in 0..50 {
        let (sent, _) = send(&s, &backend, "traced.test", &[]).await;
        assert!(sent.expect("a traceparent").ends_with("-00"));
    }
    let (sent, _) = send(&s, &backend, "traced.test", &incoming).await;
    collector
        .span_for("traced", &sent.expect("a traceparent"))
        .await;
    assert_eq!(collector.spans().len(), 1, "only the sampled parent's span");
}

#[tokio::test]
async fn spans_go_to_an_otlp_http_collector() {
    let backend = EchoBackend::start([127, 0, 230, 4]).await;
    let collector = Collector::start_with([127, 0, 230, 2], Transport::Http).await;
    let mut docs = ingresses(&backend);
    docs.push(tracing_on(
        collector.addr,
        &[
            ("edge-gateway.io/otlp-collector-protocol", "http/protobuf"),
            ("otel-service-name", "edge-http"),
        ],
    ));
    let s = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;
    let (sent, _) = send(&s, &backend, "traced.test", &[("traceparent", TRACEPARENT)]).await;
    let sent = sent.expect("a traceparent upstream");
    let span = collector.span_for("traced", &sent).await;
    assert_eq!(span.service, "edge-http");
    assert_eq!(span.trace_id(), TRACE_ID);
    assert_eq!(hex(&span.span.parent_span_id), PARENT_ID);
    assert_eq!(span.attribute("url.path").as_deref(), Some("/v1/predict"));
}

async fn dropped_spans(s: &Setup) -> f64 {
    testkit::metrics::sum(
        &scrape(s.gateway.metrics_addr()).await,
        "edge_gateway_otel_spans_dropped_total",
        &[],
    )
}

#[tokio::test]
async fn a_dead_collector_costs_requests_nothing() {
    let backend = EchoBackend::start([127, 0, 230, 3]).await;
    // Accepts connections and never answers: every export hangs until
    // its timeout, and the small queue overflows.
    let collector = SilentBackend::start([127, 0, 230, 2]).await;
    let mut docs = ingresses(&backend);
    docs.push(tracing_on(
        collector.addr(),
        &[
            ("otel-max-queuesize", "4"),
            ("otel-max-export-batch-size", "2"),
        ],
    ));
    let s = Setup::start_with(
        &docs,
        &["--configmap", "ingress-nginx/ingress-nginx-controller"],
    )
    .await;
    let before = dropped_spans(&s).await;
    let mut traced = Duration::ZERO;
    let mut quiet = Duration::ZERO;
    for _ in 0..100 {
        for (host, total) in [("traced.test", &mut traced), ("quiet.test", &mut quiet)] {
            let began = Instant::now();
            let (sent, _) = send(&s, &backend, host, &[]).await;
            *total += began.elapsed();
            assert!(sent.is_some() == (host == "traced.test"), "{host}");
        }
    }
    // Generous: the point is that no request waits for the collector
    // (an export hangs for 10 s), not a timing comparison.
    assert!(
        traced < quiet * 3 + Duration::from_secs(2),
        "100 traced requests took {traced:?}, 100 untraced {quiet:?}"
    );
    eventually(Duration::from_secs(10), || async {
        let dropped = dropped_spans(&s).await - before;
        if dropped >= 90.0 {
            Ok(())
        } else {
            Err(format!("{dropped} spans dropped"))
        }
    })
    .await;
}
