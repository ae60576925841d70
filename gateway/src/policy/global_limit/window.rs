//! lua-resty-global-throttle's sliding window, which ingress-nginx's
//! `global-rate-limit` uses: a counter per key and fixed window in the
//! store, and the previous window's count weighing in for the part of it
//! the sliding window still covers.

use std::io;
use std::time::Duration;

/// Where the window counters live.
pub(crate) trait Counters {
    /// The counter `key`, `None` when absent.
    async fn get(&self, key: &str) -> io::Result<Option<u64>>;
    /// Adds one to `key` (created at 1, expiring after `expiry`).
    async fn incr(&self, key: &str, expiry: Duration) -> io::Result<u64>;
}

/// One limit: `limit` requests per `window` seconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) limit: u64,
    pub(crate) seconds: u64,
}

impl Window {
    /// Counts one request of `sample` at `now` (seconds since the epoch):
    /// `Ok(None)` lets it through, `Ok(Some(delay))` refuses it, `delay`
    /// being how long the refusal may be remembered.
    pub(crate) async fn process(
        &self,
        store: &impl Counters,
        sample: &str,
        now: f64,
    ) -> io::Result<Option<f64>> {
        let size = self.seconds as f64;
        let limit = self.limit as f64;
        let id = (now / size).floor() as u64;
        let key = |id: u64| format!("{sample}.{id}.counter");
        let remaining = size - now % size;
        let count = store.get(&key(id)).await?.unwrap_or(0) as f64;
        if count >= limit {
            // At or over the limit: the window's final count is known.
            return Ok(Some(remaining));
        }
        let last = match id.checked_sub(1) {
            Some(previous) => store.get(&key(previous)).await?.unwrap_or(0),
            None => 0,
        };
        let last_rate = last as f64 / size;
        let rate = (last_rate * remaining + count) / size;
        let estimated = rate * remaining + count;
        if estimated >= limit {
            return Ok(self.delay(remaining, rate, count));
        }
        let counted = store
            .incr(&key(id), Duration::from_secs(self.seconds * 2))
            .await?;
        // Other replicas may have counted meanwhile: this request is over
        // the limit if the others alone reach it.
        if counted.saturating_sub(1) as f64 >= limit {
            return Ok(Some(remaining));
        }
        Ok(None)
    }

    /// How long to keep refusing so that the rate comes back under the
    /// limit, within the window's remaining time; `None` (the request
    /// passes, uncounted) when the arithmetic finds no delay, as the Lua
    /// does.
    fn delay(&self, remaining: f64, rate: f64, count: f64) -> Option<f64> {
        if rate == 0.0 {
            return Some(remaining);
        }
        let delay = remaining - (self.limit as f64 - count) / rate;
        if delay > remaining {
            Some(remaining)
        } else if delay <= 0.0 || delay > self.seconds as f64 {
            None
        } else {
            Some(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Map(Mutex<HashMap<String, u64>>);

    impl Counters for Map {
        async fn get(&self, key: &str) -> io::Result<Option<u64>> {
            Ok(self.0.lock().unwrap().get(key).copied())
        }
        async fn incr(&self, key: &str, _: Duration) -> io::Result<u64> {
            let mut map = self.0.lock().unwrap();
            let value = map.entry(key.to_owned()).or_default();
            *value += 1;
            Ok(*value)
        }
    }

    async fn passed(window: Window, store: &Map, now: f64, n: usize) -> usize {
        let mut passed = 0;
        for _ in 0..n {
            if window.process(store, "k", now).await.unwrap().is_none() {
                passed += 1;
            }
        }
        passed
    }

    #[tokio::test]
    async fn the_first_window_admits_the_limit() {
        let window = Window {
            limit: 10,
            seconds: 2,
        };
        let store = Map::default();
        // Near the window's end the extrapolation adds little: the limit.
        assert_eq!(passed(window, &store, 1001.9, 15).await, 10);
        // Early in a window the count is extrapolated over what remains of
        // it: refused from about half the limit on, as the Lua does.
        let early = passed(window, &Map::default(), 1000.5, 15).await;
        assert!((5..10).contains(&early), "{early}");
    }

    #[tokio::test]
    async fn the_previous_window_weighs_in_for_what_it_still_covers() {
        let window = Window {
            limit: 10,
            seconds: 10,
        };
        let store = Map::default();
        assert_eq!(passed(window, &store, 1009.9, 10).await, 10);
        // Half-way through the next window, the last one's 10 requests
        // count for about half: some pass, fewer than 10.
        let later = passed(window, &store, 1015.3, 10).await;
        assert!((1..10).contains(&later), "{later}");
        // Two windows later the old counts no longer matter.
        assert_eq!(passed(window, &store, 1039.9, 12).await, 10);
    }

    #[tokio::test]
    async fn counts_from_other_replicas_refuse_at_once() {
        let window = Window {
            limit: 3,
            seconds: 60,
        };
        let store = Map::default();
        store.0.lock().unwrap().insert("k.16.counter".into(), 3);
        let refused = window.process(&store, "k", 1000.0).await.unwrap();
        assert_eq!(refused, Some(20.0));
    }
}
