//! Parsed certificates by Secret, shared by the Ingress and the Gateway
//! API compiles and kept across compiles: parsing keys is the slow part of
//! a compile.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use gateway::tls::Certificate;
use k8s_openapi::api::core::v1::Secret;

use crate::objects::NsName;
use crate::snapshot::Snapshot;

/// Parsed certificates by Secret, reused across compiles while the Secret's
/// data stays the same: parsing keys is the slow part of a compile.
#[derive(Debug, Default)]
pub struct CertCache {
    entries: HashMap<NsName, CacheEntry>,
}

#[derive(Debug)]
struct CacheEntry {
    fingerprint: u64,
    result: Result<Arc<Certificate>, String>,
    used: bool,
}

impl CertCache {
    /// The certificate in Secret `id`, parsed once per version of its data.
    pub(crate) fn get(
        &mut self,
        snapshot: &Snapshot,
        id: &NsName,
    ) -> Result<Arc<Certificate>, String> {
        let Some(secret) = snapshot.secret(id) else {
            return Err(format!("secret {id} not found"));
        };
        let (crt, key) =
            tls_data(secret).ok_or_else(|| format!("secret {id} has no tls.crt and tls.key"))?;
        let fingerprint = fingerprint(&crt, &key);
        if let Some(entry) = self.entries.get_mut(id)
            && entry.fingerprint == fingerprint
        {
            entry.used = true;
            return entry.result.clone();
        }
        let result = Certificate::from_pem(&crt, &key)
            .map(|cert| Arc::new(cert.with_source(&id.namespace, &id.name)))
            .map_err(|e| format!("secret {id}: {e}"));
        self.entries.insert(
            id.clone(),
            CacheEntry {
                fingerprint,
                result: result.clone(),
                used: true,
            },
        );
        result
    }

    /// Forgets Secrets the last compile did not use.
    pub(crate) fn sweep(&mut self) {
        self.entries.retain(|_, e| std::mem::take(&mut e.used));
    }
}

/// A Secret's `tls.crt` and `tls.key`, from `data` or `stringData`.
fn tls_data(secret: &Secret) -> Option<(Vec<u8>, Vec<u8>)> {
    let get = |key: &str| {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(key))
                    .map(|s| s.clone().into_bytes())
            })
    };
    Some((get("tls.crt")?, get("tls.key")?))
}

fn fingerprint(crt: &[u8], key: &[u8]) -> u64 {
    // Fixed seed: the same data must give the same fingerprint every compile.
    let mut hasher = foldhash::fast::FixedState::with_seed(0x5eed).build_hasher();
    hasher.write(crt);
    hasher.write_u8(0);
    hasher.write(key);
    hasher.finish()
}
