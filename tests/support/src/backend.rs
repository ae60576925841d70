//! Upstream stand-ins: an HTTP/1.1 echo server, a server that never answers,
//! and a port that refuses connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Sleep;

/// Size of each body frame of a `bytes=N` response.
pub const BYTES_FRAME_SIZE: usize = 64 * 1024;

/// One request as the [`EchoBackend`] received it.
#[derive(Debug, Clone)]
pub struct SeenRequest {
    /// The request method, e.g. `GET`.
    pub method: String,
    /// The request target as received: path and query (`/a/b?x=1`).
    pub path: String,
    /// The request headers as received.
    pub headers: HeaderMap,
    /// The full request body.
    pub body: Bytes,
    /// The address of the client (the gateway's upstream socket).
    pub peer: SocketAddr,
}

impl SeenRequest {
    /// All values of header `name` joined with `", "`, or `None` if absent.
    pub fn header(&self, name: &str) -> Option<String> {
        joined_header(&self.headers, name)
    }
}

/// Joins all values of header `name` with `", "` (lossy UTF-8).
pub(crate) fn joined_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    if values.is_empty() {
        None
    } else {
        Some(values.join(", "))
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<SeenRequest>>,
    connections: AtomicUsize,
}

impl Shared {
    fn requests(&self) -> MutexGuard<'_, Vec<SeenRequest>> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// An HTTP/1.1 server answering every request with a JSON description of
/// what it received, and recording every request.
///
/// The response is `200` with header `x-backend: <ip:port>` and body
/// `{"backend","method","path","headers","body_bytes"}` (header names
/// lowercase, repeated values joined with `", "`). Query parameters switch
/// behaviour (they combine):
///
/// - `status=N`: answer with status `N` (200..=599, otherwise ignored);
/// - `delay_ms=N`: wait `N` ms (after reading the body) before the response head;
/// - `sse=N&interval_ms=M`: answer `text/event-stream` with `N` frames
///   `data: event i\n\n` (i from 0), `M` ms apart, each its own body frame;
/// - `bytes=N`: answer `N` bytes of `x`, streamed in 64 KiB frames, with a
///   `content-length`;
/// - `header=NAME:VALUE` (repeatable, no escaping): add this response header.
///
/// The server stops (listener and connections closed) when dropped.
pub struct EchoBackend {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl EchoBackend {
    /// Starts an echo backend on `ip` with a free port.
    ///
    /// Panics if binding fails.
    pub async fn start(ip: [u8; 4]) -> EchoBackend {
        EchoBackend::start_at(SocketAddr::from((ip, 0))).await
    }

    /// Starts an echo backend on exactly `addr` (port 0 picks a free port).
    ///
    /// Panics if binding fails.
    pub async fn start_at(addr: SocketAddr) -> EchoBackend {
        match EchoBackend::try_start_at(addr).await {
            Ok(backend) => backend,
            Err(error) => panic!("cannot start an echo backend on {addr}: {error}"),
        }
    }

    /// Starts an echo backend on exactly `addr`, returning bind errors.
    pub async fn try_start_at(addr: SocketAddr) -> std::io::Result<EchoBackend> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let task = tokio::spawn(accept_loop(listener, addr, Arc::clone(&shared)));
        Ok(EchoBackend { addr, shared, task })
    }

    /// Starts one echo backend per IP, all on the same (free) port, so that a
    /// single EndpointSlice port can address them all.
    ///
    /// Panics if no common free port is found after a few attempts.
    pub async fn start_group(ips: &[[u8; 4]]) -> Vec<EchoBackend> {
        let mut last_error = None;
        'attempt: for _ in 0..20 {
            let mut group: Vec<EchoBackend> = Vec::with_capacity(ips.len());
            for ip in ips {
                let port = group.first().map_or(0, |first| first.addr.port());
                match EchoBackend::try_start_at(SocketAddr::from((*ip, port))).await {
                    Ok(backend) => group.push(backend),
                    Err(error) => {
                        last_error = Some(error);
                        continue 'attempt;
                    }
                }
            }
            return group;
        }
        panic!("cannot start echo backends on a common port for {ips:?}: {last_error:?}");
    }

    /// The address the backend listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of every request received so far, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.requests().clone()
    }

    /// The most recent request, if any.
    pub fn last_request(&self) -> Option<SeenRequest> {
        self.shared.requests().last().cloned()
    }

    /// The number of requests received so far.
    pub fn hits(&self) -> usize {
        self.shared.requests().len()
    }

    /// The number of TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Forgets the recorded requests and resets the connection count.
    pub fn reset(&self) {
        self.shared.requests().clear();
        self.shared.connections.store(0, Ordering::SeqCst);
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for EchoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoBackend")
            .field("addr", &self.addr)
            .field("hits", &self.hits())
            .finish()
    }
}

/// Accepts connections until aborted; dropping it aborts every connection.
async fn accept_loop(listener: TcpListener, local: SocketAddr, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    connections.spawn(serve_connection(stream, peer, local, Arc::clone(&shared)));
                }
                // E.g. out of file descriptors: back off a little.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| handle(request, peer, local, Arc::clone(&shared)));
    // Connection errors (client went away, malformed input) just end it.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Value of query parameter `key` parsed as a number, if present and valid.
fn query_number(query: &str, key: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(name, _)| *name == key)
        .and_then(|(_, value)| value.parse().ok())
}

async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
    shared: Arc<Shared>,
) -> Result<Response<EchoBody>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.to_string(), |pq| pq.as_str().to_owned());
    let query = parts.uri.query().unwrap_or("");

    let mut headers_json = serde_json::Map::new();
    for name in parts.headers.keys() {
        if let Some(value) = joined_header(&parts.headers, name.as_str()) {
            headers_json.insert(name.as_str().to_owned(), value.into());
        }
    }
    let description = serde_json::json!({
        "backend": local.to_string(),
        "method": parts.method.as_str(),
        "path": path,
        "headers": headers_json,
        "body_bytes": body.len(),
    });
    shared.requests().push(SeenRequest {
        method: parts.method.to_string(),
        path,
        headers: parts.headers,
        body,
        peer,
    });

    if let Some(delay) = query_number(query, "delay_ms") {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = query_number(query, "status")
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .filter(|code| code.as_u16() >= 200)
        .unwrap_or(StatusCode::OK);

    let (content_type, body) = if let Some(events) = query_number(query, "sse") {
        let interval = Duration::from_millis(query_number(query, "interval_ms").unwrap_or(0));
        (
            "text/event-stream",
            EchoBody::Sse {
                next: 0,
                total: events,
                interval,
                sleep: None,
            },
        )
    } else if let Some(remaining) = query_number(query, "bytes") {
        (
            "application/octet-stream",
            EchoBody::Bytes {
                remaining,
                chunk: Bytes::from(vec![b'x'; BYTES_FRAME_SIZE]),
            },
        )
    } else {
        (
            "application/json",
            EchoBody::Full(Some(Bytes::from(description.to_string()))),
        )
    };
    let body = if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        EchoBody::Full(None)
    } else {
        body
    };

    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if content_type == "text/event-stream" {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    if let Ok(value) = HeaderValue::from_str(&local.to_string()) {
        headers.insert("x-backend", value);
    }
    let extra = query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("header="))
        .filter_map(|header| header.split_once(':'));
    for (name, value) in extra {
        if let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    Ok(response)
}

/// The echo server's response bodies; frames are produced on demand.
enum EchoBody {
    /// A single frame (or nothing).
    Full(Option<Bytes>),
    /// `remaining` bytes of `x`, at most 64 KiB per frame.
    Bytes { remaining: u64, chunk: Bytes },
    /// Server-sent events `next..total`, `interval` apart.
    Sse {
        next: u64,
        total: u64,
        interval: Duration,
        sleep: Option<Pin<Box<Sleep>>>,
    },
}

impl Body for EchoBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            EchoBody::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            EchoBody::Bytes { remaining, chunk } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                let len = usize::try_from(*remaining).map_or(chunk.len(), |r| r.min(chunk.len()));
                *remaining -= len as u64;
                Poll::Ready(Some(Ok(Frame::data(chunk.slice(..len)))))
            }
            EchoBody::Sse {
                next,
                total,
                interval,
                sleep,
            } => {
                if *next >= *total {
                    return Poll::Ready(None);
                }
                if let Some(timer) = sleep
                    && timer.as_mut().poll(cx).is_pending()
                {
                    return Poll::Pending;
                }
                let frame = Bytes::from(format!("data: event {next}\n\n"));
                *next += 1;
                *sleep = (*next < *total).then(|| Box::pin(tokio::time::sleep(*interval)));
                Poll::Ready(Some(Ok(Frame::data(frame))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            EchoBody::Full(data) => data.is_none(),
            EchoBody::Bytes { remaining, .. } => *remaining == 0,
            EchoBody::Sse { next, total, .. } => next >= total,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            EchoBody::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            EchoBody::Bytes { remaining, .. } => SizeHint::with_exact(*remaining),
            EchoBody::Sse { .. } => SizeHint::default(),
        }
    }
}

/// A server that accepts TCP connections and never answers: sockets stay
/// open (unread) until the backend is dropped. For timeout tests.
pub struct SilentBackend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SilentBackend {
    /// Starts a silent backend on `ip` with a free port.
    ///
    /// Panics if binding fails.
    pub async fn start(ip: [u8; 4]) -> SilentBackend {
        let bind = SocketAddr::from((ip, 0));
        let listener = match TcpListener::bind(bind).await {
            Ok(listener) => listener,
            Err(error) => panic!("cannot start a silent backend on {bind}: {error}"),
        };
        let addr = listener.local_addr().expect("listener address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            let mut open = Vec::new();
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        counter.fetch_add(1, Ordering::SeqCst);
                        open.push(stream);
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        SilentBackend {
            addr,
            connections,
            task,
        }
    }

    /// The address the backend listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The number of TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for SilentBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for SilentBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SilentBackend")
            .field("addr", &self.addr)
            .finish()
    }
}

/// An address on `ip` where nothing listens (connections are refused): binds
/// port 0, takes the address and closes the listener.
///
/// Panics if binding fails.
pub fn closed_port(ip: [u8; 4]) -> SocketAddr {
    let listener = std::net::TcpListener::bind((Ipv4Addr::from(ip), 0))
        .unwrap_or_else(|error| panic!("cannot bind {ip:?}: {error}"));
    listener.local_addr().expect("listener address")
}

/// What a [`ScriptedBackend`] does with each request it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Script {
    /// Never answers: the request waits until the gateway gives up on it.
    Silent,
    /// Answers a chunked `200` (`text/event-stream`) head and one chunk
    /// (`data: first\n\n`), then stalls mid-stream.
    StreamThenStall,
    /// Closes the connection without an answer: the request reached the
    /// upstream and was lost (a crash after receiving it).
    Hangup,
}

#[derive(Default)]
struct ScriptShared {
    requests: AtomicUsize,
    closed: Mutex<Vec<std::time::Instant>>,
}

/// A raw-TCP upstream that plays a [`Script`] for every request and records
/// when the gateway closes each connection after its request was read: for
/// cancellation, timeout and retry tests. Stops when dropped.
pub struct ScriptedBackend {
    addr: SocketAddr,
    shared: Arc<ScriptShared>,
    task: JoinHandle<()>,
}

impl ScriptedBackend {
    /// Starts a scripted backend on `ip` with a free port.
    ///
    /// Panics if binding fails.
    pub async fn start(ip: [u8; 4], script: Script) -> ScriptedBackend {
        let bind = SocketAddr::from((ip, 0));
        let listener = TcpListener::bind(bind)
            .await
            .unwrap_or_else(|error| panic!("cannot start a scripted backend on {bind}: {error}"));
        let addr = listener.local_addr().expect("listener address");
        let shared = Arc::new(ScriptShared::default());
        let state = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            connections.spawn(play(stream, script, Arc::clone(&state)));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        ScriptedBackend { addr, shared, task }
    }

    /// The address the backend listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests read so far (head and `content-length` body).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// When the gateway closed each connection whose request was read
    /// (not recorded for [`Script::Hangup`], which closes first).
    pub fn closed(&self) -> Vec<std::time::Instant> {
        self.shared
            .closed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for ScriptedBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for ScriptedBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedBackend")
            .field("addr", &self.addr)
            .field("requests", &self.requests())
            .finish()
    }
}

/// Reads one request, plays the script, then waits for the peer to close.
async fn play(mut stream: TcpStream, script: Script, shared: Arc<ScriptShared>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |received: &[u8]| {
        let end = received.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        (received.len() >= end + 4 + length).then_some(())
    };
    while complete(&received).is_none() {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    match script {
        Script::Silent => {}
        Script::StreamThenStall => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                        transfer-encoding: chunked\r\n\r\nd\r\ndata: first\n\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
        }
        Script::Hangup => return,
    }
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    shared
        .closed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(std::time::Instant::now());
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::client::{get, get_frames, raw_with_timeout, request, try_request};

    #[tokio::test]
    async fn echoes_the_request_and_records_it() {
        let backend = EchoBackend::start([127, 0, 0, 2]).await;
        assert_eq!(backend.addr().ip().to_string(), "127.0.0.2");
        let response = request(
            backend.addr(),
            "POST",
            "a.com",
            "/x/y?z=1&z=2",
            &[("x-multi", "one"), ("X-Multi", "two")],
            b"hello".to_vec(),
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("x-backend").as_deref(),
            Some(backend.addr().to_string().as_str())
        );
        let json = response.json();
        assert_eq!(json["backend"], backend.addr().to_string());
        assert_eq!(json["method"], "POST");
        assert_eq!(json["path"], "/x/y?z=1&z=2");
        assert_eq!(json["headers"]["host"], "a.com");
        assert_eq!(json["headers"]["x-multi"], "one, two");
        assert_eq!(json["body_bytes"], 5);

        assert_eq!(backend.hits(), 1);
        let seen = backend.last_request().expect("a recorded request");
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path, "/x/y?z=1&z=2");
        assert_eq!(seen.header("x-multi").as_deref(), Some("one, two"));
        assert_eq!(&seen.body[..], b"hello");
        assert_eq!(seen.peer.ip().to_string(), "127.0.0.1");
        assert_eq!(backend.connections(), 1);

        backend.reset();
        assert_eq!(backend.hits(), 0);
        assert!(backend.requests().is_empty());
    }

    #[tokio::test]
    async fn status_and_delay_switches() {
        let backend = EchoBackend::start([127, 0, 0, 1]).await;
        let response = get(backend.addr(), "a.com", "/?status=418").await;
        assert_eq!(response.status, 418);
        assert_eq!(response.json()["path"], "/?status=418");

        let response = get(backend.addr(), "a.com", "/?status=204").await;
        assert_eq!(response.status, 204);
        assert!(response.body.is_empty());

        let started = Instant::now();
        let response = get(backend.addr(), "a.com", "/slow?delay_ms=200").await;
        assert_eq!(response.status, 200);
        assert!(started.elapsed() >= Duration::from_millis(200));
        // The request is recorded before the delay.
        assert_eq!(backend.hits(), 3);
    }

    #[tokio::test]
    async fn bytes_switch_streams_64k_frames() {
        let backend = EchoBackend::start([127, 0, 0, 1]).await;
        let total = 3 * BYTES_FRAME_SIZE + 100;
        let response = get(backend.addr(), "a.com", &format!("/?bytes={total}")).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.body.len(), total);
        assert!(response.body.iter().all(|&b| b == b'x'));
        assert_eq!(response.header("content-length"), Some(total.to_string()));
        let (status, frames) = get_frames(backend.addr(), "a.com", "/?bytes=0").await;
        assert_eq!(status, 200);
        assert!(frames.iter().all(|(_, data)| data.is_empty()));
    }

    #[tokio::test]
    async fn sse_frames_are_spaced_in_time() {
        let backend = EchoBackend::start([127, 0, 0, 1]).await;
        let (status, frames) =
            get_frames(backend.addr(), "a.com", "/events?sse=3&interval_ms=150").await;
        assert_eq!(status, 200);
        let text: String = frames
            .iter()
            .map(|(_, data)| String::from_utf8_lossy(data).into_owned())
            .collect();
        assert_eq!(text, "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n");
        assert_eq!(frames.len(), 3, "one body frame per event: {frames:?}");
        assert!(frames[0].0 < Duration::from_millis(140), "{frames:?}");
        for pair in frames.windows(2) {
            assert!(
                pair[1].0 - pair[0].0 >= Duration::from_millis(100),
                "{frames:?}"
            );
        }
        let response = get(backend.addr(), "a.com", "/?sse=1").await;
        assert_eq!(
            response.header("content-type").as_deref(),
            Some("text/event-stream")
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn group_shares_a_port_and_drop_stops_the_server() {
        let group = EchoBackend::start_group(&[[127, 0, 0, 3], [127, 0, 0, 4]]).await;
        assert_eq!(group.len(), 2);
        assert_eq!(group[0].addr().port(), group[1].addr().port());
        assert_ne!(group[0].addr(), group[1].addr());
        for backend in &group {
            let response = get(backend.addr(), "a.com", "/").await;
            assert_eq!(response.json()["backend"], backend.addr().to_string());
        }
        let addr = group[0].addr();
        drop(group);
        crate::eventually(Duration::from_secs(5), || async move {
            match try_request(addr, "GET", "a.com", "/", &[], Vec::new()).await {
                Ok(response) => Err(format!("still answering: {}", response.status)),
                Err(_) => Ok(()),
            }
        })
        .await;
    }

    #[tokio::test]
    async fn closed_port_refuses_and_silent_backend_never_answers() {
        let refused = closed_port([127, 0, 0, 5]);
        let error = try_request(refused, "GET", "a.com", "/", &[], Vec::new())
            .await
            .expect_err("nothing listens");
        assert!(error.contains("connect"), "{error}");

        let silent = SilentBackend::start([127, 0, 0, 6]).await;
        let started = Instant::now();
        let received = raw_with_timeout(
            silent.addr(),
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
            Duration::from_millis(200),
        )
        .await;
        assert!(received.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert_eq!(silent.connections(), 1);
    }
}
