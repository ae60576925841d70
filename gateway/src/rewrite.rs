//! ingress-nginx's regex mode and `rewrite-target`.
//!
//! When any Ingress of a host sets `use-regex: "true"` or a
//! `rewrite-target`, every path of that host becomes a regular expression
//! matched case-insensitively from the start of the path (`~* "^<path>"`),
//! tried longest path first; the first match wins, not the best one
//! (`docs/user-guide/ingress-path-matching.md`).
//!
//! `rewrite-target` replaces the whole path when the rule's expression
//! matches (nginx `rewrite "(?i)<path>" <target> break;`), with `$1`..`$9`
//! taken from the expression's groups. Expressions use Rust's regex syntax
//! (PCRE's without look-around and back-references), are size-limited and
//! run in linear time, so no path can stall the gateway.
//!
//! Like nginx's (PCRE without its UTF mode), expressions work on bytes
//! with ASCII classes: `\w`, `\d`, `\s`, `.` and case folding do not take
//! Unicode. Besides matching what nginx matches, this keeps them small:
//! Rust's default Unicode `\w` compiles to some 300 KB and 9 ms per
//! pattern, ASCII to some 5 KB and 0.3 ms (an Ingress of 800 such paths
//! took 953 MB and 33 s to compile with Unicode classes).

use regex::bytes::{Regex, RegexBuilder};
use regex_automata::meta;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::syntax;

use crate::table::RouteId;

/// Compiled size limit of one path expression (its automaton), and of the
/// one-pass DFA built for it.
pub const SIZE_LIMIT: usize = 64 << 10;

/// The lazy DFA cache of one path expression, per thread matching it.
const DFA_CACHE: usize = 256 << 10;

/// Why a regex path or rewrite target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    /// The expression does not compile (or is too large).
    #[error("invalid regular expression: {0}")]
    Invalid(String),
    /// A `$variable` other than `$1`..`$9` in a rewrite target.
    #[error("{0} is not supported in rewrite-target; only $1 to $9 are")]
    Variable(String),
    /// A target that does not start with `/` or an absolute http(s) URL.
    #[error("rewrite-target must be a path starting with '/'")]
    NotAPath,
}

/// A rule path in regex mode: only whether it matches is asked, so it is
/// compiled without capture groups.
#[derive(Clone, Debug)]
pub struct RegexPath {
    regex: meta::Regex,
    source_len: usize,
}

impl RegexPath {
    /// Compiles `^<path>`, case-insensitively, as ingress-nginx's `~*`.
    pub fn new(path: &str) -> Result<Self, RegexError> {
        let regex = meta::Builder::new()
            .syntax(
                syntax::Config::new()
                    .unicode(false)
                    .utf8(false)
                    .case_insensitive(true),
            )
            .configure(
                meta::Config::new()
                    .which_captures(WhichCaptures::None)
                    .nfa_size_limit(Some(SIZE_LIMIT))
                    .onepass_size_limit(Some(SIZE_LIMIT))
                    .hybrid_cache_capacity(DFA_CACHE),
            )
            .build(&format!("^(?:{path})"))
            .map_err(|e| RegexError::Invalid(e.to_string()))?;
        Ok(Self {
            regex,
            source_len: path.len(),
        })
    }

    /// The heap the compiled expression holds (not its per-thread search
    /// caches, each at most a lazy DFA of 256 KiB).
    pub fn memory_usage(&self) -> usize {
        self.regex.memory_usage()
    }

    fn is_match(&self, path: &[u8]) -> bool {
        self.regex.is_match(path)
    }
}

/// The regex-mode paths of one server, in ingress-nginx's order.
#[derive(Debug, Default)]
pub(crate) struct RegexIndex {
    rules: Vec<(RegexPath, RouteId)>,
}

impl RegexIndex {
    pub(crate) fn push(&mut self, rule: RegexPath, route: RouteId) {
        // Longest path first; equal lengths keep their order (a stable sort).
        let at = self
            .rules
            .partition_point(|(r, _)| r.source_len >= rule.source_len);
        self.rules.insert(at, (rule, route));
    }

    /// The first rule matching the path (normalised, as nginx's `$uri`).
    pub(crate) fn lookup(&self, path: &[u8]) -> Option<RouteId> {
        self.rules
            .iter()
            .find(|(r, _)| r.is_match(path))
            .map(|(_, id)| *id)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// A route's `rewrite-target`.
#[derive(Clone, Debug)]
pub struct Rewrite {
    regex: Regex,
    replacement: String,
}

impl Rewrite {
    /// The rewrite of a rule `path` to `target`.
    pub fn new(path: &str, target: &str) -> Result<Self, RegexError> {
        if !target.starts_with('/') {
            return Err(RegexError::NotAPath);
        }
        if target.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(RegexError::NotAPath);
        }
        let regex = RegexBuilder::new(path)
            .case_insensitive(true)
            .unicode(false)
            .size_limit(SIZE_LIMIT)
            .dfa_size_limit(DFA_CACHE)
            .build()
            .map_err(|e| RegexError::Invalid(e.to_string()))?;
        Ok(Self {
            regex,
            replacement: replacement(target)?,
        })
    }

    /// The new path and query for a request path and query: unchanged when
    /// the expression does not match; a query in the target comes first and
    /// the request's follows, as nginx appends the original arguments.
    pub fn apply(&self, path: &str, query: Option<&str>) -> Option<String> {
        let captures = self.regex.captures(path.as_bytes())?;
        let mut out = Vec::with_capacity(self.replacement.len() + path.len());
        captures.expand(self.replacement.as_bytes(), &mut out);
        let mut rewritten = encode(&out);
        match (rewritten.contains('?'), query.filter(|q| !q.is_empty())) {
            (true, Some(query)) => {
                rewritten.push('&');
                rewritten.push_str(query);
            }
            (false, Some(query)) => {
                rewritten.push('?');
                rewritten.push_str(query);
            }
            (_, None) => {}
        }
        Some(rewritten)
    }
}

/// nginx's `$1` to the regex crate's `${1}`; `$$` and other `$names` are
/// refused rather than guessed.
fn replacement(target: &str) -> Result<String, RegexError> {
    let mut out = String::with_capacity(target.len() + 8);
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some(d) if d.is_ascii_digit() => {
                out.push_str("${");
                out.push(*d);
                out.push('}');
                chars.next();
            }
            _ => {
                let name: String = chars
                    .clone()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                return Err(RegexError::Variable(format!("${name}")));
            }
        }
    }
    Ok(out)
}

/// Percent-encodes what may not appear in a request target (captures come
/// from the decoded path).
fn encode(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(paths: &[&str]) -> RegexIndex {
        let mut index = RegexIndex::default();
        for (i, p) in paths.iter().enumerate() {
            index.push(RegexPath::new(p).unwrap(), RouteId(i));
        }
        index
    }

    fn find(index: &RegexIndex, path: &str) -> Option<usize> {
        index.lookup(path.as_bytes()).map(|id| id.0)
    }

    #[test]
    fn start_anchored_case_insensitive_longest_first() {
        let index = index(&["/id/[0-9]+", "/", "/api/v1"]);
        assert_eq!(
            find(&index, "/id/123a"),
            Some(0),
            "anchored at the start only"
        );
        assert_eq!(find(&index, "/ID/7"), Some(0));
        assert_eq!(find(&index, "/API/V1/x"), Some(2));
        assert_eq!(find(&index, "/other"), Some(1));
        assert_eq!(find(&index, "/x/id/1"), Some(1));
        assert!(RegexPath::new("/a(").is_err());
    }

    /// nginx's PCRE runs without UTF mode: classes and case folding are
    /// ASCII, and a path that is not UTF-8 can match.
    #[test]
    fn classes_are_ascii_and_paths_are_bytes() {
        let index = index(&["/w/\\w+$", "/any/.+"]);
        assert_eq!(find(&index, "/w/abc_9"), Some(0));
        assert_eq!(find(&index, "/w/caf\u{e9}"), None, "\\w is ASCII");
        assert_eq!(index.lookup(b"/any/\xff\xfe").map(|id| id.0), Some(1));
        let big = RegexPath::new("/x/\\w{5000}");
        assert!(big.is_err(), "over the size limit");
        let usual = RegexPath::new("/api/v1/(\\w+)/(\\w+)/(.*)/items/[a-z0-9-]+/(\\d+)").unwrap();
        assert!(
            usual.memory_usage() < SIZE_LIMIT,
            "{}",
            usual.memory_usage()
        );
    }

    #[test]
    fn rewrites_with_captures_like_nginx() {
        let r = Rewrite::new("/something(/|$)(.*)", "/$2").unwrap();
        assert_eq!(r.apply("/something/new", None).as_deref(), Some("/new"));
        assert_eq!(r.apply("/something", Some("a=1")).as_deref(), Some("/?a=1"));
        assert_eq!(r.apply("/SOMETHING/x/y", None).as_deref(), Some("/x/y"));
        assert_eq!(r.apply("/else", None), None);
        let whole = Rewrite::new("/foo", "/").unwrap();
        assert_eq!(
            whole.apply("/foo/bar", None).as_deref(),
            Some("/"),
            "the whole path is replaced"
        );
        let digits = Rewrite::new("/v(\\d+)/(.*)", "/api/$1x/$2?from=gw").unwrap();
        assert_eq!(
            digits.apply("/v2/items", Some("q=1")).as_deref(),
            Some("/api/2x/items?from=gw&q=1")
        );
        let spaces = Rewrite::new("/s/(.*)", "/$1").unwrap();
        assert_eq!(spaces.apply("/s/a b", None).as_deref(), Some("/a%20b"));
    }

    #[test]
    fn refuses_variables_and_non_paths() {
        assert_eq!(
            Rewrite::new("/a", "/$host/x").unwrap_err(),
            RegexError::Variable("$host".to_owned())
        );
        assert_eq!(
            Rewrite::new("/a", "http://x").unwrap_err(),
            RegexError::NotAPath
        );
        assert!(Rewrite::new("/a", "/b\nc").is_err());
    }
}
