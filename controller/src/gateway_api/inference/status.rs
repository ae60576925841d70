//! The `status.parents` each InferencePool should have: one entry per
//! Gateway of ours through which an HTTPRoute refers to the pool (at most
//! [`MAX_PARENTS`]), with `Accepted` (the route is accepted there) and
//! `ResolvedRefs` (its `endpointPickerRef`, which is not called: the
//! message says what stands in for it). Pools no route of ours uses get
//! an empty list, which clears the entries written before.

use std::collections::{BTreeMap, BTreeSet};

use crate::endpoints::pool;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

use super::super::status::{Cond, GatewayApiStatus, RouteKind, names};
use super::super::types::GROUP;
use super::types::{InferencePool, POOL_GROUP, PoolParentReference};

/// The most parents an InferencePool status holds (the spec's limit).
pub const MAX_PARENTS: usize = 32;
/// The most routes named in an `Accepted` message.
const MAX_NAMED_ROUTES: usize = 8;

/// `HTTPRouteNotAccepted`.
const HTTP_ROUTE_NOT_ACCEPTED: &str = "HTTPRouteNotAccepted";
/// `InvalidExtensionRef`.
const INVALID_EXTENSION_REF: &str = "InvalidExtensionRef";

/// A pool's wanted status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolState {
    /// `metadata.generation`.
    pub generation: i64,
    /// One entry per Gateway of ours the pool is used through.
    pub parents: Vec<(PoolParentReference, Vec<Cond>)>,
}

/// The parent reference of a Gateway.
pub fn gateway_ref(id: &NsName) -> PoolParentReference {
    PoolParentReference {
        group: Some(GROUP.to_owned()),
        kind: Some("Gateway".to_owned()),
        name: id.name.clone(),
        namespace: Some(id.namespace.clone()),
    }
}

/// Every pool's wanted status, from the routes' (computed before).
pub fn pools(snapshot: &Snapshot, status: &GatewayApiStatus) -> BTreeMap<NsName, PoolState> {
    // Per pool, per Gateway: the routes accepted there, and those not.
    type Uses = BTreeMap<NsName, (BTreeSet<NsName>, BTreeSet<NsName>)>;
    let mut used: BTreeMap<NsName, Uses> = BTreeMap::new();
    for (route_id, route) in snapshot.http_routes() {
        let Some(state) = status.routes.get(&(RouteKind::Http, route_id.clone())) else {
            continue;
        };
        let targets: BTreeSet<NsName> = route
            .spec
            .rules()
            .iter()
            .flat_map(|rule| rule.backend_refs.iter())
            .map(|b| &b.backend_ref)
            .filter(|b| {
                b.group.as_deref() == Some(POOL_GROUP) && b.kind.as_deref() == Some("InferencePool")
            })
            .map(|b| {
                let ns = b.namespace.as_deref().unwrap_or(&route_id.namespace);
                NsName::new(ns, b.name.clone())
            })
            .filter(|id| snapshot.inference_pool(id).is_some())
            .collect();
        for parent in &state.parents {
            let gateway = NsName::new(
                parent
                    .parent_ref
                    .namespace
                    .as_deref()
                    .unwrap_or(&route_id.namespace),
                parent.parent_ref.name.clone(),
            );
            if !status.gateways.contains_key(&gateway) {
                continue;
            }
            let accepted = parent
                .conditions
                .iter()
                .any(|c| c.type_ == names::ACCEPTED && c.status);
            for target in &targets {
                let entry = used
                    .entry(target.clone())
                    .or_default()
                    .entry(gateway.clone())
                    .or_default();
                let side = if accepted { &mut entry.0 } else { &mut entry.1 };
                side.insert(route_id.clone());
            }
        }
    }
    snapshot
        .inference_pools()
        .map(|(id, pool)| {
            let parents = used
                .get(id)
                .into_iter()
                .flatten()
                .take(MAX_PARENTS)
                .map(|(gateway, (accepted, refused))| {
                    let conditions = vec![
                        accepted_cond(pool, accepted, refused),
                        resolved_cond(snapshot, id, pool),
                    ];
                    (gateway_ref(gateway), conditions)
                })
                .collect();
            let state = PoolState {
                generation: pool.metadata.generation.unwrap_or(0),
                parents,
            };
            (id.clone(), state)
        })
        .collect()
}

fn named(routes: &BTreeSet<NsName>) -> String {
    let mut names: Vec<String> = routes
        .iter()
        .take(MAX_NAMED_ROUTES)
        .map(ToString::to_string)
        .collect();
    if routes.len() > MAX_NAMED_ROUTES {
        names.push(format!("{} more", routes.len() - MAX_NAMED_ROUTES));
    }
    names.join(", ")
}

fn accepted_cond(
    pool: &InferencePool,
    accepted: &BTreeSet<NsName>,
    refused: &BTreeSet<NsName>,
) -> Cond {
    if let Err(problem) = pool::target_ports(pool) {
        return Cond::no(
            names::ACCEPTED,
            names::INVALID,
            format!("not served: {problem}; the routes' requests for it get 500"),
        );
    }
    if accepted.is_empty() {
        return Cond::no(
            names::ACCEPTED,
            HTTP_ROUTE_NOT_ACCEPTED,
            format!(
                "the HTTPRoutes using it are not accepted by this Gateway: {}",
                named(refused)
            ),
        );
    }
    Cond::yes(
        names::ACCEPTED,
        names::ACCEPTED,
        format!("a backend of HTTPRoute(s) {}", named(accepted)),
    )
}

/// What stands in for the endpoint picker, said in every `ResolvedRefs`.
const STAND_IN: &str = "edge-gateway does not call the endpoint picker: its own picker (the pool's edge-gateway.io/ annotations, else the ConfigMap's load-balance) chooses among the pool's ready Pods only, so failureMode never lets a request leave the pool";

fn resolved_cond(snapshot: &Snapshot, id: &NsName, pool: &InferencePool) -> Cond {
    let Some(epp) = &pool.spec.endpoint_picker_ref else {
        return Cond::yes(
            names::RESOLVED_REFS,
            names::RESOLVED_REFS,
            format!("no endpointPickerRef; {STAND_IN}"),
        );
    };
    let group = epp.group.as_deref().unwrap_or("");
    let kind = epp.kind.as_deref().unwrap_or("Service");
    let problem = if !group.is_empty() || kind != "Service" {
        Some(format!(
            "kind {kind} of group {group:?} is not supported (a Service is)"
        ))
    } else if epp.port.is_none() {
        Some("a Service reference needs a port".to_owned())
    } else {
        let service = NsName::new(id.namespace.clone(), epp.name.clone());
        match snapshot.service(&service) {
            None => Some(format!("Service {service} not found")),
            Some(s) if s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName") => {
                Some(format!("Service {service} is an ExternalName Service"))
            }
            Some(_) => None,
        }
    };
    let mode = epp.failure_mode.as_deref().unwrap_or("FailClose");
    match problem {
        Some(problem) => Cond::no(
            names::RESOLVED_REFS,
            INVALID_EXTENSION_REF,
            format!(
                "endpointPickerRef {}: {problem}; {STAND_IN} (failureMode {mode})",
                epp.name
            ),
        ),
        None => Cond::yes(
            names::RESOLVED_REFS,
            names::RESOLVED_REFS,
            format!(
                "endpointPickerRef {} resolved; {STAND_IN} (failureMode {mode})",
                epp.name
            ),
        ),
    }
}
