//! Model-aware traffic (issue 9): holding requests while a model scales
//! from zero, the per-endpoint cap and its queue, generation timeouts,
//! cancellation of abandoned requests, safe retries, and load-aware
//! balancing around a stuck replica.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testkit::backend::{Script, ScriptedBackend};
use testkit::metrics::sum;
use testkit::{
    EchoBackend, IngressBuilder, TestResponse, endpoint_slice, endpoint_slice_named, eventually,
    get, request, scrape, service,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Setup;

/// Every test here reads the inference metrics.
const ARGS: &[&str] = &["--enable-metrics"];

/// An Ingress `ns/name` routing all of `host` to `service` port 80, with
/// `annotations` (keys under `edge-gateway.io/` unless they have a prefix).
pub(crate) fn ingress(
    ns: &str,
    name: &str,
    host: &str,
    service: &str,
    annotations: &[(&str, &str)],
) -> String {
    let mut builder = IngressBuilder::new(ns, name)
        .class("nginx")
        .host(host)
        .path("/", "Prefix", service, 80);
    for (key, value) in annotations {
        let key = if key.contains('/') {
            (*key).to_owned()
        } else {
            format!("edge-gateway.io/{key}")
        };
        builder = builder.annotation(&key, value);
    }
    builder.build()
}

/// A Service `ns/name` whose endpoints are `addrs`, which may listen on
/// different ports (one EndpointSlice each).
pub(crate) fn service_at(ns: &str, name: &str, addrs: &[SocketAddr]) -> Vec<String> {
    let port = addrs.first().map_or(8080, SocketAddr::port);
    let mut docs = vec![service(ns, name, 80, port)];
    for (i, addr) in addrs.iter().enumerate() {
        docs.push(endpoint_slice_named(
            ns,
            &format!("{name}-{i}"),
            name,
            addr.port(),
            &[(addr.ip(), Some(true))],
        ));
    }
    docs
}

/// A Service `ns/name` with an EndpointSlice that lists no endpoint: a
/// model scaled to zero.
fn scaled_to_zero(ns: &str, name: &str, port: u16) -> Vec<String> {
    vec![
        service(ns, name, 80, port),
        endpoint_slice(ns, name, port, &[]),
    ]
}

/// A metric summed over the samples with `labels`, polled until `wanted`.
async fn wait_metric(setup: &Setup, name: &str, labels: &[(&str, &str)], wanted: f64) {
    let addr = setup.gateway.metrics_addr();
    eventually(Duration::from_secs(10), || async move {
        let value = sum(&scrape(addr).await, name, labels);
        if (value - wanted).abs() < 1e-9 {
            Ok(())
        } else {
            Err(format!("{name}{labels:?} is {value}, waiting for {wanted}"))
        }
    })
    .await;
}

/// Polls `condition` until it holds (5 s at most; `what` says what is awaited).
async fn until(what: &str, condition: impl Fn() -> bool) {
    eventually(Duration::from_secs(5), || {
        let met = condition();
        async move { if met { Ok(()) } else { Err(what.to_owned()) } }
    })
    .await;
}

fn spawn_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> tokio::task::JoinHandle<(TestResponse, Instant)> {
    let (host, path) = (host.to_owned(), path.to_owned());
    tokio::spawn(async move {
        let response = get(addr, &host, &path).await;
        (response, Instant::now())
    })
}

/// A raw HTTP/1.1 GET on a new connection; returns each read's arrival
/// (from just before sending) and bytes, and when the connection closed.
async fn timed_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> (Vec<(Duration, Vec<u8>)>, Duration) {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let started = Instant::now();
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut reads = Vec::new();
    let mut buf = [0u8; 8192];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reads.push((started.elapsed(), buf[..n].to_vec())),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the gateway closes the connection");
    (reads, started.elapsed())
}

fn text(reads: &[(Duration, Vec<u8>)]) -> String {
    reads
        .iter()
        .map(|(_, bytes)| String::from_utf8_lossy(bytes).into_owned())
        .collect()
}

#[tokio::test]
async fn held_requests_are_released_when_an_endpoint_appears() {
    let model = EchoBackend::start([127, 0, 90, 1]).await;
    let port = model.addr().port();
    let mut docs = scaled_to_zero("zero", "model", port);
    docs.push(ingress(
        "zero",
        "model",
        "model.test",
        "model",
        &[("hold-when-no-endpoints", "30s"), ("max-pending", "3")],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    let held: Vec<_> = (0..3)
        .map(|_| spawn_get(s.http(), "model.test", "/v1/predict"))
        .collect();
    let labels = [("ingress", "model"), ("service", "model")];
    wait_metric(&s, "edge_gateway_pending_requests", &labels, 3.0).await;

    // Past max-pending: refused at once, told when to come back.
    let started = Instant::now();
    let over = get(s.http(), "model.test", "/v1/predict").await;
    assert_eq!(over.status, 503);
    assert_eq!(over.header("retry-after").as_deref(), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(model.hits(), 0);

    // The model's first replica becomes ready.
    let ready = Instant::now();
    s.dir.write(
        "ready.yaml",
        &endpoint_slice_named(
            "zero",
            "model-ready",
            "model",
            port,
            &[(model.addr().ip(), Some(true))],
        ),
    );
    for request in held {
        let (response, done) = request.await.expect("held request task");
        assert_eq!(response.status, 200, "{}", response.text());
        let waited = done.duration_since(ready);
        assert!(
            waited < Duration::from_secs(5),
            "released {waited:?} after the endpoint appeared"
        );
    }
    assert_eq!(model.hits(), 3);
    wait_metric(&s, "edge_gateway_pending_requests", &labels, 0.0).await;
    wait_metric(&s, "edge_gateway_hold_time_seconds_count", &labels, 3.0).await;
    let pending_full = [("service", "model"), ("reason", "pending_full")];
    wait_metric(
        &s,
        "edge_gateway_rejected_requests_total",
        &pending_full,
        1.0,
    )
    .await;
}

#[tokio::test]
async fn holding_ends_at_its_bound_or_the_deadline() {
    let mut docs = scaled_to_zero("bound", "short", 8080);
    docs.extend(scaled_to_zero("bound", "deadline", 8080));
    docs.push(ingress(
        "bound",
        "short",
        "short.test",
        "short",
        &[("hold-when-no-endpoints", "1s")],
    ));
    docs.push(ingress(
        "bound",
        "deadline",
        "deadline.test",
        "deadline",
        &[
            ("hold-when-no-endpoints", "30s"),
            ("request-deadline", "700ms"),
        ],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    let started = Instant::now();
    assert_eq!(get(s.http(), "short.test", "/").await.status, 503);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(3),
        "{took:?}"
    );

    let started = Instant::now();
    assert_eq!(get(s.http(), "deadline.test", "/").await.status, 504);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(650) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_capped_backend_queues_then_sheds_with_retry_after() {
    let model = EchoBackend::start([127, 0, 91, 1]).await;
    let mut docs = service_at("cap", "model", &[model.addr()]);
    docs.push(ingress(
        "cap",
        "model",
        "cap.test",
        "model",
        &[
            ("max-inflight-per-endpoint", "1"),
            ("max-queue", "1"),
            ("queue-timeout", "10s"),
            ("queue-overflow-status", "429"),
        ],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    let first = spawn_get(s.http(), "cap.test", "/first?delay_ms=1500");
    until("first request not at the model yet", || model.hits() == 1).await;
    let second = spawn_get(s.http(), "cap.test", "/second");
    wait_metric(
        &s,
        "edge_gateway_queued_requests",
        &[("service", "model")],
        1.0,
    )
    .await;

    let over = get(s.http(), "cap.test", "/third").await;
    assert_eq!(over.status, 429);
    assert_eq!(over.header("retry-after").as_deref(), Some("1"));
    assert_eq!(model.hits(), 1, "the queued request waits at the gateway");

    let (first, first_done) = first.await.expect("first");
    let (second, second_done) = second.await.expect("second");
    assert_eq!((first.status, second.status), (200, 200));
    assert!(
        second_done >= first_done,
        "the queued request went after the first ended"
    );
    let paths: Vec<String> = model.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/first?delay_ms=1500", "/second"]);
    let labels = [("ingress", "model"), ("service", "model")];
    wait_metric(&s, "edge_gateway_queue_time_seconds_count", &labels, 1.0).await;
}

#[tokio::test]
async fn a_queued_request_gives_up_at_the_queue_timeout() {
    let model = EchoBackend::start([127, 0, 91, 2]).await;
    let mut docs = service_at("qt", "model", &[model.addr()]);
    docs.push(ingress(
        "qt",
        "model",
        "qt.test",
        "model",
        &[
            ("max-inflight-per-endpoint", "1"),
            ("queue-timeout", "500ms"),
        ],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    let busy = spawn_get(s.http(), "qt.test", "/?delay_ms=3000");
    until("not at the model yet", || model.hits() == 1).await;
    let started = Instant::now();
    let shed = get(s.http(), "qt.test", "/").await;
    let took = started.elapsed();
    assert_eq!(shed.status, 503);
    assert_eq!(shed.header("retry-after").as_deref(), Some("1"));
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(busy.await.expect("busy").0.status, 200);
}

#[tokio::test]
async fn the_first_byte_timeout_fires_at_its_bound_and_replaces_the_read_timeout() {
    let model = EchoBackend::start([127, 0, 92, 1]).await;
    let mut docs = service_at("fb", "model", &[model.addr()]);
    docs.push(ingress(
        "fb",
        "strict",
        "strict.test",
        "model",
        &[("proxy-first-byte-timeout", "1s")],
    ));
    docs.push(ingress(
        "fb",
        "patient",
        "patient.test",
        "model",
        &[
            ("nginx.ingress.kubernetes.io/proxy-read-timeout", "1"),
            ("proxy-first-byte-timeout", "5s"),
        ],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    let started = Instant::now();
    let cut = get(s.http(), "strict.test", "/?delay_ms=3000").await;
    let took = started.elapsed();
    assert_eq!(cut.status, 504);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(model.hits(), 1, "a first-byte timeout is never retried");

    // A slow first token is fine when the first-byte budget allows it,
    // even past proxy-read-timeout.
    let slow = get(s.http(), "patient.test", "/?delay_ms=1500").await;
    assert_eq!(slow.status, 200);
    wait_metric(
        &s,
        "edge_gateway_time_to_first_byte_seconds_count",
        &[("ingress", "patient")],
        1.0,
    )
    .await;
}

#[tokio::test]
async fn the_stream_idle_timeout_cuts_a_stalled_stream() {
    let model = EchoBackend::start([127, 0, 93, 1]).await;
    let mut docs = service_at("idle", "model", &[model.addr()]);
    docs.push(ingress(
        "idle",
        "strict",
        "strict.test",
        "model",
        &[("stream-idle-timeout", "500ms")],
    ));
    docs.push(ingress(
        "idle",
        "patient",
        "patient.test",
        "model",
        &[
            ("nginx.ingress.kubernetes.io/proxy-read-timeout", "1"),
            ("stream-idle-timeout", "5s"),
        ],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    let (reads, closed) = timed_get(s.http(), "strict.test", "/?sse=3&interval_ms=2000").await;
    let body = text(&reads);
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.contains("data: event 0"), "{body}");
    assert!(!body.contains("data: event 1"), "{body}");
    assert!(
        !body.ends_with("0\r\n\r\n"),
        "the stream must not look complete: {body}"
    );
    let first = reads
        .iter()
        .find(|(_, b)| String::from_utf8_lossy(b).contains("event 0"))
        .map_or(Duration::ZERO, |(at, _)| *at);
    let idle = closed - first;
    assert!(
        idle >= Duration::from_millis(450) && idle < Duration::from_millis(1500),
        "{idle:?}"
    );

    // Gaps of 1.5 s pass under a 5 s stream-idle-timeout, although
    // proxy-read-timeout is 1 s: the stream's own bound replaces it.
    let (reads, _) = timed_get(s.http(), "patient.test", "/?sse=3&interval_ms=1500").await;
    let body = text(&reads);
    assert!(body.contains("data: event 2"), "{body}");
    assert!(body.ends_with("0\r\n\r\n"), "{body}");
    let labels = [("ingress", "patient")];
    wait_metric(
        &s,
        "edge_gateway_inter_chunk_gap_seconds_count",
        &labels,
        2.0,
    )
    .await;
}

#[tokio::test]
async fn the_request_deadline_bounds_the_whole_exchange() {
    let model = EchoBackend::start([127, 0, 94, 1]).await;
    let mut docs = service_at("dl", "model", &[model.addr()]);
    docs.push(ingress(
        "dl",
        "model",
        "dl.test",
        "model",
        &[("request-deadline", "1s"), ("stream-idle-timeout", "5s")],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    let (reads, closed) = timed_get(s.http(), "dl.test", "/?sse=20&interval_ms=200").await;
    let body = text(&reads);
    assert!(body.contains("data: event 0"), "{body}");
    assert!(!body.contains("data: event 19"), "{body}");
    assert!(
        closed >= Duration::from_millis(950) && closed < Duration::from_millis(1600),
        "{closed:?}"
    );
    let started = Instant::now();
    assert_eq!(
        get(s.http(), "dl.test", "/?delay_ms=3000").await.status,
        504
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

/// Sends a GET on a raw connection, waits until the upstream has it (and,
/// with `read_first`, until the first chunk came back), then drops the
/// connection; returns how long the upstream connection outlived it.
async fn disconnect_delay(
    setup: &Setup,
    backend: &ScriptedBackend,
    host: &str,
    read_first: bool,
) -> Duration {
    let mut client = TcpStream::connect(setup.http()).await.expect("connect");
    let request = format!("GET /generate HTTP/1.1\r\nHost: {host}\r\n\r\n");
    client.write_all(request.as_bytes()).await.expect("send");
    let before = backend.requests();
    until("request not upstream yet", || backend.requests() > before).await;
    if read_first {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        while !String::from_utf8_lossy(&seen).contains("data: first") {
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
                .await
                .expect("first chunk in time")
                .expect("read");
            assert!(n > 0, "the gateway closed the stream early");
            seen.extend_from_slice(&buf[..n]);
        }
    }
    let closed_before = backend.closed().len();
    drop(client);
    let gone = Instant::now();
    let closed = eventually(Duration::from_secs(5), || async {
        backend
            .closed()
            .get(closed_before)
            .copied()
            .ok_or_else(|| "upstream connection still open".to_owned())
    })
    .await;
    closed.saturating_duration_since(gone)
}

#[tokio::test]
async fn a_client_disconnect_cancels_the_upstream_within_100ms() {
    let silent = ScriptedBackend::start([127, 0, 95, 1], Script::Silent).await;
    let streaming = ScriptedBackend::start([127, 0, 95, 2], Script::StreamThenStall).await;
    let mut docs = service_at("cancel", "waiting", &[silent.addr()]);
    docs.extend(service_at("cancel", "streaming", &[streaming.addr()]));
    docs.push(ingress("cancel", "waiting", "waiting.test", "waiting", &[]));
    docs.push(ingress(
        "cancel",
        "streaming",
        "streaming.test",
        "streaming",
        &[],
    ));
    let s = Setup::start_with(&docs, ARGS).await;

    // Gone while the model is still thinking (no response head yet).
    let delay = disconnect_delay(&s, &silent, "waiting.test", false).await;
    println!("upstream closed {delay:?} after the client (waiting for the head)");
    assert!(
        delay < Duration::from_millis(100),
        "waiting: upstream closed {delay:?} after the client"
    );
    // Gone mid-stream.
    let delay = disconnect_delay(&s, &streaming, "streaming.test", true).await;
    println!("upstream closed {delay:?} after the client (mid-stream)");
    assert!(
        delay < Duration::from_millis(100),
        "streaming: upstream closed {delay:?} after the client"
    );
    // Nothing is left in flight on either endpoint.
    for (service, addr) in [("waiting", silent.addr()), ("streaming", streaming.addr())] {
        let endpoint = addr.to_string();
        let labels = [("service", service), ("endpoint", endpoint.as_str())];
        wait_metric(&s, "edge_gateway_endpoint_in_flight", &labels, 0.0).await;
    }
}

#[tokio::test]
async fn post_is_retried_only_when_no_byte_reached_the_upstream() {
    let lost = ScriptedBackend::start([127, 0, 96, 1], Script::Hangup).await;
    let live = EchoBackend::start([127, 0, 96, 2]).await;
    let mut docs = service_at("retry", "model", &[lost.addr(), live.addr()]);
    docs.push(ingress("retry", "model", "retry.test", "model", &[]));
    let s = Setup::start_with(&docs, ARGS).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = request(
            s.http(),
            "POST",
            "retry.test",
            "/v1/predict",
            &[],
            b"{}".to_vec(),
        )
        .await;
        statuses.push(response.status);
    }
    let failed = statuses.iter().filter(|s| **s == 502).count();
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(failed + served, 10, "{statuses:?}");
    assert!(
        failed > 0,
        "round robin reaches the endpoint that loses requests"
    );
    // A POST that reached the lost endpoint is answered 502 and never sent
    // again: each POST ran exactly once.
    assert_eq!(lost.requests(), failed);
    assert_eq!(live.hits(), served);

    // The same loss on a GET is retried on the other endpoint.
    live.reset();
    for _ in 0..10 {
        assert_eq!(get(s.http(), "retry.test", "/").await.status, 200);
    }
    assert_eq!(live.hits(), 10);
}

#[tokio::test]
async fn timeouts_are_retried_only_as_ingress_nginx_does() {
    let a = ScriptedBackend::start([127, 0, 97, 1], Script::Silent).await;
    let b = ScriptedBackend::start([127, 0, 97, 2], Script::Silent).await;
    let mut docs = service_at("to", "model", &[a.addr(), b.addr()]);
    docs.push(ingress(
        "to",
        "first-byte",
        "first-byte.test",
        "model",
        &[("proxy-first-byte-timeout", "500ms")],
    ));
    docs.push(ingress(
        "to",
        "read",
        "read.test",
        "model",
        &[("nginx.ingress.kubernetes.io/proxy-read-timeout", "1")],
    ));
    let s = Setup::start_with(&docs, ARGS).await;
    assert_eq!(get(s.http(), "first-byte.test", "/").await.status, 504);
    assert_eq!(
        a.requests() + b.requests(),
        1,
        "a first-byte timeout is never retried"
    );
    // proxy-read-timeout keeps ingress-nginx's `error timeout` retry of a GET.
    assert_eq!(get(s.http(), "read.test", "/").await.status, 504);
    assert_eq!(a.requests() + b.requests(), 3);
    // A POST is not retried after a read timeout either.
    let post = request(s.http(), "POST", "read.test", "/", &[], b"{}".to_vec()).await;
    assert_eq!(post.status, 504);
    assert_eq!(a.requests() + b.requests(), 4);
}

#[tokio::test]
async fn load_aware_balancers_avoid_a_stuck_endpoint() {
    let stuck = ScriptedBackend::start([127, 0, 98, 1], Script::Silent).await;
    let fast = EchoBackend::start([127, 0, 98, 2]).await;
    let mut docs = Vec::new();
    let algorithms = ["least_request", "p2c", "peak_ewma"];
    for algorithm in algorithms {
        let name = algorithm.replace('_', "-");
        docs.extend(service_at("lb", &name, &[stuck.addr(), fast.addr()]));
        docs.push(ingress(
            "lb",
            &name,
            &format!("{name}.test"),
            &name,
            &[("load-balance", algorithm)],
        ));
    }
    let s = Setup::start_with(&docs, ARGS).await;
    for algorithm in algorithms {
        let host = format!("{}.test", algorithm.replace('_', "-"));
        // Until one request hangs on the stuck endpoint, send more (the
        // others are answered at once by the fast one).
        let before = stuck.requests();
        let mut hanging = Vec::new();
        while stuck.requests() == before {
            hanging.push(spawn_get(s.http(), &host, "/"));
            let started = Instant::now();
            while stuck.requests() == before && started.elapsed() < Duration::from_millis(200) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert!(
                hanging.len() < 50,
                "{algorithm}: never reached the stuck endpoint"
            );
        }
        let fast_before = fast.hits();
        for _ in 0..20 {
            let response = get(s.http(), &host, "/").await;
            assert_eq!(response.status, 200, "{algorithm}");
        }
        assert_eq!(fast.hits() - fast_before, 20, "{algorithm}");
        assert_eq!(
            stuck.requests(),
            before + 1,
            "{algorithm}: sent more to the stuck endpoint"
        );
        for task in hanging {
            task.abort();
        }
    }
}
