//! CustomResourceDefinitions: stored as written, established at once (the
//! status the apiextensions controllers write), and while one exists each
//! of its served versions is a kind of the server, with list, watch and the
//! other verbs; objects of it are stored as they are (no schema pruning or
//! validation) and read back in any served version with only `apiVersion`
//! changed. Deleting the CRD deletes its objects.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::resources::{DeleteAnswer, Res, ResourceType, Verbs, api_version, storage_key};
use crate::state::{Shared, write};
use crate::store::Store;

/// The store key of CRDs.
pub(crate) const STORAGE: &str = "apiextensions.k8s.io/customresourcedefinitions";

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

/// The names a CRD's objects go by, with the defaults the API server fills.
fn accepted_names(crd: &Value) -> Value {
    let mut names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let kind = text(crd, "/spec/names/kind").to_owned();
    if let Value::Object(m) = &mut names {
        m.entry("singular")
            .or_insert_with(|| json!(kind.to_ascii_lowercase()));
        m.entry("listKind")
            .or_insert_with(|| json!(format!("{kind}List")));
    }
    names
}

/// The name of the storage version.
fn storage_version(crd: &Value) -> Option<&str> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)?
        .iter()
        .find(|v| v.get("storage") == Some(&json!(true)))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
}

/// The status an established CRD has.
pub(crate) fn established_status(crd: &Value) -> Value {
    let now = crate::objects::now_rfc3339();
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now,
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "acceptedNames": accepted_names(crd),
        "storedVersions": storage_version(crd).into_iter().collect::<Vec<_>>(),
    })
}

/// The kinds one CRD serves: one row per served version.
pub(crate) fn rows(crd: &Value) -> Vec<Res> {
    let group = text(crd, "/spec/group");
    let names = accepted_names(crd);
    let plural = text(&names, "/plural");
    let kind = text(&names, "/kind");
    let Some(stored) = storage_version(crd) else {
        return Vec::new();
    };
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return Vec::new();
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    versions
        .filter(|v| v.get("served") == Some(&json!(true)))
        .map(|v| {
            Arc::new(ResourceType {
                group: group.to_owned(),
                version: text(v, "/name").to_owned(),
                plural: plural.to_owned(),
                singular: text(&names, "/singular").to_owned(),
                kind: kind.to_owned(),
                namespaced: text(crd, "/spec/scope") != "Cluster",
                short_names: strings(&names, "/shortNames"),
                categories: strings(&names, "/categories"),
                status_subresource: v.pointer("/subresources/status").is_some(),
                verbs: Verbs::All,
                delete_answer: DeleteAnswer::Status,
                storage: Arc::from(storage_key(group, plural)),
                storage_version: api_version(group, stored),
                custom: true,
            })
        })
        .collect()
}

/// The OpenAPI v3 schema of one version of a CRD, if it declares one.
pub(crate) fn version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)?
        .iter()
        .find(|v| text(v, "/name") == version)?
        .pointer("/schema/openAPIV3Schema")
}

/// Rebuilds the custom rows of the kind table from the CRDs in the store.
pub(crate) fn refresh(shared: &Shared, store: &Store) {
    let key: Arc<str> = Arc::from(STORAGE);
    let custom: Vec<Res> = store
        .range(&key, None, None)
        .filter(|(_, crd)| crd.pointer("/metadata/deletionTimestamp").is_none())
        .flat_map(|(_, crd)| rows(crd))
        .collect();
    write(&shared.kinds).set_custom(custom);
}

/// The CRDs of the store, by name (for the OpenAPI documents).
pub(crate) fn all(store: &Store) -> Vec<Value> {
    let key: Arc<str> = Arc::from(STORAGE);
    store
        .range(&key, None, None)
        .map(|(_, o)| (**o).clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "gateways.gateway.networking.k8s.io"},
            "spec": {
                "group": "gateway.networking.k8s.io",
                "names": {"plural": "gateways", "kind": "Gateway", "shortNames": ["gtw"], "categories": ["gateway-api"]},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1alpha1", "served": false, "storage": false}
                ]
            }
        })
    }

    #[test]
    fn served_versions_become_kinds() {
        let rows = rows(&crd());
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].api_version(), "gateway.networking.k8s.io/v1");
        assert_eq!(rows[1].storage_version, "gateway.networking.k8s.io/v1");
        assert!(rows[0].status_subresource && !rows[1].status_subresource);
        assert_eq!(rows[0].singular, "gateway");
        assert_eq!(rows[0].short_names, ["gtw"]);
        assert!(rows.iter().all(|r| r.custom && r.namespaced));
        let status = established_status(&crd());
        assert_eq!(status["storedVersions"], json!(["v1"]));
        assert_eq!(status["acceptedNames"]["listKind"], "GatewayList");
    }
}
