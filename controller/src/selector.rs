//! Kubernetes label selectors in their string form (`env=prod,tier in
//! (a,b),!legacy`), as `--watch-namespace-selector` takes them: parsed and
//! checked at start-up the way the API server's `labels.Parse` does, matched
//! locally, and printed back in canonical form for watch requests.

use std::collections::BTreeMap;
use std::fmt;

/// One requirement of a selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the label is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the label is absent).
    NotIn(String, Vec<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
    /// `key>n`: the label is an integer greater than `n`.
    GreaterThan(String, i64),
    /// `key<n`: the label is an integer less than `n`.
    LessThan(String, i64),
}

/// A parsed label selector; every requirement must hold. An empty selector
/// selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the string form, refusing what the API server would refuse
    /// (a key or value that is not a valid label, a bad operator).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_outside_parens(text) {
            let part = part.trim();
            if part.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(format!("{text:?}: empty requirement"));
            }
            requirements.push(requirement(part).map_err(|e| format!("{part:?}: {e}"))?);
        }
        Ok(Self { requirements })
    }

    /// Whether it selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::DoesNotExist(k) => get(k).is_none(),
            Requirement::GreaterThan(k, n) => integer(get(k)).is_some_and(|l| l > *n),
            Requirement::LessThan(k, n) => integer(get(k)).is_some_and(|l| l < *n),
        })
    }
}

fn integer(value: Option<&str>) -> Option<i64> {
    value.and_then(|v| v.parse().ok())
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match r {
                Requirement::Equals(k, v) => write!(f, "{k}={v}")?,
                Requirement::NotEquals(k, v) => write!(f, "{k}!={v}")?,
                Requirement::In(k, vs) => write!(f, "{k} in ({})", vs.join(","))?,
                Requirement::NotIn(k, vs) => write!(f, "{k} notin ({})", vs.join(","))?,
                Requirement::Exists(k) => f.write_str(k)?,
                Requirement::DoesNotExist(k) => write!(f, "!{k}")?,
                Requirement::GreaterThan(k, n) => write!(f, "{k}>{n}")?,
                Requirement::LessThan(k, n) => write!(f, "{k}<{n}")?,
            }
        }
        Ok(())
    }
}

/// Splits on the commas that are not inside `( )`.
fn split_outside_parens(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0_i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn requirement(part: &str) -> Result<Requirement, String> {
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key_of(key.trim())?));
    }
    for (op, build) in [
        (
            "==",
            Requirement::Equals as fn(String, String) -> Requirement,
        ),
        ("!=", Requirement::NotEquals),
        ("=", Requirement::Equals),
    ] {
        if let Some((key, value)) = part.split_once(op) {
            return Ok(build(key_of(key.trim())?, value_of(value.trim())?));
        }
    }
    for (op, build) in [
        (
            ">",
            Requirement::GreaterThan as fn(String, i64) -> Requirement,
        ),
        ("<", Requirement::LessThan),
    ] {
        if let Some((key, value)) = part.split_once(op) {
            let number = value
                .trim()
                .parse()
                .map_err(|_| format!("{:?} is not an integer", value.trim()))?;
            return Ok(build(key_of(key.trim())?, number));
        }
    }
    if let Some((key, rest)) = part.split_once(char::is_whitespace) {
        let rest = rest.trim_start();
        let (negated, list) = if let Some(list) = rest.strip_prefix("notin") {
            (true, list)
        } else if let Some(list) = rest.strip_prefix("in") {
            (false, list)
        } else {
            return Err("expected =, ==, !=, in, notin, >, < or a bare key".to_owned());
        };
        let list = list
            .trim()
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or("expected a parenthesised list of values")?;
        let values = list
            .split(',')
            .map(|v| value_of(v.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        let key = key_of(key)?;
        return Ok(if negated {
            Requirement::NotIn(key, values)
        } else {
            Requirement::In(key, values)
        });
    }
    Ok(Requirement::Exists(key_of(part)?))
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of
/// at most 63 characters.
fn key_of(key: &str) -> Result<String, String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let valid = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !valid {
            return Err(format!(
                "label key prefix {prefix:?} is not a DNS subdomain"
            ));
        }
    }
    if name.is_empty() || !is_label_value(name) {
        return Err(format!(
            "label key {key:?} is not valid (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
        ));
    }
    Ok(key.to_owned())
}

fn value_of(value: &str) -> Result<String, String> {
    if is_label_value(value) {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "label value {value:?} is not valid (at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit)"
        ))
    }
}

/// Empty, or at most 63 of `[A-Za-z0-9_.-]` starting and ending with an
/// alphanumeric.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    value.is_empty()
        || (bytes.len() <= 63
            && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
            && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_operator_matches_as_kubernetes_does() {
        let s = LabelSelector::parse(
            "env = prod, tier in (web, api),!legacy,team, zone notin (b), size!=xl, gen>2, rank<5",
        )
        .unwrap();
        let good = labels(&[
            ("env", "prod"),
            ("tier", "web"),
            ("team", "x"),
            ("zone", "a"),
            ("gen", "3"),
            ("rank", "1"),
        ]);
        assert!(s.matches(Some(&good)));
        for (key, value) in [
            ("env", "dev"),
            ("tier", "db"),
            ("legacy", "1"),
            ("zone", "b"),
            ("size", "xl"),
            ("gen", "2"),
            ("rank", "x"),
        ] {
            let mut bad = good.clone();
            bad.insert(key.to_owned(), value.to_owned());
            assert!(!s.matches(Some(&bad)), "{key}={value}");
        }
        assert!(!s.matches(None));
        assert_eq!(
            s.to_string(),
            "env=prod,tier in (web,api),!legacy,team,zone notin (b),size!=xl,gen>2,rank<5"
        );
    }

    #[test]
    fn empty_selects_everything_and_bad_input_is_refused() {
        let all = LabelSelector::parse("").unwrap();
        assert!(all.is_empty() && all.matches(None));
        assert!(
            LabelSelector::parse("a==b")
                .unwrap()
                .matches(Some(&labels(&[("a", "b")])))
        );
        assert!(
            LabelSelector::parse("example.com/team=x")
                .unwrap()
                .matches(Some(&labels(&[("example.com/team", "x")])))
        );
        for bad in [
            "a=b,",
            "=b",
            "a b",
            "a in b",
            "a in (b",
            "a=-b",
            "Bad_/x=1",
            "a>x",
            &"k".repeat(64),
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?}");
        }
    }
}
