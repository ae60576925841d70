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
//!
//! Every wait is bounded: while a list is under way, each page must arrive
//! within the API call timeout, else the watcher starts over (a hung list
//! would otherwise keep the gateway unready, or a kind stale, for ever);
//! an open watch is ended by the API server after its `timeoutSeconds`
//! (290 s) and by kube-runtime's idle timeout if it goes silent.
//!
//! With `--sync-period`, each watcher also starts over that often: a fresh
//! list replaces the kind's objects, as ingress-nginx's informers
//! repopulate their stores.

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
/// is gone. The first complete list is marked `synced`. A list page must
/// come within `list_timeout`; with `resync` the watcher starts over that
/// often.
pub(crate) fn spawn<K>(
    kind: Kind,
    api: Api<K>,
    config: watcher::Config,
    list_timeout: Duration,
    resync: Option<Duration>,
    updates: Sender<SourceUpdate>,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    Object: From<K>,
{
    tokio::spawn(async move {
        let mut state = KindState::default();
        loop {
            let stream = watcher::watcher(api.clone(), config.clone())
                .backoff(CappedBackoff::default())
                .boxed();
            let resync_at = resync.map(|period| Instant::now() + period);
            match follow(kind, stream, list_timeout, resync_at, &mut state, &updates).await {
                Ended::Stop => return,
                Ended::ListTimedOut => {
                    tracing::warn!(%kind, timeout = ?list_timeout, "listing took longer than the API call timeout; listing again");
                }
                Ended::Resync => tracing::debug!(%kind, "sync period: listing again"),
            }
        }
    });
}

/// Why [`follow`] returned.
enum Ended {
    /// The reconciler is gone, or the stream ended.
    Stop,
    /// A page of a list did not come within the list timeout.
    ListTimedOut,
    /// The sync period passed.
    Resync,
}

/// Feeds the reconciler from one watcher stream until it must start over
/// or stop.
async fn follow<K>(
    kind: Kind,
    mut stream: futures::stream::BoxStream<'static, watcher::Result<Event<K>>>,
    list_timeout: Duration,
    resync_at: Option<Instant>,
    state: &mut KindState,
    updates: &Sender<SourceUpdate>,
) -> Ended
where
    Object: From<K>,
{
    state.listing = Some(Vec::new());
    let resync = async {
        match resync_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(resync);
    loop {
        let event = async {
            if state.listing.is_some() {
                tokio::time::timeout(list_timeout, stream.next())
                    .await
                    .map_err(|_| Ended::ListTimedOut)
            } else {
                Ok(stream.next().await)
            }
        };
        let next = tokio::select! {
            next = event => next,
            () = &mut resync => Err(Ended::Resync),
        };
        let next = match next {
            Ok(next) => next,
            Err(ended) => return ended,
        };
        let Some(event) = next else {
            return Ended::Stop;
        };
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
            return Ended::Stop;
        }
    }
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
    /// Objects of a list in progress (`Some` while listing).
    listing: Option<Vec<Object>>,
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
                self.listing = Some(Vec::new());
                return None;
            }
            Event::InitApply(object) => {
                self.listing
                    .get_or_insert_with(Vec::new)
                    .push(Object::from(object));
                return None;
            }
            Event::InitDone => {
                let listed = self.listing.take().unwrap_or_default();
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
