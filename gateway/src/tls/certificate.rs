//! Server certificates: parsed from PEM (a Secret's `tls.crt` and
//! `tls.key`), checked, and ready for rustls; plus the self-signed default
//! certificate ingress-nginx generates when none is configured.
//!
//! A certificate also carries its OCSP staple (`enable-ocsp`), the one
//! piece of live state it has: set and cleared by the stapler
//! ([`super::ocsp`]) as responses are fetched and run out, the way a
//! backend's endpoint set changes under the same table. Tables share a
//! certificate object while its Secret's data stays the same, so a
//! recompile keeps the staple, and a handshake that picked a certificate
//! can only ever get that certificate's own response.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::public_key::PublicKey;

/// Why a certificate and key were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// No PEM certificate in the certificate data.
    #[error("no certificate found in tls.crt")]
    NoCertificate,
    /// The certificate data is not valid PEM.
    #[error("tls.crt is not valid PEM: {0}")]
    BadCertificatePem(String),
    /// No usable private key in the key data.
    #[error("no private key found in tls.key (PKCS#1, PKCS#8 or SEC1 PEM expected): {0}")]
    NoKey(String),
    /// The key type is not supported (or the key is malformed).
    #[error("tls.key cannot be used: {0}")]
    UnusableKey(String),
    /// The key does not belong to the certificate.
    #[error("tls.key does not match the certificate in tls.crt")]
    KeyMismatch,
    /// The end-entity certificate does not parse as X.509.
    #[error("tls.crt is not a valid X.509 certificate: {0}")]
    BadCertificate(String),
}

/// A server certificate chain with its key, and what the gateway needs to
/// know about it (validity, names).
#[derive(Debug)]
pub struct Certificate {
    key: Arc<CertifiedKey>,
    /// The chain and key with a verified OCSP response, while there is one.
    staple: ArcSwapOption<Staple>,
    not_before: i64,
    not_after: i64,
    names: Vec<String>,
    subject: String,
    serial: String,
    issuer: String,
    issuer_organization: String,
    identifier: String,
    key_algorithm: String,
    /// The Secret it came from (namespace, name), for metrics.
    source: Option<(String, String)>,
}

impl Certificate {
    /// Parses a PEM certificate chain (end-entity first) and a PEM private
    /// key (RSA, ECDSA P-256/P-384, Ed25519; PKCS#1, PKCS#8 or SEC1), and
    /// checks that they belong together.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, CertError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CertError::BadCertificatePem(e.to_string()))?;
        let Some(end_entity) = chain.first() else {
            return Err(CertError::NoCertificate);
        };
        let details = inspect(end_entity)?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::NoKey(e.to_string()))?;
        let provider = aws_lc_rs::default_provider();
        let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => CertError::KeyMismatch,
            other => CertError::UnusableKey(other.to_string()),
        })?;
        Ok(Self {
            key: Arc::new(certified),
            staple: ArcSwapOption::empty(),
            not_before: details.not_before,
            not_after: details.not_after,
            names: details.names,
            subject: details.subject,
            serial: details.serial,
            issuer: details.issuer,
            issuer_organization: details.issuer_organization,
            identifier: details.identifier,
            key_algorithm: details.key_algorithm,
            source: None,
        })
    }

    /// Names the Secret the certificate came from.
    pub fn with_source(mut self, namespace: &str, name: &str) -> Self {
        self.source = Some((namespace.to_owned(), name.to_owned()));
        self
    }

    /// The Secret the certificate came from, if known.
    pub fn source(&self) -> Option<(&str, &str)> {
        self.source
            .as_ref()
            .map(|(ns, name)| (ns.as_str(), name.as_str()))
    }

    /// The issuer's common name (or whole name when it has none).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuer's first organization (`O`), or empty.
    pub fn issuer_organization(&self) -> &str {
        &self.issuer_organization
    }

    /// ingress-nginx's certificate identifier: the issuer's `serialNumber`
    /// attribute (usually empty), `-`, the serial number in decimal.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The public key algorithm (`RSA`, `ECDSA`, `Ed25519`).
    pub fn key_algorithm(&self) -> &str {
        &self.key_algorithm
    }

    /// The chain and key for rustls.
    pub fn certified_key(&self) -> &Arc<CertifiedKey> {
        &self.key
    }

    /// What a handshake serves: with `stapling` (`enable-ocsp`), the chain
    /// with its OCSP response while that response is valid at `now` (Unix
    /// seconds); else the chain alone.
    pub fn handshake_key(&self, stapling: bool, now: impl FnOnce() -> i64) -> Arc<CertifiedKey> {
        if stapling
            && let Some(staple) = self.staple.load().as_ref()
            && now() < staple.expires_at
        {
            return staple.key.clone();
        }
        self.key.clone()
    }

    /// Staples `response` (a verified DER OCSP response) to the chain until
    /// `expires_at` (Unix seconds); handshakes after that get none.
    pub fn set_staple(&self, response: Vec<u8>, expires_at: i64) {
        let key = CertifiedKey {
            cert: self.key.cert.clone(),
            key: self.key.key.clone(),
            ocsp: Some(response),
        };
        self.staple.store(Some(Arc::new(Staple {
            key: Arc::new(key),
            expires_at,
        })));
    }

    /// Stops stapling a response.
    pub fn clear_staple(&self) {
        self.staple.store(None);
    }

    /// Start of validity, as Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of validity, as Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Whether `now` (Unix seconds) is outside the validity period.
    pub fn is_expired_at(&self, now: i64) -> bool {
        now < self.not_before || now > self.not_after
    }

    /// The DNS names (subject alternative names, else the common name).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The subject, as a distinguished name string.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The serial number, in decimal (as Go's `big.Int` prints it).
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// Whether the certificate is valid for `host` (lower-case): an exact
    /// name, or a `*.parent` name matching exactly one label.
    pub fn matches_host(&self, host: &str) -> bool {
        self.names.iter().any(|name| {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => host
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
                None => name == host,
            }
        })
    }
}

/// A chain with its OCSP response, and when the response runs out.
#[derive(Debug)]
struct Staple {
    key: Arc<CertifiedKey>,
    /// Unix seconds: not stapled from then on.
    expires_at: i64,
}

/// What the gateway reads from an end-entity certificate.
struct Details {
    not_before: i64,
    not_after: i64,
    names: Vec<String>,
    subject: String,
    serial: String,
    issuer: String,
    issuer_organization: String,
    identifier: String,
    key_algorithm: String,
}

fn inspect(der: &CertificateDer<'_>) -> Result<Details, CertError> {
    let (_, cert) = X509Certificate::from_der(der.as_ref())
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let validity = cert.validity();
    let mut names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(str::to_owned),
        );
    }
    let issuer = cert
        .issuer()
        .iter_common_name()
        .find_map(|cn| cn.as_str().ok())
        .map_or_else(|| cert.issuer().to_string(), str::to_owned);
    let key_algorithm = match cert.public_key().parsed() {
        Ok(PublicKey::RSA(_)) => "RSA",
        Ok(PublicKey::EC(_)) => "ECDSA",
        Ok(_)
            if cert.public_key().algorithm.algorithm
                == x509_parser::oid_registry::OID_SIG_ED25519 =>
        {
            "Ed25519"
        }
        _ => "unknown",
    };
    let serial = cert.serial.to_string();
    let issuer_serial = first_value(
        cert.issuer()
            .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER),
    );
    Ok(Details {
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        names,
        subject: cert.subject().to_string(),
        identifier: format!("{issuer_serial}-{serial}"),
        serial,
        issuer,
        issuer_organization: first_value(cert.issuer().iter_organization()),
        key_algorithm: key_algorithm.to_owned(),
    })
}

/// The first attribute of a name that is a string, or empty.
fn first_value<'a>(
    mut attrs: impl Iterator<Item = &'a x509_parser::x509::AttributeTypeAndValue<'a>>,
) -> String {
    attrs
        .find_map(|attr| attr.as_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The certificate served when no other applies: self-signed, made at
/// start-up, with ingress-nginx's identity (CN "Kubernetes Ingress
/// Controller Fake Certificate", O "Acme Co", SAN `ingress.local`, one
/// year), but an ECDSA P-256 key instead of RSA-2048.
pub fn fake_certificate() -> Result<Certificate, CertError> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256};
    let mut params = CertificateParams::new(vec!["ingress.local".to_owned()])
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        "Kubernetes Ingress Controller Fake Certificate",
    );
    name.push(DnType::OrganizationName, "Acme Co");
    params.distinguished_name = name;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(365);
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| CertError::UnusableKey(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| CertError::BadCertificate(e.to_string()))?;
    Certificate::from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    /// A self-signed certificate and key, PEM, for `names`.
    pub(crate) fn self_signed(names: &[&str], key: &KeyPair) -> (String, String) {
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn parses_rsa_and_ecdsa_keys_in_every_pem_form() {
        for alg in [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_RSA_SHA256,
        ] {
            let key = KeyPair::generate_for(alg).unwrap();
            let (cert, key) = self_signed(&["a.example.com"], &key);
            let parsed = Certificate::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
            assert_eq!(parsed.names(), ["a.example.com"]);
            assert!(!parsed.is_expired_at(time::OffsetDateTime::now_utc().unix_timestamp()));
        }
    }

    #[test]
    fn refuses_mismatched_and_malformed_input() {
        let a = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let b = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (cert, _) = self_signed(&["a.com"], &a);
        let other_key = b.serialize_pem();
        assert_eq!(
            Certificate::from_pem(cert.as_bytes(), other_key.as_bytes()).unwrap_err(),
            CertError::KeyMismatch
        );
        assert_eq!(
            Certificate::from_pem(b"", other_key.as_bytes()).unwrap_err(),
            CertError::NoCertificate
        );
        assert!(matches!(
            Certificate::from_pem(cert.as_bytes(), b"not a key").unwrap_err(),
            CertError::NoKey(_)
        ));
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(Certificate::from_pem(garbage.as_bytes(), other_key.as_bytes()).is_err());
    }

    #[test]
    fn host_matching_follows_certificate_rules() {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (cert, key) = self_signed(&["exact.com", "*.wild.com"], &key);
        let c = Certificate::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert!(c.matches_host("exact.com"));
        assert!(c.matches_host("a.wild.com"));
        assert!(!c.matches_host("a.b.wild.com"));
        assert!(!c.matches_host("wild.com"));
        assert!(!c.matches_host("other.com"));
    }

    #[test]
    fn the_fake_certificate_looks_like_ingress_nginx_s() {
        let fake = fake_certificate().unwrap();
        assert!(
            fake.subject()
                .contains("Kubernetes Ingress Controller Fake Certificate")
        );
        assert!(fake.subject().contains("Acme Co"));
        assert_eq!(fake.names(), ["ingress.local"]);
        assert_eq!(fake.issuer_organization(), "Acme Co");
        assert_eq!(fake.identifier(), format!("-{}", fake.serial()));
        assert!(fake.serial().bytes().all(|b| b.is_ascii_digit()));
        let year = fake.not_after() - fake.not_before();
        assert!((365 * 86400..366 * 86400).contains(&year), "{year}");
    }
}
