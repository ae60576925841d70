//! Ingress `tls:` sections: which certificate each host serves, as
//! ingress-nginx decides it (`createServers`, `extractTLSSecretName`).
//!
//! For a host, the oldest Ingress that has a rule for it and a TLS section
//! decides: the entry that lists the host names the Secret; failing that,
//! any entry whose certificate covers the host. The Secret must be in the
//! Ingress's own namespace (no other namespace's key is ever read). A
//! missing, malformed, expired or mismatched certificate leaves the host on
//! the default certificate, with a diagnostic. A host listed in a TLS
//! section is a TLS host (HTTPS redirect, HSTS) even without a Secret.

use std::sync::Arc;

use gateway::host::HostPattern;
use gateway::tls::Certificate;
use k8s_openapi::api::networking::v1::IngressTLS;

use gateway::table::ServerId;

use super::{Compiler, Current};
use crate::certs::CertCache;
use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::snapshot::Snapshot;

impl Compiler<'_> {
    /// Decides a host's TLS from this Ingress's TLS section, unless an
    /// older Ingress decided it.
    pub(super) fn tls(&mut self, current: &Current<'_>, server: ServerId, host: &HostPattern) {
        let entries = current
            .ingress
            .spec
            .as_ref()
            .and_then(|s| s.tls.as_deref())
            .unwrap_or(&[]);
        if entries.is_empty() || self.tls_decided.contains(&server) {
            return;
        }
        let namespace = &current.key.id.namespace;
        match host_tls(
            &mut self.cache.certs,
            self.snapshot,
            namespace,
            entries,
            host,
            self.now,
        ) {
            HostTls::None => return,
            HostTls::DefaultCertificate(problem) => {
                if let Some(problem) = problem {
                    let host = host.as_string();
                    self.diagnose(
                        current,
                        Reason::InvalidCertificate,
                        format!("{problem}; {host} is served with the default certificate"),
                    );
                }
            }
            HostTls::Certificate(cert) => {
                self.builder.set_certificate(host, cert);
            }
        }
        self.builder.set_tls(server);
        self.tls_decided.insert(server);
    }

    /// Serves `--default-ssl-certificate` to names no Ingress covers.
    pub(super) fn default_certificate(&mut self, secret: Option<&NsName>) {
        let Some(id) = secret else { return };
        let problem = match self.cache.certs.get(self.snapshot, id) {
            Ok(cert) if !cert.is_expired_at(self.now) => {
                self.builder.set_default_certificate(cert);
                return;
            }
            Ok(_) => "the certificate is not valid now".to_owned(),
            Err(message) => message,
        };
        self.diagnostics.push(Diagnostic {
            object: ObjectKey {
                kind: Kind::Secret,
                id: id.clone(),
            },
            reason: Reason::InvalidCertificate,
            message: format!(
                "--default-ssl-certificate: {problem}; the built-in certificate is served"
            ),
        });
    }
}

/// What an Ingress's TLS section says about one of its hosts.
#[derive(Debug)]
pub(crate) enum HostTls {
    /// The Ingress has no TLS entry for the host.
    None,
    /// A TLS host served with the default certificate (no usable Secret);
    /// the message says why, when it is worth a diagnostic.
    DefaultCertificate(Option<String>),
    /// A TLS host with its own certificate.
    Certificate(Arc<Certificate>),
}

/// Decides a host's certificate from one Ingress's TLS section.
pub(crate) fn host_tls(
    cache: &mut CertCache,
    snapshot: &Snapshot,
    namespace: &str,
    tls: &[IngressTLS],
    host: &HostPattern,
    now: i64,
) -> HostTls {
    let name = host.as_string();
    let listed = tls.iter().find(|entry| {
        entry
            .hosts
            .iter()
            .flatten()
            .any(|h| h.eq_ignore_ascii_case(&name))
    });
    let secret = match listed {
        Some(entry) => match entry.secret_name.as_deref().filter(|s| !s.is_empty()) {
            Some(secret) => secret,
            None => return HostTls::DefaultCertificate(None),
        },
        // Not listed: an entry whose certificate covers the host.
        None => {
            let covering = tls
                .iter()
                .filter_map(|entry| entry.secret_name.as_deref().filter(|s| !s.is_empty()))
                .find_map(|secret| {
                    let id = NsName::new(namespace, secret);
                    cache
                        .get(snapshot, &id)
                        .ok()
                        .filter(|cert| covers(cert, host))
                });
            return match covering {
                Some(cert) if !cert.is_expired_at(now) => HostTls::Certificate(cert),
                _ => HostTls::None,
            };
        }
    };
    let id = NsName::new(namespace, secret);
    match cache.get(snapshot, &id) {
        Err(message) => HostTls::DefaultCertificate(Some(message)),
        Ok(cert) if cert.is_expired_at(now) => HostTls::DefaultCertificate(Some(format!(
            "secret {id}: the certificate is not valid now (valid from {} to {})",
            timestamp(cert.not_before()),
            timestamp(cert.not_after())
        ))),
        Ok(cert) if !covers(&cert, host) => HostTls::DefaultCertificate(Some(format!(
            "secret {id}: the certificate is for {:?}, not {name}",
            cert.names()
        ))),
        Ok(cert) => HostTls::Certificate(cert),
    }
}

/// Whether a certificate is valid for a host pattern (a wildcard host needs
/// the same wildcard name).
fn covers(cert: &Certificate, host: &HostPattern) -> bool {
    match host {
        HostPattern::Exact(name) => cert.matches_host(name),
        HostPattern::Wildcard(_) | HostPattern::Suffix(_) => {
            let wanted = host.as_string();
            cert.names().iter().any(|n| n.eq_ignore_ascii_case(&wanted))
        }
    }
}

fn timestamp(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds).map_or_else(|_| seconds.to_string(), |t| t.to_string())
}
