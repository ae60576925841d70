//! The writes: create (POST), update (PUT), patch (PATCH: merge, strategic
//! merge, JSON patch, server-side apply). Each plans the new object under
//! the store lock, runs admission with the lock released (mutating
//! webhooks, validation, validating webhooks), then commits if the object
//! did not change meanwhile, else plans again (optimistic concurrency, as
//! the real server's `GuaranteedUpdate`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::admission::{self, Attributes, Operation};
use crate::convert::{to_served, to_storage};
use crate::fieldcheck;
use crate::handlers::{
    Reply, Request, commit, dry_run, key, mime, namespace, parse_body, require_namespace,
};
use crate::ingress_class;
use crate::objects::{UpdateMode, meta_mut, meta_str, prepare_create, prepare_update};
use crate::patch::{json_patch, merge_patch, strategic_merge_patch};
use crate::ssa;
use crate::state::{Shared, lock};
use crate::status::ApiError;
use crate::store::{Key, Store};

/// How many times a write is planned again when the object changed while
/// its admission webhooks ran.
const ATTEMPTS: usize = 5;

/// A write ready for admission.
struct Planned {
    key: Key,
    /// The stored object it replaces (`None`: a create).
    old: Option<Arc<Value>>,
    /// The new object as the client's version has it.
    object: Value,
}

fn resource_version(o: Option<&Arc<Value>>) -> Option<String> {
    o.map(|o| meta_str(o, "resourceVersion").to_owned())
}

/// Plans, admits and commits one write.
async fn write<F>(shared: &Shared, req: &Request<'_>, mut plan: F) -> Result<Reply, ApiError>
where
    F: FnMut(&Store) -> Result<Planned, ApiError>,
{
    let p = req.path;
    let dry = dry_run(req.query);
    for _ in 0..ATTEMPTS {
        let planned = plan(&lock(&shared.store))?;
        let old_served = planned.old.as_deref().map(|o| to_served(&p.rt, o));
        let attrs = Attributes {
            rt: &p.rt,
            operation: if planned.old.is_some() {
                Operation::Update
            } else {
                Operation::Create
            },
            status: p.status,
            namespace: planned.key.ns.clone(),
            name: planned.key.name.clone(),
            old: old_served.as_ref(),
            dry_run: dry,
        };
        let (object, warnings) = admission::admit(shared, &attrs, planned.object).await?;
        let mut store = lock(&shared.store);
        if resource_version(store.get(&planned.key)) != resource_version(planned.old.as_ref()) {
            continue;
        }
        let code = if planned.old.is_some() { 200 } else { 201 };
        let stored = commit(
            shared,
            &mut store,
            planned.key,
            to_storage(&p.rt, object),
            dry,
        );
        return Ok(Reply {
            code,
            body: to_served(&p.rt, &stored),
            warnings,
        });
    }
    Err(ApiError::conflict(
        &p.rt,
        p.name.as_deref().unwrap_or(""),
        "the object has been modified; please apply your changes to the latest version and try again",
    ))
}

/// POST: a new object.
pub(crate) async fn create(shared: &Shared, req: &Request<'_>) -> Result<Reply, ApiError> {
    let p = req.path;
    if p.rt.namespaced && p.namespace.is_none() {
        return Err(ApiError::method_not_allowed());
    }
    let body = parse_body(&p.rt, req.content_type, req.body)?;
    let warnings = fieldcheck::check(&p.rt, &body, req.query)?;
    let ns = namespace(p);
    let mut reply = write(shared, req, |store| {
        let mut obj = prepare_create(&p.rt, &ns, body.clone(), true)?;
        require_namespace(shared, store, &p.rt, &ns)?;
        let k = key(p, meta_str(&obj, "name"));
        if store.get(&k).is_some() {
            return Err(ApiError::already_exists(&p.rt, &k.name));
        }
        ingress_class::default_class(store, &p.rt, &mut obj);
        Ok(Planned {
            key: k,
            old: None,
            object: obj,
        })
    })
    .await?;
    reply.warnings.splice(0..0, warnings);
    Ok(reply)
}

fn mode(status: bool) -> UpdateMode {
    if status {
        UpdateMode::Status
    } else {
        UpdateMode::Main
    }
}

/// The stored object at a key, or 404.
fn existing(store: &Store, req: &Request<'_>, k: &Key) -> Result<Arc<Value>, ApiError> {
    store
        .get(k)
        .cloned()
        .ok_or_else(|| ApiError::not_found(&req.path.rt, &k.name))
}

/// PUT: a whole new version of an object.
pub(crate) async fn update(
    shared: &Shared,
    req: &Request<'_>,
    name: &str,
) -> Result<Reply, ApiError> {
    let p = req.path;
    let body = parse_body(&p.rt, req.content_type, req.body)?;
    let body_name = meta_str(&body, "name");
    if body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let warnings = fieldcheck::check(&p.rt, &body, req.query)?;
    let k = key(p, name);
    let mut reply = write(shared, req, |store| {
        let old = existing(store, req, &k)?;
        let old_served = to_served(&p.rt, &old);
        let mut object = prepare_update(&p.rt, &old_served, body.clone(), mode(p.status))?;
        ssa::update(
            &p.rt,
            &old_served,
            &mut object,
            &req.field_manager(),
            p.status,
        );
        Ok(Planned {
            key: k.clone(),
            old: Some(old),
            object,
        })
    })
    .await?;
    reply.warnings.splice(0..0, warnings);
    Ok(reply)
}

/// The patch types a PATCH takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchType {
    Merge,
    Strategic,
    Json,
    Apply,
}

impl PatchType {
    fn of(content_type: &str, custom: bool) -> Result<Self, ApiError> {
        let kind = match mime(content_type).as_str() {
            "application/merge-patch+json" => Self::Merge,
            "application/strategic-merge-patch+json" if !custom => Self::Strategic,
            "application/json-patch+json" => Self::Json,
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Self::Apply,
            _ => {
                let accepted = if custom {
                    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                } else {
                    "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml"
                };
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unknown format - accepted media types include: {accepted}"
                    ),
                ));
            }
        };
        Ok(kind)
    }
}

/// PATCH: applies a patch to the stored object (the server-side apply of a
/// missing object creates it).
pub(crate) async fn patch(
    shared: &Shared,
    req: &Request<'_>,
    name: &str,
) -> Result<Reply, ApiError> {
    let p = req.path;
    let kind = PatchType::of(req.content_type, p.rt.custom)?;
    if kind == PatchType::Apply {
        return apply(shared, req, name).await;
    }
    let body = serde_json::from_slice::<Value>(req.body)
        .map_err(|e| ApiError::bad_request(format!("couldn't decode the patch: {e}")))?;
    if kind != PatchType::Json && !body.is_object() {
        return Err(ApiError::bad_request("a merge patch must be a JSON object"));
    }
    let k = key(p, name);
    let mut warnings = Vec::new();
    let mut reply = write(shared, req, |store| {
        let old = existing(store, req, &k)?;
        let old_served = to_served(&p.rt, &old);
        let mut doc = old_served.clone();
        match kind {
            PatchType::Json => json_patch(&mut doc, &body).map_err(|e| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("the patch could not be applied: {e}"),
                )
            })?,
            PatchType::Merge => merge_patch(&mut doc, &body),
            _ => strategic_merge_patch(&p.rt, &mut doc, &body),
        }
        warnings = fieldcheck::check(&p.rt, &doc, req.query)?;
        let mut object = prepare_update(&p.rt, &old_served, doc, mode(p.status))?;
        ssa::update(
            &p.rt,
            &old_served,
            &mut object,
            &req.field_manager(),
            p.status,
        );
        Ok(Planned {
            key: k.clone(),
            old: Some(old),
            object,
        })
    })
    .await?;
    reply.warnings.splice(0..0, warnings);
    Ok(reply)
}

/// Server-side apply: creates the object when missing, else applies the
/// configuration with field ownership ([`crate::ssa`]; no conflicts, as if
/// `force` were always set).
async fn apply(shared: &Shared, req: &Request<'_>, name: &str) -> Result<Reply, ApiError> {
    let p = req.path;
    if req.query.non_empty("fieldManager").is_none() {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    let mut body = parse_body(&p.rt, "application/yaml", req.body)?;
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
    let warnings = fieldcheck::check(&p.rt, &body, req.query)?;
    let k = key(p, name);
    let ns = namespace(p);
    let manager = req.field_manager();
    let mut reply = write(shared, req, |store| {
        let Some(old) = store.get(&k).cloned() else {
            if p.status {
                return Err(ApiError::not_found(&p.rt, name));
            }
            let mut object = prepare_create(&p.rt, &ns, body.clone(), true)?;
            require_namespace(shared, store, &p.rt, &ns)?;
            ingress_class::default_class(store, &p.rt, &mut object);
            ssa::created(&p.rt, &mut object, &body, &manager, false);
            return Ok(Planned {
                key: k.clone(),
                old: None,
                object,
            });
        };
        let old_served = to_served(&p.rt, &old);
        let doc = ssa::apply(&p.rt, &old_served, &body, &manager, p.status);
        let object = prepare_update(&p.rt, &old_served, doc, mode(p.status))?;
        Ok(Planned {
            key: k.clone(),
            old: Some(old),
            object,
        })
    })
    .await?;
    reply.warnings.splice(0..0, warnings);
    Ok(reply)
}
