//! State shared by the server handle, the connections and the watches.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::resources::Kinds;
use crate::store::Store;

/// Settings of a [`crate::FakeApiServer`]; `Options::default()` is what
/// [`crate::FakeApiServer::start`] uses.
#[derive(Debug, Clone)]
pub struct Options {
    /// Port to bind on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// How often watches that asked for `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How many events the history keeps for watch replays; older ones are
    /// compacted away (watches from before them get 410 Gone).
    pub history_limit: usize,
    /// Whether creates through the API need the namespace to exist (as the
    /// real server's NamespaceLifecycle admission does). `default`,
    /// `kube-system`, `kube-public` and `kube-node-lease` always exist.
    pub require_namespaces: bool,
    /// Simulated pods: when set, the server plays the controllers a cluster
    /// runs (see the crate's README): Deployments, StatefulSets, DaemonSets,
    /// ReplicaSets and Jobs get ready pods at this address and a ready
    /// status, and Services with a selector get EndpointSlices listing the
    /// ready pods they select. `None` (the default): objects stay as written.
    pub pod_ip: Option<IpAddr>,
    /// Whether EndpointSlices may list loopback addresses (127.0.0.0/8,
    /// ::1). A real API server refuses them ("may not be in the loopback
    /// range"); tests point EndpointSlices at backends on 127.0.0.x, so the
    /// default is true.
    pub allow_loopback_endpoints: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 0,
            bookmark_interval: Duration::from_secs(1),
            history_limit: 10_000,
            require_namespaces: true,
            pod_ip: None,
            allow_loopback_endpoints: true,
        }
    }
}

/// One request the server received, for tests to assert on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// HTTP method (`GET`, `PATCH`, ...).
    pub method: String,
    /// Path as sent (`/api/v1/namespaces/default/secrets/tls`).
    pub path: String,
    /// Raw query string as sent (percent-encoded), `""` when none.
    pub query: String,
}

impl RecordedRequest {
    /// A decoded query parameter (`watch`, `labelSelector`, ...).
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::query::Query::parse(&self.query)
            .get(name)
            .map(str::to_owned)
    }

    /// Whether this request was a watch.
    pub fn is_watch(&self) -> bool {
        crate::query::Query::parse(&self.query).flag("watch") || self.path.contains("/watch/")
    }
}

/// Everything the tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    /// The kind table: built-in rows and those of the CRDs that exist.
    /// Written only while the store lock is held (lock order: store, then
    /// kinds).
    pub(crate) kinds: RwLock<Kinds>,
    pub(crate) requests: Mutex<Vec<RecordedRequest>>,
    pub(crate) unavailable: AtomicBool,
    pub(crate) active_watches: AtomicUsize,
    pub(crate) options: Options,
    /// Bumped to cut every open connection and watch.
    pub(crate) cut: watch::Sender<u64>,
    /// Requests to hold unanswered ([`crate::hang`]).
    pub(crate) hang: crate::hang::Hang,
}

impl Shared {
    pub(crate) fn new(options: Options) -> Self {
        Self {
            store: Mutex::new(Store::new(options.history_limit)),
            kinds: RwLock::new(Kinds::default()),
            requests: Mutex::new(Vec::new()),
            unavailable: AtomicBool::new(false),
            active_watches: AtomicUsize::new(0),
            options,
            cut: watch::Sender::new(0),
            hang: crate::hang::Hang::default(),
        }
    }

    /// Ends every open connection and watch stream.
    pub(crate) fn cut_all(&self) {
        self.cut.send_modify(|n| *n += 1);
    }

    /// Whether requests get 503.
    pub(crate) fn is_unavailable(&self) -> bool {
        self.unavailable.load(Ordering::SeqCst)
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge
/// the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a lock, ignoring poisoning.
pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

/// Writes a lock, ignoring poisoning.
pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Counts a running watch for as long as it lives.
#[derive(Debug)]
pub(crate) struct WatchGuard<'a>(&'a AtomicUsize);

impl<'a> WatchGuard<'a> {
    pub(crate) fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for WatchGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
