//! Object semantics shared by every write: type, name and namespace checks,
//! system fields (uid, creationTimestamp, generation), optimistic
//! concurrency, the `/status` split and finalizers. Per-kind defaults are in
//! [`crate::defaults`].

use serde_json::{Map, Value, json};

use crate::defaults;
use crate::resources::ResourceType;
use crate::status::ApiError;

/// How an update treats `.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpdateMode {
    /// PUT/PATCH of the main resource: `.status` is kept from the stored
    /// object when the kind has a `/status` subresource.
    Main,
    /// PUT/PATCH of `/status`: only `.status` changes.
    Status,
    /// The test-only direct store access: the object is taken whole.
    Direct,
}

/// A string field of `metadata`, `""` when missing.
pub(crate) fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A value as a mutable map, replaced by `{}` when it is not an object.
fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    let Value::Object(map) = v else {
        unreachable!("made an object just above")
    };
    map
}

/// `metadata` as a mutable map, created when missing.
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    ensure_object(ensure_object(obj).entry("metadata").or_insert(Value::Null))
}

/// The current time as Kubernetes writes timestamps (RFC 3339, seconds, UTC).
pub(crate) fn now_rfc3339() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

/// A random RFC 4122 version-4 UUID.
pub(crate) fn new_uid() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The name suffix `generateName` gets, from Kubernetes' alphabet.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| char::from(ALPHABET[fastrand::usize(..ALPHABET.len())]))
        .collect()
}

/// Checks `apiVersion`/`kind` against the URL's resource and fills them in
/// when missing; the body must be a JSON object.
fn check_type(rt: &ResourceType, obj: &mut Value) -> Result<(), ApiError> {
    let Value::Object(map) = obj else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let api_version = rt.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {}
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {}
        Some(k) if k == rt.kind.as_str() => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
    }
    map.insert("apiVersion".to_owned(), json!(api_version));
    map.insert("kind".to_owned(), json!(rt.kind));
    Ok(())
}

/// Checks that the body's namespace agrees with the URL's and sets it
/// (cluster-scoped objects carry none).
fn set_namespace(rt: &ResourceType, obj: &mut Value, ns: &str) -> Result<(), ApiError> {
    let meta = meta_mut(obj);
    if !rt.namespaced {
        meta.remove("namespace");
        return Ok(());
    }
    match meta.get("namespace").and_then(Value::as_str) {
        None | Some("") => {}
        Some(n) if n == ns => {}
        Some(_) => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    meta.insert("namespace".to_owned(), json!(ns));
    Ok(())
}

/// Validates and completes an object for a create. `ns` is the URL's
/// namespace (ignored for cluster-scoped kinds); `reset_status` drops a
/// client-supplied status for kinds with a `/status` subresource.
pub(crate) fn prepare_create(
    rt: &ResourceType,
    ns: &str,
    mut obj: Value,
    reset_status: bool,
) -> Result<Value, ApiError> {
    check_type(rt, &mut obj)?;
    set_namespace(rt, &mut obj, ns)?;
    let meta = meta_mut(&mut obj);
    let mut name = meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if name.is_empty() {
        let prefix = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if prefix.is_empty() {
            let errs = crate::validation::validate_name(rt, &Value::Object(meta.clone()));
            let errs = if errs.is_empty() {
                vec![crate::validation::FieldError::required(
                    "metadata.name",
                    "name or generateName is required",
                )]
            } else {
                errs
            };
            return Err(ApiError::invalid(rt, "", &errs));
        }
        name = format!("{prefix}{}", random_suffix());
        meta.insert("name".to_owned(), json!(name));
    }
    meta.insert("uid".to_owned(), json!(new_uid()));
    meta.insert("creationTimestamp".to_owned(), json!(now_rfc3339()));
    meta.insert("generation".to_owned(), json!(1));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    if reset_status && rt.status_subresource {
        if let Value::Object(map) = &mut obj {
            map.remove("status");
        }
        if let Some(status) = defaults::initial_status(rt, &obj)
            && let Value::Object(map) = &mut obj
        {
            map.insert("status".to_owned(), status);
        }
    }
    defaults::apply(rt, &mut obj, None);
    Ok(obj)
}

/// Validates and completes an update of `old` into `new` (a full object:
/// the PUT body, or the result of a patch). Returns the object to store.
pub(crate) fn prepare_update(
    rt: &ResourceType,
    old: &Value,
    mut new: Value,
    mode: UpdateMode,
) -> Result<Value, ApiError> {
    check_type(rt, &mut new)?;
    let name = meta_str(old, "name").to_owned();
    let ns = meta_str(old, "namespace").to_owned();
    set_namespace(rt, &mut new, &ns)?;
    let new_name = meta_str(&new, "name");
    if !new_name.is_empty() && new_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({new_name}) does not match the name on the URL ({name})"
        )));
    }
    let sent_rv = meta_str(&new, "resourceVersion");
    if !sent_rv.is_empty() && sent_rv != meta_str(old, "resourceVersion") {
        return Err(ApiError::stale(rt, &name));
    }
    let sent_uid = meta_str(&new, "uid");
    if !sent_uid.is_empty() && sent_uid != meta_str(old, "uid") {
        return Err(ApiError::conflict(
            rt,
            &name,
            "Precondition failed: UID in precondition does not match the UID of the stored object",
        ));
    }
    if mode == UpdateMode::Status {
        let mut out = old.clone();
        if let Value::Object(map) = &mut out {
            match new.get("status") {
                Some(s) => map.insert("status".to_owned(), s.clone()),
                None => map.remove("status"),
            };
        }
        return Ok(out);
    }
    if mode == UpdateMode::Main
        && rt.status_subresource
        && let Value::Object(map) = &mut new
    {
        match old.get("status") {
            Some(s) => map.insert("status".to_owned(), s.clone()),
            None => map.remove("status"),
        };
    }
    let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let generation = old_meta
        .get("generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let meta = meta_mut(&mut new);
    meta.insert("name".to_owned(), json!(name));
    for kept in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old_meta.get(kept) {
            Some(v) => meta.insert(kept.to_owned(), v.clone()),
            None => meta.remove(kept),
        };
    }
    meta.insert("generation".to_owned(), json!(generation));
    defaults::apply(rt, &mut new, Some(old));
    if spec_changed(old, &new) {
        meta_mut(&mut new).insert("generation".to_owned(), json!(generation + 1));
    }
    Ok(new)
}

/// Whether anything but `metadata` and `status` differs.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "metadata" | "status"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(old) != strip(new)
}

/// Whether an object marked for deletion has no finalizers left (and so is
/// to be removed now).
pub(crate) fn ready_to_go(obj: &Value) -> bool {
    let meta = obj.get("metadata");
    let marked = meta.and_then(|m| m.get("deletionTimestamp")).is_some();
    let finalizers = meta
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    marked && !finalizers
}

/// Whether an object has finalizers (a delete then only marks it).
pub(crate) fn has_finalizers(obj: &Value) -> bool {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Res, builtin};

    fn rt(name: &str) -> Res {
        match builtin(name) {
            Some(r) => r,
            None => panic!("{name} is served"),
        }
    }

    #[test]
    fn create_fills_system_fields() {
        let ing = rt("Ingress");
        let obj = json!({"metadata": {"name": "web"}, "spec": {}, "status": {"x": 1}});
        let out = prepare_create(&ing, "default", obj, true).unwrap_or_default();
        assert_eq!(out["apiVersion"], "networking.k8s.io/v1");
        assert_eq!(out["kind"], "Ingress");
        assert_eq!(out["metadata"]["namespace"], "default");
        assert_eq!(out["metadata"]["generation"], 1);
        assert_eq!(out["metadata"]["uid"].as_str().map(str::len), Some(36));
        assert_eq!(out["status"], json!({"loadBalancer": {}}));
        let ts = out["metadata"]["creationTimestamp"].as_str().unwrap_or("");
        assert!(ts.ends_with('Z') && ts.len() == 20, "{ts}");

        let bad = prepare_create(&ing, "default", json!({"metadata": {}}), true);
        assert_eq!(bad.map_err(|e| e.code), Err(422));
        let wrong = prepare_create(
            &ing,
            "default",
            json!({"kind": "Service", "metadata": {"name": "a"}}),
            true,
        );
        assert_eq!(wrong.map_err(|e| e.code), Err(400));
        let gen_name = prepare_create(
            &ing,
            "default",
            json!({"metadata": {"generateName": "web-"}}),
            true,
        )
        .unwrap_or_default();
        assert_eq!(meta_str(&gen_name, "name").len(), 9);
    }

    #[test]
    fn update_keeps_status_and_bumps_generation() {
        let ing = rt("Ingress");
        let old = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "5", "generation": 1, "creationTimestamp": "t"},
            "spec": {"a": 1}, "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        let new = json!({"metadata": {"name": "web", "resourceVersion": "5"}, "spec": {"a": 2}, "status": {}});
        let out = prepare_update(&ing, &old, new.clone(), UpdateMode::Main).unwrap_or_default();
        assert_eq!(out["status"], old["status"]);
        assert_eq!(out["metadata"]["generation"], 2);
        assert_eq!(out["metadata"]["uid"], "u");
        let st = prepare_update(&ing, &old, new, UpdateMode::Status).unwrap_or_default();
        assert_eq!(st["spec"], old["spec"]);
        assert_eq!(st["status"], json!({}));
        let stale = json!({"metadata": {"name": "web", "resourceVersion": "4"}});
        let err = prepare_update(&ing, &old, stale, UpdateMode::Main).map_err(|e| e.code);
        assert_eq!(err, Err(409));
    }
}
