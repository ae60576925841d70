//! The store of watched objects that `compile()` reads: one map per kind,
//! plus the index from a Service to its EndpointSlices.
//!
//! Sources (the manifests folder, the Kubernetes API) feed it through
//! [`Snapshot::apply`] and [`Snapshot::delete`]; both report what changed so
//! that the reconciler can tell an endpoint-only change (fast path) from one
//! that needs a recompile.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};

use crate::endpoint_slice::Slice;
use crate::gateway_api_types::inference::{InferenceObjective, InferencePool, Pod};
use crate::gateway_api_types::{GRPCRoute, Gateway, GatewayClass, HTTPRoute, ReferenceGrant};
use crate::objects::{Kind, NsName, Object, ObjectKey};

pub use crate::endpoint_slice::SERVICE_NAME_LABEL;

/// What one applied or deleted object changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    /// Nothing: the object was already there, equal.
    Nothing,
    /// Only the status (or version) of an Ingress or a Gateway API object
    /// changed: routes stay, but what the status writers know is stale.
    Status,
    /// The EndpointSlices of these Services changed (endpoints only).
    Endpoints(Vec<NsName>),
    /// Something that routes depend on changed: recompile.
    Routes,
}

/// All watched objects, by kind and namespace/name.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    ingresses: BTreeMap<NsName, Arc<Ingress>>,
    ingress_classes: BTreeMap<String, Arc<IngressClass>>,
    services: BTreeMap<NsName, Arc<Service>>,
    /// EndpointSlices, as much of each as the gateway reads.
    endpoint_slices: BTreeMap<NsName, Arc<Slice>>,
    /// The slices labelled for each Service, by slice name (shared with
    /// `endpoint_slices`): a compile reads them without a lookup per slice.
    slices_by_service: BTreeMap<NsName, BTreeMap<String, Arc<Slice>>>,
    secrets: BTreeMap<NsName, Arc<Secret>>,
    config_maps: BTreeMap<NsName, Arc<ConfigMap>>,
    namespaces: BTreeMap<String, Arc<Namespace>>,
    gateway_classes: BTreeMap<String, Arc<GatewayClass>>,
    gateways: BTreeMap<NsName, Arc<Gateway>>,
    http_routes: BTreeMap<NsName, Arc<HTTPRoute>>,
    grpc_routes: BTreeMap<NsName, Arc<GRPCRoute>>,
    reference_grants: BTreeMap<NsName, Arc<ReferenceGrant>>,
    pods: BTreeMap<NsName, Arc<Pod>>,
    pods_per_namespace: BTreeMap<String, usize>,
    pods_over_cap: BTreeMap<String, usize>,
    inference_pools: BTreeMap<NsName, Arc<InferencePool>>,
    inference_objectives: BTreeMap<NsName, Arc<InferenceObjective>>,
}

/// The most Pods kept per namespace: Pods are read for InferencePool
/// membership only, in their slim form (a few hundred bytes each); those
/// beyond it are not kept (a diagnostic names the namespace) until a
/// relist finds room, so one namespace cannot grow the gateway's memory
/// without bound or crowd out another's Pods.
pub const MAX_PODS_PER_NAMESPACE: usize = 5000;

/// Inserts an object whose status the gateway writes: a change of status
/// alone is [`Changed::Status`], never a recompile.
fn put_with_status<K: Ord, V: PartialEq>(
    map: &mut BTreeMap<K, Arc<V>>,
    key: K,
    value: Arc<V>,
    same_routing: impl Fn(&V, &V) -> bool,
) -> Changed {
    match map.insert(key, value.clone()) {
        None => Changed::Routes,
        Some(old) if old == value => Changed::Nothing,
        Some(old) if same_routing(&old, &value) => Changed::Status,
        Some(_) => Changed::Routes,
    }
}

/// Whether two versions of an object's metadata route the same: labels,
/// annotations, age, identity and generation (bumped on spec changes).
fn same_meta(
    a: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    b: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> bool {
    a.annotations == b.annotations
        && a.labels == b.labels
        && a.creation_timestamp == b.creation_timestamp
        && a.uid == b.uid
        && a.generation == b.generation
}

/// Inserts into a map, reporting whether the value differs from the old one.
fn put<K: Ord, V: PartialEq>(map: &mut BTreeMap<K, Arc<V>>, key: K, value: Arc<V>) -> bool {
    match map.entry(key) {
        Entry::Occupied(mut entry) => {
            let changed = *entry.get() != value;
            if changed {
                entry.insert(value);
            }
            changed
        }
        Entry::Vacant(entry) => {
            entry.insert(value);
            true
        }
    }
}

fn routes_if(changed: bool) -> Changed {
    if changed {
        Changed::Routes
    } else {
        Changed::Nothing
    }
}

impl Snapshot {
    /// Adds or replaces an object.
    pub fn apply(&mut self, object: Object) -> Changed {
        let key = object.key();
        let id = key.id;
        match object {
            Object::Ingress(o) => match self.ingresses.insert(id, o.clone()) {
                None => Changed::Routes,
                Some(old) if old == o => Changed::Nothing,
                Some(old) if same_routing(&old, &o) => Changed::Status,
                Some(_) => Changed::Routes,
            },
            Object::IngressClass(o) => routes_if(put(&mut self.ingress_classes, id.name, o)),
            Object::Service(o) => routes_if(put(&mut self.services, id, o)),
            Object::Secret(o) => routes_if(put(&mut self.secrets, id, o)),
            Object::ConfigMap(o) => routes_if(put(&mut self.config_maps, id, o)),
            // Only their labels matter (`--watch-namespace-selector`, Gateway
            // API `allowedRoutes` selectors); their status is not ours.
            Object::Namespace(o) => match self.namespaces.insert(id.name, o.clone()) {
                Some(old) if old.metadata.labels == o.metadata.labels => Changed::Nothing,
                _ => Changed::Routes,
            },
            Object::GatewayClass(o) => {
                put_with_status(&mut self.gateway_classes, id.name, o, |a, b| {
                    a.spec == b.spec && same_meta(&a.metadata, &b.metadata)
                })
            }
            Object::Gateway(o) => put_with_status(&mut self.gateways, id, o, |a, b| {
                a.spec == b.spec && same_meta(&a.metadata, &b.metadata)
            }),
            Object::HTTPRoute(o) => put_with_status(&mut self.http_routes, id, o, |a, b| {
                a.spec == b.spec && same_meta(&a.metadata, &b.metadata)
            }),
            Object::GRPCRoute(o) => put_with_status(&mut self.grpc_routes, id, o, |a, b| {
                a.spec == b.spec && same_meta(&a.metadata, &b.metadata)
            }),
            Object::ReferenceGrant(o) => routes_if(put(&mut self.reference_grants, id, o)),
            Object::InferencePool(o) => {
                put_with_status(&mut self.inference_pools, id, o, |a, b| {
                    a.spec == b.spec && same_meta(&a.metadata, &b.metadata)
                })
            }
            Object::InferenceObjective(o) => routes_if(put(&mut self.inference_objectives, id, o)),
            Object::Pod(pod) => self.apply_pod(id, pod),
            Object::EndpointSlice(slice) => {
                let slice = Arc::new(Slice::of(&slice));
                let new_service = service_of(&id.namespace, &slice);
                let old = self.endpoint_slices.insert(id.clone(), slice.clone());
                if old.as_ref() == Some(&slice) {
                    return Changed::Nothing;
                }
                let old_service = old.and_then(|o| service_of(&id.namespace, &o));
                let new = new_service.as_ref().map(|service| (service, slice));
                self.reindex_slice(&id, old_service.as_ref(), new);
                Changed::Endpoints(old_service.into_iter().chain(new_service).collect())
            }
        }
    }

    /// Removes an object.
    pub fn delete(&mut self, key: &ObjectKey) -> Changed {
        let id = &key.id;
        match key.kind {
            Kind::Ingress => routes_if(self.ingresses.remove(id).is_some()),
            Kind::IngressClass => routes_if(self.ingress_classes.remove(&id.name).is_some()),
            Kind::Service => routes_if(self.services.remove(id).is_some()),
            Kind::Secret => routes_if(self.secrets.remove(id).is_some()),
            Kind::ConfigMap => routes_if(self.config_maps.remove(id).is_some()),
            Kind::Namespace => routes_if(self.namespaces.remove(&id.name).is_some()),
            Kind::GatewayClass => routes_if(self.gateway_classes.remove(&id.name).is_some()),
            Kind::Gateway => routes_if(self.gateways.remove(id).is_some()),
            Kind::HTTPRoute => routes_if(self.http_routes.remove(id).is_some()),
            Kind::GRPCRoute => routes_if(self.grpc_routes.remove(id).is_some()),
            Kind::ReferenceGrant => routes_if(self.reference_grants.remove(id).is_some()),
            Kind::InferencePool => routes_if(self.inference_pools.remove(id).is_some()),
            Kind::InferenceObjective => routes_if(self.inference_objectives.remove(id).is_some()),
            Kind::Pod => self.delete_pod(id),
            Kind::EndpointSlice => match self.endpoint_slices.remove(id) {
                None => Changed::Nothing,
                Some(old) => {
                    let old_service = service_of(&id.namespace, &old);
                    self.reindex_slice(id, old_service.as_ref(), None);
                    Changed::Endpoints(old_service.into_iter().collect())
                }
            },
        }
    }

    /// Keeps a Pod (within [`MAX_PODS_PER_NAMESPACE`]); the pools that
    /// select it, before or after, get new endpoints.
    fn apply_pod(&mut self, id: NsName, pod: Arc<Pod>) -> Changed {
        let old = match self.pods.get(&id) {
            Some(old) if *old == pod => return Changed::Nothing,
            Some(old) => Some(old.clone()),
            None => {
                let count = self
                    .pods_per_namespace
                    .entry(id.namespace.clone())
                    .or_default();
                if *count >= MAX_PODS_PER_NAMESPACE {
                    let over = self.pods_over_cap.entry(id.namespace).or_default();
                    *over += 1;
                    // The first one refused needs a compile for its diagnostic.
                    return routes_if(*over == 1);
                }
                *count += 1;
                None
            }
        };
        let pools = self.pools_selecting(&id.namespace, old.as_deref(), Some(&pod));
        self.pods.insert(id, pod);
        Changed::Endpoints(pools)
    }

    fn delete_pod(&mut self, id: &NsName) -> Changed {
        let Some(old) = self.pods.remove(id) else {
            if let Some(over) = self.pods_over_cap.get_mut(&id.namespace) {
                *over -= 1;
                if *over == 0 {
                    self.pods_over_cap.remove(&id.namespace);
                    return Changed::Routes;
                }
            }
            return Changed::Nothing;
        };
        if let Some(count) = self.pods_per_namespace.get_mut(&id.namespace) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.pods_per_namespace.remove(&id.namespace);
            }
        }
        Changed::Endpoints(self.pools_selecting(&id.namespace, Some(&old), None))
    }

    /// The pools of `namespace` selecting either version of a Pod.
    fn pools_selecting(
        &self,
        namespace: &str,
        old: Option<&Pod>,
        new: Option<&Pod>,
    ) -> Vec<NsName> {
        self.inference_pools_in(namespace)
            .filter(|(_, pool)| {
                old.is_some_and(|p| pool.selects(p)) || new.is_some_and(|p| pool.selects(p))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Moves a slice in the by-Service index from the Service it was
    /// labelled for (`old`) to the one it is now, with its new value.
    fn reindex_slice(
        &mut self,
        slice: &NsName,
        old: Option<&NsName>,
        new: Option<(&NsName, Arc<Slice>)>,
    ) {
        if let Some(old) = old
            && let Some(slices) = self.slices_by_service.get_mut(old)
        {
            slices.remove(&slice.name);
            if slices.is_empty() {
                self.slices_by_service.remove(old);
            }
        }
        if let Some((service, value)) = new {
            self.slices_by_service
                .entry(service.clone())
                .or_default()
                .insert(slice.name.clone(), value);
        }
    }

    /// Every Ingress, by namespace/name.
    pub fn ingresses(&self) -> impl Iterator<Item = (&NsName, &Arc<Ingress>)> {
        self.ingresses.iter()
    }

    /// An IngressClass by name.
    pub fn ingress_class(&self, name: &str) -> Option<&IngressClass> {
        self.ingress_classes.get(name).map(AsRef::as_ref)
    }

    /// Every Service, by namespace/name.
    pub fn services(&self) -> impl Iterator<Item = (&NsName, &Arc<Service>)> {
        self.services.iter()
    }

    /// A Service by namespace/name.
    pub fn service(&self, id: &NsName) -> Option<&Service> {
        self.services.get(id).map(AsRef::as_ref)
    }

    /// A Secret by namespace/name.
    pub fn secret(&self, id: &NsName) -> Option<&Secret> {
        self.secrets.get(id).map(AsRef::as_ref)
    }

    /// A ConfigMap by namespace/name.
    pub fn config_map(&self, id: &NsName) -> Option<&ConfigMap> {
        self.config_maps.get(id).map(AsRef::as_ref)
    }

    /// A Namespace by name.
    pub fn namespace(&self, name: &str) -> Option<&Namespace> {
        self.namespaces.get(name).map(AsRef::as_ref)
    }

    /// The EndpointSlices labelled for a Service.
    pub fn endpoint_slices_of(&self, service: &NsName) -> impl Iterator<Item = &Slice> {
        self.slices_by_service
            .get(service)
            .into_iter()
            .flat_map(BTreeMap::values)
            .map(AsRef::as_ref)
    }

    /// Every InferencePool, by namespace/name.
    pub fn inference_pools(&self) -> impl Iterator<Item = (&NsName, &Arc<InferencePool>)> {
        self.inference_pools.iter()
    }

    /// An InferencePool by namespace/name.
    pub fn inference_pool(&self, id: &NsName) -> Option<&InferencePool> {
        self.inference_pools.get(id).map(AsRef::as_ref)
    }

    /// The InferencePools of one namespace.
    pub fn inference_pools_in<'a>(
        &'a self,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a NsName, &'a Arc<InferencePool>)> {
        in_namespace(&self.inference_pools, namespace)
    }

    /// The InferenceObjectives of one namespace.
    pub fn inference_objectives_in<'a>(
        &'a self,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a NsName, &'a Arc<InferenceObjective>)> {
        in_namespace(&self.inference_objectives, namespace)
    }

    /// The Pods of one namespace (slim).
    pub fn pods_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a Pod> {
        in_namespace(&self.pods, namespace).map(|(_, pod)| pod.as_ref())
    }

    /// Namespaces with Pods beyond [`MAX_PODS_PER_NAMESPACE`], and how many.
    pub fn pods_over_cap(&self) -> impl Iterator<Item = (&String, &usize)> {
        self.pods_over_cap.iter()
    }

    /// Number of objects of each kind, for logs.
    pub fn counts(&self) -> [(Kind, usize); 15] {
        [
            (Kind::Ingress, self.ingresses.len()),
            (Kind::IngressClass, self.ingress_classes.len()),
            (Kind::Service, self.services.len()),
            (Kind::EndpointSlice, self.endpoint_slices.len()),
            (Kind::Secret, self.secrets.len()),
            (Kind::ConfigMap, self.config_maps.len()),
            (Kind::Namespace, self.namespaces.len()),
            (Kind::GatewayClass, self.gateway_classes.len()),
            (Kind::Gateway, self.gateways.len()),
            (Kind::HTTPRoute, self.http_routes.len()),
            (Kind::GRPCRoute, self.grpc_routes.len()),
            (Kind::ReferenceGrant, self.reference_grants.len()),
            (Kind::Pod, self.pods.len()),
            (Kind::InferencePool, self.inference_pools.len()),
            (Kind::InferenceObjective, self.inference_objectives.len()),
        ]
    }

    /// Every GatewayClass, by name.
    pub fn gateway_classes(&self) -> impl Iterator<Item = (&String, &Arc<GatewayClass>)> {
        self.gateway_classes.iter()
    }

    /// Every Gateway, by namespace/name.
    pub fn gateways(&self) -> impl Iterator<Item = (&NsName, &Arc<Gateway>)> {
        self.gateways.iter()
    }

    /// Every HTTPRoute, by namespace/name.
    pub fn http_routes(&self) -> impl Iterator<Item = (&NsName, &Arc<HTTPRoute>)> {
        self.http_routes.iter()
    }

    /// Every GRPCRoute, by namespace/name.
    pub fn grpc_routes(&self) -> impl Iterator<Item = (&NsName, &Arc<GRPCRoute>)> {
        self.grpc_routes.iter()
    }

    /// Every ReferenceGrant, by namespace/name.
    pub fn reference_grants(&self) -> impl Iterator<Item = (&NsName, &Arc<ReferenceGrant>)> {
        self.reference_grants.iter()
    }
}

/// Whether two versions of an Ingress route the same: everything but the
/// status and server-side bookkeeping is equal. The gateway's own status
/// writes must not cause recompiles.
fn same_routing(a: &Ingress, b: &Ingress) -> bool {
    a.spec == b.spec
        && a.metadata.annotations == b.metadata.annotations
        && a.metadata.labels == b.metadata.labels
        && a.metadata.creation_timestamp == b.metadata.creation_timestamp
        && a.metadata.uid == b.metadata.uid
}

/// The entries of a map by namespace/name that are in `namespace`.
fn in_namespace<'a, V>(
    map: &'a BTreeMap<NsName, V>,
    namespace: &'a str,
) -> impl Iterator<Item = (&'a NsName, &'a V)> {
    map.range(NsName::new(namespace, "")..)
        .take_while(move |(id, _)| id.namespace == namespace)
}

fn service_of(namespace: &str, slice: &Slice) -> Option<NsName> {
    Some(NsName::new(namespace, slice.service.as_deref()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(name: &str, service: &str, ip: &str) -> Object {
        Object::from_value(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "ns",
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip]}],
        }))
        .unwrap()
        .unwrap()
    }

    #[test]
    fn slice_changes_are_endpoint_only_and_indexed() {
        let mut s = Snapshot::default();
        let svc = NsName::new("ns", "a");
        assert_eq!(
            s.apply(slice("a-1", "a", "10.0.0.1")),
            Changed::Endpoints(vec![svc.clone()])
        );
        assert_eq!(s.apply(slice("a-1", "a", "10.0.0.1")), Changed::Nothing);
        assert_eq!(s.endpoint_slices_of(&svc).count(), 1);
        // Relabelled to another Service: both are affected.
        assert_eq!(
            s.apply(slice("a-1", "b", "10.0.0.1")),
            Changed::Endpoints(vec![svc.clone(), NsName::new("ns", "b")])
        );
        assert_eq!(s.endpoint_slices_of(&svc).count(), 0);
        let key = slice("a-1", "b", "x").key();
        assert_eq!(
            s.delete(&key),
            Changed::Endpoints(vec![NsName::new("ns", "b")])
        );
        assert_eq!(s.delete(&key), Changed::Nothing);
    }

    #[test]
    fn ingress_status_changes_do_not_need_a_recompile() {
        let mut s = Snapshot::default();
        let ingress = |ip: Option<&str>, path: &str| {
            let mut value = json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "i", "namespace": "ns"},
                "spec": {"rules": [{"http": {"paths": [{"path": path, "pathType": "Prefix",
                    "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]},
            });
            if let Some(ip) = ip {
                value["status"] = json!({"loadBalancer": {"ingress": [{"ip": ip}]}});
            }
            Object::from_value(value).unwrap().unwrap()
        };
        assert_eq!(s.apply(ingress(None, "/")), Changed::Routes);
        assert_eq!(s.apply(ingress(Some("10.0.0.1"), "/")), Changed::Status);
        assert_eq!(s.apply(ingress(Some("10.0.0.1"), "/")), Changed::Nothing);
        assert_eq!(s.apply(ingress(Some("10.0.0.1"), "/x")), Changed::Routes);
    }

    #[test]
    fn other_kinds_need_a_recompile_only_when_different() {
        let mut s = Snapshot::default();
        let service = || {
            Object::from_value(json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "a", "namespace": "ns"},
            }))
            .unwrap()
            .unwrap()
        };
        assert_eq!(s.apply(service()), Changed::Routes);
        assert_eq!(s.apply(service()), Changed::Nothing);
        assert_eq!(s.delete(&service().key()), Changed::Routes);
    }
}
