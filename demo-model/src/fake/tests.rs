//! End-to-end tests of fake replicas: a real server on 127.0.0.1:0 and a
//! hyper client. Timing bounds are generous (a loaded CI machine is slow,
//! never fast): lower bounds are exact, upper bounds allow a second more.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, Response};
use hyper::body::Incoming;
use serde_json::json;
use tokio::time::Instant;

use super::Profile;
use crate::tests::{Client, Running, json_body, read_events, request, running, send};
use crate::{ModelInfo, ModelServer};

/// Slack for upper timing bounds.
const SLACK: Duration = Duration::from_secs(1);

async fn start_fake(profile: &str, seed: u64) -> Running {
    let profile: Profile = serde_json::from_str(profile).unwrap();
    let model = ModelInfo { id: "m".to_owned() };
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    running(
        ModelServer::bind_fake(addr, model, profile, seed)
            .await
            .unwrap(),
    )
}

fn header<'a>(response: &'a Response<Incoming>, name: &str) -> &'a str {
    response.headers()[name].to_str().unwrap()
}

fn assert_between(elapsed: Duration, low_ms: u64) {
    let low = Duration::from_millis(low_ms);
    assert!(
        elapsed >= low && elapsed < low + SLACK,
        "{elapsed:?}, expected ~{low:?}"
    );
}

async fn metrics(addr: SocketAddr) -> String {
    let response = send(addr, request(Method::GET, "/api/v1/predict/1/metrics", "")).await;
    assert_eq!(response.status(), 200);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap();
    String::from_utf8(body.to_bytes().to_vec()).unwrap()
}

#[tokio::test]
async fn predict_answers_after_the_whole_generation() {
    let server = start_fake(
        r#"{"ttft_ms": 100, "inter_token_ms": 10, "output_tokens": 5}"#,
        1,
    )
    .await;
    let sent = Instant::now();
    let response = send(
        server.addr,
        request(Method::POST, "/api/v1/predict/1", "{}"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-queue-depth"), "0");
    assert_eq!(header(&response, "x-queue-wait-ms"), "0");
    assert_eq!(
        header(&response, "x-model-replica"),
        server.addr.to_string()
    );
    let answer = json_body(response).await;
    assert_between(sent.elapsed(), 100 + 4 * 10);
    assert_eq!(
        answer,
        json!({"model": "m", "replica": server.addr.to_string(),
               "output_tokens": 5, "queue_depth": 0, "queue_wait_ms": 0})
    );
}

#[tokio::test]
async fn slow_factor_multiplies_the_delays() {
    let server = start_fake(
        r#"{"ttft_ms": 20, "inter_token_ms": 10, "output_tokens": 3, "slow_factor": 5}"#,
        1,
    )
    .await;
    let sent = Instant::now();
    let response = send(server.addr, request(Method::POST, "/v1/predict", "{}")).await;
    assert_eq!(response.status(), 200);
    assert_between(sent.elapsed(), 5 * (20 + 2 * 10));
}

#[tokio::test]
async fn streams_one_sse_event_per_token_headers_with_the_first() {
    let server = start_fake(
        r#"{"ttft_ms": 80, "inter_token_ms": 30, "output_tokens": 4}"#,
        1,
    )
    .await;
    let sent = Instant::now();
    let response = send(
        server.addr,
        request(Method::GET, "/api/v1/predict/1/stream", ""),
    )
    .await;
    let headers_after = sent.elapsed();
    assert_between(headers_after, 80);
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    assert_eq!(header(&response, "x-queue-depth"), "0");

    let events = read_events(&mut response.into_body()).await;
    let texts: Vec<&str> = events.iter().map(|(_, t)| t.as_str()).collect();
    let mut expected: Vec<String> = (0..4)
        .map(|i| format!(r#"data: {{"model":"m","index":{i},"token":"tok{i}"}}"#))
        .collect();
    expected.push("data: [DONE]".to_owned());
    assert_eq!(texts, expected);
    // Three gaps between the first token and the last: not buffered.
    assert_between(events[3].0 - events[0].0, 3 * 30);
}

#[tokio::test]
async fn headers_can_go_out_before_the_first_token() {
    let profile =
        r#"{"ttft_ms": 300, "inter_token_ms": 0, "output_tokens": 1, "headers": "admission"}"#;
    let server = start_fake(profile, 1).await;
    let sent = Instant::now();
    let response = send(server.addr, request(Method::POST, "/v1/stream", "{}")).await;
    assert!(
        sent.elapsed() < Duration::from_millis(300),
        "{:?}",
        sent.elapsed()
    );
    let events = read_events(&mut response.into_body()).await;
    assert_eq!(events.len(), 2);
    assert_between(events[0].0 - sent, 300);
}

#[tokio::test]
async fn requests_beyond_the_slots_wait_in_arrival_order() {
    let profile = r#"{"ttft_ms": 150, "inter_token_ms": 0, "output_tokens": 1, "slots": 1}"#;
    let server = start_fake(profile, 1).await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..3u64 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let response = send(addr, request(Method::POST, "/v1/predict", "{}")).await;
            let depth = header(&response, "x-queue-depth").to_owned();
            let waited: u64 = header(&response, "x-queue-wait-ms").parse().unwrap();
            (i, depth, waited, Instant::now())
        }));
        // Stagger the arrivals so that their order is known.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let mut done = Vec::new();
    for task in tasks {
        done.push(task.await.unwrap());
    }
    for (i, depth, waited, _) in &done {
        // Its place in line: 0 for the first, which got the slot at once.
        assert_eq!(depth, &i.to_string(), "request {i}");
        // Request i waits for the i before it, less its later arrival.
        let least = i * (150 - 30);
        assert!(
            *waited >= least.saturating_sub(5),
            "request {i} waited {waited} ms"
        );
    }
    for pair in done.windows(2) {
        assert!(pair[0].3 < pair[1].3, "finished out of order");
    }
    assert_between(done[2].3 - start, 3 * 150);
}

#[tokio::test]
async fn a_full_queue_gets_503_with_retry_after() {
    let profile = r#"{"ttft_ms": 400, "output_tokens": 1, "slots": 1, "max_queue": 1}"#;
    let server = start_fake(profile, 1).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let addr = server.addr;
        held.push(tokio::spawn(async move {
            send(addr, request(Method::POST, "/v1/predict", "{}"))
                .await
                .status()
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = metrics(server.addr).await;
    assert!(
        text.contains("vllm:num_requests_running{model_name=\"m\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("vllm:num_requests_waiting{model_name=\"m\"} 1\n"),
        "{text}"
    );

    let refused = send(server.addr, request(Method::POST, "/v1/predict", "{}")).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(header(&refused, "x-queue-depth"), "1");
    assert_eq!(json_body(refused).await, json!({"error": "queue full"}));

    for task in held {
        assert_eq!(task.await.unwrap(), 200);
    }
    let text = metrics(server.addr).await;
    assert!(
        text.contains("fake_model_requests_total{model_name=\"m\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("fake_model_rejected_total{model_name=\"m\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("vllm:num_requests_running{model_name=\"m\"} 0\n"),
        "{text}"
    );
}

#[tokio::test]
async fn a_stuck_window_delays_the_first_token() {
    let profile = r#"{"ttft_ms": 10, "inter_token_ms": 0, "output_tokens": 1,
                      "stuck": {"after_ms": 0, "for_ms": 400, "latency_ms": 250}}"#;
    let server = start_fake(profile, 1).await;
    let sent = Instant::now();
    let response = send(server.addr, request(Method::POST, "/v1/predict", "{}")).await;
    assert_eq!(response.status(), 200);
    assert_between(sent.elapsed(), 250);

    tokio::time::sleep(Duration::from_millis(200)).await; // past the window
    let sent = Instant::now();
    send(server.addr, request(Method::POST, "/v1/predict", "{}")).await;
    assert!(
        sent.elapsed() < Duration::from_millis(250),
        "{:?}",
        sent.elapsed()
    );
}

/// The output lengths of 20 requests in a row.
async fn lengths(server: &Running) -> Vec<u64> {
    let mut client = Client::connect(server.addr).await;
    let mut lengths = Vec::new();
    for _ in 0..20 {
        let response = client
            .send(request(Method::POST, "/v1/predict", "{}"))
            .await;
        lengths.push(json_body(response).await["output_tokens"].as_u64().unwrap());
    }
    lengths
}

#[tokio::test]
async fn the_same_seed_draws_the_same_lengths() {
    let profile = r#"{"ttft_ms": 0, "inter_token_ms": 0,
                      "output_tokens": {"uniform": {"min": 1, "max": 1000}}}"#;
    let first = lengths(&start_fake(profile, 5).await).await;
    assert_eq!(first, lengths(&start_fake(profile, 5).await).await);
    assert_ne!(first, lengths(&start_fake(profile, 6).await).await);
}

#[tokio::test]
async fn a_stream_whose_client_goes_away_frees_its_slot() {
    let profile = r#"{"ttft_ms": 0, "inter_token_ms": 1000, "output_tokens": 100, "slots": 1}"#;
    let server = start_fake(profile, 1).await;
    let mut client = Client::connect(server.addr).await;
    let response = client.send(request(Method::GET, "/v1/stream", "")).await;
    assert_eq!(response.status(), 200);
    client.conn.abort();
    drop(response);

    let sent = Instant::now();
    let next = send(server.addr, request(Method::GET, "/v1/stream", "")).await;
    assert_eq!(header(&next, "x-queue-depth"), "0");
    assert!(sent.elapsed() < SLACK, "{:?}", sent.elapsed());
}

#[tokio::test]
async fn health_is_never_queued_and_demo_replicas_have_no_metrics() {
    let profile = r#"{"ttft_ms": 2000, "output_tokens": 1, "slots": 1}"#;
    let server = start_fake(profile, 1).await;
    let addr = server.addr;
    let busy = tokio::spawn(async move {
        send(addr, request(Method::POST, "/v1/predict", "{}"))
            .await
            .status()
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let sent = Instant::now();
    let health = send(server.addr, request(Method::GET, "/v1/health", "")).await;
    assert_eq!(health.status(), 200);
    assert!(sent.elapsed() < SLACK);
    busy.abort();

    let demo = ModelServer::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        ModelInfo { id: "d".to_owned() },
    )
    .await
    .unwrap();
    let demo = running(demo);
    let response = send(demo.addr, request(Method::GET, "/v1/metrics", "")).await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn an_out_of_bounds_profile_is_refused_at_bind() {
    let profile = Profile {
        slots: 0,
        ..Profile::default()
    };
    let model = ModelInfo { id: "m".to_owned() };
    let bound =
        ModelServer::bind_fake(SocketAddr::from(([127, 0, 0, 1], 0)), model, profile, 1).await;
    assert_eq!(bound.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

/// A metric's value on a metrics page.
fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {page}"))
}

#[tokio::test]
async fn the_request_decides_the_length_and_the_prefix_cache_skips_prefill() {
    let server = start_fake(
        r#"{"ttft_ms": 10, "inter_token_ms": 0, "output_tokens": 3, "tokens_from_request": true,
            "prefix_cache": {"block_bytes": 64, "capacity_blocks": 100, "prefill_ms_per_block": 20}}"#,
        1,
    )
    .await;
    let body = |suffix: &str| {
        json!({"model": "m", "max_tokens": 7, "prompt": format!("{}{suffix}", "s".repeat(640))})
            .to_string()
    };
    let sent = Instant::now();
    let first = send(
        server.addr,
        request(Method::POST, "/v1/completions", body("a")),
    )
    .await;
    // 10 ms + 11 blocks not cached × 20 ms.
    assert_eq!(json_body(first).await["output_tokens"], 7);
    assert_between(sent.elapsed(), 10 + 11 * 20);
    let sent = Instant::now();
    let second = send(
        server.addr,
        request(Method::POST, "/v1/completions", body("b")),
    )
    .await;
    assert_eq!(second.status(), 200);
    // The shared 640 bytes (ten blocks) are cached: one block to prefill.
    assert_between(sent.elapsed(), 10 + 20);
    let page = metrics(server.addr).await;
    assert_eq!(metric(&page, "fake_model_prefix_cache_blocks_total"), 22.0);
    assert_eq!(metric(&page, "fake_model_prefix_cache_hits_total"), 10.0);
}

#[tokio::test]
async fn metrics_report_kv_cache_and_lora_adapters() {
    let server = start_fake(
        r#"{"kv_cache_usage": 0.97, "lora_adapters": ["sql-lora", "chat"]}"#,
        1,
    )
    .await;
    let page = metrics(server.addr).await;
    assert_eq!(metric(&page, "vllm:kv_cache_usage_perc"), 0.97);
    assert_eq!(metric(&page, "vllm:gpu_cache_usage_perc"), 0.97);
    assert!(
        page.contains(r#"running_lora_adapters="sql-lora,chat""#),
        "{page}"
    );
    let computed = start_fake(r#"{"kv_cache_tokens": 1000}"#, 1).await;
    assert_eq!(
        metric(&metrics(computed.addr).await, "vllm:kv_cache_usage_perc"),
        0.0
    );
}

#[tokio::test]
async fn a_hung_replica_accepts_and_answers_nothing_until_the_hang_ends() {
    let server = start_fake(
        r#"{"ttft_ms": 5, "inter_token_ms": 50, "output_tokens": 20,
            "hang": {"after_ms": 400, "for_ms": 1000}}"#,
        1,
    )
    .await;
    // A stream started before the hang stalls in it.
    let mut streaming = send(server.addr, request(Method::GET, "/v1/stream", "")).await;
    let reader = tokio::spawn(async move { read_events(streaming.body_mut()).await });
    tokio::time::sleep_until(tokio::time::Instant::now() + Duration::from_millis(600)).await;
    let sent = Instant::now();
    let hung = send(server.addr, request(Method::POST, "/v1/completions", "{}")).await;
    assert_eq!(hung.status(), 200);
    // Answered only once the hang is over (1.4 s after the bind).
    assert!(
        sent.elapsed() >= Duration::from_millis(600),
        "{:?}",
        sent.elapsed()
    );
    let events = reader.await.unwrap();
    let gaps: Vec<Duration> = events.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.iter().any(|g| *g >= Duration::from_millis(500)),
        "{gaps:?}"
    );
    let page = metrics(server.addr).await;
    assert_eq!(metric(&page, "fake_model_hang_in_flight"), 1.0);
    assert_eq!(metric(&page, "fake_model_hang_arrivals_total"), 1.0);
    let last = metric(&page, "fake_model_hang_last_arrival_seconds");
    assert!((0.15..0.9).contains(&last), "{last}");
}
