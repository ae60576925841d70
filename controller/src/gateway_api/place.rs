//! Placing the queued matches into the table, in precedence order: the
//! servers a hostname's matches go to, listener isolation, conflicts with
//! Ingress paths and regex-mode hosts, and the listeners' certificates.

use gateway::host::HostPattern;
use gateway::matches::Conditions;
use gateway::path::{PathKind, PathRegex, PathRule};
use gateway::settings::Scheme;
use gateway::table::{RouteConflict, ServerId};
use gateway::{Route, RouteTableBuilder};

use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::ObjectKey;

use super::listeners::Gateways;
use super::rules::PathSpec;

/// One match of one rule on one host of one listener, waiting for its
/// turn to be added.
pub(crate) struct Pending {
    pub(crate) order: Order,
    pub(crate) host: Option<HostPattern>,
    pub(crate) path: PathSpec,
    pub(crate) when: Conditions,
    pub(crate) route: Route,
    pub(crate) object: ObjectKey,
}

/// The precedence of a pending match (smaller first).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Order {
    pub(crate) class: u8,
    pub(crate) chars: std::cmp::Reverse<usize>,
    pub(crate) weight: std::cmp::Reverse<(bool, usize, usize)>,
    pub(crate) created: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    pub(crate) id: crate::objects::NsName,
    pub(crate) rule: usize,
    pub(crate) at: usize,
}

/// Adds the queued matches in precedence order.
pub(crate) fn add_routes(
    builder: &mut RouteTableBuilder,
    gateways: &Gateways,
    pending: Vec<Pending>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    claim_listener_hosts(builder, gateways);
    for p in pending {
        for server in servers(builder, p.host.as_ref()) {
            let shown = p
                .host
                .as_ref()
                .map_or_else(|| "*".to_owned(), HostPattern::as_string);
            if builder.is_regex_mode(server) {
                diagnostics.push(Diagnostic {
                    object: p.object.clone(),
                    reason: Reason::RouteShadowed,
                    message: format!(
                        "host {shown} is in ingress-nginx regex mode (an Ingress sets use-regex or rewrite-target): its HTTPRoute paths are not served there"
                    ),
                });
                continue;
            }
            let added = match &p.path {
                PathSpec::Exact(v) | PathSpec::Prefix(v) => {
                    let kind = if matches!(p.path, PathSpec::Exact(_)) {
                        PathKind::Exact
                    } else {
                        PathKind::Prefix
                    };
                    let Ok(rule) = PathRule::new(kind, v) else {
                        continue;
                    };
                    builder
                        .add_guarded_route(server, rule, p.when.clone(), p.route.clone())
                        .map(|_| ())
                }
                PathSpec::Regex(v) => {
                    let Ok(regex) = PathRegex::new(v) else {
                        continue;
                    };
                    builder.add_regex_match(server, regex, p.when.clone(), p.route.clone());
                    Ok(())
                }
            };
            if let Err(RouteConflict::Taken(holder)) = added {
                let holder = builder
                    .route(holder)
                    .and_then(|r| r.source.as_ref())
                    .map_or_else(
                        || "a built-in route".to_owned(),
                        |s| format!("Ingress {}/{}", s.namespace, s.name),
                    );
                diagnostics.push(Diagnostic {
                    object: p.object.clone(),
                    reason: Reason::RouteShadowed,
                    message: format!(
                        "{shown}{} is served by {holder} (an Ingress keeps its paths); this match is not served there",
                        p.path.value()
                    ),
                });
            }
        }
    }
}

/// Gives each serving listener's hostname a server of its own, so that a
/// request for it is routed by that listener's routes only (listener
/// isolation), even with no route attached; unless an Ingress host (its
/// own, or a one-label wildcard covering it) serves the name already: an
/// Ingress keeps its traffic.
fn claim_listener_hosts(builder: &mut RouteTableBuilder, gateways: &Gateways) {
    for listener in gateways.listeners.iter().filter(|l| l.serving) {
        let Some(host) = &listener.hostname else {
            continue;
        };
        let wildcard = match host {
            HostPattern::Exact(name) => name
                .split_once('.')
                .map(|(_, parent)| HostPattern::Wildcard(parent.into())),
            HostPattern::Suffix(parent) | HostPattern::Wildcard(parent) => {
                Some(HostPattern::Wildcard(parent.clone()))
            }
        };
        let covered = wildcard.is_some_and(|w| builder.existing_server(&w).is_some());
        if builder.existing_server(host).is_none() && !covered {
            builder.server(Some(host));
        }
    }
}

/// The servers a hostname's matches go to: the default server for every
/// host, the host's own server, and for a suffix wildcard also an
/// Ingress's one-label wildcard server of the same parent (so that both
/// kinds of route are tried for one-label names).
fn servers(builder: &mut RouteTableBuilder, host: Option<&HostPattern>) -> Vec<ServerId> {
    match host {
        None => vec![ServerId::DEFAULT],
        Some(HostPattern::Suffix(parent)) => {
            let mut out = vec![builder.server(host)];
            if let Some(ingress) = builder.existing_server(&HostPattern::Wildcard(parent.clone())) {
                out.push(ingress);
            }
            out
        }
        Some(_) => vec![builder.server(host)],
    }
}

/// Serves each serving HTTPS listener's certificate for its hostname, and
/// for the hostnames routes attached to a listener without one; a
/// catch-all listener's certificate is the default one when none is set.
/// Ingress TLS hosts, compiled first, keep theirs.
pub(crate) fn certificates(builder: &mut RouteTableBuilder, gateways: &Gateways) {
    for listener in &gateways.listeners {
        let (Some(cert), true) = (&listener.certificate, listener.serving) else {
            continue;
        };
        if listener.scheme != Scheme::Https {
            continue;
        }
        match &listener.hostname {
            Some(host) => {
                builder.set_certificate(host, cert.clone());
            }
            None => {
                for host in &listener.hosts {
                    builder.set_certificate(host, cert.clone());
                }
                if !builder.has_default_certificate() {
                    builder.set_default_certificate(cert.clone());
                }
            }
        }
    }
}
