//! What the controller keeps of an EndpointSlice: the Service it is
//! labelled for, its ports, and the usable address of each endpoint,
//! parsed once when the slice arrives.
//!
//! The snapshot holds every slice of the cluster, usually one or more per
//! Service, so their size is the gateway's memory at scale: a Kubernetes
//! `Endpoint` is some 370 bytes before its strings (node name, zone, target
//! reference, hints), and 10,000 three-endpoint slices took 24 MiB as
//! objects; kept like this they take about a tenth. What ingress-nginx reads
//! of a slice (`internal/ingress/controller/endpointslices.go`) is all that
//! is kept: `addressType`, `ports`, and per endpoint its first address and
//! whether `conditions.ready` is false. Any change to what is dropped is no
//! change at all for the gateway.

use std::net::IpAddr;

use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// One port of a slice: its name (`""` when unnamed) and number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlicePort {
    /// `ports[].name`, `""` when absent.
    pub name: Box<str>,
    /// `ports[].port`, if set.
    pub port: Option<i32>,
}

/// An EndpointSlice as the controller uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    /// The Service it is labelled for (`kubernetes.io/service-name`).
    pub service: Option<Box<str>>,
    /// `addressType` is `IPv4` or `IPv6` (an `FQDN` slice offers nothing).
    pub ip: bool,
    /// Its ports.
    pub ports: Box<[SlicePort]>,
    /// The first address of each endpoint whose `conditions.ready` is not
    /// false, in order; an address that does not parse is left out.
    pub ready: Box<[IpAddr]>,
}

impl Slice {
    /// What is kept of `slice`.
    pub fn of(slice: &EndpointSlice) -> Self {
        let service = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SERVICE_NAME_LABEL))
            .map(|name| name.as_str().into());
        let ports = slice
            .ports
            .iter()
            .flatten()
            .map(|p| SlicePort {
                name: p.name.as_deref().unwrap_or("").into(),
                port: p.port,
            })
            .collect();
        let ready = slice
            .endpoints
            .iter()
            .flatten()
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
            // All addresses of an endpoint are fungible; the first is used.
            .filter_map(|e| e.addresses.first())
            .filter_map(|a| a.parse::<IpAddr>().ok())
            .collect();
        Self {
            service,
            ip: matches!(slice.address_type.as_str(), "IPv4" | "IPv6"),
            ports,
            ready,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(value: serde_json::Value) -> Slice {
        Slice::of(&serde_json::from_value(value).unwrap())
    }

    #[test]
    fn keeps_the_service_ports_and_ready_first_addresses() {
        let s = slice(json!({
            "metadata": {"name": "a-1", "labels": {"kubernetes.io/service-name": "a", "x": "y"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}, {"port": 9090}],
            "endpoints": [
                {"addresses": ["10.0.0.2"], "nodeName": "n1", "zone": "z",
                 "targetRef": {"kind": "Pod", "name": "p", "namespace": "ns"}},
                {"addresses": ["10.0.0.1", "10.9.9.9"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
                {"addresses": ["not-an-ip"]},
                {"addresses": []},
            ],
        }));
        assert_eq!(s.service.as_deref(), Some("a"));
        assert!(s.ip);
        let ports: Vec<_> = s.ports.iter().map(|p| (&*p.name, p.port)).collect();
        assert_eq!(ports, [("http", Some(8080)), ("", Some(9090))]);
        let ready: Vec<String> = s.ready.iter().map(ToString::to_string).collect();
        assert_eq!(ready, ["10.0.0.2", "10.0.0.1"]);
    }

    #[test]
    fn fqdn_slices_and_unlabelled_slices_are_marked() {
        let s = slice(json!({
            "metadata": {"name": "b"},
            "addressType": "FQDN",
            "endpoints": [{"addresses": ["example.com"]}],
        }));
        assert!(!s.ip);
        assert_eq!(s.service, None);
        assert!(s.ready.is_empty());
    }

    /// What the gateway does not read changes nothing.
    #[test]
    fn a_change_the_gateway_does_not_read_is_no_change() {
        let base = json!({
            "metadata": {"name": "a-1", "labels": {"kubernetes.io/service-name": "a"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "nodeName": "n1"}],
        });
        let mut moved = base.clone();
        moved["endpoints"][0]["nodeName"] = json!("n2");
        moved["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(slice(base.clone()), slice(moved));
        let mut unready = base.clone();
        unready["endpoints"][0]["conditions"] = json!({"ready": false});
        assert_ne!(slice(base), slice(unready));
    }
}
