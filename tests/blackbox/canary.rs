//! Canary Ingresses through the real binary: which backend answers for
//! headers, cookies and weights (ingress-nginx's `balancer.lua` order),
//! the main route's policy on canary requests, a canary removed on reload,
//! and a model version rolled out beside the current one, with its
//! request metrics labelled `canary`.

use std::time::Duration;

use testkit::metrics::sum;
use testkit::{Client, EchoBackend, IngressBuilder, eventually, get, request, scrape};

use crate::{Setup, answered_by, service_for};

const P: &str = "nginx.ingress.kubernetes.io/";
const HOST: &str = "canary.test";

/// An Ingress in namespace `canary` routing `HOST` + `path` (Prefix) to
/// `service` port 80.
fn ingress(name: &str, path: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    let mut builder = IngressBuilder::new("canary", name).class("nginx");
    for (k, v) in annotations {
        builder = builder.annotation(&format!("{P}{k}"), v);
    }
    builder.host(HOST).path(path, "Prefix", service, 80).build()
}

/// A canary Ingress: `canary: "true"` plus `annotations`.
fn canary(name: &str, path: &str, service: &str, annotations: &[(&str, &str)]) -> String {
    let mut all = vec![("canary", "true")];
    all.extend_from_slice(annotations);
    ingress(name, path, service, &all)
}

/// Services `main` and `next` on their own echo backends, and `ingresses`.
async fn setup(base: u8, ingresses: Vec<String>) -> (Setup, EchoBackend, EchoBackend) {
    let main = EchoBackend::start([127, 0, 140, base]).await;
    let next = EchoBackend::start([127, 0, 140, base + 1]).await;
    let mut docs = service_for("canary", "main", &[&main]);
    docs.extend(service_for("canary", "next", &[&next]));
    docs.extend(ingresses);
    (Setup::start(&docs).await, main, next)
}

/// Who answers `path` with these request headers: `"main"`, `"next"`, or
/// the status when it is not 200.
async fn who(s: &Setup, main: &EchoBackend, path: &str, headers: &[(&str, &str)]) -> String {
    let response = request(s.http(), "GET", HOST, path, headers, Vec::new()).await;
    if response.status != 200 {
        return response.status.to_string();
    }
    if answered_by(&response) == main.addr().to_string() {
        "main".to_owned()
    } else {
        "next".to_owned()
    }
}

#[tokio::test]
async fn header_always_never_value_and_pattern() {
    let (s, main, _next) = setup(
        1,
        vec![
            ingress("a", "/a", "main", &[]),
            canary(
                "a-canary",
                "/a",
                "next",
                &[("canary-by-header", "X-Canary"), ("canary-weight", "100")],
            ),
            ingress("b", "/b", "main", &[]),
            canary(
                "b-canary",
                "/b",
                "next",
                &[
                    ("canary-by-header", "x-user"),
                    ("canary-by-header-value", "beta"),
                ],
            ),
            ingress("c", "/c", "main", &[]),
            canary(
                "c-canary",
                "/c",
                "next",
                &[
                    ("canary-by-header", "x-region"),
                    ("canary-by-header-pattern", "^(eu|us)-"),
                ],
            ),
            // Same main Service, no canary: never split.
            ingress("plain", "/plain", "main", &[]),
        ],
    )
    .await;
    let who = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        who(&s, &main, path, headers)
    };
    // always / never decide; any other value falls through to the weight.
    assert_eq!(who("/a", &[("x-canary", "always")]).await, "next");
    assert_eq!(who("/a", &[("x-canary", "never")]).await, "main");
    assert_eq!(who("/a", &[("x-canary", "Never")]).await, "next");
    assert_eq!(who("/a", &[]).await, "next");
    assert_eq!(who("/plain", &[("x-canary", "always")]).await, "main");
    // A value replaces always / never: only it sends to the canary.
    assert_eq!(who("/b", &[("x-user", "beta")]).await, "next");
    assert_eq!(who("/b", &[("x-user", "always")]).await, "main");
    assert_eq!(who("/b", &[("x-user", "beta2")]).await, "main");
    assert_eq!(who("/b", &[]).await, "main");
    // A pattern searches the value, case-sensitively.
    assert_eq!(who("/c", &[("x-region", "eu-west-1")]).await, "next");
    assert_eq!(who("/c", &[("x-region", "us-east")]).await, "next");
    assert_eq!(who("/c", &[("x-region", "ap-eu-1")]).await, "main");
    assert_eq!(who("/c", &[("x-region", "EU-west")]).await, "main");
    // Repeated header lines are read joined, as nginx's $http_ variable.
    assert_eq!(
        who("/b", &[("x-user", "beta"), ("x-user", "beta")]).await,
        "main"
    );
}

#[tokio::test]
async fn cookie_then_weight_and_header_first() {
    let (s, main, _next) = setup(
        3,
        vec![
            ingress("main", "/", "main", &[]),
            canary(
                "next",
                "/",
                "next",
                &[
                    ("canary-by-header", "x-canary"),
                    ("canary-by-cookie", "canary_user"),
                ],
            ),
        ],
    )
    .await;
    let who = |headers: &'static [(&'static str, &'static str)]| who(&s, &main, "/x", headers);
    assert_eq!(who(&[("cookie", "a=1; canary_user=always")]).await, "next");
    assert_eq!(who(&[("cookie", "CANARY_USER=always")]).await, "next");
    assert_eq!(who(&[("cookie", "canary_user=never")]).await, "main");
    assert_eq!(who(&[("cookie", "canary_user=yes")]).await, "main");
    assert_eq!(who(&[("cookie", "other_canary_user=always")]).await, "main");
    // The header comes first; a value it does not know falls to the cookie.
    let never = &[("x-canary", "never"), ("cookie", "canary_user=always")];
    assert_eq!(who(never).await, "main");
    let unknown = &[("x-canary", "later"), ("cookie", "canary_user=always")];
    assert_eq!(who(unknown).await, "next");
    let always = &[("x-canary", "always"), ("cookie", "canary_user=never")];
    assert_eq!(who(always).await, "next");
}

/// Sends `n` requests on kept-alive connections; returns how many the
/// canary (`next`) answered.
async fn canary_share(s: &Setup, main: &EchoBackend, path: &str, n: usize) -> usize {
    let mut client = Client::connect(s.http()).await;
    let mut canary = 0;
    for _ in 0..n {
        if client.is_closed() {
            client = Client::connect(s.http()).await;
        }
        let response = client.get(HOST, path).await;
        assert_eq!(response.status, 200, "{}", response.text());
        if answered_by(&response) != main.addr().to_string() {
            canary += 1;
        }
    }
    canary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_zero_hundred_and_thirty_percent() {
    let (s, main, next) = setup(
        5,
        vec![
            ingress("zero", "/zero", "main", &[]),
            canary("zero-canary", "/zero", "next", &[("canary-weight", "0")]),
            ingress("all", "/all", "main", &[]),
            canary("all-canary", "/all", "next", &[("canary-weight", "100")]),
            ingress("thirty", "/thirty", "main", &[]),
            canary(
                "thirty-canary",
                "/thirty",
                "next",
                &[("canary-weight", "30")],
            ),
            ingress("permille", "/permille", "main", &[]),
            canary(
                "permille-canary",
                "/permille",
                "next",
                &[("canary-weight", "300"), ("canary-weight-total", "1000")],
            ),
        ],
    )
    .await;
    assert_eq!(canary_share(&s, &main, "/zero", 100).await, 0);
    assert_eq!(canary_share(&s, &main, "/all", 100).await, 100);
    next.reset();
    // Binomial(1000, 0.3): mean 300, standard deviation 14.5; 200..400 is
    // about 7 deviations either side.
    let thirty = canary_share(&s, &main, "/thirty", 1000).await;
    assert!((200..=400).contains(&thirty), "{thirty} of 1000");
    assert_eq!(
        next.hits(),
        thirty,
        "every canary answer came from its backend"
    );
    let permille = canary_share(&s, &main, "/permille", 1000).await;
    assert!((200..=400).contains(&permille), "{permille} of 1000");
}

#[tokio::test]
async fn the_main_route_policy_applies_to_canary_requests() {
    let (s, main, next) = setup(
        7,
        vec![
            ingress(
                "guarded",
                "/guarded",
                "main",
                &[("denylist-source-range", "127.0.0.0/8")],
            ),
            // The canary's own (non-canary) annotations are ignored.
            canary(
                "guarded-canary",
                "/guarded",
                "next",
                &[
                    ("canary-weight", "100"),
                    ("allowlist-source-range", "0.0.0.0/0"),
                ],
            ),
            ingress(
                "vhost",
                "/vhost",
                "main",
                &[("upstream-vhost", "model.internal")],
            ),
            canary(
                "vhost-canary",
                "/vhost",
                "next",
                &[("canary-weight", "100")],
            ),
        ],
    )
    .await;
    assert_eq!(who(&s, &main, "/guarded", &[]).await, "403");
    assert_eq!(next.hits(), 0);
    assert_eq!(who(&s, &main, "/vhost", &[]).await, "next");
    assert_eq!(
        next.last_request().unwrap().header("host").as_deref(),
        Some("model.internal")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_canary_on_reload_leaves_the_main_serving() {
    let (s, main, next) = setup(9, vec![ingress("main", "/", "main", &[])]).await;
    assert_eq!(who(&s, &main, "/", &[("x-canary", "always")]).await, "main");
    let added = canary(
        "next",
        "/",
        "next",
        &[("canary-by-header", "x-canary"), ("canary-weight", "100")],
    );
    s.dir.write("canary.yaml", &added);
    let (addr, main_addr) = (s.http(), main.addr().to_string());
    eventually(Duration::from_secs(5), || {
        let main_addr = main_addr.clone();
        async move {
            let response = get(addr, HOST, "/x").await;
            match answered_by(&response) != main_addr {
                true => Ok(()),
                false => Err("the canary is not serving yet".to_owned()),
            }
        }
    })
    .await;
    s.dir.remove("canary.yaml");
    eventually(Duration::from_secs(5), || {
        let main_addr = main_addr.clone();
        async move {
            let response = get(addr, HOST, "/x").await;
            match answered_by(&response) == main_addr {
                true => Ok(()),
                false => Err("the canary still serves".to_owned()),
            }
        }
    })
    .await;
    let served = next.hits();
    for _ in 0..50 {
        assert_eq!(
            who(&s, &main, "/x", &[("x-canary", "always")]).await,
            "main"
        );
    }
    assert_eq!(next.hits(), served, "the canary takes nothing once removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_version_rolls_out_beside_the_current_one() {
    let current = EchoBackend::start([127, 0, 140, 11]).await;
    let candidate = EchoBackend::start([127, 0, 140, 12]).await;
    let mut docs = service_for("models", "model-serving-7", &[&current]);
    docs.extend(service_for("models", "model-serving-7-v2", &[&candidate]));
    let route = |name: &str, service: &str| {
        IngressBuilder::new("models", name)
            .class("nginx")
            .host("localhost")
            .path("/api/v1/predict/7", "Prefix", service, 80)
    };
    docs.push(route("model-serving-7", "model-serving-7").build());
    docs.push(
        route("model-serving-7-v2", "model-serving-7-v2")
            .annotation(&format!("{P}canary"), "true")
            .annotation(&format!("{P}canary-weight"), "30")
            .annotation(&format!("{P}canary-by-header"), "x-model-version")
            .annotation(&format!("{P}canary-by-header-value"), "v2")
            .build(),
    );
    let s = Setup::start_with(&docs, &["--enable-metrics"]).await;
    let predict = |headers: &'static [(&'static str, &'static str)]| {
        request(
            s.http(),
            "POST",
            "localhost",
            "/api/v1/predict/7",
            headers,
            br#"{"inputs":[1,2,3]}"#.to_vec(),
        )
    };
    // Testers pin the new version by header; everyone else is split 30/70.
    for _ in 0..20 {
        let response = predict(&[("x-model-version", "v2")]).await;
        assert_eq!(answered_by(&response), candidate.addr().to_string());
    }
    let seen = candidate.last_request().unwrap();
    assert_eq!(seen.path, "/api/v1/predict/7");
    assert_eq!(seen.method, "POST");
    let mut to_candidate = 0;
    for _ in 0..400 {
        let response = predict(&[]).await;
        assert_eq!(response.status, 200);
        if answered_by(&response) == candidate.addr().to_string() {
            to_candidate += 1;
        }
    }
    // Binomial(400, 0.3): mean 120, deviation 9.2; 60..180 is 6.5 of them.
    assert!((60..=180).contains(&to_candidate), "{to_candidate} of 400");

    // Request metrics: the main route's labels, `canary` naming the
    // canary's upstream for the requests it served, empty for the others.
    let metrics = s.gateway.metrics_addr();
    let expected_canary = 20 + to_candidate;
    let samples = eventually(Duration::from_secs(5), || async move {
        let samples = scrape(metrics).await;
        let name = "nginx_ingress_controller_requests";
        let labels = [
            ("ingress", "model-serving-7"),
            ("service", "model-serving-7"),
        ];
        let canary = sum(
            &samples,
            name,
            &[
                labels[0],
                labels[1],
                ("canary", "models-model-serving-7-v2-80"),
            ],
        );
        let total = sum(&samples, name, &labels);
        if canary as usize == expected_canary && total as usize == 420 {
            Ok(samples)
        } else {
            Err(format!("canary {canary}, total {total}"))
        }
    })
    .await;
    let name = "nginx_ingress_controller_requests";
    let main_only = sum(
        &samples,
        name,
        &[("ingress", "model-serving-7"), ("canary", "")],
    );
    assert_eq!(main_only as usize, 420 - expected_canary);
    assert_eq!(
        sum(&samples, name, &[("ingress", "model-serving-7-v2")]),
        0.0,
        "the canary Ingress has no series of its own"
    );
}
