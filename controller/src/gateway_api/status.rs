//! The status `compile()` wants each Gateway API object to have: condition
//! types and reasons as the spec names them, per object. The status
//! writer ([`super::writer`]) merges these into what the API server has,
//! keeping other controllers' entries, and writes only while this replica
//! leads.

use std::collections::BTreeMap;

use crate::objects::NsName;

use super::types::{ParentReference, RouteGroupKind};

/// One condition as compiled: the writer adds `lastTransitionTime` (kept
/// while the status does not change) and `observedGeneration`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cond {
    /// `type`.
    pub type_: &'static str,
    /// `status`: true or false.
    pub status: bool,
    /// `reason`, one the spec names.
    pub reason: &'static str,
    /// `message`.
    pub message: String,
}

impl Cond {
    /// A condition that holds.
    pub fn yes(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn no(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: false,
            reason,
            message: message.into(),
        }
    }
}

/// A GatewayClass's wanted status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassStatus {
    /// `metadata.generation` the conditions were computed for.
    pub generation: i64,
    /// `Accepted`.
    pub conditions: Vec<Cond>,
}

/// A listener's wanted status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerState {
    /// `name`.
    pub name: String,
    /// `supportedKinds`.
    pub supported_kinds: Vec<RouteGroupKind>,
    /// `attachedRoutes`.
    pub attached_routes: i32,
    /// `Accepted`, `ResolvedRefs`, `Conflicted`, `Programmed`.
    pub conditions: Vec<Cond>,
}

/// A Gateway's wanted status (the writer adds the addresses).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayState {
    /// `metadata.generation`.
    pub generation: i64,
    /// `Accepted`, `Programmed`.
    pub conditions: Vec<Cond>,
    /// One per listener, in the spec's order.
    pub listeners: Vec<ListenerState>,
}

/// A route's wanted status towards one of its parents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentState {
    /// The `parentRef` as written in the route.
    pub parent_ref: ParentReference,
    /// `Accepted`, `ResolvedRefs`, and `PartiallyInvalid` when rules
    /// were dropped.
    pub conditions: Vec<Cond>,
}

/// A route's wanted status: one entry per parentRef this controller
/// manages (an empty list clears the entries it wrote before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteState {
    /// `metadata.generation`.
    pub generation: i64,
    /// The parents.
    pub parents: Vec<ParentState>,
}

/// Which route kind a status is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    /// HTTPRoute.
    Http,
    /// GRPCRoute.
    Grpc,
}

impl RouteKind {
    /// The `kind` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTPRoute",
            Self::Grpc => "GRPCRoute",
        }
    }
}

/// Every wanted status of one compile.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayApiStatus {
    /// The controller name status entries are written under.
    pub controller_name: String,
    /// GatewayClasses naming this controller.
    pub classes: BTreeMap<String, ClassStatus>,
    /// Gateways of those classes.
    pub gateways: BTreeMap<NsName, GatewayState>,
    /// Every route (those with no parent of ours have an empty list).
    pub routes: BTreeMap<(RouteKind, NsName), RouteState>,
    /// Every InferencePool (those no route of ours uses have an empty
    /// list).
    pub pools: BTreeMap<NsName, super::inference::status::PoolState>,
}

/// Condition types and reasons, as the spec spells them.
pub mod names {
    /// `Accepted`.
    pub const ACCEPTED: &str = "Accepted";
    /// `Programmed`.
    pub const PROGRAMMED: &str = "Programmed";
    /// `ResolvedRefs`.
    pub const RESOLVED_REFS: &str = "ResolvedRefs";
    /// `Conflicted`.
    pub const CONFLICTED: &str = "Conflicted";
    /// `PartiallyInvalid`.
    pub const PARTIALLY_INVALID: &str = "PartiallyInvalid";

    /// `Invalid` (Gateway and listener `Programmed`, Gateway `Accepted`).
    pub const INVALID: &str = "Invalid";
    /// `InvalidParameters`.
    pub const INVALID_PARAMETERS: &str = "InvalidParameters";
    /// `UnsupportedAddress`.
    pub const UNSUPPORTED_ADDRESS: &str = "UnsupportedAddress";
    /// `ListenersNotValid`.
    pub const LISTENERS_NOT_VALID: &str = "ListenersNotValid";
    /// `PortUnavailable`.
    pub const PORT_UNAVAILABLE: &str = "PortUnavailable";
    /// `UnsupportedProtocol`.
    pub const UNSUPPORTED_PROTOCOL: &str = "UnsupportedProtocol";
    /// `UnsupportedValue`.
    pub const UNSUPPORTED_VALUE: &str = "UnsupportedValue";
    /// `InvalidCertificateRef`.
    pub const INVALID_CERTIFICATE_REF: &str = "InvalidCertificateRef";
    /// `InvalidRouteKinds`.
    pub const INVALID_ROUTE_KINDS: &str = "InvalidRouteKinds";
    /// `RefNotPermitted`.
    pub const REF_NOT_PERMITTED: &str = "RefNotPermitted";
    /// `HostnameConflict`.
    pub const HOSTNAME_CONFLICT: &str = "HostnameConflict";
    /// `ProtocolConflict`.
    pub const PROTOCOL_CONFLICT: &str = "ProtocolConflict";
    /// `NoConflicts`.
    pub const NO_CONFLICTS: &str = "NoConflicts";
    /// `NotAllowedByListeners`.
    pub const NOT_ALLOWED_BY_LISTENERS: &str = "NotAllowedByListeners";
    /// `NoMatchingListenerHostname`.
    pub const NO_MATCHING_LISTENER_HOSTNAME: &str = "NoMatchingListenerHostname";
    /// `NoMatchingParent`.
    pub const NO_MATCHING_PARENT: &str = "NoMatchingParent";
    /// `IncompatibleFilters`.
    pub const INCOMPATIBLE_FILTERS: &str = "IncompatibleFilters";
    /// `InvalidKind`.
    pub const INVALID_KIND: &str = "InvalidKind";
    /// `BackendNotFound`.
    pub const BACKEND_NOT_FOUND: &str = "BackendNotFound";
}
