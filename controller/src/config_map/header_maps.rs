//! `proxy-set-headers` and `add-headers`: each names another ConfigMap
//! (`namespace/name`, or a bare name in the controller ConfigMap's
//! namespace) whose data are header name → value. They are read from the
//! snapshot at every compile, so an edit to the named ConfigMap applies
//! like an edit to the controller's own.
//!
//! Values are sent as written: ingress-nginx substitutes nginx variables
//! in them, edge-gateway has no variables, so a value that uses one is
//! refused rather than sent literally. An invalid name or value is a
//! diagnostic naming the ConfigMap and the key; that header is skipped and
//! the others apply.

use gateway::policy::header_rules::header_pair;
use http::{HeaderName, HeaderValue};

use crate::diagnostics::{Diagnostic, Reason};
use crate::objects::{Kind, NsName, ObjectKey};
use crate::snapshot::Snapshot;

/// The ConfigMaps the controller ConfigMap names for headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMaps {
    /// `proxy-set-headers`: headers set on every upstream request.
    pub proxy_set: Option<NsName>,
    /// `add-headers`: headers set on every response.
    pub add: Option<NsName>,
}

/// Parses a ConfigMap reference: `namespace/name`, or `name` in
/// `namespace` (empty: the controller ConfigMap's, filled in when the
/// reference is resolved).
pub(crate) fn reference(value: &str, namespace: &str) -> Result<NsName, String> {
    let valid = |part: &str| {
        !part.is_empty()
            && part.len() <= 253
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    };
    let (ns, name) = match value.split_once('/') {
        Some((ns, name)) if valid(ns) => (ns, name),
        Some(_) => return Err("must name a ConfigMap as namespace/name".to_owned()),
        None => (namespace, value),
    };
    if !valid(name) {
        return Err("must name a ConfigMap as namespace/name".to_owned());
    }
    Ok(NsName::new(ns, name))
}

/// The headers of the ConfigMap `id` names, sorted by name; `key` is the
/// controller ConfigMap's key that names it (for the diagnostics).
pub(crate) fn headers(
    snapshot: &Snapshot,
    controller: &ObjectKey,
    key: &str,
    id: &NsName,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<(HeaderName, HeaderValue)> {
    let Some(config_map) = snapshot.config_map(id) else {
        diagnostics.push(Diagnostic {
            object: controller.clone(),
            reason: Reason::InvalidConfigKey,
            message: format!("{key}: ConfigMap {id} not found; no header is set"),
        });
        return Vec::new();
    };
    let object = ObjectKey {
        kind: Kind::ConfigMap,
        id: id.clone(),
    };
    let mut pairs = Vec::new();
    for (name, value) in config_map.data.iter().flatten() {
        match header_pair(name, value) {
            Ok(pair) => pairs.push(pair),
            Err(message) => diagnostics.push(Diagnostic {
                object: object.clone(),
                reason: Reason::InvalidConfigKey,
                message: format!("{key} header {name:?}: {message}; it is skipped"),
            }),
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(
            reference("ingress-nginx/custom-headers", "x"),
            Ok(NsName::new("ingress-nginx", "custom-headers"))
        );
        assert_eq!(
            reference("custom-headers", "ingress-nginx"),
            Ok(NsName::new("ingress-nginx", "custom-headers"))
        );
        assert_eq!(reference("cm", ""), Ok(NsName::new("", "cm")));
        for bad in ["", "/", "a/", "/b", "a/b/c", "A/b", "a b/c"] {
            assert!(reference(bad, "ns").is_err(), "{bad:?}");
        }
    }
}
