//! A consistent-hash ring over a backend's endpoints, nginx's `hash ...
//! consistent` (ketama): each endpoint owns [`POINTS_PER_ENDPOINT`] points
//! placed by a hash of its address alone, and a key belongs to the first
//! point at or after its hash. Adding or removing one of n endpoints so
//! moves only the keys of the arcs it gains or loses, about 1/n of them.
//!
//! The hash is [`StableHash`]: the same on every replica and every build,
//! since cookie values and the key → endpoint map must survive restarts.

use std::net::SocketAddr;

/// Points per endpoint, as nginx's `hash consistent` (160 × weight).
pub const POINTS_PER_ENDPOINT: usize = 160;

/// A 64-bit hash that never changes between builds or machines: FNV-1a
/// over the bytes, finished with splitmix64's mixer so that nearby inputs
/// land far apart on the ring.
#[derive(Clone, Copy, Debug)]
pub struct StableHash(u64);

impl Default for StableHash {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHash {
    /// Feeds bytes; feeding `a` then `b` equals feeding `a ++ b`.
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of everything fed so far.
    pub fn finish(self) -> u64 {
        mix(self.0)
    }

    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut hash = Self::default();
        hash.write(bytes);
        hash.finish()
    }
}

/// splitmix64's finaliser: a bijection that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An endpoint's stable identity: the hash of `ip:port`. Used for its ring
/// points and as the persistent session cookie's value.
pub fn endpoint_id(addr: SocketAddr) -> u64 {
    StableHash::of(addr.to_string().as_bytes())
}

/// The ring of one endpoint set; indices are positions in that set.
#[derive(Debug)]
pub struct Ring {
    /// (point, endpoint index), sorted.
    points: Box<[(u64, u32)]>,
}

impl Ring {
    /// The ring of endpoints with these ids, in set order.
    pub fn new(ids: impl IntoIterator<Item = u64>) -> Self {
        let mut points = Vec::new();
        for (index, id) in ids.into_iter().enumerate() {
            let Ok(index) = u32::try_from(index) else {
                break;
            };
            for point in 0..POINTS_PER_ENDPOINT as u64 {
                points.push((mix(id ^ mix(point + 1)), index));
            }
        }
        points.sort_unstable();
        Self {
            points: points.into_boxed_slice(),
        }
    }

    /// The position of the first point at or after `key`, wrapping.
    fn start(&self, key: u64) -> usize {
        let at = self.points.partition_point(|(point, _)| *point < key);
        if at == self.points.len() { 0 } else { at }
    }

    /// The endpoint index `key` belongs to; `None` on an empty ring.
    pub fn owner(&self, key: u64) -> Option<usize> {
        self.points.get(self.start(key)).map(|(_, i)| *i as usize)
    }

    /// Endpoint indices in ring order from `key`'s point, once round the
    /// ring (an index repeats once per point it owns): where a key goes
    /// when its owner cannot take it.
    pub fn walk(&self, key: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.start(key);
        let (tail, head) = self.points.split_at(start.min(self.points.len()));
        head.iter().chain(tail).map(|(_, i)| *i as usize)
    }

    /// A key owned by endpoint `index`, drawn uniformly from one of its
    /// arcs chosen by `draw` (any number): a balanced session cookie for
    /// that endpoint, which moves only if a new endpoint takes the arc.
    pub fn key_for(&self, index: usize, draw: u64) -> Option<u64> {
        let owned: Vec<usize> = (0..self.points.len())
            .filter(|p| self.points[*p].1 as usize == index)
            .collect();
        let pick = *owned.get(usize::try_from(draw % owned.len().max(1) as u64).ok()?)?;
        let point = self.points[pick].0;
        let previous = match pick {
            0 => self.points[self.points.len() - 1].0,
            p => self.points[p - 1].0,
        };
        let width = point.wrapping_sub(previous);
        let key = if width == 0 {
            point
        } else {
            previous.wrapping_add(1).wrapping_add(mix(draw) % width)
        };
        Some(if self.owner(key) == Some(index) {
            key
        } else {
            point
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn ids(n: u8) -> Vec<u64> {
        (1..=n)
            .map(|i| endpoint_id(SocketAddr::from(([10, 0, 0, i], 8080))))
            .collect()
    }

    #[test]
    fn the_hash_is_stable_and_streams() {
        // Pinned: cookie values must mean the same after an upgrade.
        assert_eq!(StableHash::of(b""), mix(0xcbf2_9ce4_8422_2325));
        let mut split = StableHash::default();
        split.write(b"/api/");
        split.write(b"v1");
        assert_eq!(split.finish(), StableHash::of(b"/api/v1"));
        assert_ne!(StableHash::of(b"a"), StableHash::of(b"b"));
    }

    #[test]
    fn keys_spread_over_every_endpoint() {
        let ring = Ring::new(ids(5));
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for k in 0..10_000u32 {
            let key = StableHash::of(format!("user-{k}").as_bytes());
            *counts.entry(ring.owner(key).unwrap()).or_default() += 1;
        }
        assert_eq!(counts.len(), 5);
        // 2000 each on average; ketama with 160 points stays well within ±40 %.
        assert!(
            counts.values().all(|c| (1200..=2800).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn an_empty_ring_owns_nothing() {
        let ring = Ring::new([]);
        assert_eq!(ring.owner(42), None);
        assert_eq!(ring.walk(42).count(), 0);
        assert_eq!(ring.key_for(0, 1), None);
    }

    #[test]
    fn a_walk_visits_every_endpoint_from_the_owner() {
        let ring = Ring::new(ids(4));
        let key = StableHash::of(b"k");
        let walk: Vec<usize> = ring.walk(key).collect();
        assert_eq!(walk.len(), 4 * POINTS_PER_ENDPOINT);
        assert_eq!(walk.first().copied(), ring.owner(key));
        for i in 0..4 {
            assert!(walk.contains(&i));
        }
    }

    proptest! {
        #[test]
        fn removing_one_endpoint_moves_only_its_keys(
            n in 2u8..12,
            removed in 0u8..12,
            keys in proptest::collection::vec(any::<u64>(), 1..300),
        ) {
            let removed = usize::from(removed % n);
            let all = ids(n);
            let before = Ring::new(all.clone());
            let mut rest = all.clone();
            rest.remove(removed);
            let after = Ring::new(rest.clone());
            for key in keys {
                let was = before.owner(key).unwrap();
                let now = after.owner(key).unwrap();
                if was != removed {
                    prop_assert_eq!(all[was], rest[now], "key {} moved", key);
                }
            }
        }

        #[test]
        fn a_drawn_key_belongs_to_its_endpoint(n in 1u8..10, index in 0u8..10, draw in any::<u64>()) {
            let index = usize::from(index % n);
            let ring = Ring::new(ids(n));
            let key = ring.key_for(index, draw).unwrap();
            prop_assert_eq!(ring.owner(key), Some(index));
        }
    }

    #[test]
    fn adding_an_endpoint_moves_about_one_in_n_keys() {
        let before = Ring::new(ids(9));
        let after = Ring::new(ids(10));
        let keys = 20_000u32;
        let moved = (0..keys)
            .map(|k| StableHash::of(&k.to_le_bytes()))
            .filter(|key| before.owner(*key) != after.owner(*key))
            .count();
        // 1/10 expected; every moved key went to the new endpoint.
        assert!((1000..=3000).contains(&moved), "{moved}");
    }
}
