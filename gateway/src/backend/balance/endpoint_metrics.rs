//! `endpoint-metrics` and its keys: which model server's metric names to
//! read from each endpoint, where, and how often.
//!
//! A metric is named as in a PromQL selector: `name` or
//! `name{label="value",...}` (every listed label must match). Presets:
//!
//! | server | waiting | running | KV cache | LoRA |
//! |---|---|---|---|---|
//! | `vllm` | `vllm:num_requests_waiting` | `vllm:num_requests_running` | `vllm:kv_cache_usage_perc`, else `vllm:gpu_cache_usage_perc` | `vllm:lora_requests_info` |
//! | `sglang` | `sglang:num_queue_reqs` | `sglang:num_running_reqs` | `sglang:token_usage` | — |
//! | `trtllm` | `nv_trt_llm_request_metrics{request_type="waiting"}` | `…{request_type="scheduled"}` | `nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}` | — |
//! | `tgi` | `tgi_queue_size` | `tgi_batch_current_size` | — | — |
//! | `triton` | `nv_inference_pending_request_count` | — | — | — |
//!
//! `endpoint-metrics-names` replaces any of them:
//! `waiting=tgi_queue_size;kv-cache=my_kv_fraction;lora=` (empty: not read).

use std::time::Duration;

/// The longest metric name or label taken (Prometheus has no limit; ours
/// keeps a selector small).
const MAX_SELECTOR_BYTES: usize = 512;

/// How a backend's endpoints are scraped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointMetrics {
    /// The names read.
    pub names: MetricNames,
    /// `endpoint-metrics-port`: where the metrics are served; `None`: the
    /// endpoint's own port.
    pub port: Option<u16>,
    /// `endpoint-metrics-path` (`/metrics`).
    pub path: String,
    /// `endpoint-metrics-interval` (500 ms; at least 50 ms).
    pub interval: Duration,
    /// `endpoint-metrics-timeout`: connect, request and body (500 ms).
    pub timeout: Duration,
    /// `endpoint-metrics-max-age`: how long a scrape's values count (2 s).
    pub max_age: Duration,
}

impl EndpointMetrics {
    /// The shortest interval.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

    /// The defaults for a server's names.
    pub fn new(names: MetricNames) -> Self {
        Self {
            names,
            port: None,
            path: "/metrics".to_owned(),
            interval: Duration::from_millis(500),
            timeout: Duration::from_millis(500),
            max_age: Duration::from_secs(2),
        }
    }
}

/// The metrics read for each signal: the first selector with a series
/// counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricNames {
    /// Requests waiting in the server's queue (summed over series).
    pub waiting: Vec<Selector>,
    /// Requests running (summed over series).
    pub running: Vec<Selector>,
    /// KV-cache utilisation, 0 to 1 (the highest series).
    pub kv_cache: Vec<Selector>,
    /// vLLM-style LoRA info: the series with the highest value (its
    /// timestamp), labels `running_lora_adapters` and
    /// `waiting_lora_adapters`.
    pub lora: Vec<Selector>,
}

/// The servers with preset names.
pub const SERVERS: [&str; 5] = ["vllm", "sglang", "trtllm", "tgi", "triton"];

impl MetricNames {
    /// The preset names of `server` (one of [`SERVERS`]).
    pub fn preset(server: &str) -> Option<Self> {
        let s = |names: &[&str]| -> Vec<Selector> {
            names
                .iter()
                .filter_map(|n| Selector::parse(n).ok())
                .collect()
        };
        Some(match server {
            "vllm" => Self {
                waiting: s(&["vllm:num_requests_waiting"]),
                running: s(&["vllm:num_requests_running"]),
                kv_cache: s(&["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]),
                lora: s(&["vllm:lora_requests_info"]),
            },
            "sglang" => Self {
                waiting: s(&["sglang:num_queue_reqs"]),
                running: s(&["sglang:num_running_reqs"]),
                kv_cache: s(&["sglang:token_usage"]),
                lora: Vec::new(),
            },
            "trtllm" => Self {
                waiting: s(&[r#"nv_trt_llm_request_metrics{request_type="waiting"}"#]),
                running: s(&[r#"nv_trt_llm_request_metrics{request_type="scheduled"}"#]),
                kv_cache: s(&[
                    r#"nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction"}"#,
                ]),
                lora: Vec::new(),
            },
            "tgi" => Self {
                waiting: s(&["tgi_queue_size"]),
                running: s(&["tgi_batch_current_size"]),
                kv_cache: Vec::new(),
                lora: Vec::new(),
            },
            "triton" => Self {
                waiting: s(&["nv_inference_pending_request_count"]),
                ..Self::default()
            },
            _ => return None,
        })
    }

    /// These names with `overrides` applied: `signal=selector` pairs
    /// separated by `;`, signals `waiting`, `running`, `kv-cache`, `lora`;
    /// an empty selector turns the signal off.
    pub fn with_overrides(mut self, overrides: &str) -> Result<Self, String> {
        for pair in overrides
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let Some((signal, selector)) = pair.split_once('=') else {
                return Err(format!("{pair:?} is not signal=metric"));
            };
            let selectors = match selector.trim() {
                "" => Vec::new(),
                text => vec![Selector::parse(text)?],
            };
            let slot = match signal.trim() {
                "waiting" => &mut self.waiting,
                "running" => &mut self.running,
                "kv-cache" => &mut self.kv_cache,
                "lora" => &mut self.lora,
                other => {
                    return Err(format!(
                        "unknown signal {other:?}: waiting, running, kv-cache or lora"
                    ));
                }
            };
            *slot = selectors;
        }
        Ok(self)
    }

    /// Every selector, for a quick look whether a line matters.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Selector> {
        self.waiting
            .iter()
            .chain(&self.running)
            .chain(&self.kv_cache)
            .chain(&self.lora)
    }
}

/// A metric name and the labels a series must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// The metric name.
    pub name: String,
    /// `label = value` pairs every matching series has.
    pub labels: Vec<(String, String)>,
}

impl Selector {
    /// Parses `name` or `name{label="value",...}`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let invalid = || format!("{text:?} is not a metric name or name{{label=\"value\"}}");
        if text.len() > MAX_SELECTOR_BYTES {
            return Err(format!(
                "a metric selector is at most {MAX_SELECTOR_BYTES} bytes"
            ));
        }
        let (name, rest) = match text.split_once('{') {
            Some((name, rest)) => (name, Some(rest.strip_suffix('}').ok_or_else(invalid)?)),
            None => (text, None),
        };
        if !valid_name(name, true) {
            return Err(invalid());
        }
        let mut labels = Vec::new();
        for pair in rest.into_iter().flat_map(|r| r.split(',')) {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (label, value) = pair.split_once('=').ok_or_else(invalid)?;
            let value = value
                .trim()
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .filter(|v| !v.contains(['"', '\\']))
                .ok_or_else(invalid)?;
            let label = label.trim();
            if !valid_name(label, false) {
                return Err(invalid());
            }
            labels.push((label.to_owned(), value.to_owned()));
        }
        Ok(Self {
            name: name.to_owned(),
            labels,
        })
    }
}

/// A Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label name
/// (no `:`).
fn valid_name(name: &str, colons: bool) -> bool {
    let ok = |b: u8, first: bool| {
        b.is_ascii_alphabetic()
            || b == b'_'
            || (colons && b == b':')
            || (!first && b.is_ascii_digit())
    };
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| ok(b, true)) && bytes.all(|b| ok(b, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let plain = Selector::parse("vllm:num_requests_waiting").unwrap();
        assert_eq!(plain.name, "vllm:num_requests_waiting");
        assert!(plain.labels.is_empty());
        let labelled =
            Selector::parse(r#"nv_trt_llm_request_metrics{request_type="waiting", x="y"}"#)
                .unwrap();
        assert_eq!(
            labelled.labels,
            [
                ("request_type".to_owned(), "waiting".to_owned()),
                ("x".to_owned(), "y".to_owned())
            ]
        );
        for bad in [
            "",
            "1abc",
            "a b",
            "a{b}",
            r#"a{b="c""#,
            r#"a{b=c}"#,
            r#"a{:b="c"}"#,
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn presets_and_overrides() {
        for server in SERVERS {
            let names = MetricNames::preset(server).unwrap();
            assert!(!names.waiting.is_empty(), "{server}");
        }
        assert_eq!(MetricNames::preset("nginx"), None);
        let tgi = MetricNames::preset("tgi")
            .unwrap()
            .with_overrides("kv-cache=my_kv; running= ;")
            .unwrap();
        assert_eq!(tgi.kv_cache[0].name, "my_kv");
        assert!(tgi.running.is_empty());
        assert_eq!(tgi.waiting[0].name, "tgi_queue_size");
        for bad in ["queue=x", "waiting", "waiting=1x"] {
            assert!(MetricNames::default().with_overrides(bad).is_err(), "{bad}");
        }
    }
}
