//! apiextensions.k8s.io/v1 CustomResourceDefinition validation: the rules
//! tests may trip on.

use serde_json::{Value, json};

use super::field::{FieldError, Path};
use super::text;

/// The CRD rules the API server checks that tests may trip on: the name is
/// `<plural>.<group>`, names and versions are given, one storage version.
pub(crate) fn validate(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = Path::new("spec");
    let group = text(crd, "/spec/group");
    let plural = text(crd, "/spec/names/plural");
    if group.is_empty() {
        errs.push(FieldError::required(&spec.child("group"), ""));
    }
    for field in ["plural", "kind"] {
        if text(crd, &format!("/spec/names/{field}")).is_empty() {
            errs.push(FieldError::required(&spec.child("names").child(field), ""));
        }
    }
    let name = text(crd, "/metadata/name");
    if !group.is_empty() && !plural.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    let scope = text(crd, "/spec/scope");
    if !matches!(scope, "Namespaced" | "Cluster") {
        errs.push(FieldError::not_supported(
            &spec.child("scope"),
            json!(scope),
            &["Cluster", "Namespaced"],
        ));
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    let storage = versions
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage") == Some(&json!(true)))
        .count();
    if versions.is_none_or(Vec::is_empty) {
        errs.push(FieldError::required(
            &spec.child("versions"),
            "must have exactly one version marked as storage version",
        ));
    } else if storage != 1 {
        errs.push(FieldError::invalid(
            &spec.child("versions"),
            json!(storage),
            "must have exactly one version marked as storage version",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_versions_and_scope() {
        let crd = json!({
            "metadata": {"name": "gateways.gateway.networking.k8s.io"},
            "spec": {"group": "gateway.networking.k8s.io", "scope": "Namespaced",
                "names": {"plural": "gateways", "kind": "Gateway"},
                "versions": [{"name": "v1", "served": true, "storage": true}]}
        });
        assert!(validate(&crd).is_empty());
        let mut bad = crd.clone();
        bad["metadata"]["name"] = json!("gateways");
        assert_eq!(
            validate(&bad)[0].to_string(),
            "metadata.name: Invalid value: \"gateways\": must be spec.names.plural+\".\"+spec.group"
        );
        let mut two = crd;
        two["spec"]["versions"] =
            json!([{"name": "v1", "storage": true}, {"name": "v2", "storage": true}]);
        assert_eq!(validate(&two).len(), 1);
    }
}
