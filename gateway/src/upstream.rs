//! Connections to upstream endpoints: connecting with a timeout (TCP, then
//! TLS for `HTTPS`/`GRPCS`), and a small per-endpoint pool per protocol:
//! idle HTTP/1.1 connections, and one shared HTTP/2 connection.
//!
//! The pool holds hyper `SendRequest` handles directly rather than going
//! through hyper-util's legacy `Client`: that client spends a boxed future,
//! a spawned task and a keyed hash per request (see
//! `shared/reference/performance-facts.md`), while an endpoint already is
//! the pool key here.

use std::net::SocketAddr;
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
    /// One request at a time.
    Http1(http1::SendRequest<RequestBody>),
    /// Multiplexed; clones share the connection.
    Http2(http2::SendRequest<RequestBody>),
}

impl Sender {
    /// Sends `req`; gives it back if the connection was closed before any
    /// of it was written.
    pub(crate) async fn send(
        &mut self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<RequestBody>>> {
        match self {
            Self::Http1(sender) => sender.try_send_request(req).await,
            Self::Http2(sender) => sender.try_send_request(req).await,
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            Self::Http1(sender) => sender.is_closed(),
            Self::Http2(sender) => sender.is_closed(),
        }
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

#[derive(Debug)]
struct IdleConn {
    conn: Conn,
    since: Instant,
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
            let IdleConn { mut conn, since } = {
                let mut idle = lock(&self.idle);
                let at = idle.iter().rposition(|c| c.conn.key == key)?;
                idle.remove(at)
            };
            let fresh = now.saturating_duration_since(since) < settings.idle_timeout
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
        let mut idle = lock(&self.idle);
        if idle.len() < settings.max_idle {
            idle.push(IdleConn {
                conn,
                since: Instant::now(),
            });
        }
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
/// previous response ended is ready at once (the connection task saw the
/// end of the message before the body reported it).
fn is_ready_now(sender: &mut Sender) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    match sender {
        Sender::Http1(sender) => matches!(sender.poll_ready(&mut cx), Poll::Ready(Ok(()))),
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

/// The HTTP handshake on a connected stream; the connection itself runs
/// on its own task (with upgrades, for WebSockets, on HTTP/1.1).
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
    tokio::spawn(async move {
        if let Err(error) = connection.with_upgrades().await {
            tracing::debug!(%addr, %error, "upstream connection ended with an error");
        }
    });
    Ok(Sender::Http1(sender))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn idle_connections_are_reused_only_on_their_wire() {
        let settings = PoolSettings::default();
        let pool = ConnPool::default();
        let plain = Wire {
            http2: false,
            tls: None,
        };
        let tls = Wire {
            http2: false,
            tls: UpstreamTls::insecure(),
        };
        let (first, _server) = conn(&plain).await;
        // Let the connection task start, so the handle reports ready.
        tokio::task::yield_now().await;
        pool.checkin(first, &settings);
        assert!(pool.checkout(&tls, &settings).is_none());
        let reused = pool
            .checkout(&plain, &settings)
            .expect("the idle connection");
        assert!(reused.reused);
        assert!(pool.checkout(&plain, &settings).is_none());
    }

    #[test]
    fn wires_differ_by_version_and_tls_settings() {
        let tls = UpstreamTls::insecure();
        let plain = Wire {
            http2: false,
            tls: None,
        };
        let h2 = Wire {
            http2: true,
            tls: None,
        };
        let secure = Wire {
            http2: false,
            tls: tls.clone(),
        };
        let same = Wire { http2: false, tls };
        assert_ne!(plain.key(), h2.key());
        assert_ne!(plain.key(), secure.key());
        assert_eq!(secure.key(), same.key());
    }
}
