//! Listening sockets: accept connections, serve HTTP/1.1 on each with the
//! client-side limits, and drain gracefully on shutdown.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::proxy::{ConnInfo, ListenerInfo, Proxy};
use crate::settings::ListenerSettings;

/// Tells servers to stop accepting and drain. Cloned into every server.
#[derive(Clone, Debug)]
pub struct ShutdownSignal(watch::Receiver<bool>);

/// Triggers a [`ShutdownSignal`].
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A linked trigger and signal.
pub fn shutdown_channel() -> (ShutdownTrigger, ShutdownSignal) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), ShutdownSignal(rx))
}

impl ShutdownTrigger {
    /// Starts the shutdown of every server holding a linked signal.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown was triggered (or the trigger was dropped).
    pub async fn triggered(&mut self) {
        // An error means the trigger is gone, which also means stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// A bound HTTP listener, not yet serving.
#[derive(Debug)]
pub struct HttpListener {
    tcp: TcpListener,
    info: Arc<ListenerInfo>,
}

impl HttpListener {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, settings: &ListenerSettings) -> io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Self {
            tcp,
            info: Arc::new(ListenerInfo::new(settings)),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Accepts and serves connections until `shutdown`, then lets open
    /// connections finish their current request for up to `drain`.
    pub async fn serve(self, proxy: Arc<Proxy>, mut shutdown: ShutdownSignal, drain: Duration) {
        let graceful = GracefulShutdown::new();
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.info.settings.client_header_timeout)
            .max_header_size(self.info.settings.max_header_bytes)
            .writev(false)
            .keep_alive(true);
        let mut backoff = AcceptBackoff::default();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => { backoff.reset(); accepted }
                    Err(error) => { backoff.wait(&error).await; continue; }
                },
                () = shutdown.triggered() => break,
            };
            let info = Arc::new(ConnInfo::new(peer, self.info.clone()));
            let proxy = proxy.clone();
            let service = service_fn(move |req| {
                let proxy = proxy.clone();
                let info = info.clone();
                async move { Ok::<_, Infallible>(proxy.handle(&info, req).await) }
            });
            let conn = builder.serve_connection(TokioIo::new(prepare(stream)), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(error) = conn.await {
                    log_connection_error(peer, &error);
                }
            });
        }
        drop(self.tcp);
        if tokio::time::timeout(drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                ?drain,
                "connections still open after the drain period; closing them"
            );
        }
    }
}

fn prepare(stream: TcpStream) -> TcpStream {
    // Best effort: without it small responses wait for Nagle.
    let _ = stream.set_nodelay(true);
    stream
}

/// Logs why a client connection ended badly: a malformed head or a header
/// timeout is the client's doing (hyper has answered 400/408/431 already).
fn log_connection_error(peer: SocketAddr, error: &hyper::Error) {
    if error.is_parse() || error.is_timeout() || error.is_parse_too_large() {
        tracing::info!(client = %peer, %error, "closed client connection");
    } else {
        tracing::debug!(client = %peer, %error, "client connection ended");
    }
}

/// Backs off after accept errors (such as running out of file descriptors)
/// so the loop neither spins nor gives up; logs once per burst.
#[derive(Debug, Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    fn reset(&mut self) {
        self.failures = 0;
    }

    async fn wait(&mut self, error: &io::Error) {
        if self.failures == 0 {
            tracing::warn!(%error, "accept failed; backing off");
        }
        self.failures = self.failures.saturating_add(1);
        let millis = 10u64.saturating_mul(1 << self.failures.min(7)).min(1000);
        tokio::time::sleep(Duration::from_millis(millis)).await;
    }
}
