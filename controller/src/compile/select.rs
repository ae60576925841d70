//! Which Ingresses a compile takes, and how their annotations are read:
//! the namespace scope (`--watch-namespace`, `--watch-namespace-selector`),
//! the class, `--disable-catch-all`, and `--annotations-prefix`.

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
    taken: Vec<(&'s NsName, &'s Ingress)>,
    renamed: Vec<Ingress>,
}

impl<'s> Selected<'s> {
    pub(super) fn new(snapshot: &'s Snapshot, options: &CompileOptions) -> Self {
        let taken: Vec<(&NsName, &Ingress)> = snapshot
            .ingresses()
            .filter(|(id, ingress)| selects(snapshot, options, id, ingress))
            .map(|(id, ingress)| (id, ingress.as_ref()))
            .collect();
        let renamed = match &options.annotations_prefix {
            Some(custom) => taken
                .iter()
                .map(|(_, ingress)| prefix::renamed(ingress, custom))
                .collect(),
            None => Vec::new(),
        };
        Self { taken, renamed }
    }

    /// The taken Ingresses, as the compile reads them.
    pub(super) fn ingresses(&self) -> Vec<(&NsName, &Ingress)> {
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
