//! The Gateway API's `compile()` entry: Gateways, HTTPRoutes and
//! GRPCRoutes into the same [`RouteTableBuilder`] the Ingresses were
//! compiled into, and the status every object should have.
//!
//! Routes are taken oldest first (then by namespace/name), and their
//! matches are added to the table in the spec's precedence order: exact
//! path, then expression, then the longest prefix (the table's own
//! order), and among matches of one path: the most characters, a method,
//! the most header matches, the most query matches, the oldest route, the
//! first namespace/name, the first rule, the first match. The table tries
//! a path's matches in the order they were added.

use gateway::host::HostPattern;
use gateway::path::PathKind;
use gateway::policy::Policy;
use gateway::settings::ProxySettings;
use gateway::{Route, RouteSource, RouteTableBuilder};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::HashMap;

use crate::certs::CertCache;
use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::snapshot::Snapshot;

use super::GatewayApiOptions;
use super::attach::{self, Attachment, Parent};
use super::build::built_rule;
use super::grpc::grpc_rule;
use super::listeners::{self, Gateways};
use super::place::{Order, Pending, add_routes, certificates};
use super::rules::{CompiledRule, PathSpec, http_rule};
use super::status::{Cond, GatewayApiStatus, ParentState, RouteKind, RouteState, names};
use super::types::ParentReference;

/// The most hostnames and parentRefs a route may have (the spec's limits).
const MAX_HOSTNAMES: usize = 16;
const MAX_PARENTS: usize = 32;
const MAX_RULES: usize = 16;

/// Per listener, the hostnames a route kind serves there (and which
/// route), to keep HTTPRoutes and GRPCRoutes apart.
type Claims = HashMap<usize, Vec<(Option<HostPattern>, RouteKind, NsName)>>;

/// What the Gateway API compile leaves besides the routes it added.
#[derive(Debug, Default)]
pub struct Output {
    /// The status each object should have.
    pub status: GatewayApiStatus,
    /// Diagnostics (logged; the statuses say the same to the API).
    pub diagnostics: Vec<Diagnostic>,
}

/// Proxy settings and policy the Gateway API routes start from (the
/// ConfigMap's, as for Ingresses).
#[derive(Debug)]
pub struct Defaults<'a> {
    /// Proxy settings.
    pub proxy: &'a ProxySettings,
    /// Policy.
    pub policy: &'a Policy,
}

/// A route of either kind, as the compile needs it.
struct RouteObject<'s> {
    kind: RouteKind,
    id: &'s NsName,
    meta: &'s ObjectMeta,
    parents: &'s [ParentReference],
    hostnames: &'s [String],
    rules: Vec<CompiledRule>,
}

/// Compiles the Gateway API objects of `snapshot` into `builder`.
pub fn compile(
    builder: &mut RouteTableBuilder,
    snapshot: &Snapshot,
    options: &GatewayApiOptions,
    defaults: &Defaults<'_>,
    certs: &mut CertCache,
    now: i64,
) -> Output {
    let mut out = Output::default();
    out.status.controller_name = options.controller_name.clone();
    let mut gateways = listeners::compile(snapshot, options, certs, now, &mut out.status);
    for (id, entry) in &gateways.gateways {
        if let Some(refusal) = &entry.refusal {
            out.diagnostics.push(diagnostic(
                Kind::Gateway,
                id,
                format!("not accepted: {refusal}"),
            ));
        }
    }
    let mut routes = route_objects(snapshot);
    routes.sort_by(|a, b| {
        (&a.meta.creation_timestamp, a.id, a.kind).cmp(&(&b.meta.creation_timestamp, b.id, b.kind))
    });
    let mut pending = Vec::new();
    let mut claims: Claims = HashMap::new();
    for route in &routes {
        let state = attach_route(
            &mut gateways,
            snapshot,
            route,
            defaults,
            builder,
            &mut claims,
            &mut pending,
            &mut out.diagnostics,
        );
        out.status
            .routes
            .insert((route.kind, route.id.clone()), state);
    }
    pending.sort_by(|a, b| a.order.cmp(&b.order));
    add_routes(builder, &gateways, pending, &mut out.diagnostics);
    certificates(builder, &gateways);
    gateways.record(&mut out.status);
    out.status.pools = super::inference::status::pools(snapshot, &out.status);
    for (namespace, count) in snapshot.pods_over_cap() {
        for (id, _) in snapshot.inference_pools_in(namespace) {
            out.diagnostics.push(diagnostic(
                Kind::InferencePool,
                id,
                format!(
                    "{count} Pods of namespace {namespace} beyond the {} kept per namespace are not seen: this pool may miss members",
                    crate::snapshot::MAX_PODS_PER_NAMESPACE
                ),
            ));
        }
    }
    out
}

/// What a compile with the Gateway API off says: each Gateway is named
/// once, so that nothing is ignored silently.
pub fn disabled(snapshot: &Snapshot) -> Output {
    let diagnostics = snapshot
        .gateways()
        .map(|(id, _)| {
            diagnostic(
                Kind::Gateway,
                id,
                "the Gateway API is off (--enable-gateway-api); this Gateway and its routes are not served".to_owned(),
            )
        })
        .collect();
    Output {
        status: GatewayApiStatus::default(),
        diagnostics,
    }
}

fn diagnostic(kind: Kind, id: &NsName, message: String) -> Diagnostic {
    Diagnostic {
        object: ObjectKey {
            kind,
            id: id.clone(),
        },
        reason: Reason::GatewayApi,
        message,
    }
}

fn route_kind(kind: RouteKind) -> Kind {
    match kind {
        RouteKind::Http => Kind::HTTPRoute,
        RouteKind::Grpc => Kind::GRPCRoute,
    }
}

/// Every HTTPRoute and GRPCRoute with its rules compiled.
fn route_objects(snapshot: &Snapshot) -> Vec<RouteObject<'_>> {
    let http = snapshot.http_routes().map(|(id, r)| {
        let rules = r.spec.rules();
        RouteObject {
            kind: RouteKind::Http,
            id,
            meta: &r.metadata,
            parents: &r.spec.parent_refs,
            hostnames: &r.spec.hostnames,
            rules: rules
                .iter()
                .take(MAX_RULES)
                .enumerate()
                .map(|(i, rule)| http_rule(snapshot, &id.namespace, i, rule))
                .collect(),
        }
    });
    let grpc = snapshot.grpc_routes().map(|(id, r)| {
        let rules: Vec<CompiledRule> = if r.spec.rules.is_empty() {
            vec![grpc_rule(snapshot, &id.namespace, 0, &Default::default())]
        } else {
            r.spec
                .rules
                .iter()
                .take(MAX_RULES)
                .enumerate()
                .map(|(i, rule)| grpc_rule(snapshot, &id.namespace, i, rule))
                .collect()
        };
        RouteObject {
            kind: RouteKind::Grpc,
            id,
            meta: &r.metadata,
            parents: &r.spec.parent_refs,
            hostnames: &r.spec.hostnames,
            rules,
        }
    });
    http.chain(grpc).collect()
}

/// The route-wide conditions: `Accepted` as far as its rules decide it,
/// `ResolvedRefs`, and `PartiallyInvalid` when some rules are dropped.
struct RuleVerdict {
    /// `Err` when no rule can be served.
    accepted: Result<(), Cond>,
    resolved: Cond,
    partially: Option<Cond>,
}

fn rule_verdict(route: &RouteObject<'_>, hostnames: Result<(), String>) -> RuleVerdict {
    let mut refused: Vec<String> = Vec::new();
    let mut first_reason = names::UNSUPPORTED_VALUE;
    for rule in &route.rules {
        if let Err(problem) = &rule.behaviour {
            if refused.is_empty() {
                first_reason = problem.reason;
            }
            refused.push(format!("rule {}: {}", rule.index, problem.message));
        }
    }
    let mut unresolved: Vec<(&'static str, String)> = Vec::new();
    for rule in &route.rules {
        let Ok(behaviour) = &rule.behaviour else {
            continue;
        };
        for backend in &behaviour.backends {
            if let Err(problem) = &backend.target {
                unresolved.push((problem.reason, problem.message.clone()));
            }
        }
        for mirror in &behaviour.mirrors {
            if let Err(problem) = &mirror.target {
                let message = format!("rule {}: {}", rule.index, problem.message);
                unresolved.push((problem.reason, message));
            }
        }
        if let Some(extension) = &behaviour.extension {
            unresolved.push((
                names::INVALID_KIND,
                format!(
                    "rule {}: extensionRef {extension} is not supported; its requests get 500",
                    rule.index
                ),
            ));
        }
    }
    let resolved = match unresolved.first() {
        None => Cond::yes(
            names::RESOLVED_REFS,
            names::RESOLVED_REFS,
            "all references resolved",
        ),
        Some((reason, _)) => Cond::no(
            names::RESOLVED_REFS,
            reason,
            unresolved
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        ),
    };
    let accepted = match hostnames {
        Err(message) => Err(Cond::no(names::ACCEPTED, names::UNSUPPORTED_VALUE, message)),
        Ok(()) if refused.len() == route.rules.len() => Err(Cond::no(
            names::ACCEPTED,
            first_reason,
            format!(
                "no rule can be served: {}; their requests get 500",
                refused.join("; ")
            ),
        )),
        Ok(()) => Ok(()),
    };
    let partially = (accepted.is_ok() && !refused.is_empty()).then(|| {
        Cond::yes(
            names::PARTIALLY_INVALID,
            first_reason,
            format!(
                "Dropped Rule(s): {}; their requests get 500",
                refused.join("; ")
            ),
        )
    });
    RuleVerdict {
        accepted,
        resolved,
        partially,
    }
}

/// Attaches one route to its parents, queueing its matches and returning
/// its status.
#[allow(clippy::too_many_arguments)]
fn attach_route(
    gateways: &mut Gateways,
    snapshot: &Snapshot,
    route: &RouteObject<'_>,
    defaults: &Defaults<'_>,
    builder: &mut RouteTableBuilder,
    claims: &mut Claims,
    pending: &mut Vec<Pending>,
    diagnostics: &mut Vec<Diagnostic>,
) -> RouteState {
    let mut state = RouteState {
        generation: route.meta.generation.unwrap_or(0),
        parents: Vec::new(),
    };
    let hostnames: Result<Vec<HostPattern>, String> = if route.hostnames.len() > MAX_HOSTNAMES {
        Err(format!("more than {MAX_HOSTNAMES} hostnames"))
    } else {
        route
            .hostnames
            .iter()
            .map(|h| match HostPattern::parse_suffix(h) {
                Ok(p) if h.parse::<std::net::IpAddr>().is_err() => Ok(p),
                Ok(_) => Err(format!("hostname {h:?}: IP addresses are not hostnames")),
                Err(e) => Err(format!("hostname {h:?}: {e}")),
            })
            .collect()
    };
    let verdict = rule_verdict(route, hostnames.as_ref().map(|_| ()).map_err(Clone::clone));
    let hostnames = hostnames.unwrap_or_default();
    let object = ObjectKey {
        kind: route_kind(route.kind),
        id: route.id.clone(),
    };
    let mut seen: Vec<&ParentReference> = Vec::new();
    for parent in route.parents.iter().take(MAX_PARENTS) {
        if seen.contains(&parent) {
            continue;
        }
        seen.push(parent);
        let attached = attach::attach(
            gateways,
            snapshot,
            route.kind,
            &route.id.namespace,
            &hostnames,
            parent,
        );
        let accepted = match attached {
            Parent::NotOurs => continue,
            Parent::Refused(cond) => Err(cond),
            Parent::Attached(attachments) => match &verdict.accepted {
                Err(cond) => Err(cond.clone()),
                Ok(()) => claim(claims, route, attachments),
            },
        };
        let mut conditions = Vec::new();
        match accepted {
            Ok(attachments) => {
                conditions.push(Cond::yes(names::ACCEPTED, names::ACCEPTED, "accepted"));
                for attachment in &attachments {
                    let listener = &mut gateways.listeners[attachment.listener];
                    listener.attached += 1;
                    listener
                        .hosts
                        .extend(attachment.hosts.iter().flatten().cloned());
                }
                queue(
                    gateways,
                    snapshot,
                    route,
                    defaults,
                    builder,
                    &attachments,
                    &object,
                    pending,
                    diagnostics,
                );
            }
            Err(cond) => {
                diagnostics.push(Diagnostic {
                    object: object.clone(),
                    reason: Reason::GatewayApi,
                    message: format!("not accepted by Gateway {}: {}", parent.name, cond.message),
                });
                conditions.push(cond);
            }
        }
        conditions.push(verdict.resolved.clone());
        if let Some(partially) = &verdict.partially {
            conditions.push(partially.clone());
        }
        state.parents.push(ParentState {
            parent_ref: parent.clone(),
            conditions,
        });
    }
    if !verdict.resolved.status && !state.parents.is_empty() {
        diagnostics.push(Diagnostic {
            object: object.clone(),
            reason: Reason::GatewayApi,
            message: verdict.resolved.message.clone(),
        });
    }
    if let Some(partially) = &verdict.partially
        && !state.parents.is_empty()
    {
        diagnostics.push(Diagnostic {
            object,
            reason: Reason::GatewayApi,
            message: partially.message.clone(),
        });
    }
    state
}

/// Keeps HTTPRoutes and GRPCRoutes apart on a listener: a hostname one
/// kind serves there is not served to the other (the older route keeps
/// it, as the spec requires). `Err` when nothing is left.
fn claim(
    claims: &mut Claims,
    route: &RouteObject<'_>,
    attachments: Vec<Attachment>,
) -> Result<Vec<Attachment>, Cond> {
    let mut kept = Vec::new();
    let mut taken_by: Option<NsName> = None;
    for mut attachment in attachments {
        let held = claims.entry(attachment.listener).or_default();
        attachment.hosts.retain(|host| {
            let other = held
                .iter()
                .find(|(h, kind, _)| *kind != route.kind && overlaps(h.as_ref(), host.as_ref()));
            if let Some((_, _, id)) = other {
                taken_by = Some(id.clone());
                return false;
            }
            true
        });
        if attachment.hosts.is_empty() {
            continue;
        }
        for host in &attachment.hosts {
            held.push((host.clone(), route.kind, route.id.clone()));
        }
        kept.push(attachment);
    }
    if kept.is_empty() {
        let other = taken_by.map_or_else(String::new, |id| id.to_string());
        return Err(Cond::no(
            names::ACCEPTED,
            names::NOT_ALLOWED_BY_LISTENERS,
            format!(
                "route {other} of the other kind (HTTPRoute / GRPCRoute) already serves its hostnames on these listeners; the older route keeps them"
            ),
        ));
    }
    Ok(kept)
}

/// Whether two served hostnames (`None`: every host) overlap.
fn overlaps(a: Option<&HostPattern>, b: Option<&HostPattern>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(a), Some(b)) => attach::intersect(Some(a), std::slice::from_ref(b)).is_some(),
    }
}

/// Queues every match of the route's placeable rules on each host of each
/// serving listener it attached to.
#[allow(clippy::too_many_arguments)]
fn queue(
    gateways: &Gateways,
    snapshot: &Snapshot,
    route: &RouteObject<'_>,
    defaults: &Defaults<'_>,
    builder: &mut RouteTableBuilder,
    attachments: &[Attachment],
    object: &ObjectKey,
    pending: &mut Vec<Pending>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let source = RouteSource {
        namespace: route.id.namespace.as_str().into(),
        name: route.id.name.as_str().into(),
    };
    for rule in &route.rules {
        let built = built_rule(
            snapshot,
            route.kind,
            rule,
            defaults,
            builder,
            object,
            diagnostics,
        );
        for attachment in attachments {
            let listener = &gateways.listeners[attachment.listener];
            if !listener.serving {
                continue;
            }
            for host in &attachment.hosts {
                for (at, m) in rule.matches.iter().enumerate() {
                    let mut when = m.when.clone();
                    when.scheme = Some(listener.scheme);
                    let path = m.path.value();
                    let route_entry = Route {
                        source: Some(source.clone()),
                        host: host
                            .as_ref()
                            .map_or_else(String::new, HostPattern::as_string)
                            .into(),
                        path: path.into(),
                        path_kind: match m.path {
                            PathSpec::Exact(_) => PathKind::Exact,
                            _ => PathKind::Prefix,
                        },
                        action: built.action.clone(),
                        settings: built.settings.clone(),
                        policy: built.policy.clone(),
                        admission: None,
                        stats: None,
                        rewrite: None,
                        fallback: None,
                        canary: None,
                        filters: built.filters(path, listener.port),
                    };
                    let (weight, chars) = (m.weight(), path.len());
                    pending.push(Pending {
                        order: Order {
                            class: match m.path {
                                PathSpec::Exact(_) => 0,
                                PathSpec::Regex(_) => 1,
                                PathSpec::Prefix(_) => 2,
                            },
                            chars: std::cmp::Reverse(chars),
                            weight: std::cmp::Reverse(weight),
                            created: route.meta.creation_timestamp.clone(),
                            id: route.id.clone(),
                            rule: rule.index,
                            at,
                        },
                        host: host.clone(),
                        path: m.path.clone(),
                        when,
                        route: route_entry,
                        object: object.clone(),
                    });
                }
            }
        }
    }
}
