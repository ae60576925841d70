//! Session affinity and consistent hashing through the real binary:
//! `affinity: cookie` sets its cookie on the first response with the
//! configured attributes and keeps a session on one pod, moves it when the
//! pod goes away (and, after a failed attempt, only with
//! `session-cookie-change-on-failure`), and keeps canary sessions where
//! they started;
//! `upstream-hash-by` sends one key to one pod and spreads distinct keys.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use testkit::{EchoBackend, IngressBuilder, TestResponse, eventually, join_docs, request};

use crate::{Setup, answered_by, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";
const HOST: &str = "sticky.test";

/// An Ingress in namespace `aff` routing `HOST` + `path` (Prefix) to
/// `service` port 80.
fn ingress(name: &str, path: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    let mut builder = IngressBuilder::new("aff", name).class("nginx");
    for (k, v) in annotations {
        builder = builder.annotation(&format!("{P}{k}"), v);
    }
    builder.host(HOST).path(path, "Prefix", service, 80).build()
}

/// `n` echo backends on 127.0.166.<base>.. sharing one port.
async fn pods(base: u8, n: u8) -> Vec<EchoBackend> {
    let ips: Vec<[u8; 4]> = (0..n).map(|i| [127, 0, 166, base + i]).collect();
    EchoBackend::start_group(&ips).await
}

async fn get(s: &Setup, path: &str, headers: &[(&str, &str)]) -> TestResponse {
    let response = request(s.http(), "GET", HOST, path, headers, Vec::new()).await;
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

/// The `name=value` part of a Set-Cookie line.
fn cookie_pair(line: &str) -> String {
    line.split(';').next().unwrap_or_default().trim().to_owned()
}

#[tokio::test]
async fn the_first_response_sets_the_cookie_and_the_session_sticks() {
    let pods = pods(1, 3).await;
    let refs: Vec<&EchoBackend> = pods.iter().collect();
    let mut docs = service_for("aff", "model", &refs);
    docs.push(ingress("plain", "/app", "model", &[("affinity", "cookie")]));
    let s = Setup::start(&docs).await;

    // ingress-nginx's defaults: INGRESSCOOKIE, the route's path, HttpOnly,
    // a session cookie, not Secure over plain HTTP.
    let first = get(&s, "/app/x", &[]).await;
    let line = first.header("set-cookie").expect("a session cookie");
    assert!(line.starts_with("INGRESSCOOKIE="), "{line}");
    assert!(line.ends_with("; Path=/app; HttpOnly"), "{line}");
    assert!(!line.contains("127.0.166"), "the pod address leaks: {line}");
    let home = answered_by(&first);
    let cookie = cookie_pair(&line);
    for _ in 0..12 {
        let again = get(&s, "/app/x", &[("cookie", &cookie)]).await;
        assert_eq!(answered_by(&again), home);
        assert_eq!(again.header("set-cookie"), None);
    }
    // Without the cookie, round robin spreads new sessions over the pods.
    let mut homes = HashSet::new();
    for _ in 0..6 {
        homes.insert(answered_by(&get(&s, "/app/x", &[]).await));
    }
    assert_eq!(homes.len(), 3, "{homes:?}");
}

#[tokio::test]
async fn every_cookie_attribute_is_written() {
    let pods = pods(10, 2).await;
    let refs: Vec<&EchoBackend> = pods.iter().collect();
    let mut docs = service_for("aff", "model", &refs);
    docs.push(ingress(
        "tuned",
        "/tuned",
        "model",
        &[
            ("affinity", "cookie"),
            ("session-cookie-name", "route"),
            ("session-cookie-path", "/"),
            ("session-cookie-domain", "sticky.test"),
            ("session-cookie-expires", "3600"),
            ("session-cookie-max-age", "60"),
            ("session-cookie-secure", "true"),
            ("session-cookie-samesite", "Strict"),
        ],
    ));
    let s = Setup::start(&docs).await;
    let response = get(&s, "/tuned", &[]).await;
    let line = response.header("set-cookie").expect("a session cookie");
    assert!(line.starts_with("route="), "{line}");
    assert!(
        line.contains(
            " GMT; Max-Age=60; Domain=sticky.test; Path=/; Secure; HttpOnly; SameSite=Strict"
        ),
        "{line}"
    );
    let expires = line
        .split("; ")
        .find_map(|a| a.strip_prefix("Expires="))
        .expect("Expires");
    assert!(expires.ends_with(" GMT"), "{expires}");
    let home = answered_by(&response);
    let cookie = cookie_pair(&line);
    for _ in 0..6 {
        assert_eq!(
            answered_by(&get(&s, "/tuned", &[("cookie", &cookie)]).await),
            home
        );
    }
}

#[tokio::test]
async fn a_session_moves_when_its_pod_goes_away() {
    let pods = pods(20, 3).await;
    let refs: Vec<&EchoBackend> = pods.iter().collect();
    let route = ingress(
        "model",
        "/",
        "model",
        &[("affinity", "cookie"), ("affinity-mode", "persistent")],
    );
    let mut docs = service_for("aff", "model", &refs);
    docs.push(route.clone());
    let s = Setup::start(&docs).await;

    let first = get(&s, "/", &[]).await;
    let cookie = cookie_pair(&first.header("set-cookie").expect("a session cookie"));
    let home = answered_by(&first);

    // The pod leaves the EndpointSlice.
    let rest: Vec<&EchoBackend> = pods
        .iter()
        .filter(|p| p.addr().to_string() != home)
        .collect();
    let mut docs = service_for("aff", "model", &rest);
    docs.push(route);
    s.dir.write("objects.yaml", &join_docs(&docs));

    let (s, cookie, home) = (&s, &cookie, &home);
    let moved = eventually(Duration::from_secs(10), || async move {
        let response = get(s, "/", &[("cookie", cookie)]).await;
        match response.header("set-cookie") {
            Some(line) if answered_by(&response) != *home => {
                Ok((answered_by(&response), cookie_pair(&line)))
            }
            _ => Err(format!("still served by {}", answered_by(&response))),
        }
    })
    .await;
    let (new_home, new_cookie) = moved;
    assert_ne!(new_cookie, *cookie);
    for _ in 0..6 {
        let again = get(s, "/", &[("cookie", &new_cookie)]).await;
        assert_eq!(answered_by(&again), new_home);
        assert_eq!(again.header("set-cookie"), None);
    }
}

#[tokio::test]
async fn canary_sessions_stay_where_they_started() {
    let main = pods(30, 1).await;
    let next = pods(40, 1).await;
    let mut docs = service_for("aff", "main", &[&main[0]]);
    docs.extend(service_for("aff", "next", &[&next[0]]));
    docs.push(ingress("main", "/", "main", &[("affinity", "cookie")]));
    docs.push(ingress(
        "main-canary",
        "/",
        "next",
        &[
            ("canary", "true"),
            ("canary-weight", "50"),
            ("affinity", "cookie"),
        ],
    ));
    let s = Setup::start(&docs).await;
    // Draw until both backends have started a session.
    let mut cookies: HashMap<String, String> = HashMap::new();
    for _ in 0..200 {
        if cookies.len() == 2 {
            break;
        }
        let response = get(&s, "/", &[]).await;
        if let Some(line) = response.header("set-cookie") {
            cookies.insert(answered_by(&response), cookie_pair(&line));
        }
    }
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for (who, cookie) in &cookies {
        for _ in 0..10 {
            assert_eq!(
                &answered_by(&get(&s, "/", &[("cookie", cookie)]).await),
                who
            );
        }
    }
}

#[tokio::test]
async fn hash_by_header_keeps_a_key_on_one_pod_and_spreads_keys() {
    let pods = pods(50, 4).await;
    let refs: Vec<&EchoBackend> = pods.iter().collect();
    let mut docs = service_for("aff", "model", &refs);
    docs.push(ingress(
        "model",
        "/",
        "model",
        &[("upstream-hash-by", "tenant-$http_x_user")],
    ));
    let s = Setup::start(&docs).await;
    let mut homes: HashMap<String, String> = HashMap::new();
    for user in 0..24 {
        let user = format!("user-{user}");
        for _ in 0..3 {
            let response = get(&s, "/predict", &[("x-user", &user)]).await;
            assert_eq!(response.header("set-cookie"), None);
            let who = answered_by(&response);
            let home = homes.entry(user.clone()).or_insert_with(|| who.clone());
            assert_eq!(*home, who, "{user} moved");
        }
    }
    let used: HashSet<&String> = homes.values().collect();
    assert!(used.len() >= 3, "24 keys on {used:?}");
}

#[tokio::test]
async fn a_failed_pod_moves_the_cookie_only_with_change_on_failure() {
    let mut pods = pods(60, 3).await;
    let refs: Vec<&EchoBackend> = pods.iter().collect();
    // Two Services over the same pods: two backends, two affinities.
    let mut docs = service_for("aff", "move", &refs);
    docs.extend(service_for("aff", "keep", &refs));
    let persistent = [("affinity", "cookie"), ("affinity-mode", "persistent")];
    let mut moving = persistent.to_vec();
    moving.push(("session-cookie-change-on-failure", "true"));
    docs.push(ingress("move", "/move", "move", &moving));
    docs.push(ingress("keep", "/keep", "keep", &persistent));
    let s = Setup::start(&docs).await;

    let first = get(&s, "/move", &[]).await;
    let home = answered_by(&first);
    let move_cookie = cookie_pair(&first.header("set-cookie").expect("a cookie"));
    // New /keep sessions go round the pods: take one on the same pod.
    let mut keep_cookie = None;
    for _ in 0..6 {
        let r = get(&s, "/keep", &[]).await;
        if answered_by(&r) == home {
            keep_cookie = r.header("set-cookie").map(|l| cookie_pair(&l));
            break;
        }
    }
    let keep_cookie = keep_cookie.expect("a /keep session on the same pod");

    // The pod dies but stays listed: connections to it are refused, and
    // the request is retried on another pod.
    let index = pods
        .iter()
        .position(|p| p.addr().to_string() == home)
        .expect("home pod");
    drop(pods.remove(index));

    let moved = get(&s, "/move", &[("cookie", &move_cookie)]).await;
    assert_ne!(answered_by(&moved), home);
    let new_cookie = cookie_pair(&moved.header("set-cookie").expect("the cookie follows"));
    assert_ne!(new_cookie, move_cookie);
    let again = get(&s, "/move", &[("cookie", &new_cookie)]).await;
    assert_eq!(answered_by(&again), answered_by(&moved));

    let kept = get(&s, "/keep", &[("cookie", &keep_cookie)]).await;
    assert_ne!(answered_by(&kept), home);
    assert_eq!(kept.header("set-cookie"), None);
}
