//! The annotations of a route's admission checks: CORS (`enable-cors`,
//! `cors-*`), request limits (`limit-*`), address lists
//! (`whitelist-source-range`, `allowlist-source-range`,
//! `denylist-source-range`), basic authentication (`auth-type`,
//! `auth-secret`, `auth-secret-type`, `auth-realm`) and external
//! authentication (`auth-url` and its `auth-*` companions).
//!
//! Two kinds of failure, as in ingress-nginx:
//! - a bad CORS or limit value keeps that value's default, with a
//!   diagnostic;
//! - a bad value of an access or authentication annotation makes the
//!   route answer every request with 503 (ingress-nginx's
//!   `LocationDenied`), so that a typo never opens a protected path; so do
//!   the protective annotations this gateway does not build
//!   ([`super::fail_closed`]) and the ConfigMap's protective defaults that
//!   cannot be used ([`AdmissionSpec::apply_defaults`]).
//!
//! Also read here: `global-rate-limit-*` (a limit, window or CIDR list
//! that does not parse denies the routes), `satisfy` and
//! `enable-global-auth`; the ConfigMap's
//! global external auth (`global-auth-*`) becomes the Ingress's external
//! auth in [`AdmissionSpec::apply_defaults`] when it has none of its own.

use std::collections::BTreeMap;

use gateway::policy::access::{AccessList, Cidr, parse_cidrs};
use gateway::policy::basic_auth::DEFAULT_REALM;
use gateway::policy::cors::{self, CorsConfig};
use gateway::policy::external_auth::{ExternalAuthConfig, ExternalAuthError};
use gateway::policy::global_limit::KeyTemplate;
use gateway::policy::limits::LimitConfig;

use super::AnnotationError;
use super::defaults::{AdmissionDefaults, GlobalStoreSettings};
use super::fail_closed::{self, WafRequest};
use super::values::{boolean, go_duration};

/// The Secret of `auth-secret`, before it is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    /// The namespace written before a `/`, if any.
    pub namespace: Option<String>,
    /// The Secret's name.
    pub name: String,
}

/// `auth-type: basic` and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasicAuthSpec {
    /// `auth-secret`: where the users are.
    pub secret: SecretRef,
    /// `auth-secret-type: auth-map` (every key a user, every value a hash)
    /// instead of `auth-file` (the key `auth` holding an htpasswd file).
    pub map: bool,
    /// `auth-realm`.
    pub realm: String,
}

/// What an Ingress's admission annotations say, before Secrets are read.
/// The large parts most Ingresses do not set (CORS, external auth, global
/// rate limit) are boxed: a compile holds every Ingress's parsed
/// annotations at once (10,000 of them took 22 MiB).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AdmissionSpec {
    /// `enable-cors` with its settings.
    pub cors: Option<Box<CorsConfig>>,
    /// The `limit-*` settings (none active by default).
    pub limits: LimitConfig,
    /// The address lists.
    pub access: AccessList,
    /// Basic authentication.
    pub basic: Option<BasicAuthSpec>,
    /// External authentication.
    pub external: Option<Box<ExternalAuthConfig>>,
    /// Why the route is denied (answers 503), when an access or
    /// authentication annotation is unusable.
    pub denied: Option<AnnotationError>,
    /// `satisfy: any`: one passing check of the address lists, basic and
    /// external auth lets the request in (nginx's `satisfy any`).
    pub satisfy_any: bool,
    /// `enable-global-auth: "false"`: the ConfigMap's global auth does not
    /// apply to this Ingress.
    pub global_auth_off: bool,
    /// Why the routes global auth covers are denied: the ConfigMap's
    /// `global-auth-*` cannot be used. Routes under `no-auth-locations` are
    /// not covered, so this is kept apart from `denied`.
    pub global_auth_denied: Option<AnnotationError>,
    /// The WAF annotations, decided with the ConfigMap's in
    /// [`AdmissionSpec::apply_defaults`].
    pub waf: WafRequest,
    /// What is served although it asked for more (a WAF the operator
    /// chose to do without): reported, not denied.
    pub warnings: Vec<String>,
    /// `global-rate-limit` with its window, key and ignored CIDRs.
    pub global: Option<Box<GlobalLimitSpec>>,
}

/// An Ingress's `global-rate-limit-*` annotations, with the ConfigMap's
/// store (see [`gateway::policy::global_limit`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalLimitSpec {
    /// `global-rate-limit`: requests per window.
    pub limit: u64,
    /// `global-rate-limit-window`, in whole seconds.
    pub window_seconds: u64,
    /// `global-rate-limit-key` (`$remote_addr`).
    pub key: KeyTemplate,
    /// `global-rate-limit-ignored-cidrs`.
    pub ignored: Vec<Cidr>,
    /// The ConfigMap's memcached and refusal status; `None`: no
    /// `global-rate-limit-memcached-host`, so no limit (as ingress-nginx).
    pub store: Option<GlobalStoreSettings>,
}

impl AdmissionSpec {
    /// Applies the ConfigMap's defaults: the global limits' store (without
    /// one a global limit denies the routes); the limit refusal statuses; its
    /// `whitelist-source-range` / `denylist-source-range` when the Ingress
    /// sets no list of its own; its global auth when the Ingress has no
    /// `auth-url` and does not turn it off; and its WAF. A protective
    /// default that cannot be used, or a WAF, denies the routes (503)
    /// instead, unless the ConfigMap says `edge-gateway.io/serve-without-waf`.
    pub fn apply_defaults(&mut self, defaults: &AdmissionDefaults) {
        let mut denials = Vec::new();
        if let Some(global) = &mut self.global {
            global.store.clone_from(&defaults.global_rate_limit);
            if global.store.is_none() {
                denials.push(fail(
                    "global-rate-limit",
                    &global.limit.to_string(),
                    "is counted in memcached and the ConfigMap sets no \
                     global-rate-limit-memcached-host: the routes answer 503 rather than serve \
                     beyond the limit (set the host, or use limit-rps for a per-replica limit)",
                ));
            }
        }
        self.limits.req_status = defaults.limit_req_status;
        self.limits.conn_status = defaults.limit_conn_status;
        if let AccessList::Rules { allow, deny } = &mut self.access {
            for (own, inherited) in [(allow, &defaults.allowlist), (deny, &defaults.denylist)] {
                match inherited {
                    Some(Ok(list)) if own.is_empty() => own.clone_from(list),
                    Some(Err(denial)) if own.is_empty() => denials.push(denial.clone()),
                    _ => {}
                }
            }
        }
        if !self.access.is_open()
            && let Some(denial) = &defaults.client_address
        {
            denials.push(denial.clone());
        }
        denials.extend(defaults.everywhere.iter().cloned());
        if self.external.is_none() && !self.global_auth_off {
            match &defaults.global_auth {
                Some(Ok(config)) => self.external = Some(Box::new(config.clone())),
                Some(Err(denial)) => self.global_auth_denied = Some(denial.clone()),
                None => {}
            }
        }
        let waf = self
            .waf
            .on
            .clone()
            .or_else(|| defaults.waf.clone().filter(|_| !self.waf.off));
        if let Some(waf) = waf {
            if defaults.serve_without_waf {
                self.warnings.push(format!(
                    "{} asks for ModSecurity; served without a WAF, as the ConfigMap's \
                     edge-gateway.io/serve-without-waf says",
                    waf.key
                ));
            } else {
                denials.push(waf);
            }
        }
        if self.denied.is_none() {
            self.denied = denials.into_iter().next();
        }
    }

    /// Whether any check is configured.
    pub fn is_empty(&self) -> bool {
        self.cors.is_none()
            && self.global.as_ref().is_none_or(|g| g.store.is_none())
            && !self.limits.is_active()
            && self.access.is_open()
            && self.basic.is_none()
            && self.external.is_none()
            && self.denied.is_none()
            && self.global_auth_denied.is_none()
    }
}

/// Parses the admission annotations (keys without the prefix, values
/// trimmed); bad CORS and limit values are added to `errors`.
pub(super) fn parse(
    annotations: &BTreeMap<&str, &str>,
    errors: &mut Vec<AnnotationError>,
) -> AdmissionSpec {
    let get = |name: &str| annotations.get(name).map(|v| v.trim());
    let mut spec = AdmissionSpec {
        cors: cors_config(&get, errors).map(Box::new),
        limits: limits(&get, errors),
        satisfy_any: satisfy(&get, errors),
        global_auth_off: !enable_global_auth(&get, errors),
        waf: fail_closed::waf(annotations),
        ..AdmissionSpec::default()
    };
    let denied = global_limit(&get, errors)
        .map(|global| spec.global = global.map(Box::new))
        .and_then(|()| access(&get))
        .map(|access| spec.access = access)
        .and_then(|()| basic(&get).map(|basic| spec.basic = basic))
        .and_then(|()| external(&get).map(|external| spec.external = external.map(Box::new)));
    if let Err(error) = denied {
        spec.denied = Some(error);
    }
    if spec.denied.is_none() {
        spec.denied = fail_closed::unbuilt(annotations);
    }
    spec
}

/// `global-rate-limit`, `-window`, `-key`, `-ignored-cidrs`. Off unless
/// both the limit and the window are set (and not 0), as ingress-nginx;
/// a limit, window or CIDR list that does not parse denies the routes
/// (503), a key that does not compile is `$remote_addr` with a
/// diagnostic.
fn global_limit(
    get: &Get<'_>,
    errors: &mut Vec<AnnotationError>,
) -> Result<Option<GlobalLimitSpec>, AnnotationError> {
    let (Some(limit), Some(window)) = (get("global-rate-limit"), get("global-rate-limit-window"))
    else {
        return Ok(None);
    };
    let limit: u64 = limit
        .parse()
        .map_err(|_| fail("global-rate-limit", limit, "must be a whole number"))?;
    let window_seconds = go_duration(window)
        .map_err(|message| fail("global-rate-limit-window", window, message))?
        .as_secs();
    if limit == 0 || window_seconds == 0 {
        return Ok(None);
    }
    let key = match get("global-rate-limit-key").filter(|k| !k.is_empty()) {
        None => KeyTemplate::default(),
        Some(key) => KeyTemplate::parse(key).unwrap_or_else(|message| {
            errors.push(fail(
                "global-rate-limit-key",
                key,
                format!("{message}; $remote_addr is used"),
            ));
            KeyTemplate::default()
        }),
    };
    let ignored = match get("global-rate-limit-ignored-cidrs") {
        None => Vec::new(),
        Some(cidrs) => {
            parse_cidrs(cidrs).map_err(|e| fail("global-rate-limit-ignored-cidrs", cidrs, e))?
        }
    };
    Ok(Some(GlobalLimitSpec {
        limit,
        window_seconds,
        key,
        ignored,
        store: None,
    }))
}

/// `satisfy`: `any` or `all` (the default); another value is `all`, as
/// ingress-nginx reads it, with a diagnostic.
fn satisfy(get: &Get<'_>, errors: &mut Vec<AnnotationError>) -> bool {
    match get("satisfy") {
        None | Some("all") => false,
        Some("any") => true,
        Some(other) => {
            errors.push(fail("satisfy", other, "must be any or all"));
            false
        }
    }
}

/// `enable-global-auth` (default true); a value that does not parse keeps
/// global auth on.
fn enable_global_auth(get: &Get<'_>, errors: &mut Vec<AnnotationError>) -> bool {
    let Some(value) = get("enable-global-auth") else {
        return true;
    };
    boolean(value).unwrap_or_else(|message| {
        errors.push(fail("enable-global-auth", value, message));
        true
    })
}

type Get<'a> = dyn Fn(&str) -> Option<&'a str> + 'a;

fn fail(name: &str, value: &str, message: impl ToString) -> AnnotationError {
    super::error(name, value, message.to_string())
}

/// `enable-cors` and the `cors-*` values; a bad value keeps its default.
fn cors_config(get: &Get<'_>, errors: &mut Vec<AnnotationError>) -> Option<CorsConfig> {
    let enabled = get("enable-cors")?;
    match boolean(enabled) {
        Ok(true) => {}
        Ok(false) => return None,
        Err(message) => {
            errors.push(fail("enable-cors", enabled, message));
            return None;
        }
    }
    let mut config = CorsConfig::default();
    let mut field = |name: &str, apply: &mut dyn FnMut(&str) -> Result<(), cors::CorsError>| {
        if let Some(value) = get(name)
            && let Err(e) = apply(value)
        {
            errors.push(fail(name, value, e));
        }
    };
    field("cors-allow-origin", &mut |v| {
        config.allow_origin = cors::parse_origins(v)?;
        Ok(())
    });
    field("cors-allow-methods", &mut |v| {
        config.allow_methods = cors::parse_methods(v)?;
        Ok(())
    });
    field("cors-allow-headers", &mut |v| {
        config.allow_headers = cors::parse_headers(v)?;
        Ok(())
    });
    field("cors-expose-headers", &mut |v| {
        config.expose_headers = Some(cors::parse_expose_headers(v)?);
        Ok(())
    });
    field("cors-allow-credentials", &mut |v| {
        config.allow_credentials = cors::parse_credentials(v)?;
        Ok(())
    });
    field("cors-max-age", &mut |v| {
        config.max_age = cors::parse_max_age(v)?;
        Ok(())
    });
    Some(config)
}

/// The `limit-*` values; a bad value keeps its default (no limit).
fn limits(get: &Get<'_>, errors: &mut Vec<AnnotationError>) -> LimitConfig {
    let mut config = LimitConfig::default();
    let mut number = |name: &str, target: &mut u32| {
        if let Some(value) = get(name) {
            match value.parse::<u32>() {
                Ok(n) => *target = n,
                Err(_) => errors.push(fail(name, value, "must be a whole number")),
            }
        }
    };
    number("limit-rps", &mut config.rps);
    number("limit-rpm", &mut config.rpm);
    number("limit-connections", &mut config.connections);
    number("limit-burst-multiplier", &mut config.burst_multiplier);
    if config.burst_multiplier == 0 {
        config.burst_multiplier = 1;
    }
    if let Some(value) = get("limit-whitelist") {
        match parse_cidrs(value) {
            Ok(list) => config.whitelist = list,
            Err(e) => errors.push(fail("limit-whitelist", value, e)),
        }
    }
    config
}

/// The address lists; `allowlist-source-range` is the newer name of
/// `whitelist-source-range` and wins when both are set.
fn access(get: &Get<'_>) -> Result<AccessList, AnnotationError> {
    let allow = get("allowlist-source-range")
        .map(|v| ("allowlist-source-range", v))
        .or_else(|| get("whitelist-source-range").map(|v| ("whitelist-source-range", v)));
    let deny = get("denylist-source-range").map(|v| ("denylist-source-range", v));
    for (name, value) in allow.iter().chain(deny.iter()) {
        parse_cidrs(value).map_err(|e| fail(name, value, e))?;
    }
    Ok(AccessList::from_values(
        allow.map(|(_, v)| v),
        deny.map(|(_, v)| v),
    ))
}

/// `auth-type: basic` and its settings; `digest`, an unknown type or a
/// missing or malformed `auth-secret` deny the route.
fn basic(get: &Get<'_>) -> Result<Option<BasicAuthSpec>, AnnotationError> {
    let Some(kind) = get("auth-type") else {
        return Ok(None);
    };
    if kind != "basic" {
        let message = if kind == "digest" {
            "digest authentication is not supported (use basic or auth-url)"
        } else {
            "must be basic"
        };
        return Err(fail("auth-type", kind, message));
    }
    let secret = get("auth-secret").unwrap_or("");
    let secret = secret_ref(secret).map_err(|message| fail("auth-secret", secret, message))?;
    let map = match get("auth-secret-type") {
        None | Some("auth-file") => false,
        Some("auth-map") => true,
        Some(other) => {
            return Err(fail(
                "auth-secret-type",
                other,
                "must be auth-file or auth-map",
            ));
        }
    };
    Ok(Some(BasicAuthSpec {
        secret,
        map,
        realm: get("auth-realm")
            .filter(|r| !r.is_empty())
            .unwrap_or(DEFAULT_REALM)
            .to_owned(),
    }))
}

/// `name` or `namespace/name`, both DNS subdomains.
pub(crate) fn secret_ref(value: &str) -> Result<SecretRef, &'static str> {
    let (namespace, name) = match value.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, value),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    if !valid(name) || namespace.is_some_and(|ns| !valid(ns)) {
        return Err("must name a Secret: name or namespace/name");
    }
    Ok(SecretRef {
        namespace: namespace.map(str::to_owned),
        name: name.to_owned(),
    })
}

/// One `auth-*` value, parsed when present.
fn field<T>(
    get: &Get<'_>,
    name: &str,
    parse: fn(&str) -> Result<T, ExternalAuthError>,
) -> Result<Option<T>, AnnotationError> {
    get(name)
        .map(|value| parse(value).map_err(|e| fail(name, value, e)))
        .transpose()
}

/// `auth-url` and its companions; any unusable value denies the route.
fn external(get: &Get<'_>) -> Result<Option<ExternalAuthConfig>, AnnotationError> {
    let Some(url) = get("auth-url") else {
        return Ok(None);
    };
    let mut config = ExternalAuthConfig::new(
        ExternalAuthConfig::parse_url(url).map_err(|e| fail("auth-url", url, e))?,
    );
    let g = get;
    if let Some(v) = field(g, "auth-method", ExternalAuthConfig::parse_method)? {
        config.method = Some(v);
    }
    if let Some(v) = field(g, "auth-signin", ExternalAuthConfig::parse_signin)? {
        config.signin = Some(v);
    }
    let param = ExternalAuthConfig::parse_signin_redirect_param;
    if let Some(v) = field(g, "auth-signin-redirect-param", param)? {
        config.signin_redirect_param = v;
    }
    let headers = ExternalAuthConfig::parse_response_headers;
    if let Some(v) = field(g, "auth-response-headers", headers)? {
        config.response_headers = v;
    }
    let redirect = ExternalAuthConfig::parse_request_redirect;
    if let Some(v) = field(g, "auth-request-redirect", redirect)? {
        config.request_redirect = Some(v);
    }
    if let Some(v) = field(g, "auth-cache-key", ExternalAuthConfig::parse_cache_key)? {
        config.cache_key = Some(v);
    }
    let duration = ExternalAuthConfig::parse_cache_duration;
    if let Some(v) = field(g, "auth-cache-duration", duration)? {
        config.cache_duration = v;
    }
    Ok(Some(config))
}

#[cfg(test)]
mod tests {
    use gateway::policy::cors::AllowOrigin;

    use super::*;

    fn spec(pairs: &[(&str, &str)]) -> (AdmissionSpec, Vec<AnnotationError>) {
        let map: BTreeMap<&str, &str> = pairs.iter().copied().collect();
        let mut errors = Vec::new();
        (parse(&map, &mut errors), errors)
    }

    #[test]
    fn global_rate_limit_needs_a_limit_a_window_and_is_denied_without_a_store() {
        let (spec, errors) = self::spec(&[
            ("global-rate-limit", "100"),
            ("global-rate-limit-window", "1m"),
            ("global-rate-limit-key", "$http_x_user$no_such"),
        ]);
        let global = spec.global.clone().unwrap();
        assert_eq!((global.limit, global.window_seconds), (100, 60));
        assert_eq!(global.key, KeyTemplate::default());
        assert_eq!(errors.len(), 1, "{errors:?}");
        // Without the ConfigMap's memcached the routes are denied, never
        // served beyond the limit.
        let mut unstored = spec;
        unstored.apply_defaults(&AdmissionDefaults::default());
        assert!(!unstored.is_empty());
        let denied = unstored.denied.expect("denied without a store");
        assert!(
            denied.message.contains("global-rate-limit-memcached-host"),
            "{denied:?}"
        );
        let (no_window, _) = self::spec(&[("global-rate-limit", "100")]);
        assert!(no_window.global.is_none());
        let (bad, _) = self::spec(&[
            ("global-rate-limit", "100"),
            ("global-rate-limit-window", "soon"),
        ]);
        assert!(bad.denied.is_some());
    }

    #[test]
    fn nothing_set_is_empty() {
        let (spec, errors) = spec(&[("rewrite-target", "/")]);
        assert!(spec.is_empty() && errors.is_empty());
    }

    #[test]
    fn cors_values_fall_back_to_defaults_one_by_one() {
        let (spec, errors) = spec(&[
            ("enable-cors", "true"),
            (
                "cors-allow-origin",
                "https://a.example, https://*.b.example",
            ),
            ("cors-max-age", "ten"),
        ]);
        let cors = spec.cors.unwrap();
        assert!(matches!(cors.allow_origin, AllowOrigin::List(ref l) if l.len() == 2));
        assert_eq!(cors.max_age, cors::DEFAULT_MAX_AGE);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "nginx.ingress.kubernetes.io/cors-max-age");
        let (off, _) = self::spec(&[("enable-cors", "false"), ("cors-max-age", "1")]);
        assert!(off.cors.is_none());
    }

    #[test]
    fn limits_parse_and_bad_numbers_are_reported() {
        let (spec, errors) = spec(&[
            ("limit-rps", "5"),
            ("limit-connections", "-1"),
            ("limit-whitelist", "10.0.0.0/8"),
        ]);
        assert_eq!(spec.limits.rps, 5);
        assert_eq!(spec.limits.connections, 0);
        assert_eq!(spec.limits.whitelist.len(), 1);
        assert_eq!(errors.len(), 1);
        assert!(spec.limits.is_active());
    }

    #[test]
    fn bad_access_or_auth_values_deny_the_route() {
        for pairs in [
            &[("whitelist-source-range", "10.0.0.0/8, nonsense")][..],
            &[("denylist-source-range", "")],
            &[("auth-type", "digest"), ("auth-secret", "users")],
            &[("auth-type", "basic")],
            &[("auth-type", "basic"), ("auth-secret", "Not_A_Name")],
            &[
                ("auth-type", "basic"),
                ("auth-secret", "u"),
                ("auth-secret-type", "x"),
            ],
            &[("auth-url", "not a url")],
            &[
                ("auth-url", "http://auth.svc/check"),
                ("auth-method", "CONNECT"),
            ],
        ] {
            let (spec, _) = spec(pairs);
            assert!(spec.denied.is_some(), "{pairs:?}");
        }
    }

    #[test]
    fn allowlist_is_the_newer_name_and_wins() {
        let (spec, _) = spec(&[
            ("whitelist-source-range", "192.0.2.0/24"),
            ("allowlist-source-range", "10.0.0.0/8"),
        ]);
        assert!(spec.access.check("10.1.1.1".parse().unwrap()).is_ok());
        assert!(spec.access.check("192.0.2.1".parse().unwrap()).is_err());
    }

    #[test]
    fn basic_and_external_auth() {
        let (spec, _) = spec(&[
            ("auth-type", "basic"),
            ("auth-secret", "other-ns/users"),
            ("auth-secret-type", "auth-map"),
            ("auth-url", "http://auth.auth.svc.cluster.local/check"),
            ("auth-response-headers", "X-User, X-Email"),
            ("auth-signin", "https://login.example.com/start"),
        ]);
        assert!(spec.denied.is_none(), "{:?}", spec.denied);
        let basic = spec.basic.unwrap();
        assert_eq!(basic.secret.namespace.as_deref(), Some("other-ns"));
        assert!(basic.map);
        assert_eq!(basic.realm, DEFAULT_REALM);
        let external = spec.external.unwrap();
        assert_eq!(external.response_headers.len(), 2);
        assert!(external.signin.is_some());
    }
}
