//! SSL passthrough (`--enable-ssl-passthrough` and the `ssl-passthrough`
//! annotation), as ingress-nginx's TLS proxy does it: on the HTTPS port,
//! the ClientHello's server name is read before any TLS termination; a
//! passthrough host's connection is spliced, bytes both ways, to its
//! backend, which terminates TLS itself (the client sees the backend's
//! certificate); every other name is terminated here as usual.
//!
//! Bounded: the ClientHello must fit [`client_hello::MAX_HELLO`] bytes and
//! arrive within `client-header-timeout`; the upstream connect is bounded
//! and moves on to the next endpoint on failure. Differences from
//! ingress-nginx: the backend is the Service's ready endpoints (not its
//! ClusterIP), and the PROXY header, if `use-proxy-protocol` is on, is
//! read first and not forwarded (as ingress-nginx).

mod client_hello;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::Prepared;
use crate::backend::Backend;
use crate::proxy::Proxy;
use crate::rewind::Rewind;
use crate::settings::ListenerSettings;
use crate::stream_services::StreamSettings;
use client_hello::Hello;

/// nginx's connect timeout for upstreams (the route default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the ClientHello of `prepared` if any host is passthrough: hands
/// the connection to that host's backend (`None`), or gives it back with
/// the hello to be replayed.
pub(crate) async fn route(
    prepared: Prepared,
    settings: &ListenerSettings,
    proxy: &Proxy,
) -> Option<Prepared> {
    let table = proxy.current_table();
    if !table.has_passthrough() {
        return Some(prepared);
    }
    let peer = prepared.peer;
    let (prefix, mut stream) = prepared.stream.into_parts();
    let mut buf = BytesMut::from(&prefix[..]);
    let timeout = settings.client_header_timeout;
    let read = tokio::time::timeout(timeout, client_hello::read(&mut stream, &mut buf));
    let Ok(hello) = read.await else {
        tracing::debug!(client = %peer, ?timeout, "no ClientHello in time");
        return None;
    };
    let backend = match &hello {
        Hello::Named(name) => table.passthrough(name).cloned(),
        Hello::Other => None,
        Hello::Closed => return None,
    };
    // A spliced connection may last for hours: it keeps its backend, not
    // the whole table.
    drop(table);
    let Some(backend) = backend else {
        return Some(Prepared {
            stream: Rewind::with_prefix(stream, buf.freeze()),
            ..prepared
        });
    };
    let port = stream.local_addr().map_or(0, |a| a.port());
    let stats = crate::l4::stats(proxy.metrics(), "passthrough", port, &backend);
    let _active = stats.as_ref().map(|s| s.open());
    let Some((mut upstream, addr)) = connect(&backend).await else {
        if let Some(stats) = &stats {
            stats
                .failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        return None;
    };
    if let Some(stats) = &stats {
        stats
            .received
            .fetch_add(buf.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
    if upstream.write_all(&buf).await.is_err() {
        return None;
    }
    log_end(
        peer,
        addr,
        crate::splice::splice(stream, upstream, None, stats).await,
    );
    None
}

/// Connects to an endpoint of `backend`: three tries, 5 s each.
async fn connect(backend: &Arc<Backend>) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    let settings = StreamSettings {
        connect_timeout: CONNECT_TIMEOUT,
        ..StreamSettings::default()
    };
    crate::l4::connect(backend, &settings).await
}

fn log_end(
    client: SocketAddr,
    upstream: SocketAddr,
    result: std::io::Result<crate::splice::Ended>,
) {
    match result {
        Ok(_) => tracing::debug!(%client, %upstream, "passthrough connection done"),
        Err(error) => tracing::debug!(%client, %upstream, %error, "passthrough connection broke"),
    }
}
