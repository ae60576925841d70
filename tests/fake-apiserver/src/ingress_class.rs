//! The DefaultIngressClass admission plugin: a new Ingress that names no
//! class (neither `spec.ingressClassName` nor the `kubernetes.io/ingress.class`
//! annotation) gets the default IngressClass's name, the one annotated
//! `ingressclass.kubernetes.io/is-default-class: "true"` (the newest when
//! several are, ties broken by name, as kube-apiserver chooses).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::objects::meta_str;
use crate::resources::ResourceType;
use crate::store::Store;

/// The annotation marking the default IngressClass.
const DEFAULT_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// The legacy class annotation.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The name of the default IngressClass, if any.
fn default_class_name(store: &Store) -> Option<String> {
    let res: Arc<str> = Arc::from("networking.k8s.io/ingressclasses");
    let mut defaults: Vec<(String, String)> = store
        .range(&res, None, None)
        .filter(|(_, c)| {
            c.pointer("/metadata/annotations")
                .and_then(|a| a.get(DEFAULT_CLASS))
                .and_then(Value::as_str)
                == Some("true")
        })
        .map(|(_, c)| {
            (
                meta_str(c, "creationTimestamp").to_owned(),
                meta_str(c, "name").to_owned(),
            )
        })
        .collect();
    // Newest first (RFC 3339 UTC strings sort by time), then by name.
    defaults.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    defaults.into_iter().next().map(|(_, name)| name)
}

/// Sets the default class on a new Ingress (`obj`, before it is stored)
/// that names none.
pub(crate) fn default_class(store: &Store, rt: &ResourceType, obj: &mut Value) {
    if rt.group != "networking.k8s.io" || rt.kind != "Ingress" {
        return;
    }
    let has_class = obj
        .pointer("/spec/ingressClassName")
        .is_some_and(|c| !c.is_null());
    let has_annotation = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(CLASS_ANNOTATION))
        .is_some();
    if has_class || has_annotation {
        return;
    }
    let Some(name) = default_class_name(store) else {
        return;
    };
    if let Value::Object(map) = obj {
        let spec = map.entry("spec").or_insert_with(|| json!({}));
        if let Value::Object(spec) = spec {
            spec.insert("ingressClassName".to_owned(), json!(name));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;
    use crate::store::Key;

    fn class(store: &mut Store, name: &str, created: &str, default: bool) {
        let annotations = if default {
            json!({DEFAULT_CLASS: "true"})
        } else {
            json!({})
        };
        store.put(
            Key {
                res: Arc::from("networking.k8s.io/ingressclasses"),
                ns: String::new(),
                name: name.to_owned(),
            },
            json!({"metadata": {"name": name, "creationTimestamp": created, "annotations": annotations}}),
        );
    }

    #[test]
    fn newest_default_class_is_set() {
        let Some(ing) = builtin("Ingress") else {
            panic!("ingresses are served");
        };
        let mut store = Store::new(100);
        let mut obj = json!({"metadata": {"name": "web"}, "spec": {}});
        default_class(&store, &ing, &mut obj);
        assert!(obj["spec"].get("ingressClassName").is_none());
        class(&mut store, "old", "2020-01-01T00:00:00Z", true);
        class(&mut store, "new", "2021-01-01T00:00:00Z", true);
        class(
            &mut store,
            "newest-not-default",
            "2022-01-01T00:00:00Z",
            false,
        );
        default_class(&store, &ing, &mut obj);
        assert_eq!(obj["spec"]["ingressClassName"], "new");
        let mut named =
            json!({"metadata": {"name": "w", "annotations": {CLASS_ANNOTATION: "x"}}, "spec": {}});
        default_class(&store, &ing, &mut named);
        assert!(named["spec"].get("ingressClassName").is_none());
    }
}
