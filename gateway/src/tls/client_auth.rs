//! Client certificates (`auth-tls-*`): a host's CA, how strictly its
//! clients are checked, and the rustls configuration that asks for their
//! certificates.
//!
//! As nginx does, the TLS handshake never fails over a client certificate:
//! a host with client authentication asks for a certificate without
//! requiring one, the handshake only proves that the client holds the key
//! of what it sent, and the chain is verified against the host's CA right
//! after the handshake ([`ClientAuth::verify`]). The request then answers
//! 400 (nginx's 495/496), redirects to `auth-tls-error-page`, or passes
//! with the result in `ssl-client-verify` (see
//! the `client_cert` policy). That keeps `optional`,
//! `optional_no_ca` and per-host error pages possible, and a CA change
//! applies to the next request of an open connection too.

use std::sync::{Arc, OnceLock};

use http::HeaderValue;
use regex::{Regex, RegexBuilder};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::TrustAnchor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use webpki::CertRevocationList;

/// The compiled size limit of an `auth-tls-match-cn` expression.
const MATCH_CN_SIZE_LIMIT: usize = 256 * 1024;

/// `auth-tls-verify-client`: how strictly a host checks client
/// certificates (nginx's `ssl_verify_client`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VerifyClient {
    /// A valid certificate is required (the default).
    #[default]
    On,
    /// A certificate is asked for; without one the request passes, with an
    /// invalid one it is refused.
    Optional,
    /// Like `Optional`, but a certificate whose only fault is an unknown
    /// issuer passes too (the upstream verifies it).
    OptionalNoCa,
    /// No certificate is asked for; `ssl-client-verify` says `NONE`.
    Off,
}

impl VerifyClient {
    /// ingress-nginx's values: `on`, `optional`, `optional_no_ca`, `off`.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "on" => Self::On,
            "optional" => Self::Optional,
            "optional_no_ca" => Self::OptionalNoCa,
            "off" => Self::Off,
            _ => return None,
        })
    }

    /// Whether the handshake asks the client for a certificate.
    pub fn requests_certificate(self) -> bool {
        self != Self::Off
    }
}

/// `auth-tls-error-page`: where a client whose certificate failed goes
/// instead of getting a 400.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorPage {
    /// `http(s)://host/path` or `host/path`: a 302 to this `Location`, as
    /// nginx's `error_page 495 496 = <url>`.
    Redirect(HeaderValue),
    /// `/path`: nginx's internal redirect; the request is served by the
    /// route of this path on the same host, as a GET without body, and its
    /// answer is the client's.
    Internal(Box<str>),
}

impl ErrorPage {
    /// Parses a value the way ingress-nginx validates it: a path of
    /// `[A-Za-z0-9-_.]` segments, optionally after `[http(s)://]host[:port]`.
    /// Named locations (`@name`) do not exist here and are refused.
    pub fn parse(value: &str) -> Result<Self, &'static str> {
        let segments_ok = |path: &str| {
            path.split('/').skip(1).all(|segment| {
                segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
        };
        if value.starts_with('/') {
            return if segments_ok(value) {
                Ok(Self::Internal(value.into()))
            } else {
                Err("the path may hold only letters, digits, '-', '_', '.' and '/'")
            };
        }
        if value.starts_with('@') {
            return Err("named locations do not exist here; use a path or a URL");
        }
        let rest = value
            .strip_prefix("https://")
            .or_else(|| value.strip_prefix("http://"))
            .unwrap_or(value);
        let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
        let (host, port) = authority.split_once(':').unwrap_or((authority, "0"));
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        let port_ok = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if !host_ok || !port_ok || !segments_ok(path) {
            return Err("must be a path (/error) or a URL (https://host/error)");
        }
        HeaderValue::from_str(value)
            .map(Self::Redirect)
            .map_err(|_| "not a valid Location value")
    }
}

/// The `auth-tls-*` settings besides the Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAuthSettings {
    /// `auth-tls-verify-client`.
    pub verify: VerifyClient,
    /// `auth-tls-verify-depth` (1): the most intermediate certificates
    /// between the client's certificate and the CA.
    pub depth: u32,
    /// `auth-tls-error-page`.
    pub error_page: Option<ErrorPage>,
    /// `auth-tls-pass-certificate-to-upstream`: also send the certificate
    /// in `ssl-client-cert`.
    pub pass_certificate: bool,
    /// `auth-tls-match-cn`: an expression the certificate's subject (RFC
    /// 2253) must match, as nginx's `$ssl_client_s_dn !~ "<value>"`.
    pub match_cn: Option<String>,
}

/// Why a client-certificate configuration cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientAuthError {
    /// No certificate in `ca.crt`.
    #[error("ca.crt holds no PEM certificate")]
    NoCaCertificate,
    /// `ca.crt` is not valid PEM.
    #[error("ca.crt is not valid PEM: {0}")]
    BadCaPem(String),
    /// A certificate of `ca.crt` cannot be a trust anchor.
    #[error("ca.crt holds a certificate that cannot be used as a CA: {0}")]
    BadCa(String),
    /// `ca.crl` does not parse.
    #[error("ca.crl is not a valid PEM certificate revocation list: {0}")]
    BadCrl(String),
    /// `auth-tls-match-cn` is not a usable expression.
    #[error("auth-tls-match-cn: {0}")]
    BadMatchCn(String),
}

/// A host's client-certificate rule: its CA (and revocation lists) and the
/// settings, ready to verify clients. Built once per version of the
/// Secret and settings, and shared by every host it applies to.
pub struct ClientAuth {
    settings: ClientAuthSettings,
    anchors: Vec<TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
    hints: Arc<[DistinguishedName]>,
    match_cn: Option<Regex>,
    /// The Secret the CA came from (namespace, name), for messages.
    source: Option<(String, String)>,
    /// The rustls configurations asking for certificates, made on first
    /// use from a listener's (offering h2 and http/1.1, and http/1.1 only).
    configs: [OnceLock<Arc<ServerConfig>>; 2],
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAuth")
            .field("settings", &self.settings)
            .field("anchors", &self.anchors.len())
            .field("crls", &self.crls.len())
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What a host does about client certificates.
#[derive(Clone, Debug)]
pub enum HostClientAuth {
    /// Clients are checked with this rule.
    Verify(Arc<ClientAuth>),
    /// The rule meant for the host is unusable (no such Secret, bad CA):
    /// every request to the host answers 503 rather than being served
    /// unprotected.
    Denied,
}

impl ClientAuth {
    /// A rule from a Secret's `ca.crt` (PEM, every certificate a trust
    /// anchor) and optional `ca.crl` (PEM), with `settings`.
    pub fn new(
        ca_pem: &[u8],
        crl_pem: Option<&[u8]>,
        settings: ClientAuthSettings,
    ) -> Result<Self, ClientAuthError> {
        let cas = CertificateDer::pem_slice_iter(ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ClientAuthError::BadCaPem(e.to_string()))?;
        if cas.is_empty() {
            return Err(ClientAuthError::NoCaCertificate);
        }
        let anchors = cas
            .iter()
            .map(|der| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|anchor| anchor.to_owned())
                    .map_err(|e| ClientAuthError::BadCa(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let crls = match crl_pem {
            None => Vec::new(),
            Some(pem) => parse_crls(pem)?,
        };
        let match_cn = settings
            .match_cn
            .as_deref()
            .map(compile_match_cn)
            .transpose()?;
        let hints: Arc<[DistinguishedName]> = anchors
            .iter()
            .map(|anchor| DistinguishedName::in_sequence(anchor.subject.as_ref()))
            .collect();
        Ok(Self {
            settings,
            anchors,
            crls,
            hints,
            match_cn,
            source: None,
            configs: [OnceLock::new(), OnceLock::new()],
        })
    }

    /// Names the Secret the CA came from.
    pub fn with_source(mut self, namespace: &str, name: &str) -> Self {
        self.source = Some((namespace.to_owned(), name.to_owned()));
        self
    }

    /// The Secret the CA came from, if known.
    pub fn source(&self) -> Option<(&str, &str)> {
        self.source.as_ref().map(|(n, s)| (n.as_str(), s.as_str()))
    }

    /// The settings.
    pub fn settings(&self) -> &ClientAuthSettings {
        &self.settings
    }

    /// Whether a subject (RFC 2253) passes `auth-tls-match-cn`.
    pub(crate) fn subject_allowed(&self, subject: &str) -> bool {
        self.match_cn.as_ref().is_none_or(|re| re.is_match(subject))
    }

    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    pub(crate) fn crls(&self) -> &[CertRevocationList<'static>] {
        &self.crls
    }

    /// The rustls configuration asking for client certificates, built on
    /// first use from `base` (a listener's configuration: its certificates,
    /// ALPN and session cache). `http2` picks which of the listener's two
    /// configurations `base` is.
    pub(crate) fn server_config(
        &self,
        base: &ServerConfig,
        http2: bool,
    ) -> Result<Arc<ServerConfig>, rustls::Error> {
        let slot = &self.configs[usize::from(!http2)];
        if let Some(config) = slot.get() {
            return Ok(config.clone());
        }
        let verifier = Arc::new(RequestingVerifier {
            hints: self.hints.clone(),
            algorithms: aws_lc_rs::default_provider().signature_verification_algorithms,
        });
        let config = super::with_client_verifier(base, verifier)?;
        Ok(slot.get_or_init(|| config).clone())
    }
}

fn parse_crls(pem: &[u8]) -> Result<Vec<CertRevocationList<'static>>, ClientAuthError> {
    let ders = CertificateRevocationListDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientAuthError::BadCrl(e.to_string()))?;
    if ders.is_empty() {
        return Err(ClientAuthError::BadCrl("no X509 CRL block".to_owned()));
    }
    ders.iter()
        .map(|der| {
            webpki::OwnedCertRevocationList::from_der(der.as_ref())
                .map(CertRevocationList::from)
                .map_err(|e| ClientAuthError::BadCrl(e.to_string()))
        })
        .collect()
}

/// `auth-tls-match-cn`: `CN=` and an expression; the whole value is
/// matched anywhere in the subject, as nginx's `!~` does.
fn compile_match_cn(value: &str) -> Result<Regex, ClientAuthError> {
    if !value.starts_with("CN=") {
        return Err(ClientAuthError::BadMatchCn(
            "must start with CN= (ingress-nginx's rule)".to_owned(),
        ));
    }
    RegexBuilder::new(value)
        .size_limit(MATCH_CN_SIZE_LIMIT)
        .build()
        .map_err(|e| ClientAuthError::BadMatchCn(e.to_string()))
}

/// Asks for a client certificate without requiring one, naming the host's
/// CAs, and checks only that the client holds the certificate's key: the
/// chain is judged after the handshake (see the module documentation).
#[derive(Debug)]
struct RequestingVerifier {
    hints: Arc<[DistinguishedName]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for RequestingVerifier {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Internal: verified after the handshake, against the CA of the
        // host the request names (see `ClientAuth::verify`).
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_client_values_are_ingress_nginx_s() {
        assert_eq!(VerifyClient::parse("on"), Some(VerifyClient::On));
        assert_eq!(
            VerifyClient::parse("optional_no_ca"),
            Some(VerifyClient::OptionalNoCa)
        );
        assert_eq!(VerifyClient::parse("On"), None);
        assert!(!VerifyClient::Off.requests_certificate());
    }

    #[test]
    fn error_pages_are_paths_or_urls() {
        assert_eq!(
            ErrorPage::parse("/cert-error"),
            Ok(ErrorPage::Internal("/cert-error".into()))
        );
        for url in [
            "https://login.example.com/denied",
            "http://a.b:8080/x/",
            "ok.com/error",
        ] {
            assert!(
                matches!(ErrorPage::parse(url), Ok(ErrorPage::Redirect(_))),
                "{url}"
            );
        }
        for bad in [
            "@named",
            "/a b",
            "/x?y=1",
            "https://host/a\"b",
            "javascript:alert(1)",
            "",
        ] {
            assert!(ErrorPage::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_inputs_are_refused_with_a_reason() {
        let settings = ClientAuthSettings::default();
        assert_eq!(
            ClientAuth::new(b"", None, settings.clone()).unwrap_err(),
            ClientAuthError::NoCaCertificate
        );
        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            ClientAuth::new(garbage, None, settings.clone()).unwrap_err(),
            ClientAuthError::BadCa(_) | ClientAuthError::BadCaPem(_)
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem();
        assert!(ClientAuth::new(ca.as_bytes(), None, settings.clone()).is_ok());
        assert!(matches!(
            ClientAuth::new(ca.as_bytes(), Some(b"nope"), settings).unwrap_err(),
            ClientAuthError::BadCrl(_)
        ));
        for cn in ["client", "CN=(a"] {
            let settings = ClientAuthSettings {
                match_cn: Some(cn.to_owned()),
                ..ClientAuthSettings::default()
            };
            assert!(matches!(
                ClientAuth::new(ca.as_bytes(), None, settings).unwrap_err(),
                ClientAuthError::BadMatchCn(_)
            ));
        }
    }
}
