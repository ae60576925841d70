//! URL paths: normalising the path a request names, the path rules of
//! routes, and the per-server index that finds the best rule for a path.
//!
//! Matching follows the Kubernetes Ingress spec: `Exact` compares whole
//! paths; `Prefix` compares `/`-separated elements, so `/foo` matches `/foo`,
//! `/foo/` and `/foo/bar` but never `/foobar`, and a trailing `/` in the rule
//! is ignored. An exact match beats any prefix; the longest prefix wins.
//! (Gateway API `Exact` and `PathPrefix` are the same rules.)
//!
//! Gateway API routes add conditions (method, headers, query, listener)
//! to a path key: several routes can share one key, tried in the order
//! the control plane added them (its precedence order), and a key whose
//! routes all refuse a request hands it to the next rule, as if the key
//! were not there. Ingress rules are plain entries: no condition, one
//! enum check per probe.
//!
//! Requests are matched on their normalised path, as nginx matches
//! locations against `$uri`: `%XX` escapes decoded, `.` and `..` segments
//! resolved, repeated slashes merged. The request is still forwarded with the
//! path exactly as the client sent it.

use std::borrow::Cow;
use std::collections::HashMap;

use foldhash::fast::RandomState;

use crate::ids::RouteId;
use crate::matches::{Conditions, MatchError, RequestFacts, full_regex};

/// Longest path a rule may have, in bytes.
pub const MAX_RULE_PATH_LEN: usize = 4096;

/// How a rule's path is compared with a request's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathKind {
    /// The whole normalised path must be equal.
    Exact,
    /// The rule's elements must be the first elements of the request path.
    Prefix,
}

impl PathKind {
    /// The Ingress `pathType` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "Exact",
            Self::Prefix => "Prefix",
        }
    }
}

/// Why a path (of a rule or a request) was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("path must start with '/'")]
    NotAbsolute,
    /// A `%` not followed by two hex digits.
    #[error("path has a malformed %-escape")]
    BadEscape,
    /// A NUL byte, literal or escaped.
    #[error("path contains a NUL byte")]
    Nul,
    /// `..` segments climb above the root.
    #[error("path climbs above the root with '..'")]
    AboveRoot,
    /// A control character, space, `?` or `#` in a rule path.
    #[error("path contains a control character, space, '?' or '#'")]
    BadCharacter,
    /// A rule path longer than [`MAX_RULE_PATH_LEN`].
    #[error("path is longer than {MAX_RULE_PATH_LEN} bytes")]
    TooLong,
}

/// Normalises a request path for matching (see the module docs). Borrows
/// the input when it is already normal, which is the common case.
pub fn normalize_path(raw: &[u8]) -> Result<Cow<'_, [u8]>, PathError> {
    if raw.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if is_normal(raw) {
        return Ok(Cow::Borrowed(raw));
    }
    let decoded = percent_decode(raw)?;
    Ok(Cow::Owned(resolve_segments(&decoded)?))
}

/// True when the path has no `%`, no empty segment and no dot segment.
fn is_normal(path: &[u8]) -> bool {
    let mut prev_slash = false;
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        match b {
            b'%' | 0 => return false,
            b'/' if prev_slash => return false,
            b'.' if prev_slash => {
                let rest = &path[i..];
                if rest == b"."
                    || rest == b".."
                    || rest.starts_with(b"./")
                    || rest.starts_with(b"../")
                {
                    return false;
                }
            }
            _ => {}
        }
        prev_slash = b == b'/';
        i += 1;
    }
    true
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'%' {
            let hi = raw.get(i + 1).and_then(|h| hex_value(*h));
            let lo = raw.get(i + 2).and_then(|l| hex_value(*l));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(PathError::BadEscape);
            };
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    if out.contains(&0) {
        return Err(PathError::Nul);
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Merges empty segments and resolves `.` and `..` (RFC 3986 §5.2.4).
fn resolve_segments(path: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split(|b| *b == b'/').skip(1) {
        trailing_slash = true;
        match segment {
            b"" | b"." => {}
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            _ => {
                segments.push(segment);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for segment in &segments {
        out.push(b'/');
        out.extend_from_slice(segment);
    }
    if trailing_slash || out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// The path half of a routing rule, normalised into its index key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathRule {
    kind: PathKind,
    key: Box<[u8]>,
}

impl PathRule {
    /// Parses a rule path. A `Prefix` rule's trailing `/` is dropped, so
    /// `/foo` and `/foo/` are the same rule; `/` becomes the empty key.
    pub fn new(kind: PathKind, path: &str) -> Result<Self, PathError> {
        if path.len() > MAX_RULE_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#')
        {
            return Err(PathError::BadCharacter);
        }
        let normal = normalize_path(path.as_bytes())?;
        let key: &[u8] = match kind {
            PathKind::Exact => &normal,
            PathKind::Prefix => normal.strip_suffix(b"/").unwrap_or(&normal),
        };
        Ok(Self {
            kind,
            key: key.into(),
        })
    }

    /// The rule's kind.
    pub fn kind(&self) -> PathKind {
        self.kind
    }

    fn depth(&self) -> usize {
        self.key.iter().filter(|b| **b == b'/').count()
    }
}

/// What a path key leads to: one route (an Ingress rule: no condition to
/// check), or Gateway API candidates tried in precedence order, the first
/// whose conditions a request meets winning.
#[derive(Debug)]
pub(crate) enum Entry {
    /// A route taken by every request reaching the key.
    Route(RouteId),
    /// Routes with conditions, in precedence order.
    Guarded(Vec<Guarded>),
}

/// A route and the conditions a request must meet to take it.
#[derive(Debug)]
pub(crate) struct Guarded {
    when: Conditions,
    route: RouteId,
}

impl Entry {
    /// The route a request takes here, if any.
    fn pick(&self, facts: Option<&RequestFacts<'_>>) -> Option<RouteId> {
        match self {
            Self::Route(id) => Some(*id),
            Self::Guarded(candidates) => candidates
                .iter()
                .find(|c| c.when.matches(facts))
                .map(|c| c.route),
        }
    }

    /// The route holding the key (the first candidate).
    fn holder(&self) -> Option<RouteId> {
        match self {
            Self::Route(id) => Some(*id),
            Self::Guarded(candidates) => candidates.first().map(|c| c.route),
        }
    }
}

/// A Gateway API `RegularExpression` path: the whole normalised path must
/// match (see [`crate::matches`] for the dialect).
#[derive(Debug)]
pub struct PathRegex {
    regex: regex::bytes::Regex,
    source: Box<str>,
}

impl PathRegex {
    /// Compiles a path expression.
    pub fn new(pattern: &str) -> Result<Self, MatchError> {
        if pattern.len() > MAX_RULE_PATH_LEN {
            return Err(MatchError::Regex(format!(
                "longer than {MAX_RULE_PATH_LEN} bytes"
            )));
        }
        Ok(Self {
            regex: full_regex(pattern)?,
            source: pattern.into(),
        })
    }
}

/// The path rules of one server, indexed for lookup. A lookup costs one hash
/// probe for the exact rules and at most one per path element up to the
/// deepest prefix rule, so a hostile path with thousands of elements costs
/// no more than a short one. Gateway API expressions, when a server has
/// any, are tried between the exact and the prefix rules, in the order
/// they were added.
#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    exact: HashMap<Box<[u8]>, Entry, RandomState>,
    prefix: HashMap<Box<[u8]>, Entry, RandomState>,
    /// Elements in the deepest prefix rule.
    prefix_depth: usize,
    /// Gateway API `RegularExpression` paths.
    regex: Vec<(PathRegex, Entry)>,
}

impl PathIndex {
    fn map(&mut self, kind: PathKind) -> &mut HashMap<Box<[u8]>, Entry, RandomState> {
        match kind {
            PathKind::Exact => &mut self.exact,
            PathKind::Prefix => &mut self.prefix,
        }
    }

    /// Adds a rule; returns the route already holding it if it is taken.
    pub(crate) fn insert(&mut self, rule: PathRule, route: RouteId) -> Result<(), RouteId> {
        let depth = rule.depth();
        let kind = rule.kind;
        let map = self.map(kind);
        if let Some(existing) = map.get(&rule.key).and_then(Entry::holder) {
            return Err(existing);
        }
        map.insert(rule.key, Entry::Route(route));
        if kind == PathKind::Prefix {
            self.prefix_depth = self.prefix_depth.max(depth);
        }
        Ok(())
    }

    /// Adds a candidate with conditions after those the key already has;
    /// returns the route holding the key if a plain route does (an
    /// Ingress rule, which every request reaching the key takes).
    pub(crate) fn insert_guarded(
        &mut self,
        rule: PathRule,
        when: Conditions,
        route: RouteId,
    ) -> Result<(), RouteId> {
        let depth = rule.depth();
        let kind = rule.kind;
        let entry = self
            .map(kind)
            .entry(rule.key)
            .or_insert_with(|| Entry::Guarded(Vec::new()));
        push_guarded(entry, when, route)?;
        if kind == PathKind::Prefix {
            self.prefix_depth = self.prefix_depth.max(depth);
        }
        Ok(())
    }

    /// Adds a candidate for a path expression, after those the same
    /// expression already has.
    pub(crate) fn insert_regex(&mut self, regex: PathRegex, when: Conditions, route: RouteId) {
        match self
            .regex
            .iter_mut()
            .find(|(r, _)| r.source == regex.source)
        {
            Some((_, entry)) => {
                // A regex key only ever holds guarded candidates.
                let _ = push_guarded(entry, when, route);
            }
            None => self
                .regex
                .push((regex, Entry::Guarded(vec![Guarded { when, route }]))),
        }
    }

    /// Whether any rule was added.
    pub(crate) fn has_rules(&self) -> bool {
        !self.exact.is_empty() || !self.prefix.is_empty() || !self.regex.is_empty()
    }

    /// The route holding exactly `rule`, if any.
    pub(crate) fn get(&self, rule: &PathRule) -> Option<RouteId> {
        let map = match rule.kind {
            PathKind::Exact => &self.exact,
            PathKind::Prefix => &self.prefix,
        };
        map.get(&rule.key).and_then(Entry::holder)
    }

    /// Finds the best rule for a normalised request path: exact, then
    /// expressions, then the longest prefix. A key whose candidates all
    /// refuse the request passes it on to the next rule in that order.
    pub(crate) fn lookup(&self, path: &[u8], facts: Option<&RequestFacts<'_>>) -> Option<RouteId> {
        if let Some(id) = self.exact.get(path).and_then(|e| e.pick(facts)) {
            return Some(id);
        }
        if !self.regex.is_empty()
            && let Some(id) = self
                .regex
                .iter()
                .filter(|(r, _)| r.regex.is_match(path))
                .find_map(|(_, e)| e.pick(facts))
        {
            return Some(id);
        }
        if self.prefix.is_empty() {
            return None;
        }
        let mut candidate = path.strip_suffix(b"/").unwrap_or(path);
        if let Some(cut) = nth_slash(candidate, self.prefix_depth) {
            candidate = &candidate[..cut];
        }
        loop {
            if let Some(id) = self.prefix.get(candidate).and_then(|e| e.pick(facts)) {
                return Some(id);
            }
            let cut = candidate.iter().rposition(|b| *b == b'/')?;
            candidate = &candidate[..cut];
        }
    }
}

/// Appends a candidate to a guarded entry; a plain route refuses it.
fn push_guarded(entry: &mut Entry, when: Conditions, route: RouteId) -> Result<(), RouteId> {
    match entry {
        Entry::Route(holder) => Err(*holder),
        Entry::Guarded(candidates) => {
            candidates.push(Guarded { when, route });
            Ok(())
        }
    }
}

/// Position of the `/` that starts element `n` (0-based), if the path has it.
fn nth_slash(path: &[u8], n: usize) -> Option<usize> {
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .nth(n)
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn norm(p: &str) -> Result<String, PathError> {
        normalize_path(p.as_bytes()).map(|c| String::from_utf8_lossy(&c).into_owned())
    }

    #[test]
    fn normalizes_like_nginx() {
        assert_eq!(norm("/a/b").unwrap(), "/a/b");
        assert_eq!(norm("/").unwrap(), "/");
        assert_eq!(norm("//a///b//").unwrap(), "/a/b/");
        assert_eq!(norm("/a/./b/.").unwrap(), "/a/b/");
        assert_eq!(norm("/a/../b").unwrap(), "/b");
        assert_eq!(norm("/a/b/..").unwrap(), "/a/");
        assert_eq!(norm("/%61pi/v1").unwrap(), "/api/v1");
        assert_eq!(norm("/a%2Fb").unwrap(), "/a/b");
        assert_eq!(norm("/a%2e%2e/b").unwrap(), "/a../b");
        assert_eq!(norm("/x/%2e%2e/y").unwrap(), "/y");
        assert_eq!(norm("/.well-known/x").unwrap(), "/.well-known/x");
        assert_eq!(norm("/a..b/..c").unwrap(), "/a..b/..c");
        assert_eq!(norm(".."), Err(PathError::NotAbsolute));
        assert_eq!(norm("/.."), Err(PathError::AboveRoot));
        assert_eq!(norm("/a/../../b"), Err(PathError::AboveRoot));
        assert_eq!(norm("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%2"), Err(PathError::BadEscape));
        assert_eq!(norm("/a%00"), Err(PathError::Nul));
        assert!(matches!(
            normalize_path(b"/api/v1/predict/1"),
            Ok(Cow::Borrowed(_))
        ));
    }

    #[test]
    fn rule_paths() {
        assert_eq!(
            PathRule::new(PathKind::Prefix, "/foo/").unwrap(),
            PathRule::new(PathKind::Prefix, "/foo").unwrap()
        );
        assert_ne!(
            PathRule::new(PathKind::Exact, "/foo/").unwrap(),
            PathRule::new(PathKind::Exact, "/foo").unwrap()
        );
        assert_eq!(
            PathRule::new(PathKind::Prefix, "foo"),
            Err(PathError::NotAbsolute)
        );
        assert_eq!(
            PathRule::new(PathKind::Prefix, "/a b"),
            Err(PathError::BadCharacter)
        );
        assert_eq!(
            PathRule::new(PathKind::Prefix, "/a\nb"),
            Err(PathError::BadCharacter)
        );
        assert_eq!(
            PathRule::new(PathKind::Prefix, &format!("/{}", "a".repeat(5000))),
            Err(PathError::TooLong)
        );
    }

    fn index(rules: &[(PathKind, &str)]) -> PathIndex {
        let mut index = PathIndex::default();
        for (i, (kind, path)) in rules.iter().enumerate() {
            index
                .insert(PathRule::new(*kind, path).unwrap(), RouteId(i))
                .unwrap();
        }
        index
    }

    fn find(index: &PathIndex, path: &str) -> Option<usize> {
        let normal = normalize_path(path.as_bytes()).unwrap();
        index.lookup(&normal, None).map(|id| id.0)
    }

    /// The examples table of the Ingress spec (networking/v1 "Examples").
    #[test]
    fn ingress_spec_examples() {
        use PathKind::{Exact, Prefix};
        type Case = (
            &'static [(PathKind, &'static str)],
            &'static str,
            Option<usize>,
        );
        let cases: &[Case] = &[
            (&[(Prefix, "/")], "/anything/at/all", Some(0)),
            (&[(Exact, "/foo")], "/foo", Some(0)),
            (&[(Exact, "/foo")], "/bar", None),
            (&[(Exact, "/foo")], "/foo/", None),
            (&[(Exact, "/foo/")], "/foo", None),
            (&[(Prefix, "/foo")], "/foo", Some(0)),
            (&[(Prefix, "/foo")], "/foo/", Some(0)),
            (&[(Prefix, "/foo/")], "/foo", Some(0)),
            (&[(Prefix, "/foo/")], "/foo/", Some(0)),
            (&[(Prefix, "/aaa/bb")], "/aaa/bbb", None),
            (&[(Prefix, "/aaa/bbb")], "/aaa/bbb", Some(0)),
            (&[(Prefix, "/aaa/bbb/")], "/aaa/bbb", Some(0)),
            (&[(Prefix, "/aaa/bbb")], "/aaa/bbb/", Some(0)),
            (&[(Prefix, "/aaa/bbb")], "/aaa/bbb/ccc", Some(0)),
            (&[(Prefix, "/aaa/bbb")], "/aaa/bbbxyz", None),
            (&[(Prefix, "/"), (Prefix, "/aaa")], "/aaa/ccc", Some(1)),
            (&[(Prefix, "/"), (Prefix, "/aaa")], "/ccc", Some(0)),
            (&[(Prefix, "/aaa"), (Exact, "/aaa")], "/aaa", Some(1)),
            (&[(Prefix, "/aaa")], "/ccc", None),
            (&[(Prefix, "/foo")], "/foobar", None),
            (&[(Prefix, "/Foo")], "/foo", None),
        ];
        for (rules, path, want) in cases {
            assert_eq!(find(&index(rules), path), *want, "{rules:?} {path}");
        }
    }

    #[test]
    fn duplicate_rules_are_refused() {
        let mut index = index(&[(PathKind::Prefix, "/a")]);
        let dup = PathRule::new(PathKind::Prefix, "/a/").unwrap();
        assert_eq!(index.insert(dup, RouteId(9)), Err(RouteId(0)));
        let exact = PathRule::new(PathKind::Exact, "/a").unwrap();
        assert_eq!(index.insert(exact, RouteId(9)), Ok(()));
    }

    #[test]
    fn deep_paths_cost_only_the_rule_depth() {
        let index = index(&[(PathKind::Prefix, "/a")]);
        let deep = format!("/a{}", "/x".repeat(5000));
        assert_eq!(find(&index, &deep), Some(0));
        assert_eq!(find(&index, &"/y".repeat(5000)), None);
    }

    fn facts<'r>(method: &'r http::Method, headers: &'r http::HeaderMap) -> RequestFacts<'r> {
        RequestFacts {
            scheme: crate::scheme::Scheme::Http,
            method,
            headers,
            query: None,
        }
    }

    fn method(m: http::Method) -> Conditions {
        Conditions {
            method: Some(m),
            ..Conditions::default()
        }
    }

    /// Gateway API precedence: exact, then expressions, then the longest
    /// prefix; a key whose candidates refuse the request falls through.
    #[test]
    fn guarded_keys_fall_through_to_the_next_rule() {
        let mut index = PathIndex::default();
        let prefix = |p: &str| PathRule::new(PathKind::Prefix, p).unwrap();
        let exact = |p: &str| PathRule::new(PathKind::Exact, p).unwrap();
        index
            .insert_guarded(prefix("/a/b"), method(http::Method::POST), RouteId(0))
            .unwrap();
        index
            .insert_guarded(prefix("/a"), Conditions::default(), RouteId(1))
            .unwrap();
        index
            .insert_guarded(exact("/a/b/c"), method(http::Method::PUT), RouteId(2))
            .unwrap();
        index.insert_regex(
            PathRegex::new("/a/b/[0-9]+").unwrap(),
            method(http::Method::DELETE),
            RouteId(3),
        );
        let headers = http::HeaderMap::new();
        let find = |path: &str, m: http::Method| {
            index
                .lookup(path.as_bytes(), Some(&facts(&m, &headers)))
                .map(|r| r.0)
        };
        assert_eq!(find("/a/b/x", http::Method::POST), Some(0));
        assert_eq!(find("/a/b/x", http::Method::GET), Some(1), "falls to /a");
        assert_eq!(find("/a/b/c", http::Method::PUT), Some(2));
        assert_eq!(find("/a/b/c", http::Method::POST), Some(0));
        assert_eq!(find("/a/b/12", http::Method::DELETE), Some(3));
        assert_eq!(
            find("/a/b/12x", http::Method::DELETE),
            Some(1),
            "whole-path expression"
        );
        assert_eq!(find("/b", http::Method::GET), None);
        // Without facts only unconditional candidates are taken.
        assert_eq!(index.lookup(b"/a/b/x", None).map(|r| r.0), Some(1));
    }

    #[test]
    fn ingress_rules_hold_their_keys_against_guarded_routes() {
        let mut index = index(&[(PathKind::Prefix, "/a")]);
        let rule = PathRule::new(PathKind::Prefix, "/a").unwrap();
        assert_eq!(
            index.insert_guarded(rule.clone(), Conditions::default(), RouteId(5)),
            Err(RouteId(0))
        );
        let mut guarded = PathIndex::default();
        guarded
            .insert_guarded(rule.clone(), Conditions::default(), RouteId(1))
            .unwrap();
        assert_eq!(guarded.insert(rule.clone(), RouteId(2)), Err(RouteId(1)));
        assert_eq!(guarded.get(&rule), Some(RouteId(1)));
        assert!(guarded.has_rules());
        assert!(PathRegex::new("(").is_err());
    }

    // === property test against a reference model of the spec ===

    /// The spec read literally: split into non-empty elements; a prefix rule
    /// matches when its elements start the request's; the longest match
    /// wins and Exact beats Prefix on a tie.
    fn reference(rules: &[(PathKind, String)], request: &str) -> Option<usize> {
        let elements = |p: &str| -> Vec<String> {
            p.split('/')
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let req = elements(request);
        let req_trailing = request.ends_with('/') && !req.is_empty();
        let mut best: Option<(usize, bool, usize)> = None;
        for (i, (kind, path)) in rules.iter().enumerate() {
            let rule = elements(path);
            let matched = match kind {
                PathKind::Exact => {
                    rule == req && (path.ends_with('/') && !rule.is_empty()) == req_trailing
                }
                PathKind::Prefix => req.starts_with(&rule),
            };
            if matched {
                let score = (rule.len(), *kind == PathKind::Exact, i);
                if best.is_none_or(|b| (score.0, score.1) > (b.0, b.1)) {
                    best = Some(score);
                }
            }
        }
        best.map(|b| b.2)
    }

    fn arb_path() -> impl Strategy<Value = String> {
        let element = prop_oneof![Just("a"), Just("b"), Just("ab"), Just("abc"), Just(""),];
        (prop::collection::vec(element, 0..5), any::<bool>()).prop_map(|(els, trailing)| {
            let mut p = format!("/{}", els.join("/"));
            if trailing && !p.ends_with('/') {
                p.push('/');
            }
            p
        })
    }

    fn arb_kind() -> impl Strategy<Value = PathKind> {
        prop_oneof![Just(PathKind::Exact), Just(PathKind::Prefix)]
    }

    proptest! {
        #[test]
        fn index_agrees_with_the_spec(
            rules in prop::collection::vec((arb_kind(), arb_path()), 0..8),
            request in arb_path(),
        ) {
            // Keep the first of rules that normalise to the same key, as the
            // table builder does.
            let mut index = PathIndex::default();
            let mut kept = Vec::new();
            for (kind, path) in &rules {
                let rule = PathRule::new(*kind, path).unwrap();
                if index.insert(rule, RouteId(kept.len())).is_ok() {
                    kept.push((*kind, path.clone()));
                }
            }
            let normal = normalize_path(request.as_bytes()).unwrap();
            prop_assert_eq!(index.lookup(&normal, None).map(|r| r.0), reference(&kept, &request));
        }

        #[test]
        fn normalize_never_panics_and_is_idempotent(raw in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut path = vec![b'/'];
            path.extend(raw);
            if let Ok(once) = normalize_path(&path) {
                // Decoding is not repeated (`%2525` stays `%25`), so only a
                // result without `%` must be a fixed point.
                if !once.contains(&b'%') {
                    prop_assert!(is_normal(&once));
                    let twice = normalize_path(&once).unwrap();
                    prop_assert_eq!(twice.as_ref(), once.as_ref());
                }
            }
        }
    }
}
