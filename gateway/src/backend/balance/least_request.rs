//! `least_request`: the endpoint with the fewest requests in flight
//! (counted until the last response byte, streams included), each
//! endpoint's count multiplied by its stall factor (see
//! [`super::outstanding`]) so that one that stopped answering looks as busy
//! as it is getting. The scan starts just after the previous winner (the
//! backend's cursor) and stops at the first idle endpoint, so ties go
//! round robin; it reads every endpoint otherwise (O(n)).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::outstanding;
use crate::backend::Endpoint;

/// The eligible endpoint with the least load (requests in flight × stall).
pub(super) fn pick<'e>(
    cursor: &AtomicUsize,
    endpoints: &'e [Arc<Endpoint>],
    eligible: impl Fn(&Endpoint) -> bool,
    now: u64,
) -> Option<&'e Arc<Endpoint>> {
    let n = endpoints.len();
    if n == 0 {
        return None;
    }
    let start = cursor.load(Ordering::Relaxed);
    let mut best: Option<(f64, usize)> = None;
    for k in 0..n {
        let i = start.wrapping_add(k) % n;
        if !eligible(&endpoints[i]) {
            continue;
        }
        let load = outstanding::load(&endpoints[i], now);
        if best.is_none_or(|(fewest, _)| load < fewest) {
            best = Some((load, i));
            if load == 0.0 {
                break;
            }
        }
    }
    let (_, winner) = best?;
    cursor.store(winner + 1, Ordering::Relaxed);
    endpoints.get(winner)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::backend::balance::testing::{busy, endpoints};
    use crate::clock::now;

    #[test]
    fn picks_the_fewest_in_flight() {
        let endpoints = endpoints(4);
        let _a = busy(&endpoints[0], 3);
        let _b = busy(&endpoints[1], 1);
        let _c = busy(&endpoints[2], 2);
        let _d = busy(&endpoints[3], 5);
        let cursor = AtomicUsize::new(0);
        for _ in 0..8 {
            let e = pick(&cursor, &endpoints, |_| true, now()).unwrap();
            assert_eq!(e.addr(), endpoints[1].addr());
        }
        let e = pick(
            &cursor,
            &endpoints,
            |e| e.addr() != endpoints[1].addr(),
            now(),
        )
        .unwrap();
        assert_eq!(e.addr(), endpoints[2].addr());
    }

    #[test]
    fn ties_rotate() {
        let endpoints = endpoints(3);
        let _stuck = busy(&endpoints[0], 1);
        let cursor = AtomicUsize::new(0);
        let mut counts = HashMap::new();
        for _ in 0..30 {
            let e = pick(&cursor, &endpoints, |_| true, now()).unwrap();
            *counts.entry(e.addr()).or_insert(0) += 1;
        }
        assert_eq!(counts.get(&endpoints[0].addr()), None, "{counts:?}");
        assert!(counts.values().all(|c| *c == 15), "{counts:?}");
    }

    #[test]
    fn follows_the_load_as_requests_finish() {
        let endpoints = endpoints(2);
        let cursor = AtomicUsize::new(0);
        let mut held = Vec::new();
        for _ in 0..6 {
            let e = pick(&cursor, &endpoints, |_| true, now()).unwrap().clone();
            held.push(crate::backend::InFlight::start(e, true));
        }
        assert_eq!(endpoints[0].in_flight(), 3);
        assert_eq!(endpoints[1].in_flight(), 3);
        held.retain(|f| f.endpoint().addr() != endpoints[1].addr());
        let e = pick(&cursor, &endpoints, |_| true, now()).unwrap();
        assert_eq!(e.addr(), endpoints[1].addr());
    }
}
