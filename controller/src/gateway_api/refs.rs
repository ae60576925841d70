//! References across objects: which cross-namespace references a
//! ReferenceGrant allows, and what a `backendRef` resolves to.
//!
//! A reference within one namespace is always allowed. Across namespaces
//! it needs a ReferenceGrant in the target's namespace whose `from` names
//! the referrer's group, kind and namespace and whose `to` names the
//! target's group and kind (and its name, when set). Removing the grant
//! revokes the reference at the next compile.

use gateway::BackendKey;

use crate::diagnostics::Reason;
use crate::endpoints::{PortRef, resolve_key};
use crate::objects::NsName;
use crate::snapshot::Snapshot;

use super::inference::{self, types::POOL_GROUP};
use super::status::names;
use super::types::{BackendRef, GROUP};

/// Whether a `from_kind` object in `from_ns` may refer to the core-group
/// `to_kind` object `to` (Service, Secret).
pub(crate) fn granted(
    snapshot: &Snapshot,
    from_kind: &str,
    from_ns: &str,
    to_kind: &str,
    to: &NsName,
) -> bool {
    granted_in(snapshot, from_kind, from_ns, ("", to_kind), to)
}

/// Whether a `from_kind` object in `from_ns` may refer to the object `to`
/// of group and kind `to_type`.
pub(crate) fn granted_in(
    snapshot: &Snapshot,
    from_kind: &str,
    from_ns: &str,
    (to_group, to_kind): (&str, &str),
    to: &NsName,
) -> bool {
    if from_ns == to.namespace {
        return true;
    }
    snapshot
        .reference_grants()
        .filter(|(id, _)| id.namespace == to.namespace)
        .any(|(_, grant)| {
            let from = grant
                .spec
                .from
                .iter()
                .any(|f| f.group == GROUP && f.kind == from_kind && f.namespace == from_ns);
            let target = grant.spec.to.iter().any(|t| {
                t.group == to_group
                    && t.kind == to_kind
                    && t.name.as_deref().is_none_or(|n| n == to.name)
            });
            from && target
        })
}

/// Why a backendRef cannot be used, with the `ResolvedRefs` reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RefProblem {
    /// `InvalidKind`, `RefNotPermitted` or `BackendNotFound`.
    pub(crate) reason: &'static str,
    /// What exactly.
    pub(crate) message: String,
}

/// A backendRef that resolves: the backend key to build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResolvedBackend {
    /// The Service port's backend.
    pub(crate) key: BackendKey,
}

/// Resolves a `backendRef` of a `route_kind` route in `route_ns`: a core
/// Service with a port, in the same namespace or one a ReferenceGrant
/// opens, that exists and has the port.
pub(crate) fn backend(
    snapshot: &Snapshot,
    route_kind: &str,
    route_ns: &str,
    reference: &BackendRef,
) -> Result<ResolvedBackend, RefProblem> {
    let group = reference.group.as_deref().unwrap_or("");
    let kind = reference.kind.as_deref().unwrap_or("Service");
    if group == POOL_GROUP && kind == "InferencePool" {
        return inference::backend(snapshot, route_kind, route_ns, reference);
    }
    if !group.is_empty() || kind != "Service" {
        let shown = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        return Err(RefProblem {
            reason: names::INVALID_KIND,
            message: format!(
                "backendRef {}: kind {shown} is not supported (core Services and InferencePools are)",
                reference.name
            ),
        });
    }
    let namespace = reference.namespace.as_deref().unwrap_or(route_ns);
    let id = NsName::new(namespace, reference.name.clone());
    if !granted(snapshot, route_kind, route_ns, "Service", &id) {
        return Err(RefProblem {
            reason: names::REF_NOT_PERMITTED,
            message: format!(
                "backendRef to Service {id} is not permitted: no ReferenceGrant in namespace {namespace} allows {route_kind}s from {route_ns}"
            ),
        });
    }
    let Some(port) = reference.port else {
        return Err(RefProblem {
            reason: names::BACKEND_NOT_FOUND,
            message: format!("backendRef to Service {id} names no port"),
        });
    };
    let key = BackendKey {
        namespace: id.namespace.as_str().into(),
        service: id.name.as_str().into(),
        port: PortRef::Number(port).as_key().into(),
        cluster_ip: false,
    };
    match resolve_key(snapshot, &key).problem {
        Some((
            Reason::ServiceNotFound | Reason::ServicePortNotFound | Reason::UnsupportedService,
            message,
        )) => Err(RefProblem {
            reason: names::BACKEND_NOT_FOUND,
            message,
        }),
        _ => Ok(ResolvedBackend { key }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Object;
    use serde_json::json;

    fn snapshot(objects: Vec<serde_json::Value>) -> Snapshot {
        let mut s = Snapshot::default();
        for o in objects {
            s.apply(Object::from_value(o).unwrap().unwrap());
        }
        s
    }

    fn service(ns: &str, name: &str) -> serde_json::Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
               "spec": {"ports": [{"port": 8080}]}})
    }

    fn grant(ns: &str, from_ns: &str, name: Option<&str>) -> serde_json::Value {
        let mut to = json!({"group": "", "kind": "Service"});
        if let Some(name) = name {
            to["name"] = json!(name);
        }
        json!({"apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
               "metadata": {"name": "g", "namespace": ns},
               "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": from_ns}],
                        "to": [to]}})
    }

    fn reference(ns: Option<&str>, name: &str, port: Option<i32>) -> BackendRef {
        BackendRef {
            name: name.to_owned(),
            namespace: ns.map(str::to_owned),
            port,
            ..BackendRef::default()
        }
    }

    fn reason(s: &Snapshot, r: &BackendRef) -> &'static str {
        match backend(s, "HTTPRoute", "app", r) {
            Ok(_) => "ok",
            Err(p) => p.reason,
        }
    }

    #[test]
    fn backend_refs_follow_the_spec_reasons() {
        let s = snapshot(vec![
            service("app", "web"),
            service("other", "db"),
            service("other", "cache"),
        ]);
        assert_eq!(reason(&s, &reference(None, "web", Some(8080))), "ok");
        assert_eq!(
            reason(&s, &reference(None, "web", Some(9))),
            "BackendNotFound"
        );
        assert_eq!(
            reason(&s, &reference(None, "nope", Some(8080))),
            "BackendNotFound"
        );
        assert_eq!(reason(&s, &reference(None, "web", None)), "BackendNotFound");
        assert_eq!(
            reason(&s, &reference(Some("other"), "db", Some(8080))),
            "RefNotPermitted"
        );
        let mut wrong_kind = reference(None, "web", Some(8080));
        wrong_kind.kind = Some("ServiceImport".to_owned());
        wrong_kind.group = Some("multicluster.x-k8s.io".to_owned());
        assert_eq!(reason(&s, &wrong_kind), "InvalidKind");

        let specific = snapshot(vec![
            service("other", "db"),
            service("other", "cache"),
            grant("other", "app", Some("db")),
        ]);
        assert_eq!(
            reason(&specific, &reference(Some("other"), "db", Some(8080))),
            "ok"
        );
        assert_eq!(
            reason(&specific, &reference(Some("other"), "cache", Some(8080))),
            "RefNotPermitted"
        );
        let all = snapshot(vec![service("other", "cache"), grant("other", "app", None)]);
        assert_eq!(
            reason(&all, &reference(Some("other"), "cache", Some(8080))),
            "ok"
        );
        let elsewhere = snapshot(vec![service("other", "cache"), grant("third", "app", None)]);
        assert_eq!(
            reason(&elsewhere, &reference(Some("other"), "cache", Some(8080))),
            "RefNotPermitted",
            "a grant counts only in the target's namespace"
        );
        assert!(
            !granted(
                &all,
                "GRPCRoute",
                "app",
                "Service",
                &NsName::new("other", "cache")
            ),
            "kinds must match"
        );
    }
}
