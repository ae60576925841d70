//! Reading Ingresses for the conversion: which can be converted, and the
//! rules of each of their hosts.

use std::collections::{BTreeMap, HashMap};

use gateway::canary::CanaryRule;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use serde_json::{Value, json};

use crate::annotations::{self, PREFIX};
use crate::objects::NsName;
use crate::options::CompileOptions;
use crate::snapshot::Snapshot;

use super::mirror::{self, MirrorPlan};

/// The annotations (without prefix) the conversion expresses.
const CONVERTED: [&str; 13] = [
    "ssl-redirect",
    "force-ssl-redirect",
    "preserve-trailing-slash",
    "upstream-vhost",
    "canary",
    "canary-weight",
    "canary-weight-total",
    "canary-by-header",
    "canary-by-header-value",
    "canary-by-header-pattern",
    "mirror-target",
    "mirror-host",
    "mirror-request-body",
];

/// The prefix of edge-gateway's own annotations.
const EDGE_PREFIX: &str = "edge-gateway.io/";

/// ACME HTTP-01 challenges are never redirected to HTTPS.
const ACME: &str = "/.well-known/acme-challenge";

/// What becomes of one Ingress.
#[derive(Debug)]
pub(super) enum IngressPlan {
    /// It stays, for these reasons.
    Kept { id: NsName, reasons: Vec<String> },
    /// It converts to these hosts' routes; `differs` lists the cases the
    /// routes still serve differently.
    Converted {
        id: NsName,
        hosts: Vec<HostPlan>,
        differs: Vec<String>,
    },
}

/// The routes of one host of one Ingress.
#[derive(Debug, Default)]
pub(super) struct HostPlan {
    /// The host (`None`: every host).
    pub(super) host: Option<String>,
    /// The host's TLS Secret, when it has a TLS section.
    pub(super) tls_secret: Option<NsName>,
    /// Rules on the HTTP listener.
    pub(super) http_rules: Vec<Value>,
    /// Rules on the host's HTTPS listener.
    pub(super) https_rules: Vec<Value>,
    /// The Service its rules mirror to, if any.
    pub(super) mirror: Option<NsName>,
}

/// One backend: a Service and its port number.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Backend {
    service: String,
    port: i32,
}

impl Backend {
    fn json(&self, weight: Option<u32>) -> Value {
        let mut value = json!({"name": self.service, "port": self.port});
        if let Some(weight) = weight {
            value["weight"] = json!(weight);
        }
        value
    }
}

/// A canary folded into a path.
#[derive(Clone, Debug)]
struct CanaryPlan {
    backend: Backend,
    header: Option<(String, HeaderRule)>,
    /// Weight and total, after ingress-nginx's rules.
    weight: (u32, u32),
}

#[derive(Clone, Debug)]
enum HeaderRule {
    AlwaysNever,
    Value(String),
    Pattern(String),
}

/// One path of a host.
#[derive(Clone, Debug)]
struct PathPlan {
    /// `Exact` or `PathPrefix`.
    kind: &'static str,
    path: String,
    backend: Backend,
    canary: Option<CanaryPlan>,
}

/// A canary Ingress's header rule, and its weight and total.
type CanaryAnnotations = (Option<(String, HeaderRule)>, (u32, u32));

/// One Ingress read for conversion.
struct Read {
    id: NsName,
    /// Host → paths, in rule order; the host's default backend last.
    hosts: Vec<(Option<String>, Vec<PathPlan>)>,
    policy: gateway::policy::Policy,
    canary: Option<CanaryAnnotations>,
    mirror: Option<MirrorPlan>,
    reasons: Vec<String>,
}

/// Plans every Ingress of `ingresses` (ours), oldest first.
pub(super) fn plan(
    snapshot: &Snapshot,
    options: &CompileOptions,
    ingresses: &[(&NsName, &Ingress)],
) -> Vec<IngressPlan> {
    let mut sorted = ingresses.to_vec();
    sorted.sort_by(|(a_id, a), (b_id, b)| {
        let created = |i: &Ingress| i.metadata.creation_timestamp.clone();
        created(a).cmp(&created(b)).then_with(|| a_id.cmp(b_id))
    });
    let host_tls = host_tls(&sorted);
    let mut reads: Vec<Read> = sorted
        .iter()
        .map(|(id, ingress)| read(snapshot, options, id, ingress))
        .collect();
    fold_canaries(&mut reads);
    reads
        .into_iter()
        .map(|r| match r.canary {
            // A canary folded into its main Ingress's routes.
            Some(_) if r.reasons.is_empty() => IngressPlan::Converted {
                id: r.id,
                hosts: Vec::new(),
                differs: vec!["a canary: folded into its main Ingress's routes".to_owned()],
            },
            _ => finish(snapshot, options, &host_tls, r),
        })
        .collect()
}

/// Which Secret serves each TLS host: the oldest Ingress listing the host
/// in its TLS section decides, as the compile does.
fn host_tls(ingresses: &[(&NsName, &Ingress)]) -> HashMap<String, NsName> {
    let mut out = HashMap::new();
    for (id, ingress) in ingresses {
        for entry in ingress.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
            let Some(secret) = entry.secret_name.as_deref().filter(|s| !s.is_empty()) else {
                continue;
            };
            for host in entry.hosts.iter().flatten() {
                out.entry(host.to_ascii_lowercase())
                    .or_insert_with(|| NsName::new(id.namespace.clone(), secret));
            }
        }
    }
    out
}

fn read(snapshot: &Snapshot, options: &CompileOptions, id: &NsName, ingress: &Ingress) -> Read {
    let raw = ingress.metadata.annotations.as_ref();
    let parsed = annotations::parse(raw, &options.proxy, &options.policy, false);
    let mut reasons = Vec::new();
    for key in raw.into_iter().flat_map(|a| a.keys()) {
        let converted = key
            .strip_prefix(PREFIX)
            .is_some_and(|k| CONVERTED.contains(&k));
        let ours = key.starts_with(PREFIX) || key.starts_with(EDGE_PREFIX);
        if ours && !converted {
            reasons.push(format!(
                "{key} has no Gateway API equivalent this gateway serves"
            ));
        }
    }
    for error in &parsed.errors {
        reasons.push(format!(
            "{}: {:?} {}",
            error.key, error.value, error.message
        ));
    }
    if let Some(vhost) = &parsed.policy.upstream_vhost {
        let host = vhost.to_str().unwrap_or("");
        if !matches!(
            gateway::host::HostPattern::parse(host),
            Ok(gateway::host::HostPattern::Exact(_))
        ) {
            reasons.push(format!(
                "{PREFIX}upstream-vhost {host:?} is not a hostname URLRewrite can set"
            ));
        }
    }
    let canary = parsed.canary.as_ref().map(|_| canary_rule(raw));
    let mirror = match mirror::plan(snapshot, raw) {
        Ok(Some(_)) if canary.is_some() => {
            reasons.push(format!("{PREFIX}mirror-target on a canary Ingress"));
            None
        }
        Ok(plan) => plan,
        Err(reason) => {
            reasons.push(reason);
            None
        }
    };
    let mut hosts: Vec<(Option<String>, Vec<PathPlan>)> = Vec::new();
    let spec = ingress.spec.as_ref();
    let default = spec.and_then(|s| s.default_backend.as_ref());
    let rules = spec.and_then(|s| s.rules.as_deref()).unwrap_or(&[]);
    if rules.is_empty()
        && let Some(backend) = default
    {
        match backend_of(snapshot, &id.namespace, backend) {
            Ok(b) => hosts.push((None, vec![default_path(b)])),
            Err(reason) => reasons.push(reason),
        }
    }
    for rule in rules {
        let host = rule
            .host
            .as_deref()
            .filter(|h| !h.is_empty())
            .map(str::to_ascii_lowercase);
        let mut paths = Vec::new();
        for path in rule.http.iter().flat_map(|h| &h.paths) {
            let value = path
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".to_owned());
            let kind = if path.path_type == "Exact" {
                "Exact"
            } else {
                "PathPrefix"
            };
            if let Err(problem) = crate::gateway_api::rules::path_spec(kind, value.clone())
                .map_err(|p| p.message)
                .and_then(|_| crate::paths::validate("Prefix", &value))
            {
                reasons.push(format!("path {value:?}: {problem}"));
                continue;
            }
            match backend_of(snapshot, &id.namespace, &path.backend) {
                Ok(backend) => paths.push(PathPlan {
                    kind,
                    path: value,
                    backend,
                    canary: None,
                }),
                Err(reason) => reasons.push(reason),
            }
        }
        if let Some(backend) = default
            && !paths
                .iter()
                .any(|p| p.kind == "PathPrefix" && p.path == "/")
            && host.is_some()
        {
            match backend_of(snapshot, &id.namespace, backend) {
                Ok(b) => paths.push(default_path(b)),
                Err(reason) => reasons.push(reason),
            }
        }
        hosts.push((host, paths));
    }
    Read {
        id: id.clone(),
        hosts,
        policy: parsed.policy,
        canary,
        mirror,
        reasons,
    }
}

fn default_path(backend: Backend) -> PathPlan {
    PathPlan {
        kind: "PathPrefix",
        path: "/".to_owned(),
        backend,
        canary: None,
    }
}

/// A canary Ingress's header rule and weight, read as ingress-nginx does.
fn canary_rule(raw: Option<&BTreeMap<String, String>>) -> CanaryAnnotations {
    let get = |key: &str| {
        raw.and_then(|a| a.get(&format!("{PREFIX}{key}")))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let number = |key: &str| get(key).and_then(|v| v.trim().parse::<i64>().ok());
    let weight = CanaryRule::weighted(
        number("canary-weight").unwrap_or(0),
        number("canary-weight-total").unwrap_or(100),
    )
    .weight();
    let header = get("canary-by-header").map(|name| {
        let rule = match (
            get("canary-by-header-value"),
            get("canary-by-header-pattern"),
        ) {
            (Some(value), _) => HeaderRule::Value(value.to_owned()),
            (None, Some(pattern)) => HeaderRule::Pattern(pattern.to_owned()),
            (None, None) => HeaderRule::AlwaysNever,
        };
        (name.to_owned(), rule)
    });
    (header, weight)
}

/// A backend's Service and port number.
fn backend_of(
    snapshot: &Snapshot,
    namespace: &str,
    backend: &IngressBackend,
) -> Result<Backend, String> {
    let Some(service) = &backend.service else {
        return Err("a resource backend has no Gateway API equivalent".to_owned());
    };
    let port = service.port.as_ref();
    let number = match (
        port.and_then(|p| p.number),
        port.and_then(|p| p.name.as_deref()),
    ) {
        (Some(n), _) => n,
        (None, Some(name)) => snapshot
            .service(&NsName::new(namespace, service.name.clone()))
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.ports.as_ref())
            .and_then(|ports| ports.iter().find(|p| p.name.as_deref() == Some(name)))
            .map(|p| p.port)
            .ok_or_else(|| {
                format!(
                    "service {}/{} has no port named {name}",
                    namespace, service.name
                )
            })?,
        (None, None) => return Err(format!("backend service {} names no port", service.name)),
    };
    Ok(Backend {
        service: service.name.clone(),
        port: number,
    })
}

/// Folds each canary Ingress into its main Ingress's paths (same
/// namespace, host, path and type; the oldest canary of a path only).
/// A canary that stays keeps its main as it is, and the other way round.
fn fold_canaries(reads: &mut [Read]) {
    let canaries: Vec<usize> = (0..reads.len())
        .filter(|i| reads[*i].canary.is_some())
        .collect();
    for c in canaries {
        let (header, weight) = reads[c].canary.clone().unwrap_or((None, (0, 100)));
        let namespace = reads[c].id.namespace.clone();
        let mut merged = false;
        let paths: Vec<(Option<String>, PathPlan)> = reads[c]
            .hosts
            .iter()
            .flat_map(|(h, paths)| paths.iter().map(move |p| (h.clone(), p.clone())))
            .collect();
        for (host, canary_path) in paths {
            let main = reads.iter().position(|r| {
                r.canary.is_none()
                    && r.id.namespace == namespace
                    && r.hosts.iter().any(|(h, ps)| {
                        *h == host
                            && ps
                                .iter()
                                .any(|p| p.path == canary_path.path && p.kind == canary_path.kind)
                    })
            });
            let Some(main) = main else { continue };
            let canary_reasons = reads[c].reasons.clone();
            let canary_id = reads[c].id.clone();
            let main_read = &mut reads[main];
            if !canary_reasons.is_empty() {
                main_read
                    .reasons
                    .push(format!("its canary Ingress {canary_id} stays"));
                continue;
            }
            for (h, ps) in &mut main_read.hosts {
                if *h != host {
                    continue;
                }
                for p in ps.iter_mut() {
                    if p.path == canary_path.path
                        && p.kind == canary_path.kind
                        && p.canary.is_none()
                    {
                        p.canary = Some(CanaryPlan {
                            backend: canary_path.backend.clone(),
                            header: header.clone(),
                            weight,
                        });
                        merged = true;
                    }
                }
            }
        }
        if !merged && reads[c].reasons.is_empty() {
            reads[c].reasons.push(
                "a canary with no main path to join serves nothing; nothing to convert".to_owned(),
            );
        }
    }
    // A main that stays keeps its canaries where they are.
    let kept_mains: Vec<(String, Vec<Option<String>>)> = reads
        .iter()
        .filter(|r| r.canary.is_none() && !r.reasons.is_empty())
        .map(|r| {
            (
                r.id.namespace.clone(),
                r.hosts.iter().map(|(h, _)| h.clone()).collect(),
            )
        })
        .collect();
    for read in reads
        .iter_mut()
        .filter(|r| r.canary.is_some() && r.reasons.is_empty())
    {
        let shares_host = kept_mains.iter().any(|(ns, hosts)| {
            *ns == read.id.namespace && read.hosts.iter().any(|(h, _)| hosts.contains(h))
        });
        if shares_host {
            read.reasons.push("its main Ingress stays".to_owned());
        }
    }
}

/// The plan of one (non-canary, or kept) Ingress.
fn finish(
    snapshot: &Snapshot,
    options: &CompileOptions,
    host_tls: &HashMap<String, NsName>,
    read: Read,
) -> IngressPlan {
    let Read {
        id,
        hosts,
        policy,
        mirror,
        mut reasons,
        ..
    } = read;
    let mut differs: Vec<String> = mirror.iter().map(MirrorPlan::differs).collect();
    let mirror_filter = mirror.as_ref().map(MirrorPlan::filter);
    let mirror_filter = mirror_filter.as_ref();
    let mut plans = Vec::new();
    let hsts = options.globals.hsts.as_ref().and_then(|v| v.to_str().ok());
    let code = options.globals.redirect_code.as_u16();
    for (host, paths) in hosts {
        let tls_secret = host.as_ref().and_then(|h| host_tls.get(h)).cloned();
        if let Some(secret) = &tls_secret
            && snapshot.secret(secret).is_none()
        {
            reasons.push(format!(
                "TLS Secret {secret} not found (the Ingress serves the default certificate)"
            ));
        }
        let shown = host.clone().unwrap_or_else(|| "*".to_owned());
        let redirect = tls_secret.is_some() && policy.ssl_redirect || policy.force_ssl_redirect;
        if redirect && tls_secret.is_none() {
            reasons.push(format!("force-ssl-redirect on {shown}, which has no TLS section: its HTTPS side needs a listener with a certificate"));
        }
        if tls_secret.is_none() {
            differs.push(format!("{shown} is served on HTTP only: the Ingress also serves it on HTTPS with the default certificate, a Gateway listener needs a certificate of its own"));
        }
        if redirect && !policy.preserve_trailing_slash {
            differs.push(format!("{shown}: the HTTPS redirect of a path ending in '/' keeps the '/' (ingress-nginx drops it; set preserve-trailing-slash to match)"));
        }
        if paths.iter().any(|p| {
            p.canary
                .as_ref()
                .is_some_and(|c| c.weight.0 > 0 || c.header.is_some())
        }) {
            differs.push(format!("{shown}: a canary without a ready endpoint still takes its requests (the Ingress sends them to the main backend)"));
        }
        let vhost = policy.upstream_vhost.as_ref().and_then(|v| v.to_str().ok());
        let mut plan = HostPlan {
            host: host.clone(),
            tls_secret: tls_secret.clone(),
            mirror: mirror.as_ref().map(|m| m.service.clone()),
            ..HostPlan::default()
        };
        let proxy_rules = |sts: Option<&str>| -> Vec<Value> {
            paths
                .iter()
                .flat_map(|p| path_rules(p, vhost, sts, mirror_filter))
                .collect()
        };
        match &tls_secret {
            Some(_) => {
                plan.https_rules = proxy_rules(hsts);
                plan.http_rules = if redirect {
                    redirect_rules(&paths, code, vhost, mirror_filter)
                } else {
                    proxy_rules(None)
                };
            }
            None => plan.http_rules = proxy_rules(None),
        }
        plans.push(plan);
    }
    if reasons.is_empty() {
        IngressPlan::Converted {
            id,
            hosts: plans,
            differs,
        }
    } else {
        IngressPlan::Kept { id, reasons }
    }
}

/// The rules of one path: a canary's header rules, then the base rule.
fn path_rules(
    path: &PathPlan,
    vhost: Option<&str>,
    sts: Option<&str>,
    mirror: Option<&Value>,
) -> Vec<Value> {
    let matching = |headers: Option<Value>| {
        let mut m = json!({"path": {"type": path.kind, "value": path.path}});
        if let Some(headers) = headers {
            m["headers"] = headers;
        }
        json!([m])
    };
    let rule = |matches: Value, backends: Vec<Value>| {
        let mut filters = Vec::new();
        if let Some(host) = vhost {
            filters.push(json!({"type": "URLRewrite", "urlRewrite": {"hostname": host}}));
        }
        if let Some(sts) = sts {
            filters.push(json!({"type": "ResponseHeaderModifier",
                "responseHeaderModifier": {"set": [{"name": "Strict-Transport-Security", "value": sts}]}}));
        }
        filters.extend(mirror.cloned());
        let mut rule = json!({"matches": matches, "backendRefs": backends});
        if !filters.is_empty() {
            rule["filters"] = json!(filters);
        }
        rule
    };
    let main = path.backend.json(None);
    let mut rules = Vec::new();
    let Some(canary) = &path.canary else {
        rules.push(rule(matching(None), vec![main]));
        return rules;
    };
    let to_canary = canary.backend.json(None);
    if let Some((name, header)) = &canary.header {
        let exact = |value: &str| json!([{"name": name, "value": value}]);
        match header {
            HeaderRule::Value(value) => {
                rules.push(rule(matching(Some(exact(value))), vec![to_canary]));
            }
            HeaderRule::Pattern(pattern) => {
                let unanchored = json!([{"type": "RegularExpression", "name": name,
                                         "value": format!(".*(?:{pattern}).*")}]);
                rules.push(rule(matching(Some(unanchored)), vec![to_canary]));
            }
            HeaderRule::AlwaysNever => {
                rules.push(rule(matching(Some(exact("always"))), vec![to_canary]));
                rules.push(rule(matching(Some(exact("never"))), vec![main.clone()]));
            }
        }
    }
    let (weight, total) = canary.weight;
    let base = match weight {
        0 => vec![main],
        w if w >= total => vec![canary.backend.json(None)],
        w => vec![
            path.backend.json(Some(total - w)),
            canary.backend.json(Some(w)),
        ],
    };
    rules.push(rule(matching(None), base));
    rules
}

/// The HTTP side of a redirected TLS host: each path redirects to HTTPS,
/// except ACME challenges, which go where the Ingress sends them.
fn redirect_rules(
    paths: &[PathPlan],
    code: u16,
    vhost: Option<&str>,
    mirror: Option<&Value>,
) -> Vec<Value> {
    let mut rules = Vec::new();
    for path in paths {
        if path.path.starts_with(ACME) {
            rules.extend(path_rules(
                &PathPlan {
                    canary: None,
                    ..path.clone()
                },
                vhost,
                None,
                mirror,
            ));
            continue;
        }
        rules.push(json!({
            "matches": [{"path": {"type": path.kind, "value": path.path}}],
            "filters": [{"type": "RequestRedirect",
                         "requestRedirect": {"scheme": "https", "statusCode": code}}],
        }));
    }
    // ACME challenges under a prefix path: the longest such path's backend.
    let covering = paths
        .iter()
        .filter(|p| p.kind == "PathPrefix" && covers(&p.path, ACME))
        .max_by_key(|p| p.path.trim_end_matches('/').len());
    if let Some(path) = covering {
        let acme = PathPlan {
            kind: "PathPrefix",
            path: ACME.to_owned(),
            backend: path.backend.clone(),
            canary: None,
        };
        if !paths
            .iter()
            .any(|p| p.kind == "PathPrefix" && p.path.trim_end_matches('/') == ACME)
        {
            rules.extend(path_rules(&acme, vhost, None, mirror));
        }
    }
    rules
}

/// Whether a prefix path covers `path` element by element.
fn covers(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}
