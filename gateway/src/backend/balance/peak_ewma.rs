//! `peak_ewma`: Finagle's and Linkerd's peak-EWMA on time to first byte,
//! multiplied by the requests in flight. It reads a slow replica within
//! one request, where ingress-nginx's `ewma` waits for whole generations:
//!
//! - the score is the decayed average time to first byte × (in flight + 1);
//! - a first byte slower than the average replaces it at once (peaks
//!   count), faster ones pull it down by their time weight;
//! - an attempt that ends without a first byte (cancelled, timed out,
//!   refused) only knows a lower bound of its time to first byte: one
//!   below the average says nothing and is not folded in; one that waited
//!   [`PENALTY`] or more counts as a failure. A replica that hangs until
//!   its clients give up would otherwise never score worse than the
//!   clients' timeout, and with the in-flight factor an idle hung replica
//!   beats busy healthy ones;
//! - a failure (5xx, 429, no answer) counts as at least [`PENALTY`] and
//!   at least twice the endpoint's average (up to [`BACKOFF_CAP`]), so a
//!   replica failing fast does not look fast, and repeated failures back
//!   off;
//! - a new endpoint starts as slow as the slowest of its peers, so a
//!   replica that is still warming up is eased in;
//! - an endpoint that never answered yet and has requests in flight scores
//!   worse than any that did (Finagle's rule), so a replica that hangs from
//!   the start does not collect requests;
//! - the time to first byte is only part of a generation: a request is
//!   expected to cost its time to first byte plus its decode time (the
//!   endpoint's chunk gap × its chunks per response), each at least what
//!   the endpoint shows right now, its oldest request's wait and its
//!   streams' silence (see [`super::outstanding`]). A slow decoder gets
//!   proportionally less work, and a replica that stops answering is
//!   avoided within about one of its first-byte times, not when its first
//!   stuck request ends.

use std::sync::Arc;
use std::time::Duration;

use super::decay::Decayed;
use super::outstanding;
use super::p2c::two_choices;
use crate::backend::Endpoint;

/// The smallest time to first byte a failure counts as.
pub(crate) const PENALTY: Duration = Duration::from_secs(1);

/// The largest sample a failure counts as: repeated failures back off up
/// to here, so a replica that recovers is tried again within about
/// τ·ln(cap / healthy score) (tens of seconds), not never.
pub(crate) const BACKOFF_CAP: Duration = Duration::from_secs(16);

/// Keeps the in-flight term alive for costs that decayed to nothing.
const FLOOR_SECONDS: f64 = 1e-6;

/// The score of an endpoint with requests in flight and no sample yet:
/// above any measured one (a day of latency × a thousand in flight).
const UNKNOWN_BUSY: f64 = 86_400.0 * 1000.0;

/// The lower score of two random eligible endpoints.
pub(super) fn pick(
    endpoints: &[Arc<Endpoint>],
    eligible: impl Fn(&Endpoint) -> bool,
    now: u64,
) -> Option<&Arc<Endpoint>> {
    two_choices(endpoints, eligible, |e| score(e, now))
}

/// Expected cost (time to first byte + decode) × (in flight + 1).
pub(super) fn score(endpoint: &Endpoint, now: u64) -> f64 {
    let peak = &endpoint.scores().peak;
    let in_flight = outstanding::in_flight(endpoint, now);
    if peak.raw().is_none() && in_flight > 0.0 {
        return UNKNOWN_BUSY + in_flight;
    }
    let cost = outstanding::cost(endpoint, peak.decayed(now), now);
    cost.max(FLOOR_SECONDS) * (in_flight + 1.0)
}

/// Records a time to first byte; a failure counts as [`PENALTY`] or twice
/// the average (at most [`BACKOFF_CAP`]), whichever is more.
pub(super) fn observe(average: &Decayed, ttfb: Duration, failed: bool, now: u64) {
    let mut sample = ttfb.as_secs_f64();
    if failed {
        let doubled = (average.raw().unwrap_or(0.0) * 2.0).min(BACKOFF_CAP.as_secs_f64());
        sample = sample.max(PENALTY.as_secs_f64()).max(doubled);
    }
    average.observe(sample, now, true);
}

/// Records an attempt that ended after `waited` without a first byte.
pub(super) fn observe_unanswered(average: &Decayed, waited: Duration, failed: bool, now: u64) {
    let failed = failed || waited >= PENALTY;
    if !failed && average.raw().is_some() && waited.as_secs_f64() < average.decayed(now) {
        return;
    }
    observe(average, waited, failed, now);
}

/// A joining endpoint's average: the slowest peer's current score.
pub(super) fn pessimistic(peers: &[Arc<Endpoint>], now: u64) -> Decayed {
    peers
        .iter()
        .filter(|p| p.scores().peak.raw().is_some())
        .map(|p| p.scores().peak.decayed(now))
        .reduce(f64::max)
        .map_or_else(Decayed::default, |slowest| {
            Decayed::starting_at(slowest, now)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::balance::testing::{busy, endpoints};
    use crate::clock::now;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn load_multiplies_latency() {
        fastrand::seed(1);
        let endpoints = endpoints(2);
        let t = now();
        observe(&endpoints[0].scores().peak, ms(100), false, t);
        observe(&endpoints[1].scores().peak, ms(150), false, t);
        assert_eq!(
            pick(&endpoints, |_| true, t).unwrap().addr(),
            endpoints[0].addr()
        );
        // 100 ms × 2 in flight loses to 150 ms idle.
        let _busy = busy(&endpoints[0], 1);
        assert_eq!(
            pick(&endpoints, |_| true, t).unwrap().addr(),
            endpoints[1].addr()
        );
    }

    #[test]
    fn one_slow_first_byte_marks_an_endpoint_slow() {
        let endpoints = endpoints(1);
        let t = now();
        let peak = &endpoints[0].scores().peak;
        for i in 0..100 {
            observe(peak, ms(170), false, t + i);
        }
        observe(peak, Duration::from_secs(2), false, t + 200);
        assert!((score(&endpoints[0], t + 200) - 2.0).abs() < 1e-6);
    }

    #[test]
    fn failures_are_penalised_and_back_off() {
        let endpoints = endpoints(1);
        let t = now();
        let peak = &endpoints[0].scores().peak;
        observe(peak, ms(2), true, t);
        assert_eq!(peak.raw(), Some(PENALTY.as_secs_f64()));
        observe(peak, ms(2), true, t + 1);
        assert_eq!(peak.raw(), Some(2.0 * PENALTY.as_secs_f64()));
    }

    #[test]
    fn repeated_failures_back_off_up_to_the_cap() {
        let endpoints = endpoints(1);
        let t = now();
        let peak = &endpoints[0].scores().peak;
        for i in 0..20 {
            observe(peak, ms(2), true, t + i);
        }
        assert_eq!(peak.raw(), Some(BACKOFF_CAP.as_secs_f64()));
    }

    #[test]
    fn an_early_cancel_says_nothing_and_a_long_wait_is_a_failure() {
        let pair = endpoints(2);
        let t = now();
        let peak = &pair[0].scores().peak;
        observe(peak, ms(170), false, t);
        // Cancelled at 50 ms: below the average, not folded in.
        observe_unanswered(peak, ms(50), false, t + 1);
        assert_eq!(peak.raw(), Some(0.17));
        // Cancelled at 300 ms: above the average, a peak.
        observe_unanswered(peak, ms(300), false, t + 2);
        assert_eq!(peak.raw(), Some(0.3));
        // Clients giving up after a second: failures, doubling each time.
        observe_unanswered(peak, ms(1000), false, t + 3);
        assert_eq!(peak.raw(), Some(1.0));
        observe_unanswered(peak, ms(1000), false, t + 4);
        assert_eq!(peak.raw(), Some(2.0));
        // Refused at once: a failure whatever the wait.
        let fresh = &pair[1].scores().peak;
        observe_unanswered(fresh, ms(1), true, t);
        assert_eq!(fresh.raw(), Some(PENALTY.as_secs_f64()));
    }

    #[test]
    fn new_endpoints_start_as_slow_as_the_slowest() {
        let peers = endpoints(3);
        let t = now();
        observe(&peers[0].scores().peak, ms(100), false, t);
        observe(&peers[1].scores().peak, ms(400), false, t);
        let start = pessimistic(&peers, t);
        assert!((start.decayed(t) - 0.4).abs() < 1e-9);
        assert_eq!(pessimistic(&endpoints(2), t).raw(), None);
    }

    #[test]
    fn a_busy_endpoint_that_never_answered_loses_to_a_measured_one() {
        fastrand::seed(4);
        let endpoints = endpoints(2);
        let t = now();
        observe(
            &endpoints[0].scores().peak,
            Duration::from_secs(5),
            false,
            t,
        );
        let _hung = busy(&endpoints[1], 1);
        assert_eq!(
            pick(&endpoints, |_| true, t).unwrap().addr(),
            endpoints[0].addr()
        );
    }

    #[test]
    fn in_flight_still_counts_before_any_sample() {
        fastrand::seed(2);
        let endpoints = endpoints(2);
        let _busy = busy(&endpoints[1], 3);
        for _ in 0..20 {
            assert_eq!(
                pick(&endpoints, |_| true, now()).unwrap().addr(),
                endpoints[0].addr()
            );
        }
    }
}
