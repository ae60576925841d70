//! `ReferenceGrant` (`referencegrant_types.go`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// `ReferenceGrant`: which kinds in which namespaces may refer to objects
/// of its own namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceGrant {
    /// `metadata`.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// `spec`.
    pub spec: ReferenceGrantSpec,
}

/// `ReferenceGrantSpec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceGrantSpec {
    /// `from`: trusted referrers (ORed).
    #[serde(default)]
    pub from: Vec<ReferenceGrantFrom>,
    /// `to`: what they may refer to (ORed).
    #[serde(default)]
    pub to: Vec<ReferenceGrantTo>,
}

/// `ReferenceGrantFrom`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceGrantFrom {
    /// `group` (`""` is the core group).
    #[serde(default)]
    pub group: String,
    /// `kind`.
    pub kind: String,
    /// `namespace`.
    pub namespace: String,
}

/// `ReferenceGrantTo`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceGrantTo {
    /// `group` (`""` is the core group).
    #[serde(default)]
    pub group: String,
    /// `kind`.
    pub kind: String,
    /// `name`: one object, or every object of the kind when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}
