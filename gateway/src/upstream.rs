//! Connections to upstream endpoints: connecting with a timeout, and a small
//! per-endpoint pool of idle HTTP/1.1 connections.
//!
//! The pool holds hyper `SendRequest` handles directly rather than going
//! through hyper-util's legacy `Client`: that client spends a boxed future,
//! a spawned task and a keyed hash per request (see
//! `shared/reference/performance-facts.md`), while an endpoint already is
//! the pool key here.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::proxy::RequestBody;

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
    /// The TCP connect did not finish within `proxy-connect-timeout`.
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    /// The TCP connect failed (refused, unreachable, reset).
    #[error("connect failed: {0}")]
    Io(#[source] std::io::Error),
    /// The HTTP/1.1 handshake failed.
    #[error("handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
}

/// A connection to one endpoint, ready to carry a request.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) sender: http1::SendRequest<RequestBody>,
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

/// Idle connections to one endpoint, most recently used first.
#[derive(Debug, Default)]
pub(crate) struct ConnPool {
    idle: Mutex<Vec<IdleConn>>,
}

impl ConnPool {
    /// Takes the most recently used idle connection that is still usable.
    pub(crate) fn checkout(&self, settings: &PoolSettings) -> Option<Conn> {
        let now = Instant::now();
        loop {
            let IdleConn { mut conn, since } = self.lock().pop()?;
            let fresh = now.saturating_duration_since(since) < settings.idle_timeout
                && now.saturating_duration_since(conn.created) < settings.max_lifetime;
            if fresh && is_ready_now(&mut conn.sender) {
                conn.reused = true;
                return Some(conn);
            }
            // Dropping the handle closes the connection.
        }
    }

    /// Returns a connection whose response has been read to the end.
    pub(crate) fn checkin(&self, mut conn: Conn, settings: &PoolSettings) {
        conn.served = conn.served.saturating_add(1);
        if conn.served >= settings.max_requests || conn.sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < settings.max_idle {
            idle.push(IdleConn {
                conn,
                since: Instant::now(),
            });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<IdleConn>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Polls the handle's readiness once without waiting: a connection whose
/// previous response ended is ready at once (the connection task saw the
/// end of the message before the body reported it).
fn is_ready_now(sender: &mut http1::SendRequest<RequestBody>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    matches!(sender.poll_ready(&mut cx), Poll::Ready(Ok(())))
}

/// Opens a new HTTP/1.1 connection to `addr`.
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ConnectError> {
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
        .map_err(ConnectError::Io)?;
    // Best effort: a failure only costs latency.
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::Builder::new()
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(ConnectError::Handshake)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%addr, %error, "upstream connection ended with an error");
        }
    });
    Ok(Conn {
        sender,
        created: Instant::now(),
        served: 0,
        reused: false,
    })
}
