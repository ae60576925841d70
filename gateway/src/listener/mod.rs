//! What happens on a client connection between the accept and HTTP: the
//! PROXY protocol header (`use-proxy-protocol`), then, on the HTTPS port
//! with `--enable-ssl-passthrough`, the ClientHello's server name, which
//! may hand the connection to a passthrough backend
//! ([`passthrough`]) instead of terminating TLS here.
//!
//! Neither step runs unless configured: the connection then goes on as it
//! was accepted, with nothing read from it. With `disable-ipv6`, a
//! connection from an IPv6 peer is closed first.

mod passthrough;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::proxy_protocol::{self, Origin};
use crate::rewind::Rewind;

use crate::policy::access::any_contains;
use crate::proxy::Proxy;
use crate::scheme::Scheme;
use crate::settings::ListenerSettings;

/// A client connection ready for TLS or HTTP.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The connection, replaying whatever the steps read past their need.
    pub(crate) stream: Rewind<TcpStream>,
    /// The client: the TCP peer, or the PROXY header's source when the
    /// peer is trusted (`proxy-real-ip-cidr`), as nginx's
    /// `real_ip_header proxy_protocol`.
    pub(crate) peer: SocketAddr,
    /// What the PROXY header said, if one was read.
    pub(crate) origin: Option<Arc<Origin>>,
}

/// Runs the configured steps on a new connection from `peer`; `None` when
/// the connection was closed (a missing or broken PROXY header) or handed
/// over to a passthrough backend.
pub(crate) async fn prepare(
    mut stream: TcpStream,
    peer: SocketAddr,
    settings: &ListenerSettings,
    proxy: &Proxy,
) -> Option<Prepared> {
    if settings.disable_ipv6 && peer.ip().to_canonical().is_ipv6() {
        return None;
    }
    let mut prepared = Prepared {
        stream: Rewind::new(stream),
        peer,
        origin: None,
    };
    if settings.proxy_protocol {
        stream = prepared.stream.into_parts().1;
        let timeout = settings.proxy_protocol_header_timeout;
        let (origin, rest) = match proxy_protocol::read(&mut stream, timeout).await {
            Ok(read) => read,
            Err(error) => {
                tracing::info!(client = %peer, %error, "closed client connection");
                return None;
            }
        };
        let table = proxy.current_table();
        let trusted = &table.globals().forwarded.trusted;
        if let Some(source) = origin.source
            && any_contains(trusted, peer.ip().to_canonical())
        {
            prepared.peer = source;
        }
        prepared.origin = Some(Arc::new(origin));
        prepared.stream = Rewind::with_prefix(stream, rest);
    }
    if settings.scheme == Scheme::Https && settings.ssl_passthrough {
        return passthrough::route(prepared, settings, proxy).await;
    }
    Some(prepared)
}
