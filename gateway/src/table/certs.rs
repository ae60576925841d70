//! The table's side of the TLS handshake: the certificate for a server
//! name, as ingress-nginx's `certificate.lua` picks it (the exact lower-case
//! host, then `*.<parent>`, then the default certificate), and the host's
//! client-certificate rule. Read from the current table on each handshake,
//! so a Secret change swaps them atomically with the next table.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::sign::CertifiedKey;

use super::RouteTable;
use crate::tls::ocsp::Served;
use crate::tls::{Certificate, ClientAuth, HostCertificates};

impl HostCertificates for ArcSwap<RouteTable> {
    fn certified_key(
        &self,
        name: Option<&str>,
        fallback: &Certificate,
    ) -> Option<Arc<CertifiedKey>> {
        let table = self.load();
        // `ssl-reject-handshake`: no certificate for names of no server.
        if table.globals().reject_unknown_sni && !name.is_some_and(|n| table.has_host(n)) {
            return None;
        }
        // `enable-ocsp`: the certificate's own staple while it is valid.
        let certificate: &Certificate = table.certificate(name).map_or(fallback, |c| c);
        Some(certificate.handshake_key(table.globals().ocsp_stapling, crate::tls::ocsp::unix_now))
    }

    fn client_auth(&self, name: Option<&str>) -> Option<Arc<ClientAuth>> {
        self.load().client_auth_for_sni(name).cloned()
    }
}

/// The OCSP stapler follows the current table's certificates.
impl Served for ArcSwap<RouteTable> {
    fn stapled_certificates(&self) -> Option<Vec<Arc<Certificate>>> {
        let table = self.load();
        table
            .globals()
            .ocsp_stapling
            .then(|| table.certificates().map(|(_, c)| c.clone()).collect())
    }
}
