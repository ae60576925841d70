//! Streaming and what the upstream and the client see of each other.

use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, get, get_frames, request};

use crate::{Setup, service_for};

async fn setup(backend: &EchoBackend) -> Setup {
    let mut docs = service_for("s", "svc", &[backend]);
    docs.push(
        IngressBuilder::new("s", "svc")
            .class("nginx")
            .host("stream.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    Setup::start(&docs).await
}

#[tokio::test]
async fn server_sent_events_stream_through_unbuffered() {
    let backend = EchoBackend::start([127, 0, 40, 1]).await;
    let s = setup(&backend).await;
    let path = "/events?sse=5&interval_ms=200";
    let (status, frames) = get_frames(s.http(), "stream.test", path).await;
    assert_eq!(status, 200);
    let text: String = frames
        .iter()
        .map(|(_, b)| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert_eq!(text.matches("data: event").count(), 5, "{text}");
    let first = frames.first().unwrap().0;
    let last = frames.last().unwrap().0;
    // Produced 200 ms apart: the first must arrive long before the last is
    // produced, or the gateway buffered the stream.
    assert!(
        last - first >= Duration::from_millis(600),
        "first {first:?}, last {last:?}"
    );

    let (_, direct) = get_frames(backend.addr(), "stream.test", path).await;
    let direct_first = direct.first().unwrap().0;
    println!("time to first byte: through gateway {first:?}, direct {direct_first:?}");
    assert!(
        first < direct_first + Duration::from_millis(150),
        "through {first:?}, direct {direct_first:?}"
    );
}

#[tokio::test]
async fn large_responses_arrive_intact() {
    let backend = EchoBackend::start([127, 0, 40, 2]).await;
    let s = setup(&backend).await;
    let response = get(s.http(), "stream.test", "/big?bytes=5242880").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 5 << 20);
}

#[tokio::test]
async fn upstream_sees_ingress_nginx_headers() {
    let backend = EchoBackend::start([127, 0, 40, 3]).await;
    let s = setup(&backend).await;
    let response = request(
        s.http(),
        "GET",
        "stream.test",
        "/h?x=1",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x_auth_user", "admin"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "secret"),
            ("proxy", "http://evil.example"),
            ("x-custom", "kept"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(response.status, 200);
    let seen = backend.last_request().unwrap();
    let header = |name: &str| seen.header(name);
    assert_eq!(seen.path, "/h?x=1");
    assert_eq!(header("host").as_deref(), Some("stream.test"));
    assert_eq!(header("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert_eq!(
        header("x-original-forwarded-for").as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(header("x-real-ip").as_deref(), Some("127.0.0.1"));
    assert_eq!(header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(header("x-forwarded-scheme").as_deref(), Some("http"));
    assert_eq!(header("x-scheme").as_deref(), Some("http"));
    assert_eq!(header("x-forwarded-port").as_deref(), Some("80"));
    assert_eq!(header("x-forwarded-host").as_deref(), Some("stream.test"));
    assert_eq!(header("x-custom").as_deref(), Some("kept"));
    let id = header("x-request-id").unwrap_or_default();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    for gone in ["x_auth_user", "x-hop", "proxy"] {
        assert!(header(gone).is_none(), "{gone} reached the upstream");
    }

    request(
        s.http(),
        "GET",
        "stream.test",
        "/",
        &[("x-request-id", "client-chosen-id")],
        Vec::new(),
    )
    .await;
    assert_eq!(
        backend
            .last_request()
            .unwrap()
            .header("x-request-id")
            .as_deref(),
        Some("client-chosen-id")
    );
}

#[tokio::test]
async fn request_bodies_stream_to_the_upstream() {
    let backend = EchoBackend::start([127, 0, 40, 4]).await;
    let s = setup(&backend).await;
    let body = (0..200_000u32)
        .flat_map(|i| i.to_le_bytes())
        .collect::<Vec<u8>>();
    let response = request(s.http(), "PUT", "stream.test", "/upload", &[], body.clone()).await;
    assert_eq!(response.status, 200);
    assert_eq!(backend.last_request().unwrap().body, body);
}
