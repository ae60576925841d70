//! `labelSelector` and `fieldSelector` parsing and matching, for lists,
//! watches and deletecollection.

use serde_json::Value;

use crate::query::Query;
use crate::status::ApiError;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// One field requirement: a dotted path compared with `=`/`==` or `!=`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    path: String,
    equal: bool,
    value: String,
}

/// The selectors of one request; empty selectors match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Selectors {
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

impl Selectors {
    /// Reads `labelSelector` and `fieldSelector` from a query.
    pub(crate) fn from_query(q: &Query) -> Result<Self, ApiError> {
        let labels = match q.get("labelSelector") {
            Some(s) => parse_labels(s)
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?,
            None => Vec::new(),
        };
        let fields = match q.get("fieldSelector") {
            Some(s) => parse_fields(s).map_err(ApiError::bad_request)?,
            None => Vec::new(),
        };
        Ok(Self { labels, fields })
    }

    /// Whether the query had neither selector.
    pub(crate) fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether an object matches both selectors.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels");
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
            LabelReq::Gt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelReq::Lt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        });
        labels_ok
            && self
                .fields
                .iter()
                .all(|f| (field_value(obj, &f.path) == f.value) == f.equal)
    }
}

/// Whether labels (a JSON map) match a `metav1.LabelSelector` object
/// (`matchLabels` and `matchExpressions` with In, NotIn, Exists,
/// DoesNotExist). An empty selector matches everything; an unknown
/// operator matches nothing.
pub(crate) fn label_selector_matches(selector: &Value, labels: &Value) -> bool {
    let label = |k: &str| labels.get(k).and_then(Value::as_str);
    let exact = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .all(|(k, v)| label(k) == v.as_str());
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|e| {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            match e.get("operator").and_then(Value::as_str) {
                Some("In") => label(key).is_some_and(|l| values.contains(&l)),
                Some("NotIn") => !label(key).is_some_and(|l| values.contains(&l)),
                Some("Exists") => label(key).is_some(),
                Some("DoesNotExist") => label(key).is_none(),
                _ => false,
            }
        });
    exact && expressions
}

/// A field's value as a selector compares it: strings as is, numbers and
/// booleans printed, missing as `""`.
fn field_value(obj: &Value, path: &str) -> String {
    let mut cur = obj;
    for part in path.split('.') {
        match cur.get(part) {
            Some(v) => cur = v,
            None => return String::new(),
        }
    }
    match cur {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn check_key(key: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && key.len() <= 317
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(key.to_owned())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn parse_labels(s: &str) -> Result<Vec<LabelReq>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    split_top_level(s)
        .into_iter()
        .map(|part| parse_label_req(part.trim()))
        .collect()
}

fn parse_label_req(p: &str) -> Result<LabelReq, String> {
    if let Some(key) = p.strip_prefix('!') {
        return Ok(LabelReq::NotExists(check_key(key.trim())?));
    }
    if let Some(open) = p.find('(') {
        let head: Vec<&str> = p[..open].split_whitespace().collect();
        let close = p
            .rfind(')')
            .filter(|c| *c > open && p[c + 1..].trim().is_empty())
            .ok_or_else(|| format!("unterminated value set in {p:?}"))?;
        let values: Vec<String> = p[open + 1..close]
            .split(',')
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect();
        return match head.as_slice() {
            [key, "in"] => Ok(LabelReq::In(check_key(key)?, values)),
            [key, "notin"] => Ok(LabelReq::NotIn(check_key(key)?, values)),
            _ => Err(format!(
                "expected `key in (...)` or `key notin (...)`, got {p:?}"
            )),
        };
    }
    for (op, neg) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = p.split_once(op) {
            let (k, v) = (check_key(k.trim())?, v.trim().to_owned());
            return Ok(if neg {
                LabelReq::NotEq(k, v)
            } else {
                LabelReq::Eq(k, v)
            });
        }
    }
    for (op, gt) in [(">", true), ("<", false)] {
        if let Some((k, v)) = p.split_once(op) {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("value {v:?} of {p:?} is not an integer"))?;
            let k = check_key(k.trim())?;
            return Ok(if gt {
                LabelReq::Gt(k, n)
            } else {
                LabelReq::Lt(k, n)
            });
        }
    }
    Ok(LabelReq::Exists(check_key(p)?))
}

fn parse_fields(s: &str) -> Result<Vec<FieldReq>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|part| {
            let part = part.trim();
            for (op, equal) in [("!=", false), ("==", true), ("=", true)] {
                if let Some((k, v)) = part.split_once(op) {
                    let path = k.trim();
                    if path.is_empty() {
                        break;
                    }
                    return Ok(FieldReq {
                        path: path.to_owned(),
                        equal,
                        value: v.trim().to_owned(),
                    });
                }
            }
            Err(format!("invalid field selector: {part:?}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(labels: &str, fields: &str) -> Selectors {
        let q = Query::parse(&format!(
            "labelSelector={}&fieldSelector={}",
            crate::query::percent_encode(labels),
            crate::query::percent_encode(fields)
        ));
        match Selectors::from_query(&q) {
            Ok(s) => s,
            Err(e) => panic!("{labels:?} {fields:?}: {e}"),
        }
    }

    #[test]
    fn label_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "web", "tier": "1"}}});
        for (s, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=api", false),
            ("app!=api", true),
            ("missing!=x", true),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app in (api, web)", true),
            ("app in (api)", false),
            ("app notin (api)", true),
            ("missing notin (api)", true),
            ("app in (web),tier=1", true),
            ("app in (web),tier=2", false),
            ("tier>0", true),
            ("tier<1", false),
        ] {
            assert_eq!(sel(s, "").matches(&obj), want, "{s}");
        }
        let q = Query::parse("labelSelector=app%20in%20(a");
        assert!(Selectors::from_query(&q).is_err());
        let q = Query::parse("labelSelector=%3Dx");
        assert!(Selectors::from_query(&q).is_err());
    }

    #[test]
    fn label_selector_objects() {
        let labels = json!({"app": "web", "env": "prod"});
        assert!(label_selector_matches(&json!({}), &labels));
        assert!(label_selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            &labels
        ));
        assert!(!label_selector_matches(
            &json!({"matchLabels": {"app": "api"}}),
            &labels
        ));
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "env", "operator": op, "values": values}]});
        assert!(label_selector_matches(
            &expr("In", json!(["prod", "dev"])),
            &labels
        ));
        assert!(!label_selector_matches(
            &expr("NotIn", json!(["prod"])),
            &labels
        ));
        assert!(label_selector_matches(&expr("Exists", json!([])), &labels));
        assert!(!label_selector_matches(
            &expr("DoesNotExist", json!([])),
            &labels
        ));
        assert!(!label_selector_matches(&expr("Bogus", json!([])), &labels));
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}, "type": "Opaque", "n": 3});
        assert!(sel("", "metadata.name=a").matches(&obj));
        assert!(sel("", "metadata.name==a,metadata.namespace=ns").matches(&obj));
        assert!(!sel("", "metadata.name!=a").matches(&obj));
        assert!(sel("", "type=Opaque,n=3").matches(&obj));
        assert!(sel("", "spec.nodeName=").matches(&obj));
        assert!(Selectors::from_query(&Query::parse("fieldSelector=bogus")).is_err());
    }
}
