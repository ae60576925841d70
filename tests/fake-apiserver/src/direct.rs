//! Direct store access for tests (and the binary's `--seed`): put, read and
//! delete objects without HTTP, with the same resourceVersions and watch
//! events as API writes. Objects put this way are taken as they are (no
//! validation beyond the name, no admission), so a test can plant objects a
//! cluster might hold; the namespaces they name are created when missing.

use std::path::Path;

use serde_json::{Value, json};

use crate::convert::{to_served, to_storage};
use crate::handlers::{commit, namespace_exists};
use crate::objects::{UpdateMode, meta_mut, meta_str, prepare_create, prepare_update};
use crate::resources::{Res, ResourceType};
use crate::state::{Shared, lock, read};
use crate::status::ApiError;
use crate::store::Key;

/// Namespaces every cluster has.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

fn namespace_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
        "status": {"phase": "Active"},
    })
}

/// Creates the system namespaces of a fresh store.
pub(crate) fn seed_namespaces(shared: &Shared) {
    for ns in SYSTEM_NAMESPACES {
        if let Err(e) = apply(shared, namespace_object(ns)) {
            tracing::warn!(error = %e, "cannot create a system namespace");
        }
    }
}

fn resolve(shared: &Shared, spec: &str) -> Result<Res, ApiError> {
    read(&shared.kinds).resolve(spec).ok_or_else(|| {
        ApiError::new(
            404,
            "NotFound",
            format!("the server doesn't have a resource type {spec:?}"),
        )
    })
}

fn key(rt: &ResourceType, ns: &str, name: &str) -> Key {
    Key {
        res: rt.storage.clone(),
        ns: if rt.namespaced {
            ns.to_owned()
        } else {
            String::new()
        },
        name: name.to_owned(),
    }
}

/// Creates or replaces an object whole (status included); a namespace it
/// names that does not exist is created first.
pub(crate) fn apply(shared: &Shared, object: Value) -> Result<Value, ApiError> {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let rt = read(&shared.kinds)
        .by_kind(api_version, kind)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "the fake API server does not serve apiVersion {api_version:?} kind {kind:?}"
            ))
        })?;
    let errs = crate::validation::validate_name(&rt, &object);
    if !errs.is_empty() {
        return Err(ApiError::invalid(&rt, meta_str(&object, "name"), &errs));
    }
    let ns = match meta_str(&object, "namespace") {
        "" => "default".to_owned(),
        ns => ns.to_owned(),
    };
    if rt.namespaced && !namespace_exists(&lock(&shared.store), &ns) {
        apply(shared, namespace_object(&ns))?;
    }
    let name = meta_str(&object, "name").to_owned();
    let mut store = lock(&shared.store);
    let k = key(&rt, &ns, &name);
    let obj = match store.get(&k).cloned() {
        Some(old) => {
            let mut object = object;
            meta_mut(&mut object).remove("resourceVersion");
            prepare_update(&rt, &to_served(&rt, &old), object, UpdateMode::Direct)?
        }
        None => {
            let mut created = prepare_create(&rt, &ns, object.clone(), false)?;
            // Keep a creationTimestamp or uid the test chose.
            for field in ["creationTimestamp", "uid"] {
                if let Some(v) = object
                    .pointer(&format!("/metadata/{field}"))
                    .filter(|v| v.is_string())
                {
                    meta_mut(&mut created).insert(field.to_owned(), v.clone());
                }
            }
            created
        }
    };
    let stored = commit(shared, &mut store, k, to_storage(&rt, obj), false);
    Ok(to_served(&rt, &stored))
}

/// The objects of a YAML text: documents, and `kind: List` items.
fn objects_of(yaml: &str) -> Result<Vec<Value>, ApiError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        if doc.get("kind").and_then(Value::as_str) == Some("List") {
            out.extend(
                doc.get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        } else {
            out.push(doc);
        }
    }
    Ok(out)
}

/// Applies every object of a YAML text (CRDs first, so their objects
/// can follow in the same text).
pub(crate) fn apply_yaml(shared: &Shared, yaml: &str) -> Result<Vec<Value>, ApiError> {
    let mut objects = objects_of(yaml)?;
    objects
        .sort_by_key(|o| o.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition"));
    objects.into_iter().map(|o| apply(shared, o)).collect()
}

fn collect_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Applies every manifest file under a folder, CRDs of every file first;
/// returns the object count.
pub(crate) fn seed_dir(shared: &Shared, dir: &Path) -> Result<usize, ApiError> {
    let io_err = |e: std::io::Error| ApiError::bad_request(format!("{}: {e}", dir.display()));
    let mut files = Vec::new();
    collect_files(dir, &mut files).map_err(io_err)?;
    files.sort();
    let mut objects = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(io_err)?;
        let in_file = objects_of(&text).map_err(|e| in_file_error(&file, &e))?;
        objects.extend(in_file.into_iter().map(|o| (file.clone(), o)));
    }
    let is_crd =
        |o: &Value| o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition");
    objects.sort_by_key(|(_, o)| !is_crd(o));
    let count = objects.len();
    for (file, object) in objects {
        apply(shared, object).map_err(|e| in_file_error(&file, &e))?;
    }
    Ok(count)
}

fn in_file_error(file: &Path, e: &ApiError) -> ApiError {
    ApiError::new(
        e.code,
        &e.reason,
        format!("{}: {}", file.display(), e.message),
    )
}

/// One object by resource name, namespace and name.
pub(crate) fn get(shared: &Shared, resource: &str, namespace: &str, name: &str) -> Option<Value> {
    let rt = read(&shared.kinds).resolve(resource)?;
    lock(&shared.store)
        .get(&key(&rt, namespace, name))
        .map(|o| to_served(&rt, o))
}

/// Objects of a resource in a namespace (`""`: all).
pub(crate) fn list(shared: &Shared, resource: &str, namespace: &str) -> Vec<Value> {
    let Some(rt) = read(&shared.kinds).resolve(resource) else {
        return Vec::new();
    };
    let ns = Some(namespace).filter(|n| rt.namespaced && !n.is_empty());
    lock(&shared.store)
        .range(&rt.storage, ns, None)
        .map(|(_, o)| to_served(&rt, o))
        .collect()
}

/// Deletes an object at once.
pub(crate) fn delete(
    shared: &Shared,
    resource: &str,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let rt = resolve(shared, resource)?;
    let k = key(&rt, namespace, name);
    let mut store = lock(&shared.store);
    let gone = store
        .remove(&k)
        .map(|o| (*o).clone())
        .ok_or_else(|| ApiError::not_found(&rt, name))?;
    crate::after_write::removed(shared, &mut store, &k, &gone);
    Ok(to_served(&rt, &gone))
}
