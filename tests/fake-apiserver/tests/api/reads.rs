//! Reads over raw HTTP: selectors, paging, compaction of lists, discovery,
//! events, the request log and direct store access.

use fake_apiserver::FakeApiServer;
use serde_json::{Value, json};

use crate::http::{assert_status, call_raw, get, post, rv};

#[tokio::test]
async fn lists_select_and_page() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    for (i, tier) in ["front", "back", "front", "db", "back"].iter().enumerate() {
        server
            .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm{i}"), "namespace": if i == 4 { "kube-system" } else { "default" },
                    "labels": {"tier": tier, "idx": i.to_string()}}}))
            .expect("apply");
    }
    let names = |reply: &crate::http::Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let cms = "/api/v1/namespaces/default/configmaps";
    for (selector, want) in [
        ("tier%3Dfront", vec!["cm0", "cm2"]),
        ("tier!%3Dfront", vec!["cm1", "cm3"]),
        ("tier%20in%20(back%2Cdb)", vec!["cm1", "cm3"]),
        ("tier%20notin%20(back%2Cdb)", vec!["cm0", "cm2"]),
        ("idx", vec!["cm0", "cm1", "cm2", "cm3"]),
        ("!idx", vec![]),
        ("tier%3Dfront%2Cidx%3D2", vec!["cm2"]),
    ] {
        let reply = get(&base, &format!("{cms}?labelSelector={selector}")).await;
        assert_eq!(names(&reply), want, "{selector}");
    }
    let by_name = get(
        &base,
        "/api/v1/configmaps?fieldSelector=metadata.name%3Dcm4",
    )
    .await;
    assert_eq!(names(&by_name), ["cm4"]);
    let by_ns = get(
        &base,
        "/api/v1/configmaps?fieldSelector=metadata.namespace%3Dkube-system",
    )
    .await;
    assert_eq!(names(&by_ns), ["cm4"]);
    let bad = get(&base, &format!("{cms}?labelSelector=tier%20in%20(a")).await;
    assert_status(&bad, 400, "BadRequest");

    // Paging across all namespaces.
    let mut seen = Vec::new();
    let mut path = "/api/v1/configmaps?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = get(&base, &path).await;
        pages += 1;
        seen.extend(names(&page));
        let Some(token) = page.body["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
        else {
            break;
        };
        assert!(
            page.body["metadata"]["remainingItemCount"]
                .as_u64()
                .is_some_and(|n| n > 0)
        );
        path = format!(
            "/api/v1/configmaps?limit=2&continue={}",
            token.replace('/', "%2F")
        );
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["cm0", "cm1", "cm2", "cm3", "cm4"]);

    // With a selector the real API server says there is more, not how much.
    let selected = get(
        &base,
        "/api/v1/configmaps?limit=1&labelSelector=tier%3Dback",
    )
    .await;
    assert_eq!(names(&selected), ["cm1"]);
    assert!(
        selected.body["metadata"]["continue"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        selected.body["metadata"]
            .get("remainingItemCount")
            .is_none()
    );

    // A continue token or an exact resourceVersion from before compaction is gone.
    let first = get(&base, "/api/v1/configmaps?limit=2").await;
    let token = first.body["metadata"]["continue"]
        .as_str()
        .unwrap_or("")
        .replace('/', "%2F");
    let old_rv = first.body["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    server
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}}))
        .expect("apply");
    server.compact();
    assert_status(
        &get(
            &base,
            &format!("/api/v1/configmaps?limit=2&continue={token}"),
        )
        .await,
        410,
        "Expired",
    );
    let exact = get(
        &base,
        &format!("{cms}?resourceVersion={old_rv}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_status(&exact, 410, "Expired");
    let any = get(
        &base,
        &format!("{cms}?resourceVersion={old_rv}&resourceVersionMatch=NotOlderThan"),
    )
    .await;
    assert_eq!(any.code, 200);
}

#[tokio::test]
async fn discovery_documents() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let version = get(&base, "/version").await;
    assert_eq!(version.body["major"], "1");
    let api = get(&base, "/api").await;
    assert_eq!(api.body["kind"], "APIVersions");
    assert_eq!(api.body["versions"], json!(["v1"]));
    let apis = get(&base, "/apis").await;
    let groups: Vec<&str> = apis.body["groups"]
        .as_array()
        .map(|g| g.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        groups,
        [
            "networking.k8s.io",
            "discovery.k8s.io",
            "coordination.k8s.io",
            "events.k8s.io",
            "apps",
            "batch",
            "autoscaling",
            "policy",
            "rbac.authorization.k8s.io",
            "admissionregistration.k8s.io",
            "apiextensions.k8s.io",
            "authorization.k8s.io",
            "authentication.k8s.io"
        ]
    );
    let core = get(&base, "/api/v1").await;
    assert_eq!(core.body["kind"], "APIResourceList");
    let find = |list: &Value, name: &str| -> Value {
        list["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["name"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    assert_eq!(find(&core.body, "services")["shortNames"], json!(["svc"]));
    assert_eq!(find(&core.body, "configmaps")["shortNames"], json!(["cm"]));
    assert_eq!(find(&core.body, "endpoints")["shortNames"], json!(["ep"]));
    assert_eq!(find(&core.body, "namespaces")["namespaced"], false);
    let net = get(&base, "/apis/networking.k8s.io/v1").await;
    let ing = find(&net.body, "ingresses");
    assert_eq!(
        (ing["kind"].as_str(), ing["singularName"].as_str()),
        (Some("Ingress"), Some("ingress"))
    );
    assert_eq!(ing["shortNames"], json!(["ing"]));
    assert!(
        ing["verbs"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("watch")))
    );
    assert_eq!(
        find(&net.body, "ingresses/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    // Aggregated discovery is not offered: a plain JSON answer, clients fall back.
    let agg = call_raw(
        &base,
        "GET",
        "/apis",
        None,
        Some(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        ),
        None,
    )
    .await;
    assert_eq!(
        (agg.code, agg.content_type.as_str()),
        (200, "application/json")
    );
    assert_eq!(agg.body["kind"], "APIGroupList");
    assert_eq!(get(&base, "/openapi/v2").await.code, 200);
    assert_eq!(get(&base, "/openapi/v3").await.code, 200);
    let health = call_raw(&base, "GET", "/healthz", None, None, None).await;
    assert_eq!(health.code, 200);
    // Tables for kubectl.
    let table = call_raw(
        &base,
        "GET",
        "/api/v1/namespaces",
        None,
        Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
        None,
    )
    .await;
    assert_eq!(table.body["kind"], "Table");
    assert_eq!(table.body["rows"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn events_and_requests_are_recorded() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let core = post(
        &base,
        "/api/v1/namespaces/default/events",
        json!({
        "metadata": {"generateName": "web-"},
        "involvedObject": {"kind": "Ingress", "name": "web", "namespace": "default"},
        "type": "Warning", "reason": "BadConfig", "message": "oops"}),
    )
    .await;
    assert_eq!(core.code, 201, "{:#}", core.body);
    let new = post(
        &base,
        "/apis/events.k8s.io/v1/namespaces/default/events",
        json!({
        "metadata": {"name": "web.1"}, "eventTime": "2026-01-01T00:00:00.000000Z",
        "regarding": {"kind": "Ingress", "name": "web"}, "type": "Warning", "reason": "BadConfig",
        "note": "oops", "action": "Sync", "reportingController": "x", "reportingInstance": "y"}),
    )
    .await;
    assert_eq!(new.code, 201, "{:#}", new.body);
    // One store, two APIs (as on a real server): each lists both events,
    // in its own shape.
    let core_list = server.list("events", "default");
    assert_eq!(core_list.len(), 2);
    assert!(
        core_list
            .iter()
            .any(|e| e["message"] == "oops" && e["involvedObject"]["name"] == "web")
    );
    let new_list = server.list("events.events.k8s.io", "");
    assert_eq!(new_list.len(), 2);
    assert!(
        new_list
            .iter()
            .all(|e| e["note"] == "oops" && e["regarding"]["name"] == "web")
    );
    let _ = get(&base, "/api/v1/namespaces/default/secrets/tls?x=a%20b").await;
    let reqs = server.requests();
    let last = reqs.last().expect("recorded");
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("GET", "/api/v1/namespaces/default/secrets/tls")
    );
    assert_eq!(last.query_param("x").as_deref(), Some("a b"));
    assert!(
        reqs.iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/events"))
    );
    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn direct_store_access() {
    let server = FakeApiServer::start().await;
    let stored = server
        .apply_yaml("apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\nstringData:\n  k: v\n---\napiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: nginx\nspec:\n  controller: k8s.io/ingress-nginx\n")
        .expect("apply");
    assert_eq!(stored.len(), 2);
    assert_eq!(
        server.get("Secret", "default", "tls").expect("secret")["data"]["k"],
        "dg=="
    );
    assert!(server.get("ingressclasses", "", "nginx").is_some());
    assert!(
        server
            .get("networking.k8s.io/v1/IngressClass", "", "nginx")
            .is_some()
    );
    let again = server
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "tls", "namespace": "default"}, "data": {"k": "dw=="}}))
        .expect("replace");
    assert_eq!(again["metadata"]["uid"], stored[0]["metadata"]["uid"]);
    assert!(rv(&again) > rv(&stored[0]));
    assert_eq!(
        server
            .delete("secret", "default", "tls")
            .map(|o| o["metadata"]["name"].clone()),
        Ok(json!("tls"))
    );
    assert_eq!(
        server
            .delete("secret", "default", "tls")
            .map_err(|e| e.code),
        Err(404)
    );
    assert!(
        server
            .apply(json!({"apiVersion": "apps/v1", "kind": "Deployment"}))
            .is_err()
    );
    assert_eq!(server.list("namespaces", "").len(), 4);
}
