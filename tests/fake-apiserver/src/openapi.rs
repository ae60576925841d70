//! The OpenAPI documents of the kinds the server serves, from
//! [`crate::schemas`] (built-in kinds) and the CRDs' `openAPIV3Schema`s:
//!
//! - `/openapi/v3` lists one document per group/version; each document has
//!   the schemas its kinds reach (as `#/components/schemas/...`, `$ref`s
//!   with siblings wrapped in `allOf` as upstream does), which `kubectl
//!   explain` reads, and a PATCH operation per kind declaring the
//!   `fieldValidation` parameter, from which kubectl learns that the server
//!   validates fields (so `kubectl apply --validate=strict` sends
//!   `fieldValidation=Strict` and prints the server's answer, as against a
//!   cluster).
//! - `/openapi/v2` is one document with every definition, in JSON or in the
//!   protobuf encoding client-go asks for ([`crate::openapi_proto`]); it has
//!   no paths.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::crd;
use crate::discovery::{MAJOR, MINOR};
use crate::resources::{Kinds, ResourceType};
use crate::schemas::{self, REF_PREFIX};

const V3_PREFIX: &str = "#/components/schemas/";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

fn info() -> Value {
    json!({"title": "Kubernetes", "version": format!("v{MAJOR}.{MINOR}.0")})
}

/// The definition name upstream gives a CRD version's schema:
/// `io.k8s.networking.gateway.v1.Gateway` for `gateway.networking.k8s.io`.
fn crd_definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

/// A CRD version's schema as a definition: its `openAPIV3Schema` with the
/// kind's group/version/kind and the standard metadata.
fn crd_definition(rt: &ResourceType, schema: &Value) -> Value {
    let mut def = schema.clone();
    if let Value::Object(m) = &mut def {
        m.insert(
            "x-kubernetes-group-version-kind".to_owned(),
            json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]),
        );
        let props = m.entry("properties").or_insert_with(|| json!({}));
        if let Value::Object(props) = props {
            props.insert(
                "metadata".to_owned(),
                json!({"$ref": format!("{REF_PREFIX}{OBJECT_META}"),
                       "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}),
            );
        }
    }
    def
}

/// The definitions of the served kinds: (definition name, schema) of each
/// kind row, the built-in ones resolved against `schemas`.
fn kind_definitions(kinds: &Kinds, crds: &[Value]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for rt in kinds.all() {
        if rt.custom {
            let owner = crds.iter().find(|c| {
                c.pointer("/spec/group").and_then(Value::as_str) == Some(rt.group.as_str())
                    && c.pointer("/spec/names/plural").and_then(Value::as_str)
                        == Some(rt.plural.as_str())
            });
            if let Some(schema) = owner.and_then(|c| crd::version_schema(c, &rt.version)) {
                out.push((
                    crd_definition_name(&rt.group, &rt.version, &rt.kind),
                    crd_definition(rt, schema),
                ));
            }
        } else if let Some(name) = schemas::root_name(&rt.group, &rt.version, &rt.kind) {
            let def = schemas::schemas()
                .definitions
                .get(name)
                .cloned()
                .unwrap_or_default();
            out.push((name.to_owned(), def));
        }
    }
    out
}

/// Every definition name reachable from `start` through `$ref`s.
fn reachable(start: &[(String, Value)]) -> BTreeSet<String> {
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(name) = m
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix(REF_PREFIX))
                {
                    out.push(name.to_owned());
                }
                m.values().for_each(|c| refs(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| refs(c, out)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut todo = Vec::new();
    for (_, def) in start {
        refs(def, &mut todo);
    }
    while let Some(name) = todo.pop() {
        if seen.insert(name.clone())
            && let Some(def) = schemas::schemas().definitions.get(&name)
        {
            refs(def, &mut todo);
        }
    }
    seen
}

/// A schema with v3 `$ref`s (`allOf` around a `$ref` with siblings).
fn to_v3(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out: Map<String, Value> =
                m.iter().map(|(k, c)| (k.clone(), to_v3(c))).collect();
            if let Some(Value::String(r)) = out.remove("$ref") {
                let r = r.replacen(REF_PREFIX, V3_PREFIX, 1);
                if out.is_empty() {
                    out.insert("$ref".to_owned(), json!(r));
                } else {
                    out.insert("allOf".to_owned(), json!([{"$ref": r}]));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

/// `/openapi/v3`: where each group/version's document is.
pub(crate) fn root(kinds: &Kinds) -> Value {
    let paths: Map<String, Value> = kinds
        .group_version_paths()
        .into_iter()
        .map(|gv| {
            let url = format!("/openapi/v3/{gv}?hash=fake");
            (gv, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// The PATCH operation kubectl looks for to learn that the server takes
/// `fieldValidation`.
fn patch_operation(rt: &ResourceType) -> Value {
    json!({
        "operationId": format!("patch{}", rt.kind),
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "parameters": [
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}},
        ],
        "responses": {"200": {"description": "OK"}},
    })
}

/// `/openapi/v3/{gv}`: the document of one group/version, if served.
pub(crate) fn document(kinds: &Kinds, crds: &[Value], gv: &str) -> Option<Value> {
    let rows: Vec<&ResourceType> = kinds
        .all()
        .iter()
        .filter(|r| r.gv_path() == gv)
        .map(AsRef::as_ref)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    for rt in rows.iter().filter(|r| r.is_stored()) {
        let item = if rt.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("/{gv}/{}/{{name}}", rt.plural)
        };
        paths.insert(item, json!({"patch": patch_operation(rt)}));
    }
    let own: Vec<(String, Value)> = kind_definitions(kinds, crds)
        .into_iter()
        .filter(|(_, def)| {
            def.pointer("/x-kubernetes-group-version-kind/0")
                .is_some_and(|g| {
                    rows.iter().any(|r| {
                        g["group"] == r.group.as_str()
                            && g["version"] == r.version.as_str()
                            && g["kind"] == r.kind.as_str()
                    })
                })
        })
        .collect();
    let mut components = Map::new();
    for name in reachable(&own) {
        if let Some(def) = schemas::schemas().definitions.get(&name) {
            components.insert(name, to_v3(def));
        }
    }
    for (name, def) in own {
        components.insert(name, to_v3(&def));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {"schemas": components},
    }))
}

/// `/openapi/v2`: every definition of the served kinds (no paths).
pub(crate) fn v2(kinds: &Kinds, crds: &[Value]) -> Value {
    let mut definitions = schemas::schemas().definitions.clone();
    for (name, def) in kind_definitions(kinds, crds) {
        definitions.entry(name).or_insert(def);
    }
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": {},
        "definitions": definitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_per_group_version() {
        let kinds = Kinds::default();
        let r = root(&kinds);
        assert_eq!(
            r["paths"]["apis/networking.k8s.io/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/networking.k8s.io/v1?hash=fake"
        );
        let doc = document(&kinds, &[], "apis/networking.k8s.io/v1").unwrap_or_default();
        let op = &doc["paths"]["/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}"]
            ["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Ingress");
        let schemas = &doc["components"]["schemas"];
        let ing = &schemas["io.k8s.api.networking.v1.Ingress"];
        assert_eq!(
            ing["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.networking.v1.IngressSpec"
        );
        assert!(
            schemas
                .get("io.k8s.api.networking.v1.HTTPIngressPath")
                .is_some()
        );
        assert!(schemas.get(OBJECT_META).is_some());
        assert!(schemas.get("io.k8s.api.core.v1.PodSpec").is_none());
        assert!(document(&kinds, &[], "apis/gateway.networking.k8s.io/v1").is_none());
        assert_eq!(
            crd_definition_name("gateway.networking.k8s.io", "v1", "Gateway"),
            "io.k8s.networking.gateway.v1.Gateway"
        );
        let v2 = v2(&kinds, &[]);
        assert!(v2["definitions"]["io.k8s.api.apps.v1.Deployment"].is_object());
    }
}
