//! `auth-tls-secret`: the CA (`ca.crt`) and revocation lists (`ca.crl`) a
//! host checks client certificates against, read from a Secret in the
//! Ingress's own namespace and kept across compiles while the Secret and
//! the settings stay the same (so that open connections keep their
//! verdicts and a rotation is one new rule, not one per compile).
//!
//! As ingress-nginx decides it (`createServers`), the client-certificate
//! rule belongs to the host: the oldest Ingress with a rule for the host
//! and `auth-tls-secret` gives it. Where ingress-nginx serves a host whose
//! Secret has no `ca.crt` without client authentication, here the Ingress
//! is denied (503), and a host whose deciding Ingress's Secret is unusable
//! answers 503 altogether.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use gateway::tls::ClientAuth;

use super::admission::secret_entries;
use crate::annotations::client_auth::ClientAuthSpec;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

/// Client-certificate rules by Ingress, reused across compiles.
#[derive(Debug, Default)]
pub struct ClientAuthCache {
    entries: HashMap<NsName, Entry>,
}

#[derive(Debug)]
struct Entry {
    spec: ClientAuthSpec,
    fingerprint: u64,
    result: Result<Arc<ClientAuth>, String>,
    used: bool,
}

impl ClientAuthCache {
    /// The rule of Ingress `ingress` for `spec`, or why it is unusable.
    pub(crate) fn get(
        &mut self,
        snapshot: &Snapshot,
        ingress: &NsName,
        spec: &ClientAuthSpec,
    ) -> Result<Arc<ClientAuth>, String> {
        let namespace = spec
            .secret
            .namespace
            .as_deref()
            .unwrap_or(&ingress.namespace);
        let id = NsName::new(namespace.to_owned(), spec.secret.name.clone());
        if namespace != ingress.namespace {
            return Err(format!(
                "auth-tls-secret {id} is in another namespace, which is refused"
            ));
        }
        let Some(secret) = snapshot.secret(&id) else {
            return Err(format!("auth-tls-secret {id} not found"));
        };
        let entries = secret_entries(secret);
        let Some(ca) = entries.get("ca.crt") else {
            return Err(format!("auth-tls-secret {id} has no ca.crt"));
        };
        let crl = entries.get("ca.crl");
        let fingerprint = fingerprint(ca, crl.map(Vec::as_slice));
        if let Some(entry) = self.entries.get_mut(ingress)
            && entry.fingerprint == fingerprint
            && entry.spec == *spec
        {
            entry.used = true;
            return entry.result.clone();
        }
        let result = ClientAuth::new(ca, crl.map(Vec::as_slice), spec.settings.clone())
            .map(|auth| Arc::new(auth.with_source(&id.namespace, &id.name)))
            .map_err(|e| format!("auth-tls-secret {id}: {e}"));
        self.entries.insert(
            ingress.clone(),
            Entry {
                spec: spec.clone(),
                fingerprint,
                result: result.clone(),
                used: true,
            },
        );
        result
    }

    /// Forgets the rules of Ingresses the last compile did not build.
    pub(crate) fn sweep(&mut self) {
        self.entries.retain(|_, e| std::mem::take(&mut e.used));
    }
}

fn fingerprint(ca: &[u8], crl: Option<&[u8]>) -> u64 {
    // Fixed seed: the same data must give the same fingerprint every compile.
    let mut hasher = foldhash::fast::FixedState::with_seed(0xca).build_hasher();
    hasher.write_usize(ca.len());
    hasher.write(ca);
    if let Some(crl) = crl {
        hasher.write_u8(1);
        hasher.write(crl);
    }
    hasher.finish()
}
