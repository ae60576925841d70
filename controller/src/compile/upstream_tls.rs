//! Builds an Ingress's upstream TLS settings from its `proxy-ssl-*`
//! annotations and the Secret `proxy-ssl-secret` names: `ca.crt` (required,
//! as ingress-nginx requires it), and `tls.crt` / `tls.key` for a client
//! certificate when both are present.

use std::sync::Arc;

use gateway::upstream_tls::{UpstreamTls, UpstreamTlsOptions};

use gateway::settings::ProxySettings;

use super::admission::secret_entries;
use super::{Compiler, Current};
use crate::annotations::upstream::UpstreamTlsSpec;
use crate::diagnostics::Reason;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

impl Compiler<'_> {
    /// Reads the `proxy-ssl-secret` into the Ingress's proxy settings; an
    /// unusable one denies its routes (503), as ingress-nginx does.
    pub(super) fn upstream_tls(&mut self, current: &mut Current<'_>, id: &NsName) {
        let Some(spec) = &current.annotations.upstream_tls else {
            return;
        };
        match build(self.snapshot, id, spec) {
            Ok(tls) => {
                let mut settings = ProxySettings::clone(&current.settings);
                settings.upstream_tls = Some(tls);
                current.settings = Arc::new(settings);
            }
            Err(message) => {
                current.denied = true;
                let message = format!("{message}; the Ingress's routes answer 503");
                self.diagnose(current, Reason::LocationDenied, message);
            }
        }
    }
}

/// The TLS settings for Ingress `ingress`; `Err` says why its routes are
/// denied (ingress-nginx answers 503 for an unusable `proxy-ssl-secret`).
pub(crate) fn build(
    snapshot: &Snapshot,
    ingress: &NsName,
    spec: &UpstreamTlsSpec,
) -> Result<Arc<UpstreamTls>, String> {
    let namespace = spec
        .secret
        .namespace
        .as_deref()
        .unwrap_or(&ingress.namespace);
    let id = NsName::new(namespace.to_owned(), spec.secret.name.clone());
    if namespace != ingress.namespace {
        return Err(format!(
            "proxy-ssl-secret {id} is in another namespace, which is refused"
        ));
    }
    let secret = snapshot
        .secret(&id)
        .ok_or_else(|| format!("proxy-ssl-secret {id} not found"))?;
    let entries = secret_entries(secret);
    let ca = entries
        .get("ca.crt")
        .ok_or_else(|| format!("proxy-ssl-secret {id} has no ca.crt"))?;
    let client_cert = match (entries.get("tls.crt"), entries.get("tls.key")) {
        (Some(cert), Some(key)) => Some((cert.as_slice(), key.as_slice())),
        _ => None,
    };
    let options = UpstreamTlsOptions {
        verify: spec.verify,
        ca_pem: Some(ca),
        client_cert,
        name: spec.name.as_deref(),
        send_sni: spec.server_name,
        verify_depth: spec.verify_depth,
    };
    UpstreamTls::new(&options)
        .map(Arc::new)
        .map_err(|e| format!("proxy-ssl-secret {id}: {e}"))
}
