//! Certificate choice by SNI, as ingress-nginx's `certificate.lua`: the
//! exact lower-case host, then `*.<parent>`, then the default certificate.
//! Certificates live in the routing table, so a Secret change swaps them
//! atomically with the next table, without touching the listener. With
//! `enable-ocsp`, the chosen certificate's own OCSP response goes with it
//! while that response is valid.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::{Certificate, ClientAuth};

/// What a handshake reads from the current routing table (which implements
/// it, so that certificates swap with the table): the certificate for a
/// server name, and the host's client-certificate rule.
pub trait HostCertificates: Send + Sync + std::fmt::Debug {
    /// The certificate for server name `name` (lower case): the host's,
    /// the default one, `fallback` when there is neither, or `None` to
    /// refuse the handshake (`ssl-reject-handshake` and an unknown name).
    fn certified_key(
        &self,
        name: Option<&str>,
        fallback: &Certificate,
    ) -> Option<Arc<CertifiedKey>>;

    /// The client-certificate rule of the server `name` picks, when it
    /// verifies client certificates.
    fn client_auth(&self, name: Option<&str>) -> Option<Arc<ClientAuth>>;
}

/// Picks the certificate for each handshake from the current table.
#[derive(Debug)]
pub struct CertResolver {
    table: Arc<dyn HostCertificates>,
    fallback: Arc<Certificate>,
}

impl CertResolver {
    /// A resolver reading `table`, serving `fallback` (the generated fake
    /// certificate) when nothing else applies.
    pub fn new(table: Arc<dyn HostCertificates>, fallback: Arc<Certificate>) -> Self {
        Self { table, fallback }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_ascii_lowercase);
        self.table.certified_key(name.as_deref(), &self.fallback)
    }
}
