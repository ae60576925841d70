//! Inference-aware picking settings (see docs/traffic.md), under
//! [`super::traffic::EDGE_PREFIX`] and as ConfigMap defaults, like the
//! other traffic keys:
//!
//! - backend settings: `endpoint-metrics` (`off`, `vllm`, `sglang`,
//!   `trtllm`, `tgi`, `triton`) with `endpoint-metrics-names`, `-port`,
//!   `-path`, `-interval`, `-timeout` and `-max-age`; `saturation-queue`,
//!   `saturation-kv-cache`; `prefix-affinity` (`on`/`off`) with
//!   `prefix-affinity-slack`. The `endpoint-metrics-*` and
//!   `prefix-affinity-slack` keys refine the feature wherever it is on
//!   (this Ingress or the ConfigMap), as ingress-nginx's `session-cookie-*`
//!   keys refine `affinity`;
//! - route settings: `criticality` (`critical`, `standard`, `sheddable`)
//!   and `criticality-header` (a header naming the class).
//!
//! Prefix affinity and LoRA affinity (with `endpoint-metrics`) read the
//! request body, as `model-from-body` does: at most `model-body-peek`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use gateway::balance::endpoint_metrics::{EndpointMetrics, MetricNames, SERVERS};
use gateway::balance::{BackendPolicy, Criticality, RouteSignals};

use super::traffic::{Apply, count, duration, header_name};

/// The backend settings and their parsers, in the order they apply
/// (a feature before the keys that refine it).
pub(crate) const POLICY_KEYS: [(&str, Apply<BackendPolicy>); 11] = [
    ("endpoint-metrics", |p, v| {
        if v == "off" {
            p.endpoint_metrics = None;
            return Ok(());
        }
        let names = MetricNames::preset(v)
            .ok_or_else(|| format!("must be off or one of {}", SERVERS.join(", ")))?;
        match &mut p.endpoint_metrics {
            Some(config) => Arc::make_mut(config).names = names,
            None => p.endpoint_metrics = Some(Arc::new(EndpointMetrics::new(names))),
        }
        Ok(())
    }),
    ("endpoint-metrics-names", |p, v| {
        MetricNames::default().with_overrides(v)?;
        metrics(p, |m| {
            m.names = m.names.clone().with_overrides(v)?;
            Ok(())
        })
    }),
    ("endpoint-metrics-port", |p, v| {
        let port: u16 = v
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| "must be a port from 1 to 65535".to_owned())?;
        metrics(p, |m| {
            m.port = Some(port);
            Ok(())
        })
    }),
    ("endpoint-metrics-path", |p, v| {
        let valid =
            v.starts_with('/') && v.len() <= 256 && v.parse::<http::uri::PathAndQuery>().is_ok();
        if !valid {
            return Err("must be a path such as /metrics, at most 256 bytes".to_owned());
        }
        metrics(p, |m| {
            m.path = v.to_owned();
            Ok(())
        })
    }),
    ("endpoint-metrics-interval", |p, v| {
        let interval = at_least(v, EndpointMetrics::MIN_INTERVAL)?;
        metrics(p, |m| {
            m.interval = interval;
            Ok(())
        })
    }),
    ("endpoint-metrics-timeout", |p, v| {
        let timeout = at_least(v, Duration::from_millis(1))?;
        metrics(p, |m| {
            m.timeout = timeout;
            Ok(())
        })
    }),
    ("endpoint-metrics-max-age", |p, v| {
        let max_age = at_least(v, Duration::from_millis(1))?;
        metrics(p, |m| {
            m.max_age = max_age;
            Ok(())
        })
    }),
    ("saturation-queue", |p, v| {
        p.saturation.queue = u32::try_from(count(v)?)
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| "must be a whole number from 1".to_owned())?;
        Ok(())
    }),
    ("saturation-kv-cache", |p, v| {
        let fraction: f64 = v
            .parse()
            .ok()
            .filter(|f: &f64| *f > 0.0 && *f <= 1.0)
            .ok_or_else(|| "must be a fraction above 0 and at most 1, such as 0.8".to_owned())?;
        p.saturation.kv_cache_permille = (fraction * 1000.0).round() as u32;
        Ok(())
    }),
    ("prefix-affinity", |p, v| {
        p.prefix_affinity = match v {
            "on" | "true" => Some(p.prefix_affinity.unwrap_or_default()),
            "off" | "false" => None,
            _ => return Err("must be on or off".to_owned()),
        };
        Ok(())
    }),
    ("prefix-affinity-slack", |p, v| {
        let slack = u32::try_from(count(v)?).map_err(|_| "too large".to_owned())?;
        if let Some(affinity) = &mut p.prefix_affinity {
            affinity.slack = slack;
        }
        Ok(())
    }),
];

/// The route settings and their parsers.
pub(crate) const ROUTE_KEYS: [(&str, Apply<RouteSignals>); 2] = [
    ("criticality", |s, v| {
        s.criticality = Some(
            Criticality::parse(v)
                .ok_or_else(|| "must be critical, standard or sheddable".to_owned())?,
        );
        Ok(())
    }),
    ("criticality-header", |s, v| {
        s.criticality_header = Some(header_name(v)?);
        Ok(())
    }),
];

/// Applies `change` to the endpoint-metrics settings, if on.
fn metrics(
    policy: &mut BackendPolicy,
    change: impl FnOnce(&mut EndpointMetrics) -> Result<(), String>,
) -> Result<(), String> {
    match &mut policy.endpoint_metrics {
        Some(config) => change(Arc::make_mut(config)),
        None => Ok(()),
    }
}

fn at_least(value: &str, least: Duration) -> Result<Duration, String> {
    let parsed = duration(value)?;
    if parsed < least {
        return Err(format!("must be at least {least:?}"));
    }
    Ok(parsed)
}

/// Whether these keys (an Ingress's, without prefix, or a ConfigMap's)
/// turn on something that reads the request body: prefix affinity, or
/// endpoint metrics (LoRA affinity reads the body's `model`).
pub(crate) fn reads_body(keys: &BTreeMap<&str, &str>) -> bool {
    keys.get("prefix-affinity")
        .is_some_and(|v| matches!(*v, "on" | "true"))
        || keys
            .get("endpoint-metrics")
            .is_some_and(|v| MetricNames::preset(v).is_some())
}

#[cfg(test)]
mod tests {
    use gateway::balance::PrefixAffinity;

    use super::*;

    fn apply(pairs: &[(&str, &str)]) -> (BackendPolicy, Vec<String>) {
        let mut policy = BackendPolicy::default();
        let mut errors = Vec::new();
        for (key, value) in pairs {
            let (_, parse) = POLICY_KEYS.iter().find(|(k, _)| k == key).unwrap();
            if let Err(e) = parse(&mut policy, value) {
                errors.push(format!("{key}: {e}"));
            }
        }
        (policy, errors)
    }

    #[test]
    fn endpoint_metrics_and_its_refinements() {
        let (policy, errors) = apply(&[
            ("endpoint-metrics", "tgi"),
            ("endpoint-metrics-names", "kv-cache=tgi_kv"),
            ("endpoint-metrics-port", "9090"),
            ("endpoint-metrics-path", "/stats/metrics"),
            ("endpoint-metrics-interval", "200ms"),
            ("endpoint-metrics-timeout", "100ms"),
            ("endpoint-metrics-max-age", "1s"),
            ("saturation-queue", "8"),
            ("saturation-kv-cache", "0.9"),
        ]);
        assert!(errors.is_empty(), "{errors:?}");
        let m = policy.endpoint_metrics.unwrap();
        assert_eq!(m.names.waiting[0].name, "tgi_queue_size");
        assert_eq!(m.names.kv_cache[0].name, "tgi_kv");
        assert_eq!(m.port, Some(9090));
        assert_eq!(m.path, "/stats/metrics");
        assert_eq!(m.interval, Duration::from_millis(200));
        assert_eq!(
            (m.timeout, m.max_age),
            (Duration::from_millis(100), Duration::from_secs(1))
        );
        assert_eq!(policy.saturation.queue, 8);
        assert_eq!(policy.saturation.kv_cache_permille, 900);
        let (off, _) = apply(&[("endpoint-metrics", "vllm"), ("endpoint-metrics", "off")]);
        assert_eq!(off.endpoint_metrics, None);
    }

    #[test]
    fn bad_values_are_refused() {
        for (key, value) in [
            ("endpoint-metrics", "nginx"),
            ("endpoint-metrics-names", "queue=x"),
            ("endpoint-metrics-port", "0"),
            ("endpoint-metrics-path", "metrics"),
            ("endpoint-metrics-interval", "10ms"),
            ("endpoint-metrics-timeout", "0"),
            ("saturation-queue", "0"),
            ("saturation-kv-cache", "80"),
            ("prefix-affinity", "yes"),
            ("prefix-affinity-slack", "-1"),
        ] {
            let (_, errors) = apply(&[(key, value)]);
            assert_eq!(errors.len(), 1, "{key}: {value}");
        }
    }

    #[test]
    fn prefix_affinity_and_its_slack() {
        let (policy, errors) = apply(&[("prefix-affinity", "on"), ("prefix-affinity-slack", "5")]);
        assert!(errors.is_empty());
        assert_eq!(policy.prefix_affinity, Some(PrefixAffinity { slack: 5 }));
        let (policy, _) = apply(&[("prefix-affinity", "on")]);
        assert_eq!(policy.prefix_affinity, Some(PrefixAffinity::default()));
    }

    #[test]
    fn criticality_keys() {
        let mut signals = RouteSignals::default();
        for (key, value) in [
            ("criticality", "Sheddable"),
            ("criticality-header", "X-Priority"),
        ] {
            let (_, parse) = ROUTE_KEYS.iter().find(|(k, _)| *k == key).unwrap();
            parse(&mut signals, value).unwrap();
        }
        assert_eq!(signals.criticality, Some(Criticality::Sheddable));
        assert_eq!(signals.criticality_header.unwrap(), "x-priority");
        let (_, parse) = ROUTE_KEYS[0];
        assert!(parse(&mut RouteSignals::default(), "urgent").is_err());
        let (_, parse) = ROUTE_KEYS[1];
        assert!(parse(&mut RouteSignals::default(), "Host").is_err());
    }
}
