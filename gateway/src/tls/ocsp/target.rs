//! What to ask about one certificate: the responder URL from its Authority
//! Information Access extension, and the RFC 6960 request for it, whose
//! CertID (SHA-1, which every responder answers) is made from the
//! certificate's serial number and its issuer, the chain's next
//! certificate.

use rustls::pki_types::CertificateDer;
use sha1::{Digest, Sha1};
use x509_cert::Certificate as X509;
use x509_cert::der::asn1::{Any, ObjectIdentifier, OctetString};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::AuthorityInfoAccessSyntax;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::name::Name;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};

/// `id-pe-authorityInfoAccess` (RFC 5280).
const AUTHORITY_INFO_ACCESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
/// `id-ad-ocsp`: an access description naming an OCSP responder.
const AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
/// `id-sha1`, the CertID hash.
pub(super) const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// The longest responder URL used.
const MAX_URL_LEN: usize = 2048;

/// Why a certificate is served without a staple.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotStapled {
    /// No OCSP responder in the certificate.
    #[error("the certificate names no OCSP responder (Authority Information Access)")]
    NoResponder,
    /// The responder URL is not a plain `http://` URL.
    #[error("the OCSP responder {0:?} is not an http:// URL")]
    UnsupportedUrl(String),
    /// The chain does not hold the issuer after the certificate.
    #[error("tls.crt holds no issuer certificate after the certificate")]
    NoIssuer,
    /// A certificate of the chain does not parse.
    #[error("the certificate chain does not parse: {0}")]
    Malformed(String),
}

/// One certificate's OCSP query, and what checking the answer needs.
#[derive(Debug)]
pub struct Target {
    /// The responder.
    pub(super) url: http::Uri,
    /// The DER `OCSPRequest` POSTed to it.
    pub(super) request: Vec<u8>,
    /// The certificate asked about.
    pub(super) cert_id: CertId,
    /// The issuer's certificate (DER).
    pub(super) issuer: CertificateDer<'static>,
    /// The issuer's name.
    pub(super) issuer_name: Name,
    /// SHA-1 of the issuer's public key (a `byKey` responder ID).
    pub(super) issuer_key_hash: [u8; 20],
}

impl Target {
    /// The query for `chain`'s first certificate (end-entity first).
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Result<Target, NotStapled> {
        let parse = |der: &CertificateDer<'_>| {
            X509::from_der(der.as_ref()).map_err(|e| NotStapled::Malformed(e.to_string()))
        };
        let leaf = parse(chain.first().ok_or(NotStapled::NoIssuer)?)?;
        let url = responder_url(&leaf)?;
        let issuer_der = chain.get(1).ok_or(NotStapled::NoIssuer)?;
        let issuer = parse(issuer_der)?;
        let leaf_tbs = &leaf.tbs_certificate;
        if issuer.tbs_certificate.subject != leaf_tbs.issuer {
            return Err(NotStapled::NoIssuer);
        }
        let issuer_name_der = leaf_tbs
            .issuer
            .to_der()
            .map_err(|e| NotStapled::Malformed(e.to_string()))?;
        let issuer_key_hash: [u8; 20] = Sha1::digest(
            issuer
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes(),
        )
        .into();
        let name_hash: [u8; 20] = Sha1::digest(&issuer_name_der).into();
        let octets = |bytes: &[u8]| {
            OctetString::new(bytes).map_err(|e| NotStapled::Malformed(e.to_string()))
        };
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: SHA1,
                parameters: Some(Any::null()),
            },
            issuer_name_hash: octets(&name_hash)?,
            issuer_key_hash: octets(&issuer_key_hash)?,
            serial_number: leaf_tbs.serial_number.clone(),
        };
        let request = OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: cert_id.clone(),
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        }
        .to_der()
        .map_err(|e| NotStapled::Malformed(e.to_string()))?;
        Ok(Target {
            url,
            request,
            cert_id,
            issuer: issuer_der.clone().into_owned(),
            issuer_name: leaf_tbs.issuer.clone(),
            issuer_key_hash,
        })
    }

    /// The responder's URL.
    pub fn url(&self) -> &http::Uri {
        &self.url
    }
}

/// The first `http://` OCSP responder of the certificate's Authority
/// Information Access.
fn responder_url(cert: &X509) -> Result<http::Uri, NotStapled> {
    let extension = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == AUTHORITY_INFO_ACCESS)
        .ok_or(NotStapled::NoResponder)?;
    let access = AuthorityInfoAccessSyntax::from_der(extension.extn_value.as_bytes())
        .map_err(|e| NotStapled::Malformed(format!("Authority Information Access: {e}")))?;
    let mut urls = access.0.iter().filter_map(|d| match &d.access_location {
        GeneralName::UniformResourceIdentifier(uri) if d.access_method == AD_OCSP => {
            Some(uri.as_str())
        }
        _ => None,
    });
    let first = urls.next().ok_or(NotStapled::NoResponder)?;
    std::iter::once(first)
        .chain(urls)
        .find_map(http_url)
        .ok_or_else(|| NotStapled::UnsupportedUrl(first.chars().take(200).collect()))
}

/// `url` if it is an absolute `http://` URL with a host.
fn http_url(url: &str) -> Option<http::Uri> {
    if url.len() > MAX_URL_LEN {
        return None;
    }
    let uri: http::Uri = url.parse().ok()?;
    let plain = uri.scheme_str() == Some("http");
    (plain && uri.host().is_some_and(|h| !h.is_empty())).then_some(uri)
}

#[cfg(test)]
mod tests {
    use super::super::test_ca::TestCa;
    use super::*;

    #[test]
    fn a_leaf_with_a_responder_and_its_issuer_gives_a_request() {
        let ca = TestCa::new();
        let leaf = ca.leaf(Some("http://127.0.0.1:8080/ocsp"), 0x1234);
        let target = Target::from_chain(&leaf.chain).unwrap();
        assert_eq!(target.url().to_string(), "http://127.0.0.1:8080/ocsp");
        assert_eq!(target.cert_id.serial_number.as_bytes(), [0x12, 0x34]);
        assert_eq!(target.issuer, leaf.chain[1]);
        // The request parses back into the same CertID.
        let request = OcspRequest::from_der(&target.request).unwrap();
        assert_eq!(request.tbs_request.request_list[0].req_cert, target.cert_id);
        assert_eq!(target.cert_id.issuer_key_hash.as_bytes(), ca.key_hash());
    }

    #[test]
    fn certificates_that_cannot_be_stapled_say_why() {
        let ca = TestCa::new();
        let no_aia = ca.leaf(None, 1);
        assert_eq!(
            Target::from_chain(&no_aia.chain).unwrap_err(),
            NotStapled::NoResponder
        );
        let leaf = ca.leaf(Some("http://ocsp.example/"), 2);
        assert_eq!(
            Target::from_chain(&leaf.chain[..1]).unwrap_err(),
            NotStapled::NoIssuer
        );
        let other = TestCa::named("another CA");
        let wrong_issuer = [leaf.chain[0].clone(), other.der()];
        assert_eq!(
            Target::from_chain(&wrong_issuer).unwrap_err(),
            NotStapled::NoIssuer
        );
        let https = ca.leaf(Some("https://ocsp.example/"), 3);
        assert!(matches!(
            Target::from_chain(&https.chain).unwrap_err(),
            NotStapled::UnsupportedUrl(_)
        ));
        let garbage = [CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01])];
        assert!(matches!(
            Target::from_chain(&garbage).unwrap_err(),
            NotStapled::Malformed(_)
        ));
    }

    #[test]
    fn only_absolute_http_urls_are_fetched() {
        assert!(http_url("http://ocsp.example.com").is_some());
        assert!(http_url("http://[::1]:8080/x").is_some());
        for bad in [
            "https://a/",
            "ldap://a/",
            "/relative",
            "http://",
            "not a url",
        ] {
            assert!(http_url(bad).is_none(), "{bad}");
        }
        assert!(http_url(&format!("http://a/{}", "x".repeat(MAX_URL_LEN))).is_none());
    }
}
