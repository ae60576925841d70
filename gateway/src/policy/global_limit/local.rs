//! The replica's own state: refusals remembered for their delay, and the
//! window counters used while the store fails. Both are bounded maps: a
//! flood of distinct keys evicts expired entries first, then arbitrary
//! ones, and never grows memory past [`MAX_ENTRIES`] each.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::window::Counters;

/// Entries kept at most per map.
pub(crate) const MAX_ENTRIES: usize = 65_536;

/// A map of values that expire, bounded in entries.
#[derive(Debug, Default)]
struct Expiring<V> {
    map: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V: Copy> Expiring<V> {
    fn get(&self, key: &str) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(v, _)| *v)
    }

    /// Applies `update` to the live value of `key` (or `None`) and keeps
    /// what it returns for `ttl` if new or expired.
    fn update(&self, key: &str, ttl: Duration, update: impl FnOnce(Option<V>) -> V) -> V {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((value, until)) = map.get_mut(key)
            && now < *until
        {
            *value = update(Some(*value));
            return *value;
        }
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, until)| now < *until);
            if map.len() >= MAX_ENTRIES {
                let drop: Vec<String> = map.keys().take(MAX_ENTRIES / 8).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
        }
        let value = update(None);
        map.insert(key.to_owned(), (value, now + ttl));
        value
    }
}

/// Refusals remembered until their delay ends.
#[derive(Debug, Default)]
pub(crate) struct Decisions(Expiring<()>);

impl Decisions {
    pub(crate) fn refused(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }

    pub(crate) fn remember(&self, key: &str, delay: Duration) {
        self.0.update(key, delay, |_| ());
    }
}

/// Window counters on the replica.
#[derive(Debug, Default)]
pub(crate) struct LocalCounters(Expiring<u64>);

impl Counters for LocalCounters {
    async fn get(&self, key: &str) -> io::Result<Option<u64>> {
        Ok(self.0.get(key))
    }

    async fn incr(&self, key: &str, expiry: Duration) -> io::Result<u64> {
        Ok(self.0.update(key, expiry, |v| v.map_or(1, |v| v + 1)))
    }
}
