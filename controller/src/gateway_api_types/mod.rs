//! The Gateway API kinds this controller reads, typed after the
//! `gateway.networking.k8s.io` v1 Go types (standard channel, v1.6), with
//! the experimental fields it acts on (`sessionPersistence`, `retry`,
//! `parentRefs[].port`, `useDefaultGateways`) so that none is silently
//! dropped. Unknown fields are ignored by serde, as the API server's
//! pruning would.
//!
//! Written by hand rather than taken from the `gateway-api` crate: its
//! current release builds on kube 4 and k8s-openapi 0.28 (this workspace
//! is on kube 5 and 0.29) and needs Rust 1.92. Each kind implements
//! [`kube::Resource`] so that the watchers and the status writer use them
//! like any k8s-openapi type.

mod gateway;
mod grpcroute;
mod httproute;
pub mod inference;
mod reference_grant;
mod shared;

pub use gateway::*;
pub use grpcroute::*;
pub use httproute::*;
pub use reference_grant::*;
pub use shared::*;

/// The API group of every Gateway API kind.
pub const GROUP: &str = "gateway.networking.k8s.io";

/// Implements [`kube::Resource`] for a kind with a `metadata` field.
macro_rules! resource {
    ($kind:ident, $version:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $kind {
            type DynamicType = ();
            type Scope = $scope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                stringify!($kind).into()
            }

            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $crate::gateway_api_types::GROUP.into()
            }

            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }

            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }

            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(
                &mut self,
            ) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

resource!(
    GatewayClass,
    "v1",
    "gatewayclasses",
    k8s_openapi::ClusterResourceScope
);
resource!(
    Gateway,
    "v1",
    "gateways",
    k8s_openapi::NamespaceResourceScope
);
resource!(
    HTTPRoute,
    "v1",
    "httproutes",
    k8s_openapi::NamespaceResourceScope
);
resource!(
    GRPCRoute,
    "v1",
    "grpcroutes",
    k8s_openapi::NamespaceResourceScope
);
// v1beta1: the version every standard-channel release since v0.6 serves
// (v1 only since v1.5).
resource!(
    ReferenceGrant,
    "v1beta1",
    "referencegrants",
    k8s_openapi::NamespaceResourceScope
);

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    #[test]
    fn kinds_parse_from_the_spec_examples_and_name_their_urls() {
        let route: HTTPRoute = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {
                "parentRefs": [{"name": "gw", "sectionName": "http"}],
                "hostnames": ["example.com"],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v2"},
                                 "headers": [{"name": "version", "value": "2"}],
                                 "queryParams": [{"type": "RegularExpression", "name": "a", "value": "b+"}],
                                 "method": "GET"}],
                    "filters": [{"type": "RequestHeaderModifier",
                                 "requestHeaderModifier": {"set": [{"name": "x", "value": "y"}], "remove": ["z"]}}],
                    "backendRefs": [{"name": "svc", "port": 8080, "weight": 3,
                                     "filters": [{"type": "ResponseHeaderModifier",
                                                  "responseHeaderModifier": {"add": [{"name": "a", "value": "b"}]}}]}],
                    "timeouts": {"request": "10s", "backendRequest": "2s"},
                    "sessionPersistence": {"sessionName": "s", "type": "Cookie"}
                }]
            }
        }))
        .unwrap();
        let rules = route.spec.rules();
        let rule = &rules[0];
        assert_eq!(
            rule.matches[0].path.as_ref().unwrap().value.as_deref(),
            Some("/v2")
        );
        assert_eq!(rule.backend_refs[0].backend_ref.weight, Some(3));
        assert_eq!(rule.filters[0].type_, "RequestHeaderModifier");
        assert_eq!(
            HTTPRoute::url_path(&(), Some("ns")),
            "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes"
        );
        assert_eq!(
            GatewayClass::url_path(&(), None),
            "/apis/gateway.networking.k8s.io/v1/gatewayclasses"
        );
        assert_eq!(
            ReferenceGrant::api_version(&()),
            "gateway.networking.k8s.io/v1beta1"
        );

        let gateway: Gateway = serde_json::from_value(json!({
            "metadata": {"name": "gw", "namespace": "infra"},
            "spec": {"gatewayClassName": "edge", "listeners": [
                {"name": "https", "port": 443, "protocol": "HTTPS", "hostname": "*.example.com",
                 "tls": {"certificateRefs": [{"name": "cert", "namespace": "certs"}]},
                 "allowedRoutes": {"namespaces": {"from": "Selector",
                    "selector": {"matchLabels": {"team": "a"}}},
                    "kinds": [{"kind": "HTTPRoute"}]}}]}
        }))
        .unwrap();
        let listener = &gateway.spec.listeners[0];
        assert_eq!(
            listener.tls.as_ref().unwrap().certificate_refs[0]
                .namespace
                .as_deref(),
            Some("certs")
        );
        // Round trip: what is serialised parses back the same.
        let again: HTTPRoute =
            serde_json::from_value(serde_json::to_value(&route).unwrap()).unwrap();
        assert_eq!(again, route);
    }
}
