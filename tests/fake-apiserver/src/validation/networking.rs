//! networking.k8s.io/v1 Ingress and IngressClass validation, as
//! kube-apiserver's `pkg/apis/networking/validation` words it.

use serde_json::{Value, json};

use super::field::{FieldError, Path};
use super::{items, names, text};

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_SUFFIXES: &[&str] = &["/..", "/."];

/// An Ingress, on create (`create`) or update.
pub(crate) fn validate_ingress(obj: &Value, create: bool) -> Vec<FieldError> {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = Vec::new();
    let rules = items(spec, "/rules");
    let default_backend = spec.get("defaultBackend").filter(|b| !b.is_null());
    if rules.is_empty() && default_backend.is_none() {
        let shown = if spec.get("rules").is_some_and(Value::is_array) {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errs.push(FieldError::invalid_shown(
            &path,
            shown,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        errs.extend(validate_backend(b, &path.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        errs.extend(validate_rule(rule, &path.child("rules").index(i)));
    }
    for (i, tls) in items(spec, "/tls").iter().enumerate() {
        let tls_path = path.child("tls").index(i);
        for (j, host) in items(tls, "/hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            let msgs = if host.contains('*') {
                names::wildcard_dns1123_subdomain(host)
            } else {
                names::dns1123_subdomain(host)
            };
            for msg in msgs {
                errs.push(FieldError::invalid(
                    &tls_path.child("hosts").index(j),
                    json!(host),
                    msg,
                ));
            }
        }
        let secret = text(tls, "/secretName");
        if !secret.is_empty() {
            for msg in names::dns1123_subdomain(secret) {
                errs.push(FieldError::invalid(
                    &tls_path.child("secretName"),
                    json!(secret),
                    msg,
                ));
            }
        }
    }
    if let Some(class) = spec.get("ingressClassName").and_then(Value::as_str) {
        for msg in names::dns1123_subdomain(class) {
            errs.push(FieldError::invalid(
                &path.child("ingressClassName"),
                json!(class),
                msg,
            ));
        }
        let annotation = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get("kubernetes.io/ingress.class"))
            .and_then(Value::as_str);
        if create && annotation.is_some_and(|a| a != class) {
            errs.push(FieldError::invalid(
                "annotations.kubernetes.io/ingress.class",
                json!(annotation),
                "must match `ingressClassName` when both are specified",
            ));
        }
    }
    errs
}

fn validate_rule(rule: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let host = text(rule, "/host");
    if !host.is_empty() {
        if names::parse_ip_sloppy(host).is_some() {
            errs.push(FieldError::invalid(
                &path.child("host"),
                json!(host),
                "must be a DNS name, not an IP address",
            ));
        }
        let msgs = if host.contains('*') {
            names::wildcard_dns1123_subdomain(host)
        } else {
            names::dns1123_subdomain(host)
        };
        for msg in msgs {
            errs.push(FieldError::invalid(&path.child("host"), json!(host), msg));
        }
    }
    if let Some(http) = rule.get("http").filter(|h| !h.is_null()) {
        let http_path = path.child("http");
        let paths = items(http, "/paths");
        if paths.is_empty() {
            errs.push(FieldError::required(&http_path.child("paths"), ""));
        }
        for (i, p) in paths.iter().enumerate() {
            errs.extend(validate_http_path(p, &http_path.child("paths").index(i)));
        }
    }
    errs
}

fn validate_http_path(p: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(path_type) = p.get("pathType").and_then(Value::as_str) else {
        return vec![FieldError::required(
            &path.child("pathType"),
            "pathType must be specified",
        )];
    };
    let value = text(p, "/path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path.child("path"),
                    json!(value),
                    "must be an absolute path",
                ));
            }
            if !value.is_empty() {
                for seq in INVALID_SEQUENCES {
                    if value.contains(seq) {
                        errs.push(FieldError::invalid(
                            &path.child("path"),
                            json!(value),
                            format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in INVALID_SUFFIXES {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            &path.child("path"),
                            json!(value),
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path.child("path"),
                    json!(value),
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("pathType"),
            json!(other),
            PATH_TYPES,
        )),
    }
    errs.extend(validate_backend(
        p.get("backend").unwrap_or(&Value::Null),
        &path.child("backend"),
    ));
    errs
}

/// `IsPathSegmentName` for a resource backend's kind and name.
fn path_segment(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s == "." || s == ".." {
        errs.push(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

fn validate_backend(b: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let resource = b.get("resource").filter(|r| !r.is_null());
    let service = b.get("service").filter(|s| !s.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => {
            return vec![FieldError::invalid(
                path,
                json!(""),
                "cannot set both resource and service backends",
            )];
        }
        (Some(r), None) => {
            let rpath = path.child("resource");
            let group = text(r, "/apiGroup");
            if r.get("apiGroup").is_some_and(Value::is_string) {
                for msg in names::dns1123_subdomain(group) {
                    errs.push(FieldError::invalid(
                        &rpath.child("apiGroup"),
                        json!(group),
                        msg,
                    ));
                }
            }
            for field in ["kind", "name"] {
                let v = text(r, &format!("/{field}"));
                if v.is_empty() {
                    errs.push(FieldError::required(&rpath.child(field), ""));
                }
                for msg in path_segment(v) {
                    errs.push(FieldError::invalid(&rpath.child(field), json!(v), msg));
                }
            }
        }
        (None, Some(s)) => {
            let name = text(s, "/name");
            let name_path = path.child("service").child("name");
            if name.is_empty() {
                errs.push(FieldError::required(&name_path, ""));
            } else {
                for msg in names::dns1035_label(name) {
                    errs.push(FieldError::invalid(&name_path, json!(name), msg));
                }
            }
            let port_path = path.child("service").child("port");
            let port_name = text(s, "/port/name");
            let port_number = s
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            match (!port_name.is_empty(), port_number != 0) {
                (true, true) => errs.push(FieldError::invalid(
                    path,
                    json!(""),
                    "cannot set both port name & port number",
                )),
                (true, false) => {
                    for msg in names::port_name(port_name) {
                        errs.push(FieldError::invalid(
                            &port_path.child("name"),
                            json!(port_name),
                            msg,
                        ));
                    }
                }
                (false, true) => {
                    for msg in names::port_num(port_number) {
                        errs.push(FieldError::invalid(
                            &port_path.child("number"),
                            json!(port_number),
                            msg,
                        ));
                    }
                }
                (false, false) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            json!(""),
            "resource or service backend is required",
        )),
    }
    errs
}

/// An IngressClass: a domain-prefixed controller that cannot change.
pub(crate) fn validate_ingress_class(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let path = Path::new("spec").child("controller");
    let controller = text(obj, "/spec/controller");
    let mut errs = Vec::new();
    if controller.is_empty() {
        errs.push(FieldError::required(&path, ""));
    } else {
        let (domain, rest) = controller.split_once('/').unwrap_or((controller, ""));
        if rest.is_empty() || !names::dns1123_subdomain(domain).is_empty() {
            errs.push(FieldError::invalid(
                &path,
                json!(controller),
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            ));
        }
    }
    if let Some(old) = old {
        let before = text(old, "/spec/controller");
        if before != controller {
            errs.push(FieldError::invalid(
                &path,
                json!(controller),
                "field is immutable",
            ));
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(paths: Value) -> Value {
        json!({"metadata": {"name": "web"}, "spec": {"rules": [{"host": "a.example", "http": {"paths": paths}}]}})
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn ingress_paths_as_the_real_server_refuses_them() {
        let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
        let no_type = ingress(json!([{"path": "/", "backend": backend}]));
        assert_eq!(
            messages(&validate_ingress(&no_type, true)),
            ["spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"]
        );
        let relative = ingress(json!([{"path": "api", "pathType": "Prefix", "backend": backend}]));
        assert_eq!(
            messages(&validate_ingress(&relative, true)),
            ["spec.rules[0].http.paths[0].path: Invalid value: \"api\": must be an absolute path"]
        );
        let bad_type = ingress(json!([{"path": "/", "pathType": "Regex", "backend": backend}]));
        assert_eq!(
            messages(&validate_ingress(&bad_type, true)),
            [
                "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
            ]
        );
        let no_backend = ingress(json!([{"path": "/", "pathType": "Prefix", "backend": {}}]));
        assert_eq!(
            messages(&validate_ingress(&no_backend, true)),
            [
                "spec.rules[0].http.paths[0].backend: Invalid value: \"\": resource or service backend is required"
            ]
        );
        let double = ingress(json!([{"path": "/a//b", "pathType": "Exact", "backend": backend}]));
        assert_eq!(
            messages(&validate_ingress(&double, true)),
            ["spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"]
        );
        let ok = ingress(json!([{"path": "/api", "pathType": "Prefix", "backend": backend}]));
        assert!(validate_ingress(&ok, true).is_empty());
        let empty = json!({"metadata": {"name": "web"}, "spec": {}});
        assert_eq!(
            messages(&validate_ingress(&empty, true)),
            [
                "spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"
            ]
        );
    }

    #[test]
    fn hosts_ports_and_classes() {
        let obj = json!({"metadata": {"name": "web"}, "spec": {
        "ingressClassName": "nginx",
        "rules": [{"host": "1.2.3.4", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {}}}}
        ]}}]}});
        let msgs = messages(&validate_ingress(&obj, true));
        assert_eq!(
            msgs[0],
            "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address"
        );
        assert_eq!(
            msgs.last().map(String::as_str),
            Some(
                "spec.rules[0].http.paths[0].backend: Required value: port name or number is required"
            )
        );
        let class = json!({"spec": {"controller": "k8s.io/ingress-nginx"}});
        assert!(validate_ingress_class(&class, None).is_empty());
        let bad = json!({"spec": {"controller": "nginx"}});
        assert_eq!(validate_ingress_class(&bad, None).len(), 1);
        assert_eq!(validate_ingress_class(&class, Some(&bad)).len(), 1);
    }
}
