//! A manifest file's text into objects, one object at a time, with the YAML
//! parser's budget scaled to the file's size.
//!
//! The file is never turned into one `serde_json::Value` tree: each document
//! (and each item of a `kind: List`) is read into a small tree of its own,
//! typed at once into an [`Object`] and dropped, so a 10,000-model List
//! costs its objects, not a tree ten times their size. A document that is
//! not an object, or does not parse as its kind, is reported and skipped;
//! its neighbours are kept.
//!
//! Bounds: the YAML budget allows at most about one node, and one event
//! replayed through an alias, per byte of the file (itself at most
//! [`super::MAX_FILE_BYTES`]), so an alias bomb is refused after a few times
//! its own size in events, before it builds anything large.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::objects::{Object, ObjectError};

use super::FileError;

/// Why one document of a file was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skipped {
    /// The document (or List item) is not a mapping.
    NotObject,
    /// It claims a watched kind but does not parse as one.
    Invalid(ObjectError),
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotObject => f.write_str("document is not an object"),
            Self::Invalid(error) => write!(f, "{error}"),
        }
    }
}

/// What a file's documents turned into, in file order (List items in
/// place of their List).
#[derive(Debug, Default)]
pub struct Parsed {
    /// The objects of watched kinds.
    pub objects: Vec<Object>,
    /// The documents skipped, with why.
    pub skipped: Vec<Skipped>,
}

impl Parsed {
    fn append(&mut self, mut other: Parsed) {
        self.objects.append(&mut other.objects);
        self.skipped.append(&mut other.skipped);
    }
}

/// Parses a file's text: one JSON document, or every document of a YAML
/// stream (empty documents are skipped).
pub fn parse(text: &str, json: bool) -> Result<Parsed, FileError> {
    let documents: Vec<Document> = if json {
        vec![serde_json::from_str(text)?]
    } else {
        serde_saphyr::from_multiple_with_options(text, yaml_options(text.len()))
            .map_err(|e| FileError::Yaml(e.to_string()))?
    };
    let mut parsed = Parsed::default();
    for document in documents {
        parsed.append(document.0);
    }
    Ok(parsed)
}

/// The YAML budget for a file of `len` bytes: counts a real manifest stays
/// far below (a node, an event, a document take at least a byte or a few),
/// which alias expansion cannot exceed without being refused.
fn yaml_options(len: usize) -> serde_saphyr::Options {
    let slack = 4096;
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: len.saturating_mul(2).saturating_add(slack),
            max_nodes: len.saturating_add(slack),
            max_aliases: len / 2 + slack,
            max_anchors: len / 2 + slack,
            max_documents: len / 4 + slack,
            max_recorded_anchor_events: len.saturating_add(slack),
            max_recorded_anchor_bytes: len.saturating_add(slack),
            max_total_scalar_bytes: len.saturating_add(slack),
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: len.saturating_add(slack),
        },
    }
}

/// One document: the objects it holds (one, or a List's items, or none).
struct Document(Parsed);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DocumentVisitor)
    }
}

struct DocumentVisitor;

impl DocumentVisitor {
    fn not_object<E>(self) -> Result<Document, E> {
        Ok(Document(Parsed {
            objects: Vec::new(),
            skipped: vec![Skipped::NotObject],
        }))
    }
}

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    /// The fields of one object, read into a small tree each, except a
    /// List's `items`, typed one by one as they are read.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let mut fields = Map::new();
        let mut items: Option<Items> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" && items.is_none() {
                items = Some(map.next_value()?);
            } else {
                let value: Value = map.next_value()?;
                fields.insert(key, value);
            }
        }
        if fields.get("kind").and_then(Value::as_str) == Some("List") {
            return Ok(Document(items.map(|i| i.0).unwrap_or_default()));
        }
        let mut parsed = Parsed::default();
        match Object::from_value(Value::Object(fields)) {
            Ok(Some(object)) => parsed.objects.push(object),
            Ok(None) => {}
            Err(error) => parsed.skipped.push(Skipped::Invalid(error)),
        }
        Ok(Document(parsed))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Document, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_object()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Document, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_none<E: de::Error>(self) -> Result<Document, E> {
        self.not_object()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Document, E> {
        self.not_object()
    }
}

/// A List's `items`: each one a document of its own (nested Lists are
/// flattened in place). Anything but a sequence holds nothing.
struct Items(Parsed);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = Items;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of Kubernetes objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
        let mut parsed = Parsed::default();
        while let Some(document) = seq.next_element::<Document>()? {
            parsed.append(document.0);
        }
        Ok(Items(parsed))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Items(Parsed::default()))
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Items, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Items, E> {
        Ok(Items(Parsed::default()))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Items, E> {
        Ok(Items(Parsed::default()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Items, E> {
        Ok(Items(Parsed::default()))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Items, E> {
        Ok(Items(Parsed::default()))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Items, E> {
        Ok(Items(Parsed::default()))
    }

    fn visit_none<E: de::Error>(self) -> Result<Items, E> {
        Ok(Items(Parsed::default()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Items, E> {
        Ok(Items(Parsed::default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(parsed: &Parsed) -> Vec<String> {
        parsed.objects.iter().map(|o| o.key().to_string()).collect()
    }

    #[test]
    fn lists_nest_and_keep_file_order_and_bad_items_are_skipped_alone() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}},
            {"kind": "List", "items": [
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "b"}},
                7,
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bad"}, "spec": {"ports": 7}}]},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}}]}"#;
        let parsed = parse(text, true).unwrap();
        assert_eq!(
            keys(&parsed),
            [
                "Service default/a",
                "Service default/b",
                "Service default/c"
            ]
        );
        assert_eq!(parsed.skipped.len(), 2);
        assert_eq!(parsed.skipped[0], Skipped::NotObject);
        assert!(
            parsed.skipped[1].to_string().contains("bad"),
            "{:?}",
            parsed.skipped
        );
    }

    #[test]
    fn items_of_other_kinds_are_not_objects_of_the_file() {
        let text = "apiVersion: v1\nkind: ServiceList\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata: {name: a}\n";
        let parsed = parse(text, false).unwrap();
        assert!(parsed.objects.is_empty() && parsed.skipped.is_empty());
    }

    #[test]
    fn yaml_streams_and_scalar_documents() {
        let text =
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\n---\njust text\n---\n";
        let parsed = parse(text, false).unwrap();
        assert_eq!(keys(&parsed), ["Service default/a"]);
        assert_eq!(parsed.skipped, [Skipped::NotObject]);
    }

    #[test]
    fn an_alias_bomb_is_refused_by_a_budget_scaled_to_the_file() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..8 {
            let prev = (b'a' + level - 1) as char;
            let name = (b'a' + level) as char;
            text.push_str(&format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            ));
        }
        let error = parse(&text, false).unwrap_err();
        assert!(matches!(error, FileError::Yaml(_)), "{error}");
    }

    #[test]
    fn a_large_list_within_the_budget_parses() {
        let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
        for i in 0..3000 {
            text.push_str(&format!(
                "- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s{i}\n  spec:\n    ports:\n    - port: 80\n"
            ));
        }
        assert_eq!(parse(&text, false).unwrap().objects.len(), 3000);
    }
}
