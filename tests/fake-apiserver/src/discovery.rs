//! Discovery documents (`/version`, `/api`, `/apis`, `/apis/{g}`, and the
//! APIResourceLists), built from the resource table. Always the legacy
//! (unaggregated) JSON types: clients asking for aggregated discovery see a
//! plain `application/json` answer and fall back, as they do with older
//! servers.

use serde_json::{Value, json};

use crate::resources::{RESOURCES, VERBS, groups};

/// The Kubernetes version the server claims.
pub(crate) const MAJOR: &str = "1";
/// Minor version (matches the k8s-openapi feature the workspace uses, v1_37).
pub(crate) const MINOR: &str = "37";

/// `/version`.
pub(crate) fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": format!("v{MAJOR}.{MINOR}.0-fake"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub(crate) fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [],
    })
}

fn group_doc(group: &str) -> Value {
    let mut versions: Vec<&str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group) {
        if !versions.contains(&r.version) {
            versions.push(r.version);
        }
    }
    let listed: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": listed,
        "preferredVersion": {"groupVersion": format!("{group}/v1"), "version": "v1"},
    })
}

/// `/apis`.
pub(crate) fn group_list() -> Value {
    let groups: Vec<Value> = groups().into_iter().map(group_doc).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub(crate) fn group(group: &str) -> Value {
    let mut doc = group_doc(group);
    if let Value::Object(map) = &mut doc {
        map.insert("kind".to_owned(), json!("APIGroup"));
        map.insert("apiVersion".to_owned(), json!("v1"));
    }
    doc
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub(crate) fn resource_list(group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for rt in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
        });
        if !rt.short_names.is_empty()
            && let Value::Object(map) = &mut entry
        {
            map.insert("shortNames".to_owned(), json!(rt.short_names));
        }
        resources.push(entry);
        if rt.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", rt.plural),
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_resources_with_short_names() {
        let core = resource_list("", "v1");
        assert_eq!(core["groupVersion"], "v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"services") && names.contains(&"services/status"));
        let net = resource_list("networking.k8s.io", "v1");
        let ing = &net["resources"][0];
        assert_eq!(ing["shortNames"], json!(["ing"]));
        let groups = group_list();
        assert_eq!(groups["groups"].as_array().map(Vec::len), Some(5));
        let gateway = group("gateway.networking.k8s.io");
        assert_eq!(gateway["versions"].as_array().map(Vec::len), Some(2));
        assert_eq!(gateway["preferredVersion"]["version"], "v1");
    }
}
