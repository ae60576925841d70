//! Which Ingresses a compile takes, and how their annotations are read:
//! the namespace scope (`--watch-namespace`, `--watch-namespace-selector`),
//! the class, `--disable-catch-all`, and `--annotations-prefix`.

use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;

use super::CompileOptions;
use crate::annotations::prefix;
use crate::class::is_ours;
use crate::objects::NsName;
use crate::snapshot::Snapshot;

/// Whether this controller takes `ingress`: its namespace is watched
/// (`--watch-namespace`, `--watch-namespace-selector`), its class is ours,
/// and with `--disable-catch-all` it has no `spec.defaultBackend`.
pub fn selects(
    snapshot: &Snapshot,
    options: &CompileOptions,
    id: &NsName,
    ingress: &Ingress,
) -> bool {
    let namespace_watched = options
        .watch_namespace
        .as_deref()
        .is_none_or(|ns| id.namespace == ns)
        && options.namespace_selector.as_ref().is_none_or(|selector| {
            snapshot
                .namespace(&id.namespace)
                .is_some_and(|ns| selector.matches(ns.metadata.labels.as_ref()))
        });
    let catch_all = options.disable_catch_all
        && ingress
            .spec
            .as_ref()
            .is_some_and(|s| s.default_backend.is_some());
    namespace_watched && !catch_all && is_ours(ingress, snapshot, &options.class)
}

/// The Ingresses a compile takes; with a custom annotation prefix, copies
/// whose annotations are renamed to the default prefix.
pub(super) struct Selected<'s> {
    taken: Vec<(&'s NsName, &'s Arc<Ingress>)>,
    renamed: Vec<Arc<Ingress>>,
}

impl<'s> Selected<'s> {
    pub(super) fn new(snapshot: &'s Snapshot, options: &CompileOptions) -> Self {
        let taken: Vec<(&NsName, &Arc<Ingress>)> = snapshot
            .ingresses()
            .filter(|(id, ingress)| selects(snapshot, options, id, ingress))
            .collect();
        let renamed = match &options.annotations_prefix {
            Some(custom) => taken
                .iter()
                .map(|(_, ingress)| Arc::new(prefix::renamed(ingress, custom)))
                .collect(),
            None => Vec::new(),
        };
        Self { taken, renamed }
    }

    /// The taken Ingresses, as the compile reads them.
    pub(super) fn ingresses(&self) -> Vec<(&NsName, &Arc<Ingress>)> {
        if self.renamed.is_empty() {
            return self.taken.clone();
        }
        self.taken
            .iter()
            .map(|(id, _)| *id)
            .zip(&self.renamed)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::compile::compile;
    use crate::objects::Object;
    use crate::selector::LabelSelector;
    use crate::snapshot::Changed;

    fn apply(snapshot: &mut Snapshot, value: Value) -> Changed {
        snapshot.apply(Object::from_value(value).unwrap().unwrap())
    }

    fn ingress(ns: &str, annotations: Value, default_backend: bool) -> Value {
        let mut spec = json!({"rules": [{"host": format!("{ns}.example.com"), "http": {"paths": [
            {"path": "/", "pathType": "Prefix",
             "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}]});
        if default_backend {
            spec["defaultBackend"] = json!({"service": {"name": "svc", "port": {"number": 80}}});
        }
        let mut annotations = annotations;
        annotations["kubernetes.io/ingress.class"] = "nginx".into();
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
               "metadata": {"name": "web", "namespace": ns, "annotations": annotations},
               "spec": spec})
    }

    fn namespace(name: &str, team: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Namespace",
               "metadata": {"name": name, "labels": {"team": team}}})
    }

    fn served(snapshot: &Snapshot, options: &CompileOptions) -> Vec<String> {
        compile(snapshot, options)
            .served
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_namespace_selector_follows_namespace_labels() {
        let mut s = Snapshot::default();
        apply(&mut s, ingress("a", json!({}), false));
        apply(&mut s, ingress("b", json!({}), false));
        apply(&mut s, ingress("c", json!({}), false));
        assert_eq!(apply(&mut s, namespace("a", "blue")), Changed::Routes);
        apply(&mut s, namespace("b", "green"));
        let options = CompileOptions {
            namespace_selector: Some(LabelSelector::parse("team=blue").unwrap()),
            ..CompileOptions::default()
        };
        // c has no Namespace object: not selected, as in ingress-nginx.
        assert_eq!(served(&s, &options), ["a/web"]);
        // Relabelled: routing changes; a status-only change does not.
        assert_eq!(apply(&mut s, namespace("b", "blue")), Changed::Routes);
        let mut same_labels = namespace("b", "blue");
        same_labels["status"] = json!({"phase": "Terminating"});
        assert_eq!(apply(&mut s, same_labels), Changed::Nothing);
        assert_eq!(served(&s, &options), ["a/web", "b/web"]);
        assert_eq!(served(&s, &CompileOptions::default()).len(), 3);
    }

    #[test]
    fn catch_all_ingresses_are_ignored_with_disable_catch_all() {
        let mut s = Snapshot::default();
        apply(&mut s, ingress("a", json!({}), true));
        apply(&mut s, ingress("b", json!({}), false));
        let options = CompileOptions {
            disable_catch_all: true,
            ..CompileOptions::default()
        };
        assert_eq!(served(&s, &options), ["b/web"]);
    }

    #[test]
    fn annotations_are_read_under_a_custom_prefix() {
        let mut s = Snapshot::default();
        apply(
            &mut s,
            ingress(
                "a",
                json!({"custom.io/server-snippet": "x",
                       "nginx.ingress.kubernetes.io/proxy-read-timeout": "never"}),
                false,
            ),
        );
        let options = CompileOptions {
            annotations_prefix: prefix::custom("custom.io"),
            ..CompileOptions::default()
        };
        let compiled = compile(&s, &options);
        // Refused under the custom prefix, named as written; the default
        // prefix's invalid value is not read at all.
        assert!(compiled.served.is_empty());
        let messages: Vec<&str> = compiled
            .diagnostics
            .iter()
            .map(|d| d.message.as_str())
            .collect();
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("custom.io/server-snippet")),
            "{messages:?}"
        );
        assert!(
            !messages.iter().any(|m| m.contains("proxy-read-timeout")),
            "{messages:?}"
        );
        // With the default prefix it is the other way round.
        let compiled = compile(&s, &CompileOptions::default());
        assert_eq!(compiled.served.len(), 1);
        assert!(
            compiled
                .diagnostics
                .iter()
                .any(|d| d.message.contains("proxy-read-timeout"))
        );
    }
}
