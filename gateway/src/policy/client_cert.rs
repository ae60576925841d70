//! `auth-tls-*` at request time: whether a request to a host that checks
//! client certificates may pass, and the `ssl-client-*` headers the
//! upstream gets, as ingress-nginx's server block does it:
//!
//! - a host whose rule is unusable answers 503 (it is never served
//!   unprotected);
//! - over HTTPS, a request whose Host names another server than the TLS
//!   server name did, when the Host's server checks certificates, answers
//!   421 (nginx: "client attempted to request the server name different
//!   from the one that was negotiated");
//! - `auth-tls-verify-client` decides what passes: `on` needs a verified
//!   certificate, `optional` refuses only invalid ones, `optional_no_ca`
//!   also lets an unknown issuer pass, `off` asks for nothing. A refusal is
//!   nginx's 400 "No required SSL certificate was sent" (its 496) or 400
//!   "The SSL certificate error" (495), or the `auth-tls-error-page`
//!   instead;
//! - `auth-tls-match-cn` then needs the subject to match, else 403
//!   "client certificate unauthorized";
//! - every `ssl-client-*` header the client sent is removed, and
//!   `ssl-client-verify`, `ssl-client-subject-dn`, `ssl-client-issuer-dn`
//!   (and `ssl-client-cert` with `auth-tls-pass-certificate-to-upstream`)
//!   are set from the connection's certificate, so a forged
//!   `ssl-client-verify: SUCCESS` never reaches a backend (nor an auth
//!   service).
//!
//! Plain HTTP has no certificate: its requests are judged as sent without
//! one, after the HTTPS redirect (so that `ssl-redirect` still sends
//! clients to HTTPS). ingress-nginx does not check certificates on plain
//! HTTP at all; here `on` refuses such requests with the 400.

use std::borrow::Cow;

use http::StatusCode;
use http::header::{HeaderMap, HeaderName, HeaderValue, LOCATION};

use crate::refusal::Refusal;
use crate::tls::{ClientTls, ErrorPage, HostClientAuth, Verdict, VerifyClient};

static SSL_CLIENT_CERT: HeaderName = HeaderName::from_static("ssl-client-cert");
static SSL_CLIENT_VERIFY: HeaderName = HeaderName::from_static("ssl-client-verify");
static SSL_CLIENT_SUBJECT_DN: HeaderName = HeaderName::from_static("ssl-client-subject-dn");
static SSL_CLIENT_ISSUER_DN: HeaderName = HeaderName::from_static("ssl-client-issuer-dn");

/// The `ssl-client-*` headers a request carries upstream.
#[derive(Debug)]
pub(crate) struct CertHeaders {
    verify: HeaderValue,
    subject: Option<HeaderValue>,
    issuer: Option<HeaderValue>,
    cert: Option<HeaderValue>,
}

impl CertHeaders {
    /// Removes every `ssl-client-*` (or `ssl_client_*`) header the client
    /// sent and sets the gateway's.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        let forged: Vec<HeaderName> = headers
            .keys()
            .filter(|name| {
                let name = name.as_str().as_bytes();
                name.len() > 11 && name[..11].eq_ignore_ascii_case(b"ssl-client-")
                    || name.len() > 11 && name[..11].eq_ignore_ascii_case(b"ssl_client_")
            })
            .cloned()
            .collect();
        for name in forged {
            headers.remove(name);
        }
        headers.insert(SSL_CLIENT_VERIFY.clone(), self.verify);
        for (name, value) in [
            (&SSL_CLIENT_SUBJECT_DN, self.subject),
            (&SSL_CLIENT_ISSUER_DN, self.issuer),
            (&SSL_CLIENT_CERT, self.cert),
        ] {
            if let Some(value) = value {
                headers.insert(name.clone(), value);
            }
        }
    }
}

/// What the check decided.
#[derive(Debug)]
pub(crate) enum Checked<'t> {
    /// The request goes on, with these headers.
    Pass(Box<CertHeaders>),
    /// The request is answered with this.
    Respond(Box<Refusal>),
    /// `auth-tls-error-page` as a path: the request is served by that path
    /// of the host instead (nginx's internal redirect), with these headers.
    ErrorPage(&'t str, Box<CertHeaders>),
}

/// Judges a request to a host with client-certificate rule `rule`, made
/// over `tls` (`None`: plain HTTP); `misdirected`: its Host names another
/// server than its TLS server name did.
pub(crate) fn check<'t>(
    rule: &'t HostClientAuth,
    tls: Option<&ClientTls>,
    misdirected: bool,
) -> Checked<'t> {
    let auth = match rule {
        HostClientAuth::Denied => {
            return Checked::Respond(Box::new(Refusal::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
            )));
        }
        HostClientAuth::Verify(auth) => auth,
    };
    if misdirected {
        return Checked::Respond(Box::new(Refusal::error_page(
            StatusCode::MISDIRECTED_REQUEST,
        )));
    }
    let settings = auth.settings();
    let peer = tls
        .and_then(ClientTls::peer)
        .filter(|_| settings.verify != VerifyClient::Off);
    let verdict = peer.map_or(Cow::Owned(Verdict::None), |p| p.verdict_for(auth));
    let refusal = match (settings.verify, verdict.as_ref()) {
        (VerifyClient::Off, _) | (_, Verdict::Success) => None,
        (VerifyClient::On, Verdict::None) => Some("No required SSL certificate was sent"),
        (VerifyClient::Optional | VerifyClient::OptionalNoCa, Verdict::None) => None,
        (
            VerifyClient::OptionalNoCa,
            Verdict::Failed {
                issuer_only: true, ..
            },
        ) => None,
        (_, Verdict::Failed { .. }) => Some("The SSL certificate error"),
    };
    let headers = Box::new(CertHeaders {
        verify: verdict.header(),
        subject: peer.and_then(|p| p.subject_header.clone()),
        issuer: peer.and_then(|p| p.issuer_header.clone()),
        cert: peer
            .filter(|_| settings.pass_certificate)
            .and_then(|p| p.cert_header.clone()),
    });
    if let Some(detail) = refusal {
        return match &settings.error_page {
            Some(ErrorPage::Internal(path)) => Checked::ErrorPage(path, headers),
            Some(ErrorPage::Redirect(location)) => {
                let mut response = Refusal::error_page(StatusCode::FOUND);
                response.headers_mut().insert(LOCATION, location.clone());
                Checked::Respond(Box::new(response))
            }
            None => Checked::Respond(Box::new(certificate_error(detail))),
        };
    }
    if !auth.subject_allowed(peer.map_or("", |p| p.subject())) {
        return Checked::Respond(Box::new(unauthorized()));
    }
    Checked::Pass(headers)
}

/// nginx's page for its 495 and 496, which it sends as 400.
fn certificate_error(detail: &str) -> Refusal {
    let body = format!(
        "<html>\r\n<head><title>400 {detail}</title></head>\r\n<body>\r\n\
         <center><h1>400 Bad Request</h1></center>\r\n<center>{detail}</center>\r\n\
         <hr><center>edge-gateway</center>\r\n</body>\r\n</html>\r\n"
    );
    html(StatusCode::BAD_REQUEST, body)
}

/// ingress-nginx's `return 403 "client certificate unauthorized"`.
fn unauthorized() -> Refusal {
    html(
        StatusCode::FORBIDDEN,
        "client certificate unauthorized".to_owned(),
    )
}

fn html(status: StatusCode, body: String) -> Refusal {
    Refusal::html(status, body)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tls::{ClientAuth, ClientAuthSettings, PeerCertificate};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    use rustls::pki_types::CertificateDer;

    struct Fixture {
        issuer: Issuer<'static, KeyPair>,
        ca_pem: String,
    }

    impl Fixture {
        fn new(name: &str) -> Self {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.distinguished_name.push(DnType::CommonName, name);
            let ca_pem = params.self_signed(&key).unwrap().pem();
            Self {
                issuer: Issuer::new(params, key),
                ca_pem,
            }
        }

        fn rule(&self, settings: ClientAuthSettings) -> Arc<ClientAuth> {
            Arc::new(ClientAuth::new(self.ca_pem.as_bytes(), None, settings).unwrap())
        }

        fn client(&self, cn: &str) -> CertificateDer<'static> {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(DnType::CommonName, cn);
            params.signed_by(&key, &self.issuer).unwrap().der().clone()
        }
    }

    fn settings(verify: VerifyClient) -> ClientAuthSettings {
        ClientAuthSettings {
            verify,
            depth: 1,
            ..ClientAuthSettings::default()
        }
    }

    fn tls(auth: &Arc<ClientAuth>, cert: Option<CertificateDer<'static>>) -> ClientTls {
        let chain = cert.map(|c| vec![c]);
        ClientTls::new(
            Some("a.test".into()),
            PeerCertificate::verify(auth, chain.as_deref()),
        )
    }

    fn status(checked: &Checked<'_>) -> u16 {
        match checked {
            Checked::Pass(_) => 200,
            Checked::Respond(response) => response.status().as_u16(),
            Checked::ErrorPage(..) => 0,
        }
    }

    #[test]
    fn each_mode_lets_through_what_nginx_does() {
        let ours = Fixture::new("ours");
        let theirs = Fixture::new("theirs");
        let good = || Some(ours.client("good"));
        let foreign = || Some(theirs.client("foreign"));
        for (mode, none, valid, unknown_issuer) in [
            (VerifyClient::On, 400, 200, 400),
            (VerifyClient::Optional, 200, 200, 400),
            (VerifyClient::OptionalNoCa, 200, 200, 200),
            (VerifyClient::Off, 200, 200, 200),
        ] {
            let auth = ours.rule(settings(mode));
            let rule = HostClientAuth::Verify(auth.clone());
            let judge = |cert| status(&check(&rule, Some(&tls(&auth, cert)), false));
            assert_eq!(judge(None), none, "{mode:?} without a certificate");
            assert_eq!(judge(good()), valid, "{mode:?} with a valid one");
            assert_eq!(judge(foreign()), unknown_issuer, "{mode:?} unknown issuer");
            assert_eq!(
                status(&check(&rule, None, false)),
                none,
                "{mode:?} over HTTP"
            );
        }
        assert_eq!(status(&check(&HostClientAuth::Denied, None, false)), 503);
        let rule = HostClientAuth::Verify(ours.rule(settings(VerifyClient::Optional)));
        assert_eq!(status(&check(&rule, None, true)), 421);
    }

    #[test]
    fn forged_headers_are_replaced_and_the_certificate_passed_when_asked() {
        let ca = Fixture::new("ca");
        let auth = ca.rule(ClientAuthSettings {
            pass_certificate: true,
            ..settings(VerifyClient::On)
        });
        let rule = HostClientAuth::Verify(auth.clone());
        let Checked::Pass(headers) = check(&rule, Some(&tls(&auth, Some(ca.client("c")))), false)
        else {
            panic!("refused");
        };
        let mut sent = HeaderMap::new();
        sent.insert("ssl-client-verify", HeaderValue::from_static("FORGED"));
        sent.insert("ssl-client-extra", HeaderValue::from_static("x"));
        sent.insert("ssl_client_verify", HeaderValue::from_static("SUCCESS"));
        headers.apply(&mut sent);
        assert_eq!(sent["ssl-client-verify"], "SUCCESS");
        assert_eq!(sent["ssl-client-subject-dn"], "CN=c");
        assert_eq!(sent["ssl-client-issuer-dn"], "CN=ca");
        assert!(
            sent["ssl-client-cert"]
                .to_str()
                .unwrap()
                .starts_with("-----BEGIN")
        );
        assert!(!sent.contains_key("ssl-client-extra") && !sent.contains_key("ssl_client_verify"));

        let optional = ca.rule(settings(VerifyClient::Optional));
        let rule = HostClientAuth::Verify(optional);
        let Checked::Pass(headers) = check(&rule, None, false) else {
            panic!("refused");
        };
        let mut sent = HeaderMap::new();
        sent.insert("ssl-client-verify", HeaderValue::from_static("SUCCESS"));
        sent.insert(
            "ssl-client-subject-dn",
            HeaderValue::from_static("CN=admin"),
        );
        headers.apply(&mut sent);
        assert_eq!(sent["ssl-client-verify"], "NONE");
        assert!(!sent.contains_key("ssl-client-subject-dn"));
    }

    #[test]
    fn error_pages_and_match_cn() {
        let ca = Fixture::new("ca");
        let redirect = ca.rule(ClientAuthSettings {
            error_page: Some(ErrorPage::parse("https://help.test/cert").unwrap()),
            ..settings(VerifyClient::On)
        });
        let rule = HostClientAuth::Verify(redirect);
        let Checked::Respond(response) = check(&rule, None, false) else {
            panic!("not answered");
        };
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()[LOCATION], "https://help.test/cert");
        let internal = ca.rule(ClientAuthSettings {
            error_page: Some(ErrorPage::parse("/cert-error").unwrap()),
            ..settings(VerifyClient::On)
        });
        let rule = HostClientAuth::Verify(internal);
        assert!(matches!(
            check(&rule, None, false),
            Checked::ErrorPage("/cert-error", _)
        ));
        let named = ca.rule(ClientAuthSettings {
            match_cn: Some("CN=(alice|bob)$".to_owned()),
            ..settings(VerifyClient::Optional)
        });
        let rule = HostClientAuth::Verify(named.clone());
        let judge = |cert| status(&check(&rule, Some(&tls(&named, cert)), false));
        assert_eq!(judge(Some(ca.client("alice"))), 200);
        assert_eq!(judge(Some(ca.client("mallory"))), 403);
        assert_eq!(judge(None), 403, "no certificate, no subject");
    }
}
