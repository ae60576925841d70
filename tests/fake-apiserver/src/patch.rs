//! The PATCH algorithms: JSON merge patch (RFC 7386), strategic merge
//! patch driven by the kinds' schemas (also used for server-side apply),
//! and JSON patch (RFC 6902).

use serde_json::{Map, Value};

use crate::resources::ResourceType;
use crate::schemas;

/// RFC 7386: objects merge recursively, `null` removes, anything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    for (k, v) in patch {
        if v.is_null() {
            map.remove(k);
        } else {
            merge_patch(map.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// How a list merges under strategic merge patch, from its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMerge<'a> {
    /// Replaced whole (atomic lists, and lists without schema).
    Replace,
    /// Scalars merged as a set (`finalizers`).
    Set,
    /// Objects merged by a key field.
    ByKey(&'a str),
}

fn list_merge(schema: Option<&Value>) -> ListMerge<'_> {
    let Some(schema) = schema else {
        return ListMerge::Replace;
    };
    let strategy = schema
        .get("x-kubernetes-patch-strategy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !strategy.split(',').any(|s| s == "merge") {
        return ListMerge::Replace;
    }
    match schema
        .get("x-kubernetes-patch-merge-key")
        .and_then(Value::as_str)
    {
        Some(key) => ListMerge::ByKey(key),
        None => ListMerge::Set,
    }
}

/// Strategic merge patch: like a merge patch, except that lists merge as
/// their schema says (by key, as sets, or replaced), and the directives
/// `$patch` (replace, delete), `$retainKeys` and
/// `$deleteFromPrimitiveList/…` are honoured; `$setElementOrder/…` is
/// ignored. For kinds without a built-in schema (custom resources, which
/// take no strategic merge patch) every list is replaced.
pub(crate) fn strategic_merge_patch(rt: &ResourceType, target: &mut Value, patch: &Value) {
    let schema = if rt.custom {
        None
    } else {
        schemas::kind_schema(&rt.group, &rt.version, &rt.kind)
    };
    smp_value(target, patch, schema);
}

fn smp_value(target: &mut Value, patch: &Value, schema: Option<&Value>) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(&Value::Object(patch.clone()));
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(map) = target else {
        return;
    };
    for (k, v) in patch {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(gone)) = (map.get_mut(field), v) {
                list.retain(|x| !gone.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        let delete = v.get("$patch").and_then(Value::as_str) == Some("delete");
        if v.is_null() || delete {
            map.remove(k);
            continue;
        }
        let child = schema.and_then(|s| schemas::property(s, k).or_else(|| schemas::map_values(s)));
        match (map.get_mut(k), v) {
            (Some(Value::Array(cur)), Value::Array(items)) => merge_list(cur, items, child),
            (_, Value::Object(_)) => {
                smp_value(map.entry(k.clone()).or_insert(Value::Null), v, child);
            }
            _ => {
                map.insert(k.clone(), strip_directives(v));
            }
        }
    }
    if let Some(Value::Array(keep)) = patch.get("$retainKeys") {
        map.retain(|k, _| keep.iter().any(|x| x.as_str() == Some(k)));
    }
}

fn merge_list(cur: &mut Vec<Value>, items: &[Value], schema: Option<&Value>) {
    let replace = items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"));
    let how = list_merge(schema);
    let how = match (replace, how) {
        (true, _) => ListMerge::Replace,
        (false, ListMerge::ByKey(key))
            if !items.iter().chain(cur.iter()).all(|i| i.get(key).is_some()) =>
        {
            ListMerge::Replace
        }
        (false, ListMerge::Set) if items.iter().any(Value::is_object) => ListMerge::Replace,
        (false, how) => how,
    };
    let item_schema = schema.and_then(schemas::items);
    match how {
        ListMerge::Replace => {
            *cur = items
                .iter()
                .filter(|i| i.get("$patch").is_none())
                .map(strip_directives)
                .collect();
        }
        ListMerge::Set => {
            for i in items {
                if !cur.contains(i) {
                    cur.push(i.clone());
                }
            }
        }
        ListMerge::ByKey(key) => {
            for item in items {
                let id = item.get(key);
                if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                    cur.retain(|c| c.get(key) != id);
                } else if let Some(existing) = cur.iter_mut().find(|c| c.get(key) == id) {
                    smp_value(existing, item, item_schema);
                } else {
                    cur.push(strip_directives(item));
                }
            }
        }
    }
}

/// A copy without `$`-directive keys, for values inserted whole.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// RFC 6902 JSON patch: `add`, `remove`, `replace`, `move`, `copy`, `test`.
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let Value::Array(ops) = ops else {
        return Err("a JSON patch must be an array of operations".to_owned());
    };
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("operation {op} has no path"))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or_else(|| format!("operation {name} at {path} has no value"))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("operation {name} at {path} has no from"))
        };
        match name {
            "add" => add(target, path, value()?)?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(target, path, value()?)?;
            }
            "move" => {
                let v = remove(target, from()?)?;
                add(target, path, v)?;
            }
            "copy" => {
                let v = target
                    .pointer(&pointer(from()?)?)
                    .cloned()
                    .ok_or_else(|| format!("copy: {} does not exist", from().unwrap_or("")))?;
                add(target, path, v)?;
            }
            "test" => {
                let want = value()?;
                if target.pointer(&pointer(path)?) != Some(&want) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(())
}

/// Validates a JSON pointer (serde_json's `pointer` does the lookups).
fn pointer(path: &str) -> Result<String, String> {
    if path.is_empty() || path.starts_with('/') {
        Ok(path.to_owned())
    } else {
        Err(format!("invalid JSON pointer {path:?}"))
    }
}

/// Splits a pointer into its parent pointer and its unescaped last token.
fn split(path: &str) -> Result<(String, String), String> {
    let path = pointer(path)?;
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| "the root cannot be the target of this operation".to_owned())?;
    Ok((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split(path)?;
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(list)) => {
            let idx = if last == "-" {
                list.len()
            } else {
                last.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= list.len())
                    .ok_or_else(|| format!("add: index {last} out of bounds at {path}"))?
            };
            list.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("add: the parent of {path} does not exist")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split(path)?;
    let missing = || format!("remove: {path} does not exist");
    match target.pointer_mut(&parent) {
        Some(Value::Object(map)) => map.remove(&last).ok_or_else(missing),
        Some(Value::Array(list)) => {
            let idx = last
                .parse::<usize>()
                .ok()
                .filter(|i| *i < list.len())
                .ok_or_else(missing)?;
            Ok(list.remove(idx))
        }
        _ => Err(missing()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut doc = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(
            &mut doc,
            &json!({"a": "z", "c": {"f": null}, "l": [3], "n": {"x": 1}}),
        );
        assert_eq!(
            doc,
            json!({"a": "z", "c": {"d": "e"}, "l": [3], "n": {"x": 1}})
        );
    }

    fn svc_rt() -> crate::resources::Res {
        match crate::resources::builtin("svc") {
            Some(r) => r,
            None => panic!("services are served"),
        }
    }

    #[test]
    fn strategic_merge_by_key() {
        let rt = svc_rt();
        let mut svc = json!({"spec": {"ports": [
            {"name": "http", "port": 80, "targetPort": 8080},
            {"name": "https", "port": 443}
        ], "selector": {"app": "a"}}, "metadata": {"finalizers": ["x"]}});
        strategic_merge_patch(
            &rt,
            &mut svc,
            &json!({
                "$setElementOrder/ports": [{"port": 80}, {"port": 443}],
                "spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443, "$patch": "delete"}]},
                "metadata": {"finalizers": ["y", "x"]}
            }),
        );
        assert_eq!(
            svc["spec"]["ports"],
            json!([{"name": "http", "port": 80, "targetPort": 9090}])
        );
        assert_eq!(svc["metadata"]["finalizers"], json!(["x", "y"]));
        strategic_merge_patch(
            &rt,
            &mut svc,
            &json!({"spec": {"$retainKeys": ["ports"], "selector": null}}),
        );
        assert_eq!(svc["spec"].as_object().map(|m| m.len()), Some(1));
        // Atomic lists are replaced.
        let Some(ing_rt) = crate::resources::builtin("ing") else {
            panic!("ingresses are served");
        };
        let mut ing = json!({"spec": {"rules": [{"host": "a"}, {"host": "b"}]}});
        strategic_merge_patch(
            &ing_rt,
            &mut ing,
            &json!({"spec": {"rules": [{"host": "c"}]}}),
        );
        assert_eq!(ing["spec"]["rules"], json!([{"host": "c"}]));
        // Containers merge by name, their env by name.
        let Some(deploy) = crate::resources::builtin("deploy") else {
            panic!("deployments are served");
        };
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
            {"name": "b", "image": "b:1"}]}}}});
        strategic_merge_patch(
            &deploy,
            &mut d,
            &json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "X", "value": "9"}]}]}}}}),
        );
        let containers = &d["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], "a:1");
        assert_eq!(
            containers[0]["env"],
            json!([{"name": "X", "value": "9"}, {"name": "Y", "value": "2"}])
        );
        assert_eq!(containers[1]["name"], "b");
    }

    #[test]
    fn json_patch_rfc6902() {
        let mut doc = json!({"a": {"b": [1, 2]}, "c": "d"});
        let ops = json!([
            {"op": "test", "path": "/c", "value": "d"},
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "replace", "path": "/c", "value": "e"},
            {"op": "add", "path": "/x~1y", "value": true},
            {"op": "copy", "from": "/c", "path": "/f"},
            {"op": "move", "from": "/f", "path": "/g"},
            {"op": "remove", "path": "/a/b/1"}
        ]);
        assert_eq!(json_patch(&mut doc, &ops), Ok(()));
        assert_eq!(
            doc,
            json!({"a": {"b": [0, 2, 3]}, "c": "e", "x/y": true, "g": "e"})
        );
        let mut doc2 = doc.clone();
        assert!(
            json_patch(
                &mut doc2,
                &json!([{"op": "test", "path": "/c", "value": "z"}])
            )
            .is_err()
        );
        assert!(json_patch(&mut doc2, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(
            json_patch(
                &mut doc2,
                &json!([{"op": "replace", "path": "/nope", "value": 1}])
            )
            .is_err()
        );
        assert!(
            json_patch(
                &mut doc2,
                &json!([{"op": "add", "path": "/a/b/9", "value": 1}])
            )
            .is_err()
        );
        assert!(json_patch(&mut doc2, &json!({"op": "add"})).is_err());
    }
}
