//! One GRPCRoute rule: gRPC's `/<service>/<method>` paths as path
//! matches, so that GRPCRoutes use the same table as everything else.
//!
//! - `Exact` with service and method: the exact path `/<service>/<method>`;
//! - `Exact` with the service only: the `PathPrefix` `/<service>`;
//! - `Exact` with the method only: the expression `/[^/]+/<method>`;
//! - `RegularExpression`: `/<service>/<method>`, each part the expression
//!   given (or `[^/]+`), matching the whole path;
//! - no match: every request (`PathPrefix /`).
//!
//! Header matches become header conditions. Backends are spoken to over
//! HTTP/2 with prior knowledge (h2c); the route is served on HTTPS
//! listeners only (HTTP/2 by ALPN), since the plain port speaks HTTP/1.1.

use gateway::matches::Conditions;

use crate::snapshot::Snapshot;

use super::mirror::mirror_spec;
use super::rules::{
    BackendSpec, Behaviour, CompiledRule, MatchSpec, PathSpec, RuleProblem, backend_spec, edits,
    header_conditions, path_spec, session_cookie,
};
use super::status::names;
use super::types::{GRPCMethodMatch, GRPCRouteMatch, GRPCRouteRule};

/// Compiles a GRPCRoute rule of a route in `namespace`.
pub(crate) fn grpc_rule(
    snapshot: &Snapshot,
    namespace: &str,
    index: usize,
    rule: &GRPCRouteRule,
) -> CompiledRule {
    let matches: Result<Vec<MatchSpec>, RuleProblem> = if rule.matches.is_empty() {
        Ok(vec![MatchSpec {
            path: PathSpec::Prefix("/".to_owned()),
            when: Conditions::default(),
        }])
    } else if rule.matches.len() > 64 {
        Err(unsupported("more than 64 matches".to_owned()))
    } else {
        rule.matches.iter().map(grpc_match).collect()
    };
    let matches = match matches {
        Ok(matches) => matches,
        Err(problem) => {
            return CompiledRule {
                index,
                matches: Vec::new(),
                behaviour: Err(problem),
            };
        }
    };
    CompiledRule {
        index,
        matches,
        behaviour: grpc_behaviour(snapshot, namespace, rule),
    }
}

fn unsupported(message: String) -> RuleProblem {
    RuleProblem {
        reason: names::UNSUPPORTED_VALUE,
        message,
    }
}

fn grpc_match(m: &GRPCRouteMatch) -> Result<MatchSpec, RuleProblem> {
    let path = match &m.method {
        None => PathSpec::Prefix("/".to_owned()),
        Some(method) => method_path(method)?,
    };
    Ok(MatchSpec {
        path,
        when: Conditions {
            headers: header_conditions(&m.headers)?,
            ..Conditions::default()
        },
    })
}

/// The path match of a gRPC service/method match.
fn method_path(m: &GRPCMethodMatch) -> Result<PathSpec, RuleProblem> {
    let service = m.service.as_deref().filter(|s| !s.is_empty());
    let method = m.method.as_deref().filter(|s| !s.is_empty());
    if service.is_none() && method.is_none() {
        return Err(unsupported(
            "a method match needs a service or a method".to_owned(),
        ));
    }
    match m.type_.as_deref().unwrap_or("Exact") {
        "Exact" => {
            if service.into_iter().chain(method).any(|v| v.contains('/')) {
                return Err(unsupported(
                    "an Exact service or method cannot contain '/'".to_owned(),
                ));
            }
            let spec = match (service, method) {
                (Some(s), Some(m)) => PathSpec::Exact(format!("/{s}/{m}")),
                (Some(s), None) => PathSpec::Prefix(format!("/{s}")),
                (None, Some(m)) => PathSpec::Regex(format!("/[^/]+/{}", regex::escape(m))),
                (None, None) => unreachable!("checked above"),
            };
            path_spec(kind_name(&spec), spec.value().to_owned())
        }
        "RegularExpression" => {
            let part =
                |p: Option<&str>| p.map_or_else(|| "[^/]+".to_owned(), |p| format!("(?:{p})"));
            path_spec(
                "RegularExpression",
                format!("/{}/{}", part(service), part(method)),
            )
        }
        other => Err(unsupported(format!(
            "method match type {other:?} is not supported"
        ))),
    }
}

fn kind_name(spec: &PathSpec) -> &'static str {
    match spec {
        PathSpec::Exact(_) => "Exact",
        PathSpec::Prefix(_) => "PathPrefix",
        PathSpec::Regex(_) => "RegularExpression",
    }
}

fn grpc_behaviour(
    snapshot: &Snapshot,
    namespace: &str,
    rule: &GRPCRouteRule,
) -> Result<Behaviour, RuleProblem> {
    if rule.filters.len() > 16 || rule.backend_refs.len() > 16 {
        return Err(unsupported(
            "more than 16 filters or backendRefs".to_owned(),
        ));
    }
    let mut behaviour = Behaviour::default();
    for filter in &rule.filters {
        match filter.type_.as_str() {
            "RequestHeaderModifier" if behaviour.request_headers.is_none() => {
                behaviour.request_headers = Some(edits(filter.request_header_modifier.as_ref())?);
            }
            "ResponseHeaderModifier" if behaviour.response_headers.is_none() => {
                behaviour.response_headers = Some(edits(filter.response_header_modifier.as_ref())?);
            }
            "RequestMirror" => {
                let mirror = filter.request_mirror.as_ref();
                let spec = mirror_spec(snapshot, "GRPCRoute", namespace, mirror)?;
                behaviour.mirrors.push(spec);
            }
            "ExtensionRef" => {
                let reference = filter.extension_ref.as_ref().map_or_else(String::new, |r| {
                    format!("{}.{} {}", r.kind, r.group, r.name)
                });
                behaviour.extension = Some(reference);
            }
            other => {
                return Err(unsupported(format!(
                    "filter {other:?} is not supported or repeated"
                )));
            }
        }
    }
    for backend in &rule.backend_refs {
        let mut spec: BackendSpec =
            backend_spec(snapshot, "GRPCRoute", namespace, &backend.backend_ref)?;
        for filter in &backend.filters {
            match filter.type_.as_str() {
                "RequestHeaderModifier" if spec.request_headers.is_none() => {
                    spec.request_headers = Some(edits(filter.request_header_modifier.as_ref())?);
                }
                "ResponseHeaderModifier" if spec.response_headers.is_none() => {
                    spec.response_headers = Some(edits(filter.response_header_modifier.as_ref())?);
                }
                other => {
                    return Err(unsupported(format!(
                        "backendRef filter {other} is not supported"
                    )));
                }
            }
        }
        behaviour.backends.push(spec);
    }
    if let Some(session) = &rule.session_persistence {
        if rule.backend_refs.len() > 1 {
            return Err(unsupported(
                "sessionPersistence with more than one backendRef is not supported".to_owned(),
            ));
        }
        behaviour.session = Some(session_cookie(session)?);
    }
    Ok(behaviour)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(
        service: Option<&str>,
        method: Option<&str>,
        type_: Option<&str>,
    ) -> Result<PathSpec, RuleProblem> {
        method_path(&GRPCMethodMatch {
            type_: type_.map(str::to_owned),
            service: service.map(str::to_owned),
            method: method.map(str::to_owned),
        })
    }

    #[test]
    fn service_and_method_become_paths() {
        assert_eq!(
            path(Some("pkg.Svc"), Some("Get"), None),
            Ok(PathSpec::Exact("/pkg.Svc/Get".into()))
        );
        assert_eq!(
            path(Some("pkg.Svc"), None, None),
            Ok(PathSpec::Prefix("/pkg.Svc".into()))
        );
        assert_eq!(
            path(None, Some("Get"), None),
            Ok(PathSpec::Regex("/[^/]+/Get".into()))
        );
        assert_eq!(
            path(Some("pkg\\..*"), None, Some("RegularExpression")),
            Ok(PathSpec::Regex("/(?:pkg\\..*)/[^/]+".into()))
        );
        assert!(path(None, None, None).is_err());
        assert!(path(Some("a/b"), Some("c"), None).is_err());
        assert!(path(Some("("), None, Some("RegularExpression")).is_err());
    }
}
