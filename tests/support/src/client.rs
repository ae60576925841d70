//! HTTP/1.1 client helpers over plain TCP: whole responses, timed body
//! frames, a keep-alive [`Client`], and raw bytes for malformed requests.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Overall timeout of every helper here except [`raw`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`raw`] waits for the server to close the connection.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(5);

/// A complete HTTP response.
#[derive(Debug, Clone)]
pub struct TestResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The full response body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body parsed as JSON; panics (showing the body) if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "response body is not JSON ({error}); status {}, body: {}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// All values of header `name` joined with `", "`, or `None` if absent.
    pub fn header(&self, name: &str) -> Option<String> {
        crate::backend::joined_header(&self.headers, name)
    }
}

/// Aborts the connection task (closing the socket) when dropped.
struct ConnectionTask(JoinHandle<()>);

impl Drop for ConnectionTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Opens a TCP connection and performs the HTTP/1.1 client handshake.
async fn connect(addr: SocketAddr) -> Result<(SendRequest<Full<Bytes>>, ConnectionTask), String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|error| format!("connect to {addr}: {error}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("handshake with {addr}: {error}"))?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok((sender, ConnectionTask(task)))
}

/// Builds a request; `host` becomes the `Host` header unless empty or
/// `headers` already has one.
fn build_request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<Request<Full<Bytes>>, String> {
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|error| format!("method {method:?}: {error}"))?;
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| format!("request {path:?}: {error}"))?;
    let map = request.headers_mut();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|error| format!("header name {name:?}: {error}"))?;
        let value = HeaderValue::from_str(value)
            .map_err(|error| format!("header value {value:?}: {error}"))?;
        map.append(name, value);
    }
    if !host.is_empty() && !map.contains_key(header::HOST) {
        let value =
            HeaderValue::from_str(host).map_err(|error| format!("host {host:?}: {error}"))?;
        map.insert(header::HOST, value);
    }
    Ok(request)
}

/// Sends `request` on `sender` and returns the response head.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<http::Response<Incoming>, String> {
    sender
        .ready()
        .await
        .map_err(|error| format!("connection not ready: {error}"))?;
    sender
        .send_request(request)
        .await
        .map_err(|error| format!("send request: {error}"))
}

/// Reads the whole response.
async fn collect(response: http::Response<Incoming>) -> Result<TestResponse, String> {
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|error| format!("read response body (status {}): {error}", parts.status))?
        .to_bytes();
    Ok(TestResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    })
}

/// Runs `future` with [`REQUEST_TIMEOUT`].
async fn with_timeout<T>(
    what: &str,
    future: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(REQUEST_TIMEOUT, future)
        .await
        .unwrap_or_else(|_| Err(format!("{what}: timed out after {REQUEST_TIMEOUT:?}")))
}

/// `GET path` with `Host: host` on a new connection to `addr`.
///
/// Panics on connection errors or after [`REQUEST_TIMEOUT`].
pub async fn get(addr: SocketAddr, host: &str, path: &str) -> TestResponse {
    request(addr, "GET", host, path, &[], Vec::new()).await
}

/// Sends one request on a new connection to `addr` and reads the whole
/// response. `host` becomes the `Host` header unless empty or given in
/// `headers`.
///
/// Panics on connection errors or after [`REQUEST_TIMEOUT`].
pub async fn request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> TestResponse {
    try_request(addr, method, host, path, headers, body)
        .await
        .unwrap_or_else(|error| panic!("{method} http://{host}{path} via {addr}: {error}"))
}

/// Like [`request`] but returns errors (refused, reset, timeout...) instead
/// of panicking.
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<TestResponse, String> {
    let request = build_request(method, host, path, headers, body)?;
    with_timeout("request", async move {
        let (mut sender, _connection) = connect(addr).await?;
        let response = send(&mut sender, request).await?;
        collect(response).await
    })
    .await
}

/// `GET path` and the arrival time of each body data frame, measured from
/// just before the request is sent. Returns the status and the frames.
///
/// Panics on connection errors or after [`REQUEST_TIMEOUT`].
pub async fn get_frames(addr: SocketAddr, host: &str, path: &str) -> (u16, Vec<(Duration, Bytes)>) {
    try_get_frames(addr, host, path)
        .await
        .unwrap_or_else(|error| panic!("GET http://{host}{path} via {addr}: {error}"))
}

/// Like [`get_frames`] but returns errors instead of panicking.
pub async fn try_get_frames(
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> Result<(u16, Vec<(Duration, Bytes)>), String> {
    let request = build_request("GET", host, path, &[], Vec::new())?;
    with_timeout("streaming request", async move {
        let (mut sender, _connection) = connect(addr).await?;
        sender
            .ready()
            .await
            .map_err(|error| format!("connection not ready: {error}"))?;
        let start = Instant::now();
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("send request: {error}"))?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut frames = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| format!("read body frame: {error}"))?;
            if let Ok(data) = frame.into_data() {
                frames.push((start.elapsed(), data));
            }
        }
        Ok((status, frames))
    })
    .await
}

/// One HTTP/1.1 keep-alive connection reused for several requests.
///
/// The connection closes when the client is dropped.
pub struct Client {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
    _connection: ConnectionTask,
}

impl Client {
    /// Connects to `addr`.
    ///
    /// Panics if the connection fails or after [`REQUEST_TIMEOUT`].
    pub async fn connect(addr: SocketAddr) -> Client {
        let (sender, connection) = with_timeout("connect", connect(addr))
            .await
            .unwrap_or_else(|error| panic!("{error}"));
        Client {
            addr,
            sender,
            _connection: connection,
        }
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the server (or an error) closed the connection.
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// `GET path` with `Host: host` on this connection.
    ///
    /// Panics on errors or after [`REQUEST_TIMEOUT`].
    pub async fn get(&mut self, host: &str, path: &str) -> TestResponse {
        self.request("GET", host, path, &[], Vec::new()).await
    }

    /// Sends one request on this connection and reads the whole response
    /// (same conventions as the free function [`request`]).
    ///
    /// Panics on errors or after [`REQUEST_TIMEOUT`].
    pub async fn request(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> TestResponse {
        let addr = self.addr;
        self.try_request(method, host, path, headers, body)
            .await
            .unwrap_or_else(|error| panic!("{method} http://{host}{path} via {addr}: {error}"))
    }

    /// Like [`Client::request`] but returns errors instead of panicking.
    pub async fn try_request(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<TestResponse, String> {
        let request = build_request(method, host, path, headers, body)?;
        let sender = &mut self.sender;
        with_timeout("request", async move {
            let response = send(sender, request).await?;
            collect(response).await
        })
        .await
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("addr", &self.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Writes `bytes` to a new connection to `addr` and returns everything read
/// until the server closes the connection (or resets it) or [`RAW_TIMEOUT`]
/// passes. Send `Connection: close` to avoid waiting on a keep-alive server.
///
/// Panics if the connection cannot be opened.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    raw_with_timeout(addr, bytes, RAW_TIMEOUT).await
}

/// Like [`raw`] with a custom read deadline.
pub async fn raw_with_timeout(addr: SocketAddr, bytes: &[u8], timeout: Duration) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => panic!("connect to {addr}: {error}"),
        Err(_) => panic!("connect to {addr}: timed out after {timeout:?}"),
    };
    // The server may answer and close before reading everything: ignore
    // write errors and read what it sent.
    let _ = tokio::time::timeout_at(deadline, stream.write_all(bytes)).await;
    let mut received = Vec::new();
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
    received
}

/// [`raw`], then the status code of the first status line, if any.
pub async fn raw_status(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    parse_status(&raw(addr, bytes).await)
}

/// The status code of the first line of a raw response
/// (`HTTP/1.1 400 Bad Request` → `Some(400)`).
pub fn parse_status(response: &[u8]) -> Option<u16> {
    let end = response
        .iter()
        .position(|&byte| byte == b'\n')
        .unwrap_or(response.len());
    let line = std::str::from_utf8(&response[..end]).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::EchoBackend;

    #[test]
    fn parses_status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 400 Bad Request\r\n\r\n"), Some(400));
        assert_eq!(parse_status(b"HTTP/1.0 200 OK\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.1 431"), Some(431));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"garbage 200\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2000 Nope\r\n"), None);
    }

    #[tokio::test]
    async fn raw_reads_until_close() {
        let backend = EchoBackend::start([127, 0, 0, 1]).await;
        let started = Instant::now();
        let response = raw(
            backend.addr(),
            b"GET /raw?q=1 HTTP/1.1\r\nHost: a.com\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            started.elapsed() < RAW_TIMEOUT,
            "the server closed the connection"
        );
        assert_eq!(parse_status(&response), Some(200));
        let text = String::from_utf8_lossy(&response);
        assert!(text.contains("\"path\":\"/raw?q=1\""), "{text}");
        assert_eq!(backend.hits(), 1);
    }

    #[tokio::test]
    async fn raw_status_of_a_malformed_request() {
        let backend = EchoBackend::start([127, 0, 0, 1]).await;
        let status = raw_status(backend.addr(), b"NOT HTTP AT ALL\r\n\r\n").await;
        assert_eq!(status, Some(400));
        assert_eq!(backend.hits(), 0);
    }

    #[tokio::test]
    async fn client_reuses_one_connection() {
        let backend = EchoBackend::start([127, 0, 0, 1]).await;
        let mut client = Client::connect(backend.addr()).await;
        for i in 0..3 {
            let response = client.get("a.com", &format!("/{i}")).await;
            assert_eq!(response.status, 200);
            assert_eq!(response.json()["path"], format!("/{i}"));
        }
        assert_eq!(backend.hits(), 3);
        assert_eq!(backend.connections(), 1);
        assert!(!client.is_closed());
    }

    #[tokio::test]
    async fn host_header_defaults_and_overrides() {
        let backend = EchoBackend::start([127, 0, 0, 1]).await;
        let response = request(
            backend.addr(),
            "GET",
            "a.com",
            "/",
            &[("host", "b.com")],
            Vec::new(),
        )
        .await;
        assert_eq!(response.json()["headers"]["host"], "b.com");
    }
}
