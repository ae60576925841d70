//! Tests only: a CA issuing leaves that name an OCSP responder, and OCSP
//! responses signed by it, by a responder it delegates to, or by a
//! stranger.

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls::SignatureScheme;
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha1::{Digest, Sha1};
use x509_cert::der::asn1::{BitString, GeneralizedTime, Ia5String, ObjectIdentifier, OctetString};
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AccessDescription, AuthorityInfoAccessSyntax};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspResponse, ResponderId,
    ResponseData, SingleResponse, Version,
};

use super::unix_now;
use crate::tls::Certificate;

/// `ecdsa-with-SHA256`.
const ECDSA_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// A key that signs: the CA's, a delegated responder's, or a stranger's.
pub(crate) struct Signer {
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl Signer {
    fn key_hash(&self) -> Vec<u8> {
        let cert = x509_cert::Certificate::from_der(&self.der).unwrap();
        let spk = cert
            .tbs_certificate
            .subject_public_key_info
            .subject_public_key;
        Sha1::digest(spk.raw_bytes()).to_vec()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.serialize_der()));
        let key = aws_lc_rs::sign::any_ecdsa_type(&der).unwrap();
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        signer.sign(message).unwrap()
    }
}

/// A self-signed CA.
pub(crate) struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    own: Signer,
    pem: String,
}

/// A leaf certificate: its chain (leaf, CA) and the parsed certificate.
pub(crate) struct Leaf {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) certificate: Arc<Certificate>,
    /// The chain (PEM).
    pub(crate) pem: String,
    /// The key (PEM).
    pub(crate) key_pem: String,
}

/// Who signs a response, and what it says.
pub(crate) struct Answer<'a> {
    pub(crate) signer: &'a Signer,
    /// Certificates sent with the response.
    pub(crate) certs: Vec<CertificateDer<'static>>,
    pub(crate) status: CertStatus,
    pub(crate) this_update: i64,
    pub(crate) next_update: Option<i64>,
}

impl TestCa {
    pub(crate) fn new() -> TestCa {
        TestCa::named("ocsp test CA")
    }

    /// A CA with common name `name`.
    pub(crate) fn named(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        let own = Signer {
            key: KeyPair::from_pem(&key.serialize_pem()).unwrap(),
            der: cert.der().clone(),
        };
        TestCa {
            issuer: Issuer::new(params, key),
            own,
            pem: cert.pem(),
        }
    }

    /// The CA's certificate.
    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.own.der.clone()
    }

    /// SHA-1 of the CA's public key.
    pub(crate) fn key_hash(&self) -> Vec<u8> {
        self.own.key_hash()
    }

    /// The CA as a response signer.
    pub(crate) fn signer(&self) -> &Signer {
        &self.own
    }

    /// A leaf for `leaf.test` with serial number `serial`, naming
    /// `responder` in its Authority Information Access.
    pub(crate) fn leaf(&self, responder: Option<&str>, serial: u64) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["leaf.test".to_owned()]).unwrap();
        params.serial_number = Some(SerialNumber::from(serial));
        if let Some(url) = responder {
            params.custom_extensions.push(aia(url));
        }
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let pem = format!("{}{}", cert.pem(), self.pem);
        let certificate =
            Certificate::from_pem(pem.as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        Leaf {
            chain: vec![cert.der().clone(), self.own.der.clone()],
            certificate: Arc::new(certificate),
            pem,
            key_pem: key.serialize_pem(),
        }
    }

    /// A responder certificate issued by this CA, with the OCSP signing
    /// extended key usage when `ocsp_signing`.
    pub(crate) fn responder(&self, ocsp_signing: bool) -> Signer {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "ocsp responder");
        params.extended_key_usages = if ocsp_signing {
            vec![ExtendedKeyUsagePurpose::OcspSigning]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth]
        };
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let der = params.signed_by(&key, &self.issuer).unwrap().der().clone();
        Signer { key, der }
    }
}

impl Signer {
    /// This signer's certificate.
    pub(crate) fn der(&self) -> CertificateDer<'static> {
        self.der.clone()
    }
}

impl<'a> Answer<'a> {
    /// `good`, signed by `signer`, from a minute ago to an hour from now.
    pub(crate) fn good(signer: &'a Signer) -> Answer<'a> {
        let now = unix_now();
        Answer {
            signer,
            certs: Vec::new(),
            status: CertStatus::good(),
            this_update: now - 60,
            next_update: Some(now + 3600),
        }
    }

    /// The DER `OCSPResponse` about `cert_id`.
    pub(crate) fn encode(&self, cert_id: &CertId) -> Vec<u8> {
        let time = |t: i64| {
            OcspGeneralizedTime(
                GeneralizedTime::from_unix_duration(Duration::from_secs(t as u64)).unwrap(),
            )
        };
        let tbs = ResponseData {
            version: Version::V1,
            responder_id: ResponderId::ByKey(OctetString::new(self.signer.key_hash()).unwrap()),
            produced_at: time(self.this_update),
            responses: vec![SingleResponse {
                cert_id: cert_id.clone(),
                cert_status: self.status,
                this_update: time(self.this_update),
                next_update: self.next_update.map(time),
                single_extensions: None,
            }],
            response_extensions: None,
        };
        let signature = self.signer.sign(&tbs.to_der().unwrap());
        let certs = self
            .certs
            .iter()
            .map(|c| x509_cert::Certificate::from_der(c).unwrap())
            .collect::<Vec<_>>();
        let basic = BasicOcspResponse {
            tbs_response_data: tbs,
            signature_algorithm: AlgorithmIdentifierOwned {
                oid: ECDSA_SHA256,
                parameters: None,
            },
            signature: BitString::from_bytes(&signature).unwrap(),
            certs: (!certs.is_empty()).then_some(certs),
        };
        OcspResponse::successful(basic).unwrap().to_der().unwrap()
    }
}

/// A stranger's key, with a certificate of its own.
pub(crate) fn stranger() -> Signer {
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["stranger.test".to_owned()]).unwrap();
    let der = params.self_signed(&key).unwrap().der().clone();
    Signer { key, der }
}

/// An Authority Information Access extension naming OCSP responder `url`.
fn aia(url: &str) -> CustomExtension {
    let access = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1"),
        access_location: GeneralName::UniformResourceIdentifier(Ia5String::new(url).unwrap()),
    }]);
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], access.to_der().unwrap())
}
