//! Connections to upstream endpoints: connecting with a timeout (TCP, then
//! TLS for `HTTPS`/`GRPCS`), and a small per-endpoint pool per protocol:
//! idle HTTP/1.1 connections, and one shared HTTP/2 connection.
//!
//! The pool holds hyper `SendRequest` handles directly rather than going
//! through hyper-util's legacy `Client`: that client spends a boxed future,
//! a spawned task and a keyed hash per request (see
//! `shared/reference/performance-facts.md`), while an endpoint already is
//! the pool key here.
//!
//! An HTTP/1.1 connection has no task of its own either: its I/O half
//! ([`Driver`]) is polled by the task using the connection, while that
//! task waits for the response head and while it streams the response
//! body, as nginx's worker handles both sides of a request in one event
//! loop. Each request then crosses no channel to another task and back,
//! and wakes no second task. A connection answering `101 Switching
//! Protocols` gets a task again ([`Conn::detach`]), which hands its socket
//! over to the tunnel. An HTTP/2 connection, shared by concurrent
//! requests, runs on its own task. Idle connections are looked at now and
//! then by the `pool_reaper` task, which closes those past
//! `upstream-keepalive-timeout` and those the upstream closed.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1, http2};
use hyper::rt::{Read, Write};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use crate::request_body::RequestBody;
use crate::upstream_tls::UpstreamTls;

/// How upstream keep-alive connections are reused (ingress-nginx's
/// `upstream-keepalive-*` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// Idle connections kept per endpoint (`upstream-keepalive-connections`, 320).
    pub max_idle: usize,
    /// How long an idle connection may wait for reuse (`upstream-keepalive-timeout`, 60 s).
    pub idle_timeout: Duration,
    /// Requests one connection may carry (`upstream-keepalive-requests`, 10000).
    pub max_requests: u32,
    /// How long one connection may be used at all (`upstream-keepalive-time`, 1 h).
    pub max_lifetime: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_idle: 320,
            idle_timeout: Duration::from_secs(60),
            max_requests: 10_000,
            max_lifetime: Duration::from_secs(3600),
        }
    }
}

/// Why a connection to an endpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connect (and TLS handshake) did not finish within
    /// `proxy-connect-timeout`.
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// The TCP connect failed (refused, unreachable, reset).
    #[error("connect failed: {0}")]
    Io(#[source] std::io::Error),
    /// The TLS handshake failed (a certificate that did not verify, a
    /// protocol mismatch).
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    /// The HTTP handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
}

/// How one request reaches an endpoint: the HTTP version and the TLS
/// settings, if any. Connections are pooled per wire.
#[derive(Clone, Debug)]
pub(crate) struct Wire {
    /// HTTP/2 (gRPC) rather than HTTP/1.1.
    pub(crate) http2: bool,
    /// TLS to the endpoint.
    pub(crate) tls: Option<Arc<UpstreamTls>>,
}

impl Wire {
    fn key(&self) -> WireKey {
        WireKey {
            http2: self.http2,
            tls: self.tls.as_ref().map(|t| t.id()),
        }
    }
}

/// What pooled connections are matched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct WireKey {
    http2: bool,
    tls: Option<u64>,
}

/// The request half of an upstream connection.
#[derive(Debug)]
pub(crate) enum Sender {
    /// One request at a time, over a connection driven by its user.
    Http1 {
        sender: http1::SendRequest<RequestBody>,
        driver: Driver,
    },
    /// Multiplexed; clones share the connection.
    Http2(http2::SendRequest<RequestBody>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Self::Http1 { sender, driver } => !driver.is_alive() || sender.is_closed(),
            Self::Http2(sender) => sender.is_closed(),
        }
    }
}

/// hyper's state machine of one HTTP/1.1 connection (reading responses,
/// writing requests and their bodies), polled by whichever task uses the
/// connection. Dropping it closes the connection.
pub(crate) struct Driver {
    io: Option<Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("addr", &self.addr)
            .field("alive", &self.is_alive())
            .finish()
    }
}

impl Driver {
    fn new(io: impl Future<Output = hyper::Result<()>> + Send + 'static, addr: SocketAddr) -> Self {
        Self {
            io: Some(Box::pin(io)),
            addr,
        }
    }

    /// Whether the connection has not ended.
    fn is_alive(&self) -> bool {
        self.io.is_some()
    }

    /// Moves the connection's I/O along for the task of `cx`; false once
    /// the connection has ended. An ended connection is dropped at once,
    /// which fails whatever still waited on it (or gives back a request it
    /// never took).
    pub(crate) fn poll_io(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(io) = &mut self.io else {
            return false;
        };
        let Poll::Ready(ended) = io.as_mut().poll(cx) else {
            return true;
        };
        if let Err(error) = ended {
            tracing::debug!(addr = %self.addr, %error, "upstream connection ended with an error");
        }
        self.io = None;
        false
    }

    /// Polls `waiting`, something only this connection completes (a
    /// response head, a body frame), and the connection's I/O when that
    /// is not ready yet.
    pub(crate) fn poll_for<T>(
        &mut self,
        mut waiting: impl FnMut(&mut Context<'_>) -> Poll<T>,
        cx: &mut Context<'_>,
    ) -> Poll<T> {
        if self.is_alive()
            && let Poll::Ready(value) = waiting(&mut Context::from_waker(Waker::noop()))
        {
            return Poll::Ready(value);
        }
        self.poll_io_then(waiting, cx)
    }

    /// Polls the connection's I/O, then `waiting`, something only this
    /// connection completes. The I/O holds the task's waker, so `waiting`
    /// is polled without it while the connection lives: the connection
    /// handing it its value wakes no one, and the task is not polled again
    /// for what it already has.
    fn poll_io_then<T>(
        &mut self,
        waiting: impl FnOnce(&mut Context<'_>) -> Poll<T>,
        cx: &mut Context<'_>,
    ) -> Poll<T> {
        if self.poll_io(cx) {
            waiting(&mut Context::from_waker(Waker::noop()))
        } else {
            waiting(cx)
        }
    }

    /// Gives the connection a task of its own.
    fn spawn(&mut self) {
        let (Some(io), addr) = (self.io.take(), self.addr) else {
            return;
        };
        tokio::spawn(async move {
            if let Err(error) = io.await {
                tracing::debug!(%addr, %error, "upstream connection ended with an error");
            }
        });
    }
}

/// A connection to one endpoint, ready to carry a request.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) sender: Sender,
    key: WireKey,
    created: Instant,
    served: u32,
    /// Whether the connection carried a request before this one; a reused
    /// connection may have been closed by the upstream while idle.
    pub(crate) reused: bool,
}

impl Conn {
    /// Sends `req` and waits for the response head; gives the request
    /// back if the connection was closed before any of it was written.
    /// The request is handed over at once, so the future holds only the
    /// wait for the response.
    pub(crate) fn send(
        &mut self,
        req: Request<RequestBody>,
    ) -> impl Future<Output = Result<Response<Incoming>, TrySendError<Request<RequestBody>>>> + '_
    {
        let sending = match &mut self.sender {
            Sender::Http1 { sender, driver } => {
                Sending::Http1(sender.try_send_request(req), driver)
            }
            Sender::Http2(sender) => Sending::Http2(sender.try_send_request(req)),
        };
        async move {
            match sending {
                Sending::Http1(response, driver) => {
                    let mut response = pin!(response);
                    poll_fn(|cx| driver.poll_io_then(|cx| response.as_mut().poll(cx), cx)).await
                }
                Sending::Http2(response) => response.await,
            }
        }
    }

    /// The I/O half of an HTTP/1.1 connection, for its response body to
    /// drive while it streams.
    pub(crate) fn driver(&mut self) -> Option<&mut Driver> {
        match &mut self.sender {
            Sender::Http1 { driver, .. } => Some(driver),
            Sender::Http2(_) => None,
        }
    }

    /// Gives an HTTP/1.1 connection a task of its own, for the upgrade of
    /// a `101 Switching Protocols` response, which takes its socket once
    /// hyper has read the response: no body will drive it.
    pub(crate) fn detach(&mut self) {
        if let Some(driver) = self.driver() {
            driver.spawn();
        }
    }
}

/// A request handed to its connection, waiting for the response head.
enum Sending<'c, H1, H2> {
    /// With the connection to drive meanwhile.
    Http1(H1, &'c mut Driver),
    Http2(H2),
}

#[derive(Debug)]
struct IdleConn {
    conn: Conn,
    /// When `upstream-keepalive-timeout` (as of its check-in, as nginx sets
    /// the timer of a connection it caches) runs out.
    expires: Instant,
}

impl IdleConn {
    /// Whether the connection may still wait for reuse at `now`: not past
    /// its keep-alive time, not closed, and (HTTP/1.1) its I/O, moved
    /// along without a waker, finds the upstream has not closed it.
    fn keep(&mut self, now: Instant) -> bool {
        if now >= self.expires {
            return false;
        }
        if let Sender::Http1 { driver, .. } = &mut self.conn.sender {
            driver.poll_io(&mut Context::from_waker(Waker::noop()));
        }
        !self.conn.sender.is_closed()
    }
}

/// An HTTP/2 connection every request to the endpoint on its wire shares.
#[derive(Debug)]
struct SharedConn {
    sender: http2::SendRequest<RequestBody>,
    key: WireKey,
    created: Instant,
}

/// Idle HTTP/1.1 connections to one endpoint, most recently used last,
/// and its shared HTTP/2 connections, one per wire.
#[derive(Debug, Default)]
pub(crate) struct ConnPool {
    idle: Mutex<Vec<IdleConn>>,
    shared: Mutex<Vec<SharedConn>>,
}

impl ConnPool {
    /// Takes the most recently used idle connection on `wire` that is
    /// still usable, or a handle on the shared HTTP/2 connection.
    pub(crate) fn checkout(&self, wire: &Wire, settings: &PoolSettings) -> Option<Conn> {
        let key = wire.key();
        let now = Instant::now();
        if key.http2 {
            let mut shared = lock(&self.shared);
            let at = shared.iter().position(|c| c.key == key)?;
            let entry = &shared[at];
            if entry.sender.is_closed()
                || now.saturating_duration_since(entry.created) >= settings.max_lifetime
            {
                shared.swap_remove(at);
                return None;
            }
            return Some(Conn {
                sender: Sender::Http2(entry.sender.clone()),
                key,
                created: entry.created,
                served: 0,
                reused: true,
            });
        }
        loop {
            let IdleConn { mut conn, expires } = {
                let mut idle = lock(&self.idle);
                let at = idle.iter().rposition(|c| c.conn.key == key)?;
                idle.remove(at)
            };
            let fresh = now < expires
                && now.saturating_duration_since(conn.created) < settings.max_lifetime;
            if fresh && is_ready_now(&mut conn.sender) {
                conn.reused = true;
                return Some(conn);
            }
            // Dropping the handle closes the connection.
        }
    }

    /// Returns a connection whose response has been read to the end. An
    /// HTTP/2 handle is just dropped: the pool keeps the shared one.
    pub(crate) fn checkin(&self, mut conn: Conn, settings: &PoolSettings) {
        conn.served = conn.served.saturating_add(1);
        if conn.key.http2 || conn.served >= settings.max_requests || conn.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        if idle.len() < settings.max_idle {
            idle.push(IdleConn {
                conn,
                expires: now + settings.idle_timeout,
            });
        }
    }

    /// Closes the idle connections that may no longer wait for reuse (see
    /// the `pool_reaper` task); returns how many are left.
    pub(crate) fn reap(&self, now: Instant) -> usize {
        let mut idle = lock(&self.idle);
        if !idle.is_empty() {
            idle.retain_mut(|c| c.keep(now));
        }
        idle.len()
    }

    /// Drops a connection that turned out unusable; a shared HTTP/2 one
    /// stops being shared, so the next request opens a new one.
    pub(crate) fn discard(&self, conn: Conn) {
        if conn.key.http2 {
            lock(&self.shared).retain(|c| c.key != conn.key);
        }
    }

    /// Makes a new HTTP/2 connection the shared one for its wire.
    fn share(&self, conn: &Conn) {
        let Sender::Http2(sender) = &conn.sender else {
            return;
        };
        let mut shared = lock(&self.shared);
        shared.retain(|c| c.key != conn.key);
        shared.push(SharedConn {
            sender: sender.clone(),
            key: conn.key,
            created: conn.created,
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Polls the handle's readiness once without waiting: a connection whose
/// previous response ended is ready at once (its I/O, driven through the
/// end of that response, went on to wait for the next request; if it has
/// not, it is moved along once more). One the upstream closed while it
/// idled is found out when its I/O is next driven, before the request is
/// written, which then goes back to the caller to take a fresh connection.
fn is_ready_now(sender: &mut Sender) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match sender {
        Sender::Http1 { sender, driver } => {
            let mut ready =
                |cx: &mut Context<'_>| matches!(sender.poll_ready(cx), Poll::Ready(Ok(())));
            driver.is_alive() && (ready(&mut cx) || (driver.poll_io(&mut cx) && ready(&mut cx)))
        }
        Sender::Http2(sender) => matches!(sender.poll_ready(&mut cx), Poll::Ready(Ok(()))),
    }
}

/// Opens a new connection to `addr` on `wire`; the connect timeout bounds
/// the TCP connect and the TLS handshake together, as nginx's does. A new
/// HTTP/2 connection becomes `pool`'s shared one.
pub(crate) async fn connect(
    addr: SocketAddr,
    wire: &Wire,
    timeout: Duration,
    pool: &ConnPool,
) -> Result<Conn, ConnectError> {
    let connected = tokio::time::timeout(timeout, async {
        let stream = TcpStream::connect(addr).await.map_err(ConnectError::Io)?;
        // Best effort: a failure only costs latency.
        let _ = stream.set_nodelay(true);
        match &wire.tls {
            None => handshake(addr, TokioIo::new(stream), wire.http2).await,
            Some(tls) => {
                let connector = tokio_rustls::TlsConnector::from(tls.config(wire.http2));
                let stream = connector
                    .connect(tls.server_name(), stream)
                    .await
                    .map_err(ConnectError::Tls)?;
                handshake(addr, TokioIo::new(stream), wire.http2).await
            }
        }
    })
    .await
    .map_err(|_| ConnectError::Timeout(timeout))??;
    let conn = Conn {
        sender: connected,
        key: wire.key(),
        created: Instant::now(),
        served: 0,
        reused: false,
    };
    pool.share(&conn);
    Ok(conn)
}

/// The HTTP handshake on a connected stream. An HTTP/2 connection runs on
/// its own task; an HTTP/1.1 one (with upgrades, for WebSockets) is driven
/// by its users.
async fn handshake<I>(addr: SocketAddr, io: I, http2: bool) -> Result<Sender, ConnectError>
where
    I: Read + Write + Unpin + Send + 'static,
{
    if http2 {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .handshake(io)
            .await
            .map_err(ConnectError::Handshake)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%addr, %error, "upstream h2 connection ended with an error");
            }
        });
        return Ok(Sender::Http2(sender));
    }
    let (sender, connection) = http1::Builder::new()
        .writev(false)
        .handshake(io)
        .await
        .map_err(ConnectError::Handshake)?;
    Ok(Sender::Http1 {
        sender,
        driver: Driver::new(connection.with_upgrades(), addr),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain HTTP/1.1, the wire most tests pool on.
    const PLAIN: Wire = Wire {
        http2: false,
        tls: None,
    };

    /// An HTTP/1.1 connection over an in-memory pipe, on `wire`.
    async fn conn(wire: &Wire) -> (Conn, tokio::io::DuplexStream) {
        let (client, server) = tokio::io::duplex(1024);
        let sender = handshake(
            SocketAddr::from(([127, 0, 0, 1], 1)),
            TokioIo::new(client),
            false,
        )
        .await
        .unwrap();
        let conn = Conn {
            sender,
            key: wire.key(),
            created: Instant::now(),
            served: 0,
            reused: false,
        };
        (conn, server)
    }

    /// One GET over `conn`, answered by `server` with a two-byte body, the
    /// body read to its end the way a response body drives it.
    async fn exchange(conn: &mut Conn, server: &mut tokio::io::DuplexStream) {
        use http_body::Body;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = Request::get("/").body(RequestBody::empty()).unwrap();
        let answer = async {
            let mut head = [0u8; 1024];
            let n = server.read(&mut head).await.unwrap();
            assert!(head[..n].starts_with(b"GET / HTTP/1.1\r\n"));
            server
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        };
        let (response, ()) = tokio::join!(conn.send(req), answer);
        let mut body = response.unwrap().into_body();
        let driver = conn.driver().unwrap();
        let mut read = Vec::new();
        while let Some(frame) =
            poll_fn(|cx| driver.poll_for(|cx| Pin::new(&mut body).poll_frame(cx), cx)).await
        {
            read.extend_from_slice(&frame.unwrap().into_data().unwrap());
        }
        assert_eq!(read, b"ok");
    }

    #[tokio::test]
    async fn idle_connections_are_reused_only_on_their_wire() {
        let settings = PoolSettings::default();
        let pool = ConnPool::default();
        let tls = Wire {
            http2: false,
            tls: UpstreamTls::insecure(),
        };
        let (mut first, mut server) = conn(&PLAIN).await;
        exchange(&mut first, &mut server).await;
        pool.checkin(first, &settings);
        assert!(pool.checkout(&tls, &settings).is_none());
        let mut reused = pool
            .checkout(&PLAIN, &settings)
            .expect("the idle connection");
        assert!(reused.reused);
        assert!(pool.checkout(&PLAIN, &settings).is_none());
        // Driven by the task using it, no task of its own: a second
        // exchange on the same connection.
        exchange(&mut reused, &mut server).await;
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_gives_the_request_back() {
        let settings = PoolSettings::default();
        let pool = ConnPool::default();
        let (mut first, mut server) = conn(&PLAIN).await;
        exchange(&mut first, &mut server).await;
        pool.checkin(first, &settings);
        drop(server);
        let mut reused = pool.checkout(&PLAIN, &settings).expect("still pooled");
        let req = Request::get("/").body(RequestBody::empty()).unwrap();
        let error = reused.send(req).await.expect_err("the upstream is gone");
        assert!(error.message().is_some(), "nothing was written: {error:?}");
        assert!(reused.sender.is_closed());
    }

    #[tokio::test]
    async fn idle_connections_past_their_time_or_closed_are_reaped() {
        let settings = PoolSettings {
            idle_timeout: Duration::from_secs(60),
            ..PoolSettings::default()
        };
        let pool = ConnPool::default();
        let (mut kept, mut kept_server) = conn(&PLAIN).await;
        let (mut closed, mut closed_server) = conn(&PLAIN).await;
        exchange(&mut kept, &mut kept_server).await;
        exchange(&mut closed, &mut closed_server).await;
        pool.checkin(kept, &settings);
        pool.checkin(closed, &settings);
        let now = Instant::now();
        assert_eq!(pool.reap(now), 2);
        drop(closed_server);
        assert_eq!(pool.reap(now), 1, "the one the upstream closed goes");
        assert_eq!(
            pool.reap(now + Duration::from_secs(61)),
            0,
            "past the keep-alive time"
        );
        assert!(pool.checkout(&PLAIN, &settings).is_none());
    }

    #[test]
    fn wires_differ_by_version_and_tls_settings() {
        let tls = UpstreamTls::insecure();
        let h2 = Wire {
            http2: true,
            tls: None,
        };
        let secure = Wire {
            http2: false,
            tls: tls.clone(),
        };
        let same = Wire { http2: false, tls };
        assert_ne!(PLAIN.key(), h2.key());
        assert_ne!(PLAIN.key(), secure.key());
        assert_eq!(secure.key(), same.key());
    }
}
