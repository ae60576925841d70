//! Cluster-wide rate limits: ingress-nginx's `global-rate-limit`,
//! `-window`, `-key` and `-ignored-cidrs` annotations, counted in a
//! memcached every replica shares (the ConfigMap's
//! `global-rate-limit-memcached-*`), refused with
//! `global-rate-limit-status-code` (429).
//!
//! As ingress-nginx's Lua (`global_throttle.lua` with
//! lua-resty-global-throttle):
//!
//! - the counters follow its sliding window ([`window`]), keyed on the
//!   Ingress's UID (dashes removed), the key's value and the window;
//! - a refusal is remembered on the replica for the delay the window
//!   computes, and later requests of that key are refused without asking
//!   the store (`$global_rate_limit_exceeding` is `c` for those, `y` for the
//!   others);
//! - the limit is off when no memcached host is set, when the limit or
//!   the window is 0, and for clients in the ignored CIDRs.
//!
//! Where ingress-nginx lets every request through when memcached fails,
//! here the same window is counted on the replica instead (so each
//! replica admits the limit on its own: a per-replica limit), and the
//! failure is counted in `edge_gateway_global_rate_limit_store_errors_total`;
//! the request is never answered with an error for it. After a failure the
//! store is left alone for [`BACKOFF`], so a dead memcached costs a
//! request at most one timeout per second per replica, not one each.

mod key;
mod local;
mod memcached;
mod window;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use tokio::time::Instant;

pub use key::KeyTemplate;
pub use memcached::MemcachedConfig;

use crate::policy::access::Cidr;
use crate::policy::external_auth::AuthRequest;
use local::{Decisions, LocalCounters};
use memcached::Memcached;
use window::{Counters, Window};

/// How long the store is left alone after it failed.
pub const BACKOFF: Duration = Duration::from_secs(1);

/// Keys whose encoded form is longer are hashed (memcached takes 250).
const MAX_KEY: usize = 200;

/// The store's failures and the replica's own decisions, counted where
/// the metrics registry reads them.
pub use crate::metrics::{
    GLOBAL_LIMIT_LOCAL_DECISIONS as LOCAL_DECISIONS, GLOBAL_LIMIT_STORE_ERRORS as STORE_ERRORS,
};

/// The shared store and the replica's own state for every global limit:
/// built from the ConfigMap, shared by the Ingresses' limits.
#[derive(Debug)]
pub struct GlobalStore {
    memcached: Memcached,
    /// `global-rate-limit-status-code`.
    status: StatusCode,
    decisions: Decisions,
    local: LocalCounters,
    /// Until when the store is skipped (after a failure).
    resting_until: std::sync::Mutex<Option<Instant>>,
}

impl GlobalStore {
    /// A store on the memcached `config` describes, refusing with `status`.
    pub fn new(config: MemcachedConfig, status: StatusCode) -> Self {
        Self {
            memcached: Memcached::new(config),
            status,
            decisions: Decisions::default(),
            local: LocalCounters::default(),
            resting_until: std::sync::Mutex::new(None),
        }
    }

    /// Where memcached is.
    pub fn config(&self) -> &MemcachedConfig {
        self.memcached.config()
    }

    /// The refusal status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn resting(&self) -> bool {
        let until = self
            .resting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        until.is_some_and(|t| Instant::now() < t)
    }

    fn failed(&self, error: &std::io::Error) {
        STORE_ERRORS.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%error, "global rate limit: memcached failed; counting on this replica for {BACKOFF:?}");
        *self
            .resting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + BACKOFF);
    }
}

impl Counters for Memcached {
    async fn get(&self, key: &str) -> std::io::Result<Option<u64>> {
        Memcached::get(self, key).await
    }
    async fn incr(&self, key: &str, expiry: Duration) -> std::io::Result<u64> {
        Memcached::incr(self, key, expiry).await
    }
}

/// One Ingress's global limit.
#[derive(Debug)]
pub struct GlobalLimit {
    /// The Ingress's UID without dashes (ingress-nginx's namespace for the
    /// counters).
    pub namespace: String,
    /// `global-rate-limit`: requests per window.
    pub limit: u64,
    /// `global-rate-limit-window`, in whole seconds.
    pub window_seconds: u64,
    /// `global-rate-limit-key` (`$remote_addr`).
    pub key: KeyTemplate,
    /// `global-rate-limit-ignored-cidrs`.
    pub ignored: Vec<Cidr>,
    /// The store, shared.
    pub store: Arc<GlobalStore>,
}

/// A request the limit refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    /// The answer (`global-rate-limit-status-code`).
    pub status: StatusCode,
    /// `$global_rate_limit_exceeding`: `y`, or `c` when a remembered
    /// refusal answered.
    pub exceeding: u8,
}

impl GlobalLimit {
    /// Counts `request` from `client`; `Err` when it is over the limit.
    pub async fn check(&self, request: &AuthRequest<'_>, client: IpAddr) -> Result<(), Limited> {
        if self.limit == 0
            || self.window_seconds == 0
            || self.ignored.iter().any(|c| c.contains(client))
        {
            return Ok(());
        }
        let mut value = self.key.render(request);
        if value.is_empty() {
            value = client.to_string();
        }
        let sample = store_key(&self.namespace, &value);
        let store = &self.store;
        if store.decisions.refused(&sample) {
            return Err(Limited {
                status: store.status,
                exceeding: b'c',
            });
        }
        let window = Window {
            limit: self.limit,
            seconds: self.window_seconds,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let decided = if store.resting() {
            None
        } else {
            match window.process(&store.memcached, &sample, now).await {
                Ok(decided) => Some(decided),
                Err(error) => {
                    store.failed(&error);
                    None
                }
            }
        };
        let delay = match decided {
            Some(delay) => delay,
            None => {
                LOCAL_DECISIONS.fetch_add(1, Ordering::Relaxed);
                // The local counters cannot fail.
                window
                    .process(&store.local, &sample, now)
                    .await
                    .unwrap_or(None)
            }
        };
        match delay {
            None => Ok(()),
            Some(delay) => {
                if delay > 0.001 {
                    store
                        .decisions
                        .remember(&sample, Duration::from_secs_f64(delay));
                }
                Err(Limited {
                    status: store.status,
                    exceeding: b'y',
                })
            }
        }
    }
}

/// The counters' key for `value` under `namespace`: URI-escaped as
/// lua-resty-memcached escapes keys, hashed when too long for memcached.
fn store_key(namespace: &str, value: &str) -> String {
    let mut key = String::with_capacity(namespace.len() + value.len() + 1);
    key.push_str(namespace);
    key.push('.');
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            key.push(char::from(b));
        } else {
            key.push_str(&format!("%{b:02X}"));
        }
    }
    if key.len() <= MAX_KEY {
        return key;
    }
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut hashed = String::with_capacity(namespace.len() + 70);
    hashed.push_str(namespace);
    hashed.push_str(".h");
    for b in digest {
        hashed.push_str(&format!("{b:02x}"));
    }
    hashed
}

#[cfg(test)]
mod tests;
