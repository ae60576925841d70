//! The webhook's serving certificate, read from the files
//! `--validating-webhook-certificate` and `--validating-webhook-key` name
//! and read again when they change (a Secret volume is updated in place
//! when kube-webhook-certgen or cert-manager renews the certificate). A
//! pair that does not load keeps the last good one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gateway::tls::{CertError, Certificate};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the files are read again.
const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Why the certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertFileError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM data is not a usable certificate and key.
    #[error("{cert} and {key}: {source}", cert = cert.display(), key = key.display())]
    Invalid {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        source: CertError,
    },
}

/// The files and what was last loaded from them.
#[derive(Debug)]
pub(crate) struct CertFiles {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    pem: (Vec<u8>, Vec<u8>),
    key: Arc<CertifiedKey>,
}

impl CertFiles {
    /// Loads the pair once; fails when it does not load.
    pub(crate) fn load(cert: &Path, key: &Path) -> Result<Arc<Self>, CertFileError> {
        let loaded = read_pair(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: ArcSwap::from_pointee(loaded),
        }))
    }

    /// Reads the files again every few seconds until `self` is the last
    /// reference, swapping in a changed pair that loads.
    pub(crate) fn watch(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                tokio::time::sleep(RELOAD_EVERY).await;
                let Some(files) = weak.upgrade() else { return };
                failing = files.reload(failing);
            }
        });
    }

    /// Swaps in the files' pair when it changed and loads; returns whether
    /// it failed (so that a failure is logged once, not every few seconds).
    fn reload(&self, failing: bool) -> bool {
        let pem = match (std::fs::read(&self.cert), std::fs::read(&self.key)) {
            (Ok(cert), Ok(key)) => (cert, key),
            _ if failing => return true,
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot read the webhook certificate files; the loaded pair stays");
                return true;
            }
        };
        if pem == self.current.load().pem {
            return false;
        }
        match parse(&self.cert, &self.key, pem) {
            Ok(loaded) => {
                tracing::info!(cert = %self.cert.display(), "webhook certificate reloaded");
                self.current.store(Arc::new(loaded));
                false
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "the webhook certificate files changed but do not load; the loaded pair stays");
                }
                true
            }
        }
    }
}

impl ResolvesServerCert for CertFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

fn read_pair(cert: &Path, key: &Path) -> Result<Loaded, CertFileError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertFileError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    parse(cert, key, (read(cert)?, read(key)?))
}

fn parse(cert: &Path, key: &Path, pem: (Vec<u8>, Vec<u8>)) -> Result<Loaded, CertFileError> {
    let certificate =
        Certificate::from_pem(&pem.0, &pem.1).map_err(|source| CertFileError::Invalid {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    Ok(Loaded {
        pem,
        key: certificate.certified_key().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_changed_pair_is_swapped_in_and_a_broken_one_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_path, key_path) = (dir.path().join("cert"), dir.path().join("key"));
        let (cert, key) = pair("one.example");
        std::fs::write(&cert_path, &cert).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        let files = CertFiles::load(&cert_path, &key_path).unwrap();
        let first = files.current.load().key.clone();
        assert!(!files.reload(false));
        assert!(
            Arc::ptr_eq(&first, &files.current.load().key),
            "unchanged files are not reparsed"
        );

        std::fs::write(&cert_path, "not a certificate").unwrap();
        assert!(files.reload(false));
        assert!(Arc::ptr_eq(&first, &files.current.load().key));

        let (cert, key) = pair("two.example");
        std::fs::write(&cert_path, &cert).unwrap();
        std::fs::write(&key_path, &key).unwrap();
        assert!(!files.reload(true));
        assert!(!Arc::ptr_eq(&first, &files.current.load().key));

        assert!(matches!(
            CertFiles::load(&dir.path().join("missing"), &key_path),
            Err(CertFileError::Read { .. })
        ));
    }
}
