//! Properties of the annotation and ConfigMap parsers over arbitrary input:
//! they never panic, they report keys by the registries, and what refuses
//! an Ingress (a refused annotation) or denies its routes (an unusable
//! address list) depends on nothing else an Ingress says.

use std::collections::{BTreeMap, BTreeSet};

use controller::annotations::traffic::EDGE_PREFIX;
use controller::annotations::{self, ANNOTATIONS, IngressAnnotations, PREFIX, Support};
use controller::config_map::{self, registry as config_keys};
use controller::{CompileOptions, Object, Reason, Snapshot, compile};
use gateway::policy::Policy;
use gateway::settings::ProxySettings;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

/// An annotation key: mostly ones the registry knows, some unknown under
/// the prefix, some of edge-gateway's own, some anything at all.
fn annotation_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(ANNOTATIONS.to_vec()).prop_map(|k| format!("{PREFIX}{}", k.name)),
        1 => "[a-z][a-z0-9-]{0,24}".prop_map(|n| format!("{PREFIX}{n}")),
        1 => "[a-z][a-z-]{0,24}".prop_map(|n| format!("{EDGE_PREFIX}{n}")),
        1 => any::<String>(),
    ]
}

/// A ConfigMap key: mostly documented ones, some anything at all.
fn config_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(config_keys::KEYS.to_vec()).prop_map(|k| k.name.to_owned()),
        1 => select(ANNOTATIONS.to_vec()).prop_map(|k| k.name.to_owned()),
        1 => any::<String>(),
    ]
}

/// A value: anything, or shapes that get past the first checks (numbers
/// with units, booleans, URLs and paths with captures, address lists).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ ]?-?[0-9]{0,12}(ms|s|m|h|k|g|K|M|G)?[ ]?",
        select(vec!["true", "false", "True", "0", "1", "", " "]).prop_map(str::to_owned),
        "(https?://)?[a-z0-9.$-]{0,12}(:[0-9]{1,6})?(/[a-z0-9$()._*?+-]{0,8}){0,3}",
        "[0-9a-f:./,]{0,40}",
        "[ ,]*([0-9]{1,3}\\.){3}[0-9]{1,3}(/[0-9]{1,3})?([ ,]+([0-9]{1,3}\\.){3}[0-9]{1,3})?",
    ]
}

fn annotation_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(annotation_key(), value(), 0..12)
}

fn parse(map: &BTreeMap<String, String>) -> IngressAnnotations {
    annotations::parse(
        Some(map),
        &ProxySettings::default(),
        &Policy::default(),
        false,
    )
}

/// The registry's verdict on each key under the prefix.
fn expected(map: &BTreeMap<String, String>) -> (Vec<String>, BTreeSet<String>) {
    let mut refused = Vec::new();
    let mut unknown = BTreeSet::new();
    for key in map.keys() {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        match annotations::known(name).map(|k| k.support) {
            None => {
                unknown.insert(key.clone());
            }
            Some(Support::Refused(_)) => refused.push(key.clone()),
            Some(_) => {}
        }
    }
    (refused, unknown)
}

fn refused_names() -> Vec<&'static str> {
    ANNOTATIONS
        .iter()
        .filter(|k| matches!(k.support, Support::Refused(_)))
        .map(|k| k.name)
        .collect()
}

/// A value that is never an address list: one element is no address.
fn bad_address_list() -> impl Strategy<Value = String> {
    ("[0-9./, ]{0,20}", "[g-z]{1,8}").prop_map(|(head, word)| format!("{head},{word}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn annotations_are_reported_by_the_registry(map in annotation_map()) {
        let parsed = parse(&map);
        let (refused, unknown) = expected(&map);
        prop_assert_eq!(&parsed.refused, &refused);
        let unknown_here: BTreeSet<String> = parsed
            .unknown
            .iter()
            .filter(|k| k.starts_with(PREFIX))
            .cloned()
            .collect();
        prop_assert_eq!(unknown_here, unknown);
        for error in &parsed.errors {
            // A bad value names its annotation (a warning may name one
            // that is missing, such as `canary` for `canary-by-*`).
            let named = error.key.starts_with(PREFIX) || error.key.starts_with(EDGE_PREFIX);
            prop_assert!(named, "error without an annotation: {:?}", error);
            if let Some(value) = map.get(&error.key) {
                prop_assert_eq!(value.trim(), error.value.trim());
            }
        }
        // Parsing is a function of the map.
        let again = parse(&map);
        prop_assert_eq!(again.refused, parsed.refused);
        prop_assert_eq!(again.unknown, parsed.unknown);
        prop_assert_eq!(again.errors, parsed.errors);
        prop_assert_eq!(again.admission.denied, parsed.admission.denied);
    }

    #[test]
    fn refusal_depends_on_keys_never_on_values(
        map in annotation_map(),
        values in proptest::collection::vec(value(), 12),
        snippet in select(refused_names()),
        snippet_value in value(),
    ) {
        let revalued: BTreeMap<String, String> = map
            .keys()
            .cloned()
            .zip(values.into_iter().cycle())
            .collect();
        prop_assert_eq!(parse(&map).refused, parse(&revalued).refused);
        let mut with_snippet = map;
        let key = format!("{PREFIX}{snippet}");
        with_snippet.insert(key.clone(), snippet_value);
        prop_assert!(parse(&with_snippet).refused.contains(&key));
    }

    #[test]
    fn an_unusable_address_list_always_denies(
        map in annotation_map(),
        name in select(vec![
            "whitelist-source-range",
            "allowlist-source-range",
            "denylist-source-range",
        ]),
        list in bad_address_list(),
    ) {
        // Whatever else the Ingress says, a bad list fails closed, never
        // open (only the newer allow-list name may override the older).
        let mut map = map;
        map.remove(&format!("{PREFIX}allowlist-source-range"));
        map.insert(format!("{PREFIX}{name}"), list);
        let denied = parse(&map).admission.denied;
        prop_assert!(denied.is_some(), "{:?}", map);
    }

    #[test]
    fn config_maps_are_reported_by_the_registry(
        data in proptest::collection::btree_map(config_key(), value(), 0..16),
    ) {
        let read = config_map::read(&data);
        for error in &read.errors {
            prop_assert!(data.contains_key(&error.key), "error for an absent key: {:?}", error);
        }
        for key in &read.unknown {
            prop_assert!(data.contains_key(key));
            prop_assert!(config_keys::known(key).is_none(), "{} is documented", key);
        }
        for key in &read.not_applied {
            let support = config_keys::known(key).map(|k| k.support);
            prop_assert!(
                matches!(support, Some(Support::NotYet(_) | Support::Refused(_))),
                "{} is applied: {:?}", key, support
            );
        }
        prop_assert_eq!(config_map::read(&data), read);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Through `compile()`: an Ingress with a refused annotation is not
    /// served whatever else it carries, and its neighbour still is.
    #[test]
    fn a_refused_ingress_never_takes_its_neighbour_down(
        map in annotation_map(),
        snippet in select(refused_names()),
        snippet_value in value(),
        config in proptest::collection::btree_map(config_key(), value(), 0..6),
    ) {
        let mut annotations = map;
        annotations.insert(format!("{PREFIX}{snippet}"), snippet_value);
        let objects = [
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "refused", "namespace": "ns", "annotations": annotations},
                "spec": {"rules": [{"host": "a.example", "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "svc", "port": {"number": 80}}},
                }]}}]},
            }),
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": {"name": "neighbour", "namespace": "ns"},
                "spec": {"rules": [{"host": "b.example", "http": {"paths": [{
                    "path": "/", "pathType": "Prefix",
                    "backend": {"service": {"name": "svc", "port": {"number": 80}}},
                }]}}]},
            }),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "controller", "namespace": "ingress-nginx"},
                "data": config,
            }),
        ];
        let mut snapshot = Snapshot::default();
        for value in objects {
            snapshot.apply(Object::from_value(value).unwrap().unwrap());
        }
        let mut options = CompileOptions::default();
        options.class.watch_without_class = true;
        options.configmap = Some(controller::NsName::new("ingress-nginx", "controller"));
        let compiled = compile(&snapshot, &options);
        let served: Vec<&str> = compiled.served.iter().map(|id| id.name.as_str()).collect();
        prop_assert_eq!(served, ["neighbour"]);
        let refused = compiled
            .diagnostics
            .iter()
            .any(|d| d.reason == Reason::RefusedAnnotation && d.object.id.name == "refused");
        prop_assert!(refused, "{:?}", compiled.diagnostics);
        prop_assert!(compiled.table.lookup(Some("a.example"), b"/").is_none());
        let route = compiled.table.lookup(Some("b.example"), b"/");
        let owner = route.and_then(|r| r.route.source.as_ref()).map(|s| s.name.to_string());
        prop_assert_eq!(owner.as_deref(), Some("neighbour"));
    }
}
