//! Protective annotations this gateway does not build, and so fail closed
//! (registry status [`Support::FailsClosed`]): the Ingress's routes answer
//! 503 with a `LocationDenied` diagnostic rather than serve without them.
//!
//! Two kinds:
//! - the WAF keys ([`WAF_KEYS`]): whether a route needs a WAF depends on
//!   the ConfigMap too (its `enable-modsecurity`, and the operator's
//!   `edge-gateway.io/serve-without-waf` opt-out), so they are collected
//!   here as a [`WafRequest`] and decided with the ConfigMap's defaults
//!   (`AdmissionSpec::apply_defaults`);
//! - every other such key (`auth-proxy-set-headers`, `auth-snippet`, ...)
//!   denies the routes by itself ([`unbuilt`]).

use std::collections::BTreeMap;

use super::values::boolean;
use super::{AnnotationError, Support, error, known};

/// The ModSecurity annotations.
pub const WAF_KEYS: [&str; 4] = [
    "enable-modsecurity",
    "enable-owasp-core-rules",
    "modsecurity-snippet",
    "modsecurity-transaction-id",
];

/// What an Ingress's annotations ask of a WAF.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WafRequest {
    /// The first annotation that turns the WAF on for the Ingress (a key
    /// set to anything but `"false"`), as the denial to report.
    pub on: Option<AnnotationError>,
    /// `enable-modsecurity: "false"`: no WAF for this Ingress, whatever its
    /// other WAF annotations and the ConfigMap say (ingress-nginx's
    /// `modsecurity off;` for the location).
    pub off: bool,
}

/// Reads the WAF annotations (keys without prefix).
pub(super) fn waf(annotations: &BTreeMap<&str, &str>) -> WafRequest {
    let mut request = WafRequest::default();
    for name in WAF_KEYS {
        let Some(value) = annotations.get(name).map(|v| v.trim()) else {
            continue;
        };
        let off = name.starts_with("enable-") && boolean(value) == Ok(false);
        if name == "enable-modsecurity" && off {
            request.off = true;
        }
        if !off && request.on.is_none() {
            request.on = Some(error(
                name,
                value,
                "asks for ModSecurity, which edge-gateway does not have (set \
                 edge-gateway.io/serve-without-waf: \"true\" in the ConfigMap to serve \
                 without it)"
                    .to_owned(),
            ));
        }
    }
    if request.off {
        // ingress-nginx renders `modsecurity off;` for the location, whatever
        // else its annotations say.
        request.on = None;
    }
    request
}

/// The first annotation in effect that is not built and fails closed by
/// itself (not a WAF key), as the denial of the Ingress's routes.
pub(super) fn unbuilt(annotations: &BTreeMap<&str, &str>) -> Option<AnnotationError> {
    annotations.iter().find_map(|(name, value)| {
        if !matches!(known(name)?.support, Support::FailsClosed(_)) || WAF_KEYS.contains(name) {
            return None;
        }
        Some(error(
            name,
            value,
            "is not applied by edge-gateway (see docs/compatibility.md)".to_owned(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map<'a>(pairs: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, &'a str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn waf_keys_turn_it_on_unless_false() {
        assert_eq!(waf(&map(&[])), WafRequest::default());
        let on = waf(&map(&[("enable-modsecurity", "true")]));
        assert!(on.on.is_some() && !on.off);
        let typo = waf(&map(&[("enable-owasp-core-rules", "yes please")]));
        assert!(typo.on.is_some(), "a value that is not false fails closed");
        let off = waf(&map(&[("enable-modsecurity", "false")]));
        assert!(off.on.is_none() && off.off);
        let snippet = waf(&map(&[("modsecurity-snippet", "SecRuleEngine On")]));
        assert!(snippet.on.unwrap().key.ends_with("modsecurity-snippet"));
        let off_wins = waf(&map(&[
            ("enable-modsecurity", "false"),
            ("enable-owasp-core-rules", "true"),
        ]));
        assert!(off_wins.off && off_wins.on.is_none());
    }

    #[test]
    fn unbuilt_keys_deny_by_themselves() {
        assert_eq!(unbuilt(&map(&[("auth-tls-verify-client", "on")])), None);
        let headers = unbuilt(&map(&[("auth-proxy-set-headers", "ns/h")])).unwrap();
        assert!(headers.key.ends_with("auth-proxy-set-headers"));
        assert_eq!(unbuilt(&map(&[("enable-modsecurity", "true")])), None);
    }
}
