//! Per-client rate limits: ingress-nginx's `limit-rps`, `limit-rpm`,
//! `limit-connections`, `limit-burst-multiplier` and `limit-whitelist`
//! annotations, with the ConfigMap's `limit-req-status-code` and
//! `limit-conn-status-code`.
//!
//! ingress-nginx renders them as nginx `limit_req zone=… burst=<limit ×
//! multiplier> nodelay` (one zone for rps, one for rpm) and `limit_conn`,
//! keyed on the client address, in zones of 5 MB per Ingress, counted per
//! replica. [`RateLimiter`] reproduces nginx's arithmetic
//! (`ngx_http_limit_req_module.c`):
//!
//! - a leaky bucket per address and limit, in thousandths of a request:
//!   each request adds 1000, the bucket leaks `rate` per second, and a
//!   request that would take it over `burst × 1000` is refused at once
//!   (`nodelay`: nothing is queued). An address seen for the first time
//!   starts empty, so `burst + 1` requests pass at once;
//! - the request is charged to the rps and rpm buckets only if both admit
//!   it (nginx checks every `limit_req` of a location before charging any);
//! - the rpm rate is `rpm × 1000 / 60` thousandths per second, rounded down,
//!   as nginx stores `r/m` rates;
//! - `limit_conn` counts requests in progress per address; the count is
//!   held by a [`ConnectionPermit`] until the response ends.
//!
//! Order: nginx runs its `limit_req` handler before `limit_conn` (both are
//! pre-access handlers, run in reverse module order), so a request refused
//! by the connection limit has been charged to the rate buckets, and when
//! both would refuse, the client sees `limit-req-status-code`. ingress-nginx's
//! documentation lists the order as connections, rpm, rps; the outcome of
//! the two request limits does not depend on their order.
//!
//! Memory is bounded: at most [`LimitConfig::max_addresses`] addresses per
//! limiter (100k by default; nginx's 5 MB zone holds about 40k). The map is
//! split in shards by address hash, each behind its own mutex held for a
//! few map operations, so requests from different addresses rarely wait
//! for each other. When a shard is full, addresses whose buckets have
//! drained and that hold no connection are dropped (losing nothing: a new
//! address starts empty), then, if that freed too little, the stalest
//! eighth of the shard, as nginx drops its least recently used states.
//! A flood from random addresses therefore costs a bounded map and evicts
//! idle addresses first, never those with requests in progress.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::StatusCode;
use tokio::time::Instant;

use super::access::Cidr;

/// `limit-burst-multiplier` default: a burst of five times the rate.
pub const DEFAULT_BURST_MULTIPLIER: u32 = 5;

/// Default bound on the addresses one limiter tracks.
pub const DEFAULT_MAX_ADDRESSES: usize = 100_000;

/// Shards of the address map; a power of two well above the core count of
/// a typical gateway pod.
const SHARDS: usize = 32;

/// One thousandth of a request: nginx's unit for bucket levels and rates.
const REQUEST: i64 = 1000;

/// What a location's limits are, from its annotations and the ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitConfig {
    /// `limit-rps`: requests per second per address; 0 is off.
    pub rps: u32,
    /// `limit-rpm`: requests per minute per address; 0 is off.
    pub rpm: u32,
    /// `limit-connections`: requests in progress per address; 0 is off.
    pub connections: u32,
    /// `limit-burst-multiplier` (default 5): the burst of each request limit
    /// is the limit times this.
    pub burst_multiplier: u32,
    /// `limit-whitelist`: addresses never limited.
    pub whitelist: Vec<Cidr>,
    /// `limit-req-status-code` (default 503): the answer when rps or rpm
    /// refuses.
    pub req_status: StatusCode,
    /// `limit-conn-status-code` (default 503): the answer when
    /// `limit-connections` refuses.
    pub conn_status: StatusCode,
    /// At most this many addresses are tracked (default 100k).
    pub max_addresses: usize,
}

impl Default for LimitConfig {
    /// No limit, ingress-nginx's defaults for the rest.
    fn default() -> Self {
        Self {
            rps: 0,
            rpm: 0,
            connections: 0,
            burst_multiplier: DEFAULT_BURST_MULTIPLIER,
            whitelist: Vec::new(),
            req_status: StatusCode::SERVICE_UNAVAILABLE,
            conn_status: StatusCode::SERVICE_UNAVAILABLE,
            max_addresses: DEFAULT_MAX_ADDRESSES,
        }
    }
}

impl LimitConfig {
    /// Whether any limit is on; a limiter for a config without one admits
    /// every request without touching its map.
    pub fn is_active(&self) -> bool {
        self.rps > 0 || self.rpm > 0 || self.connections > 0
    }
}

/// A request limit in nginx's fixed point: `rate` thousandths of a request
/// per second, `burst` in thousandths of a request.
#[derive(Clone, Copy, Debug)]
struct Rate {
    rate: i64,
    burst: i64,
}

impl Rate {
    fn new(per_period: u32, seconds: i64, multiplier: u32) -> Option<Self> {
        (per_period > 0).then(|| Self {
            rate: i64::from(per_period) * REQUEST / seconds,
            burst: i64::from(per_period)
                .saturating_mul(i64::from(multiplier))
                .saturating_mul(REQUEST),
        })
    }

    /// The bucket's level after leaking until `now`, before this request;
    /// zero or less means drained.
    fn leaked(self, bucket: Bucket, now: u64) -> i64 {
        let ms = i64::try_from(now.saturating_sub(bucket.last)).unwrap_or(i64::MAX);
        bucket.excess - self.rate.saturating_mul(ms) / 1000
    }

    /// The level with this request added, or `None` if that is over the
    /// burst (nginx: `excess = max(0, excess - rate * ms / 1000 + 1000)`).
    fn charge(self, bucket: Bucket, now: u64) -> Option<i64> {
        let excess = self.leaked(bucket, now).saturating_add(REQUEST).max(0);
        (excess <= self.burst).then_some(excess)
    }
}

/// One address's bucket for one request limit.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Thousandths of a request above the steady rate.
    excess: i64,
    /// Milliseconds (since the limiter's epoch) of the last admitted request.
    last: u64,
}

/// What a limiter remembers about one address.
#[derive(Clone, Copy, Debug)]
struct Entry {
    rps: Bucket,
    rpm: Bucket,
    /// Requests in progress (only counted when `limit-connections` is on).
    conns: u32,
    /// Milliseconds of the last request, admitted or not: the staleness
    /// eviction goes by.
    touched: u64,
}

type Map = HashMap<IpAddr, Entry, RandomState>;

/// A shard on its own cache line, so that shards locked by different cores
/// do not share one.
#[repr(align(64))]
struct Shard(Mutex<Map>);

impl Shard {
    fn lock(&self) -> MutexGuard<'_, Map> {
        // Nothing panics while the lock is held; should it, the map is still
        // consistent (every update is a plain store), so keep using it.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Inner {
    rps: Option<Rate>,
    rpm: Option<Rate>,
    connections: u32,
    whitelist: Vec<Cidr>,
    req_status: StatusCode,
    conn_status: StatusCode,
    shard_capacity: usize,
    epoch: Instant,
    hasher: RandomState,
    shards: Box<[Shard]>,
}

impl Inner {
    fn now(&self) -> u64 {
        let elapsed = Instant::now().saturating_duration_since(self.epoch);
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, client: IpAddr) -> usize {
        // Low bits of a keyed hash: a client cannot aim at one shard.
        (self.hasher.hash_one(client) % SHARDS as u64) as usize
    }

    /// Whether forgetting the entry changes nothing: no request in
    /// progress and every bucket drained (nginx's expiry test).
    fn idle(&self, entry: &Entry, now: u64) -> bool {
        entry.conns == 0
            && self.rps.is_none_or(|r| r.leaked(entry.rps, now) <= 0)
            && self.rpm.is_none_or(|r| r.leaked(entry.rpm, now) <= 0)
    }

    /// Frees room in a full shard: drops idle entries, then, if fewer than
    /// an eighth went, the stalest entries without connections until an
    /// eighth of the shard is free. Runs once per eighth of a shard of new
    /// addresses, so its cost per request is a few entries.
    fn make_room(&self, map: &mut Map, now: u64) {
        map.retain(|_, entry| !self.idle(entry, now));
        let target = self.shard_capacity - (self.shard_capacity / 8).max(1);
        if map.len() <= target {
            return;
        }
        let mut evictable: Vec<u64> = map
            .values()
            .filter(|entry| entry.conns == 0)
            .map(|entry| entry.touched)
            .collect();
        let wanted = (map.len() - target).min(evictable.len());
        if wanted == 0 {
            return;
        }
        let (_, &mut threshold, _) = evictable.select_nth_unstable(wanted - 1);
        // Everything older than the threshold goes; ties only while needed.
        let mut at_threshold = wanted
            - evictable[..wanted]
                .iter()
                .filter(|t| **t < threshold)
                .count();
        map.retain(|_, entry| {
            if entry.conns > 0 || entry.touched > threshold {
                return true;
            }
            if entry.touched < threshold {
                return false;
            }
            if at_threshold > 0 {
                at_threshold -= 1;
                return false;
            }
            true
        });
    }
}

/// The rate limits of one Ingress: one per Ingress (ingress-nginx's zones
/// are named after the Ingress and shared by all its paths), cheap to clone
/// and shared by every route of it. Keep the same limiter across table
/// rebuilds while its config is unchanged, as nginx keeps a zone's state
/// across reloads.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Arc<Inner>,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("RateLimiter")
            .field("rps", &inner.rps)
            .field("rpm", &inner.rpm)
            .field("connections", &inner.connections)
            .field("whitelist", &inner.whitelist)
            .field("tracked", &self.tracked())
            .finish()
    }
}

impl RateLimiter {
    /// A limiter enforcing `config`, with no address seen yet. Its clock
    /// is tokio's, so tests can pause time.
    pub fn new(config: LimitConfig) -> Self {
        let active = config.is_active();
        let shard_capacity = (config.max_addresses / SHARDS).max(1);
        let shards = if active { SHARDS } else { 0 };
        let inner = Inner {
            rps: Rate::new(config.rps, 1, config.burst_multiplier),
            rpm: Rate::new(config.rpm, 60, config.burst_multiplier),
            connections: config.connections,
            whitelist: config.whitelist,
            req_status: config.req_status,
            conn_status: config.conn_status,
            shard_capacity,
            epoch: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..shards)
                .map(|_| Shard(Mutex::new(Map::default())))
                .collect(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Admits or refuses one request from `client`: `Ok(None)` to go on
    /// (no connection limit, or a whitelisted client), `Ok(Some(permit))`
    /// to go on holding one of the client's connections until the permit
    /// is dropped (keep it with the response body until it ends), or the
    /// status to answer with (`limit-req-status-code` or
    /// `limit-conn-status-code`).
    pub fn check(&self, client: IpAddr) -> Result<Option<ConnectionPermit>, StatusCode> {
        let inner = &self.inner;
        if inner.shards.is_empty() {
            return Ok(None);
        }
        let client = client.to_canonical();
        if inner.whitelist.iter().any(|cidr| cidr.contains(client)) {
            return Ok(None);
        }
        let now = inner.now();
        let shard = inner.shard(client);
        let Some(slot) = inner.shards.get(shard) else {
            return Ok(None);
        };
        let mut map = slot.lock();
        if let Some(entry) = map.get_mut(&client) {
            entry.touched = now;
            // Check every request limit first, then charge them all.
            let rps = match inner.rps {
                Some(rate) => Some(rate.charge(entry.rps, now).ok_or(inner.req_status)?),
                None => None,
            };
            let rpm = match inner.rpm {
                Some(rate) => Some(rate.charge(entry.rpm, now).ok_or(inner.req_status)?),
                None => None,
            };
            if let Some(excess) = rps {
                entry.rps = Bucket { excess, last: now };
            }
            if let Some(excess) = rpm {
                entry.rpm = Bucket { excess, last: now };
            }
        } else {
            if map.len() >= inner.shard_capacity {
                inner.make_room(&mut map, now);
                if map.len() >= inner.shard_capacity {
                    // Every tracked address has requests in progress; nginx
                    // answers from an exhausted zone with the limit's status.
                    return Err(inner.conn_status);
                }
            }
            // A new address starts with empty buckets (nginx: excess 0).
            let fresh = Bucket {
                excess: 0,
                last: now,
            };
            let entry = Entry {
                rps: fresh,
                rpm: fresh,
                conns: 0,
                touched: now,
            };
            map.insert(client, entry);
        }
        if inner.connections == 0 {
            return Ok(None);
        }
        let Some(entry) = map.get_mut(&client) else {
            return Ok(None);
        };
        if entry.conns >= inner.connections {
            return Err(inner.conn_status);
        }
        entry.conns += 1;
        drop(map);
        Ok(Some(ConnectionPermit {
            inner: Arc::clone(&self.inner),
            client,
            shard,
        }))
    }

    /// How many addresses the limiter tracks now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.inner.shards.iter().map(|s| s.lock().len()).sum()
    }

    #[cfg(test)]
    fn is_tracked(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        let shard = self.inner.shard(client);
        self.inner.shards[shard].lock().contains_key(&client)
    }
}

/// One request in progress counted against its client's
/// `limit-connections`; dropping it ends the count. Keep it alive until
/// the response body has been sent (nginx releases the count when the
/// request is finalised).
#[must_use = "dropping the permit ends the request's connection count at once"]
pub struct ConnectionPermit {
    inner: Arc<Inner>,
    client: IpAddr,
    shard: usize,
}

impl fmt::Debug for ConnectionPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionPermit")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let inner = &self.inner;
        let Some(slot) = inner.shards.get(self.shard) else {
            return;
        };
        let mut map = slot.lock();
        let Some(entry) = map.get_mut(&self.client) else {
            return;
        };
        entry.conns = entry.conns.saturating_sub(1);
        if entry.conns == 0 && inner.rps.is_none() && inner.rpm.is_none() {
            // Nothing else to remember about this address.
            map.remove(&self.client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::time::Duration;
    use tokio::time::advance;

    const CLIENT: &str = "10.1.2.3";

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn admitted(limiter: &RateLimiter, client: &str, n: usize) -> usize {
        (0..n).filter(|_| limiter.check(ip(client)).is_ok()).count()
    }

    #[tokio::test(start_paused = true)]
    async fn rps_burst_then_refuse_then_refill() {
        let limiter = RateLimiter::new(LimitConfig {
            rps: 2,
            ..LimitConfig::default()
        });
        // burst = 2 × 5 = 10: a new address gets burst + 1 at once.
        assert_eq!(admitted(&limiter, CLIENT, 11), 11);
        assert_eq!(
            limiter.check(ip(CLIENT)).unwrap_err(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // Another address has its own bucket.
        assert!(limiter.check(ip("10.1.2.4")).is_ok());
        // Half a second leaks one request at 2 r/s.
        advance(Duration::from_millis(499)).await;
        assert!(limiter.check(ip(CLIENT)).is_err());
        advance(Duration::from_millis(1)).await;
        assert!(limiter.check(ip(CLIENT)).is_ok());
        assert!(limiter.check(ip(CLIENT)).is_err());
        // Refused requests were not charged: the steady rate still passes.
        for _ in 0..5 {
            advance(Duration::from_millis(500)).await;
            assert!(limiter.check(ip(CLIENT)).is_ok());
            assert!(limiter.check(ip(CLIENT)).is_err());
        }
        // Fully drained after burst / rate: the whole burst again.
        advance(Duration::from_secs(6)).await;
        assert_eq!(admitted(&limiter, CLIENT, 20), 11);
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_limits_per_minute() {
        let limiter = RateLimiter::new(LimitConfig {
            rpm: 6,
            burst_multiplier: 1,
            req_status: StatusCode::TOO_MANY_REQUESTS,
            ..LimitConfig::default()
        });
        assert_eq!(admitted(&limiter, CLIENT, 7), 7);
        assert_eq!(
            limiter.check(ip(CLIENT)).unwrap_err(),
            StatusCode::TOO_MANY_REQUESTS
        );
        // 6 r/m leaks one request per 10 s.
        advance(Duration::from_millis(9_999)).await;
        assert!(limiter.check(ip(CLIENT)).is_err());
        advance(Duration::from_millis(1)).await;
        assert!(limiter.check(ip(CLIENT)).is_ok());
        assert!(limiter.check(ip(CLIENT)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn rpm_rate_rounds_down_like_nginx() {
        // 1 r/m is stored as 1000 / 60 = 16 thousandths per second, so a
        // request leaks out after 62.5 s, not 60 s.
        let limiter = RateLimiter::new(LimitConfig {
            rpm: 1,
            burst_multiplier: 1,
            ..LimitConfig::default()
        });
        assert_eq!(admitted(&limiter, CLIENT, 3), 2);
        advance(Duration::from_secs(61)).await;
        assert!(limiter.check(ip(CLIENT)).is_err());
        advance(Duration::from_millis(1_500)).await;
        assert!(limiter.check(ip(CLIENT)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn both_request_limits_apply() {
        let limiter = RateLimiter::new(LimitConfig {
            rps: 10,
            rpm: 2,
            burst_multiplier: 1,
            ..LimitConfig::default()
        });
        // rpm's burst of 2 is the tighter: three pass, then rpm refuses.
        assert_eq!(admitted(&limiter, CLIENT, 10), 3);
        // 2 r/m is 2000 / 60 = 33 thousandths per second: one request
        // leaks out after 30.3 s.
        advance(Duration::from_secs(30)).await;
        assert!(limiter.check(ip(CLIENT)).is_err());
        advance(Duration::from_secs(1)).await;
        assert!(limiter.check(ip(CLIENT)).is_ok());
        assert!(limiter.check(ip(CLIENT)).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_request_is_charged_to_no_limit() {
        let limiter = RateLimiter::new(LimitConfig {
            rps: 1,
            rpm: 120,
            burst_multiplier: 1,
            ..LimitConfig::default()
        });
        // rps admits two, then refuses the rest; had the refused ones been
        // charged to the rpm bucket (burst 120), it would be full for
        // minutes.
        assert_eq!(admitted(&limiter, CLIENT, 1000), 2);
        advance(Duration::from_secs(1)).await;
        assert!(limiter.check(ip(CLIENT)).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn burst_multiplier_zero_allows_the_steady_rate_only() {
        let limiter = RateLimiter::new(LimitConfig {
            rps: 1,
            burst_multiplier: 0,
            ..LimitConfig::default()
        });
        assert_eq!(admitted(&limiter, CLIENT, 5), 1);
        advance(Duration::from_secs(1)).await;
        assert_eq!(admitted(&limiter, CLIENT, 5), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn connection_permits_count_requests_in_progress() {
        let limiter = RateLimiter::new(LimitConfig {
            connections: 2,
            conn_status: StatusCode::TOO_MANY_REQUESTS,
            ..LimitConfig::default()
        });
        let first = limiter.check(ip(CLIENT)).unwrap().expect("a permit");
        let second = limiter.check(ip(CLIENT)).unwrap().expect("a permit");
        assert_eq!(
            limiter.check(ip(CLIENT)).unwrap_err(),
            StatusCode::TOO_MANY_REQUESTS
        );
        // Mapped form of the same client shares the count.
        assert!(limiter.check(ip("::ffff:10.1.2.3")).is_err());
        assert!(limiter.check(ip("10.9.9.9")).unwrap().is_some());
        drop(first);
        let third = limiter.check(ip(CLIENT)).unwrap();
        assert!(third.is_some());
        drop((second, third));
        // Without request limits nothing is left to remember.
        assert_eq!(limiter.tracked(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn request_limits_run_before_the_connection_limit() {
        let limiter = RateLimiter::new(LimitConfig {
            rps: 1,
            burst_multiplier: 1,
            connections: 1,
            req_status: StatusCode::TOO_MANY_REQUESTS,
            conn_status: StatusCode::SERVICE_UNAVAILABLE,
            ..LimitConfig::default()
        });
        let held = limiter.check(ip(CLIENT)).unwrap();
        assert!(held.is_some());
        // rps admits (burst 1), the connection limit refuses; the request
        // was charged to the rps bucket all the same, as in nginx ...
        assert_eq!(
            limiter.check(ip(CLIENT)).unwrap_err(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // ... so the next one is refused by rps, with its status.
        assert_eq!(
            limiter.check(ip(CLIENT)).unwrap_err(),
            StatusCode::TOO_MANY_REQUESTS
        );
        drop(held);
        advance(Duration::from_secs(1)).await;
        assert!(limiter.check(ip(CLIENT)).unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn whitelist_bypasses_every_limit() {
        let limiter = RateLimiter::new(LimitConfig {
            rps: 1,
            connections: 1,
            whitelist: crate::policy::access::parse_cidrs("10.0.0.0/8, 2001:db8::/32").unwrap(),
            ..LimitConfig::default()
        });
        for client in [CLIENT, "::ffff:10.0.0.1", "2001:db8::7"] {
            for _ in 0..100 {
                assert!(matches!(limiter.check(ip(client)), Ok(None)), "{client}");
            }
        }
        assert_eq!(limiter.tracked(), 0);
        assert!(limiter.check(ip("11.0.0.1")).unwrap().is_some());
    }

    #[test]
    fn no_limit_admits_everything_without_state() {
        let limiter = RateLimiter::new(LimitConfig::default());
        assert!(!LimitConfig::default().is_active());
        for n in 0..1000u32 {
            assert!(matches!(
                limiter.check(IpAddr::from(n.to_be_bytes())),
                Ok(None)
            ));
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_random_addresses() {
        let max = 10_000;
        let limiter = RateLimiter::new(LimitConfig {
            rps: 1,
            max_addresses: max,
            ..LimitConfig::default()
        });
        let mut rng = fastrand::Rng::with_seed(7);
        for n in 0..1_000_000u32 {
            let client = if n % 2 == 0 {
                IpAddr::from(rng.u32(..).to_be_bytes())
            } else {
                IpAddr::from(rng.u128(..).to_be_bytes())
            };
            // Two requests each, so that no bucket is drained and the
            // stalest addresses have to be evicted.
            assert!(limiter.check(client).is_ok());
            assert!(limiter.check(client).is_ok());
            if n % 100_000 == 0 {
                assert!(limiter.tracked() <= max);
            }
        }
        let tracked = limiter.tracked();
        assert!(tracked <= max, "{tracked} addresses tracked");
        assert!(tracked > max / 2, "{tracked} addresses tracked");
    }

    #[tokio::test(start_paused = true)]
    async fn stalest_and_drained_addresses_go_first() {
        let max = SHARDS * 16;
        let limiter = RateLimiter::new(LimitConfig {
            rps: 1,
            max_addresses: max,
            ..LimitConfig::default()
        });
        // A client that keeps coming back, refused by its full bucket,
        // through a flood from random addresses.
        let regular = ip("192.0.2.1");
        assert_eq!(admitted(&limiter, "192.0.2.1", 10), 6);
        let mut rng = fastrand::Rng::with_seed(11);
        let mut random = move || IpAddr::from(rng.u128(..).to_be_bytes());
        for _ in 0..200 {
            for _ in 0..100 {
                let client = random();
                assert!(limiter.check(client).is_ok());
                assert!(limiter.check(client).is_ok());
            }
            advance(Duration::from_millis(1)).await;
            assert!(limiter.check(regular).is_err(), "its bucket survived");
            assert!(limiter.tracked() <= max);
        }
        assert!(limiter.is_tracked(regular));
        // Once everything has drained, new addresses take the place of
        // drained ones.
        advance(Duration::from_secs(10)).await;
        for _ in 0..1000 {
            assert!(limiter.check(random()).is_ok());
        }
        assert!(limiter.tracked() <= max);
        assert!(limiter.check(regular).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn addresses_with_open_requests_are_never_evicted() {
        let limiter = RateLimiter::new(LimitConfig {
            connections: 1,
            rps: 100,
            max_addresses: SHARDS,
            ..LimitConfig::default()
        });
        let holder = ip("198.51.100.7");
        let permit = limiter.check(holder).unwrap();
        assert!(permit.is_some());
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..10_000 {
            let _ = limiter.check(IpAddr::from(rng.u32(..).to_be_bytes()));
            advance(Duration::from_millis(1)).await;
        }
        assert!(limiter.is_tracked(holder));
        assert!(limiter.check(holder).is_err(), "its count survived");
        drop(permit);
        assert!(limiter.check(holder).unwrap().is_some());
    }

    #[test]
    fn concurrent_requests_from_many_threads() {
        let limiter = RateLimiter::new(LimitConfig {
            connections: 50,
            ..LimitConfig::default()
        });
        let threads = 8;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let limiter = limiter.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    barrier.wait();
                    // Contend on one address, holding what is admitted ...
                    let held: Vec<ConnectionPermit> = (0..20)
                        .filter_map(|_| limiter.check(ip(CLIENT)).ok().flatten())
                        .collect();
                    barrier.wait();
                    // ... and churn through many others.
                    let mut rng = fastrand::Rng::with_seed(t as u64);
                    for _ in 0..20_000 {
                        let client = IpAddr::from(rng.u32(..).to_be_bytes());
                        let permit = limiter.check(client);
                        assert!(matches!(permit, Ok(Some(_))));
                    }
                    held.len()
                })
            })
            .collect();
        let admitted: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(admitted, 50, "exactly the limit was admitted");
        // Every permit has been dropped with its thread.
        assert_eq!(limiter.tracked(), 0);
        assert!(limiter.check(ip(CLIENT)).unwrap().is_some());
    }
}
