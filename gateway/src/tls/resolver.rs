//! Certificate choice by SNI, as ingress-nginx's `certificate.lua`: the
//! exact lower-case host, then `*.<parent>`, then the default certificate.
//! Certificates live in the routing table, so a Secret change swaps them
//! atomically with the next table, without touching the listener. With
//! `enable-ocsp`, the chosen certificate's own OCSP response goes with it
//! while that response is valid.

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Certificate;
use super::ocsp::unix_now;
use crate::proxy::TableHandle;

/// Picks the certificate for each handshake from the current table.
#[derive(Debug)]
pub struct CertResolver {
    table: TableHandle,
    fallback: Arc<Certificate>,
}

impl CertResolver {
    /// A resolver reading `table`, serving `fallback` (the generated fake
    /// certificate) when nothing else applies.
    pub fn new(table: TableHandle, fallback: Arc<Certificate>) -> Self {
        Self { table, fallback }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.table.load();
        let name = hello.server_name().map(str::to_ascii_lowercase);
        // `ssl-reject-handshake`: no certificate for names of no server.
        if table.globals().reject_unknown_sni && !name.as_deref().is_some_and(|n| table.has_host(n))
        {
            return None;
        }
        let certificate = table.certificate(name.as_deref()).unwrap_or(&self.fallback);
        Some(certificate.handshake_key(table.globals().ocsp_stapling, unix_now))
    }
}
