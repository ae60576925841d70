//! `ValidateObjectMeta`: the name (each kind's rule), labels and annotation
//! keys.

use serde_json::{Value, json};

use super::field::{FieldError, Path};
use super::names;
use crate::resources::ResourceType;

/// `IsValidPathSegmentName` (RBAC names may hold `:`).
fn path_segment_name(s: &str) -> Vec<String> {
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

/// The messages the kind's name rule gives for `name` (`prefix`: a
/// `generateName`, which may end with `-`).
fn name_errors(rt: &ResourceType, name: &str, prefix: bool) -> Vec<String> {
    let name = if prefix {
        name.strip_suffix('-')
            .map_or(name, |n| if n.is_empty() { "a" } else { n })
    } else {
        name
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => names::dns1123_label(name),
        ("", "Service") => names::dns1035_label(name),
        ("rbac.authorization.k8s.io", _) => path_segment_name(name),
        _ => names::dns1123_subdomain(name),
    }
}

/// The name check alone (what the direct store access applies).
pub(crate) fn validate_name(rt: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let name = super::text(obj, "/metadata/name");
    let generate = super::text(obj, "/metadata/generateName");
    let mut errs = Vec::new();
    if name.is_empty() && generate.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    }
    if !generate.is_empty() {
        for msg in name_errors(rt, generate, true) {
            errs.push(FieldError::invalid(
                &path.child("generateName"),
                json!(generate),
                msg,
            ));
        }
    }
    if !name.is_empty() {
        for msg in name_errors(rt, name, false) {
            errs.push(FieldError::invalid(&path.child("name"), json!(name), msg));
        }
    }
    errs
}

/// Labels: qualified-name keys, label values.
fn validate_labels(labels: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels.and_then(Value::as_object).into_iter().flatten() {
        for msg in names::qualified_name(k) {
            errs.push(FieldError::invalid(path, json!(k), msg));
        }
        let v = v.as_str().unwrap_or("");
        for msg in names::label_value(v) {
            errs.push(FieldError::invalid(path, json!(v), msg));
        }
    }
    errs
}

/// Annotation keys are qualified names (checked lowercased).
fn validate_annotations(annotations: Option<&Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for k in annotations
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
    {
        for msg in names::qualified_name(&k.to_ascii_lowercase()) {
            errs.push(FieldError::invalid(path, json!(k), msg));
        }
    }
    errs
}

/// `ValidateObjectMeta` for a kind.
pub(crate) fn validate_object_meta(rt: &ResourceType, obj: &Value) -> Vec<FieldError> {
    let path = Path::new("metadata");
    let mut errs = validate_name(rt, obj);
    errs.extend(validate_labels(
        obj.pointer("/metadata/labels"),
        &path.child("labels"),
    ));
    errs.extend(validate_annotations(
        obj.pointer("/metadata/annotations"),
        &path.child("annotations"),
    ));
    errs
}

/// `ValidateLabels` for a selector-like map (`spec.selector`).
pub(crate) fn validate_label_map(map: Option<&Value>, path: &Path) -> Vec<FieldError> {
    validate_labels(map, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;

    fn rt(spec: &str) -> crate::resources::Res {
        match builtin(spec) {
            Some(r) => r,
            None => panic!("{spec} is served"),
        }
    }

    #[test]
    fn names_follow_each_kind() {
        let ok = |spec: &str, name: &str| {
            validate_name(&rt(spec), &json!({"metadata": {"name": name}})).is_empty()
        };
        assert!(ok("svc", "web"));
        assert!(!ok("svc", "1web"));
        assert!(ok("ing", "web.v1"));
        assert!(!ok("ns", "a.b"));
        assert!(ok("clusterrole", "system:controller:x"));
        assert!(!ok("cm", "Web"));
        let gen_name = validate_name(&rt("cm"), &json!({"metadata": {"generateName": "web-"}}));
        assert!(gen_name.is_empty(), "{gen_name:?}");
        let missing = validate_name(&rt("cm"), &json!({"metadata": {}}));
        assert_eq!(
            missing[0].to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    #[test]
    fn labels_and_annotations() {
        let obj = json!({"metadata": {"name": "a", "labels": {"app": "bad value"}, "annotations": {"-x": "1"}}});
        let errs = validate_object_meta(&rt("cm"), &obj);
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["metadata.labels", "metadata.annotations"]);
    }
}
