//! GatewayClasses and Gateways: which are ours, whether they are accepted,
//! and the listeners routes can attach to.
//!
//! Every Gateway of a class naming this controller is served on the
//! gateway's own sockets: an `HTTP` listener on port 80 or `--http-port`,
//! an `HTTPS` listener on port 443 or `--https-port` (TLS terminated with
//! its `certificateRefs`). Any other protocol or port is not accepted
//! (`UnsupportedProtocol`, `PortUnavailable`). All Gateways share the one
//! data plane, so listeners of one scheme are told apart by hostname
//! only: two listeners of one Gateway with the same scheme and hostname
//! are both `Conflicted` and neither is served.
//!
//! Refused rather than served without them: `spec.addresses`
//! (`UnsupportedAddress`: the addresses are the Service's), any
//! `parametersRef` (`InvalidParameters`), `spec.tls` (client certificate
//! validation, which restricts who gets in: the Gateway is not accepted
//! rather than served open) and listener `tls.options`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gateway::host::HostPattern;
use gateway::settings::Scheme;
use gateway::tls::Certificate;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::certs::CertCache;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

use super::GatewayApiOptions;
use super::refs::granted;
use super::status::{ClassStatus, Cond, GatewayApiStatus, names};
use super::types::{
    AllowedRoutes, GROUP, Gateway, GatewayClass, Listener as ListenerSpec, RouteGroupKind,
};

/// The most listeners a Gateway may have (the spec's limit).
const MAX_LISTENERS: usize = 64;

/// Which namespaces a listener takes routes from.
#[derive(Clone, Debug)]
pub(crate) enum Namespaces {
    /// The Gateway's own.
    Same,
    /// Every namespace.
    All,
    /// Namespaces whose labels the selector selects.
    Selector(LabelSelector),
    /// None.
    None,
}

/// The route kinds a listener takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Kinds {
    pub(crate) http: bool,
    pub(crate) grpc: bool,
}

/// One listener of an accepted Gateway.
#[derive(Debug)]
pub(crate) struct Listener {
    /// Its Gateway.
    pub(crate) gateway: NsName,
    /// `name`.
    pub(crate) name: String,
    /// `port` as written.
    pub(crate) port: u16,
    /// The socket it is served on.
    pub(crate) scheme: Scheme,
    /// `hostname`: an exact name or a suffix; `None` matches every host.
    pub(crate) hostname: Option<HostPattern>,
    /// `allowedRoutes.namespaces`.
    pub(crate) namespaces: Namespaces,
    /// The kinds it takes (`supportedKinds`).
    pub(crate) kinds: Kinds,
    /// The certificate of an HTTPS listener.
    pub(crate) certificate: Option<Arc<Certificate>>,
    /// Whether routes attached to it are served (accepted, not
    /// conflicted, references resolved).
    pub(crate) serving: bool,
    /// Routes attached to it (for `attachedRoutes`).
    pub(crate) attached: i32,
    /// The hostnames of the routes attached to it (for certificates).
    pub(crate) hosts: Vec<HostPattern>,
    /// Its conditions but `Programmed`, decided when compiled.
    conditions: Vec<Cond>,
    supported_kinds: Vec<RouteGroupKind>,
}

/// A Gateway of ours.
#[derive(Debug)]
pub(crate) struct GatewayEntry {
    /// Whether it is accepted (its listeners can take routes).
    pub(crate) accepted: bool,
    /// Why not, when it is not.
    pub(crate) refusal: Option<String>,
    /// Its listeners, in `listeners`, in the spec's order.
    pub(crate) listeners: std::ops::Range<usize>,
    generation: i64,
    conditions: Vec<Cond>,
    /// Listeners of the spec with no entry (when the Gateway is refused
    /// as a whole), by name: they still get a status.
    unlisted: Vec<String>,
}

/// Every Gateway of ours and its listeners.
#[derive(Debug, Default)]
pub(crate) struct Gateways {
    pub(crate) listeners: Vec<Listener>,
    pub(crate) gateways: BTreeMap<NsName, GatewayEntry>,
}

/// Decides the classes and Gateways of this controller, recording the
/// classes' status.
pub(crate) fn compile(
    snapshot: &Snapshot,
    options: &GatewayApiOptions,
    certs: &mut CertCache,
    now: i64,
    status: &mut GatewayApiStatus,
) -> Gateways {
    let mut classes: HashMap<&str, Result<(), String>> = HashMap::new();
    for (name, class) in snapshot.gateway_classes() {
        if class.spec.controller_name != options.controller_name {
            continue;
        }
        let verdict = class_verdict(class);
        let condition = match &verdict {
            Ok(()) => Cond::yes(names::ACCEPTED, names::ACCEPTED, "accepted by edge-gateway"),
            Err(message) => Cond::no(names::ACCEPTED, names::INVALID_PARAMETERS, message.clone()),
        };
        status.classes.insert(
            name.clone(),
            ClassStatus {
                generation: class.metadata.generation.unwrap_or(0),
                conditions: vec![condition],
            },
        );
        classes.insert(name.as_str(), verdict);
    }
    let mut ours: Vec<(&NsName, &Gateway)> = snapshot
        .gateways()
        .filter(|(_, g)| classes.contains_key(g.spec.gateway_class_name.as_str()))
        .map(|(id, g)| (id, g.as_ref()))
        .collect();
    ours.sort_by(|(a_id, a), (b_id, b)| {
        let age = |g: &Gateway| g.metadata.creation_timestamp.clone();
        age(a).cmp(&age(b)).then_with(|| a_id.cmp(b_id))
    });
    let mut out = Gateways::default();
    for (id, gateway) in ours {
        let class = classes
            .get(gateway.spec.gateway_class_name.as_str())
            .cloned()
            .unwrap_or(Ok(()));
        let refusal = class
            .map_err(|m| {
                (
                    names::INVALID,
                    format!(
                        "GatewayClass {} is not accepted: {m}",
                        gateway.spec.gateway_class_name
                    ),
                )
            })
            .and_then(|()| gateway_verdict(gateway));
        let entry = match refusal {
            Ok(()) => {
                let start = out.listeners.len();
                for spec in &gateway.spec.listeners {
                    let listener = listener(snapshot, options, certs, now, id, spec);
                    out.listeners.push(listener);
                }
                mark_conflicts(&mut out.listeners[start..]);
                GatewayEntry {
                    accepted: true,
                    refusal: None,
                    listeners: start..out.listeners.len(),
                    generation: gateway.metadata.generation.unwrap_or(0),
                    conditions: Vec::new(),
                    unlisted: Vec::new(),
                }
            }
            Err((reason, message)) => GatewayEntry {
                accepted: false,
                refusal: Some(message.clone()),
                listeners: 0..0,
                generation: gateway.metadata.generation.unwrap_or(0),
                conditions: vec![
                    Cond::no(names::ACCEPTED, reason, message.clone()),
                    Cond::no(names::PROGRAMMED, names::INVALID, message),
                ],
                unlisted: gateway
                    .spec
                    .listeners
                    .iter()
                    .map(|l| l.name.clone())
                    .collect(),
            },
        };
        out.gateways.insert(id.clone(), entry);
    }
    out
}

fn class_verdict(class: &GatewayClass) -> Result<(), String> {
    match &class.spec.parameters_ref {
        Some(_) => Err("parametersRef is not supported by edge-gateway".to_owned()),
        None => Ok(()),
    }
}

/// Whether a Gateway can be served at all: `Err((reason, message))` when not.
fn gateway_verdict(gateway: &Gateway) -> Result<(), (&'static str, String)> {
    let spec = &gateway.spec;
    if !spec.addresses.is_empty() {
        return Err((
            names::UNSUPPORTED_ADDRESS,
            "spec.addresses is not supported: the gateway's addresses are those of its Service (--publish-service / --publish-status-address)".to_owned(),
        ));
    }
    if spec
        .infrastructure
        .as_ref()
        .is_some_and(|i| i.parameters_ref.is_some())
    {
        return Err((
            names::INVALID_PARAMETERS,
            "spec.infrastructure.parametersRef is not supported".to_owned(),
        ));
    }
    if spec.tls.is_some() {
        return Err((
            names::INVALID,
            "spec.tls (client certificate validation, backend client certificate) is not supported; the Gateway is not served rather than served without it".to_owned(),
        ));
    }
    if spec
        .default_scope
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != "None")
    {
        return Err((
            names::INVALID,
            "spec.defaultScope (default Gateways) is not supported".to_owned(),
        ));
    }
    if spec.listeners.is_empty() || spec.listeners.len() > MAX_LISTENERS {
        return Err((
            names::INVALID,
            format!(
                "a Gateway needs 1 to {MAX_LISTENERS} listeners, it has {}",
                spec.listeners.len()
            ),
        ));
    }
    Ok(())
}

/// Compiles one listener and its conditions (but `Conflicted`, decided
/// across the Gateway's listeners, and `Programmed`, decided last).
fn listener(
    snapshot: &Snapshot,
    options: &GatewayApiOptions,
    certs: &mut CertCache,
    now: i64,
    gateway: &NsName,
    spec: &ListenerSpec,
) -> Listener {
    let port = u16::try_from(spec.port).unwrap_or(0);
    let mut listener = Listener {
        gateway: gateway.clone(),
        name: spec.name.clone(),
        port,
        scheme: Scheme::Http,
        hostname: None,
        namespaces: Namespaces::Same,
        kinds: Kinds::default(),
        certificate: None,
        serving: false,
        attached: 0,
        hosts: Vec::new(),
        conditions: Vec::new(),
        supported_kinds: Vec::new(),
    };
    let refuse = |listener: &mut Listener, reason, message: String| {
        listener
            .conditions
            .push(Cond::no(names::ACCEPTED, reason, message));
    };
    match spec.protocol.as_str() {
        "HTTP" => listener.scheme = Scheme::Http,
        "HTTPS" => listener.scheme = Scheme::Https,
        other => {
            refuse(
                &mut listener,
                names::UNSUPPORTED_PROTOCOL,
                format!("protocol {other} is not supported (HTTP and HTTPS are)"),
            );
        }
    }
    let ports = match listener.scheme {
        Scheme::Http => &options.http_ports,
        Scheme::Https => &options.https_ports,
    };
    if listener.conditions.is_empty() && !ports.contains(&port) {
        refuse(
            &mut listener,
            names::PORT_UNAVAILABLE,
            format!(
                "{} listeners are served on port {}; {} is not available",
                spec.protocol,
                join_ports(ports),
                spec.port
            ),
        );
    }
    if let Some(hostname) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        match HostPattern::parse_suffix(hostname) {
            Ok(pattern) => listener.hostname = Some(pattern),
            Err(error) => refuse(
                &mut listener,
                names::UNSUPPORTED_VALUE,
                format!("hostname {hostname:?}: {error}"),
            ),
        }
    }
    let allowed = spec.allowed_routes.clone().unwrap_or_default();
    match namespaces(&allowed) {
        Ok(namespaces) => listener.namespaces = namespaces,
        Err(message) => refuse(&mut listener, names::UNSUPPORTED_VALUE, message),
    }
    let mut resolved = Vec::new();
    let (kinds, supported, invalid) = kinds(listener.scheme, &allowed);
    listener.kinds = kinds;
    listener.supported_kinds = supported;
    if !invalid.is_empty() {
        resolved.push(Cond::no(
            names::RESOLVED_REFS,
            names::INVALID_ROUTE_KINDS,
            format!(
                "route kinds {} are not supported on an {} listener{}",
                invalid.join(", "),
                spec.protocol,
                if listener.scheme == Scheme::Http {
                    " (GRPCRoute needs HTTP/2: attach it to an HTTPS listener)"
                } else {
                    ""
                }
            ),
        ));
    }
    match spec.protocol.as_str() {
        "HTTP" if spec.tls.is_some() => refuse(
            &mut listener,
            names::UNSUPPORTED_VALUE,
            "tls is only valid on HTTPS listeners".to_owned(),
        ),
        "HTTPS" => {
            let tls = spec.tls.clone().unwrap_or_default();
            if tls.mode.as_deref().is_some_and(|m| m != "Terminate") {
                refuse(
                    &mut listener,
                    names::UNSUPPORTED_VALUE,
                    "tls.mode Passthrough is not supported on HTTPS listeners".to_owned(),
                );
            } else if !tls.options.is_empty() {
                refuse(
                    &mut listener,
                    names::UNSUPPORTED_VALUE,
                    format!(
                        "tls.options {} are not supported",
                        tls.options.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
            match certificate(snapshot, certs, now, gateway, &tls.certificate_refs) {
                Ok(cert) => listener.certificate = Some(cert),
                Err((reason, message)) => {
                    resolved.push(Cond::no(names::RESOLVED_REFS, reason, message));
                }
            }
        }
        _ => {}
    }
    if listener.conditions.is_empty() {
        listener.conditions.push(Cond::yes(
            names::ACCEPTED,
            names::ACCEPTED,
            "listener accepted",
        ));
    }
    if resolved.is_empty() {
        resolved.push(Cond::yes(
            names::RESOLVED_REFS,
            names::RESOLVED_REFS,
            "references resolved",
        ));
    }
    // The first problem names the reason; the others join its message.
    let first = resolved.remove(0);
    let message = std::iter::once(first.message.clone())
        .chain(resolved.into_iter().map(|c| c.message))
        .collect::<Vec<_>>()
        .join("; ");
    listener.conditions.push(Cond { message, ..first });
    listener
}

fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `allowedRoutes.namespaces`.
fn namespaces(allowed: &AllowedRoutes) -> Result<Namespaces, String> {
    let from = allowed.namespaces.as_ref();
    match from.and_then(|n| n.from.as_deref()).unwrap_or("Same") {
        "Same" => Ok(Namespaces::Same),
        "All" => Ok(Namespaces::All),
        "None" => Ok(Namespaces::None),
        "Selector" => match from.and_then(|n| n.selector.clone()) {
            Some(selector) => {
                validate_selector(&selector)?;
                Ok(Namespaces::Selector(selector))
            }
            None => {
                Err("allowedRoutes.namespaces.from is Selector but no selector is set".to_owned())
            }
        },
        other => Err(format!(
            "allowedRoutes.namespaces.from {other:?} is not supported"
        )),
    }
}

/// `allowedRoutes.kinds` against the listener's protocol: what it takes,
/// `supportedKinds`, and the kinds refused.
fn kinds(scheme: Scheme, allowed: &AllowedRoutes) -> (Kinds, Vec<RouteGroupKind>, Vec<String>) {
    let supported_here = |kind: &str| match kind {
        "HTTPRoute" => true,
        "GRPCRoute" => scheme == Scheme::Https,
        _ => false,
    };
    let wanted: Vec<RouteGroupKind> = if allowed.kinds.is_empty() {
        let mut defaults = vec![group_kind("HTTPRoute")];
        if scheme == Scheme::Https {
            defaults.push(group_kind("GRPCRoute"));
        }
        defaults
    } else {
        allowed.kinds.clone()
    };
    let mut kinds = Kinds::default();
    let mut supported = Vec::new();
    let mut invalid = Vec::new();
    for kind in wanted {
        let group = kind.group.as_deref().unwrap_or(GROUP);
        if group == GROUP && supported_here(&kind.kind) {
            match kind.kind.as_str() {
                "HTTPRoute" => kinds.http = true,
                _ => kinds.grpc = true,
            }
            supported.push(group_kind(&kind.kind));
        } else {
            invalid.push(format!("{}.{group}", kind.kind));
        }
    }
    (kinds, supported, invalid)
}

fn group_kind(kind: &str) -> RouteGroupKind {
    RouteGroupKind {
        group: Some(GROUP.to_owned()),
        kind: kind.to_owned(),
    }
}

/// The certificate of an HTTPS listener: its first reference, a
/// `kubernetes.io/tls` Secret of the Gateway's namespace or of one a
/// ReferenceGrant opens, valid now.
fn certificate(
    snapshot: &Snapshot,
    certs: &mut CertCache,
    now: i64,
    gateway: &NsName,
    refs: &[super::types::SecretObjectReference],
) -> Result<Arc<Certificate>, (&'static str, String)> {
    let Some(reference) = refs.first() else {
        return Err((
            names::INVALID_CERTIFICATE_REF,
            "an HTTPS listener needs tls.certificateRefs".to_owned(),
        ));
    };
    let group = reference.group.as_deref().unwrap_or("");
    let kind = reference.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err((
            names::INVALID_CERTIFICATE_REF,
            format!(
                "certificateRef {}: kind {kind} is not supported (Secrets are)",
                reference.name
            ),
        ));
    }
    let namespace = reference.namespace.as_deref().unwrap_or(&gateway.namespace);
    let id = NsName::new(namespace, reference.name.clone());
    if !granted(snapshot, "Gateway", &gateway.namespace, "Secret", &id) {
        return Err((
            names::REF_NOT_PERMITTED,
            format!(
                "certificateRef to Secret {id} is not permitted: no ReferenceGrant in namespace {namespace} allows Gateways from {}",
                gateway.namespace
            ),
        ));
    }
    match certs.get(snapshot, &id) {
        Ok(cert) if cert.is_expired_at(now) => Err((
            names::INVALID_CERTIFICATE_REF,
            format!("secret {id}: the certificate is not valid now"),
        )),
        Ok(cert) => Ok(cert),
        Err(message) => Err((names::INVALID_CERTIFICATE_REF, message)),
    }
}

/// Marks the listeners of one Gateway that cannot be told apart: same
/// scheme and hostname (`HostnameConflict`), or same port with another
/// protocol (`ProtocolConflict`). Conflicted listeners are not accepted.
fn mark_conflicts(listeners: &mut [Listener]) {
    let n = listeners.len();
    let mut conflicts: Vec<Option<&'static str>> = vec![None; n];
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let (a, b) = (&listeners[i], &listeners[j]);
            if a.port == b.port && a.scheme != b.scheme {
                conflicts[i] = Some(names::PROTOCOL_CONFLICT);
            } else if a.scheme == b.scheme && a.hostname == b.hostname {
                conflicts[i].get_or_insert(names::HOSTNAME_CONFLICT);
            }
        }
    }
    for (listener, conflict) in listeners.iter_mut().zip(conflicts) {
        let accepted = listener
            .conditions
            .iter()
            .any(|c| c.type_ == names::ACCEPTED && c.status);
        match conflict {
            Some(reason) => {
                let message = match reason {
                    names::PROTOCOL_CONFLICT => {
                        "another listener of this Gateway uses the same port with another protocol"
                    }
                    _ => "another listener of this Gateway has the same protocol and hostname",
                };
                listener
                    .conditions
                    .push(Cond::yes(names::CONFLICTED, reason, message));
                if accepted {
                    listener.conditions.retain(|c| c.type_ != names::ACCEPTED);
                    listener
                        .conditions
                        .push(Cond::no(names::ACCEPTED, reason, message));
                }
            }
            None => listener.conditions.push(Cond::no(
                names::CONFLICTED,
                names::NO_CONFLICTS,
                "no conflicts",
            )),
        }
        listener.serving = listener.conditions.iter().all(|c| match c.type_ {
            names::CONFLICTED => !c.status,
            _ => c.status,
        });
    }
}

impl Gateways {
    /// Records every Gateway's status, once routes are attached.
    pub(crate) fn record(&self, status: &mut GatewayApiStatus) {
        for (id, entry) in &self.gateways {
            let mut state = super::status::GatewayState {
                generation: entry.generation,
                conditions: entry.conditions.clone(),
                listeners: Vec::new(),
            };
            for name in &entry.unlisted {
                state.listeners.push(super::status::ListenerState {
                    name: name.clone(),
                    supported_kinds: Vec::new(),
                    attached_routes: 0,
                    conditions: vec![Cond::no(
                        names::PROGRAMMED,
                        names::INVALID,
                        entry.refusal.clone().unwrap_or_default(),
                    )],
                });
            }
            if entry.accepted {
                let listeners = &self.listeners[entry.listeners.clone()];
                let serving = listeners.iter().filter(|l| l.serving).count();
                for listener in listeners {
                    let mut conditions = listener.conditions.clone();
                    conditions.push(if listener.serving {
                        Cond::yes(names::PROGRAMMED, names::PROGRAMMED, "listener programmed")
                    } else {
                        Cond::no(
                            names::PROGRAMMED,
                            names::INVALID,
                            "listener not programmed: see its other conditions",
                        )
                    });
                    state.listeners.push(super::status::ListenerState {
                        name: listener.name.clone(),
                        supported_kinds: listener.supported_kinds.clone(),
                        attached_routes: listener.attached,
                        conditions,
                    });
                }
                let accepted_listeners = listeners
                    .iter()
                    .filter(|l| {
                        l.conditions
                            .iter()
                            .any(|c| c.type_ == names::ACCEPTED && c.status)
                    })
                    .count();
                state.conditions = vec![
                    match (accepted_listeners, listeners.len()) {
                        (0, _) => Cond::no(
                            names::ACCEPTED,
                            names::LISTENERS_NOT_VALID,
                            "no listener is valid",
                        ),
                        (a, n) if a < n => Cond::yes(
                            names::ACCEPTED,
                            names::LISTENERS_NOT_VALID,
                            "some listeners are not valid; the others are served",
                        ),
                        _ => {
                            Cond::yes(names::ACCEPTED, names::ACCEPTED, "accepted by edge-gateway")
                        }
                    },
                    if serving > 0 {
                        Cond::yes(
                            names::PROGRAMMED,
                            names::PROGRAMMED,
                            "served by edge-gateway",
                        )
                    } else {
                        Cond::no(
                            names::PROGRAMMED,
                            names::INVALID,
                            "no listener can be served",
                        )
                    },
                ];
            }
            status.gateways.insert(id.clone(), state);
        }
    }
}

/// Checks the operators of a label selector.
fn validate_selector(selector: &LabelSelector) -> Result<(), String> {
    for requirement in selector.match_expressions.iter().flatten() {
        match requirement.operator.as_str() {
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => return Err(format!("selector operator {other:?} is not supported")),
        }
    }
    Ok(())
}

/// Whether a label selector selects an object with `labels`.
pub(crate) fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && selector.match_expressions.iter().flatten().all(|r| {
            let value = labels.get(&r.key);
            let values = r.values.as_deref().unwrap_or(&[]);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

impl Listener {
    /// Whether a route of namespace `namespace` may attach.
    pub(crate) fn allows_namespace(&self, snapshot: &Snapshot, namespace: &str) -> bool {
        match &self.namespaces {
            Namespaces::Same => self.gateway.namespace == namespace,
            Namespaces::All => true,
            Namespaces::None => false,
            Namespaces::Selector(selector) => {
                let empty = BTreeMap::new();
                let labels = snapshot
                    .namespace(namespace)
                    .and_then(|n| n.metadata.labels.as_ref())
                    .unwrap_or(&empty);
                selects(selector, labels)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn selectors_match_labels_and_expressions() {
        let labels: BTreeMap<String, String> =
            [("team".to_owned(), "a".to_owned())].into_iter().collect();
        let selector =
            |labels: &[(&str, &str)], expr: Option<(&str, &str, &[&str])>| LabelSelector {
                match_labels: (!labels.is_empty()).then(|| {
                    labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect()
                }),
                match_expressions: expr.map(|(key, op, values)| {
                    vec![LabelSelectorRequirement {
                        key: key.to_owned(),
                        operator: op.to_owned(),
                        values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
                    }]
                }),
            };
        assert!(selects(&selector(&[("team", "a")], None), &labels));
        assert!(!selects(&selector(&[("team", "b")], None), &labels));
        assert!(selects(
            &selector(&[], Some(("team", "In", &["a", "b"]))),
            &labels
        ));
        assert!(!selects(
            &selector(&[], Some(("team", "NotIn", &["a"]))),
            &labels
        ));
        assert!(selects(
            &selector(&[], Some(("env", "DoesNotExist", &[]))),
            &labels
        ));
        assert!(!selects(
            &selector(&[], Some(("env", "Exists", &[]))),
            &labels
        ));
        assert!(
            selects(&selector(&[], None), &labels),
            "an empty selector selects all"
        );
    }
}
