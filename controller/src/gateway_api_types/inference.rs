//! The Gateway API Inference Extension kinds this controller reads, typed
//! after `api/v1/inferencepool_types.go` (`inference.networking.k8s.io/v1`)
//! and `api/v1alpha2/inferenceobjective_types.go`
//! (`inference.networking.x-k8s.io/v1alpha2`), plus the few fields of a
//! Pod that pool membership needs. Unknown fields are ignored by serde;
//! what the compile acts on is checked there (see the `pool` module of `gateway_api::inference`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use serde::{Deserialize, Serialize};

/// The API group of InferencePool (GA, `v1`).
pub const POOL_GROUP: &str = "inference.networking.k8s.io";
/// The API group of InferenceObjective (`v1alpha2`).
pub const OBJECTIVE_GROUP: &str = "inference.networking.x-k8s.io";

/// `InferencePool`: a group of model-server Pods, targeted by an
/// HTTPRoute backendRef like a Service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InferencePool {
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec`.
    #[serde(default)]
    pub spec: InferencePoolSpec,
    /// `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<InferencePoolStatus>,
}

/// `InferencePoolSpec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec {
    /// `selector`: the member Pods, by label, in the pool's namespace.
    #[serde(default)]
    pub selector: PoolSelector,
    /// `targetPorts`: the ports of each member (one in v1).
    #[serde(default)]
    pub target_ports: Vec<PoolPort>,
    /// `endpointPickerRef`: the extension that picks an endpoint. This
    /// gateway does not call it; its own picker stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_picker_ref: Option<EndpointPickerRef>,
}

/// `LabelSelector` of the Inference Extension: `matchLabels` only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSelector {
    /// `matchLabels`: every pair must be on the Pod.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `Port`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolPort {
    /// `number`: 1 to 65535.
    #[serde(default)]
    pub number: i64,
}

/// `EndpointPickerRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPickerRef {
    /// `group` (default: the core group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `kind` (default `Service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `port`: the Service port (required for a Service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PoolPort>,
    /// `failureMode`: `FailOpen` or `FailClose` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
}

/// `InferencePoolStatus`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InferencePoolStatus {
    /// `parents`: one entry per Gateway the pool is used through (at most
    /// 32).
    #[serde(default)]
    pub parents: Vec<PoolParentStatus>,
}

/// `ParentStatus` of an InferencePool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolParentStatus {
    /// `conditions`: `Accepted`, `ResolvedRefs`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// `parentRef`: the Gateway.
    #[serde(default)]
    pub parent_ref: PoolParentReference,
}

/// `ParentReference` of an InferencePool status: a Gateway.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PoolParentReference {
    /// `group` (default `gateway.networking.k8s.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `kind` (default `Gateway`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `name`.
    #[serde(default)]
    pub name: String,
    /// `namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `InferenceObjective`: the priority of the requests that name it (in the
/// `x-gateway-inference-objective` header) on its pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InferenceObjective {
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec`.
    #[serde(default)]
    pub spec: InferenceObjectiveSpec,
}

/// `InferenceObjectiveSpec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceObjectiveSpec {
    /// `priority`: higher is served first; unset counts as 0; negative
    /// values are shed first under saturation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// `poolRef`: the InferencePool, in the objective's namespace.
    #[serde(default)]
    pub pool_ref: PoolObjectReference,
}

/// `PoolObjectReference`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolObjectReference {
    /// `group` (default `inference.networking.k8s.io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `kind` (default `InferencePool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `name`.
    #[serde(default)]
    pub name: String,
}

/// The fields of a core `v1` Pod that pool membership needs: its labels,
/// whether it is going away, its addresses and its `Ready` condition.
/// Everything else (the spec, container statuses, annotations) is dropped
/// when it is read, so a watched Pod costs a few hundred bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    /// `metadata` (name, namespace, labels, deletionTimestamp kept).
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodStatus>,
}

/// The fields of `PodStatus` read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodStatus {
    /// `podIP`.
    #[serde(default, rename = "podIP", skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    /// `podIPs`.
    #[serde(default, rename = "podIPs", skip_serializing_if = "Vec::is_empty")]
    pub pod_ips: Vec<PodIp>,
    /// `conditions` (only `type` and `status` are kept).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
}

/// `PodIP`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodIp {
    /// `ip`.
    #[serde(default)]
    pub ip: String,
}

/// A Pod condition's type and status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodCondition {
    /// `type`.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `status`: `True`, `False`, `Unknown`.
    #[serde(default)]
    pub status: String,
}

impl Pod {
    /// Drops what membership does not read (annotations, owners, managed
    /// fields, finalizers), keeping name, namespace, labels and
    /// `deletionTimestamp`.
    pub fn slim(mut self) -> Self {
        let meta = std::mem::take(&mut self.metadata);
        self.metadata = ObjectMeta {
            name: meta.name,
            namespace: meta.namespace,
            labels: meta.labels,
            deletion_timestamp: meta.deletion_timestamp,
            ..ObjectMeta::default()
        };
        self
    }
}

/// The most `matchLabels` pairs a pool may have (the spec's limit).
pub const MAX_SELECTOR_LABELS: usize = 64;

impl InferencePool {
    /// Whether the pool selects the Pod: every `matchLabels` pair is on it
    /// (an empty or oversized selector selects nothing: such a pool is
    /// refused).
    pub fn selects(&self, pod: &Pod) -> bool {
        let wanted = &self.spec.selector.match_labels;
        if wanted.is_empty() || wanted.len() > MAX_SELECTOR_LABELS {
            return false;
        }
        let Some(labels) = pod.metadata.labels.as_ref() else {
            return false;
        };
        wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// Implements [`kube::Resource`] for a kind with a `metadata` field.
macro_rules! resource {
    ($kind:ident, $group:expr, $version:literal, $plural:literal) => {
        impl kube::Resource for $kind {
            type DynamicType = ();
            type Scope = k8s_openapi::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                stringify!($kind).into()
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $group.into()
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

resource!(InferencePool, POOL_GROUP, "v1", "inferencepools");
resource!(
    InferenceObjective,
    OBJECTIVE_GROUP,
    "v1alpha2",
    "inferenceobjectives"
);
resource!(Pod, "", "v1", "pods");
