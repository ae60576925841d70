//! TLS to upstream endpoints (`backend-protocol: HTTPS` or `GRPCS`), as
//! nginx's `proxy_ssl_*` directives configure it: no verification unless
//! `proxy-ssl-verify` is on with a CA from `proxy-ssl-secret` (with at most
//! `proxy-ssl-verify-depth` intermediate certificates), a client
//! certificate when that Secret has one, and SNI only with
//! `proxy-ssl-server-name`.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use webpki::{EndEntityCert, KeyUsage};

use crate::tls::peer::within_depth;

/// The name nginx verifies an upstream certificate against when
/// `proxy-ssl-name` is not set: the host of its `proxy_pass` target.
pub const DEFAULT_NAME: &str = "upstream_balancer";

/// What an Ingress asks of upstream TLS, before it is built.
#[derive(Clone, Debug, Default)]
pub struct UpstreamTlsOptions<'a> {
    /// `proxy-ssl-verify`: check the endpoint's certificate against `ca_pem`.
    pub verify: bool,
    /// `ca.crt` of `proxy-ssl-secret`: the trusted CAs, PEM.
    pub ca_pem: Option<&'a [u8]>,
    /// `tls.crt` and `tls.key` of `proxy-ssl-secret`: the client certificate, PEM.
    pub client_cert: Option<(&'a [u8], &'a [u8])>,
    /// `proxy-ssl-name`: the name checked in the certificate (and sent as
    /// SNI with `send_sni`); [`DEFAULT_NAME`] without it.
    pub name: Option<&'a str>,
    /// `proxy-ssl-server-name`: send the name as SNI.
    pub send_sni: bool,
    /// `proxy-ssl-verify-depth`: the most intermediate certificates
    /// between the endpoint's certificate and a CA of `ca_pem`.
    pub verify_depth: u32,
}

/// Why upstream TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamTlsError {
    /// `ca.crt` held no usable certificate.
    #[error("ca.crt holds no usable CA certificate")]
    NoCa,
    /// Verification is on but no CA was given.
    #[error("proxy-ssl-verify is on but the Secret has no ca.crt")]
    VerifyWithoutCa,
    /// The client certificate or key did not parse or match.
    #[error("client certificate: {0}")]
    ClientCert(String),
    /// The name is not a DNS name or IP address.
    #[error("{0:?} is not a valid TLS server name")]
    Name(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Built client configurations for one set of options (HTTP/1.1 and h2 by
/// ALPN), with an identity that keys the connection pools: connections
/// made under other options are never reused for these.
#[derive(Debug)]
pub struct UpstreamTls {
    id: u64,
    name: ServerName<'static>,
    http1: Arc<ClientConfig>,
    http2: Arc<ClientConfig>,
}

impl PartialEq for UpstreamTls {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for UpstreamTls {}

impl UpstreamTls {
    /// Builds the client configurations for `options`.
    pub fn new(options: &UpstreamTlsOptions<'_>) -> Result<Self, UpstreamTlsError> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let name_str = options.name.unwrap_or(DEFAULT_NAME);
        let name = ServerName::try_from(name_str.to_owned())
            .map_err(|_| UpstreamTlsError::Name(name_str.to_owned()))?;
        let chain = match (options.verify, options.ca_pem) {
            (false, _) => None,
            (true, None) => return Err(UpstreamTlsError::VerifyWithoutCa),
            (true, Some(pem)) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem).flatten() {
                    // A certificate rustls cannot use is skipped, as
                    // OpenSSL skips it in a CA file.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(UpstreamTlsError::NoCa);
                }
                Some(ChainCheck {
                    roots,
                    depth: options.verify_depth,
                })
            }
        };
        let verifier: Arc<dyn ServerCertVerifier> = Arc::new(Verification {
            chain,
            provider: provider.clone(),
        });
        let client_cert = match options.client_cert {
            None => None,
            Some((cert, key)) => {
                let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<_, _>>()
                    .map_err(|e| UpstreamTlsError::ClientCert(e.to_string()))?;
                if chain.is_empty() {
                    return Err(UpstreamTlsError::ClientCert("tls.crt is empty".to_owned()));
                }
                let key = PrivateKeyDer::from_pem_slice(key)
                    .map_err(|e| UpstreamTlsError::ClientCert(e.to_string()))?;
                Some((chain, key))
            }
        };
        let build = |alpn: &[u8]| -> Result<Arc<ClientConfig>, UpstreamTlsError> {
            let builder = ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(verifier.clone());
            let mut config = match &client_cert {
                Some((chain, key)) => builder
                    .with_client_auth_cert(chain.clone(), key.clone_key())
                    .map_err(|e| UpstreamTlsError::ClientCert(e.to_string()))?,
                None => builder.with_no_client_auth(),
            };
            config.enable_sni = options.send_sni;
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(Arc::new(config))
        };
        let mut hasher = std::hash::DefaultHasher::new();
        (
            options.verify,
            options.ca_pem,
            options.client_cert,
            name_str,
            options.send_sni,
            options.verify_depth,
        )
            .hash(&mut hasher);
        Ok(Self {
            id: hasher.finish(),
            name,
            http1: build(b"http/1.1")?,
            http2: build(b"h2")?,
        })
    }

    /// nginx's defaults: no verification, no client certificate, no SNI;
    /// built once. `None` only if rustls refused the defaults.
    pub fn insecure() -> Option<Arc<Self>> {
        static DEFAULT: OnceLock<Option<Arc<UpstreamTls>>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| match Self::new(&UpstreamTlsOptions::default()) {
                Ok(tls) => Some(Arc::new(tls)),
                Err(error) => {
                    tracing::error!(%error, "default upstream TLS settings failed");
                    None
                }
            })
            .clone()
    }

    /// What keys the pools: equal for equal options.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The name checked in the certificate (and sent as SNI if enabled).
    pub(crate) fn server_name(&self) -> ServerName<'static> {
        self.name.clone()
    }

    /// The client configuration offering `h2` or `http/1.1` by ALPN.
    pub(crate) fn config(&self, http2: bool) -> Arc<ClientConfig> {
        if http2 {
            self.http2.clone()
        } else {
            self.http1.clone()
        }
    }
}

/// How an endpoint's certificate is checked. The handshake signatures are
/// always checked; the certificate only with `proxy_ssl_verify on`
/// (`chain`): nginx's `off` accepts any.
#[derive(Debug)]
struct Verification {
    chain: Option<ChainCheck>,
    provider: Arc<CryptoProvider>,
}

/// `proxy_ssl_verify on`: the certificate must lead to one of `roots`
/// through at most `depth` intermediates (OpenSSL's verify depth: neither
/// the certificate nor the CA counts), be valid now for server
/// authentication, and name the server.
#[derive(Debug)]
struct ChainCheck {
    roots: RootCertStore,
    depth: u32,
}

impl ServerCertVerifier for Verification {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        let cert = EndEntityCert::try_from(end_entity).map_err(invalid)?;
        let within_depth = within_depth(chain.depth);
        cert.verify_for_usage(
            self.provider.signature_verification_algorithms.all,
            &chain.roots.roots,
            intermediates,
            now,
            KeyUsage::server_auth(),
            None,
            Some(&within_depth),
        )
        .map_err(invalid)?;
        cert.verify_is_valid_for_subject_name(server_name)
            .map_err(invalid)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A certificate check's failure as rustls reports certificate errors.
fn invalid(error: webpki::Error) -> rustls::Error {
    use webpki::Error as E;
    let error = match error {
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::CertExpired { .. } => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        E::CertNotValidForName(_) => CertificateError::NotValidForName,
        other => CertificateError::Other(OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["ca.test".to_owned()]).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn defaults_build_and_share_an_identity() {
        let a = UpstreamTls::insecure().unwrap();
        let b = UpstreamTls::new(&UpstreamTlsOptions::default()).unwrap();
        assert_eq!(a.id(), b.id());
        assert!(!a.config(false).enable_sni);
        assert_eq!(a.config(true).alpn_protocols, [b"h2".to_vec()]);
    }

    #[test]
    fn verification_needs_a_usable_ca() {
        let verify = |ca: Option<&[u8]>| {
            UpstreamTls::new(&UpstreamTlsOptions {
                verify: true,
                ca_pem: ca,
                ..UpstreamTlsOptions::default()
            })
        };
        assert!(matches!(
            verify(None),
            Err(UpstreamTlsError::VerifyWithoutCa)
        ));
        assert!(matches!(verify(Some(b"junk")), Err(UpstreamTlsError::NoCa)));
        let pem = ca_pem();
        let tls = verify(Some(pem.as_bytes())).unwrap();
        assert_ne!(tls.id(), UpstreamTls::insecure().unwrap().id());
    }

    /// A test CA: its PEM and what signs with it.
    type TestCa = (String, rcgen::Issuer<'static, rcgen::KeyPair>);

    /// A CA named `name`, signed by `parent` or else self-signed.
    fn ca(name: &str, parent: Option<&TestCa>) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = match parent {
            None => params.self_signed(&key).unwrap(),
            Some((_, issuer)) => params.signed_by(&key, issuer).unwrap(),
        };
        (cert.pem(), rcgen::Issuer::new(params, key))
    }

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn verification_checks_the_chain_depth_and_name() {
        let root = ca("root.test", None);
        let one = ca("one.test", Some(&root));
        let two = ca("two.test", Some(&one));
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["api.internal".to_owned()]).unwrap();
        let short = params.signed_by(&key, &one.1).unwrap().der().clone();
        let long = params.signed_by(&key, &two.1).unwrap().der().clone();
        let verifier = |depth: u32| Verification {
            chain: Some(ChainCheck {
                roots: {
                    let mut roots = RootCertStore::empty();
                    roots.add(der(&root.0)).unwrap();
                    roots
                },
                depth,
            }),
            provider: Arc::new(aws_lc_rs::default_provider()),
        };
        let name = ServerName::try_from("api.internal").unwrap();
        let check = |depth: u32,
                     leaf: &CertificateDer<'_>,
                     chain: &[CertificateDer<'_>],
                     name: &ServerName<'_>| {
            verifier(depth).verify_server_cert(leaf, chain, name, &[], UnixTime::now())
        };
        assert!(check(1, &short, &[der(&one.0)], &name).is_ok());
        let too_long = check(1, &long, &[der(&two.0), der(&one.0)], &name);
        assert!(
            format!("{too_long:?}").contains("MaximumPathDepthExceeded"),
            "{too_long:?}"
        );
        assert!(check(2, &long, &[der(&two.0), der(&one.0)], &name).is_ok());
        assert!(check(0, &short, &[der(&one.0)], &name).is_err());
        let other = ServerName::try_from("other.internal").unwrap();
        assert!(matches!(
            check(1, &short, &[der(&one.0)], &other),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            ))
        ));
        let unknown = ca("unknown.test", None);
        let stranger = params.signed_by(&key, &unknown.1).unwrap().der().clone();
        assert!(matches!(
            check(1, &stranger, &[], &name),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        ));
        let off = Verification {
            chain: None,
            provider: Arc::new(aws_lc_rs::default_provider()),
        };
        assert!(
            off.verify_server_cert(&stranger, &[], &other, &[], UnixTime::now())
                .is_ok()
        );
    }

    #[test]
    fn names_and_sni() {
        let tls = UpstreamTls::new(&UpstreamTlsOptions {
            name: Some("api.internal"),
            send_sni: true,
            ..UpstreamTlsOptions::default()
        })
        .unwrap();
        assert!(tls.config(false).enable_sni);
        assert_eq!(
            tls.server_name(),
            ServerName::try_from("api.internal").unwrap()
        );
        let bad = UpstreamTls::new(&UpstreamTlsOptions {
            name: Some("not a name"),
            ..UpstreamTlsOptions::default()
        });
        assert!(matches!(bad, Err(UpstreamTlsError::Name(_))));
    }

    #[test]
    fn client_certificate_must_parse() {
        let bad = UpstreamTls::new(&UpstreamTlsOptions {
            client_cert: Some((b"nope", b"nope")),
            ..UpstreamTlsOptions::default()
        });
        assert!(matches!(bad, Err(UpstreamTlsError::ClientCert(_))));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let key_pem = key.serialize_pem();
        let ok = UpstreamTls::new(&UpstreamTlsOptions {
            client_cert: Some((cert.pem().as_bytes(), key_pem.as_bytes())),
            ..UpstreamTlsOptions::default()
        });
        assert!(ok.is_ok());
    }
}
