//! How GET and watch answers are rendered, chosen by the Accept header: the
//! objects as stored, a `meta.k8s.io/v1` Table (what `kubectl get` prints),
//! or PartialObjectMetadata (kube-rs `metadata_watcher`, `list_metadata`).

use serde_json::{Value, json};

use crate::resources::ResourceType;
use crate::table;

/// A rendering of API objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum View {
    /// The objects as stored.
    Full,
    /// A Table with per-kind columns.
    Table,
    /// Only `metadata`, as `PartialObjectMetadata(List)`.
    Metadata,
}

impl View {
    /// The view the client's preferred (first) Accept entry asks for.
    pub(crate) fn from_accept(accept: &str) -> Self {
        let first = accept.split(',').next().unwrap_or("");
        if first.contains("as=Table") {
            Self::Table
        } else if first.contains("as=PartialObjectMetadata") {
            Self::Metadata
        } else {
            Self::Full
        }
    }

    /// Renders a GET answer (one object or a list).
    pub(crate) fn render(self, rt: &ResourceType, value: Value) -> Value {
        match self {
            Self::Full => value,
            Self::Table => table::to_table(rt, &value),
            Self::Metadata => match value.get("items").and_then(Value::as_array) {
                Some(items) => json!({
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": value.get("metadata").cloned().unwrap_or_else(|| json!({})),
                    "items": items.iter().map(partial).collect::<Vec<_>>(),
                }),
                None => partial(&value),
            },
        }
    }
}

/// An object reduced to its metadata.
pub(crate) fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_first_accept_entry() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
        assert_eq!(View::from_accept(table), View::Table);
        let meta = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
        assert_eq!(View::from_accept(meta), View::Metadata);
        assert_eq!(View::from_accept("application/json"), View::Full);
        assert_eq!(View::from_accept(""), View::Full);
        let Some(rt) = crate::resources::builtin("secret") else {
            panic!("secrets are served");
        };
        let list = json!({"metadata": {"resourceVersion": "5"},
            "items": [{"metadata": {"name": "s"}, "data": {"k": "djE="}}]});
        let rendered = View::Metadata.render(&rt, list);
        assert_eq!(rendered["kind"], "PartialObjectMetadataList");
        assert_eq!(rendered["items"][0]["metadata"]["name"], "s");
        assert!(rendered["items"][0].get("data").is_none());
    }
}
