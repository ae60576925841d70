//! How one fake replica behaves: its delays, output lengths, concurrency
//! slots and queue, and its faults (slow, stuck).

use std::fmt;
use std::time::Duration;

use fastrand::Rng;
use serde::Deserialize;

use super::dist::Dist;

/// The longest output, in tokens.
pub const MAX_TOKENS: u64 = 10_000;
/// The longest single delay (time to first token, inter-token delay,
/// stuck latency), in milliseconds: 10 minutes.
pub const MAX_DELAY_MS: f64 = 600_000.0;
/// The most concurrency slots per replica.
pub const MAX_SLOTS: usize = 10_000;
/// The longest queue per replica.
pub const MAX_QUEUE: usize = 100_000;
/// The largest slow factor.
const MAX_SLOW_FACTOR: f64 = 1_000.0;

/// One replica's behaviour. Every field has a default, so `{}` is a valid
/// profile: 50 ms to the first token, 10 tokens 10 ms apart, 256 slots
/// (vLLM's default `max-num-seqs`) and a queue of 1024.
///
/// A request waits in a FIFO queue for one of `slots` slots (beyond
/// `max_queue` waiting requests it gets 503), holds the slot while it
/// generates, and generates `output_tokens` tokens: the first after
/// `ttft_ms`, the next ones `inter_token_ms` apart. Delays and lengths are
/// drawn once per request when it gets its slot.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Time to first token, in milliseconds, from getting a slot.
    pub ttft_ms: Dist,
    /// Delay between two tokens, in milliseconds.
    pub inter_token_ms: Dist,
    /// Output length in tokens (rounded, at least 1, at most [`MAX_TOKENS`]).
    pub output_tokens: Dist,
    /// Requests generated at the same time; the others queue.
    pub slots: usize,
    /// Requests that may wait for a slot; more get 503.
    pub max_queue: usize,
    /// Multiplies both delays: 5 makes a replica five times slower.
    pub slow_factor: f64,
    /// A window during which every request's first token takes a fixed time.
    pub stuck: Option<Stuck>,
    /// A window during which the replica accepts requests and answers
    /// nothing: no first token, no next token, no JSON answer.
    pub hang: Option<Hang>,
    /// When a stream's response headers are sent.
    pub headers: HeadersAt,
    /// Take the output length from the request body's `max_tokens` when
    /// it has one (at most [`MAX_TOKENS`]), so that a load generator
    /// decides every request's length and the same run can be replayed
    /// against any balancer.
    pub tokens_from_request: bool,
    /// A simulated prefix cache: prefill costs time only for the prompt
    /// blocks it does not hold (see [`super::cache`]).
    pub prefix_cache: Option<PrefixCacheProfile>,
    /// KV-cache capacity in tokens, for the reported utilisation: a
    /// request holds its prompt (bytes / 4) and its tokens so far.
    pub kv_cache_tokens: u64,
    /// Report this KV-cache utilisation (0 to 1) instead of computing it.
    pub kv_cache_usage: Option<f64>,
    /// LoRA adapters to report loaded (`vllm:lora_requests_info`).
    pub lora_adapters: Vec<String>,
}

/// A hang, counted from the moment the replica was bound.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hang {
    /// Start, in milliseconds after the replica was bound.
    pub after_ms: u64,
    /// Length, in milliseconds.
    pub for_ms: u64,
}

impl Hang {
    /// The window as offsets from the bind.
    pub(crate) fn window(&self) -> (Duration, Duration) {
        let start = Duration::from_millis(self.after_ms);
        (
            start,
            start.saturating_add(Duration::from_millis(self.for_ms)),
        )
    }
}

/// A simulated prefix cache.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrefixCacheProfile {
    /// Prompt bytes per block (vLLM caches whole blocks).
    pub block_bytes: usize,
    /// Blocks held; the least recently used go first.
    pub capacity_blocks: usize,
    /// Prefill time of one block that is not cached, in milliseconds.
    pub prefill_ms_per_block: f64,
}

impl Default for PrefixCacheProfile {
    fn default() -> Self {
        Self {
            block_bytes: 64,
            capacity_blocks: 4096,
            prefill_ms_per_block: 1.0,
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Self {
            ttft_ms: Dist::Fixed(50.0),
            inter_token_ms: Dist::Fixed(10.0),
            output_tokens: Dist::Fixed(10.0),
            slots: 256,
            max_queue: 1024,
            slow_factor: 1.0,
            stuck: None,
            hang: None,
            headers: HeadersAt::FirstToken,
            tokens_from_request: false,
            prefix_cache: None,
            kv_cache_tokens: 256 * 1024,
            kv_cache_usage: None,
            lora_adapters: Vec::new(),
        }
    }
}

/// A stuck window, counted from the moment the replica was bound: requests
/// that get their slot inside it wait `latency_ms` for the first token
/// instead of the sampled time (linkerd's "one backend at 2 s for 30 s").
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stuck {
    /// Start of the window, in milliseconds after the replica was bound.
    pub after_ms: u64,
    /// Length of the window, in milliseconds.
    pub for_ms: u64,
    /// Time to first token inside the window, in milliseconds.
    pub latency_ms: u64,
}

/// When a stream's response headers go out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeadersAt {
    /// With the first token: the time to first byte is the queue wait
    /// plus the time to first token.
    #[default]
    FirstToken,
    /// As soon as the request has a slot, before the first token (as
    /// vLLM's OpenAI server does).
    Admission,
}

/// A profile outside the bounds.
#[derive(Debug, PartialEq)]
pub struct InvalidProfile(String);

impl fmt::Display for InvalidProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidProfile {}

/// What one request will do, drawn when it gets its slot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Plan {
    pub(crate) ttft: Duration,
    pub(crate) inter_token: Duration,
    pub(crate) tokens: u64,
}

impl Plan {
    /// From getting the slot to the last token.
    pub(crate) fn total(&self) -> Duration {
        let gaps = u32::try_from(self.tokens.saturating_sub(1)).unwrap_or(u32::MAX);
        self.ttft + self.inter_token * gaps
    }
}

impl Profile {
    /// Checks every bound; a profile must pass before it is served.
    pub fn check(&self) -> Result<(), InvalidProfile> {
        let bad = |message: String| Err(InvalidProfile(message));
        for (name, dist, max) in [
            ("ttft_ms", &self.ttft_ms, MAX_DELAY_MS),
            ("inter_token_ms", &self.inter_token_ms, MAX_DELAY_MS),
            ("output_tokens", &self.output_tokens, MAX_TOKENS as f64),
        ] {
            if let Err(error) = dist.check() {
                return bad(format!("{name}: {error}"));
            }
            if dist.upper_bound().is_some_and(|v| v > max) {
                return bad(format!("{name}: values must be at most {max}"));
            }
        }
        if !(1..=MAX_SLOTS).contains(&self.slots) {
            return bad(format!("slots must be from 1 to {MAX_SLOTS}"));
        }
        if self.max_queue > MAX_QUEUE {
            return bad(format!("max_queue must be at most {MAX_QUEUE}"));
        }
        if !(self.slow_factor > 0.0 && self.slow_factor <= MAX_SLOW_FACTOR) {
            return bad(format!(
                "slow_factor must be above 0 and at most {MAX_SLOW_FACTOR}"
            ));
        }
        if self
            .stuck
            .is_some_and(|s| s.latency_ms as f64 > MAX_DELAY_MS)
        {
            return bad(format!("stuck.latency_ms must be at most {MAX_DELAY_MS}"));
        }
        if let Some(cache) = &self.prefix_cache {
            let ms = cache.prefill_ms_per_block;
            if !(1..=65_536).contains(&cache.block_bytes)
                || cache.capacity_blocks > 10_000_000
                || !(ms.is_finite() && (0.0..=MAX_DELAY_MS).contains(&ms))
            {
                return bad("prefix_cache: block_bytes 1 to 65536, capacity_blocks at most 10000000, prefill_ms_per_block 0 to 600000".to_owned());
            }
        }
        if self.kv_cache_tokens == 0 {
            return bad("kv_cache_tokens must be at least 1".to_owned());
        }
        if self
            .kv_cache_usage
            .is_some_and(|u| !(u.is_finite() && (0.0..=1.0).contains(&u)))
        {
            return bad("kv_cache_usage must be from 0 to 1".to_owned());
        }
        let adapter_ok = |a: &String| {
            !a.is_empty()
                && a.len() <= 256
                && a.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b',' && b != b'"' && b != b'\\')
        };
        if self.lora_adapters.len() > 64 || !self.lora_adapters.iter().all(adapter_ok) {
            return bad(
                "lora_adapters: at most 64 names of printable ASCII without , \" or \\".to_owned(),
            );
        }
        Ok(())
    }

    /// Draws one request's plan; `since_bound` is the time since the
    /// replica was bound (for the stuck window), `asked` the output length
    /// the request asks for (used with `tokens_from_request`).
    pub(crate) fn plan(&self, rng: &mut Rng, since_bound: Duration, asked: Option<u64>) -> Plan {
        let scaled = |dist: &Dist, rng: &mut Rng| {
            let ms = dist.sample(rng, MAX_DELAY_MS) * self.slow_factor;
            Duration::from_secs_f64(ms.min(MAX_DELAY_MS) / 1e3)
        };
        let mut ttft = scaled(&self.ttft_ms, rng);
        let inter_token = scaled(&self.inter_token_ms, rng);
        let sampled = self.output_tokens.sample(rng, MAX_TOKENS as f64).round() as u64;
        let tokens = match asked.filter(|_| self.tokens_from_request) {
            Some(asked) => asked.min(MAX_TOKENS),
            None => sampled,
        };
        if let Some(stuck) = self.stuck.filter(|s| s.covers(since_bound)) {
            ttft = Duration::from_millis(stuck.latency_ms);
        }
        Plan {
            ttft,
            inter_token,
            tokens: tokens.max(1),
        }
    }
}

impl Stuck {
    fn covers(&self, since_bound: Duration) -> bool {
        let start = Duration::from_millis(self.after_ms);
        let end = start.saturating_add(Duration::from_millis(self.for_ms));
        (start..end).contains(&since_bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Profile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_empty_object_is_the_default() {
        let profile = parse("{}");
        assert_eq!(profile, Profile::default());
        assert_eq!(profile.check(), Ok(()));
    }

    #[test]
    fn reads_a_full_profile() {
        let profile = parse(
            r#"{"ttft_ms": {"lognormal": {"median": 50, "p99": 150}},
                "inter_token_ms": 10, "output_tokens": {"uniform": {"min": 10, "max": 50}},
                "slots": 4, "max_queue": 64, "slow_factor": 5,
                "stuck": {"after_ms": 1000, "for_ms": 2000, "latency_ms": 2000},
                "headers": "admission"}"#,
        );
        assert_eq!(profile.slots, 4);
        assert_eq!(profile.slow_factor, 5.0);
        assert_eq!(profile.headers, HeadersAt::Admission);
        assert_eq!(profile.check(), Ok(()));
    }

    #[test]
    fn refuses_unknown_fields_and_out_of_bounds_values() {
        assert!(serde_json::from_str::<Profile>(r#"{"slot": 4}"#).is_err());
        for bad in [
            r#"{"slots": 0}"#,
            r#"{"slots": 10001}"#,
            r#"{"max_queue": 100001}"#,
            r#"{"slow_factor": 0}"#,
            r#"{"output_tokens": 10001}"#,
            r#"{"ttft_ms": {"uniform": {"min": 0, "max": 600001}}}"#,
            r#"{"stuck": {"after_ms": 0, "for_ms": 1, "latency_ms": 600001}}"#,
        ] {
            assert!(parse(bad).check().is_err(), "{bad}");
        }
    }

    #[test]
    fn slow_factor_scales_both_delays() {
        let profile = parse(r#"{"ttft_ms": 40, "inter_token_ms": 10, "slow_factor": 5}"#);
        let plan = profile.plan(&mut Rng::with_seed(1), Duration::ZERO, None);
        assert_eq!(plan.ttft, Duration::from_millis(200));
        assert_eq!(plan.inter_token, Duration::from_millis(50));
        assert_eq!(plan.tokens, 10);
        assert_eq!(plan.total(), Duration::from_millis(200 + 9 * 50));
    }

    #[test]
    fn stuck_window_overrides_the_first_token_time() {
        let profile = parse(
            r#"{"ttft_ms": 100, "stuck": {"after_ms": 1000, "for_ms": 500, "latency_ms": 2000}}"#,
        );
        let ttft_at = |ms| {
            profile
                .plan(&mut Rng::with_seed(1), Duration::from_millis(ms), None)
                .ttft
        };
        assert_eq!(ttft_at(999), Duration::from_millis(100));
        assert_eq!(ttft_at(1000), Duration::from_secs(2));
        assert_eq!(ttft_at(1499), Duration::from_secs(2));
        assert_eq!(ttft_at(1500), Duration::from_millis(100));
    }

    #[test]
    fn the_request_may_decide_the_length() {
        let profile = parse(r#"{"output_tokens": 7, "tokens_from_request": true}"#);
        let mut rng = Rng::with_seed(1);
        assert_eq!(
            profile.plan(&mut rng, Duration::ZERO, Some(120)).tokens,
            120
        );
        assert_eq!(profile.plan(&mut rng, Duration::ZERO, None).tokens, 7);
        assert_eq!(
            profile
                .plan(&mut rng, Duration::ZERO, Some(u64::MAX))
                .tokens,
            MAX_TOKENS
        );
        let fixed = parse(r#"{"output_tokens": 7}"#);
        assert_eq!(fixed.plan(&mut rng, Duration::ZERO, Some(120)).tokens, 7);
    }

    #[test]
    fn new_fields_are_checked() {
        for bad in [
            r#"{"kv_cache_usage": 1.5}"#,
            r#"{"kv_cache_tokens": 0}"#,
            r#"{"lora_adapters": ["a,b"]}"#,
            r#"{"prefix_cache": {"block_bytes": 0}}"#,
        ] {
            assert!(parse(bad).check().is_err(), "{bad}");
        }
        let ok = parse(
            r#"{"hang": {"after_ms": 1, "for_ms": 2}, "prefix_cache": {}, "kv_cache_usage": 0.97,
                "lora_adapters": ["sql-lora"]}"#,
        );
        assert_eq!(ok.check(), Ok(()));
    }

    #[test]
    fn output_length_is_at_least_one_token() {
        let profile = parse(r#"{"output_tokens": {"uniform": {"min": 0, "max": 3}}}"#);
        let mut rng = Rng::with_seed(9);
        for _ in 0..1000 {
            let tokens = profile.plan(&mut rng, Duration::ZERO, None).tokens;
            assert!((1..=3).contains(&tokens), "{tokens}");
        }
    }
}
