//! What the routes of one rule share, built once per rule: the backends
//! (weighted, with their filters), the proxy settings (timeouts, gRPC), the
//! policy (URLRewrite's hostname; no Ingress redirects), the backend's
//! session cookie and the mirrors' backends; and the filters of one route
//! of the rule.

use std::sync::Arc;

use gateway::balance::BackendPolicy;
use gateway::balance::affinity::Affinity;
use gateway::policy::Policy;
use gateway::route_filter::{RequestMirror, RequestRedirect, RouteFilters, Slot, Split};
use gateway::settings::{BackendProtocol, ProxySettings};
use gateway::table::BackendId;
use gateway::{RouteAction, RouteTableBuilder};

use crate::diagnostics::{Diagnostic, Reason};
use crate::endpoints::resolve_key;
use crate::objects::{NsName, ObjectKey};
use crate::snapshot::Snapshot;

use super::compile::Defaults;
use super::rules::{Behaviour, CompiledRule};
use super::status::RouteKind;

/// What a rule's routes share, built once per rule.
pub(crate) struct BuiltRule {
    pub(crate) action: RouteAction,
    pub(crate) settings: Arc<ProxySettings>,
    pub(crate) policy: Arc<Policy>,
    behaviour: Option<Behaviour>,
    split: Option<Split>,
    /// The mirrors whose backends resolved (one in-flight bound each,
    /// shared by every route of the rule).
    mirrors: Vec<RequestMirror>,
}

impl BuiltRule {
    /// The filters of the route for one match of the rule on a listener.
    pub(crate) fn filters(&self, matched: &str, listener_port: u16) -> Option<Box<RouteFilters>> {
        let behaviour = self.behaviour.as_ref()?;
        let filters = RouteFilters {
            request_headers: behaviour.request_headers.clone(),
            response_headers: behaviour.response_headers.clone(),
            redirect: behaviour.redirect.as_ref().map(|r| RequestRedirect {
                scheme: r.scheme,
                hostname: r.hostname.as_deref().map(Into::into),
                path: r.path.as_ref().map(|p| p.build(matched)),
                port: r.port,
                status: r.status,
                listener_port,
            }),
            rewrite: behaviour.rewrite.as_ref().map(|p| p.build(matched)),
            cors: behaviour.cors.clone(),
            split: self.split.clone(),
            mirrors: self.mirrors.clone(),
        };
        Some(Box::new(filters))
    }
}

/// Builds a rule's backends, settings and policy.
pub(crate) fn built_rule(
    snapshot: &Snapshot,
    kind: RouteKind,
    rule: &CompiledRule,
    defaults: &Defaults<'_>,
    builder: &mut RouteTableBuilder,
    object: &ObjectKey,
    diagnostics: &mut Vec<Diagnostic>,
) -> BuiltRule {
    let mut policy = defaults.policy.clone();
    policy.ssl_redirect = false;
    policy.force_ssl_redirect = false;
    policy.redirect = None;
    policy.upstream_vhost = None;
    policy.x_forwarded_prefix = None;
    policy.custom_errors = None;
    let refused = BuiltRule {
        action: RouteAction::Respond(500),
        settings: Arc::new(defaults.proxy.clone()),
        policy: Arc::new(policy.clone()),
        behaviour: None,
        split: None,
        mirrors: Vec::new(),
    };
    let Ok(behaviour) = &rule.behaviour else {
        return refused;
    };
    if behaviour.extension.is_some() {
        return refused;
    }
    let mut settings = defaults.proxy.clone();
    if kind == RouteKind::Grpc {
        settings.protocol = BackendProtocol::Grpc;
    }
    if let Some(request) = behaviour.request_timeout {
        settings.request_deadline = request;
    }
    if let Some(backend) = behaviour.backend_timeout {
        settings.read_timeout = backend;
        settings.send_timeout = backend;
    }
    policy.upstream_vhost = behaviour.rewrite_host.clone();
    let mut slots = Vec::new();
    for backend in &behaviour.backends {
        let id = backend.target.as_ref().ok().map(|resolved| {
            let endpoints = resolve_key(snapshot, &resolved.key).update;
            let id = builder.backend(resolved.key.clone(), &endpoints);
            if &*resolved.key.port == crate::endpoints::pool::POOL_PORT_KEY {
                let pool = NsName::new(&*resolved.key.namespace, &*resolved.key.service);
                super::inference::configure(
                    snapshot,
                    builder,
                    id,
                    &pool,
                    &mut settings,
                    &defaults.proxy.signals,
                    diagnostics,
                );
            }
            id
        });
        if let (Some(id), Some(session)) = (id, &behaviour.session) {
            session_policy(builder, id, session, object, diagnostics);
        }
        slots.push(Slot {
            weight: backend.weight,
            backend: id,
            request_headers: backend.request_headers.clone(),
            response_headers: backend.response_headers.clone(),
        });
    }
    let mirrors = behaviour
        .mirrors
        .iter()
        .filter_map(|m| {
            let resolved = m.target.as_ref().ok()?;
            let endpoints = resolve_key(snapshot, &resolved.key).update;
            let id = builder.backend(resolved.key.clone(), &endpoints);
            Some(RequestMirror::new(id, m.numerator, m.denominator))
        })
        .collect();
    // The action names the first backend that takes requests (the
    // metrics `service` label); with several, invalid ones or backend
    // filters, the split draws per request. No usable backend: 500.
    let first_valid = slots
        .iter()
        .find(|s| s.weight > 0 && s.backend.is_some())
        .and_then(|s| s.backend);
    let plain = slots.len() == 1
        && slots[0].request_headers.is_none()
        && slots[0].response_headers.is_none();
    let (action, split) = match first_valid {
        _ if behaviour.redirect.is_some() => (RouteAction::Respond(500), None),
        Some(id) if plain => (RouteAction::Proxy(id), None),
        Some(id) => (RouteAction::Proxy(id), Split::new(slots)),
        None => (RouteAction::Respond(500), None),
    };
    BuiltRule {
        action,
        settings: Arc::new(settings),
        policy: Arc::new(policy),
        behaviour: Some(behaviour.clone()),
        split,
        mirrors,
    }
}

/// Gives a backend the rule's session cookie, unless an Ingress or an
/// older rule already decided its balancing.
fn session_policy(
    builder: &mut RouteTableBuilder,
    id: BackendId,
    session: &gateway::balance::session_cookie::SessionCookie,
    object: &ObjectKey,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let default = builder.default_backend_policy();
    let current = builder
        .backend_policy(id)
        .unwrap_or_else(|| default.clone());
    let wanted = Affinity::Cookie(Arc::new(session.clone()));
    if current.affinity == wanted {
        return;
    }
    if *current != *default {
        diagnostics.push(Diagnostic {
            object: object.clone(),
            reason: Reason::BackendSettingsConflict,
            message: format!(
                "sessionPersistence not applied to backend {}: an Ingress or an older route decides its balancing",
                builder.backend_name(id).as_deref().unwrap_or("?")
            ),
        });
        return;
    }
    let policy = BackendPolicy {
        affinity: wanted,
        ..(*default).clone()
    };
    builder.set_backend_policy(id, Arc::new(policy));
}
