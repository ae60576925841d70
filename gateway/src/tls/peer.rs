//! What a TLS connection knows about its client: the server name it asked
//! for, and the certificate it sent with the result of verifying it
//! against a host's CA, in nginx's terms (`$ssl_client_verify`,
//! `$ssl_client_s_dn`, `$ssl_client_i_dn`, `$ssl_client_escaped_cert`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use rustls::crypto::aws_lc_rs;
use rustls::pki_types::{CertificateDer, UnixTime};
use webpki::{EndEntityCert, ExpirationPolicy, KeyUsage, RevocationOptionsBuilder, VerifiedPath};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

use super::client_auth::ClientAuth;

/// nginx's `NGX_ESCAPE_URI_COMPONENT`: everything but ALPHA, DIGIT and
/// `-._~` is percent-encoded.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The TLS side of one client connection.
#[derive(Debug, Default)]
pub struct ClientTls {
    /// The server name (SNI) the client asked for, lower case.
    pub(crate) sni: Option<Box<str>>,
    /// The client's certificate, when the host asked for one and got it.
    pub(crate) peer: Option<PeerCertificate>,
}

impl ClientTls {
    /// A connection that asked for `sni` and presented `peer`.
    pub fn new(sni: Option<Box<str>>, peer: Option<PeerCertificate>) -> Self {
        Self { sni, peer }
    }

    /// The server name the client asked for.
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// The client's certificate, if any.
    pub fn peer(&self) -> Option<&PeerCertificate> {
        self.peer.as_ref()
    }
}

/// The result of verifying a client certificate (nginx's
/// `$ssl_client_verify`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The chain leads to the host's CA within the depth and is valid now.
    Success,
    /// No certificate was sent (or asked for).
    None,
    /// Verification failed; `reason` in OpenSSL's words.
    Failed {
        /// What failed, as OpenSSL's `X509_verify_cert_error_string`.
        reason: &'static str,
        /// Whether the only fault is an unknown issuer, which
        /// `optional_no_ca` accepts.
        issuer_only: bool,
    },
}

impl Verdict {
    /// The `ssl-client-verify` value: `SUCCESS`, `NONE` or `FAILED:<reason>`.
    pub fn header(&self) -> HeaderValue {
        match self {
            Self::Success => HeaderValue::from_static("SUCCESS"),
            Self::None => HeaderValue::from_static("NONE"),
            Self::Failed { reason, .. } => HeaderValue::from_str(&format!("FAILED:{reason}"))
                .unwrap_or_else(|_| HeaderValue::from_static("FAILED")),
        }
    }
}

/// A client's certificate chain, verified once against the CA of the host
/// its handshake named, with the header values made from it.
#[derive(Debug)]
pub struct PeerCertificate {
    /// The rule the chain was verified with.
    verified_by: Arc<ClientAuth>,
    /// The chain as sent, end entity first (kept to verify it again when a
    /// host's CA changes while the connection is open).
    chain: Vec<CertificateDer<'static>>,
    verdict: Verdict,
    /// The subject, RFC 2253 (nginx's `$ssl_client_s_dn`).
    subject: String,
    /// `ssl-client-subject-dn`, `ssl-client-issuer-dn`, `ssl-client-cert`.
    pub(crate) subject_header: Option<HeaderValue>,
    pub(crate) issuer_header: Option<HeaderValue>,
    pub(crate) cert_header: Option<HeaderValue>,
}

impl PeerCertificate {
    /// Verifies the chain a client sent (`None` or empty: none was sent)
    /// against `auth`, at the current time.
    pub fn verify(auth: &Arc<ClientAuth>, chain: Option<&[CertificateDer<'_>]>) -> Option<Self> {
        let chain: Vec<CertificateDer<'static>> =
            chain?.iter().map(|c| c.clone().into_owned()).collect();
        let leaf = chain.first()?;
        let verdict = verify_chain(auth, &chain, UnixTime::now());
        let (subject, issuer) = X509Certificate::from_der(leaf.as_ref())
            .map(|(_, cert)| (rfc2253(cert.subject()), rfc2253(cert.issuer())))
            .unwrap_or_default();
        Some(Self {
            subject_header: header(&subject),
            issuer_header: header(&issuer),
            cert_header: HeaderValue::from_str(&escaped_pem(leaf)).ok(),
            subject,
            verified_by: auth.clone(),
            chain,
            verdict,
        })
    }

    /// The verdict under `auth` (the request's host's rule): the one made
    /// at the handshake when `auth` made it, else a new verification (the
    /// CA changed since, or the connection's server name named another
    /// host's rule).
    pub fn verdict_for(&self, auth: &Arc<ClientAuth>) -> Cow<'_, Verdict> {
        if Arc::ptr_eq(&self.verified_by, auth) {
            Cow::Borrowed(&self.verdict)
        } else {
            Cow::Owned(verify_chain(auth, &self.chain, UnixTime::now()))
        }
    }

    /// The subject, RFC 2253 (nginx's `$ssl_client_s_dn`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

fn header(value: &str) -> Option<HeaderValue> {
    (!value.is_empty())
        .then(|| HeaderValue::from_str(value).ok())
        .flatten()
}

/// Verifies `chain` (end entity first, then what the client sent to help
/// build the path) against the rule's CAs and revocation lists, for
/// client authentication, with at most `depth` intermediates.
pub(crate) fn verify_chain(
    auth: &ClientAuth,
    chain: &[CertificateDer<'_>],
    now: UnixTime,
) -> Verdict {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Verdict::None;
    };
    let cert = match EndEntityCert::try_from(leaf) {
        Ok(cert) => cert,
        Err(error) => return failed(&error, chain.len()),
    };
    let crls: Vec<_> = auth.crls().iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crls).ok().map(|builder| {
        builder
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build()
    });
    let within_depth = within_depth(auth.settings().depth);
    let algorithms = aws_lc_rs::default_provider().signature_verification_algorithms;
    match cert.verify_for_usage(
        algorithms.all,
        auth.anchors(),
        intermediates,
        now,
        KeyUsage::client_auth(),
        revocation,
        Some(&within_depth),
    ) {
        Ok(_) => Verdict::Success,
        Err(error) => failed(&error, chain.len()),
    }
}

/// OpenSSL's verify depth as a check of a built path: at most `depth`
/// intermediate certificates (neither the certificate nor its CA counts).
pub(crate) fn within_depth(depth: u32) -> impl Fn(&VerifiedPath<'_>) -> Result<(), webpki::Error> {
    let depth = usize::try_from(depth).unwrap_or(usize::MAX);
    move |path| {
        if path.intermediate_certificates().count() > depth {
            Err(webpki::Error::MaximumPathDepthExceeded)
        } else {
            Ok(())
        }
    }
}

/// A failure in OpenSSL's words, as nginx reports it.
fn failed(error: &webpki::Error, chain_len: usize) -> Verdict {
    use webpki::Error as E;
    let (reason, issuer_only) = match error {
        E::UnknownIssuer if chain_len == 1 => ("unable to verify the first certificate", true),
        E::UnknownIssuer => ("unable to get local issuer certificate", true),
        E::CertExpired { .. } => ("certificate has expired", false),
        E::CertNotValidYet { .. } => ("certificate is not yet valid", false),
        E::CertRevoked => ("certificate revoked", false),
        E::UnknownRevocationStatus => ("unable to get certificate CRL", false),
        E::CrlExpired { .. } => ("CRL has expired", false),
        E::MaximumPathDepthExceeded | E::PathLenConstraintViolated => {
            ("certificate chain too long", false)
        }
        E::InvalidSignatureForPublicKey => ("certificate signature failure", false),
        E::RequiredEkuNotFoundContext(_) | E::CaUsedAsEndEntity | E::EndEntityUsedAsCa => {
            ("unsupported certificate purpose", false)
        }
        _ => ("unspecified certificate verification error", false),
    };
    Verdict::Failed {
        reason,
        issuer_only,
    }
}

/// A name as OpenSSL prints it with `XN_FLAG_RFC2253` (nginx's
/// `$ssl_client_s_dn`): the most specific attribute first, `,` between
/// RDNs and `+` inside one, OpenSSL's short names, RFC 2253 escapes, bytes
/// outside printable ASCII as `\XX`, non-string values as `#` and hex.
pub(crate) fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attr) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = attr.attr_type().to_id_string();
            out.push_str(short_name(&oid).unwrap_or(&oid));
            out.push('=');
            match attr.as_str() {
                Ok(value) => escape_2253(value, &mut out),
                Err(_) => {
                    out.push('#');
                    for b in attr.attr_value().data {
                        let _ = write!(out, "{b:02X}");
                    }
                }
            }
        }
    }
    out
}

/// OpenSSL's short names of the usual attribute types.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

fn escape_2253(value: &str, out: &mut String) {
    let last = value.len().saturating_sub(1);
    for (i, b) in value.bytes().enumerate() {
        match b {
            b',' | b'+' | b'"' | b'\\' | b'<' | b'>' | b';' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b'#' if i == 0 => out.push_str("\\#"),
            b' ' if i == 0 || i == last => out.push_str("\\ "),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:02X}");
            }
        }
    }
}

/// The certificate as PEM, percent-encoded as nginx's
/// `$ssl_client_escaped_cert` (`ssl-client-cert`).
fn escaped_pem(cert: &CertificateDer<'_>) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let mut pem = String::with_capacity(encoded.len() + 80);
    pem.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    utf8_percent_encode(&pem, URI_COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::client_auth::ClientAuthSettings;
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };

    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    fn ca(name: &str, parent: Option<&Ca>) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = match parent {
            None => params.self_signed(&key).unwrap(),
            Some(parent) => params.signed_by(&key, &parent.issuer).unwrap(),
        };
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(cn: &str, by: &Ca, days: (i64, i64)) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Acme, Inc.");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        params.signed_by(&key, &by.issuer).unwrap().der().clone()
    }

    fn der(ca: &Ca) -> CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap()
    }

    fn auth(ca: &Ca, depth: u32) -> Arc<ClientAuth> {
        let settings = ClientAuthSettings {
            depth,
            ..ClientAuthSettings::default()
        };
        Arc::new(ClientAuth::new(ca.pem.as_bytes(), None, settings).unwrap())
    }

    fn verdict(auth: &ClientAuth, chain: &[CertificateDer<'static>]) -> Verdict {
        verify_chain(auth, chain, UnixTime::now())
    }

    #[test]
    fn verdicts_read_as_nginx_s() {
        let root = ca("root", None);
        let other = ca("other", None);
        let rule = auth(&root, 1);
        assert_eq!(
            verdict(&rule, &[leaf("c", &root, (-1, 30))]),
            Verdict::Success
        );
        assert_eq!(verdict(&rule, &[]), Verdict::None);
        assert_eq!(
            verdict(&rule, &[leaf("c", &other, (-1, 30))]),
            Verdict::Failed {
                reason: "unable to verify the first certificate",
                issuer_only: true
            }
        );
        let expired = verdict(&rule, &[leaf("c", &root, (-30, -1))]);
        assert_eq!(expired.header(), "FAILED:certificate has expired");
        assert!(matches!(
            expired,
            Verdict::Failed {
                issuer_only: false,
                ..
            }
        ));
        assert_eq!(Verdict::Success.header(), "SUCCESS");
        assert_eq!(Verdict::None.header(), "NONE");
    }

    #[test]
    fn depth_counts_intermediates_between_the_certificate_and_the_ca() {
        let root = ca("root", None);
        let one = ca("one", Some(&root));
        let two = ca("two", Some(&one));
        let short = [leaf("c", &one, (-1, 30)), der(&one)];
        let long = [leaf("c", &two, (-1, 30)), der(&two), der(&one)];
        assert_eq!(verdict(&auth(&root, 1), &short), Verdict::Success);
        assert_eq!(
            verdict(&auth(&root, 1), &long),
            Verdict::Failed {
                reason: "certificate chain too long",
                issuer_only: false
            }
        );
        assert_eq!(verdict(&auth(&root, 2), &long), Verdict::Success);
    }

    #[test]
    fn a_changed_ca_is_verified_again() {
        let root = ca("root", None);
        let first = auth(&root, 1);
        let peer = PeerCertificate::verify(&first, Some(&[leaf("c", &root, (-1, 30))])).unwrap();
        assert_eq!(*peer.verdict_for(&first), Verdict::Success);
        let other = auth(&ca("other", None), 1);
        assert!(matches!(*peer.verdict_for(&other), Verdict::Failed { .. }));
        assert!(PeerCertificate::verify(&first, Some(&[])).is_none());
    }

    #[test]
    fn names_and_certificates_are_written_as_nginx_writes_them() {
        let root = ca("root", None);
        let cert = leaf("client one", &root, (-1, 30));
        let peer = PeerCertificate::verify(&auth(&root, 1), Some(&[cert])).unwrap();
        assert_eq!(peer.subject(), "O=Acme\\, Inc.,CN=client one");
        assert_eq!(peer.issuer_header.as_ref().unwrap(), "CN=root");
        let escaped = peer.cert_header.as_ref().unwrap().to_str().unwrap();
        assert!(escaped.starts_with("-----BEGIN%20CERTIFICATE-----%0A"));
        assert!(escaped.ends_with("-----END%20CERTIFICATE-----%0A"));
        assert!(!escaped.contains('/') && !escaped.contains('+') && !escaped.contains('='));
    }
}
