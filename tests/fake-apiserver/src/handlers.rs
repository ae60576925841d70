//! The resource verbs: get, list, create, update (PUT), patch, delete and
//! deletecollection. Watches are in [`crate::watch`]. Every handler runs
//! under the store lock, without awaiting.

use serde_json::{Value, json};

use crate::objects::{
    UpdateMode, has_finalizers, meta_mut, meta_str, now_rfc3339, prepare_create, prepare_update,
    ready_to_go,
};
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::protobuf;
use crate::query::Query;
use crate::resources::{self, ResourceType};
use crate::router::ResourcePath;
use crate::selectors::Selectors;
use crate::state::{Shared, lock};
use crate::status::ApiError;
use crate::store::{Key, Store};

/// A parsed resource request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a http::Method,
    pub(crate) path: &'a ResourcePath,
    pub(crate) query: &'a Query,
    pub(crate) content_type: &'a str,
    pub(crate) body: &'a [u8],
}

/// An answer: HTTP code and JSON body.
pub(crate) type Reply = (u16, Value);

/// Runs one non-watch resource request.
pub(crate) fn handle(shared: &Shared, req: &Request<'_>) -> Result<Reply, ApiError> {
    use http::Method;
    let p = req.path;
    match (req.method, p.name.as_deref()) {
        (&Method::GET, None) => list(shared, p, req.query).map(|l| (200, l)),
        (&Method::GET, Some(name)) => get(shared, p, name).map(|o| (200, o)),
        (&Method::POST, None) if !p.status => create(shared, req),
        (&Method::PUT, Some(name)) => update(shared, req, name),
        (&Method::PATCH, Some(name)) => patch(shared, req, name),
        (&Method::DELETE, Some(name)) if !p.status => delete(shared, req, name),
        (&Method::DELETE, None) => delete_collection(shared, req),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The store key of `name` under a path.
fn key(p: &ResourcePath, name: &str) -> Key {
    Key {
        res: p.rt.index(),
        ns: namespace(p),
        name: name.to_owned(),
    }
}

/// The URL's namespace as the store uses it (`""` for cluster-scoped).
fn namespace(p: &ResourcePath) -> String {
    if p.rt.namespaced {
        p.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    }
}

fn dry_run(q: &Query) -> bool {
    q.get("dryRun").is_some_and(|v| v == "All")
}

fn mime(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Decodes a request body of `rt`: JSON, YAML when the content type says
/// so, or protobuf for the few kinds [`protobuf`] knows.
pub(crate) fn parse_body(
    rt: &ResourceType,
    content_type: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let mime = mime(content_type);
    if protobuf::is_protobuf(&mime) {
        return protobuf::decode(rt, body);
    }
    if mime.contains("protobuf") || mime.contains("cbor") {
        return Err(ApiError::unsupported_media_type(&mime));
    }
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if mime.contains("yaml") && first != Some(&b'{') {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::bad_request(format!("the body is not UTF-8: {e}")))?;
        return serde_saphyr::from_str::<Value>(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("couldn't decode the body as JSON: {e}")))
}

fn namespace_exists(store: &Store, ns: &str) -> bool {
    resources::resolve("namespaces").is_some_and(|nrt| {
        store
            .get(&Key {
                res: nrt.index(),
                ns: String::new(),
                name: ns.to_owned(),
            })
            .is_some()
    })
}

fn require_namespace(shared: &Shared, store: &Store, ns: &str) -> Result<(), ApiError> {
    if !shared.options.require_namespaces || namespace_exists(store, ns) {
        return Ok(());
    }
    match resources::resolve("namespaces") {
        Some(nrt) => Err(ApiError::not_found(nrt, ns)),
        None => Ok(()),
    }
}

/// Stores an object (or, for one marked for deletion whose finalizers are
/// all gone, stores then removes it); a dry run stores nothing.
pub(crate) fn commit(store: &mut Store, key: Key, obj: Value, dry: bool) -> Value {
    if dry {
        return obj;
    }
    let stored = store.put(key.clone(), obj);
    if ready_to_go(&stored) {
        return store
            .remove(&key)
            .map_or_else(|| (*stored).clone(), |v| (*v).clone());
    }
    (*stored).clone()
}

fn get(shared: &Shared, p: &ResourcePath, name: &str) -> Result<Value, ApiError> {
    let store = lock(&shared.store);
    store
        .get(&key(p, name))
        .map(|o| (**o).clone())
        .ok_or_else(|| ApiError::not_found(p.rt, name))
}

/// A continue token: the list's resourceVersion and the last key returned.
fn parse_continue(token: &str) -> Option<(u64, String, String)> {
    let mut parts = token.splitn(3, '/');
    let rv = parts.next()?.parse().ok()?;
    Some((rv, parts.next()?.to_owned(), parts.next()?.to_owned()))
}

/// LIST: a typed list, with selectors and `limit`/`continue` paging.
pub(crate) fn list(shared: &Shared, p: &ResourcePath, q: &Query) -> Result<Value, ApiError> {
    let selectors = Selectors::from_query(q)?;
    let limit = q.number("limit").map_err(ApiError::bad_request)?;
    let store = lock(&shared.store);
    if q.get("resourceVersionMatch") == Some("Exact") {
        let rv = q
            .non_empty("resourceVersion")
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                ApiError::bad_request("resourceVersionMatch=Exact needs a numeric resourceVersion")
            })?;
        if let Err(too_old) = store.check_rv(rv) {
            return Err(ApiError::expired(format!(
                "too old resource version: {rv} ({})",
                too_old.floor
            )));
        }
    }
    let ns = p.namespace.as_deref().filter(|_| p.rt.namespaced);
    let (list_rv, after) = match q.non_empty("continue") {
        None => (store.rv(), None),
        Some(token) => {
            let (rv, kns, kname) = parse_continue(token)
                .ok_or_else(|| ApiError::bad_request("invalid continue token"))?;
            if store.check_rv(rv).is_err() {
                return Err(ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ));
            }
            let after = Key {
                res: p.rt.index(),
                ns: kns,
                name: kname,
            };
            (rv, Some(after))
        }
    };
    let mut matching = store
        .range(p.rt.index(), ns, after.as_ref())
        .filter(|(_, o)| selectors.matches(o));
    let max = limit.filter(|l| *l > 0).map_or(usize::MAX, |l| l as usize);
    let mut items = Vec::new();
    let mut last: Option<Key> = None;
    for (k, o) in matching.by_ref().take(max) {
        items.push(list_item(o));
        last = Some(k.clone());
    }
    let rest = matching.count();
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if rest > 0
        && let (Some(k), Value::Object(m)) = (&last, &mut metadata)
    {
        m.insert(
            "continue".to_owned(),
            json!(format!("{list_rv}/{}/{}", k.ns, k.name)),
        );
        m.insert("remainingItemCount".to_owned(), json!(rest));
    }
    Ok(json!({
        "kind": p.rt.list_kind(),
        "apiVersion": p.rt.api_version(),
        "metadata": metadata,
        "items": items,
    }))
}

/// An object as list items carry it (without apiVersion/kind, as the real
/// server sends built-in types).
fn list_item(o: &Value) -> Value {
    let mut item = o.clone();
    if let Value::Object(m) = &mut item {
        m.remove("apiVersion");
        m.remove("kind");
    }
    item
}

fn create(shared: &Shared, req: &Request<'_>) -> Result<Reply, ApiError> {
    let p = req.path;
    if p.rt.namespaced && p.namespace.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let body = parse_body(p.rt, req.content_type, req.body)?;
    let ns = namespace(p);
    let mut store = lock(&shared.store);
    let obj = prepare_create(p.rt, &ns, body, true)?;
    if p.rt.namespaced {
        require_namespace(shared, &store, &ns)?;
    }
    let name = meta_str(&obj, "name").to_owned();
    let k = key(p, &name);
    if store.get(&k).is_some() {
        return Err(ApiError::already_exists(p.rt, &name));
    }
    Ok((201, commit(&mut store, k, obj, dry_run(req.query))))
}

fn mode(p: &ResourcePath) -> UpdateMode {
    if p.status {
        UpdateMode::Status
    } else {
        UpdateMode::Main
    }
}

fn update(shared: &Shared, req: &Request<'_>, name: &str) -> Result<Reply, ApiError> {
    let p = req.path;
    let body = parse_body(p.rt, req.content_type, req.body)?;
    let body_name = meta_str(&body, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let mut store = lock(&shared.store);
    let k = key(p, name);
    let old = store
        .get(&k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(p.rt, name))?;
    let new = prepare_update(p.rt, &old, body, mode(p))?;
    Ok((200, commit(&mut store, k, new, dry_run(req.query))))
}

fn patch(shared: &Shared, req: &Request<'_>, name: &str) -> Result<Reply, ApiError> {
    let p = req.path;
    let kind = mime(req.content_type);
    if kind == "application/apply-patch+yaml" {
        return apply_patch(shared, req, name);
    }
    let body = match kind.as_str() {
        "application/merge-patch+json"
        | "application/strategic-merge-patch+json"
        | "application/json-patch+json" => serde_json::from_slice::<Value>(req.body)
            .map_err(|e| ApiError::bad_request(format!("couldn't decode the patch: {e}")))?,
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the server does not support the patch type {other:?}; use application/merge-patch+json, application/strategic-merge-patch+json, application/json-patch+json or application/apply-patch+yaml"
                ),
            ));
        }
    };
    let mut store = lock(&shared.store);
    let k = key(p, name);
    let old = store
        .get(&k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(p.rt, name))?;
    let mut doc = (*old).clone();
    match kind.as_str() {
        "application/json-patch+json" => json_patch(&mut doc, &body).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the patch could not be applied: {e}"),
            )
        })?,
        _ if !body.is_object() => {
            return Err(ApiError::bad_request("a merge patch must be a JSON object"));
        }
        "application/merge-patch+json" => merge_patch(&mut doc, &body),
        _ => strategic_merge_patch(&mut doc, &body),
    }
    let new = prepare_update(p.rt, &old, doc, mode(p))?;
    Ok((200, commit(&mut store, k, new, dry_run(req.query))))
}

/// Server-side apply, approximated: creates the object when missing, else
/// merges the given fields into it (strategic-merge rules); field ownership
/// is not tracked, so `force` changes nothing and there are no conflicts.
fn apply_patch(shared: &Shared, req: &Request<'_>, name: &str) -> Result<Reply, ApiError> {
    let p = req.path;
    if req.query.non_empty("fieldManager").is_none() {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let mut body = parse_body(p.rt, "application/yaml", req.body)?;
    for field in ["apiVersion", "kind"] {
        if body
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(ApiError::bad_request(format!("{field} must be set")));
        }
    }
    let body_name = meta_str(&body, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    meta_mut(&mut body).insert("name".to_owned(), json!(name));
    let mut store = lock(&shared.store);
    let k = key(p, name);
    let dry = dry_run(req.query);
    let Some(old) = store.get(&k).cloned() else {
        if p.status {
            return Err(ApiError::not_found(p.rt, name));
        }
        let ns = namespace(p);
        let obj = prepare_create(p.rt, &ns, body, true)?;
        if p.rt.namespaced {
            require_namespace(shared, &store, &ns)?;
        }
        return Ok((201, commit(&mut store, k, obj, dry)));
    };
    let mut doc = (*old).clone();
    strategic_merge_patch(&mut doc, &body);
    let new = prepare_update(p.rt, &old, doc, mode(p))?;
    Ok((200, commit(&mut store, k, new, dry)))
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

/// Deletes one object: removed at once, or only marked (deletionTimestamp)
/// while it has finalizers.
fn delete_one(
    store: &mut Store,
    rt: &ResourceType,
    k: Key,
    opts: &Value,
    dry: bool,
) -> Result<Value, ApiError> {
    let old = store
        .get(&k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(rt, &k.name))?;
    check_preconditions(rt, &old, opts)?;
    if has_finalizers(&old) {
        if old.pointer("/metadata/deletionTimestamp").is_some() || dry {
            return Ok((*old).clone());
        }
        let mut marked = (*old).clone();
        let meta = meta_mut(&mut marked);
        meta.insert("deletionTimestamp".to_owned(), json!(now_rfc3339()));
        meta.insert("deletionGracePeriodSeconds".to_owned(), json!(0));
        return Ok((*store.put(k, marked)).clone());
    }
    if dry {
        return Ok((*old).clone());
    }
    Ok(store
        .remove(&k)
        .map_or_else(|| (*old).clone(), |v| (*v).clone()))
}

fn delete_options(req: &Request<'_>) -> Result<(Value, bool), ApiError> {
    let ignored = req.body.iter().all(u8::is_ascii_whitespace)
        || protobuf::is_protobuf(&mime(req.content_type));
    let opts = if ignored {
        // DeleteOptions in protobuf (typed clients) are not decoded.
        json!({})
    } else {
        serde_json::from_slice(req.body)
            .map_err(|e| ApiError::bad_request(format!("couldn't decode DeleteOptions: {e}")))?
    };
    let dry = dry_run(req.query)
        || opts
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|d| d.iter().any(|v| v == "All"));
    Ok((opts, dry))
}

fn delete(shared: &Shared, req: &Request<'_>, name: &str) -> Result<Reply, ApiError> {
    let (opts, dry) = delete_options(req)?;
    let mut store = lock(&shared.store);
    let obj = delete_one(&mut store, req.path.rt, key(req.path, name), &opts, dry)?;
    Ok((200, obj))
}

fn delete_collection(shared: &Shared, req: &Request<'_>) -> Result<Reply, ApiError> {
    let p = req.path;
    let (opts, dry) = delete_options(req)?;
    let selectors = Selectors::from_query(req.query)?;
    let mut store = lock(&shared.store);
    let ns = p.namespace.as_deref().filter(|_| p.rt.namespaced);
    let keys: Vec<Key> = store
        .range(p.rt.index(), ns, None)
        .filter(|(_, o)| selectors.matches(o))
        .map(|(k, _)| k.clone())
        .collect();
    let mut items = Vec::new();
    for k in keys {
        items.push(list_item(&delete_one(&mut store, p.rt, k, &opts, dry)?));
    }
    Ok((
        200,
        json!({
            "kind": p.rt.list_kind(),
            "apiVersion": p.rt.api_version(),
            "metadata": {"resourceVersion": store.rv().to_string()},
            "items": items,
        }),
    ))
}
