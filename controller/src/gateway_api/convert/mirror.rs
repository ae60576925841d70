//! `mirror-target` (with `mirror-request-body` and `mirror-host`) as a
//! `RequestMirror` filter, where one can say the same: a plain `http://`
//! target naming a Service by its cluster name
//! (`<service>.<namespace>.svc[.cluster.local][:port]`, port 80 by
//! default) that exists with that port, sending the request's own URI
//! (no path, or `$request_uri`), with the body. Anything else keeps the
//! Ingress, with the reason.
//!
//! Still different once converted: the copy is the request as the
//! backend gets it (its `Host`, the `X-Forwarded-*` headers), not the
//! client's headers with the target's `Host` (or `mirror-host`) and
//! `X-Original-URI`; and it goes to one endpoint of the Service rather
//! than through the Service's address.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::annotations::PREFIX;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

/// The Service an Ingress's copies go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct MirrorPlan {
    pub(super) service: NsName,
    pub(super) port: i32,
}

impl MirrorPlan {
    /// The `RequestMirror` filter.
    pub(super) fn filter(&self) -> Value {
        json!({"type": "RequestMirror", "requestMirror": {"backendRef": {
            "name": self.service.name, "namespace": self.service.namespace, "port": self.port}}})
    }

    /// What still differs, for the report.
    pub(super) fn differs(&self) -> String {
        format!(
            "mirrored copies go to one endpoint of Service {} as the backend gets the request (its Host and X-Forwarded-* headers), not with the target's Host (or mirror-host) and X-Original-URI",
            self.service
        )
    }
}

/// The mirror of an Ingress with annotations `raw`: `Ok(None)` without a
/// target, `Err` with why it cannot be expressed.
pub(super) fn plan(
    snapshot: &Snapshot,
    raw: Option<&BTreeMap<String, String>>,
) -> Result<Option<MirrorPlan>, String> {
    let get = |key: &str| {
        raw.and_then(|a| a.get(&format!("{PREFIX}{key}")))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let Some(target) = get("mirror-target") else {
        return Ok(None);
    };
    let shown = format!("{PREFIX}mirror-target {target:?}");
    if get("mirror-request-body") == Some("off") {
        return Err(format!(
            "{PREFIX}mirror-request-body: off: a RequestMirror always copies the body"
        ));
    }
    let Some(rest) = target.strip_prefix("http://") else {
        return Err(format!(
            "{shown}: only a plain http:// target can become a RequestMirror (to a Service)"
        ));
    };
    let end = rest.find(['/', '$', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if !matches!(path, "" | "$request_uri" | "${request_uri}") {
        return Err(format!(
            "{shown}: a RequestMirror sends the request's own URI (no path or $request_uri only)"
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) if port > 0 => (host, i32::from(port)),
            _ => return Err(format!("{shown}: port {port:?}")),
        },
        None => (authority, 80),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let name = host
        .strip_suffix(".svc.cluster.local")
        .or_else(|| host.strip_suffix(".svc"))
        .and_then(|n| n.split_once('.'))
        .filter(|(svc, ns)| !svc.is_empty() && !ns.is_empty() && !ns.contains('.'));
    let Some((service, service_ns)) = name else {
        return Err(format!(
            "{shown}: the host is not a Service name (<service>.<namespace>.svc[.cluster.local]), which a RequestMirror needs"
        ));
    };
    let id = NsName::new(service_ns, service.to_owned());
    let has_port = snapshot
        .service(&id)
        .and_then(|s| s.spec.as_ref())
        .and_then(|s| s.ports.as_ref())
        .is_some_and(|ports| ports.iter().any(|p| p.port == port));
    if !has_port {
        return Err(format!("{shown}: Service {id} with port {port} not found"));
    }
    Ok(Some(MirrorPlan { service: id, port }))
}
