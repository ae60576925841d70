//! `round_robin`: each endpoint in turn, ingress-nginx's default. The
//! cursor is the backend's, shared by every request, so turns are global.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::backend::Endpoint;

/// The next eligible endpoint after the cursor.
pub(super) fn pick<'e>(
    cursor: &AtomicUsize,
    endpoints: &'e [Arc<Endpoint>],
    eligible: impl Fn(&Endpoint) -> bool,
) -> Option<&'e Arc<Endpoint>> {
    let n = endpoints.len();
    for _ in 0..n {
        let endpoint = &endpoints[cursor.fetch_add(1, Ordering::Relaxed) % n];
        if eligible(endpoint) {
            return Some(endpoint);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::backend::balance::testing::endpoints;

    #[test]
    fn visits_every_endpoint_evenly() {
        let endpoints = endpoints(10);
        let cursor = AtomicUsize::new(7);
        let mut counts = HashMap::new();
        for _ in 0..100 {
            let e = pick(&cursor, &endpoints, |_| true).unwrap();
            *counts.entry(e.addr()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 10);
        assert!(counts.values().all(|c| *c == 10), "{counts:?}");
    }

    #[test]
    fn skips_ineligible_endpoints() {
        let endpoints = endpoints(3);
        let cursor = AtomicUsize::new(0);
        let last = endpoints[2].addr();
        for _ in 0..10 {
            let e = pick(&cursor, &endpoints, |e| e.addr() == last).unwrap();
            assert_eq!(e.addr(), last);
        }
        assert!(pick(&cursor, &endpoints, |_| false).is_none());
    }
}
