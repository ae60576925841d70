//! Client-side limits and malformed input: each gets its 4xx, nothing
//! reaches the upstream, and the gateway keeps serving.

use testkit::{EchoBackend, IngressBuilder, get, raw, raw_status, request};

use crate::{Setup, service_for};

async fn setup(backend: &EchoBackend, annotations: &[(&str, &str)]) -> Setup {
    let mut docs = service_for("l", "svc", &[backend]);
    let mut ingress = IngressBuilder::new("l", "svc").class("nginx");
    for (k, v) in annotations {
        ingress = ingress.annotation(k, v);
    }
    docs.push(
        ingress
            .host("limits.test")
            .path("/", "Prefix", "svc", 80)
            .build(),
    );
    Setup::start(&docs).await
}

#[tokio::test]
async fn bodies_over_one_mebibyte_get_413() {
    let backend = EchoBackend::start([127, 0, 20, 1]).await;
    let s = setup(&backend, &[]).await;
    let exactly = request(
        s.http(),
        "POST",
        "limits.test",
        "/",
        &[],
        vec![b'x'; 1 << 20],
    )
    .await;
    assert_eq!(exactly.status, 200);
    assert_eq!(exactly.json()["body_bytes"], 1 << 20);
    backend.reset();

    // Declared too large: refused before the body is read or sent upstream.
    let declared = request(
        s.http(),
        "POST",
        "limits.test",
        "/",
        &[],
        vec![b'x'; (1 << 20) + 1],
    )
    .await;
    assert_eq!(declared.status, 413);
    assert_eq!(backend.hits(), 0);

    // Chunked (no Content-Length): refused when the limit is crossed.
    let head = "POST / HTTP/1.1\r\nHost: limits.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    let mut bytes = head.as_bytes().to_vec();
    for _ in 0..40 {
        let chunk = vec![b'y'; 64 * 1024];
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(&chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw_status(s.http(), &bytes).await, Some(413));
    // Still serving.
    assert_eq!(get(s.http(), "limits.test", "/").await.status, 200);
}

#[tokio::test]
async fn proxy_body_size_annotation_raises_the_limit() {
    let backend = EchoBackend::start([127, 0, 20, 2]).await;
    let s = setup(
        &backend,
        &[("nginx.ingress.kubernetes.io/proxy-body-size", "8m")],
    )
    .await;
    let big = request(
        s.http(),
        "POST",
        "limits.test",
        "/",
        &[],
        vec![b'x'; 5 << 20],
    )
    .await;
    assert_eq!(big.status, 200);
    assert_eq!(big.json()["body_bytes"], 5 << 20);
}

#[tokio::test]
async fn oversized_heads_get_431_and_414() {
    let backend = EchoBackend::start([127, 0, 20, 3]).await;
    let s = setup(&backend, &[]).await;
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: limits.test\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    assert_eq!(raw_status(s.http(), big_header.as_bytes()).await, Some(431));
    let long_target = format!(
        "GET /{} HTTP/1.1\r\nHost: limits.test\r\nConnection: close\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    assert_eq!(
        raw_status(s.http(), long_target.as_bytes()).await,
        Some(414)
    );
    // 64 KiB: still a too long target (414), not a too large head (431).
    let huge_target = format!(
        "GET /{} HTTP/1.1\r\nHost: limits.test\r\nConnection: close\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert_eq!(
        raw_status(s.http(), huge_target.as_bytes()).await,
        Some(414)
    );
    // Many header lines, each short, together over 32 KiB: 431.
    let many: String = (0..40)
        .map(|i| format!("X-H{i}: {}\r\n", "b".repeat(1000)))
        .collect();
    let many = format!("GET / HTTP/1.1\r\nHost: limits.test\r\n{many}Connection: close\r\n\r\n");
    assert_eq!(raw_status(s.http(), many.as_bytes()).await, Some(431));
    assert_eq!(backend.hits(), 0);
}

/// A chunk size that is not hex is the client's error: 400, never 499 (a
/// status only written to logs), and the connection closes.
#[tokio::test]
async fn a_malformed_chunk_answers_400() {
    let backend = EchoBackend::start([127, 0, 20, 6]).await;
    let s = setup(&backend, &[]).await;
    for body in ["zz\r\nhello\r\n0\r\n\r\n", "5\r\nhello!!!\r\n0\r\n\r\n"] {
        let request = format!(
            "POST / HTTP/1.1\r\nHost: limits.test\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        );
        let response = raw(s.http(), request.as_bytes()).await;
        assert_eq!(
            testkit::parse_status(&response),
            Some(400),
            "{body:?} -> {}",
            String::from_utf8_lossy(&response)
        );
    }
}

#[tokio::test]
async fn ambiguous_or_malformed_requests_are_refused() {
    let backend = EchoBackend::start([127, 0, 20, 4]).await;
    let s = setup(&backend, &[]).await;
    let cases: [(&str, u16); 7] = [
        // Request smuggling shapes.
        (
            "POST / HTTP/1.1\r\nHost: limits.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "POST / HTTP/1.1\r\nHost: limits.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            501,
        ),
        (
            "POST / HTTP/1.1\r\nHost: limits.test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
        ),
        // Host and path.
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (
            "GET /a/../../etc/passwd HTTP/1.1\r\nHost: limits.test\r\n\r\n",
            400,
        ),
        ("GET /%zz HTTP/1.1\r\nHost: limits.test\r\n\r\n", 400),
    ];
    for (bytes, want) in cases {
        let response = raw(s.http(), bytes.as_bytes()).await;
        let status = testkit::parse_status(&response);
        assert_eq!(
            status,
            Some(want),
            "{bytes:?} -> {}",
            String::from_utf8_lossy(&response)
        );
    }
    assert_eq!(backend.hits(), 0, "nothing malformed reached the upstream");
    assert_eq!(get(s.http(), "limits.test", "/").await.status, 200);
}

/// The classic CL.TE smuggling request: the body is read as chunked (the
/// Content-Length is dropped), the connection closes after the response,
/// and the smuggled request never reaches the upstream.
#[tokio::test]
async fn content_length_with_chunked_cannot_smuggle() {
    let backend = EchoBackend::start([127, 0, 20, 6]).await;
    let s = setup(&backend, &[]).await;
    let smuggle = "POST / HTTP/1.1\r\nHost: limits.test\r\nTransfer-Encoding: chunked\r\n\
                   Content-Length: 35\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = raw(s.http(), smuggle.as_bytes()).await;
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "one response, then close: {text}"
    );
    let seen = backend.requests();
    assert!(
        seen.iter().all(|r| !r.path.contains("smuggled")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .all(|r| r.header("content-length").is_none_or(|l| l == "0"))
    );
}

#[tokio::test]
async fn garbage_does_not_hurt_other_clients() {
    let backend = EchoBackend::start([127, 0, 20, 5]).await;
    let s = setup(&backend, &[]).await;
    let garbage: [&[u8]; 4] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: limits.test\r\nBad Header\r\n\r\n",
        b"\0\0\0\0\r\n\r\n",
    ];
    for bytes in garbage {
        let status = raw_status(s.http(), bytes).await;
        assert!(
            status.is_none_or(|s| (400..500).contains(&s)),
            "{bytes:?} -> {status:?}"
        );
    }
    assert_eq!(get(s.http(), "limits.test", "/").await.status, 200);
}
