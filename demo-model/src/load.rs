//! An open-loop load generator for model routes (`model-load`): requests
//! arrive as a Poisson process at a set rate whatever the answers do, each
//! an OpenAI-style completion whose output length (`max_tokens`) and
//! prompt are drawn from a seed, so the same run can be replayed against
//! every balancer. Fake replicas with `tokens_from_request` generate
//! exactly that many tokens.
//!
//! Every request is timed from its scheduled start (so a slow generator
//! never hides latency): time to first body byte, total time, status, the
//! replica that answered (`x-model-replica`), or why it failed (the client
//! timeout, a connection error). Each request has its own connection.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use fastrand::Rng;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::fake::Dist;

/// A run's shape.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Where requests go.
    pub addr: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request path.
    pub path: String,
    /// Mean arrivals per second.
    pub rate: f64,
    /// How long arrivals go on.
    pub duration: Duration,
    /// The client's timeout per request, whole exchange.
    pub timeout: Duration,
    /// The seed of arrivals, lengths and prompts.
    pub seed: u64,
    /// Output lengths (`max_tokens`), at most `max_tokens`.
    pub tokens: Dist,
    /// The longest output asked.
    pub max_tokens: u64,
    /// Prompt prefixes shared by groups of requests: 0 for none.
    pub prefix_groups: usize,
    /// Bytes of each group's shared prefix.
    pub prefix_bytes: usize,
    /// Bytes of each request's own part of the prompt.
    pub suffix_bytes: usize,
    /// The `model` field.
    pub model: String,
    /// Ask for an SSE stream (`"stream": true`).
    pub stream: bool,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
}

/// One request's fate.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// Its number, in arrival order.
    pub index: usize,
    /// Its scheduled start, ms after the run's start.
    pub at_ms: f64,
    /// The output length asked.
    pub tokens: u64,
    /// Its prompt group, if any.
    pub group: Option<usize>,
    /// `ok`, `status` (not 2xx), `timeout` or `error`.
    pub outcome: &'static str,
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// First body byte, ms after the scheduled start.
    pub ttft_ms: Option<f64>,
    /// Last body byte (or the failure), ms after the scheduled start.
    pub total_ms: f64,
    /// The replica that answered.
    pub replica: Option<String>,
    /// Body bytes received.
    pub bytes: u64,
}

/// One scheduled request.
struct Scheduled {
    index: usize,
    at: Duration,
    tokens: u64,
    group: Option<usize>,
    body: Bytes,
}

/// Draws the run's requests from its seed.
fn schedule(plan: &Plan) -> Vec<Scheduled> {
    let mut rng = Rng::with_seed(plan.seed);
    let prefixes: Vec<String> = (0..plan.prefix_groups)
        .map(|g| {
            text(
                &mut Rng::with_seed(plan.seed ^ ((g as u64 + 1) << 20)),
                plan.prefix_bytes,
            )
        })
        .collect();
    let mut at = Duration::ZERO;
    let mut requests = Vec::new();
    loop {
        // Exponential gaps: a Poisson process.
        let gap = -(1.0 - rng.f64()).ln() / plan.rate;
        at += Duration::from_secs_f64(gap);
        if at >= plan.duration {
            return requests;
        }
        let tokens = (plan.tokens.sample(&mut rng, plan.max_tokens as f64).round() as u64).max(1);
        let group = (plan.prefix_groups > 0).then(|| rng.usize(..plan.prefix_groups));
        let prompt = format!(
            "{}{}",
            group.map_or("", |g| prefixes[g].as_str()),
            text(&mut rng, plan.suffix_bytes)
        );
        let mut body = serde_json::json!({
            "model": plan.model,
            "prompt": prompt,
            "max_tokens": tokens,
        });
        if plan.stream {
            body["stream"] = serde_json::Value::Bool(true);
        }
        requests.push(Scheduled {
            index: requests.len(),
            at,
            tokens,
            group,
            body: Bytes::from(body.to_string()),
        });
    }
}

/// `n` random lowercase letters and spaces.
fn text(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| match rng.u8(..27) {
            26 => ' ',
            c => char::from(b'a' + c),
        })
        .collect()
}

/// Runs the plan; the outcomes in arrival order.
pub async fn run(plan: &Plan) -> Vec<Outcome> {
    let requests = schedule(plan);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for request in requests {
        let plan = plan.clone();
        tasks.spawn(async move {
            let due = start + request.at;
            tokio::time::sleep_until(due).await;
            one(&plan, request, due, start).await
        });
    }
    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(outcome) = done {
            outcomes.push(outcome);
        }
    }
    outcomes.sort_by_key(|o| o.index);
    outcomes
}

async fn one(plan: &Plan, request: Scheduled, due: Instant, start: Instant) -> Outcome {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut outcome = Outcome {
        index: request.index,
        at_ms: ms(due - start),
        tokens: request.tokens,
        group: request.group,
        outcome: "timeout",
        status: None,
        ttft_ms: None,
        total_ms: 0.0,
        replica: None,
        bytes: 0,
    };
    let exchange = exchange(plan, request.body, due, &mut outcome);
    match tokio::time::timeout_at(due + plan.timeout, exchange).await {
        Ok(Ok(())) => {
            let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
            outcome.outcome = if ok { "ok" } else { "status" };
        }
        Ok(Err(())) => outcome.outcome = "error",
        Err(_) => outcome.outcome = "timeout",
    }
    outcome.total_ms = ms(due.elapsed());
    outcome
}

async fn exchange(plan: &Plan, body: Bytes, due: Instant, outcome: &mut Outcome) -> Result<(), ()> {
    let stream = TcpStream::connect(plan.addr).await.map_err(|_| ())?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ())?;
    let conn = tokio::spawn(conn);
    let mut builder = Request::post(plan.path.as_str())
        .header(http::header::HOST, plan.host.as_str())
        .header(http::header::CONTENT_TYPE, "application/json");
    for (name, value) in &plan.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    let request = builder.body(Full::new(body)).map_err(|_| ())?;
    let result = async {
        let response = sender.send_request(request).await.map_err(|_| ())?;
        outcome.status = Some(response.status().as_u16());
        outcome.replica = response
            .headers()
            .get("x-model-replica")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ())?;
            if let Some(data) = frame.data_ref()
                && !data.is_empty()
            {
                if outcome.ttft_ms.is_none() {
                    outcome.ttft_ms = Some(due.elapsed().as_secs_f64() * 1e3);
                }
                outcome.bytes += data.len() as u64;
            }
        }
        if outcome.ttft_ms.is_none() && outcome.status != Some(StatusCode::OK.as_u16()) {
            outcome.ttft_ms = Some(due.elapsed().as_secs_f64() * 1e3);
        }
        Ok(())
    }
    .await;
    conn.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
            host: "h".to_owned(),
            path: "/v1/completions".to_owned(),
            rate: 100.0,
            duration: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            seed: 7,
            tokens: Dist::LogNormal {
                median: 30.0,
                p99: 200.0,
            },
            max_tokens: 400,
            prefix_groups: 4,
            prefix_bytes: 100,
            suffix_bytes: 10,
            model: "m".to_owned(),
            stream: true,
            headers: Vec::new(),
        }
    }

    #[test]
    fn the_schedule_is_poisson_and_the_same_for_a_seed() {
        let a = schedule(&plan());
        let b = schedule(&plan());
        assert_eq!(a.len(), b.len());
        assert!(
            a.iter()
                .zip(&b)
                .all(|(x, y)| x.at == y.at && x.body == y.body)
        );
        // About rate × duration arrivals.
        assert!((900..1100).contains(&a.len()), "{}", a.len());
        let mut tokens: Vec<u64> = a.iter().map(|r| r.tokens).collect();
        tokens.sort_unstable();
        let median = tokens[tokens.len() / 2];
        assert!((25..=35).contains(&median), "{median}");
        assert!(*tokens.last().unwrap() <= 400);
        // Requests of a group share their prompt's start.
        let prompt = |r: &Scheduled| {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            v["prompt"].as_str().unwrap().to_owned()
        };
        let group0: Vec<String> = a
            .iter()
            .filter(|r| r.group == Some(0))
            .map(prompt)
            .collect();
        assert!(group0.len() > 100);
        assert!(group0.iter().all(|p| p[..100] == group0[0][..100]));
        let other = a.iter().find(|r| r.group == Some(1)).map(prompt).unwrap();
        assert_ne!(other[..100], group0[0][..100]);
    }
}
