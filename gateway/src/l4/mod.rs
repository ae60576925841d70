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

pub use crate::stream_services::{StreamProtocol, StreamService, StreamSettings};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) use connect::connect;

use crate::backend::Backend;
use crate::metrics::{Metrics, StreamLabels, StreamStats};
use crate::shutdown::ShutdownSignal;
use crate::table::TableHandle;

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
