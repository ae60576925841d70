//! Decoding of the Kubernetes protobuf encoding for the kinds that kubectl's
//! generator commands send that way (`kubectl create secret|configmap|
//! namespace` and `kubectl auth can-i|whoami`, whose typed clients always
//! write protobuf). Only request bodies of those kinds are decoded; answers
//! are always JSON, which the clients accept.

use serde_json::{Map, Value, json};

use crate::defaults::base64;
use crate::resources::ResourceType;
use crate::status::ApiError;

/// How a field's bytes become JSON.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    /// Bytes, as base64 (`[]byte` in JSON).
    Bytes,
    Int,
    Bool,
    /// `metav1.Time`: seconds and nanos, as an RFC 3339 string.
    Time,
    Msg(&'static [Field]),
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>`, values as base64.
    MapBytes,
}

/// One protobuf field of a message.
#[derive(Debug, Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn rep(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const TYPE_META: &[Field] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];
const UNKNOWN: &[Field] = &[f(1, "typeMeta", Ty::Msg(TYPE_META)), f(2, "raw", Ty::Bytes)];
const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];
const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    rep(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    rep(14, "finalizers", Ty::Str),
];
const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];
const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];
const NAMESPACE_SPEC: &[Field] = &[rep(1, "finalizers", Ty::Str)];
const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
];

const RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];
const ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];
/// `kubectl auth can-i`'s SelfSubjectAccessReview.
const SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(ACCESS_REVIEW_SPEC)),
];
const RULES_REVIEW_SPEC: &[Field] = &[f(1, "namespace", Ty::Str)];
/// `kubectl auth can-i --list`'s SelfSubjectRulesReview.
const SELF_SUBJECT_RULES_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(RULES_REVIEW_SPEC)),
];

/// `kubectl auth whoami`'s SelfSubjectReview.
const SELF_SUBJECT_REVIEW: &[Field] = &[f(1, "metadata", Ty::Msg(OBJECT_META))];

/// Whether a content type is the protobuf encoding.
pub(crate) fn is_protobuf(mime: &str) -> bool {
    mime == "application/vnd.kubernetes.protobuf"
}

/// Decodes a protobuf request body (`k8s\0` + `runtime.Unknown`) of `rt`.
pub(crate) fn decode(rt: &ResourceType, body: &[u8]) -> Result<Value, ApiError> {
    let schema = match rt.kind.as_str() {
        "Secret" => SECRET,
        "ConfigMap" => CONFIG_MAP,
        "Namespace" => NAMESPACE,
        "SelfSubjectAccessReview" => SELF_SUBJECT_ACCESS_REVIEW,
        "SelfSubjectRulesReview" => SELF_SUBJECT_RULES_REVIEW,
        "SelfSubjectReview" => SELF_SUBJECT_REVIEW,
        other => {
            return Err(ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the fake API server decodes protobuf only for Secret, ConfigMap, Namespace and self-subject reviews, not {other}; send JSON (for example `kubectl create ... --dry-run=client -o yaml | kubectl apply -f -`)"
                ),
            ));
        }
    };
    let bad = |e: String| ApiError::bad_request(format!("couldn't decode the protobuf body: {e}"));
    let envelope = body
        .strip_prefix(b"k8s\0")
        .ok_or_else(|| bad("no k8s magic".to_owned()))?;
    let unknown = message(envelope, UNKNOWN, true).map_err(bad)?;
    let raw = unknown_raw(envelope).map_err(bad)?;
    let mut obj = message(raw, schema, false).map_err(bad)?;
    if let Some(Value::Object(tm)) = unknown.get("typeMeta") {
        for (k, v) in tm {
            obj.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(obj))
}

/// The `raw` bytes of a `runtime.Unknown` (field 2), kept as bytes.
fn unknown_raw(buf: &[u8]) -> Result<&[u8], String> {
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let key = r.varint()?;
        match key & 7 {
            2 => {
                let bytes = r.bytes()?;
                if key >> 3 == 2 {
                    return Ok(bytes);
                }
            }
            wire => r.skip(wire)?,
        }
    }
    Err("the envelope has no raw object".to_owned())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err("varint too long".to_owned())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let len = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
        let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len());
        let end = end.ok_or("truncated field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        let n = match wire {
            0 => return self.varint().map(drop),
            1 => 8,
            2 => return self.bytes().map(drop),
            5 => 4,
            other => return Err(format!("unsupported wire type {other}")),
        };
        self.pos += n;
        if self.pos > self.buf.len() {
            return Err("truncated field".to_owned());
        }
        Ok(())
    }
}

fn text(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
}

/// A `map<string, X>` entry: key (1) and value (2).
fn map_entry(bytes: &[u8], value_as_base64: bool) -> Result<(String, Value), String> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let (mut key, mut value) = (String::new(), Vec::new());
    while !r.done() {
        let k = r.varint()?;
        match (k >> 3, k & 7) {
            (1, 2) => key = text(r.bytes()?)?,
            (2, 2) => value = r.bytes()?.to_vec(),
            (_, wire) => r.skip(wire)?,
        }
    }
    let value = if value_as_base64 {
        json!(base64(&value))
    } else {
        json!(text(&value)?)
    };
    Ok((key, value))
}

fn time(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let mut seconds = 0i64;
    while !r.done() {
        let k = r.varint()?;
        match (k >> 3, k & 7) {
            (1, 0) => seconds = r.varint()?.cast_signed(),
            (_, wire) => r.skip(wire)?,
        }
    }
    if seconds == 0 {
        return Ok(Value::Null);
    }
    let ts = jiff::Timestamp::from_second(seconds).map_err(|e| e.to_string())?;
    Ok(json!(format!("{ts:.0}")))
}

/// Decodes one message; `lenient` skips fields of the wrong wire type.
fn message(buf: &[u8], fields: &[Field], lenient: bool) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut r = Reader { buf, pos: 0 };
    while !r.done() {
        let key = r.varint()?;
        let (num, wire) = (key >> 3, key & 7);
        let Some(field) = fields.iter().find(|f| f.num == num) else {
            r.skip(wire)?;
            continue;
        };
        let value = match (field.ty, wire) {
            (Ty::Int, 0) => json!(r.varint()?.cast_signed()),
            (Ty::Bool, 0) => json!(r.varint()? != 0),
            (Ty::Str, 2) => json!(text(r.bytes()?)?),
            (Ty::Bytes, 2) => json!(base64(r.bytes()?)),
            (Ty::Time, 2) => time(r.bytes()?)?,
            (Ty::Msg(inner), 2) => Value::Object(message(r.bytes()?, inner, lenient)?),
            (ty @ (Ty::MapStr | Ty::MapBytes), 2) => {
                let (k, v) = map_entry(r.bytes()?, matches!(ty, Ty::MapBytes))?;
                let map = out.entry(field.name).or_insert_with(|| json!({}));
                if let Value::Object(m) = map {
                    m.insert(k, v);
                }
                continue;
            }
            (_, wire) if lenient => {
                r.skip(wire)?;
                continue;
            }
            (ty, wire) => {
                return Err(format!(
                    "field {} ({ty:?}) has wire type {wire}",
                    field.name
                ));
            }
        };
        // Go omits empty strings and zero numbers from JSON (`omitempty`);
        // protobuf writes them.
        if value.is_null() || value == "" || value == 0 {
            continue;
        }
        if field.repeated {
            let list = out.entry(field.name).or_insert_with(|| json!([]));
            if let Value::Array(items) = list {
                items.push(value);
            }
        } else {
            out.insert(field.name.to_owned(), value);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut n: u64, out: &mut Vec<u8>) {
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(num: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    #[test]
    fn decodes_a_secret_envelope() {
        let mut meta = Vec::new();
        field(1, b"tls", &mut meta);
        let mut label = Vec::new();
        field(1, b"app", &mut label);
        field(2, b"web", &mut label);
        field(11, &label, &mut meta);
        field(8, &[], &mut meta); // a zero creationTimestamp
        let mut secret = Vec::new();
        field(1, &meta, &mut secret);
        let mut entry = Vec::new();
        field(1, b"tls.key", &mut entry);
        field(2, b"foo", &mut entry);
        field(2, &entry, &mut secret);
        field(3, b"kubernetes.io/tls", &mut secret);
        let mut tm = Vec::new();
        field(1, b"v1", &mut tm);
        field(2, b"Secret", &mut tm);
        let mut unknown = Vec::new();
        field(1, &tm, &mut unknown);
        field(2, &secret, &mut unknown);
        field(4, b"application/vnd.kubernetes.protobuf", &mut unknown);
        let body = [b"k8s\0".as_slice(), &unknown].concat();
        let Some(rt) = crate::resources::builtin("secret") else {
            panic!("secrets are served");
        };
        let obj = decode(&rt, &body).unwrap_or_default();
        assert_eq!(
            obj,
            json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "tls", "labels": {"app": "web"}},
                "data": {"tls.key": "Zm9v"}, "type": "kubernetes.io/tls"})
        );
        assert!(decode(&rt, b"nope").is_err());
        let Some(ing) = crate::resources::builtin("ing") else {
            panic!("ingresses are served");
        };
        assert_eq!(decode(&ing, &body).map_err(|e| e.code), Err(415));
    }
}
