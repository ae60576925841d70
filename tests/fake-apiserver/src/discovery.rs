//! Discovery documents (`/version`, `/api`, `/apis`, `/apis/{g}`, and the
//! APIResourceLists), built from the resource table. Always the legacy
//! (unaggregated) JSON types: clients asking for aggregated discovery see a
//! plain `application/json` answer and fall back, as they do with older
//! servers.

use serde_json::{Value, json};

use crate::resources::{Group, Kinds};

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

fn group_doc(group: &Group) -> Value {
    let versions: Vec<Value> = group
        .versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{}/{v}", group.name), "version": v}))
        .collect();
    json!({
        "name": group.name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or_else(|| json!({})),
    })
}

/// `/apis`.
pub(crate) fn group_list(kinds: &Kinds) -> Value {
    let groups: Vec<Value> = kinds.groups().iter().map(group_doc).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub(crate) fn group(kinds: &Kinds, name: &str) -> Value {
    let found = kinds.groups().into_iter().find(|g| g.name == name);
    let mut doc = found.as_ref().map_or_else(|| json!({}), group_doc);
    if let Value::Object(map) = &mut doc {
        map.insert("kind".to_owned(), json!("APIGroup"));
        map.insert("apiVersion".to_owned(), json!("v1"));
    }
    doc
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub(crate) fn resource_list(kinds: &Kinds, group: &str, version: &str) -> Value {
    let mut resources = Vec::new();
    for rt in kinds
        .all()
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": rt.verbs.names(),
        });
        if let Value::Object(map) = &mut entry {
            if !rt.short_names.is_empty() {
                map.insert("shortNames".to_owned(), json!(rt.short_names));
            }
            if !rt.categories.is_empty() {
                map.insert("categories".to_owned(), json!(rt.categories));
            }
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
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": crate::resources::api_version(group, version),
        "resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_resources_with_short_names() {
        let kinds = Kinds::default();
        let core = resource_list(&kinds, "", "v1");
        assert_eq!(core["groupVersion"], "v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"services") && names.contains(&"services/status"));
        let net = resource_list(&kinds, "networking.k8s.io", "v1");
        let ing = &net["resources"][0];
        assert_eq!(ing["shortNames"], json!(["ing"]));
        let apps = resource_list(&kinds, "apps", "v1");
        assert_eq!(apps["resources"][0]["categories"], json!(["all"]));
        let review = resource_list(&kinds, "authorization.k8s.io", "v1");
        assert_eq!(review["resources"][0]["verbs"], json!(["create"]));
        let groups = group_list(&kinds);
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .map(|a| a.iter().filter_map(|g| g["name"].as_str()).collect())
            .unwrap_or_default();
        for g in [
            "apps",
            "rbac.authorization.k8s.io",
            "policy",
            "autoscaling",
            "batch",
            "admissionregistration.k8s.io",
            "apiextensions.k8s.io",
            "authorization.k8s.io",
        ] {
            assert!(names.contains(&g), "{g}");
        }
        assert_eq!(
            group(&kinds, "autoscaling")["preferredVersion"]["version"],
            "v2"
        );
    }
}
