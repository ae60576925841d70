//! The ConfigMap's protective keys that are more than one value each:
//! global external auth (`global-auth-*`, `no-auth-locations`) and the WAF
//! (`enable-modsecurity`, `enable-owasp-modsecurity-crs`,
//! `modsecurity-snippet`, and the operator's
//! `edge-gateway.io/serve-without-waf` opt-out); and what a protective key
//! whose value does not parse denies.
//!
//! Failing closed here means: the Ingress routes a key covers answer 503
//! with a `LocationDenied` diagnostic each (see
//! `AdmissionSpec::apply_defaults`), where ingress-nginx would drop the
//! setting (an unusable `global-auth-url` turns global auth off there).

use std::collections::BTreeMap;

use gateway::policy::external_auth::{ExternalAuthConfig, ExternalAuthError};

use super::{AdmissionDefaults, KeyError};
use crate::annotations::AnnotationError;
pub use crate::annotations::defaults::DEFAULT_NO_AUTH_LOCATIONS;
use crate::annotations::values::boolean;

/// The operator's opt-out: serve routes that ask for a WAF without one.
pub const SERVE_WITHOUT_WAF: &str = "edge-gateway.io/serve-without-waf";

/// The keys read here, so that the ConfigMap reader neither reports them
/// unknown nor not applied.
pub(super) const KEYS: [&str; 14] = [
    "global-auth-url",
    "global-auth-method",
    "global-auth-signin",
    "global-auth-signin-redirect-param",
    "global-auth-response-headers",
    "global-auth-request-redirect",
    "global-auth-cache-key",
    "global-auth-cache-duration",
    "global-auth-snippet",
    "no-auth-locations",
    "enable-modsecurity",
    "enable-owasp-modsecurity-crs",
    "modsecurity-snippet",
    SERVE_WITHOUT_WAF,
];

/// Keys whose unusable value denies every route with an address list:
/// they decide the client address the lists judge.
const CLIENT_ADDRESS_KEYS: [&str; 5] = [
    "use-forwarded-headers",
    "enable-real-ip",
    "compute-full-forwarded-for",
    "forwarded-for-header",
    "proxy-real-ip-cidr",
];

/// Keys whose unusable value denies every route.
const EVERYWHERE_KEYS: [&str; 3] = ["block-cidrs", "block-user-agents", "block-referers"];

/// A denial naming a ConfigMap key.
pub(super) fn denial(key: &str, value: &str, message: impl ToString) -> AnnotationError {
    AnnotationError {
        key: format!("ConfigMap key {key}"),
        value: value.to_owned(),
        message: message.to_string(),
    }
}

/// Reads the global auth, `no-auth-locations` and the WAF keys into
/// `admission`; values that do not parse are added to `errors`.
pub(super) fn read(
    data: &BTreeMap<String, String>,
    admission: &mut AdmissionDefaults,
    errors: &mut Vec<KeyError>,
) {
    let get = |key: &str| data.get(key).map(|v| v.trim());
    admission.no_auth_locations = get("no-auth-locations")
        .unwrap_or(DEFAULT_NO_AUTH_LOCATIONS)
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    admission.global_auth = global_auth(&get).map(|result| {
        result.map_err(|(key, value, message)| {
            errors.push(KeyError {
                key: key.to_owned(),
                value: value.to_owned(),
                message: message.clone(),
            });
            denial(key, value, message)
        })
    });
    match get(SERVE_WITHOUT_WAF).map(boolean) {
        None => {}
        Some(Ok(on)) => admission.serve_without_waf = on,
        Some(Err(message)) => errors.push(KeyError {
            key: SERVE_WITHOUT_WAF.to_owned(),
            value: get(SERVE_WITHOUT_WAF).unwrap_or_default().to_owned(),
            message: format!("{message}; the WAF keys fail closed"),
        }),
    }
    admission.waf = [
        "enable-modsecurity",
        "enable-owasp-modsecurity-crs",
        "modsecurity-snippet",
    ]
    .into_iter()
    .find_map(|key| {
        let value = get(key)?;
        let off = key.starts_with("enable-") && boolean(value) == Ok(false);
        (!off).then(|| {
            denial(
                key,
                value,
                "asks for ModSecurity, which edge-gateway does not have (set \
                     edge-gateway.io/serve-without-waf: \"true\" to serve without it)",
            )
        })
    });
}

type Failure<'a> = (&'static str, &'a str, String);

/// One `global-auth-*` value, parsed when present.
fn field<'a, T>(
    get: &dyn Fn(&str) -> Option<&'a str>,
    key: &'static str,
    parse: fn(&str) -> Result<T, ExternalAuthError>,
) -> Result<Option<T>, Failure<'a>> {
    get(key)
        .map(|value| parse(value).map_err(|e| (key, value, e.to_string())))
        .transpose()
}

/// `global-auth-url` and its companions, parsed as the `auth-*`
/// annotations are; `None` without a `global-auth-url`.
fn global_auth<'a>(
    get: &dyn Fn(&str) -> Option<&'a str>,
) -> Option<Result<ExternalAuthConfig, Failure<'a>>> {
    let url = get("global-auth-url")?;
    let config = || -> Result<ExternalAuthConfig, Failure<'a>> {
        let url = ExternalAuthConfig::parse_url(url)
            .map_err(|e| ("global-auth-url", url, e.to_string()))?;
        let mut config = ExternalAuthConfig::new(url);
        // ingress-nginx takes an empty method as none set.
        let method = get("global-auth-method").filter(|m| !m.is_empty());
        config.method = match method {
            Some(value) => Some(
                ExternalAuthConfig::parse_method(value)
                    .map_err(|e| ("global-auth-method", value, e.to_string()))?,
            ),
            None => None,
        };
        config.signin = field(get, "global-auth-signin", ExternalAuthConfig::parse_signin)?;
        let param = ExternalAuthConfig::parse_signin_redirect_param;
        if let Some(param) = field(get, "global-auth-signin-redirect-param", param)? {
            config.signin_redirect_param = param;
        }
        let headers = ExternalAuthConfig::parse_response_headers;
        config.response_headers =
            field(get, "global-auth-response-headers", headers)?.unwrap_or_default();
        let redirect = ExternalAuthConfig::parse_request_redirect;
        config.request_redirect = field(get, "global-auth-request-redirect", redirect)?;
        let key = ExternalAuthConfig::parse_cache_key;
        config.cache_key = field(get, "global-auth-cache-key", key)?;
        let duration = ExternalAuthConfig::parse_cache_duration;
        if let Some(duration) = field(get, "global-auth-cache-duration", duration)? {
            config.cache_duration = duration;
        }
        if let Some(snippet) = get("global-auth-snippet") {
            let message = "is raw nginx configuration, which is never applied".to_owned();
            return Err(("global-auth-snippet", snippet, message));
        }
        Ok(config)
    };
    Some(config())
}

/// Turns the errors of protective keys into the denials they cause.
pub(super) fn deny_for_errors(errors: &[KeyError], admission: &mut AdmissionDefaults) {
    for error in errors {
        let denied = || denial(&error.key, &error.value, &error.message);
        match error.key.as_str() {
            "whitelist-source-range" => admission.allowlist = Some(Err(denied())),
            "denylist-source-range" => admission.denylist = Some(Err(denied())),
            key if CLIENT_ADDRESS_KEYS.contains(&key) => {
                admission.client_address.get_or_insert_with(denied);
            }
            key if EVERYWHERE_KEYS.contains(&key) => {
                admission.everywhere.get_or_insert_with(denied);
            }
            _ => {}
        }
    }
}

/// Whether an unusable value of `key` denies routes rather than keeping
/// the default.
pub(super) fn denies(key: &str) -> bool {
    key.starts_with("global-auth-")
        || ["whitelist-source-range", "denylist-source-range"].contains(&key)
        || CLIENT_ADDRESS_KEYS.contains(&key)
        || EVERYWHERE_KEYS.contains(&key)
}
