//! One kube-runtime watcher per kind, feeding the reconciler.
//!
//! A watcher lists, then watches from the list's resourceVersion; when the
//! watch ends or the version expires (410 Gone) it lists again. Every list
//! (`Init` … `InitDone`) is turned into a complete replacement of this
//! kind's objects: objects that vanished while the watch was down are
//! deleted, nothing is lost or duplicated. Errors back off exponentially
//! from 0.5 s, capped at [`BACKOFF_CAP`] (client-go and kube-runtime cap at
//! 30 s; for a proxy, stale endpoints cost more than a few extra requests),
//! and are logged once per state change, while the last table keeps serving.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::sync::mpsc::Sender;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::objects::{Kind, Object, ObjectKey};
use crate::reconcile::{Change, SourceUpdate};

/// The longest wait between two attempts to reach the API server.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Starts watching `api` with `config`, sending updates until the receiver
/// is gone. The first complete list is marked `synced`. With `resync`
/// (`--sync-period`), the watch is restarted that often: a fresh list
/// replaces the kind's objects, as ingress-nginx's informers repopulate
/// their stores.
pub(crate) fn spawn<K>(
    kind: Kind,
    api: Api<K>,
    config: watcher::Config,
    resync: Option<Duration>,
    updates: Sender<SourceUpdate>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    Object: From<K>,
{
    tokio::spawn(async move {
        let start = || {
            watcher::watcher(api.clone(), config.clone())
                .backoff(CappedBackoff::default())
                .boxed()
        };
        let mut stream = start();
        let mut state = KindState::default();
        let mut resync_timer = resync.map(|period| {
            let mut timer = tokio::time::interval_at(Instant::now() + period, period);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        loop {
            let next = match &mut resync_timer {
                Some(timer) => tokio::select! {
                    event = stream.next() => event,
                    _ = timer.tick() => {
                        tracing::debug!(%kind, "sync period: listing again");
                        stream = start();
                        continue;
                    }
                },
                None => stream.next().await,
            };
            let Some(event) = next else { break };
            let update = match event {
                Ok(event) => {
                    if state.failing {
                        tracing::info!(%kind, "watch recovered");
                        state.failing = false;
                    }
                    state.apply(event)
                }
                Err(error) => {
                    if !state.failing {
                        tracing::warn!(%kind, %error, "watch failed; retrying with backoff, the last configuration keeps serving");
                        state.failing = true;
                    }
                    None
                }
            };
            if let Some(update) = update
                && updates.send(update).is_err()
            {
                return;
            }
        }
    });
}

/// Exponential backoff from 0.5 s, doubling up to [`BACKOFF_CAP`], each
/// wait jittered by up to a quarter; reset by any successful event.
#[derive(Debug)]
struct CappedBackoff {
    next: Duration,
}

impl CappedBackoff {
    const FIRST: Duration = Duration::from_millis(500);
}

impl Default for CappedBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for CappedBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_CAP);
        let jitter = wait.mul_f64(fastrand::f64() / 4.0);
        Some(wait - jitter)
    }
}

impl Backoff for CappedBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// What one kind's watcher knows between events.
#[derive(Debug, Default)]
struct KindState {
    /// Keys of the objects sent so far (the reconciler holds them).
    known: BTreeSet<ObjectKey>,
    /// Objects of a list in progress.
    listing: Vec<Object>,
    /// Whether the first full list was sent.
    synced: bool,
    /// Whether the last event was an error (for logging state changes only).
    failing: bool,
}

impl KindState {
    /// Turns a watcher event into an update for the reconciler, if any.
    fn apply<K>(&mut self, event: Event<K>) -> Option<SourceUpdate>
    where
        Object: From<K>,
    {
        let changes = match event {
            Event::Init => {
                self.listing.clear();
                return None;
            }
            Event::InitApply(object) => {
                self.listing.push(Object::from(object));
                return None;
            }
            Event::InitDone => {
                let listed = std::mem::take(&mut self.listing);
                let keys: BTreeSet<ObjectKey> = listed.iter().map(Object::key).collect();
                let gone = self.known.difference(&keys).cloned().map(Change::Delete);
                let changes = gone.chain(listed.into_iter().map(Change::Apply)).collect();
                self.known = keys;
                let first = !self.synced;
                self.synced = true;
                return Some(SourceUpdate {
                    changes,
                    synced: first,
                });
            }
            Event::Apply(object) => {
                let object = Object::from(object);
                self.known.insert(object.key());
                vec![Change::Apply(object)]
            }
            Event::Delete(object) => {
                let key = Object::from(object).key();
                self.known.remove(&key);
                vec![Change::Delete(key)]
            }
        };
        Some(SourceUpdate {
            changes,
            synced: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Service;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn service(name: &str) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some("ns".to_owned()),
                ..ObjectMeta::default()
            },
            ..Service::default()
        }
    }

    fn summary(update: &SourceUpdate) -> Vec<String> {
        update
            .changes
            .iter()
            .map(|c| match c {
                Change::Apply(o) => format!("apply {}", o.key().id.name),
                Change::Delete(k) => format!("delete {}", k.id.name),
            })
            .collect()
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = CappedBackoff::default();
        let waits: Vec<Duration> = backoff.by_ref().take(6).collect();
        assert!(waits[0] <= Duration::from_millis(500) && waits[0] >= Duration::from_millis(375));
        assert!(waits[1] >= Duration::from_millis(750));
        assert!(waits.iter().all(|w| *w <= BACKOFF_CAP));
        assert!(waits[5] >= BACKOFF_CAP.mul_f64(0.75));
        backoff.reset();
        assert!(backoff.next().unwrap() <= Duration::from_millis(500));
    }

    #[test]
    fn a_relist_replaces_the_kind_and_only_the_first_is_synced() {
        let mut state = KindState::default();
        assert!(state.apply(Event::<Service>::Init).is_none());
        assert!(state.apply(Event::InitApply(service("a"))).is_none());
        assert!(state.apply(Event::InitApply(service("b"))).is_none());
        let first = state.apply(Event::<Service>::InitDone).unwrap();
        assert!(first.synced);
        assert_eq!(summary(&first), ["apply a", "apply b"]);

        let live = state.apply(Event::Apply(service("c"))).unwrap();
        assert!(!live.synced);
        assert_eq!(summary(&live), ["apply c"]);
        let gone = state.apply(Event::Delete(service("a"))).unwrap();
        assert_eq!(summary(&gone), ["delete a"]);

        // The watch expired; "b" vanished while it was down.
        state.apply(Event::<Service>::Init);
        state.apply(Event::InitApply(service("c")));
        state.apply(Event::InitApply(service("d")));
        let relist = state.apply(Event::<Service>::InitDone).unwrap();
        assert!(!relist.synced);
        assert_eq!(summary(&relist), ["delete b", "apply c", "apply d"]);
    }
}
