//! DELETE and deletecollection, with the answers of the real registries
//! (a success `Status`, or the object for the kinds that return it, or the
//! object marked with a deletionTimestamp while finalizers hold it), the
//! garbage collector's cascade to dependents (ownerReferences), and
//! namespace termination (the namespace's objects go first).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::convert::to_served;
use crate::handlers::{Reply, Request, commit, dry_run, key, list_item, mime};
use crate::objects::{has_finalizers, meta_mut, meta_str, now_rfc3339};
use crate::protobuf;
use crate::resources::{DeleteAnswer, ResourceType};
use crate::selectors::Selectors;
use crate::state::{Shared, lock};
use crate::status::{ApiError, deleted};
use crate::store::{Key, Store};

/// How dependents are treated (`propagationPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    /// Dependents are deleted (Background and Foreground: the fake's
    /// garbage collector runs at once, so both end the same way).
    Cascade,
    /// Dependents lose their ownerReference to the deleted object.
    Orphan,
}

/// The parsed `DeleteOptions`.
#[derive(Debug)]
struct Options {
    body: Value,
    dry: bool,
    propagation: Propagation,
}

fn delete_options(req: &Request<'_>) -> Result<Options, ApiError> {
    let ignored = req.body.iter().all(u8::is_ascii_whitespace)
        || protobuf::is_protobuf(&mime(req.content_type));
    let body = if ignored {
        // DeleteOptions in protobuf (typed clients) are not decoded.
        json!({})
    } else {
        serde_json::from_slice(req.body)
            .map_err(|e| ApiError::bad_request(format!("couldn't decode DeleteOptions: {e}")))?
    };
    let dry = dry_run(req.query)
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    let policy = req
        .query
        .get("propagationPolicy")
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str));
    let orphan = policy == Some("Orphan") || body.get("orphanDependents") == Some(&json!(true));
    Ok(Options {
        body,
        dry,
        propagation: if orphan {
            Propagation::Orphan
        } else {
            Propagation::Cascade
        },
    })
}

/// `DeleteOptions` preconditions: 409 when the stored object differs.
fn check_preconditions(rt: &ResourceType, obj: &Value, opts: &Value) -> Result<(), ApiError> {
    let name = meta_str(obj, "name");
    for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
        let want = opts
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str);
        if let Some(want) = want
            && want != meta_str(obj, field)
        {
            return Err(ApiError::conflict(
                rt,
                name,
                &format!(
                    "Precondition failed: {label} in precondition: {want}, {label} in object meta: {}",
                    meta_str(obj, field)
                ),
            ));
        }
    }
    Ok(())
}

/// What happened to a deleted object.
enum Outcome {
    /// Removed; its last state.
    Removed(Value),
    /// Still there, marked for deletion (finalizers, a terminating
    /// namespace).
    Marked(Value),
}

/// Deletes one object (as stored): removed at once, or marked while
/// finalizers hold it; dependents follow.
fn delete_one(
    shared: &Shared,
    store: &mut Store,
    rt: &ResourceType,
    k: Key,
    opts: &Options,
) -> Result<Outcome, ApiError> {
    let old = store
        .get(&k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, &k.name))?;
    check_preconditions(rt, &old, &opts.body)?;
    if opts.dry {
        return Ok(Outcome::Removed((*old).clone()));
    }
    let is_namespace = &*k.res == "/namespaces";
    if has_finalizers(&old) || is_namespace {
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok(Outcome::Marked((*old).clone()));
        }
        let mut marked = (*old).clone();
        let meta = meta_mut(&mut marked);
        meta.insert("deletionTimestamp".to_owned(), json!(now_rfc3339()));
        meta.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
        if is_namespace && let Value::Object(m) = &mut marked {
            m.insert("status".to_owned(), json!({"phase": "Terminating"}));
        }
        let stored = commit(shared, store, k.clone(), marked, false);
        if is_namespace {
            terminate_namespace(shared, store, &k.name);
        }
        return Ok(Outcome::Marked(stored));
    }
    let gone = store
        .remove(&k)
        .map_or_else(|| (*old).clone(), |v| (*v).clone());
    crate::after_write::removed(shared, store, &k, &gone);
    collect_dependents(shared, store, meta_str(&gone, "uid"), opts.propagation);
    Ok(Outcome::Removed(gone))
}

/// The garbage collector: objects owned by `uid` are deleted (their own
/// dependents too) unless another owner remains, or orphaned.
fn collect_dependents(shared: &Shared, store: &mut Store, uid: &str, propagation: Propagation) {
    if uid.is_empty() {
        return;
    }
    let owned_by = |o: &Value| {
        o.pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
            })
    };
    let dependents: Vec<(Key, Arc<Value>)> = store
        .all()
        .filter(|(_, o)| owned_by(o))
        .map(|(k, o)| (k.clone(), Arc::clone(o)))
        .collect();
    let cascade = Options {
        body: json!({}),
        dry: false,
        propagation: Propagation::Cascade,
    };
    for (k, o) in dependents {
        let other_owner = o
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|refs| {
                refs.iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
            });
        if other_owner || propagation == Propagation::Orphan {
            let mut kept = (*o).clone();
            if let Some(Value::Array(refs)) = meta_mut(&mut kept).get_mut("ownerReferences") {
                refs.retain(|r| r.get("uid").and_then(Value::as_str) != Some(uid));
            }
            commit(shared, store, k, kept, false);
            continue;
        }
        let rt = crate::state::read(&shared.kinds)
            .all()
            .iter()
            .find(|r| r.storage == k.res)
            .cloned();
        if let Some(rt) = rt {
            let _ = delete_one(shared, store, &rt, k, &cascade);
        }
    }
}

/// Namespace termination: every object in it is deleted; the namespace
/// goes once none is left ([`finish_namespace`]).
fn terminate_namespace(shared: &Shared, store: &mut Store, ns: &str) {
    let contents: Vec<Key> = store
        .all()
        .filter(|(k, _)| k.ns == ns)
        .map(|(k, _)| k.clone())
        .collect();
    let kinds = crate::state::read(&shared.kinds).clone();
    let opts = Options {
        body: json!({}),
        dry: false,
        propagation: Propagation::Cascade,
    };
    for k in contents {
        if let Some(rt) = kinds.all().iter().find(|r| r.storage == k.res) {
            let _ = delete_one(shared, store, rt, k, &opts);
        }
    }
    finish_namespace(shared, store, ns);
}

/// Removes a terminating namespace once nothing is left in it.
pub(crate) fn finish_namespace(shared: &Shared, store: &mut Store, ns: &str) {
    let nk = crate::handlers::namespace_key(ns);
    let terminating = store
        .get(&nk)
        .is_some_and(|n| n.pointer("/metadata/deletionTimestamp").is_some());
    if terminating
        && !store.all().any(|(k, _)| k.ns == ns)
        && let Some(gone) = store.remove(&nk)
    {
        crate::after_write::removed(shared, store, &nk, &gone);
    }
}

/// The answer to a DELETE of one object.
fn answer(rt: &ResourceType, outcome: Outcome) -> Value {
    match outcome {
        Outcome::Marked(o) => to_served(rt, &o),
        Outcome::Removed(o) => match rt.delete_answer {
            DeleteAnswer::Object => to_served(rt, &o),
            DeleteAnswer::Status => deleted(rt, meta_str(&o, "name"), meta_str(&o, "uid")),
        },
    }
}

/// DELETE of one object.
pub(crate) fn delete(shared: &Shared, req: &Request<'_>, name: &str) -> Result<Reply, ApiError> {
    let opts = delete_options(req)?;
    let mut store = lock(&shared.store);
    let rt = &req.path.rt;
    let outcome = delete_one(shared, &mut store, rt, key(req.path, name), &opts)?;
    Ok(Reply::new(200, answer(rt, outcome)))
}

/// DELETE of a collection (with selectors): the list of what was deleted.
pub(crate) fn delete_collection(shared: &Shared, req: &Request<'_>) -> Result<Reply, ApiError> {
    let p = req.path;
    let opts = delete_options(req)?;
    let selectors = Selectors::from_query(req.query)?;
    let mut store = lock(&shared.store);
    let ns = p.namespace.as_deref().filter(|_| p.rt.namespaced);
    let keys: Vec<Key> = store
        .range(&p.rt.storage, ns, None)
        .filter(|(_, o)| selectors.matches(&to_served(&p.rt, o)))
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = Vec::new();
    for k in keys {
        let o = match delete_one(shared, &mut store, &p.rt, k, &opts)? {
            Outcome::Removed(o) | Outcome::Marked(o) => o,
        };
        items.push(list_item(&p.rt, &to_served(&p.rt, &o)));
    }
    Ok(Reply::new(
        200,
        json!({
            "kind": p.rt.list_kind(),
            "apiVersion": p.rt.api_version(),
            "metadata": {"resourceVersion": store.rv().to_string()},
            "items": items,
        }),
    ))
}
