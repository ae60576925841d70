//! The reconcile loop: applies source updates to the snapshot and publishes
//! routing tables, on a thread of its own so that compiling never takes a
//! worker from the data plane.
//!
//! Two speeds of change: an update that touches only EndpointSlices goes
//! straight to the affected backends' endpoint sets; anything else recompiles
//! the table and swaps it in whole. Nothing is published before every source
//! has delivered its first full list, and readiness turns true only then.
//!
//! Regex paths are compiled inline for the first table, then on a thread of
//! their own (see [`crate::compile::regex_paths`]): while some compile,
//! the loop wakes every [`REGEX_POLL`] to publish them once ready.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use gateway::Publisher;
use gateway::admin::Health;
use gateway::backend::Backend;
use k8s_openapi::api::networking::v1::IngressLoadBalancerIngress;
use tokio::sync::watch;

use crate::compile::{CompileCache, CompileOptions, compile_with, resolve_key};
use crate::diagnostics::Diagnostic;
use crate::gateway_api::GatewayApiStatus;
use crate::gateway_api::writer::{GatewayApiReport, Observed};
use crate::objects::{NsName, Object, ObjectKey};
use crate::snapshot::{Changed, Snapshot};
use crate::webhook::{Baseline, BaselineHandle};

/// How often the loop looks for regex paths compiled in the background.
const REGEX_POLL: Duration = Duration::from_millis(20);

/// One change to one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The object was added or changed.
    Apply(Object),
    /// The object was removed.
    Delete(ObjectKey),
}

/// A batch of changes from one source.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceUpdate {
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// Set on the batch that completes the source's first full list.
    pub synced: bool,
}

/// What the cluster-facing parts of the controller (status writer, event
/// recorder) need to know after each change, published as a whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Every Ingress in the snapshot, served or not.
    pub ingresses: BTreeMap<NsName, IngressState>,
    /// The diagnostics of the last compile.
    pub diagnostics: Vec<Diagnostic>,
}

/// What the status writer needs of one Ingress.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngressState {
    /// Whether this controller serves it.
    pub served: bool,
    /// Its uid, for Event references.
    pub uid: Option<String>,
    /// Its `status.loadBalancer.ingress` as last seen.
    pub status: Vec<IngressLoadBalancerIngress>,
}

/// Applies updates and publishes tables. See the module docs.
#[derive(Debug)]
pub struct Reconciler {
    snapshot: Snapshot,
    options: CompileOptions,
    publisher: Publisher,
    health: Arc<Health>,
    /// Sources that have not delivered their first full list yet.
    unsynced: usize,
    needs_compile: bool,
    /// Ingress statuses changed since the last report.
    needs_report: bool,
    dirty_services: BTreeSet<NsName>,
    /// The live backends of the published table, by Service.
    backends_by_service: HashMap<NsName, Vec<Arc<Backend>>>,
    /// Diagnostics already logged, so each is logged once, not per compile.
    reported: BTreeSet<Diagnostic>,
    /// The Ingresses served by the last compile.
    served: BTreeSet<NsName>,
    /// How long to wait for more updates before a recompile.
    debounce: Duration,
    /// Where reports go, when something listens (the Kubernetes API source).
    reports: Option<watch::Sender<Arc<Report>>>,
    /// Parsed certificates, kept between compiles.
    cache: CompileCache,
    /// Where the admission webhook's baseline goes, when it runs.
    baseline: Option<BaselineHandle>,
    /// Where Gateway API reports go, when its status writer listens.
    gateway_api_reports: Option<watch::Sender<GatewayApiReport>>,
    /// The Gateway API status the last compile wants.
    gateway_api: Arc<GatewayApiStatus>,
}

impl Reconciler {
    /// A reconciler publishing through `publisher`, ready once `sources`
    /// sources have synced.
    pub fn new(
        options: CompileOptions,
        publisher: Publisher,
        health: Arc<Health>,
        sources: usize,
        debounce: Duration,
    ) -> Self {
        Self {
            snapshot: Snapshot::default(),
            options,
            publisher,
            health,
            unsynced: sources,
            needs_compile: true,
            needs_report: false,
            dirty_services: BTreeSet::new(),
            backends_by_service: HashMap::new(),
            reported: BTreeSet::new(),
            served: BTreeSet::new(),
            debounce,
            reports: None,
            cache: CompileCache::default(),
            baseline: None,
            gateway_api_reports: None,
            gateway_api: Arc::default(),
        }
    }

    /// Also publishes the objects, options and diagnostics of every compile
    /// for the admission webhook.
    pub fn with_baseline(mut self, baseline: BaselineHandle) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Also publishes a [`GatewayApiReport`] after every change that
    /// affects it (the Gateway API status writer listens).
    pub fn with_gateway_api_reports(mut self, reports: watch::Sender<GatewayApiReport>) -> Self {
        self.gateway_api_reports = Some(reports);
        self
    }

    /// Also publishes a [`Report`] after every change that affects it.
    pub fn with_reports(mut self, reports: watch::Sender<Arc<Report>>) -> Self {
        self.reports = Some(reports);
        self
    }

    /// Runs until every sender of `updates` is gone. What is queued is
    /// applied together; an endpoint-only change is published at once, while
    /// a change that needs a recompile waits for quiet (`debounce`, at most
    /// ten times that in all) so that a burst compiles once.
    pub fn run(mut self, updates: &Receiver<SourceUpdate>) {
        loop {
            let first = if self.cache.regexes_pending() {
                match updates.recv_timeout(REGEX_POLL) {
                    Ok(update) => update,
                    Err(RecvTimeoutError::Timeout) => {
                        if self.cache.regexes_arrived() {
                            self.needs_compile = true;
                            self.publish();
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match updates.recv() {
                    Ok(update) => update,
                    Err(_) => return,
                }
            };
            self.absorb(first);
            while let Ok(more) = updates.try_recv() {
                self.absorb(more);
            }
            if self.needs_compile && !self.debounce.is_zero() {
                let until = Instant::now() + self.debounce * 10;
                loop {
                    let wait = self
                        .debounce
                        .min(until.saturating_duration_since(Instant::now()));
                    match updates.recv_timeout(wait) {
                        Ok(more) => self.absorb(more),
                        Err(RecvTimeoutError::Timeout) => break,
                        Err(RecvTimeoutError::Disconnected) => {
                            self.publish();
                            return;
                        }
                    }
                }
            }
            self.publish();
        }
    }

    /// Applies one update to the snapshot, noting what must be published.
    pub fn absorb(&mut self, update: SourceUpdate) {
        for change in update.changes {
            let changed = match change {
                Change::Apply(object) => self.snapshot.apply(object),
                Change::Delete(key) => self.snapshot.delete(&key),
            };
            match changed {
                Changed::Nothing => {}
                Changed::Status => self.needs_report = true,
                Changed::Routes => self.needs_compile = true,
                Changed::Endpoints(services) => self.dirty_services.extend(services),
            }
        }
        if update.synced {
            self.unsynced = self.unsynced.saturating_sub(1);
        }
    }

    /// Publishes what changed: a new table, or new endpoint sets, and the
    /// report when it changed.
    pub fn publish(&mut self) {
        if self.unsynced > 0 {
            return;
        }
        if self.cache.regexes_arrived() {
            self.needs_compile = true;
        }
        if self.needs_compile {
            self.recompile();
            self.needs_report = true;
        } else if !self.dirty_services.is_empty() {
            self.update_endpoints();
        }
        if std::mem::take(&mut self.needs_report) {
            self.send_report();
        }
        self.health.set_ready(true);
    }

    fn send_report(&self) {
        self.send_gateway_api_report();
        let Some(reports) = &self.reports else { return };
        let ingresses = self
            .snapshot
            .ingresses()
            .map(|(id, ingress)| {
                let status = ingress
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.clone())
                    .unwrap_or_default();
                let state = IngressState {
                    served: self.served.contains(id),
                    uid: ingress.metadata.uid.clone(),
                    status,
                };
                (id.clone(), state)
            })
            .collect();
        let report = Report {
            ingresses,
            diagnostics: self.reported.iter().cloned().collect(),
        };
        reports.send_if_modified(|current| {
            let changed = **current != report;
            if changed {
                *current = Arc::new(report);
            }
            changed
        });
    }

    fn send_gateway_api_report(&self) {
        let Some(reports) = &self.gateway_api_reports else {
            return;
        };
        let s = &self.snapshot;
        let report = GatewayApiReport {
            wanted: self.gateway_api.clone(),
            observed: Observed {
                classes: s
                    .gateway_classes()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                gateways: s.gateways().map(|(k, v)| (k.clone(), v.clone())).collect(),
                http_routes: s
                    .http_routes()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                grpc_routes: s
                    .grpc_routes()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                inference_pools: s
                    .inference_pools()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
        };
        reports.send_if_modified(|current| {
            let changed = *current != report;
            if changed {
                *current = report;
            }
            changed
        });
    }

    fn recompile(&mut self) {
        #[cfg(debug_assertions)]
        self.injected_fault();
        let started = Instant::now();
        let now = jiff::Timestamp::now().as_second();
        self.cache.adopt_from(self.publisher.current());
        let compiled = compile_with(&self.snapshot, &self.options, &mut self.cache, now);
        let table = self.publisher.publish(compiled.table);
        self.needs_compile = false;
        self.dirty_services.clear();
        self.backends_by_service.clear();
        for backend in table.backends() {
            let key = backend.key();
            self.backends_by_service
                .entry(NsName::new(&*key.namespace, &*key.service))
                .or_default()
                .push(backend.clone());
        }
        if let Some(baseline) = &self.baseline {
            baseline.store(Some(Arc::new(Baseline {
                snapshot: self.snapshot.clone(),
                options: self.options.clone(),
                diagnostics: compiled.diagnostics.clone(),
            })));
        }
        self.report(compiled.diagnostics);
        self.served = compiled.served.iter().cloned().collect();
        if !self.health.is_ready()
            && let Err(error) = self.cache.compile_regexes_in_background()
        {
            tracing::warn!(%error, "cannot start the regex thread; regex paths are compiled inline");
        }
        self.gateway_api = Arc::new(compiled.gateway_api);
        tracing::info!(
            ingresses = compiled.served.len(),
            routes = table.routes().len(),
            backends = table.backends().len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "configuration applied"
        );
    }

    fn update_endpoints(&mut self) {
        for service in std::mem::take(&mut self.dirty_services) {
            for backend in self.backends_by_service.get(&service).into_iter().flatten() {
                let resolved = resolve_key(&self.snapshot, backend.key());
                // An ExternalName backend's endpoints come from DNS.
                if resolved.external.is_some() {
                    continue;
                }
                if backend.update(&resolved.update) {
                    tracing::debug!(
                        backend = backend.name(),
                        endpoints = resolved.update.addrs.len(),
                        "endpoints updated"
                    );
                }
            }
        }
    }

    /// Logs diagnostics that are new since the last compile, and those that
    /// went away.
    fn report(&mut self, diagnostics: Vec<Diagnostic>) {
        let current: BTreeSet<Diagnostic> = diagnostics.into_iter().collect();
        for d in current.difference(&self.reported) {
            tracing::warn!(object = %d.object, reason = %d.reason, "{}", d.message);
        }
        for d in self.reported.difference(&current) {
            tracing::info!(object = %d.object, reason = %d.reason, "resolved: {}", d.message);
        }
        self.reported = current;
    }

    /// The diagnostics of the last compile.
    pub fn diagnostics(&self) -> impl Iterator<Item = &Diagnostic> {
        self.reported.iter()
    }

    /// Debug builds only, for the black-box tests of the reconcile thread's
    /// supervision: panics when the Ingress named by
    /// `EDGE_GATEWAY_TEST_PANIC_ON_INGRESS` (`namespace/name`) exists.
    #[cfg(debug_assertions)]
    #[expect(
        clippy::disallowed_methods,
        reason = "a debug-build fault injection for the black-box supervision test, not a setting"
    )]
    fn injected_fault(&self) {
        let Ok(name) = std::env::var("EDGE_GATEWAY_TEST_PANIC_ON_INGRESS") else {
            return;
        };
        if self
            .snapshot
            .ingresses()
            .any(|(id, _)| id.to_string() == name)
        {
            panic!("injected fault: Ingress {name} exists");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arc_swap::ArcSwap;
    use gateway::{RouteTable, TableHandle};
    use serde_json::{Value, json};

    fn object(value: Value) -> Change {
        Change::Apply(Object::from_value(value).unwrap().unwrap())
    }

    fn slice(ips: &[&str]) -> Change {
        let endpoints: Vec<Value> = ips.iter().map(|ip| json!({"addresses": [ip]})).collect();
        object(
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "s-1", "namespace": "ns",
                         "labels": {"kubernetes.io/service-name": "s"}},
            "addressType": "IPv4", "ports": [{"port": 8080}], "endpoints": endpoints}),
        )
    }

    fn base() -> Vec<Change> {
        vec![
            object(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "s", "namespace": "ns"},
                "spec": {"ports": [{"port": 80, "targetPort": 8080}]}})),
            object(
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "i", "namespace": "ns",
                             "annotations": {"kubernetes.io/ingress.class": "nginx"}},
                "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}),
            ),
            slice(&["10.0.0.1"]),
        ]
    }

    fn reconciler(sources: usize) -> (Reconciler, TableHandle, Arc<Health>) {
        let table: TableHandle = Arc::new(ArcSwap::from_pointee(RouteTable::default()));
        let health = Arc::new(Health::default());
        let r = Reconciler::new(
            CompileOptions::default(),
            Publisher::new(table.clone(), None),
            health.clone(),
            sources,
            Duration::ZERO,
        );
        (r, table, health)
    }

    fn addrs(table: &TableHandle) -> Vec<String> {
        let table = table.load();
        table.backends()[0]
            .endpoints()
            .endpoints()
            .iter()
            .map(|e| e.addr().to_string())
            .collect()
    }

    #[test]
    fn nothing_is_published_before_every_source_synced() {
        let (mut r, table, health) = reconciler(2);
        r.absorb(SourceUpdate {
            changes: base(),
            synced: true,
        });
        r.publish();
        assert!(!health.is_ready());
        assert!(table.load().routes().is_empty());
        r.absorb(SourceUpdate {
            changes: vec![],
            synced: true,
        });
        r.publish();
        assert!(health.is_ready());
        assert_eq!(
            table.load().routes().len(),
            2,
            "the Ingress path and /healthz"
        );
    }

    #[test]
    fn endpoint_changes_update_the_live_backend_without_a_new_table() {
        let (mut r, table, _) = reconciler(1);
        r.absorb(SourceUpdate {
            changes: base(),
            synced: true,
        });
        r.publish();
        let before = table.load_full();
        assert_eq!(addrs(&table), ["10.0.0.1:8080"]);
        r.absorb(SourceUpdate {
            changes: vec![slice(&["10.0.0.1", "10.0.0.2"])],
            synced: false,
        });
        r.publish();
        assert!(
            Arc::ptr_eq(&before, &table.load_full()),
            "table was not recompiled"
        );
        assert_eq!(addrs(&table), ["10.0.0.1:8080", "10.0.0.2:8080"]);
    }

    #[test]
    fn recompiles_keep_live_backends() {
        let (mut r, table, _) = reconciler(1);
        r.absorb(SourceUpdate {
            changes: base(),
            synced: true,
        });
        r.publish();
        let backend = table.load().backends()[0].clone();
        let extra = object(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "j", "namespace": "ns",
                         "annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "spec": {"rules": [{"host": "a.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]}}),
        );
        r.absorb(SourceUpdate {
            changes: vec![extra, slice(&["10.0.0.3"])],
            synced: false,
        });
        r.publish();
        let now = table.load();
        assert!(Arc::ptr_eq(&now.backends()[0], &backend));
        assert_eq!(addrs(&table), ["10.0.0.3:8080"]);
    }

    #[test]
    fn run_coalesces_and_stops_when_senders_go() {
        let (r, table, health) = reconciler(1);
        let (tx, rx) = std::sync::mpsc::channel();
        tx.send(SourceUpdate {
            changes: base(),
            synced: true,
        })
        .unwrap();
        drop(tx);
        r.run(&rx);
        assert!(health.is_ready());
        assert_eq!(addrs(&table), ["10.0.0.1:8080"]);
    }
}
