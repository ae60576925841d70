//! `RequestHeaderModifier` and `ResponseHeaderModifier`: headers set,
//! added to and removed from a request on its way upstream or a response
//! on its way back.
//!
//! `set` replaces every line of the header; `add` appends to the existing
//! value with a `,` (the spec's `my-header: foo,bar,baz`), or sets it when
//! absent; `remove` drops every line. Names compare without regard to
//! case; values were validated when the route was compiled, so nothing a
//! route carries can end a header line.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Why a header edit was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderEditError {
    /// Not a valid header name.
    #[error("{0:?} is not a valid header name")]
    Name(String),
    /// Not a valid header value.
    #[error("the value of {0} is not a valid header value")]
    Value(String),
}

/// The edits of one header modifier filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderEdits {
    set: Vec<(HeaderName, HeaderValue)>,
    add: Vec<(HeaderName, HeaderValue)>,
    remove: Vec<HeaderName>,
}

impl HeaderEdits {
    /// Builds the edits; only the first entry for a name counts, as the
    /// spec says of equivalent names.
    pub fn new<'a>(
        set: impl IntoIterator<Item = (&'a str, &'a str)>,
        add: impl IntoIterator<Item = (&'a str, &'a str)>,
        remove: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, HeaderEditError> {
        let mut edits = Self::default();
        for (name, value) in set {
            let pair = pair(name, value)?;
            if !edits.set.iter().any(|(n, _)| *n == pair.0) {
                edits.set.push(pair);
            }
        }
        for (name, value) in add {
            let pair = pair(name, value)?;
            if !edits.add.iter().any(|(n, _)| *n == pair.0) {
                edits.add.push(pair);
            }
        }
        for name in remove {
            let name = header_name(name)?;
            if !edits.remove.contains(&name) {
                edits.remove.push(name);
            }
        }
        Ok(edits)
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Applies the edits: set, then add, then remove.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            let joined = joined_with(headers, name, value);
            headers.insert(name.clone(), joined);
        }
        for name in &self.remove {
            headers.remove(name);
        }
    }
}

/// The header's current lines and `value`, joined with `,`.
fn joined_with(headers: &HeaderMap, name: &HeaderName, value: &HeaderValue) -> HeaderValue {
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        return value.clone();
    }
    let mut bytes = Vec::new();
    for line in lines {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b',');
    }
    bytes.extend_from_slice(value.as_bytes());
    HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| value.clone())
}

fn header_name(name: &str) -> Result<HeaderName, HeaderEditError> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| HeaderEditError::Name(name.to_owned()))
}

fn pair(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), HeaderEditError> {
    let name = header_name(name)?;
    let value =
        HeaderValue::from_str(value).map_err(|_| HeaderEditError::Value(name.to_string()))?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(*n, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn set_add_remove_as_the_spec_examples() {
        let edits = HeaderEdits::new(
            [("X-Header-Set", "set-overwrites-values")],
            [("X-Header-Add", "add-appends-values")],
            ["X-Header-Remove"],
        )
        .unwrap();
        let mut h = headers(&[
            ("x-header-set", "old"),
            ("x-header-set", "older"),
            ("x-header-add", "some-other-value"),
            ("x-header-remove", "val"),
            ("x-header-remove", "val2"),
            ("other", "kept"),
        ]);
        edits.apply(&mut h);
        assert_eq!(h.get_all("x-header-set").iter().count(), 1);
        assert_eq!(h["x-header-set"], "set-overwrites-values");
        assert_eq!(h["x-header-add"], "some-other-value,add-appends-values");
        assert!(h.get("x-header-remove").is_none());
        assert_eq!(h["other"], "kept");

        let mut empty = HeaderMap::new();
        edits.apply(&mut empty);
        assert_eq!(empty["x-header-add"], "add-appends-values");
    }

    #[test]
    fn first_entry_for_a_name_counts_and_bad_input_is_refused() {
        let edits = HeaderEdits::new([("a", "1"), ("A", "2")], [], []).unwrap();
        let mut h = HeaderMap::new();
        edits.apply(&mut h);
        assert_eq!(h["a"], "1");
        assert!(HeaderEdits::new([("bad name", "x")], [], []).is_err());
        assert!(HeaderEdits::new([("x", "a\r\nb")], [], []).is_err());
        assert!(HeaderEdits::new([], [], ["bad:name"]).is_err());
        assert!(HeaderEdits::default().is_empty());
    }
}
