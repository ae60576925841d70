//! Versions of one stored object: objects are stored in one form per
//! resource (its storage version) and converted when read or written
//! through another. For a CustomResourceDefinition with several versions
//! only `apiVersion` changes (conversion strategy `None`); `events.k8s.io/v1`
//! Events are core v1 Events with renamed fields, as the real server
//! converts them.

use serde_json::{Map, Value, json};

use crate::resources::ResourceType;

/// Field renames between core v1 Events (left) and `events.k8s.io/v1`
/// Events (right); top-level fields.
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

fn is_events_v1(rt: &ResourceType) -> bool {
    rt.group == "events.k8s.io" && rt.kind == "Event"
}

fn rename(obj: &mut Map<String, Value>, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    for (from, to) in pairs {
        if let Some(v) = obj.remove(from) {
            obj.insert(to.to_owned(), v);
        }
    }
}

/// A stored object as a client of `rt` sees it.
pub(crate) fn to_served(rt: &ResourceType, stored: &Value) -> Value {
    let mut obj = stored.clone();
    if let Value::Object(map) = &mut obj {
        if is_events_v1(rt) {
            rename(map, EVENT_FIELDS.iter().copied());
        }
        map.insert("apiVersion".to_owned(), json!(rt.api_version()));
    }
    obj
}

/// An object written through `rt`, in the form it is stored in.
pub(crate) fn to_storage(rt: &ResourceType, served: Value) -> Value {
    let mut obj = served;
    if let Value::Object(map) = &mut obj {
        if is_events_v1(rt) {
            rename(map, EVENT_FIELDS.iter().map(|(a, b)| (*b, *a)));
        }
        map.insert("apiVersion".to_owned(), json!(rt.storage_version));
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;

    #[test]
    fn events_round_trip_between_apis() {
        let Some(new) = builtin("events.events.k8s.io") else {
            panic!("events.k8s.io events are served");
        };
        let written = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "regarding": {"kind": "Ingress", "name": "web"},
            "note": "bad path", "reason": "InvalidPath", "type": "Warning",
            "reportingController": "edge-gateway", "reportingInstance": "gw-0",
        });
        let stored = to_storage(&new, written.clone());
        assert_eq!(stored["apiVersion"], "v1");
        assert_eq!(stored["involvedObject"]["name"], "web");
        assert_eq!(stored["message"], "bad path");
        assert_eq!(stored["reportingComponent"], "edge-gateway");
        assert_eq!(to_served(&new, &stored), written);
        let Some(core) = builtin("v1/Event") else {
            panic!("core events are served");
        };
        assert_eq!(to_served(&core, &stored), stored);
    }
}
