//! Which Ingresses are ours: ingress-nginx's class rules, first match wins
//! (`internal/ingress/controller/store/store.go`, `GetIngressClass`).
//!
//! 1. `spec.ingressClassName` set: ours only if an IngressClass of that name
//!    exists with our `--controller-class` (or, with
//!    `--ingress-class-by-name`, the name is `--ingress-class`).
//! 2. Else the `kubernetes.io/ingress.class` annotation: ours only if it
//!    equals `--ingress-class`.
//! 3. Else ours only with `--watch-ingress-without-class`.

use k8s_openapi::api::networking::v1::Ingress;

use crate::snapshot::Snapshot;

/// The legacy class annotation.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The class flags, named as ingress-nginx's controller flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassOptions {
    /// `--ingress-class` (default `nginx`).
    pub ingress_class: String,
    /// `--controller-class` (default `k8s.io/ingress-nginx`).
    pub controller_class: String,
    /// `--watch-ingress-without-class` (default false).
    pub watch_without_class: bool,
    /// `--ingress-class-by-name` (default false).
    pub by_name: bool,
}

impl Default for ClassOptions {
    fn default() -> Self {
        Self {
            ingress_class: "nginx".to_owned(),
            controller_class: "k8s.io/ingress-nginx".to_owned(),
            watch_without_class: false,
            by_name: false,
        }
    }
}

/// Whether this controller serves `ingress`.
pub fn is_ours(ingress: &Ingress, snapshot: &Snapshot, options: &ClassOptions) -> bool {
    let class_name = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(name) = class_name {
        if options.by_name && name == options.ingress_class {
            return true;
        }
        return snapshot.ingress_class(name).is_some_and(|class| {
            class.spec.as_ref().and_then(|s| s.controller.as_deref())
                == Some(options.controller_class.as_str())
        });
    }
    let annotation = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION));
    match annotation {
        Some(value) => *value == options.ingress_class,
        None => options.watch_without_class,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Object;
    use serde_json::json;

    fn snapshot_with_classes() -> Snapshot {
        let mut s = Snapshot::default();
        for (name, controller) in [
            ("nginx", "k8s.io/ingress-nginx"),
            ("other", "example.com/x"),
        ] {
            s.apply(
                Object::from_value(json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
                    "metadata": {"name": name}, "spec": {"controller": controller}
                }))
                .unwrap()
                .unwrap(),
            );
        }
        s
    }

    fn ingress(class_name: Option<&str>, annotation: Option<&str>) -> Ingress {
        let mut value = json!({"metadata": {"name": "i"}, "spec": {}});
        if let Some(c) = class_name {
            value["spec"]["ingressClassName"] = json!(c);
        }
        if let Some(a) = annotation {
            value["metadata"]["annotations"] = json!({CLASS_ANNOTATION: a});
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn follows_ingress_nginx_precedence() {
        let s = snapshot_with_classes();
        let o = ClassOptions::default();
        assert!(is_ours(&ingress(Some("nginx"), None), &s, &o));
        assert!(!is_ours(&ingress(Some("other"), None), &s, &o));
        assert!(!is_ours(&ingress(Some("missing"), None), &s, &o));
        // The field beats the annotation.
        assert!(!is_ours(&ingress(Some("other"), Some("nginx")), &s, &o));
        assert!(is_ours(&ingress(None, Some("nginx")), &s, &o));
        assert!(!is_ours(&ingress(None, Some("traefik")), &s, &o));
        assert!(!is_ours(&ingress(None, None), &s, &o));
        let without = ClassOptions {
            watch_without_class: true,
            ..ClassOptions::default()
        };
        assert!(is_ours(&ingress(None, None), &s, &without));
        let by_name = ClassOptions {
            by_name: true,
            ..ClassOptions::default()
        };
        let empty = Snapshot::default();
        assert!(!is_ours(&ingress(Some("nginx"), None), &empty, &o));
        assert!(is_ours(&ingress(Some("nginx"), None), &empty, &by_name));
    }
}
