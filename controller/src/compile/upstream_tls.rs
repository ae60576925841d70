//! Builds an Ingress's upstream TLS settings from its `proxy-ssl-*`
//! annotations and the Secret `proxy-ssl-secret` names: `ca.crt` (required,
//! as ingress-nginx requires it), and `tls.crt` / `tls.key` for a client
//! certificate when both are present.

use std::sync::Arc;

use gateway::upstream_tls::{UpstreamTls, UpstreamTlsOptions};

use super::admission::secret_entries;
use crate::annotations::upstream::UpstreamTlsSpec;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

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
    };
    UpstreamTls::new(&options)
        .map(Arc::new)
        .map_err(|e| format!("proxy-ssl-secret {id}: {e}"))
}
