//! Checking a responder's answer before it is stapled (RFC 6960 §3.2):
//! a successful basic response; a single response about the very
//! certificate asked about; signed by the issuer, or by a responder whose
//! certificate the issuer signed for OCSP signing; current (`thisUpdate`
//! not in the future, `nextUpdate` not past); status `good` (as nginx,
//! which staples nothing else). Signatures are checked with rustls-webpki
//! and the algorithms of the rustls provider the listeners use.

use std::time::Duration;

use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, UnixTime};
use sha1::{Digest, Sha1};
use webpki::{EndEntityCert, KeyUsage, anchor_from_trusted_cert};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspResponse, OcspResponseStatus, ResponderId,
};

use super::target::{SHA1, Target};

/// `id-pkix-ocsp-basic`: the only response type there is.
const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// `id-kp-OCSPSigning` (1.3.6.1.5.5.7.3.9), as DER contents.
const EKU_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];
/// How far in the future `thisUpdate` may be (clocks differ), as
/// OpenSSL's `OCSP_check_validity` allows.
pub(super) const CLOCK_SKEW: i64 = 300;

/// A response fit to staple: what it says about time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds, if the responder gave one.
    pub next_update: Option<i64>,
}

/// Why a response is not stapled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Not a DER OCSP response.
    #[error("not an OCSP response: {0}")]
    Malformed(String),
    /// The responder said it could not answer.
    #[error("the responder answered {0:?}")]
    Unsuccessful(OcspResponseStatus),
    /// No single response about the certificate asked about.
    #[error("the response is not about this certificate")]
    Mismatched,
    /// Not signed by the issuer nor by a responder it delegated to.
    #[error("the response is not signed by the issuer or its OCSP responder: {0}")]
    Signature(String),
    /// `thisUpdate` lies in the future.
    #[error("the response is not valid yet")]
    NotYetValid,
    /// `nextUpdate` has passed.
    #[error("the response has expired")]
    Expired,
    /// The certificate is revoked, or the responder does not know it.
    #[error("the responder says the certificate is {0}")]
    NotGood(&'static str),
}

impl Rejected {
    /// Whether the responder vouched, properly signed, that the
    /// certificate is not good: an earlier `good` must no longer be
    /// stapled.
    pub fn is_not_good(&self) -> bool {
        matches!(self, Rejected::NotGood(_))
    }
}

/// Checks `der`, the responder's answer for `target`, at `now` (Unix
/// seconds).
pub(super) fn verify(der: &[u8], target: &Target, now: i64) -> Result<Verified, Rejected> {
    let malformed = |e: x509_cert::der::Error| Rejected::Malformed(e.to_string());
    let response = OcspResponse::from_der(der).map_err(malformed)?;
    if response.response_status != OcspResponseStatus::Successful {
        return Err(Rejected::Unsuccessful(response.response_status));
    }
    let bytes = response
        .response_bytes
        .ok_or_else(|| Rejected::Malformed("a successful response without a body".to_owned()))?;
    if bytes.response_type != OCSP_BASIC {
        return Err(Rejected::Malformed(format!(
            "response type {}",
            bytes.response_type
        )));
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).map_err(malformed)?;
    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| same_certificate(&r.cert_id, &target.cert_id))
        .ok_or(Rejected::Mismatched)?;
    check_signature(&basic, target, now)?;
    let this_update = seconds(single.this_update.0.to_unix_duration());
    let next_update = single.next_update.map(|t| seconds(t.0.to_unix_duration()));
    if this_update > now + CLOCK_SKEW {
        return Err(Rejected::NotYetValid);
    }
    if next_update.is_some_and(|next| next <= now || next < this_update) {
        return Err(Rejected::Expired);
    }
    match single.cert_status {
        CertStatus::Good(_) => Ok(Verified {
            this_update,
            next_update,
        }),
        CertStatus::Revoked(_) => Err(Rejected::NotGood("revoked")),
        CertStatus::Unknown(_) => Err(Rejected::NotGood("unknown")),
    }
}

/// Whether a response's CertID names the certificate asked about (the
/// SHA-1 parameters may be absent or NULL).
fn same_certificate(answer: &CertId, asked: &CertId) -> bool {
    answer.hash_algorithm.oid == SHA1
        && answer.issuer_name_hash == asked.issuer_name_hash
        && answer.issuer_key_hash == asked.issuer_key_hash
        && answer.serial_number == asked.serial_number
}

/// Checks that the issuer, or a responder it authorised, signed `basic`.
fn check_signature(basic: &BasicOcspResponse, target: &Target, now: i64) -> Result<(), Rejected> {
    let invalid = |what: &dyn std::fmt::Display| Rejected::Signature(what.to_string());
    let responder = &basic.tbs_response_data.responder_id;
    let issuer_signed = match responder {
        ResponderId::ByName(name) => *name == target.issuer_name,
        ResponderId::ByKey(hash) => hash.as_bytes() == target.issuer_key_hash,
    };
    let signer = if issuer_signed {
        target.issuer.clone()
    } else {
        delegated_responder(basic, target, now)?
    };
    let signed = basic.tbs_response_data.to_der().map_err(|e| invalid(&e))?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or_else(|| invalid(&"the signature is not whole bytes"))?;
    let algorithm = algorithm_id(&basic.signature_algorithm).map_err(|e| invalid(&e))?;
    let signer = EndEntityCert::try_from(&signer).map_err(|e| invalid(&e))?;
    let verified = aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .all
        .iter()
        .filter(|alg| alg.signature_alg_id().as_ref() == algorithm.as_slice())
        .any(|alg| signer.verify_signature(*alg, &signed, signature).is_ok());
    if verified {
        Ok(())
    } else {
        Err(invalid(&format!(
            "bad signature ({})",
            basic.signature_algorithm.oid
        )))
    }
}

/// The certificate of the responder named in `basic`, sent with it and
/// issued by the issuer for OCSP signing, valid now.
fn delegated_responder(
    basic: &BasicOcspResponse,
    target: &Target,
    now: i64,
) -> Result<CertificateDer<'static>, Rejected> {
    let invalid = |what: &dyn std::fmt::Display| Rejected::Signature(what.to_string());
    let named = basic.certs.iter().flatten().find(|cert| {
        let tbs = &cert.tbs_certificate;
        match &basic.tbs_response_data.responder_id {
            ResponderId::ByName(name) => tbs.subject == *name,
            ResponderId::ByKey(hash) => {
                Sha1::digest(tbs.subject_public_key_info.subject_public_key.raw_bytes()).as_slice()
                    == hash.as_bytes()
            }
        }
    });
    let cert = named.ok_or_else(|| invalid(&"the responder is neither the issuer nor sent"))?;
    let der = CertificateDer::from(cert.to_der().map_err(|e| invalid(&e))?);
    let anchor = anchor_from_trusted_cert(&target.issuer).map_err(|e| invalid(&e))?;
    let end_entity = EndEntityCert::try_from(&der).map_err(|e| invalid(&e))?;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0).unsigned_abs()));
    end_entity
        .verify_for_usage(
            aws_lc_rs::default_provider()
                .signature_verification_algorithms
                .all,
            &[anchor],
            &[],
            time,
            KeyUsage::required(EKU_OCSP_SIGNING),
            None,
            None,
        )
        .map_err(|e| invalid(&format!("the responder's certificate: {e}")))?;
    Ok(der)
}

/// An AlgorithmIdentifier as webpki names algorithms: its DER contents,
/// without the outer SEQUENCE.
fn algorithm_id(
    alg: &x509_cert::spki::AlgorithmIdentifierOwned,
) -> Result<Vec<u8>, x509_cert::der::Error> {
    let mut id = alg.oid.to_der()?;
    if let Some(parameters) = &alg.parameters {
        id.extend(parameters.to_der()?);
    }
    Ok(id)
}

fn seconds(since_epoch: Duration) -> i64 {
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::super::test_ca::{Answer, TestCa, stranger};
    use super::*;
    use x509_cert::der::asn1::GeneralizedTime;
    use x509_ocsp::{OcspGeneralizedTime, RevokedInfo};

    fn setup() -> (TestCa, Target) {
        let ca = TestCa::new();
        let leaf = ca.leaf(Some("http://127.0.0.1:1/"), 0x77);
        let target = Target::from_chain(&leaf.chain).unwrap();
        (ca, target)
    }

    #[test]
    fn a_good_response_signed_by_the_issuer_is_accepted() {
        let (ca, target) = setup();
        let answer = Answer::good(ca.signer());
        let der = answer.encode(&target.cert_id);
        let verified = verify(&der, &target, super::super::unix_now()).unwrap();
        assert_eq!(verified.this_update, answer.this_update);
        assert_eq!(verified.next_update, answer.next_update);
    }

    #[test]
    fn a_delegated_responder_needs_the_issuer_s_signature_and_ocsp_signing() {
        let (ca, target) = setup();
        let now = super::super::unix_now();
        let responder = ca.responder(true);
        let mut answer = Answer::good(&responder);
        answer.certs = vec![responder.der()];
        verify(&answer.encode(&target.cert_id), &target, now).unwrap();

        // Not sent along: nothing to check the signature with.
        answer.certs.clear();
        let err = verify(&answer.encode(&target.cert_id), &target, now).unwrap_err();
        assert!(matches!(err, Rejected::Signature(_)), "{err}");

        // Issued by the CA, but not for OCSP signing.
        let server = ca.responder(false);
        let mut answer = Answer::good(&server);
        answer.certs = vec![server.der()];
        let err = verify(&answer.encode(&target.cert_id), &target, now).unwrap_err();
        assert!(matches!(err, Rejected::Signature(_)), "{err}");

        // Self-made: not issued by the CA.
        let outsider = stranger();
        let mut answer = Answer::good(&outsider);
        answer.certs = vec![outsider.der()];
        let err = verify(&answer.encode(&target.cert_id), &target, now).unwrap_err();
        assert!(matches!(err, Rejected::Signature(_)), "{err}");
    }

    #[test]
    fn a_response_about_another_certificate_or_tampered_with_is_refused() {
        let (ca, target) = setup();
        let now = super::super::unix_now();
        let other = ca.leaf(Some("http://127.0.0.1:1/"), 0x78);
        let other = Target::from_chain(&other.chain).unwrap();
        let der = Answer::good(ca.signer()).encode(&other.cert_id);
        assert_eq!(verify(&der, &target, now), Err(Rejected::Mismatched));

        let mut der = Answer::good(ca.signer()).encode(&target.cert_id);
        // Flip a bit inside nextUpdate's digits (a signed field).
        let at = der.len() / 2;
        der[at] ^= 0x01;
        assert!(verify(&der, &target, now).is_err());

        assert!(matches!(
            verify(b"not der", &target, now),
            Err(Rejected::Malformed(_))
        ));
        let try_later = OcspResponse::try_later().to_der().unwrap();
        assert_eq!(
            verify(&try_later, &target, now),
            Err(Rejected::Unsuccessful(OcspResponseStatus::TryLater))
        );
    }

    #[test]
    fn only_current_good_responses_are_stapled() {
        let (ca, target) = setup();
        let now = super::super::unix_now();
        let mut answer = Answer::good(ca.signer());
        answer.this_update = now - 7200;
        answer.next_update = Some(now - 60);
        let der = answer.encode(&target.cert_id);
        assert_eq!(verify(&der, &target, now), Err(Rejected::Expired));

        answer.this_update = now + CLOCK_SKEW + 60;
        answer.next_update = Some(now + 7200);
        let der = answer.encode(&target.cert_id);
        assert_eq!(verify(&der, &target, now), Err(Rejected::NotYetValid));

        // Within the clock skew, and without nextUpdate: accepted.
        answer.this_update = now + 10;
        answer.next_update = None;
        let der = answer.encode(&target.cert_id);
        assert_eq!(verify(&der, &target, now).unwrap().next_update, None);

        let mut answer = Answer::good(ca.signer());
        answer.status = CertStatus::Revoked(RevokedInfo {
            revocation_time: OcspGeneralizedTime(
                GeneralizedTime::from_unix_duration(Duration::from_secs(1_700_000_000)).unwrap(),
            ),
            revocation_reason: None,
        });
        let rejected = verify(&answer.encode(&target.cert_id), &target, now).unwrap_err();
        assert_eq!(rejected, Rejected::NotGood("revoked"));
        assert!(rejected.is_not_good());
    }
}
