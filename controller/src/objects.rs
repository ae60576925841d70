//! The Kubernetes objects the controller reads, as typed values, and how an
//! untyped document (a YAML or JSON object) becomes one.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::gateway_api_types::inference::{InferenceObjective, InferencePool, Pod};
use crate::gateway_api_types::{GRPCRoute, Gateway, GatewayClass, HTTPRoute, ReferenceGrant};

/// The kinds of object the controller watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// networking.k8s.io/v1 Ingress.
    Ingress,
    /// networking.k8s.io/v1 IngressClass (cluster-scoped).
    IngressClass,
    /// v1 Service.
    Service,
    /// discovery.k8s.io/v1 EndpointSlice.
    EndpointSlice,
    /// v1 Secret.
    Secret,
    /// v1 ConfigMap.
    ConfigMap,
    /// v1 Namespace (cluster-scoped): its labels, for
    /// `--watch-namespace-selector` and Gateway API `allowedRoutes`
    /// selectors.
    Namespace,
    /// gateway.networking.k8s.io GatewayClass (cluster-scoped).
    GatewayClass,
    /// gateway.networking.k8s.io Gateway.
    Gateway,
    /// gateway.networking.k8s.io HTTPRoute.
    HTTPRoute,
    /// gateway.networking.k8s.io GRPCRoute.
    GRPCRoute,
    /// gateway.networking.k8s.io ReferenceGrant.
    ReferenceGrant,
    /// v1 Pod (the fields InferencePool membership needs).
    Pod,
    /// inference.networking.k8s.io InferencePool.
    InferencePool,
    /// inference.networking.x-k8s.io InferenceObjective.
    InferenceObjective,
}

impl Kind {
    /// The kind for an `apiVersion` and `kind` pair, if it is one we read.
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        match (api_version, kind) {
            ("networking.k8s.io/v1", "Ingress") => Some(Self::Ingress),
            ("networking.k8s.io/v1", "IngressClass") => Some(Self::IngressClass),
            ("v1", "Service") => Some(Self::Service),
            ("discovery.k8s.io/v1", "EndpointSlice") => Some(Self::EndpointSlice),
            ("v1", "Secret") => Some(Self::Secret),
            ("v1", "ConfigMap") => Some(Self::ConfigMap),
            ("v1", "Namespace") => Some(Self::Namespace),
            (
                "gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1",
                "GatewayClass",
            ) => Some(Self::GatewayClass),
            ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1", "Gateway") => {
                Some(Self::Gateway)
            }
            ("gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1", "HTTPRoute") => {
                Some(Self::HTTPRoute)
            }
            ("gateway.networking.k8s.io/v1", "GRPCRoute") => Some(Self::GRPCRoute),
            (
                "gateway.networking.k8s.io/v1" | "gateway.networking.k8s.io/v1beta1",
                "ReferenceGrant",
            ) => Some(Self::ReferenceGrant),
            ("v1", "Pod") => Some(Self::Pod),
            ("inference.networking.k8s.io/v1", "InferencePool") => Some(Self::InferencePool),
            ("inference.networking.x-k8s.io/v1alpha2", "InferenceObjective") => {
                Some(Self::InferenceObjective)
            }
            _ => None,
        }
    }

    /// Whether the kind belongs to the Gateway API (read only when it is on).
    pub fn is_gateway_api(self) -> bool {
        matches!(
            self,
            Self::Namespace
                | Self::GatewayClass
                | Self::Gateway
                | Self::HTTPRoute
                | Self::GRPCRoute
                | Self::ReferenceGrant
                | Self::Pod
                | Self::InferencePool
                | Self::InferenceObjective
        )
    }

    /// The `kind` field's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingress => "Ingress",
            Self::IngressClass => "IngressClass",
            Self::Service => "Service",
            Self::EndpointSlice => "EndpointSlice",
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
            Self::Namespace => "Namespace",
            Self::GatewayClass => "GatewayClass",
            Self::Gateway => "Gateway",
            Self::HTTPRoute => "HTTPRoute",
            Self::GRPCRoute => "GRPCRoute",
            Self::ReferenceGrant => "ReferenceGrant",
            Self::Pod => "Pod",
            Self::InferencePool => "InferencePool",
            Self::InferenceObjective => "InferenceObjective",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(
            self,
            Self::IngressClass | Self::Namespace | Self::GatewayClass
        )
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A namespace and name. Cluster-scoped objects have an empty namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NsName {
    /// The namespace, or `""` for cluster-scoped objects.
    pub namespace: String,
    /// The name.
    pub name: String,
}

impl NsName {
    /// A namespaced name.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for NsName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// Identifies one object: its kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The object's kind.
    pub kind: Kind,
    /// Its namespace and name.
    pub id: NsName,
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.id)
    }
}

/// One watched object, shared cheaply between the store and snapshots.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// An Ingress.
    Ingress(Arc<Ingress>),
    /// An IngressClass.
    IngressClass(Arc<IngressClass>),
    /// A Service.
    Service(Arc<Service>),
    /// An EndpointSlice.
    EndpointSlice(Arc<EndpointSlice>),
    /// A Secret.
    Secret(Arc<Secret>),
    /// A ConfigMap.
    ConfigMap(Arc<ConfigMap>),
    /// A Namespace.
    Namespace(Arc<Namespace>),
    /// A GatewayClass.
    GatewayClass(Arc<GatewayClass>),
    /// A Gateway.
    Gateway(Arc<Gateway>),
    /// An HTTPRoute.
    HTTPRoute(Arc<HTTPRoute>),
    /// A GRPCRoute.
    GRPCRoute(Arc<GRPCRoute>),
    /// A ReferenceGrant.
    ReferenceGrant(Arc<ReferenceGrant>),
    /// A Pod (its slim form: see [`Pod::slim`]).
    Pod(Arc<Pod>),
    /// An InferencePool.
    InferencePool(Arc<InferencePool>),
    /// An InferenceObjective.
    InferenceObjective(Arc<InferenceObjective>),
}

/// Applies `$body` to the typed value inside any [`Object`], bound to `$o`.
macro_rules! each_kind {
    ($object:expr, $o:ident => $body:expr) => {
        match $object {
            Object::Ingress($o) => $body,
            Object::IngressClass($o) => $body,
            Object::Service($o) => $body,
            Object::EndpointSlice($o) => $body,
            Object::Secret($o) => $body,
            Object::ConfigMap($o) => $body,
            Object::Namespace($o) => $body,
            Object::GatewayClass($o) => $body,
            Object::Gateway($o) => $body,
            Object::HTTPRoute($o) => $body,
            Object::GRPCRoute($o) => $body,
            Object::ReferenceGrant($o) => $body,
            Object::Pod($o) => $body,
            Object::InferencePool($o) => $body,
            Object::InferenceObjective($o) => $body,
        }
    };
}

impl Object {
    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        each_kind!(self, o => &o.metadata)
    }

    /// Whether both are the very same shared value (a pointer comparison;
    /// `==` compares contents).
    pub fn ptr_eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.metadata(), other.metadata())
    }

    /// The object's metadata, for filling defaults the API server would set.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each_kind!(self, o => &mut Arc::make_mut(o).metadata)
    }

    /// The object's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Ingress(_) => Kind::Ingress,
            Self::IngressClass(_) => Kind::IngressClass,
            Self::Service(_) => Kind::Service,
            Self::EndpointSlice(_) => Kind::EndpointSlice,
            Self::Secret(_) => Kind::Secret,
            Self::ConfigMap(_) => Kind::ConfigMap,
            Self::Namespace(_) => Kind::Namespace,
            Self::GatewayClass(_) => Kind::GatewayClass,
            Self::Gateway(_) => Kind::Gateway,
            Self::HTTPRoute(_) => Kind::HTTPRoute,
            Self::GRPCRoute(_) => Kind::GRPCRoute,
            Self::ReferenceGrant(_) => Kind::ReferenceGrant,
            Self::Pod(_) => Kind::Pod,
            Self::InferencePool(_) => Kind::InferencePool,
            Self::InferenceObjective(_) => Kind::InferenceObjective,
        }
    }

    /// The object's key. Objects are only built through [`Object::from_value`],
    /// which guarantees a name (and a namespace for namespaced kinds).
    pub fn key(&self) -> ObjectKey {
        let meta = self.metadata();
        ObjectKey {
            kind: self.kind(),
            id: NsName::new(
                meta.namespace.clone().unwrap_or_default(),
                meta.name.clone().unwrap_or_default(),
            ),
        }
    }

    /// Parses one document. `Ok(None)` for kinds the controller does not
    /// read; an error names the object as far as it can be named.
    /// A namespaced object without a namespace goes to `default`, as with
    /// `kubectl apply`.
    pub fn from_value(value: Value) -> Result<Option<Self>, ObjectError> {
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind_name = value.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(kind) = Kind::from_type(api_version, kind_name) else {
            return Ok(None);
        };
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let Some(name) = name else {
            return Err(ObjectError {
                kind,
                name: None,
                message: "metadata.name is missing".to_owned(),
            });
        };
        let fail = |message: String| ObjectError {
            kind,
            name: Some(name.clone()),
            message,
        };
        let mut object = match kind {
            Kind::Ingress => Self::Ingress(typed(value).map_err(fail)?),
            Kind::IngressClass => Self::IngressClass(typed(value).map_err(fail)?),
            Kind::Service => Self::Service(typed(value).map_err(fail)?),
            Kind::EndpointSlice => Self::EndpointSlice(typed(value).map_err(fail)?),
            Kind::Secret => Self::Secret(typed(value).map_err(fail)?),
            Kind::ConfigMap => Self::ConfigMap(typed(value).map_err(fail)?),
            Kind::Namespace => Self::Namespace(typed(value).map_err(fail)?),
            Kind::GatewayClass => Self::GatewayClass(typed(value).map_err(fail)?),
            Kind::Gateway => Self::Gateway(typed(value).map_err(fail)?),
            Kind::HTTPRoute => Self::HTTPRoute(typed(value).map_err(fail)?),
            Kind::GRPCRoute => Self::GRPCRoute(typed(value).map_err(fail)?),
            Kind::ReferenceGrant => Self::ReferenceGrant(typed(value).map_err(fail)?),
            Kind::Pod => {
                let pod: Arc<Pod> = typed(value).map_err(fail)?;
                Self::Pod(Arc::new(Arc::unwrap_or_clone(pod).slim()))
            }
            Kind::InferencePool => Self::InferencePool(typed(value).map_err(fail)?),
            Kind::InferenceObjective => Self::InferenceObjective(typed(value).map_err(fail)?),
        };
        let meta = object.metadata_mut();
        if kind.is_namespaced() {
            if meta.namespace.as_deref().is_none_or(str::is_empty) {
                meta.namespace = Some("default".to_owned());
            }
        } else {
            meta.namespace = None;
        }
        // Server-side bookkeeping the controller never reads; dropping it
        // keeps memory down for large Secrets and EndpointSlices.
        meta.managed_fields = None;
        Ok(Some(object))
    }
}

/// Objects from the Kubernetes API: already validated and namespaced by the
/// server; only the server-side bookkeeping the controller never reads is
/// dropped, and the lists they were read into are shrunk (read from bytes,
/// a list has no length in advance and grows to room for four: an
/// Ingress's one path kept room for three more), to keep memory down.
macro_rules! from_api {
    ($($kind:ident),*) => {$(
        impl From<$kind> for Object {
            fn from(mut object: $kind) -> Self {
                object.metadata.managed_fields = None;
                shrink_meta(&mut object.metadata);
                let mut object = Self::$kind(Arc::new(object));
                object.shrink_lists();
                object
            }
        }
    )*};
}

/// Gives back the spare room of an object's metadata lists.
fn shrink_meta(meta: &mut ObjectMeta) {
    if let Some(owners) = &mut meta.owner_references {
        owners.shrink_to_fit();
    }
    if let Some(finalizers) = &mut meta.finalizers {
        finalizers.shrink_to_fit();
    }
}

impl Object {
    /// Gives back the spare room of the lists of the kinds there are many
    /// of (Ingresses and Services; EndpointSlices are kept in their own
    /// form, see [`crate::endpoint_slice`]). Only while the object is not
    /// shared yet.
    fn shrink_lists(&mut self) {
        match self {
            Self::Ingress(ingress) => {
                let Some(spec) = Arc::get_mut(ingress).and_then(|i| i.spec.as_mut()) else {
                    return;
                };
                for rule in spec.rules.iter_mut().flatten() {
                    if let Some(http) = &mut rule.http {
                        http.paths.shrink_to_fit();
                    }
                }
                if let Some(rules) = &mut spec.rules {
                    rules.shrink_to_fit();
                }
                for tls in spec.tls.iter_mut().flatten() {
                    if let Some(hosts) = &mut tls.hosts {
                        hosts.shrink_to_fit();
                    }
                }
                if let Some(tls) = &mut spec.tls {
                    tls.shrink_to_fit();
                }
            }
            Self::Service(service) => {
                let Some(spec) = Arc::get_mut(service).and_then(|s| s.spec.as_mut()) else {
                    return;
                };
                for list in [
                    &mut spec.cluster_ips,
                    &mut spec.external_ips,
                    &mut spec.ip_families,
                ]
                .into_iter()
                .flatten()
                {
                    list.shrink_to_fit();
                }
                if let Some(ports) = &mut spec.ports {
                    ports.shrink_to_fit();
                }
            }
            _ => {}
        }
    }
}

from_api!(
    Ingress,
    IngressClass,
    Service,
    EndpointSlice,
    Secret,
    ConfigMap,
    Namespace,
    GatewayClass,
    Gateway,
    HTTPRoute,
    GRPCRoute,
    ReferenceGrant,
    InferencePool,
    InferenceObjective
);

/// A Pod from the API keeps only what membership reads.
impl From<Pod> for Object {
    fn from(pod: Pod) -> Self {
        Self::Pod(Arc::new(pod.slim()))
    }
}

/// Deserialises a typed object, naming the failing field's path.
fn typed<T: serde::de::DeserializeOwned>(value: Value) -> Result<Arc<T>, String> {
    serde_path_to_error::deserialize(value)
        .map(Arc::new)
        .map_err(|e| match e.path().to_string().as_str() {
            "." => e.inner().to_string(),
            path => format!("{path}: {}", e.inner()),
        })
}

/// A document that looks like a watched kind but does not parse as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {}: {message}", name.as_deref().unwrap_or("<unnamed>"))]
pub struct ObjectError {
    /// The kind the document claims to be.
    pub kind: Kind,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// What is wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_watched_kinds_and_defaults_namespace() {
        let value = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "svc", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"ports": [{"port": 80}]}
        });
        let object = Object::from_value(value).unwrap().unwrap();
        assert_eq!(object.key().to_string(), "Service default/svc");
        assert!(object.metadata().managed_fields.is_none());
    }

    /// Read from bytes (as the API client reads them), a one-item list has
    /// room for four; what the watcher keeps has none to spare.
    #[test]
    fn api_objects_keep_no_spare_list_room() {
        let ingress: Ingress = serde_json::from_slice(
            br#"{"metadata": {"name": "i", "namespace": "ns", "finalizers": ["f"]},
                 "spec": {"rules": [{"host": "a", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}],
                   "tls": [{"hosts": ["a"]}]}}"#,
        )
        .unwrap();
        let rules = ingress
            .spec
            .as_ref()
            .and_then(|s| s.rules.as_ref())
            .unwrap();
        let paths = &rules[0].http.as_ref().unwrap().paths;
        assert!(paths.capacity() > paths.len(), "serde gives spare room");
        let Object::Ingress(kept) = Object::from(ingress) else {
            unreachable!()
        };
        let spec = kept.spec.as_ref().unwrap();
        let rules = spec.rules.as_ref().unwrap();
        assert_eq!(rules.capacity(), 1);
        assert_eq!(rules[0].http.as_ref().unwrap().paths.capacity(), 1);
        let tls = spec.tls.as_ref().unwrap();
        assert_eq!(
            (tls.capacity(), tls[0].hosts.as_ref().unwrap().capacity()),
            (1, 1)
        );
        assert_eq!(kept.metadata.finalizers.as_ref().unwrap().capacity(), 1);
        let service: Service = serde_json::from_slice(
            br#"{"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}], "clusterIPs": ["10.0.0.1"]}}"#,
        )
        .unwrap();
        let Object::Service(kept) = Object::from(service) else {
            unreachable!()
        };
        let spec = kept.spec.as_ref().unwrap();
        assert_eq!(spec.ports.as_ref().unwrap().capacity(), 1);
        assert_eq!(spec.cluster_ips.as_ref().unwrap().capacity(), 1);
    }

    #[test]
    fn ignores_other_kinds() {
        let value =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}});
        assert_eq!(Object::from_value(value), Ok(None));
    }

    #[test]
    fn errors_name_the_object_and_field() {
        let value = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "bad", "namespace": "ns"},
            "spec": {"rules": [{"http": {"paths": [{"path": 7, "backend": {}}]}}]}
        });
        let error = Object::from_value(value).unwrap_err();
        assert_eq!(error.name.as_deref(), Some("bad"));
        assert!(
            error.message.contains("spec.rules[0].http.paths[0].path"),
            "{error}"
        );

        let unnamed = json!({"apiVersion": "v1", "kind": "Service", "metadata": {}});
        assert!(Object::from_value(unnamed).unwrap_err().name.is_none());
    }

    #[test]
    fn cluster_scoped_objects_have_no_namespace() {
        let value = json!({
            "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "nginx", "namespace": "ignored"},
            "spec": {"controller": "k8s.io/ingress-nginx"}
        });
        let object = Object::from_value(value).unwrap().unwrap();
        assert_eq!(object.key().id, NsName::new("", "nginx"));
    }
}
