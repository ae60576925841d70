//! `edge-gateway convert`: Ingresses (with their `nginx.ingress.kubernetes.io/*`
//! annotations) to the Gateway API objects this gateway serves the same
//! way, and the list of what cannot be expressed, which stays on the
//! Ingress.
//!
//! What is produced: a GatewayClass (this controller), one Gateway with
//! an `http` listener (port 80) and an HTTPS listener per TLS host (its
//! Ingress Secret, opened to the Gateway by a ReferenceGrant when it
//! lives in another namespace), and per Ingress host an HTTPRoute with
//! one rule per path (`Exact` stays `Exact`; `Prefix` and
//! `ImplementationSpecific` become `PathPrefix`, as this gateway matches
//! them), a host's `defaultBackend` as a `PathPrefix /` rule, canaries
//! folded into their main rules (header rules first, then weights).
//! A TLS host gets its proxy rules on its HTTPS listener (with the HSTS
//! header the Ingress would add) and, with `ssl-redirect`, redirect rules
//! on the `http` listener (ACME challenges excepted, as ingress-nginx
//! does).
//!
//! Annotations converted: `ssl-redirect`, `force-ssl-redirect`,
//! `preserve-trailing-slash` (redirects), `upstream-vhost` (`URLRewrite`
//! hostname), `canary`, `canary-weight(-total)`, `canary-by-header(-value,
//! -pattern)`, `mirror-target` (with `mirror-host`, `mirror-request-body`)
//! to a Service as `RequestMirror` (see [`mirror`]). Any other ingress-nginx or edge-gateway annotation keeps
//! the Ingress (and its canaries) as it is, with the reason. Converted
//! Ingresses still differ in the cases listed under "differs" (a redirect
//! of a path ending in `/` keeps the `/`; a canary without a ready
//! endpoint takes its share instead of leaving it to the main backend).

mod ingress;
mod mirror;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::class::{ClassOptions, is_ours};
use crate::objects::NsName;
use crate::options::CompileOptions;
use crate::snapshot::Snapshot;

use ingress::{HostPlan, IngressPlan};

/// What the conversion needs besides the objects.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    /// Which Ingresses are ours, and the ConfigMap (as serving).
    pub compile: CompileOptions,
    /// The Gateway to create (namespace/name).
    pub gateway: NsName,
    /// The GatewayClass to create and use.
    pub gateway_class: String,
    /// The controller name of that class.
    pub controller_name: String,
}

/// The result: objects to apply, and what stays on the Ingresses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversion {
    /// GatewayClass, Gateway, ReferenceGrants, HTTPRoutes, in that order.
    pub objects: Vec<Value>,
    /// Ingresses converted, with what still differs.
    pub converted: BTreeMap<NsName, Vec<String>>,
    /// Ingresses that stay, with why.
    pub kept: BTreeMap<NsName, Vec<String>>,
}

/// Converts the Ingresses of our class in `snapshot`.
pub fn convert(snapshot: &Snapshot, options: &ConvertOptions) -> Conversion {
    let (compile, _, _) = crate::config_map::layered(&options.compile, snapshot);
    let class: &ClassOptions = &compile.class;
    let ingresses: Vec<_> = snapshot
        .ingresses()
        .filter(|(id, _)| {
            compile
                .watch_namespace
                .as_deref()
                .is_none_or(|ns| id.namespace == ns)
        })
        .filter(|(_, i)| is_ours(i, snapshot, class))
        .map(|(id, i)| (id, i.as_ref()))
        .collect();
    let plans = ingress::plan(snapshot, &compile, &ingresses);
    let mut out = Conversion::default();
    let mut listeners: BTreeMap<String, NsName> = BTreeMap::new();
    // Mirror Services in other namespaces, with the namespaces using them.
    let mut mirrors: BTreeMap<NsName, BTreeSet<String>> = BTreeMap::new();
    let mut routes = Vec::new();
    for plan in plans {
        match plan {
            IngressPlan::Kept { id, reasons } => {
                out.kept.insert(id, reasons);
            }
            IngressPlan::Converted { id, hosts, differs } => {
                for (index, host) in hosts.iter().enumerate() {
                    if let Some(secret) = &host.tls_secret {
                        listeners
                            .entry(host.host.clone().unwrap_or_default())
                            .or_insert_with(|| secret.clone());
                    }
                    if let Some(service) = host.mirror.as_ref()
                        && service.namespace != id.namespace
                    {
                        let users = mirrors.entry(service.clone()).or_default();
                        users.insert(id.namespace.clone());
                    }
                    routes.extend(host_routes(&id, index, hosts.len(), host, options));
                }
                out.converted.insert(id, differs);
            }
        }
    }
    out.objects.push(json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": options.gateway_class},
        "spec": {"controllerName": options.controller_name},
    }));
    out.objects.push(gateway(options, &listeners));
    out.objects.extend(reference_grants(options, &listeners));
    out.objects.extend(mirror_grants(&mirrors));
    out.objects.extend(routes);
    out
}

/// The listener name of a TLS host.
fn listener_name(host: &str) -> String {
    let mut name: String = host
        .chars()
        .map(|c| if c == '*' { 'w' } else { c })
        .collect();
    name.truncate(240);
    format!("https-{name}")
}

fn gateway(options: &ConvertOptions, tls: &BTreeMap<String, NsName>) -> Value {
    let all = json!({"namespaces": {"from": "All"}});
    let mut listeners =
        vec![json!({"name": "http", "port": 80, "protocol": "HTTP", "allowedRoutes": all})];
    for (host, secret) in tls {
        listeners.push(json!({
            "name": listener_name(host), "port": 443, "protocol": "HTTPS", "hostname": host,
            "tls": {"certificateRefs": [{"name": secret.name, "namespace": secret.namespace}]},
            "allowedRoutes": all,
        }));
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": options.gateway.name, "namespace": options.gateway.namespace},
        "spec": {"gatewayClassName": options.gateway_class, "listeners": listeners},
    })
}

/// One ReferenceGrant per namespace whose Secrets the Gateway uses.
fn reference_grants(options: &ConvertOptions, tls: &BTreeMap<String, NsName>) -> Vec<Value> {
    let mut by_namespace: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for secret in tls.values() {
        if secret.namespace != options.gateway.namespace {
            by_namespace
                .entry(&secret.namespace)
                .or_default()
                .insert(&secret.name);
        }
    }
    by_namespace
        .into_iter()
        .map(|(ns, names)| {
            let to: Vec<Value> = names
                .into_iter()
                .map(|n| json!({"group": "", "kind": "Secret", "name": n}))
                .collect();
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                "metadata": {"name": format!("{}-certificates", options.gateway.name), "namespace": ns},
                "spec": {"from": [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                   "namespace": options.gateway.namespace}],
                         "to": to},
            })
        })
        .collect()
}

/// One ReferenceGrant per mirror Service in another namespace, opening it
/// to the HTTPRoutes of the namespaces that mirror to it.
fn mirror_grants(mirrors: &BTreeMap<NsName, BTreeSet<String>>) -> Vec<Value> {
    mirrors
        .iter()
        .map(|(service, users)| {
            let from: Vec<Value> = users
                .iter()
                .map(|ns| json!({"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": ns}))
                .collect();
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1beta1", "kind": "ReferenceGrant",
                "metadata": {"name": format!("mirror-{}", service.name), "namespace": service.namespace},
                "spec": {"from": from, "to": [{"group": "", "kind": "Service", "name": service.name}]},
            })
        })
        .collect()
}

/// The HTTPRoutes of one host of one Ingress.
fn host_routes(
    id: &NsName,
    index: usize,
    count: usize,
    host: &HostPlan,
    options: &ConvertOptions,
) -> Vec<Value> {
    let name = if count == 1 {
        id.name.clone()
    } else {
        format!("{}-{index}", id.name)
    };
    let hostnames: Vec<&str> = host.host.iter().map(String::as_str).collect();
    let parent = |section: &str| {
        json!({"name": options.gateway.name, "namespace": options.gateway.namespace,
               "sectionName": section})
    };
    let route = |name: &str, parents: Vec<Value>, rules: &[Value]| {
        let mut spec = json!({"parentRefs": parents, "rules": rules});
        if !hostnames.is_empty() {
            spec["hostnames"] = json!(hostnames);
        }
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": id.namespace},
            "spec": spec,
        })
    };
    let mut out = Vec::new();
    match (&host.tls_secret, &host.host) {
        (Some(_), Some(hostname)) => {
            out.push(route(
                &name,
                vec![parent(&listener_name(hostname))],
                &host.https_rules,
            ));
            out.push(route(
                &format!("{name}-http"),
                vec![parent("http")],
                &host.http_rules,
            ));
        }
        _ => out.push(route(&name, vec![parent("http")], &host.http_rules)),
    }
    out
}

#[cfg(test)]
mod tests;
