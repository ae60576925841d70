//! The Gateway API status writer: while this replica leads, it brings the
//! status of every GatewayClass, Gateway, HTTPRoute and GRPCRoute it
//! manages in line with what the last compile wants
//! ([`super::status::GatewayApiStatus`]).
//!
//! It follows the spec's rules for shared status: a read-modify-write on
//! the object as last watched (the patch carries its `resourceVersion`,
//! so a newer object makes it fail and it is redone at the next sync);
//! conditions of other types and route `parents` entries of other
//! controllers are kept as they are; a condition keeps its
//! `lastTransitionTime` while its status does not change, and one whose
//! `observedGeneration` is newer than the object seen is left alone. A
//! Gateway's `addresses` are the ones Ingress status gets.
//!
//! Every API call runs under a timeout; a failed sync is retried after
//! [`RETRY`], and at every change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::sync::watch;

use crate::cluster_error::ClusterError;
use crate::objects::NsName;

use super::inference::status::{MAX_PARENTS, PoolState, gateway_ref};
use super::status::{Cond, GatewayApiStatus, RouteKind};
use super::types::{
    GRPCRoute, Gateway, GatewayClass, GatewayClassStatus, GatewayStatus, GatewayStatusAddress,
    HTTPRoute, ListenerStatus, RouteParentStatus, RouteStatus,
};
use crate::gateway_api_types::inference::{InferencePool, InferencePoolStatus, PoolParentStatus};

/// How long one API call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How soon a failed sync is tried again.
const RETRY: Duration = Duration::from_secs(2);
/// The longest condition message the API server accepts.
const MAX_MESSAGE: usize = 32 * 1024;

/// The objects as last watched, whose status the writer merges into.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// GatewayClasses by name.
    pub classes: BTreeMap<String, Arc<GatewayClass>>,
    /// Gateways.
    pub gateways: BTreeMap<NsName, Arc<Gateway>>,
    /// HTTPRoutes.
    pub http_routes: BTreeMap<NsName, Arc<HTTPRoute>>,
    /// GRPCRoutes.
    pub grpc_routes: BTreeMap<NsName, Arc<GRPCRoute>>,
    /// InferencePools.
    pub inference_pools: BTreeMap<NsName, Arc<InferencePool>>,
}

/// What the writer gets after each change: the wanted status and the
/// objects as they are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayApiReport {
    /// The last compile's wanted status.
    pub wanted: Arc<GatewayApiStatus>,
    /// The objects as last watched.
    pub observed: Observed,
}

/// Where the Gateway addresses come from.
pub type Addresses = Vec<GatewayStatusAddress>;

/// Writes status while this replica leads, until `stop`. `addresses`
/// finds the addresses to publish (as for Ingress status).
pub(crate) async fn run<F, Fut>(
    client: Client,
    mut leading: watch::Receiver<bool>,
    mut reports: watch::Receiver<GatewayApiReport>,
    mut stop: watch::Receiver<bool>,
    interval: Duration,
    addresses: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Addresses, ClusterError>>,
{
    let mut failing = false;
    loop {
        let wait = if failing { RETRY } else { interval };
        tokio::select! {
            _ = reports.changed() => {}
            _ = leading.changed() => {}
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if !*leading.borrow() {
            continue;
        }
        let report = reports.borrow().clone();
        let result = match addresses().await {
            Ok(addresses) => sync(&client, &report, &addresses).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) if failing => {
                tracing::info!("Gateway API status writes work again");
                failing = false;
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "Gateway API status not written; retrying");
                }
                failing = true;
            }
        }
    }
}

/// Writes every status that differs from the wanted one.
async fn sync(
    client: &Client,
    report: &GatewayApiReport,
    addresses: &[GatewayStatusAddress],
) -> Result<(), ClusterError> {
    let wanted = &report.wanted;
    let now = Time(jiff::Timestamp::now());
    let mut first_error = None;
    let mut note = |result: Result<(), ClusterError>| {
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    };
    for (name, class) in &wanted.classes {
        let Some(object) = report.observed.classes.get(name) else {
            continue;
        };
        let old = object.status.clone().unwrap_or_default();
        let new = GatewayClassStatus {
            conditions: merge(&old.conditions, &class.conditions, class.generation, &now),
        };
        if new != old {
            note(
                patch(
                    Api::<GatewayClass>::all(client.clone()),
                    object.as_ref(),
                    &new,
                )
                .await,
            );
        }
    }
    for (id, gateway) in &wanted.gateways {
        let Some(object) = report.observed.gateways.get(id) else {
            continue;
        };
        let old = object.status.clone().unwrap_or_default();
        let listeners = gateway
            .listeners
            .iter()
            .map(|l| {
                let previous = old.listeners.iter().find(|p| p.name == l.name);
                ListenerStatus {
                    name: l.name.clone(),
                    supported_kinds: l.supported_kinds.clone(),
                    attached_routes: l.attached_routes,
                    conditions: merge(
                        previous.map_or(&[][..], |p| &p.conditions),
                        &l.conditions,
                        gateway.generation,
                        &now,
                    ),
                }
            })
            .collect();
        let new = GatewayStatus {
            addresses: addresses.to_vec(),
            conditions: merge(
                &old.conditions,
                &gateway.conditions,
                gateway.generation,
                &now,
            ),
            listeners,
        };
        if new != old {
            let api = Api::<Gateway>::namespaced(client.clone(), &id.namespace);
            note(patch(api, object.as_ref(), &new).await);
        }
    }
    for ((kind, id), route) in &wanted.routes {
        let old = match kind {
            RouteKind::Http => report
                .observed
                .http_routes
                .get(id)
                .map(|r| r.status.clone()),
            RouteKind::Grpc => report
                .observed
                .grpc_routes
                .get(id)
                .map(|r| r.status.clone()),
        };
        let Some(old) = old else { continue };
        let old = old.unwrap_or_default();
        let new = route_status(&old, route, &wanted.controller_name, &now);
        if new == old {
            continue;
        }
        let result = match kind {
            RouteKind::Http => match report.observed.http_routes.get(id) {
                Some(object) => {
                    let api = Api::<HTTPRoute>::namespaced(client.clone(), &id.namespace);
                    patch(api, object.as_ref(), &new).await
                }
                None => Ok(()),
            },
            RouteKind::Grpc => match report.observed.grpc_routes.get(id) {
                Some(object) => {
                    let api = Api::<GRPCRoute>::namespaced(client.clone(), &id.namespace);
                    patch(api, object.as_ref(), &new).await
                }
                None => Ok(()),
            },
        };
        note(result);
    }
    for (id, pool) in &wanted.pools {
        let Some(object) = report.observed.inference_pools.get(id) else {
            continue;
        };
        let old = object.status.clone().unwrap_or_default();
        let new = pool_status(&old, pool, wanted, &now);
        if new != old {
            let api = Api::<InferencePool>::namespaced(client.clone(), &id.namespace);
            note(patch(api, object.as_ref(), &new).await);
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// A route's status: other controllers' parents as they are, ours as wanted.
fn route_status(
    old: &RouteStatus,
    wanted: &super::status::RouteState,
    controller: &str,
    now: &Time,
) -> RouteStatus {
    let mut parents: Vec<RouteParentStatus> = old
        .parents
        .iter()
        .filter(|p| p.controller_name != controller)
        .cloned()
        .collect();
    for parent in &wanted.parents {
        let previous = old
            .parents
            .iter()
            .find(|p| p.controller_name == controller && p.parent_ref == parent.parent_ref);
        parents.push(RouteParentStatus {
            parent_ref: parent.parent_ref.clone(),
            controller_name: controller.to_owned(),
            conditions: merge(
                previous.map_or(&[][..], |p| &p.conditions),
                &parent.conditions,
                wanted.generation,
                now,
            ),
        });
    }
    RouteStatus { parents }
}

/// An InferencePool's status: the entries for Gateways that are not ours
/// as they are (a pool's parents carry no controller name: a Gateway of
/// one of our classes is ours), ours as wanted, at most [`MAX_PARENTS`].
fn pool_status(
    old: &InferencePoolStatus,
    wanted: &PoolState,
    all: &GatewayApiStatus,
    now: &Time,
) -> InferencePoolStatus {
    let ours: Vec<_> = all.gateways.keys().map(gateway_ref).collect();
    let is_ours = |r: &crate::gateway_api_types::inference::PoolParentReference| {
        ours.iter()
            .any(|o| o.name == r.name && o.namespace == r.namespace)
    };
    let mut parents: Vec<PoolParentStatus> = old
        .parents
        .iter()
        .filter(|p| !is_ours(&p.parent_ref))
        .cloned()
        .collect();
    for (parent_ref, conditions) in &wanted.parents {
        if parents.len() >= MAX_PARENTS {
            break;
        }
        let previous = old.parents.iter().find(|p| {
            p.parent_ref.name == parent_ref.name && p.parent_ref.namespace == parent_ref.namespace
        });
        parents.push(PoolParentStatus {
            conditions: merge(
                previous.map_or(&[][..], |p| &p.conditions),
                conditions,
                wanted.generation,
                now,
            ),
            parent_ref: parent_ref.clone(),
        });
    }
    InferencePoolStatus { parents }
}

/// Merges wanted conditions into the current ones: others' types kept,
/// ours replaced, each keeping its transition time while its status holds;
/// a current condition observed at a newer generation is left alone.
fn merge(current: &[Condition], wanted: &[Cond], generation: i64, now: &Time) -> Vec<Condition> {
    let ours: Vec<&str> = wanted.iter().map(|c| c.type_).collect();
    let mut out: Vec<Condition> = current
        .iter()
        .filter(|c| !ours.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    for cond in wanted {
        let status = if cond.status { "True" } else { "False" };
        let previous = current.iter().find(|c| c.type_ == cond.type_);
        if let Some(previous) = previous
            && previous.observed_generation.is_some_and(|g| g > generation)
        {
            out.push(previous.clone());
            continue;
        }
        let since = previous
            .filter(|p| p.status == status)
            .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
        out.push(Condition {
            type_: cond.type_.to_owned(),
            status: status.to_owned(),
            reason: cond.reason.to_owned(),
            message: truncate(&cond.message),
            observed_generation: Some(generation),
            last_transition_time: since,
        });
    }
    out
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_owned()
}

/// Patches an object's status, guarded by the `resourceVersion` it was
/// read at; a deleted object is nothing to write.
async fn patch<K, S>(api: Api<K>, object: &K, status: &S) -> Result<(), ClusterError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let meta = object.meta();
    let Some(name) = meta.name.as_deref() else {
        return Ok(());
    };
    let body = json!({
        "metadata": {"resourceVersion": meta.resource_version},
        "status": status,
    });
    let (params, patch) = (PatchParams::default(), Patch::Merge(&body));
    let call = api.patch_status(name, &params, &patch);
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(_)) => {
            tracing::debug!(object = name, "Gateway API status written");
            Ok(())
        }
        Ok(Err(kube::Error::Api(status))) if status.is_not_found() => Ok(()),
        Ok(Err(error)) => Err(ClusterError::Api(error)),
        Err(_) => Err(ClusterError::Timeout("patching Gateway API status")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::status::names;
    use super::*;

    fn condition(type_: &str, status: &str, generation: i64, at: i64) -> Condition {
        Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: "R".to_owned(),
            message: String::new(),
            observed_generation: Some(generation),
            last_transition_time: Time(jiff::Timestamp::from_second(at).unwrap()),
        }
    }

    #[test]
    fn merges_keep_foreign_conditions_and_transition_times() {
        let now = Time(jiff::Timestamp::from_second(1000).unwrap());
        let current = vec![
            condition("Accepted", "True", 1, 10),
            condition("Programmed", "True", 1, 10),
            condition("example.com/Custom", "True", 1, 10),
        ];
        let wanted = vec![
            Cond::yes(names::ACCEPTED, names::ACCEPTED, "ok"),
            Cond::no(names::PROGRAMMED, names::INVALID, "no"),
        ];
        let merged = merge(&current, &wanted, 2, &now);
        let get = |t: &str| merged.iter().find(|c| c.type_ == t).unwrap();
        assert_eq!(
            get("example.com/Custom").last_transition_time.0.as_second(),
            10
        );
        assert_eq!(
            get("Accepted").last_transition_time.0.as_second(),
            10,
            "unchanged status keeps its time"
        );
        assert_eq!(get("Accepted").observed_generation, Some(2));
        assert_eq!(get("Programmed").last_transition_time.0.as_second(), 1000);
        assert_eq!(get("Programmed").status, "False");
        // A condition from a newer generation is not overwritten.
        let newer = vec![condition("Accepted", "False", 5, 10)];
        let kept = merge(&newer, &wanted[..1], 2, &now);
        assert_eq!(kept[0].status, "False");
    }

    #[test]
    fn route_status_keeps_other_controllers_parents() {
        let now = Time(jiff::Timestamp::from_second(1000).unwrap());
        let parent = |name: &str| super::super::types::ParentReference {
            name: name.to_owned(),
            ..Default::default()
        };
        let old = RouteStatus {
            parents: vec![
                RouteParentStatus {
                    parent_ref: parent("theirs"),
                    controller_name: "other.io/gw".to_owned(),
                    conditions: vec![condition("Accepted", "True", 1, 10)],
                },
                RouteParentStatus {
                    parent_ref: parent("stale"),
                    controller_name: "me.io/gw".to_owned(),
                    conditions: vec![],
                },
            ],
        };
        let wanted = super::super::status::RouteState {
            generation: 1,
            parents: vec![super::super::status::ParentState {
                parent_ref: parent("mine"),
                conditions: vec![Cond::yes(names::ACCEPTED, names::ACCEPTED, "ok")],
            }],
        };
        let new = route_status(&old, &wanted, "me.io/gw", &now);
        let names: Vec<&str> = new
            .parents
            .iter()
            .map(|p| p.parent_ref.name.as_str())
            .collect();
        assert_eq!(names, ["theirs", "mine"]);
    }

    #[test]
    fn pool_status_keeps_other_gateways_and_drops_our_stale_entries() {
        use super::super::status::GatewayState;
        use crate::gateway_api_types::inference::PoolParentReference;
        let now = Time(jiff::Timestamp::from_second(1000).unwrap());
        let gateway = |ns: &str, name: &str| PoolParentReference {
            group: Some("gateway.networking.k8s.io".to_owned()),
            kind: Some("Gateway".to_owned()),
            name: name.to_owned(),
            namespace: Some(ns.to_owned()),
        };
        let entry = |r: PoolParentReference| PoolParentStatus {
            conditions: vec![condition("Accepted", "True", 1, 10)],
            parent_ref: r,
        };
        let old = InferencePoolStatus {
            parents: vec![
                entry(gateway("infra", "theirs")),
                entry(gateway("infra", "stale")),
                entry(gateway("infra", "gw")),
            ],
        };
        let mut all = GatewayApiStatus::default();
        for name in ["stale", "gw"] {
            all.gateways
                .insert(NsName::new("infra", name), GatewayState::default());
        }
        let wanted = PoolState {
            generation: 2,
            parents: vec![(
                gateway("infra", "gw"),
                vec![Cond::yes(names::ACCEPTED, names::ACCEPTED, "ok")],
            )],
        };
        let new = pool_status(&old, &wanted, &all, &now);
        let names: Vec<&str> = new
            .parents
            .iter()
            .map(|p| p.parent_ref.name.as_str())
            .collect();
        assert_eq!(names, ["theirs", "gw"]);
        let ours = &new.parents[1].conditions[0];
        assert_eq!(
            ours.last_transition_time.0.as_second(),
            10,
            "unchanged status keeps its time"
        );
        assert_eq!(ours.observed_generation, Some(2));
        // Others' entries are kept as they are; ours are added only within
        // the spec's 32.
        let crowded = InferencePoolStatus {
            parents: (0..40)
                .map(|i| entry(gateway("x", &format!("g{i}"))))
                .collect(),
        };
        assert_eq!(pool_status(&crowded, &wanted, &all, &now).parents.len(), 40);
        let wanted_many = PoolState {
            generation: 1,
            parents: (0..40)
                .map(|i| (gateway("infra", &format!("w{i}")), Vec::new()))
                .collect(),
        };
        let empty = InferencePoolStatus::default();
        assert_eq!(
            pool_status(&empty, &wanted_many, &all, &now).parents.len(),
            MAX_PARENTS
        );
    }
}
