//! From a Service port to the pod addresses behind it, as ingress-nginx does
//! it (`internal/ingress/controller/endpointslices.go`): pod IPs from the
//! Service's EndpointSlices, never the ClusterIP; the Service port found by
//! number or name; the slice port matched by the Service port's name, else
//! by its numeric targetPort; an endpoint used when `conditions.ready` is
//! true or absent. An InferencePool's endpoints are its ready selected Pods
//! ([`pool`]).

pub mod pool;

use std::net::{IpAddr, SocketAddr};

use gateway::external_name::ExternalName;
use gateway::{BackendKey, EndpointUpdate};
use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::networking::v1::ServiceBackendPort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::diagnostics::Reason;
use crate::endpoint_slice::Slice;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

/// A Service port as an Ingress backend names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortRef {
    /// `port.number`.
    Number(i32),
    /// `port.name`.
    Name(String),
}

impl PortRef {
    /// The port an Ingress backend names; `None` when it names neither.
    pub fn from_backend(port: Option<&ServiceBackendPort>) -> Option<Self> {
        let port = port?;
        match (&port.name, port.number) {
            (Some(name), _) if !name.is_empty() => Some(Self::Name(name.clone())),
            (_, Some(number)) => Some(Self::Number(number)),
            _ => None,
        }
    }

    /// The form used in backend keys and upstream names (`80`, `http`).
    pub fn as_key(&self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Name(name) => name.clone(),
        }
    }

    /// Reads a key back. Port names must contain a letter (IANA service
    /// names), so an all-digit key is a number.
    pub fn from_key(key: &str) -> Self {
        key.parse()
            .map_or_else(|_| Self::Name(key.to_owned()), Self::Number)
    }

    fn matches(&self, port: &ServicePort) -> bool {
        match self {
            Self::Number(n) => port.port == *n,
            Self::Name(name) => port.name.as_deref() == Some(name.as_str()),
        }
    }
}

/// The endpoints of a backend, and the problem that left it without any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// What the data plane gets.
    pub update: EndpointUpdate,
    /// A configuration problem worth a diagnostic (not "no ready pod",
    /// which is a normal state during scaling).
    pub problem: Option<(Reason, String)>,
    /// An ExternalName Service's name: the data plane resolves it (the
    /// endpoints are not the controller's to give).
    pub external: Option<ExternalName>,
}

impl Resolved {
    fn problem(reason: Reason, message: String) -> Self {
        Self {
            update: EndpointUpdate::default(),
            problem: Some((reason, message)),
            external: None,
        }
    }

    fn addrs(addrs: Vec<SocketAddr>) -> Self {
        Self {
            update: EndpointUpdate {
                addrs,
                service_found: true,
            },
            problem: None,
            external: None,
        }
    }
}

/// The start of a UDP service's backend port key (`udp:53`): its Service
/// port must be a UDP one. Other keys prefer a TCP port.
pub(crate) const UDP_PORT_KEY: &str = "udp:";

/// Resolves the endpoints of a backend key: the Service's pods, or its
/// ClusterIP and port with `service-upstream`.
pub fn resolve_key(snapshot: &Snapshot, key: &BackendKey) -> Resolved {
    let service_id = NsName::new(&*key.namespace, &*key.service);
    if &*key.port == pool::POOL_PORT_KEY {
        return pool::resolve(snapshot, &service_id);
    }
    if let Some(udp) = key.port.strip_prefix(UDP_PORT_KEY) {
        return resolve_protocol(
            snapshot,
            &service_id,
            &PortRef::from_key(udp),
            Protocol::Udp,
        );
    }
    let port = PortRef::from_key(&key.port);
    if key.cluster_ip {
        resolve_cluster_ip(snapshot, &service_id, &port)
    } else {
        resolve(snapshot, &service_id, &port)
    }
}

/// `service-upstream`: the Service's single virtual address.
fn resolve_cluster_ip(snapshot: &Snapshot, service_id: &NsName, port: &PortRef) -> Resolved {
    let Some(service) = snapshot.service(service_id) else {
        return Resolved::problem(
            Reason::ServiceNotFound,
            format!("service {service_id} not found"),
        );
    };
    let spec = service.spec.as_ref();
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
    let Some(service_port) = ports.iter().find(|p| port.matches(p)) else {
        return Resolved::problem(
            Reason::ServicePortNotFound,
            format!("service {service_id} has no port {}", port.as_key()),
        );
    };
    let ip = spec
        .and_then(|s| s.cluster_ip.as_deref())
        .and_then(|ip| ip.parse::<IpAddr>().ok());
    let (Some(ip), Ok(number)) = (ip, u16::try_from(service_port.port)) else {
        return Resolved::problem(
            Reason::UnsupportedService,
            format!("service {service_id} has no ClusterIP for service-upstream"),
        );
    };
    Resolved::addrs(vec![SocketAddr::new(ip, number)])
}

/// A Service port's transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// TCP (also: the protocol is not set).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    fn of(port: &ServicePort) -> Option<Self> {
        match port.protocol.as_deref().unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            _ => None,
        }
    }
}

/// The transport of the Service port `port` names (a TCP one when both
/// exist); `None` when the Service or the port is missing.
pub(crate) fn port_protocol(
    snapshot: &Snapshot,
    service_id: &NsName,
    port: &PortRef,
) -> Option<Protocol> {
    let ports = snapshot
        .service(service_id)?
        .spec
        .as_ref()?
        .ports
        .as_deref()?;
    let mut matching = ports.iter().filter(|p| port.matches(p));
    let first = matching.clone().next()?;
    if matching.any(|p| Protocol::of(p) == Some(Protocol::Tcp)) {
        return Some(Protocol::Tcp);
    }
    Protocol::of(first)
}

/// Resolves the ready endpoints of `service`'s `port`.
pub fn resolve(snapshot: &Snapshot, service_id: &NsName, port: &PortRef) -> Resolved {
    resolve_protocol(snapshot, service_id, port, Protocol::Tcp)
}

/// Resolves the ready endpoints of `service`'s `port`: of that transport
/// for UDP; for TCP a TCP port first, else any.
fn resolve_protocol(
    snapshot: &Snapshot,
    service_id: &NsName,
    port: &PortRef,
    protocol: Protocol,
) -> Resolved {
    let Some(service) = snapshot.service(service_id) else {
        return Resolved::problem(
            Reason::ServiceNotFound,
            format!("service {service_id} not found"),
        );
    };
    if is_external_name(service) {
        return external_name(service, service_id, port);
    }
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or(&[]);
    let of = |wanted| move |p: &&ServicePort| port.matches(p) && Protocol::of(p) == Some(wanted);
    let service_port = match protocol {
        Protocol::Udp => ports.iter().find(of(Protocol::Udp)),
        Protocol::Tcp => ports
            .iter()
            .find(of(Protocol::Tcp))
            .or_else(|| ports.iter().find(|p| port.matches(p))),
    };
    let Some(service_port) = service_port else {
        let udp = if protocol == Protocol::Udp {
            "UDP "
        } else {
            ""
        };
        return Resolved::problem(
            Reason::ServicePortNotFound,
            format!("service {service_id} has no {udp}port {}", port.as_key()),
        );
    };
    let mut addrs: Vec<SocketAddr> = snapshot
        .endpoint_slices_of(service_id)
        .flat_map(|slice| ready_addrs(slice, service_port))
        .collect();
    addrs.sort_unstable();
    addrs.dedup();
    Resolved::addrs(addrs)
}

/// An ExternalName Service, as ingress-nginx takes it: `localhost` and
/// loopback addresses are refused, an address is the endpoint, a DNS name
/// (a valid subdomain) is resolved by the data plane; the port is the
/// matched Service port's `targetPort` (its `port` when unset), or the
/// backend's port number when the Service lists none.
fn external_name(service: &Service, service_id: &NsName, port: &PortRef) -> Resolved {
    let spec = service.spec.as_ref();
    let name = spec
        .and_then(|s| s.external_name.as_deref())
        .unwrap_or("")
        .trim_end_matches('.');
    let ip = name.parse::<IpAddr>().ok();
    if name.eq_ignore_ascii_case("localhost") || ip.is_some_and(|ip| ip.is_loopback()) {
        return Resolved::problem(
            Reason::UnsupportedService,
            format!(
                "service {service_id}: ExternalName {name:?} is a loopback name, which ingress-nginx refuses too"
            ),
        );
    }
    if ip.is_none() && !is_dns_name(name) {
        return Resolved::problem(
            Reason::UnsupportedService,
            format!("service {service_id}: ExternalName {name:?} is not a valid DNS name"),
        );
    }
    let ports = spec.and_then(|s| s.ports.as_deref()).unwrap_or(&[]);
    let number = match ports.iter().find(|p| port.matches(p)) {
        Some(p) => match &p.target_port {
            Some(IntOrString::Int(target)) => *target,
            _ => p.port,
        },
        None => match port {
            PortRef::Number(n) => *n,
            PortRef::Name(name) => {
                return Resolved::problem(
                    Reason::ServicePortNotFound,
                    format!("service {service_id} has no port {name}"),
                );
            }
        },
    };
    let Some(number) = u16::try_from(number).ok().filter(|p| *p != 0) else {
        return Resolved::problem(
            Reason::ServicePortNotFound,
            format!("service {service_id}: port {number} is not a port"),
        );
    };
    match ip {
        Some(ip) => Resolved::addrs(vec![SocketAddr::new(ip, number)]),
        None => Resolved {
            update: EndpointUpdate {
                addrs: Vec::new(),
                service_found: true,
            },
            problem: None,
            external: Some(ExternalName {
                name: name.to_ascii_lowercase().into(),
                port: number,
            }),
        },
    }
}

/// A DNS name: dot-separated labels of letters, digits and `-` (not at
/// either end), at most 63 characters each and 253 in all.
pub(crate) fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_external_name(service: &Service) -> bool {
    service.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName")
}

/// The ready addresses a slice offers for a Service port.
fn ready_addrs<'a>(
    slice: &'a Slice,
    service_port: &ServicePort,
) -> impl Iterator<Item = SocketAddr> + 'a {
    let port = slice.ip.then(|| slice_port(slice, service_port)).flatten();
    port.into_iter()
        .flat_map(|port| slice.ready.iter().map(move |ip| SocketAddr::new(*ip, port)))
}

/// The slice's port number for a Service port: by name (an unnamed Service
/// port matches an unnamed slice port), else by numeric targetPort.
fn slice_port(slice: &Slice, service_port: &ServicePort) -> Option<u16> {
    let wanted_name = service_port.name.as_deref().unwrap_or("");
    let by_name = slice.ports.iter().find(|p| &*p.name == wanted_name);
    let by_target = || match &service_port.target_port {
        Some(IntOrString::Int(target)) => slice.ports.iter().find(|p| p.port == Some(*target)),
        _ => None,
    };
    let port = by_name.or_else(by_target)?.port?;
    u16::try_from(port).ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Object;
    use serde_json::{Value, json};

    fn snapshot(objects: Vec<Value>) -> Snapshot {
        let mut s = Snapshot::default();
        for o in objects {
            s.apply(Object::from_value(o).unwrap().unwrap());
        }
        s
    }

    fn service(ports: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "svc", "namespace": "ns"},
               "spec": {"ports": ports}})
    }

    fn slice(name: &str, ports: Value, endpoints: Value) -> Value {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": name, "namespace": "ns",
                            "labels": {"kubernetes.io/service-name": "svc"}},
               "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
    }

    fn addrs(r: &Resolved) -> Vec<String> {
        r.update.addrs.iter().map(ToString::to_string).collect()
    }

    fn id() -> NsName {
        NsName::new("ns", "svc")
    }

    #[test]
    fn ready_endpoints_by_port_number_and_name() {
        let s = snapshot(vec![
            service(json!([{"name": "http", "port": 80, "targetPort": 8080},
                           {"name": "metrics", "port": 9090}])),
            slice(
                "a",
                json!([{"name": "http", "port": 8080}, {"name": "metrics", "port": 9100}]),
                json!([{"addresses": ["10.0.0.2"]},
                         {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                         {"addresses": ["10.0.0.3"], "conditions": {"ready": false}}]),
            ),
            slice(
                "b",
                json!([{"name": "http", "port": 8080}]),
                json!([{"addresses": ["10.0.0.4", "10.9.9.9"]}, {"addresses": ["10.0.0.1"]}]),
            ),
        ]);
        let r = resolve(&s, &id(), &PortRef::Number(80));
        assert_eq!(r.problem, None);
        assert_eq!(
            addrs(&r),
            ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.4:8080"]
        );
        let r = resolve(&s, &id(), &PortRef::Name("metrics".into()));
        assert_eq!(addrs(&r), ["10.0.0.1:9100", "10.0.0.2:9100"]);
    }

    #[test]
    fn unnamed_ports_and_target_port_fallback() {
        let s = snapshot(vec![
            service(json!([{"port": 80, "targetPort": 8080}])),
            slice(
                "a",
                json!([{"port": 8080}]),
                json!([{"addresses": ["10.0.0.1"]}]),
            ),
        ]);
        assert_eq!(
            addrs(&resolve(&s, &id(), &PortRef::Number(80))),
            ["10.0.0.1:8080"]
        );
        let s = snapshot(vec![
            service(json!([{"name": "web", "port": 80, "targetPort": 8080}])),
            slice(
                "a",
                json!([{"name": "other", "port": 8080}]),
                json!([{"addresses": ["10.0.0.1"]}]),
            ),
        ]);
        assert_eq!(
            addrs(&resolve(&s, &id(), &PortRef::Number(80))),
            ["10.0.0.1:8080"]
        );
    }

    #[test]
    fn problems_are_reported() {
        let s = snapshot(vec![service(json!([{"port": 80}]))]);
        let missing = resolve(&s, &NsName::new("ns", "nope"), &PortRef::Number(80));
        assert_eq!(missing.problem.unwrap().0, Reason::ServiceNotFound);
        assert!(!missing.update.service_found);
        let no_port = resolve(&s, &id(), &PortRef::Number(81));
        assert_eq!(no_port.problem.unwrap().0, Reason::ServicePortNotFound);
        let no_pods = resolve(&s, &id(), &PortRef::Number(80));
        assert_eq!(no_pods.problem, None);
        assert!(no_pods.update.service_found && no_pods.update.addrs.is_empty());
    }

    #[test]
    fn service_upstream_uses_the_cluster_ip() {
        let mut svc = service(json!([{"port": 80, "targetPort": 8080}]));
        svc["spec"]["clusterIP"] = json!("10.96.0.7");
        let s = snapshot(vec![
            svc,
            slice(
                "a",
                json!([{"port": 8080}]),
                json!([{"addresses": ["10.0.0.1"]}]),
            ),
        ]);
        let key = BackendKey {
            namespace: "ns".into(),
            service: "svc".into(),
            port: "80".into(),
            cluster_ip: true,
        };
        assert_eq!(addrs(&resolve_key(&s, &key)), ["10.96.0.7:80"]);
        let pods = BackendKey {
            cluster_ip: false,
            ..key
        };
        assert_eq!(addrs(&resolve_key(&s, &pods)), ["10.0.0.1:8080"]);
    }

    #[test]
    fn port_keys_round_trip() {
        for p in [PortRef::Number(80), PortRef::Name("http".into())] {
            assert_eq!(PortRef::from_key(&p.as_key()), p);
        }
    }
}
