//! TCP and UDP services (`--tcp-services-configmap`,
//! `--udp-services-configmap`): a port of the gateway forwarded, byte for
//! byte, to the ready endpoints of a Service port, as ingress-nginx's
//! `stream` servers do.
//!
//! The services are part of the routing table, so their endpoints follow
//! EndpointSlice changes on the fast path like any backend's. The
//! [`StreamListeners`] task binds and closes ports as tables with other
//! services are published, without a restart; each new connection (UDP:
//! each new client session) looks its service up in the current table.
//!
//! - [`tcp`]: one connection: an optional PROXY header from the client
//!   (`:PROXY`), an endpoint (the next one on a failed connect, as
//!   `proxy-stream-next-upstream`), an optional PROXY header to it
//!   (`:PROXY:PROXY`), then the splice with `proxy-stream-timeout`;
//! - [`udp`]: sessions per client address, each with its own upstream
//!   socket, ended after `proxy-stream-responses` answers or
//!   `proxy-stream-timeout` of silence.

mod connect;
mod tcp;
mod udp;

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) use connect::connect;

use crate::backend::Backend;
use crate::metrics::{Metrics, StreamLabels, StreamStats};
use crate::proxy::TableHandle;
use crate::server::ShutdownSignal;
use crate::table::BackendId;

/// A stream service's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamProtocol {
    /// From `--tcp-services-configmap`.
    Tcp,
    /// From `--udp-services-configmap`.
    Udp,
}

impl StreamProtocol {
    /// `tcp` or `udp`, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

impl fmt::Display for StreamProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a services ConfigMap: `"<port>": "<ns>/<svc>:<port>[:PROXY][:PROXY]"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamService {
    /// TCP or UDP.
    pub protocol: StreamProtocol,
    /// The port the gateway listens on.
    pub port: u16,
    /// The Service port's backend in the same table.
    pub backend: BackendId,
    /// The first `PROXY`: connections start with a PROXY protocol header
    /// (TCP only).
    pub decode_proxy_protocol: bool,
    /// The second `PROXY`: upstream connections start with a v1 PROXY
    /// protocol header (TCP only).
    pub encode_proxy_protocol: bool,
}

/// The controller ConfigMap's `proxy-stream-*` keys, ingress-nginx's
/// defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamSettings {
    /// `proxy-stream-timeout` (600 s): the longest silence both ways
    /// before a connection (UDP: a session) is closed.
    pub timeout: Duration,
    /// nginx's `proxy_connect_timeout` in the stream context (60 s; not a
    /// ConfigMap key).
    pub connect_timeout: Duration,
    /// `proxy-stream-next-upstream` (true): a failed connect tries the
    /// next endpoint.
    pub next_upstream: bool,
    /// `proxy-stream-next-upstream-timeout` (600 s): the time all
    /// attempts together may take; `None` is unlimited.
    pub next_upstream_timeout: Option<Duration>,
    /// `proxy-stream-next-upstream-tries` (3): attempts, the first
    /// included; 0 is unlimited.
    pub next_upstream_tries: u32,
    /// `proxy-stream-responses` (1): datagrams a UDP session expects back
    /// before it ends; `None` is unlimited.
    pub responses: Option<u32>,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(60),
            next_upstream: true,
            next_upstream_timeout: Some(Duration::from_secs(600)),
            next_upstream_tries: 3,
            responses: Some(1),
        }
    }
}

/// The labels of a service's series.
pub(crate) fn labels(protocol: &'static str, port: u16, backend: &Backend) -> StreamLabels {
    let key = backend.key();
    StreamLabels {
        protocol,
        port,
        namespace: key.namespace.clone(),
        service: key.service.clone(),
        service_port: key.port.clone(),
    }
}

/// A series for a connection, when metrics are on.
pub(crate) fn stats(
    metrics: Option<&Arc<Metrics>>,
    protocol: &'static str,
    port: u16,
    backend: &Backend,
) -> Option<Arc<StreamStats>> {
    metrics.map(|m| m.stream(labels(protocol, port, backend)))
}

/// Keeps one listening socket per stream service of the current table.
#[derive(Debug)]
pub struct StreamListeners {
    bind: IpAddr,
    table: TableHandle,
    metrics: Option<Arc<Metrics>>,
}

/// A bound port and the task serving it.
struct Running {
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StreamListeners {
    /// Listeners on `bind` for the services of whatever `table` holds.
    pub fn new(bind: IpAddr, table: TableHandle, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            bind,
            table,
            metrics,
        }
    }

    /// Binds and closes ports each time `published` says a new table is
    /// in, until `shutdown`. Connections already accepted on a port that
    /// goes away finish on their own.
    pub async fn run(self, mut published: watch::Receiver<()>, mut shutdown: ShutdownSignal) {
        let mut running: HashMap<(StreamProtocol, u16), Running> = HashMap::new();
        loop {
            self.reconcile(&mut running).await;
            tokio::select! {
                changed = published.changed() => if changed.is_err() { break },
                () = shutdown.triggered() => break,
            }
        }
    }

    /// Makes the bound ports those of the current table's services.
    async fn reconcile(&self, running: &mut HashMap<(StreamProtocol, u16), Running>) {
        let table = self.table.load_full();
        let wanted: Vec<(StreamProtocol, u16)> = table
            .streams()
            .iter()
            .map(|s| (s.protocol, s.port))
            .collect();
        running.retain(|key, _| {
            let keep = wanted.contains(key);
            if !keep {
                tracing::info!(protocol = %key.0, port = key.1, "stream service removed; port closed");
            }
            keep
        });
        for key in wanted {
            if running.contains_key(&key) {
                continue;
            }
            let addr = SocketAddr::new(self.bind, key.1);
            let task = match key.0 {
                StreamProtocol::Tcp => match TcpListener::bind(addr).await {
                    Ok(listener) => tokio::spawn(tcp::serve(
                        listener,
                        key.1,
                        self.table.clone(),
                        self.metrics.clone(),
                    )),
                    Err(error) => {
                        tracing::error!(%addr, %error, "cannot listen for a TCP service");
                        continue;
                    }
                },
                StreamProtocol::Udp => match UdpSocket::bind(addr).await {
                    Ok(socket) => tokio::spawn(udp::serve(
                        socket,
                        key.1,
                        self.table.clone(),
                        self.metrics.clone(),
                    )),
                    Err(error) => {
                        tracing::error!(%addr, %error, "cannot listen for a UDP service");
                        continue;
                    }
                },
            };
            tracing::info!(protocol = %key.0, %addr, "listening for a stream service");
            running.insert(key, Running { task });
        }
    }
}
