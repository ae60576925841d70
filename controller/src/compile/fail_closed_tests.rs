//! Unit tests of the fail-closed rule through `compile()`: protective
//! annotations and ConfigMap keys are enforced, or the routes they cover
//! answer 503 with a `LocationDenied` diagnostic; global auth and
//! `no-auth-locations`.

use serde_json::json;

use super::test_support::{compiled, config_map, ingress};
use super::*;
use crate::annotations::{ANNOTATIONS, Support};

fn route<'c>(c: &'c Compiled, path: &str) -> &'c gateway::Route {
    let normal = gateway::path::normalize_path(path.as_bytes()).unwrap();
    c.table
        .lookup(Some("a.example"), &normal)
        .map(|m| m.route)
        .unwrap_or_else(|| panic!("no route for {path}"))
}

fn denied(c: &Compiled, path: &str) -> bool {
    route(c, path).action == RouteAction::Respond(503)
}

fn reasons_of(c: &Compiled, name: &str) -> Vec<Reason> {
    c.diagnostics
        .iter()
        .filter(|d| d.object.id.name == name)
        .map(|d| d.reason)
        .collect()
}

/// The value that puts a fail-closed annotation in effect, and the others
/// it needs.
fn triggering(name: &str) -> Vec<(&str, &str)> {
    let value = if name.starts_with("enable-") {
        "true"
    } else {
        "x"
    };
    vec![(name, value)]
}

/// The registry's promise, checked against the compiled table: every
/// annotation marked "fails closed" makes its Ingress's routes answer 503
/// with a LocationDenied diagnostic naming it, and leaves its neighbour
/// serving.
#[test]
fn every_fail_closed_annotation_answers_503_and_spares_the_neighbour() {
    let names: Vec<&str> = ANNOTATIONS
        .iter()
        .filter(|k| matches!(k.support, Support::FailsClosed(_)))
        .map(|k| k.name)
        .collect();
    assert!(names.len() >= 4, "{names:?}");
    for name in names {
        let c = compiled(vec![
            ingress("guarded", "/guarded", &triggering(name)),
            ingress("neighbour", "/open", &[]),
        ]);
        assert!(denied(&c, "/guarded"), "{name}: not denied");
        assert!(!denied(&c, "/open"), "{name}: the neighbour is denied");
        let message = c
            .diagnostics
            .iter()
            .find(|d| d.object.id.name == "guarded" && d.reason == Reason::LocationDenied)
            .map(|d| d.message.clone())
            .unwrap_or_else(|| panic!("{name}: no LocationDenied"));
        assert!(message.contains(name), "{message}");
        assert!(c.served.contains(&NsName::new("user-1", "guarded")));
    }
}

#[test]
fn the_waf_fails_closed_unless_the_operator_opts_out() {
    let ingresses = || {
        vec![
            ingress("waf", "/waf", &[("enable-owasp-core-rules", "true")]),
            ingress("plain", "/plain", &[]),
            ingress("off", "/off", &[("enable-modsecurity", "false")]),
        ]
    };
    let c = compiled(ingresses());
    assert!(denied(&c, "/waf") && !denied(&c, "/plain"));
    let mut objects = ingresses();
    objects.push(config_map(json!({"enable-modsecurity": "true"})));
    let c = compiled(objects);
    assert!(denied(&c, "/waf") && denied(&c, "/plain"));
    assert!(
        !denied(&c, "/off"),
        "enable-modsecurity: false turns it off"
    );
    let mut objects = ingresses();
    objects.push(config_map(json!({"enable-modsecurity": "true",
        "edge-gateway.io/serve-without-waf": "true"})));
    let c = compiled(objects);
    assert!(!denied(&c, "/waf") && !denied(&c, "/plain"));
    assert_eq!(reasons_of(&c, "waf"), [Reason::WafNotApplied]);
}

fn auth_url(route: &gateway::Route) -> Option<String> {
    let admission = route.admission.as_ref()?;
    let external = admission.external_auth.as_ref()?;
    let shown = format!("{external:?}");
    ["global.auth", "own.auth"]
        .into_iter()
        .find(|host| shown.contains(host))
        .map(str::to_owned)
}

#[test]
fn global_auth_applies_where_an_ingress_has_none_of_its_own() {
    let c = compiled(vec![
        config_map(json!({"global-auth-url": "http://global.auth/check",
                          "global-auth-response-headers": "X-User"})),
        ingress("plain", "/plain", &[]),
        ingress("own", "/own", &[("auth-url", "http://own.auth/check")]),
        ingress("off", "/off", &[("enable-global-auth", "false")]),
        ingress("acme", "/.well-known/acme-challenge/x", &[]),
        ingress("typo", "/typo", &[("enable-global-auth", "nope")]),
    ]);
    assert_eq!(
        auth_url(route(&c, "/plain")).as_deref(),
        Some("global.auth")
    );
    assert_eq!(auth_url(route(&c, "/own")).as_deref(), Some("own.auth"));
    assert_eq!(auth_url(route(&c, "/off")), None);
    assert_eq!(
        auth_url(route(&c, "/.well-known/acme-challenge/x/y")),
        None,
        "no-auth-locations"
    );
    assert_eq!(auth_url(route(&c, "/typo")).as_deref(), Some("global.auth"));
    assert_eq!(reasons_of(&c, "typo"), [Reason::InvalidAnnotation]);
}

#[test]
fn an_unusable_global_auth_denies_what_it_covers() {
    let c = compiled(vec![
        config_map(json!({"global-auth-url": "not a url",
                          "no-auth-locations": "/public, /health"})),
        ingress("plain", "/plain", &[]),
        ingress("public", "/public", &[]),
        ingress("own", "/own", &[("auth-url", "http://own.auth/check")]),
        ingress("off", "/off", &[("enable-global-auth", "false")]),
    ]);
    assert!(denied(&c, "/plain"));
    assert!(!denied(&c, "/public"), "no-auth-locations is not covered");
    assert!(!denied(&c, "/own") && !denied(&c, "/off"));
    assert_eq!(reasons_of(&c, "plain"), [Reason::LocationDenied]);
    let snippet = compiled(vec![
        config_map(json!({"global-auth-url": "http://global.auth/",
                          "global-auth-snippet": "proxy_set_header X 1;"})),
        ingress("plain", "/plain", &[]),
    ]);
    assert!(denied(&snippet, "/plain"));
}

#[test]
fn unusable_protective_config_map_values_deny_what_they_cover() {
    let c = compiled(vec![
        config_map(json!({"whitelist-source-range": "10.0.0.0/8, nope"})),
        ingress("inherits", "/inherits", &[]),
        ingress("own", "/own", &[("whitelist-source-range", "192.0.2.0/24")]),
    ]);
    assert!(denied(&c, "/inherits") && !denied(&c, "/own"));
    let c = compiled(vec![
        config_map(json!({"denylist-source-range": "192.0.2.0/24"})),
        ingress("inherits", "/inherits", &[]),
    ]);
    let admission = route(&c, "/inherits").admission.as_ref().unwrap();
    assert!(
        admission
            .access
            .check("192.0.2.7".parse().unwrap())
            .is_err()
    );
    let c = compiled(vec![
        config_map(json!({"block-user-agents": "~*(bad"})),
        ingress("any", "/any", &[]),
    ]);
    assert!(
        denied(&c, "/any"),
        "an unusable block list blocks everything"
    );
    let c = compiled(vec![
        config_map(json!({"proxy-real-ip-cidr": "10.0.0.0/33"})),
        ingress(
            "listed",
            "/listed",
            &[("whitelist-source-range", "10.0.0.0/8")],
        ),
        ingress("open", "/open", &[]),
    ]);
    assert!(denied(&c, "/listed") && !denied(&c, "/open"));
}

#[test]
fn satisfy_any_reaches_the_admission() {
    let c = compiled(vec![ingress(
        "any",
        "/any",
        &[
            ("satisfy", "any"),
            ("whitelist-source-range", "10.0.0.0/8"),
            ("auth-url", "http://own.auth/"),
        ],
    )]);
    assert!(route(&c, "/any").admission.as_ref().unwrap().satisfy_any);
}
