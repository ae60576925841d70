//! Field ownership for server-side apply, in `metadata.managedFields`
//! (FieldsV1: `f:<field>`, `k:<keys>` for list items merged by key,
//! `v:<value>` for set items, `.` for an item itself). An apply records the
//! fields its configuration sets for its field manager, takes them from
//! other managers (as with `force`: there are no conflicts), and removes the
//! fields it set before and no longer sets, unless another manager owns
//! them: so a `helm upgrade` that drops a field drops it from the object.
//! Once an object has managed fields, other writes (create, update, patch)
//! move the fields they change to their manager (`fieldManager`, else the
//! client's User-Agent product, as kube-apiserver names it). Lists and
//! their keys follow the kinds' schemas ([`crate::schemas`]); objects of
//! custom resources treat lists as atomic.

use serde_json::{Map, Value, json};

use crate::objects::{meta_mut, now_rfc3339};
use crate::resources::ResourceType;
use crate::schemas;

/// A set of fields, as FieldsV1 JSON (an empty map is a leaf).
pub(crate) type Fields = Map<String, Value>;

/// The schema of a kind (none for custom resources).
fn kind_schema(rt: &ResourceType) -> Option<&'static Value> {
    if rt.custom {
        None
    } else {
        schemas::kind_schema(&rt.group, &rt.version, &rt.kind)
    }
}

/// How a list's items are identified, from its schema.
enum ListKind<'a> {
    Atomic,
    Set,
    Keyed(&'a str),
}

fn list_kind(schema: Option<&Value>) -> ListKind<'_> {
    let Some(s) = schema else {
        return ListKind::Atomic;
    };
    let strategy = s
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !strategy.split(',').any(|p| p == "merge") {
        return ListKind::Atomic;
    }
    match s
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
    {
        Some(k) => ListKind::Keyed(k),
        None => ListKind::Set,
    }
}

fn child_schema<'a>(schema: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    schema.and_then(|s| schemas::property(s, key).or_else(|| schemas::map_values(s)))
}

fn item_key(key: &str, item: &Value) -> String {
    format!("k:{}", json!({key: item.get(key)}))
}

/// The fields a value sets.
fn fields_in(v: &Value, schema: Option<&Value>) -> Fields {
    let mut out = Fields::new();
    let Value::Object(map) = v else {
        return out;
    };
    for (k, child) in map {
        let sub = child_schema(schema, k);
        let entry = match child {
            Value::Object(m) if !m.is_empty() => Value::Object(fields_in(child, sub)),
            Value::Array(items) => match list_kind(sub) {
                ListKind::Atomic => json!({}),
                ListKind::Set => Value::Object(
                    items
                        .iter()
                        .map(|i| (format!("v:{i}"), json!({})))
                        .collect(),
                ),
                ListKind::Keyed(key) => {
                    let item_schema = sub.and_then(schemas::items);
                    let mut list = Fields::new();
                    for item in items {
                        let mut f = fields_in(item, item_schema);
                        f.insert(".".to_owned(), json!({}));
                        list.insert(item_key(key, item), Value::Object(f));
                    }
                    Value::Object(list)
                }
            },
            _ => json!({}),
        };
        out.insert(format!("f:{k}"), entry);
    }
    out
}

/// The fields a manager may own in an object: everything but its identity,
/// bookkeeping, and `status` (or only `status`, for the subresource).
pub(crate) fn fields_of(rt: &ResourceType, obj: &Value, status: bool) -> Fields {
    let mut all = fields_in(obj, kind_schema(rt));
    all.remove("f:apiVersion");
    all.remove("f:kind");
    if let Some(Value::Object(meta)) = all.get_mut("f:metadata") {
        for k in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "managedFields",
        ] {
            meta.remove(&format!("f:{k}"));
        }
        if meta.is_empty() {
            all.remove("f:metadata");
        }
    }
    if status {
        all.retain(|k, _| k == "f:status");
    } else {
        all.remove("f:status");
    }
    all
}

/// `a` without the fields of `b` (a leaf of `b` takes everything under it).
fn subtract(a: &Fields, b: &Fields) -> Fields {
    let mut out = Fields::new();
    for (k, sub) in a {
        match (sub, b.get(k)) {
            (_, None) => {
                out.insert(k.clone(), sub.clone());
            }
            (Value::Object(sa), Some(Value::Object(sb))) if !sa.is_empty() && !sb.is_empty() => {
                let rest = subtract(sa, sb);
                if !rest.is_empty() {
                    out.insert(k.clone(), Value::Object(rest));
                }
            }
            _ => {}
        }
    }
    out
}

fn union(a: &mut Fields, b: &Fields) {
    for (k, sub) in b {
        match (a.get_mut(k), sub) {
            (Some(Value::Object(sa)), Value::Object(sb)) => union(sa, sb),
            _ => {
                a.insert(k.clone(), sub.clone());
            }
        }
    }
}

/// Removes the fields of `rm` from a value; containers left empty by the
/// removal go too.
fn remove_fields(v: &mut Value, rm: &Fields) {
    for (k, sub) in rm {
        let sub = sub.as_object().cloned().unwrap_or_default();
        let whole = sub.is_empty() || sub.contains_key(".");
        if let Some(name) = k.strip_prefix("f:") {
            let Value::Object(map) = v else { continue };
            if whole {
                map.remove(name);
            } else if let Some(child) = map.get_mut(name) {
                remove_fields(child, &sub);
                if child.as_object().is_some_and(Map::is_empty)
                    || child.as_array().is_some_and(Vec::is_empty)
                {
                    map.remove(name);
                }
            }
        } else if let Some(keys) = k.strip_prefix("k:") {
            let (Value::Array(list), Ok(Value::Object(keys))) =
                (&mut *v, serde_json::from_str::<Value>(keys))
            else {
                continue;
            };
            let matches = |item: &Value| keys.iter().all(|(kk, kv)| item.get(kk) == Some(kv));
            if whole {
                list.retain(|item| !matches(item));
            } else if let Some(item) = list.iter_mut().find(|i| matches(i)) {
                remove_fields(item, &sub);
            }
        } else if let Some(value) = k.strip_prefix("v:") {
            let (Value::Array(list), Ok(value)) = (&mut *v, serde_json::from_str::<Value>(value))
            else {
                continue;
            };
            list.retain(|item| *item != value);
        }
    }
}

/// The managed-fields entries of an object.
fn entries(obj: &Value) -> Vec<Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn entry_fields(e: &Value) -> Fields {
    e.get("fieldsV1")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn is(e: &Value, manager: &str, operation: &str, subresource: &str) -> bool {
    e.get("manager").and_then(Value::as_str) == Some(manager)
        && e.get("operation").and_then(Value::as_str) == Some(operation)
        && e.get("subresource").and_then(Value::as_str).unwrap_or("") == subresource
}

/// Writes `fields` as `manager`'s entry for `operation`, taking them from
/// every other entry (entries left empty go).
fn record(
    obj: &mut Value,
    api_version: &str,
    manager: &str,
    operation: &str,
    status: bool,
    fields: Fields,
) {
    let subresource = if status { "status" } else { "" };
    let mut list = entries(obj);
    let mut mine = list
        .iter()
        .find(|e| is(e, manager, operation, subresource))
        .map(entry_fields)
        .unwrap_or_default();
    if operation == "Apply" {
        mine = fields.clone();
    } else {
        union(&mut mine, &fields);
    }
    list.retain(|e| !is(e, manager, operation, subresource));
    for e in &mut list {
        let rest = subtract(&entry_fields(e), &fields);
        if let Value::Object(m) = e {
            m.insert("fieldsV1".to_owned(), Value::Object(rest));
        }
    }
    list.retain(|e| {
        e.get("fieldsV1")
            .and_then(Value::as_object)
            .is_some_and(|f| !f.is_empty())
    });
    let mut entry = json!({"manager": manager, "operation": operation, "apiVersion": api_version,
        "time": now_rfc3339(), "fieldsType": "FieldsV1", "fieldsV1": mine});
    if status && let Value::Object(m) = &mut entry {
        m.insert("subresource".to_owned(), json!("status"));
    }
    list.push(entry);
    meta_mut(obj).insert("managedFields".to_owned(), Value::Array(list));
}

/// The ownership of an object created by an apply of `config`.
pub(crate) fn created(
    rt: &ResourceType,
    obj: &mut Value,
    config: &Value,
    manager: &str,
    status: bool,
) {
    let applied = fields_of(rt, config, status);
    record(obj, &rt.api_version(), manager, "Apply", status, applied);
}

/// Server-side apply of `config` by `manager` onto `live` (both as the
/// client's version has them): the fields `manager` applied before and no
/// longer applies are removed (unless another manager owns them), the
/// configuration is merged in ([`crate::patch::strategic_merge_patch`]),
/// and the ownership recorded.
pub(crate) fn apply(
    rt: &ResourceType,
    live: &Value,
    config: &Value,
    manager: &str,
    status: bool,
) -> Value {
    let applied = fields_of(rt, config, status);
    let subresource = if status { "status" } else { "" };
    let mut previous = Fields::new();
    let mut others = Fields::new();
    for e in entries(live) {
        if is(&e, manager, "Apply", subresource) {
            previous = entry_fields(&e);
        } else {
            union(&mut others, &entry_fields(&e));
        }
    }
    let dropped = subtract(&subtract(&previous, &applied), &others);
    let mut out = live.clone();
    remove_fields(&mut out, &dropped);
    let mut config = config.clone();
    if let Some(Value::Object(meta)) = config.get_mut("metadata") {
        meta.remove("managedFields");
    }
    crate::patch::strategic_merge_patch(rt, &mut out, &config);
    record(
        &mut out,
        &rt.api_version(),
        manager,
        "Apply",
        status,
        applied,
    );
    out
}

/// The fields of `new` that differ from `old`.
fn changed(old: &Value, new: &Value, schema: Option<&Value>) -> Fields {
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        return Fields::new();
    };
    let mut out = Fields::new();
    for (k, nv) in n {
        let sub = child_schema(schema, k);
        match o.get(k) {
            Some(ov) if ov == nv => {}
            Some(ov @ Value::Object(_)) if nv.is_object() => {
                let c = changed(ov, nv, sub);
                if !c.is_empty() {
                    out.insert(format!("f:{k}"), Value::Object(c));
                }
            }
            _ => {
                let whole = fields_in(&json!({k: nv}), schema);
                union(&mut out, &whole);
            }
        }
    }
    out
}

/// After a write other than an apply, on an object whose fields are
/// managed: the fields it changed move to `manager` (an `Update` entry).
/// Objects without managed fields are left so.
pub(crate) fn update(rt: &ResourceType, old: &Value, new: &mut Value, manager: &str, status: bool) {
    if entries(old).is_empty() {
        return;
    }
    // The stored ownership, whatever the client sent.
    meta_mut(new).insert(
        "managedFields".to_owned(),
        old.pointer("/metadata/managedFields")
            .cloned()
            .unwrap_or_else(|| json!([])),
    );
    let schema = kind_schema(rt);
    let scope = |v: &Value| {
        let mut copy = v.clone();
        if let Value::Object(m) = &mut copy {
            if status {
                m.retain(|k, _| k == "status");
            } else {
                m.remove("status");
                m.remove("metadata");
            }
        }
        copy
    };
    let mut moved = changed(&scope(old), &scope(new), schema);
    if !status {
        let meta_changes = changed(
            &json!({"labels": old.pointer("/metadata/labels"), "annotations": old.pointer("/metadata/annotations")}),
            &json!({"labels": new.pointer("/metadata/labels"), "annotations": new.pointer("/metadata/annotations")}),
            None,
        );
        if !meta_changes.is_empty() {
            moved.insert("f:metadata".to_owned(), Value::Object(meta_changes));
        }
    }
    if !moved.is_empty() {
        record(new, &rt.api_version(), manager, "Update", status, moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtin;

    fn deploy(env: Value, annotations: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "annotations": annotations},
            "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "a:1", "env": env}]}}}})
    }

    #[test]
    fn an_apply_drops_what_it_no_longer_sets() {
        let Some(rt) = builtin("deploy") else {
            panic!("deployments are served");
        };
        let first = deploy(
            json!([{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]),
            json!({"a": "1", "b": "2"}),
        );
        let live = apply(
            &rt,
            &json!({"metadata": {"name": "d"}}),
            &first,
            "helm",
            false,
        );
        let owned = &live["metadata"]["managedFields"][0];
        assert_eq!(
            (owned["manager"].as_str(), owned["operation"].as_str()),
            (Some("helm"), Some("Apply"))
        );
        let containers = &owned["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"];
        assert!(
            containers.get("k:{\"name\":\"m\"}").is_some(),
            "{containers}"
        );
        // Someone else sets annotation c; helm's next apply drops Y and b.
        let mut edited = live.clone();
        edited["metadata"]["annotations"]["c"] = json!("3");
        update(&rt, &live, &mut edited, "kubectl-edit", false);
        let second = deploy(json!([{"name": "X", "value": "9"}]), json!({"a": "1"}));
        let after = apply(&rt, &edited, &second, "helm", false);
        let env = &after["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env, &json!([{"name": "X", "value": "9"}]));
        assert_eq!(
            after["metadata"]["annotations"],
            json!({"a": "1", "c": "3"})
        );
        let managers: Vec<&str> = after["metadata"]["managedFields"]
            .as_array()
            .map(|a| a.iter().filter_map(|e| e["manager"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(managers, ["kubectl-edit", "helm"]);
    }

    #[test]
    fn writes_to_unmanaged_objects_stay_unmanaged() {
        let Some(rt) = builtin("cm") else {
            panic!("configmaps are served");
        };
        let old = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
        let mut new = json!({"metadata": {"name": "c"}, "data": {"a": "2"}});
        update(&rt, &old, &mut new, "kubectl", false);
        assert!(new["metadata"].get("managedFields").is_none());
    }
}
