//! What follows a stored change, under the same store lock, as the
//! cluster's controllers would do it: a CRD changes the kind table (and its
//! removal removes its objects), a terminating namespace goes once empty,
//! and the simulated controllers ([`crate::simulate`], when on) follow
//! workloads, pods and services.

use std::sync::Arc;

use serde_json::Value;

use crate::crd;
use crate::deletes::finish_namespace;
use crate::simulate;
use crate::state::Shared;
use crate::store::{Key, Store};

/// After an object was created or changed.
pub(crate) fn written(shared: &Shared, store: &mut Store, key: &Key, stored: &Value) {
    if &*key.res == crd::STORAGE {
        crd::refresh(shared, store);
    }
    if shared.options.pod_ip.is_some() {
        simulate::written(shared, store, key, stored);
    }
}

/// After an object was removed.
pub(crate) fn removed(shared: &Shared, store: &mut Store, key: &Key, gone: &Value) {
    if &*key.res == crd::STORAGE {
        remove_instances(store, gone);
        crd::refresh(shared, store);
    }
    if !key.ns.is_empty() {
        finish_namespace(shared, store, &key.ns);
    }
    if shared.options.pod_ip.is_some() {
        simulate::removed(shared, store, key, gone);
    }
}

/// Removes every object of a deleted CRD.
fn remove_instances(store: &mut Store, crd: &Value) {
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let res: Arc<str> = Arc::from(crate::resources::storage_key(group, plural));
    let keys: Vec<Key> = store
        .range(&res, None, None)
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        store.remove(&k);
    }
}
