//! The upstream protocol annotations: `backend-protocol`,
//! `proxy-next-upstream` and the `proxy-ssl-*` family, parsed into typed
//! settings. The `proxy-ssl-*` Secret is read at compile time
//! (`compile::upstream_tls`).

use std::collections::BTreeMap;

use gateway::settings::{BackendProtocol, NextUpstream};

use super::admission::{SecretRef, secret_ref};
use super::values::{DEFAULT_VERIFY_DEPTH, verify_depth};
use super::{AnnotationError, error};

/// `backend-protocol`: `HTTP`, `HTTPS`, `GRPC`, `GRPCS` or `AUTO_HTTP`.
pub(crate) fn backend_protocol(value: &str) -> Result<BackendProtocol, String> {
    BackendProtocol::parse(value).ok_or_else(|| {
        "must be HTTP, HTTPS, GRPC, GRPCS or AUTO_HTTP (FCGI is not supported)".to_owned()
    })
}

/// `proxy-http-version`: `1.1` (the default) or `1.0`; whether it is 1.0.
pub(crate) fn http_10(value: &str) -> Result<bool, String> {
    match value {
        "1.1" => Ok(false),
        "1.0" => Ok(true),
        _ => Err("must be 1.0 or 1.1".to_owned()),
    }
}

/// `proxy-next-upstream`: space-separated nginx conditions (`error`,
/// `timeout`, `invalid_header`, `http_500` ... `http_429`,
/// `non_idempotent`) or `off`. Gives the conditions and whether
/// `non_idempotent` was named.
pub(crate) fn next_upstream(value: &str) -> Result<(NextUpstream, bool), String> {
    let mut next = NextUpstream::off();
    let mut non_idempotent = false;
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    if tokens.is_empty() {
        return Err("must name at least one condition, or off".to_owned());
    }
    for token in &tokens {
        match *token {
            "off" if tokens.len() == 1 => {}
            "error" => next.error = true,
            "timeout" => next.timeout = true,
            "invalid_header" => next.invalid_header = true,
            "non_idempotent" => non_idempotent = true,
            other => {
                let added = other
                    .strip_prefix("http_")
                    .and_then(|code| code.parse::<u16>().ok())
                    .is_some_and(|code| next.add_status(code));
                if !added {
                    return Err(format!(
                        "{other:?} is not one of error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent, off (alone)"
                    ));
                }
            }
        }
    }
    Ok((next, non_idempotent))
}

/// `proxy-next-upstream-timeout`: seconds; `0` is no limit.
pub(crate) fn next_upstream_timeout(value: &str) -> Result<Option<std::time::Duration>, String> {
    match value.parse::<u64>() {
        Ok(0) => Ok(None),
        _ => super::values::seconds(value).map(Some),
    }
}

/// What the `proxy-ssl-*` annotations ask for, before the Secret is read.
/// As in ingress-nginx, they apply only with `proxy-ssl-secret`, and the
/// name only with `proxy-ssl-name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamTlsSpec {
    /// `proxy-ssl-secret`: `namespace/name` (the Ingress's own namespace).
    pub secret: SecretRef,
    /// `proxy-ssl-verify` (`off`).
    pub verify: bool,
    /// `proxy-ssl-name`: the name verified (and sent as SNI).
    pub name: Option<String>,
    /// `proxy-ssl-server-name` (`off`): send the name as SNI.
    pub server_name: bool,
    /// `proxy-ssl-verify-depth` (1): the most intermediate certificates
    /// between the endpoint's certificate and the CA.
    pub verify_depth: u32,
}

/// Parses the `proxy-ssl-*` annotations; an unusable value of an optional
/// one keeps its default, an unusable Secret reference is an error.
pub(crate) fn tls(
    annotations: &BTreeMap<&str, &str>,
    errors: &mut Vec<AnnotationError>,
) -> Option<UpstreamTlsSpec> {
    let value = annotations.get("proxy-ssl-secret")?.trim();
    let secret = match secret_ref(value) {
        Ok(secret) if secret.namespace.is_some() => secret,
        Ok(_) => {
            let message = "must be namespace/name".to_owned();
            errors.push(error("proxy-ssl-secret", value, message));
            return None;
        }
        Err(message) => {
            errors.push(error("proxy-ssl-secret", value, message.to_owned()));
            return None;
        }
    };
    let mut on_off = |name: &str| match annotations.get(name).map(|v| v.trim()) {
        None | Some("off") => false,
        Some("on") => true,
        Some(other) => {
            errors.push(error(name, other, "must be on or off".to_owned()));
            false
        }
    };
    let verify = on_off("proxy-ssl-verify");
    let server_name = on_off("proxy-ssl-server-name");
    let depth = match annotations.get("proxy-ssl-verify-depth").map(|v| v.trim()) {
        None => DEFAULT_VERIFY_DEPTH,
        Some(value) => verify_depth(value).unwrap_or_else(|message| {
            errors.push(error("proxy-ssl-verify-depth", value, message.to_owned()));
            DEFAULT_VERIFY_DEPTH
        }),
    };
    let name = match annotations.get("proxy-ssl-name").map(|v| v.trim()) {
        None | Some("") => None,
        Some(name) if is_server_name(name) => Some(name.to_owned()),
        Some(other) => {
            let message = "must be a host name or IP address".to_owned();
            errors.push(error("proxy-ssl-name", other, message));
            None
        }
    };
    Some(UpstreamTlsSpec {
        secret,
        verify,
        server_name: server_name && name.is_some(),
        name,
        verify_depth: depth,
    })
}

fn is_server_name(name: &str) -> bool {
    name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols() {
        assert_eq!(backend_protocol("GRPC"), Ok(BackendProtocol::Grpc));
        assert_eq!(backend_protocol("https"), Ok(BackendProtocol::Https));
        assert!(backend_protocol("FCGI").is_err());
        assert!(backend_protocol("").is_err());
        assert_eq!(http_10("1.0"), Ok(true));
        assert_eq!(http_10("1.1"), Ok(false));
        assert!(http_10("2").is_err());
    }

    #[test]
    fn next_upstream_conditions() {
        let (next, ni) = next_upstream("error timeout http_503 non_idempotent").unwrap();
        assert!(next.error && next.timeout && !next.invalid_header && ni);
        assert!(next.retries_status(http::StatusCode::SERVICE_UNAVAILABLE));
        let (off, ni) = next_upstream("off").unwrap();
        assert_eq!(off, NextUpstream::off());
        assert!(!ni);
        let (all, _) =
            next_upstream("invalid_header http_500 http_502 http_504 http_403 http_404 http_429")
                .unwrap();
        assert!(all.invalid_header && all.retries_status(http::StatusCode::TOO_MANY_REQUESTS));
        for bad in [
            "",
            "http_501",
            "error sometimes",
            "off error",
            "http_",
            "ERROR",
        ] {
            assert!(next_upstream(bad).is_err(), "{bad:?}");
        }
        assert_eq!(next_upstream_timeout("0"), Ok(None));
        assert_eq!(
            next_upstream_timeout("5"),
            Ok(Some(std::time::Duration::from_secs(5)))
        );
        assert!(next_upstream_timeout("5s").is_err());
    }

    fn parse(pairs: &[(&str, &str)]) -> (Option<UpstreamTlsSpec>, Vec<AnnotationError>) {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let mut errors = Vec::new();
        (tls(&map, &mut errors), errors)
    }

    #[test]
    fn tls_needs_a_namespaced_secret() {
        let (spec, errors) = parse(&[
            ("proxy-ssl-secret", "apps/upstream-ca"),
            ("proxy-ssl-verify", "on"),
            ("proxy-ssl-name", "api.internal"),
            ("proxy-ssl-server-name", "on"),
            ("proxy-ssl-verify-depth", "3"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let spec = spec.unwrap();
        assert!(spec.verify && spec.server_name);
        assert_eq!(spec.verify_depth, 3);
        assert_eq!(spec.secret.namespace.as_deref(), Some("apps"));
        assert_eq!(spec.name.as_deref(), Some("api.internal"));
        let (spec, errors) = parse(&[("proxy-ssl-verify", "on")]);
        assert!(spec.is_none() && errors.is_empty());
        let (spec, errors) = parse(&[("proxy-ssl-secret", "upstream-ca")]);
        assert!(spec.is_none() && errors.len() == 1);
    }

    #[test]
    fn tls_bad_options_keep_defaults() {
        let (spec, errors) = parse(&[
            ("proxy-ssl-secret", "apps/ca"),
            ("proxy-ssl-verify", "true"),
            ("proxy-ssl-name", "bad name"),
            ("proxy-ssl-server-name", "on"),
            ("proxy-ssl-verify-depth", "deep"),
        ]);
        let spec = spec.unwrap();
        assert!(!spec.verify && spec.name.is_none() && !spec.server_name);
        assert_eq!(spec.verify_depth, 1);
        assert_eq!(errors.len(), 3);
        let (spec, _) = parse(&[
            ("proxy-ssl-secret", "apps/ca"),
            ("proxy-ssl-verify-depth", "0"),
        ]);
        assert_eq!(spec.unwrap().verify_depth, 1, "0 reads as the default");
    }
}
