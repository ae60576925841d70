//! Model-serving traffic settings: balancing, the per-endpoint cap and its
//! queue, scale-from-zero holding, and generation timeouts.
//!
//! Per Ingress, under [`EDGE_PREFIX`] (ingress-nginx ignores these keys):
//! `load-balance`, `max-inflight-per-endpoint`, `max-queue`,
//! `queue-timeout`, `queue-overflow-status`, `hold-when-no-endpoints`,
//! `max-pending`, `proxy-first-byte-timeout`, `stream-idle-timeout`,
//! `request-deadline`, `model-from-body`, `model-body-peek`.
//! ingress-nginx's own
//! `nginx.ingress.kubernetes.io/load-balance` is read too, with the new
//! algorithm names accepted; the `edge-gateway.io/` key wins when both are
//! set. The same keys without prefix (but the two `model-` keys, which are
//! per Ingress only) are ConfigMap defaults ([`traffic_defaults`]).
//!
//! Values: an algorithm name; a whole number (`0` on
//! `max-inflight-per-endpoint` means no cap); a duration such as `90`
//! (seconds), `500ms`, `30s`, `2m`, `1h` or `1m30s` (`0` turns a timeout or
//! holding off, and makes `queue-timeout` refuse at once); `429` or `503`.
//!
//! Balancing settings belong to a backend (one Service port, as an
//! ingress-nginx upstream), so the oldest Ingress routing to a backend
//! decides them; timeouts belong to the Ingress's routes.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway::balance::{Affinity, Algorithm, BackendPolicy, RouteSignals};
use gateway::settings::{ModelFromBody, ProxySettings};
use http::StatusCode;
use http::header::HeaderName;

use super::{AnnotationError, PREFIX, inference};
use crate::options::CompileOptions;

/// The prefix of edge-gateway's own annotations.
pub const EDGE_PREFIX: &str = "edge-gateway.io/";

/// How one key changes a value of type `T`.
pub(crate) type Apply<T> = fn(&mut T, &str) -> Result<(), String>;

/// Every backend setting: these and the inference-aware ones, in the
/// order they apply.
fn policy_keys() -> impl Iterator<Item = &'static (&'static str, Apply<BackendPolicy>)> {
    POLICY_KEYS.iter().chain(inference::POLICY_KEYS.iter())
}

/// The backend settings and their parsers.
const POLICY_KEYS: [(&str, Apply<BackendPolicy>); 7] = [
    ("load-balance", |p, v| {
        p.algorithm = algorithm(v)?;
        Ok(())
    }),
    ("max-inflight-per-endpoint", |p, v| {
        p.max_inflight_per_endpoint = Some(count(v)?).filter(|n| *n > 0);
        Ok(())
    }),
    ("max-queue", |p, v| {
        p.max_queue = count(v)?;
        Ok(())
    }),
    ("queue-timeout", |p, v| {
        p.queue_timeout = duration(v)?;
        Ok(())
    }),
    ("queue-overflow-status", |p, v| {
        p.overflow_status = match v {
            "429" => StatusCode::TOO_MANY_REQUESTS,
            "503" => StatusCode::SERVICE_UNAVAILABLE,
            _ => return Err("must be 429 or 503".to_owned()),
        };
        Ok(())
    }),
    ("hold-when-no-endpoints", |p, v| {
        p.hold = Some(duration(v)?).filter(|d| !d.is_zero());
        Ok(())
    }),
    ("max-pending", |p, v| {
        p.max_pending = count(v)?;
        Ok(())
    }),
];

/// The route timeouts and their parsers.
const TIMEOUT_KEYS: [(&str, Apply<ProxySettings>); 3] = [
    ("proxy-first-byte-timeout", |s, v| {
        s.first_byte_timeout = Some(duration(v)?).filter(|d| !d.is_zero());
        Ok(())
    }),
    ("stream-idle-timeout", |s, v| {
        s.stream_idle_timeout = Some(duration(v)?).filter(|d| !d.is_zero());
        Ok(())
    }),
    ("request-deadline", |s, v| {
        s.request_deadline = Some(duration(v)?).filter(|d| !d.is_zero());
        Ok(())
    }),
];

/// The backend settings an Ingress asks for, kept as valid values so that
/// they apply over whatever defaults the compile has.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// (key, value) pairs that parsed, in [`POLICY_KEYS`] order.
    values: Vec<(&'static str, String)>,
    /// `affinity: cookie` or `upstream-hash-by` (see [`super::affinity`]).
    affinity: Option<Affinity>,
}

impl Traffic {
    /// Whether the Ingress sets no backend setting.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.affinity.is_none()
    }

    /// The backend's stickiness this Ingress asks for, if any.
    pub fn affinity(&self) -> Option<&Affinity> {
        self.affinity.as_ref()
    }

    /// Whether the stickiness is all this Ingress asks of its backends.
    pub fn only_affinity(&self) -> bool {
        self.values.is_empty()
    }

    /// Sets the backend's stickiness.
    pub(crate) fn set_affinity(&mut self, affinity: Option<Affinity>) {
        self.affinity = affinity;
    }

    /// `defaults` with this Ingress's settings applied.
    pub fn apply(&self, defaults: &BackendPolicy) -> BackendPolicy {
        let mut policy = defaults.clone();
        if let Some(affinity) = &self.affinity {
            policy.affinity = affinity.clone();
        }
        for (key, value) in &self.values {
            if let Some((_, apply)) = policy_keys().find(|(k, _)| k == key) {
                // Validated when parsed; a failure cannot happen here.
                let _ = apply(&mut policy, value);
            }
        }
        policy
    }
}

/// Reads an Ingress's traffic annotations: the timeouts go into `proxy`,
/// the backend settings are returned; bad values go to `errors` (the
/// default applies) and unknown `edge-gateway.io/` keys to `unknown`.
pub(crate) fn parse(
    annotations: &BTreeMap<String, String>,
    proxy: &mut ProxySettings,
    errors: &mut Vec<AnnotationError>,
    unknown: &mut Vec<String>,
) -> Traffic {
    let ours: BTreeMap<&str, &str> = annotations
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(EDGE_PREFIX)?, v.trim())))
        .collect();
    let known = |name: &str| {
        policy_keys().any(|(k, _)| *k == name)
            || TIMEOUT_KEYS.iter().any(|(k, _)| *k == name)
            || inference::ROUTE_KEYS.iter().any(|(k, _)| *k == name)
            || MODEL_KEYS.contains(&name)
    };
    unknown.extend(
        ours.keys()
            .filter(|name| !known(name))
            .map(|name| format!("{EDGE_PREFIX}{name}")),
    );
    let nginx_balance = annotations
        .get(&format!("{PREFIX}load-balance"))
        .map(|v| v.trim())
        .filter(|_| !ours.contains_key("load-balance"));
    let mut traffic = Traffic::default();
    let mut scratch = BackendPolicy::default();
    for (name, apply) in policy_keys() {
        let (prefix, value) = match (ours.get(name), nginx_balance) {
            (Some(value), _) => (EDGE_PREFIX, *value),
            (None, Some(value)) if *name == "load-balance" => (PREFIX, value),
            _ => continue,
        };
        match apply(&mut scratch, value) {
            Ok(()) => traffic.values.push((name, value.to_owned())),
            Err(message) => errors.push(error(prefix, name, value, message)),
        }
    }
    for (name, apply) in &TIMEOUT_KEYS {
        if let Some(value) = ours.get(name)
            && let Err(message) = apply(proxy, value)
        {
            errors.push(error(EDGE_PREFIX, name, value, message));
        }
    }
    for (name, apply) in &inference::ROUTE_KEYS {
        if let Some(value) = ours.get(name)
            && let Err(message) = apply(&mut proxy.signals, value)
        {
            errors.push(error(EDGE_PREFIX, name, value, message));
        }
    }
    let reads_body = proxy.signals.body_peek.is_some() || inference::reads_body(&ours);
    let (model_from_body, peek) = body_keys(&ours, reads_body, errors);
    proxy.model_from_body = model_from_body;
    proxy.signals.body_peek = peek.filter(|_| reads_body);
    traffic
}

/// The keys of body-based model routing.
const MODEL_KEYS: [&str; 2] = ["model-from-body", "model-body-peek"];

/// Headers the model cannot go into: the message's framing, routing and
/// hop-by-hop headers.
const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

/// `model-from-body` (a header name) and `model-body-peek` (a size, 16Ki by
/// default, at most 1Mi), and the size the picker's body read uses
/// (`reads_body`: prefix or LoRA affinity is on); a bad value turns the
/// feature off with a diagnostic.
fn body_keys(
    ours: &BTreeMap<&str, &str>,
    reads_body: bool,
    errors: &mut Vec<AnnotationError>,
) -> (Option<ModelFromBody>, Option<usize>) {
    let peek = match ours.get("model-body-peek") {
        None => Some(ModelFromBody::DEFAULT_PEEK),
        Some(value) => match peek_size(value) {
            Ok(size) => Some(size),
            Err(message) => {
                errors.push(error(EDGE_PREFIX, "model-body-peek", value, message));
                None
            }
        },
    };
    let Some(value) = ours.get("model-from-body") else {
        if let Some(value) = ours.get("model-body-peek")
            && !reads_body
        {
            let message =
                "needs edge-gateway.io/model-from-body, prefix-affinity or endpoint-metrics"
                    .to_owned();
            errors.push(error(EDGE_PREFIX, "model-body-peek", value, message));
        }
        return (None, peek);
    };
    let header = match header_name(value) {
        Ok(header) => header,
        Err(message) => {
            errors.push(error(EDGE_PREFIX, "model-from-body", value, message));
            return (None, peek);
        }
    };
    let model = peek.map(|peek| ModelFromBody { header, peek });
    (model, peek)
}

/// A header name a setting may put or read a value in: not a framing,
/// routing or hop-by-hop header.
pub(crate) fn header_name(value: &str) -> Result<HeaderName, String> {
    let header = HeaderName::from_bytes(value.as_bytes())
        .map_err(|_| "must be a header name such as X-Model".to_owned())?;
    if RESERVED_HEADERS.contains(&header.as_str()) {
        return Err("must not be a framing, routing or hop-by-hop header".to_owned());
    }
    Ok(header)
}

/// A size in bytes: a whole number with an optional unit `k`/`Ki`/`KiB`
/// or `m`/`Mi`/`MiB` (powers of 1024, any case), from 1 byte to 1 MiB.
fn peek_size(value: &str) -> Result<usize, String> {
    const SYNTAX: &str = "must be a size such as 16Ki, 64k or 1Mi, at most 1Mi";
    let digits = value.bytes().take_while(u8::is_ascii_digit).count();
    let number: usize = value[..digits].parse().map_err(|_| SYNTAX.to_owned())?;
    let multiplier = match value[digits..].to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        _ => return Err(SYNTAX.to_owned()),
    };
    match number.checked_mul(multiplier) {
        Some(size) if (1..=ModelFromBody::MAX_PEEK).contains(&size) => Ok(size),
        _ => Err(SYNTAX.to_owned()),
    }
}

fn error(prefix: &str, name: &str, value: &str, message: String) -> AnnotationError {
    AnnotationError {
        key: format!("{prefix}{name}"),
        value: value.to_owned(),
        message,
    }
}

/// The traffic settings of the ingress-nginx ConfigMap: defaults for every
/// backend and route.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrafficDefaults {
    /// `load-balance` (round_robin), the cap, queue and hold settings.
    pub policy: BackendPolicy,
    /// `proxy-first-byte-timeout` (none).
    pub first_byte_timeout: Option<Duration>,
    /// `stream-idle-timeout` (none).
    pub stream_idle_timeout: Option<Duration>,
    /// `request-deadline` (none).
    pub request_deadline: Option<Duration>,
    /// `criticality`, `criticality-header`, and whether bodies are read
    /// for the picker (`prefix-affinity` or `endpoint-metrics` on).
    pub signals: RouteSignals,
}

impl TrafficDefaults {
    /// Makes these the defaults of a compile.
    pub fn apply(&self, options: &mut CompileOptions) {
        options.traffic = self.policy.clone();
        options.proxy.first_byte_timeout = self.first_byte_timeout;
        options.proxy.stream_idle_timeout = self.stream_idle_timeout;
        options.proxy.request_deadline = self.request_deadline;
        options.proxy.signals = self.signals.clone();
    }
}

/// Reads the traffic keys of the ingress-nginx ConfigMap (`load-balance`,
/// `max-inflight-per-endpoint`, `max-queue`, `queue-timeout`,
/// `queue-overflow-status`, `hold-when-no-endpoints`, `max-pending`,
/// `proxy-first-byte-timeout`, `stream-idle-timeout`, `request-deadline`).
/// A bad value keeps its default and yields an error naming the key.
pub fn traffic_defaults(map: &BTreeMap<String, String>) -> (TrafficDefaults, Vec<String>) {
    let mut errors = Vec::new();
    let mut policy = BackendPolicy::default();
    let mut timeouts = ProxySettings::default();
    let mut signals = RouteSignals::default();
    read_config(map, policy_keys(), &mut policy, &mut errors);
    read_config(map, &TIMEOUT_KEYS, &mut timeouts, &mut errors);
    read_config(map, &inference::ROUTE_KEYS, &mut signals, &mut errors);
    if policy.prefix_affinity.is_some() || policy.endpoint_metrics.is_some() {
        signals.body_peek = Some(ModelFromBody::DEFAULT_PEEK);
    }
    let defaults = TrafficDefaults {
        policy,
        first_byte_timeout: timeouts.first_byte_timeout,
        stream_idle_timeout: timeouts.stream_idle_timeout,
        request_deadline: timeouts.request_deadline,
        signals,
    };
    (defaults, errors)
}

/// The ConfigMap keys [`traffic_defaults`] reads.
pub fn config_keys() -> impl Iterator<Item = &'static str> {
    policy_keys()
        .map(|(name, _)| *name)
        .chain(TIMEOUT_KEYS.iter().map(|(name, _)| *name))
        .chain(inference::ROUTE_KEYS.iter().map(|(name, _)| *name))
}

/// The `edge-gateway.io/` annotation keys [`parse`] reads.
pub fn annotation_keys() -> impl Iterator<Item = &'static str> {
    config_keys().chain(MODEL_KEYS)
}

/// Applies the ConfigMap keys of `keys` to `target`.
fn read_config<'k, T: 'k>(
    map: &BTreeMap<String, String>,
    keys: impl IntoIterator<Item = &'k (&'k str, Apply<T>)>,
    target: &mut T,
    errors: &mut Vec<String>,
) {
    for (name, apply) in keys {
        if let Some(value) = map.get(*name).map(|v| v.trim())
            && let Err(message) = apply(target, value)
        {
            errors.push(format!("{name}: {value:?} {message}; the default is used"));
        }
    }
}

fn algorithm(value: &str) -> Result<Algorithm, String> {
    Algorithm::parse(value).ok_or_else(|| {
        let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.as_str()).collect();
        format!("must be one of {}", names.join(", "))
    })
}

pub(crate) fn count(value: &str) -> Result<usize, String> {
    value
        .parse::<usize>()
        .map_err(|_| "must be a whole number".to_owned())
}

/// The longest duration accepted: a day, as for the nginx timeouts.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// `90` (seconds), or numbers with units `ms`, `s`, `m`, `h` in sequence
/// (`1m30s`), at most a day.
pub(crate) fn duration(value: &str) -> Result<Duration, String> {
    const SYNTAX: &str = "must be a duration such as 90, 500ms, 30s, 2m or 1h";
    if value.is_empty() {
        return Err(SYNTAX.to_owned());
    }
    if let Ok(seconds) = value.parse::<u64>() {
        return bounded(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let number: u64 = rest[..digits].parse().map_err(|_| SYNTAX.to_owned())?;
        rest = &rest[digits..];
        let unit = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let millis = match &rest[..unit] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(SYNTAX.to_owned()),
        };
        rest = &rest[unit..];
        let part = number
            .checked_mul(millis)
            .map(Duration::from_millis)
            .ok_or_else(|| SYNTAX.to_owned())?;
        total = total.saturating_add(part);
    }
    bounded(total)
}

fn bounded(duration: Duration) -> Result<Duration, String> {
    if duration > MAX_DURATION {
        return Err("must be at most 24h".to_owned());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_pairs(pairs: &[(&str, &str)]) -> (Traffic, ProxySettings, Vec<String>, Vec<String>) {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let (mut proxy, mut errors, mut unknown) =
            (ProxySettings::default(), Vec::new(), Vec::new());
        let traffic = parse(&map, &mut proxy, &mut errors, &mut unknown);
        let errors = errors.into_iter().map(|e| e.key).collect();
        (traffic, proxy, errors, unknown)
    }

    #[test]
    fn durations() {
        assert_eq!(duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        for bad in [
            "",
            "1.5s",
            "-1",
            "10d",
            "s",
            "25h",
            "1 s",
            "99999999999999999999h",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_setting_parses() {
        let (traffic, proxy, errors, unknown) = parse_pairs(&[
            ("edge-gateway.io/load-balance", "peak_ewma"),
            ("edge-gateway.io/max-inflight-per-endpoint", "4"),
            ("edge-gateway.io/max-queue", "50"),
            ("edge-gateway.io/queue-timeout", "10s"),
            ("edge-gateway.io/queue-overflow-status", "429"),
            ("edge-gateway.io/hold-when-no-endpoints", "60s"),
            ("edge-gateway.io/max-pending", "2000"),
            ("edge-gateway.io/proxy-first-byte-timeout", "120"),
            ("edge-gateway.io/stream-idle-timeout", "5s"),
            ("edge-gateway.io/request-deadline", "10m"),
        ]);
        assert!(
            errors.is_empty() && unknown.is_empty(),
            "{errors:?} {unknown:?}"
        );
        let policy = traffic.apply(&BackendPolicy::default());
        assert_eq!(
            policy,
            BackendPolicy {
                algorithm: Algorithm::PeakEwma,
                max_inflight_per_endpoint: Some(4),
                max_queue: 50,
                queue_timeout: Duration::from_secs(10),
                overflow_status: StatusCode::TOO_MANY_REQUESTS,
                hold: Some(Duration::from_secs(60)),
                max_pending: 2000,
                ..BackendPolicy::default()
            }
        );
        assert_eq!(proxy.first_byte_timeout, Some(Duration::from_secs(120)));
        assert_eq!(proxy.stream_idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(proxy.request_deadline, Some(Duration::from_secs(600)));
    }

    #[test]
    fn ingress_nginx_load_balance_is_read_and_ours_wins() {
        let (traffic, ..) = parse_pairs(&[("nginx.ingress.kubernetes.io/load-balance", "ewma")]);
        assert_eq!(
            traffic.apply(&BackendPolicy::default()).algorithm,
            Algorithm::Ewma
        );
        let (traffic, ..) = parse_pairs(&[
            ("nginx.ingress.kubernetes.io/load-balance", "ewma"),
            ("edge-gateway.io/load-balance", "least_request"),
        ]);
        assert_eq!(
            traffic.apply(&BackendPolicy::default()).algorithm,
            Algorithm::LeastRequest
        );
        let (traffic, _, errors, _) =
            parse_pairs(&[("nginx.ingress.kubernetes.io/load-balance", "p2c")]);
        assert!(errors.is_empty());
        assert_eq!(
            traffic.apply(&BackendPolicy::default()).algorithm,
            Algorithm::P2c
        );
    }

    #[test]
    fn bad_values_keep_defaults_and_unknown_keys_are_named() {
        let (traffic, proxy, errors, unknown) = parse_pairs(&[
            ("nginx.ingress.kubernetes.io/load-balance", "chash"),
            ("edge-gateway.io/max-queue", "-1"),
            ("edge-gateway.io/queue-overflow-status", "500"),
            ("edge-gateway.io/stream-idle-timeout", "soon"),
            ("edge-gateway.io/max-inflight", "4"),
        ]);
        assert!(traffic.is_empty());
        assert_eq!(proxy, ProxySettings::default());
        assert_eq!(
            errors,
            [
                "nginx.ingress.kubernetes.io/load-balance",
                "edge-gateway.io/max-queue",
                "edge-gateway.io/queue-overflow-status",
                "edge-gateway.io/stream-idle-timeout",
            ]
        );
        assert_eq!(unknown, ["edge-gateway.io/max-inflight"]);
    }

    #[test]
    fn model_from_body_keys() {
        let (traffic, proxy, errors, unknown) =
            parse_pairs(&[("edge-gateway.io/model-from-body", "X-Model")]);
        assert!(errors.is_empty() && unknown.is_empty() && traffic.is_empty());
        let model = proxy.model_from_body.unwrap();
        assert_eq!(model.header, "x-model");
        assert_eq!(model.peek, 16 * 1024);
        for (value, bytes) in [
            ("1", 1),
            ("4096", 4096),
            ("64k", 65536),
            ("16Ki", 16384),
            ("32KiB", 32768),
            ("1Mi", 1 << 20),
            ("1m", 1 << 20),
        ] {
            let (_, proxy, errors, _) = parse_pairs(&[
                ("edge-gateway.io/model-from-body", "x-llm-model"),
                ("edge-gateway.io/model-body-peek", value),
            ]);
            assert!(errors.is_empty(), "{value}: {errors:?}");
            assert_eq!(proxy.model_from_body.unwrap().peek, bytes, "{value}");
        }
        for bad in ["0", "1025Ki", "2Mi", "16KB", "-1", "", "1.5k", "k"] {
            let (_, proxy, errors, _) = parse_pairs(&[
                ("edge-gateway.io/model-from-body", "X-Model"),
                ("edge-gateway.io/model-body-peek", bad),
            ]);
            assert_eq!(errors, ["edge-gateway.io/model-body-peek"], "{bad}");
            assert_eq!(proxy.model_from_body, None, "{bad}");
        }
        for bad in [
            "",
            "X Model",
            "Host",
            "content-length",
            "Transfer-Encoding",
            "x:y",
        ] {
            let (_, proxy, errors, _) = parse_pairs(&[("edge-gateway.io/model-from-body", bad)]);
            assert_eq!(errors, ["edge-gateway.io/model-from-body"], "{bad}");
            assert_eq!(proxy.model_from_body, None, "{bad}");
        }
        let (_, proxy, errors, _) = parse_pairs(&[("edge-gateway.io/model-body-peek", "8k")]);
        assert_eq!(errors, ["edge-gateway.io/model-body-peek"]);
        assert_eq!(proxy.model_from_body, None);
    }

    #[test]
    fn zero_means_off() {
        let (traffic, proxy, errors, _) = parse_pairs(&[
            ("edge-gateway.io/max-inflight-per-endpoint", "0"),
            ("edge-gateway.io/hold-when-no-endpoints", "0"),
            ("edge-gateway.io/request-deadline", "0"),
        ]);
        assert!(errors.is_empty());
        let defaults = BackendPolicy {
            max_inflight_per_endpoint: Some(8),
            hold: Some(Duration::from_secs(30)),
            ..BackendPolicy::default()
        };
        let policy = traffic.apply(&defaults);
        assert_eq!(policy.max_inflight_per_endpoint, None);
        assert_eq!(policy.hold, None);
        assert_eq!(proxy.request_deadline, None);
    }

    #[test]
    fn config_map_defaults() {
        let map = BTreeMap::from([
            ("load-balance".to_owned(), "least_request".to_owned()),
            ("hold-when-no-endpoints".to_owned(), "30s".to_owned()),
            ("stream-idle-timeout".to_owned(), "15".to_owned()),
            ("max-queue".to_owned(), "many".to_owned()),
            ("unrelated".to_owned(), "x".to_owned()),
        ]);
        let (defaults, errors) = traffic_defaults(&map);
        assert_eq!(defaults.policy.algorithm, Algorithm::LeastRequest);
        assert_eq!(defaults.policy.hold, Some(Duration::from_secs(30)));
        assert_eq!(
            defaults.policy.max_queue,
            BackendPolicy::default().max_queue
        );
        assert_eq!(defaults.stream_idle_timeout, Some(Duration::from_secs(15)));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("max-queue"), "{errors:?}");
        let mut options = CompileOptions::default();
        defaults.apply(&mut options);
        assert_eq!(options.traffic.algorithm, Algorithm::LeastRequest);
        assert_eq!(
            options.proxy.stream_idle_timeout,
            Some(Duration::from_secs(15))
        );
        let (defaults, errors) = traffic_defaults(&BTreeMap::new());
        assert_eq!(defaults, TrafficDefaults::default());
        assert!(errors.is_empty());
    }
}
