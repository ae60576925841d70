//! Host names: parsing the host patterns of routing rules, normalising the
//! host a request names, and the index that maps one to the other.
//!
//! The rules are ingress-nginx's (and the Ingress spec's): matching is
//! case-insensitive, an exact name beats a wildcard, and `*.example.com`
//! matches exactly one label in front of `example.com`. The Gateway API
//! reads the same spelling as a suffix ([`HostPattern::Suffix`]): any
//! number of labels in front, the most specific suffix first; it is
//! consulted after the Ingress kinds, so an Ingress host is never taken.

use std::borrow::Cow;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::ids::ServerId;

/// Longest host name accepted, in bytes (DNS limit).
const MAX_HOST_LEN: usize = 253;

/// The host part of a routing rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostPattern {
    /// An exact, lower-case host name such as `api.example.com`.
    Exact(Box<str>),
    /// `*.<parent>`: any single label followed by the lower-case `parent`.
    Wildcard(Box<str>),
    /// `*.<parent>` as the Gateway API reads it: one or more labels
    /// followed by the lower-case `parent`.
    Suffix(Box<str>),
}

/// Why a host pattern from a rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The name is empty.
    #[error("host is empty")]
    Empty,
    /// The name is longer than DNS allows.
    #[error("host is longer than {MAX_HOST_LEN} bytes")]
    TooLong,
    /// A bare `*` or a `*` anywhere but as the whole first label.
    #[error("a wildcard must be the whole first label, as in *.example.com")]
    BadWildcard,
    /// A character that cannot appear in a host name.
    #[error("host contains {0:?}, which is not allowed in a host name")]
    BadCharacter(char),
    /// An empty label, as in `a..b` or `.a`.
    #[error("host has an empty label")]
    EmptyLabel,
}

impl HostPattern {
    /// Parses the host of a rule (`spec.rules[].host`). Case is folded; a
    /// trailing dot is dropped; IP addresses are accepted as exact names.
    pub fn parse(host: &str) -> Result<Self, HostError> {
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.is_empty() {
            return Err(HostError::Empty);
        }
        if host.len() > MAX_HOST_LEN {
            return Err(HostError::TooLong);
        }
        let lower = host.to_ascii_lowercase();
        if let Some(parent) = lower.strip_prefix("*.") {
            validate_name(parent)?;
            return Ok(Self::Wildcard(parent.into()));
        }
        validate_name(&lower)?;
        Ok(Self::Exact(lower.into()))
    }

    /// Parses a Gateway API hostname (a listener's or a route's): as
    /// [`HostPattern::parse`], but a wildcard is a [`HostPattern::Suffix`].
    pub fn parse_suffix(host: &str) -> Result<Self, HostError> {
        Ok(match Self::parse(host)? {
            Self::Wildcard(parent) | Self::Suffix(parent) => Self::Suffix(parent),
            exact => exact,
        })
    }

    /// The pattern as written in a rule, lower case (`*.example.com`).
    pub fn as_string(&self) -> String {
        match self {
            Self::Exact(name) => name.to_string(),
            Self::Wildcard(parent) | Self::Suffix(parent) => format!("*.{parent}"),
        }
    }
}

fn validate_name(name: &str) -> Result<(), HostError> {
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel);
        }
        if label.contains('*') {
            return Err(HostError::BadWildcard);
        }
    }
    match name.chars().find(|c| !is_host_char(*c)) {
        Some(c) => Err(HostError::BadCharacter(c)),
        None => Ok(()),
    }
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_'
}

/// Why the host a client named was refused (the request gets 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestHostError {
    /// The authority is empty, too long, or holds a byte no host may hold.
    #[error("invalid host in request")]
    Invalid,
}

/// Normalises the authority of a request (the `Host` header or the
/// authority of an absolute-form target) for matching: the port is dropped,
/// ASCII letters are lower-cased and one trailing dot is removed.
/// Allocates only when the host has upper-case letters.
pub fn normalize_request_host(authority: &str) -> Result<Cow<'_, str>, RequestHostError> {
    let host = strip_port(authority)?;
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > MAX_HOST_LEN || host.starts_with('.') {
        return Err(RequestHostError::Invalid);
    }
    let bracketed = host.starts_with('[');
    let mut upper = false;
    // One pass: the characters, and no empty label (`..`).
    let mut after_dot = false;
    for &b in host.as_bytes() {
        match b {
            b'.' if after_dot => return Err(RequestHostError::Invalid),
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {}
            b'A'..=b'Z' => upper = true,
            b'[' | b']' | b':' if bracketed => {}
            _ => return Err(RequestHostError::Invalid),
        }
        after_dot = b == b'.';
    }
    Ok(if upper {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    })
}

fn strip_port(authority: &str) -> Result<&str, RequestHostError> {
    if authority.starts_with('[') {
        // IPv6 literal: `[::1]` or `[::1]:8080`.
        let end = authority.find(']').ok_or(RequestHostError::Invalid)?;
        let rest = &authority[end + 1..];
        if !rest.is_empty() && !is_port_suffix(rest) {
            return Err(RequestHostError::Invalid);
        }
        return Ok(&authority[..=end]);
    }
    match authority.rfind(':') {
        Some(colon) if is_port_suffix(&authority[colon..]) => Ok(&authority[..colon]),
        Some(_) => Err(RequestHostError::Invalid),
        None => Ok(authority),
    }
}

/// `:` followed by at most five digits (an empty port is allowed, as RFC 3986 does).
fn is_port_suffix(s: &str) -> bool {
    let Some(digits) = s.strip_prefix(':') else {
        return false;
    };
    digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A map from host patterns to values: exact names first, then the
/// one-label wildcard for the name's parent, then the longest suffix
/// wildcard. Used for servers and for certificates.
#[derive(Debug)]
pub(crate) struct HostMap<T> {
    exact: HashMap<Box<str>, T, RandomState>,
    wildcard: HashMap<Box<str>, T, RandomState>,
    suffix: HashMap<Box<str>, T, RandomState>,
    /// Labels in the longest suffix key: longer parents are not probed.
    suffix_labels: usize,
}

impl<T> Default for HostMap<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::default(),
            wildcard: HashMap::default(),
            suffix: HashMap::default(),
            suffix_labels: 0,
        }
    }
}

impl<T> HostMap<T> {
    pub(crate) fn get(&self, pattern: &HostPattern) -> Option<&T> {
        match pattern {
            HostPattern::Exact(name) => self.exact.get(name),
            HostPattern::Wildcard(parent) => self.wildcard.get(parent),
            HostPattern::Suffix(parent) => self.suffix.get(parent),
        }
    }

    /// The slot for `pattern`, for inserting unless taken.
    pub(crate) fn entry(
        &mut self,
        pattern: HostPattern,
    ) -> std::collections::hash_map::Entry<'_, Box<str>, T> {
        match pattern {
            HostPattern::Exact(name) => self.exact.entry(name),
            HostPattern::Wildcard(parent) => self.wildcard.entry(parent),
            HostPattern::Suffix(parent) => {
                let labels = parent.split('.').count();
                self.suffix_labels = self.suffix_labels.max(labels);
                self.suffix.entry(parent)
            }
        }
    }

    /// Every pattern with its value.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (HostPattern, &T)> {
        let exact = self
            .exact
            .iter()
            .map(|(k, v)| (HostPattern::Exact(k.clone()), v));
        let wildcard = self
            .wildcard
            .iter()
            .map(|(k, v)| (HostPattern::Wildcard(k.clone()), v));
        let suffix = self
            .suffix
            .iter()
            .map(|(k, v)| (HostPattern::Suffix(k.clone()), v));
        exact.chain(wildcard).chain(suffix)
    }

    /// The value for a normalised (lower-case) host name.
    pub(crate) fn lookup(&self, host: &str) -> Option<&T> {
        if let Some(value) = self.exact.get(host) {
            return Some(value);
        }
        if self.wildcard.is_empty() && self.suffix.is_empty() {
            return None;
        }
        let (first, parent) = host.split_once('.')?;
        if first.is_empty() {
            return None;
        }
        if let Some(value) = self.wildcard.get(parent) {
            return Some(value);
        }
        self.lookup_suffix(parent)
    }

    /// The most specific suffix wildcard covering `parent` or one of its
    /// parents (`parent` is the host without its first label).
    fn lookup_suffix(&self, parent: &str) -> Option<&T> {
        if self.suffix.is_empty() {
            return None;
        }
        let mut rest = parent;
        let mut labels = rest.split('.').count();
        loop {
            if labels <= self.suffix_labels
                && let Some(value) = self.suffix.get(rest)
            {
                return Some(value);
            }
            let (_, up) = rest.split_once('.')?;
            rest = up;
            labels -= 1;
        }
    }
}

/// Maps normalised request hosts to servers (see [`HostMap`]).
#[derive(Debug, Default)]
pub(crate) struct HostIndex(HostMap<ServerId>);

impl HostIndex {
    pub(crate) fn get(&self, pattern: &HostPattern) -> Option<ServerId> {
        self.0.get(pattern).copied()
    }

    pub(crate) fn insert(&mut self, pattern: HostPattern, server: ServerId) {
        match self.0.entry(pattern) {
            std::collections::hash_map::Entry::Occupied(mut slot) => {
                slot.insert(server);
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(server);
            }
        }
    }

    /// Finds the server for a normalised request host.
    pub(crate) fn lookup(&self, host: &str) -> Option<ServerId> {
        self.0.lookup(host).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rule_hosts() {
        assert_eq!(
            HostPattern::parse("API.Example.com."),
            Ok(HostPattern::Exact("api.example.com".into()))
        );
        assert_eq!(
            HostPattern::parse("*.Foo.com"),
            Ok(HostPattern::Wildcard("foo.com".into()))
        );
        assert_eq!(HostPattern::parse("*"), Err(HostError::BadWildcard));
        assert_eq!(HostPattern::parse("a.*.com"), Err(HostError::BadWildcard));
        assert_eq!(HostPattern::parse("*foo.com"), Err(HostError::BadWildcard));
        assert_eq!(HostPattern::parse(""), Err(HostError::Empty));
        assert_eq!(HostPattern::parse("a..b"), Err(HostError::EmptyLabel));
        assert_eq!(
            HostPattern::parse("a b.com"),
            Err(HostError::BadCharacter(' '))
        );
        assert_eq!(
            HostPattern::parse("a;b.com"),
            Err(HostError::BadCharacter(';'))
        );
        assert_eq!(
            HostPattern::parse(&"a".repeat(300)),
            Err(HostError::TooLong)
        );
    }

    #[test]
    fn normalizes_request_hosts() {
        assert_eq!(normalize_request_host("Foo.COM:8080").unwrap(), "foo.com");
        assert_eq!(normalize_request_host("foo.com.").unwrap(), "foo.com");
        assert_eq!(normalize_request_host("foo.com:").unwrap(), "foo.com");
        assert_eq!(normalize_request_host("[::1]:30080").unwrap(), "[::1]");
        assert_eq!(normalize_request_host("127.0.0.1").unwrap(), "127.0.0.1");
        assert!(matches!(
            normalize_request_host("foo.com"),
            Ok(Cow::Borrowed(_))
        ));
        for bad in [
            "",
            ":80",
            "foo/bar",
            "foo..com",
            ".foo",
            "foo.com:abc",
            "a b",
            "x:1:2",
            "[::1",
            "[::1]x",
            "foo\0",
        ] {
            assert!(normalize_request_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn wildcard_matches_exactly_one_label() {
        let mut index = HostIndex::default();
        index.insert(HostPattern::parse("*.foo.com").unwrap(), ServerId(1));
        index.insert(HostPattern::parse("exact.foo.com").unwrap(), ServerId(2));
        assert_eq!(index.lookup("bar.foo.com"), Some(ServerId(1)));
        assert_eq!(index.lookup("exact.foo.com"), Some(ServerId(2)));
        assert_eq!(index.lookup("baz.bar.foo.com"), None);
        assert_eq!(index.lookup("foo.com"), None);
        assert_eq!(index.lookup(".foo.com"), None);
    }

    #[test]
    fn suffix_wildcards_match_any_depth_most_specific_first() {
        let mut index = HostIndex::default();
        let suffix = |h: &str| HostPattern::parse_suffix(h).unwrap();
        index.insert(suffix("*.example.com"), ServerId(1));
        index.insert(suffix("*.foo.example.com"), ServerId(2));
        index.insert(HostPattern::parse("*.example.com").unwrap(), ServerId(3));
        index.insert(suffix("exact.foo.example.com"), ServerId(4));
        assert_eq!(
            index.lookup("a.example.com"),
            Some(ServerId(3)),
            "the Ingress one-label wildcard first"
        );
        assert_eq!(index.lookup("a.b.example.com"), Some(ServerId(1)));
        assert_eq!(index.lookup("a.foo.example.com"), Some(ServerId(2)));
        assert_eq!(index.lookup("a.b.foo.example.com"), Some(ServerId(2)));
        assert_eq!(index.lookup("exact.foo.example.com"), Some(ServerId(4)));
        assert_eq!(index.lookup("example.com"), None);
        assert_eq!(index.lookup("a.example.org"), None);
        assert_eq!(suffix("*.example.com").as_string(), "*.example.com");
        assert_eq!(
            suffix("A.example.com"),
            HostPattern::Exact("a.example.com".into())
        );
    }
}
