//! What the real server's decoder checks in a request body of a built-in
//! kind, against its schema: fields of the wrong JSON type fail the request
//! (400, `... cannot be handled as a ...: json: cannot unmarshal ...`), and
//! unknown fields follow `fieldValidation`: `Strict` fails it (400, `strict
//! decoding error: unknown field "spec.foo"`), `Warn` (the default) answers
//! a `Warning` header per field, `Ignore` says nothing. Duplicate fields are
//! not detected (the JSON parser keeps the last). Custom resources are
//! stored as written, without these checks.

use serde_json::Value;

use crate::query::Query;
use crate::resources::ResourceType;
use crate::schemas;
use crate::status::ApiError;

/// What was found in a body.
#[derive(Debug, Default)]
struct Findings {
    unknown: Vec<String>,
    /// The first type mismatch: (JSON type, Go field, Go type).
    mismatch: Option<(String, String, String)>,
}

/// The JSON type name Go's decoder reports.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The Go type a schema decodes into, for the mismatch message.
fn go_type(schema: &Value, def: &str) -> String {
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => match schema.get("format").and_then(Value::as_str) {
            Some("int32") => "int32".to_owned(),
            _ => "int64".to_owned(),
        },
        Some("number") => "float64".to_owned(),
        Some("boolean") => "bool".to_owned(),
        Some("string") => "string".to_owned(),
        Some("array") => "[]interface {}".to_owned(),
        _ => format!("v1.{def}"),
    }
}

/// Whether a value fits a schema's type (null fits anything: an omitted
/// field).
fn fits(schema: &Value, v: &Value) -> bool {
    if v.is_null() || schema.get("format").and_then(Value::as_str) == Some("int-or-string") {
        return true;
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("integer") => v.as_i64().is_some() || v.as_u64().is_some(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some("string") => v.is_string() || (v.is_number() && schema.get("format").is_none()),
        Some("array") => v.is_array(),
        Some("object") => v.is_object(),
        _ => true,
    }
}

/// The short name of a definition (`ServicePort` of
/// `io.k8s.api.core.v1.ServicePort`).
fn short(def: &str) -> &str {
    def.rsplit('.').next().unwrap_or(def)
}

/// Walks `v` against `schema`; `path` is the field path with indices
/// (unknown fields), `go_path` without (type errors), `parent` the
/// definition holding the field.
fn walk(schema: &Value, v: &Value, path: &str, go_path: &str, parent: &str, out: &mut Findings) {
    let (schema, def) = match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(schemas::REF_PREFIX))
    {
        Some(name) => (schemas::resolve(schema), short(name)),
        None => (schema, parent),
    };
    if !fits(schema, v) {
        if out.mismatch.is_none() {
            let field = format!("{parent}.{go_path}");
            out.mismatch = Some((json_type(v).to_owned(), field, go_type(schema, def)));
        }
        return;
    }
    let join = |base: &str, k: &str| {
        if base.is_empty() {
            k.to_owned()
        } else {
            format!("{base}.{k}")
        }
    };
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let values = schemas::map_values(schema);
            for (k, child) in map {
                let sub = props.and_then(|p| p.get(k)).or(values);
                match sub {
                    Some(sub) => walk(sub, child, &join(path, k), &join(go_path, k), def, out),
                    None if props.is_some() => out.unknown.push(join(path, k)),
                    None => {}
                }
            }
        }
        Value::Array(list) => {
            if let Some(items) = schema.get("items") {
                for (i, child) in list.iter().enumerate() {
                    walk(items, child, &format!("{path}[{i}]"), go_path, def, out);
                }
            }
        }
        _ => {}
    }
}

/// Checks a body of `rt` (a create or update body, or a patched object);
/// returns the warnings to send, or the 400.
pub(crate) fn check(rt: &ResourceType, body: &Value, q: &Query) -> Result<Vec<String>, ApiError> {
    if rt.custom {
        return Ok(Vec::new());
    }
    let Some(schema) = schemas::kind_schema(&rt.group, &rt.version, &rt.kind) else {
        return Ok(Vec::new());
    };
    let mut found = Findings::default();
    walk(schema, body, "", "", &rt.kind, &mut found);
    let cannot = format!(
        "{} in version \"{}\" cannot be handled as a {}",
        rt.kind, rt.version, rt.kind
    );
    if let Some((json, field, go)) = found.mismatch {
        return Err(ApiError::bad_request(format!(
            "{cannot}: json: cannot unmarshal {json} into Go struct field {field} of type {go}"
        )));
    }
    let unknown: Vec<String> = found
        .unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    match q.get("fieldValidation").unwrap_or("Warn") {
        _ if unknown.is_empty() => Ok(Vec::new()),
        "Strict" => Err(ApiError::bad_request(format!(
            "{cannot}: strict decoding error: {}",
            unknown.join(", ")
        ))),
        "Ignore" => Ok(Vec::new()),
        _ => Ok(unknown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rt(spec: &str) -> crate::resources::Res {
        match crate::resources::builtin(spec) {
            Some(r) => r,
            None => panic!("{spec} is served"),
        }
    }

    #[test]
    fn unknown_fields_by_field_validation() {
        let ing = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "web", "labels": {"any": "x"}},
            "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "bogus": 1,
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}], "extra": true}});
        let strict = check(&rt("ing"), &ing, &Query::parse("fieldValidation=Strict"));
        assert_eq!(
            strict.map_err(|e| e.message),
            Err("Ingress in version \"v1\" cannot be handled as a Ingress: strict decoding error: unknown field \"spec.extra\", unknown field \"spec.rules[0].http.paths[0].bogus\"".to_owned())
        );
        let warn = check(&rt("ing"), &ing, &Query::parse("")).unwrap_or_default();
        assert_eq!(warn.len(), 2);
        assert!(
            check(&rt("ing"), &ing, &Query::parse("fieldValidation=Ignore"))
                .is_ok_and(|w| w.is_empty())
        );
    }

    #[test]
    fn wrong_types_fail() {
        let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": "eighty", "targetPort": "http"}]}});
        let err = check(&rt("svc"), &svc, &Query::parse("")).map_err(|e| e.message);
        assert_eq!(
            err,
            Err("Service in version \"v1\" cannot be handled as a Service: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32".to_owned())
        );
        let ok = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": 8080}]},
            "status": {}});
        assert!(check(&rt("svc"), &ok, &Query::parse("fieldValidation=Strict")).is_ok());
        let quantities = json!({"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [
            {"name": "a", "resources": {"requests": {"cpu": 1, "memory": "32Mi"}}}]}}}});
        assert!(
            check(
                &rt("deploy"),
                &quantities,
                &Query::parse("fieldValidation=Strict")
            )
            .is_ok()
        );
    }
}
