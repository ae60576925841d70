//! Body-based model routing through the real binary: with
//! `edge-gateway.io/model-from-body`, a JSON body's top-level `model` goes
//! into a header before the canary decision, so a `canary-by-header` rule
//! on that header sends one model to its own Service; the backend gets the
//! body byte for byte, also when it is longer than the peek window.

use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, raw, request};

use crate::{Setup, answered_by, service_for};

const HOST: &str = "models.test";
const JSON: (&str, &str) = ("content-type", "application/json");

/// Services `main` and `next`, a main Ingress reading the model from at
/// most 1 KiB of the body into `X-Model`, and a canary Ingress sending
/// `X-Model: llama-70b` to `next`.
async fn setup() -> (Setup, EchoBackend, EchoBackend) {
    let main = EchoBackend::start([127, 0, 171, 1]).await;
    let next = EchoBackend::start([127, 0, 171, 2]).await;
    let mut docs = service_for("models", "main", &[&main]);
    docs.extend(service_for("models", "next", &[&next]));
    docs.push(
        IngressBuilder::new("models", "chat")
            .class("nginx")
            .annotation("edge-gateway.io/model-from-body", "X-Model")
            .annotation("edge-gateway.io/model-body-peek", "1Ki")
            .annotation("nginx.ingress.kubernetes.io/proxy-body-size", "8m")
            .host(HOST)
            .path("/", "Prefix", "main", 80)
            .build(),
    );
    docs.push(
        IngressBuilder::new("models", "chat-70b")
            .class("nginx")
            .annotation("nginx.ingress.kubernetes.io/canary", "true")
            .annotation("nginx.ingress.kubernetes.io/canary-by-header", "X-Model")
            .annotation(
                "nginx.ingress.kubernetes.io/canary-by-header-value",
                "llama-70b",
            )
            .host(HOST)
            .path("/", "Prefix", "next", 80)
            .build(),
    );
    (Setup::start(&docs).await, main, next)
}

/// POSTs `body` with `headers`; returns who answered (`"main"` or
/// `"next"`) and the request that backend saw.
async fn post(
    s: &Setup,
    (main, next): (&EchoBackend, &EchoBackend),
    headers: &[(&str, &str)],
    body: &[u8],
) -> (&'static str, testkit::SeenRequest) {
    let response = request(s.http(), "POST", HOST, "/v1/chat", headers, body.to_vec()).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(body));
    let (who, backend) = if answered_by(&response) == main.addr().to_string() {
        ("main", main)
    } else {
        ("next", next)
    };
    let seen = backend.last_request().expect("the backend saw the request");
    (who, seen)
}

#[tokio::test]
async fn model_in_the_body_picks_the_canary() {
    let (s, main, next) = setup().await;
    let backends = (&main, &next);

    let body = br#"{"model":"llama-70b","messages":[{"role":"user","content":"hi"}]}"#;
    let (who, seen) = post(&s, backends, &[JSON], body).await;
    assert_eq!(who, "next");
    assert_eq!(seen.body.as_ref(), body);
    assert_eq!(seen.header("x-model").as_deref(), Some("llama-70b"));

    // Another model, a nested `model`, or none: the main Service.
    let body = br#"{"messages":[],"model":"llama-8b"}"#;
    let (who, seen) = post(&s, backends, &[JSON], body).await;
    assert_eq!(who, "main");
    assert_eq!(seen.body.as_ref(), body);
    assert_eq!(seen.header("x-model").as_deref(), Some("llama-8b"));
    let body = br#"{"options":{"model":"llama-70b"}}"#;
    assert_eq!(post(&s, backends, &[JSON], body).await.0, "main");

    // `+json` types count; the charset parameter is ignored.
    let types = [("content-type", "application/vnd.chat+json; charset=utf-8")];
    let body = br#"{ "model" : "llama-70b" }"#;
    assert_eq!(post(&s, backends, &types, body).await.0, "next");
}

#[tokio::test]
async fn the_body_decides_not_the_client_header() {
    let (s, main, next) = setup().await;
    let backends = (&main, &next);
    let spoof = ("x-model", "llama-70b");

    // A JSON body's model replaces the client's header...
    let body = br#"{"model":"llama-8b"}"#;
    let (who, seen) = post(&s, backends, &[JSON, spoof], body).await;
    assert_eq!(who, "main");
    assert_eq!(seen.header("x-model").as_deref(), Some("llama-8b"));
    // ...and a JSON body without one removes it.
    let (who, seen) = post(&s, backends, &[JSON, spoof], br#"{"prompt":"x"}"#).await;
    assert_eq!(who, "main");
    assert_eq!(seen.header("x-model"), None);
    let (who, seen) = post(&s, backends, &[JSON, spoof], b"{not json").await;
    assert_eq!(who, "main");
    assert_eq!(seen.header("x-model"), None);

    // Other requests are untouched: the client's header routes them, as
    // any canary-by-header, and a non-JSON body is not read.
    let response = request(s.http(), "GET", HOST, "/v1/models", &[spoof], Vec::new()).await;
    assert_eq!(answered_by(&response), next.addr().to_string());
    let text = [("content-type", "text/plain")];
    let (who, seen) = post(&s, backends, &text, br#"{"model":"llama-70b"}"#).await;
    assert_eq!(who, "main");
    assert_eq!(seen.header("x-model"), None);
}

#[tokio::test]
async fn bodies_longer_than_the_window_pass_unchanged() {
    let (s, main, next) = setup().await;
    let backends = (&main, &next);

    // The model within the first KiB of a 3 MiB body: found, and the
    // whole body arrives byte for byte with its Content-Length.
    let mut body = br#"{"model":"llama-70b","prompt":""#.to_vec();
    body.extend((0..3 << 20).map(|i| b'a' + (i % 26) as u8));
    body.extend_from_slice(br#""}"#);
    let (who, seen) = post(&s, backends, &[JSON], &body).await;
    assert_eq!(who, "next");
    assert_eq!(seen.body.len(), body.len());
    assert!(seen.body.as_ref() == body.as_slice());
    assert_eq!(seen.header("content-length"), Some(body.len().to_string()));

    // The model after the window: not found.
    let late = format!(r#"{{"prompt":"{}","model":"llama-70b"}}"#, "x".repeat(2000));
    let (who, seen) = post(&s, backends, &[JSON], late.as_bytes()).await;
    assert_eq!(who, "main");
    assert_eq!(seen.body.as_ref(), late.as_bytes());
    assert_eq!(seen.header("x-model"), None);

    // A chunked body with the model split across chunks, and trailers.
    let chunks = ["{\"mo", "del\":\"llama", "-70b\",\"n\":1}"];
    let mut wire = format!(
        "POST /v1/chat HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in chunks {
        wire.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    wire.push_str("0\r\n\r\n");
    let response = raw(s.http(), wire.as_bytes()).await;
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let seen = next
        .last_request()
        .expect("the canary saw the chunked request");
    assert_eq!(seen.body.as_ref(), chunks.concat().as_bytes());
    assert_eq!(seen.header("x-model").as_deref(), Some("llama-70b"));
}

/// The body is read for its model only after the route's checks: a
/// request refused by basic auth gets its 401 while its body is still
/// unsent, and no backend sees it.
#[tokio::test]
async fn a_refused_request_is_answered_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let main = EchoBackend::start([127, 0, 171, 3]).await;
    let mut docs = service_for("models", "main", &[&main]);
    docs.push(
        serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"namespace": "models", "name": "users"},
            "stringData": {"auth": "alice:{PLAIN}secret\n"},
        })
        .to_string(),
    );
    docs.push(
        IngressBuilder::new("models", "chat")
            .class("nginx")
            .annotation("edge-gateway.io/model-from-body", "X-Model")
            .annotation("nginx.ingress.kubernetes.io/auth-type", "basic")
            .annotation("nginx.ingress.kubernetes.io/auth-secret", "users")
            .host(HOST)
            .path("/", "Prefix", "main", 80)
            .build(),
    );
    let s = Setup::start(&docs).await;
    let mut stream = tokio::net::TcpStream::connect(s.http()).await.unwrap();
    let head = format!(
        "POST /v1/chat HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n\
         Content-Length: 20\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // No body byte is sent: reading the body would wait for
    // client-body-timeout (60 s); the refusal must come first.
    let mut received = Vec::new();
    let answered = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buffer = [0u8; 4096];
        while !received.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "no answer while the body was withheld");
    assert_eq!(testkit::parse_status(&received), Some(401));
    assert_eq!(main.hits(), 0);
}
