//! Certificates for TLS tests: a test CA that issues server certificates,
//! TLS Secrets for the manifests folder, and a `curl` runner (curl speaks
//! HTTP/2 and checks certificates the way real clients do).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use serde_json::json;

/// A certificate authority for tests: a self-signed root, or an
/// intermediate under another [`TestCa`].
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
    /// The intermediates a leaf of this CA is sent with (this CA's
    /// certificate and its parents', the root excluded), PEM.
    chain: String,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

/// A certificate and its key, PEM.
#[derive(Clone, Debug)]
pub struct IssuedCert {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// The private key (PEM).
    pub key_pem: String,
}

impl TestCa {
    /// A new self-signed CA.
    pub fn new() -> TestCa {
        TestCa::named("edge-gateway test CA")
    }

    /// A new self-signed CA with common name `name` (CAs with the same
    /// name cannot be told apart by a verifier).
    pub fn named(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("generate a CA key");
        let params = ca_params(name);
        let cert = params.self_signed(&key).expect("self-sign the CA");
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
            chain: String::new(),
        }
    }

    /// An intermediate CA named `name`, signed by this CA.
    pub fn intermediate(&self, name: &str) -> TestCa {
        let key = KeyPair::generate().expect("generate a CA key");
        let params = ca_params(name);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign an intermediate CA");
        TestCa {
            chain: format!("{}{}", cert.pem(), self.chain),
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A client certificate with common name `cn` (ECDSA P-256), valid
    /// from `from_days` to `to_days` days from now (negative: in the
    /// past). `cert_pem` holds the certificate followed by this CA's
    /// intermediates, as a client sends them.
    pub fn issue_client(&self, cn: &str, from_days: i64, to_days: i64) -> IssuedCert {
        let key = KeyPair::generate().expect("generate a client key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "edge-gateway tests");
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(from_days);
        params.not_after = now + time::Duration::days(to_days);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a client certificate");
        IssuedCert {
            cert_pem: format!("{}{}", cert.pem(), self.chain),
            key_pem: key.serialize_pem(),
        }
    }

    /// The CA certificate (PEM), for clients to trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA's private key (PEM), for tools that sign as the CA (an
    /// `openssl ocsp` responder).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A server certificate for `names` (ECDSA P-256, valid from a day ago
    /// for 30 days) with serial number `serial` and OCSP responder
    /// `ocsp_url` in its Authority Information Access. `cert_pem` holds it
    /// followed by this CA's certificate: the issuer OCSP stapling needs.
    pub fn issue_with_ocsp(&self, names: &[&str], serial: u64, ocsp_url: &str) -> IssuedCert {
        let key = KeyPair::generate().expect("generate a server key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server params");
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        params.serial_number = Some(SerialNumber::from(serial));
        params.custom_extensions.push(ocsp_responder(ocsp_url));
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(30);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a server certificate");
        IssuedCert {
            cert_pem: format!("{}{}", cert.pem(), self.pem),
            key_pem: key.serialize_pem(),
        }
    }

    /// Issues a server certificate for `names` with an ECDSA P-256 key,
    /// valid from a day ago for `days` (followed, from an intermediate, by
    /// the intermediates up to the root, as a server sends its chain).
    pub fn issue(&self, names: &[&str], days: i64) -> IssuedCert {
        self.issue_with(names, days, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// Like [`TestCa::issue`] with a key of the given algorithm (e.g.
    /// `rcgen::PKCS_RSA_SHA256`).
    pub fn issue_with(
        &self,
        names: &[&str],
        days: i64,
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> IssuedCert {
        let key = KeyPair::generate_for(alg).expect("generate a server key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .expect("server params");
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(days);
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign a server certificate");
        IssuedCert {
            cert_pem: format!("{}{}", cert.pem(), self.chain),
            key_pem: key.serialize_pem(),
        }
    }
}

/// An Authority Information Access extension naming OCSP responder `url`:
/// `SEQUENCE { SEQUENCE { id-ad-ocsp, [6] IA5String url } }`.
fn ocsp_responder(url: &str) -> CustomExtension {
    const ID_AD_OCSP: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let location = der(0x86, url.as_bytes());
    let description = der(0x30, &[&ID_AD_OCSP[..], &location].concat());
    CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], der(0x30, &description))
}

/// One DER tag-length-value (values under 64 KiB).
fn der(tag: u8, value: &[u8]) -> Vec<u8> {
    let len = value.len();
    let mut out = vec![tag];
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        Ok(byte) => out.extend([0x81, byte]),
        Err(_) => {
            let two = u16::try_from(len).expect("a DER value under 64 KiB");
            out.push(0x82);
            out.extend(two.to_be_bytes());
        }
    }
    out.extend_from_slice(value);
    out
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// An `Opaque` Secret holding `ca_pem` as `ca.crt` (for `auth-tls-secret`
/// and `proxy-ssl-secret`).
pub fn ca_secret(ns: &str, name: &str, ca_pem: &str) -> String {
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": { "name": name, "namespace": ns },
        "stringData": { "ca.crt": ca_pem },
    });
    serde_json::to_string_pretty(&secret).expect("serialize a Secret")
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}

/// A `kubernetes.io/tls` Secret holding `cert` (as `stringData`).
pub fn tls_secret(ns: &str, name: &str, cert: &IssuedCert) -> String {
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": { "name": name, "namespace": ns },
        "stringData": { "tls.crt": cert.cert_pem, "tls.key": cert.key_pem },
    });
    serde_json::to_string_pretty(&secret).expect("serialize a Secret")
}

/// What a `curl` run printed.
#[derive(Clone, Debug)]
pub struct CurlOutput {
    /// Whether curl exited 0.
    pub success: bool,
    /// Standard output (with `-w` formats).
    pub stdout: String,
    /// Standard error (with `-v`, the TLS details).
    pub stderr: String,
}

/// Runs `curl -s` against `https://<host>:<port><path>` resolved to `addr`,
/// trusting `ca_file` if given (else `-k`), with `extra` arguments. Ends
/// after 20 s.
pub async fn curl_https(
    addr: SocketAddr,
    host: &str,
    path: &str,
    ca_file: Option<&Path>,
    extra: &[&str],
) -> CurlOutput {
    let port = addr.port();
    let mut command = tokio::process::Command::new("curl");
    command
        .args(["-s", "-S", "--max-time", "20", "--resolve"])
        .arg(format!("{host}:{port}:{}", addr.ip()))
        .args(extra);
    match ca_file {
        Some(ca) => command.arg("--cacert").arg(ca),
        None => command.arg("-k"),
    };
    command
        .arg(format!("https://{host}:{port}{path}"))
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("curl finished within 30 s")
        .expect("curl can run (Debian package curl)");
    CurlOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
