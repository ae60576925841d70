//! Which Ingress decides a backend's balancing and admission settings.
//!
//! In ingress-nginx `load-balance` is a property of the upstream (one
//! Service port), which every Ingress routing there shares. Here the
//! oldest such Ingress decides (Ingresses are compiled oldest first, so
//! the first claim wins), over the ConfigMap defaults; a newer Ingress
//! asking for something else gets a diagnostic naming the winner. The
//! affinity (`affinity: cookie`, `upstream-hash-by`) is the first one set,
//! as ingress-nginx fills an upstream's affinity from the first Ingress
//! that has one.

use std::sync::Arc;

use foldhash::HashMap;
use gateway::balance::{Affinity, BackendPolicy};
use gateway::table::BackendId;
use gateway::{RouteAction, RouteSource};

use super::{Compiler, Current};
use crate::diagnostics::Reason;

/// The backends claimed so far in one compile.
#[derive(Debug)]
pub(super) struct Claims {
    /// The policy of backends no Ingress asks anything of.
    defaults: Arc<BackendPolicy>,
    /// Each claimed backend's Ingress and policy.
    owners: HashMap<BackendId, (RouteSource, Arc<BackendPolicy>)>,
}

impl Claims {
    pub(super) fn new(defaults: &BackendPolicy) -> Self {
        Self {
            defaults: Arc::new(defaults.clone()),
            owners: HashMap::default(),
        }
    }

    /// The policy of unclaimed backends.
    pub(super) fn defaults(&self) -> Arc<BackendPolicy> {
        self.defaults.clone()
    }
}

impl Compiler<'_> {
    /// Gives the backend of `action` the current Ingress's settings, unless
    /// an older Ingress did already.
    pub(super) fn claim_backend(&mut self, current: &Current<'_>, action: &RouteAction) {
        let RouteAction::Proxy(id) = action else {
            return;
        };
        let traffic = &current.annotations.traffic;
        match self.claims.owners.get(id).cloned() {
            None => {
                let policy = if traffic.is_empty() {
                    self.claims.defaults.clone()
                } else {
                    Arc::new(traffic.apply(&self.claims.defaults))
                };
                self.builder.set_backend_policy(*id, policy.clone());
                self.claims
                    .owners
                    .insert(*id, (current.source.clone(), policy));
            }
            Some((owner, mut policy)) if owner != current.source && !traffic.is_empty() => {
                // ingress-nginx gives a shared upstream the affinity of the
                // first Ingress that sets one, whatever the older ones say.
                if policy.affinity == Affinity::None
                    && let Some(affinity) = traffic.affinity()
                {
                    policy = Arc::new(BackendPolicy {
                        affinity: affinity.clone(),
                        ..(*policy).clone()
                    });
                    self.builder.set_backend_policy(*id, policy.clone());
                    if let Some(claim) = self.claims.owners.get_mut(id) {
                        claim.1 = policy.clone();
                    }
                }
                let only_affinity_kept =
                    traffic.only_affinity() && traffic.affinity() == Some(&policy.affinity);
                if only_affinity_kept || traffic.apply(&self.claims.defaults) == *policy {
                    return;
                }
                let backend = self.builder.backend_name(*id).unwrap_or_default();
                let message = format!(
                    "backend {backend} is also routed by Ingress {}/{}, which is older and \
                     decides its balancing ({}); this Ingress's load-balance, affinity, queue and hold \
                     settings are ignored for it",
                    owner.namespace, owner.name, policy.algorithm
                );
                self.diagnose(current, Reason::BackendSettingsConflict, message);
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use gateway::Algorithm;
    use serde_json::{Value, json};

    use crate::compile::{CompileOptions, Compiled, compile};
    use crate::diagnostics::Reason;
    use crate::objects::Object;
    use crate::snapshot::Snapshot;

    fn compiled(objects: &[Value], options: &CompileOptions) -> Compiled {
        let mut snapshot = Snapshot::default();
        let class = json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
        for o in std::iter::once(&class).chain(objects) {
            snapshot.apply(Object::from_value(o.clone()).unwrap().unwrap());
        }
        compile(&snapshot, options)
    }

    fn service(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": name, "namespace": "ns"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    }

    fn ingress(
        name: &str,
        created: &str,
        path: &str,
        service: &str,
        balance: Option<&str>,
    ) -> Value {
        let mut ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created},
            "spec": {"ingressClassName": "nginx", "rules": [{"http": {"paths": [
                {"path": path, "pathType": "Prefix",
                 "backend": {"service": {"name": service, "port": {"number": 80}}}}]}}]}});
        if let Some(balance) = balance {
            ingress["metadata"]["annotations"] = json!({"edge-gateway.io/load-balance": balance});
        }
        ingress
    }

    fn algorithm(c: &Compiled, service: &str) -> Algorithm {
        c.table
            .backends()
            .iter()
            .find(|b| &*b.key().service == service)
            .map(|b| b.policy().algorithm)
            .unwrap()
    }

    #[test]
    fn the_oldest_ingress_decides_a_shared_backend() {
        let objects = [
            service("model"),
            ingress("new", "2025-01-02T00:00:00Z", "/b", "model", Some("p2c")),
            ingress(
                "old",
                "2025-01-01T00:00:00Z",
                "/a",
                "model",
                Some("peak_ewma"),
            ),
        ];
        let c = compiled(&objects, &CompileOptions::default());
        assert_eq!(algorithm(&c, "model"), Algorithm::PeakEwma);
        let conflicts: Vec<_> = c
            .diagnostics
            .iter()
            .filter(|d| d.reason == Reason::BackendSettingsConflict)
            .collect();
        assert_eq!(conflicts.len(), 1, "{:?}", c.diagnostics);
        assert_eq!(conflicts[0].object.id.name, "new");
        assert!(
            conflicts[0].message.contains("ns/old"),
            "{}",
            conflicts[0].message
        );
    }

    #[test]
    fn an_ingress_without_settings_neither_decides_nor_complains() {
        let objects = [
            service("model"),
            ingress("old", "2025-01-01T00:00:00Z", "/a", "model", None),
            ingress("new", "2025-01-02T00:00:00Z", "/b", "model", Some("p2c")),
            ingress("newest", "2025-01-03T00:00:00Z", "/c", "model", None),
        ];
        let options = CompileOptions {
            traffic: gateway::BackendPolicy {
                algorithm: Algorithm::LeastRequest,
                ..Default::default()
            },
            ..CompileOptions::default()
        };
        let c = compiled(&objects, &options);
        // The oldest asked nothing: the ConfigMap default holds, and the
        // newer Ingress's wish is reported.
        assert_eq!(algorithm(&c, "model"), Algorithm::LeastRequest);
        let conflicts: Vec<_> = c
            .diagnostics
            .iter()
            .filter(|d| d.reason == Reason::BackendSettingsConflict)
            .map(|d| d.object.id.name.as_str())
            .collect();
        assert_eq!(conflicts, ["new"]);
    }

    fn with_annotations(mut ingress: Value, annotations: Value) -> Value {
        ingress["metadata"]["annotations"] = annotations;
        ingress
    }

    fn affinity(c: &Compiled, service: &str) -> gateway::balance::Affinity {
        c.table
            .backends()
            .iter()
            .find(|b| &*b.key().service == service)
            .map(|b| b.policy().affinity.clone())
            .unwrap()
    }

    fn conflicts(c: &Compiled) -> Vec<&str> {
        c.diagnostics
            .iter()
            .filter(|d| d.reason == Reason::BackendSettingsConflict)
            .map(|d| d.object.id.name.as_str())
            .collect()
    }

    #[test]
    fn the_first_ingress_with_affinity_gives_it_to_a_shared_backend() {
        let cookie = json!({"nginx.ingress.kubernetes.io/affinity": "cookie"});
        let hash = json!({"nginx.ingress.kubernetes.io/upstream-hash-by": "$host"});
        let objects = [
            service("model"),
            // The oldest asks nothing, the next one a cookie, the newest a hash.
            ingress("api", "2025-01-01T00:00:00Z", "/api", "model", Some("ewma")),
            with_annotations(
                ingress("ui", "2025-01-02T00:00:00Z", "/ui", "model", None),
                cookie,
            ),
            with_annotations(
                ingress("batch", "2025-01-03T00:00:00Z", "/batch", "model", None),
                hash,
            ),
        ];
        let c = compiled(&objects, &CompileOptions::default());
        assert!(matches!(
            affinity(&c, "model"),
            gateway::balance::Affinity::Cookie(_)
        ));
        assert_eq!(algorithm(&c, "model"), Algorithm::Ewma);
        // The cookie applied; the later hash did not, and is reported.
        assert_eq!(conflicts(&c), ["batch"]);
    }

    #[test]
    fn separate_backends_balance_separately() {
        let objects = [
            service("a"),
            service("b"),
            ingress(
                "one",
                "2025-01-01T00:00:00Z",
                "/a",
                "a",
                Some("least_request"),
            ),
            ingress("two", "2025-01-02T00:00:00Z", "/b", "b", Some("ewma")),
        ];
        let c = compiled(&objects, &CompileOptions::default());
        assert_eq!(algorithm(&c, "a"), Algorithm::LeastRequest);
        assert_eq!(algorithm(&c, "b"), Algorithm::Ewma);
        assert!(
            c.diagnostics
                .iter()
                .all(|d| d.reason != Reason::BackendSettingsConflict)
        );
    }
}
