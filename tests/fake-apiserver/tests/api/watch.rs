//! Watches over raw HTTP: order, replay, compaction, bookmarks, selectors,
//! timeouts, and no leaked streams; plus outages.

use std::time::Duration;

use fake_apiserver::{FakeApiServer, Options};
use serde_json::{Value, json};

use crate::http::{Watch, get, rv, summary};

fn cm(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": labels}, "data": {"v": name}})
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

/// Polls a condition until it holds (or panics after the deadline).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + crate::http::DEADLINE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn events_arrive_in_order() {
    let server = FakeApiServer::start().await;
    server.apply(cm("existing", json!({}))).expect("apply");
    server.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "elsewhere", "namespace": "kube-system"}})).expect("apply");
    let mut w = Watch::open(&server.url(), &format!("{CMS}?watch=1")).await;
    assert_eq!(w.code, 200);
    assert_eq!(
        summary(&w.next().await.expect("event")),
        ("ADDED".to_owned(), "existing".to_owned())
    );

    server.apply(cm("a", json!({}))).expect("apply");
    let mut changed = cm("a", json!({}));
    changed["data"]["v"] = json!("changed");
    server.apply(changed).expect("apply");
    server.delete("configmaps", "default", "a").expect("delete");
    server
        .apply(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "other-kind"}}))
        .expect("apply");
    server.apply(cm("b", json!({}))).expect("apply");

    let mut last_rv = 0;
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = w.next().await.expect("event");
        assert_eq!(ev["object"]["kind"], "ConfigMap");
        let this_rv = rv(&ev["object"]);
        assert!(this_rv > last_rv, "resourceVersions increase");
        last_rv = this_rv;
        got.push(summary(&ev));
    }
    let want: Vec<(String, String)> = [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
        ("ADDED", "b"),
    ]
    .iter()
    .map(|(t, n)| ((*t).to_owned(), (*n).to_owned()))
    .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn replays_from_an_old_resource_version_and_expires_after_compaction() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    server.apply(cm("a", json!({}))).expect("apply");
    let list = get(&base, CMS).await;
    let from = list.body["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    server.apply(cm("b", json!({}))).expect("apply");
    server.delete("cm", "default", "a").expect("delete");

    let mut w = Watch::open(&base, &format!("{CMS}?watch=true&resourceVersion={from}")).await;
    assert_eq!(
        summary(&w.next().await.expect("event")),
        ("ADDED".to_owned(), "b".to_owned())
    );
    assert_eq!(
        summary(&w.next().await.expect("event")),
        ("DELETED".to_owned(), "a".to_owned())
    );
    drop(w);

    server.compact();
    let mut gone = Watch::open(&base, &format!("{CMS}?watch=1&resourceVersion={from}")).await;
    assert_eq!(
        gone.code, 200,
        "like the real server: 200, then an ERROR event"
    );
    let ev = gone.next().await.expect("an ERROR event");
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["kind"], "Status");
    assert_eq!(ev["object"]["code"], 410);
    assert_eq!(ev["object"]["reason"], "Expired");
    assert!(
        gone.next().await.is_none(),
        "the stream ends after the error"
    );

    // The current resourceVersion is still fine.
    let now = server.resource_version();
    let mut ok = Watch::open(&base, &format!("{CMS}?watch=1&resourceVersion={now}")).await;
    server.apply(cm("c", json!({}))).expect("apply");
    assert_eq!(
        summary(&ok.next().await.expect("event")),
        ("ADDED".to_owned(), "c".to_owned())
    );
}

#[tokio::test]
async fn bookmarks_and_initial_events() {
    let options = Options {
        bookmark_interval: Duration::from_millis(50),
        ..Options::default()
    };
    let server = FakeApiServer::start_with(options).await.expect("start");
    let base = server.url();
    server.apply(cm("a", json!({}))).expect("apply");
    let now = server.resource_version();
    let mut w = Watch::open(&base, &format!("/apis/networking.k8s.io/v1/ingresses?watch=1&allowWatchBookmarks=true&resourceVersion={now}")).await;
    let bm = w.next().await.expect("a bookmark");
    assert_eq!(bm["type"], "BOOKMARK");
    assert_eq!(bm["object"]["kind"], "Ingress");
    assert_eq!(bm["object"]["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(rv(&bm["object"]), now);
    // A later change to another kind moves the bookmark's resourceVersion.
    server.apply(cm("b", json!({}))).expect("apply");
    let later = server.resource_version();
    loop {
        let bm = w.next().await.expect("a bookmark");
        if rv(&bm["object"]) == later {
            break;
        }
    }

    // Streaming lists: current objects, then a bookmark marking the end.
    let mut s = Watch::open(&base, &format!("{CMS}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")).await;
    let names: Vec<String> = vec![s.next().await, s.next().await]
        .into_iter()
        .map(|e| summary(&e.expect("event")).1)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let end = s.next().await.expect("bookmark");
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    // Without bookmarks, none are sent.
    let mut quiet = Watch::open(&base, &format!("{CMS}?watch=1&resourceVersion={later}")).await;
    assert!(
        quiet
            .next_within(Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn selectors_apply_to_watches() {
    let server = FakeApiServer::start().await;
    server.apply(cm("a", json!({"app": "web"}))).expect("apply");
    server.apply(cm("b", json!({"app": "db"}))).expect("apply");
    let mut w = Watch::open(
        &server.url(),
        &format!("{CMS}?watch=1&labelSelector=app%3Dweb"),
    )
    .await;
    assert_eq!(
        summary(&w.next().await.expect("event")),
        ("ADDED".to_owned(), "a".to_owned())
    );
    server
        .apply(cm("a", json!({"app": "api"})))
        .expect("relabel");
    let gone = w.next().await.expect("event");
    assert_eq!(summary(&gone), ("DELETED".to_owned(), "a".to_owned()));
    assert_eq!(
        gone["object"]["metadata"]["labels"]["app"], "web",
        "the last matching state"
    );
    server
        .apply(cm("b", json!({"app": "web"})))
        .expect("relabel");
    assert_eq!(
        summary(&w.next().await.expect("event")),
        ("ADDED".to_owned(), "b".to_owned())
    );
    server.apply(cm("c", json!({"app": "db"}))).expect("apply");
    server.apply(cm("d", json!({"app": "web"}))).expect("apply");
    assert_eq!(
        summary(&w.next().await.expect("event")),
        ("ADDED".to_owned(), "d".to_owned())
    );

    let mut by_name = Watch::open(
        &server.url(),
        "/api/v1/configmaps?watch=1&fieldSelector=metadata.name%3Dc",
    )
    .await;
    assert_eq!(
        summary(&by_name.next().await.expect("event")),
        ("ADDED".to_owned(), "c".to_owned())
    );
}

#[tokio::test]
async fn timeouts_end_streams_and_closed_watches_do_not_leak() {
    let server = FakeApiServer::start().await;
    let mut w = Watch::open(&server.url(), &format!("{CMS}?watch=1&timeoutSeconds=1")).await;
    assert_eq!(
        w.next_within(Duration::from_secs(5)).await,
        Some(None),
        "ended by timeoutSeconds"
    );

    let w1 = Watch::open(&server.url(), &format!("{CMS}?watch=1")).await;
    let w2 = Watch::open(
        &server.url(),
        "/apis/networking.k8s.io/v1/ingresses?watch=1",
    )
    .await;
    until("two watches", || server.active_watches() == 2).await;
    drop(w1);
    drop(w2);
    until("closed watches to end", || server.active_watches() == 0).await;
}

#[tokio::test]
async fn outages() {
    let server = FakeApiServer::start().await;
    let base = server.url();
    let mut w = Watch::open(&base, &format!("{CMS}?watch=1")).await;
    server.pause().await;
    assert!(server.is_paused());
    assert_eq!(w.next().await, None, "a pause cuts watches");
    let refused = tokio::net::TcpStream::connect(server.addr()).await;
    assert!(refused.is_err(), "connections are refused while paused");
    server
        .apply(cm("during", json!({})))
        .expect("the store still works");
    server.resume().await.expect("resume");
    assert_eq!(server.url(), base);
    assert_eq!(get(&base, &format!("{CMS}/during")).await.code, 200);

    server.set_unavailable(true);
    let unavailable = get(&base, CMS).await;
    assert_eq!(unavailable.code, 503);
    assert_eq!(unavailable.body["reason"], "ServiceUnavailable");
    server.set_unavailable(false);
    assert_eq!(get(&base, CMS).await.code, 200);

    server.restart_same_port().await.expect("restart");
    assert_eq!(get(&base, CMS).await.code, 200);
    until("no watches", || server.active_watches() == 0).await;
    server.stop().await;
    assert!(
        tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .is_err()
    );
}
