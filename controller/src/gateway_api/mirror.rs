//! A rule's `RequestMirror` filter: its backendRef resolved like any
//! other (a core Service with a port, across namespaces only where a
//! ReferenceGrant allows it), and its share of the requests (`percent` or
//! `fraction`; all when neither is set).
//!
//! A backendRef that does not resolve leaves the rule served without
//! that mirror, as the spec requires ("not configure this backend"), with
//! `ResolvedRefs: False` and the reason (`BackendNotFound`,
//! `RefNotPermitted`, `InvalidKind`); a share outside the spec's bounds
//! refuses the rule (`UnsupportedValue`, answered 500), as other invalid
//! values do.

use crate::snapshot::Snapshot;

use super::refs::{self, RefProblem, ResolvedBackend};
use super::rules::RuleProblem;
use super::status::names;
use super::types::{BackendRef, RequestMirrorFilter};

/// One compiled `RequestMirror`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MirrorSpec {
    /// The backend, or why it is left out.
    pub(crate) target: Result<ResolvedBackend, RefProblem>,
    /// `numerator` of every `denominator` requests are mirrored.
    pub(crate) numerator: u32,
    pub(crate) denominator: u32,
}

fn unsupported(message: String) -> RuleProblem {
    RuleProblem {
        reason: names::UNSUPPORTED_VALUE,
        message,
    }
}

/// Compiles the `requestMirror` of a `route_kind` route in `namespace`.
pub(crate) fn mirror_spec(
    snapshot: &Snapshot,
    route_kind: &str,
    namespace: &str,
    filter: Option<&RequestMirrorFilter>,
) -> Result<MirrorSpec, RuleProblem> {
    let filter =
        filter.ok_or_else(|| unsupported("RequestMirror without requestMirror".to_owned()))?;
    let (numerator, denominator) = match (filter.percent, &filter.fraction) {
        (Some(_), Some(_)) => {
            return Err(unsupported(
                "RequestMirror: only one of percent and fraction may be set".to_owned(),
            ));
        }
        (Some(percent), None) => (percent, 100),
        (None, Some(fraction)) => (fraction.numerator, fraction.denominator.unwrap_or(100)),
        (None, None) => (100, 100),
    };
    let share = u32::try_from(numerator)
        .ok()
        .zip(u32::try_from(denominator).ok())
        .filter(|(n, d)| *d >= 1 && n <= d);
    let Some((numerator, denominator)) = share else {
        return Err(unsupported(format!(
            "RequestMirror share {numerator}/{denominator} is not between 0 and 1"
        )));
    };
    let b = &filter.backend_ref;
    let reference = BackendRef {
        group: b.group.clone(),
        kind: b.kind.clone(),
        name: b.name.clone(),
        namespace: b.namespace.clone(),
        port: b.port,
        weight: None,
    };
    let target =
        refs::backend(snapshot, route_kind, namespace, &reference).map_err(|p| RefProblem {
            reason: p.reason,
            message: format!("RequestMirror {}; no copies are sent there", p.message),
        });
    Ok(MirrorSpec {
        target,
        numerator,
        denominator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::Object;
    use serde_json::json;

    fn spec(snapshot: &Snapshot, filter: serde_json::Value) -> Result<MirrorSpec, RuleProblem> {
        let filter: RequestMirrorFilter = serde_json::from_value(filter).unwrap();
        mirror_spec(snapshot, "HTTPRoute", "app", Some(&filter))
    }

    #[test]
    fn shares_and_references_follow_the_spec() {
        let mut s = Snapshot::default();
        s.apply(
            Object::from_value(json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "shadow", "namespace": "app"},
                "spec": {"ports": [{"port": 8080}]}}))
            .unwrap()
            .unwrap(),
        );
        let all = spec(&s, json!({"backendRef": {"name": "shadow", "port": 8080}})).unwrap();
        assert!(all.target.is_ok());
        assert_eq!((all.numerator, all.denominator), (100, 100));
        let pct = spec(
            &s,
            json!({"backendRef": {"name": "shadow", "port": 8080}, "percent": 20}),
        )
        .unwrap();
        assert_eq!((pct.numerator, pct.denominator), (20, 100));
        let frac = spec(
            &s,
            json!({"backendRef": {"name": "shadow", "port": 8080},
                   "fraction": {"numerator": 25, "denominator": 50}}),
        )
        .unwrap();
        assert_eq!((frac.numerator, frac.denominator), (25, 50));
        for bad in [
            json!({"backendRef": {"name": "shadow", "port": 8080}, "percent": 101}),
            json!({"backendRef": {"name": "shadow", "port": 8080}, "percent": -1}),
            json!({"backendRef": {"name": "shadow", "port": 8080}, "percent": 5,
                   "fraction": {"numerator": 1}}),
            json!({"backendRef": {"name": "shadow", "port": 8080},
                   "fraction": {"numerator": 3, "denominator": 2}}),
            json!({"backendRef": {"name": "shadow", "port": 8080},
                   "fraction": {"numerator": 0, "denominator": 0}}),
        ] {
            assert_eq!(
                spec(&s, bad.clone()).unwrap_err().reason,
                "UnsupportedValue",
                "{bad}"
            );
        }
        let reason = |filter| spec(&s, filter).unwrap().target.unwrap_err().reason;
        assert_eq!(
            reason(json!({"backendRef": {"name": "nope", "port": 8080}})),
            "BackendNotFound"
        );
        assert_eq!(
            reason(json!({"backendRef": {"name": "shadow", "namespace": "other", "port": 8080}})),
            "RefNotPermitted"
        );
        assert_eq!(
            reason(json!({"backendRef": {"group": "example.com", "kind": "Bucket", "name": "b"}})),
            "InvalidKind"
        );
    }
}
