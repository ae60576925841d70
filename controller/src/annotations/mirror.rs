//! `mirror-target`, `mirror-request-body` and `mirror-host`, as
//! ingress-nginx's mirror parser reads them: no target, no mirror; the body
//! is copied unless `mirror-request-body` is `off`; the Host of the copies
//! is `mirror-host`, else the target's host.

use std::collections::BTreeMap;
use std::sync::Arc;

use gateway::mirror::Mirror;

use super::{AnnotationError, error};

/// The mirror of an Ingress's routes, if its annotations set one that parses.
pub(crate) fn parse(
    annotations: &BTreeMap<&str, &str>,
    errors: &mut Vec<AnnotationError>,
) -> Option<Arc<Mirror>> {
    let target = annotations
        .get("mirror-target")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())?;
    let body = annotations
        .get("mirror-request-body")
        .is_none_or(|v| v.trim() != "off");
    let host = annotations
        .get("mirror-host")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty());
    match Mirror::new(target, host, body) {
        Ok(mirror) => Some(Arc::new(mirror)),
        Err(message) => {
            errors.push(error(
                "mirror-target",
                target,
                format!("{message}; no mirror"),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_makes_a_mirror() {
        let mut errors = Vec::new();
        let map: BTreeMap<&str, &str> = [
            ("mirror-target", "https://test.env.com$request_uri"),
            ("mirror-request-body", "off"),
        ]
        .into_iter()
        .collect();
        assert!(parse(&map, &mut errors).is_some());
        assert!(errors.is_empty());
        let map: BTreeMap<&str, &str> = [("mirror-host", "x")].into_iter().collect();
        assert!(parse(&map, &mut errors).is_none());
        let map: BTreeMap<&str, &str> = [("mirror-target", "mirror.local")].into_iter().collect();
        assert!(parse(&map, &mut errors).is_none());
        assert_eq!(errors.len(), 1);
    }
}
