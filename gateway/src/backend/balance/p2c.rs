//! `p2c`: power of two choices. Two random eligible endpoints are drawn
//! and the one with less load wins (requests in flight × stall factor, see
//! [`super::outstanding`]); the same draw serves `ewma` and `peak_ewma`
//! with their own scores. Two choices keep the busiest endpoint within
//! O(ln ln n) of the mean without scanning them all.

use std::sync::Arc;

use super::outstanding;
use crate::backend::Endpoint;

/// The less loaded of two random eligible endpoints.
pub(super) fn pick(
    endpoints: &[Arc<Endpoint>],
    eligible: impl Fn(&Endpoint) -> bool,
    now: u64,
) -> Option<&Arc<Endpoint>> {
    two_choices(endpoints, eligible, |e| outstanding::load(e, now))
}

/// The lower-scored of two random eligible endpoints (the first drawn on
/// a tie); the only one when one is eligible.
pub(super) fn two_choices(
    endpoints: &[Arc<Endpoint>],
    eligible: impl Fn(&Endpoint) -> bool,
    score: impl Fn(&Endpoint) -> f64,
) -> Option<&Arc<Endpoint>> {
    let first = draw(endpoints, &eligible, None)?;
    let Some(second) = draw(endpoints, &eligible, Some(first)) else {
        return endpoints.get(first);
    };
    let (a, b) = (&endpoints[first], &endpoints[second]);
    Some(if score(b) < score(a) { b } else { a })
}

/// A random eligible endpoint other than `other`: the first eligible one
/// from a random start.
fn draw(
    endpoints: &[Arc<Endpoint>],
    eligible: &impl Fn(&Endpoint) -> bool,
    other: Option<usize>,
) -> Option<usize> {
    let n = endpoints.len();
    if n == 0 {
        return None;
    }
    let start = fastrand::usize(..n);
    (0..n)
        .map(|k| (start + k) % n)
        .find(|i| Some(*i) != other && eligible(&endpoints[*i]))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::backend::balance::testing::{busy, endpoints};
    use crate::clock::now;

    #[test]
    fn never_picks_the_busiest_of_two() {
        fastrand::seed(7);
        let endpoints = endpoints(2);
        let _busy = busy(&endpoints[0], 1);
        for _ in 0..50 {
            assert_eq!(
                pick(&endpoints, |_| true, now()).unwrap().addr(),
                endpoints[1].addr()
            );
        }
    }

    #[test]
    fn the_busiest_endpoint_is_never_chosen() {
        // With two choices, the single busiest of n endpoints loses every
        // draw it is part of.
        fastrand::seed(11);
        let endpoints = endpoints(5);
        let _busy = busy(&endpoints[2], 4);
        let mut counts: HashMap<_, usize> = HashMap::new();
        for _ in 0..1000 {
            *counts
                .entry(pick(&endpoints, |_| true, now()).unwrap().addr())
                .or_default() += 1;
        }
        assert_eq!(counts.get(&endpoints[2].addr()), None, "{counts:?}");
        assert_eq!(counts.len(), 4, "{counts:?}");
    }

    #[test]
    fn one_eligible_endpoint_is_the_choice() {
        fastrand::seed(3);
        let endpoints = endpoints(4);
        let _busy = busy(&endpoints[1], 9);
        for _ in 0..20 {
            let e = pick(&endpoints, |e| e.addr() == endpoints[1].addr(), now()).unwrap();
            assert_eq!(e.addr(), endpoints[1].addr());
        }
    }
}
