//! The Gateway API Inference Extension beside the Gateway API: an
//! `InferencePool` (`inference.networking.k8s.io/v1`) is an HTTPRoute
//! backend like a Service, resolved to the ready Pods its selector
//! matches on its target ports and balanced by this gateway's own
//! inference-aware pickers; `InferenceObjective`s
//! (`inference.networking.x-k8s.io/v1alpha2`) give the requests naming
//! them (header [`OBJECTIVE_HEADER`]) a criticality from their priority.
//! `docs/gateway-api.md` ("InferencePool backends") is the user's view.
//!
//! The pool's `endpointPickerRef` is not called (no ext-proc hop): the
//! gateway's picker stands in for it and only ever picks among the pool's
//! ready Pods, whatever `failureMode` says; the pool's status says so.
//!
//! - [`types`]: the kinds and the slim Pod (in [`crate::gateway_api_types`]);
//! - [`pool`]: selection, validation, endpoints and the pool's picker;
//! - [`status`]: the `status.parents` each pool should have.

pub mod pool;
pub mod status;
pub use crate::gateway_api_types::inference as types;

use std::sync::Arc;

use gateway::RouteTableBuilder;
use gateway::balance::{ClassByHeader, Criticality, RouteSignals};
use gateway::settings::ProxySettings;
use gateway::table::BackendId;
use http::HeaderName;

use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::snapshot::Snapshot;

use super::refs::{RefProblem, ResolvedBackend, granted_in};
use super::status::names;
use super::types::BackendRef;
use types::POOL_GROUP;

/// The request header naming an InferenceObjective (the spec's).
pub const OBJECTIVE_HEADER: &str = "x-gateway-inference-objective";

/// Resolves a backendRef to an InferencePool: in the route's namespace or
/// one a ReferenceGrant opens (`to` group `inference.networking.k8s.io`,
/// kind `InferencePool`), existing and servable. A `port` on the
/// reference must be one of the pool's target ports.
pub(crate) fn backend(
    snapshot: &Snapshot,
    route_kind: &str,
    route_ns: &str,
    reference: &BackendRef,
) -> Result<ResolvedBackend, RefProblem> {
    let namespace = reference.namespace.as_deref().unwrap_or(route_ns);
    let id = NsName::new(namespace, reference.name.clone());
    if !granted_in(
        snapshot,
        route_kind,
        route_ns,
        (POOL_GROUP, "InferencePool"),
        &id,
    ) {
        return Err(RefProblem {
            reason: names::REF_NOT_PERMITTED,
            message: format!(
                "backendRef to InferencePool {id} is not permitted: no ReferenceGrant in namespace {namespace} allows {route_kind}s from {route_ns}"
            ),
        });
    }
    let not_found = |message: String| RefProblem {
        reason: names::BACKEND_NOT_FOUND,
        message,
    };
    let Some(pool) = snapshot.inference_pool(&id) else {
        return Err(not_found(format!("InferencePool {id} not found")));
    };
    let ports = crate::endpoints::pool::target_ports(pool)
        .map_err(|e| not_found(format!("InferencePool {id} cannot be served: {e}")))?;
    if let Some(port) = reference.port
        && !ports.iter().any(|p| i32::from(*p) == port)
    {
        return Err(not_found(format!(
            "backendRef to InferencePool {id}: port {port} is not one of its targetPorts"
        )));
    }
    Ok(ResolvedBackend {
        key: crate::endpoints::pool::key(&id),
    })
}

/// Gives a pool's backend its picker (the pool's annotations over the
/// ConfigMap defaults) and the routes to it what the picker needs from
/// each request: the body read for prefix or LoRA affinity, the pool's
/// `criticality` keys, and the classes of its InferenceObjectives.
pub(crate) fn configure(
    snapshot: &Snapshot,
    builder: &mut RouteTableBuilder,
    id: BackendId,
    pool_id: &NsName,
    settings: &mut ProxySettings,
    defaults: &RouteSignals,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Some(pool) = snapshot.inference_pool(pool_id) else {
        return;
    };
    let default_policy = builder.default_backend_policy();
    let picked = pool::picker(pool, &default_policy);
    let object = ObjectKey {
        kind: Kind::InferencePool,
        id: pool_id.clone(),
    };
    let current = builder.backend_policy(id);
    if current.is_none_or(|c| *c == *default_policy) {
        builder.set_backend_policy(id, Arc::new(picked.policy));
        for problem in picked.problems {
            diagnostics.push(Diagnostic {
                object: object.clone(),
                reason: Reason::GatewayApi,
                message: problem,
            });
        }
    }
    let signals = &mut settings.signals;
    signals.body_peek = signals.body_peek.max(picked.signals.body_peek);
    // The pool's keys win over the ConfigMap's; with several pools in one
    // rule, the first that sets one.
    if picked.signals.criticality.is_some() && signals.criticality == defaults.criticality {
        signals.criticality = picked.signals.criticality;
    }
    if picked.signals.criticality_header.is_some()
        && signals.criticality_header == defaults.criticality_header
    {
        signals.criticality_header = picked.signals.criticality_header;
    }
    let (table, left_out) = objectives(snapshot, pool_id);
    if left_out > 0 {
        diagnostics.push(Diagnostic {
            object,
            reason: Reason::GatewayApi,
            message: format!(
                "{left_out} InferenceObjectives beyond the first {MAX_OBJECTIVES} (by name) are not read; requests naming them get the route's class"
            ),
        });
    }
    if table.is_empty() {
        return;
    }
    match &mut signals.class_by_header {
        Some(current) => Arc::make_mut(current).merge(&table),
        None => signals.class_by_header = Some(Arc::new(table)),
    }
}

/// The most InferenceObjectives read per pool.
pub const MAX_OBJECTIVES: usize = 256;

/// The classes of a pool's InferenceObjectives (those of its namespace
/// whose `poolRef` names it), read from [`OBJECTIVE_HEADER`], and how
/// many were left out beyond [`MAX_OBJECTIVES`].
pub fn objectives(snapshot: &Snapshot, pool_id: &NsName) -> (ClassByHeader, usize) {
    let mine: Vec<(String, Criticality)> = snapshot
        .inference_objectives_in(&pool_id.namespace)
        .filter(|(_, o)| {
            let r = &o.spec.pool_ref;
            r.name == pool_id.name
                && r.group.as_deref().is_none_or(|g| g == POOL_GROUP)
                && r.kind.as_deref().is_none_or(|k| k == "InferencePool")
        })
        .map(|(id, o)| (id.name.clone(), criticality(o.spec.priority)))
        .collect();
    let left_out = mine.len().saturating_sub(MAX_OBJECTIVES);
    let header = HeaderName::from_static(OBJECTIVE_HEADER);
    (
        ClassByHeader::new(header, mine.into_iter().take(MAX_OBJECTIVES)),
        left_out,
    )
}

/// The criticality an InferenceObjective's `priority` maps to, as the
/// spec's flow control treats it: negative priorities are shed first
/// under saturation (`sheddable`), `0` or unset is `standard`, a positive
/// priority is served first (`critical`).
pub fn criticality(priority: Option<i64>) -> Criticality {
    match priority.unwrap_or(0) {
        p if p < 0 => Criticality::Sheddable,
        0 => Criticality::Standard,
        _ => Criticality::Critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pools_objectives_class_the_requests_naming_them() {
        use crate::objects::Object;
        use serde_json::json;
        let mut s = Snapshot::default();
        let objective = |ns: &str, name: &str, pool: &str, priority: Option<i64>| {
            let mut spec = json!({"poolRef": {"name": pool}});
            if let Some(p) = priority {
                spec["priority"] = json!(p);
            }
            Object::from_value(json!({
                "apiVersion": "inference.networking.x-k8s.io/v1alpha2", "kind": "InferenceObjective",
                "metadata": {"name": name, "namespace": ns}, "spec": spec}))
            .unwrap()
            .unwrap()
        };
        s.apply(objective("ns", "batch", "p", Some(-5)));
        s.apply(objective("ns", "chat", "p", Some(10)));
        s.apply(objective("ns", "plain", "p", None));
        s.apply(objective("ns", "elsewhere", "q", Some(10)));
        s.apply(objective("other", "foreign", "p", Some(10)));
        let (table, left_out) = objectives(&s, &NsName::new("ns", "p"));
        assert_eq!(left_out, 0);
        assert_eq!(table.len(), 3);
        let expected = ClassByHeader::new(
            HeaderName::from_static(OBJECTIVE_HEADER),
            [
                ("batch".to_owned(), Criticality::Sheddable),
                ("chat".to_owned(), Criticality::Critical),
                ("plain".to_owned(), Criticality::Standard),
            ],
        );
        assert_eq!(table, expected);
        for i in 0..MAX_OBJECTIVES + 3 {
            s.apply(objective("ns", &format!("o{i:04}"), "p", Some(1)));
        }
        let (table, left_out) = objectives(&s, &NsName::new("ns", "p"));
        assert_eq!((table.len(), left_out), (MAX_OBJECTIVES, 6));
    }

    #[test]
    fn priorities_map_onto_criticality() {
        assert_eq!(criticality(Some(-1)), Criticality::Sheddable);
        assert_eq!(criticality(None), Criticality::Standard);
        assert_eq!(criticality(Some(0)), Criticality::Standard);
        assert_eq!(criticality(Some(10)), Criticality::Critical);
    }
}
