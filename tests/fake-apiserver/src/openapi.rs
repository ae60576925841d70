//! A minimal OpenAPI v3 (`/openapi/v3` and one document per group/version),
//! just enough for kubectl: each PATCH operation carries its
//! `x-kubernetes-group-version-kind` and the `fieldValidation` query
//! parameter, so kubectl leaves validation to the server (which accepts the
//! objects as they are) instead of downloading schemas for client-side
//! validation. There are no schemas, so `kubectl apply` computes its patches
//! from its built-in types. `/openapi/v2` is not served (404).

use serde_json::{Map, Value, json};

use crate::resources::RESOURCES;

/// The group/version path segments (`api/v1`, `apis/networking.k8s.io/v1`).
fn group_versions() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for rt in RESOURCES {
        let gv = if rt.group.is_empty() {
            format!("api/{}", rt.version)
        } else {
            format!("apis/{}/{}", rt.group, rt.version)
        };
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}

/// `/openapi/v3`: where each group/version's document is.
pub(crate) fn root() -> Value {
    let paths: Map<String, Value> = group_versions()
        .into_iter()
        .map(|gv| {
            let url = format!("/openapi/v3/{gv}?hash=fake");
            (gv, json!({"serverRelativeURL": url}))
        })
        .collect();
    json!({"paths": paths})
}

/// `/openapi/v3/{gv}`: the document of one group/version, if served.
pub(crate) fn document(gv: &str) -> Option<Value> {
    if !group_versions().iter().any(|g| g == gv) {
        return None;
    }
    let mut paths = Map::new();
    for rt in RESOURCES {
        let prefix = if rt.group.is_empty() {
            format!("api/{}", rt.version)
        } else {
            format!("apis/{}/{}", rt.group, rt.version)
        };
        if prefix != gv {
            continue;
        }
        let item = if rt.namespaced {
            format!("/{prefix}/namespaces/{{namespace}}/{}/{{name}}", rt.plural)
        } else {
            format!("/{prefix}/{}/{{name}}", rt.plural)
        };
        let patch = json!({
            "operationId": format!("patch{}", rt.kind),
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {
                "group": rt.group, "version": rt.version, "kind": rt.kind,
            },
            "parameters": [
                {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
                {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                {"name": "force", "in": "query", "schema": {"type": "boolean"}},
            ],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(item, json!({"patch": patch}));
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (fake-apiserver)", "version": "v1"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_per_group_version() {
        let r = root();
        assert_eq!(
            r["paths"]["apis/networking.k8s.io/v1"]["serverRelativeURL"],
            "/openapi/v3/apis/networking.k8s.io/v1?hash=fake"
        );
        let doc = document("apis/networking.k8s.io/v1").unwrap_or_default();
        let op = &doc["paths"]["/apis/networking.k8s.io/v1/namespaces/{namespace}/ingresses/{name}"]
            ["patch"];
        assert_eq!(op["x-kubernetes-group-version-kind"]["kind"], "Ingress");
        assert!(document("apis/apps/v1").is_none());
    }
}
