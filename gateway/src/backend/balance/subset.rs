//! `upstream-hash-by-subset`, ingress-nginx's `chashsubset`: the endpoints,
//! in set order, are cut into subsets of `size` (the last one filled up
//! with endpoints from the start, so all are the same size); a key maps to
//! one subset consistently, and a request goes to a random endpoint of it.
//! Stickiness per group of pods, load spread within the group.
//!
//! The subset is chosen by rendezvous hashing of the key with each subset's
//! number (ingress-nginx: a consistent-hash ring over the subset names):
//! adding a subset takes keys from the others evenly, without a ring to
//! build per endpoint set.

use std::sync::Arc;

use super::ring::StableHash;
use crate::backend::Endpoint;

/// A random eligible endpoint of the subset `key` maps to (the next
/// eligible one round the subset when the random one is not; none when no
/// member of the subset is).
pub(super) fn pick(
    endpoints: &[Arc<Endpoint>],
    key: u64,
    size: usize,
    eligible: impl Fn(&Endpoint) -> bool,
) -> Option<&Arc<Endpoint>> {
    let n = endpoints.len();
    if n == 0 {
        return None;
    }
    let size = size.max(1);
    let subsets = n.div_ceil(size);
    let subset = (0..subsets)
        .max_by_key(|i| weight(key, *i))
        .unwrap_or_default();
    let start = fastrand::usize(..size);
    (0..size)
        .map(|j| &endpoints[(subset * size + (start + j) % size) % n])
        .find(|e| eligible(e))
}

/// The rendezvous weight of subset `index` for `key`.
fn weight(key: u64, index: usize) -> u64 {
    let mut hash = StableHash::default();
    hash.write(&key.to_le_bytes());
    hash.write(&(index as u64).to_le_bytes());
    hash.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::balance::testing::endpoints;
    use std::collections::HashSet;

    fn members(endpoints: &[Arc<Endpoint>], key: u64, size: usize) -> HashSet<u64> {
        (0..200)
            .filter_map(|_| pick(endpoints, key, size, |_| true))
            .map(|e| e.id())
            .collect()
    }

    #[test]
    fn a_key_spreads_over_its_subset_only() {
        let set = endpoints(7);
        for key in [1u64, 42, 9_999] {
            let seen = members(&set, key, 3);
            assert_eq!(seen.len(), 3, "key {key}: {seen:?}");
            assert_eq!(members(&set, key, 3), seen, "stable for key {key}");
        }
        // 7 endpoints, subsets of 3: the last subset reuses the first ones.
        let all: HashSet<u64> = (0..500u64).flat_map(|k| members(&set, k, 3)).collect();
        assert_eq!(all.len(), 7);
    }

    #[test]
    fn ineligible_members_are_skipped_and_empty_sets_give_none() {
        let set = endpoints(3);
        let only = set[1].id();
        let picked = pick(&set, 5, 3, |e| e.id() == only).unwrap();
        assert_eq!(picked.id(), only);
        assert!(pick(&set, 5, 3, |_| false).is_none());
        assert!(pick(&[], 5, 3, |_| true).is_none());
    }

    #[test]
    fn adding_a_subset_moves_few_keys() {
        let six = endpoints(6);
        let nine = endpoints(9);
        let moved = (0..300u64)
            .filter(|k| {
                let a = members(&six, *k, 3);
                let b = members(&nine, *k, 3);
                a != b
            })
            .count();
        // About a third move to the new subset; the rest stay.
        assert!(moved < 160, "{moved} of 300 keys moved");
    }
}
