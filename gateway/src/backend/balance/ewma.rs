//! `ewma`: ingress-nginx's latency balancer (`balancer/ewma.lua`). Each
//! endpoint keeps a decayed average of connect + response time of its
//! finished requests; of two random endpoints the lower score wins. It has
//! no in-flight term, and a long generation counts only once it ends:
//! both are ingress-nginx's behaviour, kept here for drop-in parity
//! (`peak_ewma` is the variant built for model servers).
//!
//! One difference: in ingress-nginx a replica that stops answering keeps
//! its last healthy score (nothing finishes to move it), so it keeps
//! winning draws, worse than round robin. Here an endpoint scores at least
//! as long as it has been stalled: waiting for a first byte since its last
//! one, or silent mid-stream (see [`super::outstanding`]), so a hung
//! replica loses every draw once its stall passes the others' averages.

use std::sync::Arc;
use std::time::Duration;

use super::decay::Decayed;
use super::outstanding;
use super::p2c::two_choices;
use crate::backend::Endpoint;

/// The lower score of two random eligible endpoints: the decayed average,
/// or the stall if longer.
pub(super) fn pick(
    endpoints: &[Arc<Endpoint>],
    eligible: impl Fn(&Endpoint) -> bool,
    now: u64,
) -> Option<&Arc<Endpoint>> {
    two_choices(endpoints, eligible, |e| {
        e.scores()
            .ewma
            .decayed(now)
            .max(outstanding::stalled_for(e, now))
    })
}

/// Records a finished attempt's connect + response time.
pub(super) fn observe(average: &Decayed, total: Duration, now: u64) {
    average.observe(total.as_secs_f64(), now, false);
}

/// ingress-nginx's slow start: a new endpoint starts at the average of the
/// stored averages of its peers (none when no peer has one), so it neither
/// takes every request nor none.
pub(super) fn slow_start(peers: &[Arc<Endpoint>], now: u64) -> Decayed {
    let (sum, count) = peers
        .iter()
        .filter_map(|p| p.scores().ewma.raw())
        .fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
    if count == 0 {
        return Decayed::default();
    }
    Decayed::starting_at(sum / f64::from(count), now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::balance::testing::endpoints;
    use crate::clock::now;

    #[test]
    fn the_faster_of_two_wins() {
        fastrand::seed(5);
        let endpoints = endpoints(2);
        let t = now();
        observe(&endpoints[0].scores().ewma, Duration::from_millis(300), t);
        observe(&endpoints[1].scores().ewma, Duration::from_millis(100), t);
        for _ in 0..20 {
            assert_eq!(
                pick(&endpoints, |_| true, t).unwrap().addr(),
                endpoints[1].addr()
            );
        }
    }

    #[test]
    fn in_flight_requests_do_not_count() {
        // ingress-nginx's ewma knows nothing of requests still running.
        fastrand::seed(9);
        let endpoints = endpoints(2);
        let t = now();
        observe(&endpoints[0].scores().ewma, Duration::from_millis(100), t);
        observe(&endpoints[1].scores().ewma, Duration::from_millis(200), t);
        let _busy = crate::backend::balance::testing::busy(&endpoints[0], 50);
        assert_eq!(
            pick(&endpoints, |_| true, t).unwrap().addr(),
            endpoints[0].addr()
        );
    }

    #[test]
    fn a_stalled_endpoint_loses_to_a_slower_one() {
        // ingress-nginx would keep sending to the hung one: its last
        // score (100 ms) beats the other's 300 ms.
        fastrand::seed(5);
        let endpoints = endpoints(2);
        let t = now();
        observe(&endpoints[0].scores().ewma, Duration::from_millis(100), t);
        observe(&endpoints[1].scores().ewma, Duration::from_millis(300), t);
        let _hung = crate::backend::balance::testing::busy(&endpoints[0], 1);
        let later = t + 500_000_000;
        for _ in 0..20 {
            assert_eq!(
                pick(&endpoints, |_| true, later).unwrap().addr(),
                endpoints[1].addr()
            );
        }
    }

    #[test]
    fn new_endpoints_start_at_the_average() {
        let peers = endpoints(3);
        let t = now();
        observe(&peers[0].scores().ewma, Duration::from_millis(100), t);
        observe(&peers[1].scores().ewma, Duration::from_millis(300), t);
        let start = slow_start(&peers, t);
        assert!((start.raw().unwrap() - 0.2).abs() < 1e-9);
        assert_eq!(slow_start(&endpoints(2), t).raw(), None);
    }
}
