//! The decision cache (`auth-cache-key`, `auth-cache-duration`): how long
//! an auth response may be reused, as its own headers and the annotation
//! say, and the bounded per-route map of decisions, oldest first out.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use http::header::{CACHE_CONTROL, HeaderMap, SET_COOKIE, VARY};

use super::*;

/// What an auth response's own headers say about caching it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Freshness {
    /// `auth-cache-duration` decides.
    Default,
    /// The response says how long.
    For(Duration),
    /// The response may not be cached.
    Never,
}

impl Freshness {
    /// nginx's rules: `X-Accel-Expires` first, then `Cache-Control`
    /// (`no-store`, `no-cache`, `private`, `max-age`); `Set-Cookie` or
    /// `Vary: *` forbid caching.
    pub(super) fn of(headers: &HeaderMap) -> Freshness {
        if headers.contains_key(SET_COOKIE)
            || headers.get_all(VARY).iter().any(|v| {
                v.as_bytes()
                    .split(|b| *b == b',')
                    .any(|t| t.trim_ascii() == b"*")
            })
        {
            return Freshness::Never;
        }
        if let Some(seconds) = headers
            .get(&X_ACCEL_EXPIRES)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            return match seconds {
                0 => Freshness::Never,
                s => Freshness::For(Duration::from_secs(s)),
            };
        }
        let mut freshness = Freshness::Default;
        for directive in headers
            .get_all(CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let directive = directive.trim().to_ascii_lowercase();
            if matches!(directive.as_str(), "no-store" | "no-cache" | "private") {
                return Freshness::Never;
            }
            if let Some(seconds) = directive.strip_prefix("max-age=") {
                freshness = match seconds.trim_matches('"').parse::<u64>() {
                    Ok(0) | Err(_) => Freshness::Never,
                    Ok(s) => Freshness::For(Duration::from_secs(s)),
                };
            }
        }
        freshness
    }
}

/// Decisions per cache key, bounded, oldest evicted first.
#[derive(Debug)]
pub(super) struct AuthCache {
    pub(super) key: Template,
    pub(super) rules: Vec<CacheRule>,
    pub(super) entries: Mutex<CacheEntries>,
}

#[derive(Debug, Default)]
pub(super) struct CacheEntries {
    pub(super) by_key: HashMap<[u8; 32], CacheEntry>,
    /// Insertion sequence number to key, oldest first.
    pub(super) order: BTreeMap<u64, [u8; 32]>,
    pub(super) next: u64,
}

#[derive(Debug)]
pub(super) struct CacheEntry {
    pub(super) outcome: Arc<Outcome>,
    pub(super) expires: Instant,
    pub(super) sequence: u64,
}

impl AuthCache {
    /// How long an outcome may be reused: its status must be listed in
    /// `auth-cache-duration`, and its own headers may shorten, lengthen or
    /// forbid that (first matching rule wins, as in nginx).
    pub(super) fn ttl(&self, outcome: &Outcome) -> Option<Duration> {
        let status = outcome.status.as_u16();
        let rule = self.rules.iter().find(|rule| {
            rule.statuses
                .as_ref()
                .is_none_or(|codes| codes.contains(&status))
        })?;
        match outcome.freshness {
            Freshness::Never => None,
            Freshness::For(ttl) => Some(ttl),
            Freshness::Default => Some(rule.ttl).filter(|ttl| !ttl.is_zero()),
        }
    }

    pub(super) fn get(&self, key: &[u8; 32]) -> Option<Arc<Outcome>> {
        let mut entries = self.lock();
        let entry = entries.by_key.get(key)?;
        if entry.expires > Instant::now() {
            return Some(entry.outcome.clone());
        }
        let sequence = entry.sequence;
        entries.by_key.remove(key);
        entries.order.remove(&sequence);
        None
    }

    pub(super) fn insert(&self, key: [u8; 32], outcome: &Arc<Outcome>) {
        let Some(ttl) = self.ttl(outcome) else {
            return;
        };
        let Some(expires) = Instant::now().checked_add(ttl) else {
            return;
        };
        let mut entries = self.lock();
        let sequence = entries.next;
        entries.next += 1;
        let entry = CacheEntry {
            outcome: outcome.clone(),
            expires,
            sequence,
        };
        if let Some(old) = entries.by_key.insert(key, entry) {
            entries.order.remove(&old.sequence);
        }
        entries.order.insert(sequence, key);
        while entries.by_key.len() > CACHE_ENTRIES {
            let Some((_, oldest)) = entries.order.pop_first() else {
                break;
            };
            entries.by_key.remove(&oldest);
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, CacheEntries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
