//! Reading a model server's metrics page (Prometheus text exposition
//! format 0.0.4, which OpenMetrics text also satisfies for gauges): only
//! the series a backend's [`MetricNames`] select, nothing else is kept.
//!
//! A line is `name{label="value",...} value [timestamp]`; comments and
//! blank lines are skipped, and so is any line that does not parse (a page
//! is the server's, not ours to refuse whole). Label values are unescaped
//! (`\\`, `\"`, `\n`).

use crate::backend::balance::endpoint_metrics::{MetricNames, Selector};
use crate::backend::balance::server_load::{MAX_ADAPTERS, Report, adapter_hash};

/// The series of one line.
struct Series<'t> {
    name: &'t str,
    labels: Vec<(&'t str, String)>,
    value: f64,
}

impl Series<'_> {
    fn matches(&self, selector: &Selector) -> bool {
        self.name == selector.name
            && selector
                .labels
                .iter()
                .all(|(k, v)| self.label(k).is_some_and(|have| have == v))
    }

    fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What one signal's selectors found so far: for each selector, the sum,
/// the highest value, and the LoRA series with the highest value.
#[derive(Default)]
struct Found {
    sums: Vec<Option<f64>>,
    highest: Vec<Option<f64>>,
    lora: Option<(f64, Vec<u64>)>,
}

impl Found {
    fn new(selectors: &[Selector]) -> Self {
        Self {
            sums: vec![None; selectors.len()],
            highest: vec![None; selectors.len()],
            lora: None,
        }
    }

    fn add(&mut self, selectors: &[Selector], series: &Series<'_>) -> bool {
        let Some(i) = selectors.iter().position(|s| series.matches(s)) else {
            return false;
        };
        let v = series.value;
        self.sums[i] = Some(self.sums[i].unwrap_or(0.0) + v);
        self.highest[i] = Some(self.highest[i].map_or(v, |h: f64| h.max(v)));
        true
    }

    /// The first selector's value that any series matched.
    fn first(values: &[Option<f64>]) -> Option<f64> {
        values.iter().flatten().next().copied()
    }
}

/// Reads the selected series of a metrics page.
pub(crate) fn read(page: &str, names: &MetricNames) -> Report {
    let mut waiting = Found::new(&names.waiting);
    let mut running = Found::new(&names.running);
    let mut kv_cache = Found::new(&names.kv_cache);
    let mut lora = Found::new(&names.lora);
    for line in page.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line
            .find(|c: char| c == '{' || c.is_ascii_whitespace())
            .unwrap_or(line.len());
        let name = &line[..name_end];
        if !names.all().any(|s| s.name == name) {
            continue;
        }
        let Some(series) = parse_line(line, name_end) else {
            continue;
        };
        if !series.value.is_finite() {
            continue;
        }
        waiting.add(&names.waiting, &series);
        running.add(&names.running, &series);
        kv_cache.add(&names.kv_cache, &series);
        if lora.add(&names.lora, &series)
            && lora.lora.as_ref().is_none_or(|(t, _)| series.value > *t)
        {
            lora.lora = Some((series.value, adapters(&series)));
        }
    }
    Report {
        waiting: Found::first(&waiting.sums),
        running: Found::first(&running.sums),
        kv_cache: Found::first(&kv_cache.highest),
        adapters: lora.lora.map(|(_, a)| a).unwrap_or_default(),
    }
}

/// The adapters a LoRA info series lists, running then waiting.
fn adapters(series: &Series<'_>) -> Vec<u64> {
    ["running_lora_adapters", "waiting_lora_adapters"]
        .iter()
        .filter_map(|label| series.label(label))
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| adapter_hash(name.as_bytes()))
        .take(MAX_ADAPTERS)
        .collect()
}

/// Parses the labels and value after the name (which ends at `at`).
fn parse_line(line: &str, at: usize) -> Option<Series<'_>> {
    let name = &line[..at];
    let mut rest = &line[at..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = rest.split_ascii_whitespace().next()?;
    Some(Series {
        name,
        labels,
        value: parse_value(value)?,
    })
}

/// `label="value",...}`: the pairs and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(&str, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = text.find('=')?;
        let label = text[..eq].trim();
        let rest = text[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((label, value));
        text = rest[end + 1..].trim_start();
        text = text.strip_prefix(',').unwrap_or(text);
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="llama"} 3.0
vllm:num_requests_running{engine="1",model_name="llama"} 1.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="llama"} 7.0
vllm:gpu_cache_usage_perc{model_name="llama"} 0.25
vllm:kv_cache_usage_perc{model_name="llama"} 0.5
vllm:lora_requests_info{max_lora="2",running_lora_adapters="sql-lora, chat",waiting_lora_adapters=""} 1.7e9
vllm:lora_requests_info{max_lora="2",running_lora_adapters="old",waiting_lora_adapters="x\"y"} 1.6e9
vllm:num_requests_waiting_by_reason{reason="capacity"} 99
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="llama"} 12
"#;

    #[test]
    fn reads_vllm() {
        let report = read(VLLM, &MetricNames::preset("vllm").unwrap());
        assert_eq!(report.running, Some(4.0));
        assert_eq!(report.waiting, Some(7.0));
        // The preferred name first, even when the older one is present.
        assert_eq!(report.kv_cache, Some(0.5));
        // The latest LoRA series.
        assert_eq!(
            report.adapters,
            [adapter_hash(b"sql-lora"), adapter_hash(b"chat")]
        );
    }

    #[test]
    fn labels_select_series() {
        let page = r#"nv_trt_llm_request_metrics{model="m",request_type="waiting",version="1"} 4
nv_trt_llm_request_metrics{model="m",request_type="scheduled",version="1"} 6
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="fraction",model="m"} 0.9
nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type="max",model="m"} 4096
"#;
        let report = read(page, &MetricNames::preset("trtllm").unwrap());
        assert_eq!(
            (report.waiting, report.running, report.kv_cache),
            (Some(4.0), Some(6.0), Some(0.9))
        );
    }

    #[test]
    fn garbage_is_skipped_and_absent_signals_are_unknown() {
        let page = "vllm:num_requests_waiting{model_name=\"a\" 5\n\
                    vllm:num_requests_waiting NaN\n\
                    vllm:num_requests_waiting{a=\"b\"} x\n\
                    vllm:num_requests_running{a=\"\\\\\\n\"} 2 1700000000000\n\
                    \u{0}\u{1}{{{\n";
        let report = read(page, &MetricNames::preset("vllm").unwrap());
        assert_eq!(report.waiting, None);
        assert_eq!(report.running, Some(2.0));
        assert_eq!(report.kv_cache, None);
        assert!(report.adapters.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(page in "\\PC{0,400}") {
            let _ = read(&page, &MetricNames::preset("vllm").unwrap());
        }
    }
}
