//! `/openapi/v2` in the protobuf encoding client-go asks for (`Accept:
//! application/com.github.proto-openapi.spec.v2@v1.0+protobuf`), which it
//! decodes whatever the answer's type: gnostic's `openapi.v2.Document`
//! message (google/gnostic `openapiv2/OpenAPIv2.proto`). Written by hand for
//! the fields a Kubernetes document uses: the swagger version, info and the
//! definitions with their schemas; vendor extensions (`x-kubernetes-*`) and
//! default/enum/example values travel as YAML text, of which JSON is a
//! subset.

use serde_json::Value;

/// The media type the answer carries (kube-openapi answers this one also
/// to the `...spec.v2@v1.0+protobuf` client-go asks for, which Go's
/// media-type parser would refuse in a Content-Type).
pub(crate) const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A protobuf message being written.
#[derive(Debug, Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.tag(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn message(&mut self, field: u32, m: &Message) {
        self.bytes(field, &m.0);
    }

    fn int(&mut self, field: u32, n: i64) {
        if n != 0 {
            self.tag(field, 0);
            self.varint(n as u64);
        }
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.tag(field, 0);
            self.varint(1);
        }
    }

    fn double(&mut self, field: u32, x: f64) {
        self.tag(field, 1);
        self.0.extend_from_slice(&x.to_le_bytes());
    }
}

/// `Any { yaml = 2 }`.
fn any(v: &Value) -> Message {
    let mut m = Message::default();
    m.string(2, &v.to_string());
    m
}

/// `NamedAny { name = 1; value = 2 }` for each `x-` key.
fn vendor_extensions(m: &mut Message, field: u32, obj: &serde_json::Map<String, Value>) {
    for (k, v) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Message::default();
        named.string(1, k);
        named.message(2, &any(v));
        m.message(field, &named);
    }
}

/// `NamedSchema` entries of a map of schemas (`Properties`, `Definitions`).
fn named_schemas(map: &serde_json::Map<String, Value>) -> Message {
    let mut m = Message::default();
    for (name, schema) in map {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, &schema_message(schema));
        m.message(1, &named);
    }
    m
}

/// `openapi.v2.Schema`.
fn schema_message(v: &Value) -> Message {
    let mut m = Message::default();
    let Value::Object(s) = v else {
        return m;
    };
    let text = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("");
    let int = |k: &str| s.get(k).and_then(Value::as_i64).unwrap_or(0);
    let flag = |k: &str| s.get(k).and_then(Value::as_bool).unwrap_or(false);
    m.string(1, text("$ref"));
    m.string(2, text("format"));
    m.string(3, text("title"));
    m.string(4, text("description"));
    if let Some(d) = s.get("default") {
        m.message(5, &any(d));
    }
    if let Some(x) = s.get("maximum").and_then(Value::as_f64) {
        m.double(7, x);
    }
    m.boolean(8, flag("exclusiveMaximum"));
    if let Some(x) = s.get("minimum").and_then(Value::as_f64) {
        m.double(9, x);
    }
    m.boolean(10, flag("exclusiveMinimum"));
    for (field, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        m.int(field, int(key));
    }
    m.string(13, text("pattern"));
    m.boolean(16, flag("uniqueItems"));
    for r in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.string(19, r.as_str().unwrap_or(""));
    }
    for e in s
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(20, &any(e));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.tag(2, 0);
            item.varint(u64::from(*b));
            m.message(21, &item);
        }
        Some(schema @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, &schema_message(schema));
            m.message(21, &item);
        }
        _ => {}
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() {
        let mut item = Message::default();
        for t in types {
            item.string(1, t);
        }
        m.message(22, &item);
    }
    match s.get("items") {
        Some(one @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, &schema_message(one));
            m.message(23, &item);
        }
        Some(Value::Array(many)) => {
            let mut item = Message::default();
            for one in many {
                item.message(1, &schema_message(one));
            }
            m.message(23, &item);
        }
        _ => {}
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, &schema_message(sub));
    }
    if let Some(Value::Object(props)) = s.get("properties") {
        m.message(25, &named_schemas(props));
    }
    m.boolean(27, flag("readOnly"));
    if let Some(e) = s.get("example") {
        m.message(30, &any(e));
    }
    vendor_extensions(&mut m, 31, s);
    m
}

/// The protobuf encoding of an OpenAPI v2 document.
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    m.string(
        1,
        doc.get("swagger").and_then(Value::as_str).unwrap_or("2.0"),
    );
    let mut info = Message::default();
    info.string(
        1,
        doc.pointer("/info/title")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    info.string(
        2,
        doc.pointer("/info/version")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    m.message(2, &info);
    if let Some(Value::Object(defs)) = doc.get("definitions") {
        m.message(9, &named_schemas(defs));
    }
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Reads (field, wire type, payload) triples of one message level.
    fn fields(mut b: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut n = 0u64;
            for shift in (0..64).step_by(7) {
                let byte = b[0];
                *b = &b[1..];
                n |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    break;
                }
            }
            n
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let tag = varint(&mut b);
            let (field, wire) = (tag >> 3, tag & 7);
            let payload = match wire {
                0 => varint(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let p = b[..8].to_vec();
                    b = &b[8..];
                    p
                }
                _ => {
                    let len = varint(&mut b) as usize;
                    let p = b[..len].to_vec();
                    b = &b[len..];
                    p
                }
            };
            out.push((field, wire, payload));
        }
        out
    }

    #[test]
    fn encodes_the_gnostic_document() {
        let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.37.0"},
            "definitions": {"io.k8s.api.core.v1.Secret": {
                "type": "object", "description": "d", "required": ["a"],
                "properties": {"data": {"type": "object", "additionalProperties": {"type": "string", "format": "byte"}}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "Secret", "version": "v1"}]}}});
        let top = fields(&encode(&doc));
        assert_eq!(top[0], (1, 2, b"2.0".to_vec()));
        assert_eq!(top[1].0, 2);
        let (_, _, defs) = &top[2];
        assert_eq!(top[2].0, 9);
        let named = fields(defs);
        let entry = fields(&named[0].2);
        assert_eq!(entry[0].2, b"io.k8s.api.core.v1.Secret".to_vec());
        let schema = fields(&entry[1].2);
        let numbers: Vec<u64> = schema.iter().map(|f| f.0).collect();
        assert_eq!(numbers, [4, 19, 22, 25, 31]);
        let ext = fields(&schema[4].2);
        assert_eq!(ext[0].2, b"x-kubernetes-group-version-kind".to_vec());
        let yaml = fields(&ext[1].2);
        assert_eq!(yaml[0].0, 2);
        let parsed: Value = serde_json::from_slice(&yaml[0].2).unwrap_or_default();
        assert_eq!(parsed[0]["kind"], "Secret");
    }
}
