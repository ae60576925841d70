//! Unit tests of tenant isolation through `compile()`: canaries stay in
//! their namespace, regex paths are bounded and compiled once, and one
//! Ingress's regex compile never holds up another's change.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::test_support::{base, compiled, config_map, ingress_at, options, owner, snapshot};
use super::*;

fn canary_joined(c: &Compiled, path: &str) -> bool {
    let normal = gateway::path::normalize_path(path.as_bytes()).unwrap();
    let found = c.table.lookup(Some("a.example"), &normal).map(|m| m.route);
    found.is_some_and(|r| r.canary.is_some())
}

#[test]
fn a_canary_joins_only_routes_of_its_own_namespace() {
    let objects = || {
        vec![
            ingress_at(
                "user-1",
                "main",
                1,
                "a.example",
                &["/api/v1/predict/1"],
                &[],
            ),
            ingress_at(
                "user-2",
                "thief",
                2,
                "a.example",
                &["/api/v1/predict/1"],
                &[("canary", "true"), ("canary-weight", "100")],
            ),
        ]
    };
    let c = compiled(objects());
    assert!(!canary_joined(&c, "/api/v1/predict/1"));
    assert_eq!(owner(&c, "a.example", "/api/v1/predict/1"), "main");
    let reasons: Vec<Reason> = c
        .diagnostics
        .iter()
        .filter(|d| d.object.id.name == "thief")
        .map(|d| d.reason)
        .collect();
    assert_eq!(reasons, [Reason::CanaryCrossNamespace]);
    let mut allowed = objects();
    allowed.push(config_map(
        json!({"edge-gateway.io/allow-cross-namespace-canary": "true"}),
    ));
    assert!(canary_joined(&compiled(allowed), "/api/v1/predict/1"));
    let own = vec![
        ingress_at("user-1", "main", 1, "a.example", &["/p"], &[]),
        ingress_at(
            "user-1",
            "canary",
            2,
            "a.example",
            &["/p"],
            &[("canary", "true"), ("canary-weight", "10")],
        ),
    ];
    let mut own_objects = own;
    own_objects.push(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "other", "namespace": "user-1"}, "spec": {"ports": [{"port": 80}]}}));
    // The canary's Service must differ from the main one to split.
    own_objects[1]["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] =
        json!("other");
    assert!(canary_joined(&compiled(own_objects), "/p"));
}

fn regex_paths(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}/{i}/(\\w+)/.*")).collect()
}

fn with_paths(ns: &str, name: &str, day: u32, paths: &[String], regex: bool) -> Value {
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let annotations: &[(&str, &str)] = if regex { &[("use-regex", "true")] } else { &[] };
    ingress_at(ns, name, day, "a.example", &paths, annotations)
}

fn limits(per_ingress: usize, per_host: usize) -> Value {
    config_map(json!({
        "edge-gateway.io/max-regex-paths-per-ingress": per_ingress.to_string(),
        "edge-gateway.io/max-regex-paths-per-host": per_host.to_string(),
    }))
}

#[test]
fn regex_limits_refuse_the_ingress_that_asks_for_regex_mode() {
    let c = compiled(vec![
        limits(5, 8),
        with_paths("user-1", "big", 1, &regex_paths("/big", 6), true),
        with_paths("user-1", "small", 2, &regex_paths("/small", 2), true),
    ]);
    assert_eq!(owner(&c, "a.example", "/big/0/x/y"), "404");
    assert_eq!(owner(&c, "a.example", "/small/1/x/y"), "small");
    assert!(
        c.diagnostics
            .iter()
            .any(|d| d.object.id.name == "big" && d.reason == Reason::RegexLimit)
    );
    assert!(!c.served.contains(&NsName::new("user-1", "big")));

    // A newer regex Ingress that would push the host over its limit is the
    // one refused, never the literal Ingress whose paths it turns regex.
    let literal: Vec<String> = (0..6).map(|i| format!("/lit/{i}")).collect();
    let c = compiled(vec![
        limits(5, 8),
        with_paths("user-1", "literal", 2, &literal, false),
        with_paths("user-2", "switcher", 3, &regex_paths("/sw", 4), true),
    ]);
    assert_eq!(owner(&c, "a.example", "/lit/3"), "literal");
    assert_eq!(owner(&c, "a.example", "/sw/0/x/y"), "404");
    let refused: Vec<&str> = c
        .diagnostics
        .iter()
        .filter(|d| d.reason == Reason::RegexLimit)
        .map(|d| d.object.id.name.as_str())
        .collect();
    assert_eq!(refused, ["switcher"]);
}

#[test]
fn a_regex_ingress_on_a_shared_host_is_warned_about() {
    let c = compiled(vec![
        ingress_at("user-1", "plain", 1, "a.example", &["/plain"], &[]),
        ingress_at(
            "user-2",
            "regex",
            2,
            "a.example",
            &["/r/.*"],
            &[("use-regex", "true")],
        ),
    ]);
    let warned: Vec<(&str, Reason)> = c
        .diagnostics
        .iter()
        .map(|d| (d.object.id.name.as_str(), d.reason))
        .collect();
    assert_eq!(warned, [("regex", Reason::SharedHostRegexMode)]);
    assert!(c.diagnostics[0].message.contains("user-1"));
    let alone = compiled(vec![ingress_at(
        "user-2",
        "regex",
        2,
        "a.example",
        &["/r/.*"],
        &[("use-regex", "true")],
    )]);
    assert!(alone.diagnostics.is_empty(), "{:?}", alone.diagnostics);
}

/// Compiling in the background: a compile that needs expressions not yet
/// compiled publishes without them (the Ingress's previous version keeps
/// serving, a new one waits) and the next compile, once they are ready,
/// serves them.
#[test]
fn new_regex_paths_compile_in_the_background_while_others_publish() {
    let mut cache = CompileCache::default();
    let mut objects = base();
    objects.push(with_paths(
        "user-1",
        "regex",
        1,
        &regex_paths("/r", 2),
        true,
    ));
    let first = compile_with(&snapshot(&objects), &options(), &mut cache, 0);
    assert_eq!(owner(&first, "a.example", "/r/1/x/y"), "regex");
    cache.compile_regexes_in_background().unwrap();

    // The regex Ingress grows and a neighbour arrives in one change.
    let mut objects = base();
    objects.push(with_paths(
        "user-1",
        "regex",
        1,
        &regex_paths("/r", 50),
        true,
    ));
    objects.push(ingress_at(
        "user-2",
        "neighbour",
        2,
        "b.example",
        &["/n"],
        &[],
    ));
    let second = compile_with(&snapshot(&objects), &options(), &mut cache, 0);
    assert_eq!(owner(&second, "b.example", "/n"), "neighbour");
    assert_eq!(
        owner(&second, "a.example", "/r/1/x/y"),
        "regex",
        "the old version"
    );
    assert_eq!(owner(&second, "a.example", "/r/40/x/y"), "404", "not yet");
    assert!(cache.regexes_pending());

    let deadline = Instant::now() + Duration::from_secs(30);
    while cache.regexes_pending() {
        if cache.regexes_arrived() {
            // Take in what arrived; more may still be on the way.
            compile_with(&snapshot(&objects), &options(), &mut cache, 0);
        }
        assert!(Instant::now() < deadline, "never compiled");
        std::thread::sleep(Duration::from_millis(10));
    }
    let done = compile_with(&snapshot(&objects), &options(), &mut cache, 0);
    assert_eq!(owner(&done, "a.example", "/r/40/x/y"), "regex");
    assert_eq!(owner(&done, "b.example", "/n"), "neighbour");
    assert!(!cache.regexes_pending());
}
