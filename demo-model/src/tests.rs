//! End-to-end tests: a real server on 127.0.0.1:0 and a hyper client.

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Request;
use http::header::CACHE_CONTROL;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::*;

/// A running server; aborted when dropped.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) replica: Arc<Replica>,
    pub(crate) task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Running {
    let model = ModelInfo {
        id: "demo \"m\"".to_owned(),
    };
    let server = ModelServer::bind(SocketAddr::from(([127, 0, 0, 1], 0)), model)
        .await
        .unwrap();
    running(server)
}

/// Runs a bound server in a task.
pub(crate) fn running(server: ModelServer) -> Running {
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let replica = server.replica.clone();
    let task = tokio::spawn(server.run());
    Running {
        addr,
        replica,
        task,
    }
}

/// One client connection. Its driver task runs until the connection ends
/// or `conn` is aborted, which hangs up.
pub(crate) struct Client {
    sender: SendRequest<Full<Bytes>>,
    pub(crate) conn: JoinHandle<()>,
}

impl Client {
    pub(crate) async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        Self { sender, conn }
    }

    pub(crate) async fn send(&mut self, req: Request<Full<Bytes>>) -> Response<Incoming> {
        self.sender.ready().await.unwrap();
        self.sender.send_request(req).await.unwrap()
    }
}

pub(crate) fn request(method: Method, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "model.test")
        .body(Full::new(body.into()))
        .unwrap()
}

/// Sends one request on a fresh connection.
pub(crate) async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Response<Incoming> {
    Client::connect(addr).await.send(req).await
}

pub(crate) async fn json_body(response: Response<Incoming>) -> Value {
    assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// Reads a whole event stream: each event with the time it arrived.
pub(crate) async fn read_events(body: &mut Incoming) -> Vec<(Instant, String)> {
    let mut events = Vec::new();
    let mut pending = String::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.unwrap().into_data() else {
            continue;
        };
        pending.push_str(std::str::from_utf8(&data).unwrap());
        while let Some(end) = pending.find("\n\n") {
            events.push((Instant::now(), pending[..end].to_owned()));
            pending.drain(..end + 2);
        }
    }
    assert_eq!(pending, "", "stream ended mid-event");
    events
}

fn replica_of<B>(response: &Response<B>) -> &str {
    response.headers()["x-model-replica"].to_str().unwrap()
}

#[tokio::test]
async fn health_names_model_and_replica() {
    let server = start().await;
    let addr = server.addr.to_string();

    for path in ["/health", "/api/v1/predict/1/health", "/x/health/?probe=1"] {
        let response = send(server.addr, request(Method::GET, path, "")).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(replica_of(&response), addr);
        assert_eq!(
            json_body(response).await,
            json!({"status": "ok", "model": "demo \"m\"", "replica": addr})
        );
    }

    let head = send(server.addr, request(Method::HEAD, "/v1/health", "")).await;
    assert_eq!(head.status(), 200);
    let body = head.into_body().collect().await.unwrap().to_bytes();
    assert!(body.is_empty());

    let post = send(server.addr, request(Method::POST, "/v1/health", "{}")).await;
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()[ALLOW], "GET, HEAD");
    assert_eq!(replica_of(&post), addr);
}

#[tokio::test]
async fn predict_answers_from_the_input() {
    let server = start().await;
    let addr = server.addr.to_string();
    let mut client = Client::connect(server.addr).await;

    let input = r#"{"inputs": [1, 2, 3.5]}"#;
    let response = client
        .send(request(Method::POST, "/api/v1/predict/1", input))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(replica_of(&response), addr);
    assert_eq!(
        json_body(response).await,
        json!({
            "model": "demo \"m\"",
            "replica": addr,
            "input_bytes": input.len(),
            "prediction": {"count": 3, "sum": 6.5, "mean": 6.5 / 3.0},
        })
    );

    // Same connection: keep-alive works.
    let response = client
        .send(request(
            Method::POST,
            "/v1/predict?x=1",
            r#"{"a": 1, "b": 2}"#,
        ))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await["prediction"], json!({"keys": 2}));
}

#[tokio::test]
async fn predict_rejects_bad_input_with_json_errors() {
    let server = start().await;
    let addr = server.addr.to_string();

    let response = send(
        server.addr,
        request(Method::POST, "/v1/predict", "{not json"),
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(replica_of(&response), addr);
    let error = json_body(response).await;
    let message = error["error"].as_str().unwrap();
    assert!(message.starts_with("invalid JSON: "), "{message}");

    let response = send(server.addr, request(Method::POST, "/v1/predict", "")).await;
    assert_eq!(response.status(), 400);

    let wrong = r#"{"inputs": [1, "two"]}"#;
    let response = send(server.addr, request(Method::POST, "/v1/predict", wrong)).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json_body(response).await,
        json!({"error": "\"inputs\" must be an array of numbers"})
    );
}

#[tokio::test]
async fn predict_refuses_bodies_over_one_mebibyte() {
    let server = start().await;
    let mut client = Client::connect(server.addr).await;

    let mut big = vec![b' '; (1 << 20) + 1];
    big[0] = b'1';
    let response = client.send(request(Method::POST, "/v1/predict", big)).await;
    assert_eq!(response.status(), 413);
    assert_eq!(replica_of(&response), server.addr.to_string());
    let error = json_body(response).await;
    assert!(error["error"].as_str().unwrap().contains("larger than"));

    // The body was drained, so the connection is still good.
    let response = client
        .send(request(Method::POST, "/v1/predict", "{}"))
        .await;
    assert_eq!(response.status(), 200);

    // Exactly 1 MiB is accepted.
    let mut limit = vec![b' '; 1 << 20];
    limit[0] = b'1';
    let response = client
        .send(request(Method::POST, "/v1/predict", limit))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(json_body(response).await["input_bytes"], 1 << 20);
}

#[tokio::test]
async fn stream_sends_each_event_as_it_is_made() {
    let server = start().await;
    let path = "/api/v1/predict/1/stream?tokens=5&interval_ms=50";
    let response = send(server.addr, request(Method::GET, path, "")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    assert_eq!(replica_of(&response), server.addr.to_string());

    let events = read_events(&mut response.into_body()).await;
    let texts: Vec<&str> = events.iter().map(|(_, text)| text.as_str()).collect();
    let mut expected: Vec<String> = (0..5)
        .map(|i| format!(r#"data: {{"model":"demo \"m\"","index":{i},"token":"tok{i}"}}"#))
        .collect();
    expected.push("data: [DONE]".to_owned());
    assert_eq!(texts, expected);

    // Four 50 ms gaps between the first token and the last: had the body
    // been buffered, all events would arrive together.
    let spread = events[4].0 - events[0].0;
    assert!(spread >= Duration::from_millis(150), "{spread:?}");
}

#[tokio::test]
async fn stream_waits_for_the_first_token_and_accepts_post() {
    let server = start().await;
    let sent = Instant::now();
    let path = "/v1/stream?tokens=2&interval_ms=0&ttft_ms=100";
    let response = send(server.addr, request(Method::POST, path, "{}")).await;
    assert_eq!(response.status(), 200);
    let events = read_events(&mut response.into_body()).await;
    assert_eq!(events.len(), 3);
    assert!(events[0].0 - sent >= Duration::from_millis(100));

    let response = send(server.addr, request(Method::GET, "/stream?tokens=0", "")).await;
    let events = read_events(&mut response.into_body()).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, "data: [DONE]");
}

#[tokio::test]
async fn stream_defaults_to_ten_tokens() {
    let server = start().await;
    let path = "/v1/stream?interval_ms=0";
    let response = send(server.addr, request(Method::GET, path, "")).await;
    let events = read_events(&mut response.into_body()).await;
    assert_eq!(events.len(), 11);
}

#[tokio::test]
async fn stream_rejects_bad_pacing() {
    let server = start().await;
    for query in ["tokens=10001", "interval_ms=x", "ttft_ms=60001"] {
        let path = format!("/v1/stream?{query}");
        let response = send(server.addr, request(Method::GET, &path, "")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert_eq!(replica_of(&response), server.addr.to_string());
        let error = json_body(response).await;
        assert!(error["error"].as_str().unwrap().contains("query parameter"));
    }
}

#[tokio::test]
async fn stream_stops_when_the_client_goes_away() {
    let server = start().await;
    let mut client = Client::connect(server.addr).await;
    let path = "/v1/stream?tokens=10000&interval_ms=1000";
    let response = client.send(request(Method::GET, path, "")).await;
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    assert_eq!(server.replica.open_streams.load(Ordering::Relaxed), 1);

    // Hang up between two events.
    client.conn.abort();
    drop(body);
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.replica.open_streams.load(Ordering::Relaxed) != 0 {
        assert!(Instant::now() < deadline, "generation did not stop");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn stopping_the_server_closes_its_connections() {
    let server = start().await;
    let path = "/v1/stream?tokens=10000&interval_ms=1000";
    let response = send(server.addr, request(Method::GET, path, "")).await;
    let mut body = response.into_body();
    assert!(body.frame().await.unwrap().is_ok());

    server.task.abort();
    let next = tokio::time::timeout(Duration::from_secs(2), body.frame())
        .await
        .expect("the connection should close with the server");
    assert!(!matches!(next, Some(Ok(_))), "no more events");
    assert_eq!(server.replica.open_streams.load(Ordering::Relaxed), 0);
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let server = start().await;
    let addr = server.addr.to_string();
    for (method, path) in [
        (Method::GET, "/"),
        (Method::GET, "/v1/models"),
        (Method::PUT, "/v1/anything"),
    ] {
        let response = send(server.addr, request(method, path, "")).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(replica_of(&response), addr);
        assert_eq!(json_body(response).await, json!({"error": "not found"}));
    }
    for (method, path, allow) in [
        (Method::GET, "/api/v1/predict", "POST"),
        (Method::DELETE, "/v1/stream", "GET, POST"),
        (Method::PUT, "/v1/health", "GET, HEAD"),
    ] {
        let response = send(server.addr, request(method, path, "")).await;
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()[ALLOW], allow);
        assert_eq!(replica_of(&response), addr);
        assert_eq!(json_body(response).await["error"], "method not allowed");
    }
}
