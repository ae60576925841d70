//! Request conditions beyond host and path: the method, header and query
//! parameter matches of Gateway API routes, and the listener a request
//! came in on. A route that has none costs nothing: the path index keeps
//! plain entries for it (see the `path` module).
//!
//! Semantics (Gateway API `HTTPRouteMatch`):
//! - header names compare without regard to case; a header sent more than
//!   once is matched on its values joined with `, ` (RFC 9110 §5.3);
//! - query parameter names compare exactly; the first occurrence of a
//!   parameter is the one matched; names and values are compared after
//!   `%XX` decoding (`+` stays a `+`);
//! - `Exact` values compare byte for byte; `RegularExpression` values use
//!   the `regex` crate's syntax (RE2-like: no look-around, no
//!   back-references), must match the whole value, and are size-limited
//!   and linear-time, so no request can stall the gateway.

use std::borrow::Cow;

use http::header::HeaderName;
use http::{HeaderMap, Method};
use regex::bytes::{Regex, RegexBuilder};

use crate::scheme::Scheme;

/// Compiled size limit of one match expression.
const SIZE_LIMIT: usize = 1 << 20;

/// What a request offers to route conditions.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts<'r> {
    /// The listener's scheme (plain HTTP or HTTPS).
    pub scheme: Scheme,
    /// The request method.
    pub method: &'r Method,
    /// The request headers.
    pub headers: &'r HeaderMap,
    /// The raw query string, without `?`.
    pub query: Option<&'r str>,
}

/// Why a match value could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The regular expression does not compile (or is too large).
    #[error("invalid regular expression: {0}")]
    Regex(String),
}

/// How one value is compared.
#[derive(Clone, Debug)]
pub enum ValueMatch {
    /// Byte-for-byte equality.
    Exact(Box<[u8]>),
    /// A regular expression matching the whole value.
    Regex(Regex),
}

impl ValueMatch {
    /// A whole-value regular expression (see the module docs).
    pub fn regex(pattern: &str) -> Result<Self, MatchError> {
        full_regex(pattern).map(Self::Regex)
    }

    /// Whether `value` satisfies this match.
    pub fn matches(&self, value: &[u8]) -> bool {
        match self {
            Self::Exact(wanted) => **wanted == *value,
            Self::Regex(regex) => regex.is_match(value),
        }
    }
}

/// A regular expression that must match a whole value, as every Gateway
/// API `RegularExpression` match here does.
pub fn full_regex(pattern: &str) -> Result<Regex, MatchError> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| MatchError::Regex(e.to_string()))
}

/// One header condition.
#[derive(Clone, Debug)]
pub struct HeaderCondition {
    /// The header (names are case-insensitive by construction).
    pub name: HeaderName,
    /// How its value is compared.
    pub value: ValueMatch,
}

/// One query parameter condition.
#[derive(Clone, Debug)]
pub struct QueryCondition {
    /// The parameter name, compared exactly after decoding.
    pub name: Box<[u8]>,
    /// How its (decoded) value is compared.
    pub value: ValueMatch,
}

/// Everything a request must satisfy besides host and path; all of it
/// (the conditions are ANDed). Empty conditions match every request.
#[derive(Clone, Debug, Default)]
pub struct Conditions {
    /// Only requests that came in on a listener of this scheme.
    pub scheme: Option<Scheme>,
    /// Only requests with this method.
    pub method: Option<Method>,
    /// Header conditions.
    pub headers: Vec<HeaderCondition>,
    /// Query parameter conditions.
    pub query: Vec<QueryCondition>,
}

impl Conditions {
    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        self.scheme.is_none()
            && self.method.is_none()
            && self.headers.is_empty()
            && self.query.is_empty()
    }

    /// Whether a request satisfies every condition; without facts (a
    /// lookup by host and path alone) only empty conditions do.
    pub fn matches(&self, facts: Option<&RequestFacts<'_>>) -> bool {
        let Some(facts) = facts else {
            return self.is_empty();
        };
        if self.scheme.is_some_and(|s| s != facts.scheme) {
            return false;
        }
        if self.method.as_ref().is_some_and(|m| m != facts.method) {
            return false;
        }
        let headers_ok = self
            .headers
            .iter()
            .all(|c| header_value(facts.headers, &c.name).is_some_and(|v| c.value.matches(&v)));
        headers_ok
            && self
                .query
                .iter()
                .all(|c| query_value(facts.query, &c.name).is_some_and(|v| c.value.matches(&v)))
    }
}

/// A header's value, its repeated lines joined with `, ` (the only case
/// that allocates).
fn header_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<Cow<'h, [u8]>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(Cow::Borrowed(first.as_bytes()));
    };
    let mut joined = first.as_bytes().to_vec();
    for more in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(more.as_bytes());
    }
    Some(Cow::Owned(joined))
}

/// The decoded value of the first query parameter named `name`.
fn query_value<'q>(query: Option<&'q str>, name: &[u8]) -> Option<Cow<'q, [u8]>> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (*decode(key.as_bytes()) == *name).then(|| decode(value.as_bytes()))
    })
}

/// `%XX` decoding; a malformed escape is kept as it is.
fn decode(raw: &[u8]) -> Cow<'_, [u8]> {
    if !raw.contains(&b'%') {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(percent_encoding::percent_decode(raw).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn facts<'r>(
        method: &'r Method,
        headers: &'r HeaderMap,
        query: Option<&'r str>,
    ) -> RequestFacts<'r> {
        RequestFacts {
            scheme: Scheme::Http,
            method,
            headers,
            query,
        }
    }

    fn header(name: &'static str, value: ValueMatch) -> HeaderCondition {
        HeaderCondition {
            name: HeaderName::from_static(name),
            value,
        }
    }

    fn exact(v: &str) -> ValueMatch {
        ValueMatch::Exact(v.as_bytes().into())
    }

    #[test]
    fn empty_conditions_match_with_or_without_facts() {
        let c = Conditions::default();
        let headers = HeaderMap::new();
        assert!(c.matches(None));
        assert!(c.matches(Some(&facts(&Method::GET, &headers, None))));
        let method = Conditions {
            method: Some(Method::POST),
            ..Conditions::default()
        };
        assert!(!method.matches(None));
    }

    #[test]
    fn headers_are_case_insensitive_names_and_joined_values() {
        let mut headers = HeaderMap::new();
        headers.append("Version", HeaderValue::from_static("two"));
        headers.append("color", HeaderValue::from_static("red"));
        headers.append("color", HeaderValue::from_static("blue"));
        let c = Conditions {
            headers: vec![header("version", exact("two"))],
            ..Conditions::default()
        };
        assert!(c.matches(Some(&facts(&Method::GET, &headers, None))));
        let joined = Conditions {
            headers: vec![header("color", exact("red, blue"))],
            ..Conditions::default()
        };
        assert!(joined.matches(Some(&facts(&Method::GET, &headers, None))));
        let missing = Conditions {
            headers: vec![header("other", exact("x"))],
            ..Conditions::default()
        };
        assert!(!missing.matches(Some(&facts(&Method::GET, &headers, None))));
        let regex = Conditions {
            headers: vec![header("version", ValueMatch::regex("t.o").unwrap())],
            ..Conditions::default()
        };
        assert!(regex.matches(Some(&facts(&Method::GET, &headers, None))));
        let partial = Conditions {
            headers: vec![header("version", ValueMatch::regex("t").unwrap())],
            ..Conditions::default()
        };
        assert!(
            !partial.matches(Some(&facts(&Method::GET, &headers, None))),
            "a regex matches the whole value"
        );
    }

    #[test]
    fn query_takes_the_first_decoded_value() {
        let headers = HeaderMap::new();
        let c = Conditions {
            query: vec![QueryCondition {
                name: b"animal".to_vec().into(),
                value: exact("whale"),
            }],
            ..Conditions::default()
        };
        let ok = |q: &str| c.matches(Some(&facts(&Method::GET, &headers, Some(q))));
        assert!(ok("animal=whale"));
        assert!(ok("a=1&animal=whale&animal=dolphin"));
        assert!(!ok("animal=dolphin&animal=whale"));
        assert!(ok("%61nimal=wh%61le"));
        assert!(!ok("Animal=whale"));
        assert!(!ok("animalx=whale"));
        assert!(!c.matches(Some(&facts(&Method::GET, &headers, None))));
    }

    #[test]
    fn method_and_scheme() {
        let headers = HeaderMap::new();
        let c = Conditions {
            scheme: Some(Scheme::Https),
            method: Some(Method::POST),
            ..Conditions::default()
        };
        let mut f = facts(&Method::POST, &headers, None);
        assert!(!c.matches(Some(&f)));
        f.scheme = Scheme::Https;
        assert!(c.matches(Some(&f)));
        f.method = &Method::GET;
        assert!(!c.matches(Some(&f)));
    }

    #[test]
    fn bad_regexes_are_errors() {
        assert!(ValueMatch::regex("(").is_err());
        assert!(ValueMatch::regex(&"a{1000}".repeat(1000)).is_err());
    }
}
