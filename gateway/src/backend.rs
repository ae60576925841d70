//! Backends (one per Service port a route sends to) and the endpoint sets
//! behind them.
//!
//! A backend's endpoint set changes far more often than routes do (every pod
//! start and stop), so it is swapped on its own, through an `ArcSwap`, without
//! touching the route table. Endpoints that stay across an update keep their
//! state (in-flight count, idle upstream connections).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;

use crate::upstream::ConnPool;

/// Names a backend: a Service port in a namespace. Two routes to the same
/// Service port share one backend, and with it its endpoints and balancer.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackendKey {
    /// Namespace of the Service.
    pub namespace: Arc<str>,
    /// Name of the Service.
    pub service: Arc<str>,
    /// The Service port as the route names it: a number or a port name.
    pub port: Arc<str>,
    /// Whether traffic goes to the Service's single virtual address rather
    /// than to its endpoints (`service-upstream`).
    pub cluster_ip: bool,
}

impl fmt::Display for BackendKey {
    /// ingress-nginx's upstream name, `<namespace>-<service>-<port>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.namespace, self.service, self.port)
    }
}

/// What the control plane knows about a backend's endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointUpdate {
    /// Ready endpoint addresses, in a stable order.
    pub addrs: Vec<SocketAddr>,
    /// Whether the Service (and its port) exists; a route to a missing
    /// Service answers 503 like one with no ready endpoint, but is reported
    /// differently.
    pub service_found: bool,
}

/// One upstream address and the state that follows it across updates.
#[derive(Debug)]
pub struct Endpoint {
    addr: SocketAddr,
    in_flight: AtomicUsize,
    pub(crate) pool: ConnPool,
}

impl Endpoint {
    fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            in_flight: AtomicUsize::new(0),
            pool: ConnPool::default(),
        }
    }

    /// The endpoint's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests sent to this endpoint whose response has not ended yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts one request as in flight on an endpoint until dropped, which
/// happens when the response body ends or the request is abandoned.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Endpoint>);

impl InFlight {
    pub(crate) fn start(endpoint: Arc<Endpoint>) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(endpoint)
    }

    pub(crate) fn endpoint(&self) -> &Arc<Endpoint> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An immutable set of endpoints; replaced whole on every update.
#[derive(Debug, Default)]
pub struct EndpointSet {
    endpoints: Box<[Arc<Endpoint>]>,
    service_found: bool,
}

impl EndpointSet {
    /// The endpoints, in the order the control plane gave them.
    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    /// Whether the Service behind the backend exists.
    pub fn service_found(&self) -> bool {
        self.service_found
    }

    fn same_as(&self, update: &EndpointUpdate) -> bool {
        self.service_found == update.service_found
            && self.endpoints.len() == update.addrs.len()
            && self
                .endpoints
                .iter()
                .zip(&update.addrs)
                .all(|(e, a)| e.addr == *a)
    }
}

/// A Service port that routes send traffic to, with its live endpoint set
/// and balancer state.
#[derive(Debug)]
pub struct Backend {
    key: BackendKey,
    name: Box<str>,
    endpoints: ArcSwap<EndpointSet>,
    cursor: AtomicUsize,
}

impl Backend {
    /// A backend with an initial endpoint set.
    pub fn new(key: BackendKey, update: &EndpointUpdate) -> Self {
        let name = key.to_string().into_boxed_str();
        let backend = Self {
            key,
            name,
            endpoints: ArcSwap::from_pointee(EndpointSet::default()),
            cursor: AtomicUsize::new(fastrand::usize(..1024)),
        };
        backend.update(update);
        backend
    }

    /// The key the control plane knows this backend by.
    pub fn key(&self) -> &BackendKey {
        &self.key
    }

    /// ingress-nginx's upstream name for logs and metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current endpoint set. A request loads it once and keeps it.
    pub fn endpoints(&self) -> Arc<EndpointSet> {
        self.endpoints.load_full()
    }

    /// Replaces the endpoint set. Endpoints whose address stays keep their
    /// state; removed ones are dropped once their last request ends.
    /// Returns whether anything changed.
    pub fn update(&self, update: &EndpointUpdate) -> bool {
        let current = self.endpoints.load();
        if current.same_as(update) {
            return false;
        }
        let endpoints = update
            .addrs
            .iter()
            .map(|addr| {
                current
                    .endpoints
                    .iter()
                    .find(|e| e.addr == *addr)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Endpoint::new(*addr)))
            })
            .collect();
        self.endpoints.store(Arc::new(EndpointSet {
            endpoints,
            service_found: update.service_found,
        }));
        true
    }

    /// Picks the next endpoint round robin, skipping the addresses already
    /// tried for this request. `None` when every endpoint was tried.
    pub(crate) fn pick(&self, set: &EndpointSet, tried: &[SocketAddr]) -> Option<Arc<Endpoint>> {
        let n = set.endpoints.len();
        for _ in 0..n {
            let i = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
            let endpoint = &set.endpoints[i];
            if !tried.contains(&endpoint.addr) {
                return Some(endpoint.clone());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> BackendKey {
        BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: false,
        }
    }

    fn addrs(n: u8) -> Vec<SocketAddr> {
        (1..=n)
            .map(|i| SocketAddr::from(([127, 0, 0, i], 8080)))
            .collect()
    }

    fn update(addrs: Vec<SocketAddr>) -> EndpointUpdate {
        EndpointUpdate {
            addrs,
            service_found: true,
        }
    }

    #[test]
    fn name_is_ingress_nginx_upstream_name() {
        assert_eq!(key().to_string(), "ns-svc-80");
    }

    #[test]
    fn round_robin_visits_every_endpoint_evenly() {
        let backend = Backend::new(key(), &update(addrs(10)));
        let set = backend.endpoints();
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100 {
            let e = backend.pick(&set, &[]).unwrap();
            *counts.entry(e.addr()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 10);
        assert!(counts.values().all(|c| *c == 10), "{counts:?}");
    }

    #[test]
    fn pick_skips_tried_endpoints() {
        let backend = Backend::new(key(), &update(addrs(3)));
        let set = backend.endpoints();
        let tried = addrs(2);
        for _ in 0..10 {
            assert_eq!(backend.pick(&set, &tried).unwrap().addr(), addrs(3)[2]);
        }
        assert!(backend.pick(&set, &addrs(3)).is_none());
        let empty = Backend::new(key(), &EndpointUpdate::default());
        assert!(empty.pick(&empty.endpoints(), &[]).is_none());
    }

    #[test]
    fn update_keeps_state_of_staying_endpoints() {
        let backend = Backend::new(key(), &update(addrs(2)));
        let before = backend.endpoints();
        let kept = before.endpoints()[1].clone();
        let _busy = InFlight::start(kept.clone());
        let mut next = addrs(3);
        next.remove(0);
        assert!(backend.update(&update(next.clone())));
        let after = backend.endpoints();
        assert!(Arc::ptr_eq(&after.endpoints()[0], &kept));
        assert_eq!(after.endpoints()[0].in_flight(), 1);
        assert!(!backend.update(&update(next)));
    }
}
