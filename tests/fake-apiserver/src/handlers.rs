//! The resource verbs: dispatch, and the reads (get, list). Writes are in
//! [`crate::writes`], deletes in [`crate::deletes`], reviews in
//! [`crate::reviews`], watches in [`crate::watch`]. Store access happens
//! under the store lock without awaiting; only admission webhook calls
//! await, with the lock released.

use serde_json::{Value, json};

use crate::convert::to_served;
use crate::objects::ready_to_go;
use crate::protobuf;
use crate::query::Query;
use crate::resources::{ResourceType, Verbs};
use crate::router::ResourcePath;
use crate::selectors::Selectors;
use crate::state::{Shared, lock};
use crate::status::ApiError;
use crate::store::{Key, Store};
use crate::{after_write, deletes, reviews, writes};

/// A parsed resource request.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    pub(crate) method: &'a http::Method,
    pub(crate) path: &'a ResourcePath,
    pub(crate) query: &'a Query,
    pub(crate) content_type: &'a str,
    pub(crate) body: &'a [u8],
    /// The client's User-Agent (the default field manager).
    pub(crate) user_agent: &'a str,
}

impl Request<'_> {
    /// The field manager of a write: `fieldManager`, else the User-Agent's
    /// product (`kubectl` of `kubectl/v1.35.2 (linux/amd64) ...`), as
    /// kube-apiserver names it.
    pub(crate) fn field_manager(&self) -> String {
        match self.query.non_empty("fieldManager") {
            Some(m) => m.to_owned(),
            None => {
                let product = self.user_agent.split(['/', ' ']).next().unwrap_or("");
                if product.is_empty() {
                    "unknown".to_owned()
                } else {
                    product.to_owned()
                }
            }
        }
    }
}

/// An answer: HTTP code, JSON body and `Warning` headers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Reply {
    pub(crate) code: u16,
    pub(crate) body: Value,
    pub(crate) warnings: Vec<String>,
}

impl Reply {
    /// An answer without warnings.
    pub(crate) fn new(code: u16, body: Value) -> Self {
        Self {
            code,
            body,
            warnings: Vec::new(),
        }
    }
}

/// Runs one non-watch resource request.
pub(crate) async fn handle(shared: &Shared, req: &Request<'_>) -> Result<Reply, ApiError> {
    use http::Method;
    let p = req.path;
    if p.rt.verbs == Verbs::CreateOnly {
        return match (req.method, p.name.as_deref()) {
            (&Method::POST, None) => reviews::create(req),
            _ => Err(ApiError::method_not_allowed()),
        };
    }
    match (req.method, p.name.as_deref()) {
        (&Method::GET, None) => list(shared, p, req.query).map(|l| Reply::new(200, l)),
        (&Method::GET, Some(name)) => get(shared, p, name).map(|o| Reply::new(200, o)),
        (&Method::POST, None) if !p.status => writes::create(shared, req).await,
        (&Method::PUT, Some(name)) => writes::update(shared, req, name).await,
        (&Method::PATCH, Some(name)) => writes::patch(shared, req, name).await,
        (&Method::DELETE, Some(name)) if !p.status => deletes::delete(shared, req, name),
        (&Method::DELETE, None) => deletes::delete_collection(shared, req),
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The store key of `name` under a path.
pub(crate) fn key(p: &ResourcePath, name: &str) -> Key {
    Key {
        res: p.rt.storage.clone(),
        ns: namespace(p),
        name: name.to_owned(),
    }
}

/// The URL's namespace as the store uses it (`""` for cluster-scoped).
pub(crate) fn namespace(p: &ResourcePath) -> String {
    if p.rt.namespaced {
        p.namespace.clone().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Whether `dryRun=All` was asked for.
pub(crate) fn dry_run(q: &Query) -> bool {
    q.get("dryRun").is_some_and(|v| v == "All")
}

/// The media type of a Content-Type header, lowercased, without parameters.
pub(crate) fn mime(content_type: &str) -> String {
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

/// Whether a namespace exists.
pub(crate) fn namespace_exists(store: &Store, ns: &str) -> bool {
    store.get(&namespace_key(ns)).is_some()
}

/// The store key of a namespace.
pub(crate) fn namespace_key(ns: &str) -> Key {
    Key {
        res: std::sync::Arc::from("/namespaces"),
        ns: String::new(),
        name: ns.to_owned(),
    }
}

/// NamespaceLifecycle: creating in a namespace needs it to exist (404
/// otherwise, unless the server's options turn that off) and not be
/// terminating (403).
pub(crate) fn require_namespace(
    shared: &Shared,
    store: &Store,
    rt: &ResourceType,
    ns: &str,
) -> Result<(), ApiError> {
    if !rt.namespaced {
        return Ok(());
    }
    let Some(nrt) = crate::resources::builtin("v1/Namespace") else {
        return Ok(());
    };
    match store.get(&namespace_key(ns)) {
        None if shared.options.require_namespaces => Err(ApiError::not_found(&nrt, ns)),
        Some(n) if n.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(
            rt,
            "",
            &format!(
                "unable to create new content in namespace {ns} because it is being terminated"
            ),
        )),
        _ => Ok(()),
    }
}

/// Stores an object (for one marked for deletion whose finalizers are all
/// gone: stores then removes it) and runs what follows a write (the kind
/// table for CRDs, simulated controllers). A dry run stores nothing.
/// Returns the stored object.
pub(crate) fn commit(shared: &Shared, store: &mut Store, key: Key, obj: Value, dry: bool) -> Value {
    if dry {
        return obj;
    }
    let stored = store.put(key.clone(), obj);
    if ready_to_go(&stored) {
        let gone = store
            .remove(&key)
            .map_or_else(|| (*stored).clone(), |v| (*v).clone());
        after_write::removed(shared, store, &key, &gone);
        return gone;
    }
    let stored = (*stored).clone();
    after_write::written(shared, store, &key, &stored);
    stored
}

fn get(shared: &Shared, p: &ResourcePath, name: &str) -> Result<Value, ApiError> {
    let store = lock(&shared.store);
    store
        .get(&key(p, name))
        .map(|o| to_served(&p.rt, o))
        .ok_or_else(|| ApiError::not_found(&p.rt, name))
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
                res: p.rt.storage.clone(),
                ns: kns,
                name: kname,
            };
            (rv, Some(after))
        }
    };
    let mut matching = store
        .range(&p.rt.storage, ns, after.as_ref())
        .map(|(k, o)| (k, to_served(&p.rt, o)))
        .filter(|(_, o)| selectors.matches(o));
    let max = limit.filter(|l| *l > 0).map_or(usize::MAX, |l| l as usize);
    let mut items = Vec::new();
    let mut last: Option<Key> = None;
    for (k, o) in matching.by_ref().take(max) {
        items.push(list_item(&p.rt, &o));
        last = Some(k.clone());
    }
    // What is left. As the real API server, the count (remainingItemCount)
    // only for a list without selectors; with them, only whether there is
    // more. Counting keys rather than converting every object left keeps
    // paging through a large store linear (100,000 objects in pages of 500
    // took minutes).
    let rest = if selectors.is_empty() {
        last.as_ref()
            .map_or(0, |k| store.range(&p.rt.storage, ns, Some(k)).count())
    } else {
        usize::from(matching.next().is_some())
    };
    let mut metadata = json!({"resourceVersion": list_rv.to_string()});
    if rest > 0
        && let (Some(k), Value::Object(m)) = (&last, &mut metadata)
    {
        m.insert(
            "continue".to_owned(),
            json!(format!("{list_rv}/{}/{}", k.ns, k.name)),
        );
        if selectors.is_empty() {
            m.insert("remainingItemCount".to_owned(), json!(rest));
        }
    }
    Ok(json!({
        "kind": p.rt.list_kind(),
        "apiVersion": p.rt.api_version(),
        "metadata": metadata,
        "items": items,
    }))
}

/// An object as list items carry it: without apiVersion/kind, as the real
/// server sends built-in types (custom resources keep them).
pub(crate) fn list_item(rt: &ResourceType, o: &Value) -> Value {
    let mut item = o.clone();
    if let Value::Object(m) = &mut item
        && !rt.custom
    {
        m.remove("apiVersion");
        m.remove("kind");
    }
    item
}
