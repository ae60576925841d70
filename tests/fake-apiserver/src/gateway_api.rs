//! The Gateway API kinds (`gateway.networking.k8s.io`, standard channel
//! v1.6: GatewayClass, Gateway, HTTPRoute, GRPCRoute at v1,
//! ReferenceGrant at v1beta1 and v1), as the CRDs of the standard install
//! declare them: scope, short names, and the `/status` subresource of
//! every kind but ReferenceGrant. The server treats them like any built-in
//! kind; `resources::RESOURCES` lists them.

use crate::resources::ResourceType;

const fn crd(
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    status_subresource: bool,
) -> ResourceType {
    ResourceType {
        group: "gateway.networking.k8s.io",
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        status_subresource,
    }
}

/// `gatewayclasses` (cluster-scoped, `gc`).
pub(crate) const GATEWAY_CLASSES: ResourceType = crd(
    "v1",
    "gatewayclasses",
    "gatewayclass",
    "GatewayClass",
    false,
    &["gc"],
    true,
);
/// `gateways` (`gtw`).
pub(crate) const GATEWAYS: ResourceType =
    crd("v1", "gateways", "gateway", "Gateway", true, &["gtw"], true);
/// `httproutes`.
pub(crate) const HTTP_ROUTES: ResourceType = crd(
    "v1",
    "httproutes",
    "httproute",
    "HTTPRoute",
    true,
    &[],
    true,
);
/// `grpcroutes`.
pub(crate) const GRPC_ROUTES: ResourceType = crd(
    "v1",
    "grpcroutes",
    "grpcroute",
    "GRPCRoute",
    true,
    &[],
    true,
);
/// `referencegrants` at v1beta1 (served by every release since v0.6).
pub(crate) const REFERENCE_GRANTS_V1BETA1: ResourceType = crd(
    "v1beta1",
    "referencegrants",
    "referencegrant",
    "ReferenceGrant",
    true,
    &["refgrant"],
    false,
);
