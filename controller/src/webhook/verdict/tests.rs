use serde_json::{Value, json};

use super::*;
use crate::compile::CompileOptions;
use crate::selector::LabelSelector;
use crate::snapshot::Snapshot;
use crate::webhook::{ReviewError, answer};

const P: &str = "nginx.ingress.kubernetes.io/";

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap().unwrap()
}

fn ingress(name: &str, host: &str, path: &str, annotations: &[(&str, &str)]) -> Value {
    let mut all: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| (format!("{P}{k}"), Value::from(*v)))
        .collect();
    all.insert("kubernetes.io/ingress.class".into(), "nginx".into());
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": "team", "annotations": all,
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"rules": [{"host": host, "http": {"paths": [{"path": path, "pathType": "Prefix",
            "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}]},
    })
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "svc", "namespace": "team"},
           "spec": {"ports": [{"port": 80}]}})
}

/// The baseline of a reconciler that compiled `objects`.
fn baseline_with(objects: Vec<Value>, options: CompileOptions) -> Baseline {
    let mut snapshot = Snapshot::default();
    for value in objects {
        snapshot.apply(object(value));
    }
    let diagnostics = compile(&snapshot, &options).diagnostics;
    Baseline {
        snapshot,
        options,
        diagnostics,
    }
}

fn baseline(objects: Vec<Value>) -> Baseline {
    baseline_with(objects, CompileOptions::default())
}

fn review(operation: &str, object: &Value, old: Option<&Value>) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"},
            "resource": {"group": "networking.k8s.io", "version": "v1", "resource": "ingresses"},
            "name": object["metadata"]["name"], "namespace": "team",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": object, "oldObject": old, "dryRun": false,
        }
    })
}

fn verdict(baseline: &Baseline, operation: &str, object: &Value, old: Option<&Value>) -> Verdict {
    let review: AdmissionReview = serde_json::from_value(review(operation, object, old)).unwrap();
    judge(baseline, &review.try_into().unwrap())
}

type AdmissionReview = kube::core::admission::AdmissionReview<DynamicObject>;

fn create(baseline: &Baseline, object: &Value) -> Verdict {
    verdict(baseline, "CREATE", object, None)
}

#[test]
fn a_good_ingress_is_allowed_without_warnings() {
    let b = baseline(vec![service()]);
    assert_eq!(
        create(&b, &ingress("web", "a.example.com", "/", &[])),
        Verdict::allow()
    );
}

#[test]
fn snippets_and_invalid_values_are_denied_with_every_diagnostic() {
    let b = baseline(vec![service()]);
    let v = create(
        &b,
        &ingress(
            "web",
            "a.example.com",
            "/",
            &[("configuration-snippet", "return 200;")],
        ),
    );
    assert!(!v.allowed);
    let message = v.message.unwrap();
    assert!(message.contains("RefusedAnnotation"), "{message}");
    assert!(message.contains("configuration-snippet"), "{message}");

    let v = create(
        &b,
        &ingress(
            "web",
            "a.example.com",
            "/",
            &[("proxy-read-timeout", "soon"), ("ssl-redirect", "maybe")],
        ),
    );
    let message = v.message.unwrap();
    assert!(message.contains("(2 problems)"), "{message}");
    assert!(
        message.contains("proxy-read-timeout") && message.contains("ssl-redirect"),
        "{message}"
    );
}

#[test]
fn a_protective_annotation_that_fails_closed_is_denied() {
    let b = baseline(vec![service()]);
    let v = create(
        &b,
        &ingress(
            "web",
            "a.example.com",
            "/",
            &[("whitelist-source-range", "10.0.0.0/99")],
        ),
    );
    assert!(!v.allowed);
    assert!(v.message.unwrap().contains("LocationDenied"));
}

#[test]
fn a_conflicting_path_is_denied_whichever_ingress_is_older() {
    let existing = ingress("first", "a.example.com", "/api", &[]);
    let b = baseline(vec![service(), existing]);
    // A new Ingress for the same host and path loses to the existing one.
    let v = create(&b, &ingress("second", "a.example.com", "/api", &[]));
    let message = v.message.unwrap();
    assert!(message.contains("PathConflict"), "{message}");
    assert!(message.contains("team/first"), "{message}");

    // An older Ingress updated to take the path of a newer one.
    let mut newer = ingress("newer", "b.example.com", "/x", &[]);
    newer["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z".into();
    let older = ingress("older", "c.example.com", "/", &[]);
    let b = baseline(vec![service(), newer, older.clone()]);
    let mut changed = older.clone();
    changed["spec"]["rules"][0]["host"] = "b.example.com".into();
    changed["spec"]["rules"][0]["http"]["paths"][0]["path"] = "/x".into();
    let v = verdict(&b, "UPDATE", &changed, Some(&older));
    let message = v.message.unwrap();
    assert!(
        message.contains("would take a route of Ingress team/newer"),
        "{message}"
    );
}

#[test]
fn what_would_still_serve_is_allowed_with_warnings() {
    let b = baseline(vec![]);
    let v = create(
        &b,
        &ingress("web", "a.example.com", "/", &[("made-up", "1")]),
    );
    assert!(v.allowed, "{v:?}");
    assert_eq!(v.warnings.len(), 2, "{v:?}");
    assert!(v.warnings.iter().any(|w| w.starts_with("ServiceNotFound")));
    assert!(
        v.warnings
            .iter()
            .any(|w| w.starts_with("UnknownAnnotation"))
    );
}

#[test]
fn ingresses_that_are_not_ours_are_allowed_untouched() {
    let b = baseline(vec![service()]);
    let mut other = ingress("web", "a.example.com", "/", &[("server-snippet", "x")]);
    other["metadata"]["annotations"]["kubernetes.io/ingress.class"] = "traefik".into();
    assert_eq!(create(&b, &other), Verdict::allow());

    // Outside the namespaces --watch-namespace-selector selects.
    let options = CompileOptions {
        namespace_selector: Some(LabelSelector::parse("ingress=nginx").unwrap()),
        ..CompileOptions::default()
    };
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": "team", "labels": {"ingress": "other"}}});
    let b = baseline_with(vec![service(), namespace], options);
    let snippet = ingress("web", "a.example.com", "/", &[("server-snippet", "x")]);
    assert_eq!(create(&b, &snippet), Verdict::allow());
}

#[test]
fn deletions_and_changes_routing_does_not_read_are_allowed() {
    let bad = ingress("web", "a.example.com", "/", &[("server-snippet", "x")]);
    let b = baseline(vec![service(), bad.clone()]);
    assert!(verdict(&b, "DELETE", &bad, Some(&bad)).allowed);
    let mut labelled = bad.clone();
    labelled["metadata"]["labels"] = json!({"team": "a"});
    assert!(verdict(&b, "UPDATE", &labelled, Some(&bad)).allowed);
    let mut deleting = bad.clone();
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
    deleting["spec"]["rules"][0]["host"] = "z.example.com".into();
    assert!(verdict(&b, "UPDATE", &deleting, Some(&bad)).allowed);
    // A real change to it is judged.
    let mut changed = bad.clone();
    changed["spec"]["rules"][0]["host"] = "z.example.com".into();
    assert!(!verdict(&b, "UPDATE", &changed, Some(&bad)).allowed);
}

#[test]
fn an_unreadable_object_is_denied_and_other_resources_allowed() {
    let b = baseline(vec![service()]);
    let mut broken = ingress("web", "a.example.com", "/", &[]);
    broken["spec"]["rules"][0]["http"]["paths"][0]["path"] = 7.into();
    let message = create(&b, &broken).message.unwrap();
    assert!(
        message.contains("spec.rules[0].http.paths[0].path"),
        "{message}"
    );

    let mut other = review("CREATE", &service(), None);
    other["request"]["resource"] = json!({"group": "", "version": "v1", "resource": "services"});
    let review: AdmissionReview = serde_json::from_value(other).unwrap();
    assert_eq!(judge(&b, &review.try_into().unwrap()), Verdict::allow());
}

#[test]
fn a_generated_name_is_judged_too() {
    let b = baseline(vec![service()]);
    let mut generated = ingress("", "a.example.com", "/", &[("server-snippet", "x")]);
    generated["metadata"]["generateName"] = "web-".into();
    let v = create(&b, &generated);
    assert!(v.message.unwrap().contains("team/<generated name>"));
}

#[test]
fn the_wire_format_echoes_the_uid_and_denies_with_400() {
    let b = baseline(vec![service()]);
    let body = review(
        "CREATE",
        &ingress("web", "a.example.com", "/", &[("server-snippet", "x")]),
        None,
    );
    let response: Value =
        serde_json::from_slice(&answer(&b, body.to_string().as_bytes()).unwrap()).unwrap();
    assert_eq!(response["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(response["kind"], "AdmissionReview");
    let r = &response["response"];
    assert_eq!(r["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("server-snippet")
    );

    let ok = review("CREATE", &ingress("web", "a.example.com", "/", &[]), None);
    let response: Value =
        serde_json::from_slice(&answer(&b, ok.to_string().as_bytes()).unwrap()).unwrap();
    assert_eq!(response["response"]["allowed"], true);

    assert!(matches!(
        answer(&b, b"{not json"),
        Err(ReviewError::Malformed(_))
    ));
    assert!(matches!(
        answer(
            &b,
            br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#
        ),
        Err(ReviewError::NoRequest)
    ));
    assert!(matches!(
        answer(&b, br#"{"apiVersion": "v1", "kind": "Pod"}"#),
        Err(ReviewError::Version(_))
    ));
}
