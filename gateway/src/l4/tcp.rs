//! One TCP service port: accept, then per connection the PROXY header if
//! the service decodes one, an endpoint, the PROXY header to it if the
//! service encodes one, and the splice.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::StreamProtocol;
use crate::metrics::Metrics;
use crate::policy::access::any_contains;
use crate::proxy_protocol;
use crate::rewind::Rewind;
use crate::table::TableHandle;

/// Accepts connections on `port` until the task is aborted.
pub(super) async fn serve(
    listener: TcpListener,
    port: u16,
    table: TableHandle,
    metrics: Option<Arc<Metrics>>,
) {
    let mut failures = 0u32;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => {
                failures = 0;
                accepted
            }
            Err(error) => {
                // Out of descriptors and the like: back off, never spin.
                if failures == 0 {
                    tracing::warn!(port, %error, "TCP service accept failed; backing off");
                }
                failures = failures.saturating_add(1);
                let millis = 10u64.saturating_mul(1 << failures.min(7)).min(1000);
                tokio::time::sleep(Duration::from_millis(millis)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            peer,
            port,
            table.clone(),
            metrics.clone(),
        ));
    }
}

/// Serves one client connection with the service the current table has on
/// `port`.
async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    port: u16,
    table: TableHandle,
    metrics: Option<Arc<Metrics>>,
) {
    // A connection may last for hours: it keeps what it needs of the
    // table, not the table.
    let (service, backend, globals) = {
        let table = table.load_full();
        let Some((service, backend)) = table.stream(StreamProtocol::Tcp, port) else {
            return;
        };
        (
            service.clone(),
            backend.clone(),
            Box::new(table.globals().clone()),
        )
    };
    if globals.listener.disable_ipv6 == Some(true) && peer.ip().to_canonical().is_ipv6() {
        return;
    }
    let settings = globals.streams;
    let stats = super::stats(metrics.as_ref(), "tcp", port, &backend);
    let _active = stats.as_ref().map(|s| s.open());
    let mut client = peer;
    let mut rest = Bytes::new();
    if service.decode_proxy_protocol {
        let timeout = globals
            .listener
            .proxy_protocol_header_timeout
            .unwrap_or(Duration::from_secs(5));
        match proxy_protocol::read(&mut stream, timeout).await {
            Ok((origin, after)) => {
                // nginx's stream realip: the header's address replaces the
                // peer's only with `enable-real-ip` and a trusted peer.
                let forwarded = &globals.forwarded;
                if let Some(source) = origin.source
                    && forwarded.enable_real_ip
                    && any_contains(&forwarded.trusted, peer.ip().to_canonical())
                {
                    client = source;
                }
                rest = after;
            }
            Err(error) => {
                tracing::info!(%peer, port, %error, "closed TCP service connection");
                return;
            }
        }
    }
    drop(globals);
    let Some((mut upstream, upstream_addr)) = super::connect(&backend, &settings).await else {
        if let Some(stats) = &stats {
            stats
                .failed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        return;
    };
    if service.encode_proxy_protocol {
        let local = stream.local_addr().unwrap_or(peer);
        let header = proxy_protocol::v1_header(client, local);
        if let Err(error) = upstream.write_all(&header).await {
            tracing::warn!(%upstream_addr, %error, "cannot send the PROXY header upstream");
            return;
        }
    }
    let client_side = Rewind::with_prefix(stream, rest);
    match crate::splice::splice(client_side, upstream, Some(settings.timeout), stats).await {
        Ok(ended) => {
            tracing::debug!(%client, %upstream_addr, ?ended, "TCP service connection done");
        }
        Err(error) => {
            tracing::debug!(%client, %upstream_addr, %error, "TCP service connection broke");
        }
    }
}
