//! The table's side of the metrics: routes get their series when a table
//! is published ([`RouteTable::attach_metrics`]), and the scrape reads what
//! the current table says (configuration hash, orphaned Ingresses,
//! certificates, live backends) through [`TableFamilies`].

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus::proto::{MetricFamily, MetricType};

use super::{RouteAction, RouteTable};
use crate::metrics::{Metrics, RouteLabels, TableFamilies, family, family_raw, gauge};
use crate::tls::Certificate;

impl TableFamilies for ArcSwap<RouteTable> {
    fn families(&self, metrics: &Metrics, class: &str) -> Vec<MetricFamily> {
        let table = self.load();
        let mut families = table_families(&table);
        families.extend(certificate_families(
            &table,
            metrics.fallback_certificate(),
            class,
        ));
        if metrics.inference_store().is_some() {
            families.extend(backend_families(&table));
        }
        families
    }
}

impl RouteTable {
    /// Gives every proxied route its series in `metrics` (reusing those of
    /// the routes the previous table had) and forgets the series of routes
    /// that are gone.
    pub fn attach_metrics(&mut self, metrics: &Metrics) {
        if let Some(inference) = metrics.inference_store() {
            let named: Vec<_> = self
                .routes()
                .iter()
                .map(|route| {
                    let source = route.source.as_ref()?;
                    let RouteAction::Proxy(id) = route.action else {
                        return None;
                    };
                    let service = self.backend(id)?.key().service.clone();
                    Some((source.namespace.clone(), source.name.clone(), service))
                })
                .collect();
            let stats = inference.series(named);
            self.set_inference(stats);
        }
        let Some(store) = metrics.request_store() else {
            return;
        };
        let mut live = Vec::new();
        let per_host = store.config.per_host;
        let undefined = store.config.per_undefined_host;
        for (route, service) in self.routes_with_services() {
            let Some(source) = &route.source else {
                continue;
            };
            let host = match (per_host, route.host.as_ref()) {
                (false, _) => None,
                // Only exact hosts are "defined" for ingress-nginx; the
                // others are recorded only when asked, under their pattern.
                (true, h) if !h.is_empty() && !h.starts_with("*.") => Some(route.host.clone()),
                (true, _) if undefined => Some(route.host.clone()),
                (true, _) => continue,
            };
            let labels = RouteLabels {
                namespace: source.namespace.clone(),
                ingress: source.name.clone(),
                service,
                path: route.path.clone(),
                host,
                canary: None,
            };
            // A canary's requests: the main route's labels, plus `canary`.
            if let Some(canary) = &mut route.canary {
                let labels = RouteLabels {
                    canary: Some(canary.upstream.clone()),
                    ..labels.clone()
                };
                canary.stats = Some(store.stats(labels, &mut live));
            }
            route.stats = Some(store.stats(labels, &mut live));
        }
        store.retain(&live);
    }
}

fn table_families(table: &RouteTable) -> Vec<MetricFamily> {
    let mut hash = family(
        "config_hash",
        "Running configuration hash actually running",
        MetricType::GAUGE,
    );
    hash.mut_metric()
        .push(gauge(&[], config_hash(table) as f64));
    let mut ok = family(
        "config_last_reload_successful",
        "Whether the last configuration change was applied successfully",
        MetricType::GAUGE,
    );
    ok.mut_metric().push(gauge(&[], 1.0));

    let mut orphans = family(
        "orphan_ingress",
        "Gauge reporting status of ingress orphanity, 1 indicates orphaned ingress",
        MetricType::GAUGE,
    );
    let mut seen = std::collections::HashSet::new();
    for route in table.routes() {
        let (Some(source), RouteAction::Proxy(id)) = (&route.source, &route.action) else {
            continue;
        };
        let Some(backend) = table.backend(*id) else {
            continue;
        };
        let endpoints = backend.endpoints();
        let kind = if !endpoints.service_found() {
            "no-service"
        } else if endpoints.endpoints().is_empty() {
            "no-endpoint"
        } else {
            continue;
        };
        if seen.insert((source.namespace.clone(), source.name.clone(), kind)) {
            orphans.mut_metric().push(gauge(
                &[
                    ("namespace", &source.namespace),
                    ("ingress", &source.name),
                    ("type", kind),
                ],
                1.0,
            ));
        }
    }

    let mut build = family(
        "build_info",
        "A metric with a constant '1' labeled with information about the build.",
        MetricType::GAUGE,
    );
    build.mut_metric().push(gauge(
        &[
            ("release", env!("CARGO_PKG_VERSION")),
            ("build", "edge-gateway"),
            ("repository", "edge-gateway"),
        ],
        1.0,
    ));
    vec![hash, ok, orphans, build]
}

/// `ssl_expire_time_seconds` and `ssl_certificate_info` with ingress-nginx's
/// labels (`SetSSLExpireTime`, `SetSSLInfo`): the Secret's namespace and
/// name, the controller `class`, the host (`_` for the default
/// certificate), and the certificate's identifier, issuer and serial.
fn certificate_families(
    table: &RouteTable,
    fallback: Option<&Arc<Certificate>>,
    class: &str,
) -> Vec<MetricFamily> {
    let mut expire = family(
        "ssl_expire_time_seconds",
        "Number of seconds since 1970 to the SSL Certificate expire.",
        MetricType::GAUGE,
    );
    let mut info = family(
        "ssl_certificate_info",
        "Hold all labels associated to a certificate",
        MetricType::GAUGE,
    );
    let fallback = fallback
        .filter(|_| table.certificate(None).is_none())
        .map(|cert| (None, cert));
    for (host, cert) in table.certificates().chain(fallback) {
        let host = host.unwrap_or_else(|| "_".to_owned());
        let (namespace, secret) = cert.source().unwrap_or(("", ""));
        let labels = [
            ("namespace", namespace),
            ("class", class),
            ("host", host.as_str()),
            ("secret_name", secret),
            ("identifier", cert.identifier()),
        ];
        expire
            .mut_metric()
            .push(gauge(&labels, cert.not_after() as f64));
        let mut all = labels.to_vec();
        all.extend([
            ("issuer_organization", cert.issuer_organization()),
            ("issuer_common_name", cert.issuer()),
            ("serial_number", cert.serial()),
            ("public_key_algorithm", cert.key_algorithm()),
        ]);
        info.mut_metric().push(gauge(&all, 1.0));
    }
    vec![expire, info]
}

/// A stable hash of what the table routes where (ingress-nginx exposes the
/// hash of its rendered configuration).
fn config_hash(table: &RouteTable) -> u64 {
    let mut hasher = foldhash::fast::FixedState::with_seed(0xc0f1).build_hasher();
    for route in table.routes() {
        hasher.write(route.host.as_bytes());
        hasher.write(route.path.as_bytes());
        hasher.write(route.path_kind.as_str().as_bytes());
        if let RouteAction::Proxy(id) = route.action
            && let Some(backend) = table.backend(id)
        {
            hasher.write(backend.name().as_bytes());
        }
        if let Some(canary) = &route.canary {
            hasher.write(canary.upstream.as_bytes());
        }
    }
    for (host, cert) in table.certificates() {
        hasher.write(host.unwrap_or_default().as_bytes());
        hasher.write(cert.serial().as_bytes());
    }
    // Prometheus values are f64: keep the hash exact in one.
    hasher.finish() >> 11
}

/// Per-endpoint in-flight counts and per-backend queue lengths, read from
/// the live backends; with `endpoint-metrics`, whether each endpoint's
/// scraped values count now.
fn backend_families(table: &RouteTable) -> [MetricFamily; 3] {
    let mut in_flight = family_raw(
        &format!("{}endpoint_in_flight", crate::metrics::inference::PREFIX),
        "Requests in flight per endpoint, until their last response byte",
        MetricType::GAUGE,
    );
    let mut queued = family_raw(
        &format!("{}queued_requests", crate::metrics::inference::PREFIX),
        "Requests waiting for a free endpoint slot now",
        MetricType::GAUGE,
    );
    let mut scraped = family_raw(
        &format!(
            "{}endpoint_metrics_fresh",
            crate::metrics::inference::PREFIX
        ),
        "1 while an endpoint's model-server metrics (endpoint-metrics) are fresh, else 0: the gateway's own view is used",
        MetricType::GAUGE,
    );
    let now = crate::clock::now();
    for backend in table.backends() {
        let key = backend.key();
        let scrapes = backend.policy().endpoint_metrics.is_some();
        let pairs = [
            ("namespace", &*key.namespace),
            ("port", &*key.port),
            ("service", &*key.service),
        ];
        if backend.policy().max_inflight_per_endpoint.is_some() {
            queued
                .mut_metric()
                .push(gauge(&pairs, backend.gate().queued() as f64));
        }
        for endpoint in backend.endpoints().endpoints() {
            let addr = endpoint.addr().to_string();
            let [namespace, port, service] = pairs;
            in_flight.mut_metric().push(gauge(
                &[("endpoint", &addr), namespace, port, service],
                endpoint.in_flight() as f64,
            ));
            if scrapes {
                let fresh = endpoint.server().fresh(now);
                scraped.mut_metric().push(gauge(
                    &[("endpoint", &addr), namespace, port, service],
                    if fresh { 1.0 } else { 0.0 },
                ));
            }
        }
    }
    [in_flight, queued, scraped]
}
