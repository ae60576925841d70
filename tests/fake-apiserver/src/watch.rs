//! WATCH: a chunked stream of `{"type": ..., "object": ...}` lines.
//!
//! Without a resourceVersion (or with `0`) the stream starts with synthetic
//! ADDED events for the current objects; with one it replays the history
//! after it, or sends a single ERROR event (410 Expired) when that is
//! compacted away. Then live events, periodic BOOKMARKs when asked for, and
//! the end after `timeoutSeconds`. Selectors apply: an object that stops
//! matching is sent as DELETED, one that starts matching as ADDED.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, interval_at, sleep_until};

use crate::body::Body;
use crate::convert::to_served;
use crate::objects::meta_mut;
use crate::query::Query;
use crate::resources::{Res, ResourceType};
use crate::router::ResourcePath;
use crate::selectors::Selectors;
use crate::state::{Shared, WatchGuard, lock};
use crate::status::ApiError;
use crate::store::{Event, EventType};
use crate::table;
use crate::views::{View, partial};

/// One wire line.
#[derive(Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a Value,
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut out = serde_json::to_vec(&Line { kind, object }).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// Where a watch starts.
#[derive(Debug, Clone, Copy)]
enum Start {
    /// Current state as ADDED events.
    Now,
    /// Replay after this resourceVersion.
    After(u64),
}

/// A validated watch request.
#[derive(Debug)]
struct Watch {
    rt: Res,
    namespace: Option<String>,
    selectors: Selectors,
    start: Start,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Option<Duration>,
    /// How objects are sent (Tables for `kubectl get -w`, metadata only
    /// for metadata watches).
    view: View,
}

impl Watch {
    /// The wire line of an ADDED/MODIFIED/DELETED event.
    fn event(&self, kind: &str, stored: &Value) -> Bytes {
        let object = to_served(&self.rt, stored);
        match self.view {
            View::Full => line(kind, &object),
            View::Table => line(kind, &table::to_table(&self.rt, &object)),
            View::Metadata => line(kind, &partial(&object)),
        }
    }
}

/// Validates a watch request and starts its stream; errors found before the
/// stream starts are plain HTTP errors, as with the real server.
pub(crate) fn start(
    shared: Arc<Shared>,
    p: &ResourcePath,
    q: &Query,
    view: View,
) -> Result<Body, ApiError> {
    let selectors = Selectors::from_query(q)?;
    let send_initial = q.flag("sendInitialEvents");
    let start = match q.non_empty("resourceVersion") {
        None | Some("0") => Start::Now,
        Some(_) if send_initial => Start::Now,
        Some(v) => Start::After(v.parse().map_err(|_| {
            ApiError::bad_request(format!("invalid resourceVersion {v:?}: must be an integer"))
        })?),
    };
    let timeout = q
        .number("timeoutSeconds")
        .map_err(ApiError::bad_request)?
        .map(Duration::from_secs);
    let bookmarks = q.flag("allowWatchBookmarks");
    if send_initial && !bookmarks {
        return Err(ApiError::new(
            422,
            "Invalid",
            "sendInitialEvents requires allowWatchBookmarks=true",
        ));
    }
    let watch = Watch {
        rt: p.rt.clone(),
        namespace: p.namespace.clone().filter(|_| p.rt.namespaced),
        selectors,
        start,
        bookmarks,
        initial_events_end: send_initial,
        timeout,
        view,
    };
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(async move {
        let _guard = WatchGuard::new(&shared.active_watches);
        run(&shared, watch, tx).await;
    });
    Ok(Body::Stream(rx))
}

/// The BOOKMARK object: only kind, apiVersion and the resourceVersion.
fn bookmark(rt: &ResourceType, rv: u64, initial_events_end: bool) -> Value {
    let mut obj = json!({
        "kind": rt.kind,
        "apiVersion": rt.api_version(),
        "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null},
    });
    if initial_events_end {
        meta_mut(&mut obj).insert(
            "annotations".to_owned(),
            json!({"k8s.io/initial-events-end": "true"}),
        );
    }
    obj
}

/// The line for one stored event as this watch sees it, if any.
fn convert(w: &Watch, ev: &Event) -> Option<Bytes> {
    if ev.key.res != w.rt.storage || w.namespace.as_ref().is_some_and(|ns| *ns != ev.key.ns) {
        return None;
    }
    let matches = |o: &Value| w.selectors.matches(&to_served(&w.rt, o));
    let now = matches(&ev.object);
    match ev.kind {
        EventType::Added | EventType::Deleted => now.then(|| w.event(ev.kind.as_str(), &ev.object)),
        EventType::Modified => {
            let before = ev.prev.as_ref().is_some_and(|p| matches(p));
            match (before, now) {
                (true, true) => Some(w.event("MODIFIED", &ev.object)),
                (false, true) => Some(w.event("ADDED", &ev.object)),
                (true, false) => {
                    // Like the real watch cache: the last matching state,
                    // with the resourceVersion of the change.
                    let mut gone = ev.prev.as_deref().cloned().unwrap_or_default();
                    meta_mut(&mut gone)
                        .insert("resourceVersion".to_owned(), json!(ev.rv.to_string()));
                    Some(w.event("DELETED", &gone))
                }
                (false, false) => None,
            }
        }
    }
}

fn expired(rv: u64, floor: u64) -> Bytes {
    let status = ApiError::expired(format!("too old resource version: {rv} ({floor})")).to_status();
    line("ERROR", &status)
}

async fn run(shared: &Shared, w: Watch, tx: mpsc::Sender<Bytes>) {
    let mut cut = shared.cut.subscribe();
    let opened = {
        let store = lock(&shared.store);
        let changes = store.subscribe();
        match w.start {
            Start::After(rv) => match store.check_rv(rv) {
                Err(too_old) => Err(expired(rv, too_old.floor)),
                Ok(()) => Ok((changes, Vec::new(), rv.min(store.rv()))),
            },
            Start::Now => {
                let lines: Vec<Bytes> = store
                    .range(&w.rt.storage, w.namespace.as_deref(), None)
                    .filter(|(_, o)| w.selectors.matches(&to_served(&w.rt, o)))
                    .map(|(_, o)| w.event("ADDED", o))
                    .collect();
                Ok((changes, lines, store.rv()))
            }
        }
    };
    let (mut changes, initial, mut cursor) = match opened {
        Ok(opened) => opened,
        Err(error_line) => {
            let _ = tx.send(error_line).await;
            return;
        }
    };
    for l in initial {
        if tx.send(l).await.is_err() {
            return;
        }
    }
    if w.initial_events_end
        && tx
            .send(line("BOOKMARK", &bookmark(&w.rt, cursor, true)))
            .await
            .is_err()
    {
        return;
    }
    let deadline = w.timeout.map(|t| Instant::now() + t);
    let every = shared
        .options
        .bookmark_interval
        .max(Duration::from_millis(10));
    let mut ticks = interval_at(Instant::now() + every, every);
    loop {
        let batch = lock(&shared.store).events_after(cursor);
        let events = match batch {
            Ok(events) => events,
            Err(too_old) => {
                // This watch fell behind the bounded history.
                let _ = tx.send(expired(cursor, too_old.floor)).await;
                return;
            }
        };
        for ev in &events {
            cursor = ev.rv;
            if let Some(l) = convert(&w, ev)
                && tx.send(l).await.is_err()
            {
                return;
            }
        }
        tokio::select! {
            biased;
            _ = cut.changed() => return,
            () = tx.closed() => return,
            () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => return,
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ticks.tick(), if w.bookmarks => {
                if tx.send(line("BOOKMARK", &bookmark(&w.rt, cursor, false))).await.is_err() {
                    return;
                }
            }
        }
    }
}
