//! The controller ConfigMap (`--configmap ns/name`): ingress-nginx's
//! global settings, layered over the built-in defaults before any Ingress
//! is compiled. A change to it recompiles the table like any other object,
//! so it takes effect without a restart.
//!
//! Keys are parsed like annotation values (typed, or refused with a
//! diagnostic that keeps the default). Keys this gateway does not apply
//! are reported in one diagnostic, so an operator sees what a migrated
//! ConfigMap does not do here; [`registry`] lists every key ingress-nginx
//! documents with its status.

mod access_log;
mod compression;
mod global_limit;
mod header_maps;
mod listener;
pub mod protective;
pub mod registry;
mod response;
mod streams;
mod telemetry;
pub mod tenancy;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gateway::policy::access::{Cidr, parse_cidrs};
use gateway::policy::block::Blocklist;
use gateway::policy::{CustomErrors, Globals, Policy};
use gateway::settings::ProxySettings;
use http::{HeaderName, HeaderValue, StatusCode};

pub use crate::annotations::defaults::{AdmissionDefaults, GlobalStoreSettings};
pub use header_maps::HeaderMaps;

use crate::annotations::registry::Support;
use crate::annotations::traffic;
use crate::annotations::values::{body_size, boolean, seconds, tries};
use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::options::CompileOptions;
use crate::snapshot::Snapshot;

/// The settings a ConfigMap gives every Ingress and the gateway as a whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GlobalConfig {
    /// Proxy settings every route starts from.
    pub proxy: ProxySettings,
    /// Policy every route starts from.
    pub policy: Policy,
    /// Gateway-wide settings.
    pub globals: Globals,
    /// Defaults of the admission annotations.
    pub admission: AdmissionDefaults,
    /// The ConfigMaps `proxy-set-headers` and `add-headers` name.
    pub header_maps: HeaderMaps,
    /// What keeps tenants apart (`edge-gateway.io/` keys).
    pub tenancy: tenancy::Tenancy,
    /// `global-allowed-response-headers`: the only headers `custom-headers`
    /// may set (exact names, as ingress-nginx compares them).
    pub allowed_response_headers: Vec<String>,
}

/// A ConfigMap value that could not be used (its default applies, or, for
/// a protective key, the routes it covers answer 503).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    /// The key.
    pub key: String,
    /// The value found.
    pub value: String,
    /// Why it was refused.
    pub message: String,
}

impl KeyError {
    /// What happens instead, for messages: the default applies, or the
    /// routes the key covers answer 503.
    pub fn outcome(&self) -> &'static str {
        if protective::denies(&self.key) {
            "the routes it covers answer 503"
        } else {
            "the default is used"
        }
    }
}

/// What reading a ConfigMap gave.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Read {
    /// The settings.
    pub config: GlobalConfig,
    /// Values that did not parse.
    pub errors: Vec<KeyError>,
    /// Keys present that this gateway does not apply (not built yet, or
    /// refused snippets).
    pub not_applied: Vec<String>,
    /// Keys present that ingress-nginx does not document either.
    pub unknown: Vec<String>,
}

type Apply = fn(&mut GlobalConfig, &str) -> Result<(), String>;

/// The keys applied, with their parsers.
const PARSERS: &[(&str, Apply)] = &[
    ("proxy-connect-timeout", |c, v| {
        c.proxy.connect_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-read-timeout", |c, v| {
        c.proxy.read_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-send-timeout", |c, v| {
        c.proxy.send_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-body-size", |c, v| {
        c.proxy.max_body_size = body_size(v)?;
        Ok(())
    }),
    ("keep-alive", |c, v| {
        c.globals.listener.keepalive_timeout = Some(listener::keepalive(v)?);
        Ok(())
    }),
    ("keep-alive-requests", |c, v| {
        c.globals.listener.keepalive_requests = Some(listener::keepalive_requests(v)?);
        Ok(())
    }),
    ("client-header-timeout", |c, v| {
        c.globals.listener.client_header_timeout = Some(seconds(v)?);
        Ok(())
    }),
    ("large-client-header-buffers", |c, v| {
        c.globals.listener.header_buffers = Some(listener::header_buffers(v)?);
        Ok(())
    }),
    ("use-http2", |c, v| {
        c.globals.listener.http2 = Some(boolean(v)?);
        Ok(())
    }),
    ("http2-max-concurrent-streams", |c, v| {
        c.globals.listener.http2_max_concurrent_streams = Some(listener::max_streams(v)?);
        Ok(())
    }),
    ("max-worker-connections", |c, v| {
        c.globals.listener.max_connections = Some(listener::max_connections(v)?);
        Ok(())
    }),
    ("edge-gateway.io/client-send-timeout", |c, v| {
        c.globals.listener.send_timeout = Some(seconds(v)?);
        Ok(())
    }),
    ("client-body-timeout", |c, v| {
        c.proxy.client_body_timeout = seconds(v)?;
        Ok(())
    }),
    ("proxy-next-upstream-tries", |c, v| {
        c.proxy.next_upstream_tries = tries(v)?;
        Ok(())
    }),
    ("proxy-next-upstream-timeout", |c, v| {
        c.proxy.next_upstream_timeout = match v.parse::<u64>() {
            Ok(0) => None,
            _ => Some(seconds(v)?),
        };
        Ok(())
    }),
    ("retry-non-idempotent", |c, v| {
        // `|=`: `non_idempotent` in `proxy-next-upstream` also turns it on.
        c.proxy.retry_non_idempotent |= boolean(v)?;
        Ok(())
    }),
    ("proxy-next-upstream", |c, v| {
        let (next, non_idempotent) = crate::annotations::upstream::next_upstream(v)?;
        c.proxy.next_upstream = next;
        c.proxy.retry_non_idempotent |= non_idempotent;
        Ok(())
    }),
    ("upstream-keepalive-connections", |c, v| {
        c.proxy.pool.max_idle = count(v, 100_000)?;
        Ok(())
    }),
    ("upstream-keepalive-timeout", |c, v| {
        c.proxy.pool.idle_timeout = seconds(v)?;
        Ok(())
    }),
    ("upstream-keepalive-requests", |c, v| {
        c.proxy.pool.max_requests = u32::try_from(count(v, u32::MAX as usize)?).unwrap_or(u32::MAX);
        Ok(())
    }),
    ("upstream-keepalive-time", |c, v| {
        c.proxy.pool.max_lifetime = nginx_duration(v)?;
        Ok(())
    }),
    ("ssl-redirect", |c, v| {
        c.policy.ssl_redirect = boolean(v)?;
        Ok(())
    }),
    ("force-ssl-redirect", |c, v| {
        c.policy.force_ssl_redirect = boolean(v)?;
        Ok(())
    }),
    ("custom-http-errors", |c, v| {
        c.policy.custom_errors = CustomErrors::parse(v)?.map(Arc::new);
        Ok(())
    }),
    ("http-redirect-code", |c, v| {
        let code = v
            .parse::<u16>()
            .map_err(|_| "must be a status code".to_owned())?;
        if ![301, 302, 307, 308].contains(&code) {
            return Err("must be 301, 302, 307 or 308".to_owned());
        }
        c.globals.redirect_code = StatusCode::from_u16(code).map_err(|e| e.to_string())?;
        Ok(())
    }),
    ("block-cidrs", |c, v| {
        c.globals.block = cidrs(v)?;
        Ok(())
    }),
    ("whitelist-source-range", |c, v| {
        c.admission.allowlist = Some(Ok(cidrs(v)?));
        Ok(())
    }),
    ("denylist-source-range", |c, v| {
        c.admission.denylist = Some(Ok(cidrs(v)?));
        Ok(())
    }),
    ("limit-req-status-code", |c, v| {
        c.admission.limit_req_status = error_status(v)?;
        Ok(())
    }),
    ("limit-conn-status-code", |c, v| {
        c.admission.limit_conn_status = error_status(v)?;
        Ok(())
    }),
    ("use-forwarded-headers", |c, v| {
        c.globals.forwarded.use_forwarded_headers = boolean(v)?;
        Ok(())
    }),
    ("enable-real-ip", |c, v| {
        c.globals.forwarded.enable_real_ip = boolean(v)?;
        Ok(())
    }),
    ("compute-full-forwarded-for", |c, v| {
        c.globals.forwarded.compute_full_forwarded_for = boolean(v)?;
        Ok(())
    }),
    ("forwarded-for-header", |c, v| {
        c.globals.forwarded.forwarded_for_header = header_name(v)?;
        Ok(())
    }),
    ("proxy-real-ip-cidr", |c, v| {
        c.globals.forwarded.trusted = cidrs(v)?;
        Ok(())
    }),
    ("generate-request-id", |c, v| {
        c.globals.headers.generate_request_id = boolean(v)?;
        Ok(())
    }),
    ("proxy-add-original-uri-header", |c, v| {
        c.globals.headers.original_uri = boolean(v)?;
        Ok(())
    }),
    ("enable-underscores-in-headers", |c, v| {
        c.globals.headers.underscores = boolean(v)?;
        Ok(())
    }),
    ("allow-backend-server-header", |c, v| {
        c.globals.headers.backend_server_header = boolean(v)?;
        Ok(())
    }),
    ("hide-headers", |c, v| {
        c.globals.headers.hide = v
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(header_name)
            .collect::<Result<_, _>>()?;
        Ok(())
    }),
    ("block-user-agents", |c, v| {
        c.globals.block_user_agents = Blocklist::parse(v)?;
        Ok(())
    }),
    ("block-referers", |c, v| {
        c.globals.block_referers = Blocklist::parse(v)?;
        Ok(())
    }),
    ("proxy-set-headers", |c, v| {
        c.header_maps.proxy_set = Some(header_maps::reference(v, "")?);
        Ok(())
    }),
    ("add-headers", |c, v| {
        c.header_maps.add = Some(header_maps::reference(v, "")?);
        Ok(())
    }),
];

/// The HSTS keys, read together into one header value.
const HSTS_KEYS: [&str; 4] = [
    "hsts",
    "hsts-max-age",
    "hsts-include-subdomains",
    "hsts-preload",
];

/// Every key applied, with its parser.
fn parsers() -> impl Iterator<Item = &'static (&'static str, Apply)> {
    PARSERS
        .iter()
        .chain(streams::PARSERS)
        .chain(response::PARSERS)
}

/// Reads a ConfigMap's `data` over the built-in defaults.
pub fn read(data: &BTreeMap<String, String>) -> Read {
    let mut read = Read::default();
    for (key, value) in data {
        let value = value.trim();
        if let Some((_, apply)) = parsers().find(|(k, _)| k == key) {
            if let Err(message) = apply(&mut read.config, value) {
                read.errors.push(KeyError {
                    key: key.clone(),
                    value: value.to_owned(),
                    message,
                });
            }
            continue;
        }
        if registry::edge_keys().any(|k| k.name == key)
            || protective::KEYS.contains(&key.as_str())
            || tenancy::KEYS.contains(&key.as_str())
            || compression::KEYS.contains(&key.as_str())
            || response::KEYS.contains(&key.as_str())
        {
            continue;
        }
        match registry::known(key).map(|k| k.support) {
            None => read.unknown.push(key.clone()),
            Some(Support::NotYet(_) | Support::Refused(_)) => read.not_applied.push(key.clone()),
            Some(
                Support::Supported
                | Support::Differs(_)
                | Support::Ignored(_)
                | Support::FailsClosed(_),
            ) => {}
        }
    }
    hsts(data, &mut read);
    access_log::read(data, &mut read.config.globals.access_log, &mut read.errors);
    read.config.admission.global_rate_limit = global_limit::read(data, &mut read.errors);
    read.config.tenancy = tenancy::read(data, &mut read.errors);
    protective::read(data, &mut read.config.admission, &mut read.errors);
    protective::deny_for_errors(&read.errors, &mut read.config.admission);
    compression::read(data, &mut read);
    response::read(data, &mut read);
    telemetry::read(data, &mut read.config, &mut read.errors);
    read
}

/// The options a compile uses: `options` with the controller ConfigMap's
/// settings (when one is named and present) in place of the built-in
/// defaults, the admission defaults, and the ConfigMap's diagnostics.
pub(crate) fn layered<'o>(
    options: &'o CompileOptions,
    snapshot: &Snapshot,
) -> (Cow<'o, CompileOptions>, AdmissionDefaults, Vec<Diagnostic>) {
    let Some(id) = &options.configmap else {
        return (
            Cow::Borrowed(options),
            AdmissionDefaults::default(),
            Vec::new(),
        );
    };
    let Some(config_map) = snapshot.config_map(id) else {
        return (
            Cow::Borrowed(options),
            AdmissionDefaults::default(),
            Vec::new(),
        );
    };
    let empty = BTreeMap::new();
    let data = config_map.data.as_ref().unwrap_or(&empty);
    let read = read(data);
    let (traffic, traffic_errors) = traffic::traffic_defaults(data);
    let object = ObjectKey {
        kind: Kind::ConfigMap,
        id: id.clone(),
    };
    let mut diagnostics: Vec<Diagnostic> = read
        .errors
        .iter()
        .map(|e| Diagnostic {
            object: object.clone(),
            reason: Reason::InvalidConfigKey,
            message: format!("{}: {:?} {}; {}", e.key, e.value, e.message, e.outcome()),
        })
        .chain(traffic_errors.into_iter().map(|message| Diagnostic {
            object: object.clone(),
            reason: Reason::InvalidConfigKey,
            message,
        }))
        .collect();
    if let Some(waf) = &read.config.admission.waf {
        let (reason, outcome) = if read.config.admission.serve_without_waf {
            (
                Reason::WafNotApplied,
                "Ingress routes are served without a WAF, as edge-gateway.io/serve-without-waf says",
            )
        } else {
            (
                Reason::LocationDenied,
                "every Ingress route answers 503 but those of Ingresses with enable-modsecurity: \"false\"",
            )
        };
        diagnostics.push(Diagnostic {
            object: object.clone(),
            reason,
            message: format!("{}: {:?} {}; {outcome}", waf.key, waf.value, waf.message),
        });
    }
    if !read.not_applied.is_empty() {
        diagnostics.push(Diagnostic {
            object: object.clone(),
            reason: Reason::UnsupportedConfigKey,
            message: format!(
                "not applied by edge-gateway: {}",
                read.not_applied.join(", ")
            ),
        });
    }
    if !read.unknown.is_empty() {
        diagnostics.push(Diagnostic {
            object: object.clone(),
            reason: Reason::UnsupportedConfigKey,
            message: format!(
                "not ingress-nginx ConfigMap keys: {}",
                read.unknown.join(", ")
            ),
        });
    }
    let mut globals = read.config.globals;
    let mut named_headers = |key: &str, map: &NsName| {
        let mut map = map.clone();
        if map.namespace.is_empty() {
            map.namespace.clone_from(&id.namespace);
        }
        header_maps::headers(snapshot, &object, key, &map, &mut diagnostics)
    };
    if let Some(map) = &read.config.header_maps.proxy_set {
        globals.headers.to_upstream = named_headers("proxy-set-headers", map);
    }
    if let Some(map) = &read.config.header_maps.add {
        globals.headers.to_client = named_headers("add-headers", map);
    }
    let mut layered = CompileOptions {
        proxy: read.config.proxy,
        policy: read.config.policy,
        globals,
        allowed_response_headers: read.config.allowed_response_headers,
        ..options.clone()
    };
    traffic.apply(&mut layered);
    read.config.tenancy.apply(&mut layered);
    (Cow::Owned(layered), read.config.admission, diagnostics)
}

/// `hsts` (true), `hsts-max-age` (31536000), `hsts-include-subdomains`
/// (true), `hsts-preload` (false) as one `Strict-Transport-Security` value.
fn hsts(data: &BTreeMap<String, String>, read: &mut Read) {
    if !HSTS_KEYS.iter().any(|k| data.contains_key(*k)) {
        return;
    }
    let mut flag = |key: &str, default: bool| match data.get(key).map(|v| v.trim()) {
        None => default,
        Some(value) => boolean(value).unwrap_or_else(|message| {
            read.errors.push(KeyError {
                key: key.to_owned(),
                value: value.to_owned(),
                message,
            });
            default
        }),
    };
    let on = flag("hsts", true);
    let subdomains = flag("hsts-include-subdomains", true);
    let preload = flag("hsts-preload", false);
    let max_age = match data.get("hsts-max-age").map(|v| v.trim()) {
        None => 31_536_000,
        Some(value) => value.parse::<u64>().unwrap_or_else(|_| {
            read.errors.push(KeyError {
                key: "hsts-max-age".to_owned(),
                value: value.to_owned(),
                message: "must be a whole number of seconds".to_owned(),
            });
            31_536_000
        }),
    };
    read.config.globals.hsts = on.then(|| {
        let mut value = format!("max-age={max_age}");
        if subdomains {
            value.push_str("; includeSubDomains");
        }
        if preload {
            value.push_str("; preload");
        }
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| HeaderValue::from_static("max-age=31536000"))
    });
}

fn count(value: &str, max: usize) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n <= max => Ok(n),
        Ok(_) => Err(format!("must be at most {max}")),
        Err(_) => Err("must be a whole number".to_owned()),
    }
}

/// A header name, as `forwarded-for-header` and `hide-headers` give them.
fn header_name(value: &str) -> Result<HeaderName, String> {
    if value == "proxy_protocol" {
        return Err(
            "is not a header: nginx's proxy_protocol variable; use-proxy-protocol: \"true\" takes the client address from the PROXY header".to_owned(),
        );
    }
    HeaderName::from_bytes(value.as_bytes()).map_err(|_| format!("{value:?} is not a header name"))
}

fn cidrs(value: &str) -> Result<Vec<Cidr>, String> {
    parse_cidrs(value).map_err(|e| e.to_string())
}

/// A status between 400 and 599, for limit refusals.
pub(crate) fn error_status(value: &str) -> Result<StatusCode, String> {
    value
        .parse::<u16>()
        .ok()
        .filter(|c| (400..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| "must be a status between 400 and 599".to_owned())
}

/// nginx's time syntax for one unit: `1h`, `30m`, `45s`, or seconds.
fn nginx_duration(value: &str) -> Result<Duration, String> {
    let (digits, unit) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&value[..i], c),
        _ => (value, 's'),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "must be a duration such as 1h, 30m or 45s".to_owned())?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err("unit must be s, m, h or d".to_owned()),
    };
    Ok(Duration::from_secs(n.saturating_mul(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_is_the_defaults() {
        assert_eq!(read(&BTreeMap::new()), Read::default());
    }

    #[test]
    fn keys_apply_and_bad_values_keep_defaults() {
        let r = read(&data(&[
            ("proxy-read-timeout", "300"),
            ("proxy-body-size", "64m"),
            ("ssl-redirect", "false"),
            ("http-redirect-code", "301"),
            ("upstream-keepalive-time", "2h"),
            ("proxy-connect-timeout", "soon"),
            ("block-cidrs", "192.0.2.0/24"),
            ("limit-req-status-code", "429"),
            ("worker-processes", "4"),
            ("use-geoip2", "true"),
            ("server-snippet", "return 200;"),
            ("no-such-key", "1"),
        ]));
        let c = &r.config;
        assert_eq!(c.proxy.read_timeout, Duration::from_secs(300));
        assert_eq!(c.proxy.max_body_size, Some(64 << 20));
        assert_eq!(c.proxy.connect_timeout, Duration::from_secs(5));
        assert_eq!(c.proxy.pool.max_lifetime, Duration::from_secs(7200));
        assert!(!c.policy.ssl_redirect);
        assert_eq!(c.globals.redirect_code, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(c.globals.block.len(), 1);
        assert_eq!(c.admission.limit_req_status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].key, "proxy-connect-timeout");
        assert_eq!(r.not_applied, ["server-snippet", "use-geoip2"]);
        assert_eq!(r.unknown, ["no-such-key"]);
    }

    #[test]
    fn listener_keys_override_the_listener_and_bad_values_keep_it() {
        let r = read(&data(&[
            ("keep-alive", "10"),
            ("keep-alive-requests", "2"),
            ("client-header-timeout", "5"),
            ("large-client-header-buffers", "4 1k"),
            ("use-http2", "false"),
            ("http2-max-concurrent-streams", "0"),
        ]));
        let l = &r.config.globals.listener;
        assert_eq!(l.keepalive_timeout, Some(Duration::from_secs(10)));
        assert_eq!(l.keepalive_requests, Some(2));
        assert_eq!(l.client_header_timeout, Some(Duration::from_secs(5)));
        assert_eq!(l.header_buffers.map(|b| b.total()), Some(4096));
        assert_eq!(l.http2, Some(false));
        assert_eq!(l.http2_max_concurrent_streams, None);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].key, "http2-max-concurrent-streams");
        assert!(r.not_applied.is_empty());
    }

    #[test]
    fn custom_http_errors_is_the_global_default() {
        let r = read(&data(&[("custom-http-errors", "502, 503")]));
        let codes = r.config.policy.custom_errors.as_ref().unwrap();
        assert!(codes.contains(502) && codes.contains(503) && !codes.contains(504));
        let r = read(&data(&[("custom-http-errors", "oops")]));
        assert_eq!(r.config.policy.custom_errors, None);
        assert_eq!(r.errors.len(), 1);
    }

    #[test]
    fn the_registry_and_the_parsers_agree() {
        for pair in registry::KEYS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for (key, _) in parsers() {
            let known = registry::known(key).map(|k| k.support);
            assert!(
                matches!(known, Some(Support::Supported | Support::Differs(_))),
                "{key}"
            );
        }
        for k in registry::KEYS
            .iter()
            .filter(|k| k.support == Support::Supported)
        {
            let parsed = parsers().any(|(key, _)| *key == k.name);
            assert!(
                parsed
                    || HSTS_KEYS.contains(&k.name)
                    || compression::KEYS.contains(&k.name)
                    || response::KEYS.contains(&k.name)
                    || access_log::KEYS.contains(&k.name)
                    || global_limit::KEYS.contains(&k.name)
                    || telemetry::KEYS.contains(&k.name),
                "{} has no parser",
                k.name
            );
        }
        for k in registry::KEYS
            .iter()
            .filter(|k| k.name.ends_with("-snippet"))
        {
            assert!(
                matches!(k.support, Support::Refused(_) | Support::FailsClosed(_)),
                "{}",
                k.name
            );
        }
    }

    /// The fail-closed rule for ConfigMap keys: a protective key is
    /// enforced or fails closed; an unusable value of one denies routes
    /// rather than keep a default.
    #[test]
    fn no_protective_key_is_dropped() {
        use crate::annotations::registry::rule_breakers;
        assert_eq!(rule_breakers(registry::KEYS), Vec::<&str>::new());
        for k in registry::KEYS.iter().filter(|k| k.protective) {
            let handled = PARSERS.iter().any(|(key, _)| *key == k.name)
                || protective::KEYS.contains(&k.name)
                || k.name.starts_with("nginx-status-")
                || k.name == "allow-cross-namespace-resources";
            assert!(handled, "{} is protective but nothing reads it", k.name);
            if PARSERS.iter().any(|(key, _)| *key == k.name) {
                assert!(
                    protective::denies(k.name),
                    "a bad {} keeps a default",
                    k.name
                );
            }
        }
    }

    /// docs/compatibility.md shows the registry between markers.
    #[test]
    fn the_compatibility_page_shows_the_configmap_table() {
        crate::generated_docs::check_section("configmap", &registry::markdown());
    }

    #[test]
    fn hsts_keys_build_one_header() {
        let r = read(&data(&[("hsts-max-age", "600"), ("hsts-preload", "true")]));
        assert_eq!(
            r.config.globals.hsts.unwrap(),
            "max-age=600; includeSubDomains; preload"
        );
        let off = read(&data(&[("hsts", "false")]));
        assert_eq!(off.config.globals.hsts, None);
    }

    #[test]
    fn header_keys_apply() {
        let r = read(&data(&[
            ("use-forwarded-headers", "true"),
            ("enable-real-ip", "true"),
            ("compute-full-forwarded-for", "true"),
            ("forwarded-for-header", "CF-Connecting-IP"),
            ("proxy-real-ip-cidr", "10.0.0.0/8, 192.168.0.0/16"),
            ("generate-request-id", "false"),
            ("proxy-add-original-uri-header", "true"),
            ("enable-underscores-in-headers", "true"),
            ("allow-backend-server-header", "true"),
            ("hide-headers", "X-Powered-By, x-internal"),
            ("block-user-agents", "~*bot,curl/8.0"),
            ("block-referers", "~^https://spam"),
            ("proxy-set-headers", "ingress-nginx/upstream-headers"),
            ("add-headers", "response-headers"),
        ]));
        assert_eq!(r.errors, []);
        assert_eq!(r.not_applied, Vec::<String>::new());
        let g = &r.config.globals;
        assert!(g.forwarded.use_forwarded_headers);
        assert!(g.forwarded.enable_real_ip);
        assert!(g.forwarded.compute_full_forwarded_for);
        assert_eq!(g.forwarded.forwarded_for_header, "cf-connecting-ip");
        assert_eq!(g.forwarded.trusted.len(), 2);
        assert!(!g.headers.generate_request_id);
        assert!(g.headers.original_uri);
        assert!(g.headers.underscores);
        assert!(g.headers.backend_server_header);
        assert_eq!(g.headers.hide, ["x-powered-by", "x-internal"]);
        assert!(g.block_user_agents.as_ref().unwrap().matches(b"GoodBot"));
        assert!(
            g.block_referers
                .as_ref()
                .unwrap()
                .matches(b"https://spam.x/")
        );
        let maps = &r.config.header_maps;
        assert_eq!(
            maps.proxy_set,
            Some(NsName::new("ingress-nginx", "upstream-headers"))
        );
        assert_eq!(maps.add, Some(NsName::new("", "response-headers")));
    }

    #[test]
    fn bad_header_keys_keep_defaults() {
        let r = read(&data(&[
            ("use-forwarded-headers", "yes please"),
            ("forwarded-for-header", "X Bad"),
            ("proxy-real-ip-cidr", "10.0.0.0/33"),
            ("hide-headers", "ok, not ok"),
            ("block-user-agents", "~(unclosed"),
            ("proxy-set-headers", "a/b/c"),
        ]));
        assert_eq!(r.errors.len(), 6, "{:?}", r.errors);
        let denied = &r.config.admission;
        assert!(
            denied
                .client_address
                .as_ref()
                .unwrap()
                .key
                .contains("forwarded-for-header")
        );
        assert!(
            denied
                .everywhere
                .as_ref()
                .unwrap()
                .key
                .contains("block-user-agents")
        );
        let kept = GlobalConfig {
            admission: AdmissionDefaults::default(),
            ..r.config
        };
        assert_eq!(kept, GlobalConfig::default());
        let proxy_protocol = read(&data(&[("forwarded-for-header", "proxy_protocol")]));
        assert_eq!(proxy_protocol.errors.len(), 1);
    }

    /// `proxy-set-headers` / `add-headers` read the named ConfigMaps from
    /// the snapshot; bad entries are skipped with a diagnostic.
    #[test]
    fn named_header_maps_are_read_from_the_snapshot() {
        let cm = |ns: &str, name: &str, data: serde_json::Value| {
            let value = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"namespace": ns, "name": name}, "data": data});
            crate::objects::Object::from_value(value).unwrap().unwrap()
        };
        let mut snapshot = Snapshot::default();
        snapshot.apply(cm(
            "ingress-nginx",
            "controller",
            serde_json::json!({"proxy-set-headers": "up", "add-headers": "other/missing"}),
        ));
        snapshot.apply(cm(
            "ingress-nginx",
            "up",
            serde_json::json!({"X-Team": "models", "X-Client": "$remote_addr", "Bad Name": "1"}),
        ));
        let options = CompileOptions {
            configmap: Some(NsName::new("ingress-nginx", "controller")),
            ..CompileOptions::default()
        };
        let (layered, _, diagnostics) = layered(&options, &snapshot);
        let headers = &layered.globals.headers;
        assert_eq!(headers.to_upstream.len(), 1);
        assert_eq!(headers.to_upstream[0].0, "x-team");
        assert_eq!(headers.to_client, []);
        let messages: Vec<String> = diagnostics
            .iter()
            .map(|d| format!("{}: {}", d.object.id, d.message))
            .collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages
                .iter()
                .any(|m| m.contains("ConfigMap other/missing not found"))
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("ingress-nginx/up: proxy-set-headers header \"X-Client\""))
        );
        assert!(messages.iter().any(|m| m.contains("\"Bad Name\"")));
    }

    #[test]
    fn bad_codes_and_lists_are_refused() {
        let r = read(&data(&[
            ("http-redirect-code", "200"),
            ("block-cidrs", "nonsense"),
            ("whitelist-source-range", "10.0.0.0/8,"),
            ("limit-conn-status-code", "200"),
        ]));
        assert_eq!(r.errors.len(), 4);
        let admission = &r.config.admission;
        assert!(matches!(admission.allowlist, Some(Err(_))));
        assert!(admission.everywhere.is_some());
        let kept = GlobalConfig {
            admission: AdmissionDefaults::default(),
            ..r.config
        };
        assert_eq!(kept, GlobalConfig::default());
    }
}
