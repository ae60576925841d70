//! The in-memory object store: objects by (resource, namespace, name), the
//! global resourceVersion counter, the bounded event history watches replay
//! from, and the compaction point below which resourceVersions are "too old".

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::objects::meta_mut;

/// Where an object lives: resource index, namespace (`""` for cluster-scoped)
/// and name. Ordered like etcd keys, so lists come out sorted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    /// The resource's storage key ([`crate::resources::ResourceType::storage`]).
    pub(crate) res: Arc<str>,
    pub(crate) ns: String,
    pub(crate) name: String,
}

/// A watch event type as it goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The wire name (`ADDED`, ...).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, kept in the history for watches.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) key: Key,
    pub(crate) kind: EventType,
    /// The object after the change (for DELETED: the last state, with the
    /// deletion's resourceVersion).
    pub(crate) object: Arc<Value>,
    /// The object before the change (MODIFIED only), so selector watches can
    /// tell an object that stopped matching.
    pub(crate) prev: Option<Arc<Value>>,
}

/// Why a resourceVersion cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooOld {
    /// The oldest resourceVersion still served.
    pub(crate) floor: u64,
}

/// The store. Always used under the server's mutex, never across an await.
#[derive(Debug)]
pub(crate) struct Store {
    rv: u64,
    objects: BTreeMap<Key, Arc<Value>>,
    history: VecDeque<Event>,
    history_limit: usize,
    /// ResourceVersions below this are too old for watches and exact lists.
    floor: u64,
    notify: watch::Sender<u64>,
}

impl Store {
    /// An empty store keeping at most `history_limit` events.
    pub(crate) fn new(history_limit: usize) -> Self {
        let start = 100;
        Self {
            rv: start,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            floor: start,
            notify: watch::Sender::new(start),
        }
    }

    /// The current (latest) resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    /// A receiver that wakes whenever the resourceVersion moves.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.notify.subscribe()
    }

    /// The object at `key`.
    pub(crate) fn get(&self, key: &Key) -> Option<&Arc<Value>> {
        self.objects.get(key)
    }

    /// Every object, in key order.
    pub(crate) fn all(&self) -> impl Iterator<Item = (&Key, &Arc<Value>)> {
        self.objects.iter()
    }

    /// Objects of one resource, in key order, optionally of one namespace,
    /// starting strictly after `after` (paging).
    pub(crate) fn range<'a>(
        &'a self,
        res: &'a Arc<str>,
        ns: Option<&'a str>,
        after: Option<&'a Key>,
    ) -> impl Iterator<Item = (&'a Key, &'a Arc<Value>)> + 'a {
        let start = Key {
            res: Arc::clone(res),
            ns: ns.unwrap_or("").to_owned(),
            name: String::new(),
        };
        let from = match after {
            Some(a) if *a >= start => a.clone(),
            _ => start,
        };
        self.objects
            .range(from..)
            .skip_while(move |(k, _)| after.is_some_and(|a| *k <= a))
            .take_while(move |(k, _)| k.res == *res && ns.is_none_or(|n| k.ns == n))
    }

    /// Stores an object (create or replace), giving it the next
    /// resourceVersion and recording ADDED or MODIFIED.
    pub(crate) fn put(&mut self, key: Key, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".to_owned(), json!(self.rv.to_string()));
        let obj = Arc::new(obj);
        let prev = self.objects.insert(key.clone(), Arc::clone(&obj));
        let kind = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv: self.rv,
            key,
            kind,
            object: Arc::clone(&obj),
            prev,
        });
        obj
    }

    /// Removes an object, recording DELETED with a new resourceVersion; the
    /// returned object carries that resourceVersion.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<Arc<Value>> {
        let old = self.objects.remove(key)?;
        self.rv += 1;
        let mut last = (*old).clone();
        meta_mut(&mut last).insert("resourceVersion".to_owned(), json!(self.rv.to_string()));
        let last = Arc::new(last);
        self.record(Event {
            rv: self.rv,
            key: key.clone(),
            kind: EventType::Deleted,
            object: Arc::clone(&last),
            prev: Some(old),
        });
        Some(last)
    }

    fn record(&mut self, event: Event) {
        self.history.push_back(event);
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.floor = self.floor.max(dropped.rv);
            }
        }
        self.notify.send_replace(self.rv);
    }

    /// Forgets the history: every resourceVersion older than the current one
    /// becomes too old (410 Gone for watches and exact lists).
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.floor = self.rv;
    }

    /// Checks that `rv` is recent enough to replay from.
    pub(crate) fn check_rv(&self, rv: u64) -> Result<(), TooOld> {
        if rv < self.floor {
            Err(TooOld { floor: self.floor })
        } else {
            Ok(())
        }
    }

    /// Every event after `rv`, or [`TooOld`] when some were forgotten.
    pub(crate) fn events_after(&self, rv: u64) -> Result<Vec<Event>, TooOld> {
        self.check_rv(rv)?;
        let start = self.history.partition_point(|e| e.rv <= rv);
        Ok(self.history.range(start..).cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(res: usize, ns: &str, name: &str) -> Key {
        Key {
            res: Arc::from(res.to_string()),
            ns: ns.to_owned(),
            name: name.to_owned(),
        }
    }

    #[test]
    fn resource_versions_and_history() {
        let mut s = Store::new(3);
        let base = s.rv();
        let a = s.put(key(1, "ns", "a"), json!({"metadata": {"name": "a"}}));
        assert_eq!(a["metadata"]["resourceVersion"], (base + 1).to_string());
        s.put(key(1, "ns", "b"), json!({}));
        s.put(key(1, "ns", "a"), json!({"v": 2}));
        let gone = s.remove(&key(1, "ns", "a"));
        assert_eq!(
            gone.map(|g| g["metadata"]["resourceVersion"].clone()),
            Some(json!((base + 4).to_string()))
        );
        // History of 3 keeps events base+2..base+4.
        assert!(s.events_after(base).is_err());
        let evs = s.events_after(base + 1).unwrap_or_default();
        let kinds: Vec<_> = evs.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [EventType::Added, EventType::Modified, EventType::Deleted]
        );
        assert!(evs[1].prev.is_some());
        s.compact();
        assert!(s.events_after(base + 3).is_err());
        assert_eq!(s.events_after(s.rv()).map(|e| e.len()), Ok(0));
    }

    #[test]
    fn ranges_by_namespace_and_after() {
        let mut s = Store::new(10);
        for (res, ns, name) in [(1, "a", "x"), (1, "a", "y"), (1, "b", "x"), (2, "a", "x")] {
            s.put(key(res, ns, name), json!({}));
        }
        let one: Arc<str> = Arc::from("1");
        let names = |it: Vec<(&Key, &Arc<Value>)>| -> Vec<String> {
            it.into_iter()
                .map(|(k, _)| format!("{}/{}", k.ns, k.name))
                .collect()
        };
        assert_eq!(
            names(s.range(&one, None, None).collect()),
            ["a/x", "a/y", "b/x"]
        );
        assert_eq!(
            names(s.range(&one, Some("a"), None).collect()),
            ["a/x", "a/y"]
        );
        let after = key(1, "a", "x");
        assert_eq!(
            names(s.range(&one, None, Some(&after)).collect()),
            ["a/y", "b/x"]
        );
        assert_eq!(
            names(s.range(&one, Some("b"), Some(&after)).collect()),
            ["b/x"]
        );
        assert!(s.range(&Arc::from("3"), None, None).next().is_none());
    }
}
