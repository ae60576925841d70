//! The `auth-tls-*` annotations: client certificates checked against the
//! CA of `auth-tls-secret`, as ingress-nginx's `authtls` parser reads them.
//!
//! Failing open is never an option here:
//! - an unusable `auth-tls-secret` (bad reference, another namespace, and,
//!   at compile time, a missing Secret or a bad `ca.crt`) denies the
//!   Ingress's routes (503);
//! - so does an `auth-tls-error-page` or `auth-tls-match-cn` ingress-nginx
//!   would reject, and a protective key (`auth-tls-verify-client` other
//!   than `off`, `auth-tls-match-cn`) without `auth-tls-secret`;
//! - a bad `auth-tls-verify-client` falls back to `on` and a bad
//!   `auth-tls-verify-depth` to 1 (ingress-nginx's defaults, the strict
//!   ones), with a diagnostic.

use std::collections::BTreeMap;

use gateway::tls::{ClientAuthSettings, ErrorPage, VerifyClient};

use super::AnnotationError;
use super::admission::{SecretRef, secret_ref};
use super::values::{DEFAULT_VERIFY_DEPTH, boolean, verify_depth};

/// The keys this module reads (without the prefix).
const KEYS: [&str; 6] = [
    "auth-tls-secret",
    "auth-tls-verify-client",
    "auth-tls-verify-depth",
    "auth-tls-error-page",
    "auth-tls-pass-certificate-to-upstream",
    "auth-tls-match-cn",
];

/// `auth-tls-secret` and the other `auth-tls-*` settings, before the
/// Secret is read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAuthSpec {
    /// Where `ca.crt` (and `ca.crl`) are.
    pub secret: SecretRef,
    /// How clients are checked.
    pub settings: ClientAuthSettings,
}

/// Parses the `auth-tls-*` annotations (keys without the prefix): `None`
/// when the Ingress does not ask for client certificates, `Err` when it
/// asks in a way that cannot be honoured (its routes are denied). Values
/// that fall back to a default are added to `errors`.
pub(super) fn parse(
    annotations: &BTreeMap<&str, &str>,
    errors: &mut Vec<AnnotationError>,
) -> Option<Result<ClientAuthSpec, AnnotationError>> {
    let get = |name: &str| annotations.get(name).map(|v| v.trim());
    let Some(secret) = get("auth-tls-secret") else {
        return without_secret(&get, errors);
    };
    Some(with_secret(secret, &get, errors))
}

type Get<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

fn fail(name: &str, value: &str, message: impl ToString) -> AnnotationError {
    super::error(name, value, message.to_string())
}

fn with_secret(
    secret: &str,
    get: &Get<'_>,
    errors: &mut Vec<AnnotationError>,
) -> Result<ClientAuthSpec, AnnotationError> {
    let secret = secret_ref(secret).map_err(|m| fail("auth-tls-secret", secret, m))?;
    let mut settings = ClientAuthSettings {
        depth: DEFAULT_VERIFY_DEPTH,
        ..ClientAuthSettings::default()
    };
    if let Some(value) = get("auth-tls-verify-client") {
        match VerifyClient::parse(value) {
            Some(verify) => settings.verify = verify,
            None => errors.push(fail(
                "auth-tls-verify-client",
                value,
                "must be on, optional, optional_no_ca or off; on applies",
            )),
        }
    }
    if let Some(value) = get("auth-tls-verify-depth") {
        match verify_depth(value) {
            Ok(depth) => settings.depth = depth,
            Err(message) => errors.push(fail("auth-tls-verify-depth", value, message)),
        }
    }
    if let Some(value) = get("auth-tls-error-page").filter(|v| !v.is_empty()) {
        let page = ErrorPage::parse(value).map_err(|m| fail("auth-tls-error-page", value, m))?;
        settings.error_page = Some(page);
    }
    if let Some(value) = get("auth-tls-pass-certificate-to-upstream") {
        match boolean(value) {
            Ok(pass) => settings.pass_certificate = pass,
            Err(message) => errors.push(fail(
                "auth-tls-pass-certificate-to-upstream",
                value,
                message,
            )),
        }
    }
    if let Some(value) = get("auth-tls-match-cn").filter(|v| !v.is_empty()) {
        if !value.starts_with("CN=") {
            return Err(fail("auth-tls-match-cn", value, "must start with CN="));
        }
        settings.match_cn = Some(value.to_owned());
    }
    Ok(ClientAuthSpec { secret, settings })
}

/// `auth-tls-*` without `auth-tls-secret`: ingress-nginx ignores them; a
/// key that would restrict who gets in denies the routes instead, the
/// others are reported as having no effect.
fn without_secret(
    get: &Get<'_>,
    errors: &mut Vec<AnnotationError>,
) -> Option<Result<ClientAuthSpec, AnnotationError>> {
    let mut denied = None;
    for name in KEYS.iter().skip(1) {
        let Some(value) = get(name) else { continue };
        let protective = match *name {
            "auth-tls-verify-client" => value != "off",
            "auth-tls-match-cn" => !value.is_empty(),
            _ => false,
        };
        let message = if protective {
            "needs auth-tls-secret (the CA to check client certificates against)"
        } else {
            "has no effect without auth-tls-secret"
        };
        if protective && denied.is_none() {
            denied = Some(fail(name, value, message));
        } else if !protective {
            errors.push(fail(name, value, message));
        }
    }
    denied.map(Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(
        pairs: &[(&str, &str)],
    ) -> (Option<Result<ClientAuthSpec, AnnotationError>>, Vec<String>) {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let mut errors = Vec::new();
        let parsed = parse(&map, &mut errors);
        let keys = errors
            .into_iter()
            .map(|e| e.key.trim_start_matches(super::super::PREFIX).to_owned())
            .collect();
        (parsed, keys)
    }

    #[test]
    fn every_setting_is_read() {
        let (parsed, errors) = parse_pairs(&[
            ("auth-tls-secret", "certs"),
            ("auth-tls-verify-client", "optional_no_ca"),
            ("auth-tls-verify-depth", "3"),
            ("auth-tls-error-page", "https://help.test/cert"),
            ("auth-tls-pass-certificate-to-upstream", "true"),
            ("auth-tls-match-cn", "CN=(alice|bob)"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let spec = parsed.unwrap().unwrap();
        assert_eq!(spec.secret.name, "certs");
        assert_eq!(spec.settings.verify, VerifyClient::OptionalNoCa);
        assert_eq!(spec.settings.depth, 3);
        assert!(spec.settings.pass_certificate);
        assert_eq!(spec.settings.match_cn.as_deref(), Some("CN=(alice|bob)"));
        assert!(matches!(
            spec.settings.error_page,
            Some(ErrorPage::Redirect(_))
        ));
    }

    #[test]
    fn bad_values_fall_back_to_the_strict_defaults_or_deny() {
        let (parsed, errors) = parse_pairs(&[
            ("auth-tls-secret", "certs"),
            ("auth-tls-verify-client", "maybe"),
            ("auth-tls-verify-depth", "deep"),
        ]);
        let spec = parsed.unwrap().unwrap();
        assert_eq!(spec.settings.verify, VerifyClient::On);
        assert_eq!(spec.settings.depth, 1);
        assert_eq!(errors, ["auth-tls-verify-client", "auth-tls-verify-depth"]);
        for denied in [
            vec![("auth-tls-secret", "Bad_Name")],
            vec![("auth-tls-secret", "c"), ("auth-tls-error-page", "@named")],
            vec![("auth-tls-secret", "c"), ("auth-tls-match-cn", "O=x")],
            vec![("auth-tls-verify-client", "on")],
            vec![("auth-tls-match-cn", "CN=x")],
        ] {
            let (parsed, _) = parse_pairs(&denied);
            assert!(matches!(parsed, Some(Err(_))), "{denied:?}");
        }
        let (parsed, errors) = parse_pairs(&[
            ("auth-tls-verify-client", "off"),
            ("auth-tls-verify-depth", "2"),
        ]);
        assert!(parsed.is_none());
        assert_eq!(errors, ["auth-tls-verify-client", "auth-tls-verify-depth"]);
        assert_eq!(parse_pairs(&[("use-regex", "true")]).0, None);
    }
}
