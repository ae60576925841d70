//! Inference-aware picking (issue 17), each picker's signal seen from the
//! outside: a hung replica avoided by every load-aware picker (`ewma`
//! included), also once its stuck requests were abandoned, model-server metrics filtering a saturated replica and
//! falling back when the scrape fails, LoRA and prompt-prefix affinity and
//! the load bound of the latter, and the shedding order under saturation.
//! Replicas are demo-model's fake ones (in process) or testkit backends;
//! no assertion depends on timing beyond generous deadlines.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use demo_model::fake::Profile;
use demo_model::{ModelInfo, ModelServer};
use testkit::backend::{Script, ScriptedBackend};
use testkit::metrics::sum;
use testkit::{EchoBackend, POLL_INTERVAL, TestResponse, eventually, get, request, scrape};

use crate::Setup;
use crate::traffic::{ingress, service_at};

/// A fake model replica on `ip` (a free port) with `profile`; stops when
/// the handle drops.
struct Replica {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Replica {
    async fn start(ip: [u8; 4], profile: &str) -> Replica {
        let profile: Profile = serde_json::from_str(profile).expect("a profile");
        let model = ModelInfo { id: "m".to_owned() };
        let server = ModelServer::bind_fake(SocketAddr::from((ip, 0)), model, profile, 1)
            .await
            .expect("bind a fake replica");
        let addr = server.local_addr();
        Replica {
            addr,
            task: tokio::spawn(server.run()),
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A JSON completion request for `model` with `prompt`.
async fn complete(
    s: &Setup,
    host: &str,
    model: &str,
    prompt: &str,
    headers: &[(&str, &str)],
) -> TestResponse {
    let body = serde_json::json!({"model": model, "prompt": prompt, "max_tokens": 1});
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    request(
        s.http(),
        "POST",
        host,
        "/v1/completions",
        &all,
        body.to_string().into_bytes(),
    )
    .await
}

fn replica_of(response: &TestResponse) -> String {
    response
        .headers
        .get("x-model-replica")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Polls until `n` requests in a row are answered by `want`.
async fn until_all_go_to(
    what: &str,
    n: usize,
    want: SocketAddr,
    send: impl AsyncFn() -> TestResponse,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let want = want.to_string();
    loop {
        let mut answered = Vec::new();
        for _ in 0..n {
            answered.push(replica_of(&send().await));
        }
        if answered.iter().all(|a| *a == want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {answered:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

#[tokio::test]
async fn every_load_aware_picker_avoids_a_hung_replica_ewma_included() {
    let hung = ScriptedBackend::start([127, 0, 94, 1], Script::Silent).await;
    let fast = EchoBackend::start([127, 0, 94, 2]).await;
    let algorithms = ["ewma", "least_request", "p2c", "peak_ewma"];
    let mut docs = Vec::new();
    for algorithm in algorithms {
        let name = algorithm.replace('_', "-");
        docs.extend(service_at("hang", &name, &[hung.addr(), fast.addr()]));
        docs.push(ingress(
            "hang",
            &name,
            &format!("{name}.test"),
            &name,
            &[("load-balance", algorithm)],
        ));
    }
    let s = Setup::start(&docs).await;
    for algorithm in algorithms {
        let host = format!("{}.test", algorithm.replace('_', "-"));
        // Requests until one hangs on the hung replica (the others are
        // answered at once).
        let before = hung.requests();
        let mut hanging = Vec::new();
        eventually(Duration::from_secs(10), || {
            if hung.requests() == before {
                let (addr, host) = (s.http(), host.clone());
                hanging.push(tokio::spawn(async move { get(addr, &host, "/").await }));
            }
            let reached = hung.requests() > before;
            async move {
                if reached {
                    Ok(())
                } else {
                    Err("not reached yet".to_owned())
                }
            }
        })
        .await;
        // From then on its stall only grows: soon every request goes to the
        // healthy replica, and the hung one gets at most a couple more
        // (ingress-nginx's ewma would send it every request: its score
        // stays at its last value, here none).
        let fast_addr = fast.addr();
        let (host_ref, gateway) = (&host, s.http());
        eventually(Duration::from_secs(20), || async move {
            for _ in 0..20 {
                let response = get(gateway, host_ref, "/").await;
                if response.status != 200 || crate::answered_by(&response) != fast_addr.to_string()
                {
                    return Err(format!(
                        "{algorithm}: answered by {}",
                        crate::answered_by(&response)
                    ));
                }
            }
            Ok(())
        })
        .await;
        assert!(
            hung.requests() <= before + 3,
            "{algorithm}: {} requests to the hung replica",
            hung.requests() - before
        );
        // Its clients give up, stuck for over a second: the gateway drops
        // their attempts unanswered, and nothing of it is in flight any
        // more. It is still avoided: its silence is remembered.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        for task in hanging {
            task.abort();
        }
        let (service, endpoint) = (algorithm.replace('_', "-"), hung.addr().to_string());
        let labels = [
            ("service", service.as_str()),
            ("endpoint", endpoint.as_str()),
        ];
        let metrics = s.gateway.metrics_addr();
        eventually(Duration::from_secs(10), || async move {
            match sum(
                &scrape(metrics).await,
                "edge_gateway_endpoint_in_flight",
                &labels,
            ) {
                0.0 => Ok(()),
                n => Err(format!("{algorithm}: {n} in flight on the hung replica")),
            }
        })
        .await;
        let after = hung.requests();
        for _ in 0..20 {
            let response = get(gateway, host_ref, "/").await;
            assert_eq!(response.status, 200, "{algorithm}");
            assert_eq!(crate::answered_by(&response), fast_addr.to_string());
        }
        assert_eq!(
            hung.requests(),
            after,
            "{algorithm}: the hung replica got requests once its clients gave up"
        );
    }
}

#[tokio::test]
async fn model_server_metrics_filter_saturation_follow_adapters_and_fall_back() {
    let lora = Replica::start([127, 0, 95, 1], r#"{"ttft_ms": 1, "output_tokens": 1, "kv_cache_usage": 0.1, "lora_adapters": ["sql-lora"]}"#).await;
    let calm = Replica::start(
        [127, 0, 95, 2],
        r#"{"ttft_ms": 1, "output_tokens": 1, "kv_cache_usage": 0.1}"#,
    )
    .await;
    let full = Replica::start(
        [127, 0, 95, 3],
        r#"{"ttft_ms": 1, "output_tokens": 1, "kv_cache_usage": 0.97}"#,
    )
    .await;
    let annotations = |path: &'static str| {
        vec![
            ("load-balance", "round_robin"),
            ("endpoint-metrics", "vllm"),
            ("endpoint-metrics-interval", "100ms"),
            ("endpoint-metrics-path", path),
        ]
    };
    let mut docs = service_at("llm", "vllm", &[lora.addr, calm.addr, full.addr]);
    docs.push(ingress(
        "llm",
        "vllm",
        "vllm.test",
        "vllm",
        &annotations("/metrics"),
    ));
    let s = Setup::start_with(&docs, &["--enable-metrics"]).await;
    let metrics = s.gateway.metrics_addr();
    let fresh = || async move {
        sum(
            &scrape(metrics).await,
            "edge_gateway_endpoint_metrics_fresh",
            &[("service", "vllm")],
        )
    };
    eventually(Duration::from_secs(20), || async move {
        let n = fresh().await;
        if n == 3.0 {
            Ok(())
        } else {
            Err(format!("{n} endpoints fresh"))
        }
    })
    .await;

    // The adapter's requests go where the metrics list it.
    until_all_go_to("sql-lora", 10, lora.addr, async || {
        complete(&s, "vllm.test", "sql-lora", "hi", &[]).await
    })
    .await;
    // The full replica gets nothing while its metrics are fresh.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for _ in 0..30 {
        *seen
            .entry(replica_of(
                &complete(&s, "vllm.test", "base", "hi", &[]).await,
            ))
            .or_default() += 1;
    }
    assert_eq!(seen.get(&full.addr.to_string()), None, "{seen:?}");
    assert_eq!(seen.len(), 2, "{seen:?}");

    // Scrapes fail (the path does not exist): the gateway's own view, round
    // robin, again.
    let mut broken = service_at("llm", "vllm", &[lora.addr, calm.addr, full.addr]);
    broken.push(ingress(
        "llm",
        "vllm",
        "vllm.test",
        "vllm",
        &annotations("/no-metrics-here"),
    ));
    s.dir.write("objects.yaml", &testkit::join_docs(&broken));
    eventually(Duration::from_secs(20), || async move {
        let n = fresh().await;
        if n == 0.0 {
            Ok(())
        } else {
            Err(format!("{n} endpoints still fresh"))
        }
    })
    .await;
    let full_addr = full.addr.to_string();
    let setup = &s;
    eventually(Duration::from_secs(20), || {
        let full_addr = full_addr.clone();
        async move {
            for _ in 0..6 {
                if replica_of(&complete(setup, "vllm.test", "base", "hi", &[]).await) == full_addr {
                    return Ok(());
                }
            }
            Err("the full replica gets no request yet".to_owned())
        }
    })
    .await;
}

#[tokio::test]
async fn a_prompt_prefix_sticks_to_its_replica_within_the_load_bound() {
    let profile = r#"{"ttft_ms": 1000, "output_tokens": 1}"#;
    let replicas = [
        Replica::start([127, 0, 93, 1], profile).await,
        Replica::start([127, 0, 93, 2], profile).await,
        Replica::start([127, 0, 93, 3], profile).await,
    ];
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let mut docs = service_at("llm", "prefix", &addrs);
    docs.push(ingress(
        "llm",
        "prefix",
        "prefix.test",
        "prefix",
        &[
            ("load-balance", "least_request"),
            ("prefix-affinity", "on"),
            ("prefix-affinity-slack", "2"),
        ],
    ));
    let s = Setup::start(&docs).await;
    let system = "You are a helpful assistant. ".repeat(40);
    // One at a time: every request with the same prompt start goes to the
    // same replica (least_request alone would rotate).
    let mut homes = Vec::new();
    for i in 0..4 {
        let response = complete(
            &s,
            "prefix.test",
            "m",
            &format!("{system} question {i}"),
            &[],
        )
        .await;
        assert_eq!(response.status, 200);
        homes.push(replica_of(&response));
    }
    assert!(homes.iter().all(|h| *h == homes[0]), "{homes:?}");
    // Twelve at once, each a second long: the bound spreads them.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (addr, prompt) = (s.http(), format!("{system} burst {i}"));
        tasks.push(tokio::spawn(async move {
            let body = serde_json::json!({"model": "m", "prompt": prompt, "max_tokens": 1});
            request(
                addr,
                "POST",
                "prefix.test",
                "/v1/completions",
                &[("content-type", "application/json")],
                body.to_string().into_bytes(),
            )
            .await
        }));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        let response = task.await.expect("request task");
        assert_eq!(response.status, 200);
        *counts.entry(replica_of(&response)).or_default() += 1;
    }
    assert!(counts.len() >= 2, "{counts:?}");
    assert!(
        counts.values().all(|n| *n <= 8),
        "one replica took the burst: {counts:?}"
    );
}

#[tokio::test]
async fn under_saturation_sheddable_is_refused_and_critical_goes_first() {
    // One slot, three seconds per request: one request in flight saturates it
    // (saturation-queue 1: one request waiting for its first byte).
    let replica = Replica::start(
        [127, 0, 92, 1],
        r#"{"ttft_ms": 3000, "output_tokens": 1, "slots": 1}"#,
    )
    .await;
    let mut docs = service_at("llm", "shed", &[replica.addr]);
    docs.push(ingress(
        "llm",
        "shed",
        "shed.test",
        "shed",
        &[
            ("load-balance", "least_request"),
            ("criticality", "standard"),
            ("criticality-header", "X-Criticality"),
            ("saturation-queue", "1"),
            ("max-inflight-per-endpoint", "10"),
        ],
    ));
    let s = Setup::start_with(&docs, &["--enable-metrics"]).await;
    let metrics = s.gateway.metrics_addr();
    let queued = || async move {
        sum(
            &scrape(metrics).await,
            "edge_gateway_queued_requests",
            &[("service", "shed")],
        )
    };
    let send = |class: &'static str| {
        let addr = s.http();
        tokio::spawn(async move {
            let body = br#"{"model":"m","prompt":"p"}"#.to_vec();
            let headers = [
                ("content-type", "application/json"),
                ("x-criticality", class),
            ];
            let response =
                request(addr, "POST", "shed.test", "/v1/completions", &headers, body).await;
            (response, tokio::time::Instant::now())
        })
    };
    let first = send("standard");
    let replica_addr = replica.addr;
    eventually(Duration::from_secs(10), || async move {
        if replica_busy(replica_addr).await {
            Ok(())
        } else {
            Err("not sent yet".to_owned())
        }
    })
    .await;
    // Saturated: a sheddable request is refused at once.
    let shed = complete(&s, "shed.test", "m", "p", &[("x-criticality", "sheddable")]).await;
    assert_eq!(shed.status, 429);
    assert_eq!(shed.headers["retry-after"], "1");
    // A standard one waits, then a critical one arrives and waits ahead.
    let standard = send("standard");
    eventually(Duration::from_secs(10), || async move {
        if queued().await == 1.0 {
            Ok(())
        } else {
            Err("standard not queued".to_owned())
        }
    })
    .await;
    let critical = send("critical");
    eventually(Duration::from_secs(10), || async move {
        if queued().await == 2.0 {
            Ok(())
        } else {
            Err("critical not queued".to_owned())
        }
    })
    .await;
    let (first, _) = first.await.expect("first");
    let (critical, critical_done) = critical.await.expect("critical");
    let (standard, standard_done) = standard.await.expect("standard");
    assert_eq!(
        (first.status, critical.status, standard.status),
        (200, 200, 200)
    );
    assert!(
        critical_done < standard_done,
        "the critical request was served after the standard one"
    );
    let shed_count = sum(
        &scrape(metrics).await,
        "edge_gateway_rejected_requests_total",
        &[("service", "shed"), ("reason", "shed")],
    );
    assert_eq!(shed_count, 1.0);
}

/// Whether the fake replica is generating a request now.
async fn replica_busy(addr: SocketAddr) -> bool {
    let page = request(addr, "GET", "replica", "/metrics", &[], Vec::new()).await;
    String::from_utf8_lossy(&page.body)
        .lines()
        .any(|l| l.starts_with("vllm:num_requests_running{") && !l.ends_with(" 0"))
}
