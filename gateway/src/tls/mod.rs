//! TLS termination: certificates, their selection by SNI, the rustls
//! server configuration with ingress-nginx's defaults, client
//! certificates (`auth-tls-*`) per host, and OCSP stapling (`enable-ocsp`).

mod accept;
mod certificate;
pub mod client_auth;
pub mod ocsp;
pub mod peer;
mod resolver;

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::aws_lc_rs;
use rustls::server::ServerSessionMemoryCache;
use rustls::server::danger::ClientCertVerifier;
use rustls::version::{TLS12, TLS13};

pub(crate) use accept::{TlsConfigs, accept};
pub use certificate::{CertError, Certificate, fake_certificate};
pub use client_auth::{
    ClientAuth, ClientAuthError, ClientAuthSettings, ErrorPage, HostClientAuth, VerifyClient,
};
pub use peer::{ClientTls, PeerCertificate, Verdict};
pub use resolver::{CertResolver, HostCertificates};

/// Sessions kept for resumption, about what nginx's 10 MB shared cache holds.
const SESSION_CACHE_ENTRIES: usize = 20_480;

/// A rustls server configuration as ingress-nginx configures nginx:
/// TLS 1.2 and 1.3 only; AEAD suites only (rustls offers no others);
/// ALPN `h2` and `http/1.1`; a session cache for resumption (tickets stay
/// off, as `ssl_session_tickets off`); certificates from `resolver`.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13, &TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    Ok(Arc::new(config))
}

/// `config` offering only `http/1.1` by ALPN (`use-http2: false`); the
/// certificates and the session cache stay shared.
pub fn http1_only(config: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = config.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// `base` asking clients for certificates with `verifier`: the same
/// versions, certificates, ALPN and session cache.
pub(crate) fn with_client_verifier(
    base: &ServerConfig,
    verifier: Arc<dyn ClientCertVerifier>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&TLS13, &TLS12])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(base.cert_resolver.clone());
    config.alpn_protocols.clone_from(&base.alpn_protocols);
    config.session_storage = base.session_storage.clone();
    Ok(Arc::new(config))
}
