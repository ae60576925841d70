//! Listening sockets: accept connections, terminate TLS where configured,
//! serve HTTP/1.1 (or HTTP/2 when ALPN picks it) with the client-side
//! limits, and drain gracefully on shutdown.
//!
//! The limits are the listener's, overridden by the controller ConfigMap's
//! (`keep-alive`, `client-header-timeout`, `use-http2`, ...) as the current
//! table holds them when a connection is accepted: a change applies to new
//! connections, and open ones keep what they started with. Besides hyper's
//! own: at most `max-worker-connections` connections per listener (more
//! are closed when accepted, and counted), a send timeout on every write
//! to the client, HTTP/2's flood check and its idle close after
//! `keep-alive` (see [`crate::client_io`]).

pub use crate::shutdown::{ShutdownSignal, ShutdownTrigger, shutdown_channel};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::client_io::{ClientIo, ReadReady, StreamActivity};
use crate::http1_conn::{self, Http1};
use crate::metrics::ConnectionGuard;
use crate::proxy::{ConnInfo, ListenerInfo, Proxy, ResponseBody};
use crate::rewind::Rewind;
use crate::settings::ListenerSettings;
use crate::tls::{ClientTls, TlsConfigs, http1_only};
use crate::upgrade_slot::UpgradeSlot;

/// How often an idle HTTP/2 connection is pinged, and how long the answer
/// may take before the connection is considered dead.
const H2_KEEPALIVE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(20));

/// How much longer than `large-client-header-buffers` a request head may
/// be when read: enough for a 64 KiB request target, which then gets 414
/// (hyper's URI limit, or the proxy's one-buffer limit) rather than 431
/// for the whole head; the proxy then holds the head to the configured
/// size (431).
const LONG_TARGET: usize = 64 * 1024;

/// A bound listener, not yet serving.
pub struct HttpListener {
    tcp: TcpListener,
    info: Arc<ListenerInfo>,
    tls: Option<Arc<TlsConfigs>>,
}

impl std::fmt::Debug for HttpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpListener")
            .field("addr", &self.tcp.local_addr().ok())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// The protocol builders, configured once per listener; each connection
/// copies the one it needs and sets its own limits on it.
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl HttpListener {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, settings: &ListenerSettings) -> io::Result<Self> {
        let tcp = TcpListener::bind(addr).await?;
        Ok(Self {
            tcp,
            info: Arc::new(ListenerInfo::new(settings)),
            tls: None,
        })
    }

    /// Terminates TLS on this listener with `config`.
    pub fn with_tls(mut self, config: Arc<rustls::ServerConfig>) -> Self {
        self.tls = Some(Arc::new(TlsConfigs {
            http1_only: http1_only(&config),
            http2: config,
        }));
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Accepts and serves connections until `shutdown`, then lets open
    /// connections finish their current request for up to `drain`.
    pub async fn serve(self, proxy: Arc<Proxy>, mut shutdown: ShutdownSignal, drain: Duration) {
        let graceful = GracefulShutdown::new();
        let protocols = Arc::new(self.protocols());
        let mut backoff = AcceptBackoff::default();
        let open = Arc::new(AtomicUsize::new(0));
        let mut refusals = Refusals::default();
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.tcp.accept() => match accepted {
                    Ok(accepted) => { backoff.reset(); accepted }
                    Err(error) => { backoff.wait(&error).await; continue; }
                },
                () = shutdown.triggered() => break,
            };
            let settings = self.info.settings.overridden(&proxy.listener_overrides());
            if settings
                .max_connections
                .is_some_and(|cap| open.load(Ordering::Relaxed) >= cap)
            {
                // nginx, out of worker_connections, closes what it accepted.
                drop(stream);
                if let Some(metrics) = proxy.metrics() {
                    metrics.connection_refused(settings.scheme);
                }
                refusals.note(settings.max_connections, settings.scheme);
                continue;
            }
            // Best effort: without it small responses wait for Nagle.
            let _ = stream.set_nodelay(true);
            let connection = Connection {
                peer,
                settings,
                _slot: ListenerSlot::take(&open),
                _counted: proxy.metrics().map(ConnectionGuard::open),
                proxy: proxy.clone(),
                info: self.info.clone(),
                protocols: protocols.clone(),
                watcher: graceful.watcher(),
                shutdown: shutdown.clone(),
                origin: None,
            };
            tokio::spawn(connection.serve(stream, self.tls.clone()));
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

    fn protocols(&self) -> Protocols {
        let mut http1 = http1::Builder::new();
        http1.writev(false);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .keep_alive_interval(H2_KEEPALIVE.0)
            .keep_alive_timeout(H2_KEEPALIVE.1);
        Protocols { http1, http2 }
    }
}

impl Protocols {
    /// HTTP/1.1 with a connection's limits: its head size, and its waits
    /// for request heads (the first one `client-header-timeout`, later
    /// ones `keep-alive`: [`http1_conn`] sets the timer that times them).
    fn http1(&self, settings: &ListenerSettings) -> http1::Builder {
        let mut http1 = self.http1.clone();
        let keepalive = !settings.keepalive_timeout.is_zero();
        http1
            .header_read_timeout(settings.client_header_timeout)
            .max_header_size(settings.max_header_bytes + LONG_TARGET)
            .keep_alive(keepalive);
        http1
    }

    /// HTTP/2 with a connection's limits.
    fn http2(&self, settings: &ListenerSettings) -> http2::Builder<TokioExecutor> {
        let mut http2 = self.http2.clone();
        http2
            .max_concurrent_streams(settings.http2_max_concurrent_streams)
            .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX));
        http2
    }
}

/// One accepted connection, before its protocol is known.
struct Connection {
    peer: SocketAddr,
    /// The limits this connection was accepted with.
    settings: ListenerSettings,
    /// Counts the connection against `max-worker-connections`.
    _slot: ListenerSlot,
    /// Counts the connection as active while it lives.
    _counted: Option<ConnectionGuard>,
    proxy: Arc<Proxy>,
    info: Arc<ListenerInfo>,
    protocols: Arc<Protocols>,
    watcher: Watcher,
    shutdown: ShutdownSignal,
    /// What a PROXY protocol header said (`use-proxy-protocol`).
    origin: Option<Arc<crate::proxy_protocol::Origin>>,
}

impl Connection {
    /// Completes the TLS handshake if any (bounded by the client header
    /// timeout, so a stalled or garbage handshake is closed), then serves
    /// the protocol ALPN chose.
    async fn serve(mut self, stream: TcpStream, tls: Option<Arc<TlsConfigs>>) {
        // The PROXY header and SSL passthrough, when configured. Boxed, as
        // the TLS and HTTP/2 paths below: the task lives as long as the
        // connection, and a plain HTTP/1 connection should not carry the
        // room their state needs while it idles.
        let prepare = crate::listener::prepare(stream, self.peer, &self.settings, &self.proxy);
        let Some(prepared) = Box::pin(prepare).await else {
            return;
        };
        (self.peer, self.origin) = (prepared.peer, prepared.origin);
        let stream = prepared.stream;
        match tls {
            None => {
                let io = ClientIo::new(stream, self.settings.send_timeout);
                self.serve_http1(io, None).await;
            }
            Some(tls) => Box::pin(self.serve_tls(stream, tls)).await,
        }
    }

    /// A TLS connection: the handshake under `client-header-timeout`, then
    /// HTTP/2 when ALPN chose it, else HTTP/1.1.
    async fn serve_tls(self, stream: Rewind<TcpStream>, tls: Arc<TlsConfigs>) {
        let send_timeout = self.settings.send_timeout;
        let timeout = self.settings.client_header_timeout;
        let accept = crate::tls::accept(stream, &tls, self.settings.http2, &**self.proxy.table());
        let (stream, client) = match tokio::time::timeout(timeout, accept).await {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(error)) => {
                tracing::debug!(client = %self.peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(client = %self.peer, ?timeout, "TLS handshake timed out");
                return;
            }
        };
        let http2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = ClientIo::new(stream, send_timeout);
        if http2 {
            self.serve_http2(TokioIo::new(io.http2()), Some(client))
                .await;
        } else {
            self.serve_http1(io, Some(client)).await;
        }
    }

    /// HTTP/1.1 with upgrades (WebSockets), parked while idle (see
    /// [`http1_conn`]). hyper-util's watcher cannot watch such a
    /// connection, so the shutdown signal is followed there; holding the
    /// watcher still counts the connection as open.
    async fn serve_http1<S>(mut self, io: ClientIo<S>, tls: Option<ClientTls>)
    where
        S: AsyncRead + AsyncWrite + ReadReady + Send + Unpin + 'static,
    {
        let upgrades = Arc::new(UpgradeSlot::default());
        let http1 = Http1 {
            builder: self.protocols.http1(&self.settings),
            keepalive: self.settings.keepalive_timeout,
            service: self.service(None, tls, Some(upgrades.clone())),
            upgrades,
        };
        let result = http1_conn::serve(io, http1, &mut self.shutdown).await;
        drop(self.watcher);
        log_end(self.peer, result);
    }

    /// HTTP/2, closed (GOAWAY) once no stream has been open for
    /// `keep-alive`, pings answered or not.
    async fn serve_http2<I: Read + Write + Unpin + Send + 'static>(
        mut self,
        io: I,
        tls: Option<ClientTls>,
    ) {
        let activity = StreamActivity::new();
        let service = self.service(Some(activity.clone()), tls, None);
        let conn = self
            .protocols
            .http2(&self.settings)
            .serve_connection(io, service);
        let mut conn = std::pin::pin!(conn);
        let idle = self.settings.keepalive_timeout;
        let result = tokio::select! {
            result = conn.as_mut() => result,
            () = self.shutdown.triggered() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
            () = activity.idle_for(idle) => {
                tracing::debug!(client = %self.peer, ?idle, "idle HTTP/2 connection closed");
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        drop(self.watcher);
        log_end(self.peer, result);
    }

    /// The request handler; `streams` (HTTP/2) counts each request's
    /// stream open until its response body is done; `upgrades` (HTTP/1.1)
    /// is where upgrades wait for the socket.
    fn service(
        &self,
        streams: Option<Arc<StreamActivity>>,
        tls: Option<ClientTls>,
        upgrades: Option<Arc<UpgradeSlot>>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<ResponseBody>,
        Error = Infallible,
        Future = RequestFuture,
    > + Clone
    + Send
    + Unpin
    + 'static {
        let info = ConnInfo::new(self.peer, self.info.clone(), streams.is_some())
            .with_settings(self.settings)
            .with_tls(tls)
            .with_origin(self.origin.clone())
            .with_upgrades(upgrades);
        let info = Arc::new(info);
        let proxy = self.proxy.clone();
        service_fn(move |req| -> RequestFuture {
            let proxy = proxy.clone();
            let info = info.clone();
            let stream = streams.as_ref().map(StreamActivity::open);
            // Boxed: hyper keeps room for one request's future for as long
            // as the connection lives; the request's state is held only
            // while it runs.
            Box::pin(async move {
                let mut response = proxy.handle(&info, req).await;
                if let Some(stream) = stream {
                    response.body_mut().track(stream);
                }
                Ok::<_, Infallible>(response)
            })
        })
    }
}

/// One request's handling, boxed (see [`Connection::service`]).
type RequestFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

/// Logs why a client connection ended badly: a malformed head or a header
/// timeout is the client's doing (hyper has answered 400/408/431 already).
fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    let Err(error) = result else { return };
    if let Some(reason) = cut_off(&error) {
        tracing::info!(client = %peer, %reason, "closed client connection");
    } else if error.is_parse() || error.is_timeout() || error.is_parse_too_large() {
        tracing::info!(client = %peer, %error, "closed client connection");
    } else {
        tracing::debug!(client = %peer, %error, "client connection ended");
    }
}

/// The bound of [`ClientIo`] that cut the connection, if one did (the
/// send timeout, the HTTP/2 flood check).
fn cut_off(error: &hyper::Error) -> Option<&io::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return matches!(
                io.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::InvalidData
            )
            .then_some(io);
        }
        source = cause.source();
    }
    None
}

/// A connection's place under its listener's `max-worker-connections`.
#[derive(Debug)]
struct ListenerSlot(Arc<AtomicUsize>);

impl ListenerSlot {
    fn take(open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::Relaxed);
        Self(open.clone())
    }
}

impl Drop for ListenerSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Logs connections refused at the cap, at most once every 10 s.
#[derive(Debug, Default)]
struct Refusals {
    last_log: Option<Instant>,
    since: u64,
}

impl Refusals {
    fn note(&mut self, cap: Option<usize>, scheme: crate::scheme::Scheme) {
        self.since += 1;
        if self
            .last_log
            .is_some_and(|at| at.elapsed() < Duration::from_secs(10))
        {
            return;
        }
        tracing::warn!(
            listener = scheme.as_str(),
            max_worker_connections = cap,
            refused = self.since,
            "max-worker-connections reached: new client connections are closed"
        );
        self.last_log = Some(Instant::now());
        self.since = 0;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::Scheme;
    use crate::table::RouteTable;
    use crate::table::TableHandle;
    use crate::tls::{CertResolver, fake_certificate, server_config};
    use arc_swap::ArcSwap;
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Starts a listener with a short client header timeout; returns its
    /// address and the trigger that stops it.
    async fn listener(scheme: Scheme, timeout: Duration) -> (SocketAddr, ShutdownTrigger) {
        let mut settings = ListenerSettings::new(scheme);
        settings.client_header_timeout = timeout;
        listener_with(settings).await
    }

    /// Starts a listener with `settings` and an empty table.
    async fn listener_with(settings: ListenerSettings) -> (SocketAddr, ShutdownTrigger) {
        let scheme = settings.scheme;
        let table: TableHandle = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
        let mut listener = HttpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), &settings)
            .await
            .unwrap();
        if scheme == Scheme::Https {
            let fallback = Arc::new(fake_certificate().unwrap());
            let resolver = Arc::new(CertResolver::new(table.clone(), fallback));
            listener = listener.with_tls(server_config(resolver).unwrap());
        }
        let addr = listener.local_addr().unwrap();
        let (trigger, signal) = shutdown_channel();
        let proxy = Arc::new(Proxy::new(table, crate::proxy::Observer::default()));
        tokio::spawn(listener.serve(proxy, signal, Duration::from_secs(1)));
        (addr, trigger)
    }

    /// Reads until the server closes; returns how long that took.
    async fn closed_after(stream: &mut TcpStream) -> Duration {
        let started = Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(0) | Err(_)) => return started.elapsed(),
                Ok(Ok(_)) => {}
                Err(_) => panic!("the connection was not closed within 5 s"),
            }
        }
    }

    #[tokio::test]
    async fn a_stalled_tls_handshake_is_closed_at_the_header_timeout() {
        let (addr, _stop) = listener(Scheme::Https, Duration::from_millis(300)).await;
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        // The start of a TLS record, then nothing.
        stalled
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
            .await
            .unwrap();
        let took = closed_after(&mut stalled).await;
        assert!(
            took >= Duration::from_millis(250),
            "closed too early: {took:?}"
        );

        let mut garbage = TcpStream::connect(addr).await.unwrap();
        garbage
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let took = closed_after(&mut garbage).await;
        assert!(
            took < Duration::from_millis(250),
            "garbage kept open for {took:?}"
        );
    }

    #[tokio::test]
    async fn a_kept_alive_connection_waits_for_the_keep_alive_timeout() {
        let mut settings = ListenerSettings::new(Scheme::Http);
        settings.client_header_timeout = Duration::from_millis(200);
        settings.keepalive_timeout = Duration::from_secs(2);
        let (addr, _stop) = listener_with(settings).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(n)) if n > 0), "no response");
        let took = closed_after(&mut client).await;
        assert!(
            took >= Duration::from_millis(1500),
            "closed at the header timeout: {took:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_plain_connection_is_closed_at_the_header_timeout() {
        let (addr, _stop) = listener(Scheme::Http, Duration::from_millis(300)).await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let took = closed_after(&mut silent).await;
        assert!(
            took >= Duration::from_millis(250),
            "closed too early: {took:?}"
        );
    }
}
