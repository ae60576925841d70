//! The TLS handshake of a client connection: read the ClientHello, pick
//! the configuration for the host it names (one asking for a client
//! certificate when the host checks them), finish the handshake, and
//! verify what certificate the client sent.

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::Acceptor;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::HostCertificates;
use super::peer::{ClientTls, PeerCertificate};

/// A listener's rustls configurations: offering `h2` and `http/1.1` by
/// ALPN, and `http/1.1` alone (`use-http2: false`).
#[derive(Clone, Debug)]
pub(crate) struct TlsConfigs {
    pub(crate) http2: Arc<ServerConfig>,
    pub(crate) http1_only: Arc<ServerConfig>,
}

/// Completes the handshake of `stream` (the caller bounds it in time).
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    configs: &TlsConfigs,
    http2: bool,
    table: &dyn HostCertificates,
) -> io::Result<(TlsStream<S>, ClientTls)> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
    let sni: Option<Box<str>> = start
        .client_hello()
        .server_name()
        .map(|name| name.to_ascii_lowercase().into_boxed_str());
    let base = if http2 {
        &configs.http2
    } else {
        &configs.http1_only
    };
    let auth = table
        .client_auth(sni.as_deref())
        .filter(|auth| auth.settings().verify.requests_certificate());
    let config = match &auth {
        Some(auth) => auth.server_config(base, http2).map_err(io::Error::other)?,
        None => base.clone(),
    };
    let stream = start.into_stream(config).await?;
    let peer = auth
        .and_then(|auth| PeerCertificate::verify(&auth, stream.get_ref().1.peer_certificates()));
    Ok((stream, ClientTls::new(sni, peer)))
}
