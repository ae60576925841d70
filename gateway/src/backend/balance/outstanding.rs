//! Outstanding work: what an endpoint is doing *now*, while its requests
//! are in flight, and the one place every picker reads it from.
//!
//! Latency averages only move when an answer arrives, so they cannot see
//! an endpoint that stops answering: its score stays at its last healthy
//! value while its requests pile up. Two signals are measured as requests
//! run, with atomics on the endpoint ([`Signals`]):
//!
//! - **waiting for a first byte**: the age of the oldest attempt still
//!   waiting for its first response byte, counted from the endpoint's last
//!   first byte (when it answered anything, it was alive then). A replica
//!   that hangs sees it grow from the moment it stopped; a healthy one
//!   keeps it near the gap between two of its answers;
//! - **dark**: an attempt abandoned (its client gave up, its timeout ran
//!   out) without a first byte, or mid-stream, after the endpoint (and,
//!   mid-stream, that stream) had been silent for [`DARK_FACTOR`] times its
//!   usual wait or chunk gap (and at least [`DARK_MIN`]; a second if it
//!   never answered) leaves the endpoint dark: its wait keeps counting
//!   from its last first byte although nothing of it is in flight any
//!   more, for twice as long as it had been silent (at most
//!   [`DARK_MAX`]). Without this, an endpoint whose stuck requests all
//!   timed out would look idle, and take new requests into the same hang.
//!   Once that time is over, the next request is a
//!   probe: it counts from its own start, and if it hangs too the endpoint
//!   goes dark again. Answering anything ends it;
//! - **decode rate**: the gap between two chunks (SSE events) of one
//!   stream, averaged chunk by chunk while streams run, and the silence
//!   since the endpoint's last chunk while it has streams open: a slow
//!   decoder shows a long gap, a stalled one a growing silence.
//!
//! What the pickers read ([`load`], [`stalled_for`], [`cost`]):
//!
//! - the **stall factor** (at least 1): how much longer than usual the
//!   endpoint has now been waiting or silent, against its own averages of
//!   answered first bytes and chunk gaps (at least [`FLOOR`]);
//!   `least_request`, `p2c` and prefix affinity multiply the requests in
//!   flight (at least one, while dark) by it, so a hung endpoint's load
//!   grows with every moment it stays silent;
//! - `ewma` scores an endpoint at least as slow as it has been stalled;
//! - `peak_ewma` expects a request to cost its time to first byte plus its
//!   decode time (gap × chunks per response), each at least what the
//!   endpoint shows right now.
//!
//! With fresh model-server metrics ([`super::server_load`]), the requests
//! an endpoint has in flight are at least the requests its server reports
//! waiting and running (other gateways' included).
//!
//! Every read is a few relaxed atomic loads: picking stays lock-free and
//! O(1) per endpoint looked at. Round robin reads none of this, and
//! requests on a round robin backend record none of it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use super::decay::{Decayed, Stamp};
use crate::backend::Endpoint;

/// The smallest budget an average gives a wait or a silence: below it,
/// scheduling noise would read as a stall.
pub(crate) const FLOOR: Duration = Duration::from_millis(10);

/// The budget of an endpoint that never answered: it is given this long
/// before a wait counts against it.
const UNKNOWN_BUDGET: Duration = Duration::from_secs(1);

/// How many times its usual wait an endpoint must have been silent for an
/// attempt abandoned without a first byte to leave it dark.
pub(crate) const DARK_FACTOR: f64 = 8.0;

/// The shortest silence that leaves an endpoint dark.
pub(crate) const DARK_MIN: Duration = Duration::from_millis(500);

/// The longest an endpoint stays dark before a probe.
pub(crate) const DARK_MAX: Duration = Duration::from_secs(30);

/// The outstanding-work signals of one endpoint.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    /// Attempts sent and still waiting for their first byte.
    unanswered: AtomicUsize,
    /// When the endpoint last sent a first byte, or when `unanswered` last
    /// rose from zero: the oldest unanswered attempt started no earlier.
    answered_at: Stamp,
    /// Attempts past their first byte whose body has not ended.
    streaming: AtomicUsize,
    /// When a chunk last arrived, or when `streaming` last rose from zero.
    chunk_at: Stamp,
    /// Decayed average time to first byte of answered attempts (failures
    /// left out, so that the budget does not grow with the stall).
    ttfb: Decayed,
    /// Decayed average gap between two chunks of one stream.
    gap: Decayed,
    /// Decayed average number of chunks per finished response.
    chunks: Decayed,
    /// Until when (balancer clock) the endpoint is dark: an abandoned
    /// attempt found it silent for long; 0 when it is not.
    dark_until: AtomicU64,
}

impl Signals {
    /// An attempt was sent.
    pub(crate) fn sent(&self, now: u64) {
        // A dark endpoint's wait keeps counting from its last first byte.
        if self.unanswered.fetch_add(1, Ordering::Relaxed) == 0 && !self.dark(now) {
            self.answered_at.set(now);
        }
    }

    /// An attempt got its first byte after `ttfb`; `failed` (5xx, 429)
    /// keeps it out of the average. It is streaming from now on.
    pub(crate) fn answered(&self, ttfb: Duration, failed: bool, now: u64) {
        self.unanswered.fetch_sub(1, Ordering::Relaxed);
        self.answered_at.set(now);
        self.dark_until.store(0, Ordering::Relaxed);
        if !failed {
            self.ttfb.observe(ttfb.as_secs_f64(), now, false);
        }
        if self.streaming.fetch_add(1, Ordering::Relaxed) == 0 {
            self.chunk_at.set(now);
        }
    }

    /// A stream's next chunk arrived, `gap` after its previous one.
    pub(crate) fn chunk(&self, gap: Duration, now: u64) {
        self.chunk_at.set(now);
        self.gap.observe(gap.as_secs_f64(), now, false);
    }

    /// An attempt ended: answered, after `chunks` chunks the last of which
    /// came at `last_chunk`, or (`None`) without a first byte. Either leaves
    /// the endpoint dark if it had been silent for long.
    pub(crate) fn ended(&self, last_chunk: Option<u64>, chunks: u32, now: u64) {
        if let Some(last_chunk) = last_chunk {
            // A stream that ends long after its own last chunk, while the
            // endpoint sent no chunk either, was abandoned mid-way (one that
            // completes just got its last; the endpoint's other streams may
            // have kept its own last chunk from moving).
            let own = now.saturating_sub(last_chunk) as f64 / 1e9;
            let silent = self.chunk_at.seconds_until(now).min(own);
            if silent >= dark_threshold(&self.gap) {
                self.go_dark(silent, now);
            }
            self.streaming.fetch_sub(1, Ordering::Relaxed);
            self.chunks.observe(f64::from(chunks), now, false);
            return;
        }
        let silent = self.answered_at.seconds_until(now);
        if silent >= dark_threshold(&self.ttfb) {
            self.go_dark(silent, now);
        }
        self.unanswered.fetch_sub(1, Ordering::Relaxed);
    }

    /// The endpoint has been silent for `silent` seconds and an attempt
    /// was abandoned: dark for twice that (at most [`DARK_MAX`]).
    fn go_dark(&self, silent: f64, now: u64) {
        let dark_for = (2.0 * silent).min(DARK_MAX.as_secs_f64());
        let until = now.saturating_add((dark_for * 1e9) as u64);
        self.dark_until.fetch_max(until, Ordering::Relaxed);
    }

    /// Whether an abandoned attempt left the endpoint dark until after `now`.
    fn dark(&self, now: u64) -> bool {
        self.dark_until.load(Ordering::Relaxed) > now
    }

    /// Attempts waiting for their first byte now.
    pub(crate) fn unanswered(&self) -> usize {
        self.unanswered.load(Ordering::Relaxed)
    }

    /// Attempts streaming now (for tests).
    #[cfg(test)]
    pub(crate) fn streaming(&self) -> usize {
        self.streaming.load(Ordering::Relaxed)
    }

    /// Seconds the oldest unanswered attempt has waited, counted from the
    /// last first byte; 0 when none waits, unless the endpoint is dark.
    fn waiting_for(&self, now: u64) -> f64 {
        if self.unanswered.load(Ordering::Relaxed) == 0 && !self.dark(now) {
            return 0.0;
        }
        self.answered_at.seconds_until(now)
    }

    /// Seconds since the last chunk while streams are open; 0 without.
    fn silent_for(&self, now: u64) -> f64 {
        if self.streaming.load(Ordering::Relaxed) == 0 {
            return 0.0;
        }
        self.chunk_at.seconds_until(now)
    }

    /// How many times its usual wait or gap the endpoint has been waiting
    /// or silent; 1 when it is not.
    fn stall(&self, now: u64) -> f64 {
        let waited = self.waiting_for(now) / budget(&self.ttfb);
        let silent = self.silent_for(now) / budget(&self.gap);
        waited.max(silent).max(1.0)
    }
}

/// How long an endpoint must have been silent, against its usual time
/// (first byte or chunk gap), for an abandoned attempt to leave it dark:
/// [`DARK_FACTOR`] times it, at least [`DARK_MIN`]; a second when nothing
/// was measured yet.
fn dark_threshold(usual: &Decayed) -> f64 {
    match usual.raw() {
        Some(usual) => (DARK_FACTOR * usual).max(DARK_MIN.as_secs_f64()),
        None => UNKNOWN_BUDGET.as_secs_f64(),
    }
}

/// An average as a budget: at least [`FLOOR`], [`UNKNOWN_BUDGET`] when
/// nothing was measured yet.
fn budget(average: &Decayed) -> f64 {
    average
        .raw()
        .unwrap_or(UNKNOWN_BUDGET.as_secs_f64())
        .max(FLOOR.as_secs_f64())
}

// === The seam the pickers read ===

/// Requests an endpoint has in flight: the gateway's own count, or what
/// its model server reports (waiting and running) when that is fresh and
/// higher.
pub(crate) fn in_flight(endpoint: &Endpoint, now: u64) -> f64 {
    let own = endpoint.in_flight() as f64;
    match endpoint.server().requests(now) {
        Some(reported) => own.max(f64::from(reported)),
        None => own,
    }
}

/// The load `least_request`, `p2c` and prefix affinity compare: requests
/// in flight (at least one while the endpoint is dark) × the stall factor.
pub(crate) fn load(endpoint: &Endpoint, now: u64) -> f64 {
    let signals = endpoint.signals();
    let mut in_flight = in_flight(endpoint, now);
    if in_flight == 0.0 {
        if !signals.dark(now) {
            return 0.0;
        }
        in_flight = 1.0;
    }
    in_flight * signals.stall(now)
}

/// Seconds the endpoint has been waiting for a first byte or silent mid
/// stream, whichever is longer: a lower bound of its current latency.
pub(crate) fn stalled_for(endpoint: &Endpoint, now: u64) -> f64 {
    let signals = endpoint.signals();
    signals.waiting_for(now).max(signals.silent_for(now))
}

/// What a new request is expected to cost on this endpoint, in seconds:
/// its time to first byte (`peak`, the peak-sensitive average) and its
/// decode time (chunk gap × chunks after the first), each at least what
/// the endpoint shows right now (its wait, its silence).
pub(crate) fn cost(endpoint: &Endpoint, peak: f64, now: u64) -> f64 {
    let signals = endpoint.signals();
    let first_byte = peak.max(signals.waiting_for(now));
    let more_chunks = (signals.chunks.raw().unwrap_or(1.0) - 1.0).max(0.0);
    if more_chunks == 0.0 {
        return first_byte;
    }
    let gap = signals.gap.decayed(now).max(signals.silent_for(now));
    first_byte + gap * more_chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::balance::testing::endpoints;

    const MS: u64 = 1_000_000;

    /// One attempt sent at `t` and answered 40 ms later, in one chunk.
    fn answered_in_40ms(s: &Signals, t: u64) {
        s.sent(t);
        s.answered(Duration::from_millis(40), false, t + 40 * MS);
        s.ended(Some(t + 40 * MS), 1, t + 41 * MS);
    }

    #[test]
    fn an_endpoint_that_stops_answering_stalls_more_every_moment() {
        let endpoint = &endpoints(1)[0];
        let s = endpoint.signals();
        let t = 1_000 * MS;
        answered_in_40ms(s, t);
        // Healthy: sent and answered within its usual 40 ms.
        s.sent(t + 100 * MS);
        assert_eq!(s.stall(t + 120 * MS), 1.0);
        // Hung: nothing since; the factor grows with the wait.
        assert!((s.stall(t + 400 * MS) - 300.0 / 40.0).abs() < 1e-6);
        assert!(s.stall(t + 4_000 * MS) > s.stall(t + 400 * MS));
        // Answering again ends the stall.
        s.answered(Duration::from_millis(300), false, t + 4_000 * MS);
        assert_eq!(s.stall(t + 4_001 * MS), 1.0);
    }

    #[test]
    fn an_endpoint_whose_stuck_requests_were_abandoned_stays_dark_until_a_probe() {
        let endpoint = &endpoints(1)[0];
        let s = endpoint.signals();
        let t = 1_000 * MS;
        answered_in_40ms(s, t);
        // Hangs: two attempts sent, both abandoned 10 s later (client
        // timeouts) without a first byte.
        s.sent(t + 100 * MS);
        s.sent(t + 200 * MS);
        let gone = t + 10_200 * MS;
        s.ended(None, 0, gone - 100 * MS);
        s.ended(None, 0, gone);
        assert_eq!(s.unanswered(), 0);
        // Nothing in flight, yet it is not idle: its wait still counts
        // from when it was last seen alive (its first unanswered send),
        // and its load is that of one request stalled that long.
        assert!((s.waiting_for(gone + MS) - 10.101).abs() < 1e-6);
        let stalled = load(endpoint, gone + MS);
        assert!(stalled > 200.0, "{stalled}");
        // A request sent while dark does not restart the wait.
        s.sent(gone + 1_000 * MS);
        assert!(s.waiting_for(gone + 1_001 * MS) > 11.0);
        s.ended(None, 0, gone + 2_000 * MS);
        // Dark for twice its silence (at most DARK_MAX); then the next
        // request is a probe, counted from its own start.
        let later = gone + DARK_MAX.as_nanos() as u64 + 3_000 * MS;
        assert_eq!(load(endpoint, later), 0.0);
        s.sent(later);
        assert!(s.waiting_for(later + 10 * MS) < 0.011);
        // Answering ends it.
        s.answered(Duration::from_millis(40), false, later + 40 * MS);
        s.ended(Some(later + 40 * MS), 1, later + 41 * MS);
        assert_eq!(load(endpoint, later + 50 * MS), 0.0);
    }

    #[test]
    fn a_stream_abandoned_after_a_long_silence_leaves_the_endpoint_dark() {
        let endpoint = &endpoints(1)[0];
        let s = endpoint.signals();
        let t = 1_000 * MS;
        s.sent(t);
        s.answered(Duration::from_millis(40), false, t + 40 * MS);
        s.chunk(Duration::from_millis(10), t + 50 * MS);
        s.chunk(Duration::from_millis(10), t + 60 * MS);
        // A stream that completes is not abandoned.
        s.ended(Some(t + 60 * MS), 3, t + 60 * MS);
        assert_eq!(load(endpoint, t + 61 * MS), 0.0);
        // The next stream goes silent mid-way, and its client gives up 5 s
        // later: the endpoint is dark although nothing is in flight.
        s.sent(t + 100 * MS);
        s.answered(Duration::from_millis(40), false, t + 140 * MS);
        s.chunk(Duration::from_millis(10), t + 150 * MS);
        s.ended(Some(t + 150 * MS), 2, t + 5_150 * MS);
        assert!(load(endpoint, t + 5_151 * MS) > 100.0);
    }

    #[test]
    fn overlapping_short_responses_leave_a_busy_endpoint_lit() {
        let endpoint = &endpoints(1)[0];
        let s = endpoint.signals();
        let t = 1_000 * MS;
        // A busy endpoint: a one-chunk response every millisecond for two
        // seconds, each ending 2 ms after its first byte, so that some
        // response is always streaming and none sends a second chunk.
        for ms in 0..2_002 {
            let at = t + ms * MS;
            if ms < 2_000 {
                s.sent(at);
                s.answered(Duration::ZERO, false, at);
            }
            if ms >= 2 {
                s.ended(Some(at - 2 * MS), 1, at);
            }
        }
        // Every stream ended right after its own chunk: none was abandoned.
        let after = t + 2_010 * MS;
        assert!(!s.dark(after));
        assert_eq!(load(endpoint, after), 0.0);
    }

    #[test]
    fn a_quick_abandoned_request_leaves_a_healthy_endpoint_as_it_was() {
        let endpoint = &endpoints(1)[0];
        let s = endpoint.signals();
        let t = 1_000 * MS;
        answered_in_40ms(s, t);
        // A client gives up 200 ms in (less than DARK_MIN of silence).
        s.sent(t + 100 * MS);
        s.ended(None, 0, t + 300 * MS);
        assert_eq!(s.waiting_for(t + 301 * MS), 0.0);
        assert_eq!(load(endpoint, t + 301 * MS), 0.0);
        s.sent(t + 400 * MS);
        assert!(s.waiting_for(t + 410 * MS) < 0.011);
    }

    #[test]
    fn the_wait_counts_from_the_last_first_byte() {
        let endpoint = &endpoints(1)[0];
        let s = endpoint.signals();
        let t = 1_000 * MS;
        s.sent(t);
        s.sent(t + 10 * MS);
        s.answered(Duration::from_millis(50), false, t + 50 * MS);
        // One still waits since t + 10, but the endpoint answered at t + 50.
        assert!((s.waiting_for(t + 60 * MS) - 0.010).abs() < 1e-9);
        s.ended(None, 0, t + 70 * MS);
        assert_eq!(s.waiting_for(t + 80 * MS), 0.0);
    }

    #[test]
    fn a_silent_stream_stalls_and_a_slow_one_costs_more() {
        let pair = endpoints(2);
        let t = 1_000 * MS;
        for (endpoint, gap_ms) in pair.iter().zip([10u64, 40]) {
            let s = endpoint.signals();
            s.sent(t);
            s.answered(Duration::from_millis(40), false, t + 40 * MS);
            let mut at = t + 40 * MS;
            for _ in 0..30 {
                at += gap_ms * MS;
                s.chunk(Duration::from_millis(gap_ms), at);
            }
            s.ended(Some(at), 31, at);
        }
        let now = t + 1_300 * MS;
        let (fast, slow) = (cost(&pair[0], 0.04, now), cost(&pair[1], 0.04, now));
        assert!(slow > 3.0 * fast, "{slow} vs {fast}");
        // A stream that goes silent for ten gaps: stall factor ten.
        let s = pair[0].signals();
        s.sent(now);
        s.answered(Duration::from_millis(40), false, now);
        assert!((s.stall(now + 100 * MS) - 10.0).abs() < 0.5);
        assert!(cost(&pair[0], 0.04, now + 100 * MS) > fast);
    }

    #[test]
    fn load_multiplies_in_flight_by_the_stall() {
        let endpoint = &endpoints(1)[0];
        let t = crate::clock::now();
        assert_eq!(load(endpoint, t), 0.0);
        let _busy = crate::backend::balance::testing::busy(endpoint, 3);
        assert_eq!(load(endpoint, t), 3.0);
    }
}
