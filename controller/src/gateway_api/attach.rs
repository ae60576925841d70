//! Attaching a route to its parents: which listeners a `parentRef`
//! selects, which of them let the route in, and the hostnames the route
//! is served for on each.
//!
//! A `parentRef` names a Gateway (group `gateway.networking.k8s.io`, kind
//! `Gateway`); `sectionName` and `port` narrow it to the listeners with
//! that name and port. Of those, the listeners that take the route's kind
//! from its namespace (`allowedRoutes`) and share a hostname with it
//! attach it. Hostnames intersect as the spec says: no hostname on either
//! side matches everything; `*.example.com` (any number of labels)
//! covers `a.example.com` and `*.a.example.com`; the more specific side
//! is what is served.

use gateway::host::HostPattern;

use crate::snapshot::Snapshot;

use super::listeners::Gateways;
use super::status::{Cond, RouteKind, names};
use super::types::{GROUP, ParentReference};

/// A route attached to one listener: where it is served there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attachment {
    /// The listener (index in [`Gateways::listeners`]).
    pub(crate) listener: usize,
    /// The hostnames served: `None` is every host (the default server).
    pub(crate) hosts: Vec<Option<HostPattern>>,
}

/// What one `parentRef` comes to.
#[derive(Debug)]
pub(crate) enum Parent {
    /// Not a Gateway of this controller: no status is written for it.
    NotOurs,
    /// Not accepted, with the `Accepted` condition saying why.
    Refused(Cond),
    /// Attached to these listeners.
    Attached(Vec<Attachment>),
}

/// Resolves one `parentRef` of a `kind` route in `namespace` with
/// `hostnames` (already parsed).
pub(crate) fn attach(
    gateways: &Gateways,
    snapshot: &Snapshot,
    kind: RouteKind,
    namespace: &str,
    hostnames: &[HostPattern],
    parent: &ParentReference,
) -> Parent {
    let group = parent.group.as_deref().unwrap_or(GROUP);
    let parent_kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GROUP || parent_kind != "Gateway" {
        return Parent::NotOurs;
    }
    let id = crate::objects::NsName::new(
        parent.namespace.as_deref().unwrap_or(namespace),
        parent.name.clone(),
    );
    let Some(gateway) = gateways.gateways.get(&id) else {
        return Parent::NotOurs;
    };
    if !gateway.accepted {
        return Parent::Refused(Cond::no(
            names::ACCEPTED,
            names::NO_MATCHING_PARENT,
            format!(
                "Gateway {id} is not accepted: {}",
                gateway.refusal.as_deref().unwrap_or("")
            ),
        ));
    }
    let selected: Vec<usize> = gateway
        .listeners
        .clone()
        .filter(|i| {
            let listener = &gateways.listeners[*i];
            parent
                .section_name
                .as_deref()
                .is_none_or(|s| s == listener.name)
                && parent.port.is_none_or(|p| i32::from(listener.port) == p)
        })
        .collect();
    if selected.is_empty() {
        return Parent::Refused(Cond::no(
            names::ACCEPTED,
            names::NO_MATCHING_PARENT,
            format!("Gateway {id} has no listener matching the parentRef's sectionName and port"),
        ));
    }
    let allowed: Vec<usize> = selected
        .into_iter()
        .filter(|i| {
            let listener = &gateways.listeners[*i];
            let kind_ok = match kind {
                RouteKind::Http => listener.kinds.http,
                RouteKind::Grpc => listener.kinds.grpc,
            };
            kind_ok && listener.allows_namespace(snapshot, namespace)
        })
        .collect();
    if allowed.is_empty() {
        return Parent::Refused(Cond::no(
            names::ACCEPTED,
            names::NOT_ALLOWED_BY_LISTENERS,
            format!(
                "no listener of Gateway {id} allows {}s from namespace {namespace}",
                kind.as_str()
            ),
        ));
    }
    let attachments: Vec<Attachment> = allowed
        .into_iter()
        .filter_map(|i| {
            let hosts = intersect(gateways.listeners[i].hostname.as_ref(), hostnames)?;
            Some(Attachment { listener: i, hosts })
        })
        .collect();
    if attachments.is_empty() {
        return Parent::Refused(Cond::no(
            names::ACCEPTED,
            names::NO_MATCHING_LISTENER_HOSTNAME,
            format!("no listener of Gateway {id} has a hostname in common with the route"),
        ));
    }
    Parent::Attached(attachments)
}

/// The hostnames a route is served for on a listener; `None` when they
/// have none in common.
pub(crate) fn intersect(
    listener: Option<&HostPattern>,
    route: &[HostPattern],
) -> Option<Vec<Option<HostPattern>>> {
    let Some(listener) = listener else {
        if route.is_empty() {
            return Some(vec![None]);
        }
        return Some(route.iter().cloned().map(Some).collect());
    };
    if route.is_empty() {
        return Some(vec![Some(listener.clone())]);
    }
    let mut hosts: Vec<Option<HostPattern>> = Vec::new();
    for host in route {
        if let Some(common) = common(listener, host)
            && !hosts.contains(&Some(common.clone()))
        {
            hosts.push(Some(common));
        }
    }
    (!hosts.is_empty()).then_some(hosts)
}

/// What two Gateway API hostnames have in common: the more specific one,
/// when one covers the other.
fn common(a: &HostPattern, b: &HostPattern) -> Option<HostPattern> {
    let under = |name: &str, parent: &str| {
        name.len() > parent.len() + 1
            && name.ends_with(parent)
            && name.as_bytes()[name.len() - parent.len() - 1] == b'.'
    };
    match (a, b) {
        (HostPattern::Exact(x), HostPattern::Exact(y)) => (x == y).then(|| a.clone()),
        (HostPattern::Exact(x), HostPattern::Suffix(p))
        | (HostPattern::Suffix(p), HostPattern::Exact(x)) => {
            under(x, p).then(|| HostPattern::Exact(x.clone()))
        }
        (HostPattern::Suffix(x), HostPattern::Suffix(y)) => {
            if x == y || under(x, y) {
                Some(a.clone())
            } else if under(y, x) {
                Some(b.clone())
            } else {
                None
            }
        }
        // Ingress wildcards never come from Gateway API objects.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> HostPattern {
        HostPattern::parse_suffix(s).unwrap()
    }

    fn shown(hosts: Option<Vec<Option<HostPattern>>>) -> Option<Vec<String>> {
        hosts.map(|v| {
            v.into_iter()
                .map(|h| h.map_or_else(|| "*any*".to_owned(), |h| h.as_string()))
                .collect()
        })
    }

    /// The examples of the spec's `HTTPRouteSpec.hostnames` documentation.
    #[test]
    fn hostnames_intersect_as_the_spec_says() {
        let listener = |l: &str, route: &[&str]| {
            let route: Vec<HostPattern> = route.iter().map(|r| h(r)).collect();
            shown(intersect(Some(&h(l)), &route))
        };
        let some = |v: &[&str]| Some(v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        assert_eq!(
            listener("test.example.com", &[]),
            some(&["test.example.com"])
        );
        assert_eq!(
            listener("test.example.com", &["test.example.com"]),
            some(&["test.example.com"])
        );
        assert_eq!(
            listener("test.example.com", &["*.example.com"]),
            some(&["test.example.com"])
        );
        assert_eq!(listener("test.example.com", &["other.example.com"]), None);
        assert_eq!(
            listener(
                "*.example.com",
                &["*.example.com", "test.example.com", "foo.test.example.com"]
            ),
            some(&["*.example.com", "test.example.com", "foo.test.example.com"])
        );
        assert_eq!(
            listener("*.example.com", &["example.com", "test.example.net"]),
            None
        );
        assert_eq!(
            listener("*.example.com", &["test.example.com", "test.example.net"]),
            some(&["test.example.com"]),
            "non-matching route hostnames are ignored"
        );
        assert_eq!(
            listener("*.example.com", &["*.com"]),
            some(&["*.example.com"])
        );
        assert_eq!(
            listener("*.example.com", &["*.a.example.com"]),
            some(&["*.a.example.com"])
        );
        assert_eq!(shown(intersect(None, &[])), some(&["*any*"]));
        assert_eq!(shown(intersect(None, &[h("a.com")])), some(&["a.com"]));
    }
}
