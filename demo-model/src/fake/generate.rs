//! The fake replica's answers: JSON after generation, SSE token streams,
//! and the metrics page.

use std::fmt::{Display, Write};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde::Serialize;

use super::cache::Ask;
use super::{Admitted, Engine, HeadersAt, Lease, QueueFull};
use crate::predict::read_request_body;
use crate::stream::{self, Pacing};
use crate::{Replica, ReplyBody, error, json};

/// The request's place in line on arrival: 0 when it got a slot at once,
/// else 1 + the requests already waiting. On a 503, the requests waiting.
const QUEUE_DEPTH: HeaderName = HeaderName::from_static("x-queue-depth");
/// How long this request waited for a slot, in whole milliseconds.
const QUEUE_WAIT: HeaderName = HeaderName::from_static("x-queue-wait-ms");

/// `POST .../<anything>`: waits for a slot, generates every token, then
/// answers with one JSON object (not while the replica is hung).
pub(crate) async fn predict<B>(
    replica: &Arc<Replica>,
    engine: &Engine,
    req: Request<B>,
) -> Response<ReplyBody>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
    let mut lease = Lease::arrive(replica, engine);
    let ask = match read_request_body(req).await {
        Ok(body) => Ask::read(&body),
        Err(response) => return response,
    };
    engine.thaw().await;
    let admitted = match engine.admit().await {
        Ok(admitted) => admitted,
        Err(full) => return queue_full(&full),
    };
    let plan = engine.plan(&ask);
    let (depth, waited) = (admitted.depth, admitted.waited);
    lease.admitted(admitted.slot, ask.prompt_tokens() + plan.tokens);
    tokio::time::sleep(plan.total()).await;
    engine.thaw().await;

    #[derive(Serialize)]
    struct Answer<'a> {
        model: &'a str,
        replica: &'a str,
        output_tokens: u64,
        queue_depth: usize,
        queue_wait_ms: u128,
    }
    let mut response = json(
        StatusCode::OK,
        &Answer {
            model: &replica.model.id,
            replica: &replica.addr,
            output_tokens: plan.tokens,
            queue_depth: depth,
            queue_wait_ms: waited.as_millis(),
        },
    );
    queue_headers(&mut response, depth, waited);
    response // the slot is freed here (with the lease), with the last token
}

/// `GET|POST .../stream`: waits for a slot, then streams one SSE event per
/// token. The slot is held until the stream ends or its client goes away.
pub(crate) async fn stream<B>(
    replica: &Arc<Replica>,
    engine: &Engine,
    req: Request<B>,
) -> Response<ReplyBody>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Display,
{
    let mut lease = Lease::arrive(replica, engine);
    let ask = match read_request_body(req).await {
        Ok(body) => Ask::read(&body),
        Err(response) => return response,
    };
    engine.thaw().await;
    let Admitted {
        slot,
        depth,
        waited,
    } = match engine.admit().await {
        Ok(admitted) => admitted,
        Err(full) => return queue_full(&full),
    };
    let plan = engine.plan(&ask);
    lease.admitted(slot, ask.prompt_tokens());
    let ttft = match engine.profile.headers {
        HeadersAt::FirstToken => {
            tokio::time::sleep(plan.ttft).await;
            engine.thaw().await;
            Duration::ZERO
        }
        HeadersAt::Admission => plan.ttft,
    };
    let pacing = Pacing {
        tokens: plan.tokens,
        interval: plan.inter_token,
        ttft,
    };
    let mut response = stream::events(replica, pacing, Some(lease));
    queue_headers(&mut response, depth, waited);
    response
}

/// `GET .../metrics`: the gauges vLLM exports that gateways' endpoint
/// pickers read (queue, running, KV cache, LoRA adapters) and this
/// replica's own counts (arrivals, prefix-cache blocks, the hang).
pub(crate) fn metrics(replica: &Replica, engine: &Engine) -> Response<ReplyBody> {
    let label = escape_label(&replica.model.id);
    let mut text = String::new();
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed) as f64;
    let kv = engine.kv_usage();
    let series: [(&str, &str, &str, f64); 13] = [
        (
            "vllm:num_requests_running",
            "gauge",
            "Requests generating now.",
            engine.slots.running() as f64,
        ),
        (
            "vllm:num_requests_waiting",
            "gauge",
            "Requests waiting for a slot.",
            engine.slots.waiting() as f64,
        ),
        (
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage, 1 = full.",
            kv,
        ),
        (
            "vllm:gpu_cache_usage_perc",
            "gauge",
            "KV-cache usage, 1 = full (older name).",
            kv,
        ),
        (
            "fake_model_requests_total",
            "counter",
            "Requests that got a slot.",
            load(&engine.admitted),
        ),
        (
            "fake_model_rejected_total",
            "counter",
            "Requests refused with 503: the queue was full.",
            load(&engine.rejected),
        ),
        (
            "fake_model_arrivals_total",
            "counter",
            "Requests that arrived.",
            load(&engine.arrivals),
        ),
        (
            "fake_model_active_requests",
            "gauge",
            "Requests being handled: waiting, generating or streaming.",
            load(&engine.active),
        ),
        (
            "fake_model_prefix_cache_blocks_total",
            "counter",
            "Prompt blocks looked up in the prefix cache.",
            load(&engine.prefix_blocks),
        ),
        (
            "fake_model_prefix_cache_hits_total",
            "counter",
            "Prompt blocks found in the prefix cache.",
            load(&engine.prefix_hits),
        ),
        (
            "fake_model_hang_in_flight",
            "gauge",
            "Requests being handled when the hang began (-1: not yet).",
            engine.hang_in_flight.load(Ordering::SeqCst) as f64,
        ),
        (
            "fake_model_hang_arrivals_total",
            "counter",
            "Requests that arrived during the hang.",
            load(&engine.hang_arrivals),
        ),
        (
            "fake_model_hang_last_arrival_seconds",
            "gauge",
            "How far into the hang the last request arrived.",
            load(&engine.hang_last_arrival_ms) / 1e3,
        ),
    ];
    for (name, kind, help, value) in series {
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{model_name=\"{label}\"}} {value}\n"
        );
    }
    if !engine.profile.lora_adapters.is_empty() {
        let adapters = engine.profile.lora_adapters.join(",");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let _ = write!(
            text,
            "# HELP vllm:lora_requests_info Running stats on lora requests.\n# TYPE vllm:lora_requests_info gauge\n\
             vllm:lora_requests_info{{max_lora=\"{}\",running_lora_adapters=\"{adapters}\",waiting_lora_adapters=\"\"}} {now}\n",
            engine.profile.lora_adapters.len()
        );
    }
    let mut response = Response::new(Full::new(Bytes::from(text)).boxed());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// 503 for a full queue, with when to retry and how long the queue was.
fn queue_full(full: &QueueFull) -> Response<ReplyBody> {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "queue full");
    let headers = response.headers_mut();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
    headers.insert(QUEUE_DEPTH, HeaderValue::from(full.depth));
    response
}

fn queue_headers(response: &mut Response<ReplyBody>, depth: usize, waited: Duration) {
    let headers = response.headers_mut();
    headers.insert(QUEUE_DEPTH, HeaderValue::from(depth));
    let waited = u64::try_from(waited.as_millis()).unwrap_or(u64::MAX);
    headers.insert(QUEUE_WAIT, HeaderValue::from(waited));
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn escape_label(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_label("model-1"), "model-1");
    }
}
