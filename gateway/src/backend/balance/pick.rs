//! The seam every pick goes through: the Gateway API Inference Extension's
//! filter → score → pick pipeline, inside the gateway, with no extra hop.
//!
//! 1. **filters**, with `endpoint-metrics`: endpoints whose fresh metrics
//!    show them saturated (`saturation-queue` requests waiting, or
//!    `saturation-kv-cache` of the KV cache used) are left out while any
//!    other can take the request; when the body names a model that fresh
//!    metrics list as a loaded LoRA adapter somewhere, only those
//!    endpoints are looked at (while one is unsaturated);
//! 2. **score**: the backend's algorithm picks among what is left, reading
//!    each endpoint's load through [`super::outstanding`];
//! 3. **prefix affinity**, with `prefix-affinity`: the endpoint that
//!    recently served the longest start of the request's prompt takes it
//!    instead, unless its load exceeds the pick's by more than
//!    `prefix-affinity-slack` requests (see [`super::prefix`]).
//!
//! Each stage falls back to the next when it finds nothing: stale or
//! failing metrics filter nothing, an unknown prompt prefers nothing. A
//! backend with none of these settings goes straight to its algorithm, and
//! round robin's pick is the same few instructions as before.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use super::prefix::PrefixTable;
use super::request::RequestSignals;
use super::{BackendPolicy, outstanding};
use crate::backend::{Endpoint, EndpointSet};
use crate::clock::now;

/// What picking for one backend needs besides the request.
pub(crate) struct Picker<'a> {
    /// The backend's settings.
    pub(crate) policy: &'a BackendPolicy,
    /// Its rotation.
    pub(crate) cursor: &'a AtomicUsize,
    /// Its prefix table, with `prefix-affinity`.
    pub(crate) prefixes: Option<&'a PrefixTable>,
}

impl Picker<'_> {
    /// The endpoint for a request with `signals`, among those `eligible`
    /// allows.
    pub(crate) fn pick<'e>(
        &self,
        signals: &RequestSignals,
        set: &'e EndpointSet,
        eligible: impl Fn(&Endpoint) -> bool,
    ) -> Option<&'e Arc<Endpoint>> {
        let policy = self.policy;
        let algorithm = policy.algorithm;
        if policy.endpoint_metrics.is_none() && self.prefixes.is_none() {
            return algorithm.pick(self.cursor, set.endpoints(), eligible);
        }
        let now = now();
        let choose = |allowed: &dyn Fn(&Endpoint) -> bool| {
            let picked = algorithm.pick(self.cursor, set.endpoints(), allowed)?;
            Some(self.prefer(signals, set, picked, allowed, now))
        };
        if policy.endpoint_metrics.is_some() {
            let limits = policy.saturation;
            let calm = |e: &Endpoint| eligible(e) && !e.server().saturated(limits, now);
            let model = signals.model();
            if model != 0 {
                let loaded = |e: &Endpoint| calm(e) && e.server().has_adapter(model, now);
                if let Some(picked) = choose(&loaded) {
                    return Some(picked);
                }
            }
            if let Some(picked) = choose(&calm) {
                return Some(picked);
            }
        }
        choose(&eligible)
    }

    /// The endpoint holding the request's longest known prompt prefix,
    /// when its load is within the slack of `picked`'s; else `picked`.
    fn prefer<'e>(
        &self,
        signals: &RequestSignals,
        set: &'e EndpointSet,
        picked: &'e Arc<Endpoint>,
        allowed: &dyn Fn(&Endpoint) -> bool,
        now: u64,
    ) -> &'e Arc<Endpoint> {
        let (Some(table), Some(affinity)) = (self.prefixes, self.policy.prefix_affinity) else {
            return picked;
        };
        let Some((_, owners)) = table.longest(signals.blocks(), signals.model()) else {
            return picked;
        };
        let load = |e: &Endpoint| outstanding::load(e, now);
        let home = owners
            .iter()
            .filter_map(|tag| set.by_tag(*tag))
            .filter(|e| allowed(e))
            .min_by(|a, b| load(a).total_cmp(&load(b)));
        match home {
            Some(home) if load(home) <= load(picked) + f64::from(affinity.slack) => home,
            _ => picked,
        }
    }

    /// Records where a request went, for prefix affinity.
    pub(crate) fn record(&self, signals: &RequestSignals, endpoint: &Endpoint) {
        if let Some(table) = self.prefixes
            && !signals.blocks().is_empty()
        {
            table.record(signals.blocks(), signals.model(), endpoint.tag());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::SocketAddr;

    use super::*;
    use crate::backend::balance::server_load::{Report, adapter_hash};
    use crate::backend::balance::{
        Algorithm, EndpointMetrics, PrefixAffinity, endpoint_metrics::MetricNames,
    };
    use crate::backend::{Backend, BackendKey, EndpointUpdate, InFlight};

    fn backend(n: u8, policy: BackendPolicy) -> Backend {
        let key = BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: false,
        };
        let addrs = (1..=n)
            .map(|i| SocketAddr::from(([10, 0, 0, i], 80)))
            .collect();
        let backend = Backend::new(
            key,
            &EndpointUpdate {
                addrs,
                service_found: true,
            },
        );
        backend.set_policy(Arc::new(policy));
        backend
    }

    fn with_metrics(algorithm: Algorithm) -> BackendPolicy {
        BackendPolicy {
            algorithm,
            endpoint_metrics: Some(Arc::new(EndpointMetrics::new(
                MetricNames::preset("vllm").unwrap(),
            ))),
            ..BackendPolicy::default()
        }
    }

    /// Picks `n` times for `signals`, recording each; the endpoints'
    /// shares.
    fn picks(backend: &Backend, signals: &RequestSignals, n: usize) -> HashMap<SocketAddr, usize> {
        let policy = backend.policy();
        let picker = backend.picker(&policy);
        let set = backend.endpoints();
        let mut counts = HashMap::new();
        for _ in 0..n {
            let e = picker.pick(signals, &set, |_| true).unwrap();
            picker.record(signals, e);
            *counts.entry(e.addr()).or_default() += 1;
        }
        counts
    }

    fn blocks(seed: u64, n: u64) -> Vec<u64> {
        (0..n).map(|i| (seed << 32) | (i + 1)).collect()
    }

    #[test]
    fn a_prompt_prefix_returns_to_its_endpoint_within_the_slack() {
        let backend = backend(
            4,
            BackendPolicy {
                algorithm: Algorithm::LeastRequest,
                prefix_affinity: Some(PrefixAffinity { slack: 2 }),
                ..BackendPolicy::default()
            },
        );
        let prompt = RequestSignals::of(None, blocks(1, 20), Some("m"));
        let counts = picks(&backend, &prompt, 12);
        assert_eq!(counts.len(), 1, "least_request would spread: {counts:?}");
        let home = *counts.keys().next().unwrap();
        // The home endpoint gets busy: beyond the slack, the request goes
        // where the algorithm says, and that endpoint is remembered too.
        let set = backend.endpoints();
        let home_endpoint = set.endpoints().iter().find(|e| e.addr() == home).unwrap();
        let _busy: Vec<InFlight> = (0..3)
            .map(|_| InFlight::start(home_endpoint.clone(), true))
            .collect();
        let counts = picks(&backend, &prompt, 8);
        assert_eq!(counts.get(&home), None, "{counts:?}");
        assert!(counts.len() <= 2, "{counts:?}");
        // A prompt never seen goes where the algorithm says (not to the
        // busy endpoint), then sticks there.
        let other = RequestSignals::of(None, blocks(2, 20), Some("m"));
        let counts = picks(&backend, &other, 4);
        assert_eq!(counts.len(), 1, "{counts:?}");
        assert_eq!(counts.get(&home), None, "{counts:?}");
    }

    #[test]
    fn saturated_endpoints_are_left_out_while_metrics_are_fresh() {
        let backend = backend(3, with_metrics(Algorithm::RoundRobin));
        let now = crate::clock::now();
        let set = backend.endpoints();
        let full = &set.endpoints()[0];
        let report = |kv| Report {
            waiting: Some(0.0),
            running: Some(1.0),
            kv_cache: Some(kv),
            adapters: Vec::new(),
        };
        full.server().store(&report(0.99), 60_000_000_000, now);
        set.endpoints()[1]
            .server()
            .store(&report(0.2), 60_000_000_000, now);
        let counts = picks(&backend, &RequestSignals::default(), 30);
        assert_eq!(counts.get(&full.addr()), None, "{counts:?}");
        // All saturated: the filter gives way.
        for e in set.endpoints() {
            e.server().store(&report(0.95), 60_000_000_000, now);
        }
        assert_eq!(picks(&backend, &RequestSignals::default(), 30).len(), 3);
        // A failed scrape: back to the gateway's own view.
        full.server().failed();
        let counts = picks(&backend, &RequestSignals::default(), 30);
        assert_eq!(counts.get(&full.addr()), Some(&30), "{counts:?}");
    }

    #[test]
    fn an_adapter_goes_where_it_is_loaded() {
        let backend = backend(4, with_metrics(Algorithm::P2c));
        let now = crate::clock::now();
        let set = backend.endpoints();
        let loaded = &set.endpoints()[2];
        let report = Report {
            waiting: Some(0.0),
            running: Some(0.0),
            kv_cache: Some(0.1),
            adapters: vec![adapter_hash(b"sql-lora")],
        };
        loaded.server().store(&report, 60_000_000_000, now);
        let lora = RequestSignals::of(None, Vec::new(), Some("sql-lora"));
        let counts = picks(&backend, &lora, 20);
        assert_eq!(counts.get(&loaded.addr()), Some(&20), "{counts:?}");
        let base = RequestSignals::of(None, Vec::new(), Some("llama"));
        assert!(picks(&backend, &base, 40).len() > 1);
    }
}
